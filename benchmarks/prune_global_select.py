"""Global magnitude selection on a ~100M-parameter model: wattwise (C++ radix select, no
concatenation) vs torch.nn.utils.prune.global_unstructured. Each method runs in a fresh
subprocess so that its peak memory (ru_maxrss above the model's own footprint) is its own.

    python benchmarks/prune_global_select.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

METHODS = [
    "torch_global_unstructured",
    "wattwise_select_only",
    "wattwise_in_place",
    "wattwise_masks",
]


def build(params_m: int):
    import torch
    from torch import nn

    torch.manual_seed(0)
    width = 2048
    layers = max(1, round(params_m * 1e6 / (width * width)))
    return nn.Sequential(*[nn.Linear(width, width, bias=False) for _ in range(layers)])


def child(method: str, params_m: int, amount: float) -> None:
    import torch
    from torch.nn.utils import prune as tp

    import wattwise.prune as wp

    model = build(params_m)
    weights = [m.weight for m in model]
    n = sum(w.numel() for w in weights)
    torch.ops.wattwise.prune_kth_magnitude([torch.randn(8)], 1)  # load and warm the op
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    if method == "torch_global_unstructured":
        tp.global_unstructured([(m, "weight") for m in model], tp.L1Unstructured, amount=amount)
    elif method == "wattwise_select_only":
        torch.ops.wattwise.prune_kth_magnitude([w.detach() for w in weights], round(amount * n))
    elif method == "wattwise_in_place":
        wp.magnitude_(model, amount, reparametrize=False)
    else:
        wp.magnitude_(model, amount)
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    print(
        json.dumps(
            {
                "method": method,
                "seconds": dt,
                "extra_bytes": peak,
                "weight_bytes": 4 * n,
                "params": n,
            }
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="25M parameters instead of 100M")
    ap.add_argument("--amount", type=float, default=0.5)
    ap.add_argument("--child", choices=METHODS)
    ap.add_argument("--params-m", type=int, default=None)
    args = ap.parse_args()
    params_m = args.params_m or (25 if args.quick else 100)
    if args.child:
        child(args.child, params_m, args.amount)
        return
    import torch

    import wattwise

    info = wattwise.cpu_info()
    print(
        f"machine: {info['model']}, {info['logical_cpus']} logical CPUs, simd={info['simd']}, "
        f"torch threads={torch.get_num_threads()}"
    )
    results = {}
    for method in METHODS:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                method,
                "--params-m",
                str(params_m),
                "--amount",
                str(args.amount),
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        results[method] = json.loads(out.stdout.strip().splitlines()[-1])
    ref = results["torch_global_unstructured"]
    print(f"{ref['params'] / 1e6:.1f}M parameters, amount={args.amount}")
    print(f"{'method':<28}{'seconds':>10}{'speedup':>10}{'extra MB':>12}{'x weights':>11}")
    for method, r in results.items():
        print(
            f"{method:<28}{r['seconds']:>10.3f}{ref['seconds'] / r['seconds']:>10.2f}"
            f"{r['extra_bytes'] / 2**20:>12.1f}{r['extra_bytes'] / r['weight_bytes']:>11.3f}"
        )


if __name__ == "__main__":
    main()
