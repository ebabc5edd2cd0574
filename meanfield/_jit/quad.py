"""Gaussian expectations of activations, accurate to ~1e-14 relative, for any variance.

A fixed Gauss–Hermite rule fails at large q because φ(√q z) varies on the
scale 1/√q around z = 0 (THEORY.md §2). Here every expectation
E[f(m + s z)], z ~ N(0, 1), is a composite Gauss–Legendre rule on [-Z, Z] whose
breakpoints are the union of

- a fixed mesh for the Gaussian weight (0, ±1, ±2, ±3, ±4, ±5.5, ±7.5, ±10);
- a geometric mesh graded toward the point z₀ = −m/s where the argument
  crosses the activation's feature scale (panel widths 1/s, 2/s, 4/s, ...);
- the activation's kinks mapped to z, so that no panel straddles a jump of φ';
- for oscillating activations, a cap on the panel width (``spec[1][3]`` / s).

With 12 nodes a panel and the nearest singularity of φ at distance ≳ 1 in
pre-activation units (tanh: π/2), every panel's Bernstein-ellipse parameter is
≳ 2.4 and the rule converges to rounding error. Bivariate expectations are
iterated: condition on u₁, integrate over u₂ | u₁ (a shifted, narrower 1-D
Gaussian) with its own graded mesh, so that they stay accurate as c → 1.

Closed forms replace quadrature for erf, the ReLU family and linear.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .act import K_ERF, make_stack, phi_dphi, relu_family_slope

GL_N = 12
_gx, _gw = np.polynomial.legendre.leggauss(GL_N)
GLX = np.ascontiguousarray(_gx)
GLW = np.ascontiguousarray(_gw)
ZMAX = 10.0
BASE_EDGES = np.array([-10.0, -7.5, -5.5, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.5, 7.5, 10.0])
INV_SQRT_2PI = 0.3989422804014327
TWO_OVER_PI = 0.6366197723675814
INV_2PI = 0.15915494309189535


EBUF = 640  # edges: 15 base + 1 centre + graded points around the centre and around each kink
NBUF = 4096  # nodes held in the work buffers before a larger array is allocated
NODE_LIMIT = 1 << 20  # beyond this a rule is refused (count -1): capped meshes at huge q only


@njit(cache=True)
def fill_edges(ebuf, center, a, kinks, shift, scale, ka=1.0):
    """Write the sorted, de-duplicated panel edges on [-ZMAX, ZMAX] into ``ebuf``; return their count.

    ``center``: the graded point; ``a``: the smallest panel width there (no grading when
    ``a >= 1``); kinks map to z as ``(k - shift) / scale`` and are graded toward with smallest
    width ``ka`` when ``0 < ka < 1`` (a kink smoothed over that width: the conditional mean of
    a kinked φ' in a bivariate integral near c = 1). No allocation.
    """
    n = 0
    for e in BASE_EDGES:
        ebuf[n] = e
        n += 1
    if center > -ZMAX and center < ZMAX:
        ebuf[n] = center
        n += 1
    if a < 1.0:
        w = a
        while w < 2.0 and n < EBUF - 2 - kinks.shape[0]:
            ebuf[n] = center - w
            ebuf[n + 1] = center + w
            n += 2
            w *= 2.0
    if scale > 0.0:
        for i in range(kinks.shape[0]):
            kz = (kinks[i] - shift) / scale
            ebuf[n] = kz
            n += 1
            if ka > 0.0 and ka < 1.0 and kz > -ZMAX and kz < ZMAX:
                w = ka
                while w < 2.0 and n < EBUF - 2:
                    ebuf[n] = kz - w
                    ebuf[n + 1] = kz + w
                    n += 2
                    w *= 2.0
    for i in range(n):  # clip, then insertion sort (n is small)
        v = ebuf[i]
        if v < -ZMAX:
            v = -ZMAX
        elif v > ZMAX:
            v = ZMAX
        j = i - 1
        while j >= 0 and ebuf[j] > v:
            ebuf[j + 1] = ebuf[j]
            j -= 1
        ebuf[j + 1] = v
    m = 1
    for i in range(1, n):
        if ebuf[i] - ebuf[m - 1] > 1e-13:
            ebuf[m] = ebuf[i]
            m += 1
    return m


@njit(cache=True)
def fill_nodes(center, a, cap, kinks, shift, scale, ebuf, zbuf, wbuf, ka=1.0):
    """Nodes z and weights w (Gaussian density included) of the graded composite rule.

    Returns ``(count, z, w)``; ``z``/``w`` are the work buffers unless more than ``NBUF``
    nodes are needed (oscillating activations at large variance), then fresh arrays.
    """
    ne = fill_edges(ebuf, center, a, kinks, shift, scale, ka)
    total = 0
    for i in range(ne - 1):
        k = 1
        if cap < 2.0 * ZMAX:
            k = max(1, int(math.ceil((ebuf[i + 1] - ebuf[i]) / cap)))
        total += k * GL_N
    zs = zbuf
    ws = wbuf
    if total > NODE_LIMIT:
        # an oscillating activation at a huge variance: refuse rather than allocate gigabytes;
        # callers report the expectation as unreliable
        return -1, zs, ws
    if total > zbuf.shape[0]:
        zs = np.empty(total, dtype=np.float64)
        ws = np.empty(total, dtype=np.float64)
    m = 0
    for i in range(ne - 1):
        k = 1
        if cap < 2.0 * ZMAX:
            k = max(1, int(math.ceil((ebuf[i + 1] - ebuf[i]) / cap)))
        h = (ebuf[i + 1] - ebuf[i]) / k
        for t in range(k):
            lo = ebuf[i] + t * h
            half = 0.5 * h
            mid = lo + half
            for j in range(GL_N):
                z = mid + half * GLX[j]
                zs[m] = z
                ws[m] = half * GLW[j] * math.exp(-0.5 * z * z) * INV_SQRT_2PI
                m += 1
    return m, zs, ws


@njit(cache=True)
def make_work():
    return (np.empty(EBUF, dtype=np.float64), np.empty(NBUF, dtype=np.float64), np.empty(NBUF, dtype=np.float64))


@njit(cache=True)
def build_edges(center, a, cap, kinks, shift, scale):
    """Panel edges as a fresh array (cap splitting included); for tests and diagnostics."""
    ebuf = np.empty(EBUF, dtype=np.float64)
    ne = fill_edges(ebuf, center, a, kinks, shift, scale)
    out = []
    for i in range(ne - 1):
        k = 1
        if cap < 2.0 * ZMAX:
            k = max(1, int(math.ceil((ebuf[i + 1] - ebuf[i]) / cap)))
        h = (ebuf[i + 1] - ebuf[i]) / k
        for t in range(k):
            out.append(ebuf[i] + t * h)
    out.append(ebuf[ne - 1])
    return np.array(out)


@njit(cache=True)
def _inner(spec, m, sd, stack, work):
    """(E[φ(m + sd z)], E[φ'(m + sd z)]) for z ~ N(0, 1)."""
    if sd <= 0.0:
        return phi_dphi(spec, m, stack)
    n, zs, ws = fill_nodes(-m / sd, 1.0 / sd, spec[1][3] / sd, spec[6], m, sd, work[0], work[3], work[4])
    if n < 0:
        return math.nan, math.nan
    s0 = 0.0
    s1 = 0.0
    for i in range(n):
        f, d = phi_dphi(spec, m + sd * zs[i], stack)
        s0 += ws[i] * f
        s1 += ws[i] * d
    return s0, s1


@njit(cache=True)
def expect1(spec, q, out):
    """One-variable expectations at variance ``q`` >= 0, u = √q z.

    out[0] = E[φ(u)²]          (V(q); the q-map is σ_w² V + σ_b²)
    out[1] = E[φ'(u)²]         (D(q); χ₁ = σ_w² D(q*))
    out[2] = dV/dq             (χ_q = σ_w² dV/dq; Stein: E[(φ² - φ(0)²)(z² - 1)] / 2q)
    out[3] = E[φ(u)]
    out[4] = 1.0 if the Gaussian tail at |z| = 10 is not negligible (result unreliable) else 0.0
    """
    kind = spec[0]
    out[4] = 0.0
    if kind == K_ERF:
        out[0] = TWO_OVER_PI * math.asin(2.0 * q / (1.0 + 2.0 * q))
        out[1] = 2.0 * TWO_OVER_PI / math.sqrt(1.0 + 4.0 * q)
        out[2] = 2.0 * TWO_OVER_PI / ((1.0 + 2.0 * q) * math.sqrt(1.0 + 4.0 * q))
        out[3] = 0.0
        return
    al = relu_family_slope(spec)
    if al == al:  # ReLU family: closed forms
        h = 0.5 * (1.0 + al * al)
        out[0] = h * q
        out[1] = h
        out[2] = h
        out[3] = (1.0 - al) * math.sqrt(q) * INV_SQRT_2PI
        return
    stack = make_stack(spec)
    f0, d0 = phi_dphi(spec, 0.0, stack)
    if q <= 0.0:
        out[0] = f0 * f0
        out[1] = d0 * d0
        out[2] = d0 * d0 if f0 == 0.0 else math.nan
        out[3] = f0
        return
    s = math.sqrt(q)
    ebuf, zbuf, wbuf = make_work()
    n, zs, ws = fill_nodes(0.0, 1.0 / s, spec[1][3] / s, spec[6], 0.0, s, ebuf, zbuf, wbuf)
    if n < 0:
        for i in range(4):
            out[i] = math.nan
        out[4] = 1.0
        return
    v = 0.0
    dd = 0.0
    st = 0.0
    mean = 0.0
    for i in range(n):
        z = zs[i]
        w = ws[i]
        f, d = phi_dphi(spec, s * z, stack)
        v += w * f * f
        dd += w * d * d
        st += w * (f * f - f0 * f0) * (z * z - 1.0)
        mean += w * f
    out[0] = v
    out[1] = dd
    out[2] = st / (2.0 * q)
    out[3] = mean
    # tail check at |z| = ZMAX: the integrand there must be negligible against the total
    ft, dt = phi_dphi(spec, s * ZMAX, stack)
    fb, db = phi_dphi(spec, -s * ZMAX, stack)
    tail = (max(ft * ft, fb * fb, dt * dt, db * db) * ZMAX * ZMAX) * math.exp(-0.5 * ZMAX * ZMAX) * INV_SQRT_2PI
    ref = abs(out[0]) + abs(out[1])
    if not (tail <= 1e-15 * ref) or not (math.isfinite(out[0]) and math.isfinite(out[1]) and math.isfinite(out[2])):
        out[4] = 1.0


@njit(cache=True)
def expect_pair_c(spec, q1, q2, c, out):
    """Bivariate expectations for variances q1, q2 >= 0 and correlation c in [-1, 1].

    out[0] = E[φ(u1) φ(u2)], out[1] = E[φ'(u1) φ'(u2)], with
    u1 = √q1 z1, u2 = √q2 (c z1 + √(1 - c²) z2).
    """
    kind = spec[0]
    if c > 1.0:
        c = 1.0
    elif c < -1.0:
        c = -1.0
    if kind == K_ERF:
        s12 = c * math.sqrt(q1 * q2)
        a = (1.0 + 2.0 * q1) * (1.0 + 2.0 * q2)
        out[0] = TWO_OVER_PI * math.asin(2.0 * s12 / math.sqrt(a))
        # (1+2q1)(1+2q2) - 4 s12^2 = 1 + 2q1 + 2q2 + 4 q1 q2 (1 - c)(1 + c)
        out[1] = 2.0 * TWO_OVER_PI / math.sqrt(1.0 + 2.0 * q1 + 2.0 * q2 + 4.0 * q1 * q2 * (1.0 - c) * (1.0 + c))
        return
    al = relu_family_slope(spec)
    if al == al:  # ReLU family: arc-cosine kernel
        s12 = c * math.sqrt(q1 * q2)
        th = math.acos(c)
        k = math.sqrt(q1 * q2) * INV_2PI * (math.sqrt((1.0 - c) * (1.0 + c)) + (math.pi - th) * c)
        out[0] = al * s12 + (1.0 - al) * (1.0 - al) * k
        out[1] = al + (1.0 - al) * (1.0 - al) * (math.pi - th) * INV_2PI
        return
    stack = make_stack(spec)
    ebuf, zbuf, wbuf = make_work()
    work = (np.empty(EBUF, dtype=np.float64), zbuf, wbuf, np.empty(NBUF, dtype=np.float64),
            np.empty(NBUF, dtype=np.float64))
    if q1 <= 0.0 or q2 <= 0.0:
        f0, d0 = phi_dphi(spec, 0.0, stack)
        qo = q1 if q1 > 0.0 else q2
        g0, g1 = _inner(spec, 0.0, math.sqrt(qo), stack, work)
        out[0] = f0 * g0
        out[1] = d0 * g1
        return
    s1 = math.sqrt(q1)
    s2 = math.sqrt(q2)
    sd = s2 * math.sqrt((1.0 - c) * (1.0 + c))
    ca = abs(c) * s2
    # outer grading: the finer of φ(√q1 z1)'s scale and the inner mean's scale
    a = 1.0 / s1
    if ca > 0.0:
        a2 = max(1.0, sd) / ca
        if a2 < a:
            a = a2
    cap = spec[1][3] / max(s1, ca)
    # kinks of the outer integrand: φ's own, and (when the inner spread is small) those of the inner mean
    nk = spec[6].shape[0]
    if sd < 1.0 and ca > 0.0 and nk > 0:
        kz = np.empty(2 * nk, dtype=np.float64)
        for i in range(nk):
            kz[i] = spec[6][i]
            kz[nk + i] = spec[6][i] * s1 / (c * s2)
    else:
        kz = spec[6]
    # the inner mean of a kinked φ is that kink smoothed over width sd (in u2): in z1 a transition
    # of width sd / (|c| s2) around each mapped kink, which the outer mesh must grade toward
    ka = 1.0
    if sd < 1.0 and ca > 0.0 and nk > 0:
        ka = sd / ca
    n, zs, ws = fill_nodes(0.0, a, cap, kz, 0.0, s1, ebuf, zbuf, wbuf, ka)
    if n < 0:
        out[0] = math.nan
        out[1] = math.nan
        return
    zs = zs[:n].copy()
    ws = ws[:n].copy()
    e0 = 0.0
    e1 = 0.0
    for i in range(n):
        z = zs[i]
        f, d = phi_dphi(spec, s1 * z, stack)
        g0, g1 = _inner(spec, c * s2 * z, sd, stack, work)
        e0 += ws[i] * f * g0
        e1 += ws[i] * d * g1
    out[0] = e0
    out[1] = e1


@njit(cache=True)
def expect_pair(spec, s11, s22, s12, deriv):
    """E[f(u1) f(u2)] for (u1, u2) ~ N(0, [[s11, s12], [s12, s22]]); f = φ (deriv=0) or φ' (deriv=1)."""
    out = np.empty(2, dtype=np.float64)
    if s11 > 0.0 and s22 > 0.0:
        c = s12 / math.sqrt(s11 * s22)
    else:
        c = 0.0
    expect_pair_c(spec, s11, s22, c, out)
    return out[deriv]


@njit(cache=True)
def expect_dphi_power(spec, q, p):
    """E[φ'(√q z)^p] (p >= 1), with the same graded rule as :func:`expect1`."""
    stack = make_stack(spec)
    if q <= 0.0:
        f0, d0 = phi_dphi(spec, 0.0, stack)
        return d0 ** p
    s = math.sqrt(q)
    ebuf, zbuf, wbuf = make_work()
    n, zs, ws = fill_nodes(0.0, 1.0 / s, spec[1][3] / s, spec[6], 0.0, s, ebuf, zbuf, wbuf)
    if n < 0:
        return math.nan
    acc = 0.0
    for i in range(n):
        f, d = phi_dphi(spec, s * zs[i], stack)
        acc += ws[i] * d ** p
    return acc
