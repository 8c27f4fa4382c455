"""``specdetect freq-bias``: measure a GAN's spatial frequency bias, and the fix."""

from __future__ import annotations

from pathlib import Path

import typer

from specdetect.cli._common import DEVICE_HELP, error_line, fail

#: ``--quick``: two frequencies, a smaller budget (a few minutes on 2 CPU cores).
QUICK = {
    "frequencies": [0.0625, 0.4375],
    "n_images": 1024,
    "epochs": 10,
    "average_last": 3,
    "eval_images": 500,
    "timing_rounds": 3,
}
#: ``--smoke`` (hidden, for the test suite): seconds, checks only the plumbing.
SMOKE = {
    "n_images": 64,
    "epochs": 1,
    "batch_size": 16,
    "eval_images": 64,
    "average_last": 1,
    "timing_rounds": 1,
    "timing_steps": 2,
    "ngf": 4,
    "ndf": 4,
    "nz": 8,
}


def freq_bias(
    out: Path = typer.Option(..., "--out", help="Output folder (results.json, freq_bias.png)."),
    frequencies: str | None = typer.Option(
        None,
        "--frequencies",
        help="Carrier frequencies in cycles per pixel, comma-separated "
        "(default 0.0625,0.25,0.4375; fractions like 7/16 allowed).",
    ),
    shifted: str | None = typer.Option(
        None,
        "--shifted",
        help="Frequencies that also get the shifted generator "
        "(default: all but the lowest; 'none' for none).",
    ),
    quick: bool = typer.Option(False, "--quick", help="Two frequencies, smaller budget."),
    shift_mode: str = typer.Option(
        "heads",
        "--shift-mode",
        help="heads: frequency-shifted branch heads; whole: shift the whole output "
        "(the data is moved down to --base-frequency for training).",
    ),
    whole: bool = typer.Option(
        True,
        "--whole/--no-whole",
        help="With --shift-mode heads, also run the whole-output shift (shifted_whole).",
    ),
    shifts: str | None = typer.Option(
        None,
        "--shifts",
        help="Fixed head shifts 'fx,fy;fx,fy' for every shifted run "
        "(default: one head aimed at each carrier).",
    ),
    base_frequency: float = typer.Option(0.0625, "--base-frequency", help="whole mode only."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Epochs per training run."),
    images: int | None = typer.Option(None, "--images", min=8, help="Training images per run."),
    dataset: str = typer.Option(
        "fields",
        "--dataset",
        help="Content under the carrier: fields (random smooth images), cosine "
        "(planar cosines), patches (needs --patches).",
    ),
    patches: Path | None = typer.Option(
        None,
        "--patches",
        help="Folder of photos whose patches are modulated by the carrier (--dataset patches).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seeds data, weights and sampling."),
    threads: int = typer.Option(
        1, "--threads", min=0, help="CPU threads for torch (0: torch's default)."
    ),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    smoke: bool = typer.Option(False, "--smoke", hidden=True, help="Tiny run for the tests."),
) -> None:
    """Train the same GAN on carrier datasets at several spatial frequencies.

    For every carrier frequency: a baseline GAN, and (where asked) the
    frequency-shifted generator aimed at that frequency, with equal budgets.
    Per frequency the Wasserstein distance between the real and generated
    distributions of the DFT amplitude and phase at the carrier, and the
    power leaking to other frequencies, are measured. Writes
    OUT/results.json and OUT/freq_bias.png and prints a table.
    """
    import json

    from specdetect.atomic import atomic_write
    from specdetect.gan.config import parse_freq_shifts
    from specdetect.gan.freqbias import FreqBiasConfig, plot_results, results_table, run_freq_bias

    if device not in ("auto", "cpu", "cuda"):
        raise fail(f"--device must be auto, cpu or cuda, got {device!r}")
    settings: dict = {"seed": seed, "device": device, "shift_mode": shift_mode}
    settings["threads"] = threads or None
    settings["whole_too"] = whole
    if quick:
        settings.update(QUICK)
    if smoke:
        settings.update(SMOKE)
    try:
        if frequencies is not None:
            settings["frequencies"] = _frequencies(frequencies)
        if shifted is not None:
            settings["shifted_frequencies"] = (
                [] if shifted.strip().lower() == "none" else _frequencies(shifted)
            )
        if shifts is not None:
            settings["shifts"] = parse_freq_shifts(shifts)
        settings["base_frequency"] = base_frequency
        if epochs is not None:
            settings["epochs"] = epochs
        if images is not None:
            settings["n_images"] = images
        settings["dataset"] = "patches" if patches is not None else dataset
        if settings["dataset"] == "patches" and patches is None:
            raise ValueError("--dataset patches needs --patches DIR")
        config = FreqBiasConfig(**settings)
    except ValueError as exc:
        raise fail(str(exc)) from None

    sources = _load_patch_sources(patches, config.size) if patches is not None else None
    try:
        results = run_freq_bias(config, sources, log=lambda line: typer.echo(line, err=True))
    except ValueError as exc:
        raise fail(str(exc)) from None

    out.mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "results.json", "w") as handle:
        json.dump(results, handle, indent=2)
    plot_results(results, out / "freq_bias.png")
    typer.echo(results_table(results))
    typer.echo(f"results: {out / 'results.json'}  plot: {out / 'freq_bias.png'}")


def _frequencies(text: str) -> list[float]:
    from specdetect.gan.config import parse_frequency

    values = [parse_frequency(part) for part in text.split(",") if part.strip()]
    if not values:
        raise ValueError(f"no frequencies in {text!r}")
    return values


def _load_patch_sources(folder: Path, size: int) -> list:
    """Grayscale arrays of the images in ``folder``; unreadable ones are reported and skipped."""
    from specdetect.media import MediaError, iter_paths, read_luma

    sources = []
    for path in iter_paths([str(folder)]):
        try:
            luma = read_luma(path)
        except MediaError as exc:
            error_line(str(exc))
            continue
        if min(luma.shape) >= size:
            sources.append(luma)
    if not sources:
        raise fail(f"{folder}: no readable image of at least {size} px")
    return sources


def register(app: typer.Typer) -> None:
    """Add ``freq-bias`` to ``app``."""
    app.command("freq-bias")(freq_bias)
