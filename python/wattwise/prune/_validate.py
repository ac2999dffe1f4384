"""Argument checks shared by the pruning API: every error names the argument, the layer and
the offending value."""

from __future__ import annotations

import numbers

import torch
from torch import nn


def layer_label(module: nn.Module, fqn: str | None = None) -> str:
    return f"layer {fqn!r} ({type(module).__name__})" if fqn else f"layer {type(module).__name__}"


def check_module(module, fqn: str | None = None, arg: str = "module") -> None:
    if not isinstance(module, nn.Module):
        raise TypeError(f"{arg} must be a torch.nn.Module, got {type(module).__name__}")


def pruned_tensor(module: nn.Module, name: str, fqn: str | None = None) -> torch.Tensor:
    """The tensor `name` of `module` (its `<name>_orig` when already pruned), checked to exist
    and to be floating point."""
    if not isinstance(name, str):
        raise TypeError(
            f"{layer_label(module, fqn)}: name must be a str, got {type(name).__name__}"
        )
    t = getattr(module, name + "_orig", None)
    if t is None:
        t = getattr(module, name, None)
    if not isinstance(t, torch.Tensor):
        raise ValueError(
            f"{layer_label(module, fqn)}: has no parameter or buffer named {name!r}"
            f" (it has {[n for n, _ in module.named_parameters(recurse=False)]})"
        )
    if not t.is_floating_point():
        raise TypeError(
            f"{layer_label(module, fqn)}: {name!r} must be floating point to be pruned, "
            f"got {t.dtype}"
        )
    return t


def check_amount(amount, count: int, where: str) -> int:
    """Number of entries to prune for a torch-style amount (float fraction or int count)."""
    if isinstance(amount, bool) or not isinstance(amount, numbers.Real):
        raise TypeError(f"{where}: amount must be a float or an int, got {amount!r}")
    if isinstance(amount, numbers.Integral):
        if amount < 0 or amount > count:
            raise ValueError(
                f"{where}: an int amount is a count and must be in [0, {count}], got {amount}"
            )
        return int(amount)
    if not (0.0 <= float(amount) <= 1.0):
        raise ValueError(f"{where}: a float amount must be in [0, 1], got {amount}")
    # torch.nn.utils.prune rounds the same way (round half to even).
    return round(float(amount) * count)
