"""Detector: the three methods, thresholds, seeding, k-means cluster naming."""

import numpy as np
import pytest
from sklearn.base import clone

from specdetect.detect import Detector
from specdetect.detect.evaluate import binary_metrics, choose_threshold
from specdetect.features import MODEL_DEFAULT, FeatureConfig, features_numpy
from specdetect.synth import FAKE_METHODS, make_fake, natural_noise

CONFIG = FeatureConfig(bins=16, norm="center")


def _noise(rng, n=48):
    image = natural_noise(rng, n, exponent=rng.uniform(0.8, 1.2))
    return np.clip(image * 40 + 128, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def data():
    """Natural-statistics noise (real) vs the same passed through up-samplers (fake)."""
    rng = np.random.default_rng(0)
    reals = [_noise(rng) for _ in range(30)]
    fakes = [make_fake(_noise(rng), rng, FAKE_METHODS[i % 3]) for i in range(30)]
    X = features_numpy(np.stack(reals + fakes).astype(np.float32), CONFIG)
    y = np.r_[np.zeros(30, int), np.ones(30, int)]
    return X, y


def _split(X, y):
    train = np.r_[0:20, 30:50]
    test = np.r_[20:30, 50:60]
    return X[train], y[train], X[test], y[test]


@pytest.mark.parametrize("method", ["svm", "logreg", "kmeans"])
def test_methods_separate_held_out_fakes(data, method):
    X_train, y_train, X_test, y_test = _split(*data)
    model = Detector(method, CONFIG, seed=0, cv=3).fit(X_train, y_train)
    proba = model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert np.all((proba >= 0) & (proba <= 1))
    assert np.mean(model.predict(X_test) == y_test) >= 0.9
    summary = model.summary_
    assert summary["n_real"] == 20 and summary["n_fake"] == 20
    assert summary["cv"]["folds"] == 3 and 0 <= summary["cv"]["accuracy"]["mean"] <= 1
    assert summary["threshold"] == model.threshold_
    assert "scikit-learn" in summary["versions"]


def test_seeded_fits_are_identical_and_clone_works(data):
    X, y = data
    a = Detector("svm", CONFIG, seed=7).fit(X, y).predict_proba(X)
    b = Detector("svm", CONFIG, seed=7).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    params = Detector("logreg", CONFIG, seed=3, C=2.0).get_params()
    assert params["method"] == "logreg" and params["C"] == 2.0
    assert clone(Detector("kmeans", CONFIG)).method == "kmeans"


def test_default_feature_config_is_filled_at_fit(data):
    X, y = data
    width = MODEL_DEFAULT.n_features
    with pytest.raises(ValueError, match=f"expects {width} features"):
        # Fitting succeeds on any width; predicting checks the model's width.
        Detector("logreg", cv=0).fit(
            np.zeros((4, width)) + np.arange(4)[:, None], [0, 0, 1, 1]
        ).predict(X)
    model = Detector("logreg", cv=0).fit(np.random.default_rng(0).random((6, width)), [0, 1] * 3)
    assert model.feature_config == MODEL_DEFAULT


def test_kmeans_label_swap_is_handled(data):
    """k-means numbers clusters arbitrarily; naming must follow the data, not the number."""
    X, y = data
    fake_ids = set()
    for seed in range(6):
        for order in (np.arange(len(y)), np.arange(len(y))[::-1]):
            model = Detector("kmeans", CONFIG, seed=seed, cv=0).fit(X[order], y[order])
            fake_ids.add(model.fake_cluster_)
            assert np.mean(model.predict(X) == y) >= 0.9
    assert fake_ids == {0, 1}  # the swap did happen, and was named right both ways


def test_kmeans_without_labels_names_clusters_by_reference_rule(data):
    X, y = data
    fake_ids = set()
    for seed in range(4):
        model = Detector("kmeans", CONFIG, seed=seed).fit(X)
        fake_ids.add(model.fake_cluster_)
        assert np.mean(model.predict(X) == y) >= 0.9
        assert model.summary_["n_unlabelled"] == len(X) and model.summary_["cv"] is None
    assert fake_ids == {0, 1}
    # A reference that looks like the fakes flips the naming: the rule is really used.
    # (Flipped, the fakes' cluster is taken as the real one and its radius is
    # drawn around it, so most images get the wrong label.)
    named = Detector("kmeans", CONFIG, seed=0).fit(X)
    flipped = Detector("kmeans", CONFIG, seed=0, reference=X[y == 1].mean(0)).fit(X)
    assert flipped.fake_cluster_ == 1 - named.fake_cluster_
    assert np.mean(flipped.predict(X) == y) <= 0.3


def test_refusals():
    X = np.random.default_rng(0).random((6, 4))
    with pytest.raises(ValueError, match="needs labels"):
        Detector("svm").fit(X)
    with pytest.raises(ValueError, match="method"):
        Detector("forest").fit(X, [0, 1] * 3)
    with pytest.raises(ValueError, match="NaN"):
        Detector("logreg", cv=0).fit(np.full((4, 2), np.nan), [0, 1, 0, 1])


def test_metrics_and_threshold():
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.7, 0.6, 0.8, 0.9])
    metrics = binary_metrics(y, p, 0.5)
    assert metrics["confusion"] == [[2, 1], [0, 3]]
    assert metrics["accuracy"] == pytest.approx(5 / 6)
    assert binary_metrics(np.zeros(3), np.array([0.1, 0.2, 0.9]))["roc_auc"] is None
    # 0.5 and 0.75 both reach balanced accuracy 5/6; ties go to the one nearest 0.5.
    assert choose_threshold(y, p) == 0.5
    assert choose_threshold(y, np.array([0.1, 0.2, 0.3, 0.8, 0.85, 0.9])) == 0.5
    assert choose_threshold(y, np.array([0.6, 0.62, 0.65, 0.8, 0.85, 0.9])) == pytest.approx(0.725)
    separated = choose_threshold(np.array([0, 0, 1, 1]), np.array([0.01, 0.02, 0.03, 0.04]))
    assert 0.02 < separated < 0.03


