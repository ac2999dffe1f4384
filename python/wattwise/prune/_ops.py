"""Python side of the torch.ops.wattwise pruning ops: fake kernels and autograd for the sparse
Linear ops, and the magnitude selection helpers the rest of the pillar builds on."""

from __future__ import annotations

import torch

from .._extension import _C  # noqa: F401  (the ops must be registered before the fakes)
from .._linear import linear_grads

_ops = torch.ops.wattwise


@torch.library.register_fake("wattwise::sparse_csr_linear")
def _csr_linear_fake(input, row_ptr, col, values, in_features, bias):
    torch._check(input.shape[-1] == in_features, lambda: "input/in_features mismatch")
    return input.new_empty([*input.shape[:-1], row_ptr.shape[0] - 1])


@torch.library.register_fake("wattwise::sparse_nm_linear")
def _nm_linear_fake(input, values, idx, n, m, bias):
    torch._check(input.shape[-1] == values.shape[1] // n * m, lambda: "input/values mismatch")
    return input.new_empty([*input.shape[:-1], values.shape[0]])


def csr_to_dense(row_ptr, col, values, in_features: int) -> torch.Tensor:
    """Dense [out, in] weight of the CSR16 format (pure torch, any device)."""
    n = row_ptr.numel() - 1
    # searchsorted keeps the sizes static (repeat_interleave's are data-dependent), so
    # torch.compile can trace the backward formula.
    pos = torch.arange(values.numel(), device=values.device)
    rows = torch.searchsorted(row_ptr[1:].to(torch.int64), pos, right=True)
    dense = values.new_zeros((n, in_features))
    dense[rows, col.to(torch.int64) & 0xFFFF] = values
    return dense


def nm_to_dense(values, idx, n: int, m: int) -> torch.Tensor:
    """Dense [out, in] weight of the N:M format (pure torch, any device)."""
    rows, kept = values.shape
    groups = kept // n
    dense = values.new_zeros((rows, groups, m))
    dense.scatter_(2, idx.to(torch.int64).reshape(rows, groups, n), values.reshape(rows, groups, n))
    return dense.reshape(rows, groups * m)


def _csr_setup(ctx, inputs, output):
    _, row_ptr, col, values, in_features, bias = inputs
    ctx.save_for_backward(row_ptr, col, values)
    ctx.in_features = in_features
    ctx.has_bias = bias is not None


def _csr_backward(ctx, grad_out):
    row_ptr, col, values = ctx.saved_tensors
    weight = csr_to_dense(row_ptr, col, values, ctx.in_features)
    gi, gb = linear_grads(ctx, grad_out, weight)
    return gi, None, None, None, None, gb


def _nm_setup(ctx, inputs, output):
    _, values, idx, n, m, bias = inputs
    ctx.save_for_backward(values, idx)
    ctx.nm = (n, m)
    ctx.has_bias = bias is not None


def _nm_backward(ctx, grad_out):
    values, idx = ctx.saved_tensors
    weight = nm_to_dense(values, idx, *ctx.nm)
    gi, gb = linear_grads(ctx, grad_out, weight)
    return gi, None, None, None, None, gb


# Gradients reach the input and the bias (fine-tuning layers around a sparse one); the stored
# non-zeros are fixed.
torch.library.register_autograd(
    "wattwise::sparse_csr_linear", _csr_backward, setup_context=_csr_setup
)
torch.library.register_autograd("wattwise::sparse_nm_linear", _nm_backward, setup_context=_nm_setup)


def keep_masks(
    scores: list[torch.Tensor], k: int, counts: list | None = None
) -> list[torch.Tensor]:
    """Bool keep-masks that prune exactly the k smallest-magnitude entries over all `scores`
    together (ties broken by tensor order, then index order), without concatenating them.
    `counts`, when given, receives the number pruned in each tensor."""
    flat = [s.detach().reshape(-1) for s in scores]
    flat = [s if s.dtype == torch.float32 else s.float() for s in flat]
    bits, ties = _ops.prune_kth_magnitude(flat, int(k))
    out = []
    for s, f in zip(scores, flat, strict=True):
        keep, ties, pruned = _ops.prune_magnitude_mask(f, bits, ties)
        out.append(keep.reshape(s.shape))
        if counts is not None:
            counts.append(pruned)
    return out


def zero_smallest_(tensors: list[torch.Tensor], k: int) -> list[int]:
    """Zeroes the k smallest-magnitude entries over all contiguous fp32 `tensors` in place;
    returns how many were zeroed in each."""
    bits, ties = _ops.prune_kth_magnitude(tensors, int(k))
    counts = []
    for t in tensors:
        ties, pruned = _ops.prune_magnitude_zero_(t, bits, ties)
        counts.append(pruned)
    return counts
