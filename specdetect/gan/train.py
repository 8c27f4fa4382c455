"""GAN training loop: checkpoints every epoch, exact resume, per-epoch metrics.

A run directory holds:

* ``config.json``: the :class:`GanConfig`, library versions, the data source;
* ``checkpoint.pt``: networks, optimizers, every RNG state, metrics so far
  (written atomically after every epoch; loaded with ``weights_only=True``);
* ``real_spectrum.json``: the spectral loss target, estimated once;
* ``metrics.jsonl``: one JSON line per epoch;
* ``samples_epoch{E}.png``: an 8x8 grid from fixed latents per epoch;
* ``spectra.png``: mean spectra of real vs generated images (at the end).

All training randomness (data order, latents, penalty points) comes from one
``torch.Generator`` whose state is checkpointed, so on CPU a resumed run
gives bit-identical results to an uninterrupted one with the same seed.
"""

from __future__ import annotations

import json
import os
import platform
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from specdetect.atomic import atomic_write
from specdetect.gan import metrics as gan_metrics
from specdetect.gan.config import GanConfig
from specdetect.gan.losses import (
    discriminator_loss,
    generator_adversarial_loss,
    mean_real_spectrum,
    spectral_loss,
)
from specdetect.gan.models import Generator, build_discriminator, build_generator

__all__ = [
    "GanConfig",
    "TrainResult",
    "load_generator",
    "save_image_grid",
    "select_device",
    "train_gan",
]

CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"
METRICS = "metrics.jsonl"
REAL_SPECTRUM = "real_spectrum.json"
_GRID = 64  # images in each per-epoch sample grid


@dataclass
class TrainResult:
    """What :func:`train_gan` returns.

    Attributes
    ----------
    generator : Generator
        The trained generator (eval mode, on the training device).
    metrics : list of dict
        One record per epoch (the lines of ``metrics.jsonl``).
    seconds_per_epoch : float
        Mean wall time of the training part of an epoch (metrics excluded).
    run_dir : Path or None
    """

    generator: Generator
    metrics: list[dict]
    seconds_per_epoch: float
    run_dir: Path | None = None


