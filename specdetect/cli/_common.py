"""Helpers shared by the command modules: options, progress, error lines."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

import typer

T = TypeVar("T")

DEVICE_HELP = "auto: CUDA when torch sees a GPU, else CPU."
WORKERS_HELP = "Decoding processes (default: number of usable CPUs)."


def progress(items: Iterable[T], total: int | None, desc: str) -> Iterator[T]:
    """Wrap ``items`` in a progress bar on stderr (shown on terminals only)."""
    from tqdm import tqdm

    yield from tqdm(
        items, total=total, desc=desc, unit="file", file=sys.stderr, disable=None, leave=False
    )


def error_line(message: str) -> None:
    """Print one line on stderr, prefixed so it stands out in CI logs."""
    typer.echo(f"error: {message}", err=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``message`` as an error and return the Exit to raise."""
    error_line(message)
    return typer.Exit(code)
