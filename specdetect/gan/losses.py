"""Adversarial objectives and the differentiable spectral loss.

Spectral loss (Durall et al. 2020, Eq. 5), end to end differentiable
----------------------------------------------------------------------
For a batch of images in [-1, 1]:

1. grayscale (BT.601 luma) on the 0-255 scale;
2. power spectrum ``|rfft2|**2`` (:func:`specdetect.spectra.power_spectrum_torch`);
3. azimuthal integral: ring means of the power, a precomputed ring reduction
   (:func:`specdetect.spectra.azimuthal_integral_torch`);
4. log: ``10 * log10(ring_power + 1)`` dB;
5. normalized to [0, 1], by the first (DC) coefficient (``first``, the
   paper's choice) or per spectrum onto [0, 1] (``minmax``);
6. binary cross-entropy against the target: the mean normalized spectrum of
   N real training images; times lambda.

Why ``+ 1`` inside the log: with the usual tiny epsilon, rings whose power
is below one grey level squared get negative decibels, and dividing by the
first coefficient no longer lands in [0, 1], so the BCE target and input
would be invalid. Adding one grey level squared keeps every log value
``>= 0``; and since the DC term of a 0-255 image dominates every other ring
by tens of decibels, ``first``-normalized values lie in [0, 1]. The values
are still clamped to [0, 1] as a safety net (a pathological image with
almost zero mean and strong high frequencies); a clamped ring contributes no
gradient, which is the only place the loss is not smooth. ``minmax`` is in
[0, 1] by construction.

Nothing is detached: gradients flow from the loss through the FFT and the
ring reduction back into the generator (the public reference code computes
the spectra outside the graph, so its "spectral loss" never trains the
generator).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from specdetect import spectra

__all__ = [
    "SpectralLoss",
    "discriminator_loss",
    "generator_adversarial_loss",
    "gradient_penalty",
    "mean_real_spectrum",
    "spectral_loss",
    "spectral_profile",
    "to_luma255",
]

_LUMA = (0.299, 0.587, 0.114)


# --------------------------------------------------------------------------
# Spectral loss
# --------------------------------------------------------------------------
def to_luma255(images: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` images in [-1, 1] -> ``(B, H, W)`` luma on the 0-255 scale."""
    scaled = (images + 1.0) * 127.5
    if scaled.shape[1] == 1:
        return scaled[:, 0]
    if scaled.shape[1] == 3:
        weights = torch.tensor(_LUMA, device=images.device, dtype=images.dtype)
        return torch.einsum("bchw,c->bhw", scaled, weights)
    raise ValueError(f"images must have 1 or 3 channels, got {scaled.shape[1]}")


def spectral_profile(
    images: torch.Tensor, norm: str = "first", order: str = "power"
) -> torch.Tensor:
    """Normalized 1-D log spectrum of each image, differentiable.

    Parameters
    ----------
    images : Tensor, shape (B, C, H, W)
        Images in [-1, 1] (C = 1 or 3).
    norm : {"first", "minmax"}
        ``first``: divide by the DC coefficient (Durall et al.); ``minmax``:
        map each spectrum onto [0, 1].
    order : {"power", "log"}
        ``power``: ring means of the power, then the log (the paper's
        azimuthal integral of the power spectrum); ``log``: log of every
        frequency's power, then ring means (the detector's features, which
        weigh weak frequencies more).

    Returns
    -------
    Tensor, shape (B, n_rings)
        Values in [0, 1]; ``n_rings`` depends on the image size only.
    """
    if norm not in ("first", "minmax"):
        raise ValueError(f"norm must be 'first' or 'minmax', got {norm!r}")
    gray = to_luma255(images)
    power = spectra.power_spectrum_torch(gray)
    shape = tuple(gray.shape[-2:])
    if order == "power":
        ring_power, _ = spectra.azimuthal_integral_torch(power, shape)
        log_rings = spectra.log_power_torch(ring_power, eps=1.0)  # >= 0 dB, see module doc
    elif order == "log":
        log_rings, _ = spectra.azimuthal_integral_torch(
            spectra.log_power_torch(power, eps=1.0), shape
        )
    else:
        raise ValueError(f"order must be 'power' or 'log', got {order!r}")
    return spectra.normalize_spectrum_torch(log_rings, norm).clamp(0.0, 1.0)


def spectral_loss(
    images: torch.Tensor,
    target: torch.Tensor,
    norm: str = "first",
    weight: float = 1.0,
    order: str = "power",
    reduction: str = "image",
) -> torch.Tensor:
    """``weight * BCE(spectral_profile(images), target)``, averaged over rings and images.

    With ``reduction="batch"`` the profiles are averaged over the batch first,
    so only the batch's mean spectrum has to match the target (what the
    spectral distance measures), not every image's own spectrum.

    Parameters
    ----------
    images : Tensor, shape (B, C, H, W)
        Generated images in [-1, 1].
    target : Tensor, shape (n_rings,)
        Mean normalized spectrum of real images (:func:`mean_real_spectrum`).
    norm : {"first", "minmax"}
        Must match the one the target was made with.
    weight : float
        lambda.
    order : {"power", "log"}
        See :func:`spectral_profile`; must match the target's.
    reduction : {"image", "batch"}
        ``image``: the BCE of every image's spectrum (Durall et al.), averaged;
        ``batch``: the BCE of the batch-mean spectrum. Per image, every
        generated image is pulled towards the *mean* real spectrum, a
        pressure towards alike images that grows with lambda; per batch,
        the images may differ as real ones do.
    """
    if reduction not in ("image", "batch"):
        raise ValueError(f"reduction must be 'image' or 'batch', got {reduction!r}")
    profile = spectral_profile(images, norm, order)
    if reduction == "batch":
        profile = profile.mean(0, keepdim=True)
    if profile.shape[-1] != target.shape[-1]:
        raise ValueError(
            f"target has {target.shape[-1]} rings but images give {profile.shape[-1]}: "
            "estimate it from real images of the same size"
        )
    target = target.to(profile).expand_as(profile)
    # BCE in float32 even under autocast (log near 0 and 1).
    return weight * F.binary_cross_entropy(profile.float(), target.float())


