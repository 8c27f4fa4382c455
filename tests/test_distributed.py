"""The Dask backend: same output as a single process, order kept, nothing lost on worker death."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from badcorpus import encode, make_corpus, textured

from specdetect import distributed as backend


@pytest.fixture(scope="module")
def client():
    """One small LocalCluster (2 workers, loopback only) for the whole module."""
    import dask

    # Fewer deaths before a task counts as poisonous keeps the crash test short.
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        backend.dask_client(cluster="local:2") as client,
    ):
        yield client


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    paths = []
    for i in range(30):
        ext = "jpg" if i % 3 == 0 else "png"
        path = folder / f"img-{i:02d}.{ext}"
        path.write_bytes(encode(textured(32 + 8 * (i % 3), seed=i), ext.replace("jpg", "JPEG")))
        paths.append(str(path))
    return paths


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return make_corpus(tmp_path_factory.mktemp("corpus"), with_video=True)


def run_cli(args, stdin_paths=None):
    data = b"".join(os.fsencode(p) + b"\n" for p in stdin_paths) if stdin_paths else None
    return subprocess.run(
        [sys.executable, "-m", "specdetect", *args], input=data, capture_output=True, timeout=300
    )


# --------------------------------------------------------------------------- map_shards
def echo_slowly(items, delay):
    """A shard function whose later shards finish first (out-of-order completion)."""
    time.sleep(delay / (1 + int(items[0])))
    return [f"{item}!" for item in items]


def exit_on_poison(items):
    if "poison" in items:
        os._exit(7)  # the worker process dies, as on a segfault
    return [item.upper() for item in items]


def test_results_stream_in_input_order(client):
    items = [str(i) for i in range(40)]
    done_order = []
    stream = backend.map_shards(
        client,
        echo_slowly,
        backend.shards_of(items, 3),
        shared={"delay": 0.3},
        on_done=lambda shard, results: done_order.append(shard[0]),
        on_failure=lambda item, exc: pytest.fail(f"{item}: {exc}"),
        max_in_flight=5,
    )
    results = [r for _, shard_results in stream for r in shard_results]
    assert results == [f"{i}!" for i in items]
    assert len(done_order) == 14
    assert done_order != sorted(done_order, key=int)  # they really finished out of order


def test_window_bounds_what_is_read_ahead(client):
    consumed = []

    def source():
        for i in range(100):
            consumed.append(i)
            yield str(i)

    stream = backend.map_paths(
        client,
        echo_slowly,
        source(),
        shared={"delay": 0.0},
        on_failure=lambda item, exc: None,
        shard_size=4,
        max_in_flight=3,
    )
    first = next(stream)
    assert first == "0!"
    assert len(consumed) <= 4 * 3 + 1  # at most the window's shards were read
    assert list(stream) == [f"{i}!" for i in range(1, 100)]


def test_poison_input_kills_workers_but_only_fails_itself(client):
    items = [f"p{i}" for i in range(12)]
    items[7] = "poison"
    results = list(
        backend.map_paths(
            client,
            exit_on_poison,
            items,
            shard_size=5,
            on_failure=lambda item, exc: f"error:{item}:{backend.describe_failure(exc)}",
        )
    )
    assert len(results) == len(items)
    assert results[7].startswith("error:poison:the worker process died")
    assert [r for i, r in enumerate(results) if i != 7] == [
        x.upper() for i, x in enumerate(items) if i != 7
    ]


def test_missing_dask_gives_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import now fails
    with pytest.raises(backend.BackendError, match=r"install specdetect\[distributed\]"):
        backend.require_dask()
    from typer.testing import CliRunner

    from specdetect.cli import app

    result = CliRunner().invoke(app, ["features", "x.png", "-o", "x.npz", "--cluster", "local:2"])
    assert result.exit_code == 2
    assert "specdetect[distributed]" in result.output


@pytest.mark.parametrize("spec", ["remote:2", "local:0", "local:x"])
def test_bad_cluster_spec_is_refused(spec):
    with pytest.raises(backend.BackendError, match="local:N"):
        backend.parse_cluster(spec)


# --------------------------------------------------------------------------- features CLI
def load(path):
    with np.load(path) as saved:
        return {key: saved[key] for key in saved.files}


def test_features_same_through_dask(client, images, corpus, tmp_path):
    inputs = images + [e.path for e in corpus]
    single = run_cli(["features", "-", "-o", str(tmp_path / "one.npz"), "--workers", "1"], inputs)
    address = client.scheduler.address
    assert address.startswith("tcp://127.0.0.1:")
    shards = ["--scheduler", address, "--shard-size", "4"]
    dask_run = run_cli(["features", "-", "-o", str(tmp_path / "dask.npz"), *shards], inputs)
    assert single.returncode == dask_run.returncode == 2
    assert single.stderr.count(b"error: ") == dask_run.stderr.count(b"error: ") > 5
    assert sorted(single.stderr.splitlines()[:-1]) == sorted(dask_run.stderr.splitlines()[:-1])
    one, many = load(tmp_path / "one.npz"), load(tmp_path / "dask.npz")
    assert one.keys() == many.keys()
    for key in one:
        np.testing.assert_array_equal(one[key], many[key], err_msg=key)
    assert len(one["paths"]) == len(images) + sum(e.good and not e.video for e in corpus)


def test_features_with_local_cluster_flag(images, tmp_path):
    proc = run_cli(["features", *images[:6], "-o", str(tmp_path / "f.npz"), "--cluster", "local:1"])
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    assert list(load(tmp_path / "f.npz")["paths"]) == images[:6]


# --------------------------------------------------------------------------- scan CLI
@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from scale_fixtures import shared_model

    return shared_model(tmp_path_factory)


def test_scan_same_through_dask(client, images, corpus, model, tmp_path):
    """Same report, byte for byte, and the same error lines: bad corpus included."""
    inputs = images + [e.path for e in corpus]
    base = ["scan", "-", "--model", model, "--format", "json", "--frames", "4"]
    single = run_cli([*base, "--workers", "1"], inputs)
    shards = ["--scheduler", client.scheduler.address, "--shard-size", "4"]
    on_dask = run_cli([*base, *shards], inputs)
    assert single.returncode == on_dask.returncode == 2, on_dask.stderr.decode(errors="replace")
    assert on_dask.stdout == single.stdout
    report = json.loads(on_dask.stdout)
    assert report["summary"]["n"] == len(inputs)
    assert report["summary"]["errors"] == sum(not e.good for e in corpus)
    errors = [x for x in single.stderr.splitlines() if x.startswith(b"error: ")]
    assert errors == [x for x in on_dask.stderr.splitlines() if x.startswith(b"error: ")]

    # Resumed on the cluster from a file holding a third of the records: same report.
    results = tmp_path / "R.jsonl"
    records = report["results"] + report["errors"]
    results.write_text("".join(json.dumps(r) + "\n" for r in records[::3]))
    resumed = run_cli([*base, *shards, "--resume", str(results)], inputs)
    assert resumed.returncode == 2 and resumed.stdout == single.stdout
    lines = [json.loads(x) for x in results.read_text().splitlines()]
    assert sorted(r["path"] for r in lines) == sorted(inputs)


def test_library_scan_and_featurize_on_a_dask_client(client, images, corpus, model):
    """specdetect.scan.scan(client=...) and featurize(client=...): the single-process results."""
    from specdetect.features import FeatureConfig
    from specdetect.featurize import featurize
    from specdetect.scan import scan

    inputs = images[:8] + [e.path for e in corpus][:6]
    single = list(scan(inputs, model, workers=1, frames=4))
    on_dask = list(scan(inputs, model, client=client, shard_size=3, frames=4))
    assert on_dask == single and [r["path"] for r in single] == inputs
    with_spectra = list(scan(inputs, model, client=client, shard_size=3, frames=4, spectra=True))
    assert with_spectra == list(scan(inputs, model, workers=1, frames=4, spectra=True))
    assert sum("spectrum" in r for r in with_spectra) == sum("score" in r for r in single) > 0
    assert client.status == "running"  # a client passed in is left open

    config = FeatureConfig(bins=16)
    local = list(featurize(inputs, config, workers=1))
    remote = list(featurize(inputs, config, client=client, shard_size=5))
    assert [r.path for r in remote] == inputs
    assert [r.error for r in remote] == [r.error for r in local]
    for a, b in zip(local, remote, strict=True):
        if a.ok:
            assert np.array_equal(a.features, b.features)


class Payload:
    """Unpickling this would run a shell command: the file must never be unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def crafted_model(kind: str, good_model: str, folder) -> str:
    path = folder / f"{kind}.skops"
    if kind == "pickle":
        import pickle

        path.write_bytes(pickle.dumps(Payload(folder / "PWNED")))
    elif kind == "truncated":
        data = open(good_model, "rb").read()
        path.write_bytes(data[: len(data) // 2])
    else:  # a well-formed file of a format version this specdetect does not read
        from specdetect.detect import load_model, model_io, save_model

        detector = load_model(good_model)
        original = model_io.FORMAT_VERSION
        model_io.FORMAT_VERSION = original + 100
        try:
            save_model(detector, path)
        finally:
            model_io.FORMAT_VERSION = original
    return str(path)


@pytest.mark.parametrize("kind", ["pickle", "version", "truncated"])
def test_crafted_model_refused_before_scanning(kind, model, images, tmp_path):
    bad = crafted_model(kind, model, tmp_path)
    results, report = tmp_path / "R.jsonl", tmp_path / "report.json"
    args = ["scan", *images[:3], "--model", bad, "--cluster", "local:2"]
    proc = run_cli([*args, "--resume", str(results), "-o", str(report)])
    assert proc.returncode == 2
    assert proc.stderr.decode().startswith(f"error: {bad}: ")
    assert not results.exists() and not report.exists()  # nothing scanned, nothing written
    assert not (tmp_path / "PWNED").exists()
