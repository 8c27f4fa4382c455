"""Draw docs/upsampling.png: the up-sampling argument of the README in one picture.

Mean azimuthal spectra (±1 std) of real photo crops and of the same crops
halved and up-sampled again by a transposed convolution (bed of nails +
convolution) and by nearest-neighbour interpolation + convolution.

Usage: ``python scripts/readme_figure.py [--photos DIR] [-o docs/upsampling.png]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from specdetect.features import FeatureConfig, features_numpy  # noqa: E402
from specdetect.media import iter_paths, open_image  # noqa: E402
from specdetect.synth import make_fake  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def crops(folder: Path, size: int, per_image: int, rng: np.random.Generator):
    for path in iter_paths([folder]):
        image = np.asarray(open_image(path).convert("RGB"))
        height, width = image.shape[:2]
        if min(height, width) < size:
            continue
        for _ in range(per_image):
            top = rng.integers(0, height - size + 1)
            left = rng.integers(0, width - size + 1)
            yield image[top : top + size, left : left + size]


def luma(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=ROOT / "data" / "real")
    parser.add_argument("-o", "--output", type=Path, default=ROOT / "docs" / "upsampling.png")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    config = FeatureConfig(bins=96, norm="none")
    real = list(crops(args.photos, 128, 4, rng))
    groups = {
        "real photos": [luma(c) for c in real],
        "transposed conv (bed of nails + conv)": [
            luma(make_fake(c, rng, "transconv")) for c in real
        ],
        "nearest + conv": [luma(make_fake(c, rng, "nearest")) for c in real],
    }
    radii = np.linspace(0, 0.5, config.bins)
    figure, axis = plt.subplots(figsize=(7, 4), dpi=120)
    for (label, images), colour in zip(
        groups.items(), ["black", "tab:red", "tab:blue"], strict=True
    ):
        spectra = features_numpy(np.stack(images), config)
        mean, std = spectra.mean(0), spectra.std(0)
        axis.plot(radii, mean, color=colour, label=f"{label} (n={len(images)})")
        axis.fill_between(radii, mean - std, mean + std, color=colour, alpha=0.15)
    axis.set_xlabel("spatial frequency (cycles per pixel)")
    axis.set_ylabel("mean power (dB)")
    axis.set_title("Azimuthal integral of the power spectrum, 128x128 crops")
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
