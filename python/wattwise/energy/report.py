"""EnergyReport: what a tracked run (or phase) consumed, per component, each figure labeled
with the method that produced it ("rapl" | "perf" | "nvml" | "estimate")."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

J_PER_KWH = 3.6e6

# Column order of a sampler row (cpp/include/wattwise/energy/sampler.h, enum Column).
T, CPU_MEAS, CPU_EST, RAM_MEAS, RAM_EST, PROC_CPU, PROC_RAM, BUSY_S, PROC_S, GPU0 = range(10)


@dataclass
class EnergyReport:
    """Energy, emissions and a power timeline of one tracked run or phase.

    ``energy_kwh`` is the sum of ``cpu_energy_kwh``, ``gpu_energy_kwh`` and
    ``ram_energy_kwh`` (IT energy, before PUE); ``emissions_kg`` is
    ``energy_kwh * pue * carbon_intensity_g_per_kwh / 1000``. The top-level figures are the
    machine's (``tracking_mode="machine"``) or the process's (``"process"``); both sets are in
    ``machine`` and ``process``. ``methods`` labels each component: ``"rapl"``, ``"perf"``,
    ``"nvml"`` or ``"estimate"`` (``"rapl+estimate"`` when a sensor vanished mid-run, with
    the split in ``energy_by_method_kwh``).
    """

    project_name: str
    run_id: str
    experiment_id: str
    timestamp: str
    duration_s: float
    energy_kwh: float
    cpu_energy_kwh: float
    gpu_energy_kwh: float
    ram_energy_kwh: float
    emissions_kg: float
    carbon_intensity_g_per_kwh: float
    carbon_intensity_source: str
    pue: float
    tracking_mode: str
    methods: dict[str, str]
    energy_by_method_kwh: dict[str, dict[str, float]]
    machine: dict[str, float]
    process: dict[str, float]
    gpu_energy_kwh_per_gpu: list[float]
    cpu_model: str
    cpu_count: int
    gpu_names: list[str]
    ram_total_gb: float
    interval_s: float
    country_iso_code: str = ""
    country_name: str = ""
    region: str = ""
    cloud_provider: str = ""
    cloud_region: str = ""
    assumptions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    phases: dict[str, EnergyReport] = field(default_factory=dict)
    _timeline: np.ndarray | None = field(default=None, repr=False)

    @property
    def emissions_rate_kg_per_s(self) -> float:
        return self.emissions_kg / self.duration_s if self.duration_s > 0 else 0.0

    def timeline(self, format: str = "numpy"):
        """The power timeline: one entry per sampling interval.

        ``format="numpy"`` (default) returns a structured array with fields ``t_s`` (end of
        the interval, seconds since start), ``total_w``, ``cpu_w``, ``ram_w``, ``gpu_w``,
        ``process_cpu_w``, ``process_ram_w``, one ``gpu<i>_w`` per GPU and ``energy_kwh``
        (cumulative, in the report's tracking mode). ``format="pandas"`` returns the same as
        a DataFrame (pandas must be installed).
        """
        if format not in ("numpy", "pandas"):
            raise ValueError(
                f"EnergyReport.timeline: format must be 'numpy' or 'pandas', got {format!r}"
            )
        tl = self._timeline if self._timeline is not None else _empty_timeline(0)
        if format == "numpy":
            return tl.copy()
        try:
            import pandas as pd
        except ImportError as exc:
            raise ImportError(
                "EnergyReport.timeline(format='pandas') needs pandas: pip install pandas"
            ) from exc
        return pd.DataFrame(tl)

    def to_dict(self, timeline: bool = True) -> dict[str, Any]:
        """A JSON-ready dict of every field (phases nested), with the timeline as lists."""
        d = {k: v for k, v in self.__dict__.items() if not k.startswith("_") and k != "phases"}
        d["emissions_rate_kg_per_s"] = self.emissions_rate_kg_per_s
        d["phases"] = {k: p.to_dict(timeline=False) for k, p in self.phases.items()}
        if timeline:
            tl = self.timeline()
            d["timeline"] = {name: tl[name].tolist() for name in tl.dtype.names}
        return d

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    def __str__(self) -> str:
        lines = [
            f"wattwise energy report: {self.project_name} ({self.tracking_mode} mode, "
            f"{self.duration_s:.3f} s)",
        ]

        def row(name: str, kwh: float, method: str | None) -> str:
            label = f"[{method}]" if method else ""
            return f"  {name:<6} {kwh * 1e3:12.6f} Wh  {kwh * J_PER_KWH:12.2f} J  {label}"

        lines.append(row("cpu", self.cpu_energy_kwh, self.methods.get("cpu")))
        lines.append(row("ram", self.ram_energy_kwh, self.methods.get("ram")))
        gpu = self.methods.get("gpu", "no GPU visible")
        lines.append(row("gpu", self.gpu_energy_kwh, gpu))
        lines.append(row("total", self.energy_kwh, None))
        lines.append(
            f"  emissions {self.emissions_kg * 1e3:.6f} g CO2e at "
            f"{self.carbon_intensity_g_per_kwh:g} g/kWh x PUE {self.pue:g} "
            f"({self.carbon_intensity_source})"
        )
        lines.append(f"  CPU: {self.cpu_model} ({self.cpu_count} logical CPUs)")
        if self.gpu_names:
            lines.append("  GPUs: " + ", ".join(self.gpu_names))
        for name, p in self.phases.items():
            lines.append(
                f"  phase {name!r}: {p.energy_kwh * J_PER_KWH:.2f} J in {p.duration_s:.3f} s"
            )
        for a in self.assumptions:
            lines.append(f"  assumption: {a}")
        for n in self.notes:
            lines.append(f"  note: {n}")
        return "\n".join(lines)


def _timeline_dtype(n_gpus: int) -> np.dtype:
    names = ["t_s", "total_w", "cpu_w", "ram_w", "gpu_w", "process_cpu_w", "process_ram_w"]
    names += [f"gpu{i}_w" for i in range(n_gpus)] + ["energy_kwh"]
    return np.dtype([(n, np.float64) for n in names])


def _empty_timeline(n_gpus: int) -> np.ndarray:
    return np.zeros(0, dtype=_timeline_dtype(n_gpus))


def build_timeline(rows: np.ndarray, n_gpus: int, process_mode: bool) -> np.ndarray:
    """Per-interval power from cumulative sampler rows (shape (n, width))."""
    if rows.shape[0] < 2:
        return _empty_timeline(n_gpus)
    d = np.diff(rows, axis=0)
    dt = d[:, T]
    keep = dt > 0
    d, ends, dt = d[keep], rows[1:, :][keep], dt[keep]
    tl = np.zeros(d.shape[0], dtype=_timeline_dtype(n_gpus))
    tl["t_s"] = ends[:, T]
    tl["cpu_w"] = (d[:, CPU_MEAS] + d[:, CPU_EST]) / dt
    tl["ram_w"] = (d[:, RAM_MEAS] + d[:, RAM_EST]) / dt
    gpu = d[:, GPU0 : GPU0 + n_gpus]
    tl["gpu_w"] = gpu.sum(axis=1) / dt
    for i in range(n_gpus):
        tl[f"gpu{i}_w"] = gpu[:, i] / dt
    tl["process_cpu_w"] = d[:, PROC_CPU] / dt
    tl["process_ram_w"] = d[:, PROC_RAM] / dt
    if process_mode:
        tl["total_w"] = tl["process_cpu_w"] + tl["process_ram_w"] + tl["gpu_w"]
    else:
        tl["total_w"] = tl["cpu_w"] + tl["ram_w"] + tl["gpu_w"]
    tl["energy_kwh"] = np.cumsum(tl["total_w"] * dt) / J_PER_KWH
    return tl
