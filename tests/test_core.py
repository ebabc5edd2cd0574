"""The foundation's accuracy contract, proved against independent references.

Contract: relative error <= 1e-9 for q*, χ₁, χ_q, χ_c; absolute <= 1e-9 for c*;
relative <= 1e-6 for ξ_q, ξ_c where |1 - χ| >= 1e-6; weight_var in (0, 16],
bias_var in [0, 4]. References (tests/reference.py) use scipy's adaptive quad,
Brent's method and the direct (non-Stein) form of χ_q; closed forms for erf/ReLU.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import meanfield as mf
from meanfield.activations import ACTIVATIONS

from .reference import Ref

SMOOTH = ["tanh", "erf", "sigmoid", "softplus", "elu", "selu", "gelu", "swish", "sin", "hard_tanh"]
ALL = sorted(ACTIVATIONS)
RTOL = 1e-9


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-300)


# --- Gaussian expectations -------------------------------------------------------------

@pytest.mark.parametrize("act", ALL)
@pytest.mark.parametrize("q", [1e-4, 0.37, 1.0, 4.5, 20.0])
def test_expectations_match_adaptive_quadrature(act, q):
    ref = Ref(act)
    e = mf.gaussian_expectations(act, q)
    assert rel(float(e["V"]), ref.V(q)) < 1e-11
    assert rel(float(e["D"]), ref.D(q)) < 1e-11
    assert abs(float(e["dV"]) - ref.dV(q)) < 1e-11 * max(1.0, abs(ref.dV(q)))


@pytest.mark.parametrize("q", [50.0, 400.0, 2e4, 1e6])
def test_tanh_large_q_against_mpmath(q):
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 30
    s = mp.sqrt(q)
    # integrate in u = sqrt(q) z with breakpoints at the tanh scale, far beyond any fixed rule
    pts = [-12 * s] + [mp.mpf(k) for k in (-40, -10, -3, -1, 0, 1, 3, 10, 40) if abs(k) < 12 * s] + [12 * s]
    dens = lambda u: mp.exp(-u * u / (2 * q)) / mp.sqrt(2 * mp.pi * q)
    V = mp.quad(lambda u: mp.tanh(u) ** 2 * dens(u), pts)
    D = mp.quad(lambda u: (1 - mp.tanh(u) ** 2) ** 2 * dens(u), pts)
    e = mf.gaussian_expectations("tanh", q)
    assert rel(float(e["V"]), float(V)) < 1e-12
    assert rel(float(e["D"]), float(D)) < 1e-12


def test_sin_closed_form_large_q():
    # E[sin²(√q z)] = (1 - e^{-2q}) / 2, E[cos²] = (1 + e^{-2q}) / 2
    q = np.array([0.01, 1.0, 12.0, 20.0, 300.0])
    e = mf.gaussian_expectations("sin", q)
    np.testing.assert_allclose(e["V"], (1 - np.exp(-2 * q)) / 2, rtol=1e-13)
    np.testing.assert_allclose(e["D"], (1 + np.exp(-2 * q)) / 2, rtol=1e-13)


@pytest.mark.parametrize("q1,q2,c", [(1.0, 1.0, 0.3), (4.0, 4.0, 0.99), (10.0, 10.0, 0.999999), (10, 10, 1.0),
                                     (20.0, 1.0, 0.9999), (0.5, 3.0, -0.4), (300.0, 300.0, 0.999), (1e-4, 1e-4, 0.7)])
def test_numerical_pair_path_matches_erf_closed_form(q1, q2, c):
    """The quadrature path (erf written as an expression) against erf's closed form."""
    s12 = c * math.sqrt(q1 * q2)
    a = 1 + 2 * q1
    b = 1 + 2 * q2
    exact = 2 / math.pi * math.asin(2 * s12 / math.sqrt(a * b))
    exact_d = 4 / math.pi / math.sqrt(1 + 2 * q1 + 2 * q2 + 4 * q1 * q2 * (1 - c) * (1 + c))
    assert rel(float(mf.pair_expectation("erf(x)", q1, q2, s12)), exact) < 1e-13
    assert rel(float(mf.pair_expectation("erf(x)", q1, q2, s12, derivative=True)), exact_d) < 1e-13


