"""Small valid files of every image format the reader accepts, made with Pillow."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def _image(mode: str, size: int = 12) -> Image.Image:
    rng = np.random.default_rng(len(mode) * 7 + size)
    rgb = Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return rgb.convert(mode)


def _save(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def seed_files() -> dict[str, bytes]:
    """``{name with extension: bytes}`` of small valid images."""
    gif = io.BytesIO()
    frames = [_image("P", 10), _image("P", 10).rotate(90)]
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=40, loop=0)
    sixteen = Image.fromarray(np.arange(144, dtype=np.uint16).reshape(12, 12) * 400)
    return {
        "rgb.png": _save(_image("RGB"), "PNG"),
        "gray.png": _save(_image("L"), "PNG"),
        "palette.png": _save(_image("P"), "PNG"),
        "rgba.png": _save(_image("RGBA"), "PNG"),
        "interlaced.png": _save(_image("RGB"), "PNG", interlace=1),
        "sixteen.png": _save(sixteen, "PNG"),
        "rgb.jpg": _save(_image("RGB"), "JPEG", quality=80),
        "progressive.jpg": _save(_image("RGB", 16), "JPEG", progressive=True),
        "cmyk.jpg": _save(_image("CMYK"), "JPEG"),
        "gray.jpg": _save(_image("L"), "JPEG"),
        "animated.gif": gif.getvalue(),
        "rgb.bmp": _save(_image("RGB"), "BMP"),
        "rgb.tif": _save(_image("RGB"), "TIFF"),
        "packbits.tif": _save(_image("L"), "TIFF", compression="packbits"),
        "rgb.webp": _save(_image("RGB"), "WEBP", quality=70),
    }


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk with a correct CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def crafted_png(
    width: int, height: int, depth: int, color: int, interlace: int, raw: bytes, palette: bytes
) -> bytes:
    """A PNG whose header fields and pixel stream are chosen by the caller (CRCs valid)."""
    header = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, interlace)
    chunks = png_chunk(b"IHDR", header)
    if palette:
        chunks += png_chunk(b"PLTE", palette)
    chunks += png_chunk(b"IDAT", zlib.compress(raw)) + png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks
