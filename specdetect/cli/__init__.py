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
    """Console-script entry point.

    SIGTERM and SIGINT raise an exception in the main thread, so that the
    cleanup paths run (no half report, no temporary file, no stray worker);
    a command they stop exits 2, never 0 or 1.
    """
    from specdetect._signals import raise_on_stop_signals, stop_signal_received
    from specdetect.cli._common import error_line

    restore = raise_on_stop_signals()
    try:
        app()
    except SystemExit as exc:
        # typer turns a KeyboardInterrupt it catches into a silent exit 130
        # (scan reports its own interruption and exits 2 already).
        if exc.code != _TYPER_INTERRUPTED or stop_signal_received() is None:
            raise
        error_line("interrupted: the command did not finish")
        raise SystemExit(EXIT_INTERRUPTED) from None
    except KeyboardInterrupt:  # came before or after typer's handling
        error_line("interrupted: the command did not finish")
        raise SystemExit(EXIT_INTERRUPTED) from None
    finally:
        restore()


#: Exit status of a command stopped by a signal: the scan exit code for
#: "incomplete", never 0 ("clean") or 1 ("flagged").
EXIT_INTERRUPTED = 2

#: The exit status typer gives a command that a KeyboardInterrupt stopped.
_TYPER_INTERRUPTED = 130
