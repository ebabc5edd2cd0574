"""Property-based tests: every output is finite or explicitly flagged, never a silent NaN."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import meanfield as mf
from meanfield.activations import ACTIVATIONS

acts = st.sampled_from(sorted(ACTIVATIONS) + ["x*tanh(softplus(x))", "where(x > 0, x, 0.1*x)", "sin(x) + 0.5*x"])
weight = st.floats(min_value=1e-6, max_value=16.0, allow_nan=False, allow_infinity=False)
bias = st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=4.0, allow_nan=False, allow_infinity=False))


def _ok(v, *, allow_inf=False):
    return v is None or (isinstance(v, float) and (math.isfinite(v) or (allow_inf and v == math.inf)))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(act=acts, w=weight, b=bias)
def test_point_outputs_are_finite_or_flagged(act, w, b):
    p = mf.point(act, w, b)
    assert p.phase in ("ordered", "chaotic", "critical", "unbounded")
    for k in ("q_star", "c_star", "chi_1", "chi_q", "chi_c"):
        assert _ok(getattr(p, k)), (k, getattr(p, k))
    for k in ("xi_q", "xi_c"):
        assert _ok(getattr(p, k), allow_inf=True), (k, getattr(p, k))
    if p.phase == "unbounded":
        assert p.q_star is None
        return
    if p.converged:
        assert p.q_star is not None and p.q_star >= 0
        assert p.chi_1 is not None and p.chi_1 >= 0
        if p.c_star is not None:
            assert -1e-12 <= p.c_star <= 1.0
        if p.phase == "ordered":
            assert p.chi_1 < 1
        if p.phase == "chaotic":
            assert p.chi_1 > 1 and p.c_star is not None and p.c_star < 1 and p.chi_c < 1
    else:
        assert p.message and p.message != "converged"


@settings(max_examples=30, deadline=None)
@given(act=st.sampled_from(["tanh", "erf", "sigmoid", "sin", "hard_tanh"]),
       b=st.floats(min_value=0.0, max_value=4.0, allow_nan=False))
def test_critical_line_is_finite_or_flagged(act, b):
    cp = mf.critical_weight_var(act, b)
    if cp.converged and cp.weight_var is not None:
        assert math.isfinite(cp.weight_var) and cp.weight_var > 0
    else:
        assert cp.message


def test_oscillating_unbounded_expression_is_flagged_quickly():
    """Regression: an oscillating activation that grows without bound once drove the q* search
    to q ~ 1e16, where the capped mesh asked for billions of nodes (gigabytes, a hang)."""
    for expr in ("sin(x) + 0.5*x", "x + cos(x)"):
        p = mf.point(expr, 16.0, 1.0)
        assert p.phase == "unbounded" and p.q_star is None
