"""``specdetect features``: spectral feature vectors of images, to an .npz file."""

from __future__ import annotations

import json
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
    import contextlib

    import numpy as np

    from specdetect.atomic import atomic_write
    from specdetect.distributed import BackendError
    from specdetect.features import FeatureConfig
    from specdetect.media import iter_paths
    from specdetect.pipeline import extract_features

    if norm not in ("first", "minmax", "none"):
        raise fail(f"--norm must be first, minmax or none, got {norm!r}")
    if device not in ("auto", "cpu", "cuda"):
        raise fail(f"--device must be auto, cpu or cuda, got {device!r}")
    if scheduler is not None and cluster is not None:
        raise fail("give --scheduler or --cluster, not both")
    config = FeatureConfig(bins=bins, norm=norm)
    inputs = list(iter_paths(paths))
    if not inputs:
        raise fail("no image files found in the given paths")

    rows, good, failed, errors = [], [], [], []
    try:
        with contextlib.ExitStack() as stack:
            if scheduler is not None or cluster is not None:
                results = _cluster_features(stack, inputs, config, scheduler, cluster, shard_size)
            else:
                results = extract_features(inputs, config, device=device, workers=workers)
            for result in progress(results, len(inputs), "features"):
                if result.ok:
                    rows.append(result.features[0])
                    good.append(result.path)
                else:
                    error_line(result.error)
                    failed.append(result.path)
                    errors.append(result.error)
    except (RuntimeError, BackendError) as exc:
        raise fail(str(exc)) from None

    matrix = np.stack(rows) if rows else np.zeros((0, config.n_features), np.float32)
    with atomic_write(output) as handle:
        np.savez(
            handle,
            features=matrix,
            paths=np.array(good, dtype=str),
            config=np.array(json.dumps(config.to_dict())),
            failed_paths=np.array(failed, dtype=str),
            errors=np.array(errors, dtype=str),
        )
    typer.echo(f"wrote {len(good)} feature vectors to {output} ({len(failed)} failed)", err=True)
    if failed:
        raise typer.Exit(2)


def _cluster_features(stack, inputs, config, scheduler, cluster, shard_size):
    """Feature results streamed from a Dask cluster, in input order."""
    from specdetect.distributed import (
        dask_client,
        feature_shard,
        feature_shard_failure,
        map_paths,
    )

    client = stack.enter_context(dask_client(scheduler, cluster))
    return map_paths(
        client,
        feature_shard,
        inputs,
        on_failure=feature_shard_failure,
        shared={"config": config},
        shard_size=shard_size,
    )


def register(app: typer.Typer) -> None:
    app.command("features")(features)
