"""``specdetect scan``: score images and videos with a detector; exit code for CI."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import typer

from specdetect.cli._common import DEVICE_HELP, WORKERS_HELP, error_line, fail, progress
from specdetect.cli.features import CLUSTER_HELP, SCHEDULER_HELP, SHARD_HELP

RESUME_HELP = (
    "JSON-lines file: append each input's result to it as shards finish, and skip "
    "inputs it already holds (errors included). Rerun the same command after a crash."
)

#: Exit codes (a public interface: CI jobs depend on them).
EXIT_CLEAN = 0
EXIT_FLAGGED = 1
EXIT_ERROR = 2

SCAN_HELP = """Score images and videos: the probability that each was generated.

PATH can be files, folders (searched recursively for images and videos),
glob patterns, or - to read one path per line from stdin. Videos (mp4, avi,
mov, mkv, webm) are scored on up to --frames evenly spaced frames: the mean
frame score, the fraction of frames flagged, and the majority-vote label.

Results go to stdout (or -o FILE, written atomically); progress and one line
per unreadable input go to stderr.

With --scheduler or --cluster the inputs are scored on a Dask cluster
(pip install 'specdetect\\[distributed]'), with the same output. With --resume
RESULTS.jsonl, results are appended to that file shard by shard and a rerun
skips what it holds; the report covers all inputs, old and new.

