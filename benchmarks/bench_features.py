"""Feature-extraction throughput: specdetect vs a naive loop vs decoding alone.

Generates folders of natural-looking JPEGs (256x256 and 1024x1024) under
``bench-data/`` (reused when present) and prints, in one run, images per
second of:

* ``specdetect features`` (the CLI, in a subprocess, default workers),
* a naive per-image loop (PIL decode, full ``fft2``, ``fftshift``, ``abs``,
  ``log``, ``bincount``; one image at a time, one process),
* decoding alone (PIL decode to a pixel array) with the same number of
  worker processes as ``specdetect features`` — the ceiling for a CPU run,

and the ratios. With ``--device cuda`` on a GPU machine it also times the CUDA
path and checks it against the CPU features.

Usage: ``python benchmarks/bench_features.py [--n256 N] [--n1024 N] [--device cuda]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from specdetect.pipeline import _run_tasks, default_workers
from specdetect.synth import natural_noise

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench-data"


def natural_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """A colour image with a 1/f amplitude spectrum in each channel, like a photograph."""
    channels = np.stack([natural_noise(rng, size) for _ in range(3)], axis=-1)
    return np.clip(128 + 40 * channels, 0, 255).astype(np.uint8)


def make_folder(size: int, count: int) -> list[str]:
    folder = DATA / f"jpeg{size}"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(size)
    paths = []
    for i in range(count):
        path = folder / f"{i:05d}.jpg"
        if not path.exists():
            Image.fromarray(natural_image(rng, size)).save(path, quality=90)
        paths.append(str(path))
    return paths


def naive_feature(path: str) -> np.ndarray:
    gray = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    spectrum = np.fft.fftshift(np.fft.fft2(gray))
    magnitude = 20 * np.log(np.abs(spectrum) + 1e-8)
    h, w = magnitude.shape
    y, x = np.indices(magnitude.shape)
    radius = np.hypot(x - w // 2, y - h // 2).astype(int)
    return np.bincount(radius.ravel(), magnitude.ravel()) / np.bincount(radius.ravel())


def time_naive(paths: list[str]) -> float:
    start = time.perf_counter()
    for path in paths:
        naive_feature(path)
    return len(paths) / (time.perf_counter() - start)


def _decode(paths: list[str]) -> int:
    for path in paths:
        with Image.open(path) as image:
            np.asarray(image)
    return len(paths)


def time_decode_only(paths: list[str], workers: int) -> float:
    start = time.perf_counter()
    tasks = (paths[i : i + 8] for i in range(0, len(paths), 8))
    done = sum(_run_tasks(_decode, tasks, workers))
    assert done == len(paths)
    return len(paths) / (time.perf_counter() - start)


def time_cli(paths: list[str], device: str = "cpu") -> float:
    folder = str(Path(paths[0]).parent)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "features.npz")
        command = [sys.executable, "-m", "specdetect", "features", folder, "-o", out]
        start = time.perf_counter()
        subprocess.run([*command, "--device", device], check=True, capture_output=True)
        elapsed = time.perf_counter() - start
        assert len(np.load(out)["paths"]) == len(paths)
    return len(paths) / elapsed


def compare_cuda(paths: list[str]) -> None:
    from specdetect.pipeline import extract_features

    cpu = np.stack([r.features[0] for r in extract_features(paths, device="cpu")])
    start = time.perf_counter()
    gpu = np.stack([r.features[0] for r in extract_features(paths, device="cuda")])
    rate = len(paths) / (time.perf_counter() - start)
    error = float(np.abs(cpu - gpu).max())
    print(f"  cuda path: {rate:8.1f} img/s, max |cuda - cpu| = {error:.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n256", type=int, default=1000)
    parser.add_argument("--n1024", type=int, default=100)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    workers = default_workers()
    print(f"feature extraction benchmark ({workers} worker processes, {os.cpu_count()} CPUs)")
    for size, count in ((256, args.n256), (1024, args.n1024)):
        paths = make_folder(size, count)
        decode = time_decode_only(paths, workers)
        naive = time_naive(paths[: max(10, count // 4)])
        ours = time_cli(paths)
        print(f"{size}x{size} JPEG, {count} images:")
        print(f"  specdetect features : {ours:8.1f} img/s")
        print(f"  naive loop          : {naive:8.1f} img/s   -> speed-up {ours / naive:5.2f}x")
        print(f"  decode only         : {decode:8.1f} img/s   -> {100 * ours / decode:5.1f}% of it")
        if args.device == "cuda":
            compare_cuda(paths)


if __name__ == "__main__":
    main()
