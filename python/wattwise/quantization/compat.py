"""``quantize_dynamic``: torch.ao.quantization's entry point, backed by wattwise kernels, so
that code written for the deprecated torch.ao API keeps working unchanged."""

from __future__ import annotations

import copy

import torch
from torch import nn

from .api import quantize_
from .configs import Float16WeightConfig, Int8DynamicActivationInt8WeightConfig


def quantize_dynamic(
    model: nn.Module, qconfig_spec=None, dtype=torch.qint8, mapping=None, inplace: bool = False
) -> nn.Module:
    """Dynamic quantization with torch.ao's signature and semantics.

    ``qconfig_spec`` is a set of module types and/or qualified names to quantize (default
    ``{nn.Linear}``; a dict is accepted and its keys are used). ``dtype`` is
    ``torch.qint8`` (int8 weights and per-token int8 activations,
    ``Int8DynamicActivationInt8WeightConfig``) or ``torch.float16`` (fp16 weight storage,
    ``Float16WeightConfig``). Selected types wattwise has no kernel for (e.g. nn.LSTM) are
    left alone and listed in ``quantization_summary(model)``. Returns a quantized copy
    unless ``inplace=True``. ``mapping`` is accepted for compatibility and must be None."""
    if not isinstance(model, nn.Module):
        raise TypeError(
            f"quantize_dynamic: model must be a torch.nn.Module, got {type(model).__name__}"
        )
    if dtype == torch.qint8:
        config = Int8DynamicActivationInt8WeightConfig()
    elif dtype == torch.float16:
        config = Float16WeightConfig()
    else:
        raise ValueError(
            f"quantize_dynamic: dtype must be torch.qint8 or torch.float16, got {dtype}"
        )
    if mapping is not None:
        raise ValueError("quantize_dynamic: mapping must be None (wattwise chooses the modules)")
    if qconfig_spec is None:
        qconfig_spec = {nn.Linear}
    if isinstance(qconfig_spec, dict):
        qconfig_spec = set(qconfig_spec)
    if not isinstance(qconfig_spec, (set, frozenset, list, tuple)):
        raise TypeError(
            "quantize_dynamic: qconfig_spec must be a set of module types or qualified names, "
            f"got {type(qconfig_spec).__name__}"
        )
    types = tuple(t for t in qconfig_spec if isinstance(t, type))
    names = {n for n in qconfig_spec if isinstance(n, str)}
    bad = [s for s in qconfig_spec if not isinstance(s, (type, str))]
    if bad:
        raise TypeError(f"quantize_dynamic: qconfig_spec entries must be types or str, got {bad}")

    def select(module: nn.Module, fqn: str) -> bool:
        return (types and isinstance(module, types)) or any(
            fqn == n or fqn.startswith(n + ".") for n in names
        )

    if not inplace:
        model = copy.deepcopy(model)
    return quantize_(model, config, filter_fn=select)
