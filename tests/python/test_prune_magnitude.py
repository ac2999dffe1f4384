"""magnitude_ patterns and scopes, the C++ global selection, gradual schedules, freeze_,
sensitivity and report."""

import pytest
import torch
from torch import nn
from torch.nn.utils import prune as tp

import wattwise.prune as wp
from wattwise.prune import _ops


def mlp():
    return nn.Sequential(
        nn.Linear(32, 64), nn.ReLU(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 8)
    )


def test_keep_masks_prune_exactly_the_k_smallest_across_tensors():
    ts = [torch.randn(100, 7), torch.randn(0), torch.randn(333), torch.zeros(10)]
    flat = torch.cat([t.flatten() for t in ts]).abs()
    for k in (0, 1, 10, 11, 500, flat.numel()):
        keeps = _ops.keep_masks(ts, k)
        pruned = torch.cat([(~m).flatten() for m in keeps])
        assert int(pruned.sum()) == k
        if 0 < k < flat.numel():
            assert flat[pruned].max() <= flat[~pruned].min()


def test_kth_magnitude_opcheck():
    torch.library.opcheck(
        torch.ops.wattwise.prune_kth_magnitude.default,
        ([torch.randn(5, 3), torch.randn(4)], 6),
        test_utils=("test_schema",),
    )
    torch.library.opcheck(
        torch.ops.wattwise.prune_magnitude_mask.default,
        (torch.randn(4, 5), 1065353216, 0),  # threshold 1.0
        test_utils=("test_schema",),
    )
    keep, ties, pruned = torch.ops.wattwise.prune_magnitude_mask(
        torch.tensor([0.5, -2.0, 1.0]), 1065353216, 1
    )
    assert keep.tolist() == [False, True, False] and ties == 0 and pruned == 2
    torch.library.opcheck(
        torch.ops.wattwise.prune_magnitude_zero_.default,
        (torch.randn(20), 0, 0),
        test_utils=("test_schema",),
    )


def test_kth_magnitude_rejects_bad_k_and_dtype():
    with pytest.raises(ValueError, match="k must be in"):
        torch.ops.wattwise.prune_kth_magnitude([torch.randn(3)], 4)
    with pytest.raises(TypeError, match="Double"):
        torch.ops.wattwise.prune_kth_magnitude([torch.randn(3, dtype=torch.double)], 1)


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_unstructured_reaches_amount_and_matches_torch_global(scope):
    m = mlp()
    ref = mlp()
    ref.load_state_dict(m.state_dict())
    out = wp.magnitude_(m, 0.7, scope=scope)
    layers = [m[0], m[2], m[4]]
    total = sum(layer.weight.numel() for layer in layers)
    zeros = sum(int((layer.weight == 0).sum()) for layer in layers)
    assert zeros == round(0.7 * total) if scope == "global" else abs(zeros / total - 0.7) < 0.01
    assert set(out) == {"0", "2", "4"}
    if scope == "global":  # random weights have no ties: the same entries as torch's topk
        params = [(ref[i], "weight") for i in (0, 2, 4)]
        tp.global_unstructured(params, tp.L1Unstructured, amount=0.7)
        for i in (0, 2, 4):
            assert torch.equal(m[i].weight_mask, ref[i].weight_mask.bool())


def test_in_place_unstructured_without_masks():
    m = mlp()
    wp.magnitude_(m, 0.5, reparametrize=False)
    assert not wp.is_pruned(m[0])
    total = sum(m[i].weight.numel() for i in (0, 2, 4))
    assert sum(int((m[i].weight == 0).sum()) for i in (0, 2, 4)) == round(0.5 * total)


def test_nm_pattern():
    m = mlp()
    wp.magnitude_(m, pattern="2:4")
    w = m[2].weight.reshape(48, -1, 4)
    assert torch.all((w != 0).sum(-1) <= 2)
    with pytest.raises(ValueError, match="conflicts"):
        wp.magnitude_(mlp(), 0.9, pattern="2:4")
    bad = nn.Sequential(nn.Linear(6, 2))
    with pytest.raises(ValueError, match="'0'.*not a multiple of M=4"):
        wp.magnitude_(bad, pattern="2:4")


def test_block_pattern_zeroes_whole_blocks():
    m = mlp()
    wp.magnitude_(m, 0.5, pattern="block", block_shape=(4, 4))
    blocks = m[2].weight.reshape(12, 4, 16, 4).abs().sum((1, 3))
    assert int((blocks == 0).sum()) > 0
    nz = m[2].weight.reshape(12, 4, 16, 4).ne(0).sum((1, 3))
    assert torch.all((nz == 0) | (nz == 16))
    with pytest.raises(ValueError, match="block_shape"):
        wp.magnitude_(mlp(), 0.5, pattern="block", block_shape=(0, 4))


