"""Numba kernels of the phase-diagram engine (``meanfield.phase``).

The Gaussian expectations that the fixed-point maps need depend on (σ_w², σ_b²)
only through the pre-activation variance q and the correlation c, so they are
tabulated once per activation as piecewise Chebyshev series and every grid point
is solved on the tables, in parallel (``numba.prange``; each iteration writes
only its own cells, so the result does not depend on the number of threads).

Tables (built in :mod:`meanfield.phase`, evaluated here)
--------------------------------------------------------
*One-dimensional* (``t1``): V(q) = E[φ²], D(q) = E[φ'²] and dV/dq as Chebyshev
series in q on quarter-octave panels (:func:`q_panel`): geometric panels make the
error relative to the local scale of each function, down to q ~ 1e-25.

*Two-dimensional* (``t2``): for the s-panels that chaotic grid points need,
tensor Chebyshev patches in (s, θ), θ = arccos c, of

- G(q, c) = (V(q) − F(q, c)) / (q (1 − c)), F = E[φ(u₁)φ(u₂)] (a divided
  difference: the c-map's fixed-point equation w F + b = q c becomes
  w G(q*, c) = 1 without cancellation near c = 1), and
- P(q, c) = E[φ'(u₁)φ'(u₂)] (χ_c = σ_w² P(q*, c*)),

on θ-panels graded toward θ = 0, where F's nearest complex singularity
(at c = 1 + O(1/q)) approaches. ``g1`` holds G at the θ-panel edges as 1-D
series in s so that the panel holding c* is found without collapsing patches.

Every kernel mirrors the decisions of :func:`meanfield._jit.fixed.point`
(bracket scans, degenerate and unbounded cases, phase thresholds). A decision
that the table's error could flip (a sign within a safety margin of zero) is not
taken: the point is flagged and solved by the exact point kernel instead, so the
grid reproduces ``meanfield.point``'s flags exactly.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .act import make_stack, phi_dphi
from .fixed import (DEGENERATE, NOT_CONVERGED, OK, P_C, P_CHI1, P_CHIC, P_CHIQ, P_CSTATUS, P_Q, P_QSTATUS,
                    P_SIZE, QMAX, QMIN_DESCENT, QUAD_FAIL, UNBOUNDED, point)
from .quad import expect1

# Output columns of the grid kernels (one row per grid point).
G_Q, G_C, G_CHI1, G_CHIQ, G_CHIC, G_QST, G_CST, G_FLAG = range(8)
G_SIZE = 8
# Flags
F_DONE, F_FALLBACK, F_NEED_C = 0, 1, 2

# Relative safety margins of decisions taken on the tables (the tables are
# accurate to ~1e-15 relative; see meanfield.phase.table_info).
MARGIN_G = 1e-12
MARGIN_CHI = 1e-12


@njit(cache=True)
def cheb(coef, x):
    """Σ_k coef[k] T_k(x) (Clenshaw)."""
    return _cheb_n(coef, coef.shape[0], x)


@njit(cache=True)
def s_panel(s, klo):
    """(panel index, local coordinate in [-1, 1]) of the standard deviation ``s`` >= 0 in the
    2-D tables: [0, 2^klo] (index 0), then octaves [2^(klo+i-1), 2^(klo+i)]."""
    lo = math.ldexp(1.0, klo)
    if s <= lo:
        return 0, 2.0 * s / lo - 1.0
    m, e = math.frexp(s)  # s = m 2^e, m in [0.5, 1)
    return e - klo, 4.0 * m - 3.0


NSUB1 = 4  # sub-panels per octave of q in the 1-D tables


@njit(cache=True)
def q_panel(q, elo):
    """(panel index, local coordinate in [-1, 1]) of q >= 0 in the 1-D tables.

    Panel 0 is [0, 2^(elo-1)]; then each octave [2^(e-1), 2^e) of q (e >= elo) is split
    into NSUB1 equal sub-panels, so that the nearest singularity (q = 0) is >= 4 panel
    half-widths away and a short series suffices.
    """
    m, e = math.frexp(q)  # q = m 2^e, m in [0.5, 1)
    if e < elo or q <= 0.0:
        return 0, q * math.ldexp(2.0, 1 - elo) - 1.0
    u = (m - 0.5) * (2.0 * NSUB1)
    j = int(u)
    if j >= NSUB1:
        j = NSUB1 - 1
    return 1 + (e - elo) * NSUB1 + j, 2.0 * (u - j) - 1.0


@njit(cache=True)
def t1_eval(t1, n1, elo, valid, q, f):
    """Table function ``f`` (0 V, 1 D, 2 dV/dq) at q; NaN outside the valid table."""
    k, x = q_panel(q, elo)
    if k >= t1.shape[0] or valid[k] == 0:
        return math.nan
    return _cheb_n(t1[k, f], n1[k, f], x)


@njit(cache=True)
def _pair(t1, n1, elo, valid, q, f, g):
    """(f(q), g(q), ok) for two table functions with one fused Clenshaw recurrence."""
    k, x = q_panel(q, elo)
    if k >= t1.shape[0] or valid[k] == 0:
        return 0.0, 0.0, False
    cv = t1[k, f]
    cd = t1[k, g]
    n = max(n1[k, f], n1[k, g])
    b1 = 0.0
    b2 = 0.0
    d1 = 0.0
    d2 = 0.0
    x2 = 2.0 * x
    for i in range(n - 1, 0, -1):
        t = cv[i] + x2 * b1 - b2
        b2 = b1
        b1 = t
        u = cd[i] + x2 * d1 - d2
        d2 = d1
        d1 = u
    return cv[0] + x * b1 - b2, cd[0] + x * d1 - d2, True


@njit(cache=True)
def _vdv(t1, n1, elo, valid, q):
    """(V(q), dV/dq(q), ok)."""
    return _pair(t1, n1, elo, valid, q, 0, 2)


@njit(cache=True)
def _sure(g, scale):
    """Is the sign of g certain given the table's error (relative to ``scale``)?"""
    return abs(g) > MARGIN_G * scale


