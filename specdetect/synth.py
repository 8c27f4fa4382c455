"""Genuine "fake" images: real images passed through generator up-sampling units.

A GAN generator ends with up-sampling layers; Durall et al. (2020) show that
these leave a spectral fingerprint (replicated spectra, periodic peaks at
1/4 and 1/2 cycles per pixel, a wrong high-frequency tail). The functions
here reproduce exactly those units on real images, so that tests, the
shipped model and the experiments have fakes whose signal is real, without a
trained generator:

* :func:`bed_of_nails_upsample`: zero insertion x2 followed by a convolution,
  which is what a stride-2 transposed convolution computes;
* :func:`interpolate_upsample`: nearest or bilinear x2 followed by a
  convolution (the "resize-convolution" alternative);
* :func:`make_fake`: down-scale by 2 with anti-aliasing, then up-sample back
  with one of the units and a random learned-like kernel.
"""

from __future__ import annotations

import numpy as np
import scipy.ndimage
from PIL import Image

__all__ = [
    "FAKE_METHODS",
    "natural_noise",
    "bed_of_nails_upsample",
    "interpolate_upsample",
    "make_fake",
    "random_kernel",
]

FAKE_METHODS = ("transconv", "nearest", "bilinear")


def natural_noise(rng: np.random.Generator, size: int, exponent: float = 1.0) -> np.ndarray:
    """A random texture with natural-image statistics: amplitude ~ 1 / f**exponent.

    Random phases under a ``1/f`` amplitude spectrum (power ``1/f**2`` for the
    default exponent, like photographs), standardized to zero mean and unit
    standard deviation. Draws ``rng.random`` once.

    Examples
    --------
    >>> x = natural_noise(np.random.default_rng(0), 32)
    >>> x.shape, round(float(x.std()), 6)
    ((32, 32), 1.0)
    """
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    amplitude = 1.0 / np.maximum(np.hypot(fx, fy), 1.0 / size) ** exponent
    phase = np.exp(2j * np.pi * rng.random(amplitude.shape))
    image = np.fft.irfft2(amplitude * phase, s=(size, size))
    return (image - image.mean()) / (image.std() + 1e-12)


def random_kernel(rng: np.random.Generator, size: int = 3) -> np.ndarray:
    """A random smooth, positive-sum kernel like one a generator learns.

    A separable tent (the bilinear kernel) of the given size, multiplied by
    smooth random gains and with small random signed taps added, normalized
    so its entries sum to 1.

    Parameters
    ----------
    rng : numpy.random.Generator
    size : int
        Kernel side (>= 2).

    Returns
    -------
    ndarray, shape (size, size), float64

    Examples
    --------
    >>> k = random_kernel(np.random.default_rng(0), 4)
    >>> k.shape, round(float(k.sum()), 6)
    ((4, 4), 1.0)
    """
    if size < 2:
        raise ValueError(f"kernel size must be at least 2, got {size}")
    centre = (size - 1) / 2
    tent = 1.0 - np.abs(np.arange(size) - centre) / (centre + 1.0)
    base = np.outer(tent, tent)
    gains = 1.0 + 0.5 * rng.standard_normal((size, size))
    taps = 0.15 * rng.standard_normal((size, size)) * base.max()
    kernel = base * np.abs(gains) + taps
    total = kernel.sum()
    if abs(total) < 1e-6:  # practically impossible; keep the division safe
        kernel, total = base, base.sum()
    return kernel / total


def _as_float(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"expected an image (H, W) or (H, W, C), got shape {image.shape}")
    return image.astype(np.float64)


def _convolve(image: np.ndarray, kernel: np.ndarray, mode: str = "reflect") -> np.ndarray:
    """Convolve every channel of ``(H, W)`` or ``(H, W, C)`` with a 2-D kernel."""
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2:
        raise ValueError(f"kernel must be 2-D, got shape {kernel.shape}")
    if image.ndim == 2:
        return scipy.ndimage.convolve(image, kernel, mode=mode)
    channels = [image[..., c] for c in range(image.shape[2])]
    return np.stack([scipy.ndimage.convolve(c, kernel, mode=mode) for c in channels], axis=-1)


