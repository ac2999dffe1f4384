"""Static post-training quantization (observers, prepare/calibrate/convert for Linear and
Conv2d), the accuracy report and the float-fallback budget."""

import pytest
import torch
import torch.ao.quantization as tq
import torch.nn.functional as F
from torch import nn

from wattwise.quantization import (
    Int8DynamicActivationInt8WeightConfig,
    Int8StaticConfig,
    Int8StaticConv2d,
    Int8StaticLinear,
    MinMaxObserver,
    MovingAverageMinMaxObserver,
    MSEObserver,
    PercentileObserver,
    PerChannelMinMaxObserver,
    calibrate,
    convert,
    prepare,
    quantization_summary,
    quantize_,
    quantize_with_budget_,
    report,
    sqnr_db,
)

from .helpers import roundtrip_state_dict

# ---- observers: torch.ao's names, arguments and calculate_qparams() -----------------


@pytest.mark.parametrize(
    ("ours", "theirs", "kwargs"),
    [
        (MinMaxObserver, tq.MinMaxObserver, {}),
        (
            MinMaxObserver,
            tq.MinMaxObserver,
            {"dtype": torch.qint8, "qscheme": torch.per_tensor_symmetric},
        ),
        (MovingAverageMinMaxObserver, tq.MovingAverageMinMaxObserver, {}),
        (
            MovingAverageMinMaxObserver,
            tq.MovingAverageMinMaxObserver,
            {"averaging_constant": 0.5, "dtype": torch.qint8},
        ),
        (PerChannelMinMaxObserver, tq.PerChannelMinMaxObserver, {"ch_axis": 1}),
        (
            PerChannelMinMaxObserver,
            tq.PerChannelMinMaxObserver,
            {"dtype": torch.qint8, "qscheme": torch.per_channel_symmetric},
        ),
    ],
)
def test_observers_match_torch_ao(ours, theirs, kwargs):
    a, b = ours(**kwargs), theirs(**kwargs)
    for i in range(4):
        x = torch.randn(6, 5) * (i + 1) + i
        assert a(x) is x
        b(x)
    sa, za = a.calculate_qparams()
    sb, zb = b.calculate_qparams()
    torch.testing.assert_close(sa, sb.float(), rtol=1e-6, atol=0)
    torch.testing.assert_close(za.long(), zb.long(), rtol=0, atol=0)


def test_percentile_and_mse_observers_clip_outliers():
    x = torch.randn(10000)
    x[0] = 1000.0
    mm, pc = MinMaxObserver(), PercentileObserver(99.9)
    for o in (mm, pc):
        o(x)
    s_mm, _ = mm.calculate_qparams()
    s_pc, z_pc = pc.calculate_qparams()
    assert s_pc < s_mm / 50 and 0 <= int(z_pc) <= 255
    # Heavy tails: MSE trades clipping the tail against rounding the bulk.
    x = torch.randn(10000) ** 3
    mm, mse = MinMaxObserver(), MSEObserver()
    for o in (mm, mse):
        o(x)
    s_mm, _ = mm.calculate_qparams()
    s_mse, z_mse = mse.calculate_qparams()
    assert s_mse < s_mm and 0 <= int(z_mse) <= 255

    def fq_mse(scale, zp):
        q = torch.clamp(torch.round(x / scale) + zp, 0, 255)
        return ((q - zp) * scale - x).pow(2).mean()

    assert fq_mse(s_mse, z_mse) <= fq_mse(*mm.calculate_qparams())


def test_observer_errors_name_the_field():
    with pytest.raises(ValueError, match="dtype must be torch.quint8 or torch.qint8"):
        MinMaxObserver(dtype=torch.float32)
    with pytest.raises(ValueError, match="qscheme must be per-tensor"):
        MinMaxObserver(qscheme=torch.per_channel_affine)
    with pytest.raises(ValueError, match="quant_min/quant_max.*quant_min=10, quant_max=5"):
        MinMaxObserver(quant_min=10, quant_max=5)
    with pytest.raises(ValueError, match="averaging_constant"):
        MovingAverageMinMaxObserver(averaging_constant=2.0)
    with pytest.raises(ValueError, match="percentile"):
        PercentileObserver(percentile=20)
    with pytest.raises(ValueError, match="no data observed"):
        MinMaxObserver().calculate_qparams()


