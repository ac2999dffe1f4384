"""Weight-only int8/int4 Linear against fp32 nn.Linear on a layer stack larger than the
last-level cache (batch 1 is memory-bound: speed should follow bytes per weight).

    python benchmarks/quant_weight_only.py              # 8 x 4096x4096, batches 1 8 32
    python benchmarks/quant_weight_only.py --quick      # fewer rounds
"""

from __future__ import annotations

import argparse
import copy

import torch
from common import machine, time_interleaved
from torch import nn

import wattwise
from wattwise.quantization import Int4WeightOnlyConfig, Int8WeightOnlyConfig


def weight_bytes(model: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--dim", type=int, default=4096)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--quick", action="store_true", help="3 rounds instead of 7")
    args = parser.parse_args()

    torch.manual_seed(0)
    base = nn.Sequential(*[nn.Linear(args.dim, args.dim) for _ in range(args.layers)]).eval()
    variants = {"fp32 nn.Linear": base}
    for name, cfg in [
        ("int8 weight-only", Int8WeightOnlyConfig()),
        ("int4 weight-only g32", Int4WeightOnlyConfig(32)),
        ("int4 weight-only g128", Int4WeightOnlyConfig(128)),
    ]:
        variants[name] = wattwise.quantize_(copy.deepcopy(base), cfg)

    print(f"machine: {machine()}")
    print(f"stack: {args.layers} x Linear({args.dim}, {args.dim})")
    sizes = {name: weight_bytes(m) for name, m in variants.items()}

    # Accuracy of one layer, relative to fp32 output.
    x = torch.randn(1, args.dim)
    with torch.inference_mode():
        ref = base[0](x)
        errs = {n: float((m[0](x) - ref).norm() / ref.norm()) for n, m in variants.items()}

    rounds = 3 if args.quick else 7
    print("| batch | variant | MB | ms / forward | speed-up vs fp32 | weight GB/s | rel. error |")
    print("|---|---|---|---|---|---|---|")
    for b in args.batch:
        xb = torch.randn(b, args.dim)
        with torch.inference_mode():
            fns = {n: (lambda m=m, xb=xb: m(xb)) for n, m in variants.items()}
            times = time_interleaved(fns, rounds=rounds)
        for n, t in times.items():
            print(
                f"| {b} | {n} | {sizes[n] / 1e6:.1f} | {t * 1e3:.3f} | "
                f"{times['fp32 nn.Linear'] / t:.2f}x | {sizes[n] / t / 1e9:.1f} | "
                f"{errs[n]:.4f} |"
            )


if __name__ == "__main__":
    main()
