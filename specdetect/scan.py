"""Scanning: a detector's verdict on every input, streamed in input order.

:func:`scan_records` turns the feature results of
:func:`specdetect.pipeline.extract_features` into one record per input:

* an image: ``{"path", "kind": "image", "score", "label"}``;
* a video: the same plus ``"frames"`` (frames scored), ``"frame_indices"``,
  ``"frame_scores"`` and ``"fraction_fake"`` (the share of frames whose score
  reaches the threshold). Its ``score`` is the mean frame score and its
  ``label`` the majority vote of the frames (a tie goes to the mean score);
* an input that could not be read: ``{"path", "error"}`` with a one-line
  reason (the path is not repeated in it).

``score`` is the detector's probability of fake in [0, 1]; ``label`` is
``"fake"`` when the score is at least the threshold (the detector's own
``threshold_`` unless another is given), else ``"real"``.

Feature rows are scored in batches of about :data:`BATCH_ROWS`, never one
input at a time, and at most one batch is held, so memory stays flat.
:func:`score_shard` is the same computation as a pure function of a list of
paths, for cluster workers.

A model file's :class:`~specdetect.detect.scorer.Scorer` (NumPy arrays,
read by :func:`specdetect.detect.model_io.load_scorer` in milliseconds) is
what ``specdetect scan`` scores with. Loading an older file through
scikit-learn costs about a second (its import), as long as featurizing a
thousand small images; a :class:`DeferredDetector` hides that: given the feature settings up front
(:func:`specdetect.detect.model_io.read_feature_config` reads them from the file without loading
it), :func:`scan_records` starts decoding and featurizing at once, starts the
load in a thread as soon as the decoding processes exist (never before: forking
while another thread imports is unsafe), and holds the feature rows, up to
:data:`MAX_PENDING_ROWS`, until the model is ready.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import numpy as np

from specdetect.pipeline import FeatureResult, extract_features

__all__ = [
    "BATCH_ROWS",
    "MAX_PENDING_ROWS",
    "DeferredDetector",
    "DetectorLike",
    "fake_scores",
    "flagged",
    "is_error",
    "scan_records",
    "score_shard",
    "video_verdict",
]

#: Feature rows scored per ``predict_proba`` call.
BATCH_ROWS = 256

#: Feature rows held while a :class:`DeferredDetector` loads (a few MB);
#: beyond that, the scan waits for the model.
MAX_PENDING_ROWS = 65_536


class DetectorLike(Protocol):
    """What the scanner needs from a detector (see :class:`specdetect.detect.Detector`)."""

    feature_config: Any
    threshold_: float

    def predict_proba(self, X: np.ndarray) -> np.ndarray: ...


def scan_records(
    paths: Iterable[str],
    detector: DetectorLike,
    *,
    threshold: float | None = None,
    frames: int = 32,
    device: str = "auto",
    workers: int | None = None,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[dict]:
    """One record per input path, in input order, streamed.

    Parameters
    ----------
    paths : iterable of str
        Image and video files; consumed lazily.
    detector : Detector
        Anything with ``feature_config``, ``threshold_`` and ``predict_proba``.
    threshold : float, optional
        Decision threshold on the score (default: ``detector.threshold_``).
    frames : int
        Frames sampled per video (videos are recognized by extension).
    device : {"auto", "cpu", "cuda"}
        Where features are computed.
    workers : int, optional
        Decoding processes (default: the usable CPUs; ``1`` runs inline).
    batch_rows : int
        Feature rows per ``predict_proba`` call.

    Yields
    ------
    dict
        A result or an error record (see the module docstring).

    Raises
    ------
    RuntimeError
        ``device="cuda"`` without a CUDA device (raised before any input is read).
    """
    if threshold is not None:
        _check_threshold(threshold)
    deferred = isinstance(detector, DeferredDetector)
    results = extract_features(
        paths, detector.feature_config, device=device, workers=workers, frames=frames
    )
    batch: list[FeatureResult] = []
    n_rows = 0
    for result in results:
        if deferred:
            detector.start()  # the first result: the decoding processes exist now
        batch.append(result)
        if result.ok:
            n_rows += len(result.features)
        if n_rows >= batch_rows and (
            not deferred or detector.ready() or n_rows >= MAX_PENDING_ROWS
        ):
            yield from _score_batch(batch, detector, _threshold(detector, threshold))
            batch, n_rows = [], 0
    if deferred:
        detector.start()
    yield from _score_batch(batch, detector, _threshold(detector, threshold))


def score_shard(
    paths: list[str],
    detector: DetectorLike,
    *,
    threshold: float | None = None,
    frames: int = 32,
    device: str = "cpu",
    workers: int = 1,
) -> list[dict]:
    """Records for a list of paths, in order: a pure function of its arguments.

    What a cluster worker runs on one shard; by default it computes inline on
    the CPU, because a cluster worker is already one process per core.
    """
    return list(
        scan_records(
            paths, detector, threshold=threshold, frames=frames, device=device, workers=workers
        )
    )


def is_error(record: dict) -> bool:
    """Whether ``record`` is an error record (``{"path", "error"}``)."""
    return "error" in record


def flagged(record: dict) -> bool:
    """Whether ``record`` is a result labelled fake."""
    return record.get("label") == "fake"


def video_verdict(frame_scores: np.ndarray, threshold: float) -> tuple[float, float, str]:
    """Mean score, fraction of frames flagged, and the majority-vote label.

    A tie (exactly half the frames flagged) is decided by the mean score.

    Examples
    --------
    >>> video_verdict(np.array([0.75, 0.5, 0.25]), 0.5)
    (0.5, 0.6666666666666666, 'fake')
    >>> video_verdict(np.array([0.75, 0.125]), 0.5)
    (0.4375, 0.5, 'real')
    """
    scores = np.asarray(frame_scores, dtype=np.float64)
    mean = float(scores.mean())
    fraction = float(np.mean(scores >= threshold))
    if fraction != 0.5:
        fake = fraction > 0.5
    else:
        fake = mean >= threshold
    return mean, fraction, "fake" if fake else "real"


class DeferredDetector:
    """A detector that loads in a background thread while features are computed.

    Parameters
    ----------
    load : callable
        ``load() -> Detector``, e.g. ``lambda: load_model(path)``; any error it
        raises is raised again by :meth:`result` (and so by the scan).
    feature_config : FeatureConfig
        The model's feature settings, known before loading
        (:func:`specdetect.detect.model_io.read_feature_config`). The loaded
        model must have exactly these, otherwise :meth:`result` raises
        ``RuntimeError``.
    """

    def __init__(self, load: Callable[[], Any], feature_config: Any):
        self.feature_config = feature_config
        self._load = load
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._detector = None
        self._error: BaseException | None = None

    def start(self) -> None:
        """Begin loading in a daemon thread (once; later calls do nothing)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="load-model", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        try:
            detector = self._load()
            if detector.feature_config != self.feature_config:
                raise RuntimeError(
                    "the model's feature settings differ from those read ahead of loading it"
                )
            self._detector = detector
        except BaseException as exc:  # handed to the caller by result()
            self._error = exc
        finally:
            self._done.set()

    def ready(self) -> bool:
        """Whether loading has finished (successfully or not)."""
        return self._done.is_set()

    def result(self):
        """The loaded detector; waits for it, and raises what loading raised."""
        self.start()
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._detector

    @property
    def threshold_(self) -> float:
        return self.result().threshold_

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.result().predict_proba(X)


