"""Scale benchmark: ``specdetect scan`` over 100,000 small images, alone and on Dask.

Runs (each one is the real command line, in a subprocess):

1. single process (``--workers`` = usable CPUs);
2. ``--cluster local:2``;
3. ``--cluster local:2`` again, with one worker process SIGKILLed part-way:
   the job must still end with every input recorded exactly once;
4. bounded memory: ``scan -`` reading 1,000,000 paths from stdin (99% of them
   missing files, 1% real images: so the run takes minutes, not hours, while
   every path still goes through the whole pipeline and gets a CSV row), with
   the resident memory of the process tree at 10%, 50% and 100% of the input.

For each run: wall time, throughput, and the peak of the summed RSS of the
command's whole process tree (sampled every 0.2 s with psutil). The images are
generated once into ``bench-data/scale/`` and reused. Output is CSV (the JSON
report keeps the error records for its ``errors`` list, which would be
per-input memory in run 4).

    python benchmarks/bench_scale.py [--n 100000] [--paths 1000000] [--only single,kill,...]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import psutil
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench-data" / "scale"
PER_FOLDER = 1000


# ---------------------------------------------------------------------------- data
def _texture(seed: int, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size // 4, size // 4, 3), dtype=np.uint8)
    big = np.asarray(Image.fromarray(small).resize((size, size), Image.BICUBIC), np.float64)
    return np.clip(big + rng.normal(0, 6, big.shape), 0, 255).astype(np.uint8)


def _write_folder(index: int) -> int:
    from specdetect.synth import make_fake

    folder = DATA / f"d{index:03d}"
    folder.mkdir(parents=True, exist_ok=True)
    for j in range(PER_FOLDER):
        i = index * PER_FOLDER + j
        image = _texture(i)
        if i % 2:
            image = make_fake(image, np.random.default_rng(i), method="transconv")
        if i % 5 == 4:
            Image.fromarray(image).save(folder / f"{i:06d}.jpg", quality=92)
        else:
            Image.fromarray(image).save(folder / f"{i:06d}.png")
    (folder / ".done").touch()
    return index


def make_images(n: int) -> Path:
    """``n`` 32x32 images (half fakes; 1 in 5 JPEG), in folders of 1,000; reused."""
    folders = [i for i in range(n // PER_FOLDER) if not (DATA / f"d{i:03d}" / ".done").exists()]
    if folders:
        print(f"generating {len(folders) * PER_FOLDER} images into {DATA} ...", flush=True)
        start = time.perf_counter()
        with Pool(2) as pool:
            for _ in pool.imap_unordered(_write_folder, folders):
                pass
        print(f"  done in {time.perf_counter() - start:.0f} s", flush=True)
    return DATA


def image_paths(n: int) -> list[str]:
    return [
        str(DATA / f"d{i // PER_FOLDER:03d}" / f"{i:06d}.{'jpg' if i % 5 == 4 else 'png'}")
        for i in range(n)
    ]


def model_path() -> Path:
    """The shipped model if built, else a small one trained on generated pairs."""
    shipped = ROOT / "models" / "default.skops"
    if shipped.exists():
        return shipped
    path = ROOT / "bench-data" / "scale-model.skops"
    if not path.exists():
        from specdetect.detect import Detector, save_model
        from specdetect.features import FeatureConfig, features_numpy
        from specdetect.synth import make_fake

        rows, labels = [], []
        for i in range(40):
            real = _texture(900_000 + i)
            fake = make_fake(real, np.random.default_rng(i), method="transconv")
            for image, label in ((real, 0), (fake, 1)):
                gray = np.asarray(Image.fromarray(image).convert("F"), np.float32)
                rows.append(features_numpy(gray, FeatureConfig()))
                labels.append(label)
        detector = Detector(method="logreg", feature_config=FeatureConfig(), cv=3)
        save_model(detector.fit(np.stack(rows), np.array(labels)), path)
    return path


# ---------------------------------------------------------------------------- measuring
class TreeSampler(threading.Thread):
    """Samples the summed RSS of a process and all its descendants."""

    def __init__(self, pid: int, interval: float = 0.2):
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self.stop = threading.Event()

    def rss(self) -> int:
        total = 0
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total

    def run(self) -> None:
        while not self.stop.is_set():
            value = self.rss()
            if value:
                self.samples.append((time.perf_counter(), value))
            self.stop.wait(self.interval)

    @property
    def peak(self) -> int:
        return max((v for _, v in self.samples), default=0)


def scan_command(model: Path, output: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "specdetect", "scan", "--model", str(model),
        "--format", "csv", "-o", str(output), "--exit-zero", *extra,
    ]  # fmt: skip


def run_scan(cmd: list[str], kill_after: float | None = None) -> dict:
    """Run a scan, sample its memory, optionally SIGKILL one Dask worker part-way."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    sampler = TreeSampler(proc.pid)
    sampler.start()
    killed = None
    if kill_after is not None:
        time.sleep(kill_after)
        killed = kill_one_worker(proc.pid)
    stderr = proc.communicate()[1].decode(errors="replace")
    wall = time.perf_counter() - start
    sampler.stop.set()
    sampler.join()
    return {"rc": proc.returncode, "wall": wall, "peak": sampler.peak, "killed": killed,
            "stderr": stderr}  # fmt: skip


def kill_one_worker(pid: int) -> int | None:
    """SIGKILL one Dask worker process (a multiprocessing-spawned child of the scan)."""
    for child in psutil.Process(pid).children(recursive=True):
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                child.kill()
                return child.pid
        except psutil.NoSuchProcess:
            continue
    return None


