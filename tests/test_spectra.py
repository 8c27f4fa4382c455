"""Spectrum math against cases whose answer is known analytically."""

import numpy as np
import pytest
import torch

from specdetect import spectra
from specdetect.features import FeatureConfig, features_numpy, features_torch

SHAPES = [(17, 33), (64, 64), (48, 80), (33, 17), (1000, 750)]


def grating(shape, fx=0.0, fy=0.0, amplitude=100.0):
    y, x = np.mgrid[: shape[0], : shape[1]]
    return 128.0 + amplitude * np.cos(2 * np.pi * (fx * x + fy * y))


def ring_spectrum(image, drop_corners=True):
    return spectra.azimuthal_integral(spectra.power_spectrum(image), image.shape, drop_corners)


@pytest.mark.parametrize("shape", [(128, 128), (96, 160), (160, 96)])
@pytest.mark.parametrize("frequency", [0.0625, 0.2, 0.375])
def test_grating_peaks_at_its_radius(shape, frequency):
    for fx, fy in [(frequency, 0.0), (0.0, frequency), (frequency / 2**0.5, frequency / 2**0.5)]:
        spectrum, radii = ring_spectrum(grating(shape, fx, fy))
        peak = 1 + np.argmax(spectrum[1:])  # skip DC
        assert abs(radii[peak] - frequency) <= 1.0 / min(shape)


def test_grating_peaks_at_expected_resampled_bin():
    frequency, bins = 0.25, 65
    config = FeatureConfig(bins=bins, norm="none", scale="linear")
    feature = features_numpy(grating((128, 128), fx=frequency), config)
    assert np.argmax(feature[1:]) + 1 == round(frequency / 0.5 * (bins - 1))


def test_white_noise_spectrum_is_flat():
    rng = np.random.default_rng(0)
    sigma = 20.0
    image = rng.normal(128.0, sigma, size=(512, 512))
    spectrum, radii = ring_spectrum(image)
    rings = spectrum[radii >= 0.05]  # rings with at least ~80 samples each
    # ortho FFT: white noise has expected power sigma**2 at every frequency;
    # each ring mean is within 4 standard errors (power is exponential).
    assert np.all(np.abs(rings / sigma**2 - 1.0) < 0.45)
    assert abs(rings.mean() / sigma**2 - 1.0) < 0.02


def test_constant_and_black_images_give_finite_features():
    for value in (0.0, 1.0, 255.0):
        image = np.full((40, 30), value, np.float32)
        for norm in spectra.NORMS:
            for scale in ("log", "linear"):
                feature = features_numpy(image, FeatureConfig(bins=16, norm=norm, scale=scale))
                assert np.all(np.isfinite(feature))


def test_dc_is_its_own_ring_and_equals_mean_squared_times_size():
    image = np.full((30, 70), 3.0)
    spectrum, radii = ring_spectrum(image)
    assert radii[0] == 0.0
    assert spectrum[0] == pytest.approx(9.0 * 30 * 70)
    assert np.allclose(spectrum[1:], 0.0, atol=1e-9)


def test_half_plane_ring_means_equal_full_plane_ring_means():
    rng = np.random.default_rng(1)
    for shape in [(31, 45), (32, 48)]:
        image = rng.random(shape)
        half, radii = ring_spectrum(image)
        full = np.abs(np.fft.fft2(image, norm="ortho")) ** 2
        fy = np.fft.fftfreq(shape[0])[:, None]
        fx = np.fft.fftfreq(shape[1])[None, :]
        radius = np.hypot(fx, fy)
        ring = np.maximum(np.rint(radius * min(shape)), (radius > 0)).astype(int)
        keep = radius <= 0.5 + 1e-12
        means = np.bincount(ring[keep], full[keep]) / np.bincount(ring[keep])
        assert np.allclose(half, means[np.bincount(ring[keep]) > 0])


def test_corners_dropped_by_default_and_kept_on_request():
    image = np.random.default_rng(2).random((64, 64))
    _, radii = ring_spectrum(image)
    _, radii_all = ring_spectrum(image, drop_corners=False)
    assert radii.max() == pytest.approx(0.5)
    assert radii_all.max() == pytest.approx(0.5 * 2**0.5, abs=1 / 64)


@pytest.mark.parametrize("shape", SHAPES)
def test_invariant_to_rotation_and_transpose(shape):
    image = np.random.default_rng(3).random(shape).astype(np.float32) * 255
    config = FeatureConfig(bins=32)
    reference = features_numpy(image, config)
    for variant in (image.T, np.rot90(image), np.rot90(image, 2), np.rot90(image, 3)):
        assert np.allclose(
            features_numpy(np.ascontiguousarray(variant), config), reference, rtol=1e-5
        )


@pytest.mark.parametrize("shape", [(17, 33), (64, 64), (1000, 750)])
@pytest.mark.parametrize("bins", [8, 64, 100])
def test_output_length_equals_bins(shape, bins):
    image = np.random.default_rng(4).random(shape).astype(np.float32)
    assert features_numpy(image, FeatureConfig(bins=bins)).shape == (bins,)
    assert features_torch(torch.from_numpy(image)[None], FeatureConfig(bins=bins)).shape == (
        1,
        bins,
    )


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("norm", spectra.NORMS)
@pytest.mark.parametrize("scale", ["log", "linear"])
def test_numpy_and_torch_agree(shape, norm, scale):
    rng = np.random.default_rng(5)
    batch = (rng.random((3, *shape)) * 255).astype(np.float32)
    config = FeatureConfig(bins=48, norm=norm, scale=scale)
    expected = features_numpy(batch, config)
    got = features_torch(torch.from_numpy(batch), config).numpy()
    assert np.allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_torch_azimuthal_integral_is_differentiable():
    image = torch.rand(2, 32, 32, dtype=torch.float64, requires_grad=True)
    spectrum, _ = spectra.azimuthal_integral_torch(spectra.power_spectrum_torch(image), (32, 32))
    spectrum[:, 5].sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


def test_resampling_interpolates_the_spectrum_not_the_image():
    radii = np.array([0.0, 0.25, 0.5])
    resampled = spectra.resample_spectrum(np.array([0.0, 1.0, 3.0]), radii, 5)
    assert np.allclose(resampled, [0.0, 0.5, 1.0, 2.0, 3.0])


def test_normalizations():
    spectrum = np.array([[4.0, 2.0, 8.0], [-2.0, 1.0, 0.0]])
    assert np.allclose(spectra.normalize_spectrum(spectrum, "first"), [[1, 0.5, 2], [-1, 0.5, 0]])
    minmax = spectra.normalize_spectrum(spectrum, "minmax")
    assert np.allclose(minmax.min(axis=1), 0) and np.allclose(minmax.max(axis=1), 1)
    assert spectra.normalize_spectrum(spectrum, "none") is spectrum
    with pytest.raises(ValueError, match="unknown norm"):
        spectra.normalize_spectrum(spectrum, "l2")


def test_ring_index_is_cached_per_shape():
    assert spectra.ring_index(40, 60) is spectra.ring_index(40, 60)
    assert spectra.ring_index(40, 60) is not spectra.ring_index(60, 40)


def test_feature_config_round_trip_and_validation():
    config = FeatureConfig(bins=32, norm="minmax")
    assert FeatureConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError):
        FeatureConfig(bins=1)
    with pytest.raises(ValueError):
        FeatureConfig(norm="l2")
    with pytest.raises(ValueError, match="unknown feature settings"):
        FeatureConfig.from_dict({"bins": 8, "colour": True})
