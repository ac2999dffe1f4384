"""SparseLinear / NMSparseLinear against dense, the ops under opcheck, sparsify_ decisions, and
save/load of pruned, sparse and shrunk models through state_dict + metadata."""

import pytest
import torch
from torch import nn

import wattwise
import wattwise.prune as wp
from wattwise.prune import _ops


def pruned_linear(k=40, n=24, sparsity=0.8, bias=True):
    lin = nn.Linear(k, n, bias=bias)
    wp.magnitude_(nn.Sequential(lin), sparsity, reparametrize=False)
    return lin


@pytest.mark.parametrize("simd", ["auto", "scalar"])
@pytest.mark.parametrize("shape", [(1, 40), (3, 40), (2, 5, 40), (33, 40), (0, 40)])
@pytest.mark.parametrize("bias", [True, False])
def test_sparse_linear_matches_dense(simd, shape, bias):
    wattwise.set_simd(simd)
    try:
        lin = pruned_linear(bias=bias)
        sp = wp.SparseLinear.from_dense(lin)
        x = torch.randn(shape)
        torch.testing.assert_close(sp(x), lin(x), rtol=1e-5, atol=1e-5)
        nm_lin = nn.Linear(40, 24, bias=bias)
        wp.magnitude_(nn.Sequential(nm_lin), pattern="2:4", reparametrize=False)
        nm = wp.NMSparseLinear.from_dense(nm_lin, 2, 4)
        torch.testing.assert_close(nm(x), nm_lin(x), rtol=1e-5, atol=1e-5)
    finally:
        wattwise.set_simd("auto")


def test_large_column_indices_round_trip():
    lin = nn.Linear(40000, 3)
    with torch.no_grad():
        lin.weight.zero_()
        lin.weight[:, 39999] = 1.0
        lin.weight[:, 32768] = 2.0
    sp = wp.SparseLinear.from_dense(lin)
    torch.testing.assert_close(sp.to_dense(), lin.weight.detach())
    x = torch.randn(2, 40000)
    torch.testing.assert_close(sp(x), lin(x))


def test_ops_opcheck_and_gradients():
    lin = pruned_linear()
    sp = wp.SparseLinear.from_dense(lin)
    x = torch.randn(4, 40, requires_grad=True)
    torch.library.opcheck(
        torch.ops.wattwise.sparse_csr_linear.default,
        (x, sp.row_ptr, sp.col, sp.values, 40, sp.bias),
    )
    nm_lin = nn.Linear(40, 24)
    wp.magnitude_(nn.Sequential(nm_lin), pattern="4:8", reparametrize=False)
    nm = wp.NMSparseLinear.from_dense(nm_lin, 4, 8)
    torch.library.opcheck(
        torch.ops.wattwise.sparse_nm_linear.default, (x, nm.values, nm.idx, 4, 8, nm.bias)
    )
    sp(x).sum().backward()
    g1 = x.grad.clone()
    x.grad = None
    lin(x).sum().backward()
    torch.testing.assert_close(g1, x.grad)


def test_sparse_ops_reject_bad_input():
    sp = wp.SparseLinear.from_dense(pruned_linear())
    with pytest.raises(ValueError, match="in_features=40"):
        sp(torch.randn(2, 41))
    with pytest.raises(TypeError, match="floating point"):
        sp(torch.ones(2, 40, dtype=torch.int64))
    # Malformed structures passed straight to the ops: indices are clamped, never read out of
    # bounds; row pointers are checked.
    bad_col = sp.col.clone()
    bad_col[0] = -1  # 65535 as uint16
    y = torch.ops.wattwise.sparse_csr_linear(
        torch.randn(3, 40), sp.row_ptr, bad_col, sp.values, 40, None
    )
    assert torch.isfinite(y).all()
    bad_rp = sp.row_ptr.clone()
    bad_rp[1] = bad_rp[-1] + 1
    with pytest.raises(ValueError, match="row_ptr"):
        torch.ops.wattwise.sparse_csr_linear(
            torch.randn(1, 40), bad_rp, sp.col, sp.values, 40, None
        )
    y = torch.ops.wattwise.sparse_nm_linear(
        torch.randn(1, 8), torch.ones(1, 4), torch.full((1, 4), 200, dtype=torch.uint8), 2, 4, None
    )
    assert torch.isfinite(y).all()
    sd = sp.state_dict()
    sd["col"] = bad_col
    with pytest.raises(ValueError, match="column index"):
        wp.SparseLinear(40, 24, 0).load_state_dict(sd)
    with pytest.raises(ValueError, match="not 2:4"):
        wp.NMSparseLinear.from_dense(nn.Linear(8, 2), 2, 4)


