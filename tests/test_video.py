"""read_video_luma: frame selection, luma values, and one-line errors for bad videos."""

from __future__ import annotations

import os

import av
import numpy as np
import pytest
from PIL import Image

from specdetect.media import MediaError, read_luma
from specdetect.video import read_video_luma


def _frames(n: int, size: int = 48, seed: int = 0) -> np.ndarray:
    """``n`` RGB frames of a noise texture panning by 1 pixel per frame, each distinct."""
    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 256, (size + n, size + n, 3), dtype=np.uint8)
    return np.stack([texture[i : i + size, i : i + size] for i in range(n)])


def write_video(path, frames: np.ndarray, codec="mpeg4", gop=12, rate=24, pix_fmt="yuv420p"):
    """Encode RGB frames with PyAV; a key frame every ``gop`` frames, and only there."""
    options = {"sc_threshold": "1000000000"} if codec == "mpeg4" else {}  # no scene cuts
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, options=options)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        stream.codec_context.gop_size = gop
        for frame in frames:
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            for packet in stream.encode(image):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return str(path)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    return {
        "short": write_video(folder / "short.mp4", _frames(10)),
        # 96 frames, a key frame every 4: targets every 12 frames land on key frames.
        "dense_keys": write_video(folder / "dense.mp4", _frames(96), gop=4),
        # 96 frames, one key frame: seeking cannot reach the targets.
        "sparse_keys": write_video(folder / "sparse.mkv", _frames(96), gop=1000),
        # Lossless RGB: decoded pixels equal the encoded ones.
        "lossless": write_video(
            folder / "lossless.mkv", _frames(6, seed=3), codec="ffv1", pix_fmt="bgr0"
        ),
    }


def test_short_video_gives_every_frame_in_order(clips):
    stack, indices = read_video_luma(clips["short"], 32)
    assert stack.dtype == np.float32 and stack.shape == (10, 48, 48)
    assert indices == list(range(10))
    assert 0.0 <= stack.min() and stack.max() <= 255.0
    # Panning texture: consecutive frames differ.
    assert all(np.abs(stack[i + 1] - stack[i]).mean() > 1.0 for i in range(9))


@pytest.mark.parametrize("strategy", ["auto", "keyframes", "sequential"])
def test_evenly_spaced_frames_with_every_strategy(clips, strategy):
    stack, indices = read_video_luma(clips["dense_keys"], 8, strategy=strategy)
    assert indices == [0, 12, 24, 36, 48, 60, 72, 84]
    assert stack.shape == (8, 48, 48)


def test_keyframe_seeking_returns_the_same_frames_as_decoding_everything(clips):
    fast, fast_indices = read_video_luma(clips["dense_keys"], 8, strategy="keyframes")
    slow, slow_indices = read_video_luma(clips["dense_keys"], 8, strategy="sequential")
    assert fast_indices == slow_indices
    np.testing.assert_array_equal(fast, slow)


def test_sparse_keyframes_fall_back_to_decoding(clips):
    stack, indices = read_video_luma(clips["sparse_keys"], 8)
    assert indices == [0, 12, 24, 36, 48, 60, 72, 84]
    # Key frames alone would give only the first frame.
    _, key_only = read_video_luma(clips["sparse_keys"], 8, strategy="keyframes")
    assert key_only == [0]


def test_video_luma_matches_image_luma(clips, tmp_path):
    """A lossless video frame gives the same luma as the same pixels saved as PNG."""
    stack, _ = read_video_luma(clips["lossless"], 6)
    frame = _frames(6, seed=3)[2]
    Image.fromarray(frame).save(tmp_path / "frame.png")
    np.testing.assert_allclose(stack[2], read_luma(tmp_path / "frame.png"), atol=1e-3)


def test_pixel_limit_refuses_large_frames(clips):
    with pytest.raises(MediaError, match="48x48 pixels, over the limit of 1000"):
        read_video_luma(clips["short"], 4, max_pixels=1000)


def _no_frames(path):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        container.start_encoding()  # header only, not one frame
    return path


def _audio_only(path):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    return path


def _truncated(path, source):
    data = open(source, "rb").read()
    path.write_bytes(data[: len(data) // 3])
    return path


@pytest.mark.parametrize(
    "case, reason",
    [
        ("missing", "no such file"),
        ("empty", "empty file"),
        ("random", "not a recognized video format"),
        ("truncated", "not a recognized video format \\(or truncated\\)"),
        ("no_frames", "file ends before any video data|no video stream"),
        ("audio_only", "no video stream"),
        ("directory", "is a directory"),
    ],
)
def test_bad_videos_raise_one_line_media_errors(tmp_path, clips, case, reason):
    path = tmp_path / f"{case}.mkv"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "random":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif case == "truncated":
        path = _truncated(tmp_path / "truncated.mp4", clips["short"])
    elif case == "no_frames":
        _no_frames(path)
    elif case == "audio_only":
        _audio_only(path)
    elif case == "directory":
        os.mkdir(path)
    with pytest.raises(MediaError, match=reason) as info:
        read_video_luma(path, 4)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message


def test_corrupt_packets_are_skipped_not_fatal(tmp_path, clips):
    """Flipped bytes inside the stream lose some frames, not the whole video."""
    data = bytearray(open(clips["short"], "rb").read())
    rng = np.random.default_rng(1)
    for offset in rng.integers(len(data) // 4, len(data) - 64, 20):
        data[offset] ^= 0xFF
    path = tmp_path / "flipped.mp4"
    path.write_bytes(bytes(data))
    try:
        stack, indices = read_video_luma(path, 32)
    except MediaError as exc:  # acceptable only as a clean one-line error
        assert "\n" not in str(exc)
    else:
        assert 1 <= len(indices) <= 10 and indices == sorted(set(indices))
        assert np.all(np.isfinite(stack))


def test_bad_arguments():
    with pytest.raises(ValueError, match="n_frames"):
        read_video_luma("x.mp4", 0)
    with pytest.raises(ValueError, match="strategy"):
        read_video_luma("x.mp4", 4, strategy="fast")


def test_auto_seeks_key_frames_on_long_videos_without_decoding_everything(clips, monkeypatch):
    from specdetect import video

    def no_full_decode(*args, **kwargs):
        raise AssertionError("auto decoded the whole video although key frames were enough")

    monkeypatch.setattr(video._Video, "sequential_frames", no_full_decode)
    _, indices = read_video_luma(clips["dense_keys"], 8)
    assert indices == [0, 12, 24, 36, 48, 60, 72, 84]
