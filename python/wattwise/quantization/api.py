"""``quantize_``: swap selected modules of a model for quantized ones, in place."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from .configs import QuantizationConfig
from .summary import QuantizationSummary, record

FilterFn = Callable[[nn.Module, str], bool]


def _default_filter(module: nn.Module, fqn: str) -> bool:
    return isinstance(module, nn.Linear)


def quantize_(
    model: nn.Module, config: QuantizationConfig, filter_fn: FilterFn | None = None
) -> nn.Module:
    """Quantize ``model`` in place according to ``config``.

    Every module for which ``filter_fn(module, fqn)`` is true (default: every
    ``nn.Linear``) is replaced by its quantized counterpart under the same qualified name,
    so ``state_dict`` keys keep their prefixes. Linear layers owned by
    ``nn.MultiheadAttention`` are left alone: it reads their weights directly.

    Returns ``model`` (or the replacement, when ``model`` itself is selected). Selected
    modules the config cannot handle are left alone; ``quantization_summary(model)`` lists
    what was replaced and what was left alone, with reasons.

    Example::

        wattwise.quantize_(model, wattwise.quantization.Int8WeightOnlyConfig())
        wattwise.quantize_(model, Int4WeightOnlyConfig(group_size=64),
                           filter_fn=lambda m, fqn: isinstance(m, nn.Linear) and fqn != "head")
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"quantize_: model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(config, QuantizationConfig):
        raise TypeError(
            "quantize_: config must be a wattwise.quantization config such as "
            f"Int8WeightOnlyConfig(), got {type(config).__name__}"
        )
    if filter_fn is not None and not callable(filter_fn):
        raise TypeError(f"quantize_: filter_fn must be callable, got {type(filter_fn).__name__}")
    select = filter_fn or _default_filter
    summary = QuantizationSummary(config=repr(config))
    unsupported: dict[str, str] = {}

    if select(model, ""):
        if config._supports(model):
            out = config._quantize_module(model, "")
            summary.quantized[""] = type(out).__name__
            record(out, summary, unsupported)
            return out
        unsupported[""] = config._unsupported_reason(model)

    # Snapshot first: replacing children while iterating named_modules() would skip some.
    for parent_name, parent in list(model.named_modules()):
        if isinstance(parent, nn.MultiheadAttention):
            continue
        for child_name, child in list(parent.named_children()):
            fqn = f"{parent_name}.{child_name}" if parent_name else child_name
            if not select(child, fqn):
                continue
            if not config._supports(child):
                unsupported[fqn] = config._unsupported_reason(child)
                continue
            new = config._quantize_module(child, fqn)
            setattr(parent, child_name, new)
            summary.quantized[fqn] = type(new).__name__
    record(model, summary, unsupported)
    return model
