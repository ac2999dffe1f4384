"""CNNs (VGG-style, ResNet-18-style) with 50% of their conv channels pruned and removed:
latency of the dense model, of wattwise's shrink_ result and of Torch-Pruning's
MagnitudePruner result (same model, same ratio), plus parameter counts and the wattwise
model's agreement with its masked version.

    pip install torch-pruning "torch==2.13.0"   # optional peer; skipped when missing
    python benchmarks/prune_shrink_cnn.py [--quick]
"""

from __future__ import annotations

import argparse
import copy

import torch
from torch import nn
from torch.utils.benchmark import Timer

import wattwise
import wattwise.prune as wp


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


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.down is None else self.down(x)))


def resnet18_like(classes: int = 100) -> nn.Module:
    layers = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU()]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes)]
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
            Timer("m(x)", globals={"m": model, "x": x}, num_threads=torch.get_num_threads())
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
    size = 64 if args.quick else 112
    min_time = 0.3 if args.quick else 1.0
    for title, factory in (
        ("VGG-style CNN (8 conv + BN)", vgg_like),
        ("ResNet-18-style CNN", resnet18_like),
    ):
        compare(title, factory, size, args.ratio, min_time)


def compare(title, factory, size, ratio, min_time) -> None:
    torch.manual_seed(0)
    dense = factory().eval()
    randomize_bn(dense)
    example = torch.randn(1, 3, size, size)

    ours = copy.deepcopy(dense)
    # Channel groups through residual additions, so that the residual streams shrink too.
    wp.magnitude_(
        ours,
        ratio,
        pattern="channel",
        scope="layer",
        example_inputs=example,
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
            pruning_ratio=ratio,
            ignored_layers=[theirs[-1]],
        )
        pruner.step()
        models["Torch-Pruning"] = theirs
    except ImportError:
        print("torch-pruning not installed: its column is skipped")

    print(
        f"\n{title}, {ratio:.0%} of conv channels pruned, input 3x{size}x{size}; "
        f"shrunk vs masked max |diff| = {diff:.2e}"
    )
    print(f"{'model':<20}{'params':>12}{'batch':>7}{'ms':>10}{'vs dense':>10}")
    for batch in (1, 16):
        x = torch.randn(batch, 3, size, size)
        base = latency_ms(dense, x, min_time)
        for name, m in models.items():
            t = base if m is dense else latency_ms(m, x, min_time)
            print(f"{name:<20}{params(m):>12}{batch:>7}{t:>10.2f}{base / t:>10.2f}")


if __name__ == "__main__":
    main()
