"""Frequency shifting, carrier datasets and the freq-bias experiment (issue 5)."""

from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pytest
import torch

from specdetect.gan.carriers import carrier_bin, modulated_patches, planar_cosines, smooth_fields
from specdetect.gan.config import parse_freq_shifts
from specdetect.gan.frequency import (
    FrequencyShift,
    FrequencyShiftHead,
    SidebandShift,
    analytic_mask,
    attach_frequency_shift_heads,
    demodulate,
    frequency_shift,
    latent_unit_phase,
    remodulate,
    shift_real_part,
    sideband_shift,
)


def _peak_bin(image: torch.Tensor) -> tuple[int, int]:
    power = torch.fft.fft2(image).abs()
    index = int(power.argmax())
    return index // image.shape[-1], index % image.shape[-1]


# --------------------------------------------------------------------------
# frequency_shift
# --------------------------------------------------------------------------
@pytest.mark.parametrize(("fx", "fy"), [(0.25, 0.0), (0.0, 0.125), (0.1875, -0.3125), (-0.5, 0.5)])
def test_frequency_shift_moves_a_peak_to_the_expected_bin(fx, fy):
    size = 32
    # A pure complex exponential at bin (row 3, col 5): its only peak.
    y = torch.arange(size, dtype=torch.float64)[:, None]
    x = torch.arange(size, dtype=torch.float64)[None, :]
    wave = torch.exp(2j * math.pi * (5 * x + 3 * y) / size)
    assert _peak_bin(wave) == (3, 5)
    shifted = frequency_shift(wave, fx, fy)
    expected = ((3 + round(fy * size)) % size, (5 + round(fx * size)) % size)
    assert _peak_bin(shifted) == expected
    # All the energy moved: the shifted spectrum has a single non-zero bin.
    power = torch.fft.fft2(shifted).abs() ** 2
    assert float(power.max() / power.sum()) == pytest.approx(1.0, abs=1e-9)


def test_frequency_shift_then_inverse_is_identity_and_module_matches():
    x = torch.randn(2, 3, 16, 24, dtype=torch.float64)
    there = frequency_shift(x, 0.3, -0.2)
    back = frequency_shift(there, -0.3, 0.2)
    torch.testing.assert_close(back.real, x)
    assert back.imag.abs().max() < 1e-12
    torch.testing.assert_close(FrequencyShift(0.3, -0.2)(x), there)
    # Magnitude is untouched: only phases change.
    torch.testing.assert_close(there.abs(), x.abs())


