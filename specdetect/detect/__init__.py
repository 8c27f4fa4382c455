"""Detectors on spectral features and their safe model files."""

from specdetect.detect.detector import Detector
from specdetect.detect.model_io import ModelError, default_model_path, load_model, save_model

__all__ = ["Detector", "ModelError", "default_model_path", "load_model", "save_model"]
