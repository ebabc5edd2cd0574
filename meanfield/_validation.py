"""Input validation shared by the API and the CLI.

Every public function validates its arguments here and raises
:class:`InvalidArgumentError`, a :class:`ValueError` that names the offending
argument. The CLI turns it into a one-line message and exit code 2.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["InvalidArgumentError", "check_real", "check_variance", "check_int", "check_range"]


class InvalidArgumentError(ValueError):
    """A user-supplied argument is invalid.

    Parameters
    ----------
    argument : str
        Name of the argument in the Python API (``weight_var``); the CLI shows it
        as an option (``--weight-var``).
    message : str
        What is wrong, in a few words.
    """

    def __init__(self, argument: str, message: str):
        self.argument = argument
        self.reason = message
        super().__init__(f"{argument}: {message}")


def check_real(name: str, value: Any, *, lo: float | None = None, hi: float | None = None,
               lo_open: bool = False, hi_open: bool = False) -> float:
    """Return ``value`` as a finite float inside the given bounds or raise."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(name, f"must be a real number, got {value!r}") from None
    if not math.isfinite(x):
        raise InvalidArgumentError(name, f"must be finite, got {x!r}")
    if lo is not None and (x < lo or (lo_open and x == lo)):
        op = ">" if lo_open else ">="
        raise InvalidArgumentError(name, f"must be {op} {lo:g}, got {x!r}")
    if hi is not None and (x > hi or (hi_open and x == hi)):
        op = "<" if hi_open else "<="
        raise InvalidArgumentError(name, f"must be {op} {hi:g}, got {x!r}")
    return x


def check_variance(name: str, value: Any, *, positive: bool = False) -> float:
    """A variance: finite, ``>= 0`` (``> 0`` when ``positive``)."""
    return check_real(name, value, lo=0.0, lo_open=positive)


def check_int(name: str, value: Any, *, lo: int | None = None, hi: int | None = None) -> int:
    """An integer inside ``[lo, hi]``."""
    if isinstance(value, (bool, np.bool_)):
        raise InvalidArgumentError(name, f"must be an integer, got {value!r}")
    try:
        i = int(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidArgumentError(name, f"must be an integer, got {value!r}") from None
    if i != value:
        raise InvalidArgumentError(name, f"must be an integer, got {value!r}")
    if lo is not None and i < lo:
        raise InvalidArgumentError(name, f"must be >= {lo}, got {i}")
    if hi is not None and i > hi:
        raise InvalidArgumentError(name, f"must be <= {hi}, got {i}")
    return i


def check_range(name: str, value: Any, *, lo: float | None = None, positive: bool = False) -> tuple[float, float]:
    """A pair ``(start, stop)`` of finite floats with ``start < stop``."""
    try:
        a, b = value
    except (TypeError, ValueError):
        raise InvalidArgumentError(name, f"must be a pair (start, stop), got {value!r}") from None
    a = check_real(name, a, lo=lo, lo_open=positive)
    b = check_real(name, b, lo=lo, lo_open=positive)
    if not a < b:
        raise InvalidArgumentError(name, f"start must be below stop, got ({a:g}, {b:g})")
    return a, b
