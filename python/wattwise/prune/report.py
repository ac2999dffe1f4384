"""report(model): per-layer and overall sparsity, parameters, storage bytes and estimated FLOPs,
for dense, pruned (torch or wattwise masks), sparse and shrunk models alike."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ._validate import check_module
from .compat import effective_tensor
from .sparse import NMSparseLinear, SparseLinear

_CONV = (nn.Conv1d, nn.Conv2d, nn.Conv3d)


@dataclass
class PruningReport:
    layers: list[dict] = field(default_factory=list)
    total: dict = field(default_factory=dict)

    def __str__(self) -> str:
        head = (
            f"{'layer':<32}{'type':<16}{'params':>12}{'nonzero':>12}{'sparsity':>10}"
            f"{'bytes':>14}{'MFLOPs':>10}"
        )
        rows = [head, "-" * len(head)]
        for r in [*self.layers, {**self.total, "layer": "TOTAL", "type": ""}]:
            flops = "" if r["flops"] is None else f"{r['flops'] / 1e6:.2f}"
            rows.append(
                f"{r['layer'][:31]:<32}{r['type'][:15]:<16}{r['params']:>12}{r['nonzero']:>12}"
                f"{r['sparsity']:>10.3f}{r['bytes']:>14}{flops:>10}"
            )
        return "\n".join(rows)


def _stored_bytes(mod: nn.Module) -> int:
    own = list(mod.parameters(recurse=False)) + list(mod.buffers(recurse=False))
    return sum(t.numel() * t.element_size() for t in own)


def report(model: nn.Module, example_inputs=None) -> PruningReport:
    """Per layer (Linear, Conv, SparseLinear, NMSparseLinear): `params` (dense weight + bias
    entries), `nonzero`, `sparsity`, `bytes` (what the layer stores, masks included) and
    `flops` (2 per non-zero weight per output position; with `example_inputs` the output
    positions are counted by a forward pass, without them Linear counts one position and
    Conv layers report None). Totals cover the whole model's parameters and buffers."""
    check_module(model, arg="model")
    positions: dict[str, int] = {}
    if example_inputs is not None:
        inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
        hooks = []
        for fqn, mod in model.named_modules():
            if isinstance(mod, (nn.Linear, SparseLinear, NMSparseLinear, *_CONV)):

                def hook(m, args, out, fqn=fqn):
                    channels = out.shape[1] if isinstance(m, _CONV) else out.shape[-1]
                    positions[fqn] = out.numel() // max(channels, 1)

                hooks.append(mod.register_forward_hook(hook))
        try:
            with torch.no_grad():
                model(*inputs)
        finally:
            for h in hooks:
                h.remove()
    rep = PruningReport()
    for fqn, mod in model.named_modules():
        if isinstance(mod, (SparseLinear, NMSparseLinear)):
            w = mod.to_dense()
        elif isinstance(mod, (nn.Linear, *_CONV)):
            w = effective_tensor(mod, "weight")
        else:
            continue
        b = effective_tensor(mod, "bias") if getattr(mod, "bias", None) is not None else None
        params = w.numel() + (b.numel() if b is not None else 0)
        nonzero = int(w.count_nonzero()) + (int(b.count_nonzero()) if b is not None else 0)
        pos = positions.get(fqn, 1 if not isinstance(mod, _CONV) else None)
        flops = None if pos is None else 2 * int(w.count_nonzero()) * pos
        rep.layers.append(
            dict(
                layer=fqn,
                type=type(mod).__name__,
                params=params,
                nonzero=nonzero,
                sparsity=1 - nonzero / max(params, 1),
                bytes=_stored_bytes(mod),
                flops=flops,
            )
        )
    nonzero_layers = sum(r["nonzero"] for r in rep.layers)
    params_layers = sum(r["params"] for r in rep.layers)
    flops = [r["flops"] for r in rep.layers]
    rep.total = dict(
        params=params_layers,
        nonzero=nonzero_layers,
        sparsity=1 - nonzero_layers / max(params_layers, 1),
        bytes=sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()]),
        flops=None if any(f is None for f in flops) else sum(flops),
    )
    return rep
