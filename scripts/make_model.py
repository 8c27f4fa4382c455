"""Rebuild the shipped default model, models/default.skops, from files in the repo.

Real: random crops of 64-256 px of the photo crops in data/real, half from
the native-resolution crops (``*__crop*.png``) and half from the photos
scaled down by 2 or more (``*__down*.png``), clean and re-encoded as JPEG
q90 / q75. Fake: other crops of the same files passed
through specdetect.synth.make_fake (transposed convolution, nearest and
bilinear up-sampling with random learned-like kernels), clean and JPEG
re-encoded the same way. Features: specdetect.features.MODEL_DEFAULT; method:
calibrated RBF SVM. Everything is seeded, so the model is reproducible.

Before the final fit on everything, a held-apart check trains on half of the
source-photo groups and tests on the other half, per image size and JPEG
quality; those numbers go in models/README.md.

Usage: python scripts/make_model.py [--out models/default.skops]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from photo_data import jpeg, random_crops, source_group  # noqa: E402

from specdetect.detect import Detector, save_model  # noqa: E402
from specdetect.features import MODEL_DEFAULT, features_numpy  # noqa: E402
from specdetect.synth import FAKE_METHODS, make_fake  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SIZES = (64, 96, 128, 192, 256)
QUALITIES = (None, 90, 75)


def jpeg_gray(image: np.ndarray, quality: int | None) -> np.ndarray:
    if quality is None:
        return image
    return np.asarray(
        Image.fromarray(jpeg(np.repeat(image[..., None], 3, -1), quality)).convert("L")
    )


VARIANTS = {"native": "__crop", "down": "__down"}


def build(real_dir: Path, per_size: int, seed: int):
    """Feature rows with labels, source groups, sizes, JPEG qualities and variants."""
    rng = np.random.default_rng(seed)
    rows, labels, groups, sizes, qualities, variants = [], [], [], [], [], []
    index = 0
    for path in sorted(real_dir.glob("*.png")):
        variant = next((v for v, tag in VARIANTS.items() if tag in path.name), None)
        if variant is None:
            continue
        photo = np.asarray(Image.open(path).convert("L"))
        for size in SIZES:
            for crop in random_crops(photo, rng, 2 * per_size, size):
                is_fake = index % 2
                image = crop
                if is_fake:
                    image = make_fake(crop, rng, FAKE_METHODS[(index // 2) % len(FAKE_METHODS)])
                quality = QUALITIES[(index // 2) % len(QUALITIES)]
                image = jpeg_gray(image, quality)
                rows.append(features_numpy(image.astype(np.float32), MODEL_DEFAULT))
                labels.append(is_fake)
                groups.append(source_group(path.name))
                sizes.append(size)
                qualities.append(quality or 0)
                variants.append(variant)
                index += 1
    return (
        np.stack(rows),
        np.array(labels),
        np.array(groups),
        np.array(sizes),
        np.array(qualities),
        np.array(variants),
    )


def held_apart_check(X, y, groups, sizes, qualities, variants, seed: int) -> dict:
    """Train on half the source groups, test on the rest; accuracy per slice."""
    rng = np.random.default_rng(seed)
    names = np.unique(groups)
    rng.shuffle(names)
    test = np.isin(groups, names[: len(names) // 2])
    model = Detector("svm", MODEL_DEFAULT, seed=seed, cv=0).fit(X[~test], y[~test])
    correct = model.predict(X[test]) == y[test]
    report = {"overall": float(correct.mean()), "n_test": int(test.sum())}
    for size in SIZES:
        report[f"{size}px"] = float(correct[sizes[test] == size].mean())
    for quality in QUALITIES:
        key = f"jpeg q{quality}" if quality else "clean"
        report[key] = float(correct[qualities[test] == (quality or 0)].mean())
    for variant in VARIANTS:
        is_real = (y[test] == 0) & (variants[test] == variant)
        if is_real.any():
            report[f"real {variant}"] = float(correct[is_real].mean())
    report["real"] = float(correct[y[test] == 0].mean())
    report["fake"] = float(correct[y[test] == 1].mean())
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=Path, default=REPO / "data" / "real")
    parser.add_argument("--out", type=Path, default=REPO / "models" / "default.skops")
    parser.add_argument(
        "--per-size", type=int, default=4, help="Real (and fake) crops per file and size."
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    X, y, groups, sizes, qualities, variants = build(args.real, args.per_size, args.seed)
    print(f"{int((y == 0).sum())} real and {int((y == 1).sum())} fake crops", file=sys.stderr)
    check = held_apart_check(X, y, groups, sizes, qualities, variants, args.seed)
    detector = Detector("svm", MODEL_DEFAULT, seed=args.seed, cv=5).fit(X, y)
    detector.summary_["training_data"] = (
        "data/real crops 64-256 px, native and scaled down >= 2x (clean, JPEG q90, q75) "
        "vs synth.make_fake "
        "(transconv, nearest, bilinear) of other crops, same JPEG mix"
    )
    detector.summary_["held_apart_by_source_group"] = check
    save_model(detector, args.out)
    print(
        json.dumps(
            {"cv": detector.summary_["cv"], "held_apart": check, "threshold": detector.threshold_},
            indent=2,
        )
    )
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
