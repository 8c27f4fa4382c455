"""Small generated images and a tiny trained model for the scale and fault tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from badcorpus import encode, textured
from PIL import Image

from specdetect.detect import Detector, save_model
from specdetect.features import FeatureConfig, features_numpy
from specdetect.synth import make_fake


def image_pair(i: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """A real-looking texture and its up-sampled fake, both uint8 RGB."""
    real = textured(size, seed=i)
    return real, make_fake(real, np.random.default_rng(10_000 + i), method="transconv")


def write_images(folder: Path, n: int, size: int = 32, seed: int = 0) -> list[str]:
    """``n`` PNG/JPEG files, half of them fakes, named in sorted order."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        real, fake = image_pair(seed + i, size)
        image = fake if i % 2 else real
        fmt, ext = ("JPEG", "jpg") if i % 5 == 4 else ("PNG", "png")
        path = folder / f"img-{i:05d}.{ext}"
        path.write_bytes(encode(image, fmt, **({"quality": 95} if fmt == "JPEG" else {})))
        paths.append(str(path))
    return paths


def train_model(path: Path, n: int = 24, size: int = 32) -> str:
    """A logistic-regression detector trained on generated pairs, saved to ``path``."""
    config = FeatureConfig()
    rows, labels = [], []
    for i in range(n):
        real, fake = image_pair(500 + i, size)
        for image, label in ((real, 0), (fake, 1)):
            gray = np.asarray(Image.fromarray(image).convert("F"), dtype=np.float32)
            rows.append(features_numpy(gray, config))
            labels.append(label)
    detector = Detector(method="logreg", feature_config=config, seed=0, cv=3)
    detector.fit(np.stack(rows), np.array(labels))
    save_model(detector, path)
    return str(path)


def shared_model(tmp_path_factory) -> str:
    """One trained model per test session (training takes seconds), shared by modules."""
    path = tmp_path_factory.getbasetemp() / "scale-model.skops"
    if not path.exists():
        train_model(path)
    return str(path)
