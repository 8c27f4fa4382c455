"""The built wheel works away from the checkout: shipped model as package data, ``--version``.

Builds the wheel from a copy of the package's sources (so the checkout gets
no ``build/`` folder), installs it into a fresh virtual environment, and runs
it from another folder. Nothing is downloaded: the build uses this
environment's setuptools (``--no-build-isolation``), and the fresh
environment finds the dependencies (numpy, typer, ...) through a ``.pth``
line naming this environment's site-packages, a plain path entry, so this
environment's editable install of specdetect is not seen there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import specdetect
from specdetect.detect import default_model_path

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"

pytestmark = pytest.mark.slow


def run(*args, cwd=None, timeout=120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "models", source / "models")
    shutil.copytree(
        REPO / "specdetect",
        source / "specdetect",
        symlinks=True,  # specdetect/models/default.skops -> ../../models/default.skops
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    built = run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
        "-q", "-w", root / "dist", source,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (path,) = (root / "dist").glob("specdetect-*.whl")
    return path


def test_wheel_carries_the_shipped_model_and_the_version(wheel):
    assert wheel.name.startswith(f"specdetect-{specdetect.__version__}-")
    with zipfile.ZipFile(wheel) as archive:
        shipped = archive.read("specdetect/models/default.skops")
        names = archive.namelist()
    assert shipped == default_model_path().read_bytes()
    assert "specdetect/report_html.py" in names and "specdetect/cli/scan.py" in names


def test_installed_wheel_scans_from_another_folder(wheel, tmp_path):
    venv = tmp_path / "venv"
    made = run(sys.executable, "-m", "venv", "--without-pip", venv)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    deps = sysconfig.get_paths()["purelib"]
    (Path(site.stdout.strip()) / "_specdetect_test_deps.pth").write_text(deps + "\n")
    installed = run(
        sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
        "-q", wheel,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(SAMPLES / "fake" / "graffiti-transconv.png", elsewhere / "upload.png")
    shutil.copy(SAMPLES / "real" / "coffee.png", elsewhere / "coffee.png")

    where = run(python, "-c", "import specdetect; print(specdetect.__file__)", cwd=elsewhere)
    assert where.stdout.strip().startswith(str(venv)), where.stdout + where.stderr

    scan = run(
        venv / "bin" / "specdetect", "scan", "upload.png", "coffee.png", "--format", "json",
        "--workers", "1", cwd=elsewhere,
    )  # fmt: skip
    assert scan.returncode == 1, scan.stderr  # the fake is flagged
    report = json.loads(scan.stdout)
    assert report["model"].startswith(str(venv)) and report["model"].endswith("default.skops")
    assert [(r["path"], r["label"]) for r in report["results"]] == [
        ("upload.png", "fake"),
        ("coffee.png", "real"),
    ]

    version = run(python, "-m", "specdetect", "--version", cwd=elsewhere)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"specdetect {specdetect.__version__}"
