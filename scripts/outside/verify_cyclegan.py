"""Check cyclegan.py against vintagify's own generator class on a real crop.

    python scripts/outside/verify_cyclegan.py --weights ~/.cache/specdetect-outside

Loads `vintagify/generator.py` from the unpacked wheel (plain torch, no other imports) with
the shipped state dict, and the re-implementation with the same file; prints the largest
absolute difference of the outputs (tanh range -1..1).
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from cyclegan import load_vintagify  # noqa: E402

PHOTO = "/work/shared/data/photos/skimage__coffee.png"


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--weights", type=Path, default=Path.home() / ".cache" / "specdetect-outside")
    p.add_argument("--photo", type=Path, default=Path(PHOTO))
    args = p.parse_args()
    torch.set_num_threads(1)
    pkg = args.weights / "vintagify-0.1.2" / "vintagify"
    spec = importlib.util.spec_from_file_location("vintagify_generator", pkg / "generator.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    state = pkg / "resources" / "G_A2B_epoch33.pth"
    ref = module.ResnetGenerator()
    ref.load_state_dict(torch.load(state, map_location="cpu", weights_only=True))
    ref.eval()
    mine = load_vintagify(state)
    img = np.asarray(Image.open(args.photo).convert("RGB"))[100:260, 200:360]
    x = torch.from_numpy(img.astype(np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    with torch.no_grad():
        err = float((mine(x) - ref(x)).abs().max())
    print(f"vintagify G_A2B_epoch33: max |re-implementation - package| {err:.2e}")
    return 0 if err < 1e-5 else 1


if __name__ == "__main__":
    sys.exit(main())
