"""``specdetect train``, ``eval`` and ``spectrum``: detectors from folders of images."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from specdetect.cli._common import DEVICE_HELP, WORKERS_HELP, error_line, fail, progress

METHOD_HELP = "svm (RBF SVM, calibrated), logreg, or kmeans (unsupervised clusters)."


def _list_inputs(folders: list[str], what: str) -> list[str]:
    from specdetect.media import iter_paths

    return list(iter_paths(folders))


def _check_disjoint(real: list[str], fake: list[str]) -> None:
    """Refuse the same file (by resolved path or by content) in both classes."""
    import hashlib
    import os

    def key_sets(paths):
        resolved, digests = {}, {}
        for path in paths:
            resolved.setdefault(os.path.realpath(path), path)
            try:
                with open(path, "rb") as handle:
                    digests.setdefault(hashlib.file_digest(handle, "sha256").hexdigest(), path)
            except OSError:
                pass  # unreadable: reported by the feature pass
        return resolved, digests

    real_paths, real_digests = key_sets(real)
    fake_paths, fake_digests = key_sets(fake)
    for mine, theirs, how in (
        (real_paths, fake_paths, "is in both"),
        (real_digests, fake_digests, "has identical content in both"),
    ):
        common = sorted(set(mine) & set(theirs))
        if common:
            first = common[0]
            more = f" (and {len(common) - 1} more)" if len(common) > 1 else ""
            raise fail(
                f"the same image {how} --real and --fake: {mine[first]} and {theirs[first]}{more}"
            )


def _extract(paths: list[str], config, device: str, workers: int | None, desc: str):
    """Feature rows of ``paths``: (rows, kept_indices, n_failed); errors go to stderr."""
    import numpy as np

    from specdetect.pipeline import extract_features

    if device not in ("auto", "cpu", "cuda"):
        raise fail(f"--device must be auto, cpu or cuda, got {device!r}")
    rows, kept, failed = [], [], 0
    try:
        results = extract_features(paths, config, device=device, workers=workers)
        for index, result in enumerate(progress(results, len(paths), desc)):
            if result.ok:
                rows.append(result.features[0])
                kept.append(index)
            else:
                error_line(result.error)
                failed += 1
    except (RuntimeError, ValueError) as exc:
        raise fail(str(exc)) from None
    matrix = np.stack(rows) if rows else np.zeros((0, config.n_features), np.float32)
    return matrix, np.array(kept, dtype=int), failed


def _labelled(real: list[str], fake: list[str], config, device, workers, desc):
    import numpy as np

    X, kept, failed = _extract(real + fake, config, device, workers, desc)
    y = (kept >= len(real)).astype(int)
    return X, y, failed, np.asarray(real + fake)[kept]


def _fmt(stat: dict | None) -> str:
    if not stat or stat.get("mean") is None:
        return "n/a"
    return f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def train(
    real: list[str] = typer.Option(..., "--real", help="Folder (or files, globs) of real images."),
    fake: list[str] = typer.Option(..., "--fake", help="Folder (or files, globs) of fake images."),
    output: Path = typer.Option(..., "-o", "--output", help="Model file to write (.skops)."),
    method: str = typer.Option("svm", "--method", help=METHOD_HELP),
    bins: int = typer.Option(64, "--bins", min=2, help="Length of the 1-D spectrum."),
    norm: str = typer.Option(
        "center",
        "--norm",
        help="Spectrum normalization: center, first, minmax or none (first = the paper's recipe).",
    ),
    cv: int = typer.Option(5, "--cv", min=0, help="Stratified folds for metrics (0: none)."),
    seed: int = typer.Option(0, "--seed", help="Seed of folds, calibration and k-means."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    workers: int | None = typer.Option(None, "--workers", min=1, help=WORKERS_HELP),
) -> None:
    """Train a detector on a folder of real and a folder of fake images.

    Prints stratified K-fold accuracy, ROC-AUC and average precision (mean ±
    std) and the out-of-fold confusion matrix, picks the decision threshold
    and writes one model file. Exit 2 on refusal or if any image was
    unreadable (the model is still written).
    """
    from specdetect.detect.detector import METHODS
    from specdetect.features import MODEL_DEFAULT, NORMS

    if method not in METHODS:
        raise fail(f"--method must be one of {', '.join(METHODS)}, got {method!r}")
    if norm not in NORMS:
        raise fail(f"--norm must be one of {', '.join(NORMS)}, got {norm!r}")
    config = type(MODEL_DEFAULT)(**{**MODEL_DEFAULT.to_dict(), "bins": bins, "norm": norm})
    real_paths, fake_paths = _list_inputs(real, "real"), _list_inputs(fake, "fake")
    for name, paths in (("--real", real_paths), ("--fake", fake_paths)):
        if len(paths) < 2:
            raise fail(f"{name} has {len(paths)} image(s); each class needs at least 2")
    _check_disjoint(real_paths, fake_paths)

    X, y, failed, _ = _labelled(real_paths, fake_paths, config, device, workers, "train")
    counts = {"real": int((y == 0).sum()), "fake": int((y == 1).sum())}
    for name, count in counts.items():
        if count < 2:
            raise fail(f"only {count} readable {name} image(s); each class needs at least 2")

    from specdetect.detect import Detector, save_model

    try:
        detector = Detector(method=method, feature_config=config, seed=seed, cv=cv).fit(X, y)
        save_model(detector, output)
    except (ValueError, OSError) as exc:
        raise fail(f"training failed: {exc}") from None
    summary = detector.summary_
    typer.echo(f"trained {method} on {counts['real']} real and {counts['fake']} fake images")
    if summary["cv"]:
        cvs = summary["cv"]
        typer.echo(f"{cvs['folds']}-fold cross-validation (mean ± std over folds):")
        for name in ("accuracy", "roc_auc", "average_precision"):
            typer.echo(f"  {name:<18} {_fmt(cvs[name])}")
        (tn, fp), (fn, tp) = summary["cv_out_of_fold"]["confusion"]
        typer.echo("out-of-fold confusion matrix (rows: true, columns: predicted):")
        typer.echo("              real   fake")
        typer.echo(f"  real      {tn:6d} {fp:6d}")
        typer.echo(f"  fake      {fn:6d} {tp:6d}")
    else:
        typer.echo("cross-validation skipped (--cv 0)")
    typer.echo(f"threshold on P(fake): {detector.threshold_:.4f}")
    typer.echo(f"wrote {output}")
    if failed:
        error_line(f"{failed} image(s) could not be read and were left out")
        raise typer.Exit(2)


def evaluate(
    real: list[str] = typer.Option(..., "--real", help="Folder (or files, globs) of real images."),
    fake: list[str] = typer.Option(..., "--fake", help="Folder (or files, globs) of fake images."),
    model: Path | None = typer.Option(None, "--model", help="Model file (default: shipped)."),
    output_format: str = typer.Option("text", "--format", help="text or json."),
    plot: Path | None = typer.Option(None, "--plot", help="Write the ROC curve to this image."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    workers: int | None = typer.Option(None, "--workers", min=1, help=WORKERS_HELP),
) -> None:
    """Score a labelled set of real and fake images with a model.

    JSON: {"accuracy", "roc_auc", "average_precision", "n_real", "n_fake",
    "confusion": [[tn, fp], [fn, tp]], "threshold"}. Exit 2 if the model is
    unusable, no image could be read, or any image was unreadable.
    """
    from specdetect.detect import ModelError, default_model_path, load_model
    from specdetect.detect.evaluate import binary_metrics

    if output_format not in ("text", "json"):
        raise fail(f"--format must be text or json, got {output_format!r}")
    model_path = model or default_model_path()
    try:
        detector = load_model(model_path)
    except ModelError as exc:
        raise fail(str(exc)) from None
    real_paths, fake_paths = _list_inputs(real, "real"), _list_inputs(fake, "fake")
    X, y, failed, _ = _labelled(
        real_paths, fake_paths, detector.feature_config, device, workers, "eval"
    )
    if len(y) == 0:
        raise fail("no readable images to evaluate")
    p_fake = detector.score_samples(X)
    metrics = binary_metrics(y, p_fake, detector.threshold_)
    report = {
        "accuracy": metrics["accuracy"],
        "roc_auc": metrics["roc_auc"],
        "average_precision": metrics["average_precision"],
        "n_real": int((y == 0).sum()),
        "n_fake": int((y == 1).sum()),
        "confusion": metrics["confusion"],
        "threshold": float(detector.threshold_),
    }
    if output_format == "json":
        typer.echo(json.dumps(report))
    else:

        def show(value):
            return "n/a (needs both classes)" if value is None else f"{value:.4f}"

        (tn, fp), (fn, tp) = report["confusion"]
        typer.echo(f"model: {model_path} ({detector.method})")
        typer.echo(f"images: {report['n_real']} real, {report['n_fake']} fake")
        typer.echo(f"accuracy:          {show(report['accuracy'])}")
        typer.echo(f"ROC-AUC:           {show(report['roc_auc'])}")
        typer.echo(f"average precision: {show(report['average_precision'])}")
        typer.echo(f"threshold:         {report['threshold']:.4f}")
        typer.echo("confusion matrix (rows: true, columns: predicted):")
        typer.echo("              real   fake")
        typer.echo(f"  real      {tn:6d} {fp:6d}")
        typer.echo(f"  fake      {fn:6d} {tp:6d}")
    if plot is not None:
        if report["roc_auc"] is None:
            error_line("no ROC plot: it needs images of both classes")
            failed = failed or 1
        else:
            from specdetect.plotting import plot_roc

            plot_roc(y, p_fake, plot)
            typer.echo(f"wrote {plot}", err=True)
    if failed:
        raise typer.Exit(2)


def spectrum(
    folders: list[str] = typer.Argument(..., help="Folders (or files, globs); one curve each."),
    plot: Path | None = typer.Option(None, "--plot", help="Write the figure to this image."),
    output_format: str = typer.Option("text", "--format", help="text or json (to stdout)."),
    bins: int = typer.Option(64, "--bins", min=2, help="Points per spectrum."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    workers: int | None = typer.Option(None, "--workers", min=1, help=WORKERS_HELP),
) -> None:
    """Mean ± std of the azimuthal power spectra (dB) of each folder, on one figure.

    Exit 2 if any image was unreadable or a folder has no readable image.
    """
    import numpy as np

    from specdetect.features import FeatureConfig

    if output_format not in ("text", "json"):
        raise fail(f"--format must be text or json, got {output_format!r}")
    if plot is None and output_format != "json":
        raise fail("nothing to do: give --plot FILE and/or --format json")
    # Decibels without normalization: power is size-independent (ortho FFT).
    config = FeatureConfig(bins=bins, norm="none", scale="log")
    freq = np.linspace(0.0, 0.5, bins)
    curves, entries, errors = [], [], 0
    for folder in folders:
        paths = _list_inputs([folder], folder)
        X, _, failed = _extract(paths, config, device, workers, Path(folder).name or folder)
        errors += failed
        if len(X) == 0:
            error_line(f"{folder}: no readable images")
            errors += 1
            continue
        mean, std = X.mean(axis=0), X.std(axis=0)
        curves.append((f"{folder} (n={len(X)})", freq, mean, std))
        entries.append(
            {
                "path": folder,
                "n": int(len(X)),
                "failed": int(failed),
                "frequency": freq.round(6).tolist(),
                "mean_db": mean.astype(float).round(4).tolist(),
                "std_db": std.astype(float).round(4).tolist(),
            }
        )
    if plot is not None and curves:
        from specdetect.plotting import plot_spectra

        plot_spectra(curves, plot)
        typer.echo(f"wrote {plot}", err=True)
    if output_format == "json":
        typer.echo(json.dumps({"bins": bins, "unit": "dB", "folders": entries}))
    else:
        for entry in entries:
            mean = entry["mean_db"]
            typer.echo(
                f"{entry['path']}: {entry['n']} images, mean power {mean[1]:.1f} dB at "
                f"{entry['frequency'][1]:.3f} c/px, {mean[-1]:.1f} dB at 0.5 c/px"
            )
    if errors:
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
    app.command("train")(train)
    app.command("eval")(evaluate)
    app.command("spectrum")(spectrum)