def test_frequency_shift_is_differentiable():
    x = torch.randn(1, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    # gradcheck compares autograd with finite differences through the complex op.
    assert torch.autograd.gradcheck(lambda t: frequency_shift(t, 0.25, 0.125).abs(), (x,))
    real = torch.randn(1, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    imag = torch.randn(1, 1, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: shift_real_part(a, b, 0.375, 0.0), (real, imag))


def test_shift_real_part_is_the_real_part_of_the_complex_shift():
    real, imag = torch.randn(2, 1, 8, 8), torch.randn(2, 1, 8, 8)
    expected = frequency_shift(torch.complex(real, imag), 0.125, 0.25).real
    torch.testing.assert_close(shift_real_part(real, imag, 0.125, 0.25), expected)


def test_demodulate_remodulate_round_trip_and_constant_envelope():
    x = torch.randn(3, 1, 16, 16)
    for fx, fy in [(0.25, 0.0), (0.4375, 0.0), (0.1, 0.3), (-0.0625, 0.125)]:
        torch.testing.assert_close(remodulate(demodulate(x, fx, fy), fx, fy), x, atol=1e-5, rtol=0)
    # A cosine's envelope is the constant a * exp(i phi): learnable at frequency 0.
    cosine = torch.from_numpy(planar_cosines(2, 16, 0.4375, seed=1))
    envelope = demodulate(cosine, 0.4375, 0.0)
    assert envelope.shape == (2, 2, 16, 16)
    assert float(envelope.std(dim=(2, 3)).max()) < 1e-5
    assert float(envelope.abs().max()) > 0.1
    mask = analytic_mask(16, 16, 0.25, 0.0)
    assert set(mask.unique().tolist()) == {0.0, 1.0, 2.0}
    with pytest.raises(ValueError):
        analytic_mask(8, 8, 0.0, 0.0)


def test_sideband_shift_moves_a_cosine_to_a_low_frequency_and_back():
    cosine = torch.from_numpy(planar_cosines(2, 32, 0.4375, seed=2))
    low = sideband_shift(cosine, -0.375, 0.0, direction=(1.0, 0.0))
    assert _peak_bin(low[0, 0]) in {(0, 2), (0, 30)}
    back = SidebandShift(0.375, 0.0, direction=(1.0, 0.0))(low)
    torch.testing.assert_close(back, cosine, atol=1e-5, rtol=0)


def test_parse_shifts():
    assert parse_freq_shifts("1/16,0; 0,0.0625;") == [(0.0625, 0.0), (0.0, 0.0625)]
    with pytest.raises(ValueError):
        parse_freq_shifts("0.1")


# --------------------------------------------------------------------------
# Heads on the GAN generator
# --------------------------------------------------------------------------
def test_head_puts_a_constant_envelope_exactly_at_its_shift():
    head = FrequencyShiftHead(8, 1, 16, 32, 0.375, 0.0)
    with torch.no_grad():
        conv = head.envelope[0]
        conv.weight.zero_()
        conv.weight[0, :, 1, 1] = 1.0 / 8  # real part = mean of the features, imag = 0
    with torch.no_grad():
        out = head(torch.ones(2, 8, 16, 16))
    assert out.shape == (2, 1, 32, 32)
    power = torch.fft.fft2(out[0, 0].double()).abs() ** 2
    at_carrier = power[0, 12] + power[0, 20]
    assert float(at_carrier / power.sum()) == pytest.approx(1.0, abs=1e-9)


def test_latent_phase_sets_the_carrier_phase_from_the_latent():
    head = FrequencyShiftHead(8, 1, 16, 32, 0.4375, 0.0)
    with torch.no_grad():
        conv = head.envelope[0]
        conv.weight.zero_()
        conv.weight[0, :, 1, 1] = 1.0 / 8  # constant real envelope 1
    angles = torch.tensor([0.3, 2.0, -2.5, 3.0])
    radii = torch.tensor([0.5, 1.0, 2.0, 3.0])  # only the angle matters
    head.latent = torch.stack([radii * angles.cos(), radii * angles.sin()], dim=1)
    with torch.no_grad():
        out = head(torch.ones(4, 8, 16, 16))
    coefficient = torch.fft.fft2(out[:, 0].double())[:, 0, 14]
    assert torch.allclose(coefficient.angle(), angles.double(), atol=1e-6)
    assert torch.allclose(coefficient.abs(), torch.full((4,), 32 * 32 / 2.0).double(), rtol=1e-6)
    # Uniform angle for a Gaussian latent; the pairs of two heads differ.
    cos, sin = latent_unit_phase(torch.randn(20000, 6, generator=torch.Generator().manual_seed(0)))
    hist = torch.histc(torch.atan2(sin, cos).flatten(), bins=8, min=-math.pi, max=math.pi)
    assert float(hist.min()) > 0.9 * 20000 / 8
    z = torch.randn(3, 6)
    assert not torch.allclose(latent_unit_phase(z, 0)[0], latent_unit_phase(z, 1)[0])


def test_latent_gain_scales_each_images_carrier_and_starts_at_one():
    head = FrequencyShiftHead(8, 1, 16, 32, 0.4375, 0.0, latent_size=4)
    with torch.no_grad():
        conv = head.envelope[0]
        conv.weight.zero_()
        conv.weight[0, :, 1, 1] = 1.0 / 8  # constant real envelope 1
    latent = torch.tensor([[1.0, 0.0, 0.5, -1.0], [0.0, 2.0, -3.0, 0.2], [-1.0, 0.0, 1.0, 1.0]])
    head.latent = latent
    features = torch.ones(3, 8, 16, 16)

    def carrier(out: torch.Tensor) -> torch.Tensor:
        return torch.fft.fft2(out[:, 0].double())[:, 0, 14]

    with torch.no_grad():
        plain = carrier(head(features))
        # Initialized to a gain of exactly 1: the head starts as the plain one.
        assert torch.allclose(plain.abs(), torch.full((3,), 512.0).double(), rtol=1e-6)
        head.gain.weight.copy_(torch.tensor([[0.0, 0.0, 0.25, 0.0]]) / head.GAIN_RATE)
        head.gain.bias.fill_(0.1 / head.GAIN_RATE)
        scaled = carrier(head(features))
    gains = 0.1 + 0.25 * latent[:, 2]  # 0.225, -0.65, 0.35
    # Each image's carrier is its gain times the latent-phase carrier (a negative gain
    # is the opposite phase).
    torch.testing.assert_close(scaled, plain * gains.double(), rtol=1e-5, atol=1e-3)
    # Called on its own (no latent) the head skips both the phase and the gain.
    head.latent = None
    with torch.no_grad():
        alone = carrier(head(features))
    torch.testing.assert_close(alone, torch.full((3,), 512.0 + 0j).to(alone), atol=1e-3, rtol=0)
    assert FrequencyShiftHead(8, 1, 16, 32, 0.25, 0.0).gain is None  # no latent size


def test_head_checkpoints_without_the_gain_load_as_the_same_head():
    old = FrequencyShiftHead(8, 1, 16, 32, 0.4375, 0.0, latent_gain=False)
    new = FrequencyShiftHead(8, 1, 16, 32, 0.4375, 0.0, latent_size=4)
    with torch.no_grad():
        new.gain.weight.fill_(0.3)  # a trained gain must not survive the load
    new.load_state_dict(old.state_dict())  # strict: no missing keys
    features, latent = torch.rand(3, 8, 16, 16), torch.randn(3, 4)
    old.latent = new.latent = latent
    with torch.no_grad():
        torch.testing.assert_close(new(features), old(features))


def test_generator_hands_its_latent_to_the_heads_and_forgets_it():
    from specdetect.gan.config import GanConfig
    from specdetect.gan.models import build_generator

    config = GanConfig(size=32, channels=1, ngf=8, nz=16, freq_shifts=[(0.25, 0.0), (0.0, 0.25)])
    generator = build_generator(config)
    seen = []
    for head in generator.extra_heads:
        head.register_forward_hook(lambda module, args, out: seen.append(module.latent))
    z = torch.randn(2, 16)
    generator(z)
    assert len(seen) == 2 and all(latent is z for latent in seen)
    assert all(head.latent is None for head in generator.extra_heads)
    assert [head.latent_index for head in generator.extra_heads] == [0, 1]
    assert all(head.gain.in_features == 16 for head in generator.extra_heads)
    # Without a latent phase the heads ignore z's angle.
    plain = FrequencyShiftHead(8, 1, 16, 32, 0.25, 0.0, latent_phase=False)
    features = torch.rand(1, 8, 16, 16)
    before = plain(features)
    plain.latent = torch.tensor([[0.0, 1.0]])
    assert torch.equal(plain(features), before)


@pytest.mark.parametrize("upsample", ["transconv", "nearest"])
def test_attach_heads_keeps_shapes_and_gradients_reach_the_heads(upsample):
    from specdetect.gan.config import GanConfig
    from specdetect.gan.models import build_generator

    base = GanConfig(size=32, channels=1, ngf=8, nz=16, upsample=upsample, final_convs=1)
    torch.manual_seed(0)
    plain = build_generator(base)
    z = torch.randn(4, base.nz)
    shape = plain(z).shape
    n_params = sum(p.numel() for p in plain.parameters())

    attach_frequency_shift_heads(plain, [(0.0625, 0.0), (-0.0625, 0.0625)])
    assert len(plain.extra_heads) == 2
    assert sum(p.numel() for p in plain.parameters()) > n_params
    out = plain(z)
    assert out.shape == shape == (4, 1, 32, 32)
    assert out.abs().max() <= 1.0
    out.square().mean().backward()
    for head in plain.extra_heads:
        grads = [p.grad for p in head.parameters()]
        assert all(g is not None and float(g.abs().sum()) > 0 for g in grads)

    # The GAN module's config hook builds the same thing.
    config = GanConfig(**{**base.to_dict(), "freq_shifts": [(0.25, 0.0)]})
    built = build_generator(config)
    assert len(built.extra_heads) == 1
    assert built.extra_heads[0].fx == 0.25


# --------------------------------------------------------------------------
# Carrier datasets
# --------------------------------------------------------------------------
@pytest.mark.parametrize("frequency", [0.0625, 0.25, 0.4375])
def test_planar_cosines_put_their_energy_at_the_carrier(frequency):
    images = planar_cosines(16, 32, frequency, seed=3)
    assert images.shape == (16, 1, 32, 32) and images.dtype == np.float32
    assert np.abs(images).max() <= 0.8 + 1e-6
    spectrum = np.abs(np.fft.fft2(images[:, 0], norm="ortho")) ** 2
    row, col = carrier_bin((32, 32), frequency, 0.0)
    at_carrier = spectrum[:, row, col] + spectrum[:, -row % 32, -col % 32]
    np.testing.assert_allclose(at_carrier / spectrum.sum(axis=(1, 2)), 1.0, atol=1e-5)
    # Amplitude recovered from the DFT bin lies in the U(0.2, 0.8) support.
    amplitude = 2 * np.abs(np.fft.fft2(images[:, 0], norm="ortho")[:, row, col]) / 32
    assert amplitude.min() >= 0.2 - 1e-4 and amplitude.max() <= 0.8 + 1e-4


def test_same_content_at_low_and_high_frequency_and_seeded():
    low = planar_cosines(8, 16, 0.0625, seed=5)
    high = planar_cosines(8, 16, 0.375, seed=5)
    # Same amplitudes and phases: the first pixel is a*cos(phi) at every frequency.
    np.testing.assert_allclose(low[:, 0, 0, 0], high[:, 0, 0, 0], atol=1e-6)
    np.testing.assert_array_equal(low, planar_cosines(8, 16, 0.0625, seed=5))
    assert not np.allclose(low, planar_cosines(8, 16, 0.0625, seed=6))


def test_modulated_patches_move_the_patch_spectrum_to_the_carrier():
    rng = np.random.default_rng(0)
    # A smooth source: low-pass noise, so its own spectrum sits near zero.
    source = np.cumsum(np.cumsum(rng.normal(size=(64, 64)), 0), 1)
    images = modulated_patches([source], 32, 32, 0.375, seed=1)
    assert images.shape == (32, 1, 32, 32) and np.abs(images).max() <= 1.0
    power = (np.abs(np.fft.fft2(images[:, 0])) ** 2).mean(0)
    fx = np.abs(np.fft.fftfreq(32))[None, :]
    near_carrier = power[:, np.abs(fx[0] - 0.375) <= 0.0625].sum()
    assert near_carrier / power.sum() > 0.8
    same = modulated_patches([source], 32, 32, 0.0625, seed=1)
    np.testing.assert_allclose(same[:, 0, :, 0], images[:, 0, :, 0], atol=1e-6)
    with pytest.raises(ValueError):
        modulated_patches([source[:8, :8]], 4, 32, 0.25)


def test_smooth_fields_are_low_pass_and_seeded():
    fields = smooth_fields(4, 32, sigma=2.0, seed=0)
    power = (np.abs(np.fft.fft2(np.stack(fields))) ** 2).mean(0)
    radius = np.hypot(*np.meshgrid(np.fft.fftfreq(32), np.fft.fftfreq(32)))
    assert power[radius > 0.25].sum() < 1e-3 * power.sum()
    np.testing.assert_array_equal(fields[0], smooth_fields(4, 32, sigma=2.0, seed=0)[0])


# --------------------------------------------------------------------------
# Measurement and the experiment
# --------------------------------------------------------------------------
def test_carrier_errors_are_zero_for_real_data_and_grow_with_mismatch():
    from specdetect.gan.freqbias import carrier_errors

    real = planar_cosines(400, 32, 0.25, seed=0)
    same = planar_cosines(400, 32, 0.25, seed=1)
    weaker = same * 0.5
    leaky = same + 0.2 * planar_cosines(400, 32, 0.125, seed=2)
    exact = carrier_errors(real, same, (0.25, 0.0))
    assert exact["carrier_magnitude"] < 0.03 and exact["leakage"] < 1e-6
    assert exact["band_bins"] == 13  # the carrier and the 12 bins within 2 bins of it
    weak = carrier_errors(real, weaker, (0.25, 0.0))
    assert weak["carrier_magnitude"] > 5 * exact["carrier_magnitude"]
    assert weak["magnitude"] > 5 * exact["magnitude"]
    assert carrier_errors(real, leaky, (0.25, 0.0))["leakage"] > 0.02
    # Stray power next to the carrier raises the band error, not the carrier-bin one.
    near = same + 0.2 * planar_cosines(400, 32, (0.25, 1 / 32), seed=3)
    near_errors = carrier_errors(real, near, (0.25, 0.0))
    assert near_errors["magnitude"] > 3 * exact["magnitude"]
    assert near_errors["carrier_magnitude"] < 0.03


def test_freq_bias_cli_smoke(tmp_path):
    from typer.testing import CliRunner

    from specdetect.cli import app

    out = tmp_path / "fb"
    result = CliRunner().invoke(
        app,
        [
            "freq-bias",
            "--out",
            str(out),
            "--frequencies",
            "0.125,0.375",
            "--smoke",
            "--device",
            "cpu",
        ],
    )
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert set(results["baseline"]) == {"0.125", "0.375"}
    # By default only carriers above the lowest get the shifted generators.
    assert set(results["shifted"]) == set(results["shifted_whole"]) == {"0.375"}
    for key in ("baseline", "shifted", "shifted_whole"):
        assert all(isinstance(v, float) and v >= 0 for v in results[key].values())
    assert set(results["leakage"]["shifted"]) == set(results["reduction"]) == {"0.375"}
    timing = results["timing"]
    assert set(timing) >= {"baseline_step_ms", "shifted_step_ms", "extra_cost"}
    assert len(timing["extra_cost_rounds"]) == timing["rounds"]
    assert timing["extra_cost"] == statistics.median(timing["extra_cost_rounds"])
    assert (out / "freq_bias.png").stat().st_size > 1000
    assert "0.375" in result.output and "baseline" in result.output
