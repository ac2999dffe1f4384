"""EnergyTracker, EnergyReport and the sampler bindings: real /proc (the estimate, which is
what this machine has), fake RAPL trees whose counters advance, wrap, repeat and vanish, the
fake NVML library (built here with the system compiler), output files, phases, fork, CLI."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import wattwise
from wattwise.cli import main as cli_main
from wattwise.energy import tracker as tracker_mod
from wattwise.energy.output import CODECARBON_COLUMNS, WATTWISE_COLUMNS, append_csv_row

ROOT = Path(__file__).resolve().parents[2]
J = 3.6e6  # joules per kWh


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1


def _read_csv(path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


class FakeSys:
    """A fake /sys with powercap zones whose energy_uj the test sets."""

    def __init__(self, root: Path):
        self.root = root
        (root / "class/powercap").mkdir(parents=True)

    def zone(self, name: str) -> Path:
        return self.root / "class/powercap" / name

    def add(self, d: str, name: str, uj: int, rng: int = 262143328850) -> None:
        z = self.zone(d)
        z.mkdir()
        (z / "name").write_text(name + "\n")
        (z / "max_energy_range_uj").write_text(f"{rng}\n")
        self.set(d, uj)

    def set(self, d: str, uj: int) -> None:
        (self.zone(d) / "energy_uj").write_text(f"{uj}\n")


@pytest.fixture
def fake_sys(tmp_path):
    return FakeSys(tmp_path / "sys")


def _tracker(tmp_path, **kw):
    kw.setdefault("save_to_file", False)
    kw.setdefault("gpu", False)
    kw.setdefault("project_name", "test")
    return wattwise.EnergyTracker(output_dir=tmp_path / "out", **kw)


def test_estimate_on_this_machine(tmp_path):
    t = _tracker(tmp_path, interval_s=0.01, save_to_file=True, country_iso_code="FRA")
    with t:
        _spin(0.15)
    r = t.report
    assert r is t.stop()  # stopping again returns the same report
    assert r.methods["cpu"] in ("rapl", "perf", "estimate")
    assert r.energy_kwh > 0 and r.cpu_energy_kwh > 0 and r.ram_energy_kwh > 0
    assert r.energy_kwh == pytest.approx(r.cpu_energy_kwh + r.gpu_energy_kwh + r.ram_energy_kwh)
    assert r.emissions_kg == pytest.approx(r.energy_kwh * 56 / 1000)
    assert r.carbon_intensity_g_per_kwh == 56 and "France" in r.carbon_intensity_source
    assert 0 < r.process["energy_kwh"] <= r.machine["energy_kwh"] * (1 + 1e-9)
    if r.methods["cpu"] == "estimate":
        assert any("CPU power model:" in a for a in r.assumptions)
    tl = r.timeline()
    assert len(tl) >= 3 and np.all(np.diff(tl["t_s"]) > 0)
    assert tl["energy_kwh"][-1] == pytest.approx(r.energy_kwh, rel=1e-6)
    rows = _read_csv(tmp_path / "out/emissions.csv")
    assert len(rows) == 1
    assert list(rows[0]) == CODECARBON_COLUMNS + WATTWISE_COLUMNS
    assert float(rows[0]["energy_consumed"]) == pytest.approx(r.energy_kwh)
    assert rows[0]["cpu_method"] == r.methods["cpu"] and rows[0]["country_iso_code"] == "FRA"
    doc = json.loads((tmp_path / "out" / rows[0]["timeline_file"]).read_text())
    assert doc["run_id"] == r.run_id and len(doc["timeline"]["t_s"]) == len(tl)


def test_process_mode_uses_the_process_figures(tmp_path):
    t = _tracker(tmp_path, interval_s=0.01, tracking_mode="process")
    with t:
        _spin(0.1)
    r = t.report
    assert r.energy_kwh == pytest.approx(r.process["energy_kwh"])
    assert r.tracking_mode == "process"
    assert r.timeline()["energy_kwh"][-1] == pytest.approx(r.energy_kwh, rel=1e-6)


def test_fake_rapl_counters_advance_and_wrap(tmp_path, fake_sys):
    rng = 10**9
    fake_sys.add("intel-rapl:0", "package-0", rng - 2_000_000, rng)
    fake_sys.add("intel-rapl:0:0", "dram", 1_000_000, rng)
    t = _tracker(tmp_path, sysfs_root=fake_sys.root, interval_s=3600)
    t.start()
    fake_sys.set("intel-rapl:0", 3_000_000)  # wrapped: 2 J + 3 J
    fake_sys.set("intel-rapl:0:0", 1_500_000)
    r = t.stop()
    assert r.methods == {"cpu": "rapl", "ram": "rapl"}
    assert r.cpu_energy_kwh * J == pytest.approx(5.0)
    assert r.ram_energy_kwh * J == pytest.approx(0.5)
    assert r.energy_by_method_kwh["cpu"]["rapl"] * J == pytest.approx(5.0)
    assert not any("CPU power model:" in a for a in r.assumptions)


def test_fake_rapl_duplicate_domains_counted_once(tmp_path, fake_sys):
    for d, name in [
        ("intel-rapl:0", "package-0"),
        ("intel-rapl-mmio:0", "package-0"),
        ("intel-rapl:0:0", "core"),
        ("intel-rapl:1", "psys"),
        ("intel-rapl:0:1", "dram"),
        ("intel-rapl-mmio:0:0", "dram"),
    ]:
        fake_sys.add(d, name, 0)
    t = _tracker(tmp_path, sysfs_root=fake_sys.root, interval_s=3600)
    t.start()
    for d in ("intel-rapl:0", "intel-rapl-mmio:0"):
        fake_sys.set(d, 7_000_000)
    fake_sys.set("intel-rapl:0:0", 5_000_000)
    fake_sys.set("intel-rapl:1", 20_000_000)
    for d in ("intel-rapl:0:1", "intel-rapl-mmio:0:0"):
        fake_sys.set(d, 2_000_000)
    r = t.stop()
    assert r.cpu_energy_kwh * J == pytest.approx(7.0)
    assert r.ram_energy_kwh * J == pytest.approx(2.0)
    assert any(n.startswith("not summed: intel-rapl-mmio:0 ") for n in r.notes)
    assert any(n.startswith("not summed: intel-rapl:1 (psys") for n in r.notes)
    assert any(n.startswith("rapl counters summed: intel-rapl:0 (package-0)") for n in r.notes)


def test_sensor_vanishing_mid_run(tmp_path, fake_sys):
    fake_sys.add("intel-rapl:0", "package-0", 0)
    t = _tracker(tmp_path, sysfs_root=fake_sys.root, interval_s=3600)
    t.start()
    fake_sys.set("intel-rapl:0", 4_000_000)
    with t.phase("measured"):
        pass
    shutil.rmtree(fake_sys.zone("intel-rapl:0"))
    _spin(0.05)
    r = t.stop()
    assert r.methods["cpu"] == "rapl+estimate"
    assert r.energy_by_method_kwh["cpu"]["rapl"] * J == pytest.approx(4.0)
    assert r.energy_by_method_kwh["cpu"]["estimate"] > 0
    assert any("vanished" in n for n in r.notes)
    assert any("CPU power model:" in a for a in r.assumptions)


def test_process_scope_cgroup_on_fake_trees(tmp_path):
    proc, sysfs = tmp_path / "proc", tmp_path / "sys"
    (proc / "self").mkdir(parents=True)
    (proc / "stat").write_text("cpu  100 0 0 100 0 0 0 0 0 0\ncpu0 1 0 0 1 0 0 0 0 0 0\n")
    (proc / "meminfo").write_text("MemTotal: 10000000 kB\n")
    (proc / "self/stat").write_text("1 (x) R" + " 0" * 20 + "\n")
    (proc / "self/statm").write_text("1 1 0 0 0 0 0\n")
    (proc / "self/cgroup").write_text("0::/job.slice/run-1\n")
    cg = sysfs / "fs/cgroup/job.slice/run-1"
    cg.mkdir(parents=True)
    (cg / "cpu.stat").write_text("usage_usec 1000000\nuser_usec 1\n")
    (cg / "memory.current").write_text("2048000000\n")
    t = _tracker(
        tmp_path,
        procfs_root=proc,
        sysfs_root=sysfs,
        process_scope="cgroup",
        tracking_mode="process",
        cpu_watts_per_thread=10.0,
        interval_s=3600,
    )
    t.start()
    (cg / "cpu.stat").write_text("usage_usec 3500000\nuser_usec 1\n")
    r = t.stop()
    assert r.cpu_energy_kwh * J == pytest.approx(25.0)  # 2.5 CPU-s x 10 W
    assert r.ram_energy_kwh == pytest.approx(r.machine["ram_energy_kwh"] * 2.048 / 10.24)
    assert any("cgroup" in a for a in r.assumptions)
    (proc / "self/cgroup").write_text("0::/elsewhere\n")
    shutil.rmtree(cg)
    with pytest.raises(ValueError, match="process_scope"):
        _tracker(tmp_path, procfs_root=proc, sysfs_root=sysfs, process_scope="cgroup")


def test_process_scope_cgroup_on_this_machine(tmp_path):
    try:
        t = _tracker(tmp_path, process_scope="cgroup", tracking_mode="process")
    except ValueError as exc:
        pytest.skip(f"this machine exposes no cgroup CPU accounting: {exc}")
    with t:
        _spin(0.05)
    assert t.report.energy_kwh > 0


def test_permission_denied_is_said_once_and_falls_back(tmp_path):
    # An unprivileged user must be able to reach the tree: pytest's tmp_path is private.
    base = Path(tempfile.mkdtemp(prefix="wattwise-perm-"))
    base.chmod(0o755)
    fake_sys = FakeSys(base / "sys")
    fake_sys.add("intel-rapl:0", "package-0", 0)
    (fake_sys.zone("intel-rapl:0") / "energy_uj").chmod(0o200)
    for p in base.rglob("*"):
        if p.is_dir():
            p.chmod(0o755)

    def check() -> bool:
        tracker_mod._said_once.clear()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            r1 = _tracker(tmp_path, sysfs_root=fake_sys.root).start().stop()
            r2 = _tracker(tmp_path, sysfs_root=fake_sys.root).start().stop()
        said = [w for w in caught if "CVE-2020-8694" in str(w.message)]
        return (
            len(said) == 1
            and "CAP_PERFMON" in str(said[0].message)
            and "udev" in str(said[0].message)
            and r1.methods["cpu"] == "estimate"
            and any("permission denied" in n for n in r1.notes + r2.notes)
        )

    try:
        if os.geteuid() != 0:
            assert check()
            return
        _check_as_nobody(check)
    finally:
        shutil.rmtree(base)


def _check_as_nobody(check) -> None:
    # root reads any file: check as an unprivileged user in a forked child.
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            code = 0 if check() else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.fixture(scope="module")
def fake_nvml(tmp_path_factory):
    cxx = shutil.which("c++") or shutil.which("g++")
    if cxx is None:
        pytest.skip("no C++ compiler to build the fake NVML library")
    out = tmp_path_factory.mktemp("nvml") / "libfake_nvml.so"
    src = ROOT / "tests/cpp/energy/fake_nvml.cpp"
    subprocess.run([cxx, "-shared", "-fPIC", "-O1", "-o", str(out), str(src)], check=True)
    return str(out)


def test_fake_nvml_counter_per_visible_gpu(tmp_path, fake_nvml, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    t = _tracker(tmp_path, gpu=True, nvml_library=fake_nvml, interval_s=0.01)
    with t:
        time.sleep(0.1)
    r = t.report
    assert r.gpu_names == ["Fake GPU 1"] and r.methods["gpu"] == "nvml"
    # 200 W for the run; the counter's clock and the report's differ by read latency only
    assert r.gpu_energy_kwh * J == pytest.approx(200 * r.duration_s, rel=0.05, abs=0.02)
    assert r.energy_kwh == pytest.approx(r.cpu_energy_kwh + r.gpu_energy_kwh + r.ram_energy_kwh)
    tl = r.timeline()
    dt = np.diff(np.concatenate([[0.0], tl["t_s"]]))
    assert np.sum(tl["gpu0_w"] * dt) == pytest.approx(r.gpu_energy_kwh * J, rel=1e-9)
    assert np.median(tl["gpu0_w"]) == pytest.approx(200, rel=0.1)


def test_fake_nvml_power_integrated_without_counter(tmp_path, fake_nvml, monkeypatch):
    monkeypatch.setenv("FAKE_NVML_NO_ENERGY", "1")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    t = _tracker(tmp_path, gpu=True, nvml_library=fake_nvml, interval_s=0.01)
    with t:
        time.sleep(0.05)
    r = t.report
    assert r.gpu_names == ["Fake GPU 0", "Fake GPU 1"]
    assert [e * J for e in r.gpu_energy_kwh_per_gpu] == pytest.approx(
        [100 * r.duration_s, 200 * r.duration_s], rel=1e-9
    )


def test_no_gpu_is_said_not_silent(tmp_path):
    t = _tracker(tmp_path, gpu=True, nvml_library=str(tmp_path / "missing.so"))
    r = t.start().stop()
    assert r.gpu_energy_kwh == 0 and "gpu" not in r.methods
    assert any(n.startswith("nvml:") for n in r.notes)


@pytest.mark.parametrize(
    "kwargs, argument",
    [
        ({"interval_s": 0}, "interval_s"),
        ({"interval_s": float("nan")}, "interval_s"),
        ({"interval_s": 7200}, "interval_s"),
        ({"pue": 0.9}, "pue"),
        ({"tracking_mode": "node"}, "tracking_mode"),
        ({"country_iso_code": "XYZ"}, "country_iso_code"),
        ({"cloud_provider": "aws"}, "cloud_region"),
        ({"cloud_provider": "aws", "cloud_region": "mars-1"}, "cloud_region"),
        ({"carbon_intensity_g_per_kwh": -1}, "carbon_intensity_g_per_kwh"),
        ({"cpu_idle_fraction": 1.5}, "cpu_idle_fraction"),
        ({"cpu_watts_per_thread": 0}, "cpu_watts_per_thread"),
        ({"ram_watts_per_gb": -1}, "ram_watts_per_gb"),
        ({"procfs_root": "/nonexistent"}, "procfs_root"),
        ({"sysfs_root": ""}, "sysfs_root"),
        ({"output_file": "a/b.csv"}, "output_file"),
        ({"pid": -3}, "pid"),
        ({"project_name": ""}, "project_name"),
    ],
)
def test_bad_arguments_name_the_argument(tmp_path, kwargs, argument):
    with pytest.raises(ValueError, match=argument) as e:
        _tracker(tmp_path, **kwargs)
    assert "wattwise.EnergyTracker" in str(e.value)


@pytest.mark.parametrize(
    "kwargs", [{"interval_s": "1"}, {"pue": None}, {"save_to_file": 1}, {"project_name": 3}]
)
def test_wrong_types_are_type_errors(tmp_path, kwargs):
    with pytest.raises(TypeError, match=next(iter(kwargs))):
        _tracker(tmp_path, **kwargs)


def test_sampler_binding_validates():
    with pytest.raises(ValueError, match="interval_s"):
        wattwise._C.EnergySampler(interval_s=0.0, cpu_watts_per_thread=1.0)
    with pytest.raises(ValueError, match="cpu_watts_per_thread"):
        wattwise._C.EnergySampler(cpu_watts_per_thread=-1.0)
    s = wattwise._C.EnergySampler(interval_s=0.005, cpu_watts_per_thread=1.0, use_nvml=False)
    s.start()
    time.sleep(0.03)
    s.stop()
    rows = s.drain()
    assert rows.shape[1] == s.width == len(wattwise._C.ENERGY_COLUMNS) and rows.shape[0] >= 3


def test_phases_nested_and_threaded(tmp_path):
    t = _tracker(tmp_path, interval_s=0.01)
    with t, t.phase("outer"):
        with t.phase("inner"):
            _spin(0.03)

        def work(i):
            with t.phase(f"worker-{i}"):
                _spin(0.03)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    r = t.report
    assert set(r.phases) == {"outer", "inner", "worker-0", "worker-1"}
    for p in r.phases.values():
        assert p.energy_kwh > 0 and p.duration_s > 0
        assert p.methods == r.methods
    assert r.phases["inner"].energy_kwh < r.phases["outer"].energy_kwh <= r.energy_kwh
    assert r.phases["inner"].duration_s < r.phases["outer"].duration_s
    with pytest.raises(ValueError, match="name"), t.phase(""):
        pass
    with pytest.raises(RuntimeError, match="start"), t.phase("late"):
        pass


def test_report_after_exception_and_restart(tmp_path):
    t = _tracker(tmp_path, save_to_file=True)
    with pytest.raises(KeyError), t:
        raise KeyError("boom")
    first = t.report
    assert first is not None and first.energy_kwh > 0 and not t.running
    t.start()
    with pytest.raises(RuntimeError, match="already running"):
        t.start()
    interim = t.flush()
    assert any("interim" in n for n in interim.notes)
    second = t.stop()
    assert second.run_id != first.run_id
    rows = _read_csv(tmp_path / "out/emissions.csv")
    assert [r["run_id"] for r in rows] == [first.run_id, second.run_id, second.run_id]


def test_unwritable_output_dir_warns_and_keeps_the_report(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    t = wattwise.EnergyTracker("x", output_dir=blocker / "sub", gpu=False)
    with pytest.warns(RuntimeWarning, match="could not write"), pytest.raises(KeyError), t:
        raise KeyError("user error wins")
    assert t.report is not None and any("could not write" in n for n in t.report.notes)


def test_track_energy_decorator(tmp_path):
    @wattwise.track_energy(output_dir=tmp_path, save_to_file=False, gpu=False)
    def f(x):
        _spin(0.02)
        return x * 2

    assert f.report is None
    assert f(21) == 42
    assert f.report.project_name == "f" and f.report.energy_kwh > 0

    @wattwise.track_energy
    def g():  # the defaults: saves to the current directory
        os.chdir(tmp_path)
        raise ValueError("inside")

    cwd = os.getcwd()
    try:
        with pytest.raises(ValueError, match="inside"):
            g()
    finally:
        os.chdir(cwd)
    assert g.report is not None
    with pytest.raises(ValueError, match="pue"):
        wattwise.track_energy(pue=0)


def test_forked_child_does_not_inherit_a_running_tracker(tmp_path):
    t = _tracker(tmp_path, interval_s=0.001)
    t.start()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            ok = not t.running and t.stop() is None
            child = _tracker(tmp_path, interval_s=0.01)
            with child:
                _spin(0.02)
            code = 0 if ok and child.report.energy_kwh > 0 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert t.running
    assert t.stop().energy_kwh > 0


def test_a_tracker_left_running_is_stopped_at_exit(tmp_path):
    code = (
        "import wattwise, sys; "
        f"t = wattwise.EnergyTracker('left', output_dir={str(tmp_path)!r}, gpu=False); "
        "t.start(); sum(range(10**5))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(wattwise.__file__).resolve().parents[1])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, capture_output=True)
    rows = _read_csv(tmp_path / "emissions.csv")
    assert len(rows) == 1 and rows[0]["project_name"] == "left"


def test_csv_append_is_atomic_and_keeps_codecarbon_columns(tmp_path):
    path = tmp_path / "emissions.csv"
    path.write_text("timestamp,project_name,duration\n2024-01-01,old,1.0\n")

    def write(i):
        append_csv_row(str(path), {"timestamp": str(i), "project_name": "p", "extra": i})

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    rows = _read_csv(path)
    assert len(rows) == 9 and rows[0]["project_name"] == "old" and rows[0]["extra"] == ""
    assert sorted(r["timestamp"] for r in rows[1:]) == sorted(str(i) for i in range(8))
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".wattwise-")]


def test_carbon_intensity_sources(tmp_path):
    cloud = _tracker(tmp_path, cloud_provider="gcp", cloud_region="europe-west9")
    assert cloud._carbon.country_iso_code == "FRA" and "europe-west9" in cloud._carbon.source
    own = _tracker(tmp_path, carbon_intensity_g_per_kwh=123.0, pue=1.5)
    r = own.start().stop()
    assert r.carbon_intensity_g_per_kwh == 123.0 and "user" in r.carbon_intensity_source
    assert r.emissions_kg == pytest.approx(r.energy_kwh * 1.5 * 123.0 / 1000)
    world = _tracker(tmp_path)
    assert world._carbon.g_per_kwh > 0 and "world" in world._carbon.source


def test_cpu_power_table_lookup():
    from wattwise.energy import lookup_cpu_power

    p = lookup_cpu_power("AMD EPYC 7763 64-Core Processor")
    assert p.watts_per_thread == pytest.approx(280 / 128) and "amd.com" in p.source
    p = lookup_cpu_power("Intel(R) Xeon(R) Platinum 8380 CPU @ 2.30GHz")
    assert p.watts_per_thread == pytest.approx(270 / 80)
    unknown = lookup_cpu_power("Some Future CPU 9000")
    assert unknown.watts_per_thread > 0 and "not in the table" in unknown.source


def test_timeline_as_pandas(tmp_path):
    pd = pytest.importorskip("pandas")
    t = _tracker(tmp_path, interval_s=0.01)
    with t:
        _spin(0.05)
    df = t.report.timeline(format="pandas")
    assert isinstance(df, pd.DataFrame) and {"t_s", "cpu_w", "total_w"} <= set(df.columns)
    with pytest.raises(ValueError, match="format"):
        t.report.timeline(format="csv")


def test_cli_measures_a_command(tmp_path, capsys):
    code = cli_main(
        [
            "energy",
            "--output-dir",
            str(tmp_path),
            "--tracking-mode",
            "process",
            "--",
            sys.executable,
            "-c",
            "import sys; sum(range(2000000)); sys.exit(3)",
        ]
    )
    assert code == 3
    err = capsys.readouterr().err
    assert "wattwise energy report" in err and "process mode" in err
    rows = _read_csv(tmp_path / "emissions.csv")
    assert len(rows) == 1 and float(rows[0]["energy_consumed"]) > 0
    assert cli_main(["energy", "--no-save"]) == 2
    assert cli_main(["energy", "--no-save", "--pue", "0", "--", "true"]) == 2
