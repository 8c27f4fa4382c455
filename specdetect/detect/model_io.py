"""Model files that are safe to load.

A model is one ``.skops`` file (a zip archive of JSON and ``.npy`` arrays
written by :mod:`skops.io`) holding a plain dict:

``format`` / ``format_version``
    ``"specdetect-model"`` and :data:`FORMAT_VERSION`; anything else is refused.
``estimator``
    The fitted scikit-learn pipeline.
``params`` / ``feature_config`` / ``summary``
    JSON text: the detector's parameters, the feature settings, and the
    training summary (counts, cross-validated metrics, threshold, versions).
``threshold``, ``n_features``, ``fake_cluster``, ``reference``
    The fitted state of :class:`~specdetect.detect.Detector`.
``scorer``
    The arrays of the fitted pipeline that scoring uses
    (:class:`~specdetect.detect.scorer.Scorer`), as plain ``.npy`` members:
    :func:`load_scorer` reads them without importing scikit-learn or skops,
    which is what ``specdetect scan`` does. Files written before this key
    existed have none and load through :func:`load_model`.

Loading never executes code from the file: skops rebuilds only the types in
:data:`TRUSTED_TYPES`, a fixed list written here (never taken from the file),
and no pickle is ever involved. Everything that is not exactly such a file —
a pickle, a truncated or edited archive, another program's model, another
format version — raises :class:`ModelError` with a one-line message.

Before anything is decompressed, one audit (:func:`audit_archive`, the same
for :func:`load_model`, :func:`load_scorer` and :func:`read_feature_config`)
checks the archive itself: it starts with a zip local header (nothing
prepended, such as a pickle), its members are plain names laid out one after
another as the central directory says, stored or deflated, and their declared
sizes fit the budget :data:`DEFAULT_MAX_MODEL_BYTES`; members are then read
through a stream capped at their declared size.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from pathlib import Path

import numpy as np

__all__ = [
    "DEFAULT_MAX_MODEL_BYTES",
    "FORMAT",
    "FORMAT_VERSION",
    "TRUSTED_TYPES",
    "ModelError",
    "audit_archive",
    "default_model_path",
    "load_model",
    "load_scorer",
    "read_feature_config",
    "save_model",
]

FORMAT = "specdetect-model"
FORMAT_VERSION = 1

#: The only non-builtin types a model file may contain (skops trusts
#: builtins and numpy arrays on its own). Written by hand, never read from
#: a file: feeding a file's own list back would trust whatever it contains.
TRUSTED_TYPES: list[str] = [
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.svm._classes.SVC",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.model_selection._split.StratifiedKFold",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.cluster._kmeans.KMeans",
    "numpy.dtype",
    "numpy.float64",
    "numpy.int64",
    "numpy.int32",
]

_PARAMS = ("method", "seed", "cv", "C", "gamma")

#: Most bytes a model file may hold, and may inflate to (all members together),
#: before anything is decompressed: SPECDETECT_MAX_MODEL_BYTES overrides it.
#: The shipped model is 0.4 MB and inflates to 0.5 MB.
DEFAULT_MAX_MODEL_BYTES = 256 * 2**20
#: Most members an archive may have (the shipped model has 29).
MAX_MODEL_MEMBERS = 10_000


class ModelError(Exception):
    """A model file cannot be used. ``str(err)`` is one line naming the file."""


def default_model_path() -> Path:
    """The shipped model, an absolute path with symbolic links resolved.

    It is package data, ``specdetect/models/default.skops``, so an installed
    package finds it wherever it runs from; in a checkout that file is a link
    to ``models/default.skops``, which this returns.
    """
    return (Path(__file__).resolve().parents[1] / "models" / "default.skops").resolve()


def _skops_io():
    """Import ``skops.io`` without its default trusted-type list.

    On import, skops builds a *default* list of trusted types from
    ``sklearn.utils.all_estimators()``, which imports every scikit-learn module
    and, through them, torch and dask: most of the time it takes to load a
    model. :func:`load_model` always passes its own :data:`TRUSTED_TYPES`, so
    that default could only widen what a file may contain; importing skops with
    it empty makes loading stricter and several times faster. Does nothing
    special when ``skops.io`` is already imported.
    """
    import sys

    if "skops.io" not in sys.modules:
        import sklearn.utils

        all_estimators = sklearn.utils.all_estimators
        sklearn.utils.all_estimators = lambda *args, **kwargs: []
        try:
            import skops.io  # noqa: F401 - imported here, with the empty default
        finally:
            sklearn.utils.all_estimators = all_estimators
    import skops.io

    return skops.io


def save_model(detector, path: str | os.PathLike) -> None:
    """Write a fitted :class:`~specdetect.detect.Detector` to one file, atomically."""
    from specdetect.atomic import atomic_write
    from specdetect.detect.scorer import Scorer

    skops_io = _skops_io()

    for name in ("estimator_", "threshold_", "summary_"):
        if not hasattr(detector, name):
            raise ValueError("only a fitted Detector can be saved")
    reference = getattr(detector, "reference_", None)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "params": json.dumps({name: getattr(detector, name) for name in _PARAMS}),
        "feature_config": json.dumps(detector.feature_config.to_dict()),
        "summary": json.dumps(detector.summary_),
        "threshold": float(detector.threshold_),
        "n_features": int(detector.n_features_in_),
        "fake_cluster": int(detector.fake_cluster_) if hasattr(detector, "fake_cluster_") else -1,
        "reference": None if reference is None else np.asarray(reference, dtype=np.float64),
        "estimator": detector.estimator_,
        "scorer": dict(Scorer.from_detector(detector).arrays),
    }
    data = skops_io.dumps(payload, compression=zipfile.ZIP_DEFLATED)
    with atomic_write(path, "wb") as handle:
        handle.write(data)


def load_model(path: str | os.PathLike):
    """Read a model written by :func:`save_model`.

    Raises
    ------
    ModelError
        Missing, unreadable, not a specdetect model, wrong format version,
        carrying types outside :data:`TRUSTED_TYPES`, or inconsistent.
    """
    path = Path(path)
    # Before importing scikit-learn and skops: a refused file is refused at once.
    data = audit_archive(path)
    from specdetect.detect.detector import METHODS, Detector
    from specdetect.features import FeatureConfig

    skops_io = _skops_io()
    try:
        untrusted = skops_io.get_untrusted_types(data=data)
    except Exception as exc:  # noqa: BLE001 - any parse failure means a bad file
        raise ModelError(f"{path}: corrupt or truncated model file ({_short(exc)})") from None
    refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if refused:
        raise ModelError(
            f"{path}: model file contains untrusted types "
            f"{', '.join(refused[:5])}; refusing to load it"
        )
    try:
        payload = skops_io.loads(data, trusted=TRUSTED_TYPES)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"{path}: corrupt or tampered model file ({_short(exc)})") from None

    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelError(f"{path}: not a specdetect model file")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise ModelError(
            f"{path}: model format version {version!r} is not supported "
            f"(this specdetect reads version {FORMAT_VERSION}); retrain or upgrade"
        )
    try:
        params = json.loads(payload["params"])
        config = FeatureConfig.from_dict(json.loads(payload["feature_config"]))
        summary = json.loads(payload["summary"])
        if set(params) != set(_PARAMS) or params["method"] not in METHODS:
            raise ValueError("bad detector parameters")
        detector = Detector(feature_config=config, **params)
        detector.estimator_ = payload["estimator"]
        detector.threshold_ = float(payload["threshold"])
        detector.n_features_in_ = int(payload["n_features"])
        detector.summary_ = summary
        detector.classes_ = np.array([0, 1])
        if detector.method == "kmeans":
            detector.fake_cluster_ = int(payload["fake_cluster"])
            detector.reference_ = np.asarray(payload["reference"], dtype=np.float64)
            radius = payload.get("scorer", {}).get("radius")
            if radius is not None:  # the k-means decision radius (older files: none)
                detector.radius_ = float(np.asarray(radius).ravel()[0])
            if detector.fake_cluster_ not in (0, 1):
                raise ValueError("bad k-means cluster name")
        _check_consistent(detector)
        if "scorer" in payload:
            _check_scorer(detector, payload["scorer"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelError(f"{path}: inconsistent model file ({_short(exc)})") from None
    return detector


def load_scorer(path: str | os.PathLike):
    """The model's :class:`~specdetect.detect.scorer.Scorer`, read with NumPy alone.

    Reads the archive's JSON schema and the scorer's ``.npy`` members
    (``numpy.load(allow_pickle=False)``); imports neither scikit-learn nor
    skops and builds no estimator, so it takes milliseconds instead of the
    second :func:`load_model` needs. The schema is audited first: every node
    must be a builtin, a NumPy array or scalar, or one of
    :data:`TRUSTED_TYPES`, the same rule :func:`load_model` applies.

    Returns None whenever the file is anything but a well-formed model with a
    scorer (older files, untrusted types, corrupt, tampered, foreign): the
    caller then uses :func:`load_model`, which loads it or raises the
    :class:`ModelError` that says what is wrong.
    """
    from specdetect.detect.scorer import Scorer, scorer_arrays_ok

    try:
        data = audit_archive(path)  # the same audit as load_model's
    except ModelError:
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(_read_member(archive, "schema.json"))
            if not _schema_trusted(schema):
                return None
            content = schema["content"]
            if (
                _json_value(content["format"]) != FORMAT
                or _json_value(content["format_version"]) != FORMAT_VERSION
                or "scorer" not in content
            ):
                return None
            method = json.loads(_json_value(content["params"]))["method"]
            config = _stored_feature_config(content)
            threshold = float(_json_value(content["threshold"]))
            if int(_json_value(content["n_features"])) != config.n_features:
                return None
            nodes = content["scorer"]["content"]
            if not scorer_arrays_ok(method, nodes):
                return None
            arrays = {name: _read_array(archive, node) for name, node in nodes.items()}
        scorer = Scorer(method, config, threshold, arrays)
        probe = scorer.predict_proba(np.zeros((1, config.n_features)))
        return scorer if np.all(np.isfinite(probe)) else None
    except (OSError, KeyError, TypeError, ValueError, AttributeError, zipfile.BadZipFile):
        return None


def _stored_feature_config(content: dict):
    """The :class:`~specdetect.features.FeatureConfig` of a skops schema's top-level content."""
    from specdetect.features import FeatureConfig

    return FeatureConfig.from_dict(json.loads(_json_value(content["feature_config"])))


