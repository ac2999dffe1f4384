"""Quantization: ``quantize_(model, config)`` with configs for weight-only int8/int4."""

from . import _ops  # noqa: F401  (fake kernels and autograd for torch.ops.wattwise)
from .api import quantize_
from .configs import Int4WeightOnlyConfig, Int8WeightOnlyConfig, QuantizationConfig
from .weight_only import Int4WeightOnlyLinear, Int8WeightOnlyLinear

__all__ = [
    "Int4WeightOnlyConfig",
    "Int4WeightOnlyLinear",
    "Int8WeightOnlyConfig",
    "Int8WeightOnlyLinear",
    "QuantizationConfig",
    "quantize_",
]
