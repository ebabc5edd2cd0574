"""Fixed points, susceptibilities and the critical line (Numba kernels).

Status codes written by the kernels (see ``meanfield.core``):
0 converged, 1 not converged in ``maxit`` iterations, 2 unbounded (no finite q*),
3 degenerate (q* = 0), 4 quadrature unreliable (integrand not negligible at |z| = 10
or non-finite), 5 no solution in the searched range.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .act import make_stack, phi_dphi, relu_family_slope
from .quad import expect1, expect_pair_c

OK, NOT_CONVERGED, UNBOUNDED, DEGENERATE, QUAD_FAIL, NO_SOLUTION = 0, 1, 2, 3, 4, 5
QMAX = 1e16
QMIN_DESCENT = 40  # halvings by 4 before q* = 0 is declared (4**-40 ~ 1e-24)


@njit(cache=True)
def homogeneous_h(spec):
    """E[φ'(u)²] for the ReLU family / linear (q-independent), else -1."""
    a = relu_family_slope(spec)
    if a != a:
        return -1.0
    return 0.5 * (1.0 + a * a)


@njit(cache=True)
def _g(spec, w, b, q, e):
    expect1(spec, q, e)
    return w * e[0] + b - q


@njit(cache=True)
def qstar(spec, w, b, tol, maxit, out):
    """Stable fixed point of the q-map reached from q = 1 (bracketed Newton).

    out = [q*, status, iterations]
    """
    out[0] = math.nan
    out[1] = OK
    out[2] = 0
    h = homogeneous_h(spec)
    if h > 0.0:  # q-map is linear: q' = w h q + b
        if w * h < 1.0:
            out[0] = b / (1.0 - w * h)
            if b == 0.0:
                out[1] = DEGENERATE
        else:
            out[1] = UNBOUNDED if (b > 0.0 or w * h > 1.0) else DEGENERATE
            out[0] = math.inf if out[1] == UNBOUNDED else math.nan
        return
    e = np.empty(5, dtype=np.float64)
    g1 = _g(spec, w, b, 1.0, e)
    if e[4] != 0.0:
        out[1] = QUAD_FAIL
        return
    if g1 == 0.0:
        out[0] = 1.0
        return
    lo = 1.0
    hi = 1.0
    glo = g1
    ghi = g1
    if g1 > 0.0:
        while True:
            hi = lo * 4.0
            ghi = _g(spec, w, b, hi, e)
            if e[4] != 0.0:
                out[1] = QUAD_FAIL if ghi <= 0.0 or hi < 1e6 else UNBOUNDED
                out[0] = math.inf if out[1] == UNBOUNDED else math.nan
                return
            # a sign change must stand clear of g's rounding level (~1e-16 q): at the edge of
            # the unbounded region (ReLU-like growth at sigma_w^2 = 2) g(q)/q -> 0 and rounding
            # alone would produce a spurious root
            if ghi < -1e-12 * hi:
                break
            lo = hi
            glo = ghi
            if hi > QMAX:
                out[0] = math.inf
                out[1] = UNBOUNDED
                return
        if ghi == 0.0:
            out[0] = hi
            return
    else:
        g0 = _g(spec, w, b, 0.0, e)
        found = False
        for _ in range(QMIN_DESCENT):
            lo = hi * 0.25
            glo = _g(spec, w, b, lo, e)
            # with q = 0 an exact fixed point (g0 == 0), a root at tiny q must stand clear of
            # the rounding level of g (~1e-16 q), or it is noise and q* = 0
            if glo >= 0.0 and (g0 != 0.0 or glo > 1e-13 * lo):
                found = True
                break
            hi = lo
            ghi = glo
        if not found:
            if g0 > 0.0:
                lo = 0.0
                glo = g0
            else:
                out[0] = 0.0
                out[1] = DEGENERATE
                return
        if glo == 0.0:
            out[0] = lo
            return
    # safeguarded Newton on g (g(lo) > 0 > g(hi))
    x = math.sqrt(lo * hi) if lo > 0.0 else 0.5 * hi
    it = 0
    while it < maxit:
        it += 1
        gx = _g(spec, w, b, x, e)
        dg = w * e[2] - 1.0
        if gx == 0.0:
            break
        if gx > 0.0:
            lo = x
        else:
            hi = x
        xn = x - gx / dg if dg != 0.0 else math.nan
        if not (xn > lo and xn < hi) or not math.isfinite(xn):
            xn = math.sqrt(lo * hi) if (lo > 0.0 and hi > 4.0 * lo) else 0.5 * (lo + hi)
        if abs(xn - x) <= tol * abs(xn) or hi - lo <= tol * hi:
            x = xn
            break
        x = xn
    out[0] = x
    out[2] = it
    if it >= maxit:
        out[1] = NOT_CONVERGED


@njit(cache=True)
def _h(spec, w, b, q, c, e):
    expect_pair_c(spec, q, q, c, e)
    return (w * e[0] + b - q * c) / q


@njit(cache=True)
def cstar(spec, w, b, q, tol, maxit, out):
    """Stable correlation fixed point below 1 in the chaotic phase (bracketed Newton).

    out = [c*, chi_c, status, iterations]; requires χ₁ > 1 at q.
    """
    e = np.empty(2, dtype=np.float64)
    out[2] = OK
    out[3] = 0
    lo = 0.0
    hlo = _h(spec, w, b, q, 0.0, e)
    if hlo <= 1e-16:  # h(0) = (σ_w² E[φ]² + σ_b²)/q >= 0; at rounding level c* = 0 (odd φ, σ_b² = 0)
        out[0] = 0.0
        out[1] = w * e[1]
        return
    delta = 0.5
    hi = 1.0 - delta
    hhi = _h(spec, w, b, q, hi, e)
    while hhi >= 0.0:
        delta *= 0.25
        if delta < 1e-16:
            out[0] = 1.0
            expect_pair_c(spec, q, q, 1.0, e)
            out[1] = w * e[1]
            return
        if hhi > 0.0:
            lo = hi
        hi = 1.0 - delta
        hhi = _h(spec, w, b, q, hi, e)
    x = 0.5 * (lo + hi)
    it = 0
    while it < maxit:
        it += 1
        hx = _h(spec, w, b, q, x, e)
        dh = w * e[1] - 1.0
        if hx == 0.0:
            break
        if hx > 0.0:
            lo = x
        else:
            hi = x
        xn = x - hx / dh if dh != 0.0 else math.nan
        if not (xn > lo and xn < hi) or not math.isfinite(xn):
            xn = 0.5 * (lo + hi)
        if abs(xn - x) <= tol or hi - lo <= tol:
            x = xn
            break
        x = xn
    expect_pair_c(spec, q, q, x, e)
    out[0] = x
    out[1] = w * e[1]
    out[3] = it
    if it >= maxit:
        out[2] = NOT_CONVERGED


# Layout of the point kernel's output row.
P_Q, P_C, P_CHI1, P_CHIQ, P_CHIC, P_QSTATUS, P_QITER, P_CSTATUS, P_CITER = range(9)
P_SIZE = 9


@njit(cache=True)
def point(spec, w, b, crit_tol, tol, maxit, out):
    """All fixed-point quantities at (w, b) = (σ_w², σ_b²) into ``out`` (length P_SIZE).

    c* is NaN where it is undefined (degenerate smooth activations: the c-map is the identity).
    """
    for i in range(P_SIZE):
        out[i] = math.nan
    qo = np.empty(3, dtype=np.float64)
    qstar(spec, w, b, tol, maxit, qo)
    out[P_Q] = qo[0]
    out[P_QSTATUS] = qo[1]
    out[P_QITER] = qo[2]
    out[P_CSTATUS] = OK
    out[P_CITER] = 0
    st = int(qo[1])
    if st == UNBOUNDED or st == QUAD_FAIL:
        return
    q = qo[0]
    e = np.empty(5, dtype=np.float64)
    h = homogeneous_h(spec)
    if h > 0.0:
        chi1 = w * h
        out[P_CHI1] = chi1
        out[P_CHIQ] = chi1
        if st == DEGENERATE and not (chi1 < 1.0):
            return
        out[P_C] = 1.0
        out[P_CHIC] = chi1
        return
    expect1(spec, q, e)
    chi1 = w * e[1]
    out[P_CHI1] = chi1
    out[P_CHIQ] = w * e[2]
    if st == DEGENERATE:
        # q* = 0: the c-map is the identity to first order; c* undefined, chi_c -> chi_1
        out[P_CHIC] = chi1
        return
    if chi1 <= 1.0 + crit_tol:
        out[P_C] = 1.0
        out[P_CHIC] = chi1
        return
    co = np.empty(4, dtype=np.float64)
    cstar(spec, w, b, q, tol, maxit, co)
    out[P_C] = co[0]
    out[P_CHIC] = co[1]
    out[P_CSTATUS] = co[2]
    out[P_CITER] = co[3]


@njit(cache=True)
def critical_from_q(spec, q, out):
    """Critical point with fixed point q: out = [σ_w², σ_b², D(q), V(q), quad_flag]."""
    e = np.empty(5, dtype=np.float64)
    expect1(spec, q, e)
    out[0] = 1.0 / e[1]
    out[1] = q - e[0] / e[1]
    out[2] = e[1]
    out[3] = e[0]
    out[4] = e[4]


@njit(cache=True)
def _bq(spec, q, target, e):
    expect1(spec, q, e)
    return q - e[0] / e[1] - target


@njit(cache=True)
def critical_from_b(spec, b, tol, out):
    """Smallest q > 0 on the critical line with σ_b²(q) = b (scan + Brent).

    out = [σ_w², q*, status, iterations]
    """
    e = np.empty(5, dtype=np.float64)
    out[2] = OK
    out[3] = 0
    q_prev = 0.0
    f_prev = -b
    stack = make_stack(spec)
    f0, d0 = phi_dphi(spec, 0.0, stack)
    if f0 != 0.0 or d0 == 0.0:
        f_prev = _bq(spec, 1e-12, b, e)
        q_prev = 1e-12
    a = 0.0
    fa = 0.0
    bb = 0.0
    fb = 0.0
    found = False
    q = max(q_prev, 1e-12)
    while q < QMAX:
        q *= 2.0
        fq = _bq(spec, q, b, e)
        if e[4] != 0.0:
            break
        if fq >= 0.0 and f_prev < 0.0:
            a, fa, bb, fb = q_prev, f_prev, q, fq
            found = True
            break
        q_prev = q
        f_prev = fq
    if not found:
        out[0] = math.nan
        out[1] = math.nan
        out[2] = NO_SOLUTION
        return
    # Brent's method on [a, bb]
    c = a
    fc = fa
    d = bb - a
    ee = d
    it = 0
    for it in range(1, 200):
        if fb * fc > 0.0:
            c = a
            fc = fa
            d = bb - a
            ee = d
        if abs(fc) < abs(fb):
            a = bb
            bb = c
            c = a
            fa = fb
            fb = fc
            fc = fa
        tol1 = 2.0 * 2.2e-16 * abs(bb) + 0.5 * tol * abs(bb)
        xm = 0.5 * (c - bb)
        if abs(xm) <= tol1 or fb == 0.0:
            break
        if abs(ee) >= tol1 and abs(fa) > abs(fb):
            s = fb / fa
            if a == c:
                p = 2.0 * xm * s
                qq = 1.0 - s
            else:
                qq = fa / fc
                r = fb / fc
                p = s * (2.0 * xm * qq * (qq - r) - (bb - a) * (r - 1.0))
                qq = (qq - 1.0) * (r - 1.0) * (s - 1.0)
            if p > 0.0:
                qq = -qq
            p = abs(p)
            if 2.0 * p < min(3.0 * xm * qq - abs(tol1 * qq), abs(ee * qq)):
                ee = d
                d = p / qq
            else:
                d = xm
                ee = d
        else:
            d = xm
            ee = d
        a = bb
        fa = fb
        if abs(d) > tol1:
            bb += d
        else:
            bb += tol1 if xm > 0 else -tol1
        fb = _bq(spec, bb, b, e)
    expect1(spec, bb, e)
    out[0] = 1.0 / e[1]
    out[1] = bb
    out[3] = it
    if it >= 199:
        out[2] = NOT_CONVERGED
