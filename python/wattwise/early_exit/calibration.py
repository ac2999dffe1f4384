"""Calibration: one pass over held-out data collects every exit's logits, then per-exit
thresholds are chosen to meet an accuracy-drop target (relative to the final exit) or a
mean-compute budget; the report carries a one-sided confidence bound for both."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from statistics import NormalDist

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .criteria import confidence as exit_confidence
from .criteria import criterion_code
from .network import EarlyExitNetwork


@dataclass
class CalibrationResult:
    """What the chosen thresholds do on the calibration data.

    ``accuracy_drop`` is final-exit accuracy minus early-exit accuracy (same samples);
    ``accuracy_drop_upper`` and ``compute_fraction_upper`` are one-sided upper bounds at
    ``confidence`` of what to expect on fresh data from the same distribution (the drop:
    Wilson score bound of the rate of samples that only the final exit gets right, which
    bounds the drop from above; the compute: normal approximation).
    ``compute_fraction`` is mean FLOPs / the plain model's FLOPs.
    """

    criterion: str
    thresholds: list[float]
    temperatures: list[float]
    accuracy: float
    final_accuracy: float
    accuracy_drop: float
    accuracy_drop_upper: float
    compute_fraction: float
    compute_fraction_upper: float
    exit_fractions: list[float]
    samples: int
    confidence: float
    exit_accuracy: list[float] = field(default_factory=list)

    @property
    def flops_saved(self) -> float:
        return 1.0 - self.compute_fraction

    def as_dict(self) -> dict:
        d = asdict(self)
        d["flops_saved"] = self.flops_saved
        return d


def _split_batch(batch, where: str):
    if not isinstance(batch, (tuple, list)) or len(batch) < 2:
        raise ValueError(
            f"{where}: each batch must be (x, *extra, labels), got {type(batch).__name__}"
        )
    return batch[0], tuple(batch[1:-1]), batch[-1]


@torch.no_grad()
def collect_exit_logits(net: EarlyExitNetwork, loader, progress: bool = True):
    """Every exit's logits for every sample of ``loader`` (batches ``(x, *extra, labels)``),
    in one pass: returns ``(exit_logits [exits][N, C], labels [N], example)`` where
    ``example`` is the first sample's inputs (for counting FLOPs)."""
    was_training = net.training
    net.eval()
    per_exit: list[list[torch.Tensor]] = [[] for _ in range(net.num_exits)]
    labels, example = [], None
    try:
        for batch in tqdm(loader, desc="calibrate: collecting exit logits", disable=not progress):
            x, extra, y = _split_batch(batch, "calibrate")
            if example is None:
                example = (x[:1], *(e[:1] for e in extra))
            for k, z in enumerate(net.forward_all(x, *extra)):
                per_exit[k].append(z.float())
            labels.append(torch.as_tensor(y))
    finally:
        net.train(was_training)
    if example is None:
        raise ValueError("calibrate: loader yielded no batches")
    return [torch.cat(z) for z in per_exit], torch.cat(labels), example


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, iters: int = 50) -> float:
    """Temperature scaling (Guo et al. 2017): the T > 0 minimising NLL of softmax(z / T)."""
    log_t = torch.zeros((), requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=iters, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    t = float(log_t.detach().exp())
    return t if math.isfinite(t) and 1e-2 <= t <= 1e2 else 1.0


class _Policy:
    """Evaluates threshold vectors on the collected confidences."""

    def __init__(self, conf, correct, cost):
        self.conf, self.correct, self.cost = conf, correct, cost
        self.n = conf.shape[1]
        self.cols = torch.arange(self.n)

    def exits(self, thresholds) -> torch.Tensor:
        thr = torch.tensor(thresholds, dtype=self.conf.dtype)[:, None]
        passes = torch.cat([self.conf[:-1] >= thr, torch.ones(1, self.n, dtype=torch.bool)])
        return passes.to(torch.uint8).argmax(0)  # first exit that passes

    def evaluate(self, thresholds):
        idx = self.exits(thresholds)
        right = self.correct[idx, self.cols].double()
        # Paired difference with the final exit: +1 where only the final exit is right.
        diff = self.correct[-1].double() - right
        cost = self.cost[idx]
        return idx, right, diff, cost


def _wilson_upper(k: int, n: int, z: float) -> float:
    """Wilson score upper bound of a binomial rate: unlike the normal interval it stays
    positive when no event was seen (k = 0 gives about z^2 / n)."""
    if n == 0:
        return 1.0
    p = k / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return min(1.0, (centre + half) / (1 + z * z / n))


def _drop_upper(diff: torch.Tensor, z: float) -> float:
    """Upper bound of the accuracy drop: the Wilson bound of the rate of samples that only
    the final exit gets right. Samples only the early exit gets right are not credited:
    on small calibration sets that credit is noise and let held-out drops overshoot."""
    return _wilson_upper(int((diff > 0).sum()), diff.numel(), z)


def _upper(x: torch.Tensor, z: float) -> float:
    n = x.numel()
    return float(x.mean() + z * x.std(unbiased=True) / math.sqrt(n)) if n > 1 else float(x.mean())


def _candidates(values: torch.Tensor, count: int, integer: bool) -> list[float]:
    if integer:
        return sorted(set(values.long().tolist()))
    q = torch.quantile(values.double(), torch.linspace(0, 1, count, dtype=torch.double))
    return sorted(set(q.clamp(0, 1).tolist()))


def calibrate(
    net: EarlyExitNetwork,
    loader,
    max_accuracy_drop: float | None = None,
    flops_budget: float | None = None,
    *,
    criterion: str | None = None,
    fit_temperatures: bool = True,
    confidence: float = 0.95,
    use_upper_bound: bool = True,
    candidates: int = 200,
    progress: bool = True,
) -> CalibrationResult:
    """Chooses and stores (``net.thresholds``, ``net.temperatures``) the exit thresholds.

    Give one of ``max_accuracy_drop`` (default 0.01: the ``confidence`` upper bound of the
    accuracy drop below the final exit must stay within it, so that the target holds on
    fresh data; ``use_upper_bound=False`` checks the drop measured on the calibration data
    instead, which small calibration sets overfit) or ``flops_budget`` (mean FLOPs as a
    fraction of the plain model's, in (0, 1]). Exits are set greedily from the first: each
    takes the lowest threshold that keeps the target, so the cheapest exits take as many
    samples as they can.
    ``loader`` yields ``(x, *extra, labels)``; use held-out data, not the training set.
    """
    if not isinstance(net, EarlyExitNetwork):
        raise TypeError(f"calibrate: net must be an EarlyExitNetwork, got {type(net).__name__}")
    if max_accuracy_drop is not None and flops_budget is not None:
        raise ValueError("calibrate: give max_accuracy_drop or flops_budget, not both")
    if max_accuracy_drop is None and flops_budget is None:
        max_accuracy_drop = 0.01
    if max_accuracy_drop is not None and not 0.0 <= float(max_accuracy_drop) <= 1.0:
        raise ValueError(
            f"calibrate: max_accuracy_drop must lie in [0, 1], got {max_accuracy_drop}"
        )
    if flops_budget is not None and not 0.0 < float(flops_budget) <= 1.0:
        raise ValueError(f"calibrate: flops_budget must lie in (0, 1], got {flops_budget}")
    if not 0.5 <= float(confidence) < 1.0:
        raise ValueError(f"calibrate: confidence must lie in [0.5, 1), got {confidence}")
    if criterion is not None:
        criterion_code(criterion)
        net.criterion = criterion
    crit = net.criterion

    exit_logits, labels, example = collect_exit_logits(net, loader, progress)
    n_exits = net.num_exits
    if fit_temperatures and crit != "patience":
        temps = [fit_temperature(z, labels) for z in exit_logits]
    else:
        temps = net.temperatures.tolist()
    conf = exit_confidence(exit_logits, crit, temps).double()
    correct = torch.stack([z.argmax(1) == labels for z in exit_logits])
    net.count_flops(*example)
    full = net.full_flops()
    cost = torch.tensor(net.exit_flops(), dtype=torch.double) / (full if full else 1.0)
    policy = _Policy(conf, correct, cost)
    z = NormalDist().inv_cdf(float(confidence))
    integer = crit == "patience"

    thresholds = [math.inf] * (n_exits - 1)
    if max_accuracy_drop is not None:
        target = float(max_accuracy_drop)

        def ok(thr) -> bool:
            _, _, diff, _ = policy.evaluate(thr)
            drop = _drop_upper(diff, z) if use_upper_bound else float(diff.mean())
            return drop <= target + 1e-12

        for k in range(n_exits - 1):
            for t in _candidates(conf[k], candidates, integer):
                trial = thresholds.copy()
                trial[k] = t
                if ok(trial):
                    thresholds = trial
                    break
    else:
        budget = float(flops_budget)
        # One threshold shared by every early exit: the highest whose mean cost fits.
        cands = sorted(set(_candidates(conf[:-1].flatten(), candidates * 2, integer)), reverse=True)
        chosen = None
        for t in [math.inf, *cands]:
            _, _, _, c = policy.evaluate([t] * (n_exits - 1))
            if float(c.mean()) <= budget + 1e-12:
                chosen = t
                break
        if chosen is None:
            _, _, _, c = policy.evaluate([-math.inf] * (n_exits - 1))
            raise ValueError(
                f"calibrate: flops_budget={budget} is below the cheapest policy's mean compute "
                f"({float(c.mean()):.3f} of the plain model: every sample at the first exit)"
            )
        thresholds = [chosen] * (n_exits - 1)

    net.set_thresholds(thresholds)
    net.set_temperatures(temps)
    idx, right, diff, c = policy.evaluate(thresholds)
    counts = torch.bincount(idx, minlength=n_exits)
    exit_acc = [
        float(right[idx == k].mean()) if int(counts[k]) else float("nan") for k in range(n_exits)
    ]
    result = CalibrationResult(
        criterion=crit,
        thresholds=thresholds,
        temperatures=temps,
        accuracy=float(right.mean()),
        final_accuracy=float(correct[-1].double().mean()),
        accuracy_drop=float(diff.mean()),
        accuracy_drop_upper=_drop_upper(diff, z),
        compute_fraction=float(c.mean()),
        compute_fraction_upper=_upper(c, z),
        exit_fractions=(counts.double() / labels.numel()).tolist(),
        samples=labels.numel(),
        confidence=float(confidence),
        exit_accuracy=exit_acc,
    )
    net.calibration = result
    return result
