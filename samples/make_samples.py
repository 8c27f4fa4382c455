"""Rebuild the bundled samples from the real-photo and video pool.

Needs the pool (``/work/shared/data`` or ``--pool DIR``), which is not
shipped; its outputs are committed, so ``make demo`` does not need it::

    python samples/make_samples.py

Real images are 256x256 crops of photographs, taken away from the centre
crops that ``make model`` trains on (``data/real``); fakes are crops of
*other* photographs passed through :func:`specdetect.synth.make_fake`. The
videos are 3-second, 384x288 crops of one surveillance clip, re-encoded with
H.264 (CRF 18): the real one as it is, the fake one from another part of the
clip with every frame up-sampled by a transposed convolution.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from specdetect.synth import make_fake

HERE = Path(__file__).resolve().parent

#: name -> (photo, left, top); 256x256 crops.
REAL = {
    "flower": ("libjxl__flower.png", 200, 200),
    "coffee": ("skimage__coffee.png", 344, 144),
    "astronaut": ("skimage__astronaut.png", 0, 0),
    "pagoda": ("sklearn__china.jpg", 0, 0),
}
#: name -> (photo, left, top, up-sampling unit of the fake).
FAKE = {
    "graffiti-transconv": ("opencv__graf1.png", 0, 0, "transconv"),
    "notebook-nearest": ("opencv__ela_original.jpg", 0, 0, "nearest"),
    "aloe-bilinear": ("opencv__aloeL.jpg", 0, 0, "bilinear"),
}
VIDEO = "opencv__vtest.avi"
VIDEO_BOX = (192, 144, 384, 288)  # left, top, width, height
SIZE = 256


def crop(photo: Path, left: int, top: int) -> np.ndarray:
    image = np.asarray(Image.open(photo).convert("RGB"))[top : top + SIZE, left : left + SIZE]
    if image.shape[:2] != (SIZE, SIZE):
        raise ValueError(f"{photo}: no {SIZE}x{SIZE} crop at ({left}, {top})")
    return image


def clip(source: Path, out: Path, start_s: float, seconds: float, fake_seed: int | None) -> int:
    """Re-encode ``seconds`` of ``source`` from ``start_s`` as H.264; returns the frame count."""
    import av

    left, top, width, height = VIDEO_BOX
    n = 0
    with av.open(str(source)) as src, av.open(str(out), "w") as dst:
        stream = src.streams.video[0]
        video = dst.add_stream("libx264", rate=stream.average_rate, options={"crf": "18"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        for frame in src.decode(stream):
            time = float(frame.pts * stream.time_base)
            if time < start_s:
                continue
            if time >= start_s + seconds:
                break
            rgb = frame.to_ndarray(format="rgb24")[top : top + height, left : left + width]
            if fake_seed is not None:  # one generator: the same kernel on every frame
                rgb = make_fake(rgb, np.random.default_rng(fake_seed), "transconv")
            image = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            for packet in video.encode(image):
                dst.mux(packet)
            n += 1
        for packet in video.encode():
            dst.mux(packet)
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool", type=Path, default=Path("/work/shared/data"))
    args = parser.parse_args()
    photos, videos = args.pool / "photos", args.pool / "videos"
    (HERE / "real").mkdir(exist_ok=True)
    (HERE / "fake").mkdir(exist_ok=True)

    for name, (photo, left, top) in REAL.items():
        Image.fromarray(crop(photos / photo, left, top)).save(HERE / "real" / f"{name}.png")
    for i, (name, (photo, left, top, unit)) in enumerate(FAKE.items()):
        fake = make_fake(crop(photos / photo, left, top), np.random.default_rng(2020 + i), unit)
        Image.fromarray(fake).save(HERE / "fake" / f"{name}.png")
    n_real = clip(videos / VIDEO, HERE / "real" / "pedestrians.mp4", 20.0, 3.0, None)
    n_fake = clip(videos / VIDEO, HERE / "fake" / "pedestrians-transconv.mp4", 50.0, 3.0, 7)
    print(f"wrote {len(REAL)} real and {len(FAKE)} fake images, videos of {n_real}/{n_fake} frames")


if __name__ == "__main__":
    main()
