"""``wattwise compare`` and ``wattwise report``: the review from the command line."""

from __future__ import annotations

import copy
import importlib
from pathlib import Path

import torch
from torch import nn

from .compare import compare
from .report import Comparison


def _import_object(spec: str, what: str):
    if ":" not in spec:
        raise ValueError(f"{what} must look like 'package.module:name', got {spec!r}")
    mod_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(mod_name)
    except ImportError as exc:
        raise ValueError(f"{what}: cannot import module {mod_name!r}: {exc}") from exc
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{what}: {mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def load_model(spec: str) -> nn.Module:
    """A model from 'package.module:factory' (called with no argument) or from a file saved
    with torch.jit.save (.pt/.pth) or torch.export.save (.pt2)."""
    path = Path(spec)
    if path.suffix in (".pt", ".pth", ".pt2") and ":" not in spec:
        if not path.exists():
            raise FileNotFoundError(f"model file {spec} does not exist")
        if path.suffix == ".pt2":
            return torch.export.load(str(path)).module()
        return torch.jit.load(str(path), map_location="cpu")
    factory = _import_object(spec, "model")
    model = factory() if callable(factory) and not isinstance(factory, nn.Module) else factory
    if not isinstance(model, nn.Module):
        raise TypeError(f"model {spec!r} gave {type(model).__name__}, not an nn.Module")
    return model


def _recipes() -> dict:
    from ..quantization import Int4WeightOnlyConfig, Int8WeightOnlyConfig, quantize_

    return {
        "fp32": lambda m: m,
        "int8": lambda m: quantize_(m, Int8WeightOnlyConfig()),
        "int4": lambda m: quantize_(
            m,
            Int4WeightOnlyConfig(32),
            filter_fn=lambda mod, fqn: isinstance(mod, nn.Linear) and mod.in_features % 32 == 0,
        ),
    }


def _metric(name: str | None):
    if name is None:
        return None
    if name == "accuracy":
        return lambda out, target: (out.argmax(-1) == target).float().mean().item()
    return _import_object(name, "--metric")


def _load_data(args):
    if args.data:
        path = Path(args.data)
        if not path.exists():
            raise FileNotFoundError(f"--data file {path} does not exist")
        blob = torch.load(path, weights_only=True, map_location="cpu")
        if isinstance(blob, dict):
            if "inputs" not in blob:
                raise ValueError(f"--data {path}: a dict must hold 'inputs' (and 'targets')")
            return (blob["inputs"], blob["targets"]) if "targets" in blob else blob["inputs"]
        return blob
    shape = [int(s) for s in args.input_shape.split(",")]
    if any(s < 1 for s in shape):
        raise ValueError(f"--input-shape must hold positive sizes, got {args.input_shape}")
    torch.manual_seed(0)
    return torch.randn(max(args.batch_sizes), *shape)


def run_compare(args) -> int:
    recipes = _recipes()
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in names if v not in recipes]
    if unknown or not names:
        raise ValueError(f"--variants: unknown {unknown}; choose from {sorted(recipes)}")
    if args.data is None and args.input_shape is None:
        raise ValueError("give --data FILE.pt or --input-shape (e.g. --input-shape 64)")
    if args.metric and args.data is None:
        raise ValueError("--metric needs --data with targets")
    base = load_model(args.model).eval()
    variants = {name: recipes[name](copy.deepcopy(base)) for name in names}
    result = compare(
        variants,
        _load_data(args),
        metric=_metric(args.metric),
        batch_sizes=args.batch_sizes,
        warmup=args.warmup,
        repeats=args.repeats,
        energy=not args.no_energy,
    )
    print(result.table())
    for out in args.out:
        print(f"wrote {result.save(out)}")
    return 0


def run_report(args) -> int:
    result = Comparison.load(args.results)
    print(result.table())
    for out in args.out:
        print(f"wrote {result.save(out)}")
    return 0


def add_compare(sub) -> None:
    p = sub.add_parser(
        "compare",
        help="compare a model's variants on latency, energy, metric, size and MACs",
        description="Build variants of a model (fp32, int8, int4) and compare them.",
    )
    p.add_argument("model", help="'package.module:factory', or a TorchScript (.pt) / .pt2 file")
    p.add_argument("--variants", default="fp32,int8,int4", help="comma-separated recipes")
    p.add_argument("--data", help="torch.save'd (inputs, targets) or {'inputs', 'targets'}")
    p.add_argument("--input-shape", help="random inputs of this per-sample shape, e.g. 3,32,32")
    p.add_argument("--metric", help="'accuracy' or 'package.module:function(outputs, targets)'")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--no-energy", action="store_true", help="skip energy measurement")
    p.add_argument("--out", nargs="*", default=[], help="write .html/.md/.json reports")
    p.set_defaults(func=run_compare)


def add_report(sub) -> None:
    p = sub.add_parser(
        "report",
        help="re-render saved comparison results (.json) as a table, .html or .md",
        description="Re-render a comparison saved as JSON by `wattwise compare --out x.json`.",
    )
    p.add_argument("results", help="a .json file written by Comparison.save")
    p.add_argument("--out", nargs="*", default=[], help="write .html/.md/.json reports")
    p.set_defaults(func=run_report)
