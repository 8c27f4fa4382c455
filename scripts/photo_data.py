"""Shared by make_model.py and repro_detect.py: real crops, fakes, source groups.

Not part of the package: experiment plumbing only.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
from PIL import Image

from specdetect.synth import FAKE_METHODS, make_fake

# Near-duplicates (stereo, flow, homography pairs; one photo in several
# encodings) from /work/shared/data/photos/SOURCES.md: a group never straddles
# a train/test split.
_PAIRS = [
    ("aero1", "aero3"),
    ("aloeL", "aloeR"),
    ("basketball1", "basketball2"),
    ("graf1", "graf3"),
    ("leuvenA", "leuvenB"),
    ("left", "right"),
    ("rubberwhale1", "rubberwhale2"),
    ("apple", "orange"),
]


def source_group(name: str) -> str:
    """Group key of a photo (or of a crop named ``<photo>__...``)."""
    stem = Path(name).name
    if stem.startswith("libjxl__flower"):
        return "libjxl__flower"
    base = stem.split("__")[1] if "__" in stem else stem
    base = re.sub(r"\.(png|jpe?g)$", "", base.split(".")[0])
    for pair in _PAIRS:
        if base in pair:
            return "pair:" + "/".join(pair)
    return base


def load_rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def random_crops(image: np.ndarray, rng: np.random.Generator, n: int, size: int) -> list:
    height, width = image.shape[:2]
    if height < size or width < size:
        return []
    out = []
    for _ in range(n):
        y = int(rng.integers(0, height - size + 1))
        x = int(rng.integers(0, width - size + 1))
        out.append(image[y : y + size, x : x + size])
    return out


def downscaled_crops(
    image: np.ndarray, rng: np.random.Generator, n: int, size: int, factors=(2.0, 3.0)
) -> list:
    """Crops of ``size * f`` pixels (``f`` uniform in ``factors``) scaled to ``size``.

    PIL's Lanczos filter anti-aliases, so down-scaling by 2 or more removes
    what the photo's own history (up-scaling, smoothing, demosaicking)
    left at high frequencies: the look of most real photographs on the web,
    which are camera pictures scaled down. Empty when the photo is too small.
    """
    height, width = image.shape[:2]
    top = min(factors[1], height / size, width / size)
    if top < factors[0]:
        return []
    out = []
    for _ in range(n):
        side = int(round(size * rng.uniform(factors[0], top)))
        y = int(rng.integers(0, height - side + 1))
        x = int(rng.integers(0, width - side + 1))
        region = Image.fromarray(np.ascontiguousarray(image[y : y + side, x : x + side]))
        out.append(np.asarray(region.resize((size, size), Image.LANCZOS)))
    return out


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def luma(image: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(image).convert("F"), dtype=np.float32)


def fake_of(image: np.ndarray, rng: np.random.Generator, index: int) -> np.ndarray:
    """A fake with the up-sampling unit cycling through FAKE_METHODS."""
    return make_fake(image, rng, FAKE_METHODS[index % len(FAKE_METHODS)])


def _distinct_photos(photos: Path):
    """(path, grayscale image) of each photo, one file of the six ``libjxl__flower*`` encodings."""
    for path in sorted(photos.iterdir()):
        if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            continue
        if path.name.startswith("libjxl__flower.png."):
            continue  # same photo as libjxl__flower.png (the lossless master is kept)
        yield path, Image.open(path).convert("L")


def derive_real_crops(photos: Path, out: Path, size: int = 256) -> list[dict]:
    """Centre crops of every photo as grayscale PNG (what ``data/real`` holds).

    Only one file of the six ``libjxl__flower*`` encodings is kept (the
    lossless master). Returns one record per crop for SOURCES.md.
    """
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for path, image in _distinct_photos(photos):
        width, height = image.size
        side = min(size, width, height)
        left, top = (width - side) // 2, (height - side) // 2
        crop = image.crop((left, top, left + side, top + side))
        name = f"{path.stem.replace('.', '_')}__crop{side}.png"
        crop.save(out / name, optimize=True)
        records.append(
            {
                "file": name,
                "source": path.name,
                "box": (left, top, side),
                "group": source_group(path.name),
            }
        )
    return records


def derive_downscaled_crops(photos: Path, out: Path, size: int = 256) -> list[dict]:
    """Whole-photo centre squares scaled down by at least 2, as grayscale PNG.

    The largest centred square of each photo is scaled (Lanczos, which
    anti-aliases) to ``min(size, side // 2)`` pixels; photos whose result
    would be under 128 px are skipped. These are the "real, scaled down"
    half of the real training pool of ``make model``. Returns one record per
    file for SOURCES.md.
    """
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for path, image in _distinct_photos(photos):
        width, height = image.size
        side = min(width, height)
        target = min(size, side // 2)
        if target < 128:
            continue
        left, top = (width - side) // 2, (height - side) // 2
        square = image.crop((left, top, left + side, top + side))
        name = f"{path.stem.replace('.', '_')}__down{target}.png"
        square.resize((target, target), Image.LANCZOS).save(out / name, optimize=True)
        records.append(
            {
                "file": name,
                "source": path.name,
                "box": (left, top, side),
                "group": source_group(path.name),
                "factor": side / target,
            }
        )
    return records