# --------------------------------------------------------------------------
def _check_threshold(value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0 or np.isnan(value):
        raise ValueError(f"threshold must be in [0, 1], got {value}")
    return value


def _threshold(detector: DetectorLike, threshold: float | None) -> float:
    return _check_threshold(detector.threshold_ if threshold is None else threshold)


def _score_batch(
    batch: list[FeatureResult], detector: DetectorLike, threshold: float
) -> Iterator[dict]:
    """Score the finite feature rows of a batch in one call, then build the records.

    An input is scored when all its rows are finite; the check runs once on
    the whole batch (per input it would cost as much as the scoring).
    """
    decoded = [r for r in batch if r.ok and len(r.features)]
    scores = np.zeros(0)
    usable_ids: set[int] = set()
    if decoded:
        rows = np.concatenate([r.features for r in decoded]).astype(np.float64, copy=False)
        lengths = np.array([len(r.features) for r in decoded])
        bad_rows = ~np.isfinite(rows).all(axis=1)
        bad_per_input = np.add.reduceat(bad_rows, np.cumsum(lengths) - lengths)
        usable_ids = {id(r) for r, bad in zip(decoded, bad_per_input, strict=True) if not bad}
        if usable_ids:
            scores = fake_scores(detector, rows[np.repeat(bad_per_input == 0, lengths)])
    start = 0
    for result in batch:
        if id(result) not in usable_ids:
            yield _error_record(result)
            continue
        n = len(result.features)
        yield _result_record(result, scores[start : start + n], threshold)
        start += n


def fake_scores(detector: DetectorLike, rows: np.ndarray, block: int = BATCH_ROWS) -> np.ndarray:
    """P(fake) of each row, the same bits however the rows are grouped into calls.

    BLAS kernels treat the last rows of a matrix with other code than the rest,
    so ``predict_proba`` of a row can change in its last bits with the number
    of rows in the call (2e-15 with logistic regression). Shards, resumed runs
    and local batches group rows differently; scoring in blocks of exactly
    ``block`` rows (the last padded with zero rows) makes them bit-identical.
    """
    parts = []
    for start in range(0, len(rows), block):
        chunk = rows[start : start + block]
        n = len(chunk)
        if n < block:
            chunk = np.concatenate([chunk, np.zeros((block - n, rows.shape[1]))])
        parts.append(np.asarray(detector.predict_proba(chunk), dtype=np.float64)[:n, 1])
    return np.concatenate(parts) if parts else np.zeros(0)


def _result_record(result: FeatureResult, scores: np.ndarray, threshold: float) -> dict:
    if result.kind != "video":
        score = float(scores[0])
        return {
            "path": result.path,
            "kind": result.kind,
            "score": score,
            "label": "fake" if score >= threshold else "real",
        }
    mean, fraction, label = video_verdict(scores, threshold)
    return {
        "path": result.path,
        "kind": "video",
        "score": mean,
        "label": label,
        "frames": len(scores),
        "fraction_fake": fraction,
        "frame_indices": [int(i) for i in result.frame_indices],
        "frame_scores": [float(s) for s in scores],
    }


def _error_record(result: FeatureResult) -> dict:
    if result.ok:  # decoded, but nothing usable to score
        reason = "no frames to score" if not len(result.features) else "features are not finite"
    else:
        reason = result.error or "unreadable"
        prefix = f"{result.path}: "
        if reason.startswith(prefix):  # the record already names the path
            reason = reason[len(prefix) :]
    return {"path": result.path, "error": reason}
