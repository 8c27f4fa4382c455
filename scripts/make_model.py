"""Rebuild the shipped default model, models/default.skops, from files in the repo.

Real: random crops of 64-256 px of the photo crops in data/real, half from
the native-resolution crops (``*__crop*.png``) and half from the photos
scaled down by 2 or more (``*__down*.png``), clean and re-encoded as JPEG
q90 / q75. Fake: other crops of the same files passed
through specdetect.synth.make_fake (transposed convolution, nearest and
bilinear up-sampling with random learned-like kernels), clean and JPEG
re-encoded the same way, plus the GAN samples in data/fake_gan/<variant>/
(``train_*.png``; written by scripts/make_gan_fakes.py from gan-train runs
with several objectives and up-sampling units), clean and JPEG re-encoded
in the same cycle. The outside generators in data/outside/<family>/
(super-resolution networks and a CycleGAN applied to real photos, files
``<sourcegroup>__<idx>.png``; see data/outside/SOURCES.md) are **scored, not
trained on** by default: training on them (``--train-outside``, each image
whole and as a random 64 px crop, same JPEG cycle) costs far more real
accuracy than it buys (models/README.md). ``data/outside/bicubic*`` (plain
bicubic up-scaling, not a generator) is never trained on, only scored.
A quarter of the data/real crops become synth fakes, three quarters stay
real, so that the caricature-like synth fakes are not the bulk of the fakes.
Features: specdetect.features.MODEL_DEFAULT; method: calibrated RBF SVM.
Everything is seeded, so the model is reproducible.

Before the final fit on everything, a held-apart check trains on half of the
source-photo groups and tests on the other half, per image size and JPEG
quality; GAN samples from another latent seed (``test_*.png``) are held
apart too, per variant, and each variant is also left out of training
altogether once (does the model generalize to an unseen generator?); the
outside families are split by source group like the real crops and also left
out once each. The ``test_*.png`` files are never used to fit the shipped
model. Those numbers go in models/README.md; the full
leave-one-generator-family-out protocol is ``make repro-generalize``.

Usage: python scripts/make_model.py [--out models/default.skops]
"""

from __future__ import annotations

import argparse
import json
import sys
from fnmatch import fnmatch
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
METHOD = "svm"
#: Share of data/real crops turned into synth fakes (the rest stay real).
SYNTH_EVERY = 4
CONTROL_PREFIX = "bicubic"


def jpeg_gray(image: np.ndarray, quality: int | None) -> np.ndarray:
    if quality is None:
        return image
    return np.asarray(
        Image.fromarray(jpeg(np.repeat(image[..., None], 3, -1), quality)).convert("L")
    )


VARIANTS = {"native": "__crop", "down": "__down"}


def load_gan(gan_dir: Path, split: str):
    """Feature rows, GAN variant names and JPEG qualities of ``<variant>/<split>_*.png``.

    ``train`` images cycle through QUALITIES like the other crops; ``test``
    images stay clean (what ``gan-sample`` writes).
    """
    rows, names, qualities = [], [], []
    for folder in sorted(p for p in gan_dir.glob("*") if p.is_dir()):
        for index, path in enumerate(sorted(folder.glob(f"{split}_*.png"))):
            quality = QUALITIES[index % len(QUALITIES)] if split == "train" else None
            image = jpeg_gray(np.asarray(Image.open(path).convert("L")), quality)
            rows.append(features_numpy(image.astype(np.float32), MODEL_DEFAULT))
            names.append(folder.name)
            qualities.append(quality or 0)
    if not rows:
        return np.empty((0, MODEL_DEFAULT.n_features), np.float32), np.array([]), np.array([])
    return np.stack(rows), np.array(names), np.array(qualities)


