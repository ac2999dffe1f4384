"""Python side of the torch.ops.wattwise quantization ops: fake kernels for torch.compile and
meta tensors, autograd formulas, and pure-torch dequantization for non-CPU devices."""

from __future__ import annotations

import torch

from .._extension import _C  # noqa: F401  (the ops must be registered before the fakes)
from .._linear import linear_grads

_ops = torch.ops.wattwise


def _linear_out_shape(input: torch.Tensor, qweight: torch.Tensor) -> list:
    return [*input.shape[:-1], qweight.shape[0]]


@torch.library.register_fake("wattwise::int8_weight_only_quantize")
def _int8_quantize_fake(weight):
    torch._check(weight.dim() == 2, lambda: "weight must be 2-D")
    n, k = weight.shape
    return weight.new_empty((n, k), dtype=torch.int8), weight.new_empty((n,))


@torch.library.register_fake("wattwise::int8_weight_only_dequantize")
def _int8_dequantize_fake(qweight, scales):
    return qweight.new_empty(qweight.shape, dtype=torch.float32)


@torch.library.register_fake("wattwise::int8_weight_only_linear")
def _int8_linear_fake(input, qweight, scales, bias):
    torch._check(input.shape[-1] == qweight.shape[1], lambda: "input/qweight shape mismatch")
    return input.new_empty(_linear_out_shape(input, qweight))


@torch.library.register_fake("wattwise::int4_weight_only_quantize")
def _int4_quantize_fake(weight, group_size):
    torch._check(weight.dim() == 2, lambda: "weight must be 2-D")
    n, k = weight.shape
    return (
        weight.new_empty((n, k // 2), dtype=torch.uint8),
        weight.new_empty((n, k // group_size), dtype=torch.float16),
    )


@torch.library.register_fake("wattwise::int4_weight_only_dequantize")
def _int4_dequantize_fake(qweight, scales, group_size):
    return qweight.new_empty((qweight.shape[0], qweight.shape[1] * 2), dtype=torch.float32)


@torch.library.register_fake("wattwise::int4_weight_only_linear")
def _int4_linear_fake(input, qweight, scales, group_size, bias):
    torch._check(input.shape[-1] == qweight.shape[1] * 2, lambda: "input/qweight shape mismatch")
    return input.new_empty(_linear_out_shape(input, qweight))


def _int8_linear_setup(ctx, inputs, output):
    _, qweight, scales, bias = inputs
    ctx.save_for_backward(qweight, scales)
    ctx.has_bias = bias is not None


def _int8linear_grads(ctx, grad_out):
    qweight, scales = ctx.saved_tensors
    weight = _ops.int8_weight_only_dequantize(qweight, scales)
    grad_input, grad_bias = linear_grads(ctx, grad_out, weight)
    return grad_input, None, None, grad_bias


def _int4_linear_setup(ctx, inputs, output):
    _, qweight, scales, group_size, bias = inputs
    ctx.save_for_backward(qweight, scales)
    ctx.group_size = group_size
    ctx.has_bias = bias is not None


def _int4linear_grads(ctx, grad_out):
    qweight, scales = ctx.saved_tensors
    weight = _ops.int4_weight_only_dequantize(qweight, scales, ctx.group_size)
    grad_input, grad_bias = linear_grads(ctx, grad_out, weight)
    return grad_input, None, None, None, grad_bias


# Gradients flow to the input and bias (e.g. training heads or adapters on a quantized,
# frozen backbone); the quantized weight itself is not trainable.
torch.library.register_autograd(
    "wattwise::int8_weight_only_linear", _int8linear_grads, setup_context=_int8_linear_setup
)
torch.library.register_autograd(
    "wattwise::int4_weight_only_linear", _int4linear_grads, setup_context=_int4_linear_setup
)


def int8_dequantize_torch(qweight: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """Pure-torch dequantization of the int8 format (any device)."""
    return qweight.to(torch.float32) * scales.to(torch.float32)[:, None]


def int4_dequantize_torch(
    qweight: torch.Tensor, scales: torch.Tensor, group_size: int
) -> torch.Tensor:
    """Pure-torch dequantization of the int4 format (any device).

    Within each run of 32 inputs, byte j holds input j (low nibble) and j + 16 (high)."""
    n, half_k = qweight.shape
    blocks = qweight.reshape(n, half_k // 16, 16).to(torch.int16)
    lo = (blocks & 0x0F) - 8
    hi = (blocks >> 4) - 8
    q = torch.cat([lo, hi], dim=2).reshape(n, half_k * 2).to(torch.float32)
    d = scales.to(torch.float32).repeat_interleave(group_size, dim=1)
    return q * d
