"""The paper's up-convolution auto-encoder experiment (Durall et al. 2020, Figs. 5, 7, 8).

Real image crops are down-scaled by two (2x2 area mean) and a small network
reconstructs them at full size through one up-sampling unit. For every

* up-sampling unit: ``transconv``, ``nearest``, ``bilinear``;
* final convolutions: one 3x3, or three 5x5 (the paper's fix);

one network is first trained on the reconstruction loss (MSE) alone for
``warmup_steps``; from there it branches, with the same budget
(``steps``), batches and learning-rate schedule for each branch, into

* MSE alone (the baseline), and
* MSE + lambda x spectral loss, for every lambda in ``spectral_weights``.

Each branch is scored on held-out crops by its reconstruction MSE and its
spectral error: the mean absolute difference between the mean spectra (the
metrics' 64-bin features, :mod:`specdetect.gan.metrics`) of reconstructions
and originals. The spectral loss uses the ring mean of the log power
(``order="log"``), the same spectrum the error measures.

Why the warm-up: from random weights the spectral term (which sees only each
image's 1-D spectrum, not its content) pulls the network towards texture
before it can reconstruct anything, and that costs MSE. Started from a
network that already reconstructs, it only has to add the missing high
frequencies.
"""

from __future__ import annotations

import copy
import itertools
import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from specdetect.atomic import atomic_write
from specdetect.gan.config import UPSAMPLES
from specdetect.gan.data import random_crops
from specdetect.gan.losses import mean_real_spectrum, spectral_loss
from specdetect.gan.metrics import image_features, spectral_distance
from specdetect.gan.models import upsample_unit
from specdetect.media import IMAGE_EXTENSIONS, iter_paths

__all__ = ["AeConfig", "AeResult", "UpconvAutoEncoder", "format_table", "run_experiment"]

FINALS = ("1x3x3", "3x5x5")


@dataclass
class AeConfig:
    """Settings of the auto-encoder experiment (the same for every variant).

    Parameters
    ----------
    size : int
        Crop size of the targets (the inputs are half of it).
    crops : int
        Random crops cut from the images (``test_fraction`` of them held out).
    steps : int
        Training steps of each branch after the warm-up.
    warmup_steps : int
        MSE-only steps shared by all branches of one network.
    batch_size, width : int
        Crops per step; channels of the network.
    lr : float
        Adam learning rate, decayed to zero along a cosine over warm-up plus
        branch (every branch follows the same schedule).
    spectral_weights : tuple of float
        lambda of each spectral-loss branch (the sweep).
    spectral_norm, spectral_order, spectral_reduction : str
        Spectral loss settings (see :func:`specdetect.gan.losses.spectral_loss`).
    upsamples, finals : tuple of str
        Up-sampling units and final-convolution choices to compare.
    test_fraction : float
        Share of the crops held out for scoring.
    channels, seed : int
    """

    size: int = 32
    crops: int = 1024
    steps: int = 600
    warmup_steps: int = 600
    batch_size: int = 16
    width: int = 16
    lr: float = 2e-3
    spectral_weights: tuple[float, ...] = (0.1, 0.3, 1.0)
    spectral_norm: str = "first"
    spectral_order: str = "log"
    spectral_reduction: str = "image"
    upsamples: tuple[str, ...] = UPSAMPLES
    finals: tuple[str, ...] = FINALS
    test_fraction: float = 0.25
    channels: int = 3
    seed: int = 0

    def __post_init__(self):
        self.spectral_weights = tuple(float(w) for w in self.spectral_weights)
        self.upsamples, self.finals = tuple(self.upsamples), tuple(self.finals)
        if self.size < 8 or self.size % 2:
            raise ValueError(f"size must be even and >= 8, got {self.size}")
        if self.crops < 8 or self.steps < 1 or self.warmup_steps < 0:
            raise ValueError("crops must be >= 8, steps >= 1 and warmup_steps >= 0")
        if any(w <= 0 for w in self.spectral_weights):
            raise ValueError("spectral weights must be > 0 (the MSE-only branch always runs)")
        if not self.upsamples or set(self.upsamples) - set(UPSAMPLES):
            raise ValueError(f"upsamples must be among {UPSAMPLES}")
        if self.spectral_reduction not in ("image", "batch"):
            raise ValueError("spectral_reduction must be image or batch")
        if not self.finals or set(self.finals) - set(FINALS):
            raise ValueError(f"finals must be among {FINALS}")


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
    """Rows (one dict per variant), the markdown table, and the mean spectra."""

    rows: list[dict]
    table: str
    spectra: dict[str, list[float]]


def _downscale(images: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(images, 2)


def _cosine_lr(config: AeConfig, step: int) -> float:
    total = config.warmup_steps + config.steps
    return config.lr * 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total))