@pytest.mark.parametrize("c", [-0.7, 0.0, 0.5, 0.99, 1.0])
def test_relu_pair_is_arc_cosine_kernel_and_quadrature_agrees(c):
    q1, q2 = 2.0, 0.5
    s12 = c * math.sqrt(q1 * q2)
    exact = math.sqrt(q1 * q2) / (2 * math.pi) * (math.sqrt(1 - c * c) + (math.pi - math.acos(c)) * c)
    assert rel(float(mf.pair_expectation("relu", q1, q2, s12)), exact) < 1e-14
    # the quadrature path (max(x, 0) as an expression) agrees with the closed form
    assert abs(float(mf.pair_expectation("max(x, 0)", q1, q2, s12)) - exact) < 1e-13
    step = (math.pi - math.acos(c)) / (2 * math.pi)
    assert abs(float(mf.pair_expectation("max(x, 0)", q1, q2, s12, derivative=True)) - step) < 1e-12


@pytest.mark.slow
@pytest.mark.parametrize("act,q,c", [("tanh", 1.3, 0.4), ("tanh", 9.0, 0.97), ("gelu", 2.0, 0.6),
                                     ("hard_tanh", 3.0, 0.8), ("sin", 5.0, 0.3)])
def test_pair_expectation_against_nested_adaptive_quadrature(act, q, c):
    ref = Ref(act)
    got = float(mf.pair_expectation(act, q, q, c * q))
    assert abs(got - ref.pair(q, c)) < 1e-11
    got_d = float(mf.pair_expectation(act, q, q, c * q, derivative=True))
    assert abs(got_d - ref.pair(q, c, deriv=True)) < 1e-11


# --- fixed points and susceptibilities ---------------------------------------------------

GRID = [(0.3, 0.0), (0.8, 0.1), (1.2, 0.01), (1.7, 0.05), (2.5, 0.3), (4.0, 1.0), (9.5, 0.5), (16.0, 4.0), (16.0, 0.0)]


@pytest.mark.parametrize("act", SMOOTH + ["relu", "leaky_relu", "linear"])
@pytest.mark.parametrize("w,b", GRID)
def test_q_star_and_chis_match_reference(act, w, b):
    ref = Ref(act)
    p = mf.point(act, w, b)
    qs = ref.qstar(w, b)
    if qs is None:
        assert p.phase == "unbounded" and p.q_star is None
        return
    assert p.phase != "unbounded"
    if qs == 0.0:
        assert p.q_star == 0.0
        return
    assert rel(p.q_star, qs) < RTOL
    assert rel(p.chi_1, w * ref.D(qs)) < RTOL
    # χ_q to 1e-9 relative, with an absolute floor of 1e-14 σ_w²: for sin at q* ≈ 12, χ_q ≈ 6e-10 is
    # an O(1) integrand cancelling to 1e-10, which no float64 quadrature resolves to 1e-9 relative
    assert abs(p.chi_q - w * ref.dV(qs)) < max(RTOL * abs(w * ref.dV(qs)), 1e-14 * w)
    assert p.converged
    if p.chi_q < 1 - 1e-6:
        assert rel(p.xi_q, -1 / math.log(w * ref.dV(qs))) < 1e-6
    if p.phase == "ordered":
        assert p.c_star == 1.0 and p.chi_c == p.chi_1
        if p.chi_1 < 1 - 1e-6:
            assert rel(p.xi_c, -1 / math.log(w * ref.D(qs))) < 1e-6


@pytest.mark.slow
@pytest.mark.parametrize("act,w,b", [("tanh", 3.0, 0.1), ("tanh", 9.5, 0.5), ("tanh", 16.0, 4.0), ("sin", 2.5, 0.3),
                                     ("elu", 1.9, 0.01), ("hard_tanh", 3.0, 0.2)])
