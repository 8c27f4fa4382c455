"""Experiment: a small CNN on a noise residual, under the LOGO protocol of repro_generalize.

Same items, folds and balanced training sets as ``scripts/repro_generalize.py``
(its ``build_items``, ``fold_masks`` and ``balanced_training`` are imported, same
seed), but instead of spectral features and an SVM, a tiny ResNet-like CNN with
global average pooling is trained on an input residual:

* ``npr``: ``x - up_nearest(down_nearest(x, 1/2), 2)`` (neighbouring pixel
  relationships, Tan et al., CVPR 2024),
* ``median``: ``x - median3x3(x)`` (a generic high-pass noise residual),
* ``plain``: the image itself (``x - 0.5``).

Per held-out family ``F`` and fold (2 folds): training on the training half's
real crops and on fakes of every family but ``F`` (bicubic controls and the
``*spectral*`` GANs are never trained on). Each epoch draws a fresh balanced set
(all real training rows up to ``--cap``, as many fakes spread evenly over the
families, as ``balanced_training`` does), so more distinct fakes are seen over
the epochs while every epoch stays balanced. Augmentation: random 64 px crops
at even offsets (keeps the 2x2 grid of x2 up-sampling in phase), horizontal and
vertical flips, JPEG q90 on a share of the samples. Test: ``F``'s test-half
images and the held-apart real crops, scored on the whole ``size x size``
image (global average pooling); threshold 0.5 on the sigmoid.

Results are written after every cell to ``runs/exp-cnn/results.json`` (cells
already there are skipped: re-runs resume), and ``table.md`` puts them next
to the current recipe (``specdetect`` in ``runs/repro-generalize/results.json``).

Usage: python scripts/exp_learned_residual.py [--quick] [--variants npr median]
       [--sizes 64 128] [--conditions clean] [--families ...]
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from fnmatch import fnmatch
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from repro_generalize import (  # noqa: E402
    CONDITIONS,
    _jpeg_gray,
    balanced_training,
    build_items,
    fold_masks,
)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FAMILIES = [
    "vintagify-cyclegan",
    "realesrgan-x4plus",
    "realcugan-se-x2",
    "waifu2x-upconv7-photo-x2",
    "dragan_nearest",
    "dcgan_transconv_ngf32_b16",
    "upscalerjs-esrgan-medium-x2",
    "dcgan_transconv",
]
VARIANTS = ("npr", "median", "plain")
CROP = 64


# ----------------------------------------------------------------------------
def load_items(args, size: int):
    """build_items of the harness, cached (pickled) with the JPEG q90 copies."""
    name = f"items_{size}_seed{args.seed}{'_quick' if args.quick else ''}.pkl"
    path = args.out / "cache" / name
    if path.exists():
        with path.open("rb") as handle:
            return pickle.load(handle)
    items, families, controls = build_items(args, size)
    clean = [np.ascontiguousarray(it.image, dtype=np.uint8) for it in items]
    jpg = [_jpeg_gray(im, CONDITIONS["jpeg90"]) for im in clean]
    out = (items, families, controls, {"clean": clean, "jpeg90": jpg})
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        pickle.dump(out, handle)
    return out


# ----------------------------------------------------------------------------
def make_net(width: int):
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.b1 = nn.BatchNorm2d(cout)
            self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.b2 = nn.BatchNorm2d(cout)
            self.skip = (
                nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                if (cin != cout or stride != 1)
                else nn.Identity()
            )

        def forward(self, x):
            h = torch.relu(self.b1(self.c1(x)))
            return torch.relu(self.b2(self.c2(h)) + self.skip(x))

    class Net(nn.Module):
        """Stem + 3 residual blocks (full res, /2, /4), global average pooling, linear."""

        def __init__(self):
            super().__init__()
            w = width
            self.stem = nn.Sequential(
                nn.Conv2d(1, w, 3, 1, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU()
            )
            self.blocks = nn.Sequential(Block(w, w, 1), Block(w, 2 * w, 2), Block(2 * w, 2 * w, 2))
            self.head = nn.Linear(2 * w, 1)

        def forward(self, x):
            h = self.blocks(self.stem(x))
            return self.head(h.mean((2, 3))).squeeze(1)

    return Net()


def residual(x, variant: str):
    """x: float tensor (B, 1, H, W) in [0, 1]; the network's input."""
    import torch.nn.functional as F

    if variant == "npr":
        down = x[:, :, ::2, ::2]
        return (x - F.interpolate(down, scale_factor=2, mode="nearest")) * 4.0
    if variant == "median":
        pad = F.pad(x, (1, 1, 1, 1), mode="reflect")
        patches = F.unfold(pad, 3).view(x.shape[0], 9, x.shape[2], x.shape[3])
        return (x - patches.median(1, keepdim=True).values) * 4.0
    if variant == "plain":
        return x - 0.5
    raise ValueError(variant)