Exit code: 0 nothing flagged; 1 at least one input flagged fake; 2 usage or
model error, or any input that could not be read (an incomplete scan never
exits 0). --exit-zero always exits 0 once the scan has run.
"""


def scan(
    paths: list[str] = typer.Argument(
        ..., help="Files, folders (recursive), globs, or - to read paths from stdin."
    ),
    model: Path | None = typer.Option(
        None, "--model", "-m", help="Model file (default: the shipped models/default.skops)."
    ),
    threshold: float | None = typer.Option(
        None, "--threshold", min=0.0, max=1.0, help="Flag scores >= T (default: the model's)."
    ),
    fmt: str = typer.Option("text", "--format", "-f", help="Output format: text, json or csv."),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Write the report here (atomically) instead of stdout."
    ),
    exit_zero: bool = typer.Option(
        False, "--exit-zero", help="Exit 0 whatever was found (report-only runs)."
    ),
    frames: int = typer.Option(32, "--frames", min=1, help="Frames to score per video."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    workers: int | None = typer.Option(None, "--workers", min=1, help=WORKERS_HELP),
    scheduler: str | None = typer.Option(None, "--scheduler", help=SCHEDULER_HELP),
    cluster: str | None = typer.Option(None, "--cluster", help=CLUSTER_HELP),
    resume: Path | None = typer.Option(None, "--resume", help=RESUME_HELP),
    shard_size: int = typer.Option(1000, "--shard-size", min=1, help=SHARD_HELP),
) -> None:
    from specdetect.report import FORMATS, make_writer

    if fmt not in FORMATS:
        raise fail(f"--format must be text, json or csv, got {fmt!r}")
    _check_device(device)
    detector, model_name = _open_detector(model)

    inputs, total = _inputs(paths)
    # Progress counts inputs as they are handed to the decoders (a few dozen
    # ahead of the results), so it moves while the model is still loading.
    inputs = progress(inputs, total, "scan")
    backend = _Backend.from_options(scheduler, cluster, resume, shard_size, output)
    records = _record_source(inputs, detector, threshold, frames, device, workers, backend)
    try:
        # The model must be valid before anything is reported: the first record
        # comes only once it has loaded (features are computed meanwhile).
        first = next(records, None)
        threshold = float(detector.threshold_ if threshold is None else threshold)
    except KeyboardInterrupt:  # click would exit 1, which means "flagged"
        raise fail("interrupted: the scan is incomplete") from None
    except Exception as exc:  # not exit 1, which means "flagged"
        if _is_model_error(exc) or _Backend.is_error(exc):
            raise fail(str(exc)) from None
        raise fail(f"scan stopped: {type(exc).__name__}: {exc}") from None

    try:
        with _report_stream(output) as stream:
            writer = make_writer(fmt, stream, model_name, threshold)
            if first is not None:
                _report(writer, first)
            for record in records:
                _report(writer, record)
            summary = writer.close()
    except typer.Exit:
        raise
    except KeyboardInterrupt:  # click would exit 1, which means "flagged"
        raise fail("interrupted: the scan is incomplete") from None
    except Exception as exc:  # a crash must not read as exit 1 ("flagged")
        raise fail(f"scan stopped: {type(exc).__name__}: {exc}") from None

    if output is not None:
        typer.echo(f"wrote the report of {summary.n} inputs to {output}", err=True)
    if summary.n == 0:
        error_line("no image or video files found in the given paths")
    code = _exit_code(summary)
    raise typer.Exit(EXIT_CLEAN if exit_zero else code)


def _report(writer, record: dict) -> None:
    writer.write(record)
    if "error" in record:
        error_line(f"{record['path']}: {record['error']}")


def _record_source(inputs, detector, threshold, frames, device, workers, backend=None):
    """Where the records come from: this process, or a Dask cluster and/or a resume file."""
    from specdetect.scan import scan_records

    if backend is None:
        return scan_records(
            inputs,
            detector,
            threshold=threshold,
            frames=frames,
            device=device,
            workers=workers,
        )
    return backend.records(inputs, detector, threshold, frames, device, workers)


class _Backend:
    """``--scheduler`` / ``--cluster`` / ``--resume``: records from a cluster and/or a file.

    :meth:`records` is a generator that owns its resources (result file,
    cluster): they are set up at the first record, in this order, and released
    when it ends. The model is loaded completely first, so a bad model file is
    refused before a cluster starts or the result file is touched.
    """

    def __init__(self, scheduler, cluster, resume, shard_size):
        self.scheduler, self.cluster = scheduler, cluster
        self.resume, self.shard_size = resume, shard_size

    @classmethod
    def from_options(cls, scheduler, cluster, resume, shard_size, output) -> _Backend | None:
        """The backend asked for (None: the plain single-process scan); usage errors exit 2."""
        if scheduler is None and cluster is None and resume is None:
            return None
        if scheduler is not None and cluster is not None:
            raise fail("give --scheduler or --cluster, not both")
        if resume is not None and output is not None:
            if os.path.abspath(resume) == os.path.abspath(output):
                raise fail("--resume and -o must be different files")
        if cluster is not None:
            from specdetect.distributed import BackendError, parse_cluster

            try:
                parse_cluster(cluster)
            except BackendError as exc:
                raise fail(str(exc)) from None
        return cls(scheduler, cluster, resume, shard_size)

    @staticmethod
    def is_error(exc: BaseException) -> bool:
        from specdetect.distributed import BackendError
        from specdetect.resume import ResumeError

        return isinstance(exc, (BackendError, ResumeError))

    def records(self, inputs, detector, threshold, frames, device, workers):
        from functools import partial

        from specdetect import distributed as dask_backend
        from specdetect.resume import ResultStore, resumed_records, sequential_compute
        from specdetect.scan import scan_records, score_shard

        if hasattr(detector, "result"):  # loaded in the background: wait, raise its error
            detector = detector.result()

        def local(paths):
            return scan_records(
                paths, detector, threshold=threshold, frames=frames, device=device, workers=workers
            )

        with contextlib.ExitStack() as stack:
            store = None
            if self.resume is not None:
                store = stack.enter_context(ResultStore(self.resume, warn=_warning))
            if self.scheduler is None and self.cluster is None:
                compute = sequential_compute(local)
                yield from resumed_records(inputs, store, compute, self.shard_size)
                return
            client = stack.enter_context(dask_backend.dask_client(self.scheduler, self.cluster))
            shard = partial(score_shard, threshold=threshold, frames=frames)
            options = {"shared": {"detector": detector}, "on_failure": _failure_record}
            if store is None:
                yield from dask_backend.map_paths(
                    client, shard, inputs, shard_size=self.shard_size, **options
                )
                return

            def compute(plans, on_done):
                return dask_backend.map_shards(
                    client, shard, plans, payload=_todo, on_done=on_done, **options
                )

            yield from resumed_records(inputs, store, compute, self.shard_size)


def _todo(plan):
    return plan.todo


def _warning(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


def _failure_record(path: str, exc: BaseException) -> dict:
    """The error record of an input whose cluster task kept failing."""
    from specdetect.distributed import describe_failure

    return {"path": path, "error": describe_failure(exc)}


def _exit_code(summary) -> int:
    """2 if anything could not be read (or nothing was found), else 1 if flagged, else 0."""
    if summary.errors or summary.n == 0:
        return EXIT_ERROR
    return EXIT_FLAGGED if summary.fake else EXIT_CLEAN


def _check_device(device: str) -> None:
    from specdetect.pipeline import resolve_device

    try:
        resolve_device(device)
    except (ValueError, RuntimeError) as exc:
        raise fail(str(exc).replace("device must", "--device must")) from None


def _open_detector(model: Path | None):
    """The detector and the name to report for it.

    A model file with a scorer (every file written since it was added) is
    read with NumPy alone, in milliseconds. An older file loads through
    scikit-learn: when its feature settings can be read up front, in a thread
    while the first inputs are featurized (loading takes seconds); otherwise
    now, and a bad file exits 2 at once.
    """
    from specdetect.detect import default_model_path, load_model
    from specdetect.detect.model_io import load_scorer, read_feature_config
    from specdetect.scan import DeferredDetector

    path = default_model_path() if model is None else model
    scorer = load_scorer(path)
    if scorer is not None:
        return scorer, _display_path(path)
    config = read_feature_config(path)
    if config is not None:
        return DeferredDetector(partial(load_model, path), config), _display_path(path)
    try:
        detector = load_model(path)
    except Exception as exc:
        if _is_model_error(exc):
            raise fail(str(exc)) from None
        if isinstance(exc, OSError):
            raise fail(f"{path}: cannot read model file ({exc.strerror or exc})") from None
        raise
    return detector, _display_path(path)


def _is_model_error(exc: BaseException) -> bool:
    import specdetect.detect

    return isinstance(exc, specdetect.detect.ModelError)


def _display_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)
    return str(path) if relative.startswith("..") else relative


def _inputs(paths: list[str]):
    """The lazy list of input files, and their count when it can be known up front.

    Counting walks the folders once more (cheap, and nothing is kept); paths
    read from stdin cannot be counted without holding them.
    """
    from specdetect.media import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, iter_paths

    extensions = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
    total = None if "-" in paths else sum(1 for _ in iter_paths(paths, extensions))
    return iter_paths(paths, extensions), total


@contextmanager
def _report_stream(output: Path | None):
    """stdout, or a UTF-8 text stream over an atomically replaced file."""
    if output is None:
        try:
            yield sys.stdout
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader went away (`| head`): stop quietly; the scan is incomplete.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(EXIT_ERROR) from None
        return
    from specdetect.atomic import atomic_write

    with atomic_write(output, "wb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        yield text
        text.flush()
        text.detach()  # atomic_write syncs and closes the file itself


def register(app: typer.Typer) -> None:
    app.command("scan", help=SCAN_HELP)(scan)