def test_chaotic_c_star_and_chi_c_match_reference(act, w, b):
    ref = Ref(act)
    p = mf.point(act, w, b)
    assert p.phase == "chaotic"
    qs = ref.qstar(w, b)
    cs = ref.cstar(w, b, qs)
    assert abs(p.c_star - cs) < 1e-9
    chic = w * ref.pair(qs, cs, deriv=True)
    assert rel(p.chi_c, chic) < RTOL
    assert rel(p.xi_c, -1 / math.log(chic)) < 1e-6


@pytest.mark.parametrize("w,b", [(2.0, 0.3), (3.0, 0.05), (9.0, 1.0), (16.0, 4.0), (1.5, 0.0), (6.0, 0.0)])
def test_erf_chaotic_points_against_closed_forms(w, b):
    """erf: every map is closed form; solve the fixed points independently with brentq."""
    from scipy.optimize import brentq

    V = lambda q: 2 / math.pi * math.asin(2 * q / (1 + 2 * q))
    qs = brentq(lambda q: w * V(q) + b - q, 1e-12, 1e6, xtol=1e-300, rtol=1e-15)
    F = lambda c: 2 / math.pi * math.asin(2 * c * qs / (1 + 2 * qs))
    hfun = lambda c: (w * F(c) + b) / qs - c
    hi = 0.5
    while hfun(hi) >= 0:
        hi = 1 - (1 - hi) / 4
    cs = 0.0 if hfun(0.0) <= 0 else brentq(hfun, 0.0, hi, xtol=1e-16, rtol=1e-15)
    chic = w * 4 / math.pi / math.sqrt((1 + 2 * qs) ** 2 - 4 * (cs * qs) ** 2)
    for act in ("erf", "erf(x)"):  # closed-form path and numerical quadrature path
        p = mf.point(act, w, b)
        assert p.phase == "chaotic"
        assert rel(p.q_star, qs) < RTOL
        assert abs(p.c_star - cs) < 1e-9
        assert rel(p.chi_c, chic) < RTOL
        assert rel(p.chi_1, w * 4 / math.pi / math.sqrt(1 + 4 * qs)) < RTOL


def test_relu_closed_forms():
    for w, b in [(0.5, 0.1), (1.0, 2.0), (1.999, 0.05)]:
        p = mf.point("relu", w, b)
        assert rel(p.q_star, b / (1 - w / 2)) < 1e-14
        assert rel(p.chi_1, w / 2) < 1e-15 and p.phase == "ordered" and p.c_star == 1.0
    for w in (2.0, 3.0, 16.0):
        p = mf.point("relu", w, 0.1)
        assert p.phase == "unbounded" and p.q_star is None and p.chi_1 is None and p.converged


@pytest.mark.parametrize("act", ["softplus", "gelu", "swish", "elu", "selu", "relu"])
def test_unbounded_activations_report_unbounded(act):
    p = mf.point(act, 16.0, 1.0)
    assert p.phase == "unbounded" and p.q_star is None and p.xi_c is None


# --- near criticality, degenerate points, the critical line -------------------------------

def _ref_critical_w(ref, b):
    from scipy.optimize import brentq

    bq = lambda q: q - ref.V(q) / ref.D(q) - b
    qs = 1e-6
    while bq(qs) < 0:
        qs *= 2
    q = brentq(bq, qs / 2, qs, xtol=1e-300, rtol=1e-15)
    return 1 / ref.D(q), q


@pytest.mark.parametrize("act,b", [("tanh", 0.05), ("tanh", 0.5), ("tanh", 2.0), ("erf", 0.3), ("sigmoid", 0.2),
                                   ("gelu", 0.1), ("sin", 0.05)])
def test_critical_weight_var_matches_reference(act, b):
    ref = Ref(act)
    w, q = _ref_critical_w(ref, b)
    cp = mf.critical_weight_var(act, b)
    assert cp.converged
    assert rel(cp.weight_var, w) < RTOL
    assert rel(cp.q_star, q) < 1e-8
    if act in ("gelu", "swish"):
        # non-saturating: the smallest critical q can be an unstable fixed point (flagged)
        chiq = cp.weight_var * ref.dV(q)
        assert cp.stable == (chiq < 1)
        if not cp.stable:
            return
    # cross-method: the point solver at that weight variance is critical
    p = mf.point(act, cp.weight_var, b)
    assert abs(p.chi_1 - 1) < 1e-9
    assert rel(p.q_star, q) < 1e-8


