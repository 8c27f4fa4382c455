"""gan-train, gan-sample and upconv-ae from the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from specdetect.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """40 small smooth RGB images of assorted sizes, plus one broken file."""
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for index in range(40):
        low = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        image = Image.fromarray(low).resize((40 + index % 5, 36 + index % 3), Image.BILINEAR)
        image.save(folder / f"img_{index:02d}.png")
    (folder / "broken.png").write_bytes(b"not an image")
    return folder


@pytest.fixture(scope="module")
def trained_run(image_folder, tmp_path_factory):
    run = tmp_path_factory.mktemp("run") / "run"
    args = ["gan-train", str(image_folder), "--out", str(run), "--size", "32", "--epochs", "1",
            "--batch", "16", "--ngf", "8", "--ndf", "8", "--metric-images", "40",
            "--spectral-weight", "1", "--final-convs", "3", "--device", "cpu"]  # fmt: skip
    result = runner.invoke(app, args)
    return run, result


def test_gan_train_reports_bad_files_and_still_trains(trained_run):
    run, result = trained_run
    assert result.exit_code == 1, result.output  # one unreadable input
    assert "broken.png" in result.output and "epoch 1/1" in result.output
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert record["epoch"] == 1 and "detectability" in record
    config = json.loads((run / "config.json").read_text())["config"]
    assert config["objective"] == "gan" and config["final_convs"] == 3
    assert config["spectral_weight"] == 1.0 and config["size"] == 32


def test_gan_sample_writes_n_pngs(trained_run, tmp_path):
    run, _ = trained_run
    result = runner.invoke(app, ["gan-sample", str(run), "-n", "7", "-o", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "s").glob("*.png"))
    assert len(files) == 7
    with Image.open(files[0]) as image:
        assert image.size == (32, 32) and image.mode == "RGB"
    again = runner.invoke(app, ["gan-sample", str(run), "-n", "7", "-o", str(tmp_path / "t")])
    assert again.exit_code == 0
    assert (tmp_path / "t" / files[3].name).read_bytes() == files[3].read_bytes()  # seeded


def test_gan_sample_on_a_folder_without_a_run_fails_cleanly(tmp_path):
    result = runner.invoke(app, ["gan-sample", str(tmp_path), "-n", "2", "-o", str(tmp_path)])
    assert result.exit_code == 2 and "config.json" in result.output


def test_gan_train_rejects_bad_options(image_folder, tmp_path):
    bad_shift = runner.invoke(app, ["gan-train", str(image_folder), "--out", str(tmp_path),
                                    "--freq-shift", "0.1"])  # fmt: skip
    assert bad_shift.exit_code == 2 and "fx,fy" in bad_shift.output
    bad_arch = runner.invoke(app, ["gan-train", str(image_folder), "--out", str(tmp_path),
                                   "--arch", "stylegan"])  # fmt: skip
    assert bad_arch.exit_code == 2 and "objective" in bad_arch.output


def test_upconv_ae_writes_table_and_plot(image_folder, tmp_path):
    args = ["upconv-ae", str(image_folder), "--out", str(tmp_path), "--size", "16",
            "--crops", "32", "--warmup-steps", "2", "--steps", "2",
            "--spectral-weight", "0.5,2", "--device", "cpu"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    # 3 units x 2 final-conv choices x (MSE only, lambda 0.5, lambda 2)
    assert len(rows) == 18
    keys = {(r["upsample"], r["final_convs"], r["spectral_weight"]) for r in rows}
    assert len(keys) == 18 and {r["spectral_weight"] for r in rows} == {0.0, 0.5, 2.0}
    assert all(r["spectral_error"] >= 0 and r["mse"] > 0 for r in rows)
    assert (tmp_path / "spectra.png").stat().st_size > 0
    table = (tmp_path / "table.md").read_text()
    assert "| transconv | 3x5x5 | MSE + 2 x spectral |" in table and "x smaller" in table


def test_upconv_ae_rejects_bad_lists(image_folder, tmp_path):
    base = ["upconv-ae", str(image_folder), "--out", str(tmp_path)]
    bad_weight = runner.invoke(app, [*base, "--spectral-weight", "1,x"])
    assert bad_weight.exit_code == 2 and "comma-separated" in bad_weight.output
    bad_unit = runner.invoke(app, [*base, "--units", "pixelshuffle"])
    assert bad_unit.exit_code == 2 and "upsamples" in bad_unit.output


def test_gan_sample_output_scans_end_to_end(trained_run, tmp_path):
    run, _ = trained_run
    fakes = tmp_path / "fakes"
    assert runner.invoke(app, ["gan-sample", str(run), "-n", "4", "-o", str(fakes)]).exit_code == 0
    result = runner.invoke(
        app, ["scan", str(fakes), "--format", "json", "--device", "cpu", "--workers", "1"]
    )
    assert result.exit_code in (0, 1), result.output  # clean or flagged; never an error
    report = json.loads(result.stdout)
    assert sorted(r["path"] for r in report["results"]) == sorted(
        str(p) for p in fakes.glob("*.png")
    )
    assert all(0.0 <= r["score"] <= 1.0 for r in report["results"])
    assert report["summary"]["errors"] == 0 and report["summary"]["n"] == 4


@pytest.fixture
def captured_config(monkeypatch):
    """Run gan-train up to the training call and keep the config it would train with."""
    import specdetect.gan.train as train_module

    seen = {}

    def fake_train(config, data, out, **kwargs):
        seen["config"] = config
        return train_module.TrainResult(None, [], 0.0, out)

    monkeypatch.setattr(train_module, "train_gan", fake_train)
    return seen


_PLAIN = {"spectral_weight": 0.0, "spectral_order": "power", "spectral_reduction": "image"}
_FIX = {"spectral_weight": 300.0, "spectral_order": "log", "spectral_reduction": "batch"}


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ([], {**_PLAIN, "final_convs": 0}),
        (["--spectral"], {**_FIX, "final_convs": 3}),
        (
            ["--spectral", "--spectral-weight", "50", "--final-convs", "0"],
            {**_FIX, "spectral_weight": 50.0, "final_convs": 0},
        ),
        (
            ["--spectral-order", "power", "--spectral", "--spectral-reduction", "image"],
            {**_FIX, "spectral_order": "power", "spectral_reduction": "image", "final_convs": 3},
        ),
        (["--spectral-weight", "10"], {**_PLAIN, "spectral_weight": 10.0, "final_convs": 0}),
    ],
)
def test_spectral_flag_sets_the_recipe_and_explicit_flags_win(
    image_folder, tmp_path, captured_config, flags, expected
):
    result = runner.invoke(app, ["gan-train", str(image_folder), "--out", str(tmp_path), *flags])
    assert result.exit_code == 0, result.output
    config = captured_config["config"]
    assert {key: getattr(config, key) for key in expected} == expected


def test_spectral_recipe_is_what_the_help_promises():
    from specdetect.gan.config import SPECTRAL_RECIPE

    text = runner.invoke(app, ["gan-train", "--help"], env={"COLUMNS": "400"}).output
    assert "--spectral " in text
    weight = f"{SPECTRAL_RECIPE['spectral_weight']:g}"
    assert f"lambda {weight}" in text and f"--spectral: {weight}" in text
    assert "--spectral-order log" in text and "--final-convs 3" in text
    assert "--spectral-reduction batch" in text
