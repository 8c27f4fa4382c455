"""Command-line interface: a thin typer layer that parses, calls and prints.

Each command group lives in its own module with a ``register(app)`` function;
heavy libraries are imported inside the command functions, never here, so
``specdetect --help`` stays fast.
"""

from __future__ import annotations

import typer

from specdetect import __version__

app = typer.Typer(
    name="specdetect",
    help="Detect generated images and videos by their Fourier spectrum, "
    "and train generators that leave no spectral fingerprint.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"specdetect {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """specdetect command line."""


def _register_all() -> None:
    from specdetect.cli import detect, features, freqbias, gan, scan

    for module in (features, detect, scan, gan, freqbias):
        module.register(app)


_register_all()


def main() -> None:
    """Console-script entry point."""
    app()
