"""Overhead of energy tracking: slowdown of a 2-thread CPU-bound workload while a tracker runs
(wattwise at 10 ms and 100 ms, CodeCarbon at its defaults), start+stop latency, and the
energy each tool reports for the same work.

    flock /tmp/wattwise-cpu.lock python benchmarks/energy_overhead.py [--quick]

Configurations are interleaved round-robin in short windows (torch.utils.benchmark.Timer
.blocked_autorange each); the slowdown is given two ways: the median over rounds of the
paired ratio (tracked / the baseline of the same round), and the ratio of the fastest
windows (other processes on a shared machine only ever add time, so minima are the least
disturbed). The CPU the tracker's own thread consumes is measured directly as well: it is
what the tracker takes away from a workload that keeps both CPUs busy.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import subprocess
import sys
import tempfile
import time

import torch
from torch.utils.benchmark import Timer

import wattwise

J_PER_KWH = 3.6e6


def make_workload():
    torch.set_num_threads(2)
    a = torch.randn(384, 384)
    b = torch.randn(384, 384)

    def work():
        # ~10-20 ms of 2-thread matmuls: CPU-bound, no allocation churn.
        c = a
        for _ in range(8):
            c = torch.mm(b, a)
        return c

    return work


def timed(work, min_run_time: float) -> float:
    return (
        Timer("work()", globals={"work": work}, num_threads=torch.get_num_threads())
        .blocked_autorange(min_run_time=min_run_time)
        .median
    )


def codecarbon_tracker():
    from codecarbon import EmissionsTracker

    return EmissionsTracker(save_to_file=False, log_level="error")


def sampler_cpu_share(make, seconds: float) -> float:
    """CPU time the tracker's own threads take while the process idles, as a share of the 2
    CPUs a 2-thread workload would use: the CPU a tracker steals from that workload."""
    tracker = make()
    t0, c0 = time.perf_counter(), time.process_time()
    tracker.start()
    time.sleep(seconds)
    tracker.stop()
    return (time.process_time() - c0) / (2 * (time.perf_counter() - t0))


COLD = """
import time, logging, sys
logging.disable(logging.CRITICAL)
if sys.argv[1] == "wattwise":
    import wattwise
    make = lambda: wattwise.EnergyTracker(save_to_file=False)
else:
    from codecarbon import EmissionsTracker
    make = lambda: EmissionsTracker(save_to_file=False, log_level="error")
t0 = time.perf_counter()
t = make(); t.start(); t.stop()
print(time.perf_counter() - t0)
"""


def cold_start_stop_s(tool: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", COLD, tool], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument("--no-codecarbon", action="store_true")
    args = parser.parse_args()
    rounds, run_time = (8, 0.25) if args.quick else (30, 0.3)
    logging.getLogger("wattwise.energy").setLevel(logging.ERROR)

    try:
        import codecarbon

        have_cc = not args.no_codecarbon
    except ImportError:
        have_cc = False
    if have_cc:
        logging.getLogger("codecarbon").setLevel(logging.ERROR)

    info = wattwise.cpu_info()
    print(
        f"machine: {info['model']}, {info['logical_cpus']} logical CPUs, torch {torch.__version__}"
    )
    if have_cc:
        print(f"codecarbon {codecarbon.__version__}")
    work = make_workload()
    timed(work, 0.5)  # warm-up

    configs = {
        "wattwise 100 ms": lambda: wattwise.EnergyTracker(interval_s=0.1, save_to_file=False),
        "wattwise 10 ms": lambda: wattwise.EnergyTracker(interval_s=0.01, save_to_file=False),
    }
    if have_cc:
        configs["codecarbon (defaults)"] = codecarbon_tracker
    ratios = {name: [] for name in configs}
    times = {name: [] for name in configs}
    energy = {name: [] for name in configs}
    base_times = []
    for r in range(rounds):
        base = timed(work, run_time)
        base_times.append(base)
        for name, make in configs.items():
            tracker = make()
            tracker.start()
            t0 = time.perf_counter()
            t = timed(work, run_time)
            wall = time.perf_counter() - t0
            tracker.stop()
            if name.startswith("wattwise"):
                rep = tracker.report
                energy[name].append((rep.energy_kwh * J_PER_KWH / wall, rep.methods["cpu"]))
            else:
                d = tracker.final_emissions_data
                energy[name].append((d.energy_consumed * J_PER_KWH / wall, "codecarbon"))
            ratios[name].append(t / base)
            times[name].append(t)
        if (r + 1) % 10 == 0 or r + 1 == rounds:
            print(f"round {r + 1}/{rounds}: baseline {base * 1e3:.2f} ms/call", flush=True)

    print("\nslowdown of the 2-thread workload:")
    print(
        f"  baseline: median {statistics.median(base_times) * 1e3:.3f} ms per call, "
        f"fastest {min(base_times) * 1e3:.3f} ms"
    )
    print(f"  {'':<22} {'median paired':>14} {'fastest/fastest':>16}")
    for name, rs in ratios.items():
        med = statistics.median(rs) - 1
        best = min(times[name]) / min(base_times) - 1
        print(f"  {name:<22} {med * 100:+13.2f}% {best * 100:+15.2f}%")

    print("\naverage power each reports over the tracked window (W = J / wall s):")
    for name, es in energy.items():
        watts = statistics.median(e for e, _ in es)
        print(f"  {name:<22} {watts:8.2f} W  [{es[0][1]}]")

    print("\nCPU the tracker itself uses while the process idles (share of 2 CPUs):")
    for name, make in configs.items():
        share = sampler_cpu_share(make, 2.0 if args.quick else 5.0)
        print(f"  {name:<22} {share * 100:.3f}%")

    print("\nstart+stop latency (a new tracker each time, warm process):")
    with tempfile.TemporaryDirectory() as d:
        cases = {
            "wattwise, save_to_file=False": (
                "t = wattwise.EnergyTracker(save_to_file=False); t.start(); t.stop()"
            ),
            "wattwise, save_to_file=True": (
                "t = wattwise.EnergyTracker(output_dir=d); t.start(); t.stop()"
            ),
            "wattwise restart (same tracker)": "t2.start(); t2.stop()",
        }
        t2 = wattwise.EnergyTracker(save_to_file=False)
        for name, stmt in cases.items():
            m = Timer(
                stmt,
                globals={"wattwise": wattwise, "d": d, "t2": t2},
                num_threads=torch.get_num_threads(),
            ).blocked_autorange(min_run_time=1.0)
            print(f"  {name:<34} {m.median * 1e3:8.3f} ms")
        if have_cc:
            times = []
            for _ in range(1 if args.quick else 3):
                t0 = time.perf_counter()
                cc = codecarbon_tracker()
                cc.start()
                cc.stop()
                times.append(time.perf_counter() - t0)
            print(f"  {'codecarbon (defaults)':<34} {statistics.median(times) * 1e3:8.1f} ms")
    print("\nfirst start+stop in a fresh process (imports excluded):")
    for tool in ["wattwise"] + (["codecarbon"] if have_cc else []):
        print(f"  {tool:<34} {cold_start_stop_s(tool) * 1e3:8.1f} ms")


if __name__ == "__main__":
    main()
