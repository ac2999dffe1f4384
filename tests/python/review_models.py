"""Importable model factories for the CLI tests (`wattwise compare module:factory`)."""

import torch
from torch import nn


def small_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
