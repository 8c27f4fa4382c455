"""`specdetect scan --format sarif|junit` and `--html`: validated output, on the shipped samples.

SARIF is validated against the published SARIF 2.1.0 JSON schema
(``tests/data/sarif``, sources and license in its ``SOURCES.md``); JUnit is
parsed and its counts checked; the HTML page is rendered in headless
Chromium (skipped only when the ``chromium`` command is absent).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from specdetect.cli import app

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
SCHEMA = Path(__file__).resolve().parent / "data" / "sarif" / "sarif-schema-2.1.0.json"
runner = CliRunner()

#: Inputs relative to the scan folder: real, fake, a fake video, and two unreadable.
REAL = ["real/coffee.png", "real/pagoda.png", "real/flower.png"]
FAKE = ["fake/graffiti-transconv.png", "fake/pedestrians-transconv.mp4"]
BAD = ["broken/empty.png", "broken/missing.jpg"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A folder with copies of the bundled samples, an odd file name and unreadable inputs."""
    root = tmp_path_factory.mktemp("reports")
    for name in REAL + FAKE:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(SAMPLES / name, root / name)
    (root / "broken").mkdir()
    (root / "broken" / "empty.png").write_bytes(b"")
    odd = os.fsdecode(b"fake/caf\xe9 & <1>.png")  # not UTF-8, and XML/URI metacharacters
    shutil.copy(SAMPLES / "fake" / "notebook-nearest.png", root / odd)
    return root, [*REAL, *FAKE, odd, *BAD]


def scan(root: Path, paths: list[str], *args: str):
    cwd = os.getcwd()
    os.chdir(root)
    try:
        return runner.invoke(
            app, ["scan", *paths, "--frames", "4", "--workers", "1", *args], catch_exceptions=False
        )
    finally:
        os.chdir(cwd)