@torch.no_grad()
def mean_real_spectrum(
    images: torch.Tensor, norm: str = "first", order: str = "power", batch_size: int = 256
) -> torch.Tensor:
    """Target spectrum: mean of :func:`spectral_profile` over real images ``(N, C, H, W)``."""
    total = None
    for start in range(0, len(images), batch_size):
        part = spectral_profile(images[start : start + batch_size].float(), norm, order)
        part = part.sum(0)
        total = part if total is None else total + part
    if total is None:
        raise ValueError("no real images to estimate the target spectrum from")
    return total / len(images)


class SpectralLoss(nn.Module):
    """Module form of :func:`spectral_loss` holding the target spectrum.

    Parameters
    ----------
    target : Tensor, shape (n_rings,)
        Mean normalized spectrum of real images.
    weight : float
        lambda.
    norm : {"first", "minmax"}
    order : {"power", "log"}
    reduction : {"image", "batch"}

    Examples
    --------
    >>> real = torch.rand(8, 3, 16, 16) * 2 - 1
    >>> loss = SpectralLoss.from_real(real)
    >>> float(loss(real)) > 0
    True
    """

    def __init__(
        self,
        target: torch.Tensor,
        weight: float = 1.0,
        norm: str = "first",
        order: str = "power",
        reduction: str = "image",
    ):
        super().__init__()
        self.register_buffer("target", torch.as_tensor(target, dtype=torch.float32))
        self.weight = weight
        self.norm = norm
        self.order = order
        self.reduction = reduction

    @classmethod
    def from_real(
        cls,
        images: torch.Tensor,
        weight: float = 1.0,
        norm: str = "first",
        order: str = "power",
        n: int = 1000,
    ) -> SpectralLoss:
        """Estimate the target from the first ``n`` real images."""
        return cls(mean_real_spectrum(images[:n], norm, order), weight, norm, order)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return spectral_loss(
            images, self.target, self.norm, self.weight, self.order, self.reduction
        )


# --------------------------------------------------------------------------
# Adversarial objectives
# --------------------------------------------------------------------------
def gradient_penalty(
    discriminator: nn.Module, points: torch.Tensor, target_norm: float = 1.0
) -> torch.Tensor:
    """``mean((||grad_x D(x)|| - target_norm)**2)`` at ``points``."""
    points = points.detach().requires_grad_(True)
    scores = discriminator(points)
    (grads,) = torch.autograd.grad(scores.sum(), points, create_graph=True)
    norms = grads.flatten(1).norm(dim=1)
    return ((norms - target_norm) ** 2).mean()


def discriminator_loss(
    objective: str,
    discriminator: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    gp_weight: float = 10.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Discriminator loss of one step; ``fake`` should be detached.

    Parameters
    ----------
    objective : {"gan", "lsgan", "wgan-gp", "dragan"}
    discriminator : nn.Module
    real, fake : Tensor, shape (B, C, H, W)
    gp_weight : float
        Penalty weight (wgan-gp, dragan).
    generator : torch.Generator, optional
        Random source for the penalty's interpolation points.
    """
    real_scores = discriminator(real)
    fake_scores = discriminator(fake)
    if objective in ("gan", "dragan"):
        loss = F.binary_cross_entropy_with_logits(
            real_scores, torch.ones_like(real_scores)
        ) + F.binary_cross_entropy_with_logits(fake_scores, torch.zeros_like(fake_scores))
    elif objective == "lsgan":
        loss = 0.5 * ((real_scores - 1) ** 2).mean() + 0.5 * (fake_scores**2).mean()
    elif objective == "wgan-gp":
        loss = fake_scores.mean() - real_scores.mean()
    else:
        raise ValueError(f"unknown objective {objective!r}")

    shape = (real.shape[0], 1, 1, 1)
    if objective == "wgan-gp":  # on lines between real and fake samples
        alpha = torch.rand(shape, generator=generator, device="cpu").to(real.device)
        loss = loss + gp_weight * gradient_penalty(discriminator, real + alpha * (fake - real))
    elif objective == "dragan":  # in a noisy neighbourhood of the real samples
        noise = torch.rand(real.shape, generator=generator, device="cpu").to(real.device)
        alpha = torch.rand(shape, generator=generator, device="cpu").to(real.device)
        perturbed = real + 0.5 * real.std() * noise
        loss = loss + gp_weight * gradient_penalty(discriminator, real + alpha * (perturbed - real))
    return loss


def generator_adversarial_loss(
    objective: str, discriminator: nn.Module, fake: torch.Tensor
) -> torch.Tensor:
    """Generator's adversarial loss (non-saturating for gan and dragan)."""
    scores = discriminator(fake)
    if objective in ("gan", "dragan"):
        return F.binary_cross_entropy_with_logits(scores, torch.ones_like(scores))
    if objective == "lsgan":
        return 0.5 * ((scores - 1) ** 2).mean()
    if objective == "wgan-gp":
        return -scores.mean()
    raise ValueError(f"unknown objective {objective!r}")
