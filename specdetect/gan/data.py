"""Training images for the GAN: folders of any sizes -> in-memory tensors in [-1, 1]."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from specdetect.media import IMAGE_EXTENSIONS, MediaError, iter_paths, open_image

__all__ = ["ImageSet", "load_folder", "random_crops", "to_tensor"]


@dataclass
class ImageSet:
    """Images ``(N, C, S, S)`` float32 in [-1, 1], their source paths and read errors."""

    images: torch.Tensor
    paths: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _rgb_or_gray(image: Image.Image, channels: int) -> Image.Image:
    if channels == 1:
        return image.convert("L")
    return image.convert("RGB")


def to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL image (L or RGB) -> ``(C, H, W)`` float32 in [-1, 1]."""
    array = np.asarray(image, dtype=np.float32)
    if array.ndim == 2:
        array = array[None]
    else:
        array = array.transpose(2, 0, 1)
    return torch.from_numpy(array / 127.5 - 1.0)


def centre_crop_resize(image: Image.Image, size: int) -> Image.Image:
    """Largest centred square, resized to ``size`` (Lanczos, antialiased)."""
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    square = image.crop((left, top, left + side, top + side))
    return square.resize((size, size), Image.Resampling.LANCZOS)


def load_folder(
    inputs: str | os.PathLike | Iterable[str | os.PathLike],
    size: int,
    channels: int = 3,
    max_images: int | None = None,
    on_error: Callable[[str], None] | None = None,
) -> ImageSet:
    """Every image under ``inputs``, centre-cropped and resized to ``size``.

    Parameters
    ----------
    inputs : path or iterable of paths
        Folders (recursive), files or globs.
    size : int
        Output side length.
    channels : {1, 3}
    max_images : int, optional
        Stop after this many readable images.
    on_error : callable, optional
        Called with a one-line message for each unreadable file; the file is
        skipped and loading goes on.
    """
    if isinstance(inputs, str | os.PathLike):
        inputs = [inputs]
    tensors, paths, errors = [], [], []
    for path in iter_paths(inputs, IMAGE_EXTENSIONS):
        if max_images is not None and len(tensors) >= max_images:
            break
        try:
            image = _rgb_or_gray(open_image(path), channels)
        except MediaError as exc:
            errors.append(str(exc))
            if on_error is not None:
                on_error(str(exc))
            continue
        tensors.append(to_tensor(centre_crop_resize(image, size)))
        paths.append(path)
    images = torch.stack(tensors) if tensors else torch.empty(0, channels, size, size)
    return ImageSet(images, paths, errors)


def random_crops(
    paths: Iterable[str | os.PathLike],
    size: int,
    n: int,
    channels: int = 3,
    seed: int = 0,
    max_side: int = 256,
    on_error: Callable[[str], None] | None = None,
) -> ImageSet:
    """``n`` random ``size`` x ``size`` crops spread evenly over the images.

    Each image is first scaled down so that its shorter side is at most
    ``max_side`` (so a 64-pixel crop shows a scene, not a few pixels of it),
    then crops are cut at random positions without resampling them.
    """
    rng = np.random.default_rng(seed)
    sources = []
    for path in paths:
        try:
            image = _rgb_or_gray(open_image(path), channels)
        except MediaError as exc:
            if on_error is not None:
                on_error(str(exc))
            continue
        scale = max_side / min(image.size)
        if scale < 1:
            new = (max(size, round(image.width * scale)), max(size, round(image.height * scale)))
            image = image.resize(new, Image.Resampling.LANCZOS)
        if min(image.size) < size:
            image = centre_crop_resize(image, size)
        sources.append((str(path), np.asarray(image)))
    if not sources:
        raise ValueError("no readable images to crop from")
    crops, owners = [], []
    for index in range(n):
        path, array = sources[index % len(sources)]
        top = rng.integers(0, array.shape[0] - size + 1)
        left = rng.integers(0, array.shape[1] - size + 1)
        patch = array[top : top + size, left : left + size]
        crops.append(to_tensor(Image.fromarray(patch)))
        owners.append(path)
    return ImageSet(torch.stack(crops), owners)
