"""Python side of torch.ops.wattwise.exit_step: the fake kernel (data-dependent output size);
and FLOP formulas for wattwise's quantized Linear ops, so that ``net.stats`` counts
quantized stages (torch.utils.flop_counter knows only aten ops)."""

from __future__ import annotations

import torch
from torch.utils.flop_counter import flop_registry, register_flop_formula

from .._extension import _C  # noqa: F401  (the op must be registered before its fake)


@torch.library.register_fake("wattwise::exit_step")
def _exit_step_fake(
    logits,
    positions,
    out,
    exit_index,
    stage,
    criterion,
    threshold,
    temperature,
    prev_pred,
    prev_streak,
):
    torch._check(logits.dim() == 2, lambda: "exit_step: logits must be 2-D")
    n = torch.library.get_ctx().new_dynamic_size()
    return tuple(positions.new_empty((n,)) for _ in range(4))


def _linear_flop(input_shape, qweight_shape, *args, out_shape=None, **kwargs) -> int:
    # Same count as an fp32 Linear (2 * M * K * N): the weights are dequantized on the fly.
    m = 1
    for d in input_shape[:-1]:
        m *= d
    return 2 * m * input_shape[-1] * qweight_shape[0]


for _name in ("int8_weight_only_linear", "int4_weight_only_linear"):
    if hasattr(torch.ops.wattwise, _name):
        _op = getattr(torch.ops.wattwise, _name)
        if _op not in flop_registry:
            register_flop_formula(_op)(_linear_flop)
