"""Batched feature extraction over many files.

Files are decoded in a process pool, a few per task, with a bounded number of
tasks in flight so that memory stays flat whatever the number of inputs, and
results stream back in input order.

* ``engine="numpy"`` (the CPU default): each worker decodes and computes the
  feature vector with SciPy's single-threaded FFT; only the small vectors
  travel back. The small images of a task (up to :data:`GROUP_PIXELS`) are
  featurized together, one call per shape: the same bits as one by one
  (:func:`specdetect.features.features_numpy` computes each image of a batch
  as it would alone), at a fraction of the per-call cost of a thumbnail.
* ``engine="torch"`` (CUDA, or forced on CPU for testing): workers only
  decode; the parent groups images of equal shape into batches and runs
  :func:`specdetect.features.features_torch` on the device.

Videos (when ``frames > 0``) are decoded by :mod:`specdetect.video` into up to
``frames`` luma frames, each of which gets a feature vector.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from itertools import islice

import numpy as np

from specdetect._workers import worker_pool
from specdetect.features import FeatureConfig, features_numpy
from specdetect.media import VIDEO_EXTENSIONS, MediaError, has_extension, read_luma

__all__ = [
    "FeatureResult",
    "extract_features",
    "one_blas_thread",
    "resolve_device",
    "default_workers",
]


@dataclass
class FeatureResult:
    """The outcome for one input path.

    Attributes
    ----------
    path : str
    kind : {"image", "video"}
    features : ndarray of shape (n, n_features), or None on error
        One row for an image, one per sampled frame for a video.
    error : str or None
        One-line message ``"<path>: <reason>"`` when the input failed.
    frame_indices : list of int
        For videos, the index of each sampled frame.
    """

    path: str
    kind: str = "image"
    features: np.ndarray | None = None
    error: str | None = None
    frame_indices: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


def default_workers() -> int:
    """Worker processes to use by default: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def resolve_device(device: str) -> str:
    """Map ``auto|cpu|cuda`` to ``cpu`` or ``cuda``.

    ``auto`` imports torch only when an NVIDIA device node exists, so CPU-only
    machines never pay torch's import time.
    """
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
    if device == "cpu":
        return "cpu"
    if device == "auto" and not os.path.exists("/dev/nvidiactl"):
        return "cpu"
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if device == "cuda":
        raise RuntimeError("--device cuda was asked for, but torch sees no CUDA device")
    return "cpu"


def extract_features(
    paths: Iterable[str],
    config: FeatureConfig = FeatureConfig(),
    *,
    device: str = "auto",
    workers: int | None = None,
    frames: int = 0,
    engine: str | None = None,
    task_size: int = 8,
    batch_size: int = 128,
    max_pixels: int | None = None,
) -> Iterator[FeatureResult]:
    """Feature vectors for every path, streamed in input order.

    Parameters
    ----------
    paths : iterable of str
        Consumed lazily; at most ``4 * workers`` tasks are in flight.
    config : FeatureConfig
    device : {"auto", "cpu", "cuda"}
    workers : int, optional
        Decoding processes (default: the usable CPUs). ``1`` runs inline.
    frames : int
        Frames to sample from each video; ``0`` treats videos as unreadable
        images (the ``features`` command reads images only).
    engine : {"numpy", "torch"}, optional
        Defaults to ``torch`` on CUDA and ``numpy`` on CPU. ``torch`` on CPU
        runs the GPU code path without a GPU.
    task_size : int
        Files per pool task.
    batch_size : int
        Images per torch batch.
    max_pixels : int, optional
        Pixel limit for decoding (see :func:`specdetect.media.open_image`).

    Yields
    ------
    FeatureResult
        One per path, in input order; failures carry ``error`` instead of
        raising.
    """
    resolved = resolve_device(device)
    engine = engine or ("torch" if resolved == "cuda" else "numpy")
    if engine not in ("numpy", "torch"):
        raise ValueError(f"engine must be numpy or torch, got {engine!r}")
    workers = default_workers() if workers is None else max(1, workers)
    decode_only = engine == "torch"
    job = _Job(config, frames, decode_only, max_pixels)

    tasks = _batched(iter(paths), task_size)
    task_results = _run_tasks(job, tasks, workers)
    if not decode_only:
        for results in task_results:
            yield from results
        return
    yield from _torch_batches(task_results, config, resolved, batch_size)