def test_channel_pattern_zeroes_rows_and_bias():
    m = mlp()
    wp.magnitude_(m, 0.25, pattern="channel", scope="layer")
    rows = m[0].weight.abs().sum(1) == 0
    assert int(rows.sum()) == 16
    assert torch.all(m[0].bias[rows] == 0)


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        (dict(amount=1.2), ValueError, ["1.2"]),
        (dict(amount=0.5, pattern="diagonal"), ValueError, ["'diagonal'"]),
        (dict(amount=0.5, scope="model"), ValueError, ["'model'"]),
        (dict(amount=None), ValueError, ["amount"]),
        (dict(amount=0.5, name="kernel"), ValueError, ["'0'", "'kernel'"]),
        (dict(amount=0.5, filter_fn=3), TypeError, ["filter_fn"]),
    ],
)
def test_magnitude_bad_input(kwargs, exc, words):
    with pytest.raises(exc) as info:
        wp.magnitude_(mlp(), **kwargs)
    for w in words:
        assert w in str(info.value)


def test_stock_pruned_model_is_accepted_and_masks_only_grow():
    m = mlp()
    tp.l1_unstructured(m[0], "weight", 0.3)
    before = m[0].weight_mask.clone()
    wp.magnitude_(m, 0.6)
    assert torch.all(m[0].weight_mask[before == 0] == 0)
    assert m[0].weight_mask.dtype == before.dtype


def test_schedules_follow_tfmot():
    s = wp.PolynomialDecay(0.0, 0.8, begin_step=10, end_step=110, power=3, frequency=10)
    assert s(0) == (False, 0.0)
    assert s(10) == (True, 0.0)
    assert s(15)[0] is False
    due, sp = s(60)
    assert due and sp == pytest.approx(0.8 - 0.8 * 0.5**3)
    assert s(110) == (True, pytest.approx(0.8))
    assert s(120)[0] is False
    c = wp.ConstantSparsity(0.5, begin_step=0, frequency=5)
    assert c(1000) == (True, 0.5)
    with pytest.raises(ValueError, match="end_step"):
        wp.PolynomialDecay(0.0, 0.5, begin_step=10, end_step=5)
    with pytest.raises(ValueError, match="final_sparsity"):
        wp.PolynomialDecay(0.0, 1.5, begin_step=0, end_step=5)


def test_gradual_pruning_keeps_pruned_weights_zero_through_training():
    torch.manual_seed(0)
    m = mlp()
    sched = wp.PolynomialDecay(0.0, 0.75, begin_step=0, end_step=20, frequency=5)
    pruner = wp.GradualPruner(m, sched)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2, weight_decay=1e-3)
    x, y = torch.randn(64, 32), torch.randn(64, 8)
    for _ in range(30):
        opt.zero_grad()
        nn.functional.mse_loss(m(x), y).backward()
        opt.step()
        pruner.step()
        m(x)  # the forward pre-hook recomputes weight = orig * mask
        for i in (0, 2, 4):
            assert torch.all(m[i].weight[m[i].weight_mask == 0] == 0)
    total = sum(m[i].weight.numel() for i in (0, 2, 4))
    zeros = sum(int((m[i].weight == 0).sum()) for i in (0, 2, 4))
    assert zeros / total == pytest.approx(0.75, abs=0.01)
    assert pruner.state_dict()["step_count"] == 30


def test_freeze():
    m = mlp()
    wp.magnitude_(m, 0.5)
    kept = wp.freeze_(m, ["4"])
    assert set(kept) == {"4.bias", "4.weight_orig"}
    assert all(p.requires_grad == n.startswith("4.") for n, p in m.named_parameters())
    with pytest.raises(ValueError, match="'head'"):
        wp.freeze_(m, ["head"])


def test_sensitivity_and_recommendation():
    torch.manual_seed(0)
    m = mlp()
    x = torch.randn(32, 32)
    ref = m(x).detach()
    before = {k: v.clone() for k, v in m.state_dict().items()}

    def evaluate(model):
        return -float((model(x) - ref).pow(2).mean())

    res = wp.sensitivity(m, evaluate, amounts=[0.5, 0.9], progress=False)
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k])  # the model is restored
    assert set(res.scores) == {"0", "2", "4"}
    assert res.scores["0"][0.9] <= res.scores["0"][0.5] <= res.baseline + 1e-12
    rec = res.recommend(0.6)
    total = sum(res.params.values())
    assert sum(rec[f] * res.params[f] for f in rec) >= 0.6 * total - 1e-6
    with pytest.raises(ValueError, match="0.95"):
        res.recommend(0.95)
    with pytest.raises(TypeError, match="evaluate"):
        wp.sensitivity(m, "acc")


def test_report():
    m = mlp()
    wp.magnitude_(m, 0.5, scope="layer")
    rep = wp.report(m, torch.randn(3, 32))
    row = rep.layers[0]
    assert row["layer"] == "0" and row["params"] == 32 * 64 + 64
    assert row["nonzero"] == 32 * 64 // 2 + 64
    assert row["flops"] == 2 * (32 * 64 // 2) * 3
    assert "TOTAL" in str(rep)
    assert rep.total["sparsity"] == pytest.approx(
        sum(r["params"] - r["nonzero"] for r in rep.layers) / sum(r["params"] for r in rep.layers)
    )
