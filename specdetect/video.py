"""Reading videos: up to N evenly spaced frames as luma, decoded with PyAV.

Frames are picked by time: target ``i`` of ``n`` is ``start + duration * i / n``
and takes the first decoded frame at or after it. Two ways to get them:

* ``"keyframes"``: seek to each target and decode only the key frame before
  it. Reads a small part of the file and decodes ``n`` frames, whatever the
  length of the video, so it is by far the fastest on long videos. It is used
  only when key frames are at least as dense as the targets (otherwise several
  targets would land on the same key frame).
* ``"sequential"``: decode the stream from the start and keep the frames that
  fall on the targets; exact, and the only way for short clips, videos with
  sparse key frames, or streams that cannot seek.

``"auto"`` (the default) tries ``"keyframes"`` when the video has at least
:data:`KEYFRAME_MIN_SPACING` frames per target, and falls back to
``"sequential"`` as soon as two targets land on the same key frame (that costs
two key-frame decodes). PyAV is imported on first use.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction

import numpy as np

from specdetect.media import MediaError, max_pixels_default

__all__ = ["KEYFRAME_MIN_SPACING", "STRATEGIES", "read_video_luma"]

STRATEGIES = ("auto", "keyframes", "sequential")

#: ``auto`` tries key-frame seeking only when there are at least this many
#: frames per target: below that, decoding the whole clip costs about as much.
KEYFRAME_MIN_SPACING = 4

#: Give up on a stream that yields this many undecodable packets before its
#: first frame (random bytes that happened to parse as a container).
_MAX_BAD_PACKETS_BEFORE_FIRST_FRAME = 64

# BT.601 luma weights, as PIL uses them for RGB -> F (same as specdetect.media).
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def read_video_luma(
    path: str | os.PathLike,
    n_frames: int,
    max_pixels: int | None = None,
    *,
    strategy: str = "auto",
) -> tuple[np.ndarray, list[int]]:
    """Decode up to ``n_frames`` evenly spaced frames of a video as luma.

    Parameters
    ----------
    path : str or PathLike
        A video file (any container and codec the bundled FFmpeg reads).
    n_frames : int
        Frames wanted, at least 1. Short or sparse videos give fewer.
    max_pixels : int, optional
        Refuse frames with more pixels than this (default: the image limit,
        see :func:`specdetect.media.max_pixels_default`).
    strategy : {"auto", "keyframes", "sequential"}
        How frames are reached (see the module docstring).

    Returns
    -------
    stack : ndarray of shape (k, H, W), float32
        BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` in [0, 255], the same
        conversion as for images; ``1 <= k <= n_frames``.
    frame_indices : list of int
        Increasing frame number of each row, counted at the stream's nominal
        frame rate from its start.

    Raises
    ------
    MediaError
        Missing, unreadable, not a video, no video stream, no decodable frame,
        or frames over the pixel limit. The message is one line.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames must be at least 1, got {n_frames}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    limit = max_pixels_default() if max_pixels is None else max_pixels
    path = os.fspath(path)
    av = _import_av()

    frames = None
    if strategy != "sequential":
        with _open(av, path) as container:
            video = _Video(path, container, limit)
            if strategy == "keyframes" or video.worth_seeking(n_frames):
                frames = video.keyframe_frames(av, n_frames, strict=strategy == "auto")
    if frames is None:
        # A fresh container: rewinding after seeks is not reliable in every demuxer.
        with _open(av, path) as container:
            frames = _Video(path, container, limit).sequential_frames(av, n_frames)
    if not frames:
        raise MediaError(path, "video has no decodable frames")
    indices = [index for index, _ in frames]
    return np.stack([gray for _, gray in frames]), indices


# --------------------------------------------------------------------------
# Opening
# --------------------------------------------------------------------------
def _import_av():
    try:
        import av
    except ImportError as exc:  # pragma: no cover - av is a hard dependency
        raise RuntimeError("reading videos needs PyAV: pip install av") from exc
    return av


def _open(av, path: str):
    """``av.open`` with every failure turned into a one-line MediaError."""
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise MediaError(path, "no such file") from None
    except PermissionError:
        raise MediaError(path, "permission denied") from None
    except OSError as exc:
        raise MediaError(path, f"cannot read file ({_describe(exc)})") from None
    if os.path.isdir(path):
        raise MediaError(path, "is a directory")
    if size == 0:
        raise MediaError(path, "empty file")
    try:
        return av.open(path, metadata_errors="ignore")
    except PermissionError:
        raise MediaError(path, "permission denied") from None
    except av.error.InvalidDataError:
        raise MediaError(path, "not a recognized video format (or truncated)") from None
    except av.error.EOFError:
        raise MediaError(
            path, "file ends before any video data (truncated or empty video)"
        ) from None
    except (av.FFmpegError, OSError, ValueError, EOFError, MemoryError) as exc:
        raise MediaError(path, f"cannot open video ({_describe(exc)})") from None


class _Video:
    """One open container and its first video stream, with frame selection."""

    def __init__(self, path: str, container, max_pixels: int):
        self.path = path
        self.container = container
        self.max_pixels = max_pixels
        if not container.streams.video:
            raise MediaError(path, "no video stream")
        self.stream = container.streams.video[0]
        self._check_size(self.stream.codec_context.width, self.stream.codec_context.height)
        self.rate = self.stream.average_rate or self.stream.guessed_rate or None
        self.start, self.duration = self._span()
        # Timestamps are rounded (to milliseconds in Matroska): a frame up to half
        # a frame period before a target still counts as on it.
        self.slack = 0.5 / float(self.rate) if self.rate else 1e-6

    # -- geometry and timing -------------------------------------------------
    def _check_size(self, width: int, height: int) -> None:
        if width and height and width * height > self.max_pixels:
            raise MediaError(
                self.path,
                f"video frames are {width}x{height} pixels, over the limit of {self.max_pixels}",
            )

    def _span(self) -> tuple[float, float | None]:
        """Start time and duration of the video stream in seconds (duration may be None)."""
        stream, base = self.stream, self.stream.time_base
        start = float(stream.start_time * base) if stream.start_time is not None and base else 0.0
        if stream.duration and base:
            return start, float(stream.duration * base)
        if self.container.duration:  # microseconds, container-wide
            return start, self.container.duration / 1_000_000
        if stream.frames and self.rate:
            return start, float(stream.frames / self.rate)
        return start, None

    def estimated_frames(self) -> float | None:
        if self.duration is not None and self.rate:
            return self.duration * float(self.rate)
        return self.stream.frames or None

    def worth_seeking(self, n_frames: int) -> bool:
        estimate = self.estimated_frames()
        seekable = self.duration is not None and bool(self.stream.time_base)
        return seekable and estimate is not None and estimate >= KEYFRAME_MIN_SPACING * n_frames

    def targets(self, n_frames: int) -> list[float]:
        return [self.start + self.duration * i / n_frames for i in range(n_frames)]

    def frame_time(self, frame) -> float | None:
        """Presentation time in seconds (from the stream's time base: a drained
        frame may carry none of its own)."""
        if frame.pts is None or not self.stream.time_base:
            return None
        return float(frame.pts * self.stream.time_base)

    def frame_index(self, frame, decoded: int) -> int:
        """Frame number at the nominal rate, or the decode position without timestamps."""
        time = self.frame_time(frame)
        if time is None or not self.rate:
            return decoded
        return max(0, round((time - self.start) * float(self.rate)))

    # -- frame selection -----------------------------------------------------
    def keyframe_frames(self, av, n_frames: int, strict: bool) -> list | None:
        """One key frame at or before each target, by seeking.

        Returns None (so the caller decodes sequentially) when ``strict`` and
        two targets share a key frame, or when seeking fails.
        """
        if self.duration is None or not self.stream.time_base:
            return None
        self.stream.codec_context.skip_frame = "NONKEY"
        base = self.stream.time_base
        start_pts = self.stream.start_time or 0
        frames: list[tuple[int, np.ndarray]] = []
        last_pts = None
        try:
            for target in self.targets(n_frames):
                since_start = Fraction(target + self.slack) - Fraction(self.start)
                offset = start_pts + int(since_start / base)
                self.container.seek(offset, stream=self.stream, backward=True, any_frame=False)
                frame = self._first_frame(av)
                if frame is None:
                    break
                if last_pts is not None and frame.pts is not None and frame.pts <= last_pts:
                    if strict:
                        return None  # key frames sparser than targets: decode them all
                    continue
                last_pts = frame.pts
                frames.append((self.frame_index(frame, len(frames)), self._luma(frame)))
        except (av.FFmpegError, OSError, ValueError):
            return None
        return _strictly_increasing(frames)

    def _first_frame(self, av):
        """The first frame decoded after a seek, without waiting for the next key frame."""
        context = self.stream.codec_context
        for packet in self.container.demux(self.stream):
            frames = packet.decode()
            if not frames and packet.is_keyframe:
                # Decoders with a reordering delay hold the frame back until more
                # frames arrive, and with non-key frames skipped that means the
                # next key frame: drain instead (the next seek resets the decoder).
                frames = context.decode(None)
            if frames:
                return frames[0]
        return None

    def sequential_frames(self, av, n_frames: int) -> list:
        """Decode from the start, keeping frames on the targets (or a thinned reservoir)."""
        if self.duration is None:
            return self._reservoir(av, n_frames)
        targets = self.targets(n_frames)
        frames: list[tuple[int, np.ndarray]] = []
        j = 0
        for decoded, frame in enumerate(self._decoded(av)):
            time = self.frame_time(frame)
            if time is None:
                time = self.start + decoded / float(self.rate or 1)
            if time + self.slack < targets[j]:
                continue
            frames.append((self.frame_index(frame, decoded), self._luma(frame)))
            while j < len(targets) and targets[j] <= time + self.slack:
                j += 1  # one frame serves every target it has passed
            if j == len(targets):
                break
        return _strictly_increasing(frames)

    def _reservoir(self, av, n_frames: int) -> list:
        """Unknown duration: keep every ``stride``-th frame, halving when 2n are kept."""
        kept: list[tuple[int, np.ndarray]] = []
        stride = 1
        for decoded, frame in enumerate(self._decoded(av)):
            if decoded % stride:
                continue
            kept.append((self.frame_index(frame, decoded), self._luma(frame)))
            if len(kept) >= 2 * n_frames:
                kept, stride = kept[::2], stride * 2
        if len(kept) > n_frames:
            picks = np.unique(np.linspace(0, len(kept) - 1, n_frames).round().astype(int))
            kept = [kept[i] for i in picks]
        return _strictly_increasing(kept)

    def _decoded(self, av) -> Iterator:
        """Decoded frames of the stream; corrupt packets are skipped, not fatal."""
        bad = 0
        seen_frame = False
        for packet in self.container.demux(self.stream):
            try:
                frames = packet.decode()
            except (av.FFmpegError, ValueError) as exc:
                bad += 1
                if not seen_frame and bad >= _MAX_BAD_PACKETS_BEFORE_FIRST_FRAME:
                    raise MediaError(self.path, f"corrupt video ({_describe(exc)})") from None
                continue
            for frame in frames:
                seen_frame = True
                yield frame

    def _luma(self, frame) -> np.ndarray:
        self._check_size(frame.width, frame.height)
        rgb = frame.to_ndarray(format="rgb24")
        return rgb.astype(np.float32) @ _LUMA


def _strictly_increasing(frames: list[tuple[int, np.ndarray]]) -> list:
    """Make frame numbers unique and increasing (odd timestamps happen)."""
    out, last = [], -1
    for index, gray in frames:
        index = max(index, last + 1)
        out.append((index, gray))
        last = index
    return out


def _describe(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
