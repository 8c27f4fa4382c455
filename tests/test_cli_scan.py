"""`specdetect scan` end to end on generated data: formats, exit codes, videos, bad models.

Real images are natural-like textures (power falling as 1/f**2, the statistics
of photographs); fakes are the same kind of images passed through a genuine
bed-of-nails + convolution up-sampler (:func:`specdetect.synth.make_fake`), so
the spectral signal the detector learns is the real one. Videos are encoded
losslessly (FFV1), so their frames are exactly such images.
"""

from __future__ import annotations

import csv
import io
import json
import pickle

import av
import numpy as np
import pytest
import skops.io  # noqa: F401 - see below
from PIL import Image
from typer.testing import CliRunner

from specdetect.cli import app
from specdetect.detect import Detector, save_model
from specdetect.features import FeatureConfig
from specdetect.pipeline import extract_features
from specdetect.synth import make_fake, natural_noise

runner = CliRunner()
SIZE = 64


def natural_image(rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """A grayscale uint8 texture with a 1/f amplitude spectrum and random phases."""
    return np.clip(np.rint(natural_noise(rng, size) * 40.0 + 128.0), 0, 255).astype(np.uint8)


def fake_image(rng: np.random.Generator) -> np.ndarray:
    return make_fake(natural_image(rng), rng, method="transconv")


def save_images(folder, make, n: int, seed: int, prefix: str) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        path = folder / f"{prefix}{i:02d}.png"
        Image.fromarray(make(rng)).save(path)
        paths.append(str(path))
    return paths


def save_video(path, make, n_frames: int, seed: int) -> str:
    """A lossless FFV1 video whose frames come from ``make``."""
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.width = stream.height = SIZE
        stream.pix_fmt = "gray"
        for _ in range(n_frames):
            frame = av.VideoFrame.from_ndarray(make(rng), format="gray")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A tiny trained model and folders of held-out real and fake inputs."""
    root = tmp_path_factory.mktemp("scan")
    train_real = save_images(root / "train" / "real", natural_image, 16, 1, "r")
    train_fake = save_images(root / "train" / "fake", fake_image, 16, 2, "f")
    config = FeatureConfig()
    results = list(extract_features(train_real + train_fake, config, workers=1))
    X = np.concatenate([r.features for r in results])
    y = np.r_[np.zeros(len(train_real)), np.ones(len(train_fake))]
    model = root / "model.skops"
    save_model(Detector("svm", config, cv=3).fit(X, y), model)

    real = root / "real"
    save_images(real, natural_image, 4, 11, "real")
    save_video(real / "clip.mkv", natural_image, 6, 12)
    fake = root / "fake"
    save_images(fake, fake_image, 3, 21, "fake")
    save_video(fake / "clip.mkv", fake_image, 6, 22)
    return {"root": root, "model": str(model), "real": str(real), "fake": str(fake)}


def scan(world, *args, input=None):
    return runner.invoke(app, ["scan", "--model", world["model"], "--workers", "1", *args], input)


def test_real_inputs_exit_0_with_a_valid_json_report(world):
    result = scan(world, world["real"], "--format", "json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert list(report) == ["version", "model", "threshold", "results", "errors", "summary"]
    assert report["model"].endswith("model.skops") and 0.0 <= report["threshold"] <= 1.0
    assert report["summary"] == {"n": 5, "fake": 0, "real": 5, "errors": 0}
    kinds = sorted(r["kind"] for r in report["results"])
    assert kinds == ["image"] * 4 + ["video"]
    for record in report["results"]:
        assert record["label"] == "real" and 0.0 <= record["score"] < report["threshold"]
    (video,) = [r for r in report["results"] if r["kind"] == "video"]
    assert video["frames"] == 6 and len(video["frame_scores"]) == 6
    assert video["fraction_fake"] == 0.0
    assert video["score"] == pytest.approx(np.mean(video["frame_scores"]))


def test_a_fake_exits_1_and_exit_zero_forces_0(world):
    result = scan(world, world["real"], world["fake"], "--format", "json")
    assert result.exit_code == 1, result.stderr
    report = json.loads(result.stdout)
    labels = {r["path"]: r["label"] for r in report["results"]}
    assert all(label == "fake" for path, label in labels.items() if "/fake/" in path)
    assert all(label == "real" for path, label in labels.items() if "/real/" in path)
    (video,) = [r for r in report["results"] if r["kind"] == "video" and "/fake/" in r["path"]]
    assert video["fraction_fake"] > 0.5 and video["frames"] == 6
    assert report["summary"] == {"n": 9, "fake": 4, "real": 5, "errors": 0}

    forced = scan(world, world["real"], world["fake"], "--exit-zero")
    assert forced.exit_code == 0


def test_unreadable_input_exits_2_even_with_fakes_and_stdout_stays_json(world, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not a jpeg")
    missing = tmp_path / "missing.png"
    result = scan(world, world["fake"], str(broken), str(missing), "--format", "json")
    assert result.exit_code == 2
    report = json.loads(result.stdout)  # valid JSON although inputs failed
    assert report["summary"] == {"n": 6, "fake": 4, "real": 0, "errors": 2}
    errors = {e["path"]: e["error"] for e in report["errors"]}
    assert set(errors) == {str(broken), str(missing)} and errors[str(missing)] == "no such file"
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert error_lines == [
        f"error: {broken}: {errors[str(broken)]}",
        f"error: {missing}: no such file",
    ]
    assert scan(world, str(missing), "--exit-zero").exit_code == 0


def test_csv_report(world, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"")
    result = scan(world, world["fake"], str(broken), "--format", "csv")
    assert result.exit_code == 2
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert list(rows[0]) == ["path", "kind", "score", "label", "error"]
    assert len(rows) == 5
    errors = [r for r in rows if r["error"]]
    assert errors == [
        {"path": str(broken), "kind": "", "score": "", "label": "", "error": "empty file"}
    ]
    for row in rows:
        if not row["error"]:
            assert row["label"] == "fake" and 0.0 <= float(row["score"]) <= 1.0


def test_text_report_is_the_default(world):
    result = scan(world, world["fake"])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["SCORE", "LABEL", "KIND", "PATH"]
    assert sum(" fake " in line for line in lines[1:]) == 4
    assert "(6/6 frames fake)" in result.stdout or "frames fake)" in result.stdout
    assert lines[-1].startswith("4 inputs: 4 fake, 0 real, 0 errors")


def test_paths_from_stdin_and_globs(world):
    real_images = sorted(str(p) for p in (world["root"] / "real").glob("*.png"))
    result = scan(world, "-", "--format", "json", input="\n".join(real_images) + "\n")
    assert result.exit_code == 0, result.stderr
    assert [r["path"] for r in json.loads(result.stdout)["results"]] == real_images

    pattern = str(world["root"] / "fake" / "*.png")
    result = scan(world, pattern, "--format", "json")
    assert result.exit_code == 1
    assert len(json.loads(result.stdout)["results"]) == 3


def test_report_file_is_written_and_stdout_left_empty(world, tmp_path):
    out = tmp_path / "reports" / "scan.json"
    result = scan(world, world["real"], "--format", "json", "-o", str(out))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert json.loads(out.read_text())["summary"]["n"] == 5
    assert [p.name for p in out.parent.iterdir()] == ["scan.json"]  # no temporary left


class _Payload:
    """Creates a file when unpickled: proof that a model file executed code."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("kind", ["pickle", "garbage", "missing", "truncated"])
def test_bad_model_is_refused_before_anything_is_scanned(world, tmp_path, kind):
    model = tmp_path / "model.skops"
    marker = tmp_path / "code-was-executed"
    if kind == "pickle":
        model.write_bytes(pickle.dumps(_Payload(marker)))
    elif kind == "garbage":
        model.write_bytes(b"PK\x03\x04 definitely not a zip")
    elif kind == "truncated":
        data = open(world["model"], "rb").read()
        model.write_bytes(data[: len(data) // 2])
    out = tmp_path / "report.json"
    broken = tmp_path / "broken.png"  # scanning it would print an error line
    broken.write_bytes(b"")
    result = runner.invoke(
        app, ["scan", "--model", str(model), world["fake"], str(broken), "-o", str(out)]
    )
    assert result.exit_code == 2
    assert result.stdout == "" and not out.exists() and not marker.exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(model) in lines[0], result.stderr


def test_shipped_model_is_used_without_model_and_flags_the_fake_samples():
    """`make demo`: the bundled samples with the shipped model, read from the repo."""
    from pathlib import Path

    from specdetect.detect import default_model_path

    samples = Path(__file__).resolve().parents[1] / "samples"
    result = runner.invoke(app, ["scan", str(samples), "--format", "json", "--workers", "1"])
    assert result.exit_code == 1, result.stderr
    report = json.loads(result.stdout)
    assert Path(report["model"]).resolve() == default_model_path()
    assert report["errors"] == []
    for record in report["results"]:
        expected = "fake" if "/fake/" in record["path"] else "real"
        assert record["label"] == expected, record
    assert {r["kind"] for r in report["results"]} == {"image", "video"}


def test_threshold_and_frames_options(world):
    everything = scan(world, world["real"], "--threshold", "0", "--format", "json")
    assert everything.exit_code == 1
    assert json.loads(everything.stdout)["summary"]["fake"] == 5

    two = scan(world, world["real"], "--frames", "2", "--format", "json")
    (video,) = [r for r in json.loads(two.stdout)["results"] if r["kind"] == "video"]
    assert video["frames"] == 2 and video["frame_indices"] == [0, 3]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--format", "xml"], "--format must be text, json, csv, sarif or junit"),
        (["--threshold", "1.5"], "less than or equal to 1"),
        (["--frames", "0"], "greater than or equal to 1"),
        (["--device", "tpu"], "--device must be auto, cpu or cuda"),
    ],
)
def test_usage_errors_exit_2(world, args, message):
    result = scan(world, world["real"], *args)
    assert result.exit_code == 2
    assert message in result.stderr and result.stdout == ""


def test_empty_folder_exits_2(world, tmp_path):
    result = scan(world, str(tmp_path), "--format", "json")
    assert result.exit_code == 2
    assert json.loads(result.stdout)["summary"]["n"] == 0
    assert "no image or video files found" in result.stderr


def test_worker_pool_gives_the_same_report(world):
    inline = scan(world, world["real"], world["fake"], "--format", "json")
    pooled = runner.invoke(
        app,
        [
            "scan",
            "--model",
            world["model"],
            "--workers",
            "2",
            world["real"],
            world["fake"],
            "--format",
            "json",
        ],
    )
    assert pooled.exit_code == inline.exit_code == 1
    assert json.loads(pooled.stdout) == json.loads(inline.stdout)


def _rewrite_schema(source, target, edit) -> None:
    """Copy a .skops archive, applying ``edit`` to its parsed schema.json."""
    import zipfile

    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "schema.json":
                schema = json.loads(data)
                edit(schema)
                data = json.dumps(schema).encode()
            dst.writestr(item, data)


def test_model_read_ahead_is_still_refused_before_any_output(world, tmp_path):
    """A well-formed archive whose content is refused: features may start while it
    loads, but nothing is reported and the exit code is 2."""
    model = tmp_path / "future.skops"

    def bump_version(schema):
        schema["content"]["format_version"]["content"] = "99"

    _rewrite_schema(world["model"], model, bump_version)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"")
    out = tmp_path / "report.json"
    result = runner.invoke(
        app, ["scan", "--model", str(model), world["fake"], str(broken), "-o", str(out)]
    )
    assert result.exit_code == 2
    assert result.stdout == "" and not out.exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "format version" in lines[0] and str(model) in lines[0]


