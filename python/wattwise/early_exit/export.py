"""Deployment: each stage and head saved as its own TorchScript artifact plus a plain-text
manifest, so a LibTorch program (cpp/examples/early_exit_runner.cpp) runs the exit loop with
no Python. Also the small tensor file format that program reads and writes."""

from __future__ import annotations

import math
import struct
import warnings
from pathlib import Path

import torch

from .network import EarlyExitNetwork

MANIFEST = "early_exit.txt"
_MAGIC = b"WWTENSOR"
_DTYPES = {torch.float32: 0, torch.int64: 1, torch.bool: 2}
_CODES = {v: k for k, v in _DTYPES.items()}


def save_tensors(path, tensors) -> None:
    """Writes tensors as: magic, count, then per tensor dtype code (0 float32, 1 int64,
    2 bool), ndim, dims (int64) and the raw little-endian data."""
    tensors = list(tensors)
    with open(path, "wb") as f:
        f.write(_MAGIC + struct.pack("<q", len(tensors)))
        for i, t in enumerate(tensors):
            if not isinstance(t, torch.Tensor) or t.dtype not in _DTYPES:
                raise TypeError(
                    f"save_tensors: tensors[{i}] must be a float32, int64 or bool tensor, got "
                    f"{t.dtype if isinstance(t, torch.Tensor) else type(t).__name__}"
                )
            t = t.detach().cpu().contiguous()
            f.write(struct.pack("<qq", _DTYPES[t.dtype], t.dim()))
            f.write(struct.pack(f"<{t.dim()}q", *t.shape))
            f.write(t.numpy().tobytes())


def load_tensors(path) -> list[torch.Tensor]:
    """Reads a file written by ``save_tensors`` (or by the C++ runner)."""
    data = Path(path).read_bytes()
    if data[:8] != _MAGIC:
        raise ValueError(f"load_tensors: {path} is not a wattwise tensor file")
    (count,), off = struct.unpack_from("<q", data, 8), 16
    out = []
    for _ in range(count):
        code, ndim = struct.unpack_from("<qq", data, off)
        off += 16
        shape = struct.unpack_from(f"<{ndim}q", data, off)
        off += 8 * ndim
        dtype = _CODES[code]
        nbytes = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
        buf = bytearray(data[off : off + nbytes])
        off += nbytes
        out.append(
            torch.frombuffer(buf, dtype=dtype).reshape(shape)
            if nbytes
            else torch.empty(shape, dtype=dtype)
        )
    return out


def _script(module: torch.nn.Module, args: tuple) -> torch.jit.ScriptModule:
    # Tracing follows whatever Python the module runs (stages built by attach_exits call
    # layers with keyword extras, which scripting cannot type); shapes stay symbolic in the
    # traced ops, so the compacted, smaller batches of the exit loop run through it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch 2.13 flags TorchScript as deprecated
        return torch.jit.trace(module, args, check_trace=False)


@torch.no_grad()
def export(net: EarlyExitNetwork, directory, example_input: torch.Tensor, *example_extra) -> Path:
    """Saves ``stage_<k>.pt`` and ``head_<k>.pt`` (TorchScript) for every exit and the
    manifest ``early_exit.txt`` (criterion, thresholds, temperatures, number of extras) into
    ``directory``; returns its path. TorchScript because LibTorch loads it with
    ``torch::jit::load`` and nothing else; torch.export's AOTInductor packages would need a
    C++ compiler at export time. Trace with a batch of at least two samples."""
    if not isinstance(net, EarlyExitNetwork):
        raise TypeError(f"export: net must be an EarlyExitNetwork, got {type(net).__name__}")
    if (
        not isinstance(example_input, torch.Tensor)
        or example_input.dim() < 1
        or example_input.shape[0] < 2
    ):
        raise ValueError("export: example_input must be a batch of at least two samples")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    was_training = net.training
    net.eval()
    try:
        h = example_input
        for k, (stage, head) in enumerate(zip(net.stages, net.heads, strict=True)):
            _script(stage, (h, *example_extra)).save(str(out / f"stage_{k}.pt"))
            h = stage(h, *example_extra)
            logits = net._head(k, h)
            _script(head, (h,)).save(str(out / f"head_{k}.pt"))
            del logits
    finally:
        net.train(was_training)
    thresholds = net.thresholds.tolist()
    lines = [
        "wattwise-early-exit 1",
        f"exits {net.num_exits}",
        f"criterion {int(net.criterion_code)}",
        "thresholds " + " ".join(repr(float(t)) for t in thresholds),
        "temperatures " + " ".join(repr(float(t)) for t in net.temperatures.tolist()),
        f"extras {len(example_extra)}",
    ]
    (out / MANIFEST).write_text("\n".join(lines) + "\n")
    return out
