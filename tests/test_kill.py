"""A scan killed by any signal leaves no worker behind and never blocks the next run.

Issue 13: after ``kill -9`` of a ``--resume`` scan, its decoding workers lived
on (re-parented to init), holding the result file and its lock, and the rerun
failed with "in use by another specdetect run". These tests kill real scans
in subprocesses and look at what is left through ``/proc``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter

import pytest
from scale_fixtures import shared_model, write_images

from specdetect import _workers
from specdetect.resume import ResultStore, ResumeError

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="looks at processes through /proc"
)

N_IMAGES = 300
SHARD = 100
#: The issue's acceptance: no worker of a killed run is alive 2 s after the kill.
GRACE = 2.0


# --------------------------------------------------------------------------
# /proc helpers
# --------------------------------------------------------------------------
def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read().decode()
    except OSError:
        return None
    return data[data.rindex(")") + 2 :].split()  # the name may hold spaces and ")"


def children_of(pid: int) -> dict[int, str]:
    """Live children of ``pid``: child pid -> start time (to tell a reused pid apart)."""
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields and int(fields[1]) == pid and fields[0] != "Z":
                found[int(entry)] = fields[19]
    return found


def alive(processes: dict[int, str]) -> list[int]:
    """Those of ``processes`` still running (zombies count as dead)."""
    running = []
    for pid, start in processes.items():
        fields = _stat(pid)
        if fields and fields[0] != "Z" and fields[19] == start:
            running.append(pid)
    return running


def holders(path) -> list[int]:
    """Processes with ``path`` open."""
    target = os.path.realpath(path)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{entry}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{entry}/fd/{fd}") == target:
                    found.append(int(entry))
                    break
            except OSError:
                continue
    return found


def wait_until(condition, timeout: float) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# --------------------------------------------------------------------------
# Killing real scans
# --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    paths = write_images(root / "images", N_IMAGES, size=32)
    return root, shared_model(tmp_path_factory), paths


def scan_cmd(root, model, results, *extra) -> list[str]:
    return [
        sys.executable, "-m", "specdetect", "scan", str(root / "images"), "--model", model,
        "--format", "json", "--workers", "2", "--resume", str(results),
        "--shard-size", str(SHARD), "--exit-zero", *extra,
    ]  # fmt: skip


def n_lines(path) -> int:
    try:
        with open(path, "rb") as handle:
            return handle.read().count(b"\n")
    except FileNotFoundError:
        return 0


def default_stop_signals() -> None:
    """Give the child the default SIGINT and SIGTERM dispositions.

    A background job of a non-interactive shell (``.ci/run &``) starts with
    SIGINT ignored, and the scan, like any program, keeps an ignored signal
    ignored: these tests are about a scan that can be stopped.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start_and_wait_for_first_shard(cmd, stderr) -> tuple[subprocess.Popen, dict[int, str]]:
    """Start a scan; return once a shard is on disk and the next shard's workers run."""
    results = cmd[cmd.index("--resume") + 1]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=True,
        preexec_fn=default_stop_signals,
    )
    workers: dict[int, str] = {}

    def ready() -> bool:
        assert proc.poll() is None, "the scan ended before it could be killed"
        workers.update(children_of(proc.pid))
        return SHARD <= n_lines(results) < N_IMAGES and bool(alive(workers))

    assert wait_until(ready, timeout=120)
    return proc, workers


