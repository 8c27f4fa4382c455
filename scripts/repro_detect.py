"""Reproduce the paper's Table 1: accuracy vs number of training images.

For 20 / 100 / 1000 training images (half real, half fake), 10 seeded
repeats, methods svm / logreg / kmeans (k-means without labels, clusters
named by the reference-spectrum rule), and three conditions (clean, both
classes re-encoded as JPEG q90, JPEG q75), it compares the paper's recipe
(grayscale, log power, ring mean, resample, divide by the first bin) with
specdetect's default features, on the same splits.

Real images are random crops of real photographs, half at native
resolution and half scaled down by 2-3 with an anti-aliasing filter
(``--real-variants``); fakes are other crops of the same two kinds passed
through ``specdetect.synth.make_fake`` (transposed convolution, nearest and
bilinear up-sampling with random kernels). Test crops come from photographs
whose whole near-duplicate group was held apart from training. Besides the
table, accuracy per real variant and per up-sampling unit is written for
every model (results.json) and summarized for 100 training images.

Usage: python scripts/repro_detect.py --out runs/repro-detect [--photos DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from photo_data import (  # noqa: E402
    downscaled_crops,
    fake_of,
    jpeg,
    load_rgb,
    luma,
    random_crops,
    source_group,
)

from specdetect.detect import Detector  # noqa: E402
from specdetect.features import FeatureConfig, features_numpy  # noqa: E402
from specdetect.synth import FAKE_METHODS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path("/work/shared/data/photos")
CONDITIONS = {"clean": None, "JPEG q90": 90, "JPEG q75": 75}
METHODS = ("svm", "logreg", "kmeans")
VARIANTS = ("native", "down")
SVM_C_GRID = (1.0, 10.0, 100.0)  # inner-CV choices of the SVM's C (RBF width: "scale")


def feature_sets() -> dict[str, FeatureConfig]:
    return {
        "paper": FeatureConfig(bins=64, norm="first", scale="log", drop_corners=True),
        "specdetect": default_features(),
    }


def default_features() -> FeatureConfig:
    """specdetect's default for new models (see models/README.md)."""
    from specdetect.features import MODEL_DEFAULT

    return MODEL_DEFAULT


