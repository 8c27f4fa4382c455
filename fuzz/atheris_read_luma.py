"""Coverage-guided fuzzing of ``read_luma`` with atheris (libFuzzer for Python).

Optional: ``pip install atheris`` (binary wheels for Linux x86-64; elsewhere it
needs clang to build). Usage, with any libFuzzer flags::

    python fuzz/atheris_read_luma.py -max_total_time=60 -timeout=10 -rss_limit_mb=2048 CORPUS/

Every input must end in a luma array or :class:`MediaError`; anything else
(another exception, a hang past ``-timeout``, memory past ``-rss_limit_mb``) is a
finding that libFuzzer saves as ``crash-*`` / ``timeout-*`` / ``oom-*``.
"""

from __future__ import annotations

import os
import sys
import tempfile

import atheris

# Images under this many pixels decode in well under the RSS limit; above it, refused.
os.environ.setdefault("SPECDETECT_MAX_PIXELS", "4000000")

with atheris.instrument_imports():
    import PIL.Image  # noqa: F401 - instrument Pillow's Python-level parsers too

    from specdetect.media import MediaError, read_luma

_FOLDER = tempfile.mkdtemp(
    prefix="specdetect-atheris-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None
)
_SUFFIXES = [".png", ".jpg", ".gif", ".bmp", ".tif", ".webp"]


def test_one_input(data: bytes) -> None:
    # The first byte picks the file name's extension, the rest is the file.
    suffix = _SUFFIXES[data[0] % len(_SUFFIXES)] if data else ".png"
    path = os.path.join(_FOLDER, "input" + suffix)
    with open(path, "wb") as handle:
        handle.write(data[1:])
    try:
        array = read_luma(path)
    except MediaError as exc:
        assert str(exc).startswith(path + ": ") and "\n" not in str(exc), str(exc)
        assert "MemoryError" not in str(exc), str(exc)
        return
    assert array.ndim == 2 and array.size > 0 and str(array.dtype) == "float32"


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
