"""Stop signals (SIGTERM, SIGINT) as an exception in the main thread.

SIGTERM's default action ends the process on the spot: no ``finally`` block
runs, so a report being written leaves its temporary file behind. Once
:func:`raise_on_stop_signals` is called (the command line does it), SIGTERM
and SIGINT both raise :class:`Interrupted`, a :class:`KeyboardInterrupt`, in
the main thread, and the cleanup written for Ctrl-C runs for both.

An exception raised by a signal handler can land anywhere, and two places
need care:

* code that must not be cut in half, such as starting worker processes (an
  executor that forked a worker but was interrupted before recording it
  never stops that worker, and waits for it at exit): :func:`deferred_stop`
  holds the exception back until the block ends;
* code where Python drops exceptions (at-fork hooks, ``__del__``, weakref
  callbacks print "Exception ignored" and carry on): the stop would be lost
  and the command would run to its end, so such an :class:`Interrupted` is
  delivered again, at the next opportunity.

A forked child (a pool worker) inherits the handler until it sets its own,
and with it the parent's state: inside :func:`deferred_stop` it would hold a
stop signal back for good and live on, and a pool that waits for its workers
would wait forever. So in any process but the one that installed it, the
handler gives the signal its default action: the child ends as if it had
never had the handler.
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = [
    "STOP_SIGNALS",
    "Interrupted",
    "deferred_stop",
    "raise_on_stop_signals",
    "stop_signal_received",
]

#: The signals that stop a command through :class:`Interrupted`.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(KeyboardInterrupt):
    """A stop signal arrived; ``signum`` says which."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


#: Seconds before an :class:`Interrupted` that Python dropped is raised again.
_REDELIVERY_DELAY = 0.01

_received: list[int] = []  # every stop signal handled, in order
_depth = 0  # nesting of deferred_stop blocks in the main thread
_held: int | None = None  # a signal that arrived inside one, not raised yet
_owner_pid: int | None = None  # the process that installed the handler


def raise_on_stop_signals() -> Callable[[], None]:
    """Make SIGTERM and SIGINT raise :class:`Interrupted`; returns the undo function.

    Call from the main thread. A signal ignored when the program started
    (``nohup``, a background job of a shell script) stays ignored, as Python
    itself does for SIGINT.
    """
    global _owner_pid
    _owner_pid = os.getpid()
    previous: dict[int, Any] = {}
    for signum in STOP_SIGNALS:
        handler = signal.getsignal(signum)
        if handler is not signal.SIG_IGN:
            previous[signum] = handler
            signal.signal(signum, _on_stop_signal)
    previous_hook = sys.unraisablehook

    def redeliver(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, Interrupted):
            # Flag the signal again from another thread, a moment later: flagged
            # from here, its handler would run before the main thread has left
            # the spot that drops exceptions, and be lost again.
            again = threading.Timer(
                _REDELIVERY_DELAY, _thread.interrupt_main, args=(unraisable.exc_value.signum,)
            )
            again.daemon = True
            again.start()
        else:
            previous_hook(unraisable)

    sys.unraisablehook = redeliver

    def restore() -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if sys.unraisablehook is redeliver:
            sys.unraisablehook = previous_hook

    return restore


def stop_signal_received() -> int | None:
    """The first stop signal handled by :func:`raise_on_stop_signals`'s handler, or None."""
    return _received[0] if _received else None


@contextmanager
def deferred_stop() -> Iterator[None]:
    """Hold :class:`Interrupted` back until the block ends, then raise it.

    Only the main thread is affected (signal handlers run there alone); in
    other threads this does nothing. Blocks nest.
    """
    global _depth, _held
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _held is not None:
            signum, _held = _held, None
            raise Interrupted(signum)  # the stop wins over an exception in flight


def _on_stop_signal(signum: int, frame: Any) -> None:
    global _held
    if os.getpid() != _owner_pid:  # a forked child that has not set its own handler yet
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    _received.append(signum)
    if _depth > 0:
        if _held is None:
            _held = signum
        return
    raise Interrupted(signum)
