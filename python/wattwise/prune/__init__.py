"""Pruning that pays: torch.nn.utils.prune-compatible masks, magnitude pruning with
unstructured, N:M, block and channel patterns, gradual schedules, sensitivity analysis, and
the steps that turn sparsity into speed and size (sparse CPU kernels, physical shrinking)."""

from __future__ import annotations

from .compat import (
    BasePruningMethod,
    CustomFromMask,
    Identity,
    L1Unstructured,
    LnStructured,
    PruningContainer,
    RandomStructured,
    RandomUnstructured,
    custom_from_mask,
    global_unstructured,
    identity,
    is_pruned,
    l1_unstructured,
    ln_structured,
    random_structured,
    random_unstructured,
    remove,
)
from .io import load_, metadata, save
from .magnitude import magnitude_
from .report import PruningReport, report
from .schedule import ConstantSparsity, GradualPruner, PolynomialDecay, PruningSchedule, freeze_
from .sensitivity import SensitivityResult, sensitivity
from .shrink import ShrinkPlan, complete_channel_groups_, shrink_
from .sparse import NMSparseLinear, SparseLinear, sparsify_

__all__ = [
    "BasePruningMethod",
    "ConstantSparsity",
    "CustomFromMask",
    "GradualPruner",
    "Identity",
    "L1Unstructured",
    "LnStructured",
    "NMSparseLinear",
    "PolynomialDecay",
    "PruningContainer",
    "PruningReport",
    "PruningSchedule",
    "RandomStructured",
    "RandomUnstructured",
    "SensitivityResult",
    "ShrinkPlan",
    "SparseLinear",
    "complete_channel_groups_",
    "custom_from_mask",
    "freeze_",
    "global_unstructured",
    "identity",
    "is_pruned",
    "l1_unstructured",
    "ln_structured",
    "load_",
    "magnitude_",
    "metadata",
    "random_structured",
    "random_unstructured",
    "remove",
    "report",
    "save",
    "sensitivity",
    "shrink_",
    "sparsify_",
]
