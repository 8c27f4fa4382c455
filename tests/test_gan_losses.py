"""Spectral loss, objectives and generator architecture of specdetect.gan."""

from __future__ import annotations

import sys
import types

import pytest
import torch
from torch import nn

from specdetect.gan.config import OBJECTIVES, UPSAMPLES, GanConfig, parse_freq_shifts
from specdetect.gan.losses import (
    SpectralLoss,
    discriminator_loss,
    generator_adversarial_loss,
    mean_real_spectrum,
    spectral_loss,
    spectral_profile,
)
from specdetect.gan.models import Generator, build_discriminator, build_generator


def smooth_images(n: int, size: int, seed: int, channels: int = 3) -> torch.Tensor:
    """Low-pass noise images in [-1, 1] (a natural-image-like falling spectrum)."""
    rng = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, channels, size, size, generator=rng)
    kernel = torch.ones(channels, 1, 5, 5) / 25
    blurred = nn.functional.conv2d(noise, kernel, padding=2, groups=channels)
    return (blurred / blurred.abs().amax()).clamp(-1, 1)


@pytest.mark.parametrize("order", ["power", "log"])
@pytest.mark.parametrize("norm", ["first", "minmax"])
def test_profile_is_in_unit_interval(norm, order):
    images = torch.rand(6, 3, 32, 32) * 2 - 1
    profile = spectral_profile(images, norm, order)
    assert profile.shape == (6, 17)  # rings 0..16 of a 32x32 image
    assert profile.min() >= 0 and profile.max() <= 1
    if norm == "first":
        assert torch.allclose(profile[:, 0], torch.ones(6))
    else:
        assert torch.allclose(profile.amax(1), torch.ones(6))
        assert torch.allclose(profile.amin(1), torch.zeros(6))


@pytest.mark.parametrize("upsample", UPSAMPLES)
def test_spectral_loss_gradient_reaches_every_generator_parameter(upsample):
    torch.manual_seed(0)
    generator = build_generator(
        GanConfig(size=32, ngf=8, nz=16, upsample=upsample, final_convs=3, channels=3)
    )
    target = mean_real_spectrum(smooth_images(16, 32, seed=1))
    loss = SpectralLoss(target, weight=1.0)(generator(torch.randn(8, 16)))
    loss.backward()
    names = [
        name
        for name, p in generator.named_parameters()
        if p.grad is None or p.grad.abs().sum() == 0
    ]
    assert names == []
    assert sum(1 for _ in generator.parameters()) > 10


def test_optimizing_noise_under_spectral_loss_reaches_target_spectrum():
    target_images = smooth_images(32, 32, seed=2, channels=1)
    target = mean_real_spectrum(target_images)
    pixels = torch.rand(4, 1, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1
    pixels.requires_grad_(True)

    def distance() -> float:
        with torch.no_grad():
            return float((spectral_profile(pixels.clamp(-1, 1)).mean(0) - target).abs().mean())

    before = distance()
    optimizer = torch.optim.Adam([pixels], lr=0.05)
    for _ in range(60):
        optimizer.zero_grad()
        spectral_loss(pixels, target).backward()
        optimizer.step()
    after = distance()
    assert before > 0.05  # white noise is far from a falling spectrum
    assert after < before / 10


def test_spectral_loss_is_smallest_at_the_target():
    real = smooth_images(8, 32, seed=4)
    loss = SpectralLoss.from_real(real)
    white = torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(5)) * 2 - 1
    assert float(loss(real)) < float(loss(white))
    with pytest.raises(ValueError, match="rings"):
        loss(torch.rand(2, 3, 64, 64))


