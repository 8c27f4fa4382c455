"""Reading media: finding input files and decoding images to luma.

Every failure to read an input raises :class:`MediaError`, whose message is a
single line ``"<path>: <cause>"``; callers catch that one type, report it and
go on with the other inputs.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import io
import os
import stat
import sys
import time
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

#: Most pixels a file may claim per byte it holds (SPECDETECT_MAX_PIXELS_PER_BYTE
#: overrides both; 0 turns the check off). A Huffman-coded JPEG spends at least
#: one bit on every 8x8 block of its full-resolution component (the DC code of
#: its first scan), so a complete file holds at most 512 pixels per byte; real
#: flat images with the standard tables stay under 100. Other formats (PNG,
#: GIF, WebP, TIFF, arithmetic-coded JPEG) get deflate's largest ratio, 1032:1,
#: on one-bit pixels: 8,256 pixels per byte. A header edited to claim more than
#: the file can hold, which decoders fill with grey, is refused before decoding.
DEFAULT_MAX_PIXELS_PER_BYTE = {"JPEG": 512, "other": 8 * 1032}

#: The bytes-per-pixel check applies only above this size: smaller images are
#: cheap to decode whatever they claim (a flat 1000x1000 lossless WebP is 86 bytes).
PIXELS_PER_BYTE_FLOOR = 1 << 22

#: Most scans a JPEG may have (SPECDETECT_MAX_JPEG_SCANS), for images up to
#: :data:`SCAN_PIXELS_FLOOR` pixels; above, the limit shrinks in proportion
#: (25 scans at 100 megapixels). Each progressive scan is a pass over the whole
#: image, so decoding time grows with scans times pixels, while a repeated scan
#: costs the file a dozen bytes. Encoders write 6 to about 20; 256 is
#: nvImageCodec's default, after the libjpeg-turbo security audit.
DEFAULT_MAX_JPEG_SCANS = 256
SCAN_PIXELS_FLOOR = 10_000_000

#: CPU time one image may spend being decoded: this many seconds plus
#: :data:`DECODE_SECONDS_PER_MEGAPIXEL` for each megapixel it claims (about 4 times
#: what a 24-megapixel PNG needs on the development machine, 50 ns a pixel).
#: SPECDETECT_DECODE_SECONDS sets a fixed budget instead (0 turns it off).
#: Checked each time the decoder asks for more of the file (every 64 KB) and
#: once decoding ends.
DECODE_SECONDS_BASE = 2.0
DECODE_SECONDS_PER_MEGAPIXEL = 0.2

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


def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def _max_pixels_per_byte(fmt: str) -> float:
    """The pixels-per-byte limit in force for an image format (0: no limit)."""
    default = DEFAULT_MAX_PIXELS_PER_BYTE.get(fmt, DEFAULT_MAX_PIXELS_PER_BYTE["other"])
    return _env_number("SPECDETECT_MAX_PIXELS_PER_BYTE", default)


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
        with warnings.catch_warnings(), contextlib.ExitStack() as stack:
            # We enforce our own limit; PIL's warning would only be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            _check_regular_file(path)
            if isinstance(path, (str, bytes, os.PathLike)):
                source = stack.enter_context(_BudgetedFile(path))
            else:
                source = path  # a file object: no size to check it against
            image = Image.open(source)
            width, height = image.size
            if width * height > limit:
                raise MediaError(
                    path,
                    f"image is {width}x{height} pixels, over the limit of {limit} "
                    "(SPECDETECT_MAX_PIXELS raises it)",
                )
            if width < 1 or height < 1:
                raise MediaError(path, f"image has no pixels ({width}x{height})")
            if isinstance(source, _BudgetedFile):
                _check_claims(path, image, source)
                source.budget_for(width * height)
            if luma_only and image.format == "JPEG" and image.mode == "RGB":
                # A YCbCr JPEG stores BT.601 luma as its Y plane: have libjpeg
                # return it directly, at full size (no DCT scaling), skipping
                # chroma up-sampling and colour conversion.
                image.draft("L", image.size)
            image.load()
            if isinstance(source, _BudgetedFile):
                source.check_budget()  # decoders that read the file in one go
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
    except DecodeBudgetExceeded as exc:
        raise MediaError(
            path,
            f"decoding took more than {exc.args[0]:g} s of CPU time "
            "(SPECDETECT_DECODE_SECONDS raises the limit)",
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as exc:
        if isinstance(exc, OSError) and exc.errno is not None and exc.strerror:
            # A file-system error (symlink loop, I/O error), not a decoding one.
            raise MediaError(path, f"cannot read file ({exc.strerror})") from None
        raise MediaError(path, f"cannot decode image ({_describe(exc)})") from None


class DecodeBudgetExceeded(Exception):
    """Raised from inside a decoder's read when the decode-time budget is spent."""