def check_rerun(corpus, results, tmp_path) -> None:
    """The same command again: it finishes, and every input is in the file exactly once."""
    root, model, paths = corpus
    report = tmp_path / "final.json"
    done = subprocess.run(
        scan_cmd(root, model, results, "-o", str(report)), capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    with open(results, "rb") as handle:
        data = handle.read()
    assert data.endswith(b"\n")
    records = [json.loads(line) for line in data.splitlines()]
    counts = Counter(r["path"] for r in records)
    assert sorted(counts) == sorted(paths) and set(counts.values()) == {1}
    # No input was blamed for the kill: every one of these images is readable.
    assert not [r for r in records if "error" in r]
    final = json.loads(report.read_text())
    assert len(final["results"]) == N_IMAGES and not final["errors"]


def test_sigkill_leaves_no_worker_and_the_rerun_finishes(corpus, tmp_path):
    """The issue's scenario: kill -9 after the first shard, rerun the same command."""
    root, model, _ = corpus
    results = tmp_path / "R.jsonl"
    with open(tmp_path / "stderr.txt", "wb") as log:
        proc, workers = start_and_wait_for_first_shard(scan_cmd(root, model, results), log)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert wait_until(lambda: not alive(workers), GRACE), f"workers still alive: {alive(workers)}"
    assert wait_until(lambda: not holders(results), GRACE), f"held by {holders(results)}"
    assert SHARD <= n_lines(results) < N_IMAGES
    with ResultStore(results):  # the lock went with the killed scan
        pass
    check_rerun(corpus, results, tmp_path)


@pytest.mark.parametrize(
    "signum, group",
    [
        (signal.SIGTERM, False),  # kill PID, docker stop, a CI job timeout
        (signal.SIGTERM, True),  # a service manager stopping the whole group
        (signal.SIGINT, True),  # Ctrl-C: the terminal signals the whole group
    ],
    ids=["sigterm", "sigterm-group", "sigint-group"],
)
def test_stop_signal_exits_2_without_half_report(corpus, tmp_path, signum, group):
    root, model, _ = corpus
    results, report = tmp_path / "R.jsonl", tmp_path / "report.json"
    stderr_path = tmp_path / "stderr.txt"
    with open(stderr_path, "wb") as log:
        cmd = scan_cmd(root, model, results, "-o", str(report))
        proc, workers = start_and_wait_for_first_shard(cmd, log)
        if group:
            os.killpg(proc.pid, signum)
        else:
            os.kill(proc.pid, signum)
        proc.wait(timeout=60)
    stderr = stderr_path.read_text()
    assert proc.returncode == 2, stderr
    assert "interrupted: the scan is incomplete" in stderr
    assert "Traceback" not in stderr
    # The report is complete or absent, and no temporary file is left beside it.
    if report.exists():
        assert len(json.loads(report.read_text())["results"]) == N_IMAGES
    assert sorted(os.listdir(tmp_path)) == sorted(
        name for name in ("R.jsonl", "report.json", "stderr.txt") if (tmp_path / name).exists()
    )
    assert wait_until(lambda: not alive(workers), GRACE), f"workers still alive: {alive(workers)}"
    assert not holders(results)
    assert SHARD <= n_lines(results) < N_IMAGES
    check_rerun(corpus, results, tmp_path)


# --------------------------------------------------------------------------
# The worker pool on its own
# --------------------------------------------------------------------------
POOL_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    from specdetect import _workers

    if sys.argv[1] == "watchdog-only":  # as on a system without a parent-death signal
        _workers._request_parent_death_signal = lambda: False

    def whoami():
        time.sleep(0.3)  # keeps this worker busy, so that the other takes the next task
        return os.getpid()

    pool = _workers.worker_pool(2)
    pids = set()
    while len(pids) < 2:
        pids |= {f.result() for f in [pool.submit(whoami) for _ in range(2)]}
    print(*sorted(pids), flush=True)
    time.sleep(600)
    """
)


@pytest.mark.parametrize("mode", ["default", "watchdog-only"])
def test_pool_worker_dies_with_its_sigkilled_parent(mode):
    parent = subprocess.Popen(
        [sys.executable, "-c", POOL_SCRIPT, mode], stdout=subprocess.PIPE, text=True
    )
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2
        workers = {pid: _stat(pid)[19] for pid in pids}
        assert set(workers) <= set(children_of(parent.pid))
        for pid in pids:  # Ctrl-C is for the parent alone
            with open(f"/proc/{pid}/status") as handle:
                ignored = next(
                    int(line.split()[1], 16) for line in handle if line.startswith("SigIgn")
                )
            assert ignored & (1 << (signal.SIGINT - 1))
    finally:
        parent.kill()
        parent.wait()
    assert wait_until(lambda: not alive(workers), GRACE), f"workers still alive: {alive(workers)}"


def _tie_and_exit(parent_pid: int) -> None:
    _workers.tie_to_parent(parent_pid)
    os._exit(0)


@pytest.mark.parametrize("expected_parent, code", [("real", 0), ("gone", _workers.ORPHAN_EXIT)])
def test_tie_to_parent_exits_when_the_parent_is_already_gone(expected_parent, code):
    """The re-check after the parent-death request: a parent that died before it took effect."""
    parent_pid = os.getpid() if expected_parent == "real" else -1  # -1: never anyone's parent
    child = multiprocessing.get_context("fork").Process(target=_tie_and_exit, args=(parent_pid,))
    child.start()
    child.join(timeout=30)
    assert child.exitcode == code


# --------------------------------------------------------------------------
# The lock of a result file
# --------------------------------------------------------------------------
HOLD_SCRIPT = textwrap.dedent(
    """
    import sys
    from specdetect.resume import ResultStore

    with ResultStore(sys.argv[1]):
        print("ready", flush=True)
        sys.stdin.read()
    """
)


def test_live_run_blocks_a_second_one_and_names_its_pid(tmp_path):
    path = tmp_path / "R.jsonl"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_SCRIPT, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "ready\n"
        with pytest.raises(
            ResumeError, match=rf"in use by another specdetect run \(PID {holder.pid}\)"
        ):
            ResultStore(path)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    with ResultStore(path):  # free once the holder has ended
        pass


def test_second_store_in_one_process_is_refused_and_keeps_the_first_lock(tmp_path):
    """A record lock drops when any descriptor of the file closes: the refusal must not open one."""
    path = tmp_path / "R.jsonl"
    with ResultStore(path) as store:
        with pytest.raises(ResumeError, match="in use by another ResultStore of this process"):
            ResultStore(path)
        other = subprocess.run(
            [sys.executable, "-c", HOLD_SCRIPT, str(path)], capture_output=True, text=True
        )
        assert other.returncode != 0
        assert f"in use by another specdetect run (PID {os.getpid()})" in other.stderr
        store.append([{"path": "a", "score": 0.5}])
    with ResultStore(path) as store:
        assert len(store) == 1


def _report_descriptor(fd: int, path: str, conn, release) -> None:
    try:  # the number may have been reused for another file since
        still_open = os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        still_open = False
    conn.send("open" if still_open else "closed")
    release.wait(30)


def test_forked_child_holds_neither_the_file_nor_its_lock(tmp_path):
    path = tmp_path / "R.jsonl"
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    release = context.Event()
    store = ResultStore(path)
    child = context.Process(target=_report_descriptor, args=(store._fd, str(path), send, release))
    child.start()
    try:
        assert receive.recv() == "closed"
        assert child.pid not in holders(path)
        store.close()
        # With the lock shared through fork (flock), the live child would keep it.
        with ResultStore(path):
            pass
    finally:
        release.set()
        child.join(timeout=30)
    assert child.exitcode == 0


# --------------------------------------------------------------------------
# Stop signals as an exception
# --------------------------------------------------------------------------
SIGNALS_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    from specdetect._signals import Interrupted, deferred_stop, raise_on_stop_signals

    raise_on_stop_signals()

    def stop():
        os.kill(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + 0.2
        while time.monotonic() < deadline:  # the handler runs in this loop
            pass

    class Dropper:
        def __del__(self):  # Python prints and drops what a __del__ raises
            stop()

    try:
        if sys.argv[1] == "deferred":
            with deferred_stop():
                stop()
                print("block finished", flush=True)
        else:
            Dropper()  # collected at once
            print("carried on", flush=True)
        for _ in range(500):
            time.sleep(0.01)
    except Interrupted as exc:
        print("interrupted by", signal.Signals(exc.signum).name, flush=True)
    """
)


