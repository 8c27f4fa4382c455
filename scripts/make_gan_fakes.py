"""Write GAN samples for the detector's training set into data/fake_gan/<variant>/.

Two steps, both seeded:

``crops``  cut random 64x64 grayscale crops of the photos in ``data/real``
           into a folder, the training data of the extra ``gan-train`` runs
           (``specdetect gan-train`` centre-crops and resizes every file, so
           64x64 files are taken as they are).
``sample`` load every ``gan-train`` run directory under ``--runs`` and write
           its samples as 8-bit grayscale (luma, ITU-R BT.601, what the
           detector reads) 64x64 PNGs: ``--n-train`` images from latent seed
           ``--train-seed`` (``train_<i>.png``, used to fit the model) and
           ``--n-test`` from ``--test-seed`` (``test_<i>.png``, held apart by
           ``make_model.py``). Different seeds give different latents.

Usage::

    python scripts/make_gan_fakes.py crops --out /tmp/gan_crops
    python scripts/make_gan_fakes.py sample --runs runs/repro-gan --runs runs/extra-gan

SOURCES.md in data/fake_gan records which run made each folder.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def write_crops(real_dir: Path, out: Path, n: int, size: int, seed: int) -> int:
    """Write ``n`` random ``size`` x ``size`` crops, cycling over the files of ``real_dir``."""
    rng = np.random.default_rng(seed)
    photos = [np.asarray(Image.open(p).convert("L")) for p in sorted(real_dir.glob("*.png"))]
    out.mkdir(parents=True, exist_ok=True)
    for index in range(n):
        photo = photos[index % len(photos)]
        top = int(rng.integers(0, photo.shape[0] - size + 1))
        left = int(rng.integers(0, photo.shape[1] - size + 1))
        crop = photo[top : top + size, left : left + size]
        Image.fromarray(crop).save(out / f"crop_{index:05d}.png")
    return n


def gan_luma(images) -> np.ndarray:
    """(B, C, H, W) generator output in [-1, 1] -> (B, H, W) uint8 luma (PIL ``convert("L")``)."""
    import torch

    array = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    array = array.permute(0, 2, 3, 1).cpu().numpy()
    if array.shape[-1] == 1:
        return array[..., 0]
    return np.stack([np.asarray(Image.fromarray(rgb).convert("L")) for rgb in array])


def sample_run(run_dir: Path, out: Path, n_train: int, n_test: int, seeds: tuple[int, int]):
    """Write train_/test_ PNGs of one run; the same images ``gan-sample --seed S`` makes."""
    import torch

    from specdetect.gan.metrics import sample_images
    from specdetect.gan.train import load_generator

    generator, _ = load_generator(run_dir, torch.device("cpu"))
    out.mkdir(parents=True, exist_ok=True)
    for prefix, n, seed in (("train", n_train, seeds[0]), ("test", n_test, seeds[1])):
        # Same seed stream as specdetect.gan.sample.write_samples (one batch).
        stream = torch.Generator().manual_seed(seed)
        images = sample_images(generator, n, int(torch.randint(2**62, (1,), generator=stream)))
        for index, pixels in enumerate(gan_luma(images)):
            Image.fromarray(pixels).save(out / f"{prefix}_{index:03d}.png", optimize=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    crops = commands.add_parser("crops", help="64x64 training crops of data/real")
    crops.add_argument("--real", type=Path, default=REPO / "data" / "real")
    crops.add_argument("--out", type=Path, required=True)
    crops.add_argument("-n", type=int, default=1536)
    crops.add_argument("--size", type=int, default=64)
    crops.add_argument("--seed", type=int, default=0)
    sample = commands.add_parser("sample", help="GAN samples into data/fake_gan")
    sample.add_argument(
        "--runs",
        type=Path,
        action="append",
        required=True,
        help="Folder of gan-train run directories (repeatable).",
    )
    sample.add_argument("--out", type=Path, default=REPO / "data" / "fake_gan")
    sample.add_argument(
        "--prefix",
        action="append",
        default=None,
        help="Folder-name prefix per --runs (default: none).",
    )
    sample.add_argument("--n-train", type=int, default=32)
    sample.add_argument("--n-test", type=int, default=24)
    sample.add_argument("--train-seed", type=int, default=1000)
    sample.add_argument("--test-seed", type=int, default=2000)
    args = parser.parse_args(argv)

    if args.command == "crops":
        count = write_crops(args.real, args.out, args.n, args.size, args.seed)
        print(f"wrote {count} crops to {args.out}")
        return 0
    import torch

    torch.set_num_threads(1)
    prefixes = args.prefix or [""] * len(args.runs)
    for runs, prefix in zip(args.runs, prefixes, strict=True):
        for run_dir in sorted(p.parent for p in runs.glob("*/checkpoint.pt")):
            target = args.out / f"{prefix}{run_dir.name}"
            sample_run(
                run_dir, target, args.n_train, args.n_test, (args.train_seed, args.test_seed)
            )
            print(f"{run_dir} -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
