"""The detector: a feature configuration plus a scikit-learn pipeline.

Methods
-------
``svm``
    Standardized features, RBF-kernel SVC, probabilities from a sigmoid
    (Platt) calibration fitted on cross-validated decision values
    (:class:`~sklearn.calibration.CalibratedClassifierCV`; ``SVC(probability=True)``
    is deprecated).
``logreg``
    Standardized features, L2 logistic regression.
``kmeans``
    Standardized features, k-means with two clusters (unsupervised). The
    probability of fake is ``d_real / (d_real + radius_)``, with ``d_real``
    the distance to the real-like centre and ``radius_`` a quantile of the
    real-like cluster's own distances (see "The k-means score and threshold"
    below); with ``kmeans_quantile=None`` it is ``d_real / (d_real + d_fake)``,
    so that 0.5 is the k-means boundary.

Naming the k-means clusters
---------------------------
k-means numbers its clusters arbitrarily (the label-swap problem), so the
fake cluster is named explicitly at training:

* with labels, the cluster holding the larger fraction of fake rows is fake
  (majority vote);
* without labels, the cluster whose centre lies **farther from a reference
  real-image spectrum** is fake; "farther" is one minus the correlation of
  the two spectra without their first bin, which ignores offset and scale
  (so the image-size-dependent DC normalization does not matter). The
  reference is the ``reference`` parameter when given, else the spectrum of
  natural-image-like noise (power falling as ``1 / f**2``, the statistics of
  camera photographs) computed with the model's own feature configuration.
  Up-sampled images deviate from that law at high frequencies, real
  photographs much less. The reference used is
  stored in the model (``reference_``).

The k-means score and threshold
-------------------------------
The k-means boundary (``d_real = d_fake``) sits halfway between the two
centres, but real photographs spread much more than the fakes of one
generator, and a generator not seen in training lies anywhere off the real
cluster, not necessarily towards the fake centre. In the
leave-one-generator-family-out protocol (``make repro-generalize``) that
boundary flagged 10-15% of held-apart real crops with specdetect's features
(and about half with the paper's). So by default (``kmeans_quantile``) the
fake centre only names the clusters, and the score is the distance to the
**real-like centre**, relative to that cluster's own spread:
``P(fake) = d_real / (d_real + radius_)``, where ``radius_`` is the
``kmeans_quantile`` quantile of ``d_real`` over the training rows of the
real-like cluster (by label, when labels are given: the real rows). The
threshold is 0.5, i.e. ``d_real = radius_``: an image is flagged when it lies
farther from the real centre than that share of the real-like cluster.
``kmeans_quantile=None`` keeps the old two-centre score
``d_real / (d_real + d_fake)``.
"""

from __future__ import annotations

import platform

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from specdetect.detect.evaluate import (
    binary_metrics,
    choose_threshold,
    cross_validate,
    summarize_folds,
)
from specdetect.detect.scorer import ThresholdMixin
from specdetect.features import MODEL_DEFAULT, FeatureConfig, features_numpy

__all__ = ["METHODS", "Detector", "natural_reference"]

METHODS = ("svm", "logreg", "kmeans")


