"""Loads the C++ extension after checking it was built against the installed torch."""

from __future__ import annotations

import torch

try:
    from . import _build_config
except ImportError as exc:  # a source checkout that was never built
    raise ImportError(
        "wattwise's C++ extension is not built. Install the package with "
        "`pip install --no-build-isolation .` (torch must be installed first)."
    ) from exc


def _base_version(version: str) -> str:
    return version.split("+", 1)[0]


if _base_version(torch.__version__) != _base_version(_build_config.TORCH_VERSION):
    # The C++ ABI of libtorch changes between releases: loading a mismatched build fails
    # with undefined symbols at best, so say what to do instead.
    raise ImportError(
        f"wattwise was built against torch {_build_config.TORCH_VERSION} but torch "
        f"{torch.__version__} is installed. Rebuild wattwise against this torch: "
        "`pip install --no-build-isolation --force-reinstall --no-deps .` from the wattwise "
        "source, or install torch " + _base_version(_build_config.TORCH_VERSION) + "."
    )

from . import _C  # noqa: E402  (registers torch.ops.wattwise.*)

__all__ = ["_C"]
