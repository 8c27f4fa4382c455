"""A corpus of bad and awkward inputs, generated on the fly (nothing downloaded).

``make_corpus(folder)`` writes every case into ``folder`` and returns the list of
:class:`Entry` objects saying, for each top-level name, whether a reader must
score it (``good``) or report it with one error line naming it (``bad``, with a
regular expression for the cause).

Valid but unusual images (16-bit PNG, CMYK JPEG, animated GIF, a non-UTF-8
file name, an unreadable file when running as root) are *good*: a robust reader
scores them. Images too small to have a spectrum (1x1, 2x2) are *bad*.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Entry:
    """One input of the corpus.

    Attributes
    ----------
    path : str
        Full path as the scanner sees it (``os.fsdecode`` for non-UTF-8 names).
    good : bool
        Whether it must be scored.
    cause : str
        For bad entries, a regular expression the error's reason must match.
    video : bool
        Whether it is a video (the ``features`` command reads images only).
    """

    path: str
    good: bool
    cause: str = ""
    video: bool = False

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


def textured(size: int = 48, seed: int = 0) -> np.ndarray:
    """A smooth random RGB image (uint8), like a photo at low resolution."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size // 4, size // 4, 3), dtype=np.uint8)
    big = Image.fromarray(small).resize((size, size), Image.BICUBIC)
    noise = rng.normal(0, 6, (size, size, 3))
    return np.clip(np.asarray(big, np.float64) + noise, 0, 255).astype(np.uint8)


