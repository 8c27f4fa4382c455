"""Generator with a selectable up-sampling unit, and the DCGAN discriminator.

The generator is DCGAN-shaped: the latent vector becomes a 4x4 map (a 4x4
transposed convolution), then every stage doubles the size with one
up-sampling unit until the output size is reached:

* ``transconv``: stride-2 transposed convolution (4x4 kernel);
* ``nearest``: nearest-neighbour up-sampling, then a 3x3 convolution;
* ``bilinear``: bilinear up-sampling, then a 3x3 convolution.

``final_convs`` adds N 5x5 convolutions after the last up-sampling (the
paper's fix uses three). Everything up to the last up-sampling stage is the
``trunk``; the rest is the ``head``. Extension points for frequency shifting
(:mod:`specdetect.gan.frequency`): ``extra_heads`` map the trunk's feature
map to extra outputs that are added before the final tanh, and
``output_transform`` is applied after it.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from specdetect.gan.config import SIZES, UPSAMPLES, GanConfig

__all__ = ["Discriminator", "Generator", "build_discriminator", "build_generator", "init_weights"]


def upsample_unit(in_channels: int, out_channels: int, kind: str, bias: bool) -> nn.Module:
    """One x2 up-sampling unit.

    Parameters
    ----------
    in_channels, out_channels : int
    kind : {"transconv", "nearest", "bilinear"}
    bias : bool
        Convolution bias (off when a batch norm follows, which cancels it).
    """
    if kind == "transconv":
        return nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=bias)
    if kind in ("nearest", "bilinear"):
        resize = (
            nn.Upsample(scale_factor=2, mode="nearest")
            if kind == "nearest"
            else nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        )
        return nn.Sequential(resize, nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=bias))
    raise ValueError(f"unknown up-sampling unit {kind!r}; expected one of {UPSAMPLES}")


class Generator(nn.Module):
    """DCGAN-style generator: latent ``(B, nz)`` -> image ``(B, C, S, S)`` in [-1, 1].

    Parameters
    ----------
    nz : int
        Latent size.
    ngf : int
        Width of the last stage; earlier stages double it.
    size : {32, 64, 128}
        Output size.
    channels : {1, 3}
        Output channels.
    upsample : {"transconv", "nearest", "bilinear"}
        Up-sampling unit of every stage.
    final_convs : int
        5x5 convolutions after the last up-sampling.
    final_width : int, optional
        Channels of those convolutions (default ``max(8, ngf // 2)``: they run
        at full resolution, where width costs the most).

    Attributes
    ----------
    trunk : nn.Module
        Latent -> feature map ``(B, trunk_channels, trunk_size, trunk_size)``
        just before the last up-sampling stage.
    trunk_channels, trunk_size : int
    head : nn.Module
        Trunk map -> pre-tanh image (last up-sampling and final convolutions).
    extra_heads : nn.ModuleList
        Empty by default; each maps the trunk map to a ``(B, C, S, S)``
        tensor added to the head's output before the tanh.
    output_transform : nn.Module
        Applied after the tanh (identity by default).
    """

    def __init__(
        self,
        nz: int = 100,
        ngf: int = 64,
        size: int = 64,
        channels: int = 3,
        upsample: str = "transconv",
        final_convs: int = 0,
        final_width: int | None = None,
    ):
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"size must be one of {SIZES}, got {size}")
        if upsample not in UPSAMPLES:
            raise ValueError(f"upsample must be one of {UPSAMPLES}, got {upsample!r}")
        self.nz, self.size, self.channels = nz, size, channels
        self.upsample, self.final_convs = upsample, final_convs
        stages = int(math.log2(size // 4))  # 4 -> size
        # Widths: ngf * 2**(stages-1) at 4x4, halving each stage, ngf before the last.
        width = ngf * 2 ** (stages - 1)
        layers: list[nn.Module] = [
            nn.Unflatten(1, (nz, 1, 1)),
            nn.ConvTranspose2d(nz, width, 4, 1, 0, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(True),
        ]
        for _ in range(stages - 1):
            layers += [
                upsample_unit(width, width // 2, upsample, bias=False),
                nn.BatchNorm2d(width // 2),
                nn.ReLU(True),
            ]
            width //= 2
        self.trunk = nn.Sequential(*layers)
        self.trunk_channels = width
        self.trunk_size = size // 2

        if final_convs == 0:
            head: list[nn.Module] = [upsample_unit(width, channels, upsample, bias=True)]
        else:
            inner = final_width or max(8, ngf // 2)
            head = [upsample_unit(width, inner, upsample, bias=False), nn.BatchNorm2d(inner)]
            for index in range(final_convs):
                last = index == final_convs - 1
                head += [
                    nn.ReLU(True),
                    nn.Conv2d(inner, channels if last else inner, 5, 1, 2, bias=last),
                ]
                if not last:
                    head.append(nn.BatchNorm2d(inner))
        self.head = nn.Sequential(*head)
        self.extra_heads = nn.ModuleList()
        self.output_transform: nn.Module = nn.Identity()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        features = self.trunk(z.reshape(z.shape[0], -1))
        out = self.head(features)
        for extra in self.extra_heads:
            out = out + extra(features)
        return self.output_transform(torch.tanh(out))


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "layer":  # normalizes each sample alone: safe under gradient penalties
        return nn.GroupNorm(1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}")


class Discriminator(nn.Module):
    """DCGAN discriminator: image ``(B, C, S, S)`` -> one logit/score per image.

    Parameters
    ----------
    ndf : int
        Width of the first layer; each stride-2 layer doubles it.
    size : int
        Input size (a power of two >= 8).
    channels : int
        Input channels.
    norm : {"batch", "layer", "none"}
        Normalization of the hidden layers. Gradient penalties (wgan-gp,
        dragan) need per-sample gradients, so use ``layer`` or ``none`` there.
    """

    def __init__(self, ndf: int = 64, size: int = 64, channels: int = 3, norm: str = "batch"):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        width, current = ndf, size // 2
        while current > 4:
            layers += [
                nn.Conv2d(width, width * 2, 4, 2, 1, bias=norm == "none"),
                _norm(norm, width * 2),
                nn.LeakyReLU(0.2, True),
            ]
            width, current = width * 2, current // 2
        layers.append(nn.Conv2d(width, 1, 4, 1, 0))
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x).reshape(-1)


def init_weights(module: nn.Module) -> None:
    """DCGAN initialization: N(0, 0.02) convolutions, N(1, 0.02) norm scales."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d | nn.GroupNorm) and module.weight is not None:
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def build_generator(config: GanConfig) -> Generator:
    """The generator a config describes, initialized (from torch's global RNG).

    Attaches frequency-shifted heads when ``config.freq_shifts`` is set.
    """
    generator = Generator(
        nz=config.nz,
        ngf=config.ngf,
        size=config.size,
        channels=config.channels,
        upsample=config.upsample,
        final_convs=config.final_convs,
        final_width=config.final_width,
    )
    generator.apply(init_weights)
    if config.freq_shifts:
        from specdetect.gan.frequency import attach_frequency_shift_heads

        attach_frequency_shift_heads(generator, config.freq_shifts)
    return generator


def build_discriminator(config: GanConfig) -> Discriminator:
    """The discriminator for a config: batch norm, except layer norm under penalties."""
    norm = "layer" if config.objective in ("wgan-gp", "dragan") else "batch"
    discriminator = Discriminator(config.ndf, config.size, config.channels, norm)
    discriminator.apply(init_weights)
    return discriminator
