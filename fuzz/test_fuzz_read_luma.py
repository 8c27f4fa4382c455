"""Fuzz the decoding boundary: any bytes given as an image end in an array or MediaError.

Never another exception, a crash, a hang over the timeout, or memory over the
cap (see sandbox.py). Run with ``make fuzz``; more examples with
``FUZZ_EXAMPLES=5000 make fuzz``. Not part of CI.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sandbox import Sandbox
from seeds import crafted_png, seed_files

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # the sandbox has its own timeout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SEEDS = seed_files()
EXTENSIONS = [".png", ".jpg", ".gif", ".bmp", ".tif", ".webp", ".jpeg", ".tiff"]


@pytest.fixture(scope="module")
def sandbox():
    box = Sandbox(timeout=float(os.environ.get("FUZZ_TIMEOUT", "10")), memory_mb=1024)
    yield box
    box.close()


def check(sandbox: Sandbox, data: bytes, suffix: str) -> None:
    outcome = sandbox.run(data, suffix)
    assert outcome.fine, (
        f"{outcome.kind}: {outcome.detail}\ninput ({len(data)} bytes): {data[:64]!r}"
    )


def test_sandbox_reports_both_fine_outcomes(sandbox):
    assert sandbox.run(SEEDS["rgb.png"], ".png").kind == "array"
    assert sandbox.run(b"", ".png").kind == "media_error"
    assert sandbox.run(b"\x00" * 100, ".jpg").kind == "media_error"


@FUZZ
@given(data=st.binary(max_size=4096), suffix=st.sampled_from(EXTENSIONS))
def test_arbitrary_bytes(sandbox, data, suffix):
    check(sandbox, data, suffix)


@st.composite
def mutated(draw):
    """A valid seed file with bytes overwritten, inserted, deleted, or cut short."""
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[name])
    for _ in range(draw(st.integers(0, 12))):
        op = draw(st.sampled_from(["set", "insert", "delete", "interesting"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        else:  # values that often sit on parser edges: sizes, counts, lengths
            value = draw(st.sampled_from([b"\xff\xff", b"\x00\x00", b"\x7f\xff\xff\xff", b"\x80"]))
            data[at : at + len(value)] = value
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data), os.path.splitext(name)[1]


@FUZZ
@given(case=mutated())
def test_mutated_valid_files(sandbox, case):
    data, suffix = case
    check(sandbox, data, suffix)


@FUZZ
@given(
    width=st.integers(0, 70_000),
    height=st.integers(0, 70_000),
    depth=st.sampled_from([1, 2, 4, 8, 16, 3, 0]),
    color=st.sampled_from([0, 2, 3, 4, 6, 1, 7]),
    interlace=st.sampled_from([0, 1, 2]),
    raw=st.one_of(st.binary(max_size=2048), st.integers(0, 2_000_000).map(lambda n: b"\0" * n)),
    palette=st.one_of(st.just(b""), st.binary(min_size=3, max_size=800)),
)
def test_crafted_png_headers(sandbox, width, height, depth, color, interlace, raw, palette):
    """Header fields past the signature checks; zero-filled streams act as zlib bombs."""
    check(sandbox, crafted_png(width, height, depth, color, interlace, raw, palette), ".png")
