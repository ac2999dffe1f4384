"""wattwise: measure and cut the energy of PyTorch models.

Pillars: quantization (``wattwise.quantization``), with energy tracking, pruning and early
exit following the same layout. Importing wattwise imports torch and registers the
``torch.ops.wattwise`` operators.
"""

from __future__ import annotations

from . import early_exit, prune
from ._extension import _C, _build_config
from .energy import EnergyReport, EnergyTracker, track_energy
from .quantization import quantize_
from .review import Comparison, compare

__version__ = _build_config.WATTWISE_VERSION


def cpu_info() -> dict:
    """The CPU as wattwise sees it.

    Returns a dict with ``simd`` (the kernel path in use: ``"avx512vnni"``, ``"avx2"`` or
    ``"scalar"``; only the int8 x int8 kernels have an AVX-512 VNNI variant, the others run
    their AVX2 version at that level),
    ``simd_detected`` (the best path this CPU and build support), ``model``,
    ``logical_cpus``, ``physical_cores``, ``num_threads`` (threads the kernels use; they
    run on torch's intra-op pool, so ``torch.set_num_threads`` applies), ``thread_pool``
    and ``features`` (individual ISA flags).
    """
    return dict(_C.cpu_info())


def set_simd(level: str) -> None:
    """Force the kernel path for the whole process.

    ``level`` is ``"auto"`` (the best available, the default), ``"avx512vnni"``, ``"avx2"``
    or ``"scalar"`` (the reference kernels, useful to rule out a kernel bug). The
    environment variable ``WATTWISE_SIMD`` sets the same at start-up. Raises ``ValueError``
    for an unknown level or one this CPU cannot run.
    """
    if not isinstance(level, str):
        raise TypeError(f"set_simd: level must be a str, got {type(level).__name__}")
    _C.set_simd(level)


__all__ = [
    "Comparison",
    "EnergyReport",
    "EnergyTracker",
    "__version__",
    "compare",
    "cpu_info",
    "early_exit",
    "energy",
    "prune",
    "quantization",
    "quantize_",
    "set_simd",
    "track_energy",
]
