"""``wattwise.compare``: measure model variants side by side on latency, energy per
inference, the user's metric, parameters, size and MACs."""

from __future__ import annotations

import copy
import datetime as _dt
import platform
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from . import measure

MetricFn = Callable[[torch.Tensor, torch.Tensor], float]
ForwardFn = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def _default_forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    if isinstance(out, (tuple, list)):
        out = out[0]
    return out


def _split_data(data) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(data, torch.Tensor):
        return data, None
    if (
        isinstance(data, (tuple, list))
        and len(data) == 2
        and all(isinstance(t, torch.Tensor) for t in data)
    ):
        x, y = data
        if x.shape[0] != y.shape[0]:
            raise ValueError(
                f"compare: data inputs and targets differ in length: {x.shape[0]} vs {y.shape[0]}"
            )
        return x, y
    if isinstance(data, Iterable) and not isinstance(data, (str, bytes, Mapping)):
        xs, ys = [], []
        for i, batch in enumerate(data):
            if isinstance(batch, torch.Tensor):
                xs.append(batch)
            elif isinstance(batch, (tuple, list)) and len(batch) >= 2:
                xs.append(batch[0])
                ys.append(batch[1])
            else:
                raise TypeError(
                    f"compare: batch {i} of data must be a tensor or an (inputs, targets) pair, "
                    f"got {type(batch).__name__}"
                )
        if not xs:
            raise ValueError("compare: data yielded no batch")
        return torch.cat(xs), (torch.cat(ys) if ys else None)
    raise TypeError(
        "compare: data must be an inputs tensor, an (inputs, targets) pair of tensors or an "
        f"iterable of batches such as a DataLoader, got {type(data).__name__}"
    )


