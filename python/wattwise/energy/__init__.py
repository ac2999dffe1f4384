"""Energy and carbon tracking (``wattwise.EnergyTracker``, ``wattwise.track_energy``).

A C++ sampler reads RAPL, the perf power PMU or NVML (or estimates from CPU time when no
sensor is readable) and every figure in the :class:`EnergyReport` says which.
"""

from ._tables import lookup_cpu_power, resolve_carbon_intensity
from .report import EnergyReport
from .tracker import EnergyTracker, track_energy

__all__ = [
    "EnergyReport",
    "EnergyTracker",
    "lookup_cpu_power",
    "resolve_carbon_intensity",
    "track_energy",
]
