"""Detection metrics, decision thresholds and stratified cross-validation.

Labels are ``1`` for fake and ``0`` for real; scores are probabilities of
fake. Metrics that are undefined for the data (ROC-AUC with one class) are
``None`` rather than a made-up number.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["binary_metrics", "choose_threshold", "cross_validate", "summarize_folds"]


def binary_metrics(
    y_true: np.ndarray, p_fake: np.ndarray, threshold: float = 0.5
) -> dict[str, Any]:
    """Accuracy, ROC-AUC, average precision and confusion matrix.

    Parameters
    ----------
    y_true : array of {0, 1}
        1 = fake.
    p_fake : array of float
        Probability of fake; predicted fake when ``p_fake >= threshold``.
    threshold : float

    Returns
    -------
    dict
        ``accuracy``, ``roc_auc`` and ``average_precision`` (``None`` when
        only one class is present), ``confusion`` as ``[[tn, fp], [fn, tp]]``
        and ``threshold``.

    Examples
    --------
    >>> m = binary_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.7, 0.9]))
    >>> m["accuracy"], m["roc_auc"], m["confusion"]
    (0.75, 1.0, [[1, 1], [0, 2]])
    """
    from sklearn.metrics import average_precision_score, confusion_matrix, roc_auc_score

    y_true = np.asarray(y_true).astype(int)
    p_fake = np.asarray(p_fake, dtype=float)
    predicted = (p_fake >= threshold).astype(int)
    both = len(np.unique(y_true)) == 2
    confusion = confusion_matrix(y_true, predicted, labels=[0, 1])
    return {
        "accuracy": float(np.mean(predicted == y_true)) if len(y_true) else None,
        "roc_auc": float(roc_auc_score(y_true, p_fake)) if both else None,
        "average_precision": float(average_precision_score(y_true, p_fake)) if both else None,
        "confusion": confusion.astype(int).tolist(),
        "threshold": float(threshold),
    }


def choose_threshold(y_true: np.ndarray, p_fake: np.ndarray) -> float:
    """The threshold on P(fake) with the best balanced accuracy.

    Candidates are midpoints between consecutive distinct scores (and 0.5);
    ties go to the candidate nearest 0.5, so a perfectly separated set keeps
    the natural threshold when it lies in the gap.

    Examples
    --------
    >>> choose_threshold(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4]))
    0.25
    """
    y_true = np.asarray(y_true).astype(int)
    p_fake = np.asarray(p_fake, dtype=float)
    if len(np.unique(y_true)) < 2:
        return 0.5
    scores = np.unique(p_fake)
    candidates = np.unique(np.concatenate([(scores[1:] + scores[:-1]) / 2, [0.5]]))
    real, fake = y_true == 0, y_true == 1
    predicted = p_fake[None, :] >= candidates[:, None]
    balanced = (predicted[:, fake].mean(1) + (~predicted[:, real]).mean(1)) / 2
    best = np.flatnonzero(balanced >= balanced.max() - 1e-12)
    return float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]])


def cross_validate(
    estimator, X: np.ndarray, y: np.ndarray, folds: int = 5, seed: int = 0
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Stratified K-fold out-of-fold probabilities and per-fold metrics.

    Parameters
    ----------
    estimator : scikit-learn classifier with ``predict_proba``
        Cloned for every fold.
    X, y : arrays
    folds : int
        Reduced to the size of the smaller class when that is smaller.
    seed : int
        Shuffling seed of the folds.

    Returns
    -------
    oof : ndarray, shape (n,)
        P(fake) of every row from the model that did not see it.
    fold_metrics : list of dict
        :func:`binary_metrics` of each fold at that fold's threshold 0.5.
    """
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y).astype(int)
    folds = min(folds, int(np.bincount(y, minlength=2).min()))
    if folds < 2:
        raise ValueError("cross-validation needs at least 2 images of each class")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    oof = np.zeros(len(y))
    fold_metrics = []
    for train, test in splitter.split(X, y):
        model = clone(estimator).fit(X[train], y[train])
        oof[test] = model.predict_proba(X[test])[:, 1]
        fold_metrics.append(binary_metrics(y[test], oof[test], getattr(model, "threshold_", 0.5)))
    return oof, fold_metrics


def summarize_folds(fold_metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation of each scalar metric over folds."""
    out: dict[str, Any] = {"folds": len(fold_metrics)}
    for name in ("accuracy", "roc_auc", "average_precision"):
        values = [m[name] for m in fold_metrics if m[name] is not None]
        out[name] = {
            "mean": float(np.mean(values)) if values else None,
            "std": float(np.std(values)) if values else None,
        }
    return out
