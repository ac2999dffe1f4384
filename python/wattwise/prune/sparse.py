"""Sparse Linear modules backed by the C++ kernels (CSR with 16-bit columns, and N:M), and
sparsify_, which swaps a pruned nn.Linear for one only where it is faster than dense."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .._linear import LinearLayerMixin
from . import _ops
from ._validate import check_module, layer_label
from .compat import effective_tensor

_wops = torch.ops.wattwise
CSR_MAX_IN = 65536
# Batch-1 sparse GEMV on weights beyond the cache: measured on an AVX2 machine (benchmarks/
# prune_sparse_linear.py) it reaches 0.64-0.78 of the speed its byte count alone would give;
# the model takes the low end so that it errs towards keeping layers dense.
_GATHER_EFFICIENCY = 0.65


class _SparseBase(LinearLayerMixin):
    in_features: int
    out_features: int

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        if x.device.type in ("cpu", "meta") and x.dtype == torch.float32:
            return self._kernel(x)
        w = self.to_dense().to(x.device, x.dtype)
        return F.linear(x, w, None if self.bias is None else self.bias.to(x.dtype))

    def to_linear(self) -> nn.Linear:
        lin = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None)
        with torch.no_grad():
            lin.weight.copy_(self.to_dense())
            if self.bias is not None:
                lin.bias.copy_(self.bias)
        return lin

    def extra_repr(self) -> str:
        nnz = self.values.numel()
        dens = nnz / max(self.in_features * self.out_features, 1)
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, density={dens:.3f}"
        )


def _bias_param(linear: nn.Linear):
    if linear.bias is None:
        return None
    b = effective_tensor(linear, "bias").to(torch.float32).clone()
    return nn.Parameter(b, requires_grad=linear.bias.requires_grad)


def _dense_weight(linear: nn.Module, fqn: str) -> torch.Tensor:
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"{layer_label(linear, fqn)}: expected torch.nn.Linear")
    w = effective_tensor(linear, "weight")
    if not w.is_floating_point():
        raise TypeError(f"{layer_label(linear, fqn)}: weight must be floating point, got {w.dtype}")
    return w.to(torch.float32, copy=False).cpu()


class SparseLinear(_SparseBase):
    """y = x W^T + b with W stored as CSR: row_ptr (int32), col (uint16 bits in an int16
    buffer), values (fp32). Buffers only, so state_dict round-trips without pickling."""

    def __init__(
        self, in_features: int, out_features: int, nnz: int = 0, bias: bool = True, fqn: str = ""
    ):
        super().__init__()
        if not 0 <= in_features <= CSR_MAX_IN:
            raise ValueError(
                f"SparseLinear {fqn!r}: in_features must be <= {CSR_MAX_IN}, got {in_features}"
            )
        self.in_features, self.out_features, self.fqn = int(in_features), int(out_features), fqn
        self.register_buffer("row_ptr", torch.zeros(out_features + 1, dtype=torch.int32))
        self.register_buffer("col", torch.zeros(nnz, dtype=torch.int16))
        self.register_buffer("values", torch.zeros(nnz, dtype=torch.float32))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    @classmethod
    def from_dense(cls, linear: nn.Linear, fqn: str = "") -> SparseLinear:
        w = _dense_weight(linear, fqn)
        n, k = w.shape
        if k > CSR_MAX_IN:
            raise ValueError(f"{layer_label(linear, fqn)}: in_features={k} exceeds {CSR_MAX_IN}")
        nz = w != 0
        mod = cls(k, n, 0, linear.bias is not None, fqn)
        mod.row_ptr = torch.cat([torch.zeros(1, dtype=torch.int64), nz.sum(1).cumsum(0)]).to(
            torch.int32
        )
        cols = nz.nonzero()[:, 1]
        mod.col = cols.to(torch.int32).to(torch.int16)  # wraps above 32767; read back as uint16
        mod.values = w[nz].contiguous()
        mod.bias = _bias_param(linear)
        return mod

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # The number of non-zeros is data: take the stored sizes before the copy.
        for key in ("col", "values"):
            t = state_dict.get(prefix + key)
            if t is not None and t.shape != getattr(self, key).shape:
                setattr(self, key, torch.empty_like(t))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.check()

    def check(self) -> None:
        """Full structure check (O(non-zeros)); the kernel itself only checks row pointers."""
        rp, col = self.row_ptr.to(torch.int64), self.col.to(torch.int64) & 0xFFFF
        if rp.numel() != self.out_features + 1 or rp[0] != 0 or bool((rp[1:] < rp[:-1]).any()):
            raise ValueError(f"{self._name()}: row_ptr is not a valid CSR row-pointer array")
        if int(rp[-1]) != col.numel() or col.numel() != self.values.numel():
            raise ValueError(
                f"{self._name()}: row_ptr[-1]={int(rp[-1])} does not match "
                f"{col.numel()} columns and {self.values.numel()} values"
            )
        if col.numel() and int(col.max()) >= self.in_features:
            raise ValueError(
                f"{self._name()}: column index {int(col.max())} out of range for "
                f"in_features={self.in_features}"
            )

    def to_dense(self) -> torch.Tensor:
        return _ops.csr_to_dense(self.row_ptr, self.col, self.values, self.in_features)

    def _kernel(self, x):
        return _wops.sparse_csr_linear(
            x, self.row_ptr, self.col, self.values, self.in_features, self.bias
        )


class NMSparseLinear(_SparseBase):
    """y = x W^T + b with W in N:M form: values [out, in / M * N] fp32 and idx (position inside
    each run of M inputs, uint8). 5 bytes per kept weight, no row pointers."""

    def __init__(
        self, in_features: int, out_features: int, n: int, m: int, bias: bool = True, fqn: str = ""
    ):
        super().__init__()
        if not (1 <= n <= m <= 255) or in_features % m:
            raise ValueError(
                f"NMSparseLinear {fqn!r}: need 1 <= N <= M <= 255 and M dividing in_features, "
                f"got N={n} M={m} in_features={in_features}"
            )
        self.in_features, self.out_features, self.n, self.m, self.fqn = (
            int(in_features),
            int(out_features),
            n,
            m,
            fqn,
        )
        kept = in_features // m * n
        self.register_buffer("values", torch.zeros(out_features, kept))
        self.register_buffer("idx", torch.zeros(out_features, kept, dtype=torch.uint8))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    @classmethod
    def from_dense(cls, linear: nn.Linear, n: int, m: int, fqn: str = "") -> NMSparseLinear:
        w = _dense_weight(linear, fqn)
        rows, k = w.shape
        mod = cls(k, rows, n, m, linear.bias is not None, fqn)
        g = w.reshape(rows, k // m, m)
        if int((g != 0).sum(2).max()) > n if g.numel() else False:
            raise ValueError(f"{layer_label(linear, fqn)}: weight is not {n}:{m} sparse")
        # The n largest |w| of each run, in ascending position (zeros fill short runs).
        idx = g.abs().topk(n, dim=2).indices.sort(dim=2).values
        mod.values = g.gather(2, idx).reshape(rows, -1).contiguous()
        mod.idx = idx.to(torch.uint8).reshape(rows, -1).contiguous()
        mod.bias = _bias_param(linear)
        return mod

    def to_dense(self) -> torch.Tensor:
        return _ops.nm_to_dense(self.values, self.idx, self.n, self.m)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if self.idx.numel() and int(self.idx.max()) >= self.m:
            raise ValueError(
                f"{self._name()}: index {int(self.idx.max())} out of range for M={self.m}"
            )

    def _kernel(self, x):
        return _wops.sparse_nm_linear(x, self.values, self.idx, self.n, self.m, self.bias)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", pattern={self.n}:{self.m}"


def detect_nm(w: torch.Tensor) -> tuple[int, int] | None:
    """The sparsest of 1:4, 2:4, 2:8, 4:8 that w satisfies (at most N non-zeros per M-run)."""
    k = w.shape[1]
    for n, m in ((1, 4), (2, 8), (2, 4), (4, 8)):
        if k % m == 0 and w.numel() and int((w.reshape(w.shape[0], -1, m) != 0).sum(2).max()) <= n:
            return n, m
    return None


def modelled_speedup(w: torch.Tensor, nm: tuple[int, int] | None) -> float:
    """Batch-1 speedup predicted from bytes moved (weights beyond cache dominate)."""
    dense = 4.0 * w.numel()
    if nm is not None:
        sparse = 5.0 * w.numel() * nm[0] / nm[1]
    else:
        sparse = 6.0 * int(w.count_nonzero()) + 4.0 * (w.shape[0] + 1)
    return _GATHER_EFFICIENCY * dense / max(sparse, 1.0)


def _time(fn, x, reps: int) -> float:
    fn(x)
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn(x)
        best = min(best, time.perf_counter() - t0)
    return best


@torch.no_grad()
def measured_speedup(dense: nn.Linear, sparse: nn.Module, batch_size: int, reps: int = 7) -> float:
    x = torch.randn(batch_size, dense.in_features)
    w = effective_tensor(dense, "weight").float().contiguous()
    b = None if dense.bias is None else effective_tensor(dense, "bias").float()
    t_dense = _time(lambda v: F.linear(v, w, b), x, reps)
    t_sparse = _time(sparse, x, reps)
    return t_dense / max(t_sparse, 1e-12)


def sparsify_(
    model: nn.Module,
    min_speedup: float = 1.0,
    filter_fn: Callable[[nn.Module, str], bool] | None = None,
    batch_size: int = 1,
    measure: bool = True,
) -> dict[str, dict]:
    """Replaces pruned nn.Linear layers by SparseLinear (CSR) or NMSparseLinear (when the weight
    is N:M sparse), only where the sparse layer is at least `min_speedup` times as fast as dense
    at `batch_size`: measured on the layer (measure=True, best of several runs of each) or
    modelled from bytes moved (measure=False). Returns {fqn: decision dict} for every
    candidate, with "replaced", "format", "sparsity" and "speedup"."""
    check_module(model, arg="model")
    if (
        isinstance(min_speedup, bool)
        or not isinstance(min_speedup, (int, float))
        or min_speedup <= 0
    ):
        raise ValueError(f"min_speedup must be a positive number, got {min_speedup!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if filter_fn is not None and not callable(filter_fn):
        raise TypeError(f"filter_fn must be callable(module, fqn) -> bool, got {filter_fn!r}")
    decisions = {}
    candidates = [
        (fqn, mod)
        for fqn, mod in model.named_modules()
        if type(mod) is nn.Linear and (filter_fn is None or filter_fn(mod, fqn))
    ]
    for fqn, lin in candidates:
        w = _dense_weight(lin, fqn)
        sparsity = 1.0 - float(w.count_nonzero()) / max(w.numel(), 1)
        nm = detect_nm(w)
        if nm is not None and 5 * w.numel() * nm[0] / nm[1] > 6 * (w.numel() * (1 - sparsity)):
            nm = None  # far sparser than its N:M pattern: CSR moves fewer bytes
        if nm is None and lin.in_features > CSR_MAX_IN:
            decisions[fqn] = dict(
                replaced=False,
                format=None,
                sparsity=sparsity,
                speedup=None,
                reason=f"in_features > {CSR_MAX_IN}",
            )
            continue
        fmt = f"{nm[0]}:{nm[1]}" if nm else "csr"
        new = (
            NMSparseLinear.from_dense(lin, *nm, fqn=fqn)
            if nm
            else SparseLinear.from_dense(lin, fqn=fqn)
        )
        speedup = measured_speedup(lin, new, batch_size) if measure else modelled_speedup(w, nm)
        ok = speedup >= min_speedup
        decisions[fqn] = dict(replaced=ok, format=fmt, sparsity=sparsity, speedup=speedup)
        if ok:
            new.train(lin.training)
            _set_submodule(model, fqn, new)
    return decisions


def _set_submodule(model: nn.Module, fqn: str, new: nn.Module) -> None:
    parent_name, _, child = fqn.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    if not fqn:
        raise ValueError("sparsify_: the model itself is a Linear; wrap it in a container")
    setattr(parent, child, new)
