"""Dask cluster backend: score or featurize many files on a Dask cluster.

The inputs are read lazily and cut into shards (lists of paths, 1,000 by
default); a bounded number of shards is in flight at any time, so memory stays
flat whatever the number of inputs. Shared read-only objects (the detector,
the feature configuration) go to the cluster once, as a task of their own that
every shard depends on: each worker receives them once, and if the worker that
held them dies, Dask recomputes them from that task. Results come back as
shards finish and are handed out in input order; shards that finish early wait
in a buffer that is part of the bounded window.

A shard whose worker dies is re-run by Dask on another worker (up to
``distributed.scheduler.allowed-failures`` times); a shard that raises is retried
``retries`` times. If it still fails, its paths are run one task at a time (and
a failing one a second time) so that only the input that kills workers is
reported as an error and every other input gets its result: every input is
recorded exactly once.

Dask is an optional dependency (``pip install specdetect[distributed]``); it is
imported inside the functions here, never at module import.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import islice
from typing import Any, TypeVar

__all__ = [
    "DEFAULT_SHARD_SIZE",
    "BackendError",
    "dask_client",
    "feature_shard",
    "feature_shard_failure",
    "map_paths",
    "map_shards",
    "open_client",
    "parse_cluster",
    "require_dask",
    "shards_of",
]

T = TypeVar("T")
R = TypeVar("R")

#: Paths per shard: large enough that per-task overhead (a few ms) is noise,
#: small enough that a lost shard costs seconds.
DEFAULT_SHARD_SIZE = 1000

#: Environment for local worker processes: one BLAS/FFT thread each, because
#: the cluster already runs one worker process per core.
_SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


class BackendError(Exception):
    """The cluster backend cannot run (Dask missing, bad address, lost scheduler).

    ``str(err)`` is one line, ready for the command line's error output.
    """


def require_dask():
    """Import ``distributed``, or explain how to install it.

    Returns
    -------
    module
        The ``distributed`` package.

    Raises
    ------
    BackendError
        When Dask is not installed.
    """
    try:
        import distributed
    except ImportError:
        raise BackendError(
            "--scheduler and --cluster need Dask: install specdetect[distributed] "
            "(pip install 'specdetect[distributed]', or pip install 'dask[distributed]')"
        ) from None
    return distributed


def parse_cluster(spec: str) -> int:
    """Number of workers from a ``--cluster`` value: ``local:N`` (or ``local``).

    ``local`` alone uses one worker per usable CPU.

    Examples
    --------
    >>> parse_cluster("local:2")
    2
    """
    kind, _, count = spec.partition(":")
    if kind != "local":
        raise BackendError(f"--cluster must be local:N (for example local:4), got {spec!r}")
    if not count:
        from specdetect.pipeline import default_workers

        return default_workers()
    if not count.isdigit() or int(count) < 1:
        raise BackendError(f"--cluster local:N needs a positive worker count, got {spec!r}")
    return int(count)


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, cluster: str | None = None) -> Iterator[Any]:
    """A Dask client for ``--scheduler ADDRESS`` or ``--cluster local:N``.

    A local cluster runs N worker processes with one thread each, listens on
    127.0.0.1 only (dashboard on a free loopback port, if Bokeh is installed),
    keeps its spill files in a temporary folder that is removed afterwards, and
    is shut down when the block ends.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler, e.g. ``tcp://10.0.0.5:8786``. Its
        workers must have specdetect installed (same version).
    cluster : str, optional
        ``local:N``. Exactly one of ``scheduler`` and ``cluster`` is given.

    Yields
    ------
    distributed.Client
    """
    if (scheduler is None) == (cluster is None):
        raise BackendError("give exactly one of --scheduler and --cluster")
    n_workers = parse_cluster(cluster) if cluster is not None else 0
    distributed = require_dask()
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise BackendError(
                f"cannot connect to the Dask scheduler at {scheduler}: {_one_line(exc)}"
            ) from None
        try:
            yield client
        finally:
            client.close()
        return

    workdir = tempfile.mkdtemp(prefix="specdetect-dask-")
    try:
        with (
            distributed.LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",
                worker_dashboard_address="127.0.0.1:0",
                local_directory=workdir,
                silence_logs=logging.ERROR,
                env=_SINGLE_THREAD_ENV,
            ) as local,
            distributed.Client(local) as client,
        ):
            yield client
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def open_client(
    scheduler: str | None = None, cluster: str | None = None, client: Any = None
) -> Iterator[Any]:
    """The Dask client to run on: ``client`` itself (left open), else :func:`dask_client`.

    Exactly one of ``scheduler``, ``cluster`` and ``client`` is given.
    """
    if client is None:
        with dask_client(scheduler, cluster) as own:
            yield own
        return
    if scheduler is not None or cluster is not None:
        raise BackendError("give a Dask client, or a scheduler or cluster to connect to, not both")
    yield client


def shards_of(items: Iterable[T], size: int = DEFAULT_SHARD_SIZE) -> Iterator[list[T]]:
    """Cut ``items`` into lists of ``size`` (the last may be shorter), lazily.

    Examples
    --------
    >>> list(shards_of(range(5), 2))
    [[0, 1], [2, 3], [4]]
    """
    if size < 1:
        raise ValueError(f"shard size must be at least 1, got {size}")
    iterator = iter(items)
    while shard := list(islice(iterator, size)):
        yield shard


def map_shards(
    client: Any,
    func: Callable[..., list[R]],
    tasks: Iterable[T],
    *,
    on_failure: Callable[[Any, BaseException], R],
    shared: Mapping[str, Any] | None = None,
    payload: Callable[[T], list] = list,
    on_done: Callable[[T, list[R]], None] | None = None,
    max_in_flight: int | None = None,
    retries: int = 2,
) -> Iterator[tuple[T, list[R]]]:
    """Run ``func(payload(task), **shared)`` on the cluster for each task, in order.

    Parameters
    ----------
    client : distributed.Client
    func : callable
        ``func(items, **shared) -> list`` with exactly one result per item, in
        the items' order. Must be importable on the workers (a module-level
        function) and should turn per-item failures into results.
    tasks : iterable
        Consumed lazily, at most ``max_in_flight`` tasks ahead of the consumer.
    on_failure : callable
        ``on_failure(item, exc) -> result`` for an item whose task still fails
        when run alone (its worker died repeatedly, or ``func`` raised).
    shared : mapping, optional
        Keyword arguments sent to the cluster once and passed to every call.
    payload : callable
        Maps a task to the list of items to compute (default: the task itself).
        A task with an empty payload is not sent; its results are ``[]``.
    on_done : callable, optional
        ``on_done(task, results)`` called as soon as each task's results are
        in, in completion order (e.g. to append them to a result file before
        earlier, slower shards finish).
    max_in_flight : int, optional
        Tasks submitted but not yet yielded (running or buffered). Default:
        twice the number of workers plus one, at least 4.
    retries : int
        Extra attempts for a task that raises.

    Yields
    ------
    (task, results)
        In the order of ``tasks``.
    """
    distributed = require_dask()
    shared_futures = {
        # A task (not scatter) so that Dask can recompute it if its holder dies.
        name: client.submit(_identity, value, pure=False)
        for name, value in (shared or {}).items()
    }
    window = max_in_flight or max(4, 2 * _n_workers(client) + 1)
    pending = distributed.as_completed()
    index_of: dict[str, int] = {}
    buffered: dict[int, tuple[T, list[R]]] = {}
    in_window: dict[int, T] = {}
    task_iter = iter(tasks)
    n_submitted = n_emitted = 0
    exhausted = False

    def finish(index: int, results: list[R]) -> None:
        task = in_window.pop(index)
        if on_done is not None:
            on_done(task, results)
        buffered[index] = (task, results)

    while True:
        while not exhausted and n_submitted - n_emitted < window:
            task = next(task_iter, _END)
            if task is _END:
                exhausted = True
                break
            index, n_submitted = n_submitted, n_submitted + 1
            in_window[index] = task
            items = payload(task)
            if not items:
                finish(index, [])
                continue
            future = client.submit(func, items, retries=retries, pure=False, **shared_futures)
            index_of[future.key] = index
            pending.add(future)
        while n_emitted in buffered:
            yield buffered.pop(n_emitted)
            n_emitted += 1
        if n_emitted == n_submitted:
            if exhausted:
                return
            continue
        future = next(pending)
        index = index_of.pop(future.key)
        items = payload(in_window[index])
        results = _results_or_rescue(
            client, distributed, future, func, items, shared_futures, retries, on_failure
        )
        del future
        finish(index, results)


def map_paths(
    client: Any,
    func: Callable[..., list[R]],
    paths: Iterable[str],
    *,
    on_failure: Callable[[str, BaseException], R],
    shared: Mapping[str, Any] | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    max_in_flight: int | None = None,
    retries: int = 2,
) -> Iterator[R]:
    """One result per path, in input order, computed shard by shard on the cluster.

    A thin layer over :func:`map_shards`; see there for the parameters.
    """
    for _, results in map_shards(
        client,
        func,
        shards_of(paths, shard_size),
        on_failure=on_failure,
        shared=shared,
        max_in_flight=max_in_flight,
        retries=retries,
    ):
        yield from results


# --------------------------------------------------------------------------
# Scores that do not depend on how inputs are grouped
# --------------------------------------------------------------------------
# --------------------------------------------------------------------------
# Feature extraction shards (``specdetect features --cluster``)
# --------------------------------------------------------------------------
def feature_shard(paths: list[str], config: Any, frames: int = 0) -> list:
    """Feature results of one shard, computed inline on a worker (CPU, numpy engine).

    Pure function of its inputs; the numbers equal a single-process run's.
    """
    from specdetect.pipeline import extract_features

    return list(extract_features(paths, config, workers=1, device="cpu", frames=frames))


def feature_shard_failure(path: str, exc: BaseException):
    """The error result for a path whose shard could not be computed."""
    from specdetect.pipeline import FeatureResult

    return FeatureResult(path, "image", None, f"{path}: {describe_failure(exc)}")


def describe_failure(exc: BaseException) -> str:
    """One-line cause for an input whose task failed on the cluster."""
    if type(exc).__name__ == "KilledWorker":
        return "the worker process died while reading this input (crash or out of memory)"
    return f"internal error while processing this input ({_one_line(exc)})"


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------
_END = object()


def _identity(value: T) -> T:
    return value


def _n_workers(client: Any) -> int:
    try:
        client.wait_for_workers(1, timeout=60)
    except TimeoutError:
        raise BackendError("the Dask cluster has no workers (waited 60 s)") from None
    return len(client.scheduler_info(n_workers=-1).get("workers", {})) or 1


def _results_or_rescue(client, distributed, future, func, items, shared, retries, on_failure):
    """The future's results; if it failed, re-run its items one by one."""
    try:
        return _result(future)
    except BackendError:
        raise
    except Exception as exc:  # the task raised, or killed its workers too often
        failure = exc
    if len(items) == 1:
        return [on_failure(items[0], failure)]
    logging.getLogger(__name__).warning(
        "a shard of %d inputs failed (%s); re-running them one by one",
        len(items),
        _one_line(failure),
    )
    # One at a time: a worker that dies then runs no other rescued input, so Dask
    # cannot blame an innocent input for it. A failure is confirmed by a second run.
    results = []
    for item in items:
        for attempt in range(2):
            single = client.submit(func, [item], retries=retries, pure=False, **shared)
            try:
                results.extend(_result(single))
                break
            except BackendError:
                raise
            except Exception as exc:
                if attempt == 1:
                    results.append(on_failure(item, exc))
    return results


def _result(future):
    """``future.result()``, waiting through lost-and-recomputed states.

    Raises BackendError when the future was cancelled (the client lost its
    scheduler): that is no property of the inputs, and must stop the run.
    """
    from concurrent.futures import CancelledError

    try:
        return future.result()
    except CancelledError as exc:
        raise BackendError(f"the Dask task was cancelled ({_one_line(exc)})") from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
