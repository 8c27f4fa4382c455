"""Check tfjs_layers.py against the TensorFlow.js runtime on every @upscalerjs model used.

Needs node and @tensorflow/tfjs 4.22.0 (pure-JS CPU backend, no native binary):

    npm install --prefix /tmp/outside/node @tensorflow/tfjs@4.22.0
    python scripts/outside/verify_upscalerjs.py --weights ~/.cache/specdetect-outside \
        --node-modules /tmp/outside/node/node_modules

For each model: a 24x24 crop of a real photo (skimage coffee.png, scaled to 150x100), in the
model's input range, through both; prints the largest absolute difference of the outputs
relative to the output range (0..255 or 0..1).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from tfjs_layers import TfjsLayersModel  # noqa: E402

PHOTO = "/work/shared/data/photos/skimage__coffee.png"
MODELS = [  # (package folder, model.json, input/output max)
    ("upscalerjs-esrgan-slim-1.0.0", "models/x2/model.json", 255.0),
    ("upscalerjs-esrgan-slim-1.0.0", "models/x4/model.json", 255.0),
    ("upscalerjs-esrgan-medium-1.0.0", "models/x2/model.json", 255.0),
    ("upscalerjs-esrgan-medium-1.0.0", "models/x4/model.json", 255.0),
    ("upscalerjs-esrgan-thick-1.0.0", "models/x2/model.json", 1.0),
    ("upscalerjs-esrgan-thick-1.0.0", "models/x4/model.json", 1.0),
]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--weights", type=Path, default=Path.home() / ".cache" / "specdetect-outside")
    p.add_argument("--node-modules", type=Path, default=Path("/tmp/outside/node/node_modules"))
    p.add_argument("--photo", type=Path, default=Path(PHOTO))
    p.add_argument("--size", type=int, default=24)
    args = p.parse_args()
    torch.set_num_threads(1)
    img = Image.open(args.photo).convert("RGB").resize((150, 100), Image.LANCZOS)
    crop = np.asarray(img, np.float32)[20 : 20 + args.size, 30 : 30 + args.size] / 255.0
    worst = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for pkg, rel, top in MODELS:
            x = crop * top
            x.astype("<f4").tofile(f"{tmp}/in.f32")
            model = TfjsLayersModel(args.weights / pkg / "package" / rel)
            y = model(torch.from_numpy(x).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
            env = dict(os.environ, NODE_PATH=str(args.node_modules))
            pkg_dir = str(args.weights / pkg / "package")
            cmd = ["node", str(HERE / "tfjs_reference.js"), pkg_dir, rel]
            cmd += [f"{tmp}/in.f32", str(args.size), str(args.size), f"{tmp}/out.f32"]
            subprocess.run(cmd, env=env, check=True, capture_output=True)
            z = np.fromfile(f"{tmp}/out.f32", "<f4").reshape(y.shape)
            rel_err = float(np.abs(y - z).max() / top)
            worst = max(worst, rel_err)
            print(
                f"{pkg} {rel}: out {y.shape}, max |torch - tfjs| / range {rel_err:.2e}", flush=True
            )
    print(f"worst {worst:.2e}")
    return 0 if worst < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
