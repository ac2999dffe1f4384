"""Weight-only int8/int4: ops against a pure-torch reference, opcheck, the modules,
quantize_, serialization, torch.compile, and error messages."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import wattwise
from wattwise.quantization import (
    Int4WeightOnlyConfig,
    Int4WeightOnlyLinear,
    Int8WeightOnlyConfig,
    Int8WeightOnlyLinear,
    quantize_,
)

from .helpers import roundtrip_state_dict

ops = torch.ops.wattwise


# ---- pure-torch reference of the formats (independent of the package's code) ------------


def reference_int8_quantize(w):
    amax = w.abs().amax(dim=1) if w.shape[1] else torch.zeros(w.shape[0])
    scale = amax / 127
    inv = torch.where(scale == 0, torch.zeros_like(scale), 1.0 / scale)
    q = torch.round(w * inv[:, None]).clamp(-127, 127).to(torch.int8)
    return q, scale


def reference_int4_quantize(w, group_size):
    n, k = w.shape
    g = w.reshape(n, k // group_size, group_size)
    amax = g.abs().amax(dim=2)
    negative = ((g == -amax[..., None]) & (amax[..., None] > 0)).any(dim=2)
    d = torch.where(negative, amax / 8, -amax / 8).to(torch.float16)
    d32 = d.to(torch.float32)
    inv = torch.where(d32 == 0, torch.zeros_like(d32), 1.0 / d32)
    q = (torch.round(g * inv[..., None]).clamp(-8, 7) + 8).to(torch.uint8).reshape(n, k)
    blocks = q.reshape(n, k // 32, 32)
    packed = (blocks[..., :16] | (blocks[..., 16:] << 4)).reshape(n, k // 2)
    return packed, d


def reference_int4_dequantize(packed, d, group_size):
    n, half_k = packed.shape
    b = packed.reshape(n, half_k // 16, 16).to(torch.int32)
    q = torch.cat([(b & 15) - 8, (b >> 4) - 8], dim=2).reshape(n, half_k * 2).float()
    return q * d.float().repeat_interleave(group_size, dim=1)


# Shapes with odd row counts, SIMD tails and empty dimensions.
INT8_SHAPES = [(1, 1), (5, 9), (33, 100), (64, 256), (0, 16), (7, 0)]
INT4_SHAPES = [(1, 32), (5, 64), (33, 128), (16, 384), (0, 64), (3, 0)]
# (520,) takes the blocked dequantize + GEMM path (from 192 rows for int4, 512 for int8).
BATCH_SHAPES = [(1,), (3,), (2, 5), (0,), (37,), (3, 12), (520,)]


def sample_inputs_int8():
    for n, k in INT8_SHAPES:
        w = torch.randn(n, k)
        q, s = reference_int8_quantize(w)
        for lead in BATCH_SHAPES:
            for bias in (None, torch.randn(n)):
                yield torch.randn(*lead, k), q, s, bias


def sample_inputs_int4():
    for n, k in INT4_SHAPES:
        for g in (32, 64, 128):
            if k % g:
                continue
            w = torch.randn(n, k)
            p, d = reference_int4_quantize(w, g)
            for lead in BATCH_SHAPES:
                for bias in (None, torch.randn(n)):
                    yield torch.randn(*lead, k), p, d, g, bias


@pytest.mark.parametrize("shape", INT8_SHAPES)
def test_int8_quantize_matches_reference(shape):
    w = torch.randn(*shape) * 3
    q, s = ops.int8_weight_only_quantize(w)
    q_ref, s_ref = reference_int8_quantize(w)
    torch.testing.assert_close(q, q_ref, rtol=0, atol=0)
    torch.testing.assert_close(s, s_ref, rtol=0, atol=0)
    torch.testing.assert_close(
        ops.int8_weight_only_dequantize(q, s), q_ref.float() * s_ref[:, None], rtol=0, atol=0
    )


@pytest.mark.parametrize(
    ("shape", "group_size"),
    [(s, g) for s in INT4_SHAPES for g in (32, 64, 128) if s[1] % g == 0],
)
def test_int4_quantize_matches_reference(shape, group_size):
    w = torch.randn(*shape)
    p, d = ops.int4_weight_only_quantize(w, group_size)
    p_ref, d_ref = reference_int4_quantize(w, group_size)
    torch.testing.assert_close(p, p_ref, rtol=0, atol=0)
    torch.testing.assert_close(d, d_ref, rtol=0, atol=0)
    torch.testing.assert_close(
        ops.int4_weight_only_dequantize(p, d, group_size),
        reference_int4_dequantize(p_ref, d_ref, group_size),
        rtol=0,
        atol=0,
    )


@pytest.mark.parametrize("simd", ["auto", "scalar"])
def test_int8_linear_matches_reference(simd):
    wattwise.set_simd(simd)
    try:
        for x, q, s, bias in sample_inputs_int8():
            want = F.linear(x, q.float() * s[:, None], bias)
            got = ops.int8_weight_only_linear(x, q, s, bias)
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    finally:
        wattwise.set_simd("auto")


@pytest.mark.parametrize("simd", ["auto", "scalar"])
def test_int4_linear_matches_reference(simd):
    wattwise.set_simd(simd)
    try:
        for x, p, d, g, bias in sample_inputs_int4():
            want = F.linear(x, reference_int4_dequantize(p, d, g), bias)
            got = ops.int4_weight_only_linear(x, p, d, g, bias)
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    finally:
        wattwise.set_simd("auto")


def test_opcheck_every_op():
    for x, q, s, bias in list(sample_inputs_int8())[::7]:
        torch.library.opcheck(ops.int8_weight_only_linear, (x, q, s, bias))
        torch.library.opcheck(ops.int8_weight_only_dequantize, (q, s))
        w = q.float() * s[:, None]
        torch.library.opcheck(ops.int8_weight_only_quantize, (w,))
        xg = x.clone().requires_grad_(True)
        torch.library.opcheck(ops.int8_weight_only_linear, (xg, q, s, bias))
    for x, p, d, g, bias in list(sample_inputs_int4())[::7]:
        torch.library.opcheck(ops.int4_weight_only_linear, (x, p, d, g, bias))
        torch.library.opcheck(ops.int4_weight_only_dequantize, (p, d, g))
        w = reference_int4_dequantize(p, d, g)
        torch.library.opcheck(ops.int4_weight_only_quantize, (w, g))
        xg = x.clone().requires_grad_(True)
        torch.library.opcheck(ops.int4_weight_only_linear, (xg, p, d, g, bias))


@pytest.mark.parametrize("config", [Int8WeightOnlyConfig(), Int4WeightOnlyConfig(32)])
def test_gradients_flow_to_input_and_bias(config):
    lin = nn.Linear(64, 16)
    qlin = quantize_(nn.Sequential(lin), config)[0]
    x = torch.randn(3, 64, requires_grad=True)
    qlin(x).pow(2).sum().backward()
    x2 = x.detach().clone().requires_grad_(True)
    b2 = qlin.bias.detach().clone().requires_grad_(True)
    F.linear(x2, qlin.dequantize(), b2).pow(2).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(qlin.bias.grad, b2.grad, rtol=1e-4, atol=1e-4)


def _stack(dims=(256, 128, 64, 10)):
    layers = []
    for a, b in itertools.pairwise(dims):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


@pytest.mark.parametrize(
    ("config", "cls", "max_err"),
    [
        (Int8WeightOnlyConfig(), Int8WeightOnlyLinear, 0.01),
        (Int4WeightOnlyConfig(32), Int4WeightOnlyLinear, 0.10),
        (Int4WeightOnlyConfig(64), Int4WeightOnlyLinear, 0.10),
    ],
)
def test_quantize_swaps_linears_in_place_and_keeps_names(config, cls, max_err):
    model = nn.Sequential(nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 64))
    x = torch.randn(4, 256)
    want = model(x)
    keys = set(model.state_dict())
    out = quantize_(model, config)
    assert out is model
    assert isinstance(model[0], cls) and isinstance(model[2], cls)
    assert {k.rsplit(".", 1)[0] for k in model.state_dict()} == {k.rsplit(".", 1)[0] for k in keys}
    got = model(x)
    assert ((got - want).norm() / want.norm()) < max_err


def test_one_layer_relative_error_targets():
    lin = nn.Linear(4096, 4096)
    x = torch.randn(1, 4096)
    want = lin(x)
    for config, target in [(Int8WeightOnlyConfig(), 0.01), (Int4WeightOnlyConfig(32), 0.10)]:
        qlin = config._quantize_module(lin, "layer")
        err = ((qlin(x) - want).norm() / want.norm()).item()
        assert err < target, (config, err)


def test_filter_fn_selects_layers_and_mha_is_left_alone():
    model = nn.ModuleDict(
        {"a": nn.Linear(64, 64), "b": nn.Linear(64, 64), "mha": nn.MultiheadAttention(64, 4)}
    )
    quantize_(model, Int8WeightOnlyConfig(), filter_fn=lambda m, fqn: fqn != "b")
    assert isinstance(model["a"], Int8WeightOnlyLinear)
    assert type(model["b"]) is nn.Linear
    assert not isinstance(model["mha"].out_proj, Int8WeightOnlyLinear)
    x = torch.randn(5, 1, 64)
    model["mha"](x, x, x)  # still runs


def test_root_linear_is_returned():
    out = quantize_(nn.Linear(64, 8), Int8WeightOnlyConfig())
    assert isinstance(out, Int8WeightOnlyLinear)


@pytest.mark.parametrize("config", [Int8WeightOnlyConfig(), Int4WeightOnlyConfig(32)])
def test_state_dict_roundtrip_with_weights_only_load(config):
    model = quantize_(_stack(), config)
    x = torch.randn(2, 256)
    want = model(x)
    sd = roundtrip_state_dict(model)
    with torch.device("meta"):
        fresh = _stack()
    quantize_(fresh, config)
    fresh.load_state_dict(sd, assign=True)
    torch.testing.assert_close(fresh(x), want, rtol=0, atol=0)


@pytest.mark.parametrize("config", [Int8WeightOnlyConfig(), Int4WeightOnlyConfig(32)])
def test_dtype_casts_keep_storage_precision_and_other_dtypes_work(config):
    model = quantize_(_stack(), config)
    x = torch.randn(2, 256)
    want = model(x)
    model.half()
    lin = model[0]
    assert lin.scales.dtype == lin._scale_dtype and lin.bias.dtype == torch.float32
    got = model(x.half())
    assert got.dtype == torch.float16
    torch.testing.assert_close(got.float(), want, rtol=2e-2, atol=2e-2)
    out_bf16 = model(x.bfloat16())
    assert out_bf16.dtype == torch.bfloat16


@pytest.mark.parametrize("config", [Int8WeightOnlyConfig(), Int4WeightOnlyConfig(32)])
def test_to_float_and_device_fallback_agree(config):
    qlin = config._quantize_module(nn.Linear(128, 32), "l")
    flin = qlin.to_float()
    x = torch.randn(3, 128)
    torch.testing.assert_close(flin(x), qlin(x), rtol=1e-4, atol=1e-4)
    # The pure-torch dequantization used on non-CPU devices matches the CPU kernel.
    from wattwise.quantization import _ops as qops

    if isinstance(qlin, Int8WeightOnlyLinear):
        deq = qops.int8_dequantize_torch(qlin.qweight, qlin.scales)
    else:
        deq = qops.int4_dequantize_torch(qlin.qweight, qlin.scales, qlin.group_size)
    torch.testing.assert_close(deq, qlin.dequantize(), rtol=0, atol=0)


@pytest.mark.parametrize("config", [Int8WeightOnlyConfig(), Int4WeightOnlyConfig(32)])
def test_torch_compile_fullgraph(config):
    model = quantize_(_stack(), config)
    x = torch.randn(3, 256)
    want = model(x)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x), want, rtol=1e-5, atol=1e-5)


# ---- errors -----------------------------------------------------------------------------


def test_quantize_rejects_bad_arguments():
    with pytest.raises(TypeError, match="model must be a torch.nn.Module.*list"):
        quantize_([nn.Linear(4, 4)], Int8WeightOnlyConfig())
    with pytest.raises(TypeError, match="config must be"):
        quantize_(nn.Linear(4, 4), "int8")
    with pytest.raises(TypeError, match="filter_fn must be callable"):
        quantize_(nn.Linear(4, 4), Int8WeightOnlyConfig(), filter_fn=3)


def test_int4_config_validates_group_size():
    with pytest.raises(ValueError, match="group_size.*48"):
        Int4WeightOnlyConfig(group_size=48)
    with pytest.raises(ValueError, match="group_size.*0"):
        Int4WeightOnlyConfig(group_size=0)
    with pytest.raises(TypeError, match="group_size.*float"):
        Int4WeightOnlyConfig(group_size=32.0)


def test_indivisible_in_features_names_the_layer():
    model = nn.Sequential(nn.Linear(64, 100), nn.ReLU(), nn.Linear(100, 10))
    with pytest.raises(ValueError, match=r"'2'.*in_features \(100\).*group_size \(32\)"):
        quantize_(model, Int4WeightOnlyConfig(32))


def test_non_finite_weights_name_the_layer():
    model = nn.Sequential(nn.Linear(8, 8))
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="'0'.*NaN"):
        quantize_(model, Int8WeightOnlyConfig())


def test_forward_rejects_wrong_shapes_and_dtypes():
    qlin = quantize_(nn.Sequential(nn.Linear(64, 8)), Int8WeightOnlyConfig())[0]
    with pytest.raises(ValueError, match=r"in_features=64.*\(2, 32\)"):
        qlin(torch.randn(2, 32))
    with pytest.raises(TypeError, match="floating point.*torch.int64"):
        qlin(torch.ones(2, 64, dtype=torch.long))
    with pytest.raises(TypeError, match="Tensor"):
        qlin([1.0] * 64)


def test_ops_reject_bad_tensors_with_named_arguments():
    q, s = ops.int8_weight_only_quantize(torch.randn(8, 16))
    with pytest.raises(TypeError, match="input must be Float.*Double"):
        ops.int8_weight_only_linear(torch.randn(2, 16, dtype=torch.float64), q, s, None)
    with pytest.raises(ValueError, match="last dimension must be in_features=16"):
        ops.int8_weight_only_linear(torch.randn(2, 15), q, s, None)
    with pytest.raises(ValueError, match=r"scales must have shape \[8\]"):
        ops.int8_weight_only_linear(torch.randn(2, 16), q, s[:4], None)
    with pytest.raises(ValueError, match=r"bias must have shape \[8\]"):
        ops.int8_weight_only_linear(torch.randn(2, 16), q, s, torch.randn(3))
    with pytest.raises(TypeError, match="qweight must be Char"):
        ops.int8_weight_only_linear(torch.randn(2, 16), q.float(), s, None)
    with pytest.raises(ValueError, match="weight must be 2-D"):
        ops.int8_weight_only_quantize(torch.randn(16))
    with pytest.raises(ValueError, match=r"divisible by group_size \(32\)"):
        ops.int4_weight_only_quantize(torch.randn(4, 48), 32)
    with pytest.raises(ValueError, match="multiple of 32"):
        ops.int4_weight_only_quantize(torch.randn(4, 64), 16)
    p, d = ops.int4_weight_only_quantize(torch.randn(4, 64), 32)
    with pytest.raises(ValueError, match="scales must have shape"):
        ops.int4_weight_only_linear(torch.randn(1, 64), p, d[:, :1], 32, None)
    with pytest.raises(TypeError, match="scales must be Half"):
        ops.int4_weight_only_linear(torch.randn(1, 64), p, d.float(), 32, None)
