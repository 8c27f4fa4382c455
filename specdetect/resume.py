"""Resumable result files: ``specdetect scan --resume RESULTS.jsonl``.

The file holds one JSON object per line, one line per input: the scan record
(``{"path", "kind", "score", "label", ...}``) or the error record
(``{"path", "error"}``). A run appends the lines of each finished shard with a
single ``write`` followed by ``fsync``, so a run killed at any moment (SIGKILL,
power loss after the sync) loses at most the shards still in flight, and a
later run with the same file skips every input already recorded.

Rules when reading an existing file:

* An input whose path has a line is done, **errors included**: an unreadable
  file stays unreadable on a retry, and re-reading it would only repeat the
  error. Delete its line (or the file) to retry it.
* A torn last line (no final newline: the process died inside a write) is
  dropped with a warning and cut off the file before anything is appended.
  A line in the middle that does not parse is skipped with a warning.
* The same path recorded twice: the first line wins.

Memory: the only per-path state is a compact index of the lines already in the
file, 20 bytes per line (a 64-bit hash of the path, the line's offset and
length, in NumPy arrays): 20 MB for a million inputs. A lookup reads the line
back from the file to compare the path itself, so a hash collision can never
skip an input. Nothing is kept per path for the lines a run appends.

The file is locked while a run uses it, so two runs cannot interleave their
lines; a second run is refused with a message naming the first one's PID. The
lock is held by the process that opened the file and by no other: the
decoding workers it forks do not inherit it (nor the open file), so a run
killed by any means (SIGKILL, OOM) never blocks the next one.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import struct
import sys
import threading
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "ResultStore",
    "ResumeError",
    "ShardPlan",
    "plan_shards",
    "record_problem",
    "resumed_records",
]


class ResumeError(Exception):
    """The result file cannot be used (locked by another run, not writable, ...)."""


def path_hash(path: str) -> int:
    """64-bit hash of a path (non-UTF-8 names included, via surrogateescape)."""
    data = path.encode("utf-8", "surrogateescape")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


class ResultStore:
    """An append-only JSON-lines file of per-input records.

    Parameters
    ----------
    path : str or PathLike
        Created if missing.
    warn : callable, optional
        Receives one-line warnings (torn or unreadable lines). Default: ignore.
    check : callable, optional
        ``check(record)`` returns why a parsed line is not a valid record, or
        None. A line it refuses is warned about and ignored like a torn one:
        its input is computed again. ``specdetect scan`` passes
        :func:`record_problem`, the scan record schema. Default: any JSON
        object with a string ``path``.

    Examples
    --------
    >>> import tempfile, os
    >>> target = os.path.join(tempfile.mkdtemp(), "r.jsonl")
    >>> with ResultStore(target) as store:
    ...     store.append([{"path": "a.png", "score": 0.5}])
    >>> with ResultStore(target) as store:
    ...     (len(store), store.get("a.png"), store.get("b.png"))
    (1, {'path': 'a.png', 'score': 0.5}, None)
    """

    def __init__(
        self,
        path: str | os.PathLike,
        warn: Callable[[str], None] | None = None,
        check: Callable[[dict], str | None] | None = None,
    ):
        self.path = os.fspath(path)
        self._warn = warn or (lambda message: None)
        self._check = check
        self._fd = -1
        self._open_and_lock()
        try:
            self._load_index()
        except BaseException:
            self.close()
            raise

    # ---------------------------------------------------------------- reading
    def __len__(self) -> int:
        return len(self._hashes)

    def __contains__(self, path: str) -> bool:
        return self.get(path) is not None

    def get(self, path: str) -> dict | None:
        """The record stored for ``path`` before this run opened the file, or None."""
        return self.get_many([path])[0]

    def get_many(self, paths: list[str]) -> list[dict | None]:
        """:meth:`get` for a list of paths (one vectorized index search)."""
        if not len(self._hashes):
            return [None] * len(paths)
        keys = np.fromiter((path_hash(p) for p in paths), dtype=np.uint64, count=len(paths))
        starts = np.searchsorted(self._hashes, keys, side="left")
        stops = np.searchsorted(self._hashes, keys, side="right")
        return [
            self._read_matching(path, int(lo), int(hi))
            for path, lo, hi in zip(paths, starts, stops, strict=True)
        ]

    def _read_matching(self, path: str, lo: int, hi: int) -> dict | None:
        for i in range(lo, hi):  # usually zero or one candidate
            line = os.pread(self._fd, int(self._lengths[i]), int(self._offsets[i]))
            record = json.loads(line)
            if record.get("path") == path:
                return record
        return None

    # ---------------------------------------------------------------- writing
    def append(self, records: Iterable[dict]) -> None:
        """Append records as lines, in one write, then flush them to disk (fsync)."""
        data = "".join(json.dumps(r, ensure_ascii=True) + "\n" for r in records).encode("ascii")
        view = memoryview(data)
        while view:  # os.write may write less than asked (signals, quotas)
            written = os.write(self._fd, view)
            view = view[written:]
        if data:
            os.fsync(self._fd)

    def close(self) -> None:
        with _STORES_LOCK:  # no other store of this file may open in between
            if self._fd >= 0:
                if _STORES.get(self._key) is self:
                    del _STORES[self._key]
                os.close(self._fd)  # also releases the lock
                self._fd = -1

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -------------------------------------------------------------- internals
    def _open_and_lock(self) -> None:
        """Open the file and lock it, or raise ResumeError; see the notes at _lock_file."""
        with _STORES_LOCK:
            # Refuse a second store of an open file before opening it: closing
            # that second descriptor would release the first store's lock.
            try:
                known = os.stat(self.path)
            except OSError:
                known = None  # created below, or refused by the open
            if known is not None and (known.st_dev, known.st_ino) in _STORES:
                raise ResumeError(
                    f"{self.path}: in use by another ResultStore of this process "
                    f"(PID {os.getpid()})"
                )
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            except OSError as exc:
                raise ResumeError(f"{self.path}: cannot open ({exc.strerror})") from None
            try:
                _lock_file(fd, self.path)
                opened = os.fstat(fd)
            except BaseException:
                os.close(fd)
                raise
            self._fd, self._key = fd, (opened.st_dev, opened.st_ino)
            _STORES[self._key] = self

    def _load_index(self) -> None:
        hashes, offsets, lengths = array("Q"), array("q"), array("I")
        offset = 0
        with open(self._fd, "rb", closefd=False) as handle:
            handle.seek(0)
            for number, line in enumerate(handle, start=1):
                if not line.endswith(b"\n"):
                    self._warn(
                        f"{self.path}: line {number} is incomplete (a run was killed while "
                        "writing it); dropping it, its inputs will be scanned again"
                    )
                    os.ftruncate(self._fd, offset)
                    break
                path, problem = _record_path(line, self._check)
                if path is None:
                    self._warn(
                        f"{self.path}: line {number} is not a valid result record ({problem}); "
                        "ignoring it, its input will be scanned again"
                    )
                else:
                    hashes.append(path_hash(path))
                    offsets.append(offset)
                    lengths.append(len(line))
                offset += len(line)
        order = np.argsort(np.frombuffer(hashes, dtype=np.uint64), kind="stable")
        self._hashes = np.frombuffer(hashes, dtype=np.uint64)[order]
        self._offsets = np.frombuffer(offsets, dtype=np.int64)[order]
        self._lengths = np.frombuffer(lengths, dtype=np.uint32)[order]


# ---------------------------------------------------------------------------
# The lock: one run per file, held by the process that opened it
# ---------------------------------------------------------------------------
# Why a POSIX record lock (fcntl F_SETLK) and not flock: a scan forks its
# decoding workers while the file is open. A flock lock belongs to the open
# file description, which fork shares, so workers that outlived a killed scan
# kept it and blocked every later run. A record lock belongs to the process:
# fork does not pass it on, and it goes with the process, whatever kills it.
# F_GETLK also names the holder, for the error message.
# Its catches: the record locks of one process never conflict with each
# other, and closing *any* descriptor of the file drops them. Hence the
# registry _STORES (a second store of an open file is refused before it opens
# the file), and the rule: a store reads through its own descriptor, never
# open(self.path).
# Forked children also get their copy of the descriptor closed at once
# (os.register_at_fork), so that no worker holds the file at all; exec'd
# programs never see it (Python opens descriptors non-inheritable, O_CLOEXEC).

#: The stores open in this process, by file identity (st_dev, st_ino).
_STORES: dict[tuple[int, int], ResultStore] = {}
_STORES_LOCK = threading.Lock()

#: ``struct flock`` per platform: format, and the order of the fields
#: l_type, l_whence, l_start, l_len, l_pid in it. Elsewhere the error message
#: goes without the holder's PID.
_FLOCK_LAYOUTS = {
    "linux": ("hhqqi4x", ("type", "whence", "start", "len", "pid")),
    "darwin": ("qqihh", ("start", "len", "pid", "type", "whence")),
}


def _lock_file(fd: int, path: str) -> None:
    """Lock the whole file for writing, without waiting, or raise ResumeError."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return
    holder = None
    for _ in range(3):  # the holder may let go between our two calls
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # start 0, length 0: all bytes
            return
        except OSError as exc:
            if exc.errno not in (errno.EACCES, errno.EAGAIN):
                raise ResumeError(f"{path}: cannot lock ({exc.strerror})") from None
        holder = _lock_holder(fd)
        if holder != 0:
            break
    by = f" (PID {holder})" if holder else ""
    raise ResumeError(f"{path}: in use by another specdetect run{by}")


