"""Accuracy tooling: per-layer error of a quantized model against its float original, and
``quantize_with_budget_``, which keeps the most sensitive layers in float until the whole
model meets an SQNR or metric budget."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .api import quantize_
from .configs import QuantizationConfig
from .summary import _ATTR, _is_quantized


def sqnr_db(reference: torch.Tensor, approx: torch.Tensor) -> float:
    """Signal-to-quantization-noise ratio in dB: 10 log10(|ref|^2 / |ref - approx|^2);
    ``inf`` for an exact match."""
    ref = reference.detach().to(torch.float64)
    noise = (ref - approx.detach().to(torch.float64)).pow(2).sum().item()
    signal = ref.pow(2).sum().item()
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10 * math.log10(signal / noise)


def _rel_error(reference, approx) -> float:
    ref = reference.detach().to(torch.float64)
    denom = ref.norm().item()
    diff = (ref - approx.detach().to(torch.float64)).norm().item()
    return diff / denom if denom else (0.0 if diff == 0 else math.inf)


def _module_bytes(module: nn.Module) -> int:
    seen = set()
    total = 0
    for t in [*module.parameters(), *module.buffers()]:
        if id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * t.element_size()
    return total


@dataclass
class LayerReport:
    """One quantized layer. ``sqnr_db``/``rel_error``: the layer's own error (the quantized
    layer fed the float layer's inputs); ``output_sqnr_db``: the error at this layer's
    output inside the quantized model (it accumulates the earlier layers' errors)."""

    name: str
    kind: str
    bits: int
    float_bytes: int
    quantized_bytes: int
    sqnr_db: float
    rel_error: float
    output_sqnr_db: float


@dataclass
class QuantizationReport:
    layers: list[LayerReport]
    model_sqnr_db: float
    model_rel_error: float
    float_bytes: int
    quantized_bytes: int

    def __str__(self) -> str:
        head = (
            f"{'layer':<32} {'kind':<38} {'bits':>4} {'size KiB':>14} {'SQNR dB':>8} "
            f"{'rel err':>8} {'out SQNR':>8}"
        )
        rows = [head]
        for r in self.layers:
            size = f"{r.float_bytes / 1024:.0f}->{r.quantized_bytes / 1024:.0f}"
            rows.append(
                f"{r.name:<32} {r.kind:<38} {r.bits:>4} {size:>14} {r.sqnr_db:>8.2f} "
                f"{r.rel_error:>8.4f} {r.output_sqnr_db:>8.2f}"
            )
        rows.append(
            f"model: SQNR {self.model_sqnr_db:.2f} dB, rel error {self.model_rel_error:.4f}, "
            f"size {self.float_bytes / 2**20:.2f} MiB -> {self.quantized_bytes / 2**20:.2f} MiB"
        )
        return "\n".join(rows)

    def to_rows(self) -> list[dict]:
        return [r.__dict__.copy() for r in self.layers]


def _as_args(sample):
    return sample if isinstance(sample, (tuple, list)) else (sample,)


def _first_tensor(out):
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (tuple, list)):
        for o in out:
            t = _first_tensor(o)
            if t is not None:
                return t
    return getattr(out, "last_hidden_state", None)


def _outputs(model, samples):
    return [_first_tensor(model(*_as_args(s))) for s in samples]