@njit(cache=True)
def qstar_table(spec, t1, n1, klo, valid, w, b, tol, maxit):
    """q* on the 1-D table, mirroring :func:`meanfield._jit.fixed.qstar`.

    Returns (q*, status, ok); ok is False when the exact kernel must decide.
    """
    v, dv, ok = _vdv(t1, n1, klo, valid, 1.0)
    if not ok:
        return math.nan, OK, False
    g1 = w * v + b - 1.0
    if not _sure(g1, w * v + b + 1.0):
        return math.nan, OK, False
    lo = 1.0
    hi = 1.0
    glo = g1
    ghi = g1
    if g1 > 0.0:
        while True:
            hi = lo * 4.0
            v, dv, ok = _vdv(t1, n1, klo, valid, hi)
            if not ok:
                return math.nan, OK, False
            ghi = w * v + b - hi
            if not _sure(ghi, w * v + b + hi):
                return math.nan, OK, False
            if ghi <= 0.0:
                break
            lo = hi
            glo = ghi
            if hi > QMAX:
                return math.inf, UNBOUNDED, True
    else:
        found = False
        for _ in range(QMIN_DESCENT):
            lo = hi * 0.25
            v, dv, ok = _vdv(t1, n1, klo, valid, lo)
            if not ok:
                return math.nan, OK, False
            glo = w * v + b - lo
            if not _sure(glo, w * v + b + lo):
                return math.nan, OK, False
            if glo >= 0.0:
                found = True
                break
            hi = lo
            ghi = glo
        if not found:
            # g(0) = w V(0) + b with V(0) = φ(0)² exactly, as the exact kernel computes it
            e5 = np.empty(5, dtype=np.float64)
            expect1(spec, 0.0, e5)
            glo = w * e5[0] + b
            if glo > 0.0:
                lo = 0.0
            else:
                return 0.0, DEGENERATE, True
    # safeguarded Newton on g (g(lo) > 0 > g(hi)) in the bracket the exact kernel finds,
    # started from the secant through the bracket's ends (saves two iterations)
    x = lo + (hi - lo) * glo / (glo - ghi)
    if not (x > lo and x < hi):
        x = math.sqrt(lo * hi) if lo > 0.0 else 0.5 * hi
    it = 0
    dprev = math.inf
    while it < maxit:
        it += 1
        v, dv, ok = _vdv(t1, n1, klo, valid, x)
        if not ok:
            return math.nan, OK, False
        gx = w * v + b - x
        dg = w * dv - 1.0
        if gx == 0.0:
            break
        if gx > 0.0:
            lo = x
        else:
            hi = x
        xn = x - gx / dg if dg != 0.0 else math.nan
        newton = (xn > lo and xn < hi) and math.isfinite(xn)
        if not newton:
            xn = math.sqrt(lo * hi) if (lo > 0.0 and hi > 4.0 * lo) else 0.5 * (lo + hi)
        step = abs(xn - x)
        if step <= tol * abs(xn) or hi - lo <= tol * hi:
            x = xn
            break
        # quadratic convergence: the error after this Newton step is ~ step^3 / dprev^2;
        # stop without a confirming iteration once that is far below the tolerance
        if newton and dprev < math.inf and step < 1e-3 * dprev \
                and step * step * step <= 1e-2 * tol * abs(xn) * dprev * dprev:
            x = xn
            break
        dprev = step if newton else math.inf
        x = xn
    return x, (NOT_CONVERGED if it >= maxit else OK), True


