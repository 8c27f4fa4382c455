"""Frequency shifting: move a signal's spectrum, and let generators use it.

Multiplying an image by the complex carrier ``exp(2*pi*i*(fx*x + fy*y))``
moves its 2-D spectrum by ``(fx, fy)`` cycles per pixel: DFT bin ``(ky, kx)``
goes to ``(ky + fy*H, kx + fx*W)`` (cyclically). Khayatkhoei and Elgammal
("Spatial Frequency Bias in Convolutional Generative Adversarial Networks")
use this to steer a generator: convolutional generators learn low frequencies
well and high ones badly, so let a branch learn content near zero frequency
and shift it to where it belongs.

Conventions
-----------
* ``x`` is the column index ``0..W-1`` and ``y`` the row index ``0..H-1`` of
  the last two tensor axes, in pixels; ``fx`` and ``fy`` are in cycles per
  pixel (``0.25`` = a period of four pixels).
* Complex data is either a complex tensor (:func:`frequency_shift`), or a
  pair of real tensors ``(real, imag)`` (:func:`shift_real_part`,
  :func:`frequency_shift_pair`). The pair form uses only real arithmetic, so it
  runs wherever real convolutions run and autograd is the ordinary one.
* Images are real. A generator branch therefore produces a real and an
  imaginary channel per image channel and keeps the real part of the shifted
  result: ``Re((u + i v) * exp(i t)) = u cos t - v sin t``. The real part of a
  shift by ``+f`` holds energy at ``+f`` and at ``-f`` (its mirror), as every
  real image must.
* Whole-output shifting works on the analytic ("one-sided") signal:
  :func:`demodulate` keeps the half of the spectrum on the carrier's side,
  doubles it and shifts it down by the carrier, giving a complex baseband
  envelope (2 channels per image channel) that a generator can learn at low
  frequency; :func:`remodulate` (the generator's ``output_transform``, see
  :class:`Remodulate`) shifts it back up and keeps the real part. The pair is
  exact: ``remodulate(demodulate(x, f), f) == x`` for every real ``x``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

__all__ = [
    "FrequencyShift",
    "FrequencyShiftHead",
    "Remodulate",
    "SidebandShift",
    "analytic_mask",
    "attach_frequency_shift_heads",
    "carrier_waves",
    "demodulate",
    "frequency_shift",
    "frequency_shift_pair",
    "latent_unit_phase",
    "remodulate",
    "shift_real_part",
    "sideband_shift",
]


# --------------------------------------------------------------------------
# Plain functions
# --------------------------------------------------------------------------
def carrier_waves(
    height: int,
    width: int,
    fx: float,
    fy: float,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine and sine of the carrier phase ``2*pi*(fx*x + fy*y)``.

    Parameters
    ----------
    height, width : int
        Image shape.
    fx, fy : float
        Carrier frequency in cycles per pixel along columns (x) and rows (y).
    device, dtype
        Where and how to build the tensors.

    Returns
    -------
    cos, sin : Tensor
        Each of shape ``(height, width)``.

    Examples
    --------
    >>> c, s = carrier_waves(2, 4, 0.25, 0.0)
    >>> c[0].round().tolist(), s[0].round().tolist()
    ([1.0, 0.0, -1.0, -0.0], [0.0, 1.0, 0.0, -1.0])
    """
    # float64 phase, so large images keep their exact period before the cast.
    y = torch.arange(height, device=device, dtype=torch.float64)[:, None]
    x = torch.arange(width, device=device, dtype=torch.float64)[None, :]
    phase = 2.0 * math.pi * (fx * x + fy * y)
    return torch.cos(phase).to(dtype), torch.sin(phase).to(dtype)


def frequency_shift(x: torch.Tensor, fx: float, fy: float) -> torch.Tensor:
    """Shift the spectrum of ``x`` by ``(fx, fy)`` cycles per pixel.

    Computes ``x * exp(2*pi*i*(fx*col + fy*row))`` over the last two axes.

    Parameters
    ----------
    x : Tensor, shape (..., H, W)
        Real or complex. A real tensor is taken as ``x + 0i``.
    fx, fy : float
        Shift in cycles per pixel. DFT bin ``kx`` moves to ``kx + fx * W``
        (exactly a bin when ``fx * W`` is an integer).

    Returns
    -------
    Tensor, complex, shape (..., H, W)
        Differentiable with respect to ``x``. ``frequency_shift(y, -fx, -fy)``
        undoes it.

    Examples
    --------
    >>> import torch
    >>> x = torch.ones(4, 4)
    >>> y = frequency_shift(x, 0.25, 0.0)
    >>> torch.fft.fft2(y).abs().argmax().item()  # DC moved to column 1
    1
    """
    real_dtype = x.real.dtype if x.is_complex() else x.dtype
    cos, sin = carrier_waves(x.shape[-2], x.shape[-1], fx, fy, x.device, real_dtype)
    return x * torch.complex(cos, sin)


