"""`scan --resume`: SIGKILL part-way, resume, and get what an uninterrupted run gives."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from scale_fixtures import shared_model, write_images

from specdetect.resume import ResultStore, ShardPlan, resumed_records, sequential_compute

N_IMAGES = 300
SHARD = 10


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    model = shared_model(tmp_path_factory)
    paths = write_images(root / "images", N_IMAGES, size=64)
    (root / "images" / "zz-broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    paths.append(str(root / "images" / "zz-broken.png"))
    return root, model, paths


def scan_cmd(root, model, *extra):
    return [
        sys.executable, "-m", "specdetect", "scan", str(root / "images"), "--model", model,
        "--format", "json", "--workers", "1", *extra,
    ]  # fmt: skip


@pytest.fixture(scope="module")
def uninterrupted(setup):
    root, model, _ = setup
    proc = subprocess.run(scan_cmd(root, model), capture_output=True, timeout=300)
    assert proc.returncode == 2  # one broken input
    return json.loads(proc.stdout)


def read_lines(path) -> list[dict]:
    with open(path, "rb") as handle:
        data = handle.read()
    assert data == b"" or data.endswith(b"\n"), "torn line"
    return [json.loads(line) for line in data.splitlines()]


def test_sigkill_then_resume_equals_uninterrupted_run(setup, uninterrupted, tmp_path):
    root, model, paths = setup
    results = tmp_path / "R.jsonl"
    args = ["--resume", str(results), "--shard-size", str(SHARD)]
    proc = subprocess.Popen(
        scan_cmd(root, model, *args, "-o", str(tmp_path / "first.json")),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # Kill as soon as the first shard is on disk: the others are still to come.
    deadline = time.monotonic() + 120
    while not (results.exists() and results.stat().st_size) and time.monotonic() < deadline:
        assert proc.poll() is None, "the scan ended before it could be killed"
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    partial = read_lines(results)
    # Whole shards only: appends are atomic per shard, and the kill came part-way.
    assert 0 < len(partial) < len(paths)
    assert len(partial) % SHARD == 0
    assert not (tmp_path / "first.json").exists()  # the report is written atomically, at the end

    done = subprocess.run(
        scan_cmd(root, model, *args, "-o", str(tmp_path / "final.json")),
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 2, done.stderr.decode(errors="replace")
    records = read_lines(results)
    counts = Counter(r["path"] for r in records)
    assert sorted(counts) == sorted(paths) and set(counts.values()) == {1}
    assert records[: len(partial)] == partial  # earlier lines untouched
    final = json.loads((tmp_path / "final.json").read_text())
    assert final == uninterrupted
    # The JSONL holds the same records as the report (errors included).
    by_path = {r["path"]: r for r in records}
    for result in uninterrupted["results"]:
        assert by_path[result["path"]] == result
    assert [by_path[e["path"]] for e in uninterrupted["errors"]] == uninterrupted["errors"]


def test_resume_of_a_complete_file_reads_nothing(setup, uninterrupted, tmp_path):
    """Everything recorded: the report comes from the file alone, in input order."""
    root, model, paths = setup
    results = tmp_path / "R.jsonl"
    records = uninterrupted["results"] + uninterrupted["errors"]
    results.write_text("".join(json.dumps(r) + "\n" for r in reversed(records)))
    before = results.read_bytes()
    proc = subprocess.run(
        scan_cmd(root, model, "--resume", str(results)), capture_output=True, timeout=300
    )
    assert proc.returncode == 2
    assert json.loads(proc.stdout) == uninterrupted
    assert results.read_bytes() == before


def test_torn_last_line_is_dropped_and_rescanned(tmp_path):
    path = tmp_path / "R.jsonl"
    path.write_bytes(b'{"path": "a", "score": 0.25}\n{"path": "b", "sco')
    warnings = []
    with ResultStore(path, warn=warnings.append) as store:
        assert len(store) == 1 and store.get("a") == {"path": "a", "score": 0.25}
        assert store.get("b") is None
        store.append([{"path": "b", "score": 0.5}])
    assert len(warnings) == 1 and "line 2" in warnings[0]
    assert path.read_bytes() == b'{"path": "a", "score": 0.25}\n{"path": "b", "score": 0.5}\n'


def test_store_is_exclusive_and_skips_garbage(tmp_path):
    path = tmp_path / "R.jsonl"
    path.write_text('{"path": "x", "error": "empty file"}\nnot json\n[1, 2]\n')
    warnings = []
    with ResultStore(path, warn=warnings.append) as store:
        assert store.get("x") == {"path": "x", "error": "empty file"}  # errors count as done
        assert len(store) == 1 and len(warnings) == 2
        with pytest.raises(Exception, match="in use"):
            ResultStore(path)


def test_non_utf8_paths_round_trip(tmp_path):
    odd = os.fsdecode(b"/data/caf\xe9.png")
    with ResultStore(tmp_path / "R.jsonl") as store:
        store.append([{"path": odd, "score": 1.0}])
    with ResultStore(tmp_path / "R.jsonl") as store:
        assert store.get(odd) == {"path": odd, "score": 1.0}
        assert store.get("/data/café.png") is None


def test_resumed_records_merge_in_input_order(tmp_path):
    """Stored and new records interleave in input order; only new ones are computed."""
    with ResultStore(tmp_path / "R.jsonl") as store:
        store.append([{"path": p, "old": True} for p in ("b", "c", "f")])
    computed = []

    def run(todo):
        computed.append(list(todo))
        return [{"path": p, "old": False} for p in todo]

    with ResultStore(tmp_path / "R.jsonl") as store:
        out = list(resumed_records(list("abcdefg"), store, sequential_compute(run), 3))
    assert [r["path"] for r in out] == list("abcdefg")
    assert [r["old"] for r in out] == [False, True, True, False, False, True, False]
    assert computed == [["a"], ["d", "e"], ["g"]]
    lines = (tmp_path / "R.jsonl").read_text().splitlines()
    assert [json.loads(x)["path"] for x in lines] == ["b", "c", "f", "a", "d", "e", "g"]


def test_shard_plan_checks_counts():
    plan = ShardPlan(["a", "b"], {1: {"path": "b"}})
    assert plan.todo == ["a"]
    with pytest.raises(ValueError):
        plan.merge([{"path": "a"}, {"path": "extra"}])
