"""Fake makers: shapes, brightness, and a genuine up-sampling fingerprint."""

import numpy as np
import pytest

from specdetect.synth import (
    FAKE_METHODS,
    bed_of_nails_upsample,
    interpolate_upsample,
    make_fake,
    natural_noise,
    random_kernel,
)


def _noise(rng, n=48):
    return np.clip(natural_noise(rng, n) * 40 + 128, 0, 255).astype(np.uint8)


def test_random_kernel_sums_to_one_and_is_seeded():
    a = random_kernel(np.random.default_rng(3), 4)
    b = random_kernel(np.random.default_rng(3), 4)
    assert a.shape == (4, 4)
    assert a.sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, random_kernel(np.random.default_rng(4), 4))


def test_bed_of_nails_keeps_brightness_and_inserts_zeros_before_filtering():
    image = np.random.default_rng(0).uniform(0, 255, (10, 12))
    identity = np.zeros((3, 3))
    identity[1, 1] = 1.0
    nails = bed_of_nails_upsample(image, identity)
    assert nails.shape == (20, 24)
    np.testing.assert_allclose(nails[::2, ::2], 4 * image)  # gain 4 on the nails
    assert np.all(nails[1::2, :] == 0) and np.all(nails[:, 1::2] == 0)
    smooth = bed_of_nails_upsample(image, np.ones((2, 2)))
    assert smooth.mean() == pytest.approx(image.mean())


def test_transposed_convolution_puts_a_peak_at_half_a_cycle():
    image = np.random.default_rng(1).uniform(100, 150, (32, 32))
    up = bed_of_nails_upsample(image, random_kernel(np.random.default_rng(2), 3))
    power = np.abs(np.fft.fft2(up - up.mean())) ** 2
    # The replica of the DC term sits at (0, 1/2) cycles per pixel.
    assert power[0, 32] > 100 * np.median(power)


def test_interpolation_modes():
    image = np.arange(6.0).reshape(2, 3)
    assert interpolate_upsample(image, "nearest").shape == (4, 6)
    bilinear = interpolate_upsample(image, "bilinear", np.ones((3, 3)))
    assert bilinear.shape == (4, 6)
    with pytest.raises(ValueError):
        interpolate_upsample(image, "bicubic")


@pytest.mark.parametrize("method", FAKE_METHODS)
@pytest.mark.parametrize("shape", [(48, 48), (33, 50), (20, 31, 3)])
def test_make_fake_same_size_uint8_and_different(method, shape):
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, shape, dtype=np.uint8)
    fake = make_fake(image, rng, method)
    assert fake.shape == image.shape and fake.dtype == np.uint8
    assert not np.array_equal(fake, image)
    assert abs(float(fake.mean()) - float(image.mean())) < 10


def test_fakes_lose_high_frequency_power_on_natural_images():
    from specdetect.features import FeatureConfig, features_numpy

    rng = np.random.default_rng(6)
    config = FeatureConfig(bins=16, norm="none")
    reals = np.stack([_noise(rng) for _ in range(6)]).astype(np.float32)
    fakes = np.stack([make_fake(r, rng, "bilinear") for r in reals]).astype(np.float32)
    # Top-frequency decibels: up-sampled images cannot hold real content there.
    assert (
        features_numpy(fakes, config)[:, -1].mean()
        < features_numpy(reals, config)[:, -1].mean() - 3
    )


@pytest.mark.parametrize("method", FAKE_METHODS)
def test_upsampling_phase_locks_the_half_band_coherence(method):
    """x2 up-sampling makes F(f + 1/2) a filtered copy of F(f); camera-like noise does not."""
    from specdetect.features import N_COHERENCE, coherence_numpy

    rng = np.random.default_rng(7)
    reals = np.stack([_noise(rng) for _ in range(4)]).astype(np.float32)
    fakes = np.stack([make_fake(r, rng, method) for r in reals]).astype(np.float32)
    real_c, fake_c = coherence_numpy(reals), coherence_numpy(fakes)
    assert real_c.shape == fake_c.shape == (4, N_COHERENCE)
    assert np.all((real_c >= 0) & (real_c <= 1 + 1e-6))
    assert real_c.mean() < 0.4
    assert fake_c.mean() > real_c.mean() + 0.1