def check_csv(path: Path, expected: list[str]) -> tuple[int, int, int]:
    """(rows, distinct paths, error rows); asserts each expected path is there exactly once."""
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    counts = Counter(row["path"] for row in rows)
    missing = [p for p in expected if counts.get(p, 0) != 1]
    assert not missing and len(rows) == len(expected), (len(rows), missing[:5])
    return len(rows), len(counts), sum(1 for row in rows if row["error"])


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


# ---------------------------------------------------------------------------- runs
def bench_images(n: int, model: Path, only: set[str]) -> list[dict]:
    make_images(n)
    expected = image_paths(n)
    folders = [str(DATA / f"d{i:03d}") for i in range(n // PER_FOLDER)]
    out = ROOT / "bench-data" / "scale-out.csv"
    rows = []
    cluster_wall = None
    plans = [
        ("single", "single process (2 decoding processes)", []),
        ("cluster", "--cluster local:2", ["--cluster", "local:2"]),
        ("kill", "--cluster local:2, one worker SIGKILLed", ["--cluster", "local:2"]),
    ]
    for key, label, extra in plans:
        if key not in only:
            continue
        kill_after = None
        if key == "kill":
            kill_after = 0.4 * (cluster_wall or n / 1000.0)
        print(f"run: {label} over {n:,} images ...", flush=True)
        result = run_scan(scan_command(model, out, *folders, *extra), kill_after)
        if result["rc"] != 0:
            print(result["stderr"][-3000:])
            raise SystemExit(f"scan failed with exit code {result['rc']}")
        n_rows, n_distinct, n_errors = check_csv(out, expected)
        if key == "cluster":
            cluster_wall = result["wall"]
        if key == "kill" and result["killed"] is None:
            raise SystemExit("found no Dask worker process to kill")
        rows.append({"run": label, "inputs": n_rows, "distinct": n_distinct,
                     "errors": n_errors, "wall": result["wall"],
                     "rate": n_rows / result["wall"], "peak": result["peak"],
                     "killed": result["killed"]})  # fmt: skip
        print(f"  {rows[-1]['rate']:,.0f} images/s, peak {mib(result['peak'])}", flush=True)
    return rows


def bench_path_list(n_paths: int, model: Path, n_images: int) -> dict:
    """Scan ``n_paths`` paths fed on stdin; RSS of the tree at 10/50/100% of the input."""
    real = image_paths(min(n_images, 1000))
    out = ROOT / "bench-data" / "scale-paths.csv"
    cmd = scan_command(model, out, "-")
    print(f"run: {n_paths:,} paths from stdin (1% real images, 99% missing) ...", flush=True)
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT
    )
    sampler = TreeSampler(proc.pid)
    sampler.start()
    marks = {}
    stdin = io.TextIOWrapper(proc.stdin, encoding="utf-8", write_through=False)
    for i in range(n_paths):
        path = real[i // 100 % len(real)] if i % 100 == 0 else f"bench-data/missing/{i:07d}.png"
        stdin.write(path + "\n")
        done = i + 1
        if done in (n_paths // 10, n_paths // 2):
            stdin.flush()  # the scan reads lazily: a full pipe means it has consumed the rest
            marks[f"{round(100 * done / n_paths)}%"] = sampler.rss()
    stdin.close()  # 100%: every path is in (all but a pipe buffer's worth already read)
    marks["100%"] = sampler.rss()
    proc.wait()
    wall = time.perf_counter() - start
    sampler.stop.set()
    sampler.join()
    with open(out, newline="", encoding="utf-8") as handle:
        n_rows = sum(1 for _ in csv.DictReader(handle))
    assert n_rows == n_paths, (n_rows, n_paths)
    return {"paths": n_paths, "rows": n_rows, "wall": wall, "rate": n_paths / wall,
            "marks": marks, "peak": sampler.peak, "rc": proc.returncode}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="images (multiple of 1000)")
    parser.add_argument("--paths", type=int, default=1_000_000, help="paths for the memory run")
    parser.add_argument("--only", default="single,cluster,kill,paths")
    args = parser.parse_args()
    only = set(args.only.split(","))
    model = model_path()
    print(f"model: {model.relative_to(ROOT)}; CPUs: {os.cpu_count()}", flush=True)

    rows = bench_images(args.n, model, only) if only & {"single", "cluster", "kill"} else []
    if rows:
        print("\n| run | inputs | each once | errors | wall | images/s | peak RSS (tree) |")
        print("|---|---:|---|---:|---:|---:|---:|")
        for r in rows:
            once = "yes" if r["distinct"] == r["inputs"] else "NO"
            note = f" (killed pid {r['killed']})" if r["killed"] else ""
            print(f"| {r['run']}{note} | {r['inputs']:,} | {once} | {r['errors']} | "
                  f"{r['wall']:.0f} s | {r['rate']:,.0f} | {mib(r['peak'])} |")  # fmt: skip
    if "paths" in only:
        make_images(1000)
        result = bench_path_list(args.paths, model, args.n)
        marks = ", ".join(f"{k}: {mib(v)}" for k, v in result["marks"].items())
        print(f"\n{result['paths']:,} paths from stdin: {result['wall']:.0f} s "
              f"({result['rate']:,.0f} paths/s), exit code {result['rc']} (--exit-zero); "
              f"RSS of the process tree at {marks}; peak {mib(result['peak'])}")  # fmt: skip


if __name__ == "__main__":
    main()
