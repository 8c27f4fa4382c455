"""Model files: round trip, and refusal of anything that is not exactly ours."""

import io
import json
import pickle
import zipfile

import numpy as np
import pytest
import skops.io

from specdetect.detect import Detector, ModelError, default_model_path, load_model, save_model
from specdetect.detect.model_io import FORMAT, TRUSTED_TYPES
from specdetect.features import FeatureConfig

CONFIG = FeatureConfig(bins=8, norm="center")


def _data():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1, (12, 8)), rng.normal(1.5, 1, (12, 8))]
    return X, np.r_[np.zeros(12, int), np.ones(12, int)]


@pytest.fixture(scope="module")
def svm_file(tmp_path_factory):
    X, y = _data()
    path = tmp_path_factory.mktemp("model") / "m.skops"
    save_model(Detector("svm", CONFIG, seed=1, cv=3).fit(X, y), path)
    return path


@pytest.mark.parametrize("method", ["svm", "logreg", "kmeans"])
def test_round_trip(tmp_path, method):
    X, y = _data()
    model = Detector(method, CONFIG, seed=2, cv=3).fit(X, y)
    path = tmp_path / "model.skops"
    save_model(model, path)
    loaded = load_model(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.threshold_ == model.threshold_
    assert loaded.feature_config == CONFIG
    assert loaded.summary_ == json.loads(json.dumps(model.summary_))
    assert loaded.get_params()["seed"] == 2
    if method == "kmeans":
        assert loaded.fake_cluster_ == model.fake_cluster_


def test_pickle_payload_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.skops"
    path.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ModelError, match="pickle"):
        load_model(path)
    assert not marker.exists()


def _rewrite_schema(source, target, edit):
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename == "schema.json":
                data = edit(data.decode()).encode()
            zout.writestr(item, data)


def test_untrusted_type_injected_into_the_file_is_refused(svm_file, tmp_path):
    evil = tmp_path / "evil.skops"
    # Point the scaler at os.system: a loader that trusted the file would import it.
    _rewrite_schema(
        svm_file,
        evil,
        lambda text: text.replace('"sklearn.preprocessing._data"', '"os"').replace(
            '"StandardScaler"', '"system"'
        ),
    )
    with pytest.raises(ModelError, match="untrusted types os.system"):
        load_model(evil)


def test_truncated_tampered_foreign_and_missing_files(svm_file, tmp_path):
    data = svm_file.read_bytes()
    truncated = tmp_path / "truncated.skops"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="corrupt"):
        load_model(truncated)

    flipped = bytearray(data)
    middle = len(flipped) // 2
    flipped[middle : middle + 16] = bytes(16)
    tampered = tmp_path / "tampered.skops"
    tampered.write_bytes(bytes(flipped))
    with pytest.raises(ModelError):
        load_model(tampered)

    foreign = tmp_path / "foreign.skops"
    from sklearn.linear_model import LogisticRegression

    skops.io.dump(LogisticRegression().fit(*_data()), foreign)
    with pytest.raises(ModelError, match="not a specdetect model"):
        load_model(foreign)

    text = tmp_path / "text.skops"
    text.write_text("hello")
    with pytest.raises(ModelError, match="not a zip"):
        load_model(text)
    with pytest.raises(ModelError, match="no such model file"):
        load_model(tmp_path / "missing.skops")


def _payload(path):
    return skops.io.load(path, trusted=TRUSTED_TYPES)


def test_wrong_format_version_and_inconsistent_parts(svm_file, tmp_path):
    payload = _payload(svm_file)
    assert payload["format"] == FORMAT
    future = tmp_path / "future.skops"
    skops.io.dump({**payload, "format_version": 99}, future)
    with pytest.raises(ModelError, match="format version 99"):
        load_model(future)

    mixed = tmp_path / "mixed.skops"
    skops.io.dump({**payload, "n_features": 64}, mixed)
    with pytest.raises(ModelError, match="inconsistent"):
        load_model(mixed)

    bad_config = tmp_path / "config.skops"
    skops.io.dump({**payload, "feature_config": json.dumps({"bins": 8, "evil": 1})}, bad_config)
    with pytest.raises(ModelError, match="inconsistent"):
        load_model(bad_config)


def test_error_messages_are_one_line(tmp_path):
    path = tmp_path / "bad.skops"
    path.write_bytes(b"PK\x03\x04" + b"\n" * 50)
    with pytest.raises(ModelError) as info:
        load_model(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_shipped_model_loads_and_scores():
    model = load_model(default_model_path())
    assert model.method == "svm"
    assert model.feature_config.n_features == model.n_features_in_
    assert 0 < model.threshold_ < 1
    assert model.summary_["n_real"] > 100 and model.summary_["cv"]["accuracy"]["mean"] > 0.9
    buffer = io.BytesIO(default_model_path().read_bytes())
    assert zipfile.is_zipfile(buffer)


def test_shipped_model_flags_held_apart_gan_samples():
    """GAN samples from a latent seed never used in training (data/fake_gan/*/test_*.png)."""
    from fnmatch import fnmatch

    from specdetect.features import features_numpy
    from specdetect.media import read_luma

    model = load_model(default_model_path())
    eval_only = model.summary_.get("gan_eval_only", [])
    gan_dir = default_model_path().parents[1] / "data" / "fake_gan"
    trained = [
        folder
        for folder in sorted(p for p in gan_dir.iterdir() if p.is_dir())
        if not any(fnmatch(folder.name, pattern) for pattern in eval_only)
    ]
    assert len(trained) >= 3  # several architectures and up-sampling units
    for folder in trained:
        assert folder.name in model.summary_["training_data"]
        paths = sorted(folder.glob("test_*.png"))
        assert len(paths) >= 10
        X = features_numpy(np.stack([read_luma(p) for p in paths]), model.feature_config)
        flagged = model.predict(X).mean()
        assert flagged >= 0.85, f"{folder.name}: only {flagged:.0%} of held-apart samples flagged"
