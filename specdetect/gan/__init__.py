"""GANs with a differentiable spectral regularizer (Durall et al. 2020).

Modules
-------
config
    :class:`GanConfig`, every training setting (JSON-serializable, no torch).
models
    Generator with a selectable up-sampling unit, DCGAN discriminator.
losses
    Adversarial objectives and the spectral loss.
data
    Training images from folders (centre crop and resize, random crops).
train
    The training loop, checkpoints, :func:`train_gan`.
sample
    Writing generated PNGs (``gan-sample``).
metrics
    Spectral distance, detectability, spectral Frechet distance, FID.
upconv_ae
    The paper's up-convolution auto-encoder experiment.

Importing this package is cheap; torch loads with the submodules that need it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from specdetect.gan.config import ARCHS, OBJECTIVES, UPSAMPLES, GanConfig

if TYPE_CHECKING:  # pragma: no cover
    from specdetect.gan.losses import SpectralLoss, spectral_loss
    from specdetect.gan.models import Discriminator, Generator
    from specdetect.gan.train import TrainResult, train_gan

__all__ = [
    "ARCHS",
    "OBJECTIVES",
    "UPSAMPLES",
    "Discriminator",
    "GanConfig",
    "Generator",
    "SpectralLoss",
    "TrainResult",
    "spectral_loss",
    "train_gan",
]

_LAZY = {
    "SpectralLoss": "specdetect.gan.losses",
    "spectral_loss": "specdetect.gan.losses",
    "Generator": "specdetect.gan.models",
    "Discriminator": "specdetect.gan.models",
    "TrainResult": "specdetect.gan.train",
    "train_gan": "specdetect.gan.train",
}


def __getattr__(name: str) -> Any:  # PEP 562: import torch-backed names on first use
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'specdetect.gan' has no attribute {name!r}")
