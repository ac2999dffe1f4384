"""The combined prune -> quantize -> early-exit recipe, and the demo's building blocks."""

import pytest
import torch
from torch import nn

from wattwise import demo
from wattwise.early_exit import EarlyExitNetwork
from wattwise.review.pipeline import default_head_factory, prune_quantize_exit


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    train_set, calib_set, test_set = demo.make_data()
    model = demo.train(demo.make_cnn(), train_set, epochs=4)
    return model, train_set, calib_set, test_set


def _loader(x, y, batch=128):
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=batch)


def test_prune_quantize_exit_compresses_every_way(trained):
    model, train_set, calib_set, test_set = trained
    result = prune_quantize_exit(
        model,
        _loader(*train_set, 64),
        _loader(*calib_set),
        train_set[0][:1],
        exits_after=["0", "1"],
        num_classes=10,
        prune_filter=lambda m, fqn: isinstance(m, nn.Conv2d) or fqn == "3.1",
        finetune_epochs=1,
        head_epochs=2,
        progress=False,
    )
    net = result.model
    assert isinstance(net, EarlyExitNetwork) and net.num_exits == 3
    # Half of each pruned layer's output channels are gone for real.
    assert result.removed_channels["0.0"] == (32, 16)
    assert result.removed_channels["3.1"] == (512, 256)
    # The classifier's Linear layers run int8 kernels now.
    assert set(result.quantized_layers) >= {"3.1", "3.3"}
    assert result.calibration is not None
    # The original model is untouched.
    assert model[0][0].out_channels == 32 and type(model[3][1]) is nn.Linear
    with torch.inference_mode():
        logits, exit_index = net.infer(test_set[0])
    acc = (logits.argmax(1) == test_set[1]).float().mean().item()
    base = (model(test_set[0]).argmax(1) == test_set[1]).float().mean().item()
    assert acc > base - 0.05
    assert exit_index.min() >= 0 and exit_index.max() <= 2


def test_prune_quantize_exit_validates(trained):
    model, train_set, _, _ = trained
    loader = _loader(*train_set)
    with pytest.raises(TypeError, match="model must be an nn.Module"):
        prune_quantize_exit("m", loader, loader, train_set[0][:1], ["0"], 10)
    with pytest.raises(ValueError, match="channel_amount must lie in"):
        prune_quantize_exit(model, loader, loader, train_set[0][:1], ["0"], 10, channel_amount=1.5)
    with pytest.raises(ValueError, match="num_classes must be an int >= 2"):
        prune_quantize_exit(model, loader, loader, train_set[0][:1], ["0"], 1)
    with pytest.raises(TypeError, match="calib_loader must be an iterable"):
        prune_quantize_exit(model, loader, torch.zeros(3), train_set[0][:1], ["0"], 10)


def test_default_heads_pool_feature_maps():
    make = default_head_factory(10)
    head = make("0", torch.zeros(1, 32, 8, 8))
    assert head(torch.zeros(5, 32, 8, 8)).shape == (5, 10)
    assert sum(p.numel() for p in head.parameters()) == 32 * 16 * 10 + 10
    flat = make("x", torch.zeros(1, 100))
    assert flat(torch.zeros(2, 100)).shape == (2, 10)
