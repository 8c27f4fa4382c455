"""Detectors on spectral features and their safe model files.

Names are imported on first use (PEP 562), so that reaching for
``default_model_path`` or ``ModelError`` does not import scikit-learn.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["Detector", "ModelError", "default_model_path", "load_model", "save_model"]

_HOMES = {
    "Detector": "specdetect.detect.detector",
    "ModelError": "specdetect.detect.model_io",
    "default_model_path": "specdetect.detect.model_io",
    "load_model": "specdetect.detect.model_io",
    "save_model": "specdetect.detect.model_io",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)


def __dir__() -> list[str]:
    return sorted(__all__)
