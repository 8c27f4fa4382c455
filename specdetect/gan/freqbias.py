"""The spatial frequency bias experiment (Khayatkhoei and Elgammal).

For every carrier frequency ``f`` the same GAN is trained, with the same
budget, on a carrier dataset (:mod:`specdetect.gan.carriers`) whose content
sits at ``f``:

* ``baseline``: the plain generator;
* ``shifted``: the frequency-shifted generator aimed at ``f`` (branch heads
  whose complex output, rotated by a phase from the latent and scaled by a
  gain learned from it, is shifted by ``(fx, fy)``, see
  :func:`specdetect.gan.frequency.attach_frequency_shift_heads`), or with
  ``shift_mode="whole"`` the plain generator trained on data moved down to a
  low frequency and shifted back up by its ``output_transform``.

Then, on generated and real images, the DFT coefficient at the carrier bin
gives per image an amplitude (``2 |X| / sqrt(H W)`` with an orthonormal DFT,
i.e. the cosine's amplitude) and a phase. The errors are the 1-D Wasserstein
distances (:func:`scipy.stats.wasserstein_distance`) between the real and
the generated distributions of the amplitude (the headline number, in
amplitude units of the [-1, 1] image scale) and of the phase (radians), and
the *leakage*: the mean share of an image's power outside the two carrier
bins ``+-f``, generated minus real.

A convolutional GAN has a spatial frequency bias when the baseline's errors
grow with ``f`` although the content is the same at every frequency.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.stats import wasserstein_distance

from specdetect.gan.carriers import (
    carrier_bin,
    carrier_vector,
    modulated_patches,
    planar_cosines,
    smooth_fields,
)
from specdetect.gan.config import GanConfig
from specdetect.gan.frequency import SidebandShift, sideband_shift

__all__ = [
    "DEFAULT_FREQUENCIES",
    "FreqBiasConfig",
    "carrier_errors",
    "carrier_statistics",
    "frequency_key",
    "measure_step_time",
    "run_freq_bias",
]

#: Carrier frequencies of the full run (cycles per pixel; exact bins at 32 px).
DEFAULT_FREQUENCIES: tuple[float, ...] = (0.0625, 0.25, 0.4375)
SHIFT_MODES: tuple[str, ...] = ("heads", "whole")
#: Content under the carrier: random smooth fields, planar cosines, photo patches.
DATASETS: tuple[str, ...] = ("fields", "cosine", "patches")


def frequency_key(frequency: float) -> str:
    """The results.json key of a frequency: a short decimal string.

    Examples
    --------
    >>> frequency_key(0.0625), frequency_key(0.25), frequency_key(1 / 3)
    ('0.0625', '0.25', '0.333333')
    """
    return f"{frequency:.6f}".rstrip("0").rstrip(".")


@dataclass
class FreqBiasConfig:
    """Settings of one frequency-bias experiment.

    Parameters
    ----------
    frequencies : list of float
        Radial carrier frequencies in cycles per pixel (direction ``angle``).
    shifted_frequencies : list of float or None
        Where to also train the shifted generator (None: every frequency
        above the lowest one; shifting the lowest carrier has no purpose).
    shift_mode : {"heads", "whole"}
        What ``shifted`` means: branch heads (the frequency-shifted
        generator) or the whole-output shift.
    whole_too : bool
        With ``heads``, also run the whole-output shift (``shifted_whole``).
    shifts : list of (fx, fy) or None
        Fixed head shifts for every shifted run (None: aim one head at the
        carrier itself).
    base_frequency : float
        ``whole`` mode: the low frequency the data is moved down to.
    dataset : {"fields", "cosine", "patches"}
        Content under the carrier: random smooth fields (Gaussian-filtered
        noise, ``field_sigma`` px; needs no files), planar cosines, or patches
        of ``patch_sources`` (photos).
    band : float
        Radius (cycles per pixel) of the carrier neighbourhood the headline
        error averages over (see :func:`carrier_errors`).
    size, n_images, angle, seed
        Image side, training images per dataset, carrier direction, seed.
    epochs, batch_size, nz, ngf, ndf, upsample, objective, final_convs, lr
        The GAN (identical for every run; equal budget = same epochs).
    eval_images : int
        Generated and real images per measurement.
    average_last : int
        Measure after each of the last this many epochs and average.
    timing_rounds, timing_steps : int
        Interleaved step-time benchmark: rounds of this many steps each.
    device : {"auto", "cpu", "cuda"}
    threads : int or None
        CPU threads for torch (None: torch's default). One by default: these
        networks are tiny, and on a shared machine more threads than free
        cores make every step wait for the slowest thread.
    """

    frequencies: list[float] = field(default_factory=lambda: list(DEFAULT_FREQUENCIES))
    shifted_frequencies: list[float] | None = None
    shift_mode: str = "heads"
    whole_too: bool = True
    shifts: list[tuple[float, float]] | None = None
    base_frequency: float = 0.0625
    dataset: str = "fields"
    field_sigma: float = 2.0
    band: float = 0.0625
    size: int = 32
    n_images: int = 2048
    angle: float = 0.0
    seed: int = 0
    epochs: int = 18
    batch_size: int = 64
    nz: int = 32
    ngf: int = 16
    ndf: int = 16
    upsample: str = "nearest"
    objective: str = "gan"
    final_convs: int = 0
    lr: float = 5e-4
    eval_images: int = 1000
    average_last: int = 4
    timing_rounds: int = 12
    timing_steps: int = 32
    device: str = "auto"
    threads: int | None = 1

    def __post_init__(self) -> None:
        if not self.frequencies:
            raise ValueError("give at least one carrier frequency")
        for f in [*self.frequencies, *(self.shifted_frequencies or [])]:
            if not 0 < f <= 0.5:
                raise ValueError(f"carrier frequencies must be in (0, 0.5], got {f}")
        if self.shift_mode not in SHIFT_MODES:
            raise ValueError(f"shift_mode must be one of {SHIFT_MODES}, got {self.shift_mode!r}")
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")

    def gan_config(self, freq_shifts: Sequence[tuple[float, float]] = ()) -> GanConfig:
        """The GAN settings every run shares (plus its heads)."""
        return GanConfig(
            objective=self.objective,
            upsample=self.upsample,
            size=self.size,
            channels=1,
            final_convs=self.final_convs,
            nz=self.nz,
            ngf=self.ngf,
            ndf=self.ndf,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            seed=self.seed,
            device=self.device,
            metrics=False,
            spectral_real_images=min(self.n_images, 256),
            freq_shifts=list(freq_shifts),
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------
def carrier_statistics(
    images: np.ndarray, carrier: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-image amplitude and phase at the carrier bin, and leakage.

    Parameters
    ----------
    images : ndarray, shape (N, H, W) or (N, 1, H, W)
    carrier : (fx, fy)
        Cycles per pixel.

    Returns
    -------
    amplitude : ndarray (N,)
        ``2 |X[k]| / sqrt(H W)`` (orthonormal DFT): a cosine's amplitude.
    phase : ndarray (N,)
        ``angle(X[k])`` in ``(-pi, pi]``.
    leakage : ndarray (N,)
        Share of the image's power outside the bins ``+-k`` (0 for a pure
        cosine at an exact bin, 1 when nothing is at the carrier).
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim == 4:
        images = images[:, 0]
    height, width = images.shape[-2:]
    spectrum = np.fft.fft2(images, norm="ortho")
    row, col = carrier_bin((height, width), *carrier)
    coefficient = spectrum[:, row, col]
    power = np.abs(spectrum) ** 2
    at_carrier = power[:, row, col]
    mirror = (-row % height, -col % width)
    if mirror != (row, col):
        at_carrier = at_carrier + power[:, mirror[0], mirror[1]]
    total = power.sum(axis=(1, 2))
    leakage = 1.0 - at_carrier / np.maximum(total, 1e-20)
    amplitude = 2.0 * np.abs(coefficient) / np.sqrt(height * width)
    return amplitude, np.angle(coefficient), leakage


def band_bins(shape: tuple[int, int], carrier: tuple[float, float], radius: float) -> np.ndarray:
    """``fft2`` bins within ``radius`` cycles per pixel of the carrier (its side only).

    The DC bin is left out (an image's mean is not content at the carrier).

    Returns
    -------
    ndarray of int, shape (K, 2)
        ``(row, col)`` pairs; the carrier bin comes first.
    """
    height, width = shape
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    # Cyclic distance, so carriers near Nyquist keep their whole neighbourhood.
    dy = (fy - carrier[1] + 0.5) % 1.0 - 0.5
    dx = (fx - carrier[0] + 0.5) % 1.0 - 0.5
    near = np.argwhere(dx**2 + dy**2 <= radius**2 + 1e-12)
    first = carrier_bin(shape, *carrier)
    rest = [tuple(b) for b in near.tolist() if tuple(b) not in (first, (0, 0))]
    return np.array([first, *rest], dtype=np.int64)


def carrier_errors(
    real: np.ndarray,
    generated: np.ndarray,
    carrier: tuple[float, float],
    band: float = 0.0625,
) -> dict[str, float]:
    """How well generated images match real ones at the carrier frequency.

    Parameters
    ----------
    real, generated : ndarray (N, H, W) or (N, 1, H, W)
    carrier : (fx, fy)
    band : float
        Radius in cycles per pixel of the neighbourhood of the carrier whose
        bins the headline error averages over (0: the carrier bin alone).

    Returns
    -------
    dict
        ``magnitude``: Wasserstein-1 distance between the real and generated
        distributions of the DFT magnitude (amplitude units,
        ``2 |X| / sqrt(H W)``), averaged over the bins of the carrier's band,
        so content (and stray power) next to the carrier counts too;
        ``carrier_magnitude``: the same at the carrier bin alone; ``phase``:
        of the phase distributions at the carrier bin (radians); ``leakage``:
        mean generated minus mean real share of power outside the carrier
        bins; plus ``real_leakage``, ``real_amplitude``, ``generated_amplitude``.
    """
    real = np.asarray(real, dtype=np.float64).reshape(-1, *np.shape(real)[-2:])
    generated = np.asarray(generated, dtype=np.float64).reshape(-1, *np.shape(generated)[-2:])
    real_amp, real_phase, real_leak = carrier_statistics(real, carrier)
    gen_amp, gen_phase, gen_leak = carrier_statistics(generated, carrier)
    height, width = real.shape[-2:]
    scale = 2.0 / np.sqrt(height * width)
    real_spectrum = np.abs(np.fft.fft2(real, norm="ortho")) * scale
    gen_spectrum = np.abs(np.fft.fft2(generated, norm="ortho")) * scale
    bins = band_bins((height, width), carrier, band)
    per_bin = [wasserstein_distance(real_spectrum[:, r, c], gen_spectrum[:, r, c]) for r, c in bins]
    return {
        "magnitude": float(np.mean(per_bin)),
        "carrier_magnitude": float(wasserstein_distance(real_amp, gen_amp)),
        "phase": float(wasserstein_distance(real_phase, gen_phase)),
        "leakage": float(gen_leak.mean() - real_leak.mean()),
        "real_leakage": float(real_leak.mean()),
        "real_amplitude": float(real_amp.mean()),
        "generated_amplitude": float(gen_amp.mean()),
        "band_bins": len(bins),
    }


# --------------------------------------------------------------------------
# Experiment
# --------------------------------------------------------------------------
def make_dataset(
    config: FreqBiasConfig,
    frequency: float,
    n: int,
    seed: int,
    patch_sources: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """The carrier dataset of one frequency (same content at every frequency)."""
    if config.dataset in ("patches", "fields"):
        if config.dataset == "fields":
            # Fixed sources (seeded by config.seed alone): train and held-out
            # sets share the content distribution, not the patches.
            patch_sources = smooth_fields(64, 2 * config.size, config.field_sigma, config.seed)
        if not patch_sources:
            raise ValueError("dataset 'patches' needs source images")
        return modulated_patches(
            patch_sources, n, config.size, frequency, angle=config.angle, seed=seed
        )
    return planar_cosines(n, config.size, frequency, angle=config.angle, seed=seed)


def _aim(config: FreqBiasConfig, frequency: float) -> list[tuple[float, float]]:
    if config.shifts:
        return [tuple(pair) for pair in config.shifts]
    return [carrier_vector(frequency, config.angle)]


def _train(gan_config: GanConfig, data: np.ndarray):
    from specdetect.gan.train import train_gan

    return train_gan(gan_config, torch.from_numpy(data))


def _generate(generator, config: FreqBiasConfig, n: int) -> np.ndarray:
    from specdetect.gan.metrics import sample_images

    device = next(generator.parameters()).device
    return sample_images(generator, n, config.seed + 7, device).numpy()


def train_and_measure(
    config: FreqBiasConfig,
    gan_config: GanConfig,
    data: np.ndarray,
    real: np.ndarray,
    carrier: tuple[float, float],
    output_transform: torch.nn.Module | None = None,
) -> tuple[dict[str, float], float]:
    """Train one GAN and measure it, averaged over its last epochs.

    GAN training oscillates, so one snapshot is a noisy estimate: the
    generator is measured after each of the last ``config.average_last``
    epochs (training runs on uninterrupted: checkpoint and exact resume of
    :func:`specdetect.gan.train.train_gan`) and the errors are averaged.

    Returns
    -------
    errors : dict
        Mean of :func:`carrier_errors` over the snapshots.
    seconds_per_epoch : float
        Mean training time of an epoch (measurements excluded).
    """
    import tempfile

    from specdetect.gan.train import train_gan

    images = torch.from_numpy(data)
    epochs = gan_config.epochs
    first = max(1, epochs - max(1, config.average_last) + 1)
    snapshots: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="freq-bias-") as run_dir:
        done = 0
        if first > 1:
            train_gan(gan_config, images, run_dir, stop_after=first - 1)
            done = first - 1
        result = None
        while done < epochs:
            result = train_gan(gan_config, images, run_dir, resume=done > 0, stop_after=1)
            done += 1
            if output_transform is not None:
                result.generator.output_transform = output_transform
            generated = _generate(result.generator, config, config.eval_images)
            snapshots.append(carrier_errors(real, generated, carrier, config.band))
    errors = {key: float(np.mean([s[key] for s in snapshots])) for key in snapshots[0]}
    errors["snapshots"] = len(snapshots)
    seconds = [record["seconds"] for record in result.metrics]
    return errors, float(np.mean(seconds))


def _shifted_run(config: FreqBiasConfig, frequency: float, data, real, carrier, mode: str):
    """Train and measure the shifted generator aimed at ``frequency``."""
    if mode == "heads":
        gan_config = config.gan_config(_aim(config, frequency))
        return train_and_measure(config, gan_config, data, real, carrier)
    # Whole-output shift: move the data down to base_frequency, learn it there,
    # shift samples back up by the difference.
    base = carrier_vector(config.base_frequency, config.angle)
    delta = (carrier[0] - base[0], carrier[1] - base[1])
    low = sideband_shift(torch.from_numpy(data), -delta[0], -delta[1], direction=carrier)
    low = low.clamp(-1.0, 1.0).numpy()
    transform = SidebandShift(*delta, direction=carrier)
    return train_and_measure(config, config.gan_config(), low, real, carrier, transform)


def measure_step_time(
    config: FreqBiasConfig,
    frequency: float,
    data: np.ndarray,
) -> dict[str, float]:
    """Seconds per training step, baseline vs shifted, interleaved.

    Both variants run ``timing_rounds`` short trainings of ``timing_steps``
    steps each with :func:`specdetect.gan.train.train_gan`, alternating (so a
    busy machine slows both alike); the median per-step time of each is
    reported. ``extra_cost`` is the median over rounds of ``shifted / baseline
    - 1``, each round's two trainings a second apart: the speed of a shared
    machine drifts by 20-30% over minutes, which a ratio of the two medians
    picks up (three back-to-back 20-round runs gave +16%, -2% and +2% that
    way; see the README). ``extra_cost_rounds`` holds every round's value.
    """
    steps = max(1, config.timing_steps)
    subset = data[: steps * config.batch_size]
    if len(subset) < steps * config.batch_size:  # tiny datasets: repeat them
        reps = -(-steps * config.batch_size // len(data))
        subset = np.concatenate([data] * reps)[: steps * config.batch_size]
    timing_config = FreqBiasConfig(**{**config.to_dict(), "epochs": 1})
    base_config = timing_config.gan_config()
    # A whole-output shift trains the plain generator (the shift is applied to
    # data once and to samples), so only heads change the step.
    heads = _aim(config, frequency) if config.shift_mode == "heads" else []
    shifted_config = timing_config.gan_config(heads)
    samples: dict[str, list[float]] = {"baseline": [], "shifted": []}
    rounds = max(1, config.timing_rounds)
    for index in range(rounds + 1):  # round 0 warms up caches and is dropped
        order = ("baseline", "shifted") if index % 2 else ("shifted", "baseline")
        for name in order:
            gan_config = base_config if name == "baseline" else shifted_config
            seconds = _train(gan_config, subset).seconds_per_epoch
            if index > 0:
                samples[name].append(seconds / steps)
    baseline = statistics.median(samples["baseline"])
    shifted = statistics.median(samples["shifted"])
    per_round = [s / b - 1.0 for s, b in zip(samples["shifted"], samples["baseline"], strict=True)]
    return {
        "baseline_step_ms": 1000 * baseline,
        "shifted_step_ms": 1000 * shifted,
        "extra_cost": statistics.median(per_round),
        "extra_cost_rounds": per_round,
        "rounds": rounds,
        "steps_per_round": steps,
    }


def run_freq_bias(
    config: FreqBiasConfig,
    patch_sources: Sequence[np.ndarray] | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run the experiment; returns the results.json content.

    Returns
    -------
    dict
        ``baseline`` and ``shifted``: ``{frequency key: amplitude error}``;
        ``phase`` and ``leakage``: ``{"baseline": {...}, "shifted": {...}}``;
        ``shifted_whole``: the whole-output shift (when run);
        ``reduction`` (``reduction_whole``): ``1 - shifted / baseline``;
        ``seconds_per_epoch``; ``timing`` (see :func:`measure_step_time`);
        ``details`` (every measured number per run) and ``config``.
    """
    log = log or (lambda _line: None)
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    if config.shifted_frequencies is None:
        shifted_set = [f for f in config.frequencies if f > min(config.frequencies)]
    else:
        shifted_set = list(config.shifted_frequencies)
    variants = {"baseline": None, "shifted": config.shift_mode}
    if config.whole_too and config.shift_mode == "heads":
        variants["shifted_whole"] = "whole"
    results: dict[str, Any] = {name: {} for name in variants}
    for section in ("phase", "leakage", "seconds_per_epoch", "details"):
        results[section] = {name: {} for name in variants}
    results["reduction"] = {}
    if "shifted_whole" in variants:
        results["reduction_whole"] = {}
    began = time.perf_counter()
    for frequency in config.frequencies:
        key = frequency_key(frequency)
        carrier = carrier_vector(frequency, config.angle)
        data = make_dataset(config, frequency, config.n_images, config.seed, patch_sources)
        # Held-out real images with fresh content, for the comparison.
        real = make_dataset(config, frequency, config.eval_images, config.seed + 1, patch_sources)
        shifted_here = any(abs(frequency - f) < 1e-12 for f in shifted_set)
        for name, mode in variants.items():
            if mode is None:
                errors, seconds = train_and_measure(
                    config, config.gan_config(), data, real, carrier
                )
            elif shifted_here:
                errors, seconds = _shifted_run(config, frequency, data, real, carrier, mode)
            else:
                continue
            results[name][key] = errors["magnitude"]
            results["phase"][name][key] = errors["phase"]
            results["leakage"][name][key] = errors["leakage"]
            results["seconds_per_epoch"][name][key] = seconds
            results["details"][name][key] = errors
            log(
                f"f={key:<7} {name:<13} amplitude W1 {errors['magnitude']:.4f}  "
                f"phase W1 {errors['phase']:.3f}  leakage {errors['leakage']:+.3f}  "
                f"({seconds:.1f} s/epoch, {time.perf_counter() - began:.0f} s so far)"
            )
        for name, target in (("shifted", "reduction"), ("shifted_whole", "reduction_whole")):
            if key in results.get(name, {}) and results["baseline"][key] > 0:
                results[target][key] = 1.0 - results[name][key] / results["baseline"][key]

    if shifted_set and config.timing_rounds > 0:
        top = max(shifted_set)
        data = make_dataset(config, top, config.n_images, config.seed, patch_sources)
        results["timing"] = {"frequency": frequency_key(top)}
        results["timing"].update(measure_step_time(config, top, data))
        log(
            f"step time: baseline {results['timing']['baseline_step_ms']:.1f} ms, shifted "
            f"{results['timing']['shifted_step_ms']:.1f} ms "
            f"({100 * results['timing']['extra_cost']:+.1f}%)"
        )
    results["total_seconds"] = time.perf_counter() - began
    results["config"] = config.to_dict()
    results["units"] = {
        "baseline/shifted": "Wasserstein-1 distance of the carrier amplitude (image scale [-1, 1])",
        "phase": "Wasserstein-1 distance of the carrier phase (radians)",
        "leakage": "mean share of power outside the carrier bins, generated minus real",
        "reduction": "1 - shifted / baseline (reduction_whole: for shifted_whole)",
        "timing": "median ms per training step (D + G update), interleaved rounds",
    }
    return results


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------
VARIANTS: tuple[str, ...] = ("baseline", "shifted", "shifted_whole")


def results_table(results: dict[str, Any]) -> str:
    """A plain-text table of the results, one row per carrier frequency.

    Columns: the headline error of every variant (with its change vs the
    baseline), then phase error and leakage per variant.
    """
    names = [name for name in VARIANTS if name in results]
    head = f"{'frequency':>9}"
    for name in names:
        head += f"  {name:>13}"
    head += "   phase W1 (" + "/".join(n[:1] if n != "shifted_whole" else "w" for n in names) + ")"
    head += "   leakage"
    lines = ["amplitude W1 near the carrier (change vs baseline)", head, "-" * (len(head) + 14)]
    for key, base in results["baseline"].items():
        row = f"{key:>9}"
        for name in names:
            value = results[name].get(key)
            cell = "-" if value is None else f"{value:.4f}"
            if name != "baseline" and value is not None and base > 0:
                cell += f" ({100 * (value / base - 1):+.0f}%)"
            row += f"  {cell:>13}"
        phases = [results["phase"][n].get(key) for n in names]
        leaks = [results["leakage"][n].get(key) for n in names]
        row += "   " + "/".join("-" if v is None else f"{v:.2f}" for v in phases)
        row += "   " + "/".join("-" if v is None else f"{v:+.2f}" for v in leaks)
        lines.append(row)
    timing = results.get("timing")
    if timing:
        lines.append(
            f"step time at f={timing['frequency']}: baseline {timing['baseline_step_ms']:.1f} ms, "
            f"shifted {timing['shifted_step_ms']:.1f} ms ({100 * timing['extra_cost']:+.1f}%)"
        )
    return "\n".join(lines)


def plot_results(results: dict[str, Any], path) -> None:
    """Error and leakage vs carrier frequency, baseline and shifted (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from specdetect.atomic import atomic_write

    figure, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    names = [name for name in VARIANTS if name in results]
    panels = [
        ("amplitude W1 near the carrier", {n: results[n] for n in names}),
        ("phase W1 at the carrier (rad)", results["phase"]),
        ("leakage (generated - real)", results["leakage"]),
    ]
    styles = {"baseline": "o-", "shifted": "s--", "shifted_whole": "^:"}
    for axis, (title, per_variant) in zip(axes, panels, strict=True):
        for name in names:
            values = per_variant.get(name) or {}
            if values:
                xs = sorted(values, key=float)
                axis.plot([float(x) for x in xs], [values[x] for x in xs], styles[name], label=name)
        axis.set_xlabel("carrier frequency (cycles per pixel)")
        axis.set_title(title)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    with atomic_write(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=110)
    plt.close(figure)
