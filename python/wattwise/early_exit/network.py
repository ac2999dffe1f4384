"""Multi-exit networks: ``EarlyExitNetwork(stages, heads)`` and ``attach_exits`` for existing
models, with per-sample exits in real batches (decision and compaction in the C++ op
``torch.ops.wattwise.exit_step``) and the statistics of what the exits saved."""

from __future__ import annotations

import inspect
import itertools
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from . import _ops  # noqa: F401  (registers the fake kernel of exit_step)
from .criteria import CRITERIA, check_threshold, confidence, criterion_code

_CODE_TO_CRITERION = {v: k for k, v in CRITERIA.items()}


class ExitStats:
    """What ``infer`` did since the last ``reset()``: counts per exit, per-exit accuracy when
    labels were passed, and analytic FLOPs (per sample, heads included)."""

    def __init__(self, net: EarlyExitNetwork):
        self._net = net
        self.reset()

    def reset(self) -> None:
        n = len(self._net.stages)
        self.exit_counts = torch.zeros(n, dtype=torch.long)
        self.correct_counts = torch.zeros(n, dtype=torch.long)
        self.labelled_counts = torch.zeros(n, dtype=torch.long)

    def _update(self, exit_index, logits, labels) -> None:
        n = len(self.exit_counts)
        exit_index, logits = exit_index.cpu(), logits.cpu()
        labels = labels.cpu() if labels is not None else None
        self.exit_counts += torch.bincount(exit_index, minlength=n)
        if labels is not None:
            correct = (logits.argmax(1) == labels).long()
            self.labelled_counts += torch.bincount(exit_index, minlength=n)
            self.correct_counts += torch.bincount(exit_index, weights=correct, minlength=n).long()

    @property
    def samples(self) -> int:
        return int(self.exit_counts.sum())

    @property
    def exit_histogram(self) -> list[int]:
        return self.exit_counts.tolist()

    @property
    def exit_fractions(self) -> list[float]:
        total = max(self.samples, 1)
        return [c / total for c in self.exit_counts.tolist()]

    @property
    def per_exit_accuracy(self) -> list[float | None]:
        """Accuracy of the samples that left at each exit (None where none were labelled)."""
        return [
            (c / n if n else None)
            for c, n in zip(
                self.correct_counts.tolist(), self.labelled_counts.tolist(), strict=True
            )
        ]

    @property
    def accuracy(self) -> float | None:
        n = int(self.labelled_counts.sum())
        return int(self.correct_counts.sum()) / n if n else None

    @property
    def mean_flops(self) -> float:
        """Mean FLOPs per sample actually spent (stages and heads up to each sample's exit)."""
        cost = self._net.exit_flops()
        total = max(self.samples, 1)
        return sum(c * f for c, f in zip(self.exit_counts.tolist(), cost, strict=True)) / total

    @property
    def full_flops(self) -> float:
        """FLOPs per sample of the plain model: every stage and only the final head."""
        return self._net.full_flops()

    @property
    def flops_saved(self) -> float:
        """1 - mean_flops / full_flops (negative when the heads cost more than exits save)."""
        return 1.0 - self.mean_flops / self.full_flops if self.full_flops else 0.0

    def as_dict(self) -> dict:
        return {
            "samples": self.samples,
            "exit_histogram": self.exit_histogram,
            "per_exit_accuracy": self.per_exit_accuracy,
            "accuracy": self.accuracy,
            "mean_flops": self.mean_flops,
            "full_flops": self.full_flops,
            "flops_saved": self.flops_saved,
        }

    def __repr__(self) -> str:
        return f"ExitStats({self.as_dict()})"


def exit_step_torch(
    logits, positions, out, exit_index, stage, code, threshold, temperature, prev_pred, prev_streak
):
    """Pure-torch twin of ``torch.ops.wattwise.exit_step`` for tensors on other devices
    (the C++ op is CPU-only): the same decision and compaction, with one host sync (the
    ``nonzero``) per stage."""
    z = logits.float() / temperature
    pred = z.argmax(1)
    streak = torch.zeros_like(pred)
    if code == CRITERIA["patience"]:
        if prev_pred is not None:
            streak = torch.where(pred == prev_pred, prev_streak + 1, streak)
        conf = streak.to(torch.float32)
    else:
        conf = confidence([z], _CODE_TO_CRITERION[code], [1.0])[0]
    leave = conf >= threshold
    rows = (~leave).nonzero().flatten()
    gone = leave.nonzero().flatten()
    out.index_copy_(0, positions[gone], logits[gone].to(out.dtype))
    exit_index.index_fill_(0, positions[gone], stage)
    return rows, positions[rows], pred[rows], streak[rows]


