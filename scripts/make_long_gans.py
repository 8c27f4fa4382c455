"""Longer, wider GAN runs of our own, sampled into data/fake_gan/, and how peaky they look.

The generators behind the first ``data/fake_gan`` folders (ngf 16, 6-20 epochs
of CPU training) leave a dense grid of peaks over the whole noise-residual
spectrum: a caricature of a generator. A well-trained DCGAN (ngf 64) leaves a
few faint peaks over a camera-like spread. This script trains wider
generators (``specdetect gan-train``, ngf 64 by default) until their samples
stop improving, samples them the same way as ``scripts/make_gan_fakes.py``
and measures the peaks.

Subcommands, all seeded:

``crops``              random 64x64 RGB crops of the photo pool into a folder
                       (the same crops as ``make repro-gan``: ``random_crops``,
                       seed 0; the first 1,536 of any ``-n`` are those).
``train``              train the variants one after the other with
                       ``specdetect gan-train``, in chunks of ``--chunk`` epochs
                       (``--resume`` after the first), until the per-epoch
                       spectral Frechet distance (``metrics.jsonl``) has not
                       improved by ``--min-delta`` (relative) for ``--patience``
                       epochs, or ``--max-epochs``, or ``--deadline``. A run that
                       already has a checkpoint is extended, so the command can
                       be re-run after a kill or with a later deadline.
``sample``             every run under ``--runs`` -> ``data/fake_gan/<run name>/``:
                       ``train_000..031`` (latent seed 1000) and ``test_000..023``
                       (seed 2000), 64x64 8-bit luma PNGs, as make_gan_fakes.py.
``residual-spectrum``  mean noise-residual power spectrum (image minus its 3x3
                       median, 2-D FFT, averaged over 64x64 tiles) of folders,
                       with peak numbers (below) and an optional figure.

Peak numbers (all on the mean residual power spectrum ``P``, 64x64 bins, DC left out):

* ``grid_frac``: share of ``P``'s energy at the 63 positions (k/8, l/8)
  cycles per pixel; a smooth spectrum gives about 63/4095 = 0.015.
* ``grid_db``: mean over those positions of 10 log10(P / median of the 5x5
  neighbourhood without the k/8 positions); about 0 dB without peaks.
* ``n_peaks``: how many of the 63 stand more than 3 dB above their neighbourhood;
  ``n_peaks16`` the same on the finer (k/16, l/16) grid (255 positions, the
  period of a generator with four x2 stages).
* ``(1/4,0)``, ``(0,1/4)``, ``(1/2,0)``, ``(0,1/2)``: that contrast at the
  positions a trained transposed-convolution generator is known to mark.

Usage::

    python scripts/make_long_gans.py crops --out /tmp/long_gan_crops
    python scripts/make_long_gans.py train --data /tmp/long_gan_crops --runs runs/long-gan
    python scripts/make_long_gans.py sample --runs runs/long-gan
    python scripts/make_long_gans.py residual-spectrum data/fake_gan/* data/real \\
        --figure runs/long-gan/residual_spectra.png

``make gan-fakes-long`` runs the first three (hours on a CPU; never in CI).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from make_gan_fakes import sample_run  # noqa: E402

PHOTOS = Path("/work/shared/data/photos")

#: name -> (gan-train --arch, --upsample). Every run: 64x64 RGB, ngf/ndf from the command line.
VARIANTS: dict[str, tuple[str, str]] = {
    "dcgan_transconv": ("dcgan", "transconv"),  # the PyTorch-tutorial DCGAN at ngf 64
    "lsgan_nearest": ("lsgan", "nearest"),
    "wgan-gp_bilinear": ("wgan-gp", "bilinear"),
    "dragan_transconv": ("dragan", "transconv"),
    "dcgan_bilinear": ("dcgan", "bilinear"),
    "lsgan_transconv": ("lsgan", "transconv"),
}


# ----------------------------------------------------------------------------- crops


def write_crops(photos: Path, out: Path, n: int, seed: int) -> int:
    """``n`` random 64x64 RGB crops of ``photos`` as PNGs (``random_crops``, as repro-gan)."""
    from specdetect.gan.data import random_crops
    from specdetect.media import IMAGE_EXTENSIONS, iter_paths

    paths = list(iter_paths([photos], IMAGE_EXTENSIONS))
    images = random_crops(paths, 64, n, 3, seed).images
    pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    out.mkdir(parents=True, exist_ok=True)
    for index, array in enumerate(pixels):
        Image.fromarray(array).save(out / f"crop_{index:05d}.png")
    return len(pixels)


# ----------------------------------------------------------------------------- train


def read_metrics(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plateaued(records: list[dict], patience: int, min_delta: float, key: str) -> bool:
    """True when ``key`` has not improved by ``min_delta`` in the last ``patience`` epochs.

    The running median damps single-epoch swings of a GAN's metrics; an
    improvement counts when the median drops below ``(1 - min_delta)`` times
    the best median before it.
    """
    values = [r[key] for r in records if key in r]
    if len(values) < patience + 3:
        return False
    smooth = [float(np.median(values[max(0, i - 2) : i + 1])) for i in range(len(values))]
    best_before = min(smooth[:-patience])
    return min(smooth[-patience:]) > (1 - min_delta) * best_before


def train_variant(name: str, args, deadline: float | None) -> str:
    """Train (or extend) one run in chunks; returns why it stopped."""
    arch, upsample = VARIANTS[name]
    run = args.runs / f"{name}_ngf{args.ngf}{args.tag}"
    command = [
        str(Path(sys.executable).parent / "specdetect"),
        "gan-train",
        str(args.data),
        "--out",
        str(run),
        "--arch",
        arch,
        "--upsample",
        upsample,
        "--ngf",
        str(args.ngf),
        "--ndf",
        str(args.ndf),
        "--size",
        "64",
        "--channels",
        "3",
        "--batch",
        str(args.batch),
        "--seed",
        str(args.seed),
        "--device",
        args.device,
        "--metric-images",
        str(args.metric_images),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    chunk_seconds = None
    while True:
        records = read_metrics(run)
        done = len(records)
        if done >= args.max_epochs:
            return f"max epochs ({done})"
        if plateaued(records, args.patience, args.min_delta, args.metric):
            return f"{args.metric} plateau after {done} epochs"
        chunk = min(args.chunk, args.max_epochs - done)
        if deadline is not None:
            per_epoch = chunk_seconds or (
                np.mean([r["seconds"] + r.get("metric_seconds", 0) for r in records[-3:]])
                if records
                else None
            )
            if per_epoch is not None:
                fits = int((deadline - time.time()) // (per_epoch * 1.1))
                chunk = min(chunk, fits)
            if chunk <= 0:
                return f"deadline after {done} epochs"
        resume = ["--resume"] if (run / "checkpoint.pt").is_file() else []
        full = [*command, "--epochs", str(done + chunk), *resume]
        print("+ " + " ".join(full), flush=True)
        began = time.time()
        subprocess.run(full, check=True, env=env)
        chunk_seconds = (time.time() - began) / chunk
        last = read_metrics(run)[-1]
        value = last.get(args.metric, float("nan"))
        print(
            f"[{name}] epoch {last['epoch']}: {args.metric} {value:.4f}"
            f"  {chunk_seconds:.0f} s/epoch (with metrics and start-up)",
            flush=True,
        )


def parse_deadline(text: str | None) -> float | None:
    """``HH:MM`` (UTC, today), an ISO time, or ``+MINUTES`` -> epoch seconds."""
    if not text:
        return None
    if text.startswith("+"):
        return time.time() + 60 * float(text[1:])
    now = dt.datetime.now(dt.UTC)
    if len(text) <= 5:
        hour, minute = map(int, text.split(":"))
        return now.replace(hour=hour, minute=minute, second=0, microsecond=0).timestamp()
    when = dt.datetime.fromisoformat(text)
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).timestamp()


# ----------------------------------------------------------------------------- residual spectrum


def load_tiles(folder: Path, tile: int, limit: int | None) -> np.ndarray:
    """Luma tiles ``(N, tile, tile)``: each PNG/JPEG cut into non-overlapping tiles."""
    tiles = []
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in {".png", ".jpg", ".jpeg"})
    for path in paths:
        luma = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
        for top in range(0, luma.shape[0] - tile + 1, tile):
            for left in range(0, luma.shape[1] - tile + 1, tile):
                tiles.append(luma[top : top + tile, left : left + tile])
    if not tiles:
        raise ValueError(f"{folder}: no images of at least {tile}x{tile}")
    tiles = np.stack(tiles)
    if limit is not None and len(tiles) > limit:
        pick = np.random.default_rng(0).choice(len(tiles), limit, replace=False)
        tiles = tiles[np.sort(pick)]
    return tiles


def residual_spectrum(tiles: np.ndarray) -> np.ndarray:
    """Mean power spectrum of ``tile - median3x3(tile)``, unshifted (DC at [0, 0])."""
    from scipy.ndimage import median_filter

    residual = tiles - median_filter(tiles, size=(1, 3, 3), mode="reflect")
    return (np.abs(np.fft.fft2(residual)) ** 2).mean(0)


def _contrast_db(power: np.ndarray, ky: int, kx: int, grid: np.ndarray) -> float:
    n = power.shape[0]
    ys = (ky + np.arange(-2, 3)[:, None]) % n
    xs = (kx + np.arange(-2, 3)[None, :]) % n
    ring = power[ys, xs][~grid[ys, xs]]  # neighbourhood without any k/8 position
    return float(10 * np.log10(power[ky, kx] / np.median(ring)))


def peak_numbers(power: np.ndarray, step: int | None = None) -> dict:
    """Peakiness of a mean residual spectrum (DC at [0, 0]); see the module docstring."""
    n = power.shape[0]
    step = step or n // 8
    grid = np.zeros_like(power, dtype=bool)
    grid[::step, ::step] = True
    grid[0, 0] = False
    total = power.sum() - power[0, 0]
    positions = zip(*np.nonzero(grid), strict=True)
    contrasts = [_contrast_db(power, ky, kx, grid) for ky, kx in positions]
    out = {
        "grid_frac": float(power[grid].sum() / total),
        "grid_db": float(np.mean(contrasts)),
        "n_peaks": int(np.sum(np.array(contrasts) > 3.0)),
    }
    # The finer k/16 grid (255 positions): a 4-stage x2 generator repeats with period 16.
    fine = np.zeros_like(grid)
    fine[:: step // 2, :: step // 2] = True
    fine[0, 0] = False
    fine_contrasts = [
        _contrast_db(power, ky, kx, fine) for ky, kx in zip(*np.nonzero(fine), strict=True)
    ]
    out["n_peaks16"] = int(np.sum(np.array(fine_contrasts) > 3.0))
    for label, (fy, fx) in {
        "(1/4,0)": (0, n // 4),
        "(0,1/4)": (n // 4, 0),
        "(1/2,0)": (0, n // 2),
        "(0,1/2)": (n // 2, 0),
    }.items():
        out[label] = _contrast_db(power, fy, fx, grid)
    return out


def plot_spectra(spectra: dict[str, np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = len(spectra)
    cols = min(4, count)
    rows = (count + cols - 1) // cols
    figure, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.3 * rows), squeeze=False)
    for axis in axes.flat:
        axis.set_axis_off()
    for axis, (label, power) in zip(axes.flat, spectra.items(), strict=False):
        shown = np.fft.fftshift(10 * np.log10(power / np.median(power)))
        axis.imshow(shown, cmap="magma", vmin=-10, vmax=15, extent=(-0.5, 0.5, 0.5, -0.5))
        axis.set_title(label, fontsize=8)
        axis.set_axis_on()
        axis.set_xticks([-0.5, -0.25, 0, 0.25])
        axis.set_yticks([-0.5, -0.25, 0, 0.25])
        axis.tick_params(labelsize=6)
    figure.suptitle("mean residual power (image - 3x3 median), dB over median; cycles/pixel")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    crops = commands.add_parser("crops", help="64x64 RGB training crops of the photo pool")
    crops.add_argument("--photos", type=Path, default=PHOTOS)
    crops.add_argument("--out", type=Path, required=True)
    crops.add_argument("-n", type=int, default=1536)
    crops.add_argument("--seed", type=int, default=0)

    train = commands.add_parser("train", help="train the variants until samples stop improving")
    train.add_argument("--data", type=Path, required=True, help="folder of training crops")
    train.add_argument("--runs", type=Path, default=REPO / "runs" / "long-gan")
    train.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    train.add_argument("--ngf", type=int, default=64)
    train.add_argument("--ndf", type=int, default=64)
    train.add_argument("--batch", type=int, default=64)
    train.add_argument("--tag", default="", help="run-name suffix, e.g. _b16")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default="cpu")
    train.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of gan-train")
    train.add_argument("--metric-images", type=int, default=500)
    train.add_argument("--metric", default="spectral_frechet_distance")
    train.add_argument("--chunk", type=int, default=5, help="epochs per gan-train call")
    train.add_argument("--patience", type=int, default=15, help="epochs without improvement")
    train.add_argument("--min-delta", type=float, default=0.03, help="relative improvement")
    train.add_argument("--max-epochs", type=int, default=300)
    train.add_argument("--deadline", help="stop chunks by HH:MM UTC, an ISO time or +MINUTES")

    sample = commands.add_parser("sample", help="samples of every run into data/fake_gan")
    sample.add_argument("--runs", type=Path, default=REPO / "runs" / "long-gan")
    sample.add_argument("--out", type=Path, default=REPO / "data" / "fake_gan")
    sample.add_argument("--only", nargs="*", help="run names (default: all under --runs)")
    sample.add_argument("--overwrite", action="store_true")

    spectrum = commands.add_parser("residual-spectrum", help="peak numbers of folders")
    spectrum.add_argument("folders", type=Path, nargs="+")
    spectrum.add_argument("--tile", type=int, default=64)
    spectrum.add_argument("--limit", type=int, default=2000, help="at most this many tiles")
    spectrum.add_argument("--figure", type=Path)
    spectrum.add_argument("--json", type=Path)

    args = parser.parse_args(argv)
    if args.command == "crops":
        print(f"wrote {write_crops(args.photos, args.out, args.n, args.seed)} crops to {args.out}")
        return 0
    if args.command == "train":
        deadline = parse_deadline(args.deadline)
        for name in args.variants:
            began = time.time()
            reason = train_variant(name, args, deadline)
            print(f"[{name}] stopped: {reason} ({(time.time() - began) / 60:.1f} min)", flush=True)
        return 0
    if args.command == "sample":
        import torch

        torch.set_num_threads(1)
        runs = sorted(p.parent for p in args.runs.glob("*/checkpoint.pt"))
        for run in runs:
            if args.only and run.name not in args.only:
                continue
            target = args.out / run.name
            if target.exists() and not args.overwrite:
                print(f"{target} exists, skipped (--overwrite replaces it)")
                continue
            if target.exists():
                shutil.rmtree(target)
            sample_run(run, target, 32, 24, (1000, 2000))
            epochs = len(read_metrics(run))
            print(f"{run} ({epochs} epochs) -> {target}")
        return 0

    spectra, rows = {}, []
    for folder in args.folders:
        if not folder.is_dir():
            continue
        tiles = load_tiles(folder, args.tile, args.limit)
        power = residual_spectrum(tiles)
        label = f"{folder.parent.name}/{folder.name}" if folder.parent.name else folder.name
        spectra[label] = power
        rows.append({"folder": label, "tiles": len(tiles), **peak_numbers(power)})
    keys = ["grid_frac", "grid_db", "n_peaks", "n_peaks16"]
    keys += ["(1/4,0)", "(0,1/4)", "(1/2,0)", "(0,1/2)"]
    print("| folder | tiles | " + " | ".join(keys) + " |")
    print("|---|---:|" + "---:|" * len(keys))
    for row in rows:
        cells = [f"{row[k]:.3f}" if k == "grid_frac" else f"{row[k]:.1f}" for k in keys]
        cells[2], cells[3] = str(row["n_peaks"]), str(row["n_peaks16"])
        print(f"| `{row['folder']}` | {row['tiles']} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    if args.figure:
        plot_spectra(spectra, args.figure)
        print(f"figure: {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