def test_kmeans_reference_rule_with_coherence_features():
    """The unlabelled naming rule also holds for the model default's extra features."""
    config = FeatureConfig(bins=16, norm="center", coherence=True)
    rng = np.random.default_rng(1)
    reals = [_noise(rng) for _ in range(20)]
    fakes = [make_fake(_noise(rng), rng, FAKE_METHODS[i % 3]) for i in range(20)]
    X = features_numpy(np.stack(reals + fakes).astype(np.float32), config)
    y = np.r_[np.zeros(20, int), np.ones(20, int)]
    for seed in range(3):
        model = Detector("kmeans", config, seed=seed).fit(X[::-1] if seed % 2 else X)
        assert model.reference_.shape == (config.n_features,)
        assert np.mean(model.predict(X) == y) >= 0.9


def test_kmeans_radius_flags_what_lies_off_the_real_cluster(data):
    """The radius rule: a real-cluster quantile of distances; it flags outliers in any direction."""
    X, y = data
    model = Detector("kmeans", CONFIG, seed=0, kmeans_quantile=0.9).fit(X)
    old = Detector("kmeans", CONFIG, seed=0, kmeans_quantile=None).fit(X)
    assert not hasattr(old, "radius_") and model.radius_ > 0
    distances = model.estimator_.transform(X)
    d_real = distances[:, 1 - model.fake_cluster_]
    members = d_real <= distances[:, model.fake_cluster_]
    beyond = np.mean(d_real[members] > model.radius_)
    assert 0.05 <= beyond <= 0.15  # the quantile, up to ties
    assert np.mean(model.predict(X) == y) >= 0.85
    # A point on the far side of the real centre, away from the fake one (a "new
    # generator" that is not like the training fakes): the old two-centre boundary
    # calls it real, the radius rule flags it.
    scaler, kmeans = model.estimator_[0], model.estimator_[-1]
    real_c = kmeans.cluster_centers_[1 - model.fake_cluster_]
    fake_c = kmeans.cluster_centers_[model.fake_cluster_]
    outlier = scaler.inverse_transform((real_c + 3 * (real_c - fake_c))[None])
    assert model.predict(outlier)[0] == 1
    assert old.predict(outlier)[0] == 0
    with pytest.raises(ValueError, match="kmeans_quantile"):
        Detector("kmeans", CONFIG, kmeans_quantile=1.5).fit(X)


def test_kmeans_radius_with_labels_uses_the_real_rows(data):
    X, y = data
    model = Detector("kmeans", CONFIG, seed=0, cv=0, kmeans_quantile=0.8).fit(X, y)
    d_real = model.estimator_.transform(X)[:, 1 - model.fake_cluster_]
    assert model.radius_ == pytest.approx(np.quantile(d_real[y == 0], 0.8))