def _train(
    model: UpconvAutoEncoder,
    optimizer: torch.optim.Optimizer,
    train: torch.Tensor,
    target: torch.Tensor,
    config: AeConfig,
    weight: float,
    first_step: int,
    n_steps: int,
    device: torch.device,
) -> None:
    """``n_steps`` steps of MSE (+ ``weight`` x spectral loss); batches seeded by position."""
    rng = torch.Generator().manual_seed(config.seed * 1_000_003 + first_step)
    for step in range(first_step, first_step + n_steps):
        for group in optimizer.param_groups:
            group["lr"] = _cosine_lr(config, step)
        index = torch.randint(len(train), (config.batch_size,), generator=rng)
        batch = train[index].to(device)
        recon = model(_downscale(batch))
        loss = F.mse_loss(recon, batch)
        if weight > 0:
            loss = loss + spectral_loss(
                recon, target, config.spectral_norm, weight, config.spectral_order,
                config.spectral_reduction,
            )  # fmt: skip
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def _train_branches(
    train: torch.Tensor,
    target: torch.Tensor,
    config: AeConfig,
    upsample: str,
    final: str,
    device: torch.device,
) -> dict[float, UpconvAutoEncoder]:
    """Warm one network up on MSE, then train one copy per weight (0 = MSE only)."""
    torch.manual_seed(config.seed)  # the same initial weights for every unit's run
    model = UpconvAutoEncoder(config.channels, config.width, upsample, final).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    _train(model, optimizer, train, target, config, 0.0, 0, config.warmup_steps, device)
    branches = {}
    for weight in (0.0, *config.spectral_weights):
        branch = copy.deepcopy(model)
        branch_optimizer = torch.optim.Adam(branch.parameters(), lr=config.lr)
        branch_optimizer.load_state_dict(optimizer.state_dict())  # the same Adam moments
        first = config.warmup_steps
        _train(branch, branch_optimizer, train, target, config, weight, first, config.steps, device)
        branches[weight] = branch.eval()
    return branches


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
    log: Callable[[str], None] | None = None,
) -> AeResult:
    """Train and score every variant; write ``table.md``, ``results.json``, ``spectra.png``.

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
    log : callable, optional
        Receives the table rows of each network as soon as it is scored.

    Returns
    -------
    AeResult
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
    target = mean_real_spectrum(train[:1000], config.spectral_norm, config.spectral_order)
    target = target.to(device)
    real_features = image_features(test)

    rows, spectra = [], {"real": real_features.mean(0).tolist()}
    for upsample, final in itertools.product(config.upsamples, config.finals):
        branches = _train_branches(train, target, config, upsample, final, device)
        for weight, model in branches.items():
            recon = _reconstruct(model, test, device)
            features = image_features(recon)
            name = f"{upsample}/{final}/" + (f"lambda={weight:g}" if weight > 0 else "mse")
            spectra[name] = features.mean(0).tolist()
            rows.append(
                {
                    "upsample": upsample,
                    "final_convs": final,
                    "spectral_weight": weight,
                    "spectral_loss": weight > 0,
                    "spectral_error": spectral_distance(features, real_features),
                    "mse": float(F.mse_loss(recon, test)),
                }
            )
        if log is not None:
            log(format_table(rows[-len(branches) :], header=False))
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


def format_table(rows: list[dict], header: bool = True) -> str:
    """Markdown table; each spectral-loss row is compared with its network's MSE-only row."""
    lines = []
    if header:
        lines = [
            "| up-sampling | final convs | loss | spectral error | MSE | "
            "spectral error vs MSE only | MSE vs MSE only |",
            "|---|---|---|---:|---:|---:|---:|",
        ]
    baseline: dict[tuple[str, str], dict] = {}
    for row in rows:
        key = (row["upsample"], row["final_convs"])
        weight = row["spectral_weight"]
        versus = " | |"
        if weight == 0:
            baseline[key] = row
            loss = "MSE"
        else:
            loss = f"MSE + {weight:g} x spectral"
            base = baseline.get(key)
            if base is not None:
                ratio = base["spectral_error"] / max(row["spectral_error"], 1e-12)
                change = row["mse"] / max(base["mse"], 1e-12) - 1
                versus = f" {ratio:.1f}x smaller | {change:+.0%} |"
        lines.append(
            f"| {row['upsample']} | {row['final_convs']} | {loss} | "
            f"{row['spectral_error']:.4f} | {row['mse']:.4f} |{versus}"
        )
    return "\n".join(lines)


def plot_spectra(spectra: dict[str, list[float]], path: Path) -> None:
    """One panel per up-sampling unit: real vs each variant's mean spectrum."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    real = np.asarray(spectra["real"])
    freqs = np.linspace(0, 0.5, len(real))
    units = [unit for unit in UPSAMPLES if any(name.startswith(unit + "/") for name in spectra)]
    figure, axes = plt.subplots(1, len(units), figsize=(5 * len(units), 4), sharey=True)
    for axis, unit in zip(np.atleast_1d(axes), units, strict=True):
        axis.plot(freqs, real, color="black", linewidth=2, label="real")
        for name, values in spectra.items():
            if name.startswith(unit + "/"):
                style = "--" if name.endswith("/mse") else "-"
                axis.plot(freqs, values, style, label=name.split("/", 1)[1])
        axis.set_title(unit)
        axis.set_xlabel("spatial frequency (cycles per pixel)")
        axis.legend(fontsize=8)
    np.atleast_1d(axes)[0].set_ylabel("normalized log power")
    figure.tight_layout()
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=100)
    plt.close(figure)
