"""Shared helpers for the benchmark scripts: machine description and interleaved timing."""

from __future__ import annotations

import platform
import statistics

import torch
from torch.utils.benchmark import Timer

import wattwise


def machine() -> str:
    info = wattwise.cpu_info()
    return (
        f"{info['model'] or platform.processor()} ({info['logical_cpus']} logical CPUs, "
        f"kernel path {info['simd']}), torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, Python {platform.python_version()}"
    )


def time_interleaved(fns: dict, rounds: int = 5, min_run_time: float = 0.3) -> dict:
    """Median seconds per call of each function, measured in alternating rounds so that
    drift in the machine's speed (a shared VM) hits every variant alike."""
    samples: dict = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t = Timer(
                "fn()", globals={"fn": fn}, num_threads=torch.get_num_threads()
            ).blocked_autorange(min_run_time=min_run_time)
            samples[name].append(t.median)
    return {name: statistics.median(v) for name, v in samples.items()}
