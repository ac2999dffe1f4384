"""torch.nn.utils.prune compatibility: identical masks, interchangeable reparametrizations,
and argument errors that name the layer and the value."""

import pytest
import torch
from torch import nn
from torch.nn.utils import prune as tp

import wattwise.prune as wp


def _pair(factory):
    a = factory()
    b = factory()
    b.load_state_dict(a.state_dict())
    return a, b


@pytest.mark.parametrize("amount", [0.0, 0.3, 0.5, 7, 1.0])
def test_l1_unstructured_masks_match_torch(amount):
    a, b = _pair(lambda: nn.Linear(17, 9))
    wp.l1_unstructured(a, "weight", amount)
    tp.l1_unstructured(b, "weight", amount)
    assert torch.equal(a.weight_mask, b.weight_mask)
    assert torch.equal(a.weight, b.weight)
    assert set(dict(a.named_parameters())) == {"weight_orig", "bias"}


def test_iterative_and_structured_masks_match_torch():
    a, b = _pair(lambda: nn.Conv2d(4, 8, 3))
    for mod, lib in ((a, wp), (b, tp)):
        lib.l1_unstructured(mod, "weight", 0.2)
        lib.ln_structured(mod, "weight", 0.5, n=2, dim=0)
        lib.l1_unstructured(mod, "bias", 3)
    assert torch.equal(a.weight_mask, b.weight_mask)
    assert torch.equal(a.bias_mask, b.bias_mask)


def test_random_unstructured_matches_torch_with_same_seed():
    a, b = _pair(lambda: nn.Linear(30, 5))
    torch.manual_seed(3)
    wp.random_unstructured(a, "weight", 0.4)
    torch.manual_seed(3)
    tp.random_unstructured(b, "weight", 0.4)
    assert torch.equal(a.weight_mask, b.weight_mask)


def test_global_unstructured_matches_torch():
    def make():
        return nn.Sequential(nn.Linear(20, 30), nn.ReLU(), nn.Linear(30, 4))

    a, b = _pair(make)
    wp.global_unstructured(
        [(a[0], "weight"), (a[2], "weight")], pruning_method=wp.L1Unstructured, amount=0.6
    )
    tp.global_unstructured(
        [(b[0], "weight"), (b[2], "weight")], pruning_method=tp.L1Unstructured, amount=0.6
    )
    for i in (0, 2):
        assert torch.equal(a[i].weight_mask, b[i].weight_mask)


def test_custom_from_mask_remove_is_pruned_interoperate_with_torch():
    lin = nn.Linear(6, 3)
    mask = (torch.rand(3, 6) > 0.5).float()
    tp.custom_from_mask(lin, "weight", mask)  # pruned with the stock module
    assert wp.is_pruned(lin)
    wp.l1_unstructured(lin, "weight", 0.1)
    assert torch.all(lin.weight[mask == 0] == 0)
    wp.remove(lin, "weight")
    assert not tp.is_pruned(lin)
    assert isinstance(lin.weight, nn.Parameter)
    wp.custom_from_mask(lin, "weight", mask)
    tp.remove(lin, "weight")
    assert not wp.is_pruned(lin)


@pytest.mark.parametrize(
    "call, exc, words",
    [
        (lambda m: wp.l1_unstructured(m, "weight", 1.5), ValueError, ["1.5", "Linear"]),
        (lambda m: wp.l1_unstructured(m, "weight", -1), ValueError, ["-1"]),
        (lambda m: wp.l1_unstructured(m, "weight", 13), ValueError, ["13", "12"]),
        (lambda m: wp.l1_unstructured(m, "weight", "half"), TypeError, ["'half'"]),
        (lambda m: wp.l1_unstructured(m, "weights", 0.5), ValueError, ["'weights'"]),
        (lambda m: wp.ln_structured(m, "weight", 0.5, n=2, dim=5), ValueError, ["dim", "5"]),
        (lambda m: wp.ln_structured(m, "weight", 0.5, n=-1, dim=0), ValueError, ["-1"]),
        (lambda m: wp.custom_from_mask(m, "weight", torch.ones(2)), ValueError, ["(2,)"]),
        (lambda m: wp.remove(m, "weight"), ValueError, ["not pruned"]),
        (lambda m: wp.l1_unstructured("x", "weight", 0.5), TypeError, ["Module"]),
    ],
)
def test_bad_arguments_name_layer_and_value(call, exc, words):
    lin = nn.Linear(4, 3)
    with pytest.raises(exc) as info:
        call(lin)
    for w in words:
        assert w in str(info.value)


def test_non_float_parameter_is_a_type_error():
    emb = nn.Module()
    emb.register_buffer("weight", torch.ones(3, dtype=torch.int64))
    with pytest.raises(TypeError, match="int64"):
        wp.l1_unstructured(emb, "weight", 0.5)


def test_global_unstructured_bad_amount_and_method():
    m = nn.Linear(3, 3)
    with pytest.raises(ValueError, match="10"):
        wp.global_unstructured([(m, "weight")], wp.L1Unstructured, amount=10)
    with pytest.raises(TypeError, match="pruning_method"):
        wp.global_unstructured([(m, "weight")], "l1", amount=0.5)
