"""A fitted detector's scoring function as plain arrays, computed with NumPy alone.

Scanning needs only ``P(fake)`` of each feature row. Rebuilding the
scikit-learn pipeline for that means importing scikit-learn and skops, about
1.5 CPU-seconds: as long as featurizing several thousand small images, and on a
2-core machine it competes with the decoders. A :class:`Scorer` holds the few
arrays the fitted pipeline actually uses (the scaler's mean and scale, then
the support vectors, dual coefficients and Platt sigmoid of the SVM, the
logistic regression's weights, or the k-means centres and radius) and evaluates the same
formulas with NumPy. :func:`specdetect.detect.model_io.save_model` stores
these arrays in the model file beside the estimator, and
:func:`specdetect.detect.model_io.load_scorer` reads them back without
importing scikit-learn.

Scores agree with :meth:`specdetect.detect.Detector.predict_proba` to about
1e-15 (the same formulas in another summation order), which
``tests/test_scorer.py`` checks for every method.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from specdetect.features import FeatureConfig

__all__ = ["OPTIONAL_ARRAYS", "SCORER_ARRAYS", "Scorer", "ThresholdMixin", "scorer_arrays_ok"]

#: The arrays each method's scorer needs, and their shapes (``F`` features,
#: ``S`` support vectors, ``()`` a scalar stored as a 1-element array).
SCORER_ARRAYS: dict[str, dict[str, tuple[str, ...]]] = {
    "svm": {
        "mean": ("F",),
        "scale": ("F",),
        "support_vectors": ("S", "F"),
        "dual_coef": ("S",),
        "intercept": (),
        "gamma": (),
        "sigmoid_a": (),
        "sigmoid_b": (),
    },
    "logreg": {"mean": ("F",), "scale": ("F",), "coef": ("F",), "intercept": ()},
    "kmeans": {"mean": ("F",), "scale": ("F",), "centers": ("2", "F"), "fake_cluster": ()},
}

#: Arrays a method's scorer may hold besides :data:`SCORER_ARRAYS` (model
#: files written before they existed have none): ``radius``, the k-means
#: decision radius around the real-like centre (``Detector.radius_``).
OPTIONAL_ARRAYS: dict[str, dict[str, tuple[str, ...]]] = {"kmeans": {"radius": ()}}


def scorer_arrays_ok(method: str, names) -> bool:
    """Whether ``names`` are exactly the required arrays of ``method``, plus optional ones."""
    required = set(SCORER_ARRAYS.get(method, ()))
    optional = set(OPTIONAL_ARRAYS.get(method, ()))
    names = set(names)
    return bool(required) and required <= names <= required | optional


class ThresholdMixin:
    """``score_samples`` and ``predict`` from ``predict_proba`` and ``threshold_``."""

    threshold_: float

    def score_samples(self, X: np.ndarray) -> np.ndarray:
        """P(fake) of each row (the scan score)."""
        return self.predict_proba(X)[:, 1]

    def predict(self, X: np.ndarray) -> np.ndarray:
        """1 (fake) where P(fake) >= ``threshold_``, else 0 (real)."""
        return (self.score_samples(X) >= self.threshold_).astype(int)


@dataclass(frozen=True, eq=False)
class Scorer(ThresholdMixin):
    """``P(fake)`` of feature rows from a fitted detector's arrays (NumPy only).

    Anything :func:`specdetect.scan.scan_records` accepts as a detector:
    it has ``feature_config``, ``threshold_`` and ``predict_proba``.

    Parameters
    ----------
    method : {"svm", "logreg", "kmeans"}
    feature_config : FeatureConfig
        How the rows were computed.
    threshold_ : float
        Decision threshold on ``P(fake)``.
    arrays : dict of str to ndarray
        Exactly the arrays of :data:`SCORER_ARRAYS` for ``method``, plus any
        of its :data:`OPTIONAL_ARRAYS`.

    Raises
    ------
    ValueError
        Unknown method, missing or extra arrays, shapes that do not fit
        together or the feature settings, non-finite values, a threshold
        outside [0, 1].
    """

    method: str
    feature_config: FeatureConfig
    threshold_: float
    arrays: dict[str, np.ndarray] = field(repr=False)

    def __post_init__(self) -> None:
        if self.method not in SCORER_ARRAYS:
            raise ValueError(f"unknown scorer method {self.method!r}")
        if not scorer_arrays_ok(self.method, self.arrays):
            allowed = sorted(SCORER_ARRAYS[self.method])
            optional = sorted(OPTIONAL_ARRAYS.get(self.method, ()))
            raise ValueError(
                f"scorer arrays must be {allowed} (optional: {optional}), got {sorted(self.arrays)}"
            )
        spec = {
            name: dims
            for name, dims in {
                **SCORER_ARRAYS[self.method],
                **OPTIONAL_ARRAYS.get(self.method, {}),
            }.items()
            if name in self.arrays
        }
        n_features = self.feature_config.n_features
        sizes: dict[str, int] = {"F": n_features, "2": 2}
        checked = {}
        for name, dims in spec.items():
            array = np.asarray(self.arrays[name], dtype=np.float64)
            shape = (1,) if not dims else array.shape
            if array.shape != shape or array.ndim != max(len(dims), 1):
                raise ValueError(f"scorer array {name!r} has shape {array.shape}")
            for dim, size in zip(dims, array.shape if dims else (), strict=True):
                if sizes.setdefault(dim, size) != size:
                    raise ValueError(f"scorer array {name!r} has shape {array.shape}")
            if not np.all(np.isfinite(array)):
                raise ValueError(f"scorer array {name!r} is not finite")
            array.setflags(write=False)
            checked[name] = array
        object.__setattr__(self, "arrays", checked)  # a read-only copy, whatever was passed
        if np.any(self.arrays["scale"] <= 0):
            raise ValueError("scorer scale must be positive")
        if self.method == "kmeans" and float(self.arrays["fake_cluster"][0]) not in (0.0, 1.0):
            raise ValueError("k-means fake cluster must be 0 or 1")
        if "radius" in self.arrays and not self.arrays["radius"][0] > 0:
            raise ValueError("k-means radius must be positive")
        if not 0.0 <= float(self.threshold_) <= 1.0:
            raise ValueError("threshold outside [0, 1]")

    # ------------------------------------------------------------------
    @classmethod
    def from_detector(cls, detector: Any) -> Scorer:
        """The arrays of a fitted :class:`~specdetect.detect.Detector`.

        Reads the fitted scikit-learn objects' public attributes; works for
        the pipelines :class:`~specdetect.detect.Detector` builds.
        """
        method = detector.method
        if method == "svm":
            # CalibratedClassifierCV(ensemble=False): one pipeline, one sigmoid.
            (calibrated,) = detector.estimator_.calibrated_classifiers_
            (sigmoid,) = calibrated.calibrators
            scaler, svc = calibrated.estimator[0], calibrated.estimator[-1]
            arrays = {
                "support_vectors": svc.support_vectors_,
                "dual_coef": svc.dual_coef_.ravel(),
                "intercept": svc.intercept_,
                "gamma": [svc._gamma],  # "scale" resolved at fit (no public attribute)
                "sigmoid_a": [sigmoid.a_],
                "sigmoid_b": [sigmoid.b_],
            }
        elif method == "logreg":
            scaler, model = detector.estimator_[0], detector.estimator_[-1]
            arrays = {"coef": model.coef_.ravel(), "intercept": model.intercept_}
        elif method == "kmeans":
            scaler, model = detector.estimator_[0], detector.estimator_[-1]
            arrays = {"centers": model.cluster_centers_, "fake_cluster": [detector.fake_cluster_]}
            if getattr(detector, "radius_", None) is not None:
                arrays["radius"] = [detector.radius_]
        else:
            raise ValueError(f"unknown method {method!r}")
        arrays["mean"], arrays["scale"] = scaler.mean_, scaler.scale_
        return cls(
            method=method,
            feature_config=detector.feature_config,
            threshold_=float(detector.threshold_),
            arrays={k: np.array(v, dtype=np.float64, ndmin=1) for k, v in arrays.items()},
        )

    # ------------------------------------------------------------------
    @property
    def n_features_in_(self) -> int:
        return self.feature_config.n_features

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Columns ``[P(real), P(fake)]`` for each row, as the detector computes them."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"model expects {self.n_features_in_} features per row, got shape {X.shape}"
            )
        a = self.arrays
        standard = (X - a["mean"]) / a["scale"]
        if self.method == "svm":
            # RBF kernel exp(-gamma |x - v|^2) against every support vector,
            # in place: one rows x support vectors array instead of four (fresh
            # pages of that size cost more than the arithmetic on them).
            kernel = _squared_distances(standard, a["support_vectors"])
            kernel *= -a["gamma"][0]
            np.exp(kernel, out=kernel)
            decision = kernel @ a["dual_coef"] + a["intercept"][0]
            p_fake = _expit(-(a["sigmoid_a"][0] * decision + a["sigmoid_b"][0]))
        elif self.method == "logreg":
            p_fake = _expit(standard @ a["coef"] + a["intercept"][0])
        else:
            fake = int(a["fake_cluster"][0])
            distances = np.sqrt(_squared_distances(standard, a["centers"]))
            d_real = distances[:, 1 - fake]
            # with a radius: the distance to the real-like centre against it
            d_fake = a["radius"][0] if "radius" in a else distances[:, fake]
            total = d_fake + d_real
            p_fake = np.divide(d_real, total, out=np.full(len(X), 0.5), where=total > 0)
        p_fake = np.clip(p_fake, 0.0, 1.0)
        return np.column_stack([1.0 - p_fake, p_fake])


def _squared_distances(rows: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``|r - p|^2`` for every row and point, as ``|r|^2 + |p|^2 - 2 r.p`` (BLAS; libsvm too)."""
    squared = np.einsum("ij,ij->i", rows, rows)[:, None] + np.einsum("ij,ij->i", points, points)
    squared -= 2.0 * rows @ points.T  # in place, the same sums
    return np.maximum(squared, 0.0, out=squared)  # rounding can make a tiny distance negative


def _expit(values: np.ndarray) -> np.ndarray:
    """The logistic function ``1 / (1 + exp(-x))`` without overflow warnings."""
    out = np.empty_like(values)
    positive = values >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-values[positive]))
    exp = np.exp(values[~positive])
    out[~positive] = exp / (1.0 + exp)
    return out
