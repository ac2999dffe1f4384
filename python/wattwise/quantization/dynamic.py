"""Dynamic int8 Linear (per-token int8 activations x per-channel int8 weights) and
half-precision (fp16 / bf16) weight storage with fp32 compute."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .weight_only import (
    Int8WeightOnlyLinear,
    QuantizedLinearBase,
    _float_bias,
    _float_weight,
)


class Int8DynamicActivationInt8WeightLinear(Int8WeightOnlyLinear):
    """``y = dequant(quant(x)) @ dequant(qweight).T + bias``: each input row (token) is
    quantized to int8 with its own scale at run time, multiplied in int8 with int32
    accumulation, and rescaled in fp32. Same stored tensors as ``Int8WeightOnlyLinear``
    (int8 ``qweight`` [out, in], fp32 ``scales`` [out], fp32 ``bias``)."""

    def _cpu_linear(self, x):
        return torch.ops.wattwise.int8_dynamic_linear(x, self.qweight, self.scales, self.bias)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The int8 x int8 kernels take symmetric weights, -127..127 (what quantize_ writes):
        # the AVX2 product moves signs between operands, and -128 has no positive twin. A
        # state dict from elsewhere is checked once here rather than on every call.
        q = state_dict.get(prefix + "qweight")
        if (
            isinstance(q, torch.Tensor)
            and q.dtype == torch.int8
            and q.device.type != "meta"
            and q.numel()
            and int(q.min()) < -127
        ):
            raise ValueError(
                f"{self._name()}: qweight holds -128; int8 dynamic weights must lie in "
                "[-127, 127] (symmetric quantization, as Int8DynamicActivationInt8WeightConfig "
                "writes them)"
            )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class HalfWeightLinear(QuantizedLinearBase):
    """``weight`` stored as float16 or bfloat16 (half the bytes of fp32); inputs,
    accumulation and outputs stay fp32. bfloat16 keeps fp32's range (no overflow for any
    finite weight) with 8 bits of mantissa; float16 has 11 bits but overflows past 65504."""

    bits = 16

    def __init__(
        self, in_features, out_features, bias=True, dtype=torch.float16, device=None, fqn: str = ""
    ):
        super().__init__()
        if dtype not in (torch.float16, torch.bfloat16):
            raise ValueError(f"HalfWeightLinear: dtype must be float16 or bfloat16, got {dtype}")
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.fqn = fqn
        self._storage_dtype = dtype
        self.register_buffer(
            "weight", torch.zeros(out_features, in_features, dtype=dtype, device=device)
        )
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_features, device=device))
        else:
            self.register_parameter("bias", None)

    @classmethod
    def from_float(cls, linear: nn.Linear, dtype: torch.dtype, fqn: str = "") -> HalfWeightLinear:
        w = _float_weight(linear, fqn)
        if dtype == torch.float16 and w.device.type != "meta" and w.numel():
            amax = float(w.abs().max())
            if amax > 65504.0:
                raise ValueError(
                    f"layer {fqn!r}: weights up to {amax:.3g} overflow float16 (max 65504); "
                    "use BFloat16WeightConfig for this layer"
                )
        mod = cls(
            linear.in_features, linear.out_features, bias=False, dtype=dtype, device="meta", fqn=fqn
        )
        mod.weight = w.to(dtype)
        mod.bias = _float_bias(linear)
        return mod

    def _apply(self, fn, recurse=True):
        # Module.float()/.half() must not change the storage precision, only the device.
        super()._apply(fn, recurse)
        if self.weight.dtype != self._storage_dtype:
            self.weight = self.weight.to(self._storage_dtype)
        if self.bias is not None and self.bias.dtype != torch.float32:
            self.bias.data = self.bias.data.to(torch.float32)
        return self

    def dequantize(self) -> torch.Tensor:
        """The fp32 weight, shape [out_features, in_features] (exact)."""
        return self.weight.to(torch.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        if x.device.type not in ("cpu", "meta"):
            bias = None if self.bias is None else self.bias.to(x.dtype)
            return F.linear(x, self.weight.to(x.dtype), bias)
        y = torch.ops.wattwise.half_weight_linear(x.to(torch.float32), self.weight, self.bias)
        return y.to(x.dtype)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, dtype={self._storage_dtype}"
        )
