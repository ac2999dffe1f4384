"""Early exit on scikit-learn's digits: a small MLP and a deeper residual CNN, each trained
with the joint exit loss, calibrated on a validation split and measured on held-out data
against the plain model (same weights, no exit heads): accuracy drop, mean FLOPs saved,
wall time at batch 1 and 32, and the exit loop's bookkeeping share.

    python benchmarks/early_exit_digits.py [--quick] [--model mlp|cnn|both]
"""

from __future__ import annotations

import argparse
import time

import torch
from sklearn.datasets import load_digits
from torch import nn
from torch.utils.benchmark import Timer

import wattwise
from wattwise.early_exit import EarlyExitNetwork, calibrate, joint_loss


def data():
    d = load_digits()
    x = torch.tensor(d.data, dtype=torch.float32) / 16
    y = torch.tensor(d.target)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    # train / calibration / held-out test
    return (x[:1000], y[:1000]), (x[1000:1350], y[1000:1350]), (x[1350:], y[1350:])


def mlp_model():
    stages = [nn.Sequential(nn.Linear(64, 256), nn.ReLU())]
    stages += [nn.Sequential(nn.Linear(256, 256), nn.ReLU()) for _ in range(3)]
    heads = [nn.Linear(256, 10) for _ in range(4)]
    return EarlyExitNetwork(stages, heads), (lambda x: x)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


def cnn_model(c=48, blocks_per_stage=2, stages_n=4):
    def head():
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10))

    stem = [nn.Conv2d(1, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
    stages = []
    for s in range(stages_n):
        layers = (stem if s == 0 else []) + [Block(c) for _ in range(blocks_per_stage)]
        stages.append(nn.Sequential(*layers))
    return EarlyExitNetwork(stages, [head() for _ in range(stages_n)]), (
        lambda x: x.view(-1, 1, 8, 8)
    )


def train(net, x, y, epochs):
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    net.train()
    for epoch in range(epochs):
        perm = torch.randperm(len(y))
        for i in range(0, len(y), 64):
            idx = perm[i : i + 64]
            opt.zero_grad()
            joint_loss(net(x[idx]), y[idx], "sdn", progress=epoch / max(epochs - 1, 1)).backward()
            opt.step()
    net.eval()


def median_time(fn, min_run_time):
    return (
        Timer(stmt="fn()", globals={"fn": fn}, num_threads=torch.get_num_threads())
        .blocked_autorange(min_run_time=min_run_time)
        .median
    )


def run(name, make, epochs, target, min_run_time):
    torch.manual_seed(0)
    (xtr, ytr), (xc, yc), (xt, yt) = data()
    net, prep = make()
    xtr, xc, xt = prep(xtr), prep(xc), prep(xt)
    t0 = time.perf_counter()
    train(net, xtr, ytr, epochs)
    train_s = time.perf_counter() - t0
    plain = nn.Sequential(*net.stages, net.heads[-1]).eval()

    cal = calibrate(
        net,
        [(xc[i : i + 50], yc[i : i + 50]) for i in range(0, len(yc), 50)],
        max_accuracy_drop=target,
        progress=False,
    )
    with torch.no_grad():
        plain_acc = float((plain(xt).argmax(1) == yt).float().mean())
    net.stats.reset()
    for i in range(0, len(yt), 32):
        net.infer(xt[i : i + 32], labels=yt[i : i + 32])
    stats = net.stats
    ee_acc = stats.accuracy
    net.track_stats = False

    res = {"model": name, "train_s": train_s, "plain_acc": plain_acc, "ee_acc": ee_acc}
    res["acc_drop"] = plain_acc - ee_acc
    res["flops_saved"] = stats.flops_saved
    res["exit_hist"] = stats.exit_histogram
    res["cal"] = cal

    with torch.no_grad():
        for bs, n in ((1, 128), (32, len(yt))):
            chunks = [xt[i : i + bs] for i in range(0, n, bs)]

            def run_plain(chunks=chunks):
                for c in chunks:
                    plain(c)

            def run_ee(chunks=chunks):
                for c in chunks:
                    net.infer(c)

            # The same stage and head calls on the row counts infer saw, without the decision
            # and compaction: infer's time minus this is the bookkeeping.
            rows = []
            for c in chunks:
                _, idx = net.infer(c)
                rows.append([int((idx >= k).sum()) for k in range(net.num_exits)])

            def run_compute(chunks=chunks, rows=rows):
                for c, r in zip(chunks, rows, strict=True):
                    h = c
                    for k, m in enumerate(r):
                        if m == 0:
                            break
                        h = net.stages[k](h[:m])
                        net.heads[k](h)

            tp = median_time(run_plain, min_run_time)
            te = median_time(run_ee, min_run_time)
            tc = median_time(run_compute, min_run_time)
            res[f"b{bs}"] = {
                "plain_ms": tp * 1e3,
                "ee_ms": te * 1e3,
                "time_saved": 1 - te / tp,
                "bookkeeping_share": (te - tc) / tp,
            }
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer epochs, shorter timing")
    ap.add_argument("--model", choices=["mlp", "cnn", "both"], default="both")
    ap.add_argument(
        "--target", type=float, default=0.01, help="max_accuracy_drop (on its upper bound)"
    )
    args = ap.parse_args()
    info = wattwise.cpu_info()
    print(
        f"machine: {info['model']}, {info['logical_cpus']} logical CPUs, simd={info['simd']}, "
        f"torch {torch.__version__}, threads {torch.get_num_threads()}"
    )
    models = {
        "mlp": (mlp_model, 30 if not args.quick else 15),
        "cnn": (cnn_model, 8 if not args.quick else 4),
    }
    chosen = list(models) if args.model == "both" else [args.model]
    for name in chosen:
        make, epochs = models[name]
        r = run(name, make, epochs, args.target, 0.2 if args.quick else 0.6)
        c = r["cal"]
        print(f"\n== {name}: trained {epochs} epochs in {r['train_s']:.1f} s")
        print(
            f"calibration ({c.samples} samples, target drop {args.target}): thresholds "
            f"{[round(t, 4) for t in c.thresholds]}, drop {c.accuracy_drop:.4f} "
            f"(upper {c.accuracy_drop_upper:.4f}), compute {c.compute_fraction:.3f}"
        )
        print(
            f"held-out: plain acc {r['plain_acc']:.4f}, early-exit acc {r['ee_acc']:.4f}, "
            f"drop {r['acc_drop'] * 100:.2f} pts; exits {r['exit_hist']}; "
            f"mean FLOPs saved {r['flops_saved'] * 100:.1f}%"
        )
        for bs in (1, 32):
            b = r[f"b{bs}"]
            print(
                f"batch {bs:2d}: plain {b['plain_ms']:.2f} ms, early exit {b['ee_ms']:.2f} ms "
                f"-> wall time saved {b['time_saved'] * 100:.1f}%, bookkeeping "
                f"{b['bookkeeping_share'] * 100:.1f}% of the plain model's time"
            )


if __name__ == "__main__":
    main()