@pytest.mark.parametrize("shape", [(1, 1), (3, 2), (7, 5), (33, 48)])
def test_coherence_numpy_and_torch_agree(shape):
    import torch

    from specdetect.features import FeatureConfig, features_numpy, features_torch

    config = FeatureConfig(bins=8, norm="center", coherence=True)
    rng = np.random.default_rng(8)
    images = (rng.random((2, *shape)) * 255).astype(np.float32)
    images[1] = 0.0  # a black image: no spectrum, coherence defined as 0
    expected = features_numpy(images, config)
    got = features_torch(torch.from_numpy(images), config).numpy()
    assert expected.shape == (2, config.n_features) and np.all(np.isfinite(expected))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_array_equal(expected[1, -12:], 0.0)
    # The coherence reuses the spectrum's transform: the spectrum part is unchanged.
    plain = features_numpy(images, FeatureConfig(bins=8, norm="center"))
    np.testing.assert_array_equal(expected[:, :8], plain)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (33, 48), (64, 64), (9, 130), (200, 130)])
def test_gathered_coherence_of_small_images_equals_the_chunked_one(monkeypatch, shape, dtype):
    """Small images gather all their blocks at once; the values are the chunked path's."""
    from specdetect import features

    rng = np.random.default_rng(10)
    images = (rng.random((3, *shape)) * 255).astype(dtype)
    images[1] = 0.0  # black: coherence 0
    gathered = features.coherence_numpy(images)
    one_by_one = np.stack([features.coherence_numpy(image) for image in images])
    monkeypatch.setattr(features, "_COHERENCE_GATHER_BINS", -1)
    chunked = features.coherence_numpy(images)
    assert gathered.dtype == chunked.dtype == dtype
    tolerance = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(gathered, chunked, rtol=0, atol=tolerance)
    np.testing.assert_allclose(one_by_one, chunked, rtol=0, atol=tolerance)
    np.testing.assert_array_equal(gathered[1], 0.0)


def test_small_images_do_not_read_the_chunked_layout(monkeypatch):
    """Thumbnails take the gathered path (the chunked one is slow per image)."""
    from specdetect import features

    def refuse(*args):
        raise AssertionError("the chunked layout was read")

    monkeypatch.setattr(features, "_coherence_layout", refuse)
    images = np.random.default_rng(11).random((2, 64, 64)).astype(np.float32)
    assert features.coherence_numpy(images).shape == (2, features.N_COHERENCE)
    monkeypatch.setattr(features, "_COHERENCE_GATHER_BINS", 0)
    with pytest.raises(AssertionError, match="chunked layout"):
        features.coherence_numpy(images)


def test_coherence_is_block_averaged_half_band_coherence():
    """Check the fast block/Hermitian formulation against the definition on the full plane."""
    from specdetect.features import (
        COHERENCE_BLOCK,
        N_COHERENCE,
        coherence_numpy,
        coherence_plan,
    )

    rng = np.random.default_rng(9)
    height, width = 32, 40
    image = rng.random((height, width)).astype(np.float64)
    full = np.fft.fft2(image - image.mean(), norm="ortho")
    index, n_y, n_x, weights = coherence_plan(height, width)
    # Brute force: for every block of the plan, read its base frequencies back from
    # the index and sum F(f) conj(F(f + s)) over the block with the full DFT.
    half = width // 2 + 1
    blocks = index.reshape(-1, COHERENCE_BLOCK**2)
    base = np.concatenate([blocks[:n_y], blocks[n_y : n_y + n_x], blocks[n_y : n_y + n_x]])
    shifts = [(height // 2, 0)] * n_y + [(0, width // 2)] * n_x + [(height // 2, width // 2)] * n_x
    ratio = []
    dc_slot = 2 * height * half  # the plan's index of the (zeroed) DC term
    for flat_bins, (sy, sx) in zip(base, shifts, strict=True):
        ky, kx = np.divmod(np.where(flat_bins == dc_slot, 0, flat_bins), half)
        f, g = full[ky, kx], full[(ky + sy) % height, (kx + sx) % width]
        cross = np.abs(np.sum(f * np.conj(g)))
        ratio.append(
            cross / (np.sqrt(np.sum(abs(f) ** 2) * np.sum(abs(g) ** 2)) + 1e-3 * COHERENCE_BLOCK**2)
        )
    expected = np.array(ratio) @ weights
    got = coherence_numpy(image)
    assert got.shape == (N_COHERENCE,)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)
