"""Calibration observers with torch.ao.quantization's names and semantics: ``forward(x)``
records statistics and returns ``x`` unchanged; ``calculate_qparams()`` returns
``(scale, zero_point)`` tensors computed with torch.ao's affine/symmetric formulas."""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

_SCHEMES = {
    torch.per_tensor_affine: ("per_tensor", False),
    torch.per_tensor_symmetric: ("per_tensor", True),
    torch.per_channel_affine: ("per_channel", False),
    torch.per_channel_symmetric: ("per_channel", True),
}


class ObserverBase(nn.Module):
    """Shared validation and the qparams formula.

    ``dtype`` is ``torch.quint8`` (levels 0..255) or ``torch.qint8`` (-128..127);
    ``quant_min``/``quant_max`` narrow that range (e.g. -127..127 for symmetric weights)."""

    per_channel = False

    def __init__(
        self,
        dtype: torch.dtype = torch.quint8,
        qscheme: torch.qscheme = torch.per_tensor_affine,
        quant_min: int | None = None,
        quant_max: int | None = None,
        eps: float = torch.finfo(torch.float32).eps,
    ):
        super().__init__()
        name = type(self).__name__
        if dtype not in (torch.quint8, torch.qint8):
            raise ValueError(f"{name}: dtype must be torch.quint8 or torch.qint8, got {dtype}")
        if qscheme not in _SCHEMES:
            raise ValueError(f"{name}: qscheme must be a torch.per_* qscheme, got {qscheme}")
        kind, symmetric = _SCHEMES[qscheme]
        if (kind == "per_channel") != self.per_channel:
            want = "per-channel" if self.per_channel else "per-tensor"
            raise ValueError(f"{name}: qscheme must be {want}, got {qscheme}")
        lo, hi = (0, 255) if dtype == torch.quint8 else (-128, 127)
        quant_min = lo if quant_min is None else quant_min
        quant_max = hi if quant_max is None else quant_max
        for field, v in (("quant_min", quant_min), ("quant_max", quant_max)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"{name}: {field} must be an int, got {type(v).__name__} {v!r}")
        if not (lo <= quant_min < quant_max <= hi):
            raise ValueError(
                f"{name}: quant_min/quant_max must satisfy {lo} <= quant_min < quant_max <= "
                f"{hi} for {dtype}, got quant_min={quant_min}, quant_max={quant_max}"
            )
        if not (isinstance(eps, float) and eps > 0):
            raise ValueError(f"{name}: eps must be a positive float, got {eps!r}")
        self.dtype = dtype
        self.qscheme = qscheme
        self.symmetric = symmetric
        self.quant_min = quant_min
        self.quant_max = quant_max
        self.eps = eps
        self.register_buffer("min_val", torch.tensor(float("inf")))
        self.register_buffer("max_val", torch.tensor(float("-inf")))

    @classmethod
    def with_args(cls, **kwargs):
        """A factory with these constructor arguments bound (torch.ao's ``with_args``)."""
        return functools.partial(cls, **kwargs)

    @property
    def calibrated(self) -> bool:
        return bool(torch.isfinite(self.min_val).all() and torch.isfinite(self.max_val).all())

    def _check_input(self, x):
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"{type(self).__name__}: expected a floating-point Tensor, got {x!r}")

    def _widen_range(self, d: torch.Tensor) -> None:
        """Running min/max over every value seen (d non-empty, float32)."""
        self.min_val = torch.minimum(self.min_val, d.min())
        self.max_val = torch.maximum(self.max_val, d.max())

    def _qparams(self, min_val: torch.Tensor, max_val: torch.Tensor):
        """torch.ao's ``_calculate_qparams``: the range always includes 0."""
        if not self.calibrated:
            raise ValueError(
                f"{type(self).__name__}: no data observed yet; run calibration batches first"
            )
        min_neg = torch.clamp(min_val, max=0.0)
        max_pos = torch.clamp(max_val, min=0.0)
        qmin, qmax = self.quant_min, self.quant_max
        if self.symmetric:
            max_pos = torch.maximum(-min_neg, max_pos)
            scale = torch.clamp(max_pos / ((qmax - qmin) / 2), min=self.eps)
            zp = (qmin + qmax + 1) // 2 if self.dtype == torch.quint8 else 0
            zero_point = torch.full_like(scale, zp, dtype=torch.int32)
        else:
            scale = torch.clamp((max_pos - min_neg) / float(qmax - qmin), min=self.eps)
            zero_point = qmin - torch.round(min_neg / scale).to(torch.int32)
            zero_point = torch.clamp(zero_point, qmin, qmax)
        if scale.dim() == 0:  # torch.ao returns shape [1] for per-tensor observers
            scale, zero_point = scale.reshape(1), zero_point.reshape(1)
        return scale.to(torch.float32), zero_point

    def calculate_qparams(self):
        return self._qparams(self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return (
            f"dtype={self.dtype}, qscheme={self.qscheme}, quant_min={self.quant_min}, "
            f"quant_max={self.quant_max}, min_val={float(self.min_val.min()):.4g}, "
            f"max_val={float(self.max_val.max()):.4g}"
        )


class MinMaxObserver(ObserverBase):
    """Running minimum and maximum over every observed value."""

    def forward(self, x):
        self._check_input(x)
        if x.numel():
            d = x.detach().to(torch.float32)
            self._widen_range(d)
        return x


class MovingAverageMinMaxObserver(ObserverBase):
    """Exponential moving average of each batch's min and max (``averaging_constant``
    weighs the newest batch), less sensitive to one outlying batch than MinMaxObserver."""

    def __init__(self, averaging_constant: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        if not (isinstance(averaging_constant, float) and 0 < averaging_constant <= 1):
            raise ValueError(
                f"{type(self).__name__}: averaging_constant must be a float in (0, 1], "
                f"got {averaging_constant!r}"
            )
        self.averaging_constant = averaging_constant

    def forward(self, x):
        self._check_input(x)
        if x.numel():
            d = x.detach().to(torch.float32)
            lo, hi = d.min(), d.max()
            if not self.calibrated:
                self.min_val, self.max_val = lo, hi
            else:
                c = self.averaging_constant
                self.min_val = self.min_val + c * (lo - self.min_val)
                self.max_val = self.max_val + c * (hi - self.max_val)
        return x


class PerChannelMinMaxObserver(ObserverBase):
    """Min and max per slice along ``ch_axis`` (weights: one scale per output channel)."""

    per_channel = True

    def __init__(
        self, ch_axis: int = 0, dtype=torch.quint8, qscheme=torch.per_channel_affine, **kwargs
    ):
        super().__init__(dtype=dtype, qscheme=qscheme, **kwargs)
        if isinstance(ch_axis, bool) or not isinstance(ch_axis, int):
            raise TypeError(f"PerChannelMinMaxObserver: ch_axis must be an int, got {ch_axis!r}")
        self.ch_axis = ch_axis
        self.min_val = torch.empty(0)
        self.max_val = torch.empty(0)

    @property
    def calibrated(self) -> bool:
        return self.min_val.numel() > 0 and bool(torch.isfinite(self.min_val).all())

    def forward(self, x):
        self._check_input(x)
        if x.dim() == 0 or not -x.dim() <= self.ch_axis < x.dim():
            raise ValueError(
                f"PerChannelMinMaxObserver: ch_axis={self.ch_axis} out of range for shape "
                f"{tuple(x.shape)}"
            )
        d = x.detach().to(torch.float32).movedim(self.ch_axis, 0).flatten(1)
        if d.shape[1] == 0:
            return x
        lo, hi = d.min(dim=1).values, d.max(dim=1).values
        if self.min_val.numel() == 0:
            self.min_val, self.max_val = lo, hi
        elif self.min_val.shape != lo.shape:
            raise ValueError(
                f"PerChannelMinMaxObserver: saw {lo.numel()} channels after {self.min_val.numel()}"
            )
        else:
            self.min_val = torch.minimum(self.min_val, lo)
            self.max_val = torch.maximum(self.max_val, hi)
        return x


def _subsample(d: torch.Tensor, limit: int) -> torch.Tensor:
    d = d.flatten()
    if d.numel() <= limit:
        return d
    idx = torch.randint(0, d.numel(), (limit,), generator=torch.Generator().manual_seed(0))
    return d[idx]


class PercentileObserver(ObserverBase):
    """Clips outliers: the range is the average over batches of each batch's
    ``(100 - percentile)``-th and ``percentile``-th percentiles (e.g. 99.99; nearest rank,
    over at most 2^20 sampled values per batch)."""

    def __init__(self, percentile: float = 99.99, **kwargs):
        super().__init__(**kwargs)
        if not (isinstance(percentile, (int, float)) and 50 < percentile <= 100):
            raise ValueError(
                f"PercentileObserver: percentile must be in (50, 100], got {percentile!r}"
            )
        self.percentile = float(percentile)
        self.register_buffer("batches", torch.tensor(0, dtype=torch.int64))

    def forward(self, x):
        self._check_input(x)
        if x.numel():
            d = _subsample(x.detach().to(torch.float32), 1 << 20)
            # Nearest-rank percentiles from the k extreme values: topk with small k is far
            # cheaper than the full sort torch.quantile does.
            k = max(1, d.numel() - math.ceil(self.percentile / 100 * d.numel()) + 1)
            hi = d.topk(k).values[-1]
            lo = d.topk(k, largest=False).values[-1]
            n = int(self.batches)
            if n == 0:
                self.min_val, self.max_val = lo, hi
            else:
                self.min_val = self.min_val + (lo - self.min_val) / (n + 1)
                self.max_val = self.max_val + (hi - self.max_val) / (n + 1)
            self.batches += 1
        return x


class MSEObserver(ObserverBase):
    """Chooses the clipping range that minimizes the mean squared quantization error over
    a sample of the observed values: a grid search over the observed min/max range scaled
    by (grid - i) / grid, i = 0 .. grid - 1."""

    def __init__(self, sample_size: int = 1 << 16, grid: int = 64, **kwargs):
        super().__init__(**kwargs)
        for field, v in (("sample_size", sample_size), ("grid", grid)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"MSEObserver: {field} must be a positive int, got {v!r}")
        self.sample_size = sample_size
        self.grid = grid
        self.register_buffer("sample", torch.empty(0))

    def forward(self, x):
        self._check_input(x)
        if x.numel():
            d = x.detach().to(torch.float32)
            self._widen_range(d)
            # A fresh batch gets as much of the sample as the history (reservoir-like).
            seen = int(self.sample.numel())
            keep = self.sample_size if seen == 0 else max(1, self.sample_size // 2)
            merged = torch.cat(
                [_subsample(self.sample, self.sample_size - keep), _subsample(d, keep)]
            )
            self.sample = merged
        return x

    def calculate_qparams(self):
        best = None
        for i in range(self.grid):
            alpha = (self.grid - i) / self.grid
            scale, zp = self._qparams(self.min_val * alpha, self.max_val * alpha)
            q = torch.clamp(torch.round(self.sample / scale) + zp, self.quant_min, self.quant_max)
            err = float(((q - zp) * scale - self.sample).pow(2).mean())
            if best is None or err < best[0]:
                best = (err, scale, zp)
        return best[1], best[2]