def bed_of_nails_upsample(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Up-sample x2 by zero insertion, then convolve: a transposed convolution.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, C)
    kernel : ndarray, shape (k, k)
        Rescaled so that its entries sum to 4, the gain that keeps the mean
        brightness after three of every four pixels were set to zero.

    Returns
    -------
    ndarray, shape (2H, 2W[, C]), float64 (not clipped)

    Examples
    --------
    >>> out = bed_of_nails_upsample(np.full((2, 2), 10.0), np.ones((2, 2)))
    >>> out.shape, float(out.mean())
    ((4, 4), 10.0)
    """
    image = _as_float(image)
    kernel = np.asarray(kernel, dtype=np.float64)
    total = kernel.sum()
    if abs(total) < 1e-12:
        raise ValueError("kernel entries sum to zero")
    shape = (image.shape[0] * 2, image.shape[1] * 2) + image.shape[2:]
    nails = np.zeros(shape)
    nails[::2, ::2] = image
    # Periodic borders keep the zero grid intact up to the edges (a reflected
    # border would shift it by one pixel there).
    return _convolve(nails, kernel * (4.0 / total), mode="wrap")


def interpolate_upsample(
    image: np.ndarray, mode: str = "nearest", kernel: np.ndarray | None = None
) -> np.ndarray:
    """Up-sample x2 by nearest or bilinear interpolation, then convolve.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, C)
    mode : {"nearest", "bilinear"}
    kernel : ndarray, shape (k, k), optional
        Normalized to sum 1; ``None`` skips the convolution.

    Returns
    -------
    ndarray, shape (2H, 2W[, C]), float64 (not clipped)

    Examples
    --------
    >>> interpolate_upsample(np.array([[0.0, 2.0]]), "nearest").tolist()
    [[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 2.0, 2.0]]
    """
    image = _as_float(image)
    if mode == "nearest":
        up = image.repeat(2, axis=0).repeat(2, axis=1)
    elif mode == "bilinear":
        # Half-pixel aligned, like torch's interpolate(align_corners=False).
        zoom = (2, 2) + (1,) * (image.ndim - 2)
        up = scipy.ndimage.zoom(image, zoom, order=1, mode="nearest", grid_mode=True)
    else:
        raise ValueError(f"mode must be nearest or bilinear, got {mode!r}")
    if kernel is None:
        return up
    kernel = np.asarray(kernel, dtype=np.float64)
    return _convolve(up, kernel / kernel.sum())


def _downscale(image: np.ndarray) -> np.ndarray:
    """Anti-aliased down-scaling by 2 (PIL's Lanczos filter), channel by channel."""
    height, width = image.shape[:2]
    size = (max(1, (width + 1) // 2), max(1, (height + 1) // 2))
    channels = [image] if image.ndim == 2 else [image[..., c] for c in range(image.shape[2])]
    small = [
        np.asarray(Image.fromarray(c.astype(np.float32), mode="F").resize(size, Image.LANCZOS))
        for c in channels
    ]
    return small[0].astype(np.float64) if image.ndim == 2 else np.stack(small, -1).astype(float)


def make_fake(
    image: np.ndarray,
    rng: np.random.Generator,
    method: str = "transconv",
    kernel_size: int | None = None,
) -> np.ndarray:
    """Turn a real image into a generated-looking one of the same size.

    The image is down-scaled by 2 with anti-aliasing, then up-sampled back
    with the chosen unit and a kernel from :func:`random_kernel`, cropped to
    the original size, rounded and clipped to uint8.

    Parameters
    ----------
    image : ndarray, shape (H, W) or (H, W, 3)
        uint8, or float in [0, 255].
    rng : numpy.random.Generator
        Source of the random kernel (and of its size when not given).
    method : {"transconv", "nearest", "bilinear"}
        ``transconv`` is bed-of-nails + convolution; the others are
        interpolation + convolution.
    kernel_size : int, optional
        Default: 3 or 4 (transconv) / 3 (interpolation), drawn from ``rng``.

    Returns
    -------
    ndarray, same shape as ``image``, uint8

    Examples
    --------
    >>> img = np.random.default_rng(0).integers(0, 256, (32, 24), dtype=np.uint8)
    >>> fake = make_fake(img, np.random.default_rng(1))
    >>> fake.shape, fake.dtype
    ((32, 24), dtype('uint8'))
    """
    if method not in FAKE_METHODS:
        raise ValueError(f"method must be one of {FAKE_METHODS}, got {method!r}")
    original = _as_float(image)
    height, width = original.shape[:2]
    small = _downscale(original)
    if kernel_size is None:
        kernel_size = int(rng.choice([3, 4])) if method == "transconv" else 3
    kernel = random_kernel(rng, kernel_size)
    if method == "transconv":
        up = bed_of_nails_upsample(small, kernel)
    else:
        up = interpolate_upsample(small, method, kernel)
    up = up[:height, :width]
    return np.clip(np.rint(up), 0, 255).astype(np.uint8)
