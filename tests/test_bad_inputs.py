"""Bad and awkward inputs through the command line: one error line each, nothing else lost."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from badcorpus import make_corpus


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def run_cli(args, stdin_paths=None, cwd=None):
    """Run ``specdetect ARGS`` in a subprocess; paths for stdin are raw file-system bytes."""
    data = b"".join(os.fsencode(p) + b"\n" for p in stdin_paths) if stdin_paths else None
    return subprocess.run(
        [sys.executable, "-m", "specdetect", *args],
        input=data,
        capture_output=True,
        cwd=cwd,
        timeout=300,
    )


def shown(path: str) -> str:
    """How a path appears in an error line (non-UTF-8 bytes as backslash escapes)."""
    return path.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")


def error_lines(stderr: bytes) -> list[str]:
    text = stderr.decode("utf-8", "backslashreplace")
    return [line for line in text.splitlines() if line.startswith("error: ")]


def check_error_lines(lines: list[str], bad) -> None:
    """Each bad entry has exactly one error line, naming it and matching its cause."""
    assert len(lines) == len(bad), "\n".join(lines)
    for entry in bad:
        prefix = f"error: {shown(entry.path)}: "
        mine = [line for line in lines if line.startswith(prefix)]
        assert len(mine) == 1, (entry.name, lines)
        reason = mine[0][len(prefix) :]
        assert reason and "\n" not in reason
        assert re.search(entry.cause, reason, re.IGNORECASE), (entry.name, reason)


def test_corpus_is_what_it_claims(corpus):
    names = {e.name for e in corpus}
    assert {"truncated.jpg", "huge-header.png", "loop-link.png", "folder.png"} <= names
    assert os.path.islink(next(e.path for e in corpus if e.name == "loop-link.png"))
    assert any(not e.path.isascii() for e in corpus)  # a non-UTF-8 name is in
    locked = next(e for e in corpus if e.name == "no-permission.png")
    # As root the 0o000 file is readable, so it must be scored; otherwise refused.
    assert locked.good == (os.geteuid() == 0 or os.access(locked.path, os.R_OK))
    assert oct(os.stat(locked.path).st_mode & 0o777) == "0o0"


def test_features_from_stdin_list(corpus, tmp_path):
    out = tmp_path / "features.npz"
    proc = run_cli(["features", "-", "-o", str(out), "--workers", "2"], [e.path for e in corpus])
    assert proc.returncode == 2, proc.stderr.decode(errors="replace")
    # `features` reads images only: videos are inputs it cannot read.
    good = [e for e in corpus if e.good and not e.video]
    bad = [e for e in corpus if not (e.good and not e.video)]
    check_error_lines(error_lines(proc.stderr), bad)
    with np.load(out) as saved:
        assert list(saved["paths"]) == [e.path for e in good]  # order kept, names intact
        assert saved["features"].shape == (len(good), 64)
        assert np.isfinite(saved["features"]).all()
        assert list(saved["failed_paths"]) == [e.path for e in bad]


def test_features_walking_the_folder(corpus, tmp_path):
    root = os.path.dirname(corpus[0].path)
    out = tmp_path / "walk.npz"
    proc = run_cli(["features", root, "-o", str(out), "--workers", "2"])
    assert proc.returncode == 2
    # Walking: videos are skipped by extension, and folder.png is a folder to enter.
    bad = [e for e in corpus if not e.good and not e.video and e.name != "folder.png"]
    check_error_lines(error_lines(proc.stderr), bad)
    with np.load(out) as saved:
        expected = sorted(e.path for e in corpus if e.good and not e.video)
        assert sorted(saved["paths"]) == expected


@pytest.mark.parametrize("reader_pause", [0.0, 0.2], ids=["fast-reader", "slow-reader"])
def test_worker_crash_loses_only_its_input(tmp_path, monkeypatch, reader_pause):
    """A decoder that kills its process fails that one input, not the run.

    With a slow reader the pool is already broken when the next task is
    submitted, which must be isolated like a crash seen in a result.
    """
    from badcorpus import encode, textured

    from specdetect import pipeline
    from specdetect.features import FeatureConfig

    paths = []
    for i in range(30):  # more tasks than the pool's window of 4 * workers
        name = "crash.png" if i == 5 else f"ok-{i:02d}.png"
        (tmp_path / name).write_bytes(encode(textured(24, seed=i), "PNG"))
        paths.append(str(tmp_path / name))
    reference = list(pipeline.extract_features(paths, FeatureConfig(), workers=1, device="cpu"))

    real_read = pipeline.read_luma

    def crashing_read(path, max_pixels=None):
        if path.endswith("crash.png"):
            os._exit(3)  # what a segfaulting decoder looks like from outside
        return real_read(path, max_pixels)

    # The pool forks, so its workers see the patched reader.
    monkeypatch.setattr(pipeline, "read_luma", crashing_read)
    results = []
    for result in pipeline.extract_features(
        paths, FeatureConfig(), workers=2, device="cpu", task_size=2
    ):
        results.append(result)
        time.sleep(reader_pause)  # scoring, writing, fsync: the workers run ahead
    assert [r.path for r in results] == paths
    failed = [r for r in results if not r.ok]
    assert [r.path for r in failed] == [paths[5]]
    assert failed[0].error.startswith(paths[5] + ": ") and "died" in failed[0].error
    for got, want in zip(results, reference, strict=True):
        if got.ok:
            np.testing.assert_array_equal(got.features, want.features)


# --------------------------------------------------------------------------- scan
@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from scale_fixtures import shared_model

    return shared_model(tmp_path_factory)


def scan_corpus(corpus, model, fmt, *extra):
    args = ["scan", "-", "--model", model, "--format", fmt, "--frames", "4", *extra]
    return run_cli(args, [e.path for e in corpus])


def test_scan_json_reports_every_input_once(corpus, model):
    proc = scan_corpus(corpus, model, "json", "--workers", "2")
    assert proc.returncode == 2, proc.stderr.decode(errors="replace")
    report = json.loads(proc.stdout)  # valid JSON, non-UTF-8 names included
    good = [e for e in corpus if e.good]
    bad = [e for e in corpus if not e.good]
    assert [r["path"] for r in report["results"]] == [e.path for e in good]
    assert [r["path"] for r in report["errors"]] == [e.path for e in bad]
    assert report["summary"]["n"] == len(corpus)
    assert report["summary"]["errors"] == len(bad)
    for result in report["results"]:
        assert 0.0 <= result["score"] <= 1.0 and result["label"] in ("real", "fake")
    video = next(r for r in report["results"] if r["path"].endswith("good-clip.mp4"))
    assert video["kind"] == "video" and len(video["frame_scores"]) == video["frames"] >= 1
    check_error_lines(error_lines(proc.stderr), bad)
    for error in report["errors"]:
        entry = next(e for e in bad if e.path == error["path"])
        assert re.search(entry.cause, error["error"], re.IGNORECASE), error


def test_scan_csv_stays_valid(corpus, model):
    proc = scan_corpus(corpus, model, "csv", "--workers", "2")
    assert proc.returncode == 2
    rows = list(csv.DictReader(io.StringIO(proc.stdout.decode("utf-8"))))
    assert len(rows) == len(corpus)
    for entry, row in zip(corpus, rows, strict=True):
        assert row["path"] == entry.path.encode("utf-8", "surrogateescape").decode(
            "utf-8", "backslashreplace"
        )
        assert bool(row["error"]) == (not entry.good), row
        assert bool(row["score"]) == entry.good
