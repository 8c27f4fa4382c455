"""Synthetic carrier datasets for measuring a generator's spatial frequency bias.

Every image is some content times a cosine carrier at a chosen spatial
frequency; the content's randomness (amplitude, phase, which patch) comes from
fixed distributions drawn from the seed *before* the carrier is applied, so
the same seed gives the same content at a low and at a high carrier frequency:
only where the energy sits in the spectrum changes.

* :func:`planar_cosines`: ``a * cos(2*pi*(fx*x + fy*y) + phi)`` with
  ``a ~ U(amplitude)`` and ``phi ~ U(0, 2*pi)``. All the energy is in the two
  DFT bins ``+-(fx, fy)`` when ``fx * W`` and ``fy * H`` are integers.
* :func:`modulated_patches`: a (natural-image) patch, scaled to ``[0, 1]``,
  times ``a * cos(2*pi*(fx*x + fy*y) + phi)``: the patch's spectrum moved to
  ``+-(fx, fy)``.

Images are float32, shape ``(N, 1, size, size)``, in ``[-1, 1]`` (the range a
``tanh`` generator produces).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "smooth_fields",
    "carrier_bin",
    "carrier_vector",
    "modulated_patches",
    "planar_cosines",
]

#: Default amplitude distribution U(low, high) of the carrier.
AMPLITUDE = (0.2, 0.8)


def carrier_vector(frequency: float | Sequence[float], angle: float = 0.0) -> tuple[float, float]:
    """``(fx, fy)`` of a carrier given as a radial frequency and an angle.

    Parameters
    ----------
    frequency : float or (fx, fy)
        Cycles per pixel. A pair is returned unchanged.
    angle : float
        Direction in radians (0 = along x, i.e. vertical stripes).

    Returns
    -------
    (fx, fy) : tuple of float
        Rounded to 12 decimals, so axis-aligned carriers have exact zeros.
    """
    if not np.isscalar(frequency):
        fx, fy = (float(v) for v in frequency)
        return fx, fy
    f = float(frequency)
    return round(f * np.cos(angle), 12), round(f * np.sin(angle), 12)


def carrier_bin(shape: tuple[int, int], fx: float, fy: float) -> tuple[int, int]:
    """Index ``(row, col)`` of the ``fft2`` bin nearest to frequency ``(fx, fy)``.

    Examples
    --------
    >>> carrier_bin((32, 32), 0.25, 0.0)
    (0, 8)
    >>> carrier_bin((32, 32), 0.0, -0.125)
    (28, 0)
    """
    height, width = shape
    return int(round(fy * height)) % height, int(round(fx * width)) % width


def _phase(size: int, fx: float, fy: float) -> np.ndarray:
    y = np.arange(size, dtype=np.float64)[:, None]
    x = np.arange(size, dtype=np.float64)[None, :]
    return 2.0 * np.pi * (fx * x + fy * y)


def planar_cosines(
    n: int,
    size: int,
    frequency: float | Sequence[float],
    *,
    angle: float = 0.0,
    amplitude: tuple[float, float] = AMPLITUDE,
    seed: int = 0,
) -> np.ndarray:
    """Images of one planar cosine with random amplitude and phase.

    Parameters
    ----------
    n : int
        Number of images.
    size : int
        Side in pixels.
    frequency : float or (fx, fy)
        Carrier frequency in cycles per pixel (radial, with ``angle``).
    angle : float
        Carrier direction in radians.
    amplitude : (low, high)
        Amplitudes are drawn from ``U(low, high)``; keep ``high <= 1``.
    seed : int
        The amplitudes and phases depend only on ``seed`` and ``n``, never on
        the frequency.

    Returns
    -------
    ndarray, float32, shape (n, 1, size, size)

    Examples
    --------
    >>> x = planar_cosines(4, 16, 0.25, seed=1)
    >>> x.shape, bool(np.abs(x).max() <= 1)
    ((4, 1, 16, 16), True)
    """
    rng = np.random.default_rng(seed)
    amplitudes = rng.uniform(amplitude[0], amplitude[1], size=n)
    phases = rng.uniform(0.0, 2.0 * np.pi, size=n)
    fx, fy = carrier_vector(frequency, angle)
    carrier_phase = _phase(size, fx, fy)
    images = amplitudes[:, None, None] * np.cos(carrier_phase[None] + phases[:, None, None])
    return images[:, None].astype(np.float32)


def modulated_patches(
    sources: Sequence[np.ndarray],
    n: int,
    size: int,
    frequency: float | Sequence[float],
    *,
    angle: float = 0.0,
    amplitude: tuple[float, float] = AMPLITUDE,
    seed: int = 0,
) -> np.ndarray:
    """Random patches of ``sources`` modulated by a cosine carrier.

    Each patch is cut at a random position from a random source image,
    scaled to ``[0, 1]``, then multiplied by
    ``a * cos(2*pi*(fx*x + fy*y) + phi)``, so its spectrum sits around
    ``+-(fx, fy)`` instead of around zero.

    Parameters
    ----------
    sources : sequence of ndarray (H, W)
        Grayscale images (any range), each at least ``size`` on both sides.
    n, size, frequency, angle, amplitude, seed
        As in :func:`planar_cosines`; patches, amplitudes and phases depend
        only on ``seed``, ``n`` and the sources, never on the frequency.

    Returns
    -------
    ndarray, float32, shape (n, 1, size, size), in [-1, 1]
    """
    if not sources:
        raise ValueError("modulated_patches needs at least one source image")
    for image in sources:
        if image.ndim != 2 or min(image.shape) < size:
            raise ValueError(f"source images must be 2-D and at least {size} px, got {image.shape}")
    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(sources), size=n)
    corners = rng.random((n, 2))
    amplitudes = rng.uniform(amplitude[0], amplitude[1], size=n)
    phases = rng.uniform(0.0, 2.0 * np.pi, size=n)

    patches = np.empty((n, size, size), dtype=np.float64)
    for i in range(n):
        image = sources[which[i]]
        top = int(corners[i, 0] * (image.shape[0] - size + 1))
        left = int(corners[i, 1] * (image.shape[1] - size + 1))
        patch = image[top : top + size, left : left + size].astype(np.float64)
        # Non-negative content (like luminance) keeps energy at the carrier bin itself.
        patch = patch - patch.min()
        peak = patch.max()
        patches[i] = patch / peak if peak > 0 else np.ones_like(patch)

    fx, fy = carrier_vector(frequency, angle)
    carrier = np.cos(_phase(size, fx, fy)[None] + phases[:, None, None])
    images = amplitudes[:, None, None] * patches * carrier
    return images[:, None].astype(np.float32)


def smooth_fields(n: int, size: int, sigma: float = 2.0, seed: int = 0) -> list[np.ndarray]:
    """Random smooth images: white noise low-passed by a Gaussian of ``sigma`` px.

    A stand-in for natural-image content when no photos are at hand (their
    spectrum falls off with frequency, as natural images' does): pass them
    to :func:`modulated_patches` as ``sources``.

    Parameters
    ----------
    n : int
        Number of images.
    size : int
        Side in pixels.
    sigma : float
        Gaussian width; the content's bandwidth is about ``1 / (2 pi sigma)``.
    seed : int

    Returns
    -------
    list of ndarray (size, size), float64
    """
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(n, size, size))
    return [gaussian_filter(image, sigma, mode="wrap") for image in noise]
