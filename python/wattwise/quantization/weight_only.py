"""Weight-only quantized Linear modules (int8 per channel, grouped int4).

They hold plain tensors (int8/uint8 data, fp32/fp16 scales, fp32 bias), so ``state_dict()``
round-trips through ``torch.save``/``torch.load(weights_only=True)`` and safetensors."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._linear import LinearLayerMixin
from . import _ops

_FP16_MAX = 65504.0


def _float_weight(linear: nn.Module, fqn: str) -> torch.Tensor:
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"layer {fqn!r}: expected torch.nn.Linear, got {type(linear).__name__}")
    w = linear.weight.detach()
    if not w.is_floating_point():
        raise TypeError(f"layer {fqn!r}: weight must be floating point, got {w.dtype}")
    w = w.to(torch.float32)
    if w.device.type != "meta" and not torch.isfinite(w).all():
        raise ValueError(f"layer {fqn!r}: weight contains NaN or Inf; cannot quantize it")
    return w


def _float_bias(linear: nn.Linear) -> nn.Parameter | None:
    if linear.bias is None:
        return None
    return nn.Parameter(
        linear.bias.detach().to(torch.float32).clone(), requires_grad=linear.bias.requires_grad
    )


class QuantizedLinearBase(LinearLayerMixin):
    """What every wattwise Linear replacement shares: its name in errors, input checks, and
    export back to ``nn.Linear`` through ``dequantize()``."""

    in_features: int
    out_features: int
    fqn: str

    def to_float(self) -> nn.Linear:
        """An ``nn.Linear`` holding the dequantized weight (and the bias)."""
        weight = self.dequantize()
        linear = nn.Linear(
            self.in_features, self.out_features, bias=self.bias is not None, device=weight.device
        )
        with torch.no_grad():
            linear.weight.copy_(weight)
            if self.bias is not None:
                linear.bias.copy_(self.bias)
        return linear


class _WeightOnlyLinear(QuantizedLinearBase):
    """Shared behaviour: dtype/device handling, fp32 scale/bias pinning."""

    _scale_dtype: torch.dtype
    bits: int

    def __init__(self, in_features: int, out_features: int, fqn: str = ""):
        super().__init__()
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.fqn = fqn

    def _apply(self, fn, recurse=True):
        # Module.half()/.double()/.to(dtype) would convert every floating buffer; the kernels
        # need the stored precisions, so keep them while still honouring device moves.
        super()._apply(fn, recurse)
        if self.scales.dtype != self._scale_dtype:
            self.scales = self.scales.to(self._scale_dtype)
        if self.bias is not None and self.bias.dtype != torch.float32:
            self.bias.data = self.bias.data.to(torch.float32)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        if x.device.type not in ("cpu", "meta"):
            # No device kernels yet: dequantize with plain torch ops on that device.
            return F.linear(
                x,
                self.dequantize().to(x.dtype),
                None if self.bias is None else self.bias.to(x.dtype),
            )
        if x.dtype == torch.float32:
            return self._cpu_linear(x)
        return self._cpu_linear(x.to(torch.float32)).to(x.dtype)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, bits={self.bits}"
        )


class Int8WeightOnlyLinear(_WeightOnlyLinear):
    """``y = x @ (scales[:, None] * qweight).T + bias`` with int8 ``qweight`` [out, in] and
    fp32 ``scales`` [out]; computed by a fused AVX2 kernel on CPU."""

    _scale_dtype = torch.float32
    bits = 8

    def __init__(self, in_features, out_features, bias=True, device=None, fqn: str = ""):
        super().__init__(in_features, out_features, fqn)
        self.register_buffer(
            "qweight", torch.zeros(out_features, in_features, dtype=torch.int8, device=device)
        )
        self.register_buffer("scales", torch.zeros(out_features, device=device))
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_features, device=device))
        else:
            self.register_parameter("bias", None)

    @classmethod
    def from_float(cls, linear: nn.Linear, fqn: str = "") -> Int8WeightOnlyLinear:
        w = _float_weight(linear, fqn)
        qweight, scales = torch.ops.wattwise.int8_weight_only_quantize(w)
        mod = cls(linear.in_features, linear.out_features, bias=False, device="meta", fqn=fqn)
        mod.qweight, mod.scales = qweight, scales
        mod.bias = _float_bias(linear)
        return mod

    def dequantize(self) -> torch.Tensor:
        """The fp32 weight these values stand for, shape [out_features, in_features]."""
        if self.qweight.device.type == "cpu":
            return torch.ops.wattwise.int8_weight_only_dequantize(self.qweight, self.scales)
        return _ops.int8_dequantize_torch(self.qweight, self.scales)

    def _cpu_linear(self, x):
        return torch.ops.wattwise.int8_weight_only_linear(x, self.qweight, self.scales, self.bias)


class Int4WeightOnlyLinear(_WeightOnlyLinear):
    """Grouped int4 weights: ``qweight`` uint8 [out, in / 2] (two values per byte) and fp16
    ``scales`` [out, in / group_size]; computed by a fused AVX2 kernel on CPU."""

    _scale_dtype = torch.float16
    bits = 4

    def __init__(
        self, in_features, out_features, bias=True, group_size=32, device=None, fqn: str = ""
    ):
        super().__init__(in_features, out_features, fqn)
        if group_size <= 0 or group_size % 32 != 0 or in_features % group_size != 0:
            raise ValueError(
                f"{self._name()}: in_features ({in_features}) must be divisible by group_size "
                f"({group_size}), a positive multiple of 32"
            )
        self.group_size = int(group_size)
        self.register_buffer(
            "qweight",
            torch.zeros(out_features, in_features // 2, dtype=torch.uint8, device=device),
        )
        self.register_buffer(
            "scales",
            torch.zeros(
                out_features, in_features // group_size, dtype=torch.float16, device=device
            ),
        )
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_features, device=device))
        else:
            self.register_parameter("bias", None)

    @classmethod
    def from_float(cls, linear: nn.Linear, group_size: int = 32, fqn: str = ""):
        w = _float_weight(linear, fqn)
        mod = cls(
            linear.in_features,
            linear.out_features,
            bias=False,
            group_size=group_size,
            device="meta",
            fqn=fqn,
        )
        if w.device.type != "meta" and w.numel() and w.abs().max() > _FP16_MAX * 8:
            raise ValueError(
                f"layer {fqn!r}: weights up to {float(w.abs().max()):.3g} overflow int4's fp16 "
                f"scales (limit {_FP16_MAX * 8:.3g}); use Int8WeightOnlyConfig for this layer"
            )
        mod.qweight, mod.scales = torch.ops.wattwise.int4_weight_only_quantize(w, group_size)
        mod.bias = _float_bias(linear)
        return mod

    def dequantize(self) -> torch.Tensor:
        """The fp32 weight these values stand for, shape [out_features, in_features]."""
        if self.qweight.device.type == "cpu":
            return torch.ops.wattwise.int4_weight_only_dequantize(
                self.qweight, self.scales, self.group_size
            )
        return _ops.int4_dequantize_torch(self.qweight, self.scales, self.group_size)

    def _cpu_linear(self, x):
        return torch.ops.wattwise.int4_weight_only_linear(
            x, self.qweight, self.scales, self.group_size, self.bias
        )

    def extra_repr(self) -> str:
        return super().extra_repr() + f", group_size={self.group_size}"
