"""Accuracy of a small MLP trained on scikit-learn's bundled digits (8x8 images, 10 classes)
after global magnitude pruning to 50/80/90%: one-shot, one-shot + fine-tuning with the masks
kept, and gradual pruning (PolynomialDecay) during fine-tuning.

    python benchmarks/prune_digits_accuracy.py [--quick]
"""

from __future__ import annotations

import argparse
import copy

import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

import wattwise
import wattwise.prune as wp


def data():
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x, dtype=torch.float32) / 16.0
    y = torch.tensor(y)
    return train_test_split(x, y, test_size=0.3, random_state=0, stratify=y)


def train(model, x, y, epochs, lr=1e-3, pruner=None):
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 64):
            idx = perm[i : i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
            if pruner is not None:
                pruner.step()


@torch.no_grad()
def accuracy(model, x, y) -> float:
    return float((model(x).argmax(1) == y).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    info = wattwise.cpu_info()
    print(f"machine: {info['model']}, {info['logical_cpus']} logical CPUs")
    torch.manual_seed(0)
    xtr, xte, ytr, yte = data()
    model = nn.Sequential(
        nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10)
    )
    epochs = 15 if args.quick else 40
    train(model, xtr, ytr, epochs)
    print(
        f"MLP 64-256-128-10 on digits ({len(xtr)} train / {len(xte)} test), dense test accuracy "
        f"{accuracy(model, xte, yte):.4f}"
    )
    ft_epochs = 5 if args.quick else 15
    steps_per_epoch = (len(xtr) + 63) // 64
    print(f"fine-tuning: {ft_epochs} epochs")
    print(f"{'sparsity':>9}{'one-shot':>10}{'+fine-tune':>12}{'gradual':>10}")
    for s in (0.5, 0.8, 0.9):
        one = copy.deepcopy(model)
        wp.magnitude_(one, s)
        acc_one = accuracy(one, xte, yte)
        train(one, xtr, ytr, ft_epochs)
        acc_ft = accuracy(one, xte, yte)
        grad = copy.deepcopy(model)
        end = (ft_epochs - 2) * steps_per_epoch
        pruner = wp.GradualPruner(grad, wp.PolynomialDecay(0.0, s, 0, end, frequency=10))
        train(grad, xtr, ytr, ft_epochs, pruner=pruner)
        acc_grad = accuracy(grad, xte, yte)
        print(f"{s:>9.2f}{acc_one:>10.4f}{acc_ft:>12.4f}{acc_grad:>10.4f}")


if __name__ == "__main__":
    main()
