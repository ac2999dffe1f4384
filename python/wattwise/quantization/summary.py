"""What ``quantize_``/``convert`` did to a model: which layers were replaced and which were
left alone (and why). Retrieve it with ``quantization_summary(model)``."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn

_ATTR = "_wattwise_quantization_summary"


@dataclass
class QuantizationSummary:
    """``quantized``: qualified name -> replacement class name; ``skipped``: qualified
    name -> reason, for every module holding parameters that stayed as it was."""

    config: str
    quantized: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"{self.config}: {len(self.quantized)} quantized, {len(self.skipped)} left alone"]
        lines += [f"  quantized  {name or '<root>'}: {cls}" for name, cls in self.quantized.items()]
        lines += [f"  left alone {name or '<root>'}: {why}" for name, why in self.skipped.items()]
        return "\n".join(lines)


def _is_quantized(module: nn.Module) -> bool:
    return hasattr(module, "to_float") and hasattr(module, "bits")


def record(model: nn.Module, summary: QuantizationSummary, selected_unsupported: dict) -> None:
    """Fills ``summary.skipped`` from the model's remaining parameter-holding modules and
    attaches the summary to the model."""
    mha_prefixes = [n for n, m in model.named_modules() if isinstance(m, nn.MultiheadAttention)]
    for name, mod in model.named_modules():
        if name in summary.quantized or _is_quantized(mod):
            continue
        if any(True for _ in mod.parameters(recurse=False)):
            if name in selected_unsupported:
                summary.skipped[name] = selected_unsupported[name]
            elif any(name == p or name.startswith(p + ".") for p in mha_prefixes):
                summary.skipped[name] = (
                    "inside nn.MultiheadAttention, which reads its weights directly"
                )
            else:
                summary.skipped[name] = f"{type(mod).__name__} not selected by filter_fn"
    object.__setattr__(model, _ATTR, summary)


def quantization_summary(model: nn.Module) -> QuantizationSummary:
    """The summary of the last ``quantize_``/``prepare``/``convert`` applied to ``model``."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"quantization_summary: model must be an nn.Module, got {type(model)}")
    summary = getattr(model, _ATTR, None)
    if summary is None:
        raise ValueError(
            "quantization_summary: this model has not been through quantize_, prepare or convert"
        )
    return summary
