"""A CNN with 50% of its conv channels pruned and removed: latency of the dense model, of
wattwise's shrink_ result and of Torch-Pruning's MagnitudePruner result (same model, same
ratio), plus parameter counts and the wattwise model's agreement with its masked version.

    pip install torch-pruning "torch==2.13.0"   # optional peer; skipped when missing
    python benchmarks/prune_shrink_cnn.py [--quick]
"""

from __future__ import annotations

import argparse
import copy

import torch
import wattwise
import wattwise.prune as wp
from torch import nn
from torch.utils.benchmark import Timer


def vgg_like(width: int = 64, classes: int = 100) -> nn.Module:
    cfg = [
        width,
        width,
        "M",
        2 * width,
        2 * width,
        "M",
        4 * width,
        4 * width,
        "M",
        8 * width,
        8 * width,
    ]
    layers, c = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1, bias=False), nn.BatchNorm2d(v), nn.ReLU()]
            c = v
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, classes)]
    return nn.Sequential(*layers)


def randomize_bn(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)


def latency_ms(model: nn.Module, x: torch.Tensor, min_time: float) -> float:
    with torch.no_grad():
        return (
            Timer("m(x)", globals={"m": model, "x": x})
            .blocked_autorange(min_run_time=min_time)
            .median
            * 1e3
        )


def params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--ratio", type=float, default=0.5)
    args = ap.parse_args()
    info = wattwise.cpu_info()
    print(
        f"machine: {info['model']}, {info['logical_cpus']} logical CPUs, simd={info['simd']}, "
        f"torch threads={torch.get_num_threads()}"
    )
    torch.manual_seed(0)
    dense = vgg_like().eval()
    randomize_bn(dense)
    size = 64 if args.quick else 112
    example = torch.randn(1, 3, size, size)

    ours = copy.deepcopy(dense)
    wp.magnitude_(
        ours,
        args.ratio,
        pattern="channel",
        scope="layer",
        filter_fn=lambda m, fqn: isinstance(m, nn.Conv2d),
    )
    wp.complete_channel_groups_(ours, example)
    masked_out = ours(example)
    wp.shrink_(ours, example)
    diff = (ours(example) - masked_out).abs().max().item()

    models = {"dense": dense, "wattwise shrink_": ours}
    try:
        import torch_pruning as tp

        theirs = copy.deepcopy(dense)
        pruner = tp.pruner.MagnitudePruner(
            theirs,
            example,
            importance=tp.importance.MagnitudeImportance(p=1),
            pruning_ratio=args.ratio,
            ignored_layers=[theirs[-1]],
        )
        pruner.step()
        models["Torch-Pruning"] = theirs
    except ImportError:
        print("torch-pruning not installed: its column is skipped")

    print(
        f"VGG-style CNN, {args.ratio:.0%} of conv channels pruned, input 3x{size}x{size}; "
        f"shrunk vs masked max |diff| = {diff:.2e}"
    )
    min_time = 0.3 if args.quick else 1.0
    print(f"{'model':<20}{'params':>12}{'batch':>7}{'ms':>10}{'vs dense':>10}")
    for batch in (1, 16):
        x = torch.randn(batch, 3, size, size)
        base = latency_ms(dense, x, min_time)
        for name, m in models.items():
            t = base if m is dense else latency_ms(m, x, min_time)
            print(f"{name:<20}{params(m):>12}{batch:>7}{t:>10.2f}{base / t:>10.2f}")


if __name__ == "__main__":
    main()
