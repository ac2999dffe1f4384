"""The combined recipe: prune channels (and remove them), quantize, then add early exits whose
heads are trained on, and whose thresholds are calibrated against, the compressed backbone."""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class CompressionResult:
    """What each step of :func:`prune_quantize_exit` did."""

    model: nn.Module
    channel_sparsity: dict = field(default_factory=dict)
    removed_channels: dict = field(default_factory=dict)
    quantized_layers: list = field(default_factory=list)
    calibration: object = None


def default_head_factory(
    num_classes: int, pool: int = 4
) -> Callable[[str, torch.Tensor], nn.Module]:
    """Exit heads: a feature map is average-pooled to at most ``pool`` x ``pool`` (spatial
    detail matters for early, low-level features), flattened and classified linearly."""

    def make(name: str, features: torch.Tensor) -> nn.Module:
        if features.dim() == 4:
            side = min(pool, features.shape[-1], features.shape[-2])
            return nn.Sequential(
                nn.AdaptiveAvgPool2d(side),
                nn.Flatten(),
                nn.Linear(features.shape[1] * side * side, num_classes),
            )
        return nn.Sequential(nn.Flatten(), nn.Linear(features[0].numel(), num_classes))

    return make


def _check_loader(loader, name: str):
    if loader is None or isinstance(loader, (torch.Tensor, str, bytes)):
        raise TypeError(f"prune_quantize_exit: {name} must be an iterable of (inputs, targets)")
    return loader


def _finetune(model, loader, epochs: int, lr: float, params=None) -> None:
    if epochs <= 0:
        return
    model.train()
    if params is not None and hasattr(model, "stages"):
        # Heads-only training: the frozen backbone's BatchNorm statistics must not drift.
        model.stages.eval()
    opt = torch.optim.Adam(params if params is not None else model.parameters(), lr=lr)
    for _ in range(epochs):
        for x, y in loader:
            opt.zero_grad()
            out = model(x)
            loss = (
                sum(nn.functional.cross_entropy(o, y) for o in out) / len(out)
                if isinstance(out, list)
                else nn.functional.cross_entropy(out, y)
            )
            loss.backward()
            opt.step()
    model.eval()


def prune_quantize_exit(
    model: nn.Module,
    train_loader,
    calib_loader,
    example_input: torch.Tensor,
    exits_after: Sequence[str],
    num_classes: int,
    *,
    channel_amount: float = 0.5,
    prune_filter: Callable[[nn.Module, str], bool] | None = None,
    finetune_epochs: int = 2,
    quant_config=None,
    quant_filter: Callable[[nn.Module, str], bool] | None = None,
    head_factory: Callable[[str, torch.Tensor], nn.Module] | None = None,
    head_epochs: int = 5,
    lr: float = 1e-3,
    max_accuracy_drop: float = 0.01,
    progress: bool = True,
) -> CompressionResult:
    """Prune -> quantize -> early exit, on a copy of ``model`` (an ``nn.Sequential`` of
    stages, or any model ``attach_exits`` accepts).

    1. ``wattwise.prune.magnitude_(pattern="channel")`` removes ``channel_amount`` of the
       output channels of the layers ``prune_filter`` selects (default: every Conv2d, and
       every Linear but the last), the model is fine-tuned ``finetune_epochs`` on
       ``train_loader`` with the masks held, and ``shrink_`` removes the channels for real.
    2. ``wattwise.quantize_`` with ``quant_config`` (default
       ``Int8DynamicActivationInt8WeightConfig``) on the Linear layers.
    3. ``attach_exits`` after ``exits_after``; the heads (``head_factory``, default pooled
       linear classifiers) are trained for ``head_epochs`` on the frozen compressed backbone,
       then ``calibrate`` sets thresholds on ``calib_loader`` (held-out data) for
       ``max_accuracy_drop`` relative to the compressed model's own final exit.
    """
    from .. import early_exit, prune
    from ..quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    if not isinstance(model, nn.Module):
        raise TypeError(
            f"prune_quantize_exit: model must be an nn.Module, got {type(model).__name__}"
        )
    if not isinstance(example_input, torch.Tensor):
        raise TypeError("prune_quantize_exit: example_input must be a tensor")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(
            f"prune_quantize_exit: num_classes must be an int >= 2, got {num_classes!r}"
        )
    if not 0.0 <= channel_amount < 1.0:
        raise ValueError(
            f"prune_quantize_exit: channel_amount must lie in [0, 1), got {channel_amount}"
        )
    _check_loader(train_loader, "train_loader")
    _check_loader(calib_loader, "calib_loader")
    net = copy.deepcopy(model).eval()
    result = CompressionResult(model=net)

    linears = [fqn for fqn, m in net.named_modules() if isinstance(m, nn.Linear)]
    last_linear = linears[-1] if linears else None

    def default_prune_filter(m: nn.Module, fqn: str) -> bool:
        return isinstance(m, nn.Conv2d) or (isinstance(m, nn.Linear) and fqn != last_linear)

    if channel_amount > 0:
        result.channel_sparsity = prune.magnitude_(
            net,
            channel_amount,
            pattern="channel",
            scope="layer",
            filter_fn=prune_filter or default_prune_filter,
        )
        _finetune(net, train_loader, finetune_epochs, lr)
        plan = prune.shrink_(net, example_input)
        result.removed_channels = dict(plan.shrunk)
    net.eval()

    config = quant_config or Int8DynamicActivationInt8WeightConfig()
    before = {fqn for fqn, m in net.named_modules() if isinstance(m, nn.Linear)}
    quantize_(net, config, filter_fn=quant_filter)
    after = {fqn for fqn, m in net.named_modules() if isinstance(m, nn.Linear)}
    result.quantized_layers = sorted(before - after)

    factory = head_factory or default_head_factory(num_classes)
    ee = early_exit.attach_exits(
        net, after=list(exits_after), head_factory=factory, example_input=example_input
    )
    early_exit.freeze_backbone_(ee)
    heads = [p for p in ee.parameters() if p.requires_grad]
    _finetune(ee, train_loader, head_epochs, lr, params=heads)
    ee.eval()
    result.calibration = early_exit.calibrate(
        ee, calib_loader, max_accuracy_drop=max_accuracy_drop, progress=progress
    )
    result.model = ee
    return result
