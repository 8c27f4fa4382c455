"""File output: atomic for regular files, straight through for devices and pipes.

:func:`atomic_write` writes a regular file (or a new path) through a temporary
file beside it that is renamed over the target only when the block succeeds,
so readers never see half a file. Anything else (a character device such as
``/dev/full`` or ``/dev/stdout``, a named pipe, ``-`` for standard output) is
written straight to, and never replaced: renaming a file over a device node
would destroy the node. Write errors (a full disk, ``ENOSPC`` from
``/dev/full``, a closed pipe) raise :class:`OutputError`, whose message is one
line naming the target.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
import tempfile
from collections.abc import Iterator
from typing import IO

__all__ = ["OutputError", "atomic_write"]


class OutputError(OSError):
    """The output could not be written. ``str(err)`` is one line naming the target."""

    def __str__(self) -> str:
        return f"cannot write {self.filename}: {self.strerror}"


def _output_error(target: str, exc: OSError) -> OutputError:
    if isinstance(exc, OutputError):
        return exc
    reason = exc.strerror or " ".join(str(exc).split()) or type(exc).__name__
    return OutputError(exc.errno, reason, target)


class _OutputFile(io.FileIO):
    """A raw file whose write errors are :class:`OutputError` naming ``target``."""

    def __init__(self, fd: int, target: str):
        super().__init__(fd, "w", closefd=True)
        self.target = target

    def write(self, data) -> int | None:
        try:
            return super().write(data)
        except OSError as exc:
            raise _output_error(self.target, exc) from None


def _wrap(raw: _OutputFile, mode: str) -> IO:
    """The buffered (``"wb"``) or text (``"w"``) layer that :func:`open` would give."""
    buffered = io.BufferedWriter(raw)
    return buffered if "b" in mode else io.TextIOWrapper(buffered)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open ``path`` for writing; a regular file is replaced only if the block succeeds.

    Parameters
    ----------
    path : str or PathLike
        The target. A new path or a regular file is written atomically: a
        temporary file beside it (same folder, so the rename cannot cross
        file systems) is synced and renamed over it at the end; a failed or
        interrupted block (any exception, ``KeyboardInterrupt``,
        ``SystemExit``) removes the temporary file and leaves any previous
        file in place. A symbolic link is kept and its target replaced. A
        character or block device, a named pipe or a socket is opened and
        written straight to (never created, never replaced), and ``"-"``
        means standard output.
    mode : {"wb", "w"}
        Binary or text (locale encoding, like :func:`open`).

    Raises
    ------
    OutputError
        The target cannot be written (a folder, no permission, no space left,
        a closed pipe); ``str(err)`` is one line naming it.

    Examples
    --------
    >>> import tempfile, os
    >>> target = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> with atomic_write(target, "w") as handle:
    ...     _ = handle.write("done")
    >>> open(target).read()
    'done'
    """
    if mode not in ("w", "wb", "wt"):
        raise ValueError(f"atomic_write supports the modes 'w' and 'wb', not {mode!r}")
    target = os.fspath(path)
    if isinstance(target, bytes):
        target = os.fsdecode(target)
    descriptor = _descriptor_of(target)
    if descriptor is not None:
        # "-", /dev/stdout, /dev/fd/N: the descriptor itself, even when it is a
        # redirected regular file (reopening the path would start at offset 0).
        stream = {1: sys.stdout, 2: sys.stderr}.get(descriptor)
        if stream is not None:
            stream.flush()  # what print() already buffered goes first
        try:
            fd = os.dup(descriptor if stream is None else stream.fileno())
        except (AttributeError, OSError, ValueError):  # stdout replaced (a test runner)
            if stream is None:
                raise OutputError(9, "not an open file descriptor", target) from None  # EBADF
            stream = stream if "b" not in mode else stream.buffer
            yield stream
            stream.flush()
            return
        with _direct(fd, "standard output" if target == "-" else target, mode) as handle:
            yield handle
        return
    try:
        info = os.stat(target)  # follows links: /dev/stdout -> /proc/self/fd/1
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise _output_error(target, exc) from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise OutputError(21, "is a directory", target)  # EISDIR, same on every POSIX
    if info is not None and not stat.S_ISREG(info.st_mode):
        try:
            # No O_CREAT: if the node vanished since the stat, fail rather than
            # create a regular file in its place. (A pipe blocks until read.)
            fd = os.open(target, os.O_WRONLY | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            raise _output_error(target, exc) from None
        with _direct(fd, target, mode) as handle:
            yield handle
        return
    # A symbolic link stays a link: the file it points to is replaced.
    real = os.path.realpath(target) if os.path.islink(target) else target
    with _replace(real, target, mode, info) as handle:
        yield handle


def _descriptor_of(target: str) -> int | None:
    """The file descriptor that ``target`` names (``-``, ``/dev/stdout``, ``/dev/fd/3``), if any."""
    if target == "-":
        return 1
    named = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}
    if target in named:
        return named[target]
    for prefix in ("/dev/fd/", "/proc/self/fd/"):
        if target.startswith(prefix) and target[len(prefix) :].isdigit():
            return int(target[len(prefix) :])
    return None


@contextlib.contextmanager
def _direct(fd: int, target: str, mode: str) -> Iterator[IO]:
    """Write straight to an open descriptor (device, pipe); close it at the end."""
    handle = _wrap(_OutputFile(fd, target), mode)
    try:
        yield handle
        handle.flush()
    except BaseException:
        # The buffer may hold what could not be written: closing would try again.
        with contextlib.suppress(OSError, ValueError):
            handle.close()
        raise
    try:
        handle.close()
    except OSError as exc:
        raise _output_error(target, exc) from None


def _current_umask() -> int:
    """The process umask, read without changing it where Linux tells it.

    ``os.umask`` can only be read by setting it, which for a moment would give
    files other threads create (model loading, Dask) a umask of 0.
    """
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0)  # elsewhere: set and restore at once
    os.umask(umask)
    return umask


@contextlib.contextmanager
def _replace(real: str, target: str, mode: str, info: os.stat_result | None) -> Iterator[IO]:
    """Write a temporary file beside ``real`` and rename it over ``real`` on success."""
    folder = os.path.dirname(os.path.abspath(real))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(real), dir=folder)
    except OSError as exc:
        raise _output_error(target, exc) from None
    handle = None
    try:
        if info is not None:
            permissions = stat.S_IMODE(info.st_mode)  # keep the replaced file's mode
        else:
            # mkstemp makes the file private (0600): give it what open() would.
            permissions = 0o666 & ~_current_umask()
        os.chmod(tmp, permissions)
        handle = _wrap(_OutputFile(fd, target), mode)
        yield handle
        try:
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
            os.replace(tmp, real)
        except OSError as exc:
            raise _output_error(target, exc) from None
    except BaseException:
        # Every exit path, signals turned into exceptions included: no
        # temporary file is left behind.
        if handle is not None:
            with contextlib.suppress(OSError, ValueError):
                handle.close()
        else:
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