def _lock_holder(fd: int) -> int | None:
    """PID of a process whose lock blocks ours; 0 if there is none now; None if unknown."""
    import fcntl

    layout = _FLOCK_LAYOUTS.get(sys.platform)
    if layout is None:
        return None
    fmt, fields = layout
    query = {"type": fcntl.F_WRLCK, "whence": os.SEEK_SET, "start": 0, "len": 0, "pid": 0}
    try:
        reply = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack(fmt, *(query[f] for f in fields)))
    except OSError:
        return None
    lock = dict(zip(fields, struct.unpack(fmt, reply), strict=True))
    if lock["type"] == fcntl.F_UNLCK:
        return 0
    return lock["pid"] if lock["pid"] > 0 else None  # 0: a process of another PID namespace


def _close_stores_in_child() -> None:
    """In a forked child: close the stores' descriptors (the locks stay with the parent)."""
    global _STORES_LOCK
    _STORES_LOCK = threading.Lock()  # another thread of the parent may have held it
    for store in list(_STORES.values()):
        try:
            os.close(store._fd)
        except OSError:
            pass
        store._fd = -1
    _STORES.clear()


if hasattr(os, "register_at_fork"):  # pragma: no branch - POSIX
    os.register_at_fork(after_in_child=_close_stores_in_child)