def frequency_shift_pair(
    real: torch.Tensor, imag: torch.Tensor, fx: float, fy: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`frequency_shift` for complex data stored as two real tensors.

    Parameters
    ----------
    real, imag : Tensor, shape (..., H, W)
        Real and imaginary parts.
    fx, fy : float
        Shift in cycles per pixel.

    Returns
    -------
    real, imag : Tensor
        Parts of ``(real + i imag) * exp(2*pi*i*(fx*x + fy*y))``.
    """
    cos, sin = carrier_waves(real.shape[-2], real.shape[-1], fx, fy, real.device, real.dtype)
    return real * cos - imag * sin, real * sin + imag * cos


def shift_real_part(real: torch.Tensor, imag: torch.Tensor, fx: float, fy: float) -> torch.Tensor:
    """Real part of the frequency-shifted complex signal ``real + i imag``.

    This is what a frequency-shifted generator branch adds to the image: the
    branch learns a (smooth, low-frequency) complex envelope ``u + i v`` and
    the output is ``u cos t - v sin t`` with ``t = 2*pi*(fx*x + fy*y)``.

    Parameters
    ----------
    real, imag : Tensor, shape (..., H, W)
        Real and imaginary parts.
    fx, fy : float
        Shift in cycles per pixel.

    Returns
    -------
    Tensor, shape (..., H, W)
    """
    cos, sin = carrier_waves(real.shape[-2], real.shape[-1], fx, fy, real.device, real.dtype)
    return real * cos - imag * sin


def analytic_mask(height: int, width: int, fx: float, fy: float) -> torch.Tensor:
    """Weights that turn a real image's ``fft2`` into its one-sided spectrum.

    Frequencies on the carrier's side (``k . f > 0``) get weight 2, their
    mirrors 0, and frequencies that are their own mirror's partner on the
    boundary line (``k . f == 0``, and Nyquist bins whose mirror is not on the
    other side) weight 1. For every real ``x``:
    ``Re(ifft2(mask * fft2(x))) == x``.

    Parameters
    ----------
    height, width : int
        Image shape.
    fx, fy : float
        Carrier direction (its length does not matter, only its direction).

    Returns
    -------
    Tensor, float32, shape (height, width)
    """
    if fx == 0 and fy == 0:
        raise ValueError("the carrier frequency must not be (0, 0)")
    ky = torch.fft.fftfreq(height, dtype=torch.float64)[:, None]
    kx = torch.fft.fftfreq(width, dtype=torch.float64)[None, :]
    side = torch.sign(kx * fx + ky * fy)
    # Mirror of bin (i, j) is (-i mod H, -j mod W).
    rows = (-torch.arange(height)) % height
    cols = (-torch.arange(width)) % width
    mirror_side = side[rows][:, cols]
    antisymmetric = (side + mirror_side) == 0
    mask = torch.where(antisymmetric, 1.0 + side, torch.ones_like(side))
    return mask.to(torch.float32)


def demodulate(x: torch.Tensor, fx: float, fy: float) -> torch.Tensor:
    """Complex baseband envelope of ``x`` around the carrier ``(fx, fy)``.

    The matching dataset shift of a whole-output shifted generator: train the
    generator on ``demodulate(data)`` (low frequency) and shift its output back
    up with :class:`Remodulate`.

    Parameters
    ----------
    x : Tensor, shape (B, C, H, W)
        Real images.
    fx, fy : float
        Carrier frequency in cycles per pixel.

    Returns
    -------
    Tensor, shape (B, 2C, H, W)
        Real parts in channels ``[0, C)``, imaginary parts in ``[C, 2C)``. A
        cosine ``a * cos(2*pi*f.p + phi)`` becomes the constant ``a*exp(i phi)``.
    """
    mask = analytic_mask(x.shape[-2], x.shape[-1], fx, fy).to(x.device)
    analytic = torch.fft.ifft2(torch.fft.fft2(x) * mask)
    baseband = frequency_shift(analytic, -fx, -fy)
    return torch.cat([baseband.real, baseband.imag], dim=1).to(x.dtype)


def remodulate(envelope: torch.Tensor, fx: float, fy: float) -> torch.Tensor:
    """Inverse of :func:`demodulate`: shift the envelope up, keep the real part.

    Parameters
    ----------
    envelope : Tensor, shape (B, 2C, H, W)
        Real parts then imaginary parts, as :func:`demodulate` returns them.
    fx, fy : float
        Carrier frequency in cycles per pixel.

    Returns
    -------
    Tensor, shape (B, C, H, W)
    """
    if envelope.shape[1] % 2:
        raise ValueError(f"an envelope has an even number of channels, got {envelope.shape[1]}")
    real, imag = envelope.chunk(2, dim=1)
    return shift_real_part(real, imag, fx, fy)


def sideband_shift(
    x: torch.Tensor,
    fx: float,
    fy: float,
    direction: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Real-to-real spectrum shift: one side by ``+(fx, fy)``, its mirror by ``-(fx, fy)``.

    The half of the spectrum on ``direction``'s side (the analytic signal)
    is shifted by ``(fx, fy)`` and the real part kept, so a real image stays a
    real image with the same number of channels. This is the whole-output
    shift for single-channel generators: move a dataset whose content sits
    around a carrier ``f`` down to a low frequency ``f0`` with
    ``sideband_shift(data, *(f0 - f), direction=f)``, train on it, and shift
    the generator's output back with ``SidebandShift(*(f - f0), direction=f)``.
    The round trip is exact when no content crosses the boundary line
    ``k . direction == 0`` on the way (true for carriers well inside the band,
    and for planar cosines).

    Parameters
    ----------
    x : Tensor, shape (..., H, W)
        Real images.
    fx, fy : float
        Shift in cycles per pixel.
    direction : (dx, dy), optional
        Which side of the spectrum moves by ``+(fx, fy)``; default the shift
        itself.

    Returns
    -------
    Tensor, shape (..., H, W), real; differentiable.
    """
    dx, dy = direction if direction is not None else (fx, fy)
    mask = analytic_mask(x.shape[-2], x.shape[-1], dx, dy).to(x.device)
    analytic = torch.fft.ifft2(torch.fft.fft2(x) * mask)
    return frequency_shift(analytic, fx, fy).real.to(x.dtype)


# --------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------
class _FixedShift(nn.Module):
    """Base of the modules that apply one fixed frequency shift ``(fx, fy)``."""

    def __init__(self, fx: float, fy: float) -> None:
        super().__init__()
        self.fx, self.fy = float(fx), float(fy)

    def extra_repr(self) -> str:
        return f"fx={self.fx}, fy={self.fy}"


class FrequencyShift(_FixedShift):
    """Module form of :func:`frequency_shift` (complex output).

    Parameters
    ----------
    fx, fy : float
        Shift in cycles per pixel.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return frequency_shift(x, self.fx, self.fy)


class Remodulate(_FixedShift):
    """Module form of :func:`remodulate`: a generator ``output_transform``.

    Set it on a generator trained on :func:`demodulate`-d data, so that its
    samples come out at the carrier frequency.
    """

    def forward(self, envelope: torch.Tensor) -> torch.Tensor:
        return remodulate(envelope, self.fx, self.fy)


class SidebandShift(_FixedShift):
    """Module form of :func:`sideband_shift`: a one-channel ``output_transform``."""

    def __init__(self, fx: float, fy: float, direction: tuple[float, float] | None = None) -> None:
        super().__init__(fx, fy)
        self.direction = tuple(direction) if direction is not None else (self.fx, self.fy)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sideband_shift(x, self.fx, self.fy, self.direction)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, direction={self.direction}"


class FrequencyShiftHead(nn.Module):
    """Generator branch: trunk features -> complex envelope -> shifted real part.

    A 3x3 convolution maps the trunk feature map to ``2 * out_channels``
    channels, the real and imaginary parts of an envelope; bilinear
    up-sampling brings them to the output size; the envelope is shifted by
    the fixed ``(fx, fy)`` and its real part returned. The envelope is
    computed at the trunk's (lower) resolution on purpose: it is meant to be
    smooth (the shift supplies the high frequency), and it keeps the branch
    cheap (a few percent of a training step).

    **Latent phase.** With ``latent_phase`` (the default) the envelope is also
    rotated by a per-image unit complex number ``(z_a + i z_b) / |z_a + i z_b|``
    made of two coordinates of the generator's latent ``z`` (head ``k`` of a
    generator uses coordinates ``2k`` and ``2k + 1``, cyclically), so the
    shifted content's phase is uniform on the circle by construction (``z`` is
    isotropic Gaussian). Without it the phase has to come out of the
    envelope's values: a ring of ``(u, v)`` values around 0 that a linear map
    of ReLU features barely produces, so at high shifts the phase
    distribution collapses to a few values (measured: phase W1 0.35-0.56 rad
    vs the baseline's 0.13 at 7/16 cycle/pixel). The baseline gets its phase
    for free, as the *position* of a spatial pattern. The latent reaches the
    head through a forward pre-hook that
    :func:`attach_frequency_shift_heads` puts on the generator; a head called
    on its own (no latent seen) skips the rotation.

    **Latent gain.** With ``latent_size`` given (and ``latent_gain``, the
    default) the envelope is also multiplied by a learned per-image real gain
    ``g(z) = w . z + b``, linear in the latent and initialized to exactly 1
    (``w = 0``): each image's carrier then has the complex amplitude ``g(z)``
    times the latent phase, and the envelope only has to supply the spatial
    pattern. Without it the head must build the product "per-image amplitude
    x pattern" out of ReLU features, and at the experiment's budget it did
    not: at 7/16 cycle/pixel (seed 0) the carrier amplitude had a floor (1st
    percentile 0.18 vs 0.10 in the data; the carrier bin held about half of
    the band error) and the envelope varied too little across the stripes;
    with the gain both come close to the data. Adam moves every weight by about
    ``lr`` per step whatever its size, so a gain stored at 1 would change far
    more slowly, relative to its size, than the convolution weights (0.02 to
    0.05): it is stored divided by :attr:`GAIN_RATE` and multiplied back, an
    equalized learning rate.

    Parameters
    ----------
    in_channels : int
        Channels of the trunk feature map.
    out_channels : int
        Image channels.
    in_size, out_size : int
        Trunk feature-map size and image size (square).
    fx, fy : float
        Fixed shift in cycles per pixel.
    latent_phase : bool
        Rotate the envelope by a phase taken from the latent (see above).
    latent_index : int
        Which pair of latent coordinates (``2 * latent_index`` and the next).
    latent_size : int, optional
        Length of the latent ``z``; needed for the latent gain (None: no gain).
    latent_gain : bool
        Scale the envelope by a gain learned from the latent (see above).
    """

    #: Learning-rate multiplier of the latent gain (of 1, 4 and 16, 4 measured best).
    GAIN_RATE: float = 4.0

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        in_size: int,
        out_size: int,
        fx: float,
        fy: float,
        latent_phase: bool = True,
        latent_index: int = 0,
        latent_size: int | None = None,
        latent_gain: bool = True,
    ) -> None:
        super().__init__()
        self.fx, self.fy = float(fx), float(fy)
        self.out_channels = out_channels
        self.latent_phase = bool(latent_phase)
        self.latent_index = int(latent_index)
        self.latent: torch.Tensor | None = None  # set by the generator's pre-hook
        self.gain: nn.Linear | None = None
        if latent_gain and latent_size:
            self.gain = nn.Linear(latent_size, 1)
            nn.init.zeros_(self.gain.weight)
            nn.init.constant_(self.gain.bias, 1.0 / self.GAIN_RATE)
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, 2 * out_channels, kernel_size=3, padding=1, bias=False)
        ]
        if out_size != in_size:
            layers.append(
                nn.Upsample(size=(out_size, out_size), mode="bilinear", align_corners=False)
            )
        self.envelope = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        real, imag = self.envelope(features).chunk(2, dim=1)
        if self.gain is not None and self.latent is not None:
            flat = self.latent.reshape(self.latent.shape[0], -1)
            gain = self.GAIN_RATE * self.gain(flat)[:, :, None, None]
            real, imag = real * gain, imag * gain
        if self.latent_phase and self.latent is not None:
            cos, sin = latent_unit_phase(self.latent, self.latent_index)
            real, imag = real * cos - imag * sin, real * sin + imag * cos
        cos, sin = self._carrier(real)
        return real * cos - imag * sin

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args, **kwargs) -> None:
        # Checkpoints of heads without the gain still load (strictly): the gain
        # gets its initial value 1, which is exactly the head they were saved from.
        if self.gain is not None and prefix + "gain.weight" not in state_dict:
            state_dict[prefix + "gain.weight"] = torch.zeros_like(self.gain.weight)
            state_dict[prefix + "gain.bias"] = torch.full_like(self.gain.bias, 1 / self.GAIN_RATE)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _carrier(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # The carrier is fixed: build it once per shape/device/dtype, not every step.
        key = (like.shape[-2], like.shape[-1], like.device, like.dtype)
        if getattr(self, "_carrier_key", None) != key:
            self._carrier_waves = carrier_waves(*key[:2], self.fx, self.fy, like.device, like.dtype)
            self._carrier_key = key
        return self._carrier_waves

    def extra_repr(self) -> str:
        gain = self.gain is not None
        return f"fx={self.fx}, fy={self.fy}, latent_phase={self.latent_phase}, latent_gain={gain}"


def latent_unit_phase(latent: torch.Tensor, index: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image ``(cos, sin)`` of the angle of latent coordinates ``2*index, 2*index+1``.

    For an isotropic Gaussian latent the angle is uniform on ``[0, 2 pi)``.

    Parameters
    ----------
    latent : Tensor, shape (B, nz) or (B, nz, 1, 1)
    index : int
        Pair index (taken modulo ``nz // 2``).

    Returns
    -------
    cos, sin : Tensor, shape (B, 1, 1, 1)
        Ready to broadcast over ``(B, C, H, W)``.
    """
    flat = latent.reshape(latent.shape[0], -1)
    if flat.shape[1] < 2:
        raise ValueError("latent phase needs a latent with at least 2 coordinates")
    start = 2 * (index % (flat.shape[1] // 2))
    pair = flat[:, start : start + 2]
    unit = pair / pair.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return unit[:, 0, None, None, None], unit[:, 1, None, None, None]


def _share_latent(generator: nn.Module, args: tuple) -> None:
    """Forward pre-hook: hand the latent to the frequency-shift heads."""
    for head in generator.extra_heads:
        if isinstance(head, FrequencyShiftHead):
            head.latent = args[0] if args else None


def _forget_latent(generator: nn.Module, args: tuple, output: torch.Tensor) -> None:
    """Forward hook: drop the heads' reference to the latent after the pass."""
    for head in generator.extra_heads:
        if isinstance(head, FrequencyShiftHead):
            head.latent = None


def attach_frequency_shift_heads(
    generator: nn.Module,
    shifts: Sequence[tuple[float, float]],
    latent_phase: bool = True,
    latent_gain: bool = True,
) -> nn.Module:
    """Add one :class:`FrequencyShiftHead` per shift to a generator.

    The generator (``specdetect.gan.models.Generator``) exposes its trunk
    (``trunk``, ``trunk_channels``, ``trunk_size``) and a list
    ``extra_heads`` whose outputs it adds to the main output before its final
    ``tanh``; the heads are appended there, so any architecture of the GAN
    module (any up-sampling unit, any number of final convolutions) can use
    them. The heads are created on the generator's device and dtype, with
    PyTorch's default initialization (the generator's own DCGAN
    initialization has already run).

    Parameters
    ----------
    generator : nn.Module
        Modified in place.
    shifts : sequence of (fx, fy)
        Shifts in cycles per pixel, e.g. ``[(1/16, 0), (0, 1/16)]``.
    latent_phase : bool
        Give every head a phase from the latent (see
        :class:`FrequencyShiftHead`); hooks on the generator pass ``z`` to
        the heads.
    latent_gain : bool
        Give every head a learned per-image gain from the latent (see
        :class:`FrequencyShiftHead`; needs the generator's ``nz``).

    Returns
    -------
    nn.Module
        The same generator, for chaining.
    """
    channels = _first_attribute(generator, ("channels", "out_channels", "image_channels"))
    size = _first_attribute(generator, ("size", "image_size", "out_size"))
    latent_size = _first_attribute(generator, ("nz", "latent_size")) if latent_gain else None
    reference = next(generator.parameters(), None)
    for fx, fy in shifts:
        index = sum(isinstance(h, FrequencyShiftHead) for h in generator.extra_heads)
        head = FrequencyShiftHead(
            generator.trunk_channels,
            channels,
            generator.trunk_size,
            size,
            fx,
            fy,
            latent_phase=latent_phase,
            latent_index=index,
            latent_size=latent_size,
            latent_gain=latent_gain,
        )
        if reference is not None:
            head = head.to(device=reference.device, dtype=reference.dtype)
        generator.extra_heads.append(head)
    if shifts and not getattr(generator, "_shares_latent", False):
        generator.register_forward_pre_hook(_share_latent)
        generator.register_forward_hook(_forget_latent)
        generator._shares_latent = True
    return generator


def _first_attribute(obj: object, names: Sequence[str]) -> int:
    for name in names:
        value = getattr(obj, name, None)
        if isinstance(value, int):
            return value
    raise AttributeError(f"{type(obj).__name__} has none of the attributes {list(names)}")
