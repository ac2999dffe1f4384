"""EnergyTracker and track_energy: CodeCarbon's tracker API over wattwise's C++ sampler.

The sampler thread lives in C++ and never takes the GIL; Python only touches it at start,
stop, flush and phase boundaries, when it collects the buffered samples as numpy arrays.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as _dt
import functools
import logging
import math
import numbers
import os
import threading
import uuid
import warnings
import weakref

import numpy as np

from .._extension import _C
from . import _tables
from .output import save_report
from .report import (
    CPU_EST,
    CPU_MEAS,
    GPU0,
    J_PER_KWH,
    PROC_CPU,
    PROC_RAM,
    RAM_EST,
    RAM_MEAS,
    EnergyReport,
    T,
    build_timeline,
)

_log = logging.getLogger("wattwise.energy")
_WHERE = "wattwise.EnergyTracker"
_TRACKING_MODES = ("machine", "process")

_PERMISSION_HELP = (
    "wattwise: the RAPL energy counters (/sys/class/powercap/intel-rapl*/energy_uj) are "
    "readable by root only since Linux 5.10 (CVE-2020-8694), so CPU energy falls back to "
    "perf or an estimate. To measure without root, either let a group read them, e.g. a udev "
    "rule in /etc/udev/rules.d/99-powercap.rules:\n"
    '  SUBSYSTEM=="powercap", ACTION=="add", RUN+="/bin/chgrp -R power /sys%p", '
    'RUN+="/bin/chmod -R g+r /sys%p"\n'
    "(or once, until reboot: sudo chmod -R a+r /sys/class/powercap/intel-rapl*/), or allow the "
    "perf power counters: sudo sysctl kernel.perf_event_paranoid=0, or grant the interpreter "
    "CAP_PERFMON: sudo setcap cap_perfmon+ep $(readlink -f $(which python))."
)

_said_once: set[str] = set()
_said_lock = threading.Lock()
_live: weakref.WeakSet[EnergyTracker] = weakref.WeakSet()
_orphans: list = []  # samplers inherited through fork: never destroyed in the child


def _once(key: str) -> bool:
    with _said_lock:
        if key in _said_once:
            return False
        _said_once.add(key)
        return True


def _after_fork_in_child() -> None:
    for tracker in list(_live):
        tracker._forget_after_fork()


def _stop_all_at_exit() -> None:
    # Like CodeCarbon: a script that never called stop() still gets its report and CSV row.
    for tracker in list(_live):
        if tracker.running:
            with contextlib.suppress(Exception):
                tracker.stop()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_stop_all_at_exit)


def _check_number(name, value, lo, hi, *, lo_open=False, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{_WHERE}: {name} must be a number, got {type(value).__name__}")
    v = float(value)
    bad = not math.isfinite(v) or v > hi or (v <= lo if lo_open else v < lo)
    if bad:
        rng = f"{'(' if lo_open else '['}{lo:g}, {hi:g}]"
        raise ValueError(f"{_WHERE}: {name} must be in {rng}, got {value!r}")
    return v


def _check_str(name, value, *, allow_none=True, allow_empty=False):
    if value is None and allow_none:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{_WHERE}: {name} must be a str, got {type(value).__name__}")
    if not value and not allow_empty:
        raise ValueError(f"{_WHERE}: {name} must not be empty, got {value!r}")
    return value


def cgroup_files(procfs_root: str, sysfs_root: str, pid: int | None) -> tuple[str, str]:
    """The CPU-time and memory files of pid's cgroup (v1 cpuacct/memory or v2), looked up
    under ``<sysfs_root>/fs/cgroup``; a path missing there falls back to the hierarchy's root,
    which is what a container with its own cgroup namespace sees. Raises ValueError when
    there is none."""
    where = os.path.join(procfs_root, str(pid) if pid else "self", "cgroup")
    try:
        with open(where, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as exc:
        raise ValueError(f"{_WHERE}: process_scope='cgroup' but {where} is unreadable") from exc
    base = os.path.join(sysfs_root, "fs", "cgroup")

    def find(dirs, path, name):
        for d in dirs:
            for cand in (os.path.join(d, path.lstrip("/")), d):
                if os.path.isfile(os.path.join(cand, name)):
                    return os.path.join(cand, name)
        return ""

    cpu = mem = ""
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hid, ctrls, path = parts
        names = ctrls.split(",")
        if "cpuacct" in names and not cpu:
            dirs = [os.path.join(base, ctrls), os.path.join(base, "cpuacct")]
            cpu = find(dirs, path, "cpuacct.usage")
        if "memory" in names and not mem:
            mem = find([os.path.join(base, "memory")], path, "memory.usage_in_bytes")
        if hid == "0" and ctrls == "":
            dirs = [base, os.path.join(base, "unified")]
            cpu = cpu or find(dirs, path, "cpu.stat")
            mem = mem or find(dirs, path, "memory.current")
    if not cpu:
        raise ValueError(
            f"{_WHERE}: process_scope='cgroup' but no cgroup CPU accounting file "
            f"(cpuacct.usage or cpu.stat) was found under {base} for {where}"
        )
    return cpu, mem


class EnergyTracker:
    """Tracks energy and emissions of a block of code, like CodeCarbon's EmissionsTracker.

    Use as a context manager (``with EnergyTracker("run") as t: ...``), or call ``start()``
    and ``stop()`` (in different notebook cells if you like); ``stop()`` returns the
    :class:`EnergyReport`, also kept as ``tracker.report``. ``tracker.phase(name)`` measures
    a named part (nested and thread-safe). A stopped tracker can start again.

    Sources are detected at the first ``start()``: RAPL (``sysfs_root/class/powercap``), else
    the perf power PMU, for the CPU package and DRAM; NVML (dlopen'ed ``nvml_library``) for
    the GPUs in ``CUDA_VISIBLE_DEVICES``; without a readable CPU sensor, an estimate from CPU
    time (``procfs_root``) and wattwise's CPU power table. Each figure says which.

    Carbon intensity: ``carbon_intensity_g_per_kwh`` if given, else the cloud region's grid
    (``cloud_provider`` + ``cloud_region``), else ``country_iso_code`` (ISO alpha-3), else the
    world average, all from tables shipped with wattwise (no network access).

    With ``save_to_file``, ``stop()`` and ``flush()`` append a row to
    ``output_dir/output_file`` (CodeCarbon's emissions.csv columns plus wattwise's) and
    ``stop()`` writes the timeline as JSON beside it.

    The process figures follow ``pid`` (default: this process, with its waited-for
    children) or, with ``process_scope="cgroup"``, the whole cgroup of that process (a
    container or a batch job).
    """

    def __init__(
        self,
        project_name: str = "wattwise",
        output_dir: str | os.PathLike = ".",
        interval_s: float = 0.1,
        *,
        experiment_id: str | None = None,
        country_iso_code: str | None = None,
        cloud_provider: str | None = None,
        cloud_region: str | None = None,
        carbon_intensity_g_per_kwh: float | None = None,
        pue: float = 1.0,
        tracking_mode: str = "machine",
        save_to_file: bool = True,
        output_file: str = "emissions.csv",
        sysfs_root: str | os.PathLike = "/sys",
        procfs_root: str | os.PathLike = "/proc",
        gpu: bool = True,
        nvml_library: str = "libnvidia-ml.so.1",
        cpu_watts_per_thread: float | None = None,
        cpu_idle_fraction: float = 0.3,
        ram_watts_per_gb: float = _tables.RAM_WATTS_PER_GB,
        pid: int | None = None,
        process_scope: str = "pid",
    ) -> None:
        self.project_name = _check_str("project_name", project_name, allow_none=False)
        if not isinstance(output_dir, (str, os.PathLike)):
            raise TypeError(f"{_WHERE}: output_dir must be a path, got {type(output_dir).__name__}")
        self.output_dir = os.fspath(output_dir)
        self.interval_s = _check_number("interval_s", interval_s, 0.001, 3600)
        self.experiment_id = _check_str("experiment_id", experiment_id) or ""
        self.pue = _check_number("pue", pue, 1.0, 10.0)
        if tracking_mode not in _TRACKING_MODES:
            raise ValueError(
                f"{_WHERE}: tracking_mode must be 'machine' or 'process', got {tracking_mode!r}"
            )
        self.tracking_mode = tracking_mode
        for name, value in (("save_to_file", save_to_file), ("gpu", gpu)):
            if not isinstance(value, bool):
                raise TypeError(f"{_WHERE}: {name} must be a bool, got {type(value).__name__}")
        self.save_to_file = save_to_file
        self.output_file = _check_str("output_file", output_file, allow_none=False)
        if os.sep in self.output_file:
            raise ValueError(
                f"{_WHERE}: output_file must be a file name (use output_dir for the folder), "
                f"got {output_file!r}"
            )
        for name, value in (("sysfs_root", sysfs_root), ("procfs_root", procfs_root)):
            if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
                raise ValueError(f"{_WHERE}: {name} must be a non-empty path, got {value!r}")
        self.sysfs_root = os.fspath(sysfs_root)
        self.procfs_root = os.fspath(procfs_root)
        if not os.path.isfile(os.path.join(self.procfs_root, "stat")):
            raise ValueError(
                f"{_WHERE}: procfs_root {self.procfs_root!r} holds no 'stat' file (is it a "
                "mounted /proc?)"
            )
        self.gpu = gpu
        self.nvml_library = _check_str("nvml_library", nvml_library, allow_none=False)
        self.cpu_watts_per_thread = _check_number(
            "cpu_watts_per_thread", cpu_watts_per_thread, 0, 1000, lo_open=True, allow_none=True
        )
        self.cpu_idle_fraction = _check_number("cpu_idle_fraction", cpu_idle_fraction, 0, 1)
        self.ram_watts_per_gb = _check_number("ram_watts_per_gb", ram_watts_per_gb, 0, 100)
        if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0):
            raise ValueError(f"{_WHERE}: pid must be a positive int or None, got {pid!r}")
        self.pid = pid
        if process_scope not in ("pid", "cgroup"):
            raise ValueError(
                f"{_WHERE}: process_scope must be 'pid' or 'cgroup', got {process_scope!r}"
            )
        self.process_scope = process_scope
        self._cgroup = (
            cgroup_files(self.procfs_root, self.sysfs_root, pid)
            if process_scope == "cgroup"
            else ("", "")
        )
        for name, value in (
            ("country_iso_code", country_iso_code),
            ("cloud_provider", cloud_provider),
            ("cloud_region", cloud_region),
        ):
            _check_str(name, value)
        _check_number(
            "carbon_intensity_g_per_kwh", carbon_intensity_g_per_kwh, 0, 5000, allow_none=True
        )
        self.cloud_provider = cloud_provider or ""
        self.cloud_region = cloud_region or ""
        self._carbon = _tables.resolve_carbon_intensity(
            country_iso_code, cloud_provider, cloud_region, carbon_intensity_g_per_kwh, _WHERE
        )

        self.report: EnergyReport | None = None
        self._lock = threading.RLock()
        self._sampler = None
        self._cpu_power: _tables.CpuPower | None = None
        self._running = False
        self._rows: list[np.ndarray] = []
        self._phases: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        self._final_row: np.ndarray | None = None
        self._run_id = ""
        _live.add(self)

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> EnergyTracker:
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.stop()
        return False  # an exception inside the block propagates, after the report is made

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> EnergyTracker:
        """Starts measuring; raises RuntimeError if already running."""
        with self._lock:
            if self._running:
                raise RuntimeError(f"{_WHERE}.start: the tracker is already running")
            if self._sampler is None:
                self._sampler = self._make_sampler()
            self._rows = []
            self._phases = {}
            self._final_row = None
            self._run_id = str(uuid.uuid4())
            self._sampler.start()
            self._running = True
        return self

    def stop(self) -> EnergyReport | None:
        """Stops measuring and returns the report (the last one again if already stopped)."""
        with self._lock:
            if not self._running:
                return self.report
            self._sampler.stop()
            self._running = False
            self._rows.append(self._sampler.drain())
            self._final_row = self._sampler.snapshot()
            report = self._build(final=True)
            self.report = report
        if self.save_to_file:
            self._save_or_warn(report, with_timeline=True)
        return report

    def flush(self) -> EnergyReport:
        """The report so far, without stopping (also appended to the CSV when saving)."""
        with self._lock:
            if not self._running:
                raise RuntimeError(f"{_WHERE}.flush: the tracker is not running")
            row = self._sampler.snapshot()
            self._rows.append(self._sampler.drain())
            report = self._build(final=False, end_row=row)
        if self.save_to_file:
            self._save_or_warn(report, with_timeline=False)
        return report

    def restart(self) -> EnergyTracker:
        """Stops (if running) and starts a new run."""
        self.stop()
        return self.start()

    @contextlib.contextmanager
    def phase(self, name: str):
        """Measures a named phase of the run: ``with tracker.phase("epoch-1"): ...``.

        Phases may nest and may run in several threads at once; each gets its own energy
        (a phase entered repeatedly under one name accumulates). They appear in
        ``report.phases``.
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"{_WHERE}.phase: name must be a non-empty str, got {name!r}")
        start = self._phase_snapshot("phase")
        try:
            yield self
        finally:
            end = self._phase_snapshot(None)
            with self._lock:
                self._phases.setdefault(name, []).append((start, end))

    # -- internals -------------------------------------------------------------------------

    def _phase_snapshot(self, entering: str | None) -> np.ndarray:
        with self._lock:
            if self._running:
                sampler = self._sampler
            elif entering is not None:
                raise RuntimeError(f"{_WHERE}.{entering}: start the tracker first")
            else:
                return self._final_row  # stopped while the phase was open: ends with the run
        return sampler.snapshot()  # outside the lock: the sampler has its own

    def _make_sampler(self):
        if self.cpu_watts_per_thread is not None:
            power = _tables.CpuPower(
                _C.cpu_info()["model"],
                self.cpu_watts_per_thread,
                "user-supplied (cpu_watts_per_thread)",
            )
        else:
            power = _tables.lookup_cpu_power(_C.cpu_info()["model"])
        self._cpu_power = power
        sampler = _C.EnergySampler(
            interval_s=self.interval_s,
            sysfs_root=self.sysfs_root,
            procfs_root=self.procfs_root,
            pid=self.pid or 0,
            cgroup_cpu_file=self._cgroup[0],
            cgroup_memory_file=self._cgroup[1],
            use_nvml=self.gpu,
            nvml_library=self.nvml_library,
            cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
            cpu_watts_per_thread=power.watts_per_thread,
            cpu_idle_fraction=self.cpu_idle_fraction,
            ram_watts_per_gb=self.ram_watts_per_gb,
        )
        info = sampler.info()
        if info["permission_denied"] and _once("permission"):
            warnings.warn(_PERMISSION_HELP, RuntimeWarning, stacklevel=4)
        if info["cpu_method"] == "estimate" and _once("estimate"):
            _log.warning(
                "wattwise: no readable CPU energy counter (%s); CPU and RAM energy are "
                "estimated from CPU time and labeled 'estimate' in the report.",
                "; ".join(m for m in info["probe_messages"] if not m.startswith("nvml")),
            )
        return sampler

    def _forget_after_fork(self) -> None:
        # The C++ side already dropped the dead thread; drop the sampler without running its
        # destructor here (it could shut NVML down under the parent).
        if self._sampler is not None:
            _orphans.append(self._sampler)
        self._sampler = None
        self._running = False
        self._lock = threading.RLock()

    def _all_rows(self) -> np.ndarray:
        width = self._sampler.width
        parts = [r for r in self._rows if r.size]
        if not parts:
            return np.zeros((0, width))
        rows = np.concatenate(parts)
        self._rows = [rows]
        return rows

    def _build(self, final: bool, end_row: np.ndarray | None = None) -> EnergyReport:
        info = self._sampler.info()
        rows = self._all_rows()
        end = self._final_row if end_row is None else end_row
        start = np.zeros_like(end)
        report = self._report_from(
            info, end - start, float(end[T]), [(rows, start[T], end[T])], final
        )
        if self._sampler.dropped:
            report.notes.append(
                f"the timeline keeps the newest samples: {self._sampler.dropped} older ones "
                "were dropped (totals are unaffected)"
            )
        for name, spans in self._phases.items():
            delta = sum((e - s for s, e in spans), np.zeros_like(end))
            report.phases[name] = self._report_from(
                info, delta, float(delta[T]), [(rows, s[T], e[T]) for s, e in spans], final
            )
        return report

    def _report_from(self, info, delta, duration, spans, final) -> EnergyReport:
        n_gpus = len(info["gpu_names"])
        delta = [float(x) for x in delta]
        gpu_j = delta[GPU0 : GPU0 + n_gpus]
        machine_cpu = (delta[CPU_MEAS] + delta[CPU_EST]) / J_PER_KWH
        machine_ram = (delta[RAM_MEAS] + delta[RAM_EST]) / J_PER_KWH
        gpu = sum(gpu_j) / J_PER_KWH
        machine = {
            "cpu_energy_kwh": machine_cpu,
            "ram_energy_kwh": machine_ram,
            "gpu_energy_kwh": gpu,
            "energy_kwh": machine_cpu + machine_ram + gpu,
        }
        pcpu, pram = delta[PROC_CPU] / J_PER_KWH, delta[PROC_RAM] / J_PER_KWH
        process = {
            "cpu_energy_kwh": pcpu,
            "ram_energy_kwh": pram,
            "gpu_energy_kwh": gpu,
            "energy_kwh": pcpu + pram + gpu,
        }
        chosen = process if self.tracking_mode == "process" else machine

        def label(measured_method, measured_j, estimate_j):
            parts = []
            if measured_method and (measured_j > 0 or estimate_j == 0):
                parts.append(measured_method)
            if estimate_j > 0 or not parts:
                parts.append("estimate")
            return "+".join(parts)

        cpu_method = info["cpu_method"] if info["cpu_method"] != "estimate" else None
        ram_method = cpu_method if info["ram_measured"] else None
        methods = {
            "cpu": label(cpu_method, delta[CPU_MEAS], delta[CPU_EST]),
            "ram": label(ram_method, delta[RAM_MEAS], delta[RAM_EST]),
        }
        by_method = {
            "cpu": {cpu_method or "estimate": 0.0},
            "ram": {ram_method or "estimate": 0.0},
        }
        for comp, meas_m, meas, est in (
            ("cpu", cpu_method, delta[CPU_MEAS], delta[CPU_EST]),
            ("ram", ram_method, delta[RAM_MEAS], delta[RAM_EST]),
        ):
            if meas_m:
                by_method[comp][meas_m] = meas / J_PER_KWH
            if est > 0 or not meas_m:
                by_method[comp]["estimate"] = est / J_PER_KWH
        if n_gpus:
            methods["gpu"] = "nvml"
            by_method["gpu"] = {"nvml": gpu}

        timeline = [
            build_timeline(
                rows[(rows[:, T] >= t0 - 1e-12) & (rows[:, T] <= t1 + 1e-12)],
                n_gpus,
                self.tracking_mode == "process",
            )
            for rows, t0, t1 in spans
        ]
        timeline = np.concatenate(timeline) if timeline else None

        ci = self._carbon
        energy = chosen["energy_kwh"]
        return EnergyReport(
            project_name=self.project_name,
            run_id=self._run_id,
            experiment_id=self.experiment_id,
            timestamp=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            duration_s=duration,
            energy_kwh=energy,
            cpu_energy_kwh=chosen["cpu_energy_kwh"],
            gpu_energy_kwh=chosen["gpu_energy_kwh"],
            ram_energy_kwh=chosen["ram_energy_kwh"],
            emissions_kg=energy * self.pue * ci.g_per_kwh / 1000.0,
            carbon_intensity_g_per_kwh=ci.g_per_kwh,
            carbon_intensity_source=ci.source,
            pue=self.pue,
            tracking_mode=self.tracking_mode,
            methods=methods,
            energy_by_method_kwh=by_method,
            machine=machine,
            process=process,
            gpu_energy_kwh_per_gpu=[float(x) / J_PER_KWH for x in gpu_j],
            cpu_model=_C.cpu_info()["model"] or "unknown",
            cpu_count=int(info["cpus"]),
            gpu_names=list(info["gpu_names"]),
            ram_total_gb=float(info["mem_total_gb"]),
            interval_s=float(info["interval_s"]),
            country_iso_code=ci.country_iso_code,
            country_name=ci.country_name,
            region=ci.region,
            cloud_provider=self.cloud_provider,
            cloud_region=self.cloud_region,
            assumptions=self._assumptions(info, methods),
            notes=self._notes(info, n_gpus, final),
            _timeline=timeline,
        )

    def _assumptions(self, info, methods) -> list[str]:
        out = []
        if "estimate" in methods["cpu"]:
            out.append(
                f"CPU power model: {self._cpu_power.source}, i.e. "
                f"{self._cpu_power.watts_per_thread:.3g} W per busy logical CPU and "
                f"{self.cpu_idle_fraction:.0%} of that when idle (cpu_idle_fraction); busy time "
                f"from {self.procfs_root}/stat"
            )
        if "estimate" in methods["ram"]:
            src = (
                _tables.RAM_MODEL_SOURCE
                if self.ram_watts_per_gb == _tables.RAM_WATTS_PER_GB
                else f"user-supplied ram_watts_per_gb={self.ram_watts_per_gb:g}"
            )
            out.append(f"RAM power model: {src}; {info['mem_total_gb']:.1f} GB installed")
        if self.process_scope == "cgroup":
            who = f"the cgroup ({self._cgroup[0]}; memory {self._cgroup[1] or 'unknown'})"
        else:
            pid = self.pid or "self"
            who = f"{self.procfs_root}/{pid}/stat, children counted once waited for"
        out.append(
            "process figures: CPU energy x the process's share of busy CPU time (or its "
            f"CPU time x the CPU power model), from {who}; RAM energy x resident/installed "
            "memory; visible GPUs wholly attributed to the process"
        )
        if self.pue == 1.0:
            out.append("pue=1.0: no data-centre overhead on top of the IT energy")
        return out

    def _notes(self, info, n_gpus, final) -> list[str]:
        notes = list(info["notes"])
        counters = info["cpu_counters"]
        summed = [c for c in counters if not c.startswith(("not summed", "some "))]
        if summed:
            notes.append(f"{info['cpu_method']} counters summed: " + ", ".join(summed))
        notes += [c for c in counters if c not in summed]
        if info["cpu_method"] == "estimate":
            notes += [m for m in info["probe_messages"] if not m.startswith("nvml")]
        if self.gpu and n_gpus == 0:
            notes += [m for m in info["probe_messages"] if m.startswith("nvml")]
        if info["permission_denied"]:
            notes.append("RAPL counters not readable (permission denied): see the warning")
        local = os.environ.get("LOCAL_WORLD_SIZE")
        if self.tracking_mode == "machine" and local and local.isdigit() and int(local) > 1:
            notes.append(
                f"{local} local ranks each measure the whole machine: add up one rank per "
                "node (LOCAL_RANK 0), or use tracking_mode='process'"
            )
        if not final:
            notes.append("interim report (flush): the run is still going")
        return notes

    def _save_or_warn(self, report: EnergyReport, with_timeline: bool) -> None:
        # A full disk or a read-only folder must not turn a finished run (or the exception
        # leaving a with-block) into a different error: the report is already in hand.
        try:
            save_report(report, self.output_dir, self.output_file, with_timeline)
        except OSError as exc:
            msg = f"could not write to {self.output_dir!r}: {exc}"
            report.notes.append(msg)
            warnings.warn(f"wattwise: {msg}", RuntimeWarning, stacklevel=3)


