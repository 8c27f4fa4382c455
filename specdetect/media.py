"""Reading media: finding input files and decoding images to luma.

Every failure to read an input raises :class:`MediaError`, whose message is a
single line ``"<path>: <cause>"``; callers catch that one type, report it and
go on with the other inputs.
"""

from __future__ import annotations

import glob
import os
import stat
import sys
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "MediaError",
    "has_extension",
    "iter_paths",
    "luma",
    "open_image",
    "read_luma",
]

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
)
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm"})

#: Images with more pixels than this are refused before decoding (decompression
#: bombs). Override per call or with the SPECDETECT_MAX_PIXELS environment variable.
DEFAULT_MAX_PIXELS = 100_000_000

# BT.601 luma weights, as PIL uses them for RGB -> L/F conversions.
_LUMA = (0.299, 0.587, 0.114)


class MediaError(Exception):
    """An input could not be read. ``str(err)`` is ``"<path>: <reason>"`` on one line."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = " ".join(str(reason).split()) or "unreadable"
        super().__init__(f"{self.path}: {self.reason}")

    def __reduce__(self):  # keep path and reason across process pools
        return (type(self), (self.path, self.reason))


def max_pixels_default() -> int:
    """The pixel limit in force: SPECDETECT_MAX_PIXELS if set, else the default."""
    value = os.environ.get("SPECDETECT_MAX_PIXELS")
    return int(value) if value else DEFAULT_MAX_PIXELS


def open_image(path: str | os.PathLike, max_pixels: int | None = None) -> Image.Image:
    """Open and fully decode an image, with EXIF orientation applied.

    Parameters
    ----------
    path : str or PathLike
        Image file (JPEG, PNG, WebP, BMP, TIFF; GIF gives its first frame).
    max_pixels : int, optional
        Refuse images with more pixels than this before decoding them.

    Returns
    -------
    PIL.Image.Image
        The decoded image in its own mode (not converted).

    Raises
    ------
    MediaError
        Missing, empty, truncated, not an image, or over the pixel limit.
    """
    return _decode(path, max_pixels, luma_only=False)


def _decode(path, max_pixels: int | None, luma_only: bool) -> Image.Image:
    limit = max_pixels_default() if max_pixels is None else max_pixels
    try:
        with warnings.catch_warnings():
            # We enforce our own limit; PIL's warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            _check_regular_file(path)
            image = Image.open(path)
            width, height = image.size
            if width * height > limit:
                raise MediaError(
                    path, f"image is {width}x{height} pixels, over the limit of {limit}"
                )
            if width < 1 or height < 1:
                raise MediaError(path, f"image has no pixels ({width}x{height})")
            if luma_only and image.format == "JPEG" and image.mode == "RGB":
                # A YCbCr JPEG stores BT.601 luma as its Y plane: have libjpeg
                # return it directly, at full size (no DCT scaling), skipping
                # chroma up-sampling and colour conversion.
                image.draft("L", image.size)
            image.load()
            return ImageOps.exif_transpose(image)
    except MediaError:
        raise
    except FileNotFoundError:
        raise MediaError(path, "no such file") from None
    except IsADirectoryError:
        raise MediaError(path, "is a directory") from None
    except PermissionError:
        raise MediaError(path, "permission denied") from None
    except UnidentifiedImageError:
        size = _size_or_none(path)
        reason = "empty file" if size == 0 else "not a recognized image format"
        raise MediaError(path, reason) from None
    except Image.DecompressionBombError as exc:
        raise MediaError(path, f"decompression bomb: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None and exc.strerror:
            # A file-system error (symlink loop, I/O error), not a decoding one.
            raise MediaError(path, f"cannot read file ({exc.strerror})") from None
        raise MediaError(path, f"cannot decode image ({_describe(exc)})") from None


def _check_regular_file(path) -> None:
    """Refuse what is not a regular file before opening it: a named pipe would block."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        return  # a file object: nothing to check
    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise MediaError(path, "is a directory")
    if not stat.S_ISREG(mode):
        raise MediaError(path, "not a regular file (named pipe, socket or device)")