def encode(array: np.ndarray, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG signature and IHDR chunk (valid CRC) claiming ``width`` x ``height``."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    crc = struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    idat = b"IDAT" + zlib.compress(b"\x00" * 64)
    idat_crc = struct.pack(">I", zlib.crc32(idat) & 0xFFFFFFFF)
    return (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + crc
        + struct.pack(">I", len(idat) - 4)
        + idat
        + idat_crc
    )


def write_video(path: Path, n_frames: int, size: int = 32, seed: int = 0) -> None:
    """An MPEG-4 clip of ``n_frames`` textured frames.

    With 0 frames, an AVI file keeps its (empty) video stream, an MP4 file has
    no video stream at all.
    """
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(n_frames):
            frame = av.VideoFrame.from_ndarray(textured(size, seed + i), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        container.start_encoding()  # write the header even when there are no frames
        for packet in stream.encode():
            container.mux(packet)


def make_corpus(folder: str | os.PathLike, with_video: bool = True) -> list[Entry]:
    """Write the corpus into ``folder`` (created) and describe it.

    Every entry is a direct child of ``folder``; no entry hides another.
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    entries: list[Entry] = []

    def put(name: str, data: bytes, good: bool, cause: str = "", video: bool = False) -> Path:
        path = root / name
        path.write_bytes(data)
        entries.append(Entry(str(path), good, cause, video))
        return path

    rng = np.random.default_rng(1234)
    photo = textured(64, seed=1)
    jpeg = encode(photo, "JPEG", quality=90)
    png = encode(photo, "PNG")

    # Good inputs, ordinary and unusual.
    put("good-rgb.png", png, True)
    put("good-rgb.jpg", jpeg, True)
    put("good-gray.png", encode(textured(40, seed=2)[..., 0], "PNG"), True)
    put("good-small.jpg", encode(textured(16, seed=3), "JPEG"), True)
    sixteen = (textured(32, seed=4)[..., 0].astype(np.uint16) * 257).astype(np.uint16)
    put("good-16bit.png", encode(sixteen, "PNG"), True)
    cmyk = io.BytesIO()
    Image.fromarray(textured(32, seed=5)).convert("CMYK").save(cmyk, "JPEG")
    put("good-cmyk.jpg", cmyk.getvalue(), True)
    gif = io.BytesIO()
    frames = [Image.fromarray(textured(32, seed=6 + i)).convert("P") for i in range(3)]
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    put("good-animated.gif", gif.getvalue(), True)
    # Non-UTF-8 name (Latin-1 byte 0xE9): valid image, must be scored and named in output.
    raw_name = os.fsencode(str(root)) + b"/good-caf\xe9.png"
    with open(raw_name, "wb") as handle:
        handle.write(png)
    entries.append(Entry(os.fsdecode(raw_name), True))

    # Bad inputs.
    put("truncated.jpg", jpeg[: len(jpeg) // 2], False, "truncat|cannot decode")
    put("truncated.png", png[: len(png) // 2], False, "truncat|cannot decode")
    put("empty.png", b"", False, "empty")
    put("empty.jpg", b"", False, "empty")
    put("random.jpg", rng.bytes(4096), False, "not a recognized image")
    put("random.png", rng.bytes(512), False, "not a recognized image")
    put("text.gif", b"GIF89 this is not a gif\n" * 10, False, "not a recognized|cannot decode")
    put(
        "huge-header.png",
        png_header_only(100_000, 100_000),
        False,
        "over the limit|decompression bomb",
    )
    put("tiny-1x1.png", encode(np.full((1, 1, 3), 128, np.uint8), "PNG"), False, "too small")
    put("tiny-2x2.png", encode(textured(8, seed=7)[:2, :2], "PNG"), False, "too small")

    broken = root / "broken-link.png"
    os.symlink(root / "no-such-target.png", broken)
    entries.append(Entry(str(broken), False, "no such file|broken"))
    loop = root / "loop-link.png"
    os.symlink(loop, loop)
    entries.append(Entry(str(loop), False, "symbolic link"))

    bad_name = os.fsencode(str(root)) + b"/bad-\xff\xfe.jpg"
    with open(bad_name, "wb") as handle:
        handle.write(rng.bytes(300))
    entries.append(Entry(os.fsdecode(bad_name), False, "not a recognized image"))

    fifo = root / "named-pipe.png"
    os.mkfifo(fifo)  # opening it for reading would block forever
    entries.append(Entry(str(fifo), False, "not a regular file"))

    folder_like = root / "folder.png"
    folder_like.mkdir()
    entries.append(Entry(str(folder_like), False, "directory"))

    locked = put("no-permission.png", png, False, "permission denied")
    locked.chmod(0)
    if _readable(locked):  # running as root: the file is readable after all
        entries[-1] = Entry(str(locked), True)

    if with_video:
        good_video = root / "good-clip.mp4"
        write_video(good_video, 6)
        entries.append(Entry(str(good_video), True, video=True))
        clip = good_video.read_bytes()
        corrupt = clip[:48] + rng.bytes(len(clip) - 48)
        put("corrupt.mp4", corrupt, False, ".", video=True)
        for name in ("no-frames.avi", "no-video-stream.mp4"):
            write_video(root / name, 0)
            entries.append(Entry(str(root / name), False, ".", video=True))
    return entries


def _readable(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            handle.read(1)
        return True
    except PermissionError:
        return False


# ---------------------------------------------------------------------------
# Hostile images: tiny files that claim huge decodes
# ---------------------------------------------------------------------------
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_segments(data: bytes) -> list[tuple[int, int, int]]:
    """``(marker, start, end)`` of each header segment of a JPEG, up to the first scan.

    ``start`` is the offset of the ``0xFF`` byte; ``end`` the offset after
    the segment (for SOS, after its header, where the entropy-coded data begin).
    """
    segments, pos = [], 2
    while pos + 4 <= len(data):
        marker = data[pos + 1]
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        segments.append((marker, pos, pos + 2 + length))
        if marker == 0xDA:
            break
        pos += 2 + length
    return segments


def jpeg_claiming(width: int, height: int, size: int = 64, seed: int = 0) -> bytes:
    """A small valid JPEG whose frame header is edited to claim ``width`` x ``height``.

    The file stays a few kilobytes; libjpeg decodes the missing rows as grey.
    """
    data = bytearray(encode(textured(size, seed), "JPEG", quality=90))
    for marker, start, _ in _jpeg_segments(bytes(data)):
        if marker in _SOF_MARKERS:
            data[start + 5 : start + 9] = struct.pack(">HH", height, width)
            return bytes(data)
    raise AssertionError("no frame header found")


def jpeg_many_scans(repeats: int, size: int = 32, seed: int = 0) -> bytes:
    """A progressive JPEG whose last scan (header and data) is repeated ``repeats`` times.

    Each repeat is a valid refinement scan, so a decoder runs every one of them
    over the whole frame: decoding time grows with ``repeats`` times the pixel
    count, while the file grows by only a few dozen bytes per repeat.
    """
    data = encode(textured(size, seed), "JPEG", quality=90, progressive=True)
    last_sos = data.rfind(b"\xff\xda")
    eoi = data.rfind(b"\xff\xd9")
    scan = data[last_sos:eoi]
    return data[:last_sos] + scan * (repeats + 1) + data[eoi:]