# --------------------------------------------------------------------------
# Work done in the pool
# --------------------------------------------------------------------------
#: Images of at most this many pixels are featurized together with the other
#: images of their task that have their shape (a few hundred kilobytes each);
#: larger ones, and videos, one at a time as they are decoded.
GROUP_PIXELS = 1 << 16


@dataclass(frozen=True)
class _Job:
    config: FeatureConfig
    frames: int
    decode_only: bool
    max_pixels: int | None

    def __call__(self, paths: list[str]) -> list[FeatureResult]:
        if self.decode_only:
            return [self.decode(path) for path in paths]
        results = []
        groups: dict[tuple[int, ...], list[FeatureResult]] = {}
        for path in paths:
            result = self.decode(path)
            results.append(result)
            if not result.ok:
                continue
            stack = result.features
            if result.kind == "image" and stack[0].size <= GROUP_PIXELS:
                groups.setdefault(stack.shape, []).append(result)
            else:  # computed now: only small decoded images are held
                result.features = features_numpy(stack, self.config)
        for group in groups.values():
            rows = features_numpy(np.concatenate([r.features for r in group]), self.config)
            for result, row in zip(group, rows, strict=True):
                result.features = row[None]
        return results

    def decode(self, path: str) -> FeatureResult:
        """The decoded luma stack of ``path`` in ``features`` (one frame for an image)."""
        is_video = self.frames > 0 and has_extension(path, VIDEO_EXTENSIONS)
        kind = "video" if is_video else "image"
        try:
            if is_video:
                from specdetect.video import read_video_luma

                stack, indices = read_video_luma(path, self.frames, self.max_pixels)
            else:
                stack, indices = read_luma(path, self.max_pixels)[None], []
            _check_size(path, stack)
            return FeatureResult(path, kind, stack, None, indices)
        except MediaError as exc:
            return FeatureResult(path, kind, None, str(exc))


#: Smallest image side with a spectrum worth the name; smaller inputs are errors.
MIN_SIDE = 4


def _check_size(path: str, stack: np.ndarray) -> None:
    height, width = stack.shape[-2:]
    if min(height, width) < MIN_SIDE:
        raise MediaError(
            path,
            f"image is {width}x{height} pixels, too small for a spectrum "
            f"(at least {MIN_SIDE}x{MIN_SIDE})",
        )


def _run_tasks(job: _Job, tasks: Iterator[list[str]], workers: int):
    """Apply ``job`` to each task, in order, with at most 4 * workers in flight."""
    if workers == 1:
        for task in tasks:
            yield job(task)
        return
    pool = _make_pool(workers)
    try:
        window: deque = deque()  # (task, future)
        for task in islice(tasks, 4 * workers):
            window.append((task, _submit(pool, job, task)))
        while window:
            task, future = window.popleft()
            try:
                done = future.result()
            except BrokenProcessPool:
                # A worker died (decoder crash, out of memory) and took the pool down:
                # re-run this task path by path in fresh pools, so that only the input
                # that kills a worker fails, then resubmit the rest of the window.
                pool.shutdown(wait=True, cancel_futures=True)
                done, pool = _isolate(job, task, workers)
                window = deque((t, _submit(pool, job, t)) for t, _ in window)
            for task in islice(tasks, 1):
                window.append((task, _submit(pool, job, task)))
            yield done
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _submit(pool: Executor, job: _Job, task: list[str]) -> Future:
    """``pool.submit``, with a pool that broke meanwhile giving a failed future.

    A worker can die while the caller is busy with earlier results; submitting
    to the broken pool then raises at once. As a failed future it reaches the
    ``future.result()`` above, which isolates the input that killed the worker.
    """
    try:
        return pool.submit(job, task)
    except BrokenProcessPool as exc:
        failed: Future = Future()
        failed.set_exception(exc)
        return failed