class Detector(ThresholdMixin, ClassifierMixin, BaseEstimator):
    """Real-vs-fake classifier on spectral feature vectors.

    Parameters
    ----------
    method : {"svm", "logreg", "kmeans"}
    feature_config : FeatureConfig, optional
        How the feature rows were computed; ``None`` means
        :data:`specdetect.features.MODEL_DEFAULT` and is replaced by it at
        :meth:`fit`. Stored with the model, so that
        new images get the same features.
    seed : int
        Seeds every random step (folds, calibration splits, k-means).
    cv : int
        Folds of the stratified cross-validation run by :meth:`fit` to
        estimate metrics and pick the threshold; ``0`` skips it (threshold
        0.5). Needs labels of both classes.
    C : float
        Regularization of ``svm`` and ``logreg``.
    gamma : "scale" or float
        RBF width of ``svm``.
    reference : array-like of shape (n_features,), optional
        Real-image reference spectrum for naming unlabelled k-means clusters.
    kmeans_quantile : float or None
        ``kmeans`` only: the quantile of the real-like cluster's distances to
        its centre that becomes the decision radius (see "The k-means score
        and threshold" above); ``None`` scores by the two-centre boundary.

    Attributes
    ----------
    estimator_ : scikit-learn estimator
        The fitted pipeline.
    threshold_ : float
        Decision threshold on P(fake): chosen on out-of-fold probabilities
        (best balanced accuracy) for supervised methods, 0.5 for k-means.
    fake_cluster_ : int
        ``kmeans`` only: index of the cluster named fake.
    reference_ : ndarray
        ``kmeans`` only: mean real spectrum (labelled) or the reference used.
    radius_ : float
        ``kmeans`` with ``kmeans_quantile`` only: the decision radius around
        the real-like centre, in standardized feature units.
    summary_ : dict
        Counts per class, cross-validated metrics, threshold, versions.
    classes_ : ndarray ``[0, 1]`` (0 = real, 1 = fake)
    """

    def __init__(
        self,
        method: str = "svm",
        feature_config: FeatureConfig | None = None,
        seed: int = 0,
        cv: int = 5,
        C: float = 1.0,
        gamma: str | float = "scale",
        reference: np.ndarray | None = None,
        kmeans_quantile: float | None = 0.97,
    ):
        self.method = method
        self.feature_config = feature_config
        self.seed = seed
        self.cv = cv
        self.C = C
        self.gamma = gamma
        self.reference = reference
        self.kmeans_quantile = kmeans_quantile

    # ------------------------------------------------------------------
    def _make_estimator(self, n_minority: int):
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        if self.method == "svm":
            from sklearn.calibration import CalibratedClassifierCV
            from sklearn.model_selection import StratifiedKFold
            from sklearn.svm import SVC

            svm = make_pipeline(StandardScaler(), SVC(C=self.C, gamma=self.gamma, kernel="rbf"))
            folds = StratifiedKFold(
                n_splits=max(2, min(3, n_minority)), shuffle=True, random_state=self.seed
            )
            # One SVC on all rows; the sigmoid is fitted on cross-validated
            # decision values (ensemble=False keeps the model small).
            return CalibratedClassifierCV(svm, method="sigmoid", cv=folds, ensemble=False)
        if self.method == "logreg":
            from sklearn.linear_model import LogisticRegression

            return make_pipeline(
                StandardScaler(),
                LogisticRegression(C=self.C, max_iter=2000, random_state=self.seed),
            )
        from sklearn.cluster import KMeans

        return make_pipeline(StandardScaler(), KMeans(2, n_init=10, random_state=self.seed))

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> Detector:
        """Fit on feature rows ``X``; ``y``: 1 = fake, 0 = real (optional for k-means)."""
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.feature_config is None:
            self.feature_config = MODEL_DEFAULT
        X = _check_rows(X)
        self.n_features_in_ = X.shape[1]
        self.classes_ = np.array([0, 1])
        if y is None:
            if self.method != "kmeans":
                raise ValueError(f"method {self.method!r} needs labels y")
            counts = {"n_real": None, "n_fake": None, "n_unlabelled": len(X)}
        else:
            y = np.asarray(y).astype(int).ravel()
            if len(y) != len(X) or not set(np.unique(y)) <= {0, 1}:
                raise ValueError("y must hold one 0 (real) or 1 (fake) per row of X")
            counts = {"n_real": int(np.sum(y == 0)), "n_fake": int(np.sum(y == 1))}
            if self.method != "kmeans" and min(counts.values()) < 1:
                raise ValueError("supervised training needs images of both classes")
        if len(X) < 2:
            raise ValueError("training needs at least 2 rows")

        n_minority = min(counts["n_real"], counts["n_fake"]) if y is not None else 0
        self.estimator_ = self._make_estimator(n_minority)
        self.threshold_ = 0.5
        if self.method == "kmeans":
            self.estimator_.fit(X)
            self._name_clusters(X, y)
            self._set_radius(X, y)
        else:
            self.estimator_.fit(X, y)

        cv_summary, oof_metrics = None, None
        if y is not None and self.cv and self.cv >= 2 and n_minority >= 2:
            inner = clone(self).set_params(cv=0)
            oof, folds = cross_validate(inner, X, y, self.cv, self.seed)
            if self.method != "kmeans":
                self.threshold_ = choose_threshold(y, oof)
            cv_summary = summarize_folds(folds)
            oof_metrics = binary_metrics(y, oof, self.threshold_)
        self.summary_ = {
            "method": self.method,
            **counts,
            "n_features": int(self.n_features_in_),
            "feature_config": self.feature_config.to_dict(),
            "seed": int(self.seed),
            "cv": cv_summary,
            "cv_out_of_fold": oof_metrics,
            "threshold": float(self.threshold_),
            "versions": library_versions(),
        }
        return self

    def _name_clusters(self, X: np.ndarray, y: np.ndarray | None) -> None:
        clusters = self.estimator_.predict(X)
        if y is not None and len(np.unique(y)) == 2:
            fake_share = [np.mean(y[clusters == k]) if np.any(clusters == k) else 0 for k in (0, 1)]
            if fake_share[0] != fake_share[1]:
                self.fake_cluster_ = int(np.argmax(fake_share))
                self.reference_ = X[y == 0].mean(axis=0)
                return
        if self.reference is not None:
            reference = np.asarray(self.reference, dtype=float).ravel()
        else:
            reference = natural_reference(self.feature_config)
        if reference.shape != (X.shape[1],):
            raise ValueError(
                f"reference spectrum has {reference.size} values, features have {X.shape[1]}"
            )
        scaler, kmeans = self.estimator_[0], self.estimator_[-1]
        centres = scaler.inverse_transform(kmeans.cluster_centers_)
        distance = [_shape_distance(centre, reference) for centre in centres]
        self.fake_cluster_ = int(np.argmax(distance))
        self.reference_ = reference

    def _set_radius(self, X: np.ndarray, y: np.ndarray | None) -> None:
        """``radius_``: a quantile of the real-like rows' distances to their centre."""
        if hasattr(self, "radius_"):
            del self.radius_
        if self.kmeans_quantile is None:
            return
        if not 0.0 < self.kmeans_quantile < 1.0:
            raise ValueError(f"kmeans_quantile must be in (0, 1), got {self.kmeans_quantile}")
        distances = self.estimator_.transform(X)
        d_real = distances[:, 1 - self.fake_cluster_]
        if y is not None and len(np.unique(y)) == 2:
            members = y == 0
        else:
            members = d_real <= distances[:, self.fake_cluster_]
        if not members.any():  # pragma: no cover - k-means leaves no cluster empty
            members = np.ones(len(X), bool)
        self.radius_ = float(max(np.quantile(d_real[members], self.kmeans_quantile), 1e-12))

    # ------------------------------------------------------------------
    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Columns ``[P(real), P(fake)]`` for each row."""
        check_is_fitted(self, "estimator_")
        X = _check_rows(X, self.n_features_in_)
        if self.method == "kmeans":
            distances = self.estimator_.transform(X)  # scaler, then distances to centres
            d_real = distances[:, 1 - self.fake_cluster_]
            d_fake = getattr(self, "radius_", None)
            if d_fake is None:
                d_fake = distances[:, self.fake_cluster_]
            total = d_fake + d_real
            p_fake = np.divide(d_real, total, out=np.full(len(X), 0.5), where=total > 0)
        else:
            p_fake = self.estimator_.predict_proba(X)[:, 1]
        p_fake = np.clip(p_fake, 0.0, 1.0)
        return np.column_stack([1.0 - p_fake, p_fake])


def _shape_distance(spectrum: np.ndarray, reference: np.ndarray) -> float:
    """``1 - Pearson correlation`` of two spectra without their first bin.

    Blind to offset and scale, so the size-dependent DC normalization of the
    paper's recipe does not matter, only the shape of the spectrum does.
    """
    a, b = spectrum[1:] - spectrum[1:].mean(), reference[1:] - reference[1:].mean()
    denominator = np.linalg.norm(a) * np.linalg.norm(b)
    return float(1.0 - a @ b / denominator) if denominator > 0 else 0.0


def _check_rows(X: np.ndarray, n_features: int | None = None) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"expected feature rows (n, F), got shape {X.shape}")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"model expects {n_features} features per row, got {X.shape[1]}")
    if not np.all(np.isfinite(X)):
        raise ValueError("feature rows contain NaN or infinity")
    return X


def natural_reference(config: FeatureConfig, size: int = 256, n_images: int = 8) -> np.ndarray:
    """Mean feature vector of natural-image-like noise (power ~ 1 / f**2).

    Deterministic (fixed seed); used to name unlabelled k-means clusters.
    """
    from specdetect.synth import natural_noise

    rng = np.random.default_rng(20200301)
    images = [(natural_noise(rng, size) * 50.0 + 128.0).astype(np.float32) for _ in range(n_images)]
    return features_numpy(np.stack(images), config).astype(np.float64).mean(axis=0)


def library_versions() -> dict[str, str]:
    """Versions of the libraries a model was made with."""
    import scipy
    import sklearn

    from specdetect import __version__

    return {
        "specdetect": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit-learn": sklearn.__version__,
    }