def test_sarif_validates_against_the_published_schema(inputs):
    import jsonschema

    root, paths = inputs
    result = scan(root, paths, "--format", "sarif")
    assert result.exit_code == 2, result.stderr  # unreadable inputs win over flagged ones
    log = json.loads(result.stdout)
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft4Validator.check_schema(schema)
    jsonschema.Draft4Validator(schema).validate(log)

    (run,) = log["runs"]
    assert log["version"] == "2.1.0" and run["tool"]["driver"]["name"] == "specdetect"
    flagged = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"]
    }
    assert flagged == {
        "fake/graffiti-transconv.png",
        "fake/pedestrians-transconv.mp4",
        "fake/caf%E9%20%26%20%3C1%3E.png",  # the file's bytes, percent-encoded
    }
    for item in run["results"]:
        assert item["ruleId"] == "generated-media" and item["level"] == "error"
        assert item["properties"]["score"] >= run["properties"]["threshold"]
        assert item["properties"]["label"] == "fake"
    (video,) = [r for r in run["results"] if r["properties"]["kind"] == "video"]
    assert len(video["properties"]["frame_scores"]) == 4

    (invocation,) = run["invocations"]
    assert invocation["executionSuccessful"] is False
    notes = invocation["toolExecutionNotifications"]
    assert [n["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for n in notes] == BAD
    assert all(n["level"] == "error" for n in notes)
    assert run["properties"]["summary"] == {"n": 8, "fake": 3, "real": 3, "errors": 2}


def test_sarif_of_a_clean_scan_is_valid_and_empty(inputs):
    import jsonschema

    root, _ = inputs
    result = scan(root, REAL, "--format", "sarif")
    assert result.exit_code == 0, result.stderr
    log = json.loads(result.stdout)
    jsonschema.Draft4Validator(json.loads(SCHEMA.read_text())).validate(log)
    assert log["runs"][0]["results"] == []
    assert log["runs"][0]["invocations"][0]["executionSuccessful"] is True


def test_junit_has_a_test_case_per_input(inputs, tmp_path):
    root, paths = inputs
    out = tmp_path / "junit.xml"
    result = scan(root, paths, "--format", "junit", "-o", str(out))
    assert result.exit_code == 2 and result.stdout == ""
    tree = ET.parse(out)  # well-formed XML, odd file name included
    suites = tree.getroot()
    assert suites.tag == "testsuites"
    (suite,) = suites.findall("testsuite")
    for element in (suites, suite):
        assert element.get("tests") == "8"
        assert element.get("failures") == "3" and element.get("errors") == "2"
    cases = suite.findall("testcase")
    assert len(cases) == 8
    names = [case.get("name") for case in cases]
    assert names[:5] == [*REAL, *FAKE] and names[-2:] == BAD
    assert names[5] == "fake/caf\\xe9 & <1>.png"  # undecodable byte shown as \xe9
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    errored = [c.get("name") for c in cases if c.find("error") is not None]
    assert failed == [*FAKE, names[5]] and errored == BAD
    assert "score" in cases[0].find("system-out").text
    assert cases[-1].find("error").get("message") == "no such file"
    assert {p.get("name") for p in suite.find("properties")} >= {"model", "threshold"}


def test_format_list_in_usage_errors(inputs):
    root, _ = inputs
    result = scan(root, REAL, "--format", "xml")
    assert result.exit_code == 2
    assert "--format must be text, json, csv, sarif or junit" in result.stderr


# --------------------------------------------------------------------------- HTML
def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def render(page: Path, tmp_path: Path) -> tuple[Path, str]:
    """A screenshot and the DOM text of ``page`` in headless Chromium, offline."""
    base = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1200,900",
    ]
    shot = tmp_path / "page.png"
    url = page.resolve().as_uri()
    subprocess.run([*base, f"--screenshot={shot}", url], capture_output=True, timeout=60)
    dom = subprocess.run(
        [*base, "--dump-dom", url], capture_output=True, text=True, timeout=60
    ).stdout
    return shot, dom


def test_html_review_page(inputs, tmp_path):
    """Flagged first by score, thumbnails and plots inline, nothing fetched, JSON unchanged."""
    import re

    root, paths = inputs
    page = tmp_path / "review.html"
    plain = scan(root, paths, "--format", "json")
    result = scan(root, paths, "--format", "json", "--html", str(page))
    assert result.exit_code == 2 and result.stdout == plain.stdout  # no spectra leak into JSON
    text = page.read_text(encoding="utf-8")
    # Self-contained: no URL but the inline data: URIs, no external script or style.
    assert not re.search(r"(src|href)=\"(?!data:|#)", text)
    assert "http" not in text.replace("http://www.w3.org/2000/svg", "")
    assert text.count("data:image/jpeg;base64,") == 6  # 6 decodable inputs
    assert text.count('href="#band"') == 6 and 'id="band"' in text
    rows = re.findall(r'<tr class="(\w+)" data-rank="(\d+)" data-score="([^"]+)"', text)
    labels = [label for label, _, _ in rows]
    assert labels == ["fake"] * 3 + ["error"] * 2 + ["real"] * 3
    flagged = [float(score) for label, _, score in rows if label == "fake"]
    assert flagged == sorted(flagged, reverse=True)
    assert text.count("frames flagged") == 1 and "<title>frame 4:" in text


@pytest.mark.skipif(
    chromium() is None, reason="chromium is not installed (apt-get install chromium)"
)
def test_html_review_page_renders_in_headless_chromium(inputs, tmp_path):
    root, paths = inputs
    page = tmp_path / "review.html"
    assert scan(root, paths, "--html", str(page), "--exit-zero").exit_code == 0
    shot, dom = render(page, tmp_path)
    assert shot.exists() and shot.stat().st_size > 20_000, "no screenshot"
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1200, 900)
        assert len(image.convert("RGB").getcolors(1 << 20) or []) > 500  # pictures, not blank
    assert "3 of 8 inputs flagged" in dom
    assert "fake/graffiti-transconv.png" in dom and "no such file" in dom
    assert "score high to low" in dom  # the sort buttons were added by the inline script
    assert dom.index("fake/pedestrians-transconv.mp4") < dom.index("real/coffee.png")


def test_html_memory_stays_bounded(tmp_path):
    """100,000-input scans: rows are spooled to disk, details capped; memory does not grow."""
    import tracemalloc

    from specdetect.report_html import HtmlReport

    spectrum = [0.1 * i for i in range(64)]

    def records(n):
        for i in range(n):
            label = "fake" if i % 4 == 0 else "real"
            yield {"path": f"/nowhere/{i:06d}.png", "kind": "image", "score": (i % 997) / 997,
                   "label": label, "spectrum": spectrum}  # fmt: skip

    peaks, sizes = [], []
    for n in (500, 4_000):
        page = tmp_path / f"p{n}.html"
        tracemalloc.start()
        with HtmlReport(page, "m.skops", 0.5, max_flagged_details=50, max_other_details=5) as out:
            for record in records(n):
                out.write(record)
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        sizes.append(sum(len(json.dumps(r)) for r in records(n)))
        text = page.read_text()
        assert text.count("<tr class=") == n
        assert text.count('href="#band"') == 55  # plots for the capped details only
    # Holding the extra 3,500 records would take their JSON size, and more as dicts.
    assert peaks[1] - peaks[0] < 0.2 * (sizes[1] - sizes[0]), (peaks, sizes)