# ---- prepare / calibrate / convert --------------------------------------------------


class SmallCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 16, 3, stride=2, dilation=1, padding=(1, 2))
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.fc = nn.Linear(16 * 8 * 9, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.relu(self.dw(x))
        return self.fc(x.flatten(1))


def _calibrated(config=None, batches=4):
    torch.manual_seed(0)
    model = SmallCNN().eval()
    data = [torch.randn(4, 3, 16, 16) for _ in range(batches)]
    float_model = SmallCNN().eval()
    float_model.load_state_dict(model.state_dict())
    prepare(model, config or Int8StaticConfig())
    calibrate(model, data, progress=False)
    return float_model, convert(model), data


@pytest.mark.parametrize(
    "act",
    [
        MinMaxObserver,
        MinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric),
        MovingAverageMinMaxObserver,
        PercentileObserver.with_args(percentile=99.99),
        MSEObserver,
    ],
    ids=["minmax", "minmax-sym", "moving", "percentile", "mse"],
)
def test_static_ptq_end_to_end(act):
    float_model, model, data = _calibrated(Int8StaticConfig(activation_observer=act))
    assert isinstance(model.conv1, Int8StaticConv2d) and isinstance(model.conv2, Int8StaticConv2d)
    assert isinstance(model.fc, Int8StaticLinear)
    assert type(model.dw) is nn.Conv2d  # groups=16: left alone and listed
    s = quantization_summary(model)
    assert set(s.quantized) == {"conv1", "conv2", "fc"}
    assert "groups=16" in s.skipped["dw"]
    assert not any("observer" in k for k in model.state_dict())
    with torch.no_grad():
        x = data[0]
        assert sqnr_db(float_model(x), model(x)) > 25


def test_static_layers_match_fake_quant_reference():
    _, model, _ = _calibrated()
    for name in ("conv1", "conv2", "fc"):
        q = getattr(model, name)
        scale, zp, lo, hi = q._qparams
        x = torch.randn(2, 3, 16, 16) if name == "conv1" else None
        if name == "conv2":
            x = torch.rand(2, 16, 16, 16) * 3
        if name == "fc":
            x = torch.rand(3, 16 * 8 * 9) * 2
        fq = (torch.clamp(torch.round(x / scale) + zp, lo, hi) - zp) * scale
        ref = q.to_float()(fq)
        torch.testing.assert_close(q(x), ref, rtol=1e-4, atol=1e-4)
    # Unbatched conv input works as in nn.Conv2d.
    x = torch.randn(3, 16, 16)
    torch.testing.assert_close(model.conv1(x), model.conv1(x[None])[0])


def test_calibrate_shows_progress_and_limits_batches(capsys):
    model = prepare(nn.Sequential(nn.Linear(8, 4)), Int8StaticConfig())
    seen = []
    model[0].register_forward_pre_hook(lambda m, a: seen.append(a[0].shape[0]))
    calibrate(model, [(torch.randn(2, 8),)] * 5, num_batches=3)
    assert seen == [2, 2, 2]
    assert "calibrating" in capsys.readouterr().err