def _batch_of(x: torch.Tensor, b: int) -> torch.Tensor:
    if x.shape[0] >= b:
        return x[:b]
    reps = -(-b // x.shape[0])
    return x.repeat(reps, *([1] * (x.dim() - 1)))[:b]


def _validate(variants, batch_sizes, warmup, repeats, metric, baseline, min_time_s):
    if not isinstance(variants, Mapping) or not variants:
        raise TypeError(
            "compare: variants must be a non-empty dict of name -> nn.Module, got "
            f"{type(variants).__name__}"
        )
    for name, model in variants.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"compare: variant names must be non-empty str, got {name!r}")
        if not isinstance(model, nn.Module):
            raise TypeError(
                f"compare: variant {name!r} must be an nn.Module, got {type(model).__name__}"
            )
    if isinstance(batch_sizes, int) or not isinstance(batch_sizes, Sequence) or not batch_sizes:
        raise TypeError(f"compare: batch_sizes must be a non-empty sequence, got {batch_sizes!r}")
    for b in batch_sizes:
        if isinstance(b, bool) or not isinstance(b, int) or b < 1:
            raise ValueError(f"compare: batch_sizes must hold positive ints, got {b!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"compare: warmup must be an int >= 0, got {warmup!r}")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"compare: repeats must be an int >= 1, got {repeats!r}")
    if metric is not None and not callable(metric):
        raise TypeError(f"compare: metric must be callable, got {type(metric).__name__}")
    if baseline is not None and baseline not in variants:
        raise ValueError(
            f"compare: baseline {baseline!r} is not one of the variants {list(variants)}"
        )
    if not isinstance(min_time_s, (int, float)) or min_time_s < 0:
        raise ValueError(f"compare: min_time_s must be a number >= 0, got {min_time_s!r}")


class _EnergyWindow:
    """One energy measurement around a timed loop, through wattwise.energy."""

    def __init__(self, name: str, interval_s: float, tracker_kwargs: dict):
        from ..energy import EnergyTracker

        self.tracker = EnergyTracker(
            project_name=f"compare:{name}",
            interval_s=interval_s,
            save_to_file=False,
            tracking_mode="process",
            **tracker_kwargs,
        )

    def __enter__(self):
        self.tracker.start()
        return self

    def __exit__(self, *exc):
        self.report = self.tracker.stop()
        return False


def _timeline_arrays(report, max_points: int = 300) -> dict:
    tl = report.timeline()
    t = [float(v) for v in tl["t_s"]]
    p = [float(v) for v in tl["total_w"]]
    step = max(1, len(t) // max_points)
    return {"t_s": t[::step], "power_w": p[::step]}


def compare(
    variants: Mapping[str, nn.Module],
    data,
    metric: MetricFn | None = None,
    batch_sizes: Sequence[int] = (1, 32),
    warmup: int = 3,
    repeats: int = 20,
    *,
    baseline: str | None = None,
    forward: ForwardFn | None = None,
    energy: bool = True,
    min_time_s: float = 0.5,
    interval_s: float = 0.02,
    tracker_kwargs: dict | None = None,
    progress: bool = True,
):
    """Measure every variant at every batch size and return a :class:`Comparison`.

    Args:
        variants: name -> model, e.g. ``{"baseline": m0, "int8": m1}``. Models run in
            ``eval()`` mode under ``torch.inference_mode()``; they are not modified.
        data: an inputs tensor, an ``(inputs, targets)`` pair, or an iterable of batches
            (a DataLoader). Latency at batch size ``b`` uses the first ``b`` inputs.
        metric: ``metric(outputs, targets) -> float`` over all of ``data`` (e.g.
            accuracy); needs targets.
        batch_sizes: batch sizes to time.
        warmup: untimed calls before timing each variant and batch size.
        repeats: timed calls at least (p50/p95 come from these).
        baseline: the variant ratios refer to (default: the first).
        forward: ``forward(model, x) -> outputs`` when calling ``model(x)`` is not how the
            model runs (default: ``model(x)``, first element of a tuple).
        energy: measure energy per inference with ``wattwise.EnergyTracker`` (process
            mode), labelled with how it was obtained.
        min_time_s: each timed loop runs at least this long so the energy window holds
            several samples.
        interval_s: sampling period of the energy tracker.
        tracker_kwargs: extra ``EnergyTracker`` arguments (``country_iso_code``,
            ``carbon_intensity_g_per_kwh``, ``pue``, ``sysfs_root`` ...).
        progress: show a progress bar.
    """
    _validate(variants, batch_sizes, warmup, repeats, metric, baseline, min_time_s)
    from .report import Comparison

    x_all, y_all = _split_data(data)
    if x_all.shape[0] == 0:
        raise ValueError("compare: data holds no sample")
    if metric is not None and y_all is None:
        raise ValueError("compare: a metric needs targets: pass data as (inputs, targets)")
    fwd = forward or _default_forward
    baseline = baseline or next(iter(variants))
    tracker_kwargs = dict(tracker_kwargs or {})

    from tqdm.auto import tqdm

    steps = len(variants) * (len(batch_sizes) + 1)
    bar = tqdm(total=steps, desc="compare", disable=not progress, leave=False)
    static: dict[str, dict] = {}
    records: list[dict] = []
    timelines: dict[str, dict] = {}
    carbon: dict[str, Any] = {}
    try:
        for name, model in variants.items():
            was_training = model.training
            model.eval()
            try:
                bar.set_postfix_str(f"{name}: metric, size")
                with torch.inference_mode():
                    metric_value = None
                    if metric is not None:
                        eval_b = max(max(batch_sizes), 256)
                        outs = [
                            fwd(model, x_all[i : i + eval_b]) for i in range(0, len(x_all), eval_b)
                        ]
                        metric_value = float(metric(torch.cat(outs), y_all))
                    params, nonzero = measure.count_params(model)
                    static[name] = {
                        "params": params,
                        "nonzero_params": nonzero,
                        "size_bytes": measure.size_on_disk(model),
                        "metric": metric_value,
                        "layers": [vars(r) for r in measure.layer_table(model)],
                    }
                bar.update(1)
                for b in batch_sizes:
                    bar.set_postfix_str(f"{name}: batch {b}")
                    xb = _batch_of(x_all, b)
                    with torch.inference_mode():
                        macs = measure.count_macs(model, lambda m=model, xb=xb: fwd(m, xb))
                        call = lambda m=model, xb=xb: fwd(m, xb)  # noqa: E731
                        if energy:
                            with _EnergyWindow(f"{name}@{b}", interval_s, tracker_kwargs) as w:
                                times = measure.time_calls(call, warmup, repeats, min_time_s)
                            rep = w.report
                            inferences = len(times) * b
                            joules = rep.energy_kwh * 3.6e6 / inferences
                            grams_per_million = rep.emissions_kg * 1e3 / inferences * 1e6
                            method = "+".join(sorted(set(rep.methods.values()))) or "estimate"
                            timelines[f"{name}@{b}"] = _timeline_arrays(rep)
                            carbon = {
                                "carbon_intensity_g_per_kwh": rep.carbon_intensity_g_per_kwh,
                                "carbon_intensity_source": getattr(
                                    rep, "carbon_intensity_source", ""
                                ),
                                "pue": rep.pue,
                            }
                        else:
                            times = measure.time_calls(call, warmup, repeats, min_time_s)
                            joules = grams_per_million = None
                            method = None
                    p50 = measure.percentile(times, 50)
                    records.append(
                        {
                            "variant": name,
                            "batch": b,
                            "p50_ms": p50 * 1e3,
                            "p95_ms": measure.percentile(times, 95) * 1e3,
                            "throughput_per_s": b / p50 if p50 > 0 else float("inf"),
                            "calls": len(times),
                            "energy_j_per_inference": joules,
                            "energy_method": method,
                            "g_co2e_per_million": grams_per_million,
                            "macs_per_inference": macs / b,
                        }
                    )
                    bar.update(1)
            finally:
                model.train(was_training)
    finally:
        bar.close()

    import wattwise

    meta = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "wattwise_version": wattwise.__version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "cpu": wattwise.cpu_info(),
        "torch_threads": torch.get_num_threads(),
        "batch_sizes": list(batch_sizes),
        "warmup": warmup,
        "repeats": repeats,
        **carbon,
    }
    return Comparison(
        baseline=baseline,
        static=static,
        records=records,
        timelines=timelines,
        meta=copy.deepcopy(meta),
    )
