"""shrink_: physically removes pruned channels and fixes every dependent layer, giving a
smaller dense model. Channel dependencies are traced with torch.fx: each traced tensor carries
the ids of its channels; residual additions unify ids, concatenations join them, flatten
repeats them per position. A channel goes only when every layer producing it has a zero weight
row and zero bias, and nothing that cannot be resized depends on it."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

import torch
import torch.fx
import torch.nn.functional as F
from torch import nn
from torch.fx.passes.shape_prop import ShapeProp

from ._validate import check_module
from .compat import BasePruningMethod, PruningContainer, remove

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
# f(0) == 0, elementwise: a zero channel stays zero through them.
_ZERO_KEEPING_MODULES = (
    nn.ReLU,
    nn.ReLU6,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Identity,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.LeakyReLU,
    nn.Hardswish,
    nn.ELU,
    nn.Mish,
    nn.Hardtanh,
)
_ZERO_KEEPING_FUNCTIONS = {
    F.relu,
    torch.relu,
    F.relu6,
    F.gelu,
    F.silu,
    torch.tanh,
    F.dropout,
    F.leaky_relu,
    F.hardswish,
    F.elu,
    F.mish,
    F.hardtanh,
    torch.nn.functional.tanh,
}
_ZERO_KEEPING_METHODS = {"relu", "tanh", "contiguous", "clone"}
_POOL_MODULES = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
)
_POOL_FUNCTIONS = {
    F.max_pool1d,
    F.max_pool2d,
    F.max_pool3d,
    F.avg_pool1d,
    F.avg_pool2d,
    F.avg_pool3d,
    F.adaptive_avg_pool1d,
    F.adaptive_avg_pool2d,
    F.adaptive_avg_pool3d,
    F.adaptive_max_pool1d,
    F.adaptive_max_pool2d,
    F.adaptive_max_pool3d,
}
_ADD = {operator.add, operator.iadd, torch.add, operator.sub, torch.sub, operator.mul, torch.mul}


@dataclass
class _Chan:
    ids: list[int]
    dim: int  # non-negative index in the tensor's shape


@dataclass
class ShrinkPlan:
    """What shrink_ did (or would do): {fqn: (before, after)} channel counts of the layers whose
    outputs shrank, and the dead channels it kept, with why."""

    shrunk: dict[str, tuple[int, int]] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)


class _Graph:
    def __init__(self):
        self.parent: list[int] = []
        self.dead: list[bool] = []
        self.producer: list[str] = []
        self.blocked: dict[int, str] = {}
        self.inexact: dict[int, str] = {}

    def new(self, n: int, producer: str, dead: list[bool]) -> list[int]:
        start = len(self.parent)
        self.parent.extend(range(start, start + n))
        self.dead.extend(dead)
        self.producer.extend([producer] * n)
        return list(range(start, start + n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra
            self.dead[ra] = self.dead[ra] and self.dead[rb]


def _dead_rows(mod: nn.Module) -> list[bool]:
    w = mod.weight.detach()
    rows = w.reshape(w.shape[0], -1).count_nonzero(1) == 0
    if mod.bias is not None:
        rows &= mod.bias.detach() == 0
    return rows.tolist()


def _norm_dim(dim: int, ndim: int) -> int:
    return dim + ndim if dim < 0 else dim


def _shape(node) -> torch.Size | None:
    meta = node.meta.get("tensor_meta")
    return getattr(meta, "shape", None)


def _strip_pruning(model: nn.Module) -> None:
    for mod in model.modules():
        for hook in list(mod._forward_pre_hooks.values()):
            if isinstance(hook, (BasePruningMethod, PruningContainer)):
                remove(mod, hook._tensor_name)


def _analyse(model: nn.Module, example_inputs, exact: bool):
    inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    try:
        gm = torch.fx.symbolic_trace(model)
    except Exception as exc:  # fx raises many types for untraceable code
        raise ValueError(
            f"shrink_: torch.fx cannot trace the model ({exc}); shrink_ needs a "
            "traceable model (no data-dependent control flow)"
        ) from exc
    with torch.no_grad():
        ShapeProp(gm).propagate(*inputs)
    g = _Graph()
    chans: dict[torch.fx.Node, _Chan | None] = {}
    producers: dict[str, list[int]] = {}  # layer -> ids of its output channels
    consumers: dict[str, list[int]] = {}  # layer -> ids of its input channels/features
    norms: dict[str, list[int]] = {}

    def block(node, why: str):
        for a in node.all_input_nodes:
            c = chans.get(a)
            if c is not None:
                for i in c.ids:
                    g.blocked.setdefault(g.find(i), why)

    def record(table, name, ids):
        if name in table:
            if len(table[name]) != len(ids):
                raise ValueError(
                    f"shrink_: layer {name!r} is called on tensors of different widths"
                )
            for a, b in zip(table[name], ids, strict=True):
                g.union(a, b)
        else:
            table[name] = list(ids)

    for node in gm.graph.nodes:
        ins = [chans.get(a) for a in node.all_input_nodes]
        first = (
            chans.get(node.args[0])
            if node.args and isinstance(node.args[0], torch.fx.Node)
            else None
        )
        out: _Chan | None = None
        if node.op == "call_module":
            mod = gm.get_submodule(node.target)
            name = str(node.target)
            if isinstance(mod, _CONV) and mod.groups == 1:
                if first is not None and first.dim != 1:
                    block(
                        node,
                        f"{name!r} ({type(mod).__name__}) reads channels along dim {first.dim}",
                    )
                elif first is not None:
                    record(consumers, name, first.ids)
                ids = producers.get(name) or g.new(mod.out_channels, name, _dead_rows(mod))
                producers[name] = ids
                out = _Chan(ids, 1)
            elif isinstance(mod, nn.Linear):
                shape = _shape(node)
                if first is not None:
                    if first.dim != len(_shape(node.args[0])) - 1:
                        block(node, f"{name!r} (Linear) reads channels along dim {first.dim}")
                    else:
                        record(consumers, name, first.ids)
                ids = producers.get(name) or g.new(mod.out_features, name, _dead_rows(mod))
                producers[name] = ids
                out = _Chan(ids, len(shape) - 1)
            elif isinstance(mod, _BN) and first is not None and first.dim == 1:
                record(norms, name, first.ids)
                out = first
            elif (
                isinstance(mod, nn.LayerNorm)
                and first is not None
                and len(mod.normalized_shape) == 1
                and first.dim == len(_shape(node)) - 1
            ):
                record(norms, name, first.ids)
                if exact:
                    for i in first.ids:
                        g.inexact.setdefault(g.find(i), name)
                out = first
            elif isinstance(mod, _ZERO_KEEPING_MODULES) or (
                isinstance(mod, _POOL_MODULES) and first is not None and first.dim == 1
            ):
                out = first
            elif isinstance(mod, nn.Flatten):
                out = _flatten(first, node, mod.start_dim, mod.end_dim, block)
            elif any(c is not None for c in ins):
                block(node, f"{name!r} ({type(mod).__name__})")
        elif node.op in ("call_function", "call_method"):
            fn = node.target
            if (
                fn in _ZERO_KEEPING_FUNCTIONS
                or (node.op == "call_method" and fn in _ZERO_KEEPING_METHODS)
                or (fn in _POOL_FUNCTIONS and first is not None and first.dim == 1)
            ):
                out = first
            elif fn in _ADD or (node.op == "call_method" and fn in ("add", "sub", "mul", "add_")):
                tensors = [a for a in node.args if isinstance(a, torch.fx.Node)]
                cs = [chans.get(a) for a in tensors]
                shapes = [_shape(a) for a in tensors]
                if (
                    all(c is not None for c in cs)
                    and len({(len(c.ids), c.dim) for c in cs}) == 1
                    and len({tuple(s) for s in shapes}) == 1
                ):
                    for c in cs[1:]:
                        for a, b in zip(cs[0].ids, c.ids, strict=True):
                            g.union(a, b)
                    out = cs[0]
                elif any(c is not None for c in cs):
                    block(node, f"operation {node.name!r} ({getattr(fn, '__name__', fn)})")
            elif fn in (torch.cat, torch.concat):
                tensors = node.args[0] if node.args else node.kwargs["tensors"]
                dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
                cs = [chans.get(a) for a in tensors]
                nd = len(_shape(node))
                if all(c is not None and c.dim == _norm_dim(dim, nd) for c in cs):
                    out = _Chan([i for c in cs for i in c.ids], _norm_dim(dim, nd))
                elif any(c is not None for c in cs):
                    block(node, f"concatenation {node.name!r} along dim {dim}")
            elif fn in (torch.flatten,) or (node.op == "call_method" and fn == "flatten"):
                start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
                end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
                out = _flatten(first, node, start, end, block)
            elif node.op == "call_method" and fn in ("view", "reshape") and first is not None:
                out = _flatten(first, node, 1, -1, block) if _is_flatten(node) else None
                if out is None:
                    block(node, f"reshape {node.name!r}")
            elif fn in (getattr, operator.getitem) or (
                node.op == "call_method" and fn in ("size", "dim")
            ):
                out = None
                if fn is operator.getitem and first is not None:
                    block(node, f"indexing {node.name!r}")
            elif any(c is not None for c in ins):
                block(node, f"operation {node.name!r} ({getattr(fn, '__name__', fn)})")
        elif node.op == "output":
            for a in node.all_input_nodes:
                c = chans.get(a)
                if c is not None:
                    for i in c.ids:
                        g.blocked.setdefault(g.find(i), "model output")
        chans[node] = out
    return gm, g, producers, consumers, norms


def _is_flatten(node) -> bool:
    src, dst = _shape(node.args[0]), _shape(node)
    return src is not None and dst is not None and len(dst) == 2 and dst[0] == src[0]


def _flatten(first, node, start, end, block):
    if first is None:
        return None
    src = _shape(node.args[0])
    nd = len(src)
    start, end = _norm_dim(start, nd), _norm_dim(end, nd)
    if not (start <= first.dim <= end):
        return first if first.dim < start else _Chan(first.ids, first.dim - (end - start))
    if start != first.dim:
        block(node, f"flatten {node.name!r} puts channels behind other dims")
        return None
    inner = 1
    for d in range(first.dim + 1, end + 1):
        inner *= src[d]
    return _Chan([i for i in first.ids for _ in range(inner)], start)


def _removable(g: _Graph, strict: bool, exact: bool, plan: ShrinkPlan) -> set[int]:
    groups: dict[int, list[int]] = {}
    for i in range(len(g.parent)):
        groups.setdefault(g.find(i), []).append(i)
    gone = set()
    for r, members in sorted(groups.items()):
        if not g.dead[r]:
            continue
        layers = sorted({g.producer[i] for i in members})
        why = next((g.blocked[i] for i in [r, *members] if i in g.blocked), None)
        if why == "model output":
            plan.kept.append(f"pruned channel of {layers} kept: it is a model output")
            continue
        if why is not None:
            if strict:
                raise ValueError(
                    f"shrink_: pruned channels of layer(s) {layers} feed {why}, which shrink_ "
                    "cannot resize; unprune them, exclude those layers, or pass strict=False to "
                    "keep such channels"
                )
            plan.kept.append(f"pruned channel of {layers} kept: it feeds {why}")
            continue
        ln = next((g.inexact[i] for i in [r, *members] if i in g.inexact), None)
        if ln is not None and exact:
            raise ValueError(
                f"shrink_: pruned channels of layer(s) {layers} are normalized by LayerNorm "
                f"{ln!r}; removing them changes its mean and variance, so outputs would differ. "
                "Pass exact=False to shrink it anyway"
            )
        gone.add(r)
    return gone


def _keep_index(g: _Graph, ids: list[int], gone: set[int]) -> torch.Tensor:
    return torch.tensor([i for i, c in enumerate(ids) if g.find(c) not in gone], dtype=torch.long)


@torch.no_grad()
def _complete(model: nn.Module, example_inputs, strict: bool, exact: bool):
    check_module(model, arg="model")
    _strip_pruning(model)
    _, g, producers, consumers, norms = _analyse(model, example_inputs, exact)
    plan = ShrinkPlan()
    gone = _removable(g, strict, exact, plan)
    for name, ids in norms.items():
        mod = model.get_submodule(name)
        drop = torch.tensor([g.find(c) in gone for c in ids])
        if isinstance(mod, _BN) and mod.affine and drop.any():
            mod.weight[drop] = 0
            mod.bias[drop] = 0
    for name, ids in producers.items():
        keep = len(_keep_index(g, ids, gone))
        if keep != len(ids):
            plan.shrunk[name] = (len(ids), keep)
    return g, producers, consumers, norms, gone, plan


def complete_channel_groups_(
    model: nn.Module, example_inputs, strict: bool = True, exact: bool = True
) -> ShrinkPlan:
    """Zeroes the BatchNorm affine parameters of every channel shrink_ would remove (a zero
    channel through BatchNorm becomes the BN shift, not zero) and makes pruning permanent,
    without removing anything: the masked model then has exactly the outputs the shrunk one
    will have. Returns the plan shrink_ would carry out."""
    return _complete(model, example_inputs, strict, exact)[-1]


def _set(mod: nn.Module, name: str, t: torch.Tensor) -> None:
    old = getattr(mod, name)
    if isinstance(old, nn.Parameter):
        setattr(mod, name, nn.Parameter(t.contiguous().clone(), requires_grad=old.requires_grad))
    else:
        setattr(mod, name, t.contiguous().clone())


@torch.no_grad()
def shrink_(
    model: nn.Module, example_inputs, strict: bool = True, exact: bool = True
) -> ShrinkPlan:
    """Removes pruned output channels (all-zero weight rows with zero bias, e.g. from
    magnitude_(model, amount, pattern="channel")) of Conv/Linear layers, together with the
    matching BatchNorm/LayerNorm entries and the input channels of every consumer, through
    residual additions, concatenations and flattening. Pruning reparametrizations are made
    permanent first. The BatchNorm entries of removed channels are zeroed before the removal
    (see complete_channel_groups_), so the result has the same outputs as the masked model
    with that group completed.

    strict: refuse (ValueError naming the layers) pruned channels that feed an operation
    shrink_ cannot resize; False keeps them instead. Channels feeding the model output are
    always kept. exact: refuse removals that change a LayerNorm's statistics."""
    g, producers, consumers, norms, gone, plan = _complete(model, example_inputs, strict, exact)
    for name, ids in producers.items():
        mod = model.get_submodule(name)
        keep = _keep_index(g, ids, gone)
        if len(keep) == len(ids):
            continue
        _set(mod, "weight", mod.weight.index_select(0, keep))
        if mod.bias is not None:
            _set(mod, "bias", mod.bias.index_select(0, keep))
        if isinstance(mod, nn.Linear):
            mod.out_features = len(keep)
        else:
            mod.out_channels = len(keep)
    for name, ids in consumers.items():
        mod = model.get_submodule(name)
        keep = _keep_index(g, ids, gone)
        if len(keep) == len(ids):
            continue
        _set(mod, "weight", mod.weight.index_select(1, keep))
        if isinstance(mod, nn.Linear):
            mod.in_features = len(keep)
        else:
            mod.in_channels = len(keep)
    for name, ids in norms.items():
        mod = model.get_submodule(name)
        keep = _keep_index(g, ids, gone)
        if len(keep) == len(ids):
            continue
        for attr in ("weight", "bias", "running_mean", "running_var"):
            t = getattr(mod, attr, None)
            if isinstance(t, torch.Tensor):
                _set(mod, attr, t.index_select(0, keep))
        if isinstance(mod, nn.LayerNorm):
            mod.normalized_shape = (len(keep),)
        else:
            mod.num_features = len(keep)
    return plan


