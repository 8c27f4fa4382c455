"""Hostile files and devices (issue 14): bounded decoding, devices left alone,
edited model files refused, garbled resume records rescanned, link loops ended.

Every hostile input is made here, by the test itself; each case must end in a
clear one-line error or a correct result.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import pickle
import stat
import struct
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from badcorpus import encode, jpeg_claiming, jpeg_many_scans, textured
from typer.testing import CliRunner

from specdetect.atomic import OutputError, atomic_write
from specdetect.cli import app
from specdetect.detect.model_io import (
    ModelError,
    audit_archive,
    default_model_path,
    load_model,
    load_scorer,
    read_feature_config,
)
from specdetect.media import MediaError, read_luma
from specdetect.resume import record_problem

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = str(ROOT / "samples" / "real" / "coffee.png")
runner = CliRunner()


def _scan(*args: str):
    return runner.invoke(app, ["scan", *args, "--workers", "1"])


# ---------------------------------------------------------------------------
# 1. Output onto devices, pipes and "-": never replaced; write errors exit 2
# ---------------------------------------------------------------------------
@pytest.fixture
def full_device(tmp_path: Path) -> Path:
    """A private copy of ``/dev/full`` (char device 1, 7): every write fails with ENOSPC."""
    if os.geteuid() != 0:
        pytest.skip("making a device node (os.mknod) needs root")
    node = tmp_path / "full"
    try:
        os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
        with open(node, "wb") as handle:  # a nodev mount would refuse to open it
            handle.write(b"")
    except OSError as exc:
        pytest.skip(f"cannot make or open a device node here ({exc.strerror})")
    return node


def test_scan_onto_a_full_device_keeps_the_node_and_exits_2(full_device: Path):
    result = _scan(SAMPLE, "-o", str(full_device))
    assert result.exit_code == 2, result.output
    assert "No space left on device" in result.output
    assert "wrote the report" not in result.output
    assert stat.S_ISCHR(os.lstat(full_device).st_mode)  # still the device, not a file
    assert os.listdir(full_device.parent) == ["full"]  # no temporary file beside it


def test_features_onto_a_full_device_is_one_line_and_exit_2(full_device: Path):
    result = runner.invoke(app, ["features", SAMPLE, "-o", str(full_device), "--workers", "1"])
    assert result.exit_code == 2, result.output
    assert f"error: cannot write {full_device}: No space left on device" in result.output
    assert "Traceback" not in result.output
    assert stat.S_ISCHR(os.lstat(full_device).st_mode)


def test_atomic_write_to_a_device_raises_one_line_output_error(full_device: Path):
    with pytest.raises(OutputError) as caught:
        with atomic_write(full_device, "w") as handle:
            handle.write("report\n")
    assert caught.value.errno == errno.ENOSPC
    assert str(caught.value) == f"cannot write {full_device}: No space left on device"
    assert stat.S_ISCHR(os.lstat(full_device).st_mode)


def test_scan_into_a_named_pipe_writes_through_it(tmp_path: Path):
    fifo = tmp_path / "report.pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = _scan(SAMPLE, "--format", "csv", "-o", str(fifo))
    reader.join(timeout=30)
    assert result.exit_code == 0, result.output
    lines = received[0].decode().splitlines()
    assert lines[0] == "path,kind,score,label,error"
    assert lines[1].startswith(f"{SAMPLE},image,")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(os.listdir(tmp_path)) == ["report.pipe"]


def test_dash_means_standard_output(tmp_path: Path):
    # A child process, so that "-" is a real file descriptor (a pipe).
    code = (
        "from specdetect.atomic import atomic_write\n"
        "with atomic_write('-', 'w') as handle:\n"
        "    handle.write('to stdout')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "to stdout"
    assert os.listdir(tmp_path) == []  # no file named "-"


def test_dev_stdout_is_the_descriptor_even_when_redirected_to_a_file(tmp_path: Path):
    code = (
        "from specdetect.atomic import atomic_write\n"
        "with atomic_write('/dev/stdout', 'w') as handle:\n"
        "    handle.write('report')\n"
    )
    log = tmp_path / "log.txt"
    log.write_text("earlier lines\n")
    with open(log, "a") as appended:  # like `>> log.txt`
        done = subprocess.run([sys.executable, "-c", code], stdout=appended, timeout=60)
    assert done.returncode == 0
    assert log.read_text() == "earlier lines\nreport"  # appended, not replaced
    assert os.listdir(tmp_path) == ["log.txt"]


def test_a_symbolic_link_stays_a_link(tmp_path: Path):
    real = tmp_path / "real.txt"
    real.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(real)
    with atomic_write(link, "w") as handle:
        handle.write("new")
    assert link.is_symlink() and real.read_text() == "new"


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, SystemExit, RuntimeError])
def test_no_temporary_file_survives_an_interruption(tmp_path: Path, interruption):
    target = tmp_path / "report.json"
    target.write_text("previous")
    with pytest.raises(interruption):
        with atomic_write(target, "w") as handle:
            handle.write("half a report")
            raise interruption()
    assert os.listdir(tmp_path) == ["report.json"]
    assert target.read_text() == "previous"


def test_a_folder_target_is_one_line_error(tmp_path: Path):
    with pytest.raises(OutputError, match="is a directory"):
        with atomic_write(tmp_path, "w") as handle:
            handle.write("x")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------
# 2. Decoding budget: claimed size against bytes present, JPEG scan count
# ---------------------------------------------------------------------------
def test_jpeg_header_claiming_a_huge_image_is_refused(tmp_path: Path):
    path = tmp_path / "claims-9000x9000.jpg"
    path.write_bytes(jpeg_claiming(9000, 9000))
    assert path.stat().st_size < 10_000
    with pytest.raises(MediaError) as caught:
        read_luma(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: image claims 9000x9000 pixels")
    assert "SPECDETECT_MAX_PIXELS_PER_BYTE" in message and "\n" not in message


def test_the_pixels_per_byte_limit_can_be_raised(tmp_path: Path, monkeypatch):
    path = tmp_path / "claims-2100x2100.jpg"
    path.write_bytes(jpeg_claiming(2100, 2100))  # 4.4 Mpx, just over the floor
    with pytest.raises(MediaError, match="pixels per byte"):
        read_luma(path)
    monkeypatch.setenv("SPECDETECT_MAX_PIXELS_PER_BYTE", "0")  # off
    assert read_luma(path).shape == (2100, 2100)


def test_jpeg_with_many_repeated_scans_is_refused(tmp_path: Path):
    path = tmp_path / "many-scans.jpg"
    path.write_bytes(jpeg_many_scans(5000))
    with pytest.raises(MediaError, match=r"more than 256 scans .*SPECDETECT_MAX_JPEG_SCANS"):
        read_luma(path)


def test_an_ordinary_progressive_jpeg_is_decoded(tmp_path: Path):
    path = tmp_path / "progressive.jpg"
    path.write_bytes(encode(textured(64), "JPEG", progressive=True))
    assert read_luma(path).shape == (64, 64)
    path.write_bytes(jpeg_many_scans(20, size=64))  # a few extra scans are still fine
    assert read_luma(path).shape == (64, 64)


def test_decode_time_budget(tmp_path: Path, monkeypatch):
    path = tmp_path / "ok.png"
    path.write_bytes(encode(textured(64), "PNG"))
    monkeypatch.setenv("SPECDETECT_DECODE_SECONDS", "1e-9")
    with pytest.raises(MediaError, match="CPU time .*SPECDETECT_DECODE_SECONDS"):
        read_luma(path)


def test_hostile_images_in_a_scan_are_errors_and_the_rest_is_scored(tmp_path: Path):
    (tmp_path / "huge.jpg").write_bytes(jpeg_claiming(9000, 9000))
    (tmp_path / "scans.jpg").write_bytes(jpeg_many_scans(5000))
    result = _scan(str(tmp_path), SAMPLE, "--format", "csv")
    assert result.exit_code == 2
    rows = [line for line in result.stdout.splitlines()[1:] if line]
    assert any(row.startswith(f"{SAMPLE},image,") for row in rows)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2
    assert any("huge.jpg: image claims 9000x9000" in line for line in errors)
    assert any("scans.jpg: JPEG has more than" in line for line in errors)


# ---------------------------------------------------------------------------
# 3. Model files: budget before inflating, plain member names, nothing prepended
# ---------------------------------------------------------------------------
SHIPPED = default_model_path()


def _scorer_member(source: Path, array: str = "support_vectors") -> str:
    with zipfile.ZipFile(source) as archive:
        schema = json.loads(archive.read("schema.json"))
    return schema["content"]["scorer"]["content"][array]["file"]


def _rebuild(target: Path, rename: dict[str, str] | None = None, replace=None) -> Path:
    """The shipped model, rewritten with members renamed (schema too) or replaced."""
    rename = rename or {}
    replace = replace or {}
    with zipfile.ZipFile(SHIPPED) as source, zipfile.ZipFile(target, "w") as out:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "schema.json":
                text = data.decode()
                for old, new in rename.items():
                    text = text.replace(old, new)
                data = text.encode()
            name = rename.get(info.filename, info.filename)
            out.writestr(name, replace.get(name, data), zipfile.ZIP_DEFLATED)
    return target


def _refused_by_every_loader(path: Path, match: str) -> None:
    """The fast loader, the settings reader and the full loader agree: refused."""
    assert load_scorer(path) is None
    assert read_feature_config(path) is None
    with pytest.raises(ModelError, match=match) as caught:
        load_model(path)
    assert "\n" not in str(caught.value) and str(path) in str(caught.value)


def test_a_member_inflating_past_the_budget_is_refused_before_reading(tmp_path, monkeypatch):
    member = _scorer_member(SHIPPED)
    zeros = np.zeros((8192, 64))  # 4 MiB of float64, a few KB deflated
    buffer = io.BytesIO()
    np.save(buffer, zeros)
    path = _rebuild(tmp_path / "inflates.skops", replace={member: buffer.getvalue()})
    assert path.stat().st_size < 1_000_000
    monkeypatch.setenv("SPECDETECT_MAX_MODEL_BYTES", str(2 * 2**20))
    _refused_by_every_loader(path, r"inflates to \d+ bytes .*SPECDETECT_MAX_MODEL_BYTES")
    monkeypatch.delenv("SPECDETECT_MAX_MODEL_BYTES")
    # Within the default budget it is read, and refused for what it is.
    assert load_scorer(path) is None


def test_a_header_that_lies_about_the_size_is_not_inflated_further(tmp_path):
    member = _scorer_member(SHIPPED)
    path = _rebuild(tmp_path / "lying.skops")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    declared = struct.pack("<L", info.file_size)
    small = struct.pack("<L", 64)
    # The uncompressed size sits in the local header and in the central directory.
    count = data.count(declared)
    assert count >= 2
    data[:] = bytes(data).replace(declared, small)
    path.write_bytes(bytes(data))
    assert load_scorer(path) is None
    with pytest.raises(ModelError):
        load_model(path)


@pytest.mark.parametrize("name", ["../../evil.npy", "/abs.npy", "sub/x.npy", "a\\b.npy", ".."])
def test_member_names_must_be_plain(tmp_path, name):
    member = _scorer_member(SHIPPED)
    path = _rebuild(tmp_path / "traversal.skops", rename={member: name})
    _refused_by_every_loader(path, "not a plain file name")


def test_a_pickle_with_a_model_appended_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"opens": str(marker)})
    path = tmp_path / "polyglot.skops"
    path.write_bytes(payload + SHIPPED.read_bytes())
    with zipfile.ZipFile(path) as archive:  # zipfile alone accepts it
        assert "schema.json" in archive.namelist()
    _refused_by_every_loader(path, "pickle")
    assert not marker.exists()


def test_anything_before_the_first_member_is_refused(tmp_path):
    path = tmp_path / "prefixed.skops"
    path.write_bytes(b"PK\x03\x04" + bytes(60) + SHIPPED.read_bytes())
    _refused_by_every_loader(path, "bytes before the first member")


def test_a_refused_model_stops_the_scan_with_one_line(tmp_path):
    member = _scorer_member(SHIPPED)
    path = _rebuild(tmp_path / "traversal.skops", rename={member: "../../evil.npy"})
    result = _scan(SAMPLE, "-m", str(path))
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "not a plain file name" in errors[0]


def test_a_bad_model_budget_is_a_usage_error_not_a_crash(monkeypatch):
    monkeypatch.setenv("SPECDETECT_MAX_MODEL_BYTES", "abc")
    result = _scan(SAMPLE)
    assert result.exit_code == 2  # never 1, which means "flagged"
    assert "SPECDETECT_MAX_MODEL_BYTES must be a whole number of bytes, got 'abc'" in result.output
    assert "Traceback" not in result.output


def test_the_shipped_model_passes_the_audit():
    data = audit_archive(SHIPPED)
    assert data == SHIPPED.read_bytes()
    assert load_scorer(SHIPPED) is not None


# ---------------------------------------------------------------------------
# 4. --resume records: a valid JSON line that is not a record is rescanned
# ---------------------------------------------------------------------------
def _image_record(path: str, score: float = 0.25) -> dict:
    return {"path": path, "kind": "image", "score": score, "label": "real"}


@pytest.mark.parametrize(
    "record, problem",
    [
        ({"path": "a", "kind": "image", "score": "0.7790", "label": "real"}, "score"),
        ({"path": "a", "kind": "image", "score": float("nan"), "label": "real"}, "score"),
        ({"path": "a", "kind": "image", "score": 1.5, "label": "real"}, "score"),
        ({"path": "a", "kind": "image", "score": True, "label": "real"}, "score"),
        ({"path": "a", "kind": "image", "score": 0.7, "label": "fbke"}, "label"),
        ({"path": "a"}, "missing kind, label, score"),
        ({"path": "a", "kind": "audio", "score": 0.7, "label": "fake"}, "kind"),
        ({"path": "a", "error": 3}, "error"),
        ({"path": "a", "error": "x", "score": 0.1}, "unexpected score"),
        ({**_image_record("a"), "extra": 1}, "unexpected extra"),
        ({**_image_record("a"), "kind": "video"}, "missing"),
        (
            {
                **_image_record("a"),
                "kind": "video",
                "frames": 2,
                "fraction_fake": 0.5,
                "frame_indices": [0],
                "frame_scores": [0.1, 0.9],
            },
            "frame_indices",
        ),
        ({"path": 7, "error": "x"}, "path"),
    ],
)
def test_record_schema_refuses(record, problem):
    assert problem in record_problem(record)


def test_record_schema_accepts_what_a_scan_writes():
    video = {
        **_image_record("v.mp4", 0.9),
        "kind": "video",
        "label": "fake",
        "frames": 2,
        "fraction_fake": 1.0,
        "frame_indices": [0, 7],
        "frame_scores": [0.8, 1],
    }
    for record in (_image_record("a.png", 0), video, {"path": "b.png", "error": "empty file"}):
        assert record_problem(record) is None


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_garbled_resume_lines_are_rescanned_not_reported(tmp_path: Path, fmt: str):
    samples = sorted(str(p) for p in (ROOT / "samples" / "real").glob("*.png"))[:4]
    results = tmp_path / "R.jsonl"
    first = _scan(*samples, "--resume", str(results), "--format", "json")
    assert first.exit_code == 0, first.output
    truth = {r["path"]: r for r in json.loads(first.stdout)["results"]}
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    lines[1]["score"] = f"{lines[1]['score']:.4f}"  # a string
    lines[2]["label"] = "fbke"
    lines[3] = {"path": lines[3]["path"]}
    results.write_text("".join(json.dumps(r) + "\n" for r in lines))

    again = _scan(*samples, "--resume", str(results), "--format", fmt)
    assert again.exit_code == 0, again.output
    warnings = [line for line in again.stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 3 and all("scanned again" in w for w in warnings)
    if fmt == "json":
        reported = json.loads(again.stdout)["results"]
    else:
        reported = list(csv.DictReader(io.StringIO(again.stdout)))
    assert [r["path"] for r in reported] == samples
    for row in reported:
        assert row["label"] == truth[row["path"]]["label"]
        assert float(row["score"]) == pytest.approx(truth[row["path"]]["score"], abs=1e-12)
        assert row["kind"] == "image"
    # The rescanned records were appended; a third run rescans nothing more.
    assert len(results.read_text().splitlines()) == 7


# ---------------------------------------------------------------------------
# 5. Globs over symbolic-link loops: each file once, and the expansion ends
# ---------------------------------------------------------------------------
@pytest.fixture
def looped(tmp_path: Path) -> Path:
    """``F/a.png``, ``F/sub/b.png``, and the loops ``F/self -> .``, ``F/sub/up -> ..``."""
    root = tmp_path / "F"
    (root / "sub").mkdir(parents=True)
    (root / "a.png").write_bytes(encode(textured(32, 1), "PNG"))
    (root / "sub" / "b.png").write_bytes(encode(textured(32, 2), "PNG"))
    (root / "self").symlink_to(".")
    (root / "sub" / "up").symlink_to("..")
    return root


def _expand(patterns: list[str], cwd: Path) -> list[str]:
    # A child process with a timeout: a regression would loop forever.
    code = (
        "import json, sys\n"
        "from specdetect.media import iter_paths\n"
        "print(json.dumps(list(iter_paths(sys.argv[1:]))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, *patterns],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("pattern", ["F/**/*.png", "F/**", "F/*", "**/*.png"])
def test_glob_through_link_loops_reports_each_file_once(looped: Path, pattern: str):
    assert _expand([pattern], looped.parent) == ["F/a.png", "F/sub/b.png"]


def test_a_file_matched_only_through_a_link_keeps_that_path(looped: Path):
    # "F/*/" names the folders F/self (a link to F) and F/sub: a.png is in F
    # but reached only through the link, b.png is reported once.
    assert _expand(["F/*/"], looped.parent) == ["F/sub/b.png", "F/self/a.png"]


def test_glob_reaches_a_folder_only_through_a_link(tmp_path: Path):
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "c.png").write_bytes(b"")
    (tmp_path / "F").mkdir()
    (tmp_path / "F" / "link").symlink_to("../outside")
    assert _expand(["F/**/*.png"], tmp_path) == ["F/link/c.png"]


def test_scan_of_a_looping_glob_scores_each_file_once(looped: Path, monkeypatch):
    monkeypatch.chdir(looped.parent)
    result = _scan("F/**/*.png", "--format", "csv")
    assert result.exit_code in (0, 1), result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["path"] for row in rows] == ["F/a.png", "F/sub/b.png"]


# ---------------------------------------------------------------------------
# Memory: per-shape plans are cached within a pixel budget, not per shape
# ---------------------------------------------------------------------------
def test_plans_of_large_shapes_do_not_pile_up(monkeypatch):
    from specdetect import spectra

    monkeypatch.setattr(spectra, "PLAN_CACHE_PIXELS", 100 * 100)
    small = spectra.ring_index(10, 10)
    assert spectra.ring_index(10, 10) is small  # small shapes stay cached
    large = spectra.ring_index(120, 100)  # over the budget on its own
    assert spectra.ring_index(120, 100) is large  # the newest plan is always kept
    assert spectra.ring_index(10, 10) is not small  # the older one made room
    other = spectra.ring_index(100, 130)
    assert spectra.ring_index(100, 130) is other
    assert spectra.ring_index(120, 100) is not large


def test_plans_are_compact():
    """Plans hold a small integer per frequency at most, not full-size index arrays."""
    from specdetect import features, spectra

    height, width = 3000, 2000  # 6 Mpx: the old plans held 30 bytes per pixel
    ring = spectra.ring_index(height, width)
    assert ring.ring_map.dtype == np.uint16
    assert ring.ring_map.shape == (height, width // 2 + 1)
    layout = features._coherence_layout(height, width)
    held = [layout.totals]
    for _, base, pairs in layout.groups:
        held += [base.pattern, base.flips, base.rows_in, base.cols]
        for _, partner, base_band, partner_band in pairs:
            held += [partner.pattern, partner.flips, partner.rows_in, partner.rows_out]
            held += [partner.cols, base_band, partner_band]
    assert base.pattern.dtype == np.int32
    assert len(base.pattern) <= features._COHERENCE_CHUNK
    assert sum(array.nbytes for array in held) < 8_000_000  # ~1 byte per pixel


@pytest.mark.parametrize("shape", [(37, 50), (50, 37), (64, 64), (9, 130)])
def test_chunked_plans_and_reductions_do_not_change_the_features(monkeypatch, shape):
    """Tiny chunks (many of them, a partial last one) give the same plans and features."""
    from specdetect import features, spectra

    config = features.FeatureConfig(bins=16, coherence=True)
    caches = (spectra.ring_index, features._coherence_layout, features.coherence_plan)
    images = np.random.default_rng(12).random((2, *shape)) * 255
    # These shapes are small enough to be gathered whole: take the chunked path.
    monkeypatch.setattr(features, "_COHERENCE_GATHER_BINS", 0)
    expected = features.features_numpy(images, config)
    plan = features.coherence_plan(*shape)
    power = spectra.power_spectrum(images)
    rings = spectra.azimuthal_integral(power, shape, False)[0]
    monkeypatch.setattr(spectra, "_CHUNK_BINS", 7)
    monkeypatch.setattr(features, "_COHERENCE_CHUNK", 40)
    try:
        for cache in caches:
            cache.cache_clear()
        n_block_rows, base, _ = features._coherence_layout(*shape).groups[1]
        assert 0 < base.step < n_block_rows  # several chunks
        np.testing.assert_array_equal(features.coherence_plan(*shape)[0], plan[0])
        np.testing.assert_array_equal(features.coherence_plan(*shape)[3], plan[3])
        np.testing.assert_array_equal(spectra.azimuthal_integral(power, shape, False)[0], rings)
        np.testing.assert_allclose(features.features_numpy(images, config), expected, rtol=1e-12)
    finally:
        for cache in caches:
            cache.cache_clear()


def test_a_new_report_gets_the_permissions_open_would_give(tmp_path: Path):
    old = os.umask(0o027)
    try:
        with atomic_write(tmp_path / "report.json", "w") as handle:
            handle.write("{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "report.json").st_mode) == 0o640


def test_a_weighted_plan_cache_holds_fewer_shapes(monkeypatch):
    """A plan that takes more bytes per pixel counts its pixels ``weight`` times."""
    from specdetect import spectra

    monkeypatch.setattr(spectra, "PLAN_CACHE_PIXELS", 200)
    plain = spectra.shape_cache(lambda height, width: object())
    heavy = spectra.shape_cache(weight=2)(lambda height, width: object())
    first_plain, first_heavy = plain(10, 10), heavy(10, 10)
    plain(9, 10), heavy(9, 10)  # 190 pixels: within the budget once, not twice
    assert plain(10, 10) is first_plain
    assert heavy(10, 10) is not first_heavy
