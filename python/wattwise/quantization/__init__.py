"""Quantization: ``quantize_(model, config)`` with weight-only int8/int4, dynamic int8 and
fp16/bf16 weight configs; static int8 via ``prepare``/``calibrate``/``convert``;
``quantize_dynamic`` for torch.ao users; ``report`` and ``quantize_with_budget_`` for
accuracy."""

from . import _int8_ops, _ops  # noqa: F401  (fake kernels and autograd for torch.ops.wattwise)
from .api import quantize_
from .compat import quantize_dynamic
from .configs import (
    BFloat16WeightConfig,
    Float16WeightConfig,
    Int4WeightOnlyConfig,
    Int8DynamicActivationInt8WeightConfig,
    Int8WeightOnlyConfig,
    QuantizationConfig,
)
from .dynamic import HalfWeightLinear, Int8DynamicActivationInt8WeightLinear
from .observers import (
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    MSEObserver,
    ObserverBase,
    PercentileObserver,
    PerChannelMinMaxObserver,
)
from .report import LayerReport, QuantizationReport, quantize_with_budget_, report, sqnr_db
from .static import (
    Int8StaticConfig,
    Int8StaticConv2d,
    Int8StaticLinear,
    calibrate,
    convert,
    prepare,
)
from .summary import QuantizationSummary, quantization_summary
from .weight_only import Int4WeightOnlyLinear, Int8WeightOnlyLinear

__all__ = [
    "BFloat16WeightConfig",
    "Float16WeightConfig",
    "HalfWeightLinear",
    "Int4WeightOnlyConfig",
    "Int4WeightOnlyLinear",
    "Int8DynamicActivationInt8WeightConfig",
    "Int8DynamicActivationInt8WeightLinear",
    "Int8StaticConfig",
    "Int8StaticConv2d",
    "Int8StaticLinear",
    "Int8WeightOnlyConfig",
    "Int8WeightOnlyLinear",
    "LayerReport",
    "MSEObserver",
    "MinMaxObserver",
    "MovingAverageMinMaxObserver",
    "ObserverBase",
    "PerChannelMinMaxObserver",
    "PercentileObserver",
    "QuantizationConfig",
    "QuantizationReport",
    "QuantizationSummary",
    "calibrate",
    "convert",
    "prepare",
    "quantization_summary",
    "quantize_",
    "quantize_dynamic",
    "quantize_with_budget_",
    "report",
    "sqnr_db",
]