def _record_path(
    line: bytes, check: Callable[[dict], str | None] | None = None
) -> tuple[str | None, str]:
    """The path of a valid record line, or None and why the line is not one."""
    try:
        record = json.loads(line)
    except ValueError:
        return None, "not JSON"
    path = record.get("path") if isinstance(record, dict) else None
    if not isinstance(path, str):
        return None, "no path"
    problem = check(record) if check is not None else None
    return (None, problem) if problem else (path, "")


# ---------------------------------------------------------------------------
# The scan record schema
# ---------------------------------------------------------------------------
#: What a line of a scan's result file may hold: an image record, a video
#: record (an image record plus the per-frame fields), or an error record.
RECORD_KINDS = ("image", "video")
LABELS = ("real", "fake")
IMAGE_FIELDS = frozenset({"path", "kind", "score", "label"})
VIDEO_FIELDS = IMAGE_FIELDS | {"frames", "fraction_fake", "frame_indices", "frame_scores"}
ERROR_FIELDS = frozenset({"path", "error"})


def record_problem(record: dict) -> str | None:
    """Why ``record`` is not a valid scan record, or None if it is one.

    A valid record is exactly one of (no other fields):

    * ``{"path": str, "error": str}``;
    * ``{"path": str, "kind": "image", "score": float, "label": "real" | "fake"}``
      with the score finite and in [0, 1];
    * the same with ``"kind": "video"`` and ``"frames"`` (int >= 0),
      ``"fraction_fake"`` (in [0, 1]), ``"frame_indices"`` (``frames`` ints >= 0)
      and ``"frame_scores"`` (``frames`` scores in [0, 1]).

    Examples
    --------
    >>> record_problem({"path": "a.png", "kind": "image", "score": 0.2, "label": "real"})
    >>> record_problem({"path": "a.png", "kind": "image", "score": "0.2", "label": "real"})
    'score is not a number in [0, 1]'
    """
    if not isinstance(record, dict) or not isinstance(record.get("path"), str):
        return "no path"
    fields = set(record)
    if "error" in record:
        if fields != ERROR_FIELDS:
            return _field_problem(fields, ERROR_FIELDS)
        return None if isinstance(record["error"], str) else "error is not text"
    kind = record.get("kind")
    if kind is None:
        return _field_problem(fields, IMAGE_FIELDS)
    if kind not in RECORD_KINDS:
        return f"kind is not one of {', '.join(RECORD_KINDS)}"
    expected = VIDEO_FIELDS if kind == "video" else IMAGE_FIELDS
    if fields != expected:
        return _field_problem(fields, expected)
    if not _is_probability(record["score"]):
        return "score is not a number in [0, 1]"
    if record["label"] not in LABELS:
        return "label is not real or fake"
    if kind == "video":
        frames = record["frames"]
        if not _is_count(frames):
            return "frames is not a count"
        if not _is_probability(record["fraction_fake"]):
            return "fraction_fake is not a number in [0, 1]"
        indices, scores = record["frame_indices"], record["frame_scores"]
        if not (isinstance(indices, list) and len(indices) == frames):
            return "frame_indices is not a list of one number per frame"
        if not all(_is_count(i) for i in indices):
            return "frame_indices holds something else than frame numbers"
        if not (isinstance(scores, list) and len(scores) == frames):
            return "frame_scores is not a list of one score per frame"
        if not all(_is_probability(v) for v in scores):
            return "frame_scores holds something else than numbers in [0, 1]"
    return None