@njit(cache=True)
def _q_one(spec, t1, n1, klo, valid, w, b, crit_tol, tol, maxit, row):
    for i in range(G_SIZE):
        row[i] = math.nan
    row[G_CST] = OK
    row[G_FLAG] = F_FALLBACK
    q, st, ok = qstar_table(spec, t1, n1, klo, valid, w, b, tol, maxit)
    if not ok:
        return
    row[G_Q] = q
    row[G_QST] = st
    if st == UNBOUNDED:
        row[G_FLAG] = F_DONE
        return
    if st == DEGENERATE:
        e5 = np.empty(5, dtype=np.float64)
        expect1(spec, 0.0, e5)  # closed values at q = 0, exactly as the point kernel
        chi1 = w * e5[1]
        row[G_CHI1] = chi1
        row[G_CHIQ] = w * e5[2]
        row[G_CHIC] = chi1
        row[G_FLAG] = F_DONE
        return
    d, dv, ok = _pair(t1, n1, klo, valid, q, 1, 2)
    if not ok:
        return
    chi1 = w * d
    row[G_CHI1] = chi1
    row[G_CHIQ] = w * dv
    # phase thresholds |χ₁ - 1| = crit_tol: too close to call on the table -> exact kernel
    m = MARGIN_CHI * abs(chi1)
    if abs(chi1 - (1.0 + crit_tol)) <= m or abs(chi1 - (1.0 - crit_tol)) <= m or not math.isfinite(chi1) \
            or not math.isfinite(dv):
        row[G_FLAG] = F_FALLBACK
        return
    if chi1 <= 1.0 + crit_tol:
        row[G_C] = 1.0
        row[G_CHIC] = chi1
        row[G_FLAG] = F_DONE
        return
    row[G_FLAG] = F_NEED_C


@njit(cache=True, parallel=True)
def grid_q(spec, t1, n1, klo, valid, W, B, idx, crit_tol, tol, maxit, out):
    """Phase 1 for the grid points ``idx`` (flat indices into the (W, B) product grid).

    out[n] is the output row of point ``idx[n]``: q*, χ₁, χ_q, status and flag
    (F_DONE, F_FALLBACK or F_NEED_C: chaotic, c* still to be solved).
    """
    nb = B.shape[0]
    for n in prange(idx.shape[0]):
        i = idx[n] // nb
        j = idx[n] - i * nb
        _q_one(spec, t1, n1, klo, valid, W[i], B[j], crit_tol, tol, maxit, out[n])


@njit(cache=True)
def _collapse(patch, ns, nt, xs, outp):
    """outp[t] = Σ_{i<ns} T_i(xs) patch[i, t] for t < nt (the patch's effective size)."""
    for t in range(nt):
        outp[t] = patch[0, t]
    if ns == 1:
        return
    tm1 = 1.0
    ti = xs
    for t in range(nt):
        outp[t] += ti * patch[1, t]
    x2 = 2.0 * xs
    for i in range(2, ns):
        tn = x2 * ti - tm1
        tm1 = ti
        ti = tn
        for t in range(nt):
            outp[t] += ti * patch[i, t]