def _json_value(node: dict):
    if node.get("__loader__") != "JsonNode" or not node.get("is_json"):
        raise ValueError("not a JSON node")
    return json.loads(node["content"])


def _read_array(archive: zipfile.ZipFile, node: dict) -> np.ndarray:
    if node.get("__loader__") != "NdArrayNode" or node.get("type") != "numpy":
        raise ValueError("not a NumPy array node")
    return np.load(io.BytesIO(_read_member(archive, node["file"])), allow_pickle=False)


def _read_member(archive: zipfile.ZipFile, name: str) -> bytes:
    """A member's bytes, read through a stream capped at its audited declared size."""
    info = archive.getinfo(name)
    with archive.open(info) as handle:
        data = handle.read(info.file_size + 1)
    if len(data) != info.file_size:
        raise zipfile.BadZipFile(f"member {name!r} does not have its declared size")
    return data


_BUILTIN_NODES = {"dict", "list", "tuple", "str", "int", "float", "bool", "NoneType"}
_NUMPY_NODES = {"ndarray", "dtype", "float64", "int64", "int32"}


def _schema_trusted(node) -> bool:
    """Whether every typed node of a skops schema is a builtin, NumPy or trusted type."""
    if isinstance(node, list):
        return all(_schema_trusted(item) for item in node)
    if not isinstance(node, dict):
        return True
    if "__class__" in node:
        module, name = node.get("__module__"), node["__class__"]
        trusted = (
            (module == "builtins" and name in _BUILTIN_NODES)
            or (module == "numpy" and name in _NUMPY_NODES)
            or f"{module}.{name}" in TRUSTED_TYPES
        )
        if not trusted:
            return False
    return all(_schema_trusted(value) for value in node.values())


