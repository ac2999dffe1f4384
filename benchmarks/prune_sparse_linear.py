"""SparseLinear (CSR, 16-bit columns) and NMSparseLinear (2:4) vs dense fp32 F.linear, on a
stack of 4096x4096 layers (256 MB of weights, far beyond a 32 MB L3), batch 1/8/32.

    python benchmarks/prune_sparse_linear.py [--quick]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.benchmark import Timer

import wattwise
import wattwise.prune as wp


def stack(n_layers: int, width: int, sparsity: float, pattern: str = "unstructured"):
    torch.manual_seed(0)
    layers = nn.Sequential(*[nn.Linear(width, width, bias=False) for _ in range(n_layers)])
    with torch.no_grad():
        if pattern == "unstructured":
            wp.magnitude_(layers, sparsity, scope="layer", reparametrize=False)
        else:
            wp.magnitude_(layers, pattern=pattern, reparametrize=False)
    return layers


def run_chain(mods, x):
    # Each layer sees the same input: the timing is the weights' streaming, not a cascade.
    for m in mods:
        m(x)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer sparsities and shorter timing")
    args = ap.parse_args()
    info = wattwise.cpu_info()
    print(
        f"machine: {info['model']}, {info['logical_cpus']} logical CPUs, simd={info['simd']}, "
        f"torch threads={torch.get_num_threads()}"
    )
    width, n_layers = 4096, 4
    sparsities = [0.5, 0.8, 0.9, 0.95] if args.quick else [0.5, 0.7, 0.8, 0.9, 0.95]
    batches = [1, 8, 32]
    min_time = 0.3 if args.quick else 0.6
    mb = n_layers * width * width * 4 / 2**20
    print(f"{n_layers} x Linear({width}, {width}) fp32, {mb:.0f} MB of weights")
    print(
        f"{'format':<10}{'sparsity':>9}{'batch':>7}{'dense ms':>11}{'sparse ms':>11}{'speedup':>9}"
    )
    cases = [(s, "unstructured") for s in sparsities] + [(0.5, "2:4")]
    for sparsity, pattern in cases:
        dense = stack(n_layers, width, sparsity, pattern)
        weights = [m.weight.detach() for m in dense]
        if pattern == "unstructured":
            sparse = [wp.SparseLinear.from_dense(m) for m in dense]
            fmt = "csr"
        else:
            sparse = [wp.NMSparseLinear.from_dense(m, 2, 4) for m in dense]
            fmt = "2:4"
        for b in batches:
            x = torch.randn(b, width)
            with torch.no_grad():
                t_dense = (
                    Timer(
                        "for w in ws: F.linear(x, w)",
                        globals={"ws": weights, "x": x, "F": F},
                        num_threads=torch.get_num_threads(),
                    )
                    .blocked_autorange(min_run_time=min_time)
                    .median
                )
                t_sparse = (
                    Timer(
                        "run_chain(mods, x)",
                        globals={"run_chain": run_chain, "mods": sparse, "x": x},
                        num_threads=torch.get_num_threads(),
                    )
                    .blocked_autorange(min_run_time=min_time)
                    .median
                )
            print(
                f"{fmt:<10}{sparsity:>9.2f}{b:>7}{t_dense * 1e3:>11.2f}{t_sparse * 1e3:>11.2f}"
                f"{t_dense / t_sparse:>9.2f}"
            )
        del dense, sparse, weights


if __name__ == "__main__":
    main()
