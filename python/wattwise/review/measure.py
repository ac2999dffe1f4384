"""Static and measured properties of one model: parameters, size on disk, MACs per
inference, per-layer bit width and sparsity, and timing of calls."""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass

import torch
from torch import nn

# Buffers that describe a layer but are not part of what it computes with.
_BOOKKEEPING_SUFFIXES = ("_mask",)


def size_on_disk(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())`` (what a checkpoint costs)."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.tell()


def _weight_of(module: nn.Module) -> torch.Tensor | None:
    """The float weight a layer stands for (dequantized or with its pruning mask applied)."""
    if hasattr(module, "dequantize") and hasattr(module, "qweight"):
        return module.dequantize()
    if hasattr(module, "to_dense") and callable(module.to_dense):
        dense = module.to_dense()
        return dense.weight if isinstance(dense, nn.Module) else dense
    w = getattr(module, "weight", None)
    return w if isinstance(w, torch.Tensor) else None


def _bits_of(module: nn.Module) -> int:
    bits = getattr(module, "bits", None)
    if isinstance(bits, int):
        return bits
    w = getattr(module, "weight", None)
    if isinstance(w, torch.Tensor):
        return torch.finfo(w.dtype).bits if w.is_floating_point() else w.element_size() * 8
    values = getattr(module, "values", None)
    if isinstance(values, torch.Tensor) and values.is_floating_point():
        return torch.finfo(values.dtype).bits
    return 32


def _is_layer(module: nn.Module) -> bool:
    return isinstance(module, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)) or (
        hasattr(module, "in_features") and hasattr(module, "out_features")
    )


@dataclass
class LayerInfo:
    name: str
    kind: str
    bits: int
    sparsity: float
    params: int


def layer_table(model: nn.Module) -> list[LayerInfo]:
    """Bit width and sparsity (fraction of zero weights) of every Linear/Conv-like layer."""
    rows = []
    with torch.no_grad():
        for name, module in model.named_modules():
            if not _is_layer(module):
                continue
            w = _weight_of(module)
            if w is None or w.device.type == "meta":
                continue
            numel = w.numel()
            zeros = int((w == 0).sum()) if numel else 0
            rows.append(
                LayerInfo(
                    name=name or "(root)",
                    kind=type(module).__name__,
                    bits=_bits_of(module),
                    sparsity=zeros / numel if numel else 0.0,
                    params=numel,
                )
            )
    return rows


def count_params(model: nn.Module) -> tuple[int, int]:
    """(weights the model represents, of which non-zero). Quantized or compressed layers
    count the logical weights they stand for; pruning masks are bookkeeping, not weights."""
    total = nonzero = 0
    covered: set[str] = set()
    with torch.no_grad():
        for name, module in model.named_modules():
            if _is_layer(module):
                w = _weight_of(module)
                if w is not None and w.device.type != "meta":
                    total += w.numel()
                    nonzero += int((w != 0).sum())
                    b = getattr(module, "bias", None)
                    if isinstance(b, torch.Tensor):
                        total += b.numel()
                        nonzero += int((b != 0).sum())
                    covered.add(name)
        for name, p in model.named_parameters():
            owner = name.rsplit(".", 1)[0] if "." in name else ""
            if owner in covered or name.endswith(_BOOKKEEPING_SUFFIXES):
                continue
            total += p.numel()
            nonzero += int((p != 0).sum())
    return total, nonzero


def _layer_macs(module: nn.Module, inputs: tuple, output) -> int:
    custom = getattr(module, "_wattwise_macs", None)
    if callable(custom):
        return int(custom(inputs, output))
    if not isinstance(output, torch.Tensor):
        return 0
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        per_output = (module.in_channels // module.groups) * math.prod(module.kernel_size)
        return output.numel() * per_output
    if hasattr(module, "in_features") and hasattr(module, "out_features"):
        rows = output.numel() // max(int(module.out_features), 1)
        nnz = getattr(module, "nnz", None)
        per_row = int(nnz) if isinstance(nnz, int) else module.in_features * module.out_features
        return rows * per_row
    return 0


def count_macs(model: nn.Module, call) -> int:
    """Multiply-accumulates of Linear/Conv-like layers actually executed by ``call()``
    (so an early-exit model is charged only for the stages its samples ran)."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        total += _layer_macs(module, inputs, output)

    handles = [m.register_forward_hook(hook) for m in model.modules() if _is_layer(m)]
    try:
        call()
    finally:
        for h in handles:
            h.remove()
    return total


def time_calls(call, warmup: int, repeats: int, min_time_s: float = 0.0) -> list[float]:
    """Seconds of each timed call, after ``warmup`` untimed ones; keeps calling past
    ``repeats`` until ``min_time_s`` has passed (energy windows need some length)."""
    for _ in range(warmup):
        call()
    times = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_time_s:
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)
