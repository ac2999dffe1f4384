"""``wattwise demo``: the end-to-end efficiency review, offline and deterministic.

Trains a small CNN on scikit-learn's bundled digits, builds pruned (channels removed, and
sparse), int8, int4, early-exit and combined (prune -> quantize -> early exit) variants,
compares them with energy tracking, prints the table and writes review.html."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import torch
from torch import nn


def make_data(seed: int = 0):
    """Digits as 1x8x8 images in [0, 1], split 50/25/25 into train, calibration, test (a
    larger calibration set gives early-exit thresholds a tighter confidence bound)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32).reshape(-1, 1, 8, 8)
    y = torch.tensor(y, dtype=torch.long)
    idx = list(range(len(y)))
    tr, rest = train_test_split(idx, test_size=0.5, random_state=seed, stratify=y.numpy())
    ca, te = train_test_split(rest, test_size=0.5, random_state=seed, stratify=y[rest].numpy())
    return (x[tr], y[tr]), (x[ca], y[ca]), (x[te], y[te])


def make_cnn() -> nn.Sequential:
    """Three convolution blocks and a two-layer classifier, as named stages."""
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU()),
        nn.Sequential(nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU()),
        nn.Sequential(
            nn.Conv2d(64, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(), nn.MaxPool2d(2)
        ),
        nn.Sequential(nn.Flatten(), nn.Linear(128 * 4 * 4, 512), nn.ReLU(), nn.Linear(512, 10)),
    )


def _loader(x, y, batch: int, shuffle: bool, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=batch, shuffle=shuffle, generator=g
    )


def train(model: nn.Module, train_set, epochs: int = 12, lr: float = 2e-3, seed: int = 0):
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        for x, y in _loader(*train_set, batch=64, shuffle=True, seed=seed):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    return model.eval()


def accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    return (outputs.argmax(-1) == targets).float().mean().item()


def build_variants(
    base: nn.Sequential,
    train_set,
    calib_set,
    progress: bool = True,
    finetune_epochs: int = 3,
    head_epochs: int = 10,
    max_accuracy_drop: float = 0.01,
) -> dict:
    """Every variant of the review, each built from a copy of the trained ``base``.
    ``finetune_epochs``: training after pruning; ``head_epochs``: training of exit heads;
    ``max_accuracy_drop``: the calibration target of the early-exit variants (checked on the
    95% upper bound of the drop over the calibration images)."""
    from . import early_exit, prune
    from .quantization import (
        Int4WeightOnlyConfig,
        Int8DynamicActivationInt8WeightConfig,
        quantize_,
    )
    from .review.pipeline import _finetune, default_head_factory, prune_quantize_exit

    example = train_set[0][:1]
    train_loader = _loader(*train_set, batch=64, shuffle=True)
    calib_loader = _loader(*calib_set, batch=256, shuffle=False)
    variants = {"baseline": base}

    # Structured: half of every hidden layer's channels removed for real (dense, smaller).
    shrunk = copy.deepcopy(base)
    prune.magnitude_(
        shrunk,
        0.5,
        pattern="channel",
        scope="layer",
        filter_fn=lambda m, fqn: isinstance(m, nn.Conv2d) or fqn == "3.1",
    )
    _finetune(shrunk, train_loader, epochs=finetune_epochs, lr=1e-3)
    prune.shrink_(shrunk, example)
    variants["pruned 50% ch (shrunk)"] = shrunk.eval()

    # Unstructured: 90% of the classifier's weights zeroed, kept in sparse kernels.
    sparse = copy.deepcopy(base)
    prune.magnitude_(
        sparse,
        0.9,
        scope="layer",
        filter_fn=lambda m, fqn: isinstance(m, nn.Linear) and fqn != "3.3",
    )
    _finetune(sparse, train_loader, epochs=finetune_epochs, lr=1e-3)
    # Modelled (not timed) decisions keep the demo deterministic on a busy machine.
    prune.sparsify_(sparse, min_speedup=1.0, measure=False)
    for m in sparse.modules():
        if prune.is_pruned(m):  # a layer left dense: make its zeros permanent, drop the mask
            prune.remove(m, "weight")
    variants["pruned 90% (sparse)"] = sparse.eval()

    variants["int8 dynamic"] = quantize_(
        copy.deepcopy(base), Int8DynamicActivationInt8WeightConfig()
    )
    variants["int4 weight-only"] = quantize_(copy.deepcopy(base), Int4WeightOnlyConfig(32))

    ee = early_exit.attach_exits(
        copy.deepcopy(base),
        after=["0", "1"],
        head_factory=default_head_factory(10),
        example_input=example,
    )
    early_exit.freeze_backbone_(ee)
    _finetune(
        ee,
        train_loader,
        epochs=head_epochs,
        lr=2e-3,
        params=[p for p in ee.parameters() if p.requires_grad],
    )
    early_exit.calibrate(ee, calib_loader, max_accuracy_drop=max_accuracy_drop, progress=progress)
    variants["early exit"] = ee.eval()

    combined = prune_quantize_exit(
        base,
        train_loader,
        calib_loader,
        example,
        exits_after=["0", "1"],
        num_classes=10,
        prune_filter=lambda m, fqn: isinstance(m, nn.Conv2d) or fqn == "3.1",
        finetune_epochs=finetune_epochs,
        head_epochs=head_epochs,
        lr=2e-3,
        max_accuracy_drop=max_accuracy_drop,
        progress=progress,
    )
    variants["pruned+int8+exit"] = combined.model.eval()
    return variants


def run_demo(
    out_dir: str | Path = ".", batch_sizes=(1, 32), repeats: int = 30, progress: bool = True
) -> int:
    import wattwise

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out-dir {out_dir} exists and is not a folder")
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"--repeats must be an int >= 1, got {repeats!r}")
    t0 = time.perf_counter()
    torch.manual_seed(0)
    info = wattwise.cpu_info()
    print(
        f"wattwise {wattwise.__version__} | torch {torch.__version__} | {info['model']} | "
        f"kernel path {info['simd']} | {torch.get_num_threads()} threads"
    )
    train_set, calib_set, test_set = make_data()
    print(
        f"digits: {len(train_set[1])} train / {len(calib_set[1])} calibration / "
        f"{len(test_set[1])} test images"
    )
    base = train(make_cnn(), train_set)
    print(f"baseline CNN trained: test accuracy {accuracy(base(test_set[0]), test_set[1]):.4f}")
    print("building variants (pruning, quantization, early exit, combined) ...")
    variants = build_variants(base, train_set, calib_set, progress=progress)
    print("comparing (latency, energy, accuracy, size, MACs) ...")
    result = wattwise.compare(
        variants,
        test_set,
        metric=accuracy,
        batch_sizes=tuple(batch_sizes),
        warmup=5,
        repeats=repeats,
        min_time_s=0.4,
        progress=progress,
    )
    print()
    print(result.table())
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in ("review.html", "review.md", "review.json"):
        result.save(out_dir / name)
    print()
    print(f"Pareto front (accuracy vs energy per inference): {', '.join(result.pareto())}")
    print(
        f"wrote {out_dir / 'review.html'} (and review.md, review.json) in "
        f"{time.perf_counter() - t0:.0f} s"
    )
    return 0