def test_convert_without_calibration_names_the_layer():
    model = prepare(nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2)), Int8StaticConfig())
    model[0].input_observer(torch.randn(3, 8))
    with pytest.raises(ValueError, match="layer '2' saw no calibration data"):
        convert(model)
    with pytest.raises(ValueError, match="no prepared layers"):
        convert(nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(ValueError, match="already prepared"):
        prepare(model, Int8StaticConfig())


def test_static_config_validation_names_the_field():
    with pytest.raises(ValueError, match="activation_observer must be per-tensor"):
        Int8StaticConfig(activation_observer=PerChannelMinMaxObserver)
    with pytest.raises(ValueError, match="weight_observer must be per-channel symmetric"):
        Int8StaticConfig(weight_observer=MinMaxObserver)
    with pytest.raises(ValueError, match="weight_observer must be.*quant_min=-128"):
        Int8StaticConfig(
            weight_observer=PerChannelMinMaxObserver.with_args(
                dtype=torch.qint8, qscheme=torch.per_channel_symmetric
            )
        )
    with pytest.raises(ValueError, match="activation_observer must be an observer"):
        Int8StaticConfig(activation_observer=3)
    with pytest.raises(ValueError, match="needs calibration"):
        quantize_(nn.Sequential(nn.Linear(4, 4)), Int8StaticConfig())
    with pytest.raises(TypeError, match="config must be Int8StaticConfig"):
        prepare(nn.Linear(2, 2), Int8DynamicActivationInt8WeightConfig())


@pytest.mark.parametrize("fmt", ["torch", "safetensors"])
def test_static_save_load_on_meta_model(fmt, tmp_path):
    _, model, data = _calibrated()
    want = model(data[1])
    sd = roundtrip_state_dict(model, fmt, tmp_path)
    with torch.device("meta"):
        fresh = SmallCNN()
    quantize_(fresh, Int8StaticConfig(), filter_fn=lambda m, fqn: fqn in ("conv1", "conv2", "fc"))
    fresh.load_state_dict(sd, assign=True)
    torch.testing.assert_close(fresh(data[1]), want, rtol=0, atol=0)


def test_static_compile_export_and_to_float():
    _, model, data = _calibrated()
    x = data[2]
    want = model(x)
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x), want, rtol=0, atol=0)
    ep = torch.export.export(model, (x,))
    torch.testing.assert_close(ep.module()(x), want, rtol=0, atol=0)
    assert type(model.conv1.to_float()) is nn.Conv2d and type(model.fc.to_float()) is nn.Linear


# ---- report and budget --------------------------------------------------------------


def _mlp():
    torch.manual_seed(1)
    m = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU())
    m.append(nn.Linear(128, 8))
    with torch.no_grad():  # one layer with an outlier column: the most sensitive one
        m[2].weight[:, 0] *= 200
    return m


def test_report_per_layer_sqnr_size_and_bits():
    float_model = _mlp()
    qmodel = quantize_(_mlp(), Int8DynamicActivationInt8WeightConfig())
    samples = [torch.randn(4, 64) for _ in range(3)]
    rep = report(float_model, qmodel, samples)
    assert [r.name for r in rep.layers] == ["0", "2", "4"]
    r0 = rep.layers[0]
    assert r0.bits == 8 and r0.float_bytes == (64 * 128 + 128) * 4
    assert r0.quantized_bytes == 64 * 128 + 128 * 4 * 2
    assert 30 < r0.sqnr_db < 60 and 0 < r0.rel_error < 0.03
    assert rep.layers[1].sqnr_db < r0.sqnr_db  # the outlier layer is the sensitive one
    assert rep.quantized_bytes < rep.float_bytes / 3
    assert "model: SQNR" in str(rep) and rep.to_rows()[0]["name"] == "0"
    with pytest.raises(ValueError, match="sample_inputs is empty"):
        report(float_model, qmodel, [])
    with pytest.raises(ValueError, match="no counterpart"):
        report(nn.Sequential(), qmodel, samples)


def test_budget_keeps_most_sensitive_layers_in_float():
    samples = [torch.randn(8, 64) for _ in range(2)]
    full = quantize_(_mlp(), Int8DynamicActivationInt8WeightConfig())
    base = sqnr_db(_mlp()(samples[0]), full(samples[0]))
    model = quantize_with_budget_(
        _mlp(), Int8DynamicActivationInt8WeightConfig(), samples, min_sqnr_db=base + 6
    )
    s = quantization_summary(model)
    assert "kept in float" in s.skipped["2"] and type(model[2]) is nn.Linear
    assert sqnr_db(_mlp()(samples[0]), model(samples[0])) >= base + 6
    torch.testing.assert_close(model[2].weight, _mlp()[2].weight)  # the original weights

    calls = []

    def metric(m):  # improves by one per call: met after two layers go back to float
        calls.append(1)
        return len(calls)

    model = quantize_with_budget_(
        _mlp(), Int8DynamicActivationInt8WeightConfig(), samples, metric_fn=metric, min_metric=3
    )
    assert len(calls) == 3 and len(quantization_summary(model).quantized) == 1
    with pytest.raises(ValueError, match="min_sqnr_db and/or min_metric"):
        quantize_with_budget_(_mlp(), Int8DynamicActivationInt8WeightConfig(), samples)
    with pytest.raises(ValueError, match="min_sqnr_db must be a number"):
        quantize_with_budget_(
            _mlp(), Int8DynamicActivationInt8WeightConfig(), samples, min_sqnr_db="x"
        )
