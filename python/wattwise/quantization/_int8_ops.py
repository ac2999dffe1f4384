"""Fake kernels (torch.compile, meta tensors) and autograd formulas for the int8 x int8 and
half-precision-weight ops of torch.ops.wattwise."""

from __future__ import annotations

import torch

from .._extension import _C  # noqa: F401  (the ops must be registered before the fakes)
from .._linear import linear_grads

_ops = torch.ops.wattwise


def _out(input: torch.Tensor, n: int) -> torch.Tensor:
    return input.new_empty([*input.shape[:-1], n])


@torch.library.register_fake("wattwise::int8_dynamic_linear")
def _int8_dynamic_linear_fake(input, qweight, scales, bias):
    torch._check(input.shape[-1] == qweight.shape[1], lambda: "input/qweight shape mismatch")
    return _out(input, qweight.shape[0])


@torch.library.register_fake("wattwise::int8_static_linear")
def _int8_static_linear_fake(
    input, qweight, scales, wsum, input_scale, input_zero_point, quant_min, quant_max, bias
):
    torch._check(input.shape[-1] == qweight.shape[1], lambda: "input/qweight shape mismatch")
    return _out(input, qweight.shape[0])


@torch.library.register_fake("wattwise::int8_row_sums")
def _int8_row_sums_fake(qweight):
    return qweight.new_empty((qweight.shape[0],), dtype=torch.int32)


@torch.library.register_fake("wattwise::half_weight_linear")
def _half_weight_linear_fake(input, weight, bias):
    torch._check(input.shape[-1] == weight.shape[1], lambda: "input/weight shape mismatch")
    return _out(input, weight.shape[0])


# The gradient of a quantized-activation product with respect to its input is taken as
# that of the dequantized weight (the straight-through estimator for the rounding).
def _int8_setup(ctx, inputs, output):
    qweight, scales, bias = inputs[1], inputs[2], inputs[-1]
    ctx.save_for_backward(qweight, scales)
    ctx.has_bias = bias is not None
    ctx.n_inputs = len(inputs)


def _int8_backward(ctx, grad_out):
    qweight, scales = ctx.saved_tensors
    weight = _ops.int8_weight_only_dequantize(qweight, scales)
    grad_input, grad_bias = linear_grads(ctx, grad_out, weight)
    return (grad_input, *([None] * (ctx.n_inputs - 2)), grad_bias)


def _half_setup(ctx, inputs, output):
    _, weight, bias = inputs
    ctx.save_for_backward(weight)
    ctx.has_bias = bias is not None


def _half_backward(ctx, grad_out):
    (weight,) = ctx.saved_tensors
    grad_input, grad_bias = linear_grads(ctx, grad_out, weight.to(torch.float32))
    return grad_input, None, grad_bias


torch.library.register_autograd(
    "wattwise::int8_dynamic_linear", _int8_backward, setup_context=_int8_setup
)
torch.library.register_autograd(
    "wattwise::int8_static_linear", _int8_backward, setup_context=_int8_setup
)
torch.library.register_autograd(
    "wattwise::half_weight_linear", _half_backward, setup_context=_half_setup
)
