"""One-call magnitude pruning of a whole model: unstructured, N:M, block and channel patterns,
selected per layer or globally (the global k-th magnitude is found in C++ without
concatenating the weights)."""

from __future__ import annotations

import re
from collections.abc import Callable

import torch
from torch import nn

from . import _ops
from ._validate import check_amount, check_module, layer_label, pruned_tensor
from .compat import BasePruningMethod, effective_tensor

DEFAULT_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
PATTERNS = ("unstructured", "n:m", "block", "channel")


class MaskHook(BasePruningMethod):
    """The forward pre-hook wattwise registers: torch's reparametrization (`<name>_orig`,
    `<name>_mask`, `<name> = orig * mask` before each forward), so prune.remove and
    prune.is_pruned work on it. Its masks are bool, a quarter of an fp32 weight."""

    PRUNING_TYPE = "unstructured"

    def __init__(self, name: str):
        self._tensor_name = name

    def compute_mask(self, t, default_mask):
        return default_mask


def apply_keep_mask(module: nn.Module, name: str, keep: torch.Tensor) -> None:
    """Prunes the entries of `module.<name>` where `keep` is False, combining with an
    existing mask (torch's or wattwise's) so that pruned entries stay pruned."""
    orig = module._parameters.get(name + "_orig")
    if orig is not None and hasattr(module, name + "_mask"):
        old = getattr(module, name + "_mask")
        new = old & keep if old.dtype == torch.bool else old * keep.to(old.dtype)
        setattr(module, name + "_mask", new)
    else:
        orig = module._parameters.pop(name)
        module.register_parameter(name + "_orig", orig)
        module.register_buffer(name + "_mask", keep)
        module.register_forward_pre_hook(MaskHook(name))
        new = keep
    setattr(module, name, orig * new)


def select_layers(model: nn.Module, filter_fn, name: str = "weight") -> list[tuple[str, nn.Module]]:
    check_module(model, arg="model")
    if filter_fn is not None and not callable(filter_fn):
        raise TypeError(f"filter_fn must be callable(module, fqn) -> bool, got {filter_fn!r}")
    out = []
    for fqn, mod in model.named_modules():
        if filter_fn is not None:
            if not filter_fn(mod, fqn):
                continue
        elif not isinstance(mod, DEFAULT_TYPES):
            continue
        pruned_tensor(mod, name, fqn)
        out.append((fqn, mod))
    return out


def parse_pattern(pattern) -> tuple[str, tuple[int, int] | None]:
    if not isinstance(pattern, str):
        raise TypeError(f"pattern must be a str such as 'unstructured' or '2:4', got {pattern!r}")
    m = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", pattern)
    if m:
        n, mm = int(m.group(1)), int(m.group(2))
        if not 1 <= n <= mm <= 255:
            raise ValueError(f"pattern {pattern!r}: need 1 <= N <= M <= 255")
        return "n:m", (n, mm)
    if pattern in ("unstructured", "block", "channel"):
        return pattern, None
    raise ValueError(
        f"unknown pattern {pattern!r}; expected one of {PATTERNS[0]!r}, 'N:M' such "
        f"as '2:4', 'block' or 'channel'"
    )


def _as_2d(w: torch.Tensor) -> torch.Tensor:
    return w.reshape(w.shape[0], -1) if w.dim() > 1 else w.reshape(1, -1)


def _float(w: torch.Tensor) -> torch.Tensor:
    return w if w.dtype == torch.float32 else w.float()


def nm_keep(w: torch.Tensor, n: int, m: int, where: str) -> torch.Tensor:
    """Keeps the n largest-|w| entries of every m consecutive inputs of each output row."""
    w2 = _as_2d(w)
    if w2.shape[1] % m:
        raise ValueError(f"{where}: {w2.shape[1]} inputs per output are not a multiple of M={m}")
    g = w2.abs().reshape(w2.shape[0], -1, m)
    keep = torch.zeros_like(g, dtype=torch.bool)
    keep.scatter_(2, g.topk(n, dim=2).indices, True)
    return keep.reshape(w.shape)