def _isolate(job: _Job, task: list[str], workers: int) -> tuple[list[FeatureResult], Executor]:
    """Run each path of ``task`` alone; a path whose worker dies gets an error result."""
    pool = _make_pool(workers)
    results = []
    try:
        for path in task:
            try:
                results.extend(pool.submit(job, [path]).result())
            except BrokenProcessPool:
                pool.shutdown(wait=True, cancel_futures=True)
                pool = _make_pool(workers)
                results.append(_worker_died(job, path))
    except BaseException:  # interrupted: the caller never gets this pool to shut down
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    return results, pool


def _worker_died(job: _Job, path: str) -> FeatureResult:
    """The error result of an input whose decoding process died."""
    kind = "video" if job.frames > 0 and has_extension(path, VIDEO_EXTENSIONS) else "image"
    reason = "the decoding process died while reading this file (crash or out of memory)"
    return FeatureResult(path, kind, None, str(MediaError(path, reason)))


def _make_pool(workers: int) -> Executor:
    # fork (worker_pool's default where available) is cheap and safe here: the
    # parent has not started CUDA or threads yet when the pool is created (first
    # submit happens before any torch use). The workers die with this process,
    # so a killed scan leaves none behind holding its files.
    return worker_pool(workers, initializer=_single_threaded)


def _single_threaded() -> None:
    # One thread per worker: the pool already uses every core. The variables
    # reach libraries loaded from now on; the BLAS that NumPy loaded before the
    # fork has read them already, so it is limited directly (for good: the
    # limiter is never exited).
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    one_blas_thread().__enter__()


_blas_controller = None
_blas_lock = threading.Lock()


def one_blas_thread() -> contextlib.AbstractContextManager:
    """A context in which the BLAS libraries loaded in this process use one thread.

    For the small matrix products done beside busy decoding processes (the
    scan's scoring, the workers' own): with the cores taken, OpenBLAS's
    threads only wait for one another (a 256 x 391 x 76 product took 12 ms
    with two threads on a loaded 2-core machine, 0.4 ms with one). The limit
    is process-wide (OpenBLAS has one thread pool) and lifted on exit. Without
    threadpoolctl (a dependency of scikit-learn) it does nothing.
    """
    global _blas_controller
    with _blas_lock:
        if _blas_controller is None:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:  # pragma: no cover - scikit-learn requires it
                _blas_controller = False
            else:
                _blas_controller = ThreadpoolController()
    if _blas_controller is False:  # pragma: no cover
        return contextlib.nullcontext()
    return _blas_controller.limit(limits=1, user_api="blas")


# --------------------------------------------------------------------------
# Torch batches in the parent process
# --------------------------------------------------------------------------
def _torch_batches(
    task_results: Iterator[list[FeatureResult]], config: FeatureConfig, device: str, batch_size: int
) -> Iterator[FeatureResult]:
    """Replace decoded stacks by features, batching equal shapes, order kept."""
    import torch

    from specdetect.features import features_torch

    pending: list[FeatureResult] = []
    n_pending = 0
    for results in task_results:
        pending.extend(results)
        n_pending += sum(len(r.features) for r in results if r.ok)
        if n_pending >= batch_size:
            _compute_on_device(pending, config, device, torch, features_torch)
            yield from pending
            pending, n_pending = [], 0
    _compute_on_device(pending, config, device, torch, features_torch)
    yield from pending


def _compute_on_device(results, config, device, torch, features_torch) -> None:
    by_shape: dict[tuple[int, int], list[FeatureResult]] = {}
    for result in results:
        if result.ok:
            by_shape.setdefault(result.features.shape[1:], []).append(result)
    for group in by_shape.values():
        stack = np.concatenate([r.features for r in group])
        with torch.no_grad():
            batch = torch.from_numpy(stack).to(device)
            features = features_torch(batch, config).float().cpu().numpy()
        start = 0
        for result in group:
            n = len(result.features)
            result.features = features[start : start + n]
            start += n


def _batched(iterator: Iterator[str], size: int) -> Iterator[list[str]]:
    while batch := list(islice(iterator, size)):
        yield batch