def test_model_is_loaded_while_features_are_computed(world):
    """The CLI reads the feature settings ahead and loads the model in a thread."""
    from specdetect.detect import load_model
    from specdetect.detect.model_io import read_feature_config
    from specdetect.scan import DeferredDetector, scan_records

    config = read_feature_config(world["model"])
    assert config == load_model(world["model"]).feature_config
    deferred = DeferredDetector(lambda: load_model(world["model"]), config)
    assert not deferred.ready()
    paths = sorted(str(p) for p in (world["root"] / "fake").iterdir())
    direct = list(scan_records(paths, load_model(world["model"]), workers=1))
    assert list(scan_records(paths, deferred, workers=1)) == direct
    assert deferred.ready()


@pytest.mark.parametrize("after", [0, 1])
def test_interrupted_scan_exits_2_not_1(world, monkeypatch, after):
    """Ctrl-C must not read as "flagged" (click's default exit code for it is 1)."""
    import specdetect.scan

    def interrupted(inputs, *args, **kwargs):
        for _ in range(after):
            yield {"path": "a.png", "kind": "image", "score": 0.9, "label": "fake"}
        raise KeyboardInterrupt

    monkeypatch.setattr(specdetect.scan, "scan", interrupted)
    page = world["root"] / f"interrupted-{after}.html"
    result = scan(world, world["fake"], "--exit-zero", "--html", str(page))
    assert result.exit_code == 2
    assert "interrupted: the scan is incomplete" in result.stderr
    assert not page.exists()  # no review page of an incomplete scan
