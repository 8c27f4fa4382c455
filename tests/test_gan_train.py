"""Training loop of specdetect.gan: smoke run, exact resume, metrics, FID plumbing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from specdetect.gan.config import GanConfig
from specdetect.gan.metrics import (
    InceptionFeatures,
    detectability,
    fid,
    frechet_distance,
    spectral_distance,
    spectral_frechet_distance,
)
from specdetect.gan.train import load_generator, train_gan

METRIC_KEYS = {"epoch", "g_loss", "d_loss", "spectral_loss", "spectral_distance", "detectability"}


def textured(n: int, size: int, seed: int) -> torch.Tensor:
    """Smooth random images in [-1, 1], a stand-in for photos."""
    rng = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, size // 4, size // 4, generator=rng) * 2 - 1
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear")


def test_smoke_run_32px_one_epoch(tmp_path):
    config = GanConfig(
        size=32, ngf=16, ndf=16, epochs=1, batch_size=64, spectral_weight=1.0, final_convs=3,
        metric_images=300, seed=1,
    )  # fmt: skip
    result = train_gan(config, textured(300, 32, seed=0), tmp_path / "run")
    run = tmp_path / "run"
    for name in ("config.json", "checkpoint.pt", "metrics.jsonl", "real_spectrum.json",
                 "samples_epoch1.png", "spectra.png"):  # fmt: skip
        assert (run / name).stat().st_size > 0, name
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert METRIC_KEYS <= set(record) and record["epoch"] == 1
    assert 0.0 <= record["detectability"] <= 1.0 and record["spectral_distance"] >= 0
    assert record == result.metrics[0] and result.seconds_per_epoch > 0
    stored = json.loads((run / "config.json").read_text())
    assert GanConfig.from_dict(stored["config"]) == config
    assert stored["seed"] == 1 and "torch" in stored["versions"]
    assert len(json.loads((run / "real_spectrum.json").read_text())["values"]) == 17
    generator, loaded_config = load_generator(run)
    assert loaded_config == config
    assert generator(torch.randn(2, config.nz)).shape == (2, 3, 32, 32)


def _strip_timing(records):
    return [{k: v for k, v in r.items() if "seconds" not in k} for r in records]


def test_resume_after_interruption_equals_uninterrupted_run(tmp_path):
    data = textured(96, 32, seed=3)
    config = GanConfig(size=32, ngf=8, ndf=8, nz=16, epochs=2, batch_size=32,
                       spectral_weight=0.5, metric_images=40, seed=7)  # fmt: skip
    straight = train_gan(config, data, tmp_path / "a")
    first = train_gan(config, data, tmp_path / "b", stop_after=1)  # "killed" after epoch 1
    assert len(first.metrics) == 1
    resumed = train_gan(config, data, tmp_path / "b", resume=True)

    assert _strip_timing(resumed.metrics) == _strip_timing(straight.metrics)
    a, b = straight.generator.state_dict(), resumed.generator.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2]

    changed = GanConfig(**{**config.to_dict(), "lr": 1e-3})
    with pytest.raises(ValueError, match="lr"):
        train_gan(changed, data, tmp_path / "b", resume=True)


def test_training_without_metrics_and_without_run_dir():
    config = GanConfig(size=32, ngf=8, ndf=8, nz=16, epochs=1, batch_size=16, metrics=False,
                       objective="wgan-gp", upsample="bilinear")  # fmt: skip
    result = train_gan(config, textured(32, 32, seed=4), None)
    assert set(result.metrics[0]) == {"epoch", "g_loss", "d_loss", "spectral_loss", "seconds"}
    with pytest.raises(ValueError, match="data must be"):
        train_gan(config, textured(8, 64, seed=4), None)


def test_spectral_metrics_separate_different_sets():
    rng = np.random.default_rng(0)
    real = rng.normal(0.0, 1.0, (200, 8))
    same = rng.normal(0.0, 1.0, (200, 8))
    shifted = rng.normal(1.0, 1.0, (200, 8))
    assert spectral_distance(same, real) < 0.2 < spectral_distance(shifted, real)
    assert detectability(shifted, real) > 0.9 and detectability(same, real) < 0.65
    assert spectral_frechet_distance(same, real) < 1.0 < spectral_frechet_distance(shifted, real)
    mu, sigma = np.zeros(3), np.eye(3)
    assert frechet_distance(mu, sigma, mu + 2, sigma) == pytest.approx(12.0)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_fid_uses_a_user_supplied_torchscript_network(tmp_path):
    class TinyInception(torch.nn.Module):
        def forward(self, images: torch.Tensor, return_features: bool = False) -> torch.Tensor:
            assert images.dtype == torch.uint8
            x = images.float() / 255.0
            return torch.cat([x.mean(dim=(2, 3)), x.std(dim=(2, 3))], dim=1)

    path = tmp_path / "inception.pt"
    torch.jit.script(TinyInception()).save(str(path))
    network = InceptionFeatures(str(path))
    a, b = textured(64, 32, seed=5), textured(64, 32, seed=6)
    assert fid(a, a, network) == pytest.approx(0.0, abs=1e-6)
    assert fid(a * 0.2, b, network) > fid(a, b, network) >= 0
    (tmp_path / "bad.pt").write_bytes(b"not torchscript")
    with pytest.raises(ValueError, match="TorchScript"):
        InceptionFeatures(str(tmp_path / "bad.pt"))