def _field_problem(fields: set[str], expected: frozenset[str]) -> str:
    missing, extra = sorted(expected - fields), sorted(fields - expected)
    parts = [f"missing {', '.join(missing)}"] if missing else []
    parts += [f"unexpected {', '.join(extra)}"] if extra else []
    return "; ".join(parts)


def _is_probability(value) -> bool:
    # bool is an int in Python, not a score; NaN fails both comparisons.
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# ---------------------------------------------------------------------------
# Merging stored and new records, shard by shard
# ---------------------------------------------------------------------------
@dataclass
class ShardPlan:
    """One shard of inputs: which are already recorded, which remain to compute.

    Attributes
    ----------
    paths : list of str
        The shard's inputs, in input order.
    previous : dict
        Position in ``paths`` -> record found in the result file.
    """

    paths: list[str]
    previous: dict[int, dict] = field(default_factory=dict)

    @property
    def todo(self) -> list[str]:
        """Inputs without a stored record, in order."""
        return [p for i, p in enumerate(self.paths) if i not in self.previous]

    def merge(self, new: list[dict]) -> list[dict]:
        """All the shard's records in input order, given the new ones for ``todo``."""
        fresh = iter(new)
        merged = [
            self.previous[i] if i in self.previous else next(fresh) for i in range(len(self.paths))
        ]
        if next(fresh, None) is not None:
            raise ValueError("more new records than inputs to compute")
        return merged


def plan_shards(paths: Iterable[str], store: ResultStore, shard_size: int) -> Iterator[ShardPlan]:
    """Cut ``paths`` into shards and look each input up in ``store``, lazily."""
    from specdetect.distributed import shards_of  # plain Python; no Dask import

    for shard in shards_of(paths, shard_size):
        found = store.get_many(shard)
        previous = {i: record for i, record in enumerate(found) if record is not None}
        yield ShardPlan(shard, previous)


def resumed_records(
    paths: Iterable[str],
    store: ResultStore,
    compute: Callable[
        [Iterable[ShardPlan], Callable[[ShardPlan, list[dict]], None]],
        Iterator[tuple[ShardPlan, list[dict]]],
    ],
    shard_size: int,
) -> Iterator[dict]:
    """Every input's record, in input order, computing only what ``store`` lacks.

    Parameters
    ----------
    paths : iterable of str
        All inputs (read lazily).
    store : ResultStore
        Receives the new records of each shard as soon as it is computed.
    compute : callable
        ``compute(plans, on_done)`` yields ``(plan, new_records)`` in plan
        order, where ``new_records`` are the records of ``plan.todo``; it calls
        ``on_done(plan, new_records)`` as each shard finishes (in any order).
    shard_size : int
        Inputs per shard.
    """

    def on_done(plan: ShardPlan, new: list[dict]) -> None:
        store.append(new)

    for plan, new in compute(plan_shards(paths, store, shard_size), on_done):
        yield from plan.merge(new)


def sequential_compute(
    run: Callable[[list[str]], Iterable[dict]],
) -> Callable[..., Iterator[tuple[ShardPlan, list[dict]]]]:
    """A ``compute`` for :func:`resumed_records` that runs shards one after another.

    ``run(paths)`` returns one record per path, in order (for example
    ``scan.scan_records`` with its options bound).
    """

    def compute(plans, on_done):
        for plan in plans:
            todo = plan.todo
            new = list(run(todo)) if todo else []
            on_done(plan, new)
            yield plan, new

    return compute
