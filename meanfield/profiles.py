"""Spatial variance profiles of convolution kernels.

A convolution layer of the mean-field theory draws the weights of kernel tap
``beta`` from N(0, sigma_w^2 v_beta / c_in) with a *variance profile*
``v_beta >= 0``, ``sum_beta v_beta = 1`` (Xiao et al. 2018, arXiv:1806.05393,
Section 3; THEORY.md Section 3). This module builds such profiles for 1-D, 2-D
and 3-D kernels.

Taps are indexed ``0 .. k-1`` along each spatial dimension, exactly as in a
PyTorch weight ``(c_out, c_in, *spatial)``; the *centre tap* is ``(k-1)//2``
(even sizes are allowed: the centre is then the left one of the two middle
taps, which is also where ``torch.nn.Conv*d(padding="same")`` puts it). Tap
``i`` has offset ``beta = i - (k-1)//2`` (:func:`tap_offsets`).

Kinds
-----
``"uniform"``
    ``v = 1/k^d`` everywhere.
``"delta"``
    All variance on the centre tap (the profile of Delta-Orthogonal kernels).
``"binomial"``
    ``v_i = C(k-1, i) / 2^(k-1)`` per dimension, outer product in 2-D/3-D: the
    expected profile of the block-orthogonal kernels of Algorithm 1 (for odd
    ``k = 2K+1`` this is THEORY.md's ``C(2K, beta+K)/4^K``).
``"gaussian:<width>"``
    ``v ∝ exp(-beta^2 / (2 width^2))`` over the tap offsets, separable.
``"custom"``
    Explicit taps (an array, or a string ``"0.25,0.5,0.25"`` / ``"1,2,1;2,4,2;1,2,1"``).
    Taps that do not sum to one are normalised with a
    :class:`ProfileNormalisedWarning`.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import numpy as np

from ._validation import InvalidArgumentError, check_int, check_real

__all__ = [
    "ProfileNormalisedWarning",
    "PROFILE_KINDS",
    "tap_offsets",
    "variance_profile",
    "parse_profile",
]

#: The recognised profile kinds (``"gaussian"`` is written ``"gaussian:<width>"``).
PROFILE_KINDS = ("uniform", "delta", "binomial", "gaussian", "custom")


class ProfileNormalisedWarning(UserWarning):
    """Custom taps did not sum to one and were divided by their sum."""


def tap_offsets(kernel_size: int) -> np.ndarray:
    """Offsets ``beta`` of the taps of a kernel of size ``k``, centre tap at ``(k-1)//2``.

    Parameters
    ----------
    kernel_size : int
        Number of taps ``k >= 1`` along one spatial dimension.

    Returns
    -------
    numpy.ndarray
        ``np.arange(k) - (k-1)//2`` (integers): tap ``i`` of a weight sits at
        offset ``i - (k-1)//2`` from the output position.

    Examples
    --------
    >>> tap_offsets(3)
    array([-1,  0,  1])
    >>> tap_offsets(4)
    array([-1,  0,  1,  2])

    References
    ----------
    Xiao et al., "Dynamical Isometry and a Mean Field Theory of CNNs", ICML 2018,
    arXiv:1806.05393.
    """
    k = check_int("kernel_size", kernel_size, lo=1)
    return np.arange(k) - (k - 1) // 2


# --------------------------------------------------------------------------- helpers


def _kernel_sizes(kernel_size: Any, dims: int | None) -> tuple[int, ...]:
    """Normalise ``kernel_size`` (int or sequence) and ``dims`` to a tuple of sizes."""
    if dims is not None:
        dims = check_int("dims", dims)
        if dims not in (1, 2, 3):
            raise InvalidArgumentError("dims", f"must be 1, 2 or 3, got {dims}")
    if kernel_size is None:
        kernel_size = 3
    if isinstance(kernel_size, (tuple, list, np.ndarray)):
        sizes = tuple(check_int("kernel_size", s, lo=1) for s in kernel_size)
        if len(sizes) not in (1, 2, 3):
            raise InvalidArgumentError(
                "kernel_size", f"must have 1, 2 or 3 entries (one per spatial dimension), got {len(sizes)}")
        if dims is not None and len(sizes) != dims:
            if len(sizes) == 1:
                return sizes * dims
            raise InvalidArgumentError(
                "kernel_size", f"has {len(sizes)} entries but dims = {dims}")
        return sizes
    k = check_int("kernel_size", kernel_size, lo=1)
    return (k,) * (1 if dims is None else dims)


def _outer(factors: Sequence[np.ndarray]) -> np.ndarray:
    out = np.asarray(factors[0], dtype=np.float64)
    for f in factors[1:]:
        out = np.multiply.outer(out, np.asarray(f, dtype=np.float64))
    return out


def _binomial_1d(k: int) -> np.ndarray:
    v = np.array([math.comb(k - 1, i) for i in range(k)], dtype=np.float64)
    return v / 2.0 ** (k - 1)


def _gaussian_1d(k: int, width: float) -> np.ndarray:
    beta = tap_offsets(k).astype(np.float64)
    v = np.exp(-beta ** 2 / (2.0 * width ** 2))
    return v / v.sum()


def _parse_taps_string(text: str) -> np.ndarray:
    rows = [r for r in text.strip().split(";")]
    if any(not r.strip() for r in rows):
        raise InvalidArgumentError("taps", f"empty row in {text!r}")
    parsed = []
    for r in rows:
        try:
            parsed.append([float(x) for x in r.replace(" ", "").split(",")])
        except ValueError:
            raise InvalidArgumentError(
                "taps", f"cannot read {text!r}: write numbers separated by ',' "
                        "(2-D: rows separated by ';', e.g. '1,2,1;2,4,2;1,2,1')") from None
    if len(parsed) == 1:
        return np.array(parsed[0], dtype=np.float64)
    lengths = {len(r) for r in parsed}
    if len(lengths) != 1:
        raise InvalidArgumentError("taps", f"rows of {text!r} have different lengths {sorted(lengths)}")
    return np.array(parsed, dtype=np.float64)


def _check_taps(taps: Any) -> np.ndarray:
    if isinstance(taps, str):
        arr = _parse_taps_string(taps)
    else:
        try:
            arr = np.array(taps, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidArgumentError("taps", f"must be an array of non-negative numbers, got {taps!r}") from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim > 3:
        raise InvalidArgumentError("taps", f"must have 1, 2 or 3 dimensions, got {arr.ndim}")
    if arr.size == 0:
        raise InvalidArgumentError("taps", "is empty")
    if not np.all(np.isfinite(arr)):
        raise InvalidArgumentError("taps", "must be finite")
    if np.any(arr < 0):
        raise InvalidArgumentError("taps", f"must be non-negative (they are variances), got min {arr.min():g}")
    total = float(arr.sum())
    if total == 0.0:
        raise InvalidArgumentError("taps", "are all zero; a variance profile needs a positive sum")
    return arr


def _normalise(arr: np.ndarray) -> np.ndarray:
    total = float(arr.sum())
    if not math.isclose(total, 1.0, rel_tol=1e-12, abs_tol=0.0):
        warnings.warn(f"taps summed to {total:g}; normalised to sum 1", ProfileNormalisedWarning, stacklevel=3)
    return arr / total


def _split_kind(kind: Any) -> tuple[str, str | None]:
    if not isinstance(kind, str):
        raise InvalidArgumentError("variance", f"profile kind must be a string, got {kind!r}")
    text = kind.strip()
    name, sep, arg = text.partition(":")
    name = name.strip().lower()
    if name not in PROFILE_KINDS:
        raise InvalidArgumentError(
            "variance", f"unknown profile {kind!r}; use uniform, delta, binomial, gaussian:<width> or custom")
    return name, (arg.strip() if sep else None)


# --------------------------------------------------------------------------- public API


def variance_profile(kind: str = "uniform", kernel_size: int | Sequence[int] | None = None,
                     dims: int | None = None, taps: Any = None) -> np.ndarray:
    """The spatial variance profile ``v`` of a convolution kernel.

    Parameters
    ----------
    kind : str, default "uniform"
        ``"uniform"``, ``"delta"``, ``"binomial"``, ``"gaussian:<width>"``
        (``width > 0``, in taps) or ``"custom"`` (then ``taps`` is required;
        ``"custom:<taps>"`` is accepted too).
    kernel_size : int or sequence of int, optional
        Taps per spatial dimension (default 3 ; ``>= 1``; even sizes allowed). A sequence
        gives one size per dimension (non-square kernels, e.g. for a weight of
        spatial shape ``(3, 5)``). For ``"custom"`` it is inferred from
        ``taps``; ``None`` or a matching value are accepted, anything else is an
        error.
    dims : {1, 2, 3}, optional
        Number of spatial dimensions; defaults to 1, to ``len(kernel_size)``
        when that is a sequence, and to ``taps.ndim`` for ``"custom"``. 1-D
        custom taps with ``dims > 1`` are used as a separable (outer-product)
        profile.
    taps : array_like or str, optional
        Custom profile: an array, or ``"0.25,0.5,0.25"`` (1-D) or
        ``"1,2,1;2,4,2;1,2,1"`` (2-D, rows separated by ``;``). A 2-D/3-D
        profile must be square unless ``kernel_size`` is given as a matching tuple.
        Non-negative, finite, not all zero. Taps that do not sum to one are
        divided by their sum and a :class:`ProfileNormalisedWarning` is emitted.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``kernel_size`` (``(k,)*dims``), non-negative,
        summing to one. Index ``(k-1)//2`` is the centre tap.

    Raises
    ------
    InvalidArgumentError
        Naming ``variance`` (unknown kind, bad width), ``taps``, ``kernel_size``
        or ``dims``.

    Examples
    --------
    >>> variance_profile("binomial", 3)
    array([0.25, 0.5 , 0.25])
    >>> variance_profile("delta", 3, dims=2)
    array([[0., 0., 0.],
           [0., 1., 0.],
           [0., 0., 0.]])
    >>> variance_profile("custom", taps="1,2,1").tolist()  # doctest: +SKIP
    [0.25, 0.5, 0.25]

    References
    ----------
    Xiao, Bahri, Sohl-Dickstein, Schoenholz, Pennington, "Dynamical Isometry and a
    Mean Field Theory of CNNs: How to Train 10,000-Layer Vanilla Convolutional
    Neural Networks", ICML 2018, arXiv:1806.05393.
    """
    name, arg = _split_kind(kind)
    if name == "custom":
        if arg is not None:
            if taps is not None:
                raise InvalidArgumentError("taps", "given twice: in the profile string and as taps")
            taps = arg
        if taps is None:
            raise InvalidArgumentError("taps", "a custom profile needs taps, e.g. taps='0.25,0.5,0.25'")
        v = _check_taps(taps)
        ndim = v.ndim
        separable = False
        if dims is not None:
            dims = check_int("dims", dims)
            if dims not in (1, 2, 3):
                raise InvalidArgumentError("dims", f"must be 1, 2 or 3, got {dims}")
            if v.ndim == 1 and dims > 1:
                separable, ndim = True, dims  # 1-D taps used along every dimension
            elif v.ndim != dims:
                raise InvalidArgumentError("dims", f"is {dims} but the taps are {v.ndim}-D")
        shape = v.shape * ndim if separable else v.shape
        if kernel_size is not None:
            sizes = _kernel_sizes(kernel_size, ndim)
            if sizes != shape:
                raise InvalidArgumentError(
                    "kernel_size", f"is {kernel_size} but the taps have shape {shape}")
        elif len(set(shape)) != 1:
            raise InvalidArgumentError(
                "taps", f"a {ndim}-D profile must be square, got shape {shape} "
                        "(pass kernel_size as a tuple for a non-square kernel)")
        v = _normalise(v)
        return _outer([v] * ndim) if separable else v

    if taps is not None:
        raise InvalidArgumentError("taps", f"only a custom profile takes taps, not {name!r}")
    sizes = _kernel_sizes(kernel_size, dims)
    if name == "uniform":
        factors = [np.full(k, 1.0 / k) for k in sizes]
    elif name == "delta":
        factors = []
        for k in sizes:
            f = np.zeros(k)
            f[(k - 1) // 2] = 1.0
            factors.append(f)
    elif name == "binomial":
        factors = [_binomial_1d(k) for k in sizes]
    else:  # gaussian
        if arg is None or arg == "":
            raise InvalidArgumentError("variance", "write the Gaussian profile as 'gaussian:<width>', e.g. 'gaussian:1.5'")
        if not _is_number(arg):
            raise InvalidArgumentError("variance", f"Gaussian width must be a positive number, got {arg!r}")
        width = check_real("variance", arg, lo=0.0, lo_open=True)
        factors = [_gaussian_1d(k, width) for k in sizes]
    return _outer(factors)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_profile(spec: str, kernel_size: int | Sequence[int] | None = None,
                  dims: int | None = None) -> np.ndarray:
    """Parse a command-line profile specification into a profile array.

    Parameters
    ----------
    spec : str
        ``"uniform"``, ``"delta"``, ``"binomial"``, ``"gaussian:<width>"``,
        ``"custom:<taps>"`` or bare taps such as ``"0.25,0.5,0.25"`` or
        ``"1,2,1;2,4,2;1,2,1"``.
    kernel_size : int or sequence of int, optional
        As in :func:`variance_profile` (default 3 for the named kinds).
    dims : {1, 2, 3}, optional
        As in :func:`variance_profile`.

    Returns
    -------
    numpy.ndarray
        The profile (float64, non-negative, sums to one).

    Examples
    --------
    >>> parse_profile("binomial", 5).tolist()
    [0.0625, 0.25, 0.375, 0.25, 0.0625]
    >>> parse_profile("0.25,0.5,0.25").tolist()
    [0.25, 0.5, 0.25]

    References
    ----------
    Xiao et al. 2018, arXiv:1806.05393.
    """
    if not isinstance(spec, str):
        raise InvalidArgumentError("variance", f"profile must be a string, got {spec!r}")
    head = spec.strip().split(":", 1)[0].strip().lower()
    if head and (head[0].isdigit() or head[0] in ".+-"):
        return variance_profile("custom", kernel_size=kernel_size, dims=dims, taps=spec)
    return variance_profile(spec, kernel_size=kernel_size, dims=dims)
