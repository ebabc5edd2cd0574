"""Mean-field theory of deep convolutional networks (THEORY.md §3).

A periodic CNN with ``n`` positions per spatial dimension (1-D or 2-D), kernel
taps ``β`` with weight variance ``σ_w² v_β / c_in`` (the *variance profile*
``v``, :mod:`meanfield.profiles`) and bias variance ``σ_b²`` propagates, in the
infinite-channel limit, the full spatial covariance of its pre-activations::

    Σ^{l+1} = 𝒜 ⋆ 𝒞(Σ^l),
    [𝒞(Σ)]_{α,α'} = σ_w² E_{h~N(0,Σ)}[φ(h_α) φ(h_α')] + σ_b²,
    [𝒜 ⋆ X]_{α,α'} = Σ_β v_β X_{α+β, α'+β}         (indices mod n).

This module provides

- :func:`fourier_eigenvalues` — ``λ_m = Σ_β v_β exp(2πi m·β/n)``, the
  eigenvalues of ``𝒜`` along each diagonal;
- :func:`mode_depth_scales` — per-Fourier-mode depth scales
  ``ξ_{q,m} = −1/ln|χ_q λ_m|`` and ``ξ_{c,m} = −1/ln|χ_c λ_m|``;
- :func:`propagate` — the exact layer-by-layer recursion of ``Σ`` for one input
  or a pair of inputs (an :class:`xarray.Dataset`), with the translation-invariant
  shortcut;
- :func:`fixed_point_covariance`, :func:`covariance_map` and
  :func:`linearised_map_jacobian` — ``Σ* = q*[(1−c*)I + c*11ᵀ]``, one step of the
  exact map and a finite-difference Jacobian of it at ``Σ*``, whose eigenvalues
  are ``{χ_q λ_m} ∪ {χ_c λ_m}``.

Conventions
-----------
Positions are flattened row-major: in 2-D position ``(i, j)`` is ``i·n + j``.
For a pair of inputs the joint covariance is ``(2N, 2N)`` with input-major
blocks (rows ``a·N + α``). Taps are offset ``β = i − (k−1)//2`` from the output
position (:func:`meanfield.profiles.tap_offsets`). A kernel larger than the grid
wraps around: taps are taken mod ``n`` and the variances of taps that land on the
same position add (the formula for ``λ_m`` is unchanged).

Memory and time
---------------
The full recursion stores ``(P·N)²`` float64 per layer (``N = n`` in 1-D,
``n²`` in 2-D; ``P`` inputs): O(n²) in 1-D and O(n⁴) in 2-D. A 2-D grid of
32×32 needs 8 MiB per layer, 64×64 needs 128 MiB, 128×128 2 GiB. Each layer
costs one bivariate Gaussian quadrature per distinct entry of the upper
triangle (``N(N+1)/2`` for one input). When the input covariance is translation
invariant it stays so, ``𝒜`` acts as the identity on it, and every displacement
follows the fully-connected maps: :func:`propagate` then uses that shortcut,
with O(N) memory and work per layer.

References
----------
Xiao, Bahri, Sohl-Dickstein, Schoenholz, Pennington, "Dynamical Isometry and a
Mean Field Theory of CNNs: How to Train 10,000-Layer Vanilla Convolutional
Neural Networks", ICML 2018, arXiv:1806.05393.
Schoenholz, Gilmer, Ganguli, Sohl-Dickstein, "Deep Information Propagation",
ICLR 2017, arXiv:1611.01232.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._validation import InvalidArgumentError, check_int, check_real, check_variance
from .profiles import ProfileNormalisedWarning, tap_offsets, variance_profile

__all__ = [
    "DEFAULT_BIAS_VAR",
    "MAX_BYTES",
    "ModeDepthScales",
    "make_profile",
    "resolve_variances",
    "fourier_eigenvalues",
    "mode_frequencies",
    "mode_depth_scales",
    "fixed_point_covariance",
    "covariance_map",
    "linearised_map_jacobian",
    "input_covariance",
    "propagate",
]

#: σ_b² used when neither variance is given (Schoenholz et al. 2017's running example).
DEFAULT_BIAS_VAR = 0.05

#: Default memory limit of :func:`propagate` (bytes): working arrays plus stored layers.
MAX_BYTES = 1 << 30

#: Largest number of positions ``N`` for :func:`linearised_map_jacobian` (the Jacobian is N² × N²).
MAX_JACOBIAN_POSITIONS = 64

_EPS = np.finfo(np.float64).eps


# --------------------------------------------------------------------------- profiles


def _check_dims(dims: Any) -> int:
    d = check_int("dims", dims)
    if d not in (1, 2):
        raise InvalidArgumentError("dims", f"must be 1 or 2, got {d}")
    return d


def make_profile(variance: str = "uniform", kernel: int | None = None, dims: int | None = None,
                 taps: Any = None) -> np.ndarray:
    """A validated 1-D or 2-D variance profile (thin layer over :func:`meanfield.profiles.variance_profile`).

    Parameters
    ----------
    variance : str, default "uniform"
        ``"uniform"``, ``"delta"``, ``"binomial"``, ``"gaussian:<width>"`` or
        ``"custom"`` (then ``taps`` is required).
    kernel : int, optional
        Taps per spatial dimension (default 3; inferred from ``taps`` for custom).
    dims : {1, 2}, optional
        Spatial dimensions (default 1, or the dimensionality of ``taps``).
    taps : array_like or str, optional
        Custom profile, e.g. ``"0.25,0.5,0.25"`` or ``"1,2,1;2,4,2;1,2,1"``. Taps
        that do not sum to one are normalised with a
        :class:`meanfield.profiles.ProfileNormalisedWarning`.

    Returns
    -------
    numpy.ndarray
        float64 profile of shape ``(k,)`` or ``(k, k)``, non-negative, summing to 1.

    Raises
    ------
    InvalidArgumentError
        Naming ``variance``, ``taps``, ``kernel`` or ``dims``.

    Examples
    --------
    >>> make_profile("binomial", 3).tolist()
    [0.25, 0.5, 0.25]

    References
    ----------
    Xiao et al. 2018, arXiv:1806.05393, §3.
    """
    if dims is not None:
        dims = _check_dims(dims)
    if variance is None:
        # taps alone imply a custom profile
        variance = "custom" if taps is not None else "uniform"
    try:
        v = variance_profile(variance, kernel_size=kernel, dims=dims, taps=taps)
    except InvalidArgumentError as exc:
        if exc.argument == "kernel_size":
            raise InvalidArgumentError("kernel", exc.reason) from None
        raise
    if v.ndim not in (1, 2):
        raise InvalidArgumentError("dims", f"must be 1 or 2, got a {v.ndim}-D profile")
    return v


def _resolve_profile(profile: Any, variance: Any, kernel: Any, dims: Any, taps: Any) -> tuple[np.ndarray, str]:
    """The variance profile array and its kind label, from an explicit array or a named kind."""
    if profile is not None:
        v = _as_profile(profile)
        if dims is not None and _check_dims(dims) != v.ndim:
            raise InvalidArgumentError("dims", f"is {dims} but the profile is {v.ndim}-D")
        return v, "custom"
    v = make_profile(variance, kernel, dims, taps)
    return v, "custom" if (variance is None and taps is not None) else (variance or "uniform")


def _as_profile(profile: Any) -> np.ndarray:
    """Validate a profile array (1-D or 2-D); normalise with a warning if needed."""
    if isinstance(profile, str):
        raise InvalidArgumentError("profile", "pass an array here; build named profiles with make_profile()")
    try:
        arr = np.array(profile, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgumentError("profile", f"must be an array of non-negative numbers, got {profile!r}") from None
    if arr.ndim not in (1, 2):
        raise InvalidArgumentError("profile", f"must be 1-D or 2-D, got {arr.ndim}-D")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", ProfileNormalisedWarning)
            v = variance_profile("custom", taps=arr, kernel_size=tuple(arr.shape), dims=arr.ndim)
    except ProfileNormalisedWarning:
        total = float(arr.sum())
        warnings.warn(f"profile summed to {total:g}; normalised to sum 1", ProfileNormalisedWarning, stacklevel=3)
        v = arr / total
    except InvalidArgumentError as exc:
        raise InvalidArgumentError("profile", exc.reason) from None
    return v


# --------------------------------------------------------------------------- Fourier eigenvalues


def _phases(kernel: int, spatial: int) -> np.ndarray:
    """``exp(2πi m β / n)`` as an (n, k) array, with ``m·β`` reduced mod n in integers."""
    beta = tap_offsets(kernel)
    m = np.arange(spatial)
    prod = np.mod(np.multiply.outer(m, beta), spatial)
    return np.exp(2j * np.pi * prod / spatial)


def fourier_eigenvalues(profile: Any, spatial: int) -> np.ndarray:
    """Eigenvalues ``λ_m = Σ_β v_β exp(2πi m·β/n)`` of the spatial averaging operator 𝒜.

    Parameters
    ----------
    profile : array_like
        Variance profile of shape ``(k,)`` (1-D) or ``(k1, k2)`` (2-D); non-negative,
        finite, summing to one (normalised with a ``ProfileNormalisedWarning`` otherwise).
    spatial : int
        Number of positions ``n >= 1`` per spatial dimension (periodic boundary).
        Kernels larger than ``n`` wrap around.

    Returns
    -------
    numpy.ndarray
        complex128, shape ``(n,)`` or ``(n, n)``; entry ``m`` (or ``(m1, m2)``) is
        ``λ_m``. ``λ_0 = 1``. Real and imaginary parts below ``8 k eps`` (``k`` taps;
        zero up to the rounding of the sum, e.g. the zeros of the Dirichlet kernel or
        the imaginary parts for a symmetric profile) are set to exactly 0.

    Raises
    ------
    InvalidArgumentError
        Bad profile or ``spatial``.

    Examples
    --------
    >>> import numpy as np
    >>> lam = fourier_eigenvalues([1/3, 1/3, 1/3], 8)
    >>> np.round(np.abs(lam), 5).tolist()
    [1.0, 0.80474, 0.33333, 0.13807, 0.33333, 0.13807, 0.33333, 0.80474]

    References
    ----------
    Xiao et al. 2018, arXiv:1806.05393, §3 (Fourier decomposition of the linearised map).
    """
    v = _as_profile(profile)
    n = check_int("spatial", spatial, lo=1)
    if v.ndim == 1:
        lam = _phases(v.shape[0], n) @ v
    else:
        e1 = _phases(v.shape[0], n)
        e2 = _phases(v.shape[1], n)
        lam = e1 @ v.astype(np.complex128) @ e2.T
    tol = 8.0 * v.size * _EPS
    re = np.where(np.abs(lam.real) < tol, 0.0, lam.real)
    im = np.where(np.abs(lam.imag) < tol, 0.0, lam.imag)
    lam = re + 1j * im
    # λ_0 = Σ v = 1 exactly (the profile is normalised)
    lam.flat[0] = 1.0 + 0.0j
    return lam


def mode_frequencies(spatial: int, dims: int = 1) -> np.ndarray:
    """Signed frequency of each Fourier mode, in cycles per position.

    Parameters
    ----------
    spatial : int
        ``n``.
    dims : {1, 2}
        Spatial dimensions.

    Returns
    -------
    numpy.ndarray
        Shape ``(n,)`` (1-D) or ``(n, n, 2)`` (2-D): ``m/n`` folded into
        ``[-1/2, 1/2)`` (``numpy.fft.fftfreq``).

    Examples
    --------
    >>> mode_frequencies(4).tolist()
    [0.0, 0.25, -0.5, -0.25]
    """
    n = check_int("spatial", spatial, lo=1)
    dims = _check_dims(dims)
    f = np.fft.fftfreq(n)
    if dims == 1:
        return f
    return np.stack(np.meshgrid(f, f, indexing="ij"), axis=-1)


# --------------------------------------------------------------------------- variances and the FC point


def resolve_variances(act: Any = "tanh", weight_var: Any = None, bias_var: Any = None) -> tuple[float, float, str | None]:
    """Fill in missing variances: the critical line at ``σ_b² = 0.05`` by default.

    Parameters
    ----------
    act : str or Activation
        The nonlinearity.
    weight_var, bias_var : float or None
        σ_w², σ_b². When ``bias_var`` is missing it is 0.05; when ``weight_var``
        is missing it is the critical value ``σ_w²`` (χ₁ = 1) for that ``bias_var``
        (:func:`meanfield.critical_weight_var`).

    Returns
    -------
    (weight_var, bias_var, note)
        ``note`` says what was filled in (``None`` when both were given).

    Examples
    --------
    >>> wv, bv, note = resolve_variances("tanh")   # doctest: +SKIP
    >>> round(wv, 5), bv
    (1.76096, 0.05)
    """
    notes = []
    if bias_var is None:
        bv = DEFAULT_BIAS_VAR
        notes.append(f"bias_var = {bv:g} (default)")
    else:
        bv = check_variance("bias_var", bias_var)
    if weight_var is None:
        from .core import critical_weight_var

        crit = critical_weight_var(act, bv)
        wv = _finite_or_nan(crit.weight_var)
        if not math.isfinite(wv) or wv <= 0:
            raise InvalidArgumentError("weight_var", f"no critical weight_var for bias_var = {bv:g}; give --weight-var")
        notes.append(f"weight_var = {wv:.6g} (on the critical line chi_1 = 1 for this bias_var)")
        if getattr(crit, "stable", None) is False:
            notes.append(f"warning: {crit.message}")
    else:
        wv = check_variance("weight_var", weight_var, positive=True)
    return wv, bv, ("; ".join(notes) if notes else None)


def _act_name(act: Any) -> str:
    return act if isinstance(act, str) else str(act)


def _fc_point(act: Any, weight_var: float, bias_var: float):
    from .core import point

    return point(act, weight_var, bias_var)


def _finite_or_nan(x: Any) -> float:
    try:
        f = float(x)
    except (TypeError, ValueError):
        return math.nan
    return f


# --------------------------------------------------------------------------- per-mode depth scales


def _mode_xi(chi: float, abs_lam: np.ndarray, critical: bool = False) -> np.ndarray:
    """``ξ_m = −1/ln|χ λ_m|`` with the conventions of :func:`meanfield.core.depth_scale`.

    0 where ``χ λ_m = 0``; ``inf`` where ``|χ λ_m| >= 1`` (the mode does not decay);
    NaN (``null``) for every mode when ``χ`` is unknown. ``critical`` (the core's
    ``|χ₁ − 1| <= CRITICAL_TOL``) sets ``ln χ = 0``; ``|λ_m|`` within ``8 eps`` of 1
    counts as 1, so that mode 0 and every mode of a delta profile reproduce the
    fully-connected ξ exactly.
    """
    if chi is None or not math.isfinite(chi):
        return np.full(abs_lam.shape, math.nan)
    if chi <= 0.0:
        return np.zeros(abs_lam.shape)
    log_chi = 0.0 if critical else math.log(chi)
    with np.errstate(divide="ignore"):
        log_lam = np.log(abs_lam)
    log_lam = np.where(np.abs(abs_lam - 1.0) <= 8 * _EPS, 0.0, log_lam)
    total = log_chi + log_lam
    with np.errstate(divide="ignore", invalid="ignore"):
        xi = np.where(total >= 0.0, math.inf, -1.0 / np.where(total >= 0.0, -1.0, total))
    return np.where(abs_lam == 0.0, 0.0, xi)


@dataclass(frozen=True)
class ModeDepthScales:
    """Per-Fourier-mode depth scales of a CNN (the result of :func:`mode_depth_scales`).

    Attributes
    ----------
    act : str
        Activation.
    weight_var, bias_var : float
        σ_w², σ_b².
    kernel : tuple of int
        Kernel size per spatial dimension.
    dims : int
        1 or 2.
    spatial : int
        Positions ``n`` per dimension.
    variance : str
        Profile kind (``"uniform"``, ``"delta"``, ``"binomial"``, ``"gaussian:<w>"``, ``"custom"``).
    taps : numpy.ndarray
        The (normalised) variance profile.
    chi_q, chi_c, xi_q, xi_c : float
        The fully-connected quantities at this point (mode 0).
    phase : str
        ``"ordered"``, ``"chaotic"``, ``"critical"`` or ``"unbounded"`` (no finite q*).
    converged : bool
        Whether the fixed point was found; if not, the depth scales are NaN (``null`` in JSON).
    modes : numpy.ndarray
        int array ``(M, dims)`` of mode indices, ``m = 0..n−1`` (2-D: all ``n²`` pairs, row-major).
    lambdas : numpy.ndarray
        complex ``λ_m``, shape ``(M,)``.
    xi_q_modes, xi_c_modes : numpy.ndarray
        ``ξ_{q,m}``, ``ξ_{c,m}`` (0 where ``λ_m = 0``; ``inf`` where ``|χ λ_m| >= 1``).
    """

    act: str
    weight_var: float
    bias_var: float
    kernel: tuple
    dims: int
    spatial: int
    variance: str
    taps: np.ndarray = field(repr=False)
    chi_q: float
    chi_c: float
    xi_q: float
    xi_c: float
    phase: str
    converged: bool
    modes: np.ndarray = field(repr=False)
    lambdas: np.ndarray = field(repr=False)
    xi_q_modes: np.ndarray = field(repr=False)
    xi_c_modes: np.ndarray = field(repr=False)

    @property
    def frequencies(self) -> np.ndarray:
        """Signed frequencies ``(M, dims)`` of the modes, in ``[-1/2, 1/2)`` cycles per position."""
        f = np.fft.fftfreq(self.spatial)
        return f[self.modes]

    @property
    def abs_frequency(self) -> np.ndarray:
        """``|f|`` (Euclidean norm over dimensions) of each mode, shape ``(M,)``."""
        return np.sqrt(np.sum(self.frequencies ** 2, axis=1))

    def sorted_order(self) -> np.ndarray:
        """Indices of the modes sorted by ``|f|`` (ties: by mode index)."""
        af = np.round(self.abs_frequency, 12)
        keys = [self.modes[:, d] for d in range(self.dims - 1, -1, -1)] + [af]
        return np.lexsort(keys)

    def to_dict(self) -> dict:
        """The JSON record of ``meanfield depth-scales --json`` (non-finite values stay floats; the
        CLI's JSON writer turns them into ``null``)."""
        k = self.kernel[0] if len(set(self.kernel)) == 1 else list(self.kernel)
        modes = []
        for i in range(self.modes.shape[0]):
            lam = self.lambdas[i]
            modes.append({
                "mode": [int(x) for x in self.modes[i]],
                "lambda_re": float(lam.real),
                "lambda_im": float(lam.imag),
                "abs_lambda": float(abs(lam)),
                "xi_q": float(self.xi_q_modes[i]),
                "xi_c": float(self.xi_c_modes[i]),
            })
        return {
            "act": self.act, "weight_var": self.weight_var, "bias_var": self.bias_var,
            "kernel": k, "dims": self.dims, "spatial": self.spatial, "variance": self.variance,
            "taps": self.taps.tolist(), "chi_q": self.chi_q, "chi_c": self.chi_c,
            "xi_q": self.xi_q, "xi_c": self.xi_c, "phase": self.phase, "converged": self.converged,
            "modes": modes,
        }

    def grid(self, name: str = "xi_c") -> np.ndarray:
        """A per-mode quantity (``"xi_q"``, ``"xi_c"``, ``"lambda"``, ``"abs_lambda"``) as an
        ``(n,)`` or ``(n, n)`` array indexed by mode."""
        vals = {"xi_q": self.xi_q_modes, "xi_c": self.xi_c_modes, "lambda": self.lambdas,
                "abs_lambda": np.abs(self.lambdas)}
        if name not in vals:
            raise InvalidArgumentError("name", f"must be one of {', '.join(vals)}, got {name!r}")
        return vals[name].reshape((self.spatial,) * self.dims)


def mode_depth_scales(act: Any = "tanh", weight_var: Any = None, bias_var: Any = None, kernel: int | None = None,
                      dims: int | None = None, spatial: int = 32, variance: str | None = None, taps: Any = None,
                      *, profile: Any = None) -> ModeDepthScales:
    """Per-Fourier-mode depth scales ``ξ_{q,m} = −1/ln|χ_q λ_m|``, ``ξ_{c,m} = −1/ln|χ_c λ_m|``.

    Linearised around the translation-invariant fixed point ``Σ*``, the CNN map
    decouples into Fourier modes ``m`` of each diagonal of ``Σ``; mode ``m`` of the
    variances decays by ``χ_q λ_m`` per layer and of the correlations by
    ``χ_c λ_m``. Mode 0 (``λ_0 = 1``) carries the fully-connected depth scales.

    Parameters
    ----------
    act : str or Activation, default "tanh"
        The nonlinearity.
    weight_var, bias_var : float, optional
        σ_w², σ_b²; missing values are filled by :func:`resolve_variances`
        (σ_b² = 0.05 and σ_w² on the critical line).
    kernel : int, optional
        Kernel size per dimension (default 3; inferred from custom taps).
    dims : {1, 2}, optional
        Spatial dimensions (default 1 or the dimensionality of ``taps``/``profile``).
    spatial : int, default 32
        Positions ``n >= 1`` per dimension (periodic).
    variance : str, optional
        Profile kind (default ``"uniform"``, or ``"custom"`` when ``taps`` is given).
    taps : array_like or str, optional
        Custom profile taps.
    profile : array_like, optional
        A ready profile array (overrides ``variance``/``kernel``/``taps``).

    Returns
    -------
    ModeDepthScales
        Modes in natural order (``m = 0..n−1``; 2-D row-major over ``(m1, m2)``).
        ``ξ`` is ``inf`` where ``|χ λ_m| >= 1`` (e.g. every mode of a delta profile
        on the critical line), 0 where ``λ_m = 0``, and NaN for every mode when the
        fully-connected fixed point could not be found (``converged`` False or
        phase ``"unbounded"``).

    Examples
    --------
    >>> r = mode_depth_scales("tanh", 1.5, 0.05, kernel=3, spatial=8, variance="delta")  # doctest: +SKIP
    >>> bool(np.all(r.xi_c_modes == r.xi_c))                                             # doctest: +SKIP
    True

    References
    ----------
    Xiao et al. 2018, arXiv:1806.05393, §3; Schoenholz et al. 2017, arXiv:1611.01232.
    """
    v, kind = _resolve_profile(profile, variance, kernel, dims, taps)
    n = check_int("spatial", spatial, lo=1)
    d = v.ndim
    wv, bv, _ = resolve_variances(act, weight_var, bias_var)
    pt = _fc_point(act, wv, bv)
    lam = fourier_eigenvalues(v, n)
    if d == 1:
        modes = np.arange(n)[:, None]
    else:
        modes = np.stack(np.meshgrid(np.arange(n), np.arange(n), indexing="ij"), axis=-1).reshape(-1, 2)
    lam = lam.reshape(-1)
    xi_q = _finite_or_nan(pt.xi_q)
    xi_c = _finite_or_nan(pt.xi_c)
    chi_q = _finite_or_nan(pt.chi_q)
    chi_c = _finite_or_nan(pt.chi_c)
    converged = bool(pt.converged) and pt.phase != "unbounded"
    if not converged:
        xi_q = xi_c = chi_q = chi_c = math.nan
    abs_lam = np.abs(lam)
    xq = _mode_xi(chi_q, abs_lam)
    xc = _mode_xi(chi_c, abs_lam, critical=pt.phase == "critical")
    xq[0] = xi_q            # mode 0 is the fully-connected network (λ_0 = 1), bit for bit
    xc[0] = xi_c
    return ModeDepthScales(
        act=_act_name(act), weight_var=wv, bias_var=bv, kernel=tuple(int(s) for s in v.shape), dims=d,
        spatial=n, variance=kind, taps=v, chi_q=chi_q, chi_c=chi_c,
        xi_q=xi_q, xi_c=xi_c, phase=str(pt.phase), converged=converged,
        modes=modes, lambdas=lam, xi_q_modes=xq, xi_c_modes=xc,
    )


# --------------------------------------------------------------------------- the exact map


def _shift_tables(v: np.ndarray, spatial: int) -> tuple[np.ndarray, np.ndarray]:
    """Permutation tables of the taps with non-zero variance: ``perm[t, α]`` = α shifted by β_t."""
    n = spatial
    if v.ndim == 1:
        beta = tap_offsets(v.shape[0])
        pos = np.arange(n)
        idx = np.nonzero(v)[0]
        perm = np.mod(pos[None, :] + beta[idx][:, None], n)
        w = v[idx]
    else:
        b1 = tap_offsets(v.shape[0])
        b2 = tap_offsets(v.shape[1])
        i1, i2 = np.nonzero(v)
        ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
        ii = ii.reshape(-1)
        jj = jj.reshape(-1)
        perm = np.mod(ii[None, :] + b1[i1][:, None], n) * n + np.mod(jj[None, :] + b2[i2][:, None], n)
        w = v[i1, i2]
    return np.ascontiguousarray(perm, dtype=np.int64), np.ascontiguousarray(w, dtype=np.float64)


def _displacement_table(spatial: int, dims: int) -> np.ndarray:
    """``plus[α, d]`` = flat index of position α + displacement d (periodic)."""
    n = spatial
    if dims == 1:
        a = np.arange(n)
        return np.mod(a[:, None] + a[None, :], n)
    ii, jj = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    ii = ii.reshape(-1)
    jj = jj.reshape(-1)
    return np.mod(ii[:, None] + ii[None, :], n) * n + np.mod(jj[:, None] + jj[None, :], n)


class _Engine:
    """The exact map for one activation, point and profile (shared by the public functions)."""

    def __init__(self, act: Any, weight_var: float, bias_var: float, v: np.ndarray, spatial: int,
                 parallel: bool = True):
        from .activations import get_activation

        self.activation = get_activation(act)
        self.spec = self.activation.spec
        self.wv = float(weight_var)
        self.bv = float(bias_var)
        self.v = v
        self.dims = v.ndim
        self.n = spatial
        self.N = spatial ** v.ndim
        self.perm, self.w = _shift_tables(v, spatial)
        self.parallel = parallel

    # 𝒞 on triples, with de-duplication (and an optional memo across calls)
    def pair_map(self, s11: np.ndarray, s22: np.ndarray, s12: np.ndarray, memo: dict | None = None) -> np.ndarray:
        from ._jit import cnn as _k

        trip = np.stack([s11, s22, s12], axis=1)
        uniq, inv = np.unique(trip, axis=0, return_inverse=True)
        inv = inv.reshape(-1)
        vals = np.empty(uniq.shape[0])
        if memo is not None:
            todo = [i for i in range(uniq.shape[0]) if tuple(uniq[i]) not in memo]
            for i in range(uniq.shape[0]):
                key = tuple(uniq[i])
                if key in memo:
                    vals[i] = memo[key]
            sel = np.array(todo, dtype=np.int64)
        else:
            sel = np.arange(uniq.shape[0])
        if sel.size:
            u = np.ascontiguousarray(uniq[sel])
            out = np.empty(sel.size)
            fn = _k.pair_map_parallel if (self.parallel and sel.size > 1) else _k.pair_map_serial
            fn(self.spec, np.ascontiguousarray(u[:, 0]), np.ascontiguousarray(u[:, 1]),
               np.ascontiguousarray(u[:, 2]), self.wv, self.bv, out)
            vals[sel] = out
            if memo is not None:
                for j, i in enumerate(sel):
                    memo[tuple(uniq[i])] = out[j]
        return vals[inv]

    def entry_map(self, S: np.ndarray, symmetric: bool = True, memo: dict | None = None) -> np.ndarray:
        """``𝒞(S)``; with ``symmetric`` only the upper triangle is evaluated and mirrored."""
        d = np.diagonal(S)
        M = S.shape[0]
        if symmetric:
            iu, ju = np.triu_indices(M)
            vals = self.pair_map(d[iu], d[ju], S[iu, ju], memo)
            out = np.empty_like(S)
            out[iu, ju] = vals
            out[ju, iu] = vals
            return out
        ii, jj = np.indices((M, M))
        vals = self.pair_map(d[ii].ravel(), d[jj].ravel(), S.ravel(), memo)
        return vals.reshape(M, M)

    def shift(self, X: np.ndarray) -> np.ndarray:
        """``𝒜 ⋆ X`` for a ``(P·N, P·N)`` matrix."""
        from ._jit import cnn as _k

        out = np.empty_like(X)
        fn = _k.shift_average_parallel if self.parallel else _k.shift_average_serial
        fn(np.ascontiguousarray(X), self.perm, self.w, self.N, out)
        return out

    def step(self, S: np.ndarray, symmetric: bool = True, memo: dict | None = None) -> np.ndarray:
        return self.shift(self.entry_map(S, symmetric, memo))


def _check_point_finite(pt: Any) -> tuple[float, float]:
    q = _finite_or_nan(pt.q_star)
    c = _finite_or_nan(pt.c_star)
    if not (math.isfinite(q) and math.isfinite(c)) or not bool(getattr(pt, "converged", True)) \
            or getattr(pt, "phase", "") == "unbounded":
        raise InvalidArgumentError(
            "weight_var", f"no finite fixed point q* at this (weight_var, bias_var) (phase {getattr(pt, 'phase', '?')}): "
                          "the variance grows without bound or the iteration did not converge")
    return q, c


def fixed_point_covariance(act: Any, weight_var: Any, bias_var: Any, spatial: int, dims: int = 1,
                           inputs: int = 1) -> np.ndarray:
    """The translation-invariant fixed point ``Σ* = q*[(1−c*)I + c* 11ᵀ]``.

    Parameters
    ----------
    act : str or Activation
        The nonlinearity.
    weight_var, bias_var : float
        σ_w², σ_b².
    spatial : int
        Positions ``n`` per dimension.
    dims : {1, 2}, default 1
        Spatial dimensions (``N = n^dims`` positions, flattened row-major).
    inputs : {1, 2}, default 1
        One input, or the joint covariance of two inputs (every off-diagonal entry,
        across inputs too, is ``q* c*``).

    Returns
    -------
    numpy.ndarray
        ``(inputs·N, inputs·N)`` float64, with ``q*, c*`` of the fully-connected network.

    Raises
    ------
    InvalidArgumentError
        No finite fixed point (e.g. ReLU with σ_w² ≥ 2), or bad sizes.

    Examples
    --------
    >>> S = fixed_point_covariance("erf", 3.0, 0.1, spatial=4)   # doctest: +SKIP
    >>> S.shape
    (4, 4)

    References
    ----------
    Xiao et al. 2018, arXiv:1806.05393, §3.
    """
    wv = check_variance("weight_var", weight_var)
    bv = check_variance("bias_var", bias_var)
    n = check_int("spatial", spatial, lo=1)
    d = _check_dims(dims)
    p = check_int("inputs", inputs, lo=1, hi=2)
    q, c = _check_point_finite(_fc_point(act, wv, bv))
    M = p * n ** d
    S = np.full((M, M), q * c)
    np.fill_diagonal(S, q)
    return S


def covariance_map(act: Any, weight_var: Any, bias_var: Any, profile: Any, cov: Any, inputs: int = 1,
                   *, symmetric: bool = True, parallel: bool = True) -> np.ndarray:
    """One layer of the exact recursion, ``𝒜 ⋆ 𝒞(Σ)``.

    Parameters
    ----------
    act : str or Activation
        The nonlinearity.
    weight_var, bias_var : float
        σ_w², σ_b².
    profile : array_like
        Variance profile ``(k,)`` or ``(k, k)``.
    cov : array_like
        ``(P·N, P·N)`` covariance (``N = n^dims`` flattened row-major positions,
        ``P = inputs``).
    inputs : {1, 2}, default 1
        Number of inputs in ``cov``.
    symmetric : bool, default True
        Evaluate the upper triangle and mirror it. With False every entry
        ``(i, j)`` is mapped from its own triple ``(S_ii, S_jj, S_ij)`` — the map on
        general (not necessarily symmetric) matrices, as used by
        :func:`linearised_map_jacobian`.
    parallel : bool, default True
        Use the parallel kernels.

    Returns
    -------
    numpy.ndarray
        The next layer's covariance.

    Examples
    --------
    >>> S = covariance_map("erf", 2.0, 0.1, [0.25, 0.5, 0.25], np.eye(6))   # doctest: +SKIP

    References
    ----------
    Xiao et al. 2018, arXiv:1806.05393, eq. (2.4)–(2.6).
    """
    wv = check_variance("weight_var", weight_var)
    bv = check_variance("bias_var", bias_var)
    v = _as_profile(profile)
    p = check_int("inputs", inputs, lo=1, hi=2)
    S = np.array(cov, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] != S.shape[1] or S.shape[0] % p:
        raise InvalidArgumentError("cov", f"must be a square (inputs*N, inputs*N) matrix, got shape {S.shape}")
    N = S.shape[0] // p
    n = round(N ** (1.0 / v.ndim))
    if n ** v.ndim != N:
        raise InvalidArgumentError("cov", f"{N} positions per input is not an n^{v.ndim} grid for a {v.ndim}-D profile")
    if not np.all(np.isfinite(S)):
        raise InvalidArgumentError("cov", "must be finite")
    eng = _Engine(act, wv, bv, v, n, parallel)
    return eng.step(S, symmetric=symmetric)


def linearised_map_jacobian(act: Any, weight_var: Any, bias_var: Any, profile: Any, spatial: int, *,
                            step: float = 1e-5, at: Any = None) -> np.ndarray:
    """Finite-difference Jacobian of the exact map ``Σ ↦ 𝒜 ⋆ 𝒞(Σ)`` at ``Σ*``.

    The map is taken on general ``N × N`` matrices (every entry its own variable,
    row-major), so the Jacobian is ``N² × N²``. Its eigenvalues are ``χ_q λ_m``
    (once each, the variance modes) and ``χ_c λ_m`` (``N − 1`` times each, the
    correlation modes on the ``N − 1`` off-diagonals). Central differences with
    step ``step·q*``; where ``c* = 1`` (ordered phase and critical line) the
    fixed point sits on the boundary ``|Σ_{αα'}| = √(Σ_αα Σ_α'α')`` and
    second-order one-sided differences are used (backward for off-diagonal,
    forward for diagonal entries).

    Parameters
    ----------
    act : str or Activation
        The nonlinearity.
    weight_var, bias_var : float
        σ_w², σ_b² (must have a finite fixed point).
    profile : array_like
        Variance profile, 1-D or 2-D.
    spatial : int
        ``n``; ``N = n^dims <= 64``.
    step : float, default 1e-5
        Relative finite-difference step.
    at : array_like, optional
        Evaluate at this ``(N, N)`` covariance instead of ``Σ*`` (central differences).

    Returns
    -------
    numpy.ndarray
        ``(N², N²)`` float64.

    Raises
    ------
    InvalidArgumentError
        ``N > 64`` (name ``spatial``), no finite fixed point, or bad arguments.

    Examples
    --------
    >>> J = linearised_map_jacobian("tanh", 2.5, 0.05, [1/3, 1/3, 1/3], 6)   # doctest: +SKIP
    >>> J.shape
    (36, 36)

    References
    ----------
    Xiao et al. 2018, arXiv:1806.05393, §3 and appendix (linearisation around Σ*).
    """
    wv = check_variance("weight_var", weight_var)
    bv = check_variance("bias_var", bias_var)
    v = _as_profile(profile)
    n = check_int("spatial", spatial, lo=1)
    h_rel = check_real("step", step, lo=0.0, lo_open=True, hi=1e-2)
    N = n ** v.ndim
    if N > MAX_JACOBIAN_POSITIONS:
        raise InvalidArgumentError(
            "spatial", f"the Jacobian has (n^dims)^2 = {N * N} variables; keep n^dims <= {MAX_JACOBIAN_POSITIONS}")
    pt = _fc_point(act, wv, bv)
    q, c = _check_point_finite(pt)
    if at is None:
        S0 = np.full((N, N), q * c)
        np.fill_diagonal(S0, q)
        boundary = c >= 1.0 - 1e-12
        if boundary:
            S0 = np.full((N, N), q)
    else:
        S0 = np.array(at, dtype=np.float64)
        if S0.shape != (N, N) or not np.all(np.isfinite(S0)):
            raise InvalidArgumentError("at", f"must be a finite ({N}, {N}) matrix")
        boundary = False
    eng = _Engine(act, wv, bv, v, n, parallel=False)
    memo: dict = {}
    h = h_rel * max(float(np.max(np.abs(np.diagonal(S0)))), 1e-300)
    J = np.empty((N * N, N * N))
    F0 = eng.step(S0, symmetric=False, memo=memo).ravel() if boundary else None
    for col in range(N * N):
        i, j = divmod(col, N)
        E = np.zeros((N, N))
        E[i, j] = 1.0
        if not boundary:
            fp = eng.step(S0 + h * E, symmetric=False, memo=memo).ravel()
            fm = eng.step(S0 - h * E, symmetric=False, memo=memo).ravel()
            J[:, col] = (fp - fm) / (2.0 * h)
        else:
            sgn = 1.0 if i == j else -1.0
            f1 = eng.step(S0 + sgn * h * E, symmetric=False, memo=memo).ravel()
            f2 = eng.step(S0 + 2.0 * sgn * h * E, symmetric=False, memo=memo).ravel()
            J[:, col] = sgn * (-3.0 * F0 + 4.0 * f1 - f2) / (2.0 * h)
    return J


# --------------------------------------------------------------------------- propagation


def _check_cov_psd(S: np.ndarray, name: str) -> np.ndarray:
    if not np.all(np.isfinite(S)):
        raise InvalidArgumentError(name, "must be finite")
    scale = float(np.max(np.abs(S))) if S.size else 0.0
    if not np.allclose(S, S.T, rtol=0.0, atol=1e-12 * max(scale, 1e-300)):
        raise InvalidArgumentError(name, "must be symmetric")
    S = 0.5 * (S + S.T)
    if np.any(np.diagonal(S) < 0):
        raise InvalidArgumentError(name, "has a negative variance on its diagonal")
    w = np.linalg.eigvalsh(S)
    if w[0] < -1e-10 * max(scale, 1e-300):
        raise InvalidArgumentError(name, f"is not positive semi-definite (smallest eigenvalue {w[0]:.3g})")
    return S


def input_covariance(spatial: int, dims: int = 1, *, input_var: Any = 1.0, input_corr: Any = 0.0, pair: bool = False,
                     input_cov: Any = None, input_array: Any = None, weight_var: Any = None, bias_var: Any = None,
                     profile: Any = None) -> tuple[np.ndarray, int, int]:
    """The layer-0 covariance of :func:`propagate`.

    Parameters
    ----------
    spatial : int or None
        ``n``; inferred from ``input_cov``/``input_array`` when None.
    dims : {1, 2}
        Spatial dimensions.
    input_var, input_corr : float
        Without ``input_cov``/``input_array``: one input has
        ``Σ⁰ = q₀[(1−c₀)I + c₀11ᵀ]`` (correlation ``c₀`` between distinct positions;
        ``c₀ >= −1/(N−1)``); a pair (``pair=True``) has variance ``q₀`` everywhere,
        independent positions, and correlation ``c₀`` between the two inputs at the
        same position.
    pair : bool
        Two inputs.
    input_cov : array_like, optional
        A ``(P·N, P·N)`` covariance (symmetric positive semi-definite).
    input_array : array_like, optional
        Signals: one input ``(n,)``/``(c, n)`` (1-D) or ``(n, n)``/``(c, n, n)``
        (2-D), a pair with a leading axis of 2. Layer 0 is then the pre-activation
        covariance of a first convolution applied to it,
        ``Σ⁰ = 𝒜 ⋆ (σ_w² x xᵀ / c) + σ_b²`` (needs ``weight_var``, ``bias_var``, ``profile``).
    weight_var, bias_var, profile
        Used with ``input_array`` only.

    Returns
    -------
    (cov, spatial, inputs)
    """
    d = _check_dims(dims)
    P = 2 if pair else 1
    given = sum(x is not None for x in (input_cov, input_array))
    if given > 1:
        raise InvalidArgumentError("input_cov", "give either input_cov or input_array, not both")
    if input_array is not None:
        x = np.array(input_array, dtype=np.float64)
        if pair:
            if x.ndim < 1 or x.shape[0] != 2:
                raise InvalidArgumentError("input_array", f"a pair needs a leading axis of length 2, got shape {x.shape}")
            x = x[0:2]
            body = x.shape[1:]
        else:
            body = x.shape
            x = x[None]
        if len(body) == d:
            x = x[:, None]
        elif len(body) != d + 1:
            raise InvalidArgumentError(
                "input_array", f"must have shape ({', '.join(['n'] * d)}) or (c, {', '.join(['n'] * d)}) per input "
                               f"(channels optional) for dims={d}, got {body}")
        sp = x.shape[2:]
        if len(set(sp)) != 1:
            raise InvalidArgumentError("input_array", f"spatial axes must be equal (n x n), got {sp}")
        n = sp[0]
        if spatial is not None and check_int("spatial", spatial, lo=1) != n:
            raise InvalidArgumentError("spatial", f"is {spatial} but the input array has {n} positions per axis")
        if not np.all(np.isfinite(x)):
            raise InvalidArgumentError("input_array", "must be finite")
        c_in = x.shape[1]
        X = x.reshape(P, c_in, -1).transpose(0, 2, 1).reshape(P * n ** d, c_in)
        G = X @ X.T / c_in
        wv = check_variance("weight_var", weight_var)
        bv = check_variance("bias_var", bias_var)
        v = _as_profile(profile)
        perm, w = _shift_tables(v, n)
        from ._jit import cnn as _k

        out = np.empty_like(G)
        _k.shift_average_serial(np.ascontiguousarray(wv * G), perm, w, n ** d, out)
        S = out + bv
        return 0.5 * (S + S.T), n, P
    if input_cov is not None:
        S = np.array(input_cov, dtype=np.float64)
        if S.ndim != 2 or S.shape[0] != S.shape[1]:
            raise InvalidArgumentError("input_cov", f"must be a square matrix, got shape {S.shape}")
        if S.shape[0] % P:
            raise InvalidArgumentError("input_cov", f"a pair needs an even size (2N, 2N), got {S.shape}")
        N = S.shape[0] // P
        n = round(N ** (1.0 / d))
        if n ** d != N or N == 0:
            raise InvalidArgumentError("input_cov", f"{N} positions per input is not an n^{d} grid (dims={d})")
        if spatial is not None and check_int("spatial", spatial, lo=1) != n:
            raise InvalidArgumentError("spatial", f"is {spatial} but input_cov has {n} positions per axis")
        return _check_cov_psd(S, "input_cov"), n, P
    n = check_int("spatial", 16 if spatial is None else spatial, lo=1)
    N = n ** d
    q0 = check_variance("input_var", input_var)
    lo = -1.0 if (pair or N == 1) else -1.0 / (N - 1)
    c0 = check_real("input_corr", input_corr, lo=lo, hi=1.0)
    if pair:
        S = np.zeros((2 * N, 2 * N))
        S[np.arange(2 * N), np.arange(2 * N)] = q0
        S[np.arange(N), N + np.arange(N)] = c0 * q0
        S[N + np.arange(N), np.arange(N)] = c0 * q0
    else:
        S = np.full((N, N), c0 * q0)
        np.fill_diagonal(S, q0)
    return S, n, P


def _uniform_input_profile(n: int, d: int, P: int, input_var: Any, input_corr: Any) -> np.ndarray:
    """Displacement profile ``G[a, b, d]`` of the default (translation-invariant) input."""
    N = n ** d
    q0 = check_variance("input_var", input_var)
    lo = -1.0 if (P == 2 or N == 1) else -1.0 / (N - 1)
    c0 = check_real("input_corr", input_corr, lo=lo, hi=1.0)
    G = np.zeros((P, P, N))
    if P == 1:
        G[0, 0, :] = c0 * q0
        G[0, 0, 0] = q0
    else:
        G[0, 0, 0] = G[1, 1, 0] = q0
        G[0, 1, 0] = G[1, 0, 0] = c0 * q0
    return G


def _diagonals(S: np.ndarray, P: int, N: int, plus: np.ndarray) -> np.ndarray:
    """``D[a, b, α, d] = Σ^{ab}_{α, α⊕d}`` (shape ``(P, P, N, N)``)."""
    S4 = S.reshape(P, N, P, N)
    A = np.arange(N)[:, None]
    D = S4[:, A, :, plus]              # (N, N, P, P): advanced indices go first
    return np.moveaxis(D, (2, 3), (0, 1))


def _is_translation_invariant(D: np.ndarray) -> bool:
    scale = max(float(np.max(np.abs(D))), 1e-300)
    return bool(np.max(np.abs(D - D[:, :, :1, :])) <= 4 * _EPS * scale)


def _circulant(G: np.ndarray, P: int, N: int, plus: np.ndarray) -> np.ndarray:
    """Full covariance from the displacement profile ``G[a, b, d]`` (translation-invariant case)."""
    S = np.empty((P, N, P, N))
    A = np.arange(N)[:, None]
    blk = np.empty((N, N))
    for a in range(P):
        for b in range(P):
            blk[A, plus] = G[a, b][None, :]
            S[a, :, b, :] = blk
    return S.reshape(P * N, P * N)


def _summaries_full(D: np.ndarray, n: int, dims: int, plus: np.ndarray) -> dict:
    """Per-layer summaries from the diagonals ``D[a, b, α, d]`` of a general covariance."""
    P = D.shape[0]
    N = D.shape[2]
    var = np.stack([D[a, a, :, 0] for a in range(P)])                      # (P, N): Σ^{aa}_{αα}
    with np.errstate(divide="ignore", invalid="ignore"):
        sd = np.sqrt(var)
        R = D / (sd[:, None, :, None] * sd[None, :, plus])                # (P, P, N, N)
    out = {"q": var.mean(axis=1), "cov_profile": D.mean(axis=2), "spatial_corr": R.mean(axis=2)}
    out["c"] = float(R[0, 0, :, 1:].mean()) if P == 1 else float(R[0, 1, :, 0].mean())
    # Fourier modes of each diagonal along α (normalised DFT: mode 0 = mean along the diagonal)
    F = np.fft.fftn(D.reshape((P, P) + (n,) * dims + (N,)), axes=tuple(range(2, 2 + dims))) / N
    A = np.abs(F).reshape(P, P, N, N)
    scale = float(A.max()) or 1.0            # RMS without overflow for huge variances
    A2 = (A / scale) ** 2
    out["var_mode_amplitude"] = scale * np.sqrt(np.mean([A2[a, a, :, 0] for a in range(P)], axis=0))
    mask = np.ones((P, P, N), dtype=bool)
    for a in range(P):
        mask[a, a, 0] = False
    out["corr_mode_amplitude"] = scale * np.sqrt(np.einsum("abmd,abd->m", A2, mask) / mask.sum())
    return out


def _summaries_invariant(G: np.ndarray) -> dict:
    """The same summaries for a translation-invariant covariance with profile ``G[a, b, d]`` (O(N))."""
    P = G.shape[0]
    N = G.shape[2]
    q = np.array([G[a, a, 0] for a in range(P)])
    with np.errstate(divide="ignore", invalid="ignore"):
        R = G / (np.sqrt(q)[:, None, None] * np.sqrt(q)[None, :, None])
    out = {"q": q, "cov_profile": G.copy(), "spatial_corr": R}
    out["c"] = float(R[0, 0, 1:].mean()) if P == 1 else float(R[0, 1, 0])
    scale = float(np.max(np.abs(G))) or 1.0   # RMS without overflow for huge variances
    vm = np.zeros(N)
    vm[0] = scale * math.sqrt(float(np.mean((q / scale) ** 2)))
    mask = np.ones((P, P, N), dtype=bool)
    for a in range(P):
        mask[a, a, 0] = False
    cm = np.zeros(N)
    cm[0] = scale * math.sqrt(float(np.sum((G[mask] / scale) ** 2)) / mask.sum())
    out["var_mode_amplitude"] = vm
    out["corr_mode_amplitude"] = cm
    return out


def _dist_fixed_point(q_star: float, c_star: float, G_or_D: np.ndarray, invariant: bool) -> float:
    """``max |Σ − Σ*| / q*`` from the profile ``G`` (invariant) or the diagonals ``D``."""
    P = G_or_D.shape[0]
    X = G_or_D[:, :, None, :] if invariant else G_or_D
    off = np.abs(X - q_star * c_star)
    for a in range(P):
        off[a, a, :, 0] = np.abs(X[a, a, :, 0] - q_star)
    return float(off.max()) / q_star if q_star > 0 else math.nan


def _memory_message(n: int, d: int, P: int, need: int, limit: int, depth: int | None = None) -> str:
    grid = f"{n}" if d == 1 else f"{n}x{n}"
    what = "the full covariance recursion" + (f" storing {depth + 1} layers" if depth is not None else "")
    return (f"{n} on a {grid} grid gives ({P * n ** d})^2 covariance entries per layer: {what} needs "
            f"{need / 2 ** 20:.0f} MiB, over the {limit / 2 ** 20:.0f} MiB limit (memory is O(n^{2 * d})); "
            f"reduce --spatial or --depth, keep summaries only (--summary-only), raise --max-memory, "
            f"or use a translation-invariant input")


def propagate(act: Any = "tanh", weight_var: Any = None, bias_var: Any = None, *, kernel: int | None = None,
              dims: int | None = None, spatial: int | None = None, variance: str | None = None, taps: Any = None,
              profile: Any = None, depth: int = 20, input_var: Any = 1.0, input_corr: Any = 0.0, pair: bool = False,
              input_cov: Any = None, input_array: Any = None, method: str = "auto", keep_covariance: bool = True,
              max_bytes: int = MAX_BYTES, parallel: bool = True):
    """Layer-by-layer infinite-width recursion ``Σ^{l+1} = 𝒜 ⋆ 𝒞(Σ^l)`` of the spatial covariance.

    Exact up to the quadrature accuracy of the core's bivariate Gaussian
    expectations (~1e-13 relative): this is the curve finite-width CNNs are judged
    against.

    Parameters
    ----------
    act : str or Activation, default "tanh"
        The nonlinearity.
    weight_var, bias_var : float, optional
        σ_w², σ_b² (defaults as in :func:`resolve_variances`: σ_b² = 0.05 and σ_w²
        on the critical line).
    kernel, dims, variance, taps, profile
        The variance profile, as in :func:`mode_depth_scales`.
    spatial : int, optional
        Positions ``n`` per dimension (default 16; inferred from ``input_cov`` /
        ``input_array``).
    depth : int, default 20
        Number of layers ``L``; the result has layers ``0..L``.
    input_var, input_corr, pair, input_cov, input_array
        The layer-0 covariance, see :func:`input_covariance`. The default
        (``input_var``/``input_corr``) input is translation invariant.
    method : {"auto", "full", "translation-invariant"}
        ``"full"`` runs the O(N²)-memory recursion; ``"translation-invariant"``
        propagates only the displacement profile ``Σ^{ab}_{0,d}`` (valid when Σ⁰ is
        translation invariant; 𝒜 is then the identity and every displacement follows
        the fully-connected maps); ``"auto"`` picks the shortcut when Σ⁰ is
        translation invariant to rounding.
    keep_covariance : bool, default True
        Store the full covariance of every layer as ``covariance``. With the shortcut
        it is circulant (``cov_profile`` determines it) and is stored only when it
        fits in ``max_bytes``; attribute ``covariance_stored`` says what was done.
    max_bytes : int, default 1 GiB
        Memory limit of the full recursion (working matrices plus stored layers);
        exceeding it is an error naming ``spatial``.
    parallel : bool, default True
        Use the parallel Numba kernels.

    Returns
    -------
    xarray.Dataset
        Dimensions ``layer`` (0..L), ``input``/``input2`` (1 or 2), positions
        ``x`` (``y``) and ``x2`` (``y2``), displacements ``dx`` (``dy``) and modes
        ``m`` (``m2``). Variables:

        - ``covariance (layer, input, x[, y], input2, x2[, y2])`` — Σ^l (if stored);
        - ``cov_profile (layer, input, input2, dx[, dy])`` — Σ^{ab}_{α,α+d} averaged over α;
        - ``spatial_corr`` — the correlations Σ_{α,α+d}/√(Σ_αα Σ_{α+d,α+d}), likewise averaged;
        - ``q (layer, input)`` — mean variance; ``c (layer)`` — mean correlation between
          distinct positions (one input) or between the two inputs at the same
          position (pair);
        - ``var_mode_amplitude``, ``corr_mode_amplitude (layer, m[, m2])`` — RMS size of
          Fourier mode ``m`` (along α) of the variances and of the other diagonals.
          Modes ``m ≠ 0`` measure the departure from translation invariance and decay
          per layer by ``|χ_q λ_m|`` and ``|χ_c λ_m|`` near Σ*;
        - ``dist_fixed_point (layer)`` — ``max|Σ^l − Σ*| / q*`` (NaN without a finite q*);
        - ``finite (layer)`` — 1 where the layer is finite.

        Attributes record the parameters, ``q_star``, ``c_star``, ``chi_q``, ``chi_c``,
        ``method``, ``first_nonfinite_layer`` (−1 if none; that layer and later ones are
        NaN: the variance overflowed) and ``provenance`` (JSON).

    Raises
    ------
    InvalidArgumentError
        Bad arguments, a covariance that is not PSD, or a full recursion exceeding
        ``max_bytes`` (named ``spatial``).

    Examples
    --------
    >>> ds = propagate("tanh", 1.76, 0.05, kernel=3, spatial=8, depth=5)   # doctest: +SKIP
    >>> ds.sizes["layer"]                                                   # doctest: +SKIP
    6

    References
    ----------
    Xiao et al. 2018, arXiv:1806.05393, §2.3 and §3; Schoenholz et al. 2017, arXiv:1611.01232.
    """
    import xarray as xr

    from .plotting.style import provenance

    v, kind = _resolve_profile(profile, variance, kernel, dims, taps)
    d = v.ndim
    L = check_int("depth", depth, lo=0)
    if method not in ("auto", "full", "translation-invariant"):
        raise InvalidArgumentError("method", f"must be auto, full or translation-invariant, got {method!r}")
    mb = check_int("max_bytes", max_bytes, lo=1)
    P = 2 if pair else 1
    if spatial is not None:
        check_int("spatial", spatial, lo=1)
    wv, bv, note = resolve_variances(act, weight_var, bias_var)

    # ---- layer 0
    if input_cov is not None or input_array is not None:
        if input_array is not None:
            S0, n, P = input_covariance(spatial, d, pair=pair, input_array=input_array, weight_var=wv,
                                        bias_var=bv, profile=v)
        else:
            S0, n, P = input_covariance(spatial, d, pair=pair, input_cov=input_cov)
        N = n ** d
        plus = _displacement_table(n, d)
        D0 = _diagonals(S0, P, N, plus)
        invariant = _is_translation_invariant(D0)
        G0 = D0[:, :, 0, :].copy() if invariant else None
    else:
        n = 16 if spatial is None else int(spatial)
        N = n ** d
        G0 = _uniform_input_profile(n, d, P, input_var, input_corr)
        invariant = True
        S0 = plus = None
    if P == 1 and N == 1:
        raise InvalidArgumentError("spatial", "one input on a single position has no spatial structure; use spatial >= 2")
    if method == "translation-invariant" and not invariant:
        raise InvalidArgumentError("method", "the input covariance is not translation invariant; use full or auto")
    shortcut = method == "translation-invariant" or (method == "auto" and invariant)
    M = P * N
    bytes_layer = M * M * 8
    work = 8 * bytes_layer                       # Σ, 𝒞(Σ), diagonals, correlations, FFT (complex)
    if shortcut:
        store_full = keep_covariance and work + (L + 1) * bytes_layer <= mb
    else:
        need = work + (L + 1) * bytes_layer * (1 if keep_covariance else 0)
        if need > mb:
            raise InvalidArgumentError("spatial", _memory_message(n, d, P, need, mb, L if keep_covariance else None))
        store_full = keep_covariance
    if plus is None and (store_full or not shortcut):
        plus = _displacement_table(n, d)
    if S0 is None and not shortcut:
        S0 = _circulant(G0, P, N, plus)

    pt = _fc_point(act, wv, bv)
    q_star = _finite_or_nan(pt.q_star)
    c_star = _finite_or_nan(pt.c_star)
    fp_ok = math.isfinite(q_star) and math.isfinite(c_star) and getattr(pt, "phase", "") != "unbounded"
    eng = _Engine(act, wv, bv, v, n, parallel)

    nl = L + 1
    keys = ("q", "cov_profile", "spatial_corr", "c", "var_mode_amplitude", "corr_mode_amplitude")
    res: dict = {k: [] for k in keys}
    covs = np.full((nl, M, M), np.nan) if store_full else None
    finite = np.zeros(nl, dtype=np.int8)
    dist = np.full(nl, np.nan)
    first_bad = -1
    G = G0
    S = S0
    for l in range(nl):
        if shortcut:
            if l > 0:
                q = np.array([G[a, a, 0] for a in range(P)])
                s11 = np.broadcast_to(q[:, None, None], G.shape).ravel()
                s22 = np.broadcast_to(q[None, :, None], G.shape).ravel()
                G = eng.pair_map(s11, s22, G.ravel().copy()).reshape(G.shape)
            if not np.all(np.isfinite(G)):
                first_bad = l
                break
            s = _summaries_invariant(G)
            if covs is not None:
                covs[l] = _circulant(G, P, N, plus)
            if fp_ok:
                dist[l] = _dist_fixed_point(q_star, c_star, G, True)
        else:
            if l > 0:
                S = eng.step(S)
            if not np.all(np.isfinite(S)):
                first_bad = l
                break
            D = _diagonals(S, P, N, plus)
            s = _summaries_full(D, n, d, plus)
            if covs is not None:
                covs[l] = S
            if fp_ok:
                dist[l] = _dist_fixed_point(q_star, c_star, D, False)
        for k in keys:
            res[k].append(s[k])
        finite[l] = 1
    if first_bad == 0:
        raise InvalidArgumentError("input_var", "the input covariance is not finite")
    for _ in range(len(res["q"]), nl):
        for k in keys:
            proto = res[k][0]
            res[k].append(np.full_like(proto, np.nan) if isinstance(proto, np.ndarray) else math.nan)

    # ---- the Dataset
    shp = (n,) * d
    pos = ["x", "y"][:d]
    pos2 = [p + "2" for p in pos]
    disp = ["dx", "dy"][:d]
    mdim = ["m", "m2"][:d]
    coords: dict = {"layer": np.arange(nl), "input": np.arange(P), "input2": np.arange(P)}
    for nm in pos + pos2 + disp + mdim:
        coords[nm] = np.arange(n)
    data = {
        "q": (("layer", "input"), np.array(res["q"])),
        "c": (("layer",), np.array(res["c"], dtype=np.float64)),
        "cov_profile": (("layer", "input", "input2", *disp), np.array(res["cov_profile"]).reshape((nl, P, P) + shp)),
        "spatial_corr": (("layer", "input", "input2", *disp),
                         np.array(res["spatial_corr"]).reshape((nl, P, P) + shp)),
        "var_mode_amplitude": (("layer", *mdim), np.array(res["var_mode_amplitude"]).reshape((nl,) + shp)),
        "corr_mode_amplitude": (("layer", *mdim), np.array(res["corr_mode_amplitude"]).reshape((nl,) + shp)),
        "dist_fixed_point": (("layer",), dist),
        "finite": (("layer",), finite),
    }
    if covs is not None:
        data["covariance"] = (("layer", "input", *pos, "input2", *pos2), covs.reshape((nl, P) + shp + (P,) + shp))
    ds = xr.Dataset(data, coords=coords)
    meth = "translation-invariant" if shortcut else "full"
    params = dict(act=_act_name(act), weight_var=wv, bias_var=bv, kernel=list(v.shape), dims=d, spatial=n,
                  variance=kind, depth=L, inputs=P, method=meth)
    if covs is not None:
        stored = "full"
    elif not keep_covariance:
        stored = "no (keep_covariance=False)"
    else:
        stored = ("no: over max_bytes; the covariance is circulant, "
                  "Sigma[a, alpha, b, alpha + d] = cov_profile[a, b, d]")
    ds.attrs.update({
        "title": "meanfield CNN covariance propagation, Sigma^{l+1} = A * C(Sigma^l)",
        "act": params["act"], "weight_var": wv, "bias_var": bv, "kernel": np.array(v.shape, dtype=np.int64),
        "dims": d, "spatial": n, "variance": kind, "taps": v.reshape(-1), "taps_shape": np.array(v.shape),
        "depth": L, "inputs": P, "method": meth,
        "q_star": q_star, "c_star": c_star, "chi_q": _finite_or_nan(pt.chi_q), "chi_c": _finite_or_nan(pt.chi_c),
        "phase": str(getattr(pt, "phase", "")), "first_nonfinite_layer": first_bad,
        "covariance_stored": stored, "defaults": note or "",
        "provenance": json.dumps(provenance(**params), sort_keys=True),
        "references": "Xiao et al. 2018 arXiv:1806.05393; Schoenholz et al. 2017 arXiv:1611.01232",
    })
    ds["q"].attrs["long_name"] = "mean pre-activation variance"
    ds["c"].attrs["long_name"] = ("mean correlation between distinct positions" if P == 1
                                  else "mean correlation between the two inputs at the same position")
    ds["cov_profile"].attrs["long_name"] = "covariance at displacement d, averaged over positions"
    ds["spatial_corr"].attrs["long_name"] = "correlation at displacement d, averaged over positions"
    return ds
