"""Detectors on spectral features and their safe model files.

Names are imported on first use (PEP 562), so that reaching for
``default_model_path`` or ``ModelError`` does not import scikit-learn.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

__all__ = ["Detector", "ModelError", "default_model_path", "load_model", "save_model"]

_HOMES = {
    "Detector": "specdetect.detect.detector",
    "ModelError": "specdetect.detect.model_io",
    "load_model": "specdetect.detect.model_io",
    "save_model": "specdetect.detect.model_io",
}


def default_model_path() -> Path:
    """The shipped model, an absolute path with symbolic links resolved.

    It is package data, ``specdetect/models/default.skops``, so an installed
    package finds it wherever it runs from; in a checkout that file is a link
    to ``models/default.skops``, which this returns.
    """
    return (Path(__file__).resolve().parents[1] / "models" / "default.skops").resolve()


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)


def __dir__() -> list[str]:
    return sorted(__all__)