class _BudgetedFile(io.BufferedReader):
    """An image file whose reads stop once decoding has used its CPU-time budget.

    PIL feeds its decoders by reading the file in 64 KB blocks, so a decoder
    running on hostile data is stopped at its next read.
    """

    def __init__(self, path):
        super().__init__(io.FileIO(path, "rb"))
        self.size = os.fstat(self.fileno()).st_size
        self.fixed = os.environ.get("SPECDETECT_DECODE_SECONDS")
        self.seconds = float(self.fixed) if self.fixed else DECODE_SECONDS_BASE
        self.started = time.thread_time()  # this thread's CPU: a busy machine does not count

    def budget_for(self, pixels: int) -> None:
        """Set the budget for an image of ``pixels`` pixels, now that its header is read."""
        if not self.fixed:
            self.seconds = DECODE_SECONDS_BASE + DECODE_SECONDS_PER_MEGAPIXEL * pixels / 1e6

    def check_budget(self) -> None:
        if self.seconds > 0 and time.thread_time() - self.started > self.seconds:
            raise DecodeBudgetExceeded(self.seconds)

    def read(self, size: int | None = -1) -> bytes:
        self.check_budget()
        return super().read(size)


def _check_claims(path, image: Image.Image, source: _BudgetedFile) -> None:
    """Refuse an image that claims more than its bytes can hold, or too many JPEG scans."""
    width, height = image.size
    pixels = width * height
    arithmetic, scans = False, 0
    jpeg = image.format in ("JPEG", "MPO")  # MPO: a JPEG with more pictures after it
    if jpeg:
        scan_limit = int(_env_number("SPECDETECT_MAX_JPEG_SCANS", DEFAULT_MAX_JPEG_SCANS))
        if pixels > SCAN_PIXELS_FLOOR:
            scan_limit = max(1, scan_limit * SCAN_PIXELS_FLOOR // pixels) if scan_limit else 0
        arithmetic, scans = _jpeg_structure(source, stop_after=scan_limit)
        if scan_limit > 0 and scans > scan_limit:
            raise MediaError(
                path,
                f"JPEG has more than {scan_limit} scans for {width}x{height} pixels (each "
                "progressive scan is a pass over the whole image; SPECDETECT_MAX_JPEG_SCANS "
                "raises the limit)",
            )
    fmt = "JPEG" if jpeg and not arithmetic else "other"
    ratio = _max_pixels_per_byte(fmt)
    if pixels > PIXELS_PER_BYTE_FLOOR and ratio > 0 and pixels > ratio * source.size:
        raise MediaError(
            path,
            f"image claims {width}x{height} pixels but the file holds only {source.size} "
            f"bytes, over the limit of {ratio:g} pixels per byte for {image.format} "
            "(an edited header or a truncated file; SPECDETECT_MAX_PIXELS_PER_BYTE "
            "raises the limit)",
        )


_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_ARITHMETIC_SOF = frozenset({0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})


def _jpeg_structure(handle: io.BufferedReader, stop_after: int) -> tuple[bool, int]:
    """Whether a JPEG is arithmetic-coded, and how many scans it has.

    Walks the header segments up to the first scan (so an embedded EXIF
    thumbnail is skipped), then counts the ``FF DA`` (start of scan) markers
    after it: entropy-coded data cannot contain that byte pair (a data byte
    ``FF`` is always followed by ``00``). Counting stops past ``stop_after``
    (when positive). The file position is restored.
    """
    start = handle.tell()
    arithmetic, scans = False, 0
    try:
        handle.seek(0)
        if handle.read(2) != b"\xff\xd8":
            return False, 0
        while True:
            byte = handle.read(1)
            if not byte:
                return arithmetic, 0
            if byte != b"\xff":
                return arithmetic, 0  # not at a marker: a broken header, PIL reports it
            marker = handle.read(1)
            while marker == b"\xff":  # fill bytes
                marker = handle.read(1)
            if not marker:
                return arithmetic, 0
            code = marker[0]
            if code in _STANDALONE:
                continue
            length = int.from_bytes(handle.read(2), "big")
            if code in _SOF_MARKERS:
                arithmetic = code in _ARITHMETIC_SOF
            if code == 0xDA:
                scans = 1
                break
            handle.seek(max(length - 2, 0), os.SEEK_CUR)
        previous = b""
        while stop_after <= 0 or scans <= stop_after:
            chunk = handle.read(1 << 20)
            if not chunk:
                break
            scans += (previous + chunk).count(b"\xff\xda")
            previous = chunk[-1:] if chunk[-1:] == b"\xff" else b""
        return arithmetic, scans
    finally:
        handle.seek(start)


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
            yield from _expand_pattern(item, extensions)
        else:
            yield item


def _expand_pattern(pattern: str, extensions: frozenset[str]) -> Iterator[str]:
    """The files a glob pattern names, each once; its matching folders are walked.

    Matches are sorted; a matching folder is walked like a folder input. A
    real folder is walked at most once (``F/**`` matches every folder below
    ``F`` too), and a file reached by several paths (through a symbolic link
    to a folder) is reported once, under the first of them.
    """
    # Links among the matches come last, so that a file the pattern reaches both
    # through a link and without one is reported under its own path.
    matches = sorted(_glob(pattern), key=lambda path: (os.path.islink(path), path))
    if not matches:
        yield pattern  # the reader reports "no such file"
        return
    walked: set[tuple[int, int]] = set()
    reported: set = set()
    for match in matches:
        if os.path.isdir(match):
            found: Iterable[str] = _walk(match, extensions, walked)
        elif has_extension(match, extensions):
            found = [match]
        else:
            continue
        for path in found:
            key = _identity(path) or path
            if key not in reported:
                reported.add(key)
                yield path


def _identity(path: str) -> tuple[int, int] | None:
    """``(device, inode)`` of what ``path`` names after links, or None if it cannot be read."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    return (info.st_dev, info.st_ino)


def _glob(pattern: str) -> list[str]:
    """``glob.glob(pattern, recursive=True)``, except that ``**`` ends on link loops.

    Python's ``**`` follows symbolic links to folders without remembering
    where it has been: a link to ``.`` or ``..`` makes it run until paths
    overflow, listing every file again on each turn. Here ``**`` enters each
    real folder (device and inode) at most once. Hidden names (a leading dot)
    match only a pattern part that starts with a dot, and ``**`` skips them,
    as in :mod:`glob`.
    """
    parts = [part for part in pattern.split(os.sep) if part]
    bases = [os.sep if pattern.startswith(os.sep) else ""]
    dirs_only = pattern.endswith(os.sep)  # "a/*/" names folders only
    for number, part in enumerate(parts):
        last = number == len(parts) - 1 and not dirs_only
        found: list[str] = []
        if part == "**":
            visited: set[tuple[int, int]] = set()
            for base in bases:
                found.extend(_descend(base, visited, with_files=last))
            if number == len(parts) - 1:  # "**" alone names what is below "."
                found = [path for path in found if path]
        else:
            for base in bases:
                found.extend(_match_part(base, part, last))
        bases = found
    return bases


def _match_part(base: str, part: str, last: bool) -> Iterator[str]:
    """Entries of folder ``base`` matching one pattern part (only folders unless ``last``)."""
    if not glob.has_magic(part):
        path = os.path.join(base, part)
        if os.path.lexists(path) if last else os.path.isdir(path):
            yield path
        return
    try:
        names = sorted(os.listdir(base or os.curdir))
    except OSError:
        return
    for name in fnmatch.filter(names, part):
        if name.startswith(".") and not part.startswith("."):
            continue
        path = os.path.join(base, name)
        if last or os.path.isdir(path):
            yield path


def _descend(base: str, visited: set[tuple[int, int]], with_files: bool) -> list[str]:
    """``base`` and every folder below it (and files when ``with_files``), each real folder once.

    Links to folders are followed, but only after everything reachable without
    them: a folder is listed under its own path when it has one, and a link to
    a folder already listed (a loop such as ``self -> .``) adds nothing.
    """
    found: list[str] = []
    roots = [base]  # base, then the links to folders met on the way
    while roots:
        root = roots.pop(0)
        identity = _identity(root or os.curdir)
        if identity is None or identity in visited:
            continue
        visited.add(identity)
        found.append(root)
        folders = [root]
        while folders:
            folder = folders.pop()
            try:
                entries = sorted(os.scandir(folder or os.curdir), key=lambda e: e.name)
            except OSError:
                continue
            below = []
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                path = os.path.join(folder, entry.name)
                try:
                    is_dir = entry.is_dir()
                    is_link = entry.is_symlink()
                except OSError:
                    is_dir = is_link = False
                if is_dir and is_link:
                    roots.append(path)
                elif is_dir:
                    identity = _identity(path)
                    if identity is not None and identity not in visited:
                        visited.add(identity)
                        found.append(path)
                        below.append(path)
                elif with_files:
                    found.append(path)
            folders.extend(reversed(below))
    return found


def _walk(
    folder: str, extensions: frozenset[str], walked: set[tuple[int, int]] | None = None
) -> Iterator[str]:
    """Files under ``folder`` with a wanted extension, depth-first, sorted, lazily.

    Links to folders are not followed. With ``walked``, a set of real folders
    (device, inode) already walked, those are skipped and the new ones added.
    """
    if walked is not None:
        identity = _identity(folder)
        if identity in walked:
            return
        if identity is not None:
            walked.add(identity)
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        yield folder  # unreadable folder: let the reader report it
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(entry.path, extensions, walked)
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
