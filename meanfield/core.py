"""Mean-field theory of wide fully-connected networks (THEORY.md §2).

The public functions validate their arguments, call the Numba kernels of
:mod:`meanfield._jit` and return frozen dataclasses. Everything is stated in
variances: ``weight_var`` = σ_w², ``bias_var`` = σ_b².

References
----------
.. [1] B. Poole, S. Lahiri, M. Raghu, J. Sohl-Dickstein, S. Ganguli, "Exponential
   expressivity in deep neural networks through transient chaos", NeurIPS 2016,
   arXiv:1606.05340.
.. [2] S. S. Schoenholz, J. Gilmer, S. Ganguli, J. Sohl-Dickstein, "Deep information
   propagation", ICLR 2017, arXiv:1611.01232.
.. [3] L. Xiao, Y. Bahri, J. Sohl-Dickstein, S. S. Schoenholz, J. Pennington,
   "Dynamical isometry and a mean field theory of CNNs", ICML 2018, arXiv:1806.05393.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ._validation import InvalidArgumentError, check_int, check_real, check_variance
from .activations import Activation, get_activation

__all__ = [
    "FixedPoint", "CriticalPoint", "point", "critical_weight_var", "critical_point",
    "qmap", "cmap", "gaussian_expectations", "pair_expectation", "derivative_moment", "depth_scale",
    "CRITICAL_TOL", "PHASES",
]

CRITICAL_TOL = 1e-10
"""|χ₁ − 1| at or below this is reported as ``critical`` (ξ_c infinite within precision)."""
PHASES = ("ordered", "chaotic", "critical", "unbounded")
_TOL = 1e-15
_MAXIT = 200
_STATUS = {0: "converged", 1: "did not converge", 2: "no finite fixed point (the variance grows without bound)",
           3: "degenerate: q* = 0", 4: "quadrature unreliable (integrand not negligible in the Gaussian tail)",
           5: "no solution in the searched range"}


def depth_scale(chi: float | None) -> float | None:
    """ξ = −1/ln χ for 0 < χ < 1; 0 for χ = 0; ``inf`` for χ >= 1; ``None`` if χ is unknown."""
    if chi is None or not math.isfinite(chi):
        return None
    if chi <= 0.0:
        return 0.0
    if chi >= 1.0:
        return math.inf
    return -1.0 / math.log(chi)


def _opt(x: float) -> float | None:
    return None if (x is None or math.isnan(x)) else float(x)


@dataclass(frozen=True)
class FixedPoint:
    """Mean-field fixed point and susceptibilities at one (σ_w², σ_b²).

    ``None`` means undefined or not computed (see ``message``); ``math.inf`` means
    infinite (a depth scale on the critical line). JSON output turns both into ``null``.

    Attributes
    ----------
    act : str
    weight_var, bias_var : float
        σ_w², σ_b².
    q_star : float or None
        Fixed point of the length map; ``None`` when ``phase == "unbounded"``.
    c_star : float or None
        Stable fixed point of the correlation map (1 in the ordered phase); ``None`` when
        undefined (q* = 0 for a smooth activation: the c-map is then the identity).
    chi_1, chi_q, chi_c : float or None
        χ₁ = σ_w² E[φ'(u)²], χ_q = dq'/dq at q*, χ_c = slope of the c-map at c*.
    xi_q, xi_c : float or None
        Depth scales −1/ln χ_q, −1/ln χ_c (``inf`` on the critical line).
    phase : str
        ``ordered`` (χ₁ < 1), ``chaotic`` (χ₁ > 1), ``critical`` (|χ₁ − 1| <= CRITICAL_TOL) or
        ``unbounded`` (no finite q*).
    converged : bool
        Both fixed-point solves converged (or were solved in closed form).
    iterations : int
        Newton iterations used (q* plus c*).
    message : str
        Human-readable status.
    """

    act: str
    weight_var: float
    bias_var: float
    q_star: float | None
    c_star: float | None
    chi_1: float | None
    chi_q: float | None
    chi_c: float | None
    xi_q: float | None
    xi_c: float | None
    phase: str
    converged: bool
    iterations: int
    message: str

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (``inf`` kept; the CLI writes non-finite values as ``null``)."""
        return asdict(self)


@dataclass(frozen=True)
class CriticalPoint:
    """A point on the critical line χ₁ = 1.

    Attributes
    ----------
    act : str
    weight_var, bias_var : float or None
        σ_w², σ_b² on the line (``None`` if none exists for the request).
    q_star : float or None
        The fixed point there; ``None`` when it is not finite or not unique (ReLU family).
    converged : bool
    message : str
    stable : bool or None
        Whether q* is a stable fixed point of the q-map there (χ_q < 1). For activations that
        do not saturate (gelu, swish, softplus, ...) the q*-parametrisation can return an
        unstable fixed point, which a network never reaches: the point solver then finds a
        different q*. ``None`` where it does not apply.
    """

    act: str
    weight_var: float | None
    bias_var: float | None
    q_star: float | None
    converged: bool
    message: str
    stable: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _act(act) -> Activation:
    return get_activation(act)


def point(act: "str | Activation", weight_var: float, bias_var: float) -> FixedPoint:
    """Fixed points, susceptibilities, depth scales and phase at one (σ_w², σ_b²).

    Parameters
    ----------
    act : str or Activation or callable
        Activation name, expression or function (see :func:`meanfield.activations.get_activation`).
    weight_var : float
        σ_w² > 0.
    bias_var : float
        σ_b² >= 0.

    Returns
    -------
    FixedPoint

    Notes
    -----
    q* is the fixed point of ``q' = σ_w² E[φ(√q z)²] + σ_b²`` reached from q = 1, found by
    Newton's method safeguarded by a bracket, so that it converges near criticality where
    plain iteration stalls. c* is the stable correlation fixed point: 1 in the ordered phase,
    the root below 1 of the c-map in the chaotic phase. Expectations use adaptive graded
    Gauss–Legendre quadrature accurate to ~1e-14 for any q (closed forms for erf and the
    ReLU family).

    Examples
    --------
    >>> import meanfield
    >>> p = meanfield.point("tanh", 1.9, 0.05)
    >>> p.phase
    'chaotic'
    >>> round(p.chi_1, 6) > 1
    True

    References
    ----------
    .. [1] Schoenholz et al., "Deep information propagation", ICLR 2017, arXiv:1611.01232.
    """
    from ._jit import fixed as _f

    a = _act(act)
    w = check_variance("weight_var", weight_var, positive=True)
    b = check_variance("bias_var", bias_var)
    out = np.empty(_f.P_SIZE)
    _f.point(a.spec, w, b, CRITICAL_TOL, _TOL, _MAXIT, out)
    return _assemble(a.name, w, b, out)


def _assemble(name: str, w: float, b: float, out: np.ndarray) -> FixedPoint:
    from ._jit import fixed as _f

    qs = int(out[_f.P_QSTATUS])
    cs = int(out[_f.P_CSTATUS])
    iters = int(out[_f.P_QITER]) + int(out[_f.P_CITER])
    if qs == _f.UNBOUNDED:
        return FixedPoint(name, w, b, None, None, None, None, None, None, None, "unbounded", True, iters,
                          _STATUS[2])
    if qs == _f.QUAD_FAIL:
        return FixedPoint(name, w, b, None, None, None, None, None, None, None, "unbounded", False, iters,
                          _STATUS[4])
    chi1 = _opt(out[_f.P_CHI1])
    chiq = _opt(out[_f.P_CHIQ])
    chic = _opt(out[_f.P_CHIC])
    if chi1 is None:
        phase = "critical"
    elif abs(chi1 - 1.0) <= CRITICAL_TOL:
        phase = "critical"
    else:
        phase = "ordered" if chi1 < 1.0 else "chaotic"
    xi_q = depth_scale(chiq)
    xi_c = math.inf if phase == "critical" else depth_scale(chic)
    converged = qs in (_f.OK, _f.DEGENERATE) and cs == _f.OK
    msgs = []
    if qs != _f.OK:
        msgs.append(_STATUS[qs])
    if cs != _f.OK:
        msgs.append("c*: " + _STATUS[cs])
    if qs == _f.DEGENERATE and out[_f.P_C] != out[_f.P_C]:
        msgs.append("c* undefined (the c-map is the identity at q* = 0); chi_c is its limit chi_1")
    q = _opt(out[_f.P_Q])
    return FixedPoint(name, w, b, q, _opt(out[_f.P_C]), chi1, chiq, chic, xi_q, xi_c, phase, converged, iters,
                      "; ".join(msgs) if msgs else "converged")


def critical_point(act: "str | Activation", q_star: float) -> CriticalPoint:
    """The point on the critical line whose fixed point is ``q_star``.

    Uses the parametrisation σ_w²(q*) = 1/E[φ'(√q* z)²],
    σ_b²(q*) = q* − σ_w²(q*) E[φ(√q* z)²] (valid while σ_b² >= 0), as the paper's
    authors choose hyper-parameters (e.g. q* = 1/depth).

    Parameters
    ----------
    act : str or Activation
    q_star : float
        q* > 0.

    Returns
    -------
    CriticalPoint
        ``bias_var`` is ``None`` (and ``message`` says why) when σ_b²(q*) < 0, i.e. no
        non-negative bias variance puts this q* on the critical line.

    Examples
    --------
    >>> import meanfield
    >>> cp = meanfield.critical_point("tanh", 1 / 16)
    >>> 1.0 < cp.weight_var < 1.1
    True

    References
    ----------
    .. [1] Xiao et al., "Dynamical isometry and a mean field theory of CNNs", ICML 2018,
       arXiv:1806.05393.
    """
    from ._jit import fixed as _f

    a = _act(act)
    q = check_real("q_star", q_star, lo=0.0, lo_open=True)
    h = _f.homogeneous_h(a.spec)
    if h > 0:
        return CriticalPoint(a.name, 1.0 / h, 0.0, q, True,
                             "positively homogeneous activation: the critical line is sigma_w^2 = 1/E[phi'^2] "
                             "and sigma_b^2 = 0 for every q*")
    out = np.empty(5)
    _f.critical_from_q(a.spec, q, out)
    if out[4] != 0:
        return CriticalPoint(a.name, None, None, q, False, _STATUS[4])
    w, b = float(out[0]), float(out[1])
    if b < 0:
        return CriticalPoint(a.name, w, None, q, True,
                             f"no critical point with q* = {q:g}: it would need sigma_b^2 = {b:.6g} < 0")
    return _with_stability(CriticalPoint(a.name, w, b, q, True, "converged"), a)


def _with_stability(cp: CriticalPoint, a: Activation) -> CriticalPoint:
    from dataclasses import replace

    if cp.q_star is None or cp.weight_var is None or cp.q_star == 0:
        return cp
    chiq = float(cp.weight_var * gaussian_expectations(a, cp.q_star)["dV"])
    if chiq < 1.0:
        return replace(cp, stable=True)
    return replace(cp, stable=False, message=f"q* = {cp.q_star:.6g} is an unstable fixed point of the q-map here "
                   f"(chi_q = {chiq:.6g} >= 1): a network does not reach it")


def critical_weight_var(act: "str | Activation", bias_var: float) -> CriticalPoint:
    """σ_w² on the critical line χ₁ = 1 at the given σ_b².

    Solves σ_b²(q) = ``bias_var`` for the smallest q on the q*-parametrised critical line
    (Brent's method after a geometric scan), then σ_w² = 1/E[φ'(√q z)²].

    Parameters
    ----------
    act : str or Activation
    bias_var : float
        σ_b² >= 0.

    Returns
    -------
    CriticalPoint
        For the ReLU family the line is σ_w² = 1/E[φ'²] (2 for ReLU) and q* is ``None``
        (infinite for σ_b² > 0, arbitrary at σ_b² = 0). At σ_b² = 0 for smooth odd
        activations the critical point is σ_w² = 1/φ'(0)² with q* = 0.

    Examples
    --------
    >>> import meanfield
    >>> round(meanfield.critical_weight_var("tanh", 0.05).weight_var, 4)
    1.761

    References
    ----------
    .. [1] Schoenholz et al., "Deep information propagation", ICLR 2017, arXiv:1611.01232.
    """
    from ._jit import fixed as _f

    a = _act(act)
    b = check_variance("bias_var", bias_var)
    h = _f.homogeneous_h(a.spec)
    if h > 0:
        return CriticalPoint(a.name, 1.0 / h, b, None, True,
                             "positively homogeneous activation: chi_1 = sigma_w^2 E[phi'^2] does not depend on q; "
                             "q* is infinite on the critical line for sigma_b^2 > 0 and arbitrary at sigma_b^2 = 0")
    f0 = float(a(np.zeros(1))[0])
    d0 = float(a.derivative(np.zeros(1))[0])
    if b == 0.0 and f0 == 0.0:
        if d0 == 0.0:
            return CriticalPoint(a.name, None, b, None, False, "phi'(0) = 0: no critical point at sigma_b^2 = 0")
        return CriticalPoint(a.name, 1.0 / (d0 * d0), 0.0, 0.0, True, "degenerate: q* = 0 at sigma_b^2 = 0")
    out = np.empty(4)
    _f.critical_from_b(a.spec, b, 1e-15, out)
    st = int(out[2])
    if st == _f.NO_SOLUTION:
        return CriticalPoint(a.name, None, b, None, False,
                             f"no critical point at sigma_b^2 = {b:g} for q* in (0, 1e16]")
    return _with_stability(CriticalPoint(a.name, float(out[0]), b, float(out[1]), st == _f.OK, _STATUS[st]), a)


def gaussian_expectations(act: "str | Activation", q) -> dict[str, np.ndarray]:
    """Gaussian expectations at variance q (vectorised over ``q``).

    Returns
    -------
    dict
        ``V`` = E[φ(√q z)²], ``D`` = E[φ'(√q z)²], ``dV`` = dV/dq, ``mean`` = E[φ(√q z)].
    """
    from ._jit.quad import expect1

    a = _act(act)
    qa = np.asarray(q, dtype=np.float64)
    if not np.all(np.isfinite(qa)) or np.any(qa < 0):
        raise InvalidArgumentError("q", "variances must be finite and >= 0")
    flat = qa.ravel()
    res = np.empty((flat.size, 5))
    for i, qi in enumerate(flat):
        expect1(a.spec, float(qi), res[i])
    return {k: res[:, j].reshape(qa.shape) for j, k in enumerate(("V", "D", "dV", "mean"))}


def derivative_moment(act: "str | Activation", q, k: int = 1) -> np.ndarray:
    """μ_k(q) = E[φ'(√q z)^{2k}] (vectorised over ``q``), the moments behind Jacobian spectra.

    μ₁ = E[φ'²] gives χ₁ = σ_w² μ₁; at criticality the variance of the spectrum of JJᵀ
    grows as L (μ₂/μ₁² − 1 − s₁) (THEORY.md §4).

    Examples
    --------
    >>> import meanfield
    >>> float(meanfield.derivative_moment("relu", 1.0, 2))
    0.5

    References
    ----------
    .. [1] J. Pennington, S. S. Schoenholz, S. Ganguli, "The emergence of spectral universality
       in deep networks", AISTATS 2018, arXiv:1802.09979.
    """
    from ._jit.quad import expect_dphi_power

    a = _act(act)
    k = check_int("k", k, lo=1)
    qa = np.asarray(q, dtype=np.float64)
    if not np.all(np.isfinite(qa)) or np.any(qa < 0):
        raise InvalidArgumentError("q", "variances must be finite and >= 0")
    out = np.array([expect_dphi_power(a.spec, float(v), 2 * k) for v in qa.ravel()])
    return out.reshape(qa.shape)


def pair_expectation(act: "str | Activation", s11, s22, s12, derivative: bool = False) -> np.ndarray:
    """E[f(u₁) f(u₂)] for (u₁, u₂) ~ N(0, [[s11, s12], [s12, s22]]), f = φ or φ' (vectorised).

    Parameters
    ----------
    act : str or Activation
    s11, s22 : array_like
        Variances (>= 0).
    s12 : array_like
        Covariance; |s12| <= sqrt(s11 s22).
    derivative : bool
        Use φ' instead of φ (Price's theorem: ∂/∂s12 of the φ expectation).

    Returns
    -------
    numpy.ndarray
    """
    from ._jit.quad import expect_pair_c

    a = _act(act)
    s11, s22, s12 = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (s11, s22, s12)))
    if not (np.all(np.isfinite(s11)) and np.all(np.isfinite(s22)) and np.all(np.isfinite(s12))):
        raise InvalidArgumentError("s12", "covariances must be finite")
    if np.any(s11 < 0) or np.any(s22 < 0):
        raise InvalidArgumentError("s11", "variances must be >= 0")
    if np.any(s12 * s12 > s11 * s22 * (1 + 1e-12) + 1e-300):
        raise InvalidArgumentError("s12", "|s12| must not exceed sqrt(s11*s22)")
    out = np.empty(s11.shape)
    tmp = np.empty(2)
    j = 1 if derivative else 0
    for idx in np.ndindex(s11.shape):
        q1, q2 = float(s11[idx]), float(s22[idx])
        c = float(s12[idx]) / math.sqrt(q1 * q2) if q1 > 0 and q2 > 0 else 0.0
        expect_pair_c(a.spec, q1, q2, c, tmp)
        out[idx] = tmp[j]
    return out


