"""``specdetect features``: spectral feature vectors of images, to an .npz file."""

from __future__ import annotations

from pathlib import Path

import typer

from specdetect.cli._common import DEVICE_HELP, WORKERS_HELP, error_line, fail, progress

SCHEDULER_HELP = "Run on an existing Dask cluster: its scheduler address, e.g. tcp://host:8786."
CLUSTER_HELP = "Start a local Dask cluster of N worker processes: local:N."
SHARD_HELP = "Paths per task sent to a Dask worker (with --scheduler or --cluster)."


def features(
    paths: list[str] = typer.Argument(..., help="Image files, folders (recursive) or globs."),
    output: Path = typer.Option(..., "-o", "--output", help="Output .npz file."),
    bins: int = typer.Option(64, "--bins", min=2, help="Length of each feature vector."),
    norm: str = typer.Option("first", "--norm", help="Normalization: first, minmax or none."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    workers: int | None = typer.Option(None, "--workers", min=1, help=WORKERS_HELP),
    scheduler: str | None = typer.Option(None, "--scheduler", help=SCHEDULER_HELP),
    cluster: str | None = typer.Option(None, "--cluster", help=CLUSTER_HELP),
    shard_size: int = typer.Option(1000, "--shard-size", min=1, help=SHARD_HELP),
) -> None:
    """Compute the azimuthal-integral features of images.

    The .npz holds `features` (N x bins, float32), `paths` (N), `config`
    (JSON of the feature settings), and `failed_paths` / `errors` for inputs
    that could not be read. Exit code 2 if any input failed, else 0.

    With --scheduler or --cluster the files are read on a Dask cluster
    (the optional extra: pip install 'specdetect\\[distributed]'); the output is the same.
    """
    from specdetect.atomic import OutputError
    from specdetect.distributed import BackendError
    from specdetect.features import FeatureConfig
    from specdetect.featurize import FeatureTable, featurize, list_inputs
    from specdetect.media import IMAGE_EXTENSIONS

    if norm not in ("first", "minmax", "none"):
        raise fail(f"--norm must be first, minmax or none, got {norm!r}")
    if device not in ("auto", "cpu", "cuda"):
        raise fail(f"--device must be auto, cpu or cuda, got {device!r}")
    if scheduler is not None and cluster is not None:
        raise fail("give --scheduler or --cluster, not both")
    config = FeatureConfig(bins=bins, norm=norm)
    inputs, total = list_inputs(paths, IMAGE_EXTENSIONS)
    if total == 0:
        raise fail("no image files found in the given paths")

    table = FeatureTable(config)
    try:
        results = featurize(
            inputs,
            config,
            device=device,
            workers=workers,
            scheduler=scheduler,
            cluster=cluster,
            shard_size=shard_size,
        )
        for result in progress(results, total, "features"):
            table.add(result)
            if not result.ok:
                error_line(result.error)
    except (ValueError, RuntimeError, BackendError) as exc:
        raise fail(str(exc)) from None

    if table.n_ok + table.n_failed == 0:  # paths from stdin, none given
        raise fail("no image files found in the given paths")
    try:
        table.save(output)
    except OutputError as exc:  # a full disk, /dev/full, a closed pipe: one line, exit 2
        raise fail(str(exc)) from None
    typer.echo(
        f"wrote {table.n_ok} feature vectors to {output} ({table.n_failed} failed)", err=True
    )
    if table.n_failed:
        raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    app.command("features")(features)