def report(float_model: nn.Module, quantized_model: nn.Module, sample_inputs) -> QuantizationReport:
    """Compare ``quantized_model`` with ``float_model`` on ``sample_inputs`` (a list of
    inputs; a tuple entry is unpacked into positional arguments). Layers are matched by
    qualified name; every quantized layer of ``quantized_model`` must exist in
    ``float_model``. Both models run in eval mode without gradients."""
    for name, m in (("float_model", float_model), ("quantized_model", quantized_model)):
        if not isinstance(m, nn.Module):
            raise TypeError(f"report: {name} must be a torch.nn.Module, got {type(m).__name__}")
    if isinstance(sample_inputs, torch.Tensor):
        sample_inputs = [sample_inputs]
    sample_inputs = list(sample_inputs)
    if not sample_inputs:
        raise ValueError("report: sample_inputs is empty")
    float_modules = dict(float_model.named_modules())
    qlayers = [(n, m) for n, m in quantized_model.named_modules() if _is_quantized(m)]
    for n, _ in qlayers:
        if n not in float_modules:
            raise ValueError(f"report: quantized layer {n!r} has no counterpart in float_model")

    float_io: dict[str, list] = {n: [] for n, _ in qlayers}
    quant_out: dict[str, list] = {n: [] for n, _ in qlayers}
    handles = []
    for n, _ in qlayers:

        def grab_float(mod, args, out, n=n):
            float_io[n].append((args[0].detach(), out.detach()))

        def grab_quant(mod, args, out, n=n):
            quant_out[n].append(out.detach())

        handles.append(float_modules[n].register_forward_hook(grab_float))
        handles.append(quantized_model.get_submodule(n).register_forward_hook(grab_quant))
    modes = (float_model.training, quantized_model.training)
    float_model.eval()
    quantized_model.eval()
    try:
        with torch.no_grad():
            ref = _outputs(float_model, sample_inputs)
            got = _outputs(quantized_model, sample_inputs)
            for h in handles:
                h.remove()
            handles.clear()
            layers = []
            for n, qm in qlayers:
                own = [qm(x) for x, _ in float_io[n]]
                want = torch.cat([o.flatten() for _, o in float_io[n]])
                mine = torch.cat([o.flatten() for o in own])
                inside = torch.cat([o.flatten() for o in quant_out[n]])
                layers.append(
                    LayerReport(
                        name=n,
                        kind=type(qm).__name__,
                        bits=int(qm.bits),
                        float_bytes=_module_bytes(float_modules[n]),
                        quantized_bytes=_module_bytes(qm),
                        sqnr_db=sqnr_db(want, mine),
                        rel_error=_rel_error(want, mine),
                        output_sqnr_db=sqnr_db(want, inside),
                    )
                )
    finally:
        for h in handles:
            h.remove()
        float_model.train(modes[0])
        quantized_model.train(modes[1])
    ref_all = torch.cat([r.flatten() for r in ref])
    got_all = torch.cat([g.flatten() for g in got])
    return QuantizationReport(
        layers=layers,
        model_sqnr_db=sqnr_db(ref_all, got_all),
        model_rel_error=_rel_error(ref_all, got_all),
        float_bytes=_module_bytes(float_model),
        quantized_bytes=_module_bytes(quantized_model),
    )


def quantize_with_budget_(
    model: nn.Module,
    config: QuantizationConfig,
    sample_inputs,
    min_sqnr_db: float | None = None,
    metric_fn: Callable[[nn.Module], float] | None = None,
    min_metric: float | None = None,
    filter_fn=None,
) -> nn.Module:
    """``quantize_`` in place, then restore the most sensitive layers to their original
    float modules (lowest own SQNR first) until the budget holds: the model's output SQNR
    against the float model on ``sample_inputs`` is at least ``min_sqnr_db``, and/or
    ``metric_fn(model)`` (e.g. accuracy on a held-out set) is at least ``min_metric``.
    Layers restored to float are listed in ``quantization_summary(model).skipped``.
    Returns the model."""
    if min_sqnr_db is None and min_metric is None:
        raise ValueError("quantize_with_budget_: give min_sqnr_db and/or min_metric")
    if min_metric is not None and not callable(metric_fn):
        raise ValueError("quantize_with_budget_: min_metric needs a callable metric_fn")
    for field, v in (("min_sqnr_db", min_sqnr_db), ("min_metric", min_metric)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ValueError(f"quantize_with_budget_: {field} must be a number, got {v!r}")
    if isinstance(sample_inputs, torch.Tensor):
        sample_inputs = [sample_inputs]
    float_model = copy.deepcopy(model)
    model = quantize_(model, config, filter_fn=filter_fn)
    summary = getattr(model, _ATTR)
    rep = report(float_model, model, sample_inputs)
    order = sorted(rep.layers, key=lambda r: r.sqnr_db)

    float_model.eval()
    with torch.no_grad():
        ref = torch.cat([o.flatten() for o in _outputs(float_model, sample_inputs)])

    def meets() -> bool:
        ok = True
        if min_sqnr_db is not None:
            model.eval()
            with torch.no_grad():
                got = torch.cat([o.flatten() for o in _outputs(model, sample_inputs)])
            ok = sqnr_db(ref, got) >= min_sqnr_db
        if ok and min_metric is not None:
            ok = metric_fn(model) >= min_metric
        return ok

    for layer in order:
        if meets():
            break
        parent_name, _, child = layer.name.rpartition(".")
        restored = copy.deepcopy(float_model.get_submodule(layer.name))
        if layer.name == "":
            model = restored
        else:
            setattr(model.get_submodule(parent_name), child, restored)
        summary.quantized.pop(layer.name, None)
        summary.skipped[layer.name] = (
            f"kept in float to meet the budget (own SQNR {layer.sqnr_db:.1f} dB)"
        )
    object.__setattr__(model, _ATTR, summary)
    return model
