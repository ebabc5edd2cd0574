"""The ``meanfield`` command-line interface (a thin typer layer over the API).

Every command group lives in :mod:`meanfield.commands` and registers itself on
the app; heavy modules (numba kernels, matplotlib, torch) are imported inside
the commands so that ``meanfield --help`` stays fast.
"""

from __future__ import annotations

import importlib
import sys

import typer

try:  # typer >= 0.20 vendors click
    from typer._click import exceptions as _cx
    from typer._click import echo as _echo
except ImportError:  # pragma: no cover - older typer on top of click
    from click import exceptions as _cx
    from click import echo as _echo

from . import __version__
from ._validation import InvalidArgumentError
from .commands._common import option_name

app = typer.Typer(
    name="meanfield",
    help="Mean-field theory of deep networks: fixed points, depth scales, phase diagrams, "
    "CNN Fourier modes, orthogonal kernels and finite-width checks.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Command groups, in the order they appear in --help.
_COMMAND_MODULES = ("core", "phase", "cnn", "empirical")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"meanfield {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                 help="Show the version and exit."),
) -> None:
    """Mean-field theory of deep networks (Xiao et al. 2018; Schoenholz et al. 2017)."""


for _name in _COMMAND_MODULES:
    try:
        _mod = importlib.import_module(f"meanfield.commands.{_name}")
    except ModuleNotFoundError as exc:  # pragma: no cover - only while a group is being written
        if exc.name != f"meanfield.commands.{_name}":
            raise
        continue
    _mod.register(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``meanfield`` console script.

    Usage errors and invalid arguments print one line on stderr and exit with
    code 2; nothing is written to stdout and no traceback is shown.
    """
    command = typer.main.get_command(app)
    try:
        rv = command.main(args=argv, prog_name="meanfield", standalone_mode=False)
    except InvalidArgumentError as exc:
        _echo(f"Error: {option_name(exc.argument)}: {exc.reason}", err=True)
        sys.exit(2)
    except _cx.NoArgsIsHelpError as exc:
        _echo(exc.ctx.get_help() if exc.ctx else str(exc), err=True)
        sys.exit(0)
    except _cx.UsageError as exc:
        msg = exc.format_message().replace("\n", " ")
        _echo(f"Error: {msg}", err=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        _echo("Aborted.", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        _echo("Interrupted.", err=True)
        sys.exit(130)
    if isinstance(rv, int):
        sys.exit(rv)
    sys.exit(0)


if __name__ == "__main__":  # pragma: no cover
    main()
