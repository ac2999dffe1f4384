"""Training multi-exit networks: the joint loss over all exits with weight schedules,
self-distillation from the final head, and freezing the backbone to train heads only."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def exit_weights(num_exits: int, schedule: str = "uniform", progress: float = 1.0) -> list[float]:
    """Loss weights per exit (they sum to ``num_exits`` for "uniform" and grow with depth
    otherwise). ``schedule``:

    - "uniform": all 1 (BranchyNet's plain sum);
    - "linear": exit k weighs (k + 1) / num_exits (PABEE: deeper heads count more);
    - "sdn": Shallow-Deep Networks' ramp: early exits start at 0.01 and grow linearly with
      ``progress`` (0 at the start of training, 1 at the end) to (k + 1) / num_exits; the
      final exit stays 1.
    """
    if not isinstance(num_exits, int) or num_exits < 1:
        raise ValueError(f"exit_weights: num_exits must be an int >= 1, got {num_exits!r}")
    if not 0.0 <= float(progress) <= 1.0:
        raise ValueError(f"exit_weights: progress must lie in [0, 1], got {progress}")
    if schedule == "uniform":
        return [1.0] * num_exits
    if schedule == "linear":
        return [(k + 1) / num_exits for k in range(num_exits)]
    if schedule == "sdn":
        w = [0.01 + progress * ((k + 1) / num_exits - 0.01) for k in range(num_exits)]
        w[-1] = 1.0
        return w
    raise ValueError(
        f"exit_weights: schedule must be 'uniform', 'linear' or 'sdn', got {schedule!r}"
    )


def _check_logits(exit_logits) -> list[torch.Tensor]:
    if isinstance(exit_logits, torch.Tensor) or not isinstance(exit_logits, Sequence):
        raise TypeError(
            "exit_logits must be the list of every exit's logits (net(x) in train mode), got "
            f"{type(exit_logits).__name__}"
        )
    if len(exit_logits) == 0:
        raise ValueError("exit_logits is empty")
    for k, z in enumerate(exit_logits):
        if not isinstance(z, torch.Tensor) or z.dim() != 2:
            raise ValueError(
                f"exit_logits[{k}] must be 2-D logits [batch, classes], got "
                f"{tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__}"
            )
    return list(exit_logits)


def joint_loss(
    exit_logits: Sequence[torch.Tensor],
    target: torch.Tensor,
    weights: Sequence[float] | str | None = None,
    *,
    progress: float = 1.0,
    distill: float = 0.0,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Weighted sum of every exit's cross-entropy, divided by the weights' sum.

    ``weights``: a list (one per exit), a schedule name for ``exit_weights`` (with
    ``progress``), or None (uniform). ``distill`` > 0 adds self-distillation: each early
    exit also matches the final head's softened distribution,
    ``distill * distillation_loss(...)``.
    """
    logits = _check_logits(exit_logits)
    n = len(logits)
    if weights is None or isinstance(weights, str):
        w = exit_weights(n, weights or "uniform", progress)
    else:
        w = [float(v) for v in weights]
        if len(w) != n:
            raise ValueError(f"joint_loss: need {n} weights (one per exit), got {len(w)}")
        if any(not math.isfinite(v) or v < 0 for v in w) or sum(w) <= 0:
            raise ValueError(f"joint_loss: weights must be finite, >= 0, not all 0; got {w}")
    total = sum(wk * F.cross_entropy(z, target) for wk, z in zip(w, logits, strict=True)) / sum(w)
    if distill:
        total = total + float(distill) * distillation_loss(logits, temperature)
    return total


def distillation_loss(
    exit_logits: Sequence[torch.Tensor], temperature: float = 2.0
) -> torch.Tensor:
    """Self-distillation: mean over early exits of KL(final || exit) on softmax(z / T),
    scaled by T^2 (Hinton et al.); the final head is the (detached) teacher."""
    logits = _check_logits(exit_logits)
    t = float(temperature)
    if not (math.isfinite(t) and t > 0):
        raise ValueError(
            f"distillation_loss: temperature must be finite and > 0, got {temperature}"
        )
    if len(logits) < 2:
        return logits[0].new_zeros(())
    teacher = F.log_softmax(logits[-1].detach() / t, dim=1)
    terms = [
        F.kl_div(F.log_softmax(z / t, dim=1), teacher, reduction="batchmean", log_target=True)
        for z in logits[:-1]
    ]
    return torch.stack(terms).mean() * t * t


def freeze_backbone_(net: nn.Module, train_final_head: bool = False) -> nn.Module:
    """Heads-only training: stops gradients to every stage (and to the final head unless
    ``train_final_head``), leaving the early heads trainable. Returns ``net``."""
    if not hasattr(net, "stages") or not hasattr(net, "heads"):
        raise TypeError(f"freeze_backbone_: expected an EarlyExitNetwork, got {type(net).__name__}")
    for p in net.stages.parameters():
        p.requires_grad_(False)
    for k, head in enumerate(net.heads):
        trainable = k < len(net.heads) - 1 or train_final_head
        for p in head.parameters():
            p.requires_grad_(trainable)
    return net
