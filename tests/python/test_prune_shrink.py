"""shrink_: physical channel removal through Conv→BN→Conv, residual additions, concatenations,
flatten→Linear and Linear→Linear chains, with the same outputs as the masked model."""

import pytest
import torch
from torch import nn

import wattwise.prune as wp


def randomize_bn(model):
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-1, 1)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.bn = nn.BatchNorm2d(16)
        self.block = Block(16)
        self.branch_a = nn.Conv2d(16, 8, 1)
        self.branch_b = nn.Conv2d(16, 8, 3, padding=1)
        self.mix = nn.Conv2d(16, 12, 3, padding=1, bias=False)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc1 = nn.Linear(12 * 4, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = torch.relu(self.bn(self.stem(x)))
        x = self.block(x)
        x = torch.cat([self.branch_a(x), self.branch_b(x)], dim=1)
        x = self.pool(self.mix(x))
        x = torch.flatten(x, 1)
        return self.fc2(torch.relu(self.fc1(x)))


def conv_and_hidden(mod, fqn):
    return isinstance(mod, nn.Conv2d) or fqn == "fc1"


def test_shrunk_cnn_has_same_outputs_as_masked_one():
    torch.manual_seed(0)
    net = Net().eval()
    randomize_bn(net)
    wp.magnitude_(net, 0.5, pattern="channel", scope="layer", filter_fn=conv_and_hidden)
    x = torch.randn(2, 3, 8, 8)
    wp.complete_channel_groups_(net, x)
    masked = net(x)
    params_before = sum(p.numel() for p in net.parameters())
    plan = wp.shrink_(net, x)
    torch.testing.assert_close(net(x), masked, rtol=1e-4, atol=1e-5)
    assert sum(p.numel() for p in net.parameters()) < 0.5 * params_before
    assert net.branch_a.out_channels == 4 and net.mix.in_channels == 8
    assert net.fc1.in_features == net.mix.out_channels * 4
    assert net.fc2.in_features == 16
    # The residual stream keeps a channel if stem or conv2 still uses it.
    assert net.stem.out_channels == net.block.conv2.out_channels == net.block.conv1.in_channels
    assert "fc1" in plan.shrunk


def test_unpruned_model_is_left_alone_and_output_channels_are_kept():
    net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
    wp.magnitude_(net, 0.5, pattern="channel", scope="layer")
    x = torch.randn(3, 8)
    ref = net(x)
    plan = wp.shrink_(net, x)
    assert net[0].out_features == 8 and net[2].out_features == 4  # the model's output stays
    assert plan.kept
    torch.testing.assert_close(net(x), ref)


class Unresolvable(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(8, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        y = self.fc(x)
        return self.head(torch.sort(y, dim=-1).values)


def test_unresolvable_dependency_is_refused_naming_layers():
    m = Unresolvable()
    wp.magnitude_(m, 0.5, pattern="channel", filter_fn=lambda mod, f: f == "fc")
    x = torch.randn(2, 8)
    with pytest.raises(ValueError, match=r"\['fc'\].*sort"):
        wp.shrink_(m, x)
    ref = m(x)
    wp.shrink_(m, x, strict=False)
    assert m.fc.out_features == 8
    torch.testing.assert_close(m(x), ref)


class WithLayerNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(8, 16)
        self.ln = nn.LayerNorm(16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(self.ln(self.fc1(x)))


def test_layernorm_width_is_refused_when_inexact_and_resized_on_request():
    m = WithLayerNorm()
    wp.magnitude_(m, 0.25, pattern="channel", filter_fn=lambda mod, f: f == "fc1")
    x = torch.randn(2, 8)
    with pytest.raises(ValueError, match="LayerNorm 'ln'"):
        wp.shrink_(m, x)
    wp.shrink_(m, x, exact=False)
    assert m.ln.normalized_shape == (12,) and m.ln.weight.shape == (12,) and m.fc2.in_features == 12
    assert m(x).shape == (2, 3)


def test_shrink_bad_input():
    with pytest.raises(TypeError, match="Module"):
        wp.shrink_("model", torch.randn(1))

    class Dynamic(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x

    with pytest.raises(ValueError, match="trace"):
        wp.shrink_(Dynamic(), torch.randn(2))


def test_grouped_channel_pruning_shrinks_the_residual_stream():
    torch.manual_seed(0)
    net = Net().eval()
    randomize_bn(net)
    x = torch.randn(2, 3, 8, 8)
    wp.magnitude_(net, 0.5, pattern="channel", scope="layer", example_inputs=x)
    # stem and block.conv2 share the residual stream: the same rows go in both.
    assert torch.equal(net.stem.weight_mask[:, 0, 0, 0], net.block.conv2.weight_mask[:, 0, 0, 0])
    assert not bool((net.fc2.weight_mask == 0).any())  # the model output is never pruned
    wp.complete_channel_groups_(net, x)
    masked = net(x)
    wp.shrink_(net, x)
    assert net.stem.out_channels == 8 and net.block.conv2.out_channels == 8
    assert net.block.conv1.out_channels == 8 and net.fc1.out_features == 16
    torch.testing.assert_close(net(x), masked, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="pattern='channel'"):
        wp.magnitude_(Net(), 0.5, example_inputs=x)
    glob = Net().eval()
    wp.magnitude_(glob, 0.7, pattern="channel", example_inputs=x)  # scope="global"
    wp.shrink_(glob, x)
    convs = [m for m in glob.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert all(m.weight.shape[0] >= 1 for m in convs)  # no layer is emptied
