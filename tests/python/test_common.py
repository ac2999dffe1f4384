"""Package-level behaviour: import checks, cpu_info, kernel-path selection, fork safety."""

import multiprocessing as mp
import subprocess
import sys

import numpy as np
import pytest
import torch

import wattwise


def test_cpu_info_reports_path_and_cores():
    info = wattwise.cpu_info()
    assert info["simd"] in ("avx512vnni", "avx2", "scalar")
    assert info["simd_detected"] in ("avx512vnni", "avx2", "scalar")
    assert info["logical_cpus"] >= 1
    assert 1 <= info["physical_cores"] <= info["logical_cpus"]
    assert info["num_threads"] >= 1
    assert set(info["features"]) >= {"avx2", "fma", "f16c", "avx512f"}


def test_set_simd_validates_and_switches():
    with pytest.raises(ValueError, match="avx9"):
        wattwise.set_simd("avx9")
    with pytest.raises(TypeError, match="level"):
        wattwise.set_simd(2)
    try:
        wattwise.set_simd("scalar")
        assert wattwise.cpu_info()["simd"] == "scalar"
    finally:
        wattwise.set_simd("auto")
    assert wattwise.cpu_info()["simd"] == wattwise.cpu_info()["simd_detected"]


def test_kernel_threads_follow_torch_set_num_threads():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        q, s = torch.ops.wattwise.int8_weight_only_quantize(torch.randn(8, 8))
        torch.ops.wattwise.int8_weight_only_linear(torch.randn(1, 8), q, s, None)
        assert wattwise.cpu_info()["num_threads"] == 1
    finally:
        torch.set_num_threads(before)


def _child_runs_kernel(queue):
    # Inputs come from NumPy: torch's own OpenMP regions hang in a forked child once the
    # parent has used them (a libgomp limitation, not wattwise's); wattwise's pool must not.
    w = torch.from_numpy(np.ones((512, 512), dtype=np.float32))
    q, s = torch.ops.wattwise.int8_weight_only_quantize(w)
    y = torch.ops.wattwise.int8_weight_only_linear(w[:4], q, s, None)
    queue.put(float(y.numpy().sum()))


def test_kernels_work_in_a_forked_child():
    # Warm the pool in the parent, then fork: the child must not wait on threads it lacks.
    q, s = torch.ops.wattwise.int8_weight_only_quantize(torch.ones(512, 512))
    torch.ops.wattwise.int8_weight_only_linear(torch.ones(4, 512), q, s, None)
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child_runs_kernel, args=(queue,))
    proc.start()
    proc.join(timeout=60)
    assert proc.exitcode == 0
    assert queue.get(timeout=5) == pytest.approx(4 * 512 * 512)


def test_import_refuses_a_mismatched_torch():
    code = (
        "import torch; torch.__version__ = '1.0.0'\n"
        "try:\n    import wattwise\nexcept ImportError as e:\n    print('ERR', e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "ERR" in out.stdout
    assert "built against torch" in out.stdout and "1.0.0" in out.stdout
