"""Scanning: a detector's verdict on every input, streamed in input order.

:func:`scan` is the entry point, what ``specdetect scan`` calls: it takes
input files and a detector (or a model file), and yields one record per
input, in input order, computed in this process (a pool of decoding
processes), on a Dask cluster (``scheduler=`` an address, ``cluster="local:N"``
or ``client=`` a ``distributed.Client``), and/or resumed from a result file
(``resume=``). :func:`open_detector` opens a model file the way the command
does, and :func:`list_inputs` expands files, folders and globs.

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

import contextlib
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from specdetect.distributed import DEFAULT_SHARD_SIZE
from specdetect.featurize import check_backend, list_inputs
from specdetect.pipeline import FeatureResult, extract_features, one_blas_thread, resolve_device

__all__ = [
    "BATCH_ROWS",
    "MAX_PENDING_ROWS",
    "check_options",
    "DeferredDetector",
    "DetectorLike",
    "fake_scores",
    "flagged",
    "is_error",
    "is_setup_error",
    "list_inputs",
    "open_detector",
    "scan",
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


def scan(
    inputs: Iterable[str],
    detector: DetectorLike | str | os.PathLike | None = None,
    *,
    threshold: float | None = None,
    frames: int = 32,
    device: str = "auto",
    workers: int | None = None,
    scheduler: str | None = None,
    cluster: str | None = None,
    client: Any = None,
    resume: str | os.PathLike | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    spectra: bool = False,
    warn: Callable[[str], None] | None = None,
) -> Iterator[dict]:
    """Scan input files: one record per input, in input order, streamed.

    What ``specdetect scan`` runs. The options are checked now (a bad value
    raises before anything is read); the work starts with the first record
    asked for, and the resources it needs (decoding processes, a local
    cluster, the locked result file) are released when the iterator is
    exhausted or closed.

    Parameters
    ----------
    inputs : iterable of str
        Image and video files, consumed lazily (see :func:`list_inputs` to
        expand folders and globs). Videos are recognized by extension.
    detector : Detector, Scorer, str or PathLike, optional
        A detector (anything with ``feature_config``, ``threshold_`` and
        ``predict_proba``), or a model file opened with
        :func:`open_detector`. Default: the shipped model.
    threshold : float, optional
        Flag scores ``>= threshold`` (default: the detector's own).
    frames : int
        Frames scored per video.
    device : {"auto", "cpu", "cuda"}
        Where spectra are computed in this process (cluster workers use
        their CPU).
    workers : int, optional
        Decoding processes in this process (default: the usable CPUs).
    scheduler : str, optional
        Run on the Dask cluster whose scheduler has this address
        (``tcp://host:8786``); its workers need specdetect installed.
    cluster : str, optional
        Start a local Dask cluster for this scan: ``"local:N"`` workers.
    client : distributed.Client, optional
        Run on the cluster of an existing Dask client (left open).
    resume : str or PathLike, optional
        A JSON-lines result file (:mod:`specdetect.resume`): each shard's
        records are appended as it finishes, and inputs the file already
        holds are not scanned again (their stored records are yielded).
    shard_size : int
        Inputs per shard (a cluster task, or a unit of the result file).
    spectra : bool
        Add ``"spectrum"`` to each new result: the spectrum part of its
        feature row (the first ``feature_config.bins`` values; the mean
        over the frames of a video), for plots such as the HTML report.
        Never written to the result file.
    warn : callable, optional
        Receives one-line warnings (a torn line in the result file).

    Yields
    ------
    dict
        A result or error record, as :func:`scan_records` makes them.

    Raises
    ------
    ValueError
        A threshold outside [0, 1], an unknown device, more than one of
        ``scheduler``, ``cluster`` and ``client``, a bad ``cluster`` value
        or shard size.
    RuntimeError
        ``device="cuda"`` without a CUDA device.
    specdetect.detect.ModelError, BackendError, ResumeError
        At the call, a model file given by path that cannot be used; while
        iterating, a model read ahead in the background that turns out
        unusable, a cluster that cannot be reached, a result file in use
        (see :func:`is_setup_error`).

    Examples
    --------
    >>> records = scan(["a.png"], "models/default.skops", resume="results.jsonl")  # doctest: +SKIP
    >>> for record in scan(paths, cluster="local:4"):  # doctest: +SKIP
    ...     print(record["path"], record.get("score"))
    """
    check_options(
        threshold=threshold,
        frames=frames,
        device=device,
        scheduler=scheduler,
        cluster=cluster,
        client=client,
        shard_size=shard_size,
    )
    if detector is None or isinstance(detector, (str, os.PathLike)):
        detector, _ = open_detector(detector)
    options = {"threshold": threshold, "frames": frames, "spectra": spectra}
    if scheduler is None and cluster is None and client is None and resume is None:
        return scan_records(inputs, detector, device=device, workers=workers, **options)
    return _backend_records(
        inputs, detector, options, device, workers, scheduler, cluster, client, resume,
        shard_size, warn,
    )  # fmt: skip


def check_options(
    *,
    threshold: float | None = None,
    frames: int = 32,
    device: str = "auto",
    scheduler: str | None = None,
    cluster: str | None = None,
    client: Any = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
) -> None:
    """Raise what :func:`scan` raises for these options, without scanning.

    Raises
    ------
    ValueError, RuntimeError, specdetect.distributed.BackendError
        See :func:`scan`.
    """
    if threshold is not None:
        _check_threshold(threshold)
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    resolve_device(device)
    check_backend(scheduler, cluster, client, shard_size)


def _backend_records(
    inputs, detector, options, device, workers, scheduler, cluster, client, resume, shard_size, warn
) -> Iterator[dict]:
    """Records from a cluster and/or a result file; owns both while it runs.

    The model is loaded completely first, so a bad model file is refused
    before a cluster starts or the result file is touched.
    """
    from specdetect import distributed
    from specdetect.resume import ResultStore, record_problem, resumed_records, sequential_compute

    if isinstance(detector, DeferredDetector):  # wait for it; raise its error
        detector = detector.result()

    def local(paths):
        return scan_records(paths, detector, device=device, workers=workers, **options)

    with contextlib.ExitStack() as stack:
        store = None
        if resume is not None:
            # Lines that are not valid scan records are rescanned, never reported.
            store = stack.enter_context(ResultStore(resume, warn=warn, check=record_problem))
        if scheduler is None and cluster is None and client is None:
            compute = _without_spectra(sequential_compute(local))
            yield from resumed_records(inputs, store, compute, shard_size)
            return
        client = stack.enter_context(distributed.open_client(scheduler, cluster, client))
        shard = partial(score_shard, **options)
        backend = {"shared": {"detector": detector}, "on_failure": failure_record}
        if store is None:
            yield from distributed.map_paths(
                client, shard, inputs, shard_size=shard_size, **backend
            )
            return

        def compute(plans, on_done):
            return distributed.map_shards(
                client, shard, plans, payload=_todo, on_done=on_done, **backend
            )

        yield from resumed_records(inputs, store, _without_spectra(compute), shard_size)


def _todo(plan) -> list[str]:
    return plan.todo


def _without_spectra(compute):
    """A ``compute`` for :func:`specdetect.resume.resumed_records` that stores no spectra."""

    def stored(record: dict) -> dict:
        if "spectrum" not in record:
            return record
        return {key: value for key, value in record.items() if key != "spectrum"}

    def wrapped(plans, on_done):
        return compute(plans, lambda plan, new: on_done(plan, [stored(r) for r in new]))

    return wrapped


def failure_record(path: str, exc: BaseException) -> dict:
    """The error record of an input whose cluster task kept failing."""
    from specdetect.distributed import describe_failure

    return {"path": path, "error": describe_failure(exc)}


def is_setup_error(exc: BaseException) -> bool:
    """Whether ``exc`` says the scan cannot run, rather than a bug.

    An unusable model file (:class:`specdetect.detect.ModelError`), a
    cluster that cannot be used (:class:`specdetect.distributed.BackendError`),
    a result file that cannot (:class:`specdetect.resume.ResumeError`) or a
    report that cannot be written (:class:`specdetect.atomic.OutputError`);
    ``str(exc)`` is one line for the user.
    """
    from specdetect.atomic import OutputError
    from specdetect.detect.model_io import ModelError
    from specdetect.distributed import BackendError
    from specdetect.resume import ResumeError

    return isinstance(exc, (ModelError, BackendError, ResumeError, OutputError))


def open_detector(model: str | os.PathLike | None = None) -> tuple[DetectorLike, str]:
    """The detector of a model file, and the name to report it under.

    A model file with a scorer (every file written since it was added) is
    read with NumPy alone, in milliseconds. An older file loads through
    scikit-learn: when its feature settings can be read up front, as a
    :class:`DeferredDetector` that :func:`scan_records` loads in a thread
    while the first inputs are featurized (a bad file then raises from the
    scan, before its first record); otherwise now.

    Parameters
    ----------
    model : str or PathLike, optional
        The model file (default: the shipped model,
        :func:`specdetect.detect.default_model_path`).

    Returns
    -------
    detector : Scorer, DeferredDetector or Detector
    name : str
        ``model``'s path relative to the working directory when it lies
        below it, else as given (absolute for the shipped model).

    Raises
    ------
    specdetect.detect.ModelError
        Not a specdetect model, or unreadable (``str(err)`` is one line).
    """
    from specdetect.detect import default_model_path
    from specdetect.detect.model_io import ModelError, load_model, load_scorer, read_feature_config

    path = default_model_path() if model is None else Path(model)
    name = _display_path(path)
    try:
        scorer = load_scorer(path)
        if scorer is not None:
            return scorer, name
        config = read_feature_config(path)
        if config is not None:
            return DeferredDetector(partial(load_model, path), config), name
        return load_model(path), name
    except OSError as exc:
        raise ModelError(f"{path}: cannot read model file ({exc.strerror or exc})") from None


def _display_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)
    return str(path) if relative.startswith("..") else relative


def scan_records(
    paths: Iterable[str],
    detector: DetectorLike,
    *,
    threshold: float | None = None,
    frames: int = 32,
    device: str = "auto",
    workers: int | None = None,
    batch_rows: int = BATCH_ROWS,
    spectra: bool = False,
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
    spectra : bool
        Add ``"spectrum"`` to each result (see :func:`scan`).

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
            yield from _score_batch(batch, detector, _threshold(detector, threshold), spectra)
            batch, n_rows = [], 0
    if deferred:
        detector.start()
    yield from _score_batch(batch, detector, _threshold(detector, threshold), spectra)


def score_shard(
    paths: list[str],
    detector: DetectorLike,
    *,
    threshold: float | None = None,
    frames: int = 32,
    device: str = "cpu",
    workers: int = 1,
    spectra: bool = False,
) -> list[dict]:
    """Records for a list of paths, in order: a pure function of its arguments.

    What a cluster worker runs on one shard; by default it computes inline on
    the CPU, because a cluster worker is already one process per core.
    """
    return list(
        scan_records(
            paths,
            detector,
            threshold=threshold,
            frames=frames,
            device=device,
            workers=workers,
            spectra=spectra,
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
    batch: list[FeatureResult], detector: DetectorLike, threshold: float, spectra: bool = False
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
        record = _result_record(result, scores[start : start + n], threshold)
        if spectra:
            bins = detector.feature_config.bins
            mean = np.asarray(result.features, dtype=np.float64)[:, :bins].mean(axis=0)
            record["spectrum"] = [float(v) for v in mean]
        yield record
        start += n


def fake_scores(detector: DetectorLike, rows: np.ndarray, block: int = BATCH_ROWS) -> np.ndarray:
    """P(fake) of each row, the same bits however the rows are grouped into calls.

    BLAS kernels treat the last rows of a matrix with other code than the rest,
    so ``predict_proba`` of a row can change in its last bits with the number
    of rows in the call (2e-15 with logistic regression). Shards, resumed runs
    and local batches group rows differently; scoring in blocks of exactly
    ``block`` rows (the last padded with zero rows) makes them bit-identical.

    BLAS runs on one thread here (:func:`specdetect.pipeline.one_blas_thread`):
    the scoring runs beside the decoding processes, which take every core.
    """
    parts = []
    for start in range(0, len(rows), block):
        chunk = rows[start : start + block]
        n = len(chunk)
        if n < block:
            chunk = np.concatenate([chunk, np.zeros((block - n, rows.shape[1]))])
        with one_blas_thread():
            proba = detector.predict_proba(chunk)
        parts.append(np.asarray(proba, dtype=np.float64)[:n, 1])
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
