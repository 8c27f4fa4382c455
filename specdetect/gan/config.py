"""Training settings for :func:`specdetect.gan.train.train_gan` (no torch here)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = [
    "ARCHS",
    "OBJECTIVES",
    "PLAIN_RECIPE",
    "SIZES",
    "SPECTRAL_NORMS",
    "SPECTRAL_RECIPE",
    "UPSAMPLES",
    "GanConfig",
    "spectral_recipe",
]

#: Adversarial objectives. ``gan`` is the non-saturating DCGAN loss.
OBJECTIVES: tuple[str, ...] = ("gan", "lsgan", "wgan-gp", "dragan")
#: Names accepted by ``gan-train --arch``; ``dcgan`` means the objective ``gan``.
ARCHS: dict[str, str] = {"dcgan": "gan", "gan": "gan", "lsgan": "lsgan"}
ARCHS.update({"wgan-gp": "wgan-gp", "dragan": "dragan"})
#: Up-sampling units of the generator.
UPSAMPLES: tuple[str, ...] = ("transconv", "nearest", "bilinear")
#: Output sizes the generator supports.
SIZES: tuple[int, ...] = (32, 64, 128)
#: Normalizations of the spectral loss.
SPECTRAL_NORMS: tuple[str, ...] = ("first", "minmax")

#: The paper's fix as tested here (``gan-train --spectral``): the spectral
#: loss with weight 300 on the ring mean of the log power (the detector's own
#: spectrum) of the batch-mean spectrum, and three 5x5 convolutions after the
#: last up-sampling. Chosen by the sweep in the README ("What --spectral sets").
SPECTRAL_RECIPE: dict[str, Any] = {
    "spectral_weight": 300.0,
    "spectral_order": "log",
    "spectral_reduction": "batch",
    "final_convs": 3,
}
#: The same settings without the fix (the :class:`GanConfig` defaults).
PLAIN_RECIPE: dict[str, Any] = {
    "spectral_weight": 0.0,
    "spectral_order": "power",
    "spectral_reduction": "image",
    "final_convs": 0,
}


def spectral_recipe(spectral: bool = False, **explicit: Any) -> dict[str, Any]:
    """The spectral-loss settings of a run: a recipe, with explicit values winning.

    Parameters
    ----------
    spectral : bool
        Start from :data:`SPECTRAL_RECIPE` (True) or :data:`PLAIN_RECIPE`.
    **explicit
        ``spectral_weight``, ``spectral_order``, ``spectral_reduction`` or
        ``final_convs`` set by the user; ``None`` means "not given" and keeps the recipe's value.

    Returns
    -------
    dict
        The three settings, ready for :class:`GanConfig`.

    Examples
    --------
    >>> recipe = spectral_recipe(True, spectral_weight=None, final_convs=0)
    >>> recipe["spectral_weight"] == SPECTRAL_RECIPE["spectral_weight"], recipe["final_convs"]
    (True, 0)
    >>> spectral_recipe(False)["spectral_weight"]
    0.0
    """
    unknown = set(explicit) - set(SPECTRAL_RECIPE)
    if unknown:
        raise ValueError(f"not part of the spectral recipe: {sorted(unknown)}")
    settings = dict(SPECTRAL_RECIPE if spectral else PLAIN_RECIPE)
    settings.update({key: value for key, value in explicit.items() if value is not None})
    return settings


@dataclass
class GanConfig:
    """Everything a GAN training run depends on.

    Stored as ``config.json`` in the run directory, so a run can be repeated
    and resumed. All fields are plain JSON values.

    Parameters
    ----------
    objective : {"gan", "lsgan", "wgan-gp", "dragan"}
        Adversarial objective (``gan`` = non-saturating DCGAN).
    upsample : {"transconv", "nearest", "bilinear"}
        Up-sampling unit of every generator stage.
    size : {32, 64, 128}
        Output image size.
    channels : {1, 3}
        Image channels.
    final_convs : int
        Number of 5x5 convolutions after the last up-sampling (the paper's
        fix uses 3; 0 = the up-sampling unit makes the image itself).
    final_width : int or None
        Channels of the final convolutions (default ``max(8, ngf // 2)``).
    spectral_weight : float
        Weight lambda of the spectral loss in the generator loss (0 = off).
    spectral_norm : {"first", "minmax"}
        Normalization of the 1-D spectra in the spectral loss.
    spectral_order : {"power", "log"}
        ``power``: log of the ring-mean power (the paper); ``log``: ring mean
        of the log power (the detector's features).
    spectral_reduction : {"image", "batch"}
        Match every image's spectrum (the paper) or the batch-mean spectrum
        (see :func:`specdetect.gan.losses.spectral_loss`).
    spectral_real_images : int
        Real images that estimate the target spectrum (once per run).
    nz, ngf, ndf : int
        Latent size and base widths of generator and discriminator.
    epochs, batch_size : int
        Training budget.
    lr, beta1, beta2 : float
        Adam settings for both networks.
    n_critic : int or None
        Discriminator steps per generator step (None: 5 for wgan-gp, else 1).
    gp_weight : float
        Gradient penalty weight of wgan-gp and dragan.
    seed : int
        Seeds weights, data order, noise and the metrics.
    device : {"auto", "cpu", "cuda"}
        Where to train.
    max_images : int or None
        Use at most this many training images.
    metrics : bool
        Compute spectral distance, detectability and the spectral Frechet
        distance after every epoch (costs a few seconds).
    metric_images : int
        Generated and real images per metric (1,000 as in the paper).
    inception_weights : str or None
        TorchScript Inception file; when set, FID is computed too.
    freq_shifts : list of (fx, fy)
        Frequency-shifted branch heads (see :mod:`specdetect.gan.frequency`).
    """

    objective: str = "gan"
    upsample: str = "transconv"
    size: int = 64
    channels: int = 3
    final_convs: int = 0
    final_width: int | None = None
    spectral_weight: float = 0.0
    spectral_norm: str = "first"
    spectral_order: str = "power"
    spectral_reduction: str = "image"
    spectral_real_images: int = 1000
    nz: int = 100
    ngf: int = 64
    ndf: int = 64
    epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    n_critic: int | None = None
    gp_weight: float = 10.0
    seed: int = 0
    device: str = "auto"
    max_images: int | None = None
    metrics: bool = True
    metric_images: int = 1000
    inception_weights: str | None = None
    freq_shifts: list[tuple[float, float]] = field(default_factory=list)

    def __post_init__(self):
        self.objective = ARCHS.get(self.objective, self.objective)
        self.freq_shifts = [(float(fx), float(fy)) for fx, fy in self.freq_shifts]
        checks = [
            (self.objective in OBJECTIVES, f"objective must be one of {OBJECTIVES}"),
            (self.upsample in UPSAMPLES, f"upsample must be one of {UPSAMPLES}"),
            (self.size in SIZES, f"size must be one of {SIZES}"),
            (self.channels in (1, 3), "channels must be 1 or 3"),
            (self.final_convs >= 0, "final_convs must be >= 0"),
            (self.spectral_weight >= 0, "spectral_weight must be >= 0"),
            (self.spectral_norm in SPECTRAL_NORMS, f"spectral_norm must be in {SPECTRAL_NORMS}"),
            (self.spectral_order in ("power", "log"), "spectral_order must be power or log"),
            (self.spectral_reduction in ("image", "batch"), "spectral_reduction: image or batch"),
            (self.epochs >= 1 and self.batch_size >= 2, "epochs >= 1 and batch_size >= 2"),
            (self.device in ("auto", "cpu", "cuda"), "device must be auto, cpu or cuda"),
            (self.metric_images >= 4, "metric_images must be >= 4"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def critic_steps(self) -> int:
        """Discriminator steps per generator step."""
        if self.n_critic is not None:
            return max(1, self.n_critic)
        return 5 if self.objective == "wgan-gp" else 1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["freq_shifts"] = [list(pair) for pair in self.freq_shifts]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GanConfig:
        """Build from a dict, refusing keys this version does not know."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown GAN settings: {sorted(unknown)}")
        return cls(**data)


def parse_frequency(text: str) -> float:
    """Parse a frequency in cycles per pixel, as a decimal or a fraction.

    Examples
    --------
    >>> parse_frequency("1/16"), parse_frequency(" 0.25 ")
    (0.0625, 0.25)
    """
    numerator, _, denominator = text.strip().partition("/")
    try:
        return float(numerator) / float(denominator) if denominator else float(numerator)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"{text.strip()!r} is not a frequency (a number or a fraction)") from None


def parse_freq_shifts(text: str | None) -> list[tuple[float, float]]:
    """Parse ``"fx,fy;fx,fy"`` into a list of pairs (fractions like ``1/16`` allowed).

    Examples
    --------
    >>> parse_freq_shifts("1/16,0; -0.0625,0.0625")
    [(0.0625, 0.0), (-0.0625, 0.0625)]
    >>> parse_freq_shifts("")
    []
    """
    pairs: list[tuple[float, float]] = []
    for chunk in (text or "").split(";"):
        chunk = chunk.strip()
        if not chunk:
            continue
        parts = chunk.split(",")
        if len(parts) != 2:
            raise ValueError(f"frequency shift {chunk!r} is not 'fx,fy'")
        pairs.append((parse_frequency(parts[0]), parse_frequency(parts[1])))
    return pairs
