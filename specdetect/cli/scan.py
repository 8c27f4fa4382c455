"""``specdetect scan``: score images and videos with a detector; exit code for CI."""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import typer

from specdetect.cli._common import DEVICE_HELP, WORKERS_HELP, error_line, fail, progress
from specdetect.cli.features import CLUSTER_HELP, SCHEDULER_HELP, SHARD_HELP

SCAN_SHARD_HELP = SHARD_HELP[:-2] + ", or per batch appended to the --resume file)."
FORMAT_HELP = "Output format: text, json, csv, sarif (code scanning) or junit (test reports)."
HTML_HELP = (
    "Also write a self-contained HTML review page here: flagged inputs first, with "
    "thumbnails, scores, spectra and per-frame scores."
)
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

Results go to stdout (or -o FILE, written atomically) as text, JSON, CSV,
SARIF (code-scanning pages) or JUnit XML (test dashboards); --html PAGE.html
also writes a self-contained review page. Progress and one line per
unreadable input go to stderr.

With --scheduler or --cluster the inputs are scored on a Dask cluster
(the optional extra: pip install 'specdetect\\[distributed]', or
'.\\[distributed]' in a checkout), with the same output. With --resume
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
        None, "--model", "-m", help="Model file (default: the shipped model)."
    ),
    threshold: float | None = typer.Option(
        None, "--threshold", min=0.0, max=1.0, help="Flag scores >= T (default: the model's)."
    ),
    fmt: str = typer.Option("text", "--format", "-f", help=FORMAT_HELP),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="Write the report here (atomically) instead of stdout."
    ),
    html: Path | None = typer.Option(None, "--html", help=HTML_HELP),
    exit_zero: bool = typer.Option(
        False, "--exit-zero", help="Exit 0 whatever was found (report-only runs)."
    ),
    frames: int = typer.Option(32, "--frames", min=1, help="Frames to score per video."),
    device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
    workers: int | None = typer.Option(None, "--workers", min=1, help=WORKERS_HELP),
    scheduler: str | None = typer.Option(None, "--scheduler", help=SCHEDULER_HELP),
    cluster: str | None = typer.Option(None, "--cluster", help=CLUSTER_HELP),
    resume: Path | None = typer.Option(None, "--resume", help=RESUME_HELP),
    shard_size: int = typer.Option(1000, "--shard-size", min=1, help=SCAN_SHARD_HELP),
) -> None:
    import specdetect.scan as library
    from specdetect.detect import ModelError
    from specdetect.distributed import BackendError
    from specdetect.report import FORMATS, make_writer

    if fmt not in FORMATS:
        raise fail(f"--format must be {', '.join(FORMATS[:-1])} or {FORMATS[-1]}, got {fmt!r}")
    if scheduler is not None and cluster is not None:
        raise fail("give --scheduler or --cluster, not both")
    _check_distinct(output=output, resume=resume, html=html)
    try:
        library.check_options(
            threshold=threshold,
            frames=frames,
            device=device,
            cluster=cluster,
            shard_size=shard_size,
        )
    except (ValueError, RuntimeError, BackendError) as exc:
        raise fail(str(exc).replace("device must", "--device must")) from None
    try:
        detector, model_name = library.open_detector(model)
    except ModelError as exc:
        raise fail(str(exc)) from None

    inputs, total = library.list_inputs(paths)
    records = library.scan(
        inputs,
        detector,
        threshold=threshold,
        frames=frames,
        device=device,
        workers=workers,
        scheduler=scheduler,
        cluster=cluster,
        resume=resume,
        shard_size=shard_size,
        spectra=html is not None,
        warn=_warning,
    )
    try:
        # The model must be valid before anything is reported: the first record
        # comes only once it has loaded (features are computed meanwhile).
        first = next(records, None)
        threshold = float(detector.threshold_ if threshold is None else threshold)
    except KeyboardInterrupt:  # click would exit 1, which means "flagged"
        raise fail("interrupted: the scan is incomplete") from None
    except Exception as exc:  # not exit 1, which means "flagged"
        if library.is_setup_error(exc):
            raise fail(str(exc)) from None
        raise fail(f"scan stopped: {type(exc).__name__}: {exc}") from None

    try:
        with contextlib.ExitStack() as stack:
            stream = stack.enter_context(_report_stream(output))
            writer = make_writer(fmt, stream, model_name, threshold)
            page = None
            if html is not None:
                from specdetect.report_html import HtmlReport

                page = stack.enter_context(HtmlReport(html, model_name, threshold))
            pending = records if first is None else itertools.chain([first], records)
            for record in progress(pending, total, "scan"):
                if page is not None:
                    page.write(record)
                    record.pop("spectrum", None)
                writer.write(record)
                if "error" in record:
                    error_line(f"{record['path']}: {record['error']}")
            summary = writer.close()
    except typer.Exit:
        raise
    except KeyboardInterrupt:  # click would exit 1, which means "flagged"
        raise fail("interrupted: the scan is incomplete") from None
    except Exception as exc:  # a crash must not read as exit 1 ("flagged")
        if library.is_setup_error(exc):
            raise fail(str(exc)) from None
        raise fail(f"scan stopped: {type(exc).__name__}: {exc}") from None

    if output is not None:
        typer.echo(f"wrote the report of {summary.n} inputs to {output}", err=True)
    if html is not None:
        typer.echo(f"wrote the review page to {html}", err=True)
    if summary.n == 0:
        error_line("no image or video files found in the given paths")
    code = _exit_code(summary)
    raise typer.Exit(EXIT_CLEAN if exit_zero else code)


def _check_distinct(**files: Path | None) -> None:
    """Refuse two of -o, --resume and --html naming the same file."""
    seen: dict[str, str] = {}
    for option, path in files.items():
        if path is None:
            continue
        key = os.path.abspath(path)
        if key in seen:
            raise fail(f"{_FLAGS[seen[key]]} and {_FLAGS[option]} must be different files")
        seen[key] = option


_FLAGS = {"output": "-o", "resume": "--resume", "html": "--html"}


def _warning(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


def _exit_code(summary) -> int:
    """2 if anything could not be read (or nothing was found), else 1 if flagged, else 0."""
    if summary.errors or summary.n == 0:
        return EXIT_ERROR
    return EXIT_FLAGGED if summary.fake else EXIT_CLEAN


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
