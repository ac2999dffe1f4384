"""Static post-training quantization of Linear and Conv2d (torch.ao's eager workflow):
``prepare(model, Int8StaticConfig())`` attaches input observers, calibration batches run
through the model, ``convert(model)`` swaps each observed layer for an int8 one whose
activation scale and zero point are fixed from the observed range."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .._linear import NamedLayer
from .configs import QuantizationConfig
from .observers import MinMaxObserver, ObserverBase, PerChannelMinMaxObserver
from .summary import QuantizationSummary, record
from .weight_only import QuantizedLinearBase, _float_bias, _float_weight

_DEFAULT_WEIGHT_OBSERVER = PerChannelMinMaxObserver.with_args(
    dtype=torch.qint8, qscheme=torch.per_channel_symmetric, quant_min=-127, quant_max=127
)


def _conv_reason(conv: nn.Conv2d) -> str | None:
    if conv.groups != 1:
        return f"Conv2d with groups={conv.groups} is not supported (groups=1 only)"
    if conv.padding_mode != "zeros":
        return f"Conv2d with padding_mode={conv.padding_mode!r} is not supported ('zeros' only)"
    if isinstance(conv.padding, str) and conv.padding != "valid":
        return f"Conv2d with padding={conv.padding!r} is not supported (int or tuple padding)"
    return None


@dataclass(frozen=True)
class Int8StaticConfig(QuantizationConfig):
    """Static int8: activations quantized with one (scale, zero_point) per layer input from
    calibration, weights int8 per output channel. For ``prepare``/``convert``.

    ``activation_observer``: a factory (an observer class or ``Observer.with_args(...)``)
    of a per-tensor observer; ``MinMaxObserver`` (quint8, affine) by default.
    ``weight_observer``: a factory of a per-channel symmetric qint8 observer with
    ``quant_min >= -127`` (the kernels need |q| <= 127); ``PerChannelMinMaxObserver``
    over [-127, 127] by default."""

    activation_observer: Callable[[], ObserverBase] = MinMaxObserver
    weight_observer: Callable[[], ObserverBase] = field(default=_DEFAULT_WEIGHT_OBSERVER)

    def __post_init__(self):
        for name in ("activation_observer", "weight_observer"):
            factory = getattr(self, name)
            if not callable(factory):
                raise ValueError(
                    f"Int8StaticConfig.{name} must be an observer class or factory, got {factory!r}"
                )
            try:
                obs = factory()
            except (TypeError, ValueError) as e:
                raise ValueError(
                    f"Int8StaticConfig.{name}: building the observer failed: {e}"
                ) from e
            if not isinstance(obs, ObserverBase):
                raise ValueError(
                    f"Int8StaticConfig.{name} must build a wattwise.quantization observer, "
                    f"got {type(obs).__name__}"
                )
            if name == "activation_observer" and obs.per_channel:
                raise ValueError(
                    "Int8StaticConfig.activation_observer must be per-tensor, got "
                    f"{type(obs).__name__}"
                )
            if name == "weight_observer" and (
                not obs.per_channel or not obs.symmetric or obs.quant_min < -127
            ):
                raise ValueError(
                    "Int8StaticConfig.weight_observer must be per-channel symmetric with "
                    f"quant_min >= -127, got {type(obs).__name__}(qscheme={obs.qscheme}, "
                    f"quant_min={obs.quant_min})"
                )

    def _supports(self, module: nn.Module) -> bool:
        if isinstance(module, nn.Linear):
            return True
        return isinstance(module, nn.Conv2d) and _conv_reason(module) is None

    def _unsupported_reason(self, module: nn.Module) -> str:
        if isinstance(module, nn.Conv2d):
            return _conv_reason(module)
        return f"{type(module).__name__} is not supported by Int8StaticConfig (Linear, Conv2d)"

    def _quantize_module(self, module: nn.Module, fqn: str) -> nn.Module:
        # quantize_ can only build the empty skeleton that load_state_dict fills: the
        # activation parameters come from calibration (prepare -> run batches -> convert).
        if module.weight.device.type != "meta":
            raise ValueError(
                f"layer {fqn!r}: Int8StaticConfig needs calibration; use "
                "wattwise.quantization.prepare(model, config), run batches, then convert(model)"
            )
        cls = Int8StaticLinear if isinstance(module, nn.Linear) else Int8StaticConv2d
        return cls._skeleton(module, fqn)


class _StaticBase(NamedLayer):
    """Holds int8 weights and the calibrated input parameters; the product runs in
    ``int8_static_linear``. Input parameters live in buffers (so state_dict carries them)
    and are mirrored in Python numbers (so torch.compile sees constants)."""

    bits = 8

    def _init_buffers(self, n: int, k: int, device=None):
        self.register_buffer("qweight", torch.zeros(n, k, dtype=torch.int8, device=device))
        self.register_buffer("scales", torch.zeros(n, device=device))
        self.register_buffer("wsum", torch.zeros(n, dtype=torch.int32, device=device))
        self.register_buffer("input_scale", torch.ones((), device=device))
        self.register_buffer("input_zero_point", torch.zeros((), dtype=torch.int64, device=device))
        self.register_buffer(
            "input_quant_range", torch.tensor([0, 255], dtype=torch.int64, device=device)
        )
        self._qparams = (1.0, 0, 0, 255)

    def _set_input_qparams(self, scale: float, zero_point: int, qmin: int, qmax: int):
        self.input_scale = torch.tensor(float(scale), dtype=torch.float32)
        self.input_zero_point = torch.tensor(int(zero_point), dtype=torch.int64)
        self.input_quant_range = torch.tensor([int(qmin), int(qmax)], dtype=torch.int64)
        self._qparams = (float(scale), int(zero_point), int(qmin), int(qmax))

    def _set_weight(self, w: torch.Tensor, observer: ObserverBase):
        observer(w)
        scale, _ = observer.calculate_qparams()
        q = torch.clamp(torch.round(w / scale[:, None]), observer.quant_min, observer.quant_max)
        self.qweight = q.to(torch.int8)
        self.scales = scale.to(torch.float32)
        self.wsum = torch.ops.wattwise.int8_row_sums(self.qweight)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if self.input_scale.device.type != "meta":
            lo, hi = self.input_quant_range.tolist()
            self._qparams = (float(self.input_scale), int(self.input_zero_point), lo, hi)

    def _check(self, x):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{self._name()}: input must be a Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{self._name()}: input must be floating point, got {x.dtype}")

    def _matmul(self, x2d: torch.Tensor) -> torch.Tensor:
        scale, zp, lo, hi = self._qparams
        if x2d.device.type not in ("cpu", "meta"):
            # No device kernels: emulate the activation rounding with plain torch ops.
            xq = torch.clamp(torch.round(x2d / scale) + zp, lo, hi)
            return F.linear((xq - zp) * scale, self.dequantize().to(x2d.dtype), self.bias)
        return torch.ops.wattwise.int8_static_linear(
            x2d, self.qweight, self.scales, self.wsum, scale, zp, lo, hi, self.bias
        )

    def dequantize(self) -> torch.Tensor:
        """The fp32 weight these values stand for (Conv2d: flattened to [out, in*kh*kw])."""
        return self.qweight.to(torch.float32) * self.scales[:, None]

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        if self.scales.dtype != torch.float32:
            self.scales = self.scales.to(torch.float32)
            self.input_scale = self.input_scale.to(torch.float32)
        if self.bias is not None and self.bias.dtype != torch.float32:
            self.bias.data = self.bias.data.to(torch.float32)
        return self


class Int8StaticLinear(_StaticBase, QuantizedLinearBase):
    """int8 Linear with a calibrated input scale/zero point (torch.ao's static scheme)."""

    def __init__(self, in_features, out_features, bias=True, device=None, fqn: str = ""):
        super().__init__()
        self.in_features, self.out_features, self.fqn = int(in_features), int(out_features), fqn
        self._init_buffers(out_features, in_features, device)
        self.bias = nn.Parameter(torch.zeros(out_features, device=device)) if bias else None

    @classmethod
    def _skeleton(cls, linear: nn.Linear, fqn: str):
        return cls(linear.in_features, linear.out_features, linear.bias is not None, "meta", fqn)

    @classmethod
    def from_observed(cls, linear: nn.Linear, act: ObserverBase, weight_observer, fqn=""):
        mod = cls(linear.in_features, linear.out_features, bias=False, fqn=fqn)
        mod._set_weight(_float_weight(linear, fqn), weight_observer())
        mod.bias = _float_bias(linear)
        scale, zp = act.calculate_qparams()
        mod._set_input_qparams(float(scale), int(zp), act.quant_min, act.quant_max)
        return mod

    def forward(self, x):
        self._check_input(x)
        return self._matmul(x.to(torch.float32)).to(x.dtype)

    def extra_repr(self):
        s, zp, lo, hi = self._qparams
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, input_scale={s:.4g}, input_zero_point={zp}, "
            f"input_range=[{lo}, {hi}]"
        )


