"""Run the atheris harness for a while (``FUZZ_ATHERIS_SECONDS``, default 60) when installed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from seeds import seed_files

HARNESS = os.path.join(os.path.dirname(__file__), "atheris_read_luma.py")


def test_atheris_read_luma(tmp_path):
    pytest.importorskip("atheris", reason="optional: pip install atheris")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, (name, data) in enumerate(sorted(seed_files().items())):
        # The harness reads the extension from the first byte.
        suffixes = [".png", ".jpg", ".gif", ".bmp", ".tif", ".webp"]
        ext = os.path.splitext(name)[1]
        first = suffixes.index(ext) if ext in suffixes else 0
        (corpus / f"seed-{i}").write_bytes(bytes([first]) + data)
    seconds = int(os.environ.get("FUZZ_ATHERIS_SECONDS", "60"))
    proc = subprocess.run(
        [
            sys.executable,
            HARNESS,
            f"-max_total_time={seconds}",
            "-timeout=10",
            "-rss_limit_mb=2048",
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
    )
    findings = sorted(p.name for p in tmp_path.iterdir() if p.name != "corpus")
    assert proc.returncode == 0 and not findings, (findings, proc.stderr[-3000:])
    assert "Done" in proc.stderr or "DONE" in proc.stderr  # it really ran