def test_batch_reduction_matches_the_mean_spectrum_only():
    real = smooth_images(16, 32, seed=6)
    target = mean_real_spectrum(real, order="log")
    mixed = torch.cat([smooth_images(4, 32, seed=7), torch.rand(4, 3, 32, 32) * 2 - 1])
    per_image = spectral_loss(mixed, target, order="log")
    per_batch = spectral_loss(mixed, target, order="log", reduction="batch")
    # BCE is convex in the profile: the batch-mean profile's loss is the smaller one
    assert float(per_batch) < float(per_image)
    profile = spectral_profile(mixed, order="log").mean(0, keepdim=True)
    expected = nn.functional.binary_cross_entropy(profile, target[None])
    assert torch.allclose(per_batch, expected)
    same = real[:1].expand(4, -1, -1, -1)  # identical images: both reductions agree
    assert torch.allclose(
        spectral_loss(same, target, order="log"),
        spectral_loss(same, target, order="log", reduction="batch"),
    )
    with pytest.raises(ValueError, match="reduction"):
        spectral_loss(mixed, target, reduction="sum")


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_each_objective_trains_one_step(objective):
    torch.manual_seed(0)
    config = GanConfig(objective=objective, size=32, ngf=8, ndf=8, nz=16)
    generator, discriminator = build_generator(config), build_discriminator(config)
    real = smooth_images(8, 32, seed=6)
    fake = generator(torch.randn(8, 16))
    d_loss = discriminator_loss(objective, discriminator, real, fake.detach(), 10.0)
    d_loss.backward()
    grads = [p.grad for p in discriminator.parameters()]
    assert torch.isfinite(d_loss) and all(g is not None and torch.isfinite(g).all() for g in grads)
    g_loss = generator_adversarial_loss(objective, discriminator, fake)
    g_loss.backward()
    assert torch.isfinite(g_loss)
    assert all(p.grad is not None for p in generator.parameters())
    if objective in ("wgan-gp", "dragan"):  # per-sample penalties: no batch norm in D
        assert not any(isinstance(m, nn.BatchNorm2d) for m in discriminator.modules())


@pytest.mark.parametrize("size", [32, 64, 128])
@pytest.mark.parametrize("upsample", UPSAMPLES)
def test_generator_shapes_and_extension_points(size, upsample):
    generator = Generator(nz=8, ngf=4, size=size, channels=1, upsample=upsample, final_convs=1)
    z = torch.randn(2, 8)
    assert generator(z).shape == (2, 1, size, size)
    features = generator.trunk(z)
    assert features.shape == (2, generator.trunk_channels, size // 2, size // 2)
    assert generator.trunk_size == size // 2
    assert len(generator.extra_heads) == 0 and isinstance(generator.output_transform, nn.Identity)


def test_extra_heads_add_before_tanh_and_transform_after():
    generator = Generator(nz=8, ngf=4, size=32, channels=3).eval()
    z = torch.randn(2, 8)
    base = generator(z)

    class Constant(nn.Module):
        def forward(self, features):
            return torch.full((features.shape[0], 3, 32, 32), 0.5)

    generator.extra_heads.append(Constant())
    shifted = generator(z)
    assert torch.allclose(
        shifted, torch.tanh(torch.atanh(base.clamp(-0.999999, 0.999999)) + 0.5), atol=1e-4
    )
    generator.output_transform = nn.Hardtanh(-0.1, 0.1)
    assert generator(z).abs().max() <= 0.1


def test_freq_shifts_call_the_frequency_module(monkeypatch):
    calls = []
    fake = types.ModuleType("specdetect.gan.frequency")
    fake.attach_frequency_shift_heads = lambda gen, shifts: calls.append((gen, shifts))
    monkeypatch.setitem(sys.modules, "specdetect.gan.frequency", fake)
    config = GanConfig(size=32, ngf=4, freq_shifts=parse_freq_shifts("0.0625,0;0,-0.0625"))
    generator = build_generator(config)
    assert calls == [(generator, [(0.0625, 0.0), (0.0, -0.0625)])]
    assert build_generator(GanConfig(size=32, ngf=4)) is not None and len(calls) == 1


def test_config_round_trips_through_json():
    import json

    config = GanConfig(objective="dcgan", freq_shifts=[(0.25, 0.0)], spectral_weight=2.0)
    assert config.objective == "gan"
    again = GanConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    with pytest.raises(ValueError, match="unknown"):
        GanConfig.from_dict({"bogus": 1})
    with pytest.raises(ValueError, match="upsample"):
        GanConfig(upsample="pixelshuffle")
    with pytest.raises(ValueError, match="fx,fy"):
        parse_freq_shifts("0.1")