@pytest.mark.parametrize(
    "mode, first_line", [("deferred", "block finished"), ("dropped", "carried on")]
)
def test_stop_signal_is_raised_after_a_deferred_block_or_a_dropping_spot(mode, first_line):
    proc = subprocess.run(
        [sys.executable, "-c", SIGNALS_SCRIPT, mode], capture_output=True, text=True, timeout=60
    )
    assert proc.stdout.splitlines() == [first_line, "interrupted by SIGTERM"], proc.stderr
    assert "Exception ignored" not in proc.stderr


FORK_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    from specdetect._signals import Interrupted, deferred_stop, raise_on_stop_signals

    raise_on_stop_signals()
    with deferred_stop():  # as a pool's submit forks its workers
        pid = os.fork()
        if pid == 0:  # a worker before its initializer: it still has our handler
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.5)
                os._exit(0)  # lived on: it held the signal back
            except BaseException:
                os._exit(1)  # raised in the child
    _, status = os.waitpid(pid, 0)
    print(os.WTERMSIG(status) if os.WIFSIGNALED(status) else -os.WEXITSTATUS(status))
    """
)


def test_forked_child_gets_the_default_action_of_a_stop_signal():
    # A group SIGTERM, or the pool's own terminate(), that lands in a worker
    # between fork and its initializer once made the worker hold the signal
    # back (it inherited the parent's deferred_stop depth) and live on, and
    # the parent then waited for it forever.
    proc = subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert proc.stdout.split() == [str(int(signal.SIGTERM))], proc.stderr
