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
import scipy.fft
import scipy.ndimage

from specdetect import spectra

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "MODEL_DEFAULT",
    "NORMS",
    "N_COHERENCE",
    "N_HARMONICS",
    "FeatureConfig",
    "coherence_numpy",
    "coherence_torch",
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

#: Coherence features: spectral shifts by half the sampling rate along x, y
#: and both, times radial bands of the base frequency (see
#: :func:`coherence_numpy`).
COHERENCE_BANDS = 4
COHERENCE_BOX = 5  # side of the frequency neighbourhood the coherence is averaged over
N_COHERENCE = 3 * COHERENCE_BANDS
# Added to the coherence denominator, in power units of the orthonormal DFT:
# far below the noise floor of any 8-bit image (1/12 per bin), far above the
# float32 rounding of a constant image's spectrum.
_COHERENCE_EPS = 1e-3

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
    coherence : bool
        Append :data:`N_COHERENCE` spectral coherences between each
        frequency ``f`` and ``f + 1/2`` (along x, y and both), per radial
        band (see :func:`coherence_numpy`). Up-sampling by 2 makes the
        spectrum above a quarter cycle per pixel a filtered copy of the one
        below, so the two are phase-locked; in a camera image they are
        independent. This is the fingerprint the magnitude spectrum only
        hints at, and it survives the image's own blur or up-scaling history.
    """

    bins: int = 64
    norm: str = "first"
    scale: str = "log"
    drop_corners: bool = True
    harmonics: bool = False
    coherence: bool = False

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
        return (
            self.bins
            + (N_HARMONICS if self.harmonics else 0)
            + (N_COHERENCE if self.coherence else 0)
        )

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


@lru_cache(maxsize=64)
def coherence_plan(height: int, width: int) -> tuple[tuple[tuple[int, int], ...], np.ndarray]:
    """Half-sampling-rate shifts and radial-band averaging matrix for a shape.

    Returns
    -------
    shifts : tuple of (dy, dx)
        ``(0, W//2)``, ``(H//2, 0)``, ``(H//2, W//2)``: the DFT-index shifts
        by half the sampling rate along x, y and both.
    bands : ndarray, shape (H * W, COHERENCE_BANDS)
        Averaging weights over the full DFT plane: band ``b`` covers radii
        ``0.02 + b * 0.12 .. 0.02 + (b + 1) * 0.12`` cycles per pixel (an
        empty band, only possible on tiny images, gives 0).
    """
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    radius = np.hypot(fy, fx).ravel()
    edges = np.linspace(0.02, 0.5, COHERENCE_BANDS + 1)
    edges[-1] += 1e-9  # include the Nyquist ring
    member = (radius[:, None] >= edges[:-1]) & (radius[:, None] < edges[1:])
    bands = member / np.maximum(member.sum(axis=0, keepdims=True), 1)
    bands.setflags(write=False)
    shifts = ((0, width // 2), (height // 2, 0), (height // 2, width // 2))
    return shifts, bands


def _box_numpy(values: np.ndarray) -> np.ndarray:
    """Mean over a COHERENCE_BOX x COHERENCE_BOX neighbourhood, periodic borders."""
    size = (1,) * (values.ndim - 2) + (COHERENCE_BOX, COHERENCE_BOX)
    if np.iscomplexobj(values):
        return _box_numpy(values.real) + 1j * _box_numpy(values.imag)
    return scipy.ndimage.uniform_filter(values, size, mode="wrap")


def coherence_numpy(images: np.ndarray) -> np.ndarray:
    """Spectral coherence between frequencies ``f`` and ``f + 1/2``.

    For each shift ``s`` in :func:`coherence_plan` and each frequency ``f``,
    ``|<F(f) F*(f+s)>| / sqrt(<|F(f)|^2> <|F(f+s)|^2>)`` with ``<.>`` the mean
    over a small neighbourhood of ``f``, averaged over radial bands. An image
    up-sampled by 2 is ``K(f) X(2f)`` with ``X(2f)`` periodic in ``1/2``,
    so ``F(f + s) / F(f) = K(f + s) / K(f)`` varies smoothly and the
    coherence is near 1; for a camera image it stays at the chance level of
    the neighbourhood size (about 0.25).

    Parameters
    ----------
    images : ndarray, shape (H, W) or (B, H, W)

    Returns
    -------
    ndarray, shape (..., N_COHERENCE), in [0, 1]: shift-major, band-minor.
    """
    images = np.asarray(images)
    if images.dtype != np.float32:
        images = images.astype(np.float64)
    height, width = images.shape[-2:]
    shifts, bands = coherence_plan(height, width)
    centred = images - images.mean(axis=(-2, -1), keepdims=True)
    spectrum = scipy.fft.fft2(centred, norm="ortho", workers=1)
    power_mean = _box_numpy(spectrum.real**2 + spectrum.imag**2)
    out = []
    for shift in shifts:
        shifted = np.roll(spectrum, shift, axis=(-2, -1))
        cross = _box_numpy(spectrum * np.conj(shifted))
        denominator = np.sqrt(power_mean * np.roll(power_mean, shift, axis=(-2, -1)))
        ratio = np.abs(cross) / (denominator + _COHERENCE_EPS)
        out.append(ratio.reshape(*ratio.shape[:-2], -1) @ bands.astype(ratio.dtype))
    return np.concatenate(out, axis=-1)


def _box_torch(values: torch.Tensor) -> torch.Tensor:
    """Torch twin of :func:`_box_numpy` (circular padding, then average pooling)."""
    import torch
    import torch.nn.functional as F  # noqa: N812

    if values.is_complex():
        return torch.complex(_box_torch(values.real), _box_torch(values.imag))
    lead, (height, width) = values.shape[:-2], values.shape[-2:]
    flat = values.reshape(-1, 1, height, width)
    # Periodic padding by indexing (F.pad's circular mode refuses tiny images).
    half = COHERENCE_BOX // 2
    rows = torch.arange(-half, height + half, device=values.device) % height
    cols = torch.arange(-half, width + half, device=values.device) % width
    padded = flat[:, :, rows][:, :, :, cols]
    pooled = F.avg_pool2d(padded, COHERENCE_BOX, stride=1)
    return pooled.reshape(*lead, height, width)


def coherence_torch(images: torch.Tensor) -> torch.Tensor:
    """Torch twin of :func:`coherence_numpy` for ``(..., H, W)`` tensors."""
    import torch

    height, width = images.shape[-2:]
    shifts, bands = coherence_plan(height, width)
    centred = images - images.mean(dim=(-2, -1), keepdim=True)
    spectrum = torch.fft.fft2(centred, norm="ortho")
    power_mean = _box_torch(spectrum.real**2 + spectrum.imag**2)
    weights = torch.tensor(bands, device=images.device, dtype=power_mean.dtype)
    out = []
    for shift in shifts:
        shifted = torch.roll(spectrum, shift, dims=(-2, -1))
        cross = _box_torch(spectrum * torch.conj(shifted))
        denominator = torch.sqrt(power_mean * torch.roll(power_mean, shift, dims=(-2, -1)))
        ratio = cross.abs() / (denominator + _COHERENCE_EPS)
        out.append(ratio.reshape(*ratio.shape[:-2], -1) @ weights)
    return torch.cat(out, dim=-1)


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
    if config.coherence:
        out = np.concatenate([out, coherence_numpy(images).astype(out.dtype)], axis=-1)
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
    if config.coherence:
        out = torch.cat([out, coherence_torch(images).to(out.dtype)], dim=-1)
    return out


#: Feature settings for new models (``specdetect train``, ``Detector()``):
#: the paper's recipe with ``norm="center"`` plus the half-band coherence,
#: which win on held-apart photos (``make repro-detect``, ``models/README.md``).
#: ``FeatureConfig()`` stays the paper's recipe.
MODEL_DEFAULT = FeatureConfig(norm="center", coherence=True)
