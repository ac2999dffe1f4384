"""Sensitivity analysis: prune one layer at a time, measure a user metric, and recommend
per-layer amounts for a target overall sparsity."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from . import _ops
from .compat import effective_tensor
from .magnitude import select_layers


@dataclass
class SensitivityResult:
    """`baseline`: metric of the unmodified model; `scores[fqn][amount]`: metric with only that
    layer pruned to `amount` (higher is better); `params[fqn]`: weights in the layer."""

    baseline: float
    scores: dict[str, dict[float, float]] = field(default_factory=dict)
    params: dict[str, int] = field(default_factory=dict)

    def recommend(self, target_sparsity: float) -> dict[str, float]:
        """Per-layer amounts reaching `target_sparsity` of the analysed weights: start at 0 and
        repeatedly raise the layer whose next amount costs the least metric per pruned weight
        (cost measured as the drop from the baseline)."""
        if not isinstance(target_sparsity, (int, float)) or not 0 <= target_sparsity <= 1:
            raise ValueError(f"target_sparsity must be in [0, 1], got {target_sparsity!r}")
        total = sum(self.params.values())
        amounts = {f: 0.0 for f in self.scores}
        levels = {f: sorted(s) for f, s in self.scores.items()}

        def drop(f, a):
            return 0.0 if a == 0 else max(0.0, self.baseline - self.scores[f][a])

        def pruned():
            return sum(amounts[f] * self.params[f] for f in amounts)

        while pruned() < target_sparsity * total - 1e-9:
            best, best_cost = None, math.inf
            for f, lv in levels.items():
                higher = [a for a in lv if a > amounts[f]]
                if not higher:
                    continue
                nxt = higher[0]
                gained = (nxt - amounts[f]) * self.params[f]
                cost = (drop(f, nxt) - drop(f, amounts[f])) / max(gained, 1)
                if cost < best_cost:
                    best, best_cost = (f, nxt), cost
            if best is None:
                raise ValueError(
                    f"target_sparsity={target_sparsity} is above what the analysed amounts reach "
                    f"({pruned() / max(total, 1):.3f}); analyse larger amounts"
                )
            amounts[best[0]] = best[1]
        return amounts


@torch.no_grad()
def sensitivity(
    model: nn.Module,
    evaluate: Callable[[nn.Module], float],
    amounts=(0.25, 0.5, 0.75, 0.9),
    filter_fn: Callable[[nn.Module, str], bool] | None = None,
    progress: bool = True,
) -> SensitivityResult:
    """Prunes each selected layer alone (unstructured magnitude) to each of `amounts`, calls
    `evaluate(model)` (higher is better) and restores the layer. The model is unchanged
    afterwards. Use SensitivityResult.recommend(target) for per-layer amounts."""
    if not callable(evaluate):
        raise TypeError(f"evaluate must be callable(model) -> float, got {evaluate!r}")
    try:
        amounts = sorted(float(a) for a in amounts)
    except (TypeError, ValueError):
        raise TypeError(f"amounts must be an iterable of floats, got {amounts!r}") from None
    for a in amounts:
        if not 0 <= a <= 1:
            raise ValueError(f"amounts must lie in [0, 1], got {a}")
    layers = select_layers(model, filter_fn)

    def run() -> float:
        v = evaluate(model)
        if isinstance(v, torch.Tensor):
            v = v.item()
        if not isinstance(v, (int, float)):
            raise TypeError(f"evaluate must return a number, got {type(v).__name__}")
        return float(v)

    result = SensitivityResult(baseline=run())
    bar = tqdm(total=len(layers) * len(amounts), desc="sensitivity", disable=not progress)
    for fqn, mod in layers:
        param = mod._parameters.get("weight_orig", mod._parameters.get("weight"))
        saved = param.detach().clone()
        result.params[fqn] = param.numel()
        result.scores[fqn] = {}
        for a in amounts:
            w = effective_tensor(mod, "weight").float()
            keep = _ops.keep_masks([w], round(a * w.numel()))[0]
            param.mul_(keep.to(param.dtype))
            if hasattr(mod, "weight_mask"):
                mod.weight = param * mod.weight_mask
            else:
                mod.weight = param
            try:
                result.scores[fqn][a] = run()
            finally:
                param.copy_(saved)
            bar.update(1)
        if hasattr(mod, "weight_mask"):
            mod.weight = param * mod.weight_mask
    bar.close()
    return result
