"""Reproduce the paper's GAN result: the spectral loss + 3 final 5x5 convs fix the spectrum.

Trains the DCGAN on random 64x64 crops of real photos four times with equal
budgets (same data, seed, epochs, batch):

1. transposed convolutions, no spectral loss;
2. transposed convolutions, spectral loss + three 5x5 final convolutions;
3. and 4. the same with nearest-neighbour up-sampling;

then prints a table of the final spectral distance, detectability and
seconds per epoch, and writes ``summary.json`` and ``spectra.png`` (mean
spectra of real vs each run) under ``--out``. Not part of CI (it takes
about 20-30 minutes on a 2-core CPU with the defaults).

The other side of the arms race: ``--flag-images`` samples of each run are
written as PNGs and scanned with the shipped model
(:func:`specdetect.detect.default_model_path`, read as the scan does), and
the table gets the share the detector flags as fake; the same number of
real training crops gives the false-positive reference row.

Usage: ``python scripts/repro_gan.py --out runs/repro-gan [--data DIR] [--quick]``
(``--quick``: 512 crops, 2 epochs, 200 metric and flag images, a few minutes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

DEFAULT_DATA = Path("/work/shared/data/photos")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of photos")
    parser.add_argument("--crops", type=int, default=1536, help="64x64 training crops")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--ngf", type=int, default=16)
    parser.add_argument("--ndf", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--spectral-weight", type=float, default=300.0, help="lambda")
    parser.add_argument("--spectral-norm", default="first", choices=("first", "minmax"))
    parser.add_argument("--spectral-order", default="log", choices=("power", "log"))
    parser.add_argument(
        "--spectral-reduction",
        default="image",
        choices=("image", "batch"),
        help="image: the recorded README table; batch: what gan-train --spectral uses",
    )
    parser.add_argument("--metric-images", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--jobs", type=int, default=4, help="variants trained in parallel")
    parser.add_argument("--units", default="transconv,nearest", help="up-sampling units")
    parser.add_argument(
        "--flag-images", type=int, default=500, help="samples scanned by the shipped model"
    )
    parser.add_argument(
        "--quick", action="store_true", help="reduced run: 512 crops, 2 epochs, 200 images"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.crops, args.epochs = min(args.crops, 512), min(args.epochs, 2)
        args.metric_images, args.flag_images = min(args.metric_images, 200), 200

    import numpy as np
    import torch

    from specdetect.gan.metrics import image_features

    torch.set_num_threads(args.threads)
    if not args.data.is_dir():
        print(f"error: {args.data}: not a folder (use --data DIR)", file=sys.stderr)
        return 2
    crops = load_crops(vars(args))
    print(f"{len(crops)} crops of 64x64 from {args.data}", flush=True)

    variants = []
    for unit in args.units.split(","):
        variants.append((f"{unit}", unit, 0.0, 0))
        variants.append((f"{unit}+spectral+3x5x5", unit, args.spectral_weight, 3))
    spectra = {"real": image_features(crops[: args.metric_images]).mean(0).tolist()}
    real_flagged = flag_share(
        write_pngs(crops[: args.flag_images], args.out / "real_crops"), threads=args.threads
    )
    print(f"shipped model flags {real_flagged:.1%} of {args.flag_images} real crops", flush=True)
    del crops  # each worker cuts the same crops again (cheaper than shipping them)
    rows = []
    if args.jobs > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            results = list(pool.map(run_variant, [(vars(args), v) for v in variants]))
    else:
        results = [run_variant((vars(args), v)) for v in variants]
    for row, spectrum in results:
        rows.append(row)
        spectra[row["run"]] = spectrum

    table = format_table(rows, args, real_flagged)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(table + "\n")
    summary = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "model": str(model_path()),
        "real_flagged": real_flagged,
        "rows": rows,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot(spectra, args.out / "spectra.png", np)
    print(f"spectra plot: {args.out / 'spectra.png'}")
    return 0


def load_crops(args: dict):
    from specdetect.gan.data import random_crops
    from specdetect.media import IMAGE_EXTENSIONS, iter_paths

    paths = list(iter_paths([args["data"]], IMAGE_EXTENSIONS))
    report = lambda message: print(f"error: {message}", file=sys.stderr)  # noqa: E731
    return random_crops(paths, 64, args["crops"], 3, args["seed"], on_error=report).images


def model_path() -> Path:
    """The shipped model (whatever ``models/default.skops`` holds now)."""
    from specdetect.detect import default_model_path

    return default_model_path()


def write_pngs(images, folder: Path) -> list[str]:
    """Images ``(N, C, H, W)`` in [-1, 1] as ``folder/img_00000.png``, ... (8-bit)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    pixels = ((images.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    paths = []
    for index, array in enumerate(pixels):
        path = folder / f"img_{index:05d}.png"
        Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(path)
        paths.append(str(path))
    return paths


def flag_share(paths: list[str], threads: int = 1) -> float:
    """Share of ``paths`` the shipped model labels fake, scanned as ``specdetect scan`` does."""
    from specdetect.scan import flagged, is_error, open_detector, scan_records

    detector, _ = open_detector(model_path())  # the NumPy scorer, or the skops model
    records = list(scan_records(paths, detector, device="cpu", workers=threads))
    scored = [record for record in records if not is_error(record)]
    if len(scored) < len(records):
        print(f"warning: {len(records) - len(scored)} samples could not be scanned", flush=True)
    return sum(map(flagged, scored)) / max(1, len(scored))


def run_variant(task: tuple[dict, tuple]) -> tuple[dict, list[float]]:
    """Train one variant (in a worker process); return its table row and mean spectrum."""
    import torch

    from specdetect.gan.config import GanConfig
    from specdetect.gan.metrics import image_features, sample_images
    from specdetect.gan.train import train_gan

    args, (name, unit, weight, finals) = task
    torch.set_num_threads(args["threads"])  # a shared small CPU: more threads only contend
    config = GanConfig(
        objective="gan",
        upsample=unit,
        size=64,
        channels=3,
        final_convs=finals,
        spectral_weight=weight,
        spectral_norm=args["spectral_norm"],
        spectral_order=args["spectral_order"],
        spectral_reduction=args["spectral_reduction"] if weight > 0 else "image",
        ngf=args["ngf"],
        ndf=args["ndf"],
        epochs=args["epochs"],
        batch_size=args["batch"],
        lr=args["lr"],
        seed=args["seed"],
        device=args["device"],
        metric_images=args["metric_images"],
    )
    began = time.perf_counter()
    result = train_gan(
        config,
        load_crops(args),
        Path(args["out"]) / name.replace("+", "_"),
        log=lambda line: print(f"[{name}] {line}", flush=True),
    )
    last = result.metrics[-1]
    row = {
        "run": name,
        "spectral_distance": last["spectral_distance"],
        "detectability": last["detectability"],
        "spectral_frechet_distance": last["spectral_frechet_distance"],
        "seconds_per_epoch": result.seconds_per_epoch,
        "wall_seconds": time.perf_counter() - began,
    }
    fake = sample_images(result.generator, args["metric_images"], args["seed"] + 999)
    flag = sample_images(result.generator, args["flag_images"], args["seed"] + 998)
    folder = Path(args["out"]) / name.replace("+", "_") / "flag_samples"
    row["shipped_flagged"] = flag_share(write_pngs(flag, folder), threads=args["threads"])
    return row, image_features(fake).mean(0).tolist()


def format_table(rows: list[dict], args, real_flagged: float | None = None) -> str:
    """Markdown table: one row per run, plus the real crops' flagged share."""
    lines = [
        f"DCGAN 64x64, {args.crops} crops, {args.epochs} epochs, batch {args.batch}, "
        f"ngf/ndf {args.ngf}/{args.ndf}, lambda {args.spectral_weight} ({args.spectral_norm}); "
        f"shipped model: {model_path().name}, {args.flag_images} images per row",
        "",
        "| run | spectral_distance | detectability | spectral_frechet | "
        "shipped model, share flagged | s/epoch |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    if real_flagged is not None:
        lines.append(f"| real crops (reference) | | | | {real_flagged:.1%} | |")
    for row in rows:
        flagged = row.get("shipped_flagged")
        lines.append(
            f"| {row['run']} | {row['spectral_distance']:.4f} | {row['detectability']:.3f} | "
            f"{row['spectral_frechet_distance']:.3f} | "
            f"{'' if flagged is None else f'{flagged:.1%}'} | {row['seconds_per_epoch']:.1f} |"
        )
    base = {r["run"]: r for r in rows}
    for row in rows:
        if "+" in row["run"]:
            plain = base[row["run"].split("+")[0]]
            ratio = plain["spectral_distance"] / max(row["spectral_distance"], 1e-12)
            closer = abs(row["detectability"] - 0.5) < abs(plain["detectability"] - 0.5)
            lines.append(
                f"{row['run']}: spectral distance {ratio:.1f}x smaller "
                f"(goal >= 3x: {'met' if ratio >= 3 else 'NOT met'}); detectability closer "
                f"to 50%: {'yes' if closer else 'no'}"
            )
    return "\n".join(lines)


def plot(spectra: dict, path: Path, np) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real = np.asarray(spectra["real"])
    freqs = np.linspace(0, 0.5, len(real))
    figure, axis = plt.subplots(figsize=(7, 4.5))
    axis.plot(freqs, real, color="black", linewidth=2, label="real")
    for name, values in spectra.items():
        if name != "real":
            axis.plot(freqs, values, "-" if "+" in name else "--", label=name)
    axis.set_xlabel("spatial frequency (cycles per pixel)")
    axis.set_ylabel("normalized log power (features)")
    axis.set_title("DCGAN on 64x64 photo crops: mean spectra")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