def test_tanh_critical_point_at_005_is_schoenholz_value():
    assert abs(mf.critical_weight_var("tanh", 0.05).weight_var - 1.76096) < 1e-5


@pytest.mark.parametrize("act", ["tanh", "erf", "gelu", "swish"])
@pytest.mark.parametrize("q", [1 / 16, 1 / 1000, 0.5, 3.0])
def test_critical_point_from_q_star(act, q):
    ref = Ref(act)
    cp = mf.critical_point(act, q)
    w = 1 / ref.D(q)
    b = q - w * ref.V(q)
    assert rel(cp.weight_var, w) < RTOL
    if b >= 0:
        assert abs(cp.bias_var - b) < 1e-12 * max(q, 1)
        assert cp.stable == (cp.weight_var * ref.dV(q) < 1)
        if not cp.stable:
            assert "unstable" in cp.message
            return
        p = mf.point(act, cp.weight_var, cp.bias_var)
        assert rel(p.q_star, q) < 1e-8 and abs(p.chi_1 - 1) < 1e-9
    else:
        assert cp.bias_var is None and "sigma_b^2" in cp.message


@pytest.mark.parametrize("act,b", [("tanh", 0.05), ("tanh", 1.0), ("erf", 0.2), ("sigmoid", 0.5)])
@pytest.mark.parametrize("side", [-1, 1])
def test_points_within_1e3_of_criticality(act, b, side):
    ref = Ref(act)
    wc, _ = _ref_critical_w(ref, b)
    w = wc * (1 + side * 1e-3)
    p = mf.point(act, w, b)
    qs = ref.qstar(w, b)
    chi1 = w * ref.D(qs)
    assert rel(p.q_star, qs) < RTOL and rel(p.chi_1, chi1) < RTOL
    assert p.phase == ("chaotic" if side > 0 else "ordered")
    if side < 0:
        assert rel(p.xi_c, -1 / math.log(chi1)) < 1e-6
    else:
        assert 1 - p.c_star > 1e-5  # a genuine chaotic fixed point, strictly below 1
        F = lambda c: float(mf.pair_expectation(act, qs, qs, c * qs))
        # residual of the c-map at the returned c*, measured with an independent expectation call
        assert abs((w * F(p.c_star) + b) / qs - p.c_star) < 1e-12


def test_degenerate_points():
    p = mf.point("tanh", 0.5, 0.0)
    assert p.q_star == 0.0 and p.c_star is None and p.chi_1 == 0.5 and p.phase == "ordered"
    assert "degenerate" in p.message and p.xi_c == pytest.approx(-1 / math.log(0.5))
    p = mf.point("relu", 1.0, 0.0)
    assert p.q_star == 0.0 and p.c_star == 1.0 and p.chi_1 == 0.5
    p = mf.point("tanh", 1.0, 0.0)  # σ_w² = 1, σ_b² = 0: q* = 0 and exactly critical
    assert p.q_star == 0.0 and p.phase == "critical" and p.xi_c == math.inf
    cp = mf.critical_weight_var("tanh", 0.0)
    assert cp.weight_var == 1.0 and cp.q_star == 0.0
    p = mf.point("tanh", 2.0, 0.0)  # chaotic at zero bias: odd φ gives c* = 0
    assert p.phase == "chaotic" and abs(p.c_star) < 1e-12


def test_sigma_b_zero_chaotic_tanh_against_reference():
    ref = Ref("tanh")
    p = mf.point("tanh", 1.5, 0.0)
    qs = ref.qstar(1.5, 0.0)
    assert rel(p.q_star, qs) < RTOL and rel(p.chi_1, 1.5 * ref.D(qs)) < RTOL


# --- user-defined activations ---------------------------------------------------------------