def read_feature_config(path: str | os.PathLike):
    """The feature settings stored in a model file, read without loading the model.

    Reads only the JSON schema inside the ``.skops`` archive (no estimator is
    built, nothing is imported). Returns None when the file is not laid out as
    expected; the caller then loads the model first, which reports the problem.
    """
    try:
        data = audit_archive(path)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(_read_member(archive, "schema.json"))
        return _stored_feature_config(schema["content"])
    except (ModelError, KeyError, TypeError, ValueError, AttributeError, zipfile.BadZipFile):
        return None


def max_model_bytes() -> int:
    """The model budget in force: SPECDETECT_MAX_MODEL_BYTES if set, else the default."""
    value = os.environ.get("SPECDETECT_MAX_MODEL_BYTES")
    if not value:
        return DEFAULT_MAX_MODEL_BYTES
    try:
        return int(value)
    except ValueError:  # a usage error (exit 2), not a crash that reads as "flagged"
        raise ModelError(
            f"SPECDETECT_MAX_MODEL_BYTES must be a whole number of bytes, got {value!r}"
        ) from None


def audit_archive(path: str | os.PathLike) -> bytes:
    """Read a model file and check it as an archive, before anything is decompressed.

    The one audit that every reader of model files applies. Refused: a file
    over the budget (:func:`max_model_bytes`); anything but a zip archive that
    starts with a local header at byte 0 (a pickle, or a pickle with a model
    appended); members whose names are not plain file names (``/``, ``\\``,
    ``..``, absolute or drive paths, control characters), duplicated,
    encrypted, compressed other than stored or deflated, or not laid out one
    after another as the central directory says (overlapping members, a
    central directory that points into prepended data); and declared
    uncompressed sizes that together exceed the budget. Readers then read
    each member through a stream capped at its declared size, so a header that
    lies about a size fails its check instead of inflating further.

    Returns
    -------
    bytes
        The file's contents, audited (read once: what was checked is what is
        loaded).

    Raises
    ------
    ModelError
        One line naming the file and what is wrong.
    """
    budget = max_model_bytes()
    try:
        with open(path, "rb") as handle:
            data = handle.read(budget + 1)
    except FileNotFoundError:
        raise ModelError(f"{path}: no such model file") from None
    except OSError as exc:
        raise ModelError(f"{path}: cannot read model file ({exc.strerror or exc})") from None

    def refuse(reason: str) -> ModelError:
        return ModelError(f"{path}: {reason}; refusing to load it")

    if len(data) > budget:
        raise refuse(
            f"model file is larger than the budget of {budget} bytes "
            "(SPECDETECT_MAX_MODEL_BYTES raises it)"
        )
    if not data.startswith(b"PK\x03\x04"):
        kind = "a pickle file" if data[:1] == b"\x80" else "not a zip archive"
        raise refuse(f"not a specdetect model file ({kind})")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            start_dir = archive.start_dir
    except Exception as exc:  # noqa: BLE001 - any parse failure means a bad file
        raise refuse(f"corrupt or truncated model file ({_short(exc)})") from None
    if not infos or len(infos) > MAX_MODEL_MEMBERS:
        raise refuse(f"model archive has {len(infos)} members")
    names: set[str] = set()
    for info in infos:
        name = info.orig_filename
        if not _plain_name(name) or name != info.filename:
            raise refuse(f"model archive member {name!r} is not a plain file name")
        if name in names:
            raise refuse(f"model archive member {name!r} appears twice")
        names.add(name)
        if info.flag_bits & 0x1:
            raise refuse(f"model archive member {name!r} is encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise refuse(f"model archive member {name!r} uses compression {info.compress_type}")
    total = sum(info.file_size for info in infos)
    if total > budget:
        largest = max(infos, key=lambda info: info.file_size)
        raise refuse(
            f"model archive inflates to {total} bytes ({largest.filename!r}: "
            f"{largest.file_size}), over the budget of {budget} bytes "
            "(SPECDETECT_MAX_MODEL_BYTES raises it)"
        )
    problem = _layout_problem(data, infos, start_dir)
    if problem:
        raise refuse(f"corrupt or edited model archive ({problem})")
    return data


def _plain_name(name: str) -> bool:
    """Whether an archive member name is one plain file name (no folder, no traversal)."""
    return (
        bool(name)
        and name not in (".", "..")
        and not any(char in name for char in "/\\:")
        and all(char.isprintable() for char in name)
    )


_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # signature ... name length, extra length


def _layout_problem(data: bytes, infos: list[zipfile.ZipInfo], start_dir: int) -> str | None:
    """What is wrong with where the members lie in ``data``, or None.

    The first local header must be at byte 0 (``zipfile`` shifts every offset
    by the bytes found before the archive, so a pickle prepended to a model
    moves it); each member's local header must be where the central directory
    says, carry the same name, and its data must end before the next member
    (no overlapping members, the zip-bomb trick of one deflate stream shared
    by many names) and before the central directory.
    """
    ordered = sorted(infos, key=lambda info: info.header_offset)
    if ordered[0].header_offset != 0:
        return f"{ordered[0].header_offset} bytes before the first member"
    for info, after in zip(ordered, [*ordered[1:], None], strict=True):
        start = info.header_offset
        header = data[start : start + _LOCAL_HEADER.size]
        if len(header) < _LOCAL_HEADER.size:
            return f"member {info.filename!r} lies past the end of the file"
        fields = _LOCAL_HEADER.unpack(header)
        name_length, extra_length = fields[-2], fields[-1]
        name_start = start + _LOCAL_HEADER.size
        encoding = "utf-8" if info.flag_bits & 0x800 else "cp437"  # as zipfile decoded it
        stored_name = data[name_start : name_start + name_length]
        if fields[0] != b"PK\x03\x04" or stored_name != info.orig_filename.encode(encoding):
            return f"member {info.filename!r} has no matching local header"
        end = name_start + name_length + extra_length + info.compress_size
        limit = start_dir if after is None else after.header_offset
        if end > limit:
            return f"member {info.filename!r} overlaps what follows it"
    return None


def _check_consistent(detector) -> None:
    """Refuse a file whose parts do not fit together (edited by hand, mixed up)."""
    from sklearn.base import is_classifier

    expected = {"svm": "CalibratedClassifierCV", "logreg": "Pipeline", "kmeans": "Pipeline"}
    if type(detector.estimator_).__name__ != expected[detector.method]:
        raise ValueError(f"estimator does not match method {detector.method!r}")
    if detector.method != "kmeans" and not is_classifier(detector.estimator_):
        raise ValueError("estimator is not a classifier")
    if detector.n_features_in_ != detector.feature_config.n_features:
        raise ValueError("feature count does not match the feature settings")
    if getattr(detector.estimator_, "n_features_in_", detector.n_features_in_) != (
        detector.n_features_in_
    ):
        raise ValueError("estimator feature count does not match")
    if not 0.0 <= detector.threshold_ <= 1.0:
        raise ValueError("threshold outside [0, 1]")
    # A dry run: a tampered estimator that cannot predict is caught here,
    # not in the middle of a scan.
    probe = np.zeros((1, detector.n_features_in_))
    proba = detector.predict_proba(probe)
    if proba.shape != (1, 2) or not np.all(np.isfinite(proba)):
        raise ValueError("estimator gives no valid probabilities")


def _check_scorer(detector, arrays: dict) -> None:
    """Refuse scorer arrays that do not score like the estimator beside them."""
    from specdetect.detect.scorer import Scorer

    scorer = Scorer(detector.method, detector.feature_config, detector.threshold_, dict(arrays))
    rng = np.random.default_rng(0)
    mean, scale = scorer.arrays["mean"], scorer.arrays["scale"]
    probe = mean + scale * rng.normal(size=(16, len(mean)))
    if not np.allclose(scorer.predict_proba(probe), detector.predict_proba(probe), atol=1e-9):
        raise ValueError("scorer arrays do not match the estimator")


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
