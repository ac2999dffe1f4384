"""Python side of torch.ops.wattwise.exit_step: the fake kernel (data-dependent output size)."""

from __future__ import annotations

import torch

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
