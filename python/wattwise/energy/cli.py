"""``python -m wattwise energy -- CMD ARGS...``: measures a whole command and prints the
report; the command's exit status is passed through."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys


def add_energy_parser(sub) -> None:
    p = sub.add_parser(
        "energy",
        help="measure the energy and emissions of a command",
        description=(
            "Run CMD and print its energy report. Example: "
            "python -m wattwise energy --country-iso-code FRA -- python train.py --epochs 3"
        ),
    )
    p.add_argument("--project-name", default=None, help="default: the command's name")
    p.add_argument("--output-dir", default=".", help="where emissions.csv goes (default .)")
    p.add_argument("--interval-s", type=float, default=0.1, help="sampling period (0.1)")
    p.add_argument("--country-iso-code", default=None, help="ISO 3166-1 alpha-3, e.g. FRA")
    p.add_argument("--cloud-provider", default=None, help="aws | gcp | azure")
    p.add_argument("--cloud-region", default=None, help="e.g. eu-west-3")
    p.add_argument("--carbon-intensity-g-per-kwh", type=float, default=None)
    p.add_argument("--pue", type=float, default=1.0, help="power usage effectiveness (1.0)")
    p.add_argument(
        "--tracking-mode",
        choices=("machine", "process"),
        default="machine",
        help="machine (default) or process: the command and its waited-for children",
    )
    p.add_argument("--no-save", action="store_true", help="print only, write no files")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    p.set_defaults(func=run_energy)


def run_energy(args) -> int:
    from .tracker import EnergyTracker

    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise ValueError("no command given: python -m wattwise energy [options] -- CMD ARGS...")
    kwargs = dict(
        project_name=args.project_name or os.path.basename(cmd[0]),
        output_dir=args.output_dir,
        interval_s=args.interval_s,
        country_iso_code=args.country_iso_code,
        cloud_provider=args.cloud_provider,
        cloud_region=args.cloud_region,
        carbon_intensity_g_per_kwh=args.carbon_intensity_g_per_kwh,
        pue=args.pue,
        tracking_mode=args.tracking_mode,
        save_to_file=not args.no_save,
    )
    EnergyTracker(**{**kwargs, "save_to_file": False})  # bad options fail before CMD runs
    try:
        child = subprocess.Popen(cmd)
    except OSError as exc:
        raise FileNotFoundError(f"cannot run {cmd[0]!r}: {exc.strerror}") from exc
    # The tracker follows the child's pid, so process mode measures the command itself.
    tracker = EnergyTracker(**kwargs, pid=child.pid)
    tracker.start()
    # Ctrl-C reaches the child through the terminal; we wait for it to finish either way.
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        # Wait without reaping, so that the last sample still reads the child's CPU time.
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)
        report = tracker.stop()
        returncode = child.wait()
    finally:
        signal.signal(signal.SIGINT, old)
        if tracker.running:
            tracker.stop()
    print(report.to_json(indent=1) if args.json else str(report), file=sys.stderr)
    return returncode if returncode >= 0 else 128 - returncode
