"""Output files: CodeCarbon-compatible emissions.csv rows, appended atomically, and the JSON
report with its timeline."""

from __future__ import annotations

import contextlib
import csv
import fcntl
import functools
import io
import json
import os
import platform
import tempfile

from .report import J_PER_KWH, EnergyReport

# CodeCarbon's emissions.csv columns, in its order, so that its dashboards read our file;
# wattwise's own columns follow.
CODECARBON_COLUMNS = [
    "timestamp", "project_name", "run_id", "experiment_id", "duration", "emissions",
    "emissions_rate", "cpu_power", "gpu_power", "ram_power", "cpu_energy", "gpu_energy",
    "ram_energy", "energy_consumed", "country_name", "country_iso_code", "region",
    "cloud_provider", "cloud_region", "os", "python_version", "codecarbon_version",
    "cpu_count", "cpu_model", "gpu_count", "gpu_model", "longitude", "latitude",
    "ram_total_size", "tracking_mode", "on_cloud", "pue",
]  # fmt: skip
WATTWISE_COLUMNS = [
    "wattwise_version", "cpu_method", "gpu_method", "ram_method",
    "carbon_intensity_g_per_kwh", "carbon_intensity_source", "machine_energy_kwh",
    "process_energy_kwh", "timeline_file", "notes",
]  # fmt: skip


def _atomic_write(path: str, data: str) -> None:
    d = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".wattwise-", dir=d)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        # rename(2) is atomic: a reader, or a run killed at any point, sees the old file or
        # the new one, never a half. (No fsync: it would cost milliseconds per stop() and
        # only matters for a power cut.)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _csv_text(fieldnames, rows, header: bool) -> str:
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=fieldnames, restval="", lineterminator="\n")
    if header:
        w.writeheader()
    w.writerows(rows)
    return out.getvalue()


def append_csv_row(path: str, row: dict) -> None:
    """Appends one row to a CSV file so that a killed process or a concurrent writer never
    leaves a half-written file: under a directory lock, one O_APPEND write of the whole line
    when the header matches; otherwise (a new column, or another tool's file) the file is
    rewritten with the union of the columns and renamed into place."""
    d = os.path.dirname(os.path.abspath(path))
    lock_fd = os.open(d, os.O_RDONLY)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)  # released by the kernel if we die: never stale
        header: list[str] = []
        if os.path.exists(path) and os.path.getsize(path) > 0:
            with open(path, newline="", encoding="utf-8") as f:
                header = next(csv.reader(f), [])
        if not header:
            _atomic_write(path, _csv_text(list(row), [row], header=True))
        elif set(row) <= set(header):
            data = _csv_text(header, [row], header=False).encode("utf-8")
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            try:
                if os.write(fd, data) != len(data):
                    raise OSError(f"short write appending to {path}")
            finally:
                os.close(fd)
        else:
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
            header += [c for c in row if c not in header]
            _atomic_write(path, _csv_text(header, [*rows, row], header=True))
    finally:
        os.close(lock_fd)


@functools.lru_cache(maxsize=1)
def _platform() -> str:
    return platform.platform()  # reads the interpreter binary: slow enough to cache


def emissions_row(report: EnergyReport, timeline_file: str = "") -> dict:
    """One emissions.csv row: CodeCarbon's columns (kWh, W, kg), then wattwise's."""
    from .. import __version__

    d = report.duration_s
    gpu_names = report.gpu_names
    row = {
        "timestamp": report.timestamp,
        "project_name": report.project_name,
        "run_id": report.run_id,
        "experiment_id": report.experiment_id,
        "duration": d,
        "emissions": report.emissions_kg,
        "emissions_rate": report.emissions_rate_kg_per_s,
        "cpu_power": report.cpu_energy_kwh * J_PER_KWH / d if d > 0 else 0.0,
        "gpu_power": report.gpu_energy_kwh * J_PER_KWH / d if d > 0 else 0.0,
        "ram_power": report.ram_energy_kwh * J_PER_KWH / d if d > 0 else 0.0,
        "cpu_energy": report.cpu_energy_kwh,
        "gpu_energy": report.gpu_energy_kwh,
        "ram_energy": report.ram_energy_kwh,
        "energy_consumed": report.energy_kwh,
        "country_name": report.country_name,
        "country_iso_code": report.country_iso_code,
        "region": report.region,
        "cloud_provider": report.cloud_provider,
        "cloud_region": report.cloud_region,
        "os": _platform(),
        "python_version": platform.python_version(),
        "codecarbon_version": "",
        "cpu_count": report.cpu_count,
        "cpu_model": report.cpu_model,
        "gpu_count": len(gpu_names),
        "gpu_model": ", ".join(gpu_names),
        "longitude": "",
        "latitude": "",
        "ram_total_size": report.ram_total_gb,
        "tracking_mode": report.tracking_mode,
        "on_cloud": "Y" if report.cloud_provider else "N",
        "pue": report.pue,
        "wattwise_version": __version__,
        "cpu_method": report.methods["cpu"],
        "gpu_method": report.methods.get("gpu", ""),
        "ram_method": report.methods["ram"],
        "carbon_intensity_g_per_kwh": report.carbon_intensity_g_per_kwh,
        "carbon_intensity_source": report.carbon_intensity_source,
        "machine_energy_kwh": report.machine["energy_kwh"],
        "process_energy_kwh": report.process["energy_kwh"],
        "timeline_file": timeline_file,
        "notes": " | ".join(report.notes),
    }
    return row


def save_report(report: EnergyReport, output_dir: str, output_file: str, timeline: bool) -> None:
    """Appends the report's row to output_dir/output_file and, with ``timeline``, writes the
    whole report as ``<stem>_<run_id>.json`` beside it."""
    os.makedirs(output_dir, exist_ok=True)
    json_name = ""
    if timeline:
        json_name = f"{os.path.splitext(output_file)[0]}_{report.run_id}.json"
        _atomic_write(os.path.join(output_dir, json_name), json.dumps(report.to_dict(), indent=1))
    append_csv_row(os.path.join(output_dir, output_file), emissions_row(report, json_name))