@njit(cache=True)
def _cheb_n(coef, n, x):
    """Σ_{k<n} coef[k] T_k(x)."""
    b1 = 0.0
    b2 = 0.0
    x2 = 2.0 * x
    for k in range(n - 1, 0, -1):
        t = coef[k] + x2 * b1 - b2
        b2 = b1
        b1 = t
    return coef[0] + x * b1 - b2


@njit(cache=True)
def _cheb_nd(coef, n, x):
    """(Σ_{k<n} coef[k] T_k(x), its derivative) via T_k' = k U_{k-1}."""
    v = coef[0]
    if n == 1:
        return v, 0.0
    d = coef[1]
    v += coef[1] * x
    tkm1 = 1.0
    tk = x
    ukm2 = 0.0
    ukm1 = 1.0
    x2 = 2.0 * x
    for k in range(2, n):
        tn = x2 * tk - tkm1
        un = x2 * ukm1 - ukm2
        v += coef[k] * tn
        d += coef[k] * k * un
        tkm1 = tk
        tk = tn
        ukm2 = ukm1
        ukm1 = un
    return v, d


@njit(cache=True)
def cstar_table(t2g, t2p, n2, g1, edges, nedge, ok2, klo2, w, q, maxit, poly):
    """c* and χ_c on the 2-D table for a chaotic point (χ₁ > 1).

    Solves w G(q, cos θ) = 1 for θ in (0, π/2] (G decreases in θ); c* = 0 when
    w G(q, 0) >= 1 (the c-map at c = 0 is at or below 0). ``poly`` is work space.
    Returns (c*, χ_c, status, ok); ok is False when the table does not cover q.
    """
    s = math.sqrt(q)
    k, xs = s_panel(s, klo2)
    if k >= ok2.shape[0] or ok2[k] != 1:
        return math.nan, math.nan, OK, False
    ne = nedge[k]
    nsg = g1.shape[2]
    jp = -1
    for j in range(1, ne + 1):
        if w * _cheb_n(g1[k, j], nsg, xs) < 1.0:
            jp = j - 1
            break
    if jp < 0:  # w G >= 1 up to θ = π/2: c* = 0
        j = ne - 1
        nsp = n2[k, j, 2]
        ntp = n2[k, j, 3]
        _collapse(t2p[k, j], nsp, ntp, xs, poly)
        return 0.0, w * _cheb_n(poly, ntp, 1.0), OK, True
    ns = n2[k, jp, 0]
    nt = n2[k, jp, 1]
    _collapse(t2g[k, jp], ns, nt, xs, poly)
    # safeguarded Newton for f(x) = w G(x) - 1 on [-1, 1], f(-1) >= 0 > f(1)
    lo = -1.0
    hi = 1.0
    flo = w * _cheb_n(poly, nt, -1.0) - 1.0
    fhi = w * _cheb_n(poly, nt, 1.0) - 1.0
    x = lo + (hi - lo) * flo / (flo - fhi) if flo > fhi else 0.0
    if not (x > lo and x < hi):
        x = 0.0
    status = NOT_CONVERGED
    for _ in range(maxit):
        v, d = _cheb_nd(poly, nt, x)
        f = w * v - 1.0
        if f == 0.0:
            status = OK
            break
        if f > 0.0:
            lo = x
        else:
            hi = x
        xn = x - f / (w * d) if d != 0.0 else math.nan
        if not (xn > lo and xn < hi) or not math.isfinite(xn):
            xn = 0.5 * (lo + hi)
        if abs(xn - x) <= 1e-15 or hi - lo <= 1e-15:
            x = xn
            status = OK
            break
        x = xn
    t0 = edges[k, jp]
    t1_ = edges[k, jp + 1]
    theta = 0.5 * (t0 + t1_) + 0.5 * (t1_ - t0) * x
    nsp = n2[k, jp, 2]
    ntp = n2[k, jp, 3]
    _collapse(t2p[k, jp], nsp, ntp, xs, poly)
    return math.cos(theta), w * _cheb_n(poly, ntp, x), status, True


