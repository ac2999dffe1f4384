"""Early-exit inference: multi-exit networks, training losses, calibrated thresholds,
per-sample exits in real batches and TorchScript export for a C++ exit loop."""

from .calibration import CalibrationResult, calibrate, collect_exit_logits, fit_temperature
from .criteria import CRITERIA, confidence
from .export import export, load_tensors, save_tensors
from .network import EarlyExitNetwork, ExitStats, Segment, attach_exits
from .training import distillation_loss, exit_weights, freeze_backbone_, joint_loss

__all__ = [
    "CRITERIA",
    "CalibrationResult",
    "EarlyExitNetwork",
    "ExitStats",
    "Segment",
    "attach_exits",
    "calibrate",
    "collect_exit_logits",
    "confidence",
    "distillation_loss",
    "exit_weights",
    "export",
    "fit_temperature",
    "freeze_backbone_",
    "joint_loss",
    "load_tensors",
    "save_tensors",
]
