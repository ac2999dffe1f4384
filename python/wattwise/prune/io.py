"""Save/load of pruned, sparse and shrunk models as a state_dict plus a small JSON-friendly
metadata dict: rebuild the original architecture, call load_(model, state_dict, metadata)
and it is restructured to match before the tensors are loaded. Nothing is pickled."""

from __future__ import annotations

import torch
from torch import nn

from ._validate import check_module
from .compat import BasePruningMethod, PruningContainer
from .magnitude import MaskHook
from .sparse import NMSparseLinear, SparseLinear, _set_submodule

_RESIZABLE = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.LayerNorm,
)
VERSION = 1


def metadata(model: nn.Module) -> dict:
    """{"version", "pruned": {fqn: [tensor names]}, "sparse": {fqn: {...}}, "shapes": {fqn: {...}}}
    where shapes lists the constructor sizes of resizable layers (so shrunk ones can be
    rebuilt). Plain ints, strings and lists only."""
    check_module(model, arg="model")
    meta = {"version": VERSION, "pruned": {}, "sparse": {}, "shapes": {}}
    for fqn, mod in model.named_modules():
        names = [
            h._tensor_name
            for h in mod._forward_pre_hooks.values()
            if isinstance(h, (BasePruningMethod, PruningContainer))
        ]
        if names:
            meta["pruned"][fqn] = sorted(set(names))
        if isinstance(mod, SparseLinear):
            meta["sparse"][fqn] = {
                "format": "csr",
                "in_features": mod.in_features,
                "out_features": mod.out_features,
                "bias": mod.bias is not None,
            }
        elif isinstance(mod, NMSparseLinear):
            meta["sparse"][fqn] = {
                "format": f"{mod.n}:{mod.m}",
                "in_features": mod.in_features,
                "out_features": mod.out_features,
                "bias": mod.bias is not None,
            }
        elif isinstance(mod, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            w = _tensor(mod, "weight")
            meta["shapes"][fqn] = {"in": int(w.shape[1]), "out": int(w.shape[0])}
        elif isinstance(mod, _RESIZABLE):
            w = _tensor(mod, "weight")
            meta["shapes"][fqn] = {} if w is None else {"features": int(w.shape[0])}
    return meta


def _tensor(mod, name):
    t = getattr(mod, name + "_orig", None)
    return t if t is not None else getattr(mod, name, None)


def save(model: nn.Module, path) -> None:
    """torch.save({"state_dict", "metadata"}); load with torch.load(path, weights_only=True)."""
    torch.save({"state_dict": model.state_dict(), "metadata": metadata(model)}, path)


def _resize(mod: nn.Module, fqn: str, shapes: dict) -> None:
    if isinstance(mod, nn.Linear):
        mod.in_features, mod.out_features = shapes["in"], shapes["out"]
        wshape = (shapes["out"], shapes["in"])
    elif isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        if mod.groups != 1:
            return
        mod.in_channels, mod.out_channels = shapes["in"], shapes["out"]
        wshape = (shapes["out"], shapes["in"], *mod.kernel_size)
    else:
        if not shapes:
            return
        n = shapes["features"]
        if isinstance(mod, nn.LayerNorm):
            mod.normalized_shape = (n,)
        else:
            mod.num_features = n
        for attr in ("running_mean", "running_var"):
            if getattr(mod, attr, None) is not None:
                setattr(mod, attr, torch.zeros(n))
        wshape = (n,)
    with torch.no_grad():
        if getattr(mod, "weight", None) is not None and tuple(mod.weight.shape) != wshape:
            mod.weight = nn.Parameter(torch.zeros(wshape, dtype=mod.weight.dtype))
        if getattr(mod, "bias", None) is not None and mod.bias.shape[0] != wshape[0]:
            mod.bias = nn.Parameter(torch.zeros(wshape[0], dtype=mod.bias.dtype))


def load_(model: nn.Module, state_dict: dict, meta: dict, strict: bool = True) -> nn.Module:
    """Restructures a freshly built (dense, unpruned) `model` as `meta` describes (resized
    layers, pruning reparametrizations, sparse modules), then loads `state_dict` into it."""
    check_module(model, arg="model")
    if not isinstance(meta, dict) or meta.get("version") != VERSION:
        raise ValueError(
            f"metadata must be a dict from wattwise.prune.metadata (version {VERSION}), "
            f"got {meta!r:.200}"
        )
    if not isinstance(state_dict, dict):
        raise TypeError(f"state_dict must be a dict, got {type(state_dict).__name__}")
    modules = dict(model.named_modules())
    for section in ("shapes", "sparse", "pruned"):
        for fqn in meta.get(section, {}):
            if fqn not in modules:
                raise ValueError(f"metadata names layer {fqn!r}, which the model does not have")
    for fqn, shapes in meta.get("shapes", {}).items():
        _resize(modules[fqn], fqn, shapes)
    for fqn, info in meta.get("sparse", {}).items():
        if info["format"] == "csr":
            new = SparseLinear(info["in_features"], info["out_features"], 0, info["bias"], fqn)
        else:
            n, m = (int(v) for v in info["format"].split(":"))
            new = NMSparseLinear(info["in_features"], info["out_features"], n, m, info["bias"], fqn)
        _set_submodule(model, fqn, new)
    for fqn, names in meta.get("pruned", {}).items():
        mod = model.get_submodule(fqn)
        for name in names:
            orig = mod._parameters.pop(name)
            mod.register_parameter(name + "_orig", orig)
            mask = state_dict.get(f"{fqn}.{name}_mask" if fqn else f"{name}_mask")
            mod.register_buffer(
                name + "_mask",
                torch.ones_like(orig, dtype=mask.dtype if mask is not None else torch.bool),
            )
            mod.register_forward_pre_hook(MaskHook(name))
    model.load_state_dict(state_dict, strict=strict)
    for fqn, names in meta.get("pruned", {}).items():
        mod = model.get_submodule(fqn)
        for name in names:
            setattr(mod, name, getattr(mod, name + "_orig") * getattr(mod, name + "_mask"))
    return model