class Int8StaticConv2d(_StaticBase):
    """int8 Conv2d (groups=1, zero padding) computed as an int8 product over unfolded
    input patches, with a calibrated input scale/zero point."""

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        bias=True,
        device=None,
        fqn: str = "",
    ):
        super().__init__()
        pair = nn.modules.utils._pair
        self.in_channels, self.out_channels, self.fqn = int(in_channels), int(out_channels), fqn
        self.kernel_size, self.stride = pair(kernel_size), pair(stride)
        self.padding = (0, 0) if padding == "valid" else pair(padding)
        self.dilation = pair(dilation)
        k = in_channels * self.kernel_size[0] * self.kernel_size[1]
        self._init_buffers(out_channels, k, device)
        self.bias = nn.Parameter(torch.zeros(out_channels, device=device)) if bias else None

    @classmethod
    def _args(cls, conv: nn.Conv2d):
        return (
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            conv.dilation,
        )

    @classmethod
    def _skeleton(cls, conv: nn.Conv2d, fqn: str):
        return cls(*cls._args(conv), bias=conv.bias is not None, device="meta", fqn=fqn)

    @classmethod
    def from_observed(cls, conv: nn.Conv2d, act: ObserverBase, weight_observer, fqn=""):
        mod = cls(*cls._args(conv), bias=False, fqn=fqn)
        w = conv.weight.detach().to(torch.float32)
        if not torch.isfinite(w).all():
            raise ValueError(f"layer {fqn!r}: weight contains NaN or Inf; cannot quantize it")
        mod._set_weight(w.reshape(w.shape[0], -1), weight_observer())
        mod.bias = _float_bias(conv)
        scale, zp = act.calculate_qparams()
        mod._set_input_qparams(float(scale), int(zp), act.quant_min, act.quant_max)
        return mod

    def forward(self, x):
        self._check(x)
        unbatched = x.dim() == 3
        if unbatched:
            x = x.unsqueeze(0)
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"{self._name()}: input must be [N, {self.in_channels}, H, W] or "
                f"[{self.in_channels}, H, W], got shape {tuple(x.shape)}"
            )
        n, _, h, w = x.shape
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
        )
        ho = math.floor((h + 2 * ph - dh * (kh - 1) - 1) / sh + 1)
        wo = math.floor((w + 2 * pw - dw * (kw - 1) - 1) / sw + 1)
        if ho <= 0 or wo <= 0:
            raise ValueError(f"{self._name()}: input {tuple(x.shape)} is smaller than the kernel")
        cols = F.unfold(
            x.to(torch.float32), self.kernel_size, self.dilation, self.padding, self.stride
        )
        y = self._matmul(cols.transpose(1, 2))  # [n, ho * wo, out]
        y = y.transpose(1, 2).reshape(n, self.out_channels, ho, wo).to(x.dtype)
        return y[0] if unbatched else y

    def to_float(self) -> nn.Conv2d:
        """An ``nn.Conv2d`` holding the dequantized weight (and the bias)."""
        conv = nn.Conv2d(
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            self.stride,
            self.padding,
            self.dilation,
            bias=self.bias is not None,
        )
        with torch.no_grad():
            conv.weight.copy_(self.dequantize().reshape(conv.weight.shape))
            if self.bias is not None:
                conv.bias.copy_(self.bias)
        return conv

    def extra_repr(self):
        s, zp, lo, hi = self._qparams
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"input_scale={s:.4g}, input_zero_point={zp}, input_range=[{lo}, {hi}]"
        )


