"""Helpers shared by the CLI commands: JSON output, nulls, one-line errors."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import typer

from .._validation import InvalidArgumentError


def option_name(argument: str) -> str:
    """``weight_var`` -> ``--weight-var`` (names already starting with ``-`` pass through)."""
    if argument.startswith("-"):
        return argument
    return "--" + argument.replace("_", "-")


def fail(argument: str, message: str) -> "typer.Exit":
    """Print ``Error: --arg: message`` on stderr and exit with code 2."""
    typer.echo(f"Error: {option_name(argument)}: {message}", err=True)
    raise typer.Exit(code=2)


def jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and non-finite floats (-> ``None``) for JSON."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else None
    return value


def print_json(obj: Any) -> None:
    """Write ``obj`` as JSON (non-finite numbers become ``null``) to stdout."""
    sys.stdout.write(json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def info(message: str) -> None:
    """A message for humans: always stderr, so that stdout stays clean for ``--json``."""
    typer.echo(message, err=True)


__all__ = ["InvalidArgumentError", "fail", "jsonable", "print_json", "info", "option_name"]
