"""Run a TensorFlow.js *layers* model (model.json + weight shards) in plain torch.

Used for the `@upscalerjs/*` packages on npm, which ship idealo's ISR super-resolution
networks (RDN and RRDN, Keras 2.10 models converted by tensorflowjs) as
`models/x<scale>/model.json` plus `group1-shard*of*.bin` float32 weight shards.

The model graph is read from `modelTopology.model_config` and interpreted layer by layer;
only the layer types those models use are supported (InputLayer, Conv2D, Activation,
Concatenate, Add, UpSampling2D nearest, the UpscalerJS custom layers MultiplyBeta and
PixelShuffle<N>x). Anything else raises, so a new model file cannot be run wrongly.

Weights are read with NumPy from the shard bytes in manifest order; no code from the
package is run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

_DTYPES = {"float32": np.float32, "int32": np.int32}

# UpscalerJS `MultiplyBeta` layer: multiplies by this constant (esrgan.js, BETA = 0.2).
MULTIPLY_BETA = 0.2
_SHUFFLE = re.compile(r"PixelShuffle(\d+)x")


def load_weights(model_json: Path) -> dict[str, np.ndarray]:
    """Read every weight named in the manifest from the shard files next to model.json."""
    spec = json.loads(Path(model_json).read_text())
    out: dict[str, np.ndarray] = {}
    for group in spec["weightsManifest"]:
        blob = b"".join((Path(model_json).parent / p).read_bytes() for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            if w.get("quantization"):
                raise ValueError(f"quantized weight {w['name']} not supported")
            dtype = np.dtype(_DTYPES[w["dtype"]]).newbyteorder("<")
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            arr = np.frombuffer(blob, dtype=dtype, count=n, offset=offset).reshape(w["shape"])
            out[w["name"]] = arr.astype(np.float32)
            offset += n * dtype.itemsize
        if offset != len(blob):
            raise ValueError(f"{model_json}: {len(blob) - offset} unread bytes in weight group")
    return out


def depth_to_space_nhwc(x: torch.Tensor, block: int) -> torch.Tensor:
    """tf.depthToSpace(x, block, 'NHWC') on an NCHW tensor.

    TF puts input channel (i * block + j) * C_out + c at output pixel (h*block + i, w*block + j),
    channel c; torch's pixel_shuffle orders the channels c * block**2 + i * block + j instead.
    """
    b, ch, h, w = x.shape
    c_out = ch // (block * block)
    x = x.reshape(b, block, block, c_out, h, w)
    x = x.permute(0, 3, 4, 1, 5, 2)
    return x.reshape(b, c_out, h * block, w * block)


class TfjsLayersModel(torch.nn.Module):
    """A Keras functional model from a TF.js model.json, evaluated in torch (NCHW)."""

    def __init__(self, model_json: str | Path):
        super().__init__()
        self.path = Path(model_json)
        spec = json.loads(self.path.read_text())
        if spec.get("format") != "layers-model":
            raise ValueError(f"{model_json}: not a TF.js layers model ({spec.get('format')})")
        cfg = spec["modelTopology"]["model_config"]["config"]
        self.layers = cfg["layers"]
        self.inputs = [x[0] for x in cfg["input_layers"]]
        self.outputs = [x[0] for x in cfg["output_layers"]]
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            raise ValueError("only single-input, single-output models are supported")
        weights = load_weights(self.path)
        self.convs = torch.nn.ModuleDict()
        used = set()
        for layer in self.layers:
            kind, c = layer["class_name"], layer["config"]
            if kind == "Conv2D":
                if tuple(c["strides"]) != (1, 1) or tuple(c.get("dilation_rate", (1, 1))) != (1, 1):
                    raise ValueError(f"{c['name']}: only stride 1, dilation 1 supported")
                if c.get("data_format", "channels_last") != "channels_last":
                    raise ValueError(f"{c['name']}: channels_last expected")
                k = weights[f"{c['name']}/kernel"]  # (kh, kw, in, out)
                kh, kw = k.shape[:2]
                if c["padding"] == "same":
                    if kh % 2 == 0 or kw % 2 == 0:
                        raise ValueError(f"{c['name']}: even 'same' kernels not supported")
                    pad = (kh // 2, kw // 2)
                elif c["padding"] == "valid":
                    pad = (0, 0)
                else:
                    raise ValueError(f"{c['name']}: padding {c['padding']}")
                conv = torch.nn.Conv2d(
                    k.shape[2], k.shape[3], (kh, kw), padding=pad, bias=c["use_bias"]
                )
                conv.weight.data = torch.from_numpy(np.ascontiguousarray(k.transpose(3, 2, 0, 1)))
                used.add(f"{c['name']}/kernel")
                if c["use_bias"]:
                    conv.bias.data = torch.from_numpy(weights[f"{c['name']}/bias"].copy())
                    used.add(f"{c['name']}/bias")
                if c.get("activation", "linear") not in ("linear", "relu"):
                    raise ValueError(f"{c['name']}: activation {c['activation']}")
                self.convs[c["name"]] = conv
            elif kind == "Activation":
                if c["activation"] not in ("relu", "linear"):
                    raise ValueError(f"{c['name']}: activation {c['activation']}")
            elif kind == "Concatenate":
                if c["axis"] not in (-1, 3):
                    raise ValueError(f"{c['name']}: concat axis {c['axis']}")
            elif kind == "UpSampling2D":
                if c.get("interpolation", "nearest") != "nearest":
                    raise ValueError(f"{c['name']}: interpolation {c['interpolation']}")
            elif kind in ("InputLayer", "Add", "MultiplyBeta") or _SHUFFLE.fullmatch(kind):
                pass
            else:
                raise ValueError(f"unsupported layer {kind} ({c.get('name')})")
        unused = set(weights) - used
        if unused:
            raise ValueError(f"weights not used by the graph: {sorted(unused)[:5]}")
        self.n_params = sum(int(np.prod(v.shape)) for v in weights.values())

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) float in the model's input range; returns (B, 3, sH, sW)."""
        vals: dict[str, torch.Tensor] = {}
        for layer in self.layers:
            kind, c, name = layer["class_name"], layer["config"], layer["name"]
            if kind == "InputLayer":
                vals[name] = x
                continue
            nodes = layer["inbound_nodes"]
            if len(nodes) != 1:
                raise ValueError(f"{name}: shared layers not supported")
            ins = [vals[n[0]] for n in nodes[0]]
            if kind == "Conv2D":
                y = self.convs[name](ins[0])
                if c.get("activation") == "relu":
                    y = F.relu(y)
            elif kind == "Activation":
                y = F.relu(ins[0]) if c["activation"] == "relu" else ins[0]
            elif kind == "Concatenate":
                y = torch.cat(ins, dim=1)
            elif kind == "Add":
                y = ins[0]
                for t in ins[1:]:
                    y = y + t
            elif kind == "UpSampling2D":
                y = F.interpolate(ins[0], scale_factor=tuple(c["size"]), mode="nearest")
            elif kind == "MultiplyBeta":
                y = ins[0] * MULTIPLY_BETA
            else:  # PixelShuffle<N>x
                y = depth_to_space_nhwc(ins[0], int(_SHUFFLE.fullmatch(kind).group(1)))
            vals[name] = y
        return vals[self.outputs[0]]