def luma(image: Image.Image) -> np.ndarray:
    """Grayscale of a decoded image as float32 in [0, 255].

    RGB-like modes use ITU-R BT.601 luma ``0.299 R + 0.587 G + 0.114 B``;
    alpha is dropped (not composited); 16-bit modes are scaled by 255/65535;
    mode ``F`` is taken as it is; ``1`` maps to 0 and 255.
    """
    mode = image.mode
    if mode in ("L", "F"):
        gray = image
    elif mode in ("LA", "La"):
        gray = image.getchannel(0)
    elif mode.startswith("I"):  # I;16, I;16B, I;16L, I;16N and I (16-bit PNG, TIFF)
        values = np.asarray(image, dtype=np.float32)
        return values * np.float32(255.0 / 65535.0)
    elif mode == "1":
        gray = image.convert("L")
    elif mode in ("RGB", "RGBX"):
        gray = image.convert("F")
    else:  # RGBA, P, PA, CMYK, YCbCr, LAB, HSV: through RGB, alpha dropped
        gray = image.convert("RGB").convert("F")
    return np.asarray(gray, dtype=np.float32)


def read_luma(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
    """Decode an image file to a float32 BT.601 luma array in [0, 255].

    Never resizes. A YCbCr JPEG is decoded straight to its Y plane, which is
    JFIF's BT.601 luma; it differs from the luma of the decoded RGB only where
    that RGB clips (by 0.2 grey levels on average). Raises :class:`MediaError`
    for any unreadable input.

    Examples
    --------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "gray.png")
    >>> Image.new("RGB", (3, 2), (255, 0, 0)).save(path)
    >>> [round(float(v), 3) for v in read_luma(path)[0]]
    [76.245, 76.245, 76.245]
    """
    image = _decode(path, max_pixels, luma_only=True)
    try:
        return luma(image)
    except (OSError, ValueError) as exc:
        raise MediaError(path, f"cannot convert image ({_describe(exc)})") from None


def iter_paths(
    inputs: Iterable[str | os.PathLike],
    extensions: Iterable[str] = IMAGE_EXTENSIONS,
    stdin: Iterable[str] | None = None,
) -> Iterator[str]:
    """Expand files, folders (recursive) and globs into file paths, lazily.

    Parameters
    ----------
    inputs : iterable of str or PathLike
        Files are yielded as given (whatever their extension, so that a wrong
        file is reported rather than silently skipped); folders are walked
        recursively in sorted order, keeping files whose extension is in
        ``extensions`` (case-insensitive); other strings are treated as glob
        patterns. ``"-"`` reads one path per line from ``stdin``.
    extensions : iterable of str
        Lower-case extensions with the dot.
    stdin : iterable of str, optional
        Lines to read for ``"-"`` (default ``sys.stdin``).

    Yields
    ------
    str
        Paths, in a deterministic order. A pattern or missing path that
        matches nothing is yielded as it is, so the reader reports it.
    """
    extensions = frozenset(e.lower() for e in extensions)
    for item in inputs:
        item = os.fspath(item)
        if item == "-":
            for line in stdin if stdin is not None else sys.stdin:
                line = line.rstrip("\r\n")
                if line:
                    yield line
        elif os.path.isdir(item):
            yield from _walk(item, extensions)
        elif os.path.lexists(item):
            yield item
        elif glob.has_magic(item):
            matches = sorted(glob.iglob(item, recursive=True))
            if not matches:
                yield item
            for match in matches:
                if os.path.isdir(match):
                    yield from _walk(match, extensions)
                elif has_extension(match, extensions):
                    yield match
        else:
            yield item


def _walk(folder: str, extensions: frozenset[str]) -> Iterator[str]:
    """Files under ``folder`` with a wanted extension, depth-first, sorted, lazily."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        yield folder  # unreadable folder: let the reader report it
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(entry.path, extensions)
        elif has_extension(entry.name, extensions):
            yield entry.path


def has_extension(name: str, extensions: frozenset[str]) -> bool:
    """Whether ``name`` ends in one of ``extensions`` (lower-case, with the dot)."""
    return os.path.splitext(name)[1].lower() in extensions


def _size_or_none(path) -> int | None:
    try:
        return Path(path).stat().st_size
    except OSError:
        return None


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