def _batch_crops(images, rng, size: int):
    """Random CROP px crops at even offsets, random flips; (B, 1, CROP, CROP) float32."""
    out = np.empty((len(images), 1, CROP, CROP), np.float32)
    for k, im in enumerate(images):
        h, w = im.shape
        top = 2 * rng.integers(0, (h - CROP) // 2 + 1)
        left = 2 * rng.integers(0, (w - CROP) // 2 + 1)
        crop = im[top : top + CROP, left : left + CROP]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        if rng.random() < 0.5:
            crop = crop[::-1, :]
        out[k, 0] = crop / 255.0
    return out


def train_one(
    pixels, jpg, y_family, train_mask, families, held_out, args, fold, variant, size, seed
):
    import torch

    torch.manual_seed(seed * 1000 + fold * 100 + len(held_out))
    rng = np.random.default_rng([seed, fold, len(held_out)])
    net = make_net(args.width)
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=1e-4)
    epochs = args.epochs
    # one balanced draw to size the schedule
    first = balanced_training(families, y_family, train_mask, held_out, rng, args.cap)
    reps = args.crops_per_image if size > CROP else 1
    steps_per_epoch = int(np.ceil(len(first) * reps / args.batch))
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, total_steps=epochs * steps_per_epoch, pct_start=0.2
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()
    net.train()
    idx = first
    for epoch in range(epochs):
        if epoch:
            idx = balanced_training(families, y_family, train_mask, held_out, rng, args.cap)
        idx = np.repeat(idx, reps)
        order = rng.permutation(idx)[: steps_per_epoch * args.batch]
        for s in range(0, len(order), args.batch):
            rows = order[s : s + args.batch]
            use_jpg = rng.random(len(rows)) < args.jpeg_share
            images = [jpg[i] if j else pixels[i] for i, j in zip(rows, use_jpg, strict=True)]
            xb = torch.from_numpy(_batch_crops(images, rng, size))
            yb = torch.from_numpy((y_family[rows] != "real").astype(np.float32))
            loss = loss_fn(net(residual(xb, variant)), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    return net


def score(net, images, variant: str) -> np.ndarray:
    import torch

    out = []
    with torch.no_grad():
        for s in range(0, len(images), 64):
            xb = np.stack(images[s : s + 64]).astype(np.float32)[:, None] / 255.0
            out.append(torch.sigmoid(net(residual(torch.from_numpy(xb), variant))).numpy())
    return np.concatenate(out) if out else np.zeros(0)


def metrics(fam_scores, real_scores) -> dict:
    from sklearn.metrics import roc_auc_score

    flagged = float((fam_scores >= 0.5).mean())
    real_fp = float((real_scores >= 0.5).mean())
    y_true = np.r_[np.ones(len(fam_scores)), np.zeros(len(real_scores))]
    return {
        "n": int(len(fam_scores)),
        "n_real": int(len(real_scores)),
        "flagged": flagged,
        "real_fp": real_fp,
        "acc": (flagged + 1 - real_fp) / 2,
        "auc": float(roc_auc_score(y_true, np.r_[fam_scores, real_scores])),
    }


# ----------------------------------------------------------------------------
def _cell(r: dict | None) -> str:
    if not r:
        return "–"
    return (
        f"{100 * r['acc']:.0f} / {r['auc']:.2f} / {100 * r['flagged']:.0f}"
        f" / {100 * r['real_fp']:.1f}"
    )


def markdown(results: dict, baseline: dict, variants, sizes, conditions, families) -> str:
    lines = []
    for condition in conditions:
        cols = [(v, s) for s in sizes for v in ["specdetect (current)", *variants]]
        lines += [
            f"#### {condition}",
            "",
            "| held-out family | " + " | ".join(f"{v} {s}px" for v, s in cols) + " |",
            "|---|" + "---|" * len(cols),
        ]
        for family in families:
            cells = []
            for v, s in cols:
                if v == "specdetect (current)":
                    r = baseline.get(f"{s}px {condition}", {}).get("specdetect", {}).get(family)
                else:
                    r = results.get(f"{v}|{s}|{condition}|{family}")
                cells.append(_cell(r))
            lines.append(f"| {family} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(
        "Cells: balanced accuracy % at threshold 0.5 / ROC-AUC / held-out family flagged % / "
        "held-apart real crops flagged % (real-FP, of the model that held that family out). "
        "Both folds pooled. '–': not run (or the family has no images at that size). "
        "specdetect (current): the shipped recipe's numbers from "
        "runs/repro-generalize/results.json (same items and folds)."
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "exp-cnn")
    parser.add_argument("--real", type=Path, default=REPO / "data" / "real")
    parser.add_argument("--gan", type=Path, default=REPO / "data" / "fake_gan")
    parser.add_argument("--outside", type=Path, default=REPO / "data" / "outside")
    parser.add_argument(
        "--baseline", type=Path, default=REPO / "runs" / "repro-generalize" / "results.json"
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--conditions", nargs="+", choices=list(CONDITIONS), default=["clean"])
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=["npr", "median"])
    parser.add_argument("--families", nargs="+", default=DEFAULT_FAMILIES)
    parser.add_argument("--eval-only", nargs="*", default=["*spectral*"])
    parser.add_argument("--cap", type=int, default=400, help="Real training rows per draw.")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--crops-per-image", type=int, default=3, help="At sizes above 64 px.")
    parser.add_argument("--jpeg-share", type=float, default=0.3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="Smoke run: few images, 1 epoch.")
    parser.add_argument("--quick-per-family", type=int, default=40)
    parser.add_argument("--fresh", action="store_true", help="Ignore cells already computed.")
    args = parser.parse_args(argv)
    if args.quick:
        args.out = args.out / "quick"
        args.epochs, args.cap = 1, 100
        args.families = args.families[:2]
    import torch

    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    res_path = args.out / "results.json"
    results = {} if args.fresh or not res_path.exists() else json.loads(res_path.read_text())
    results = {k: v for k, v in results.items() if not k.startswith("_")}
    baseline = json.loads(args.baseline.read_text())["results"] if args.baseline.exists() else {}
    started = time.time()
    for size in args.sizes:
        t0 = time.time()
        items, families, controls, pix = load_items(args, size)
        print(f"{size} px: {len(items)} items ({time.time() - t0:.0f}s)", file=sys.stderr)
        y_family = np.array([it.family for it in items])
        eval_only = [f for f in families if any(fnmatch(f, p) for p in args.eval_only)]
        trained = [f for f in families if f not in eval_only]
        masks = fold_masks(items, args.seed)
        for condition in args.conditions:
            for variant in args.variants:
                for family in args.families:
                    key = f"{variant}|{size}|{condition}|{family}"
                    if key in results or family not in families:
                        continue
                    fam_s, real_s = [], []
                    t1 = time.time()
                    for fold, test in enumerate(masks):
                        net = train_one(
                            pix["clean"],
                            pix["jpeg90"],
                            y_family,
                            ~test,
                            trained,
                            family,
                            args,
                            fold,
                            variant,
                            size,
                            args.seed,
                        )
                        test_pix = pix[condition]
                        fam_rows = np.flatnonzero(test & (y_family == family))
                        real_rows = np.flatnonzero(test & (y_family == "real"))
                        fam_s.append(score(net, [test_pix[i] for i in fam_rows], variant))
                        real_s.append(score(net, [test_pix[i] for i in real_rows], variant))
                    r = metrics(np.concatenate(fam_s), np.concatenate(real_s))
                    r["seconds"] = round(time.time() - t1, 1)
                    results[key] = r
                    print(
                        f"  {key}: {_cell(r)}  ({r['seconds']:.0f}s for 2 fits;"
                        f" total {time.time() - started:.0f}s)",
                        file=sys.stderr,
                        flush=True,
                    )
                    settings = {
                        k: str(v) for k, v in vars(args).items() if k not in {"families", "fresh"}
                    }
                    res_path.write_text(
                        json.dumps({"_settings": settings, **results}, indent=1, sort_keys=True)
                    )
                    variants_done = [
                        v for v in VARIANTS if any(k.startswith(v + "|") for k in results)
                    ]
                    sizes_done = sorted({int(k.split("|")[1]) for k in results})
                    conds = [c for c in CONDITIONS if any(f"|{c}|" in k for k in results)]
                    seen = {k.split("|")[3] for k in results}
                    fams = [f for f in DEFAULT_FAMILIES if f in seen]
                    fams += sorted(seen - set(fams))
                    text = markdown(results, baseline, variants_done, sizes_done, conds, fams)
                    (args.out / "table.md").write_text(text + "\n")
    print(f"{time.time() - started:.0f}s; wrote {args.out}/table.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
