"""Helpers shared by several test modules."""

import io

import torch


def roundtrip_state_dict(model: torch.nn.Module, fmt: str = "torch", tmp_path=None) -> dict:
    """``model.state_dict()`` after a trip through a file: torch.save + torch.load with
    weights_only=True, or safetensors (needs ``tmp_path``)."""
    if fmt == "torch":
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        buf.seek(0)
        return torch.load(buf, weights_only=True)
    from safetensors.torch import load_file, save_file

    save_file(model.state_dict(), tmp_path / "m.safetensors")
    return load_file(tmp_path / "m.safetensors")
