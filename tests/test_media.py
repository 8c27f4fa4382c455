"""Decoding every supported format and mode to BT.601 luma; refusing bad files."""

import os

import numpy as np
import pytest
from PIL import Image

from specdetect.media import MediaError, iter_paths, read_luma

RGB = np.array(
    [[[255, 0, 0], [0, 255, 0], [0, 0, 255]], [[10, 20, 30], [200, 100, 50], [255, 255, 255]]],
    dtype=np.uint8,
)
LUMA = RGB.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def save(tmp_path, image, name, **kwargs):
    path = tmp_path / name
    image.save(path, **kwargs)
    return path


@pytest.mark.parametrize(
    "mode, build, expected",
    [
        ("RGB", lambda: Image.fromarray(RGB), LUMA),
        (
            "RGBA",
            lambda: Image.fromarray(np.dstack([RGB, np.full(RGB.shape[:2], 7, np.uint8)])),
            LUMA,
        ),
        ("L", lambda: Image.fromarray(RGB[..., 1]), RGB[..., 1]),
        ("LA", lambda: Image.fromarray(RGB[..., :2], "LA"), RGB[..., 0]),
        ("P", lambda: Image.fromarray(RGB).quantize(colors=8, dither=Image.Dither.NONE), LUMA),
        ("1", lambda: Image.fromarray(RGB[..., 0] > 128), np.where(RGB[..., 0] > 128, 255.0, 0.0)),
        ("I;16", lambda: Image.fromarray(RGB[..., 0].astype(np.uint16) * 257), RGB[..., 0]),
        ("I", lambda: Image.fromarray(RGB[..., 0].astype(np.int32) * 257, "I"), RGB[..., 0]),
        ("F", lambda: Image.fromarray(LUMA.astype(np.float32), "F"), LUMA),
    ],
)
def test_modes_decode_to_bt601_luma(tmp_path, mode, build, expected):
    image = build()
    assert image.mode == mode
    fmt = {"F": "TIFF", "I": "TIFF", "LA": "PNG"}.get(mode, "PNG")
    path = save(tmp_path, image, f"x.{fmt.lower()}", format=fmt)
    luma = read_luma(path)
    assert luma.dtype == np.float32 and luma.shape == RGB.shape[:2]
    tolerance = 12.0 if mode == "P" else 1e-3  # P quantizes to a palette
    assert np.abs(luma - expected).max() <= tolerance


def test_cmyk_goes_through_rgb(tmp_path):
    image = Image.fromarray(RGB).convert("CMYK")
    path = save(tmp_path, image, "x.tiff")
    expected = np.asarray(image.convert("RGB"), np.float64) @ [0.299, 0.587, 0.114]
    assert np.allclose(read_luma(path), expected, atol=1e-3)


@pytest.mark.parametrize("ext, kwargs", [("bmp", {}), ("webp", {"lossless": True}), ("tif", {})])
def test_lossless_formats_are_exact(tmp_path, ext, kwargs):
    path = save(tmp_path, Image.fromarray(RGB), f"x.{ext}", **kwargs)
    assert np.allclose(read_luma(path), LUMA, atol=1e-3)


def test_jpeg_is_decoded_to_its_luma_plane(tmp_path):
    rng = np.random.default_rng(0)
    smooth = np.cumsum(np.cumsum(rng.normal(size=(64, 64, 3)), 0), 1)
    array = np.clip(128 + 30 * smooth / smooth.std(), 0, 255).astype(np.uint8)
    path = save(tmp_path, Image.fromarray(array), "x.jpg", quality=95)
    luma = read_luma(path)
    from_rgb = np.asarray(Image.open(path).convert("F"))
    assert luma.shape == (64, 64)  # never resized
    assert np.abs(luma - from_rgb).mean() < 0.5


def test_gif_gives_first_frame(tmp_path):
    frames = [Image.fromarray(np.full((8, 8), v, np.uint8)).convert("P") for v in (40, 200)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert np.allclose(read_luma(path), 40, atol=1)


def test_exif_orientation_is_applied(tmp_path):
    image = Image.fromarray(RGB)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    path = save(tmp_path, image, "x.png", exif=exif)
    luma = read_luma(path)
    assert luma.shape == (3, 2)
    assert np.allclose(luma, np.rot90(LUMA, -1), atol=1e-3)


@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("empty.jpg", b"", "empty file"),
        ("text.png", b"this is not an image at all", "not a recognized image format"),
        ("random.jpg", bytes(np.random.default_rng(1).integers(0, 256, 2000, np.uint8)), "not a"),
    ],
)
def test_bad_files_raise_media_error_with_path_and_reason(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(MediaError) as info:
        read_luma(path)
    message = str(info.value)
    assert message.startswith(str(path)) and reason in message and "\n" not in message


@pytest.mark.parametrize("ext", ["jpg", "png"])
def test_truncated_files_raise_media_error(tmp_path, ext):
    array = (np.random.default_rng(2).random((64, 64, 3)) * 255).astype(np.uint8)
    path = save(tmp_path, Image.fromarray(array), f"x.{ext}")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(MediaError, match="cannot decode"):
        read_luma(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(MediaError, match="no such file"):
        read_luma(tmp_path / "missing.png")
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(MediaError, match="directory"):
        read_luma(tmp_path / "folder.png")


def test_pixel_limit_refuses_before_decoding(tmp_path, monkeypatch):
    path = save(tmp_path, Image.new("L", (100, 50)), "big.png")
    with pytest.raises(MediaError, match="over the limit of 4999"):
        read_luma(path, max_pixels=4999)
    assert read_luma(path, max_pixels=5000).shape == (50, 100)
    monkeypatch.setenv("SPECDETECT_MAX_PIXELS", "100")
    with pytest.raises(MediaError, match="over the limit of 100"):
        read_luma(path)


def test_iter_paths_files_folders_globs_and_stdin(tmp_path):
    (tmp_path / "b").mkdir()
    for name in ["a.PNG", "b/c.jpg", "b/notes.txt", "d.JpEg"]:
        (tmp_path / name).write_bytes(b"x")
    folder = list(iter_paths([tmp_path]))
    assert folder == [str(tmp_path / n) for n in ["a.PNG", "b/c.jpg", "d.JpEg"]]
    pattern = str(tmp_path / "*.png")  # globs are case-sensitive: matches nothing here
    assert list(iter_paths([pattern])) == [pattern]  # kept, so the reader reports it
    assert list(iter_paths([str(tmp_path / "b" / "*")])) == [str(tmp_path / "b/c.jpg")]
    explicit = str(tmp_path / "b/notes.txt")
    assert list(iter_paths([explicit])) == [explicit]  # given files are kept, to be reported
    assert list(iter_paths(["-"], stdin=["x.png\n", "\n", "y.png\n"])) == ["x.png", "y.png"]


def test_media_error_survives_pickling():
    import pickle

    error = pickle.loads(pickle.dumps(MediaError("/x/y.png", "empty file")))
    assert (error.path, error.reason, str(error)) == (
        "/x/y.png",
        "empty file",
        "/x/y.png: empty file",
    )


def test_iter_paths_is_lazy(tmp_path):
    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(b"x")
    paths = iter_paths([tmp_path])
    assert next(paths) == os.path.join(tmp_path, "0.png")
