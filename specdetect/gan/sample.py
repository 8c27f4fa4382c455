"""Write generated images as PNG files (``specdetect gan-sample``)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from specdetect.atomic import atomic_write
from specdetect.gan.metrics import sample_images

__all__ = ["write_samples"]


def write_samples(
    generator: torch.nn.Module,
    n: int,
    out_dir: str | os.PathLike,
    seed: int = 0,
    batch_size: int = 250,
) -> list[Path]:
    """Generate ``n`` images with latents from ``seed`` and save them as PNGs.

    Files are ``sample_00000.png``, ... (each written atomically); 1-channel
    generators give grayscale PNGs.
    """
    from PIL import Image

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = next(generator.parameters()).device
    digits = max(5, len(str(n - 1)))
    paths: list[Path] = []
    rng = torch.Generator().manual_seed(seed)
    for start in range(0, n, batch_size):
        count = min(batch_size, n - start)
        # One seed stream for all batches: image i depends on (seed, i) only.
        images = sample_images(
            generator, count, int(torch.randint(2**62, (1,), generator=rng)), device
        )
        array = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        array = array.permute(0, 2, 3, 1).numpy()
        for offset, pixels in enumerate(array):
            path = out_dir / f"sample_{start + offset:0{digits}d}.png"
            picture = Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels)
            with atomic_write(path, "wb") as handle:
                picture.save(handle, format="PNG")
            paths.append(path)
    return paths
