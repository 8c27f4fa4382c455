"""End-to-end train / eval / spectrum on generated images with real up-sampling fakes."""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from specdetect.cli import app
from specdetect.synth import FAKE_METHODS, make_fake, natural_noise

runner = CliRunner()


def _noise(rng, n=48):
    return np.clip(natural_noise(rng, n) * 40 + 128, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for split, n in (("train", 10), ("test", 6)):
        for kind in ("real", "fake"):
            (root / split / kind).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(_noise(rng)).save(root / split / "real" / f"r{i}.png")
            fake = make_fake(_noise(rng), rng, FAKE_METHODS[i % 3])
            Image.fromarray(fake).save(root / split / "fake" / f"f{i}.png")
    return root


def _run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(scope="module")
def trained(folders, tmp_path_factory):
    model = tmp_path_factory.mktemp("model") / "m.skops"
    result = _run(
        "train", "--real", folders / "train/real", "--fake", folders / "train/fake",
        "--cv", 3, "--workers", 1, "-o", model,
    )  # fmt: skip
    return result, model


def test_train_prints_cv_metrics_and_writes_model(trained):
    result, model = trained
    assert result.exit_code == 0, result.output
    for word in ("accuracy", "roc_auc", "average_precision", "confusion", "threshold"):
        assert word in result.output
    assert "3-fold" in result.output and model.is_file()


def test_eval_json_schema_and_quality(folders, trained, tmp_path):
    _, model = trained
    roc = tmp_path / "roc.png"
    result = _run(
        "eval", "--real", folders / "test/real", "--fake", folders / "test/fake",
        "--model", model, "--format", "json", "--plot", roc, "--workers", 1,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == {
        "accuracy", "roc_auc", "average_precision", "n_real", "n_fake", "confusion", "threshold",
    }  # fmt: skip
    assert report["n_real"] == 6 and report["n_fake"] == 6
    assert report["accuracy"] >= 0.9 and report["roc_auc"] >= 0.9
    (tn, fp), (fn, tp) = report["confusion"]
    assert tn + fp == 6 and fn + tp == 6
    assert roc.stat().st_size > 1000


def test_kmeans_names_clusters_from_labels(folders, tmp_path):
    model = tmp_path / "k.skops"
    trained = _run(
        "train", "--real", folders / "train/real", "--fake", folders / "train/fake",
        "--method", "kmeans", "--workers", 1, "-o", model,
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    result = _run(
        "eval", "--real", folders / "test/real", "--fake", folders / "test/fake",
        "--model", model, "--format", "json", "--workers", 1,
    )  # fmt: skip
    # Named right: a swapped naming would score 1 - accuracy (at most 0.25 here).
    assert json.loads(result.stdout)["accuracy"] >= 0.75


def test_refusals_exit_2(folders, tmp_path):
    real = folders / "train/real"
    one = tmp_path / "one"
    one.mkdir()
    Image.fromarray(np.zeros((48, 48), np.uint8)).save(one / "x.png")
    result = _run("train", "--real", real, "--fake", one, "-o", tmp_path / "m.skops")
    assert result.exit_code == 2 and "at least 2" in result.output

    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "same.png").write_bytes((real / "r0.png").read_bytes())
    (copy / "other.png").write_bytes((folders / "train/fake/f0.png").read_bytes())
    result = _run("train", "--real", real, "--fake", copy, "-o", tmp_path / "m.skops")
    assert result.exit_code == 2 and "identical content" in result.output
    result = _run("train", "--real", real, "--fake", real / "r1.png", "--fake", real / "r2.png",
                  "-o", tmp_path / "m.skops")  # fmt: skip
    assert result.exit_code == 2 and "in both" in result.output
    assert not (tmp_path / "m.skops").exists()


def test_unreadable_image_reported_model_still_written(folders, tmp_path):
    fake = tmp_path / "fake"
    fake.mkdir()
    for f in (folders / "train/fake").iterdir():
        (fake / f.name).write_bytes(f.read_bytes())
    (fake / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    model = tmp_path / "m.skops"
    result = _run(
        "train", "--real", folders / "train/real", "--fake", fake,
        "--cv", 2, "--workers", 1, "-o", model,
    )  # fmt: skip
    assert result.exit_code == 2
    assert "broken.png" in result.output and model.is_file()


def test_eval_refuses_tampered_model(folders, tmp_path):
    bad = tmp_path / "bad.skops"
    bad.write_bytes(b"\x80\x04not a model")
    result = _run("eval", "--real", folders / "test/real", "--fake", folders / "test/fake",
                  "--model", bad)  # fmt: skip
    assert result.exit_code == 2 and "refusing" in result.output


def test_spectrum_plot_and_json(folders, tmp_path):
    plot = tmp_path / "spectrum.png"
    result = _run(
        "spectrum", folders / "test/real", folders / "test/fake",
        "--plot", plot, "--format", "json", "--bins", 16, "--workers", 1,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    real, fake = report["folders"]
    assert real["n"] == 6 and len(real["mean_db"]) == 16 and len(fake["std_db"]) == 16
    assert fake["mean_db"][-1] < real["mean_db"][-1]  # fakes lack the top frequencies
    assert plot.stat().st_size > 1000
    empty = tmp_path / "empty"
    empty.mkdir()
    result = _run("spectrum", empty, "--format", "json")
    assert result.exit_code == 2
