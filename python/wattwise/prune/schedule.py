"""Gradual pruning with TF-MOT's schedules (PolynomialDecay, ConstantSparsity), a pruner to
step in a training loop, and a helper that freezes parameters for fine-tuning."""

from __future__ import annotations

import abc
import numbers
from collections.abc import Callable, Iterable

from torch import nn

from .magnitude import magnitude_, parse_pattern


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    return int(value)


def _check_sparsity(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < 1:
        raise ValueError(f"{name} must be a float in [0, 1), got {value!r}")
    return float(value)


class PruningSchedule(abc.ABC):
    """A schedule maps a training step to (prune now?, target sparsity), as in TF-MOT: prune
    when begin_step <= step <= end_step (end_step -1: no end) and (step - begin_step) is a
    multiple of `frequency`."""

    def __init__(self, begin_step: int, end_step: int, frequency: int):
        self.begin_step = _check_int("begin_step", begin_step, 0)
        self.end_step = _check_int("end_step", end_step, -1)
        if self.end_step != -1 and self.end_step < self.begin_step:
            raise ValueError(f"end_step ({end_step}) must be -1 or >= begin_step ({begin_step})")
        self.frequency = _check_int("frequency", frequency, 1)

    def should_prune(self, step: int) -> bool:
        in_range = step >= self.begin_step and (self.end_step == -1 or step <= self.end_step)
        return in_range and (step - self.begin_step) % self.frequency == 0

    @abc.abstractmethod
    def sparsity(self, step: int) -> float:
        """Target sparsity at `step`."""

    def __call__(self, step: int) -> tuple[bool, float]:
        step = _check_int("step", step, 0)
        return self.should_prune(step), self.sparsity(step)

    def get_config(self) -> dict:
        return {k: v for k, v in vars(self).items()}


class ConstantSparsity(PruningSchedule):
    """The same target sparsity at every pruning step."""

    def __init__(
        self, target_sparsity: float, begin_step: int, end_step: int = -1, frequency: int = 100
    ):
        super().__init__(begin_step, end_step, frequency)
        self.target_sparsity = _check_sparsity("target_sparsity", target_sparsity)

    def sparsity(self, step: int) -> float:
        return self.target_sparsity


class PolynomialDecay(PruningSchedule):
    """Sparsity rising from initial to final between begin_step and end_step:
    final + (initial - final) * (1 - p) ** power with p the fraction of the way."""

    def __init__(
        self,
        initial_sparsity: float,
        final_sparsity: float,
        begin_step: int,
        end_step: int,
        power: float = 3,
        frequency: int = 100,
    ):
        super().__init__(begin_step, end_step, frequency)
        if self.end_step <= self.begin_step:
            raise ValueError(f"end_step ({end_step}) must be > begin_step ({begin_step})")
        self.initial_sparsity = _check_sparsity("initial_sparsity", initial_sparsity)
        self.final_sparsity = _check_sparsity("final_sparsity", final_sparsity)
        if isinstance(power, bool) or not isinstance(power, numbers.Real) or power <= 0:
            raise ValueError(f"power must be a positive number, got {power!r}")
        self.power = float(power)

    def sparsity(self, step: int) -> float:
        p = (step - self.begin_step) / (self.end_step - self.begin_step)
        p = min(1.0, max(0.0, p))
        return (
            self.final_sparsity
            + (self.initial_sparsity - self.final_sparsity) * (1 - p) ** self.power
        )


class GradualPruner:
    """Applies a schedule to a model: call step() once per training step (after
    optimizer.step()). Pruned weights stay zero because the model is reparametrized as in
    torch.nn.utils.prune: the optimizer updates `<name>_orig`, the forward uses orig * mask.

    Keyword arguments other than the schedule are those of magnitude_ (pattern, scope,
    filter_fn, block_shape, name)."""

    def __init__(
        self,
        model: nn.Module,
        schedule: PruningSchedule,
        pattern: str = "unstructured",
        scope: str = "global",
        filter_fn: Callable[[nn.Module, str], bool] | None = None,
        block_shape=(1, 4),
        name: str = "weight",
    ):
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(schedule, PruningSchedule):
            raise TypeError(
                "schedule must be PolynomialDecay or ConstantSparsity, got "
                f"{type(schedule).__name__}"
            )
        kind, _ = parse_pattern(pattern)
        if kind == "n:m":
            raise ValueError(
                f"pattern {pattern!r} has a fixed sparsity; use magnitude_ once instead"
            )
        self.model = model
        self.schedule = schedule
        self.kwargs = dict(
            pattern=pattern, scope=scope, filter_fn=filter_fn, block_shape=block_shape, name=name
        )
        self.step_count = 0
        self.last_sparsity: float | None = None

    def step(self) -> float | None:
        """Prunes if the schedule says so at the current step, then advances it. Returns the
        sparsity applied, or None when this step did not prune."""
        due, target = self.schedule(self.step_count)
        self.step_count += 1
        if not due:
            return None
        magnitude_(self.model, target, **self.kwargs)
        self.last_sparsity = target
        return target

    def state_dict(self) -> dict:
        return {"step_count": self.step_count, "last_sparsity": self.last_sparsity}

    def load_state_dict(self, state: dict) -> None:
        self.step_count = _check_int("step_count", state["step_count"], 0)
        self.last_sparsity = state.get("last_sparsity")


def freeze_(model: nn.Module, trainable: Iterable[str] = ()) -> list[str]:
    """Sets requires_grad=False on every parameter except those whose qualified name equals or
    starts with one of `trainable` (e.g. ["classifier", "layer4.1.conv2.weight_orig"]).
    Returns the names left trainable. Raises ValueError for a prefix matching nothing."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(trainable, str):
        trainable = [trainable]
    prefixes = list(trainable)
    for p in prefixes:
        if not isinstance(p, str):
            raise TypeError(f"trainable must hold str names, got {p!r}")

    def matches(n: str, p: str) -> bool:
        return n == p or n.startswith(p + ".") or n.startswith(p + "_orig") or p == ""

    names = [n for n, _ in model.named_parameters()]
    for p in prefixes:
        if not any(matches(n, p) for n in names):
            raise ValueError(f"trainable name {p!r} matches no parameter of the model")
    kept = []
    for n, param in model.named_parameters():
        on = any(matches(n, p) for p in prefixes)
        param.requires_grad_(on)
        if on:
            kept.append(n)
    return kept
