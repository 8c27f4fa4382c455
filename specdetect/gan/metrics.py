"""How far generated images are from real ones, spectrally (and by FID).

All spectral metrics use the detector's feature vector
(:class:`specdetect.features.FeatureConfig` defaults: log power, azimuthal
mean, 64 bins over [0, 0.5] cycles per pixel, divided by the first
coefficient) on BT.601 luma, so every run and every image size is measured
on the same bins.

* :func:`spectral_distance`: mean absolute difference between the mean
  feature vectors of generated and real images (the paper uses 1,000 each).
* :func:`detectability`: held-out accuracy of an SVM trained to tell the two
  apart (0.5 = indistinguishable).
* :func:`spectral_frechet_distance`: Frechet distance between Gaussians fitted
  to the feature vectors. It is *not* FID; FID needs Inception features
  (:class:`InceptionFeatures`, only with a user-supplied weights file).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from specdetect.features import FeatureConfig, features_torch
from specdetect.gan.losses import to_luma255

__all__ = [
    "METRIC_FEATURES",
    "InceptionFeatures",
    "detectability",
    "fid",
    "frechet_distance",
    "image_features",
    "sample_images",
    "spectral_distance",
    "spectral_frechet_distance",
]

#: The feature recipe behind every spectral metric (fixed for all runs).
METRIC_FEATURES = FeatureConfig()


@torch.no_grad()
def image_features(images: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Spectral feature vectors ``(N, 64)`` of images ``(N, C, H, W)`` in [-1, 1]."""
    parts = []
    for start in range(0, len(images), batch_size):
        gray = to_luma255(images[start : start + batch_size].float())
        parts.append(features_torch(gray.double(), METRIC_FEATURES).float().cpu().numpy())
    return np.concatenate(parts) if parts else np.empty((0, METRIC_FEATURES.n_features))


@torch.no_grad()
def sample_images(
    generator: torch.nn.Module,
    n: int,
    seed: int,
    device: str | torch.device = "cpu",
    batch_size: int = 250,
) -> torch.Tensor:
    """``n`` images from ``generator`` (in eval mode) with latents from ``seed``, on CPU."""
    rng = torch.Generator().manual_seed(seed)
    was_training = generator.training
    generator.eval()
    out = []
    try:
        for start in range(0, n, batch_size):
            count = min(batch_size, n - start)
            z = torch.randn(count, generator.nz, generator=rng).to(device)
            out.append(generator(z).float().cpu())
    finally:
        generator.train(was_training)
    return torch.cat(out)


def spectral_distance(fake_features: np.ndarray, real_features: np.ndarray) -> float:
    """Mean absolute difference between the mean feature vectors."""
    return float(np.abs(fake_features.mean(0) - real_features.mean(0)).mean())


def detectability(fake_features: np.ndarray, real_features: np.ndarray, seed: int = 0) -> float:
    """Held-out accuracy of an RBF SVM on real vs generated features.

    Half of each set trains (standardized features), the other half tests.
    0.5 means the spectra cannot be told apart, 1.0 means always.
    """
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    x = np.concatenate([real_features, fake_features]).astype(np.float64)
    y = np.r_[np.zeros(len(real_features)), np.ones(len(fake_features))]
    x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.5, random_state=seed, stratify=y
    )
    model = make_pipeline(StandardScaler(), SVC(kernel="rbf", C=1.0, gamma="scale"))
    model.fit(x_train, y_train)
    return float(model.score(x_test, y_test))


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 0.0
) -> float:
    """Frechet distance between two Gaussians: ``|mu1-mu2|^2 + tr(S1 + S2 - 2 sqrt(S1 S2))``.

    ``eps`` is added to the covariance diagonals inside the square root
    (singular covariances, e.g. a constant feature).
    """
    import warnings

    import scipy.linalg

    diff = mu1 - mu2
    offset = np.eye(len(sigma1)) * eps
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
        if not np.isfinite(covmean).all():  # singular product: regularize, as in the FID code
            offset = np.eye(len(sigma1)) * max(eps, 1e-6)
            covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def _gaussian(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    features = np.asarray(features, dtype=np.float64)
    return features.mean(0), np.cov(features, rowvar=False)


def spectral_frechet_distance(fake_features: np.ndarray, real_features: np.ndarray) -> float:
    """Frechet distance on spectral feature vectors (not FID: no Inception network).

    The first feature is constant (the spectra are divided by it), so the
    covariances are singular; a 1e-9 ridge keeps the matrix root stable.
    """
    return frechet_distance(*_gaussian(fake_features), *_gaussian(real_features), eps=1e-9)


@dataclass
class InceptionFeatures:
    """Inception-v3 pool features from a user-supplied TorchScript file.

    Nothing is downloaded. The expected file is the TorchScript Inception-v3
    used for FID by NVIDIA's stylegan2-ada-pytorch and by clean-fid
    (``inception-2015-12-05.pt``, a port of the TensorFlow FID network): it
    takes uint8 images ``(B, 3, H, W)`` in [0, 255] of any size, resizes them
    itself, and returns ``(B, 2048)`` features when called with
    ``return_features=True``. Any TorchScript module with that call
    signature works (or one that maps uint8 images to ``(B, D)`` features
    when called without the keyword).

    A plain state-dict file cannot be used: it holds weights without the
    network, and specdetect does not ship an Inception-v3 definition.
    """

    path: str
    device: str | torch.device = "cpu"

    def __post_init__(self):
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"{self.path}: Inception weights file not found")
        import warnings

        try:
            with warnings.catch_warnings():  # TorchScript is deprecated, still the format used
                warnings.simplefilter("ignore", DeprecationWarning)
                self.model = torch.jit.load(self.path, map_location=self.device).eval()
        except (RuntimeError, ValueError) as exc:
            raise ValueError(
                f"{self.path}: not a TorchScript file (expected e.g. inception-2015-12-05.pt; "
                f"{type(exc).__name__})"
            ) from None

    @torch.no_grad()
    def __call__(self, images: torch.Tensor, batch_size: int = 100) -> np.ndarray:
        """Features of images ``(N, C, H, W)`` in [-1, 1]."""
        out = []
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            if batch.shape[1] == 1:
                batch = batch.repeat(1, 3, 1, 1)
            batch = ((batch + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).to(self.device)
            try:
                feats = self.model(batch, return_features=True)
            except (RuntimeError, TypeError):
                feats = self.model(batch)
            out.append(feats.reshape(len(batch), -1).double().cpu().numpy())
        return np.concatenate(out)


def fid(fake_images: torch.Tensor, real_images: torch.Tensor, network: InceptionFeatures) -> float:
    """Frechet Inception distance between two image sets ``(N, C, H, W)`` in [-1, 1]."""
    return frechet_distance(*_gaussian(network(fake_images)), *_gaussian(network(real_images)))