def load_outside(outside_dir: Path, seed: int):
    """Feature rows, family names, source groups and control flags of data/outside.

    Each image whole and as one random 64 px crop, cycling through QUALITIES.
    Families named ``bicubic*`` are controls (never trained on).
    """
    rng = np.random.default_rng([seed, 7])
    rows, names, groups = [], [], []
    folders = sorted(p for p in outside_dir.glob("*") if p.is_dir()) if outside_dir.is_dir() else []
    index = 0
    for folder in folders:
        for path in sorted(folder.glob("*.png")):
            image = np.asarray(Image.open(path).convert("L"))
            group = source_group(path.stem.rsplit("__", 1)[0])
            for version in (image, *random_crops(image, rng, 1, 64)):
                quality = QUALITIES[index % len(QUALITIES)]
                version = jpeg_gray(version, quality)
                rows.append(features_numpy(version.astype(np.float32), MODEL_DEFAULT))
                names.append(folder.name)
                groups.append(group)
                index += 1
    if not rows:
        empty = np.array([], dtype=str)
        return np.empty((0, MODEL_DEFAULT.n_features), np.float32), empty, empty
    return np.stack(rows), np.array(names), np.array(groups)


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
                is_fake = int(index % SYNTH_EVERY == 1)
                image = crop
                if is_fake:
                    kind = (index // SYNTH_EVERY) % len(FAKE_METHODS)
                    image = make_fake(crop, rng, FAKE_METHODS[kind])
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


def held_apart_check(
    X, y, groups, sizes, qualities, variants, seed: int, gan=None, outside=None, train_outside=False
) -> dict:
    """Train on half the source groups, test on the rest; accuracy per slice.

    ``gan`` = (train rows, train variant names, test rows, test variant
    names): train rows join the training half as fakes; test rows (another
    latent seed) are scored per variant, with the training variants in
    training and with the variant left out of training. Test variants with
    no training rows are reported as "not trained on".
    """
    rng = np.random.default_rng(seed)
    names = np.unique(groups)
    rng.shuffle(names)
    test_groups = names[: len(names) // 2]
    test = np.isin(groups, test_groups)
    X_fit, y_fit = X[~test], y[~test]
    report = {}
    out_test = None
    if outside is not None and len(outside[0]):
        out_X, out_names, out_groups = outside
        out_test = np.isin(out_groups, test_groups)
        control = np.char.startswith(out_names.astype(str), CONTROL_PREFIX)
        fit_rows = ~out_test & ~control & train_outside
        for family in np.unique(out_names[~control]) if train_outside else ():
            keep = fit_rows & (out_names != family)
            left_out = Detector("svm", MODEL_DEFAULT, seed=seed, cv=0).fit(
                np.concatenate([X_fit, out_X[keep]]), np.r_[y_fit, np.ones(keep.sum(), int)]
            )
            rows = out_test & (out_names == family)
            report[f"outside {family} (family left out)"] = float(
                (left_out.predict(out_X[rows]) == 1).mean()
            )
        X_fit = np.concatenate([X_fit, out_X[fit_rows]])
        y_fit = np.r_[y_fit, np.ones(fit_rows.sum(), int)]
    if gan is not None and len(gan[2]):
        gan_X, gan_names, gan_test_X, gan_test_names = gan
        for variant in np.unique(gan_names):
            keep = gan_names != variant
            left_out = Detector("svm", MODEL_DEFAULT, seed=seed, cv=0).fit(
                np.concatenate([X_fit, gan_X[keep]]), np.r_[y_fit, np.ones(keep.sum(), int)]
            )
            flagged = left_out.predict(gan_test_X[gan_test_names == variant]) == 1
            report[f"gan {variant} (variant left out)"] = float(flagged.mean())
        X_fit = np.concatenate([X_fit, gan_X])
        y_fit = np.r_[y_fit, np.ones(len(gan_X), int)]
    model = Detector("svm", MODEL_DEFAULT, seed=seed, cv=0).fit(X_fit, y_fit)
    if gan is not None and len(gan[2]):
        flagged = model.predict(gan_test_X) == 1
        for variant in np.unique(gan_test_names):
            tag = "" if variant in gan_names else " (not trained on)"
            report[f"gan {variant}{tag}"] = float(flagged[gan_test_names == variant].mean())
        report["gan n_test"] = int(len(gan_test_X))
    if out_test is not None:
        flagged = model.predict(out_X[out_test]) == 1
        for family in np.unique(out_names):
            if family.startswith(CONTROL_PREFIX):
                tag = " (control, not trained on)"
            else:
                tag = "" if train_outside else " (not trained on)"
            report[f"outside {family}{tag}"] = float(flagged[out_names[out_test] == family].mean())
        report["outside n_test"] = int(out_test.sum())
    correct = model.predict(X[test]) == y[test]
    report = {"overall": float(correct.mean()), "n_test": int(test.sum()), **report}
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
    parser.add_argument(
        "--gan",
        type=Path,
        default=REPO / "data" / "fake_gan",
        help="GAN samples, one folder per variant (scripts/make_gan_fakes.py).",
    )
    parser.add_argument(
        "--gan-eval-only",
        nargs="*",
        default=["*spectral*"],
        help="Glob patterns of GAN folders that are only scored, never trained on "
        "(default: the spectral-regularized generators; see models/README.md).",
    )
    parser.add_argument(
        "--outside",
        type=Path,
        default=REPO / "data" / "outside",
        help="Outside generators, one folder per family (bicubic* folders: controls).",
    )
    parser.add_argument(
        "--train-outside",
        action="store_true",
        help="Train on the outside generator families too (default: score them only).",
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    gan_X, gan_names, _ = load_gan(args.gan, "train")
    gan_test_X, gan_test_names, _ = load_gan(args.gan, "test")
    trained = np.array(
        [not any(fnmatch(name, pattern) for pattern in args.gan_eval_only) for name in gan_names],
        dtype=bool,
    )
    gan_X, gan_names = gan_X[trained], gan_names[trained]
    X, y, groups, sizes, qualities, variants = build(args.real, args.per_size, args.seed)
    out_X, out_names, out_groups = load_outside(args.outside, args.seed)
    control = np.char.startswith(out_names.astype(str), CONTROL_PREFIX)
    out_families = sorted(set(out_names[~control]))
    print(
        f"{int((y == 0).sum())} real and {int((y == 1).sum())} synth fake crops, "
        f"{len(gan_X)} GAN samples ({len(np.unique(gan_names))} variants; "
        f"{len(gan_test_X)} held apart), {int((~control).sum())} outside rows "
        f"({len(out_families)} families; {int(control.sum())} control rows)",
        file=sys.stderr,
    )
    gan = (gan_X, gan_names, gan_test_X, gan_test_names)
    outside = (out_X, out_names, out_groups)
    check = held_apart_check(
        X, y, groups, sizes, qualities, variants, args.seed, gan, outside, args.train_outside
    )
    trained_outside = ~control & args.train_outside
    X_all = np.concatenate([X, gan_X, out_X[trained_outside]])
    y_all = np.r_[y, np.ones(len(gan_X) + int(trained_outside.sum()), int)]
    detector = Detector(METHOD, MODEL_DEFAULT, seed=args.seed, cv=5).fit(X_all, y_all)
    detector.summary_["training_data"] = (
        "data/real crops 64-256 px, native and scaled down >= 2x (clean, JPEG q90, q75) "
        f"vs synth.make_fake (1 in {SYNTH_EVERY} crops; "
        "transconv, nearest, bilinear) of other crops, same JPEG mix, "
        f"plus data/fake_gan train_*.png ({', '.join(np.unique(gan_names))})"
        + (
            f", plus data/outside ({', '.join(out_families)}; whole and a 64 px crop)"
            if args.train_outside
            else ""
        )
    )
    detector.summary_["outside_scored_only"] = (
        sorted(set(out_names)) if not args.train_outside else sorted(set(out_names[control]))
    )
    detector.summary_["gan_eval_only"] = list(args.gan_eval_only)
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
