"""Worker processes that never outlive the process that started them.

Every process pool in specdetect comes from :func:`worker_pool`. A worker of a
plain :class:`~concurrent.futures.ProcessPoolExecutor` whose parent is killed
(SIGKILL, the OOM killer, a container stop) does not notice: re-parented to
init, it waits forever on its task queue (whose write end it inherited at
fork and keeps open itself), holding memory and every file the parent had
open. Here each worker, before its first task:

* asks Linux to SIGKILL it when its parent dies (``PR_SET_PDEATHSIG``), then
  checks that the parent is still the process that created the pool, which
  closes the race of a parent that died before the request took effect;
* starts a daemon thread that polls ``os.getppid()`` and leaves with
  ``os._exit`` as soon as it changes (the parent died and the worker was
  re-parented): the portable fallback where there is no parent-death signal
  (macOS, the BSDs), and a second line of defence on Linux;
* ignores SIGINT, so that Ctrl-C, which the terminal sends to the whole
  process group, reaches the parent alone: the parent stops the pool itself,
  and a worker's KeyboardInterrupt would otherwise read as a crashed input.
  SIGTERM keeps its default action, because the executor terminates the
  workers of a broken pool with it.

Starting the workers (the first ``submit``) is shielded from the exception
that a stop signal raises in the parent (:func:`specdetect._signals.deferred_stop`):
cut in half, it would leave a worker that the executor does not know of and
waits for at exit.

Linux sends the parent-death signal when the *thread* that forked the worker
ends, so a pool must be created and used by a thread that outlives it (the
main thread, in specdetect).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from specdetect._signals import deferred_stop

__all__ = ["tie_to_parent", "worker_pool"]

#: Seconds between two checks of the fallback watchdog: a worker outlives its
#: parent by at most this long where there is no parent-death signal.
WATCH_INTERVAL = 0.2

#: Exit status of a worker that found its parent gone.
ORPHAN_EXIT = 70

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def worker_pool(
    max_workers: int,
    *,
    start_method: str | None = None,
    initializer: Callable[..., Any] | None = None,
    initargs: tuple = (),
) -> ProcessPoolExecutor:
    """A process pool whose workers die with the process that creates it.

    Parameters
    ----------
    max_workers : int
        Worker processes.
    start_method : {"fork", "spawn"}, optional
        Default: ``fork`` where available, else ``spawn``. ``forkserver`` is
        refused: its workers are children of the fork server, not of this
        process, so there would be no parent to watch.
    initializer : callable, optional
        Run in each worker after it is tied to this process, with ``initargs``.
    initargs : tuple

    Returns
    -------
    ProcessPoolExecutor
    """
    if start_method is None:
        start_method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    if start_method not in ("fork", "spawn"):
        raise ValueError(f"start_method must be fork or spawn, got {start_method!r}")
    return _WorkerPool(
        max_workers=max_workers,
        mp_context=multiprocessing.get_context(start_method),
        initializer=_start_worker,
        initargs=(os.getpid(), initializer, initargs),
    )


class _WorkerPool(ProcessPoolExecutor):
    """A ProcessPoolExecutor whose workers cannot be half started by a stop signal."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any):
        with deferred_stop():  # the first submit forks the workers
            return super().submit(fn, *args, **kwargs)


def tie_to_parent(parent_pid: int, interval: float = WATCH_INTERVAL) -> None:
    """Make the calling process exit as soon as ``parent_pid`` stops being its parent.

    Call it first thing in a child process. Exits at once (``os._exit``) when
    the parent is already gone.

    Parameters
    ----------
    parent_pid : int
        The process that started this one (``os.getpid()`` in the parent).
    interval : float
        Seconds between two checks of the fallback watchdog thread.
    """
    _request_parent_death_signal()
    # The parent may have died between fork and the request above, in which
    # case no signal will ever come: we would already have a new parent.
    if os.getppid() != parent_pid:
        os._exit(ORPHAN_EXIT)
    watchdog = threading.Thread(
        target=_watch_parent, args=(parent_pid, interval), name="specdetect-parent-watch"
    )
    watchdog.daemon = True
    watchdog.start()


def _start_worker(parent_pid: int, initializer: Callable[..., Any] | None, initargs: tuple) -> None:
    tie_to_parent(parent_pid)
    # A forked worker inherits the parent's Python handlers (the CLI turns
    # SIGTERM into an exception); a worker wants neither of them.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if initializer is not None:
        initializer(*initargs)


def _request_parent_death_signal() -> bool:
    """Ask Linux to SIGKILL this process when its parent dies; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        # prctl is variadic and reads its arguments as unsigned longs: pass them as such.
        zero = ctypes.c_ulong(0)
        death_signal = ctypes.c_ulong(signal.SIGKILL)
        return libc.prctl(ctypes.c_int(_PR_SET_PDEATHSIG), death_signal, zero, zero, zero) == 0
    except (OSError, AttributeError):  # no libc symbol table (static builds)
        return False


def _watch_parent(parent_pid: int, interval: float) -> None:
    while os.getppid() == parent_pid:
        time.sleep(interval)
    os._exit(ORPHAN_EXIT)