def qmap(act: "str | Activation", q, weight_var: float, bias_var: float, *, derivative: bool = False) -> np.ndarray:
    """The length map q ↦ σ_w² E[φ(√q z)²] + σ_b² (or its slope dq'/dq), vectorised over q.

    Examples
    --------
    >>> import meanfield
    >>> float(meanfield.qmap("relu", 2.0, 1.0, 0.1))
    1.1
    """
    w = check_variance("weight_var", weight_var, positive=True)
    b = check_variance("bias_var", bias_var)
    e = gaussian_expectations(act, q)
    return w * e["dV"] if derivative else w * e["V"] + b


def cmap(act: "str | Activation", c, weight_var: float, bias_var: float, q: float | None = None, *,
         derivative: bool = False) -> np.ndarray:
    """The correlation map c ↦ c' for two inputs of equal variance q (default: q*).

    c' = (σ_w² E[φ(u₁)φ(u₂)] + σ_b²) / q', with q' the q-map at q (= q* at the fixed
    point). With ``derivative=True`` returns dc'/dc = σ_w² q E[φ'(u₁)φ'(u₂)] / q', which
    at c = 1 and q = q* is χ₁.

    Examples
    --------
    >>> import meanfield
    >>> float(meanfield.cmap("tanh", 1.0, 1.5, 0.05))
    1.0
    """
    a = _act(act)
    w = check_variance("weight_var", weight_var, positive=True)
    b = check_variance("bias_var", bias_var)
    if q is None:
        p = point(a, w, b)
        if p.q_star is None or p.q_star == 0:
            raise InvalidArgumentError("q", f"no positive finite q* at these variances ({p.message}); pass q")
        q = p.q_star
    q = check_real("q", q, lo=0.0, lo_open=True)
    ca = np.asarray(c, dtype=np.float64)
    if not np.all(np.isfinite(ca)) or np.any(np.abs(ca) > 1):
        raise InvalidArgumentError("c", "correlations must lie in [-1, 1]")
    qn = float(qmap(a, q, w, b))
    e = pair_expectation(a, q, q, ca * q, derivative=derivative)
    return (w * q * e) / qn if derivative else (w * e + b) / qn
