"""Exit criteria: names, codes shared with the C++ core, and a pure-torch reference of the
per-sample confidence (used by calibration, where every exit's logits are at hand)."""

from __future__ import annotations

import math

import torch

CRITERIA = {"max_prob": 0, "entropy": 1, "margin": 2, "patience": 3}


def criterion_code(criterion: str) -> int:
    if not isinstance(criterion, str) or criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {sorted(CRITERIA)}, got {criterion!r}")
    return CRITERIA[criterion]


def check_threshold(criterion: str, value: float, where: str) -> None:
    """Raises ValueError unless ``value`` is a valid threshold of ``criterion`` (see
    ``confidence``); ``where`` names the exit in the message."""
    v = float(value)
    if math.isnan(v):
        raise ValueError(f"{where}: threshold must not be NaN")
    if math.isinf(v):
        return
    if criterion == "patience":
        if v < 0 or v != math.floor(v):
            raise ValueError(
                f"{where}: a patience threshold must be a whole number >= 0 (or +-inf), got {v}"
            )
    elif not 0.0 <= v <= 1.0:
        raise ValueError(
            f"{where}: a {criterion} threshold must lie in [0, 1] (or be +-inf), got {v}"
        )


def confidence(exit_logits: list[torch.Tensor], criterion: str, temperatures) -> torch.Tensor:
    """Per-exit, per-sample confidence [exits, N] as the C++ decision computes it.

    max_prob: max softmax probability; entropy: 1 - H / log(C); margin: p_top1 - p_top2;
    patience: how many consecutive earlier exits agree with this exit's argmax. A sample
    leaves at the first exit whose confidence is >= that exit's threshold.
    """
    criterion_code(criterion)
    out = []
    prev = None
    streak = None
    for k, logits in enumerate(exit_logits):
        z = logits.float() / float(temperatures[k])
        if criterion == "patience":
            pred = z.argmax(1)
            if prev is None:
                streak = torch.zeros_like(pred)
            else:
                streak = torch.where(pred == prev, streak + 1, torch.zeros_like(pred))
            prev = pred
            out.append(streak.float())
            continue
        p = z.softmax(1)
        if criterion == "max_prob":
            out.append(p.max(1).values)
        elif criterion == "margin":
            if p.shape[1] == 1:
                out.append(torch.ones(p.shape[0]))
            else:
                top = p.topk(2, dim=1).values
                out.append(top[:, 0] - top[:, 1])
        else:
            c = p.shape[1]
            logp = z.log_softmax(1)
            h = -(p * torch.where(p > 0, logp, torch.zeros_like(logp))).sum(1)
            out.append(1 - h / math.log(c) if c > 1 else torch.ones(p.shape[0]))
    return torch.stack(out)
