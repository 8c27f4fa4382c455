"""The NumPy scorer: same scores as the detector, read from the file without scikit-learn."""

import io
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import skops.io

from specdetect.detect import Detector, ModelError, load_model, save_model
from specdetect.detect.model_io import load_scorer
from specdetect.detect.scorer import SCORER_ARRAYS, Scorer
from specdetect.features import FeatureConfig

CONFIG = FeatureConfig(bins=8, norm="center")
METHODS = ["svm", "logreg", "kmeans"]


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = np.r_[rng.normal(0, 1, (n, 8)), rng.normal(1.2, 1.3, (n, 8))]
    return X, np.r_[np.zeros(n, int), np.ones(n, int)]


def _probe(seed=1):
    # Wide rows: near the training data, far outside it, and exactly constant.
    rng = np.random.default_rng(seed)
    return np.r_[rng.normal(0.6, 1.5, (200, 8)), rng.normal(0, 40, (20, 8)), np.zeros((1, 8))]


@pytest.fixture(scope="module", params=METHODS)
def fitted(request):
    X, y = _data()
    labels = None if request.param == "kmeans" else y
    return Detector(request.param, CONFIG, seed=3, cv=3).fit(X, labels)


def test_scorer_matches_the_detector(fitted):
    scorer = Scorer.from_detector(fitted)
    probe = _probe()
    expected = fitted.predict_proba(probe)
    np.testing.assert_allclose(scorer.predict_proba(probe), expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(scorer.predict(probe), fitted.predict(probe))
    assert scorer.threshold_ == fitted.threshold_
    assert scorer.feature_config == fitted.feature_config
    # The probe spans both verdicts, so agreement is not the trivial "all one class".
    assert 0 < scorer.predict(probe).sum() < len(probe)


def test_file_round_trip_without_scikit_learn(fitted, tmp_path):
    path = tmp_path / "m.skops"
    save_model(fitted, path)
    scorer = load_scorer(path)
    assert isinstance(scorer, Scorer)
    assert scorer.method == fitted.method
    probe = _probe(2)
    np.testing.assert_allclose(
        scorer.predict_proba(probe), load_model(path).predict_proba(probe), rtol=0, atol=1e-12
    )


def test_loading_a_scorer_imports_neither_scikit_learn_nor_skops(tmp_path):
    X, y = _data()
    path = tmp_path / "m.skops"
    save_model(Detector("svm", CONFIG, cv=0).fit(X, y), path)
    code = (
        "import sys; from specdetect.detect.model_io import load_scorer; "
        f"s = load_scorer({str(path)!r}); assert s is not None; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'skops')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def _payload(path):
    from specdetect.detect.model_io import TRUSTED_TYPES

    return skops.io.load(path, trusted=TRUSTED_TYPES)


def test_file_without_scorer_falls_back_to_the_full_loader(tmp_path):
    X, y = _data()
    model = Detector("logreg", CONFIG, cv=0).fit(X, y)
    path = tmp_path / "new.skops"
    save_model(model, path)
    payload = _payload(path)
    del payload["scorer"]  # what files written before the scorer existed look like
    old = tmp_path / "old.skops"
    skops.io.dump(payload, old)
    assert load_scorer(old) is None
    np.testing.assert_array_equal(load_model(old).predict_proba(X), model.predict_proba(X))


def _replace_member(source, target, name, data):
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for item in zin.infolist():
            zout.writestr(item, data if item.filename == name else zin.read(item.filename))


def _scorer_member(path, key):
    import json

    with zipfile.ZipFile(path) as archive:
        schema = json.loads(archive.read("schema.json"))
    return schema["content"]["scorer"]["content"][key]["file"]


def test_scorer_that_disagrees_with_the_estimator_is_refused(tmp_path):
    X, y = _data()
    path = tmp_path / "m.skops"
    save_model(Detector("logreg", CONFIG, cv=0).fit(X, y), path)
    member = _scorer_member(path, "coef")
    buffer = io.BytesIO()
    np.save(buffer, -np.ones(8))  # a well-formed array with other weights
    tampered = tmp_path / "tampered.skops"
    _replace_member(path, tampered, member, buffer.getvalue())
    with pytest.raises(ModelError, match="scorer arrays do not match"):
        load_model(tampered)


def test_pickled_array_member_is_not_loaded(tmp_path):
    X, y = _data()
    path = tmp_path / "m.skops"
    save_model(Detector("logreg", CONFIG, cv=0).fit(X, y), path)
    buffer = io.BytesIO()
    np.save(buffer, np.array([object()], dtype=object), allow_pickle=True)
    evil = tmp_path / "evil.skops"
    _replace_member(path, evil, _scorer_member(path, "coef"), buffer.getvalue())
    assert load_scorer(evil) is None  # allow_pickle=False: refused, never unpickled


def test_untrusted_type_anywhere_sends_the_file_to_the_full_loader(tmp_path):
    X, y = _data()
    path = tmp_path / "m.skops"
    save_model(Detector("svm", CONFIG, cv=0).fit(X, y), path)
    with zipfile.ZipFile(path) as archive:
        schema = archive.read("schema.json").decode()
    evil = tmp_path / "evil.skops"
    text = schema.replace('"sklearn.preprocessing._data"', '"os"').replace(
        '"StandardScaler"', '"system"'
    )
    _replace_member(path, evil, "schema.json", text.encode())
    assert load_scorer(evil) is None
    with pytest.raises(ModelError, match="untrusted"):
        load_model(evil)


@pytest.mark.parametrize(
    "path_content",
    [b"", b"\x80\x04not a zip", b"PK\x03\x04truncated"],
    ids=["empty", "pickle", "truncated"],
)
def test_broken_files_give_none(tmp_path, path_content):
    path = tmp_path / "bad.skops"
    path.write_bytes(path_content)
    assert load_scorer(path) is None
    assert load_scorer(tmp_path / "missing.skops") is None


def _arrays(method, n_features=8, n_vectors=3):
    shapes = {"F": n_features, "S": n_vectors, "2": 2}
    arrays = {
        name: np.ones([shapes[d] for d in dims] or [1])
        for name, dims in SCORER_ARRAYS[method].items()
    }
    if method == "kmeans":
        arrays["fake_cluster"] = np.array([1.0])
    return arrays


@pytest.mark.parametrize("method", METHODS)
def test_scorer_validates_its_arrays(method):
    Scorer(method, CONFIG, 0.5, _arrays(method))  # well-formed
    with pytest.raises(ValueError, match="shape"):
        Scorer(method, CONFIG, 0.5, _arrays(method, n_features=7))
    bad = _arrays(method)
    bad["mean"] = np.full(8, np.nan)
    with pytest.raises(ValueError, match="finite"):
        Scorer(method, CONFIG, 0.5, bad)
    missing = _arrays(method)
    missing.pop("scale")
    with pytest.raises(ValueError, match="arrays must be"):
        Scorer(method, CONFIG, 0.5, missing)
    with pytest.raises(ValueError, match="threshold"):
        Scorer(method, CONFIG, 1.5, _arrays(method))
    with pytest.raises(ValueError, match="features per row"):
        Scorer(method, CONFIG, 0.5, _arrays(method)).predict_proba(np.zeros((2, 9)))


def test_shipped_model_has_a_scorer_that_matches_it():
    from specdetect.detect import default_model_path

    scorer = load_scorer(default_model_path())
    assert scorer is not None, "rebuild models/default.skops with `make model`"
    detector = load_model(default_model_path())
    rows = scorer.arrays["mean"] + scorer.arrays["scale"] * np.random.default_rng(0).normal(
        size=(64, detector.n_features_in_)
    )
    np.testing.assert_allclose(
        scorer.predict_proba(rows), detector.predict_proba(rows), rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("quantile", [None, 0.9])
def test_kmeans_scorer_with_and_without_radius(tmp_path, quantile):
    """New k-means files store the radius; files without it (older ones) score the old way."""
    X, _ = _data()
    model = Detector("kmeans", CONFIG, seed=3, cv=0, kmeans_quantile=quantile).fit(X)
    path = tmp_path / "k.skops"
    save_model(model, path)
    scorer = load_scorer(path)
    assert ("radius" in scorer.arrays) == (quantile is not None)
    probe = _probe(4)
    expected = model.predict_proba(probe)
    np.testing.assert_allclose(scorer.predict_proba(probe), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(load_model(path).predict_proba(probe), expected, atol=1e-12)
    assert 0 < scorer.predict(probe).sum() < len(probe)
    if quantile is not None:
        bad = dict(scorer.arrays, radius=np.array([-1.0]))
        with pytest.raises(ValueError, match="radius"):
            Scorer("kmeans", CONFIG, 0.5, bad)
        with pytest.raises(ValueError, match="arrays must be"):
            Scorer("svm", CONFIG, 0.5, {**_arrays("svm"), "radius": np.array([1.0])})
