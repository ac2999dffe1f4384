"""Quantization configs passed to ``wattwise.quantize_`` (torchao-style: one verb, config
objects that say what to do to each selected module)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from torch import nn


class QuantizationConfig(ABC):
    """Base of every config: turns one selected module into its quantized replacement."""

    @abstractmethod
    def _quantize_module(self, module: nn.Module, fqn: str) -> nn.Module:
        """Return the replacement for ``module`` (named ``fqn`` in the model)."""

    def _supports(self, module: nn.Module) -> bool:
        return isinstance(module, nn.Linear)

    def _unsupported_reason(self, module: nn.Module) -> str:
        return f"{type(module).__name__} is not supported by {type(self).__name__} (nn.Linear only)"


@dataclass(frozen=True)
class Int8WeightOnlyConfig(QuantizationConfig):
    """int8 weights, symmetric per output channel; fp32 activations.

    About 4x smaller than fp32 (plus one fp32 scale per output channel) and, at small batch
    sizes where a Linear is bound by memory bandwidth, correspondingly faster."""

    def _quantize_module(self, module: nn.Module, fqn: str) -> nn.Module:
        from .weight_only import Int8WeightOnlyLinear

        return Int8WeightOnlyLinear.from_float(module, fqn=fqn)


@dataclass(frozen=True)
class Int4WeightOnlyConfig(QuantizationConfig):
    """int4 weights, symmetric, one fp16 scale per ``group_size`` consecutive inputs of each
    output channel (4.5 bits per weight at group_size=32); fp32 activations.

    ``group_size`` must be a positive multiple of 32 (32, 64 and 128 are the usual choices:
    smaller groups are more accurate, larger ones smaller) and divide every selected
    layer's ``in_features``."""

    group_size: int = 32

    def __post_init__(self):
        g = self.group_size
        if isinstance(g, bool) or not isinstance(g, int):
            raise TypeError(
                f"Int4WeightOnlyConfig.group_size must be an int, got {type(g).__name__} {g!r}"
            )
        if g <= 0 or g % 32 != 0:
            raise ValueError(
                f"Int4WeightOnlyConfig.group_size must be a positive multiple of 32 "
                f"(e.g. 32, 64, 128), got {g}"
            )

    def _quantize_module(self, module: nn.Module, fqn: str) -> nn.Module:
        from .weight_only import Int4WeightOnlyLinear

        return Int4WeightOnlyLinear.from_float(module, self.group_size, fqn=fqn)


@dataclass(frozen=True)
class Int8DynamicActivationInt8WeightConfig(QuantizationConfig):
    """int8 weights (symmetric per output channel) and int8 activations quantized per token
    (input row) at run time; int8 x int8 products accumulated in int32, rescaled in fp32.

    4x smaller weights like ``Int8WeightOnlyConfig``, and faster at every batch size: the
    product itself runs in int8, so it also helps compute-bound (large batch) layers."""

    def _quantize_module(self, module: nn.Module, fqn: str) -> nn.Module:
        from .dynamic import Int8DynamicActivationInt8WeightLinear

        return Int8DynamicActivationInt8WeightLinear.from_float(module, fqn=fqn)


@dataclass(frozen=True)
class Float16WeightConfig(QuantizationConfig):
    """Weights stored as IEEE float16 (half the bytes of fp32, ~3 decimal digits); inputs,
    accumulation and outputs stay fp32. Raises for a layer with weights beyond 65504."""

    def _quantize_module(self, module: nn.Module, fqn: str) -> nn.Module:
        import torch

        from .dynamic import HalfWeightLinear

        return HalfWeightLinear.from_float(module, torch.float16, fqn=fqn)


@dataclass(frozen=True)
class BFloat16WeightConfig(QuantizationConfig):
    """Weights stored as bfloat16 (fp32's range, 8 significant bits); fp32 compute."""

    def _quantize_module(self, module: nn.Module, fqn: str) -> nn.Module:
        import torch

        from .dynamic import HalfWeightLinear

        return HalfWeightLinear.from_float(module, torch.bfloat16, fqn=fqn)