def track_energy(fn=None, /, **tracker_kwargs):
    """Decorator form of :class:`EnergyTracker`, like CodeCarbon's ``@track_emissions``.

    ``@track_energy`` or ``@track_energy(project_name=..., ...)`` (any EnergyTracker
    argument). Each call is tracked; the decorated function returns its own result and the
    last call's report is kept as ``fn.report``.
    """

    def decorate(f):
        if not callable(f):
            raise TypeError(f"wattwise.track_energy: expected a function, got {type(f).__name__}")
        kwargs = dict(tracker_kwargs)
        kwargs.setdefault("project_name", getattr(f, "__name__", "wattwise"))
        EnergyTracker(**{**kwargs, "save_to_file": False})  # bad arguments fail at decoration

        @functools.wraps(f)
        def wrapper(*args, **kw):
            tracker = EnergyTracker(**kwargs)
            try:
                with tracker:
                    return f(*args, **kw)
            finally:
                wrapper.report = tracker.report

        wrapper.report = None
        return wrapper

    if fn is not None:
        return decorate(fn)
    # Bad arguments fail here, at decoration, not at the first call.
    EnergyTracker(**{"project_name": "wattwise", **tracker_kwargs, "save_to_file": False})
    return decorate


__all__ = ["EnergyTracker", "cgroup_files", "track_energy"]