def _observe_input(module, args):
    if args:
        module.input_observer(args[0])


def prepare(model: nn.Module, config: Int8StaticConfig, filter_fn=None) -> nn.Module:
    """Attach an input observer (``module.input_observer``) to every selected Linear and
    Conv2d of ``model``, in place; returns ``model``. Run calibration batches through the
    model next (``calibrate`` shows a progress bar), then ``convert``.

    ``filter_fn(module, fqn)`` selects layers (default: every Linear and Conv2d)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"prepare: model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(config, Int8StaticConfig):
        raise TypeError(f"prepare: config must be Int8StaticConfig, got {type(config).__name__}")
    if filter_fn is not None and not callable(filter_fn):
        raise TypeError(f"prepare: filter_fn must be callable, got {type(filter_fn).__name__}")
    select = filter_fn or (lambda m, fqn: isinstance(m, (nn.Linear, nn.Conv2d)))
    summary = QuantizationSummary(config=repr(config))
    unsupported = {}
    for fqn, mod in list(model.named_modules()):
        if any(isinstance(p, nn.MultiheadAttention) for p in _parents(model, fqn)):
            continue
        if not select(mod, fqn):
            continue
        if not config._supports(mod):
            unsupported[fqn] = config._unsupported_reason(mod)
            continue
        if hasattr(mod, "input_observer"):
            raise ValueError(f"prepare: layer {fqn!r} is already prepared")
        mod.input_observer = config.activation_observer()
        mod._wattwise_static = (config, mod.register_forward_pre_hook(_observe_input))
        summary.quantized[fqn] = "observed"
    record(model, summary, unsupported)
    return model


def _parents(model: nn.Module, fqn: str):
    parts = fqn.split(".") if fqn else []
    mod = model
    for p in parts[:-1]:
        mod = getattr(mod, p)
        yield mod


def calibrate(
    model: nn.Module, batches: Iterable, num_batches: int | None = None, progress: bool = True
) -> nn.Module:
    """Run ``batches`` through ``model`` under ``torch.no_grad()`` with a tqdm progress
    bar; a batch that is a tuple or list is unpacked into positional arguments."""
    from tqdm.auto import tqdm

    if num_batches is not None and (
        isinstance(num_batches, bool) or not isinstance(num_batches, int) or num_batches < 1
    ):
        raise ValueError(f"calibrate: num_batches must be a positive int, got {num_batches!r}")
    total = num_batches
    if total is None and hasattr(batches, "__len__"):
        total = len(batches)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for i, batch in enumerate(
            tqdm(batches, total=total, desc="calibrating", disable=not progress)
        ):
            if num_batches is not None and i >= num_batches:
                break
            model(*batch) if isinstance(batch, (tuple, list)) else model(batch)
    model.train(was_training)
    return model


def convert(model: nn.Module) -> nn.Module:
    """Swap every observed layer of a prepared, calibrated model for its int8 version, in
    place; returns ``model`` (or its replacement if the root itself was prepared).
    Raises ValueError naming a layer whose observer saw no data."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"convert: model must be a torch.nn.Module, got {type(model).__name__}")
    summary = QuantizationSummary(config="")
    old = getattr(model, "_wattwise_quantization_summary", None)
    observed = [(fqn, m) for fqn, m in model.named_modules() if hasattr(m, "_wattwise_static")]
    if not observed:
        raise ValueError("convert: no prepared layers found; call prepare(model, config) first")
    for fqn, mod in observed:
        if not mod.input_observer.calibrated:
            raise ValueError(
                f"convert: layer {fqn!r} saw no calibration data (its input observer is empty); "
                "run batches through the prepared model first"
            )
    for fqn, mod in observed:
        config, handle = mod._wattwise_static
        summary.config = repr(config)
        cls = Int8StaticLinear if isinstance(mod, nn.Linear) else Int8StaticConv2d
        new = cls.from_observed(mod, mod.input_observer, config.weight_observer, fqn=fqn)
        handle.remove()
        del mod._wattwise_static
        del mod.input_observer
        summary.quantized[fqn] = cls.__name__
        if fqn == "":
            record(new, summary, {})
            return new
        parent_name, _, child = fqn.rpartition(".")
        setattr(model.get_submodule(parent_name), child, new)
    unsupported = (
        {} if old is None else {k: v for k, v in old.skipped.items() if "not supported" in v}
    )
    record(model, summary, unsupported)
    return model
