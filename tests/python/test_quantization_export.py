"""A quantized model exported with torch.export and packaged by AOTInductor runs in the C++
program cpp/examples/run_exported_model (linked with wattwise_ops) with outputs identical
to Python's."""

import os
import pathlib
import subprocess

import pytest
import torch
from torch import nn

from wattwise.quantization import (
    BFloat16WeightConfig,
    Int4WeightOnlyConfig,
    Int8DynamicActivationInt8WeightConfig,
    Int8StaticConfig,
    calibrate,
    convert,
    prepare,
    quantize_,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _example_binary():
    env = os.environ.get("WATTWISE_EXAMPLE_BIN")
    if env:
        return pathlib.Path(env)
    found = sorted(ROOT.glob("build/*/cpp/examples/run_exported_model"))
    return found[0] if found else None


def _model():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 8 * 8, 128),
        nn.ReLU(),
        nn.Linear(128, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    ).eval()
    prepare(model, Int8StaticConfig(), filter_fn=lambda m, fqn: fqn == "0")
    calibrate(model, [torch.randn(4, 3, 8, 8) for _ in range(2)], progress=False)
    model = convert(model)
    quantize_(model, Int8DynamicActivationInt8WeightConfig(), filter_fn=lambda m, fqn: fqn == "3")
    quantize_(model, Int4WeightOnlyConfig(32), filter_fn=lambda m, fqn: fqn == "5")
    quantize_(model, BFloat16WeightConfig(), filter_fn=lambda m, fqn: fqn == "7")
    return model


def test_exported_model_runs_in_cpp_with_identical_outputs(tmp_path):
    binary = _example_binary()
    if binary is None or not binary.exists():
        pytest.skip(
            "the C++ example is not built: configure with -DWATTWISE_BUILD_EXAMPLES=ON "
            "(.ci/run does) or point WATTWISE_EXAMPLE_BIN at run_exported_model"
        )
    model = _model()
    x = torch.randn(5, 3, 8, 8)
    want = model(x)
    ep = torch.export.export(model, (x,))
    package = torch._inductor.aoti_compile_and_package(ep, package_path=str(tmp_path / "model.pt2"))
    x.numpy().tofile(tmp_path / "x.bin")
    result = subprocess.run(
        [
            str(binary),
            package,
            str(tmp_path / "x.bin"),
            str(tmp_path / "y.bin"),
            *map(str, x.shape),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    got = torch.from_file(str(tmp_path / "y.bin"), size=want.numel(), dtype=torch.float32)
    torch.testing.assert_close(got.reshape(want.shape), want.detach(), rtol=0, atol=0)
    assert "output shape [5, 10]" in result.stdout


def test_cpp_example_reports_bad_input(tmp_path):
    binary = _example_binary()
    if binary is None or not binary.exists():
        pytest.skip("the C++ example is not built (-DWATTWISE_BUILD_EXAMPLES=ON)")
    (tmp_path / "x.bin").write_bytes(b"\0" * 12)
    result = subprocess.run(
        [str(binary), "missing.pt2", str(tmp_path / "x.bin"), str(tmp_path / "y.bin"), "2", "3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "does not hold 6 float32 values" in result.stderr
    result = subprocess.run([str(binary)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "usage" in result.stderr
