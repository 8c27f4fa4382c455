"""CycleGAN ResNet generator of PyPI `vintagify` 0.1.2 (MIT), re-implemented in plain torch.

`vintagify/resources/G_A2B_epoch33.pth` is a state dict of the package's
`vintagify.generator.ResnetGenerator` (input_nc 3, output_nc 3, ngf 64, 9 residual blocks):
7x7 conv, two stride-2 3x3 convs down, nine residual blocks (reflection pad, 3x3 conv,
affine InstanceNorm, ReLU), two **3x3 stride-2 transposed convolutions** up (output padding
1), 7x7 conv, tanh. It translates a photo (RGB normalised to [-1, 1]) into a "vintage"
version; every output pixel is made by the generator. The layer indices below follow the
package's `nn.Sequential`, so the state dict loads unchanged (`torch.load(...,
weights_only=True)`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn


class ResnetBlock(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            nn.InstanceNorm2d(dim, affine=True),
            nn.ReLU(),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            nn.InstanceNorm2d(dim, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class ResnetGenerator(nn.Module):
    def __init__(self, ngf: int = 64, n_blocks: int = 9):
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(3, ngf, 7),
            nn.InstanceNorm2d(ngf, affine=True),
            nn.ReLU(),
        ]
        ch = ngf
        for _ in range(2):
            layers += [
                nn.Conv2d(ch, ch * 2, 3, stride=2, padding=1),
                nn.InstanceNorm2d(ch * 2, affine=True),
                nn.ReLU(),
            ]
            ch *= 2
        layers += [ResnetBlock(ch) for _ in range(n_blocks)]
        for _ in range(2):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1),
                nn.InstanceNorm2d(ch // 2, affine=True),
                nn.ReLU(),
            ]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def load_vintagify(path: str | Path) -> ResnetGenerator:
    g = ResnetGenerator()
    state = torch.load(path, map_location="cpu", weights_only=True)
    g.load_state_dict(state, strict=True)
    return g.eval()