def test_sparsify_decides_by_model_and_measure():
    model = nn.Sequential(pruned_linear(64, 64, 0.95), nn.ReLU(), nn.Linear(64, 4))
    x = torch.randn(2, 64)
    ref = model(x)
    dec = wp.sparsify_(model, measure=False)
    assert dec["0"]["replaced"] and isinstance(model[0], wp.SparseLinear)
    assert not dec["2"]["replaced"] and type(model[2]) is nn.Linear  # dense: no gain
    torch.testing.assert_close(model(x), ref)
    dec = wp.sparsify_(nn.Sequential(pruned_linear(64, 64, 0.5)), min_speedup=1e6)
    assert dec["0"]["speedup"] > 0 and not dec["0"]["replaced"]
    with pytest.raises(ValueError, match="min_speedup"):
        wp.sparsify_(model, min_speedup=0)


def test_nm_to_dense_and_csr_to_dense_helpers():
    lin = nn.Linear(16, 4)
    wp.magnitude_(nn.Sequential(lin), pattern="2:4", reparametrize=False)
    nm = wp.NMSparseLinear.from_dense(lin, 2, 4)
    torch.testing.assert_close(_ops.nm_to_dense(nm.values, nm.idx, 2, 4), lin.weight.detach())


def _roundtrip(model, fresh, tmp_path, x):
    path = tmp_path / "m.pt"
    wp.save(model, path)
    blob = torch.load(path, weights_only=True)
    wp.load_(fresh, blob["state_dict"], blob["metadata"])
    torch.testing.assert_close(fresh(x), model(x))
    return fresh


def make():
    return nn.Sequential(nn.Linear(32, 48), nn.ReLU(), nn.Linear(48, 16))


def test_save_load_pruned_sparse_and_shrunk(tmp_path):
    x = torch.randn(3, 32)
    m = make()
    wp.magnitude_(m, 0.8)
    fresh = _roundtrip(m, make(), tmp_path, x)
    assert wp.is_pruned(fresh[0]) and fresh[0].weight_mask.dtype == torch.bool
    wp.sparsify_(m, min_speedup=1e-9)
    fresh = _roundtrip(m, make(), tmp_path, x)
    assert isinstance(fresh[0], wp.SparseLinear)
    m = make()
    wp.magnitude_(m, 0.5, pattern="channel", filter_fn=lambda mod, f: f == "0")
    wp.shrink_(m, x)
    assert m[0].out_features < 48
    fresh = _roundtrip(m, make(), tmp_path, x)
    assert fresh[2].in_features == m[2].in_features
    with pytest.raises(ValueError, match="'9'"):
        wp.load_(make(), m.state_dict(), {"version": 1, "shapes": {"9": {}}})


def test_stock_pruned_model_goes_through_report_sparsify_and_save(tmp_path):
    from torch.nn.utils import prune as tp

    m = make()
    tp.global_unstructured([(m[0], "weight"), (m[2], "weight")], tp.L1Unstructured, amount=0.9)
    x = torch.randn(2, 32)
    ref = m(x)
    rep = wp.report(m)
    assert rep.layers[0]["nonzero"] < 0.2 * rep.layers[0]["params"]
    fresh = _roundtrip(m, make(), tmp_path, x)
    assert fresh[0].weight_mask.dtype == torch.float32  # torch's float masks survive
    wp.sparsify_(m, min_speedup=1e-9)
    assert isinstance(m[0], wp.SparseLinear)
    torch.testing.assert_close(m(x), ref)


def test_magnitude_rejects_non_float_weights_naming_the_layer():
    class IntLayer(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("weight", torch.ones(4, 4, dtype=torch.int32))

    model = nn.Sequential(IntLayer())
    with pytest.raises(TypeError, match="'0'.*int32"):
        wp.magnitude_(model, 0.5, filter_fn=lambda mod, fqn: fqn == "0")
    with pytest.raises(ValueError, match=r"layer .0. \(Linear\).*1536\], got 1000000000"):
        wp.magnitude_(make(), 10**9, scope="layer")


def test_sparse_layers_compile_without_graph_breaks():
    model = nn.Sequential(pruned_linear(40, 40, 0.9), nn.ReLU(), nn.Linear(40, 8))
    wp.magnitude_(nn.Sequential(model[2]), pattern="2:4", reparametrize=False)
    wp.sparsify_(model, min_speedup=1e-9)
    assert isinstance(model[0], wp.SparseLinear) and isinstance(model[2], wp.NMSparseLinear)
    x = torch.randn(3, 40)
    compiled = torch.compile(model, fullgraph=True)
    torch.testing.assert_close(compiled(x), model(x))
