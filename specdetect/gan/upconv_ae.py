"""The paper's up-convolution auto-encoder experiment (Durall et al. 2020, Figs. 5, 7, 8).

Real image crops are down-scaled by two (2x2 area mean) and a small network
reconstructs them at full size through one up-sampling unit. Every
combination of

* up-sampling unit: ``transconv``, ``nearest``, ``bilinear``;
* final convolutions: one 3x3, or three 5x5 (the paper's fix);
* loss: reconstruction (MSE) alone, or plus lambda times the spectral loss;

is trained with the same budget and seed, and scored on held-out crops by
the spectral error: the mean absolute difference between the mean spectra
(the metrics' 64-bin features) of reconstructions and originals.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from specdetect.atomic import atomic_write
from specdetect.gan.data import random_crops
from specdetect.gan.losses import mean_real_spectrum, spectral_loss
from specdetect.gan.metrics import image_features, spectral_distance
from specdetect.gan.models import upsample_unit
from specdetect.media import IMAGE_EXTENSIONS, iter_paths

__all__ = ["AeConfig", "AeResult", "UpconvAutoEncoder", "run_experiment"]

FINALS = ("1x3x3", "3x5x5")


@dataclass
class AeConfig:
    """Settings of the auto-encoder experiment (the same for every variant)."""

    size: int = 64
    crops: int = 1024
    steps: int = 300
    batch_size: int = 16
    width: int = 16
    lr: float = 1e-3
    spectral_weight: float = 1.0
    spectral_norm: str = "first"
    test_fraction: float = 0.25
    channels: int = 3
    seed: int = 0

    def __post_init__(self):
        if self.size < 8 or self.size % 2:
            raise ValueError(f"size must be even and >= 8, got {self.size}")
        if self.crops < 8 or self.steps < 1:
            raise ValueError("crops must be >= 8 and steps >= 1")


class UpconvAutoEncoder(nn.Module):
    """Half-size image -> full-size reconstruction through one up-sampling unit."""

    def __init__(self, channels: int, width: int, upsample: str, final: str):
        super().__init__()
        self.encode = nn.Sequential(
            nn.Conv2d(channels, width, 3, 1, 1),
            nn.ReLU(True),
            nn.Conv2d(width, width, 3, 1, 1),
            nn.ReLU(True),
        )
        self.up = nn.Sequential(upsample_unit(width, width, upsample, bias=True), nn.ReLU(True))
        if final == "1x3x3":
            self.final = nn.Conv2d(width, channels, 3, 1, 1)
        elif final == "3x5x5":
            self.final = nn.Sequential(
                nn.Conv2d(width, width, 5, 1, 2),
                nn.ReLU(True),
                nn.Conv2d(width, width, 5, 1, 2),
                nn.ReLU(True),
                nn.Conv2d(width, channels, 5, 1, 2),
            )
        else:
            raise ValueError(f"final must be one of {FINALS}, got {final!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final(self.up(self.encode(x)))


@dataclass
class AeResult:
    """Rows (one dict per variant), the markdown table, and the output paths."""

    rows: list[dict]
    table: str
    spectra: dict[str, list[float]]


def _downscale(images: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(images, 2)


def _train_variant(
    train: torch.Tensor,
    target: torch.Tensor,
    config: AeConfig,
    upsample: str,
    final: str,
    weight: float,
    device: torch.device,
) -> UpconvAutoEncoder:
    torch.manual_seed(config.seed)  # the same initial weights and batches for every loss
    model = UpconvAutoEncoder(config.channels, config.width, upsample, final).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    rng = torch.Generator().manual_seed(config.seed)
    for _ in range(config.steps):
        index = torch.randint(len(train), (config.batch_size,), generator=rng)
        batch = train[index].to(device)
        recon = model(_downscale(batch))
        loss = F.mse_loss(recon, batch)
        if weight > 0:
            loss = loss + spectral_loss(recon, target, config.spectral_norm, weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()


@torch.no_grad()
def _reconstruct(model: nn.Module, images: torch.Tensor, device: torch.device) -> torch.Tensor:
    parts = [
        model(_downscale(images[i : i + 64].to(device))).cpu() for i in range(0, len(images), 64)
    ]
    return torch.cat(parts)


def run_experiment(
    data_dir: str | os.PathLike,
    out_dir: str | os.PathLike | None,
    config: AeConfig = AeConfig(),
    device: str | torch.device = "cpu",
    on_error: Callable[[str], None] | None = None,
    images: torch.Tensor | None = None,
) -> AeResult:
    """Train and score all 12 variants; write ``table.md``, ``results.json``, ``spectra.png``.

    Parameters
    ----------
    data_dir : path
        Folder of real images (random crops are cut from them); ignored when
        ``images`` is given.
    out_dir : path, optional
        Where the table and plot go (None: nothing written).
    config : AeConfig
    device : str or torch.device
    on_error : callable, optional
        Receives a line per unreadable image.
    images : Tensor ``(N, C, S, S)`` in [-1, 1], optional
        Use these crops instead of reading ``data_dir``.
    """
    device = torch.device(device)
    if images is None:
        paths = list(iter_paths([data_dir], IMAGE_EXTENSIONS))
        images = random_crops(
            paths, config.size, config.crops, config.channels, config.seed, on_error=on_error
        ).images
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(config.seed))
    n_test = max(4, int(len(images) * config.test_fraction))
    test, train = images[order[:n_test]], images[order[n_test:]]
    target = mean_real_spectrum(train[:1000], config.spectral_norm).to(device)
    real_features = image_features(test)

    rows, spectra = [], {"real": real_features.mean(0).tolist()}
    for upsample, final, weight in itertools.product(
        ("transconv", "nearest", "bilinear"), FINALS, (0.0, config.spectral_weight)
    ):
        model = _train_variant(train, target, config, upsample, final, weight, device)
        recon = _reconstruct(model, test, device)
        features = image_features(recon)
        name = f"{upsample}/{final}/{'spectral' if weight > 0 else 'mse'}"
        spectra[name] = features.mean(0).tolist()
        rows.append(
            {
                "upsample": upsample,
                "final_convs": final,
                "spectral_loss": weight > 0,
                "spectral_error": spectral_distance(features, real_features),
                "mse": float(F.mse_loss(recon, test)),
            }
        )
    table = format_table(rows)
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        with atomic_write(out_dir / "table.md", "w") as handle:
            handle.write(table + "\n")
        with atomic_write(out_dir / "results.json", "w") as handle:
            json.dump({"config": asdict(config), "rows": rows, "spectra": spectra}, handle)
        plot_spectra(spectra, out_dir / "spectra.png")
    return AeResult(rows, table, spectra)


def format_table(rows: list[dict]) -> str:
    """Markdown table of the variants."""
    lines = [
        "| up-sampling | final convs | spectral loss | spectral error | MSE |",
        "|---|---|---|---:|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row['upsample']} | {row['final_convs']} | "
            f"{'yes' if row['spectral_loss'] else 'no'} | "
            f"{row['spectral_error']:.4f} | {row['mse']:.4f} |"
        )
    return "\n".join(lines)


def plot_spectra(spectra: dict[str, list[float]], path: Path) -> None:
    """One panel per up-sampling unit: real vs each variant's mean spectrum."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real = np.asarray(spectra["real"])
    freqs = np.linspace(0, 0.5, len(real))
    figure, axes = plt.subplots(1, 3, figsize=(15, 4), sharey=True)
    for axis, unit in zip(axes, ("transconv", "nearest", "bilinear"), strict=True):
        axis.plot(freqs, real, color="black", linewidth=2, label="real")
        for name, values in spectra.items():
            if name.startswith(unit + "/"):
                style = "-" if name.endswith("spectral") else "--"
                axis.plot(freqs, values, style, label=name.split("/", 1)[1])
        axis.set_title(unit)
        axis.set_xlabel("spatial frequency (cycles per pixel)")
        axis.legend(fontsize=8)
    axes[0].set_ylabel("normalized log power")
    figure.tight_layout()
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=100)
    plt.close(figure)