def _count_flops(module: nn.Module, args: tuple) -> tuple[float, torch.Tensor]:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        out = module(*args)
    return float(counter.get_total_flops()), out


class EarlyExitNetwork(nn.Module):
    """A network of ``stages`` with one classifier head after each (the last head is the
    final classifier).

    ``stage(h, *extra)`` maps the previous stage's output (the input for the first) to the
    next; ``extra`` are per-sample tensors (e.g. attention masks, batch first) that travel
    with the samples and are compacted with them. ``head(h)`` must return 2-D logits.

    In train mode ``net(x, *extra)`` returns every exit's logits (a list, for
    ``joint_loss``); in eval mode it returns ``infer(x, *extra)[0]``. Thresholds (one per
    early exit), per-exit temperatures and the criterion are buffers, so they travel in the
    ``state_dict``; ``calibrate`` sets them. Until then every early exit is disabled
    (threshold +inf) and ``infer`` computes what the plain model computes.
    """

    def __init__(
        self,
        stages: Sequence[nn.Module],
        heads: Sequence[nn.Module],
        criterion: str = "max_prob",
        thresholds: Sequence[float] | None = None,
        temperatures: Sequence[float] | None = None,
    ):
        super().__init__()
        stages, heads = list(stages), list(heads)
        if len(stages) == 0:
            raise ValueError("EarlyExitNetwork: stages must hold at least one module, got none")
        if len(stages) != len(heads):
            raise ValueError(
                f"EarlyExitNetwork: need one head per stage, got {len(stages)} stages and "
                f"{len(heads)} heads"
            )
        for kind, mods in (("stages", stages), ("heads", heads)):
            for i, m in enumerate(mods):
                if not isinstance(m, nn.Module):
                    raise TypeError(
                        f"EarlyExitNetwork: {kind}[{i}] must be an nn.Module, got "
                        f"{type(m).__name__}"
                    )
        self.stages = nn.ModuleList(stages)
        self.heads = nn.ModuleList(heads)
        n = len(stages)
        self.register_buffer("criterion_code", torch.tensor(criterion_code(criterion)))
        self.register_buffer("thresholds", torch.full((n - 1,), math.inf, dtype=torch.float64))
        self.register_buffer("temperatures", torch.ones(n, dtype=torch.float64))
        if thresholds is not None:
            self.set_thresholds(thresholds)
        if temperatures is not None:
            self.set_temperatures(temperatures)
        self.track_stats = True
        self.stats = ExitStats(self)
        self._flops: tuple[list[float], list[float]] | None = None
        self._flops_example: tuple | None = None

    # ---- configuration ---------------------------------------------------------------

    @property
    def num_exits(self) -> int:
        return len(self.stages)

    @property
    def criterion(self) -> str:
        return _CODE_TO_CRITERION[int(self.criterion_code)]

    @criterion.setter
    def criterion(self, value: str) -> None:
        code = criterion_code(value)
        if code != int(self.criterion_code):
            # Thresholds of one criterion mean nothing under another: disable the exits.
            self.criterion_code.fill_(code)
            self.thresholds.fill_(math.inf)

    def set_thresholds(self, thresholds: Sequence[float]) -> None:
        """One threshold per early exit (``num_exits - 1`` values; the final exit takes
        everything left). +inf disables an exit. Raises ValueError out of range."""
        values = [float(t) for t in thresholds]
        if len(values) != self.num_exits - 1:
            raise ValueError(
                f"thresholds: need {self.num_exits - 1} values (one per early exit), got "
                f"{len(values)}"
            )
        for k, v in enumerate(values):
            check_threshold(self.criterion, v, f"thresholds[{k}] (exit after stages.{k})")
        self.thresholds.copy_(torch.tensor(values, dtype=torch.float64))

    def set_temperatures(self, temperatures: Sequence[float]) -> None:
        values = [float(t) for t in temperatures]
        if len(values) != self.num_exits:
            raise ValueError(
                f"temperatures: need {self.num_exits} values (one per exit), got {len(values)}"
            )
        for k, v in enumerate(values):
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"temperatures[{k}] (heads.{k}): must be finite and > 0, got {v}")
        self.temperatures.copy_(torch.tensor(values, dtype=torch.float64))

    def _exit_config(self) -> tuple[int, list[float], list[float]]:
        # Python copies of the buffers, refreshed when a buffer is replaced or written in
        # place (set_thresholds, load_state_dict): saves three tensor reads per batch.
        bufs = (self.criterion_code, self.thresholds, self.temperatures)
        key = tuple((id(b), b._version) for b in bufs)
        if self.__dict__.get("_config_key") != key:
            self.__dict__["_config"] = (
                int(self.criterion_code),
                [*self.thresholds.tolist(), -math.inf],
                self.temperatures.tolist(),
            )
            self.__dict__["_config_key"] = key
        return self.__dict__["_config"]

    # ---- forward paths ---------------------------------------------------------------

    def _head(self, k: int, h: torch.Tensor) -> torch.Tensor:
        logits = self.heads[k](h)
        if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
            shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits)
            raise ValueError(
                f"heads.{k} ({type(self.heads[k]).__name__}) must return 2-D logits "
                f"[batch, classes], got {shape}"
            )
        return logits

    def forward_all(self, x: torch.Tensor, *extra: torch.Tensor) -> list[torch.Tensor]:
        """Every exit's logits for every sample (training, calibration)."""
        outs = []
        h = x
        for k, stage in enumerate(self.stages):
            h = stage(h, *extra)
            outs.append(self._head(k, h))
        return outs

    def forward(self, x: torch.Tensor, *extra: torch.Tensor):
        if self.training:
            return self.forward_all(x, *extra)
        return self.infer(x, *extra)[0]

    @torch.no_grad()
    def infer(
        self, x: torch.Tensor, *extra: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample early exit over a batch: returns ``(logits, exit_index)``.

        After each stage the C++ op scores every remaining sample, writes those that pass the
        exit's threshold into the output (raw logits of that exit's head) and returns the
        rows that continue; only those rows (and their ``extra`` tensors) go on. ``labels``
        (optional) feed ``stats.per_exit_accuracy``.
        """
        if not isinstance(x, torch.Tensor) or x.dim() < 1:
            raise ValueError(f"infer: x must be a tensor with a batch dimension, got {x!r}")
        batch = x.shape[0]
        for i, e in enumerate(extra):
            if not isinstance(e, torch.Tensor) or e.dim() < 1 or e.shape[0] != batch:
                raise ValueError(
                    f"infer: extra[{i}] must be a tensor with the batch size {batch} first, "
                    f"got {tuple(e.shape) if isinstance(e, torch.Tensor) else type(e)}"
                )
        if labels is not None and (labels.dim() != 1 or labels.shape[0] != batch):
            raise ValueError(f"infer: labels must have shape [{batch}], got {tuple(labels.shape)}")
        if self._flops_example is None and batch > 0:
            self._flops_example = (x[:1].clone(), *(e[:1].clone() for e in extra))

        code, thresholds, temps = self._exit_config()
        patience = code == CRITERIA["patience"]
        cpu = x.device.type == "cpu"
        step = torch.ops.wattwise.exit_step.default if cpu else exit_step_torch
        positions = torch.arange(batch, device=x.device)
        exit_index = torch.empty(batch, dtype=torch.long, device=x.device)
        out = None
        pred = streak = None
        h = x
        for k, (stage, head) in enumerate(zip(self.stages, self.heads, strict=True)):
            h = stage(h, *extra)
            logits = head(h)
            if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
                self._head(k, h)  # raises the descriptive error
            if logits.dtype != torch.float32:
                logits = logits.float()
            if out is None:
                out = logits.new_empty((batch, logits.shape[1]))
            elif logits.shape[1] != out.shape[1]:
                raise ValueError(
                    f"heads.{k} returns {logits.shape[1]} classes but the earlier heads "
                    f"return {out.shape[1]}: every exit must classify into the same classes"
                )
            rows, positions, next_pred, next_streak = step(
                logits, positions, out, exit_index, k, code, thresholds[k], temps[k], pred, streak
            )
            if patience:
                pred, streak = next_pred, next_streak
            remaining = rows.shape[0]
            if remaining == 0:
                break
            if remaining < h.shape[0]:
                h = h.index_select(0, rows)
                extra = tuple(e.index_select(0, rows) for e in extra)
        if out is None:  # batch of 0 through a model whose heads never ran
            out = x.new_empty((0, 0))
        if self.track_stats and batch > 0:
            self.stats._update(exit_index, out, labels)
        return out, exit_index

    # ---- cost model --------------------------------------------------------------------

    def count_flops(self, x: torch.Tensor, *extra: torch.Tensor) -> tuple[list, list]:
        """Analytic FLOPs per sample of each stage and each head for input like ``x[:1]``
        (torch.utils.flop_counter: matmuls and convolutions)."""
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                stage_f, head_f = [], []
                h = x[:1]
                ex = tuple(e[:1] for e in extra)
                for k, stage in enumerate(self.stages):
                    f, h = _count_flops(stage, (h, *ex))
                    stage_f.append(f)
                    f, _ = _count_flops(self.heads[k], (h,))
                    head_f.append(f)
        finally:
            self.train(was_training)
        self._flops = (stage_f, head_f)
        return stage_f, head_f

    def _ensure_flops(self) -> tuple[list, list]:
        if self._flops is None:
            if self._flops_example is None:
                raise RuntimeError(
                    "FLOPs are counted on the first batch infer() sees, or call "
                    "count_flops(example_input) first"
                )
            self.count_flops(*self._flops_example)
        return self._flops

    def exit_flops(self) -> list[float]:
        """FLOPs per sample of leaving at each exit: stages and heads up to it."""
        stage_f, head_f = self._ensure_flops()
        cost, total = [], 0.0
        for s, h in zip(stage_f, head_f, strict=True):
            total += s + h
            cost.append(total)
        return cost

    def full_flops(self) -> float:
        stage_f, head_f = self._ensure_flops()
        return sum(stage_f) + head_f[-1]


# ---- attaching exits to existing models ----------------------------------------------------


def _takes(module: nn.Module, names: Sequence[str] | None) -> bool:
    try:
        params = inspect.signature(module.forward).parameters.values()
    except (TypeError, ValueError):
        return False
    if any(p.kind == p.VAR_KEYWORD for p in params) and names:
        return True
    if names:
        return all(n in {p.name for p in params} for n in names)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) > 1 or any(p.kind == p.VAR_POSITIONAL for p in params)


class Segment(nn.Module):
    """Consecutive layers of an existing model run as one stage. Layers whose forward takes
    the extra arguments get them (by keyword when ``extra_names`` is given); a tuple output
    (as Hugging Face layers return) is reduced to its first element."""

    def __init__(
        self, layers: Sequence[tuple[str, nn.Module]], extra_names=None, flatten_before=()
    ):
        super().__init__()
        self.names = [n for n, _ in layers]
        self.layers = nn.ModuleList([m for _, m in layers])
        self.extra_names = tuple(extra_names) if extra_names else None
        self._takes_extra = [_takes(m, self.extra_names) for m in self.layers]
        self._flatten = [n in set(flatten_before) for n in self.names]

    def forward(self, x, *extra):
        for layer, takes, flat in zip(self.layers, self._takes_extra, self._flatten, strict=True):
            if flat:
                x = torch.flatten(x, 1)
            if extra and takes:
                if self.extra_names:
                    x = layer(x, **dict(zip(self.extra_names, extra, strict=True)))
                else:
                    x = layer(x, *extra)
            else:
                x = layer(x)
            if isinstance(x, tuple):
                x = x[0]
        return x

    def extra_repr(self) -> str:
        return f"layers={self.names}"


def attach_exits(
    model: nn.Module | Sequence[nn.Module],
    after: Sequence[str],
    head_factory: Callable[[str, torch.Tensor], nn.Module],
    example_input: torch.Tensor,
    *example_extra: torch.Tensor,
    extra_names: Sequence[str] | None = None,
    final_head: nn.Module | None = None,
    flatten_before: Sequence[str] = (),
    criterion: str = "max_prob",
) -> EarlyExitNetwork:
    """Adds exits to an existing model without copying its code or weights.

    ``model`` is an ``nn.Sequential``, an ``nn.ModuleList`` / list of layers (a ResNet-style
    stage list, a transformer's encoder layers), or any module whose children run in
    registration order. ``after`` names the children after which an exit goes (in order;
    not the last child). ``head_factory(name, features)`` builds each exit's head from the
    example features at that point. The model's layers are shared, not copied: the last
    stage is the rest of the model and its final head is ``nn.Identity``, so a model that
    ends in its classifier keeps producing its own logits. ``extra_names``: keyword names
    under which the extra per-sample tensors reach the layers that accept them (e.g.
    ``("src_key_padding_mask",)`` for ``nn.TransformerEncoderLayer``); without it they are
    passed positionally to layers whose forward takes more than one argument.
    ``final_head``: the classifier after the last layer when ``model`` does not end in one
    (a list of encoder layers); default ``nn.Identity()``. ``flatten_before``: children
    whose input the model's forward flattens from dim 1 first (torchvision's ResNet does
    ``torch.flatten(x, 1)`` before ``fc``: pass ``flatten_before=("fc",)``).
    """
    if isinstance(model, nn.Module) and not isinstance(model, nn.ModuleList):
        children = list(model.named_children())
    elif isinstance(model, (nn.ModuleList, list, tuple)):
        children = [(str(i), m) for i, m in enumerate(model)]
    else:
        raise TypeError(
            f"attach_exits: model must be an nn.Module or a list of modules, got "
            f"{type(model).__name__}"
        )
    for name, m in children:
        if not isinstance(m, nn.Module):
            raise TypeError(f"attach_exits: layer {name!r} is a {type(m).__name__}, not a module")
    if not children:
        raise ValueError("attach_exits: model has no layers")
    if not callable(head_factory):
        raise TypeError(f"attach_exits: head_factory must be callable, got {head_factory!r}")
    names = [n for n, _ in children]
    after = [str(a) for a in after]
    if not after:
        raise ValueError("attach_exits: after must name at least one layer")
    cuts = []
    for a in after:
        if a not in names:
            raise ValueError(f"attach_exits: after names layer {a!r}, which is not among {names}")
        cuts.append(names.index(a))
    if cuts != sorted(set(cuts)):
        raise ValueError(
            f"attach_exits: after must list distinct layers in model order, got {after}"
        )
    if cuts[-1] == len(children) - 1:
        raise ValueError(
            f"attach_exits: cannot exit after the last layer {after[-1]!r}: that is the final exit"
        )
    for f in flatten_before:
        if f not in names:
            raise ValueError(f"attach_exits: flatten_before names {f!r}, not among {names}")
    bounds = [0, *[c + 1 for c in cuts], len(children)]
    stages = [
        Segment(children[b:e], extra_names, flatten_before) for b, e in itertools.pairwise(bounds)
    ]
    heads = []
    was_training = isinstance(model, nn.Module) and model.training
    h = example_input
    with torch.no_grad():
        if isinstance(model, nn.Module):
            model.eval()
        try:
            for k, stage in enumerate(stages[:-1]):
                h = stage(h, *example_extra)
                head = head_factory(after[k], h)
                if not isinstance(head, nn.Module):
                    raise TypeError(
                        f"attach_exits: head_factory({after[k]!r}, ...) returned "
                        f"{type(head).__name__}, not an nn.Module"
                    )
                heads.append(head)
        finally:
            if isinstance(model, nn.Module):
                model.train(was_training)
    if final_head is not None and not isinstance(final_head, nn.Module):
        raise TypeError(f"attach_exits: final_head must be an nn.Module, got {final_head!r}")
    heads.append(final_head if final_head is not None else nn.Identity())
    return EarlyExitNetwork(stages, heads, criterion=criterion)
