"""The batched pipeline and the `specdetect features` command."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from specdetect.cli import app
from specdetect.features import FeatureConfig, features_numpy
from specdetect.media import read_luma
from specdetect.pipeline import extract_features

runner = CliRunner()


@pytest.fixture
def image_folder(tmp_path):
    """Nine good images of three shapes and two formats, plus two bad files."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    for i in range(9):
        shape = [(32, 32), (24, 40), (40, 24)][i % 3]
        array = (rng.random((*shape, 3)) * 255).astype(np.uint8)
        ext = ".png" if i % 2 else ".JPG"
        Image.fromarray(array).save(folder / ("sub" if i > 5 else "") / f"img{i}{ext}")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image, not picked up from folders")
    return folder


def listed(folder):
    return sorted(str(p) for p in folder.rglob("*") if p.suffix.lower() in {".png", ".jpg"})


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("engine", ["numpy", "torch"])
def test_pipeline_streams_every_path_in_order(image_folder, workers, engine):
    paths = listed(image_folder)
    results = list(
        extract_features(
            paths, workers=workers, engine=engine, device="cpu", task_size=2, batch_size=3
        )
    )
    assert [r.path for r in results] == paths
    failed = {r.path for r in results if not r.ok}
    assert failed == {str(image_folder / "broken.png"), str(image_folder / "empty.jpg")}
    for result in results:
        if result.ok:
            expected = features_numpy(read_luma(result.path)[None], FeatureConfig())
            assert np.allclose(result.features, expected, rtol=1e-5, atol=1e-6)
        else:
            assert result.error.startswith(result.path + ": ")


def test_pipeline_consumes_paths_lazily(image_folder):
    consumed = []

    def paths():
        for path in listed(image_folder):
            consumed.append(path)
            yield path

    stream = extract_features(paths(), workers=1, task_size=2)
    next(stream)
    assert len(consumed) == 2  # one task, not the whole list


def test_cli_writes_documented_npz_and_exits_2_on_failures(image_folder, tmp_path):
    out = tmp_path / "out" / "features.npz"
    result = runner.invoke(
        app, ["features", str(image_folder), "-o", str(out), "--bins", "16", "--workers", "2"]
    )
    assert result.exit_code == 2
    assert "broken.png" in result.stderr and "empty.jpg: empty file" in result.stderr
    data = np.load(out)
    assert data["features"].shape == (9, 16) and data["features"].dtype == np.float32
    assert len(data["paths"]) == 9 and "broken.png" not in " ".join(data["paths"])
    assert json.loads(str(data["config"]))["bins"] == 16
    assert sorted(data["failed_paths"]) == [
        str(image_folder / "broken.png"),
        str(image_folder / "empty.jpg"),
    ]
    assert all(": " in e for e in data["errors"])
    assert not list(out.parent.glob(".tmp-*"))  # atomic write leaves no temp file


def test_cli_exit_0_on_clean_input_and_accepts_globs(image_folder, tmp_path):
    out = tmp_path / "f.npz"
    pattern = str(image_folder / "sub" / "*.png")
    result = runner.invoke(
        app, ["features", pattern, "-o", str(out), "--norm", "minmax", "--workers", "1"]
    )
    assert result.exit_code == 0, result.stderr
    data = np.load(out)
    assert len(data["paths"]) == 1 and data["features"].min() == pytest.approx(0.0)


@pytest.mark.parametrize(
    "args",
    [["--norm", "l2"], ["--device", "tpu"], ["--bins", "1"]],
)
def test_cli_usage_errors_exit_2(image_folder, tmp_path, args):
    result = runner.invoke(
        app, ["features", str(image_folder), "-o", str(tmp_path / "f.npz"), *args]
    )
    assert result.exit_code == 2
    assert not (tmp_path / "f.npz").exists()


def test_cli_no_inputs_is_an_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = runner.invoke(
        app, ["features", str(tmp_path / "empty"), "-o", str(tmp_path / "f.npz")]
    )
    assert result.exit_code == 2 and "no image files" in result.stderr


def test_help_does_not_import_heavy_libraries():
    # What keeps `specdetect --help` well under a second: no heavy import on the way.
    code = (
        "import sys; from specdetect.cli import app; from typer.main import get_command; "
        "get_command(app).get_help; "
        "print([m for m in ('torch', 'sklearn', 'matplotlib', 'av', 'dask', 'skops', 'scipy') "
        "if m in sys.modules])"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert output.stdout.strip() == "[]"
    helped = subprocess.run(
        [sys.executable, "-m", "specdetect", "--help"], capture_output=True, text=True
    )
    assert helped.returncode == 0 and "features" in helped.stdout
