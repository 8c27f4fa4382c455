"""`specdetect scan` against `specdetect features` on the same small images.

Generates N small JPEG images (default 10,000 of 64x64, half of them passed
through a transposed-convolution up-sampler) under ``bench-data/``, then runs,
in the same session and with the same number of workers, alternately:

* ``specdetect features DIR -o OUT.npz``
* ``specdetect scan DIR --format csv -o OUT.csv --exit-zero``

By default the scan uses a small model trained here on ``FeatureConfig()``, the
settings ``specdetect features`` computes, so both commands do the same feature
work and the ratio measures what scanning adds (model loading, scoring,
report). ``--model models/default.skops`` measures the shipped model, what
users scan with, whose richer features (``MODEL_DEFAULT``: ``norm="center"``,
``coherence=True``) cost more to compute than the command's default ones; the
ratio against the ``features`` command as it is stays the acceptance number.

``--same-features`` adds a third command to the alternation, labelled
``features*``: the ``features`` command's own code with the model's feature
settings in place of its default (the command has no option for them; the
bench swaps them in), so that ``scan / features*`` shows what scanning adds
over computing the very features the model reads.

It prints wall time, images per second, the scan/features speed ratio
(the acceptance asks for >= 0.8) and the peak resident memory of each run:
the peak of the sum over the command's process tree (main process plus its
decoding workers), sampled every 50 ms with psutil, and the largest single
process (``getrusage`` of the children). With ``--sizes`` the scan is also run
on prefixes of the input list (read from stdin) to show that memory does not
grow with the number of inputs.

Usage::

    nice -n 10 python benchmarks/bench_scan.py            # 10,000 images
    python benchmarks/bench_scan.py --n 2000 --repeats 1  # quicker
    nice -n 10 python benchmarks/bench_scan.py --model models/default.skops --same-features
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def make_images(folder: Path, n: int, size: int, seed: int = 0) -> list[Path]:
    """N JPEGs (quality 95): half natural-like textures, half up-sampled fakes."""
    from PIL import Image

    from specdetect.synth import make_fake, natural_noise

    marker = folder / f".done-{n}-{size}"
    paths = [folder / f"{i // 1000:03d}" / f"img{i:06d}.jpg" for i in range(n)]
    if marker.exists():
        return paths
    rng = np.random.default_rng(seed)
    for i, path in enumerate(paths):
        path.parent.mkdir(parents=True, exist_ok=True)
        image = np.clip(natural_noise(rng, size) * 40 + 128, 0, 255).astype(np.uint8)
        if i % 2:
            image = make_fake(image, rng)
        Image.fromarray(image).save(path, quality=95)
    marker.touch()
    return paths


def make_model(folder: Path, paths: list[Path]) -> Path:
    """A detector on ``FeatureConfig()`` (what ``specdetect features`` computes)."""
    from specdetect.detect import Detector, save_model
    from specdetect.features import FeatureConfig
    from specdetect.pipeline import extract_features

    model = folder / "bench-model.skops"
    if model.exists():
        return model
    train = [str(p) for p in paths[:400]]  # even index: real, odd: fake
    rows = np.concatenate([r.features for r in extract_features(train, FeatureConfig())])
    labels = np.arange(len(train)) % 2
    save_model(Detector("svm", FeatureConfig(), cv=3).fit(rows, labels), model)
    return model


class PeakMemory:
    """Peak RSS of a process alone and summed with its descendants, sampled in a thread."""

    def __init__(self, pid: int, interval: float = 0.05):
        self.pid, self.interval, self.peak, self.peak_main = pid, interval, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _run(self):
        try:
            import psutil
        except ImportError:  # psutil comes with the [distributed] extra
            return
        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._stop.is_set():
            total = 0
            try:
                self.peak_main = max(self.peak_main, root.memory_info().rss)
                for proc in [root, *root.children(recursive=True)]:
                    try:
                        total += proc.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                break
            self.peak = max(self.peak, total)
            time.sleep(self.interval)


#: ``specdetect features`` with a model's feature settings in place of the
#: command's default: ``python -c SAME_FEATURES MODEL features DIR -o OUT ...``.
SAME_FEATURES = """\
import sys
import specdetect.featurize as f
from specdetect.detect.model_io import read_feature_config
config = read_feature_config(sys.argv.pop(1))
# The command's featurize and table, handed the model's settings instead of its own
# (FeatureConfig itself stays: the workers' jobs are pickled with it).
featurize, table = f.featurize, f.FeatureTable
f.featurize = lambda inputs, _, **options: featurize(inputs, config, **options)
f.FeatureTable = lambda _: table(config)
sys.argv[0] = "specdetect"
from specdetect.cli import main
main()
"""


def run(cmd: list[str], stdin_text: str | None = None) -> dict:
    """Run a command; wall time, peak tree RSS, peak single-process RSS."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    before, cpu_before = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    with PeakMemory(proc.pid) as memory:
        _, stderr = proc.communicate(stdin_text)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    after, cpu = usage.ru_maxrss, usage.ru_utime + usage.ru_stime - cpu_before
    if proc.returncode not in (0,):
        raise SystemExit(f"{' '.join(cmd)} exited {proc.returncode}:\n{stderr[-2000:]}")
    # ru_maxrss of children is a running maximum (KiB): only meaningful when it grew.
    single = after / 1024 if after > before else None
    return {
        "wall_s": wall,
        "cpu_s": cpu,  # user + sys of the command and its workers: robust to other load
        "load_avg": (load_before + os.getloadavg()[0]) / 2,
        "tree_peak_mib": memory.peak / 2**20,
        "main_peak_mib": memory.peak_main / 2**20,
        "max_proc_mib": single,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="images (default 10,000)")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--workers", type=int, default=None, help="default: usable CPUs")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each command")
    parser.add_argument("--model", default=None, help="model (default: the shipped one)")
    parser.add_argument("--sizes", default="", help="also scan these prefixes, e.g. 1000,5000")
    parser.add_argument("--data", default=str(ROOT / "bench-data" / "scan"))
    parser.add_argument("--json", default=None, help="also write the numbers here")
    parser.add_argument(
        "--same-features",
        action="store_true",
        help="also run the features command with the model's feature settings (features*)",
    )
    args = parser.parse_args()

    from specdetect.pipeline import default_workers

    workers = args.workers or default_workers()
    folder = Path(args.data) / f"{args.size}px"
    t = time.perf_counter()
    paths = make_images(folder, args.n, args.size)
    print(
        f"{args.n} images of {args.size}x{args.size} in {folder} ({time.perf_counter() - t:.1f} s)"
    )
    out = Path(args.data) / "out"
    out.mkdir(parents=True, exist_ok=True)
    model = ["--model", args.model or str(make_model(Path(args.data), paths))]
    print(f"model: {model[1]}")
    common = ["--workers", str(workers)]
    features_cmd = [str(BIN / "specdetect"), "features", str(folder), "-o", str(out / "f.npz")]
    scan_cmd = [str(BIN / "specdetect"), "scan", str(folder), "--format", "csv"]
    scan_cmd += ["-o", str(out / "s.csv"), "--exit-zero", *model]

    same_cmd = [sys.executable, "-c", SAME_FEATURES, model[1], "features", str(folder)]
    same_cmd += ["-o", str(out / "f-model.npz")]

    rows = {"features": [], "scan": []}
    if args.same_features:
        rows["features*"] = []
    for _ in range(args.repeats):  # alternate, so load changes hit both alike
        rows["features"].append(run(features_cmd + common))
        rows["scan"].append(run(scan_cmd + common))
        if args.same_features:
            rows["features*"].append(run(same_cmd + common))

    n_rows = sum(1 for _ in open(out / "s.csv")) - 1
    assert n_rows == args.n, f"scan wrote {n_rows} rows for {args.n} images"
    print(f"\nworkers: {workers}, repeats: {args.repeats} (best run shown)\n")
    print(
        f"{'command':<10} {'wall s':>8} {'images/s':>10} {'CPU s':>7} {'images/CPU s':>13} "
        f"{'tree peak MiB':>14} {'max proc MiB':>13} {'load avg':>9}"
    )
    best = {}
    for name, runs in rows.items():
        b = min(runs, key=lambda r: r["wall_s"])
        best[name] = b
        single = f"{b['max_proc_mib']:.0f}" if b["max_proc_mib"] else "-"
        print(
            f"{name:<10} {b['wall_s']:8.2f} {args.n / b['wall_s']:10.0f} {b['cpu_s']:7.1f} "
            f"{args.n / b['cpu_s']:13.0f} {b['tree_peak_mib']:14.0f} {single:>13} "
            f"{b['load_avg']:9.1f}"
        )
    ratio = best["features"]["wall_s"] / best["scan"]["wall_s"]
    pairs = [f["wall_s"] / s["wall_s"] for f, s in zip(rows["features"], rows["scan"], strict=True)]
    print(f"\nscan speed / features speed = {ratio:.2f} (best runs; acceptance: >= 0.8)")
    print(
        f"back-to-back pairs: {', '.join(f'{p:.2f}' for p in pairs)}"
        f" (median {float(np.median(pairs)):.2f})"
    )
    cpu = [f["cpu_s"] / s["cpu_s"] for f, s in zip(rows["features"], rows["scan"], strict=True)]
    listed = ", ".join(f"{c:.2f}" for c in cpu)
    print(
        "CPU-time ratio (features CPU s / scan CPU s; the wall-clock ratio on a dedicated "
        f"machine): {listed} (median {float(np.median(cpu)):.2f})"
    )

    if args.same_features:
        with np.load(out / "f-model.npz") as saved:
            settings = json.loads(str(saved["config"]))
        pairs_same = list(zip(rows["features*"], rows["scan"], strict=True))
        same = [f["wall_s"] / s["wall_s"] for f, s in pairs_same]
        same_cpu = [f["cpu_s"] / s["cpu_s"] for f, s in pairs_same]
        print(
            f"\nfeatures* = the features command with the model's settings {settings}:\n"
            f"scan speed / features* speed = "
            f"{best['features*']['wall_s'] / best['scan']['wall_s']:.2f} (best runs); "
            f"pairs {', '.join(f'{p:.2f}' for p in same)} (median {float(np.median(same)):.2f}); "
            f"CPU time {', '.join(f'{c:.2f}' for c in same_cpu)} "
            f"(median {float(np.median(same_cpu)):.2f})"
        )

    flat = []
    if args.sizes:
        listing = "\n".join(str(p) for p in paths)
        print(f"\nscan memory against input count (paths on stdin, --workers {workers}):")
        for count in [int(c) for c in args.sizes.split(",")]:
            text = "\n".join(listing.splitlines()[:count]) + "\n"
            cmd = [str(BIN / "specdetect"), "scan", "-", "--format", "json", "--exit-zero"]
            r = run(cmd + model + common, stdin_text=text)
            flat.append({"n": count, **r})
            print(
                f"  {count:>7} inputs: main process peak {r['main_peak_mib']:5.0f} MiB, "
                f"process tree peak {r['tree_peak_mib']:5.0f} MiB, {r['wall_s']:.1f} s"
            )

    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {"n": args.n, "workers": workers, "runs": rows, "ratio": ratio, "by_count": flat},
                indent=2,
            )
        )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