@njit(cache=True, parallel=True)
def grid_c(t2g, t2p, n2, g1, edges, nedge, ok2, klo2, W, B, idx, pos, maxit, out):
    """Phase 2: c* and χ_c for the chaotic rows ``out[pos]`` (flagged F_NEED_C by :func:`grid_q`).

    Rows whose q* the 2-D table does not cover get F_FALLBACK.
    """
    nb = B.shape[0]
    nt = t2g.shape[3]
    for m in prange(pos.shape[0]):
        n = pos[m]
        row = out[n]
        if row[G_FLAG] != F_NEED_C:
            continue
        i = idx[n] // nb
        poly = np.empty(nt, dtype=np.float64)
        c, chic, st, ok = cstar_table(t2g, t2p, n2, g1, edges, nedge, ok2, klo2, W[i], row[G_Q], maxit, poly)
        if ok:
            row[G_C] = c
            row[G_CHIC] = chic
            row[G_CST] = st
            row[G_FLAG] = F_DONE
        else:
            row[G_FLAG] = F_FALLBACK


@njit(cache=True, parallel=True)
def grid_exact(spec, W, B, idx, crit_tol, tol, maxit, out):
    """The exact point kernel at the grid points ``idx`` (closed-form activations, fallbacks)."""
    nb = B.shape[0]
    for n in prange(idx.shape[0]):
        i = idx[n] // nb
        j = idx[n] - i * nb
        p = np.empty(P_SIZE, dtype=np.float64)
        point(spec, W[i], B[j], crit_tol, tol, maxit, p)
        row = out[n]
        row[G_Q] = p[P_Q]
        row[G_C] = p[P_C]
        row[G_CHI1] = p[P_CHI1]
        row[G_CHIQ] = p[P_CHIQ]
        row[G_CHIC] = p[P_CHIC]
        row[G_QST] = p[P_QSTATUS]
        row[G_CST] = p[P_CSTATUS]
        row[G_FLAG] = F_DONE


@njit(cache=True)
def _depth(chi):
    """ξ = −1/ln χ with :func:`meanfield.core.depth_scale`'s conventions (NaN for unknown)."""
    if not math.isfinite(chi):
        return math.nan
    if chi <= 0.0:
        return 0.0
    if chi >= 1.0:
        return math.inf
    return -1.0 / math.log(chi)


@njit(cache=True, parallel=True)
def finalize(rows, crit_tol, q, c, chi1, chiq, chic, xiq, xic, code, conv):
    """Output rows -> the Dataset's variables, with :func:`meanfield.core._assemble`'s rules.

    code: 0 ordered, 1 chaotic, 2 critical, 3 unbounded.
    """
    for n in prange(rows.shape[0]):
        r = rows[n]
        qs = int(r[G_QST])
        cs = int(r[G_CST])
        if qs == UNBOUNDED or qs == QUAD_FAIL:
            q[n] = math.nan
            c[n] = math.nan
            chi1[n] = math.nan
            chiq[n] = math.nan
            chic[n] = math.nan
            xiq[n] = math.nan
            xic[n] = math.nan
            code[n] = 3
            conv[n] = qs == UNBOUNDED
            continue
        x1 = r[G_CHI1]
        q[n] = r[G_Q] if math.isfinite(r[G_Q]) else math.nan
        c[n] = r[G_C]
        chi1[n] = x1
        chiq[n] = r[G_CHIQ]
        chic[n] = r[G_CHIC]
        if math.isnan(x1) or abs(x1 - 1.0) <= crit_tol:
            k = 2
        elif x1 < 1.0:
            k = 0
        else:
            k = 1
        code[n] = k
        xiq[n] = _depth(r[G_CHIQ])
        xic[n] = math.inf if k == 2 else _depth(r[G_CHIC])
        conv[n] = (qs == OK or qs == DEGENERATE) and cs == OK


@njit(cache=True, parallel=True)
def expect1_many(spec, q, out):
    """expect1 at every q (table nodes)."""
    for i in prange(q.shape[0]):
        expect1(spec, q[i], out[i])


@njit(cache=True, parallel=True)
def eval_rows(spec, R, x, f, d):
    """f[i, k] = φ(R[i] x[k]), d[i, k] = φ'(R[i] x[k])."""
    for i in prange(R.shape[0]):
        stack = make_stack(spec)
        for k in range(x.shape[0]):
            a, b = phi_dphi(spec, R[i] * x[k], stack)
            f[i, k] = a
            d[i, k] = b


__all__ = ["grid_q", "grid_c", "grid_exact", "cheb", "s_panel", "t1_eval", "qstar_table", "cstar_table",
           "expect1_many", "eval_rows", "G_SIZE"]
