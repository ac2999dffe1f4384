"""torch.nn.utils.prune, with the same names and semantics: `<name>_orig` parameter, `<name>_mask`
buffer and a forward pre-hook. Masks are computed by torch's own pruning methods, so they are
identical to torch's and models move freely between the two modules; these wrappers add
argument checks that name the layer and the value."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import prune as _tp

from ._validate import check_amount, check_module, layer_label, pruned_tensor

BasePruningMethod = _tp.BasePruningMethod
PruningContainer = _tp.PruningContainer
Identity = _tp.Identity
RandomUnstructured = _tp.RandomUnstructured
L1Unstructured = _tp.L1Unstructured
RandomStructured = _tp.RandomStructured
LnStructured = _tp.LnStructured
CustomFromMask = _tp.CustomFromMask


def _remaining(module: nn.Module, name: str) -> int:
    # torch applies an amount to the entries a previous pruning left, not to all of them.
    mask = getattr(module, name + "_mask", None)
    t = pruned_tensor(module, name)
    return int(mask.count_nonzero()) if mask is not None else t.numel()


def _check_importance(module, name, importance_scores, t: torch.Tensor):
    if importance_scores is None:
        return
    if not isinstance(importance_scores, torch.Tensor):
        raise TypeError(
            f"{layer_label(module)}: importance_scores must be a Tensor, "
            f"got {type(importance_scores).__name__}"
        )
    if importance_scores.shape != t.shape:
        raise ValueError(
            f"{layer_label(module)}: importance_scores shape {tuple(importance_scores.shape)} "
            f"must match {name!r} shape {tuple(t.shape)}"
        )


def identity(module: nn.Module, name: str) -> nn.Module:
    check_module(module)
    pruned_tensor(module, name)
    return _tp.identity(module, name)


def random_unstructured(module: nn.Module, name: str, amount) -> nn.Module:
    """Prunes `amount` (fraction or count) of `name`'s remaining entries at random."""
    check_module(module)
    pruned_tensor(module, name)
    check_amount(amount, _remaining(module, name), f"{layer_label(module)} {name!r}")
    return _tp.random_unstructured(module, name, amount)


def l1_unstructured(module: nn.Module, name: str, amount, importance_scores=None) -> nn.Module:
    """Prunes the `amount` smallest-|w| remaining entries of `name` (torch's L1Unstructured)."""
    check_module(module)
    t = pruned_tensor(module, name)
    check_amount(amount, _remaining(module, name), f"{layer_label(module)} {name!r}")
    _check_importance(module, name, importance_scores, t)
    return _tp.l1_unstructured(module, name, amount, importance_scores=importance_scores)


def _check_dim(module, name, t: torch.Tensor, dim) -> None:
    if isinstance(dim, bool) or not isinstance(dim, int) or not -t.dim() <= dim < t.dim():
        raise ValueError(
            f"{layer_label(module)}: dim must be an int in [{-t.dim()}, {t.dim()}) for "
            f"{name!r} of shape {tuple(t.shape)}, got {dim!r}"
        )


def random_structured(module: nn.Module, name: str, amount, dim: int) -> nn.Module:
    check_module(module)
    t = pruned_tensor(module, name)
    _check_dim(module, name, t, dim)
    check_amount(amount, t.shape[dim], f"{layer_label(module)} {name!r}")
    return _tp.random_structured(module, name, amount, dim)


def ln_structured(
    module: nn.Module, name: str, amount, n, dim: int, importance_scores=None
) -> nn.Module:
    """Prunes whole slices along `dim` with the smallest L`n` norm (torch's LnStructured)."""
    check_module(module)
    t = pruned_tensor(module, name)
    _check_dim(module, name, t, dim)
    check_amount(amount, t.shape[dim], f"{layer_label(module)} {name!r}")
    valid_n = n in ("fro", "nuc") or (
        isinstance(n, (int, float)) and not isinstance(n, bool) and n > 0
    )
    if not valid_n:
        raise ValueError(f"{layer_label(module)}: n must be a positive number or 'fro', got {n!r}")
    _check_importance(module, name, importance_scores, t)
    return _tp.ln_structured(module, name, amount, n, dim, importance_scores=importance_scores)


def global_unstructured(parameters, pruning_method, importance_scores=None, **kwargs) -> None:
    """Prunes `amount` of all listed (module, name) entries together, as torch does."""
    try:
        parameters = list(parameters)
    except TypeError:
        raise TypeError(
            f"parameters must be an iterable of (module, name) pairs, got "
            f"{type(parameters).__name__}"
        ) from None
    total = 0
    for i, pair in enumerate(parameters):
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise TypeError(f"parameters[{i}] must be a (module, name) pair, got {pair!r}")
        check_module(pair[0], arg=f"parameters[{i}][0]")
        total += _remaining(pair[0], pair[1])
    if not (isinstance(pruning_method, type) and issubclass(pruning_method, BasePruningMethod)):
        raise TypeError(
            f"pruning_method must be a BasePruningMethod subclass such as L1Unstructured, "
            f"got {pruning_method!r}"
        )
    if "amount" in kwargs:
        check_amount(kwargs["amount"], total, "global_unstructured")
    if importance_scores is not None and not isinstance(importance_scores, dict):
        raise TypeError(
            f"importance_scores must be a dict or None, got {type(importance_scores).__name__}"
        )
    _tp.global_unstructured(parameters, pruning_method, importance_scores, **kwargs)


def custom_from_mask(module: nn.Module, name: str, mask: torch.Tensor) -> nn.Module:
    """Prunes the entries of `name` where `mask` is 0."""
    check_module(module)
    t = pruned_tensor(module, name)
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{layer_label(module)}: mask must be a Tensor, got {type(mask).__name__}")
    if mask.shape != t.shape:
        raise ValueError(
            f"{layer_label(module)}: mask shape {tuple(mask.shape)} must match {name!r} shape "
            f"{tuple(t.shape)}"
        )
    return _tp.custom_from_mask(module, name, mask)


def remove(module: nn.Module, name: str) -> nn.Module:
    """Makes the pruning permanent: `name` becomes a plain parameter holding orig * mask."""
    check_module(module)
    if not is_pruned_tensor(module, name):
        raise ValueError(f"{layer_label(module)}: parameter {name!r} is not pruned")
    return _tp.remove(module, name)


def is_pruned(module: nn.Module) -> bool:
    check_module(module)
    return _tp.is_pruned(module)


def is_pruned_tensor(module: nn.Module, name: str) -> bool:
    return any(
        isinstance(h, BasePruningMethod) and h._tensor_name == name
        for h in module._forward_pre_hooks.values()
    ) or any(
        isinstance(h, PruningContainer) and h._tensor_name == name
        for h in module._forward_pre_hooks.values()
    )


def effective_tensor(module: nn.Module, name: str) -> torch.Tensor:
    """`name` as the forward pass sees it: orig * mask when pruned (torch or wattwise)."""
    orig = getattr(module, name + "_orig", None)
    mask = getattr(module, name + "_mask", None)
    if orig is not None and mask is not None:
        return orig.detach() * mask
    return getattr(module, name).detach()
