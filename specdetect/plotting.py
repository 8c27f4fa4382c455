"""Figures: mean spectra with standard-deviation bands, and ROC curves.

matplotlib is imported inside the functions, with the non-interactive Agg
backend, so importing this module is free and no display is needed.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

__all__ = ["plot_roc", "plot_spectra"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: str | os.PathLike) -> None:
    from specdetect.atomic import atomic_write

    suffix = os.path.splitext(os.fspath(path))[1].lstrip(".").lower() or "png"
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format=suffix, dpi=120, bbox_inches="tight")


def plot_spectra(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
    path: str | os.PathLike,
    ylabel: str = "power (dB)",
    title: str = "Azimuthally integrated power spectrum",
) -> None:
    """One line per folder (its mean spectrum) with a +-1 std band.

    Parameters
    ----------
    curves : sequence of (label, frequencies, mean, std)
        Frequencies in cycles per pixel.
    path : str or PathLike
        Output image (format from the extension; written atomically).
    """
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(7, 4.2))
    for label, freq, mean, std in curves:
        (line,) = axes.plot(freq, mean, label=label, linewidth=1.6)
        axes.fill_between(freq, mean - std, mean + std, color=line.get_color(), alpha=0.2)
    axes.set_xlabel("spatial frequency (cycles per pixel)")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.set_xlim(0, 0.5)
    axes.grid(alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    _save(figure, path)
    plt.close(figure)


def plot_roc(y_true: np.ndarray, p_fake: np.ndarray, path: str | os.PathLike) -> None:
    """ROC curve of P(fake) scores against labels (1 = fake), with its AUC."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _pyplot()
    fpr, tpr, _ = roc_curve(y_true, p_fake)
    auc = roc_auc_score(y_true, p_fake)
    figure, axes = plt.subplots(figsize=(4.5, 4.5))
    axes.plot(fpr, tpr, linewidth=1.8, label=f"ROC-AUC = {auc:.3f}")
    axes.plot([0, 1], [0, 1], linestyle="--", color="gray", linewidth=1)
    axes.set_xlabel("false positive rate (real flagged fake)")
    axes.set_ylabel("true positive rate (fake flagged fake)")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.01)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    _save(figure, path)
    plt.close(figure)
