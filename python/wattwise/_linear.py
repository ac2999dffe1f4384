"""What every wattwise replacement for ``nn.Linear`` shares, whichever pillar it belongs to
(quantized and sparse layers): its name in error messages, the checks on its input, and the
gradients of ``y = x @ W.T + b`` for the ops' autograd formulas."""

from __future__ import annotations

import torch
from torch import nn


class NamedLayer(nn.Module):
    """Names itself in errors by class and ``fqn`` (the qualified name given at conversion,
    or "")."""

    fqn: str

    def _name(self) -> str:
        return f"{type(self).__name__} {self.fqn!r}" if self.fqn else type(self).__name__


class LinearLayerMixin(NamedLayer):
    """Input checks of a Linear-like layer; needs ``in_features``."""

    in_features: int

    def _check_input(self, x) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{self._name()}: input must be a Tensor, got {type(x).__name__}")
        if x.dim() == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"{self._name()}: input's last dimension must be in_features="
                f"{self.in_features}, got shape {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise TypeError(f"{self._name()}: input must be floating point, got {x.dtype}")


def linear_grads(ctx, grad_out: torch.Tensor, weight: torch.Tensor):
    """(grad_input, grad_bias) of a Linear op whose ctx records ``needs_input_grad`` (input
    first, bias last) and ``has_bias``; the weights themselves get no gradient."""
    grad_input = grad_bias = None
    if ctx.needs_input_grad[0]:
        grad_input = grad_out @ weight
    if ctx.has_bias and ctx.needs_input_grad[-1]:
        grad_bias = grad_out.reshape(-1, grad_out.shape[-1]).sum(0)
    return grad_input, grad_bias
