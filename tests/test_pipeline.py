"""Feature extraction jobs: small images featurized together, with the bits of one by one."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from specdetect import pipeline
from specdetect.features import MODEL_DEFAULT, FeatureConfig, features_numpy
from specdetect.media import read_luma

CONFIGS = [
    FeatureConfig(),
    MODEL_DEFAULT,
    FeatureConfig(bins=16, norm="minmax", scale="linear", harmonics=True),
    FeatureConfig(bins=16, norm="center", coherence=True, residual=True, blocks=4, harmonics=True),
]


@pytest.mark.parametrize("config", CONFIGS, ids=range(len(CONFIGS)))
@pytest.mark.parametrize("shape", [(64, 64), (33, 48), (5, 7)])
def test_a_batch_gets_the_bits_of_its_images_alone(config, shape):
    """Grouping images into one call must not change a single bit of their features."""
    rng = np.random.default_rng(20)
    images = (rng.random((9, *shape)) * 255).astype(np.float32)
    alone = np.concatenate([features_numpy(image[None], config) for image in images])
    together = features_numpy(images, config)
    np.testing.assert_array_equal(together, alone)


def _write(path, shape, seed):
    rng = np.random.default_rng(seed)
    Image.fromarray((rng.random(shape) * 255).astype(np.uint8)).save(path)
    return str(path)


def test_a_task_featurizes_its_small_images_of_a_shape_in_one_call(tmp_path, monkeypatch):
    """Small images are grouped by shape; large ones and failures keep their place."""
    monkeypatch.setattr(pipeline, "GROUP_PIXELS", 40 * 40)
    paths = [
        _write(tmp_path / "a.png", (32, 32), 1),
        _write(tmp_path / "big.png", (48, 48), 2),  # over GROUP_PIXELS: alone
        _write(tmp_path / "b.png", (32, 24), 3),
        str(tmp_path / "missing.png"),
        _write(tmp_path / "c.png", (32, 32), 4),
        _write(tmp_path / "d.png", (32, 24), 5),
    ]
    calls = []

    def counting(images, config):
        calls.append(images.shape)
        return features_numpy(images, config)

    monkeypatch.setattr(pipeline, "features_numpy", counting)
    results = list(pipeline.extract_features(paths, MODEL_DEFAULT, workers=1, task_size=8))
    assert [r.path for r in results] == paths
    assert [r.ok for r in results] == [True, True, True, False, True, True]
    assert sorted(calls) == [(1, 48, 48), (2, 32, 24), (2, 32, 32)]
    for path, result in zip(paths, results, strict=True):
        if result.ok:
            expected = features_numpy(read_luma(path)[None], MODEL_DEFAULT)
            assert result.features.shape == (1, MODEL_DEFAULT.n_features)
            np.testing.assert_array_equal(result.features, expected)