@pytest.mark.parametrize("w,b", [(1.2, 0.05), (2.5, 0.3), (9.0, 1.0)])
def test_expression_matches_registered_activation(w, b):
    for name, expr in [("tanh", "tanh(x)"), ("sigmoid", "1/(1+exp(-x))"), ("swish", "x*sigmoid(x)"),
                       ("softplus", "log(1+exp(x))")]:
        a, e = mf.point(name, w, b), mf.point(expr, w, b)
        assert a.phase == e.phase
        if a.phase == "unbounded":
            continue
        for k in ("q_star", "chi_1", "chi_q", "chi_c"):
            assert rel(getattr(e, k), getattr(a, k)) < 1e-12, (name, k)
        assert abs(e.c_star - a.c_star) < 1e-12


def test_traced_python_function_matches_expression():
    import numpy as np

    mish = lambda x: x * np.tanh(np.log1p(np.exp(x)))
    a = mf.point(mish, 1.1, 0.1)
    b = mf.point("x*tanh(log(1+exp(x)))", 1.1, 0.1)
    assert rel(a.q_star, b.q_star) < 1e-14 and rel(a.chi_1, b.chi_1) < 1e-14


def test_maps_and_slopes_are_consistent():
    # q-map slope vs a central difference; c-map at c = 1 equals 1 and its slope equals χ₁
    q, w, b = 0.8, 1.9, 0.05
    h = 1e-5
    num = (mf.qmap("tanh", q + h, w, b) - mf.qmap("tanh", q - h, w, b)) / (2 * h)
    assert abs(float(mf.qmap("tanh", q, w, b, derivative=True)) - float(num)) < 1e-8
    p = mf.point("tanh", w, b)
    assert abs(float(mf.cmap("tanh", 1.0, w, b)) - 1.0) < 1e-13
    assert rel(float(mf.cmap("tanh", 1.0, w, b, derivative=True)), p.chi_1) < 1e-12
    assert abs(float(mf.cmap("tanh", p.c_star, w, b)) - p.c_star) < 1e-12


# --- invalid input -------------------------------------------------------------------------

@pytest.mark.parametrize("kw,arg", [(dict(weight_var=-1, bias_var=0), "weight_var"),
                                    (dict(weight_var=0, bias_var=0), "weight_var"),
                                    (dict(weight_var=1, bias_var=-0.1), "bias_var"),
                                    (dict(weight_var=float("nan"), bias_var=0), "weight_var"),
                                    (dict(weight_var=1, bias_var=float("inf")), "bias_var")])
def test_bad_variances_name_the_argument(kw, arg):
    with pytest.raises(mf.InvalidArgumentError) as ei:
        mf.point("tanh", **kw)
    assert ei.value.argument == arg


def test_unknown_activation_lists_known_ones():
    with pytest.raises(mf.InvalidArgumentError, match="known: .*tanh"):
        mf.point("tanhh", 1, 0)


@pytest.mark.parametrize("expr,slope", [("max(x, 0)", 0.0), ("max(x, 0.2*x)", 0.2), ("where(x > 0, x, -0.5*x)", -0.5)])
@pytest.mark.parametrize("q", [0.01, 0.25, 4.0, 30.0])
@pytest.mark.parametrize("c", [-0.5, 0.3, 0.9, 0.999, 0.99999, 1 - 1e-7, 1 - 1e-9, 1.0])
def test_kinked_quadrature_near_c_one_against_closed_form(expr, slope, q, c):
    """Regression: φ' with a jump needs the outer mesh graded toward the smoothed kink as c -> 1.

    The quadrature path (an expression) against the arc-cosine closed form of
    φ = max(x, αx) = αx + (1-α) relu(x):  E[φφ] = αΣ12 + (1-α)² K,  E[φ'φ'] = α + (1-α)² (π - θ)/2π.
    """
    th = math.acos(c)
    k = q / (2 * math.pi) * (math.sqrt((1 - c) * (1 + c)) + (math.pi - th) * c)
    ef = slope * c * q + (1 - slope) ** 2 * k
    ed = slope + (1 - slope) ** 2 * (math.pi - th) / (2 * math.pi)
    assert abs(float(mf.pair_expectation(expr, q, q, c * q)) - ef) < 1e-13 * q
    assert abs(float(mf.pair_expectation(expr, q, q, c * q, derivative=True)) - ed) < 1e-12
