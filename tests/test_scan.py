"""The scan engine and the report writers, with stand-in detectors."""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from specdetect.features import FeatureConfig
from specdetect.report import CSV_COLUMNS, build_report, make_writer
from specdetect.scan import scan_records, score_shard, video_verdict

CONFIG = FeatureConfig(bins=16)


class BrightnessDetector:
    """Stand-in detector: P(fake) is a fixed function of the first feature bin.

    With ``norm="none"`` the first bin is the DC level in dB, so brighter
    images score higher. Records every batch it is asked to score.
    """

    feature_config = FeatureConfig(bins=16, norm="none")
    threshold_ = 0.5

    def __init__(self):
        self.batches: list[int] = []

    def predict_proba(self, X):
        self.batches.append(len(X))
        p_fake = 1.0 / (1.0 + np.exp(-(X[:, 0] - 66.0)))  # DC power 66 dB: mean ~62 on 32x32
        return np.column_stack([1 - p_fake, p_fake])


def _image(path, level: float, seed: int = 0, size: int = 32):
    rng = np.random.default_rng(seed)
    pixels = np.clip(level + rng.normal(0, 10, (size, size)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return str(path)


@pytest.fixture
def images(tmp_path):
    """Dark (real) and bright (fake) images, and two unreadable inputs, interleaved."""
    paths = []
    for i in range(7):
        paths.append(_image(tmp_path / f"dark{i}.png", 20, seed=i))
        paths.append(_image(tmp_path / f"bright{i}.png", 230, seed=i))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    paths.insert(3, str(tmp_path / "broken.png"))
    paths.insert(9, str(tmp_path / "missing.png"))
    return paths


def test_one_record_per_input_in_input_order(images):
    detector = BrightnessDetector()
    records = list(scan_records(images, detector, workers=1))
    assert [r["path"] for r in records] == images
    for record in records:
        name = record["path"].rsplit("/", 1)[-1]
        if name.startswith("dark"):
            assert record["kind"] == "image" and record["label"] == "real"
            assert 0.0 <= record["score"] < 0.5
        elif name.startswith("bright"):
            assert record["label"] == "fake" and 0.5 <= record["score"] <= 1.0
        else:
            assert set(record) == {"path", "error"}
    errors = {r["path"].rsplit("/", 1)[-1]: r["error"] for r in records if "error" in r}
    assert errors["missing.png"] == "no such file"  # the reason, without the path again
    assert "broken.png" in errors and "\n" not in errors["broken.png"]


def test_rows_are_scored_in_batches_not_one_at_a_time(images):
    detector = BrightnessDetector()
    records = list(scan_records(images, detector, workers=1, batch_rows=5))
    assert sum("error" not in r for r in records) == 14
    assert all(size >= 5 for size in detector.batches)
    assert len(detector.batches) <= 3


def test_scores_do_not_depend_on_how_rows_are_grouped():
    from sklearn.linear_model import LogisticRegression

    from specdetect.scan import fake_scores

    rng = np.random.default_rng(0)
    X = rng.normal(size=(700, 40))
    model = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    whole = fake_scores(model, X)
    pieces = np.concatenate([fake_scores(model, X[i : i + 37]) for i in range(0, 700, 37)])
    assert whole.shape == (700,)
    assert np.array_equal(whole, pieces)  # bit-identical, not merely close


def test_threshold_overrides_the_detector_threshold(images):
    strict = list(scan_records(images, BrightnessDetector(), threshold=1.0, workers=1))
    loose = list(scan_records(images, BrightnessDetector(), threshold=0.0, workers=1))
    assert all(r["label"] == "real" for r in strict if "error" not in r and r["score"] < 1.0)
    assert all(r["label"] == "fake" for r in loose if "error" not in r)
    with pytest.raises(ValueError, match="threshold"):
        list(scan_records(images, BrightnessDetector(), threshold=1.5))


def test_worker_pool_gives_the_same_records_as_inline(images):
    inline = list(scan_records(images, BrightnessDetector(), workers=1))
    pooled = list(scan_records(images, BrightnessDetector(), workers=2))
    assert pooled == inline


def test_score_shard_is_scan_records_as_a_list(images):
    shard = score_shard(images[:6], BrightnessDetector())
    assert shard == list(scan_records(images[:6], BrightnessDetector(), workers=1, device="cpu"))


def test_non_finite_features_become_error_records(tmp_path):
    class NanFirst(BrightnessDetector):
        pass

    paths = [_image(tmp_path / "a.png", 100), _image(tmp_path / "b.png", 100, seed=1)]
    from specdetect import scan as scan_module

    results = list(scan_module.extract_features(paths, NanFirst.feature_config, workers=1))
    results[0].features[0, 3] = np.nan
    records = list(scan_module._score_batch(results, NanFirst(), 0.5))
    assert records[0] == {"path": paths[0], "error": "features are not finite"}
    assert "score" in records[1]


def test_scores_stay_aligned_around_a_non_finite_input(tmp_path):
    from specdetect import scan as scan_module

    paths = [_image(tmp_path / f"{i}.png", 60 + 40 * i, seed=i) for i in range(4)]
    results = list(
        scan_module.extract_features(paths, BrightnessDetector.feature_config, workers=1)
    )
    expected = [r["score"] for r in scan_module._score_batch(results, BrightnessDetector(), 0.5)]
    assert len(set(expected)) == 4  # distinct scores, so a shift would show
    results[1].features[0, 0] = np.inf
    records = list(scan_module._score_batch(results, BrightnessDetector(), 0.5))
    assert records[1] == {"path": paths[1], "error": "features are not finite"}
    assert [records[i]["score"] for i in (0, 2, 3)] == [expected[i] for i in (0, 2, 3)]


@pytest.mark.parametrize(
    "scores, fraction, label",
    [
        ([0.9, 0.8, 0.1], 2 / 3, "fake"),  # majority fake, though one frame is clean
        ([0.6, 0.1, 0.1, 0.1], 0.25, "real"),
        ([0.99, 0.4], 0.5, "fake"),  # tie: the mean score (0.695) decides
        ([0.51, 0.01], 0.5, "real"),  # tie: mean 0.26
    ],
)
def test_video_verdict_is_a_majority_vote(scores, fraction, label):
    mean, got_fraction, got_label = video_verdict(np.array(scores), 0.5)
    assert mean == pytest.approx(np.mean(scores))
    assert got_fraction == pytest.approx(fraction)
    assert got_label == label


def test_video_records(tmp_path):
    import av

    path = str(tmp_path / "bright.mp4")
    rng = np.random.default_rng(0)
    with av.open(path, "w") as container:
        stream = container.add_stream("mpeg4", rate=24)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for _ in range(12):
            pixels = rng.integers(180, 250, (32, 32, 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    (record,) = scan_records([path], BrightnessDetector(), frames=5, workers=1)
    assert record["kind"] == "video" and record["frames"] == 5
    assert record["frame_indices"] == sorted(record["frame_indices"])
    assert len(record["frame_scores"]) == 5 and len(record["frame_indices"]) == 5
    assert record["score"] == pytest.approx(np.mean(record["frame_scores"]))
    assert record["fraction_fake"] == 1.0 and record["label"] == "fake"
    # Without frames, a video is not an image: an error, not a crash.
    (as_image,) = scan_records([path], BrightnessDetector(), frames=0, workers=1)
    assert "error" in as_image


# --------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------
RECORDS = [
    {"path": "a.png", "kind": "image", "score": 0.25, "label": "real"},
    {"path": "b.png", "error": "empty file"},
    {
        "path": "c.mp4",
        "kind": "video",
        "score": 0.75,
        "label": "fake",
        "frames": 2,
        "fraction_fake": 1.0,
        "frame_indices": [0, 5],
        "frame_scores": [0.7, 0.8],
    },
    {"path": "caf\u00e9 \udcff.png", "kind": "image", "score": 0.5, "label": "fake"},
]


def _written(fmt: str, records=RECORDS) -> tuple[str, object]:
    stream = io.StringIO()
    writer = make_writer(fmt, stream, "model.skops", 0.5)
    for record in records:
        writer.write(record)
    summary = writer.close()
    return stream.getvalue(), summary


def test_build_report_schema_and_counts():
    report = build_report(RECORDS, "model.skops", 0.5)
    assert list(report) == ["version", "model", "threshold", "results", "errors", "summary"]
    assert [r["path"] for r in report["results"]] == ["a.png", "c.mp4", "caf\u00e9 \udcff.png"]
    assert report["errors"] == [{"path": "b.png", "error": "empty file"}]
    assert report["summary"] == {"n": 4, "fake": 2, "real": 1, "errors": 1}


@pytest.mark.parametrize("records", [RECORDS, [], RECORDS[1:2], RECORDS[:1]])
def test_streamed_json_parses_to_the_built_report(records):
    text, summary = _written("json", records)
    assert json.loads(text) == build_report(records, "model.skops", 0.5)
    assert summary.n == len(records)
    text.encode("utf-8")  # the undecodable file name is escaped, not fatal


def test_csv_columns_and_rows():
    text, _ = _written("csv")
    rows = list(csv.reader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_COLUMNS == ("path", "kind", "score", "label", "error")
    assert rows[1] == ["a.png", "image", "0.25", "real", ""]
    assert rows[2] == ["b.png", "", "", "", "empty file"]
    assert rows[3][:4] == ["c.mp4", "video", "0.75", "fake"]
    assert rows[4][0] == "caf\u00e9 \\xff.png"
    assert len(rows) == 5


def test_text_table_and_summary_line():
    text, _ = _written("text")
    lines = text.splitlines()
    assert lines[0].split() == ["SCORE", "LABEL", "KIND", "PATH"]
    assert lines[1].split() == ["0.250", "real", "image", "a.png"]
    assert "error" in lines[2] and "b.png: empty file" in lines[2]
    assert "(2/2 frames fake)" in lines[3]
    assert lines[-1].startswith("4 inputs: 2 fake, 1 real, 1 error")
    assert "threshold 0.500" in lines[-1] and "model.skops" in lines[-1]


def test_deferred_detector_waits_for_the_load_and_passes_on_its_errors(images, tmp_path):
    from specdetect.detect.model_io import read_feature_config
    from specdetect.scan import DeferredDetector

    config = BrightnessDetector.feature_config
    direct = list(scan_records(images, BrightnessDetector(), workers=1))
    deferred = DeferredDetector(BrightnessDetector, config)
    assert list(scan_records(images, deferred, workers=1)) == direct

    def broken():
        raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        list(scan_records(images, DeferredDetector(broken, config), workers=1))
    other = DeferredDetector(BrightnessDetector, FeatureConfig(bins=8))
    with pytest.raises(RuntimeError, match="feature settings differ"):
        list(scan_records(images, other, workers=1))
    (tmp_path / "model.skops").write_bytes(b"not a zip")
    assert read_feature_config(tmp_path / "model.skops") is None
    assert read_feature_config(tmp_path / "missing.skops") is None


def test_lean_model_loading_gives_the_same_detector_without_torch(tmp_path):
    """load_model keeps skops from importing all of scikit-learn (and torch)."""
    import subprocess
    import sys

    from specdetect.detect import Detector, save_model

    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1, (20, 16)), rng.normal(1, 1, (20, 16))]
    y = np.r_[np.zeros(20), np.ones(20)]
    model = tmp_path / "m.skops"
    detector = Detector("logreg", FeatureConfig(bins=16), cv=0).fit(X, y)
    save_model(detector, model)
    np.save(tmp_path / "X.npy", X)
    rows, probabilities = str(tmp_path / "X.npy"), str(tmp_path / "p.npy")
    code = (
        "import sys, numpy as np; from specdetect.detect import load_model; "
        f"d = load_model({str(model)!r}); "
        f"np.save({probabilities!r}, d.predict_proba(np.load({rows!r}))); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), detector.predict_proba(X))


# --------------------------------------------------------------------------
# The library entry point: specdetect.scan.scan
# --------------------------------------------------------------------------
def test_scan_entry_point_equals_scan_records_and_resumes(images, tmp_path):
    """scan() with resume= gives the same records; a rerun reads the file, computes nothing."""
    from specdetect.scan import scan

    direct = list(scan_records(images, BrightnessDetector(), workers=1))
    assert list(scan(images, BrightnessDetector(), workers=1)) == direct

    results = tmp_path / "results.jsonl"
    first = list(scan(images, BrightnessDetector(), workers=1, resume=results, shard_size=4))
    assert first == direct
    assert len(results.read_text().splitlines()) == len(images)

    idle = BrightnessDetector()
    again = list(scan(images, idle, workers=1, resume=results, shard_size=4))
    assert again == direct and idle.batches == []


def test_spectra_reach_the_records_but_not_the_result_file(images, tmp_path):
    from specdetect.scan import scan

    results = tmp_path / "results.jsonl"
    records = list(scan(images, BrightnessDetector(), workers=1, resume=results, spectra=True))
    scored = [r for r in records if "error" not in r]
    assert scored and all(len(r["spectrum"]) == CONFIG.bins for r in scored)
    assert "spectrum" not in results.read_text()
    plain = list(scan(images, BrightnessDetector(), workers=1))
    assert [{k: v for k, v in r.items() if k != "spectrum"} for r in records] == plain


@pytest.mark.parametrize(
    "options, message",
    [
        ({"threshold": 1.5}, "threshold must be in [0, 1]"),
        ({"device": "tpu"}, "device must be auto, cpu or cuda"),
        ({"frames": 0}, "frames must be at least 1"),
        ({"scheduler": "tcp://127.0.0.1:1", "cluster": "local:1"}, "at most one of"),
        ({"cluster": "remote:4"}, "--cluster must be local:N"),
        ({"shard_size": 0}, "shard size must be at least 1"),
    ],
)
def test_scan_refuses_bad_options_before_reading_anything(options, message):
    from specdetect.scan import scan

    def never():
        raise AssertionError("inputs were read")
        yield

    with pytest.raises(Exception, match=re.escape(message)):
        scan(never(), BrightnessDetector(), **options)


def test_scan_opens_a_model_file_and_refuses_a_bad_one(images, tmp_path):
    from specdetect.detect import ModelError, default_model_path
    from specdetect.scan import open_detector, scan

    records = list(scan(images[:3], str(default_model_path()), workers=1))
    assert [r["path"] for r in records] == images[:3]
    detector, name = open_detector()
    assert name.endswith("default.skops") and 0.0 < detector.threshold_ < 1.0

    bad = tmp_path / "bad.skops"
    bad.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="bad.skops"):
        open_detector(bad)
    with pytest.raises(ModelError, match="missing.skops"):
        open_detector(tmp_path / "missing.skops")


def test_the_scan_never_climbs_back_into_the_command_line(tmp_path):
    """The library runs a resumed scan, and the features job, without importing specdetect.cli."""
    import subprocess
    import sys

    for i in range(3):
        _image(tmp_path / f"i{i}.png", 40 * i + 20, seed=i)
    code = (
        "import sys, specdetect.scan as s, specdetect.featurize as f\n"
        "from specdetect.features import FeatureConfig\n"
        f"inputs, n = s.list_inputs([{str(tmp_path)!r}])\n"
        f"records = list(s.scan(inputs, workers=1, resume={str(tmp_path / 'r.jsonl')!r}))\n"
        f"feats = list(f.featurize(f.list_inputs([{str(tmp_path)!r}])[0], workers=1))\n"
        "assert n == len(records) == len(feats) == 3, (n, records)\n"
        "assert all(r.ok for r in feats) and all('score' in r for r in records)\n"
        "print(sorted(m for m in sys.modules if m.startswith('specdetect.cli')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _blas_threads() -> set[int]:
    import threadpoolctl

    return {i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}


class _ThreadRecordingDetector(BrightnessDetector):
    """Records the BLAS thread counts it is called with."""

    def predict_proba(self, X):
        self.threads = _blas_threads()
        return super().predict_proba(X)


def test_scoring_runs_blas_on_one_thread_and_restores_it():
    """Scoring beside busy decoders: extra BLAS threads would only contend for the cores."""
    pytest.importorskip("threadpoolctl")
    from specdetect.pipeline import one_blas_thread
    from specdetect.scan import fake_scores

    before = _blas_threads()
    assert before  # NumPy's BLAS is seen
    with one_blas_thread():
        assert _blas_threads() == {1}
    assert _blas_threads() == before
    detector = _ThreadRecordingDetector()
    fake_scores(detector, np.zeros((3, 16)))
    assert detector.threads == {1}
    assert _blas_threads() == before


def test_decoding_workers_run_blas_on_one_thread():
    """The workers' BLAS was loaded before the fork: the variables alone do not limit it."""
    pytest.importorskip("threadpoolctl")
    from specdetect.pipeline import _make_pool

    pool = _make_pool(1)
    try:
        assert pool.submit(_blas_threads).result() == {1}
    finally:
        pool.shutdown()
