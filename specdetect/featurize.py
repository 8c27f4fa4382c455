"""Feature extraction jobs: where they run, and the ``.npz`` file they fill.

:func:`featurize` is what ``specdetect features`` runs: feature results for
input files, in input order, computed in this process (a pool of decoding
processes, :func:`specdetect.pipeline.extract_features`) or on a Dask
cluster (``scheduler=``, ``cluster=`` or ``client=``), with the same numbers.
:class:`FeatureTable` collects them into the command's ``.npz`` file.
:func:`list_inputs` expands files, folders and glob patterns into input files
for both ``features`` and :func:`specdetect.scan.scan`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from specdetect.distributed import DEFAULT_SHARD_SIZE
from specdetect.features import FeatureConfig
from specdetect.media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, iter_paths
from specdetect.pipeline import FeatureResult, extract_features, resolve_device

__all__ = ["MEDIA_EXTENSIONS", "FeatureTable", "check_backend", "featurize", "list_inputs"]

#: What :func:`list_inputs` keeps from folders by default: images and videos.
MEDIA_EXTENSIONS = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS


def list_inputs(
    paths: Iterable[str | os.PathLike],
    extensions: Iterable[str] = MEDIA_EXTENSIONS,
    *,
    count: bool = True,
) -> tuple[Iterator[str], int | None]:
    """The input files named by ``paths``, lazily, and their number.

    Parameters
    ----------
    paths : iterable of str or PathLike
        Files (kept whatever their extension), folders (searched
        recursively), glob patterns, or ``"-"`` for one path per line on
        standard input (see :func:`specdetect.media.iter_paths`).
    extensions : iterable of str
        Extensions kept from folders and globs (default: images and videos).
    count : bool
        Count the inputs up front: one more walk of the folders, keeping
        nothing. Never done when reading standard input.

    Returns
    -------
    inputs : iterator of str
    total : int or None
        None when not counted.
    """
    paths = [os.fspath(p) for p in paths]
    extensions = frozenset(extensions)
    total = None
    if count and "-" not in paths:
        total = sum(1 for _ in iter_paths(paths, extensions))
    return iter_paths(paths, extensions), total


def check_backend(
    scheduler: str | None = None,
    cluster: str | None = None,
    client: Any = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
) -> None:
    """Refuse backend options that cannot work, before any work starts.

    Raises
    ------
    ValueError
        More than one of ``scheduler``, ``cluster`` and ``client``, or a
        shard size below 1.
    specdetect.distributed.BackendError
        A ``cluster`` value that is not ``local`` or ``local:N``.
    """
    if sum(option is not None for option in (scheduler, cluster, client)) > 1:
        raise ValueError("give at most one of scheduler, cluster and client")
    if shard_size < 1:
        raise ValueError(f"shard size must be at least 1, got {shard_size}")
    if cluster is not None:
        from specdetect.distributed import parse_cluster

        parse_cluster(cluster)


def featurize(
    inputs: Iterable[str],
    config: FeatureConfig = FeatureConfig(),
    *,
    device: str = "auto",
    workers: int | None = None,
    frames: int = 0,
    scheduler: str | None = None,
    cluster: str | None = None,
    client: Any = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
) -> Iterator[FeatureResult]:
    """Feature results of input files, in input order, streamed.

    The options are checked now; the work starts with the first result
    asked for. On a cluster, inputs are sent in shards of ``shard_size``
    paths, computed on the workers' CPU, and come back in input order; a
    local cluster is shut down when the iterator ends or is closed.

    Parameters
    ----------
    inputs : iterable of str
        Image files (and videos when ``frames > 0``), consumed lazily.
    config : FeatureConfig
    device : {"auto", "cpu", "cuda"}
        Where spectra are computed in this process.
    workers : int, optional
        Decoding processes in this process (default: the usable CPUs).
    frames : int
        Frames per video; ``0`` reads every input as an image.
    scheduler, cluster, client
        A Dask backend, as for :func:`specdetect.scan.scan`.
    shard_size : int
        Paths per cluster task.

    Yields
    ------
    FeatureResult
        One per input; failures carry ``error`` instead of raising.

    Raises
    ------
    ValueError, RuntimeError, specdetect.distributed.BackendError
        Bad options (now), or a cluster that cannot be used (while iterating).
    """
    resolve_device(device)
    check_backend(scheduler, cluster, client, shard_size)
    if scheduler is None and cluster is None and client is None:
        return extract_features(inputs, config, device=device, workers=workers, frames=frames)
    return _cluster_features(inputs, config, frames, scheduler, cluster, client, shard_size)


def _cluster_features(inputs, config, frames, scheduler, cluster, client, shard_size):
    from specdetect import distributed

    with distributed.open_client(scheduler, cluster, client) as dask_client:
        yield from distributed.map_paths(
            dask_client,
            distributed.feature_shard,
            inputs,
            on_failure=distributed.feature_shard_failure,
            shared={"config": config, "frames": frames},
            shard_size=shard_size,
        )


class FeatureTable:
    """Feature results gathered into the ``.npz`` file of ``specdetect features``.

    The file holds ``features`` (float32, one row of ``config.n_features``
    per readable image), ``paths``, ``config`` (JSON of the feature
    settings), and ``failed_paths`` / ``errors`` for inputs that failed.

    Examples
    --------
    >>> table = FeatureTable(FeatureConfig(bins=8))
    >>> table.add(FeatureResult("a.png", "image", np.zeros((1, 8), np.float32)))
    >>> table.add(FeatureResult("b.png", "image", None, "b.png: empty file"))
    >>> (table.n_ok, table.n_failed)
    (1, 1)
    """

    def __init__(self, config: FeatureConfig):
        self.config = config
        self.rows: list[np.ndarray] = []
        self.paths: list[str] = []
        self.failed_paths: list[str] = []
        self.errors: list[str] = []

    @property
    def n_ok(self) -> int:
        """Inputs with a feature row."""
        return len(self.paths)

    @property
    def n_failed(self) -> int:
        """Inputs that could not be read."""
        return len(self.failed_paths)

    def add(self, result: FeatureResult) -> None:
        """Keep one result: its first feature row, or its error."""
        if result.ok:
            self.rows.append(result.features[0])
            self.paths.append(result.path)
        else:
            self.failed_paths.append(result.path)
            self.errors.append(result.error)

    def save(self, path: str | os.PathLike) -> None:
        """Write the ``.npz`` file atomically (a killed run leaves no half file)."""
        from specdetect.atomic import atomic_write

        matrix = (
            np.stack(self.rows) if self.rows else np.zeros((0, self.config.n_features), np.float32)
        )
        with atomic_write(path) as handle:
            np.savez(
                handle,
                features=matrix,
                paths=np.array(self.paths, dtype=str),
                config=np.array(json.dumps(self.config.to_dict())),
                failed_paths=np.array(self.failed_paths, dtype=str),
                errors=np.array(self.errors, dtype=str),
            )
