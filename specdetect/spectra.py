"""Spectrum math: power spectrum, azimuthal integral, resampling, normalization.

Pure functions, in two implementations with identical results:

* a NumPy/SciPy reference (``power_spectrum``, ``azimuthal_integral``, ...)
  that works on one image ``(H, W)`` or a batch ``(..., H, W)``;
* a batched torch implementation (the ``*_torch`` functions) for GPUs and for
  differentiable use (the GAN spectral loss). torch is imported lazily.

Conventions (shared by both implementations)
--------------------------------------------
* The transform is ``rfft2`` over the last two axes with ``norm="ortho"``, so
  the power ``|F|**2`` of stationary content does not depend on image size
  (white noise of variance s**2 has power s**2 at every frequency).
* Only the half-plane ``kx >= 0`` is computed; every column that stands for a
  conjugate pair (``0 < kx < W/2``) is weighted 2, the others 1, so ring means
  equal those of the full ``fft2`` plane and no ``fftshift`` is needed.
* Radius is normalized frequency ``r = sqrt(fx**2 + fy**2)`` in cycles per
  pixel per axis (``fx = kx / W``, ``fy = ky / H``), so non-square images need
  no cropping or resizing. Rings are ``1 / min(H, W)`` wide: ring ``k`` holds
  the frequencies with ``round(r * min(H, W)) == k``.
* The DC term is ring 0 on its own; every other frequency goes to ring
  ``>= 1`` even when it rounds to 0 (very elongated images).
* Frequencies beyond the inscribed Nyquist circle ``r > 0.5`` (the corners)
  are dropped by default.
* Log power is ``10 * log10(power + eps)`` (decibels) with ``eps = 1e-10``.
* Resampling interpolates the 1-D spectrum (never the image) linearly onto
  ``bins`` radii evenly spaced over ``[0, 0.5]``.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

import numpy as np
import scipy.fft

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "LOG_EPS",
    "NORMS",
    "Norm",
    "RingIndex",
    "azimuthal_integral",
    "azimuthal_integral_torch",
    "log_power",
    "log_power_torch",
    "normalize_spectrum",
    "normalize_spectrum_torch",
    "power_spectrum",
    "power_spectrum_torch",
    "resample_matrix",
    "resample_spectrum",
    "resample_spectrum_torch",
    "ring_index",
]

#: Added to the power before the logarithm so that zero power stays finite.
LOG_EPS = 1e-10

#: Per-shape plans (ring indexes, coherence layouts) take about 1 byte per
#: pixel of their shape (plus a megabyte or so for the coherence's chunk
#: patterns). They are cached for the last shapes seen while those
#: total at most this many pixels (the newest plan is always kept): a folder of
#: thumbnails reuses dozens of plans, a folder of 24-megapixel photos of mixed
#: sizes keeps one, instead of one per size.
PLAN_CACHE_PIXELS = 1 << 24
#: Spectral values processed at a time by the plan builders and reductions,
#: so that their float64 temporaries stay a few tens of megabytes whatever
#: the image size.
_CHUNK_BINS = 1 << 18
#: Coefficients whose magnitude is below this are not divided by.
_TINY = 1e-12

Norm = Literal["first", "minmax", "none"]
NORMS: tuple[str, ...] = ("first", "minmax", "none")


# --------------------------------------------------------------------------
# Ring geometry (shared by both implementations, cached per shape)
# --------------------------------------------------------------------------
@dataclass(frozen=True)
class RingIndex:
    """Where every half-plane frequency of an ``(H, W)`` image goes.

    Compact: one small integer per frequency (2 bytes while ring numbers fit
    in ``uint16``), so that the plan of a large image costs about 1 byte per
    pixel; the per-position arrays of the torch implementation are derived
    on demand.

    Attributes
    ----------
    shape : tuple of int
        The image shape ``(H, W)``.
    ring_map : ndarray of uint16 (int32 for huge images), shape (H, W // 2 + 1)
        Ring of every half-plane frequency; ``n_rings`` for a dropped one.
    radii : ndarray of float64
        Centre radius of each ring in cycles per pixel (``k / min(H, W)``).
    counts : ndarray of float64
        Total hermitian weight of each ring (full-plane sample count).
    """

    shape: tuple[int, int]
    ring_map: np.ndarray
    radii: np.ndarray
    counts: np.ndarray

    @property
    def n_rings(self) -> int:
        return len(self.radii)

    @property
    def weights(self) -> np.ndarray:
        """Hermitian weight of each half-plane column (1 or 2), float64."""
        width = self.shape[1]
        weight = np.full(width // 2 + 1, 2.0)
        weight[0] = 1.0
        if width % 2 == 0:
            weight[-1] = 1.0  # the Nyquist column has no conjugate partner either
        return weight

    @property
    def positions(self) -> np.ndarray:
        """Flat indices (int64) into the half plane of the kept frequencies."""
        return np.flatnonzero(self.ring_map.ravel() < self.n_rings)

    @property
    def rings(self) -> np.ndarray:
        """Ring (int64) of each kept position."""
        return self.ring_map.ravel()[self.positions].astype(np.int64)

    @property
    def coefficients(self) -> np.ndarray:
        """``hermitian weight / ring weight total`` (float64) of each kept position.

        A ring mean is ``sum(values[positions] * coefficients)`` per ring.
        """
        columns = self.positions % (self.shape[1] // 2 + 1)
        return self.weights[columns] / self.counts[self.rings]


def shape_cache(function=None, *, weight: int = 1):
    """Cache a per-shape plan ``function(height, width, ...)`` within :data:`PLAN_CACHE_PIXELS`.

    Like :func:`functools.lru_cache`, but bounded by the pixels of the cached
    shapes rather than by their number, so that plans for large images do not
    pile up. Thread-safe; the plans must not be modified by callers.

    Parameters
    ----------
    function : callable
    weight : int
        Pixels each pixel of a cached shape counts for: about the bytes per
        pixel of a plan that takes more than the usual one, so that such
        plans are held for fewer shapes. Use as ``@shape_cache(weight=16)``.
    """
    if function is None:
        return functools.partial(shape_cache, weight=weight)
    cache: OrderedDict[tuple, tuple[int, object]] = OrderedDict()
    lock = threading.Lock()

    @functools.wraps(function)
    def cached(*args):
        with lock:
            if args in cache:
                cache.move_to_end(args)
                return cache[args][1]
        value = function(*args)
        pixels = weight * int(args[0]) * int(args[1])
        with lock:
            cache[args] = (pixels, value)
            cache.move_to_end(args)
            total = sum(size for size, _ in cache.values())
            while len(cache) > 1 and total > PLAN_CACHE_PIXELS:
                total -= cache.pop(next(iter(cache)))[0]  # the least recently used
        return value

    cached.cache_clear = cache.clear  # as lru_cache offers
    return cached


@shape_cache
def ring_index(height: int, width: int, drop_corners: bool = True) -> RingIndex:
    """Ring membership of the half-plane frequencies of an image of this shape.

    Parameters
    ----------
    height, width : int
        Image shape.
    drop_corners : bool
        Drop frequencies beyond the inscribed Nyquist circle (``r > 0.5``).

    Returns
    -------
    RingIndex
        Cached; computed once per shape.

    Examples
    --------
    >>> idx = ring_index(8, 8)
    >>> idx.n_rings, float(idx.radii[-1])
    (5, 0.5)
    """
    if height < 1 or width < 1:
        raise ValueError(f"image shape must be positive, got {(height, width)}")
    half = width // 2 + 1
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    ring_width = 1.0 / min(height, width)
    # r <= sqrt(0.5): ring numbers stay below this bound, the mark of a dropped bin.
    dropped = int(np.rint(np.sqrt(0.5) / ring_width)) + 2
    ring_map = np.empty((height, half), np.uint16 if dropped < 2**16 else np.int32)
    weight = RingIndex((height, width), ring_map, np.empty(0), np.empty(0)).weights
    counts = np.zeros(dropped + 1)
    # Row chunks: the float64 radius of the whole plane is never held at once.
    step = max(1, _CHUNK_BINS // half)
    for start in range(0, height, step):
        radius = np.sqrt(fx**2 + fy[start : start + step] ** 2)
        ring = np.rint(radius / ring_width)
        ring[radius > 0] = np.maximum(ring[radius > 0], 1)  # only DC in ring 0
        if drop_corners:
            ring[radius > 0.5 + 1e-12] = dropped
        ring_map[start : start + step] = ring
        rows = ring_map[start : start + step]
        weights = np.broadcast_to(weight, rows.shape).ravel()
        counts += np.bincount(rows.ravel(), weights, dropped + 1)
    counts = counts[:dropped]
    present = counts > 0
    # Renumber so that no ring is empty (rounding can skip one on tiny images).
    n_rings = int(np.flatnonzero(present)[-1]) + 1
    renumber = np.full(dropped + 1, int(present.sum()), ring_map.dtype)
    renumber[:n_rings][present[:n_rings]] = np.arange(int(present.sum()))
    for start in range(0, height, step):
        rows = ring_map[start : start + step]
        np.take(renumber, rows, out=rows)
    radii = (np.arange(n_rings) * ring_width)[present[:n_rings]]
    counts = counts[present]
    for array in (ring_map, radii, counts):
        array.setflags(write=False)
    return RingIndex((height, width), ring_map, radii, counts)


@lru_cache(maxsize=64)
def resample_matrix(radii: tuple[float, ...], bins: int) -> np.ndarray:
    """Linear-interpolation matrix from ring radii to ``bins`` radii on [0, 0.5].

    ``spectrum @ resample_matrix(radii, bins)`` equals
    ``np.interp(np.linspace(0, 0.5, bins), radii, spectrum)``: outside the ring
    radii the end values are held.
    """
    eye = np.eye(len(radii))
    targets = np.linspace(0.0, 0.5, bins)
    return np.stack([np.interp(targets, radii, row) for row in eye])


# --------------------------------------------------------------------------
# NumPy reference
# --------------------------------------------------------------------------
def power_spectrum(image: np.ndarray) -> np.ndarray:
    """Half-plane power spectrum ``|rfft2(image, norm="ortho")|**2``.

    Parameters
    ----------
    image : ndarray, shape (..., H, W)
        Grayscale image or batch of images.

    Returns
    -------
    ndarray, shape (..., H, W // 2 + 1)
        Power, float32 for float32 input, else float64.

    Examples
    --------
    >>> float(power_spectrum(np.ones((4, 4)))[0, 0])
    16.0
    """
    image = np.asarray(image)
    if image.dtype != np.float32:
        image = image.astype(np.float64)
    spectrum = scipy.fft.rfft2(image, norm="ortho", workers=1)
    power = spectrum.real**2
    power += spectrum.imag**2  # in place: one temporary fewer
    return power


def log_power(power: np.ndarray, eps: float = LOG_EPS) -> np.ndarray:
    """Power in decibels, ``10 * log10(power + eps)``; finite for zero power.

    Computed in place on one new array (the values of ``10.0 * np.log10(power
    + eps)``, without its two temporaries).
    """
    power = np.asarray(power)
    decibels = np.add(power, eps, out=np.empty(power.shape, np.result_type(power, eps)))
    np.log10(decibels, out=decibels)
    decibels *= 10.0
    return decibels


def azimuthal_integral(values: np.ndarray, shape: tuple[int, int], drop_corners: bool = True):
    """Mean of half-plane spectral values over rings of equal radial frequency.

    Parameters
    ----------
    values : ndarray, shape (..., H, W // 2 + 1)
        Half-plane values (power, or log power) of images of shape ``shape``.
    shape : tuple of int
        The image shape ``(H, W)`` (needed because ``W`` is ambiguous from the
        half-plane width).
    drop_corners : bool
        Drop frequencies beyond the inscribed Nyquist circle.

    Returns
    -------
    spectrum : ndarray, shape (..., n_rings)
        Ring means; ring 0 is the DC term alone.
    radii : ndarray, shape (n_rings,)
        Ring radii in cycles per pixel.

    Examples
    --------
    >>> spectrum, radii = azimuthal_integral(power_spectrum(np.ones((8, 8))), (8, 8))
    >>> spectrum.round(6).tolist(), radii.tolist()
    ([64.0, 0.0, 0.0, 0.0, 0.0], [0.0, 0.125, 0.25, 0.375, 0.5])
    """
    height, width = shape
    idx = ring_index(height, width, drop_corners)
    half = width // 2 + 1
    lead = values.shape[:-2]
    flat = values.reshape(-1, height, half)
    # Coefficient of each (column weight, ring); a dropped bin (ring n_rings) gets 0.
    scale = np.zeros((2, idx.n_rings + 1))
    scale[0, :-1], scale[1, :-1] = 1.0 / idx.counts, 2.0 / idx.counts
    single = idx.weights == 1.0  # the columns of weight 1
    sums = np.zeros((len(flat), idx.n_rings + 1))
    step = max(1, _CHUNK_BINS // half)
    for start in range(0, height, step):  # float64 products of one row chunk at a time
        ring = idx.ring_map[start : start + step]
        coefficient = scale[1][ring]
        coefficient[:, single] = scale[0][ring[:, single]]
        for image, total in zip(flat, sums, strict=True):
            # In place and in order: the same sums as one pass over the plane.
            np.add.at(total, ring.ravel(), (coefficient * image[start : start + step]).ravel())
    spectrum = sums[:, :-1].reshape(*lead, idx.n_rings)
    return spectrum.astype(values.dtype, copy=False), idx.radii


def resample_spectrum(spectrum: np.ndarray, radii: np.ndarray, bins: int) -> np.ndarray:
    """Interpolate 1-D spectra at ``radii`` onto ``bins`` radii evenly spaced in [0, 0.5].

    Examples
    --------
    >>> resample_spectrum(np.array([0.0, 1.0]), np.array([0.0, 0.5]), 3).tolist()
    [0.0, 0.5, 1.0]
    """
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    spectrum = np.asarray(spectrum)
    matrix = resample_matrix(tuple(map(float, radii)), bins).astype(spectrum.dtype, copy=False)
    # One product per spectrum (a stack of 1-row matrices), so that a spectrum
    # gets the same bits alone as in a batch: BLAS computes a many-row product
    # with other kernels than a one-row one.
    return np.matmul(spectrum[..., None, :], matrix)[..., 0, :]


def normalize_spectrum(spectrum: np.ndarray, norm: Norm = "first") -> np.ndarray:
    """Normalize 1-D spectra along the last axis.

    Parameters
    ----------
    spectrum : ndarray, shape (..., n)
    norm : {"first", "minmax", "none"}
        ``first`` divides by the magnitude of the first (DC) coefficient, as in
        Durall et al. (2020); ``minmax`` maps each spectrum onto [0, 1];
        ``none`` returns the input. A first coefficient or range below 1e-12
        is not divided by, so constant images give finite values.

    Examples
    --------
    >>> normalize_spectrum(np.array([2.0, 1.0, 4.0]), "first").tolist()
    [1.0, 0.5, 2.0]
    >>> normalize_spectrum(np.array([2.0, 1.0, 4.0]), "minmax").tolist()
    [0.3333333333333333, 0.0, 1.0]
    """
    if norm == "none":
        return spectrum
    if norm == "first":
        scale = np.abs(spectrum[..., :1])
        return spectrum / np.where(scale < _TINY, 1.0, scale)
    if norm == "minmax":
        low = spectrum.min(axis=-1, keepdims=True)
        span = spectrum.max(axis=-1, keepdims=True) - low
        return (spectrum - low) / np.where(span < _TINY, 1.0, span)
    raise ValueError(f"unknown norm {norm!r}; expected one of {NORMS}")


# --------------------------------------------------------------------------
# Batched torch implementation (same conventions; differentiable)
# --------------------------------------------------------------------------
_TORCH_CACHE: dict = {}


def _ring_tensors(shape: tuple[int, int], drop_corners: bool, device, dtype):
    key = (shape, drop_corners, str(device), dtype)
    if key not in _TORCH_CACHE:
        import torch

        idx = ring_index(shape[0], shape[1], drop_corners)
        _TORCH_CACHE[key] = (
            torch.tensor(idx.positions, device=device),
            torch.tensor(idx.rings, device=device),
            torch.tensor(idx.coefficients, device=device, dtype=dtype),
            idx.radii,
        )
    return _TORCH_CACHE[key]


def power_spectrum_torch(image: torch.Tensor) -> torch.Tensor:
    """Torch twin of :func:`power_spectrum` for ``(..., H, W)`` tensors."""
    import torch

    spectrum = torch.fft.rfft2(image, norm="ortho")
    return spectrum.real**2 + spectrum.imag**2


def log_power_torch(power: torch.Tensor, eps: float = LOG_EPS) -> torch.Tensor:
    """Torch twin of :func:`log_power`."""
    import torch

    return 10.0 * torch.log10(power + eps)


def azimuthal_integral_torch(
    values: torch.Tensor, shape: tuple[int, int], drop_corners: bool = True
) -> tuple[torch.Tensor, np.ndarray]:
    """Torch twin of :func:`azimuthal_integral`; reduces with ``index_add_``.

    Differentiable with respect to ``values``; the ring index is built once
    per shape and device and cached.
    """
    import torch

    height, width = shape
    positions, rings, coefficients, radii = _ring_tensors(
        (height, width), drop_corners, values.device, values.dtype
    )
    lead = values.shape[:-2]
    flat = values.reshape(-1, height * (width // 2 + 1))
    kept = flat[:, positions] * coefficients
    out = torch.zeros(flat.shape[0], len(radii), device=values.device, dtype=values.dtype)
    out = out.index_add(1, rings, kept)
    return out.reshape(*lead, len(radii)), radii


def resample_spectrum_torch(spectrum: torch.Tensor, radii: np.ndarray, bins: int) -> torch.Tensor:
    """Torch twin of :func:`resample_spectrum` (a fixed matrix product)."""
    import torch

    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    matrix = resample_matrix(tuple(map(float, radii)), bins)
    return spectrum @ torch.as_tensor(matrix, device=spectrum.device, dtype=spectrum.dtype)


def normalize_spectrum_torch(spectrum: torch.Tensor, norm: Norm = "first") -> torch.Tensor:
    """Torch twin of :func:`normalize_spectrum`."""
    import torch

    if norm == "none":
        return spectrum
    if norm == "first":
        scale = spectrum[..., :1].abs()
        return spectrum / torch.where(scale < _TINY, torch.ones_like(scale), scale)
    if norm == "minmax":
        low = spectrum.amin(dim=-1, keepdim=True)
        span = spectrum.amax(dim=-1, keepdim=True) - low
        return (spectrum - low) / torch.where(span < _TINY, torch.ones_like(span), span)
    raise ValueError(f"unknown norm {norm!r}; expected one of {NORMS}")
