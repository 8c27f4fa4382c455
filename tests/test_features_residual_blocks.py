"""The residual and 2-D block feature options: NumPy/torch twins, meaning, old configs."""

import numpy as np
import pytest
import scipy.ndimage
import torch

from specdetect.features import (
    FeatureConfig,
    block_plan,
    features_numpy,
    features_torch,
    median_residual,
    median_residual_torch,
)

SHAPES = [(32, 32), (40, 56), (33, 47)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    "config",
    [
        FeatureConfig(bins=16, residual=True),
        FeatureConfig(bins=16, norm="center", blocks=4),
        FeatureConfig(bins=16, norm="center", coherence=True, residual=True, blocks=8),
        FeatureConfig(bins=16, scale="linear", blocks=3),
    ],
)
def test_numpy_and_torch_agree(shape, config):
    rng = np.random.default_rng(3)
    batch = (rng.random((3, *shape)) * 255).astype(np.float32)
    expected = features_numpy(batch, config)
    assert expected.shape == (3, config.n_features)
    got = features_torch(torch.from_numpy(batch).double(), config).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_median_residual_matches_scipy_and_removes_smooth_content():
    rng = np.random.default_rng(0)
    image = rng.random((2, 20, 24)) * 255
    expected = image - scipy.ndimage.median_filter(image, size=(1, 3, 3), mode="nearest")
    np.testing.assert_allclose(median_residual(image), expected)
    np.testing.assert_allclose(median_residual_torch(torch.from_numpy(image)).numpy(), expected)
    ramp = np.add.outer(np.arange(20.0), np.arange(24.0))  # a smooth scene: no residual inside
    assert np.abs(median_residual(ramp)[1:-1, 1:-1]).max() == 0.0


def test_blocks_find_an_axis_peak_the_ring_mean_dilutes():
    """A grating along x at 1/4 cycle/px lights the grid cell at (fy 0, fx 1/4) only."""
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 5, (64, 64))
    grating = noise + 40 * np.cos(2 * np.pi * 0.25 * np.arange(64))[None, :]
    config = FeatureConfig(bins=8, norm="center", blocks=4)
    grid = features_numpy(grating.astype(np.float32), config)[8:].reshape(4, 4)
    plain = features_numpy(noise.astype(np.float32), config)[8:].reshape(4, 4)
    lift = grid - plain
    # 1/4 cycle/px falls in column 2 of 4 (cells of 1/8); row 0 is |fy| < 1/8
    assert np.unravel_index(np.argmax(lift), lift.shape) == (0, 2)


def test_block_plan_covers_every_bin_but_dc():
    cells, weights = block_plan(16, 16, 4)
    assert cells[0] == -1 and set(cells[1:]) == set(range(16))
    np.testing.assert_allclose(weights.sum(axis=0), 1.0)


def test_new_fields_default_off_so_old_configs_load():
    old = {"bins": 64, "norm": "center", "scale": "log", "drop_corners": True,
           "harmonics": False, "coherence": True}  # fmt: skip
    config = FeatureConfig.from_dict(old)
    assert not config.residual and config.blocks == 0
    assert config.n_features == 64 + 12
    assert FeatureConfig(blocks=8).n_features == 64 + 64
    with pytest.raises(ValueError, match="blocks"):
        FeatureConfig(blocks=-1)