@torch.no_grad()
def grouped_channel_keeps(
    model: nn.Module, example_inputs, amount, scope: str, allowed: dict[str, nn.Module], name: str
) -> dict[str, torch.Tensor]:
    """Channel selection over dependency groups instead of single layers: channels tied by a
    residual addition are scored together (mean over their producers of the row's mean |w|)
    and pruned in every producer at once, so that shrink_ can remove them. Channels that feed
    the model output or an operation shrink_ cannot resize are never chosen. With scope
    "layer", `amount` applies within each channel space (the channels sharing the same
    producing layers, e.g. one residual stream); with "global", across all of them.
    Returns {fqn: bool keep-mask over output channels} for the producing layers in `allowed`."""
    from . import _ops
    from ._validate import check_amount
    from .compat import effective_tensor

    _, g, producers, _, _ = _analyse(model, example_inputs, exact=False)
    blocked = {g.find(i) for i in g.blocked}
    members: dict[int, list[tuple[str, int]]] = {}
    for layer, ids in producers.items():
        for row, i in enumerate(ids):
            members.setdefault(g.find(i), []).append((layer, row))
    scores = {}
    for layer in producers:
        if layer in allowed:
            w = effective_tensor(allowed[layer], name).float()
            scores[layer] = w.reshape(w.shape[0], -1).abs().mean(1)
    spaces: dict[tuple, list[tuple[float, list]]] = {}
    for root, mem in members.items():
        if root in blocked or any(layer not in scores for layer, _ in mem):
            continue
        key = tuple(sorted({layer for layer, _ in mem}))
        score = sum(float(scores[layer][row]) for layer, row in mem) / len(mem)
        spaces.setdefault(key, []).append((score, mem))
    keeps = {layer: torch.ones(len(producers[layer]), dtype=torch.bool) for layer in scores}
    entries = list(spaces.values())
    tensors = [torch.tensor([s for s, _ in e]) for e in entries]
    if scope == "layer":
        masks = [
            _ops.keep_masks([t], check_amount(amount, t.numel(), f"channel space of {list(key)}"))[
                0
            ]
            for t, key in zip(tensors, spaces, strict=True)
        ]
    else:
        total = sum(t.numel() for t in tensors)
        masks = _ops.keep_masks(tensors, check_amount(amount, total, "the selected channel groups"))
    for t, keep, group in zip(tensors, masks, entries, strict=True):
        if t.numel() and not bool(keep.any()):
            keep[int(t.argmax())] = True  # never empty a layer: keep its strongest channel
        for kept, (_, mem) in zip(keep.tolist(), group, strict=True):
            if not kept:
                for layer, row in mem:
                    keeps[layer][row] = False
    return keeps
