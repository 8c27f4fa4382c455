"""Leave-one-generator-family-out: does the detector catch a generator it never saw?

Families are folders, found anew on every run (the list is printed):

* ``data/fake_gan/<variant>/`` (our own GANs; every ``*.png``),
* ``data/outside/<family>/`` (outside generators, e.g. super-resolution
  networks; ``<sourcegroup>__<idx>.png``), except the **controls**
  ``data/outside/bicubic*`` (plain bicubic up-scaling of real photos: not a
  generator, never trained on as fake, reported apart),
* ``synth-<method>``: other crops of ``data/real`` through
  ``specdetect.synth.make_fake`` with each up-sampling unit (transconv,
  nearest, bilinear), one family per unit.

Real images are random crops of ``data/real`` (the photos the shipped model
is trained on), grouped by source photo (``photo_data.source_group``).

Protocol, for every image size, JPEG condition and recipe: the real source
groups are split in two halves (seeded); each half is the test half once
(2 folds). Images that carry a source group (real crops, synth fakes,
outside images named after their source photo) are used for training only
from the training half and for testing only from the test half; images
without one (GAN samples) are split by file index parity. For every family
``F`` in turn, a model is trained on real crops of the training half and on
the fakes of **every family but F** (fakes subsampled to balance families and
classes), and tested on F's test images and on the real crops of the test
half. Scores of the two folds are pooled. Reported per held-out family:

* ``flagged``: share of F's images labelled fake (true positive rate),
* ``real_fp``: share of held-apart real crops labelled fake,
* ``acc``: balanced accuracy ``(flagged + 1 - real_fp) / 2``,
* ``auc``: ROC-AUC of F's images against the held-apart real crops.

Controls (``bicubic*``) are scored by the model trained on every family, and
reported as the share flagged fake.

Sizes: an image is used at size ``s`` when both sides are at least ``s``: a
centred ``s x s`` crop (random crops for the real photos; no resizing, which
would wash out the traces). Images smaller than ``s`` are left out at that
size (our GAN samples are 64 px; x2 super-resolution of 64 px inputs gives
128 px), so a family appears only at the sizes it has. Conditions: clean, and
JPEG q90 (grayscale luma encoded as JPEG, as in ``make model``).

Features are cached per image under ``runs/repro-generalize/cache`` (``--cache``;
keyed by file, size, condition and feature settings), so re-runs only compute
what is new.

Usage: python scripts/repro_generalize.py [--quick] [--out runs/repro-generalize]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from photo_data import jpeg, random_crops, source_group  # noqa: E402

from specdetect.detect import Detector  # noqa: E402
from specdetect.features import MODEL_DEFAULT, FeatureConfig, features_numpy  # noqa: E402
from specdetect.synth import FAKE_METHODS, make_fake  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONDITIONS = {"clean": None, "jpeg90": 90}
CONTROL_PREFIX = "bicubic"


@dataclass(frozen=True)
class Recipe:
    """Features and detector of one column of the table."""

    name: str
    config: FeatureConfig
    method: str = "svm"
    #: "0.5", "balanced" (best balanced accuracy on out-of-fold scores, as
    #: ``specdetect train``) or "qNN" (the NN-th percentile of the real rows'
    #: out-of-fold scores: at most 100 - NN % of real training rows flagged)
    threshold: str = "0.5"
    #: ``kmeans`` only: Detector's ``kmeans_quantile`` (None: the old two-centre boundary)
    kmeans_quantile: float | None = 0.97


#: The columns of the default table.
DEFAULT_RECIPES = ("paper", "specdetect", "paper kmeans", "specdetect kmeans")


def recipes() -> dict[str, Recipe]:
    """The paper's recipe and specdetect's, side by side, and the candidates tried.

    ``paper``: the paper's features and an SVM; ``specdetect``: the shipped
    model's features (``MODEL_DEFAULT``) and calibrated SVM, both with the
    threshold 0.5 on P(fake) (training classes are balanced; ``make model``
    picks its threshold on out-of-fold scores instead, which costs 3 more
    fits per model: ``specdetect balanced``);
    ``... kmeans``: unsupervised k-means (no labels; clusters named by the
    reference rule; radius rule of :class:`~specdetect.detect.Detector`).
    The others are the candidates compared in README ("Leave one generator
    family out"); run them with ``--recipes``.
    """
    paper = FeatureConfig(bins=64, norm="first", scale="log", drop_corners=True)
    v1 = FeatureConfig(norm="center", coherence=True)
    res = FeatureConfig(norm="center", coherence=True, residual=True)
    blocks = FeatureConfig(norm="center", coherence=True, blocks=8)
    res_blocks = FeatureConfig(norm="center", coherence=True, residual=True, blocks=8)
    out = [
        Recipe("paper", paper),
        Recipe("specdetect", MODEL_DEFAULT),
        Recipe("specdetect balanced", MODEL_DEFAULT, threshold="balanced"),
        Recipe("paper kmeans", paper, "kmeans"),
        Recipe("specdetect kmeans", MODEL_DEFAULT, "kmeans"),
        Recipe("specdetect kmeans old", MODEL_DEFAULT, "kmeans", kmeans_quantile=None),
        Recipe("paper kmeans old", paper, "kmeans", kmeans_quantile=None),
        Recipe("specdetect kmeans q99", MODEL_DEFAULT, "kmeans", kmeans_quantile=0.99),
        Recipe("specdetect q97", v1, threshold="q97"),
        Recipe("+blocks8", blocks),
        Recipe("+blocks8 q97", blocks, threshold="q97"),
        Recipe("+residual", res),
        Recipe("+residual+blocks8", res_blocks),
        Recipe("gauss", v1, "gauss"),
        Recipe("svm+gauss", v1, "svm+gauss"),
        Recipe("svm+gauss q97", v1, "svm+gauss", threshold="q97"),
        Recipe("residual+blocks8 gauss", res_blocks, "gauss"),
        Recipe("residual+blocks8 svm+gauss", res_blocks, "svm+gauss"),
    ]
    return {r.name: r for r in out}


# ----------------------------------------------------------------------------
# Items: one image at one size, with its family, group and fold key
@dataclass
class Item:
    key: str  # cache key of the pixels (file + crop rule)
    family: str  # "real", a generator family, or a control
    group: str | None  # source group, None for generated-from-noise images
    index: int  # position in its family (fold by parity when group is None)
    image: np.ndarray | None = None  # grayscale uint8, loaded lazily


def _gray(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("L"))


def _center(image: np.ndarray, size: int) -> np.ndarray | None:
    height, width = image.shape
    if height < size or width < size:
        return None
    top, left = (height - size) // 2, (width - size) // 2
    return image[top : top + size, left : left + size]


def _outside_group(name: str) -> str | None:
    """Source group of ``<sourcegroup>__<idx>.png`` (None without a ``__``)."""
    stem = Path(name).stem
    if "__" not in stem:
        return None
    return source_group(stem.rsplit("__", 1)[0])


def real_files(real_dir: Path) -> list[Path]:
    return sorted(p for p in real_dir.glob("*.png") if "__crop" in p.name or "__down" in p.name)


def crops_per_file(size: int, quick: bool) -> int:
    base = {64: 6, 128: 3, 256: 1}.get(size, 1)
    return max(1, base // 2) if quick else base


def build_items(args, size: int) -> tuple[list[Item], list[str], list[str]]:
    """Every image usable at ``size``; the generator families and the controls."""
    items: list[Item] = []
    rng = np.random.default_rng([args.seed, size])
    n = crops_per_file(size, args.quick)
    synth_index = 0
    for path in real_files(args.real):
        photo = _gray(path)
        group = source_group(path.name)
        # 2n crops: even ones stay real, odd ones become synth fakes (cycling units)
        for i, crop in enumerate(random_crops(photo, rng, 2 * n, size)):
            key = f"{path.name}:{size}:{i}"
            if i % 2 == 0:
                items.append(Item(key, "real", group, len(items), crop))
            else:
                method = FAKE_METHODS[synth_index % len(FAKE_METHODS)]
                fake = make_fake(crop, rng, method)
                items.append(Item(key + f":{method}", f"synth-{method}", group, synth_index, fake))
                synth_index += 1
    families, controls = [], []
    folders = []
    for root in (args.gan, args.outside):
        if root.is_dir():
            folders += sorted(p for p in root.iterdir() if p.is_dir())
    for folder in folders:
        name = folder.name
        files = sorted(folder.glob("*.png"))
        if args.quick:
            files = files[: args.quick_per_family]
        used = 0
        for index, path in enumerate(files):
            with Image.open(path) as probe:
                if min(probe.size) < size:
                    continue
            image = _center(_gray(path), size)
            group = _outside_group(path.name) if folder.parent == args.outside else None
            items.append(
                Item(f"{folder.parent.name}/{name}/{path.name}:{size}", name, group, index, image)
            )
            used += 1
        if used:
            (controls if name.startswith(CONTROL_PREFIX) else families).append(name)
    families += sorted({it.family for it in items if it.family.startswith("synth-")})
    return items, families, controls


# ----------------------------------------------------------------------------
def _jpeg_gray(image: np.ndarray, quality: int | None) -> np.ndarray:
    if quality is None:
        return image
    return np.asarray(
        Image.fromarray(jpeg(np.repeat(image[..., None], 3, -1), quality)).convert("L")
    )


class FeatureCache:
    """Feature rows per (item key, condition, feature settings), stored as .npz files."""

    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.stores: dict[str, dict[str, np.ndarray]] = {}

    def _name(self, config: FeatureConfig, condition: str, size: int) -> str:
        text = json.dumps([config.to_dict(), condition, size], sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    def rows(self, items: list[Item], config: FeatureConfig, condition: str, size: int):
        name = self._name(config, condition, size)
        path = self.folder / f"{name}.npz"
        store = self.stores.get(name)
        if store is None:
            store = dict(np.load(path)) if path.exists() else {}
            self.stores[name] = store
        missing = [it for it in items if _hash(it) not in store]
        if missing:
            quality = CONDITIONS[condition]
            batch = np.stack([_jpeg_gray(it.image, quality) for it in missing]).astype(np.float32)
            values = features_numpy(batch, config)
            for it, row in zip(missing, values, strict=True):
                store[_hash(it)] = row
            np.savez(path, **store)
        return np.stack([store[_hash(it)] for it in items])


def _hash(item: Item) -> str:
    digest = hashlib.sha1(item.key.encode())
    digest.update(np.ascontiguousarray(item.image).tobytes())
    return digest.hexdigest()[:20]


# ----------------------------------------------------------------------------
def fold_masks(items: list[Item], seed: int):
    """For each of the 2 folds, a boolean mask of test items (the rest is training)."""
    groups = sorted({it.group for it in items if it.family == "real"})
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(groups))
    half = {groups[i]: k < len(groups) // 2 for k, i in enumerate(order)}

    def side(it: Item) -> bool:  # True: test side of fold 0
        if it.group is None:
            return it.index % 2 == 0
        if it.group in half:
            return half[it.group]
        return int(hashlib.sha1(it.group.encode()).hexdigest(), 16) % 2 == 0

    first = np.array([side(it) for it in items])
    return [first, ~first]


def balanced_training(families, y_family, train_mask, held_out, rng, cap: int) -> np.ndarray:
    """Indices: real training rows and as many fakes, spread evenly over the other families."""
    real = np.flatnonzero(train_mask & (y_family == "real"))
    if len(real) > cap:
        real = rng.choice(real, cap, replace=False)
    fakes = [f for f in families if f != held_out]
    per = max(1, len(real) // max(1, len(fakes)))
    chosen = []
    for family in fakes:
        pool = np.flatnonzero(train_mask & (y_family == family))
        if len(pool):
            chosen.append(rng.choice(pool, min(per, len(pool)), replace=False))
    return np.concatenate([real, *chosen]) if chosen else real


class RealOnly:
    """Experimental real-only score: Mahalanobis distance to the real rows (Ledoit-Wolf).

    P(fake) is a logistic of the log squared distance, 0.5 at the ``quantile``
    of the real training rows' out-of-fold distances.
    """

    def __init__(self, quantile: float = 0.97, seed: int = 0):
        self.quantile, self.seed = quantile, seed

    def _fit_gauss(self, X):
        from sklearn.covariance import LedoitWolf

        mean, scale = X.mean(0), X.std(0) + 1e-9
        cov = LedoitWolf().fit((X - mean) / scale)
        return mean, scale, cov

    @staticmethod
    def _d2(model, X):
        mean, scale, cov = model
        return np.log(cov.mahalanobis((X - mean) / scale) + 1e-9)

    def fit(self, X, y):
        real = X[y == 0]
        rng = np.random.default_rng(self.seed)
        folds = rng.permutation(len(real)) % 5
        oof = np.empty(len(real))
        for k in range(5):
            oof[folds == k] = self._d2(self._fit_gauss(real[folds != k]), real[folds == k])
        self.model_ = self._fit_gauss(real)
        self.center_ = float(np.quantile(oof, self.quantile))
        self.width_ = float(np.std(oof)) / 4 + 1e-9
        self.threshold_ = 0.5
        return self

    def score_samples(self, X):
        z = (self._d2(self.model_, X) - self.center_) / self.width_
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))

    def predict(self, X):
        return (self.score_samples(X) >= self.threshold_).astype(int)


class Mean:
    """Mean P(fake) of several fitted models."""

    def __init__(self, models):
        self.models, self.threshold_ = models, 0.5

    def score_samples(self, X):
        return np.mean([m.score_samples(X) for m in self.models], axis=0)

    def predict(self, X):
        return (self.score_samples(X) >= self.threshold_).astype(int)


def fit_recipe(recipe: Recipe, X, y, seed: int):
    model = _fit_method(recipe, X, y, seed)
    if recipe.threshold != "0.5":
        from sklearn.model_selection import StratifiedKFold

        from specdetect.detect.evaluate import choose_threshold

        oof = np.zeros(len(y))
        for train, test in StratifiedKFold(3, shuffle=True, random_state=seed).split(X, y):
            oof[test] = _fit_method(recipe, X[train], y[train], seed).score_samples(X[test])
        if recipe.threshold == "balanced":
            model.threshold_ = choose_threshold(y, oof)
        else:
            model.threshold_ = float(np.quantile(oof[y == 0], int(recipe.threshold[1:]) / 100))
    return model


def _fit_method(recipe: Recipe, X, y, seed: int):
    if recipe.method == "gauss":
        return RealOnly(seed=seed).fit(X, y)
    if recipe.method == "svm+gauss":
        svm = Detector("svm", recipe.config, seed=seed, cv=0).fit(X, y)
        return Mean([svm, RealOnly(seed=seed).fit(X, y)])
    if recipe.method == "kmeans":
        return Detector(
            "kmeans", recipe.config, seed=seed, cv=0, kmeans_quantile=recipe.kmeans_quantile
        ).fit(X)  # no labels
    return Detector(recipe.method, recipe.config, seed=seed, cv=0).fit(X, y)


def evaluate(
    items, families, controls, X, recipe: Recipe, seed: int, cap: int, eval_only=()
) -> dict:
    from sklearn.metrics import roc_auc_score

    y_family = np.array([it.family for it in items])
    scores = {f: [] for f in families}
    labels = {f: [] for f in families}
    real_scores = {f: [] for f in families}
    controls_flag = {c: [] for c in controls}
    real_all_flag = []
    for fold, test in enumerate(fold_masks(items, seed)):
        train = ~test
        for held_out in [*families, None]:
            rng = np.random.default_rng([seed, fold, len(held_out or "")])
            trained = [f for f in families if f not in eval_only]
            idx = balanced_training(trained, y_family, train, held_out, rng, cap)
            idx = idx[~np.isin(y_family[idx], controls)]
            y = (y_family[idx] != "real").astype(int)
            model = fit_recipe(recipe, X[idx], y, seed)
            real_test = np.flatnonzero(test & (y_family == "real"))
            if held_out is None:
                for control in controls:
                    rows = np.flatnonzero(test & (y_family == control))
                    if len(rows):
                        controls_flag[control].append(model.predict(X[rows]))
                real_all_flag.append(model.predict(X[real_test]))
                continue
            fam_test = np.flatnonzero(test & (y_family == held_out))
            if not len(fam_test):
                continue
            scores[held_out].append(model.score_samples(X[fam_test]))
            labels[held_out].append(model.predict(X[fam_test]))
            real_scores[held_out].append(
                (model.score_samples(X[real_test]), model.predict(X[real_test]))
            )
    out = {}
    for family in families:
        if not scores[family]:
            continue
        fam_scores = np.concatenate(scores[family])
        flagged = float(np.concatenate(labels[family]).mean())
        real_s = np.concatenate([s for s, _ in real_scores[family]])
        real_fp = float(np.concatenate([p for _, p in real_scores[family]]).mean())
        y_true = np.r_[np.ones(len(fam_scores)), np.zeros(len(real_s))]
        auc = float(roc_auc_score(y_true, np.r_[fam_scores, real_s]))
        out[family] = {
            "eval_only": family in eval_only,
            "n": int(len(fam_scores)),
            "n_real": int(len(real_s)),
            "flagged": flagged,
            "real_fp": real_fp,
            "acc": (flagged + 1 - real_fp) / 2,
            "auc": auc,
        }
    for control in controls:
        if controls_flag[control]:
            flags = np.concatenate(controls_flag[control])
            out[control] = {"n": int(len(flags)), "flagged": float(flags.mean()), "control": True}
    if real_all_flag:
        out["real (all-family model)"] = {
            "n": int(sum(len(r) for r in real_all_flag)),
            "real_fp": float(np.concatenate(real_all_flag).mean()),
        }
    return out


def _cell(result: dict | None) -> str:
    if result is None:
        return ""
    if result.get("control"):
        return f"flagged {100 * result['flagged']:.0f}%"
    if "auc" not in result:
        return f"fp {100 * result['real_fp']:.1f}%"
    return (
        f"{100 * result['acc']:.0f} / {result['auc']:.2f} / "
        f"{100 * result['flagged']:.0f} / {100 * result['real_fp']:.1f}"
    )


def _is_eval_only(per_recipe: dict, family: str) -> bool:
    return any(r.get(family, {}).get("eval_only") for r in per_recipe.values())


def markdown(results: dict, names: list[str]) -> str:
    lines = []
    for (size, condition), per_recipe in results.items():
        seen = {f for r in per_recipe.values() for f in r}
        controls = sorted(f for f in seen if f.startswith(CONTROL_PREFIX))
        extra = sorted(f for f in seen if f.startswith("real ("))
        rows = sorted(seen - set(controls) - set(extra))
        lines += [
            f"#### {size} px, {condition}",
            "",
            "| held-out family | n | " + " | ".join(names) + " |",
            "|---|---:|" + "---|" * len(names),
        ]
        tail = []
        for family in rows:
            n = next((r[family]["n"] for r in per_recipe.values() if family in r), 0)
            cells = [_cell(per_recipe.get(name, {}).get(family)) for name in names]
            tag = " (never trained on)" if _is_eval_only(per_recipe, family) else ""
            lines.append(f"| {family}{tag} | {n} | " + " | ".join(cells) + " |")
        for family in controls + extra:
            n = next((r[family]["n"] for r in per_recipe.values() if family in r), 0)
            cells = [_cell(per_recipe.get(name, {}).get(family)) for name in names]
            tail.append(f"| {family} | {n} | " + " | ".join(cells) + " |")
        means = []
        for name in names:
            fam = [
                v
                for v in per_recipe.get(name, {}).values()
                if "auc" in v and not v.get("eval_only")
            ]
            if fam:
                means.append(
                    f"**{100 * np.mean([v['acc'] for v in fam]):.0f} / "
                    f"{np.mean([v['auc'] for v in fam]):.2f} / "
                    f"min {100 * min(v['acc'] for v in fam):.0f}**"
                )
            else:
                means.append("")
        lines += [
            "| mean / mean / worst acc (trained-on families) | | " + " | ".join(means) + " |",
            *tail,
            "",
        ]
    lines.append(
        "Cells: balanced accuracy % / ROC-AUC / held-out family flagged % / held-apart real "
        "photos flagged % (the false-positive rate). Means and worst over the families that "
        "are trained on when not held out. Controls (bicubic up-scaling of real "
        "photos, not a generator): share flagged by the model trained on every family."
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "repro-generalize")
    parser.add_argument(
        "--cache",
        type=Path,
        default=REPO / "runs" / "repro-generalize" / "cache",
        help="Feature cache folder (shared by runs with other --out folders).",
    )
    parser.add_argument("--real", type=Path, default=REPO / "data" / "real")
    parser.add_argument("--gan", type=Path, default=REPO / "data" / "fake_gan")
    parser.add_argument("--outside", type=Path, default=REPO / "data" / "outside")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    parser.add_argument("--conditions", nargs="+", choices=list(CONDITIONS), default=None)
    parser.add_argument("--recipes", nargs="+", default=None, help="Subset of recipe names.")
    parser.add_argument("--cap", type=int, default=400, help="Real training rows per model.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--eval-only",
        nargs="*",
        default=["*spectral*"],
        help="Glob patterns of families that are held out and scored but never trained on "
        "(default: the spectral-regularized GANs, as in make model); '' for none.",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="64 and 128 px, clean only, fewer crops and images per family.",
    )
    parser.add_argument("--quick-per-family", type=int, default=40)
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = [s for s in args.sizes if s <= 128] or args.sizes
        args.conditions = args.conditions or ["clean"]
        args.cap = min(args.cap, 200)
    conditions = args.conditions or list(CONDITIONS)
    all_recipes = recipes()
    names = args.recipes or list(DEFAULT_RECIPES)
    unknown = sorted(set(names) - set(all_recipes))
    if unknown:
        parser.error(f"unknown recipes {unknown}; known: {sorted(all_recipes)}")
    started = time.time()
    cache = FeatureCache(args.cache)
    results: dict = {}
    for size in args.sizes:
        items, families, controls = build_items(args, size)
        n_real = sum(it.family == "real" for it in items)
        n_groups = len({it.group for it in items if it.family == "real"})
        print(
            f"{size} px: {n_real} real crops ({n_groups}"
            f" source groups); families: "
            + ", ".join(f"{f} ({sum(it.family == f for it in items)})" for f in families)
            + (
                "; controls: "
                + ", ".join(f"{c} ({sum(it.family == c for it in items)})" for c in controls)
                if controls
                else ""
            ),
            file=sys.stderr,
        )
        for condition in conditions:
            per_recipe = {}
            for name in names:
                recipe = all_recipes[name]
                X = cache.rows(items, recipe.config, condition, size)
                eval_only = [f for f in families if any(fnmatch(f, p) for p in args.eval_only)]
                per_recipe[name] = evaluate(
                    items, families, controls, X, recipe, args.seed, args.cap, eval_only
                )
            results[(size, condition)] = per_recipe
            print(f"  {size} px {condition}: {time.time() - started:.0f}s", file=sys.stderr)
    text = markdown(results, names)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    notes = {
        "recipes": {
            n: {"config": all_recipes[n].config.to_dict(), "method": all_recipes[n].method}
            for n in names
        },
        "args": {k: str(v) for k, v in vars(args).items()},
        "seconds": round(time.time() - started, 1),
    }
    (args.out / "table.md").write_text(text + "\n")
    (args.out / "results.json").write_text(
        json.dumps(
            {"notes": notes, "results": {f"{s}px {c}": v for (s, c), v in results.items()}},
            indent=1,
        )
    )
    print(f"\n{notes['seconds']:.0f}s; wrote {args.out}/table.md, results.json", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
