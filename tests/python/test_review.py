"""wattwise.compare and the Comparison report: measurements, ratios, documents, CLI."""

import copy
import json

import pytest
import torch
from torch import nn

import wattwise
from wattwise.cli import main as cli_main
from wattwise.quantization import Int8WeightOnlyConfig
from wattwise.review import Comparison, compare, pareto_front


def accuracy(out, target):
    return (out.argmax(1) == target).float().mean().item()


@pytest.fixture(scope="module")
def variants():
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)).eval()
    int8 = wattwise.quantize_(copy.deepcopy(base), Int8WeightOnlyConfig())
    return {"fp32": base, "int8": int8}


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(1)
    return torch.randn(100, 64, generator=g), torch.randint(0, 10, (100,), generator=g)


@pytest.fixture(scope="module")
def result(variants, data):
    return compare(
        variants,
        data,
        metric=accuracy,
        batch_sizes=(1, 8),
        repeats=5,
        energy=False,
        min_time_s=0,
        progress=False,
    )


def test_measures_every_variant_and_batch(result, variants, data):
    assert result.variants == ["fp32", "int8"]
    assert result.batch_sizes == [1, 8]
    rows = result.rows()
    assert len(rows) == 4
    base_static = result.static["fp32"]
    assert base_static["params"] == 64 * 128 + 128 + 128 * 10 + 10
    # MACs are those of the two Linear layers, per inference, at every batch size.
    assert all(r["macs_per_inference"] == 64 * 128 + 128 * 10 for r in rows)
    for r in rows:
        assert r["p95_ms"] >= r["p50_ms"] > 0
        assert r["calls"] >= 5
    want = accuracy(variants["fp32"](data[0]), data[1])
    assert base_static["metric"] == pytest.approx(want)
    int8_row = next(r for r in rows if r["variant"] == "int8" and r["batch"] == 8)
    assert int8_row["size_ratio"] < 0.5
    assert {L["bits"] for L in result.static["int8"]["layers"]} == {8}
    assert {L["bits"] for L in result.static["fp32"]["layers"]} == {32}


def test_models_are_left_in_their_mode(variants, data):
    variants["fp32"].train()
    compare(
        variants, data[0], batch_sizes=(2,), repeats=1, energy=False, min_time_s=0, progress=False
    )
    assert variants["fp32"].training
    variants["fp32"].eval()


def test_documents_roundtrip(result, tmp_path):
    md = result.save(tmp_path / "review.md").read_text()
    assert "| fp32 | 1 |" in md and "speed-up" in md
    html = result.save(tmp_path / "review.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "data:image/png;base64," in html
    assert "Latency by batch size" in html
    result.save(tmp_path / "review.json")
    again = Comparison.load(tmp_path / "review.json")
    assert again.rows() == result.rows()
    assert "fp32" in result.table() and "int8" in str(result)
    df = result.to_pandas()
    assert list(df["variant"]) == ["fp32", "fp32", "int8", "int8"]


def test_pareto_front():
    pts = [("a", 1.0, 0.9), ("b", 2.0, 0.95), ("c", 2.0, 0.8), ("d", 0.5, 0.5)]
    assert pareto_front(pts) == ["a", "b", "d"]


def test_bad_arguments_are_named(variants, data):
    with pytest.raises(TypeError, match="variants must be a non-empty dict"):
        compare([], data)
    with pytest.raises(TypeError, match="variant 'x' must be an nn.Module"):
        compare({"x": 3}, data)
    with pytest.raises(ValueError, match="batch_sizes must hold positive ints, got 0"):
        compare(variants, data, batch_sizes=(0,))
    with pytest.raises(ValueError, match="repeats must be an int >= 1, got 0"):
        compare(variants, data, repeats=0)
    with pytest.raises(ValueError, match="baseline 'zzz'"):
        compare(variants, data, baseline="zzz")
    with pytest.raises(ValueError, match="a metric needs targets"):
        compare(variants, data[0], metric=accuracy)
    with pytest.raises(TypeError, match="data must be"):
        compare(variants, "data.csv")
    with pytest.raises(ValueError, match="must end in .html, .md or .json"):
        Comparison(baseline="a", static={}, records=[]).save("x.pdf")
    with pytest.raises(ValueError, match="not a wattwise comparison"):
        Comparison.from_dict({"format": "other"})


def test_cli_compare_and_report(tmp_path, capsys, data):
    torch.save({"inputs": data[0], "targets": data[1]}, tmp_path / "data.pt")
    out_json = tmp_path / "r.json"
    rc = cli_main(
        [
            "compare",
            "tests.python.review_models:small_mlp",
            "--data",
            str(tmp_path / "data.pt"),
            "--metric",
            "accuracy",
            "--variants",
            "fp32,int8",
            "--batch-sizes",
            "1",
            "4",
            "--repeats",
            "2",
            "--warmup",
            "0",
            "--no-energy",
            "--out",
            str(out_json),
        ]
    )
    assert rc == 0
    saved = json.loads(out_json.read_text())
    assert saved["baseline"] == "fp32" and len(saved["records"]) == 4
    rc = cli_main(["report", str(out_json), "--out", str(tmp_path / "r.html")])
    assert rc == 0 and (tmp_path / "r.html").exists()
    rc = cli_main(
        [
            "compare",
            "tests.python.review_models:small_mlp",
            "--input-shape",
            "64",
            "--variants",
            "fp32,bogus",
        ]
    )
    assert rc == 2
    assert "unknown ['bogus']" in capsys.readouterr().err


def test_energy_per_inference_is_measured_and_labelled(variants, data):
    result = compare(
        variants,
        data,
        metric=accuracy,
        batch_sizes=(4,),
        repeats=3,
        min_time_s=0.2,
        interval_s=0.01,
        progress=False,
    )
    for row in result.rows():
        assert row["energy_j_per_inference"] > 0
        assert row["g_co2e_per_million"] > 0
        assert set(row["energy_method"].split("+")) <= {"rapl", "perf", "nvml", "estimate"}
    assert result.meta["carbon_intensity_g_per_kwh"] > 0
    assert all(tl["t_s"] for tl in result.timelines.values())
    assert "Power timeline" in result.to_html()
    assert "Energy per inference from" in result.to_markdown()
