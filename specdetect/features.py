"""Spectral feature vectors: a configuration and the functions that apply it.

A :class:`FeatureConfig` says how a luma image becomes a fixed-length vector
(the paper's recipe: log power, azimuthal mean, resample, divide by the first
coefficient). It is stored with every feature file and model so that features
are always computed the same way they were trained on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from specdetect import spectra

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "MODEL_DEFAULT",
    "NORMS",
    "N_HARMONICS",
    "FeatureConfig",
    "features_numpy",
    "features_torch",
    "harmonic_index",
]

SCALES = ("log", "linear")

#: Frequencies ``(fy, fx)`` in cycles per pixel where x2 and x4 up-sampling
#: put periodic peaks (replicas of the DC term); one of each conjugate pair.
HARMONICS = (
    (0.0, 0.25), (0.0, 0.5), (0.25, 0.0), (0.5, 0.0), (0.25, 0.25),
    (-0.25, 0.25), (0.25, 0.5), (-0.25, 0.5), (0.5, 0.25), (0.5, 0.5),
)  # fmt: skip
N_HARMONICS = len(HARMONICS)

#: Normalizations: those of :mod:`specdetect.spectra` plus ``center``.
NORMS = (*spectra.NORMS, "center")


@dataclass(frozen=True)
class FeatureConfig:
    """How an image becomes a feature vector.

    Parameters
    ----------
    bins : int
        Length of the resampled 1-D spectrum (default 64).
    norm : {"first", "minmax", "none", "center"}
        Normalization of the resampled spectrum: see
        :func:`specdetect.spectra.normalize_spectrum` for the first three;
        ``center`` subtracts the mean of bins ``1..`` from every bin (and
        gives tenths of the values, bels for ``scale="log"``). The
        paper's ``first`` divides by the DC term, whose decibel value grows
        with brightness and image size, so it mixes those into every bin;
        ``center`` keeps only the shape of the spectrum (see
        ``models/README.md`` for the comparison on held-apart photos).
    scale : {"log", "linear"}
        ``log`` takes decibels of the power before the ring mean (the paper's
        ``20 log|F|``); ``linear`` averages the power itself.
    drop_corners : bool
        Drop frequencies beyond the inscribed Nyquist circle.
    harmonics : bool
        Append :data:`N_HARMONICS` peak contrasts at the up-sampling
        harmonics (see :func:`harmonic_index`): the decibel level at each of
        the positions ``{0, 1/4, 1/2}`` cycles per pixel along and between
        the axes, over the level of its neighbourhood. The azimuthal mean
        averages these fixed-position peaks away.
    """

    bins: int = 64
    norm: str = "first"
    scale: str = "log"
    drop_corners: bool = True
    harmonics: bool = False

    def __post_init__(self):
        if self.bins < 2:
            raise ValueError(f"bins must be at least 2, got {self.bins}")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        if self.scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, got {self.scale!r}")

    @property
    def n_features(self) -> int:
        """Length of the feature vector."""
        return self.bins + (N_HARMONICS if self.harmonics else 0)

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


@lru_cache(maxsize=64)
def harmonic_index(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Half-plane positions of the peak and neighbourhood bins of each harmonic.

    For each frequency in :data:`HARMONICS`, the peak is the 3x3 block of
    bins nearest to it and the neighbourhood the 16 bins of the 5x5 ring
    around that block. Bins with ``kx < 0`` are mapped to their conjugate
    partner in the half-plane (equal power); indices wrap on tiny images.

    Returns
    -------
    peak : ndarray of int64, shape (N_HARMONICS, 9)
    ring : ndarray of int64, shape (N_HARMONICS, 16)
        Flat indices into the ``(H, W // 2 + 1)`` half-plane.
    """
    half = width // 2 + 1
    offsets = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]
    inner = [o for o in offsets if max(abs(o[0]), abs(o[1])) <= 1]
    outer = [o for o in offsets if max(abs(o[0]), abs(o[1])) == 2]

    def flat(ky: int, kx: int) -> int:
        ky, kx = ky % height, kx % width
        if kx >= half:  # conjugate partner: (-ky, -kx)
            ky, kx = (-ky) % height, (-kx) % width
        return ky * half + kx

    peak, ring = [], []
    for fy, fx in HARMONICS:
        cy, cx = int(round(fy * height)), int(round(fx * width))
        peak.append([flat(cy + dy, cx + dx) for dy, dx in inner])
        ring.append([flat(cy + dy, cx + dx) for dy, dx in outer])
    peak_array, ring_array = np.array(peak, np.int64), np.array(ring, np.int64)
    peak_array.setflags(write=False)
    ring_array.setflags(write=False)
    return peak_array, ring_array


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
    power = spectra.power_spectrum(images)
    values = spectra.log_power(power) if config.scale == "log" else power
    ring_means, radii = spectra.azimuthal_integral(values, shape, config.drop_corners)
    resampled = spectra.resample_spectrum(ring_means, radii, config.bins)
    if config.norm == "center":
        # Tenths of the decibel values keep float32 rounding below 1e-5.
        out = 0.1 * (resampled - resampled[..., 1:].mean(axis=-1, keepdims=True))
    else:
        out = spectra.normalize_spectrum(resampled, config.norm)
    if config.harmonics:
        decibels = values if config.scale == "log" else spectra.log_power(power)
        flat = decibels.reshape(*decibels.shape[:-2], -1)
        peak, ring = harmonic_index(*shape)
        contrast = flat[..., peak].mean(-1) - flat[..., ring].mean(-1)
        # Decibels are large numbers; a tenth keeps them near the spectrum's scale.
        out = np.concatenate([out, 0.1 * contrast.astype(out.dtype)], axis=-1)
    return out.astype(np.float32)


def features_torch(images: torch.Tensor, config: FeatureConfig = FeatureConfig()) -> torch.Tensor:
    """Torch twin of :func:`features_numpy` for a batch ``(B, H, W)`` on any device."""
    import torch

    shape = tuple(images.shape[-2:])
    power = spectra.power_spectrum_torch(images)
    values = spectra.log_power_torch(power) if config.scale == "log" else power
    ring_means, radii = spectra.azimuthal_integral_torch(values, shape, config.drop_corners)
    resampled = spectra.resample_spectrum_torch(ring_means, radii, config.bins)
    if config.norm == "center":
        out = 0.1 * (resampled - resampled[..., 1:].mean(dim=-1, keepdim=True))
    else:
        out = spectra.normalize_spectrum_torch(resampled, config.norm)
    if config.harmonics:
        decibels = values if config.scale == "log" else spectra.log_power_torch(power)
        flat = decibels.reshape(*decibels.shape[:-2], -1)
        peak, ring = (torch.tensor(i, device=flat.device) for i in harmonic_index(*shape))
        contrast = flat[..., peak].mean(-1) - flat[..., ring].mean(-1)
        out = torch.cat([out, 0.1 * contrast.to(out.dtype)], dim=-1)
    return out


#: Feature settings for new models (``specdetect train``, ``Detector()``):
#: the paper's recipe with ``norm="center"``, which wins on held-apart
#: photos (``make repro-detect``). ``FeatureConfig()`` stays the paper's recipe.
MODEL_DEFAULT = FeatureConfig(norm="center")
