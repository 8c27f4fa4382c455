"""Spectral feature vectors: a configuration and the functions that apply it.

A :class:`FeatureConfig` says how a luma image becomes a fixed-length vector
(the paper's recipe: log power, azimuthal mean, resample, divide by the first
coefficient). It is stored with every feature file and model so that features
are always computed the same way they were trained on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from specdetect import spectra

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["FeatureConfig", "features_numpy", "features_torch"]

SCALES = ("log", "linear")


@dataclass(frozen=True)
class FeatureConfig:
    """How an image becomes a feature vector.

    Parameters
    ----------
    bins : int
        Length of the resampled 1-D spectrum (default 64).
    norm : {"first", "minmax", "none"}
        Normalization of the resampled spectrum (see
        :func:`specdetect.spectra.normalize_spectrum`).
    scale : {"log", "linear"}
        ``log`` takes decibels of the power before the ring mean (the paper's
        ``20 log|F|``); ``linear`` averages the power itself.
    drop_corners : bool
        Drop frequencies beyond the inscribed Nyquist circle.
    """

    bins: int = 64
    norm: str = "first"
    scale: str = "log"
    drop_corners: bool = True

    def __post_init__(self):
        if self.bins < 2:
            raise ValueError(f"bins must be at least 2, got {self.bins}")
        if self.norm not in spectra.NORMS:
            raise ValueError(f"norm must be one of {spectra.NORMS}, got {self.norm!r}")
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {self.scale!r}")

    @property
    def n_features(self) -> int:
        """Length of the feature vector."""
        return self.bins

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        """Build from a dict, refusing keys this version does not know."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown feature settings: {sorted(unknown)}")
        return cls(**data)


def features_numpy(images: np.ndarray, config: FeatureConfig = FeatureConfig()) -> np.ndarray:
    """Feature vectors of one luma image ``(H, W)`` or a batch ``(B, H, W)``.

    The NumPy/SciPy reference; :func:`features_torch` gives the same values.

    Examples
    --------
    >>> features_numpy(np.zeros((32, 48), np.float32), FeatureConfig(bins=8)).shape
    (8,)
    """
    images = np.asarray(images)
    shape = images.shape[-2:]
    values = spectra.power_spectrum(images)
    if config.scale == "log":
        values = spectra.log_power(values)
    ring_means, radii = spectra.azimuthal_integral(values, shape, config.drop_corners)
    resampled = spectra.resample_spectrum(ring_means, radii, config.bins)
    return spectra.normalize_spectrum(resampled, config.norm).astype(np.float32)


def features_torch(images: torch.Tensor, config: FeatureConfig = FeatureConfig()) -> torch.Tensor:
    """Torch twin of :func:`features_numpy` for a batch ``(B, H, W)`` on any device."""
    shape = tuple(images.shape[-2:])
    values = spectra.power_spectrum_torch(images)
    if config.scale == "log":
        values = spectra.log_power_torch(values)
    ring_means, radii = spectra.azimuthal_integral_torch(values, shape, config.drop_corners)
    resampled = spectra.resample_spectrum_torch(ring_means, radii, config.bins)
    return spectra.normalize_spectrum_torch(resampled, config.norm)