def select_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` fails clearly without a GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: torch sees no CUDA GPU")
    return torch.device(name)


def versions() -> dict[str, str]:
    """Versions of the libraries a run depends on: the detector's list plus torch."""
    from specdetect.detect.detector import library_versions

    return {**library_versions(), "torch": torch.__version__, "platform": platform.platform()}


def _prepare_data(data, config: GanConfig, on_error) -> tuple[torch.Tensor, str]:
    if isinstance(data, torch.Tensor):
        images, source = data, "in-memory tensor"
    else:
        from specdetect.gan.data import load_folder

        loaded = load_folder(data, config.size, config.channels, config.max_images, on_error)
        images, source = loaded.images, os.fspath(data)
    expected = (config.channels, config.size, config.size)
    if images.ndim != 4 or tuple(images.shape[1:]) != expected:
        shape = ", ".join(map(str, expected))
        raise ValueError(f"data must be (N, {shape}), got {tuple(images.shape)}")
    if config.max_images is not None:
        images = images[: config.max_images]
    if len(images) < 2:
        raise ValueError(f"need at least 2 training images, got {len(images)}")
    return images.float().contiguous(), source


def save_image_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int = 8) -> None:
    """Save images ``(N, C, H, W)`` in [-1, 1] as one PNG grid (atomically)."""
    from PIL import Image

    n, c, h, w = images.shape
    rows = (n + nrow - 1) // nrow
    grid = torch.ones(c, rows * (h + 2) + 2, nrow * (w + 2) + 2)
    for index, image in enumerate(images.detach().float().cpu()):
        top, left = 2 + (index // nrow) * (h + 2), 2 + (index % nrow) * (w + 2)
        grid[:, top : top + h, left : left + w] = image
    array = ((grid.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    picture = Image.fromarray(array[..., 0] if c == 1 else array)
    with atomic_write(path, "wb") as handle:
        picture.save(handle, format="PNG")


def _rng_states(rng: torch.Generator) -> dict:
    np_state = np.random.get_state()  # noqa: NPY002 - the legacy global state is what we save
    states = {
        "train": rng.get_state(),
        "torch": torch.get_rng_state(),
        # numpy's state as plain values, so weights_only loading accepts it
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _restore_rng_states(rng: torch.Generator, states: dict) -> None:
    rng.set_state(states["train"])
    torch.set_rng_state(states["torch"])
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))  # noqa: NPY002
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def _write_json(path: Path, data) -> None:
    with atomic_write(path, "w") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")


def _write_metrics(path: Path, records: list[dict]) -> None:
    # The whole file is rewritten atomically: after a kill it always matches the checkpoint.
    with atomic_write(path, "w") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")


_RESUMABLE = {"epochs", "device", "metrics", "metric_images", "inception_weights"}


def _check_resume(stored: GanConfig, config: GanConfig) -> None:
    changed = [
        key
        for key, value in config.to_dict().items()
        if key not in _RESUMABLE and stored.to_dict().get(key) != value
    ]
    if changed:
        raise ValueError(f"cannot resume with changed settings: {', '.join(sorted(changed))}")


def load_generator(
    run_dir: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[Generator, GanConfig]:
    """The generator of a run directory (latest checkpoint), in eval mode."""
    run_dir = Path(run_dir)
    config_path, checkpoint_path = run_dir / CONFIG, run_dir / CHECKPOINT
    for path in (config_path, checkpoint_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: not found (is {run_dir} a gan-train run?)")
    config = GanConfig.from_dict(json.loads(config_path.read_text())["config"])
    with torch.random.fork_rng(devices=[]):  # initial weights are overwritten: keep the RNG
        generator = build_generator(config)
    state = torch.load(checkpoint_path, map_location=device, weights_only=True)
    generator.load_state_dict(state["generator"])
    return generator.to(device).eval(), config


def train_gan(
    config: GanConfig,
    data: torch.Tensor | str | os.PathLike,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    stop_after: int | None = None,
    log: Callable[[str], None] | None = None,
    on_error: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train a GAN; usable from Python with in-memory data.

    Parameters
    ----------
    config : GanConfig
        All settings (``config.metrics=False`` skips the per-epoch metrics).
    data : Tensor ``(N, C, S, S)`` in [-1, 1], or a folder
        Training images; a folder is centre-cropped and resized.
    run_dir : path, optional
        Where checkpoints, metrics and plots go. None: nothing is written.
    resume : bool
        Continue from ``run_dir/checkpoint.pt`` (after a kill, or with a
        larger ``config.epochs``). Other settings must be unchanged.
    stop_after : int, optional
        Train at most this many epochs in this call (time-boxed jobs).
    log : callable, optional
        Receives one line per epoch.
    on_error : callable, optional
        Receives one line per unreadable training image (it is skipped).

    Returns
    -------
    TrainResult
    """
    device = select_device(config.device)
    run_path = Path(run_dir) if run_dir is not None else None
    images, source = _prepare_data(data, config, on_error)
    n_images = len(images)
    batch = min(config.batch_size, n_images)
    steps_per_epoch = max(1, n_images // batch)

    random.seed(config.seed)
    np.random.seed(config.seed % 2**32)  # noqa: NPY002 - for third-party code using it
    torch.manual_seed(config.seed)
    generator = build_generator(config).to(device)
    discriminator = build_discriminator(config).to(device)
    betas = (config.beta1, config.beta2)
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr, betas=betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr, betas=betas)
    rng = torch.Generator().manual_seed(config.seed)  # every training draw comes from here

    # Fixed subsets of the real images: the spectral target and the metrics' reference.
    order = torch.randperm(n_images, generator=torch.Generator().manual_seed(config.seed + 1))
    target = mean_real_spectrum(
        images[order[: config.spectral_real_images]], config.spectral_norm, config.spectral_order
    )
    real_metric_images = images[order[: config.metric_images]]
    real_features = gan_metrics.image_features(real_metric_images) if config.metrics else None
    inception = None
    if config.inception_weights and config.metrics:
        inception = gan_metrics.InceptionFeatures(config.inception_weights, device)
    target = target.to(device)
    grid_z = torch.randn(_GRID, config.nz, generator=torch.Generator().manual_seed(config.seed + 2))

    records: list[dict] = []
    start_epoch, g_steps_done, iteration = 0, 0, 0
    checkpoint_path = run_path / CHECKPOINT if run_path else None
    if resume:
        if checkpoint_path is None or not checkpoint_path.is_file():
            raise FileNotFoundError(f"{checkpoint_path}: no checkpoint to resume from")
        stored = GanConfig.from_dict(json.loads((run_path / CONFIG).read_text())["config"])
        _check_resume(stored, config)
        state = torch.load(checkpoint_path, map_location=device, weights_only=True)
        generator.load_state_dict(state["generator"])
        discriminator.load_state_dict(state["discriminator"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        target = state["target"].to(device)
        start_epoch, iteration = int(state["epoch"]), int(state["iteration"])
        records = json.loads(state["metrics"])
        _restore_rng_states(rng, state["rng"])
    if run_path is not None:
        run_path.mkdir(parents=True, exist_ok=True)
        _write_json(
            run_path / CONFIG,
            {
                "config": config.to_dict(),
                "seed": config.seed,
                "data": {"source": source, "images": n_images, "shape": list(images.shape[1:])},
                "versions": versions(),
                "command": sys.argv,
            },
        )
        _write_json(
            run_path / REAL_SPECTRUM,
            {
                "norm": config.spectral_norm,
                "order": config.spectral_order,
                "images": min(n_images, config.spectral_real_images),
                "size": config.size,
                "values": target.cpu().tolist(),
            },
        )

    last_epoch = config.epochs
    if stop_after is not None:
        last_epoch = min(last_epoch, start_epoch + stop_after)
    critic_steps = config.critic_steps
    generator.train()
    discriminator.train()
    for epoch in range(start_epoch + 1, last_epoch + 1):
        began = time.perf_counter()
        sums = {"g_loss": 0.0, "d_loss": 0.0, "spectral_loss": 0.0}
        g_steps_done = 0
        permutation = torch.randperm(n_images, generator=rng)
        for step in range(steps_per_epoch):
            real = images[permutation[step * batch : (step + 1) * batch]].to(device)
            z = torch.randn(batch, config.nz, generator=rng).to(device)
            fake = generator(z)

            d_loss = discriminator_loss(
                config.objective, discriminator, real, fake.detach(), config.gp_weight, rng
            )
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            sums["d_loss"] += d_loss.item()
            iteration += 1
            if iteration % critic_steps:
                continue

            g_loss = generator_adversarial_loss(config.objective, discriminator, fake)
            if config.spectral_weight > 0:
                spec = spectral_loss(
                    fake, target, config.spectral_norm, 1.0, config.spectral_order,
                    config.spectral_reduction,
                )  # fmt: skip
                total = g_loss + config.spectral_weight * spec
            else:  # still reported, but outside the graph
                with torch.no_grad():
                    spec = spectral_loss(
                        fake, target, config.spectral_norm, 1.0, config.spectral_order,
                        config.spectral_reduction,
                    )  # fmt: skip
                total = g_loss
            opt_g.zero_grad(set_to_none=True)
            total.backward()
            opt_g.step()
            sums["g_loss"] += g_loss.item()
            sums["spectral_loss"] += spec.item()
            g_steps_done += 1
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - began

        record: dict = {
            "epoch": epoch,
            "g_loss": sums["g_loss"] / max(1, g_steps_done),
            "d_loss": sums["d_loss"] / steps_per_epoch,
            "spectral_loss": sums["spectral_loss"] / max(1, g_steps_done),
            "seconds": round(seconds, 4),
        }
        if config.metrics:
            record.update(
                _evaluate(generator, config, real_features, real_metric_images, inception, epoch)
            )
        records.append(record)
        if log is not None:
            log(_summary(record, config.epochs))
        if run_path is not None:
            with torch.no_grad():
                generator.eval()
                grid = generator(grid_z.to(device))
                generator.train()
            save_image_grid(grid, run_path / f"samples_epoch{epoch}.png")
            _write_metrics(run_path / METRICS, records)
            state = {
                "generator": generator.state_dict(),
                "discriminator": discriminator.state_dict(),
                "opt_g": opt_g.state_dict(),
                "opt_d": opt_d.state_dict(),
                "target": target.cpu(),
                "epoch": epoch,
                "iteration": iteration,
                "metrics": json.dumps(records),
                "rng": _rng_states(rng),
            }
            with atomic_write(checkpoint_path, "wb") as handle:
                torch.save(state, handle)

    generator.eval()
    if run_path is not None and config.metrics and last_epoch == config.epochs:
        plot_spectra(generator, config, real_features, run_path / "spectra.png")
    trained = [r["seconds"] for r in records[start_epoch:]] or [r["seconds"] for r in records]
    seconds_per_epoch = float(np.mean(trained)) if trained else 0.0
    return TrainResult(generator, records, seconds_per_epoch, run_path)


def _evaluate(generator, config, real_features, real_images, inception, epoch) -> dict:
    began = time.perf_counter()
    device = next(generator.parameters()).device
    fake = gan_metrics.sample_images(
        generator, config.metric_images, config.seed + 1000 + epoch, device
    )
    fake_features = gan_metrics.image_features(fake)
    out = {
        "spectral_distance": gan_metrics.spectral_distance(fake_features, real_features),
        "detectability": gan_metrics.detectability(fake_features, real_features, config.seed),
        "spectral_frechet_distance": gan_metrics.spectral_frechet_distance(
            fake_features, real_features
        ),
    }
    if inception is not None:
        out["fid"] = gan_metrics.fid(fake, real_images, inception)
    out["metric_seconds"] = round(time.perf_counter() - began, 4)
    return out


def _summary(record: dict, epochs: int) -> str:
    parts = [f"epoch {record['epoch']}/{epochs}"]
    for key in ("g_loss", "d_loss", "spectral_loss", "spectral_distance", "detectability"):
        if key in record:
            parts.append(f"{key} {record[key]:.4f}")
    parts.append(f"{record['seconds']:.1f}s")
    return "  ".join(parts)


def mean_feature_spectrum(images: torch.Tensor) -> np.ndarray:
    """Mean spectral feature vector (the metrics' 64 bins) of images in [-1, 1]."""
    return gan_metrics.image_features(images).mean(0)


def plot_spectra(
    generator: Generator, config: GanConfig, real_features: np.ndarray, path: Path
) -> None:
    """Plot the mean spectrum of real vs generated images (metric features)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    device = next(generator.parameters()).device
    fake = gan_metrics.sample_images(generator, config.metric_images, config.seed + 999, device)
    fake_mean = gan_metrics.image_features(fake).mean(0)
    real_mean = real_features.mean(0)
    freqs = np.linspace(0, 0.5, len(real_mean))
    figure, axis = plt.subplots(figsize=(6, 4))
    axis.plot(freqs, real_mean, label="real", color="black")
    axis.plot(freqs, fake_mean, label="generated", color="tab:red")
    axis.set_xlabel("spatial frequency (cycles per pixel)")
    axis.set_ylabel("normalized log power")
    axis.set_title(
        f"{config.objective} / {config.upsample} / lambda={config.spectral_weight:g} "
        f"/ {config.final_convs} final convs"
    )
    axis.legend()
    figure.tight_layout()
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=100)
    plt.close(figure)