def _block_scores(w: torch.Tensor, block, where: str) -> torch.Tensor:
    bh, bw = block
    w2 = _as_2d(w)
    if w2.shape[0] % bh or w2.shape[1] % bw:
        raise ValueError(
            f"{where}: weight of shape {tuple(w2.shape)} (as 2-D) is not divisible into "
            f"blocks of {tuple(block)}"
        )
    return w2.abs().reshape(w2.shape[0] // bh, bh, w2.shape[1] // bw, bw).mean((1, 3))


def _expand_blocks(keep: torch.Tensor, block, shape) -> torch.Tensor:
    bh, bw = block
    return keep.repeat_interleave(bh, 0).repeat_interleave(bw, 1).reshape(shape)


def _check_block(block_shape) -> tuple[int, int]:
    if (
        not isinstance(block_shape, (tuple, list))
        or len(block_shape) != 2
        or not all(isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in block_shape)
    ):
        raise ValueError(
            f"block_shape must be two positive ints such as (1, 4), got {block_shape!r}"
        )
    return int(block_shape[0]), int(block_shape[1])


def magnitude_(
    model: nn.Module,
    amount=None,
    pattern: str = "unstructured",
    scope: str = "global",
    filter_fn: Callable[[nn.Module, str], bool] | None = None,
    block_shape=(1, 4),
    name: str = "weight",
    reparametrize: bool = True,
    example_inputs=None,
) -> dict[str, float]:
    """Prunes the smallest-magnitude weights of every selected layer, in place.

    amount: target sparsity of the selected weights (float in [0, 1]; an int is a count of
        entries, blocks or channels); already pruned entries count towards it. Ignored (may be
        None) for "N:M", whose sparsity is 1 - N/M.
    pattern: "unstructured", "N:M" (e.g. "2:4", "4:8": N of every M consecutive inputs kept),
        "block" (blocks of `block_shape` over the [out, in] weight, scored by mean |w|) or
        "channel" (whole output channels by mean |w|; the bias entries go with them).
    scope: "global" ranks all selected layers together, "layer" prunes each to `amount`.
    filter_fn: (module, fqn) -> bool choosing layers; default Linear and Conv1d/2d/3d.
    reparametrize: keep torch's `<name>_orig` + `<name>_mask` (bool) reparametrization so that
        pruned weights stay zero through training; False zeroes them in place instead.
    example_inputs: for pattern "channel", trace the model (torch.fx) and prune dependency
        groups instead of single layers: channels joined by residual additions go together
        in every producing layer, so shrink_ can remove them; model outputs are never pruned.

    Returns {fqn: sparsity of `name`} for the pruned layers.
    """
    kind, nm = parse_pattern(pattern)
    if scope not in ("global", "layer"):
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
    if not isinstance(reparametrize, bool):
        raise TypeError(f"reparametrize must be a bool, got {reparametrize!r}")
    block = _check_block(block_shape) if kind == "block" else None
    layers = select_layers(model, filter_fn, name)
    if kind == "n:m":
        if amount is not None and abs(float(amount) - (1 - nm[0] / nm[1])) > 1e-9:
            raise ValueError(
                f"amount={amount!r} conflicts with pattern {pattern!r} "
                f"(sparsity {1 - nm[0] / nm[1]});"
                " pass amount=None"
            )
    elif amount is None:
        raise ValueError(f"amount is required for pattern {pattern!r}")

    if reparametrize is False:
        for fqn, mod in layers:
            if name + "_orig" in mod._parameters:
                raise ValueError(
                    f"{layer_label(mod, fqn)}: is already reparametrized; use reparametrize=True"
                )
    if example_inputs is not None:
        if kind != "channel":
            raise ValueError(f"example_inputs applies to pattern='channel' only, got {pattern!r}")
        from .shrink import grouped_channel_keeps

        allowed = dict(layers)
        row_keeps = grouped_channel_keeps(model, example_inputs, amount, scope, allowed, name)
        layers = [(fqn, mod) for fqn, mod in layers if fqn in row_keeps]
        return _apply(layers, [row_keeps[f] for f, _ in layers], kind, name, reparametrize)
    weights = [_float(effective_tensor(mod, name)) for _, mod in layers]

    def scores_of(w, fqn, mod):
        where = layer_label(mod, fqn)
        if kind == "block":
            return _block_scores(w, block, where)
        if kind == "channel":
            return _as_2d(w).abs().mean(1)
        return w

    keeps: list[torch.Tensor]
    if kind == "n:m":
        keeps = [
            nm_keep(w, *nm, layer_label(mod, fqn))
            for w, (fqn, mod) in zip(weights, layers, strict=True)
        ]
    elif (
        kind == "unstructured"
        and not reparametrize
        and all(
            w.is_contiguous() and w.data_ptr() == effective_tensor(m, name).data_ptr()
            for w, (_, m) in zip(weights, layers, strict=True)
        )
    ):
        # In place and nothing else allocated: the 100M-parameter path.
        tensors = [getattr(m, name).data for _, m in layers]
        groups = [tensors] if scope == "global" else [[t] for t in tensors]
        names = ["the selected layers"] if scope == "global" else [f for f, _ in layers]
        counts = []
        for g, where in zip(groups, names, strict=True):
            counts += _ops.zero_smallest_(g, check_amount(amount, sum(t.numel() for t in g), where))
        return {
            fqn: c / max(t.numel(), 1)
            for (fqn, _), c, t in zip(layers, counts, tensors, strict=True)
        }
    else:
        scores = [scores_of(w, fqn, mod) for w, (fqn, mod) in zip(weights, layers, strict=True)]
        if scope == "global":
            k = check_amount(amount, sum(s.numel() for s in scores), "the selected layers")
            keeps = _ops.keep_masks(scores, k)
        else:
            keeps = [
                _ops.keep_masks([s], check_amount(amount, s.numel(), layer_label(mod, fqn)))[0]
                for s, (fqn, mod) in zip(scores, layers, strict=True)
            ]
        if kind == "block":
            keeps = [_expand_blocks(k, block, w.shape) for k, w in zip(keeps, weights, strict=True)]
    del weights

    return _apply(layers, keeps, kind, name, reparametrize)


def _apply(layers, keeps, kind: str, name: str, reparametrize: bool) -> dict[str, float]:
    out = {}
    for (fqn, mod), keep in zip(layers, keeps, strict=True):
        w_keep = keep if kind != "channel" else _channel_mask(keep, getattr(mod, name))
        has_bias = isinstance(getattr(mod, "bias", None), torch.Tensor)
        if reparametrize:
            apply_keep_mask(mod, name, w_keep)
            if kind == "channel" and has_bias:
                apply_keep_mask(mod, "bias", keep.clone())
        else:
            with torch.no_grad():
                getattr(mod, name).mul_(w_keep)
                if kind == "channel" and has_bias:
                    mod.bias.mul_(keep)
        out[fqn] = _sparsity(getattr(mod, name))
    return out


def _channel_mask(keep_rows: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return keep_rows.reshape(-1, *([1] * (w.dim() - 1))).expand(w.shape).contiguous()


def _sparsity(t: torch.Tensor) -> float:
    return 1.0 - float(t.count_nonzero()) / max(t.numel(), 1)