def build_pool(photos: list[Path], crop: int, per_photo: int, seed: int, variants=VARIANTS):
    """Real and fake crops of every photo: labels, source groups, and kinds.

    ``per_photo`` real and as many fake crops per photo, split evenly over
    ``variants`` (``native`` crops, ``down``-scaled crops); a fake is made
    from a crop of the same variant. ``kinds`` is ``real-native``,
    ``real-down`` or the fake's up-sampling unit.
    """
    rng = np.random.default_rng(seed)
    images, labels, groups, kinds = [], [], [], []
    for path in photos:
        image = load_rgb(path)
        for variant in variants:
            count = 2 * per_photo // len(variants)
            if variant == "native":
                crops = random_crops(image, rng, count, crop)
            else:
                crops = downscaled_crops(image, rng, count, crop)
            for i, c in enumerate(crops):
                is_fake = i % 2  # alternate crops: the fake and real sets are disjoint crops
                method = FAKE_METHODS[(i // 2) % len(FAKE_METHODS)]
                images.append(fake_of(c, rng, i // 2) if is_fake else c)
                labels.append(is_fake)
                groups.append(source_group(path.name))
                kinds.append(method if is_fake else f"real-{variant}")
    return images, np.array(labels), np.array(groups), np.array(kinds)


def pool_features(images, configs) -> dict:
    out = {}
    for condition, quality in CONDITIONS.items():
        lumas = np.stack([luma(jpeg(im, quality) if quality else im) for im in images])
        out[condition] = {name: features_numpy(lumas, cfg) for name, cfg in configs.items()}
    return out


def split(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of test rows: about half the groups, whole groups only."""
    names = np.unique(groups)
    rng.shuffle(names)
    test = set(names[: len(names) // 2])
    return np.array([g in test for g in groups])


def tuned_svm(model: Detector, X: np.ndarray, y: np.ndarray, seed: int) -> Detector:
    """The SVM with C picked by an inner 3-fold CV on the training rows only."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=seed)
    search = GridSearchCV(model, {"C": list(SVM_C_GRID)}, cv=folds)
    search.fit(X, y)
    return model.set_params(**search.best_params_)


def run_repeat(repeat, features, labels, groups, kinds, sizes, configs, test_per_class, tune=True):
    rng = np.random.default_rng(1000 + repeat)
    is_test = split(groups, rng)
    train_idx = {k: np.flatnonzero(~is_test & (labels == k)) for k in (0, 1)}
    test_idx = np.concatenate(
        [
            rng.choice(np.flatnonzero(is_test & (labels == k)), test_per_class, replace=False)
            if np.sum(is_test & (labels == k)) > test_per_class
            else np.flatnonzero(is_test & (labels == k))
            for k in (0, 1)
        ]
    )
    rows = []
    for n in sizes:
        half = n // 2
        train = np.concatenate(
            [rng.choice(train_idx[k], half, replace=len(train_idx[k]) < half) for k in (0, 1)]
        )
        for condition in CONDITIONS:
            for name in configs:
                X = features[condition][name]
                for method in METHODS:
                    model = Detector(method, configs[name], seed=repeat, cv=0)
                    y_train = None if method == "kmeans" else labels[train]
                    if method == "svm" and tune:
                        model = tuned_svm(model, X[train], y_train, repeat)
                    model.fit(X[train], y_train)
                    correct = model.predict(X[test_idx]) == labels[test_idx]
                    by_kind = {
                        k: float(correct[kinds[test_idx] == k].mean())
                        for k in np.unique(kinds[test_idx])
                    }
                    rows.append((n, condition, name, method, float(correct.mean()), by_kind))
    return rows


def table(rows, sizes, configs) -> str:
    results: dict = {}
    for n, condition, name, method, accuracy, _ in rows:
        results.setdefault((n, name, method), {}).setdefault(condition, []).append(accuracy)
    header = "| features | method | train images | " + " | ".join(CONDITIONS) + " |"
    lines = [header, "|" + "---|" * (3 + len(CONDITIONS))]
    for name in configs:
        for method in METHODS:
            for n in sizes:
                cells = []
                for condition in CONDITIONS:
                    values = 100 * np.array(results[(n, name, method)][condition])
                    cells.append(f"{values.mean():.1f} ± {values.std():.1f}")
                lines.append(f"| {name} | {method} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def kind_table(rows, n: int, condition: str = "clean") -> str:
    """Accuracy per real variant / up-sampling unit at ``n`` training images."""
    results: dict = {}
    for size, cond, name, method, _, by_kind in rows:
        if size == n and cond == condition:
            for kind, value in by_kind.items():
                results.setdefault((name, method), {}).setdefault(kind, []).append(value)
    kinds = sorted({k for v in results.values() for k in v})
    lines = ["| features | method | " + " | ".join(kinds) + " |", "|" + "---|" * (2 + len(kinds))]
    for (name, method), values in results.items():
        cells = [f"{100 * np.mean(values.get(k, [np.nan])):.1f}" for k in kinds]
        lines.append(f"| {name} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "repro-detect")
    parser.add_argument("--photos", type=Path, default=None, help="Folder of real photos.")
    parser.add_argument(
        "--crop", type=int, default=256, help="Crop side in pixels (paper's data: 178-1024 px)."
    )
    parser.add_argument("--per-photo", type=int, default=40, help="Real (and fake) crops each.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[20, 100, 1000])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--test-per-class", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=2, help="Parallel repeats.")
    parser.add_argument(
        "--no-tune", action="store_true", help="Keep the SVM's C at 1 (no inner CV)."
    )
    parser.add_argument(
        "--real-variants",
        nargs="+",
        choices=VARIANTS,
        default=list(VARIANTS),
        help="Kinds of real (and fake source) crops: native resolution, scaled down by 2-3.",
    )
    args = parser.parse_args(argv)

    folder = args.photos or (SHARED if SHARED.is_dir() else REPO / "data" / "real")
    photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    started = time.time()
    configs = feature_sets()
    images, labels, groups, kinds = build_pool(
        photos, args.crop, args.per_photo, seed=0, variants=args.real_variants
    )
    features = pool_features(images, configs)
    print(
        f"pool: {len(images)} crops of {args.crop}px from {len(photos)} photos in {folder} "
        f"({len(np.unique(groups))} source groups), {time.time() - started:.0f}s",
        file=sys.stderr,
    )
    smallest = min(
        int(np.sum(~split(groups, np.random.default_rng(1000 + r)) & (labels == k)))
        for r in range(args.repeats)
        for k in (0, 1)
    )
    print(f"smallest training pool per class over repeats: {smallest}", file=sys.stderr)
    from joblib import Parallel, delayed

    per_repeat = Parallel(n_jobs=args.jobs)(
        delayed(run_repeat)(
            r,
            features,
            labels,
            groups,
            kinds,
            args.sizes,
            configs,
            args.test_per_class,
            not args.no_tune,
        )
        for r in range(args.repeats)
    )
    rows = [row for rows in per_repeat for row in rows]
    text = table(rows, args.sizes, configs)
    n_kinds = 100 if 100 in args.sizes else args.sizes[0]
    text_kinds = kind_table(rows, n_kinds)
    notes = (
        f"Accuracy (%) on held-apart photos, mean ± std over {args.repeats} seeded repeats; "
        f"{args.crop}x{args.crop} crops, half real / half fake; test: up to "
        f"{args.test_per_class} per class from the held-apart source groups. "
        f"paper = {configs['paper'].to_dict()}; specdetect = {configs['specdetect'].to_dict()}. "
        f"Real crops: {', '.join(args.real_variants)} (native = native resolution, "
        f"down = scaled down by 2-3 with Lanczos). "
        f"Training pool per class (held-in groups): at least {smallest} crops"
        + (
            " (fewer than needed: sampled with replacement). "
            if smallest < max(args.sizes) // 2
            else ". "
        )
        + "k-means is trained without labels. "
        + ("" if args.no_tune else f"SVM C chosen by inner 3-fold CV from {SVM_C_GRID}. ")
        + f"{time.time() - started:.0f}s."
    )
    kinds_note = f"Accuracy (%) per kind of test crop, {n_kinds} training images, clean."
    print(text)
    print()
    print(notes)
    print()
    print(text_kinds)
    print()
    print(kinds_note)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(
        text + "\n\n" + notes + "\n\n" + text_kinds + "\n\n" + kinds_note + "\n"
    )
    (args.out / "results.json").write_text(
        json.dumps(
            [
                dict(
                    zip(
                        ("n", "condition", "features", "method", "accuracy", "by_kind"),
                        r,
                        strict=True,
                    )
                )
                for r in rows
            ]
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
