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

from .act import (K_ERF, K_LEAKY_RELU, K_LINEAR, K_RELU, make_stack, phi_dphi)

GL_N = 12
_gx, _gw = np.polynomial.legendre.leggauss(GL_N)
GLX = np.ascontiguousarray(_gx)
GLW = np.ascontiguousarray(_gw)
ZMAX = 10.0
BASE_EDGES = np.array([-10.0, -7.5, -5.5, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.5, 7.5, 10.0])
INV_SQRT_2PI = 0.3989422804014327
TWO_OVER_PI = 0.6366197723675814
INV_2PI = 0.15915494309189535


@njit(cache=True)
def build_edges(center, a, cap, kinks, shift, scale):
    """Sorted, de-duplicated panel edges on [-ZMAX, ZMAX].

    ``center``: the graded point; ``a``: the smallest panel width there (no grading
    when ``a >= 1``); ``cap``: the widest panel allowed; kinks are mapped to z by
    ``(k - shift) / scale``.
    """
    nk = kinks.shape[0]
    ng = 0
    if a < 1.0:
        w = a
        while w < 2.0:
            ng += 1
            w *= 2.0
    buf = np.empty(BASE_EDGES.shape[0] + 2 * ng + 1 + nk, dtype=np.float64)
    n = 0
    for e in BASE_EDGES:
        buf[n] = e
        n += 1
    if center > -ZMAX and center < ZMAX:
        buf[n] = center
        n += 1
    if a < 1.0:
        w = a
        for _ in range(ng):
            buf[n] = center - w
            buf[n + 1] = center + w
            n += 2
            w *= 2.0
    for i in range(nk):
        if scale > 0.0:
            buf[n] = (kinks[i] - shift) / scale
            n += 1
    for i in range(n):
        if buf[i] < -ZMAX:
            buf[i] = -ZMAX
        elif buf[i] > ZMAX:
            buf[i] = ZMAX
    e = np.sort(buf[:n])
    # de-duplicate
    m = 1
    for i in range(1, n):
        if e[i] - e[m - 1] > 1e-13:
            e[m] = e[i]
            m += 1
    e = e[:m]
    if cap < 2.0 * ZMAX:
        extra = 0
        for i in range(m - 1):
            k = int(math.ceil((e[i + 1] - e[i]) / cap))
            if k > 1:
                extra += k - 1
        if extra > 0:
            out = np.empty(m + extra, dtype=np.float64)
            j = 0
            for i in range(m - 1):
                k = int(math.ceil((e[i + 1] - e[i]) / cap))
                if k < 1:
                    k = 1
                h = (e[i + 1] - e[i]) / k
                for t in range(k):
                    out[j] = e[i] + t * h
                    j += 1
            out[j] = e[m - 1]
            return out
    return e


@njit(cache=True)
def _inner(spec, m, sd, stack):
    """(E[φ(m + sd z)], E[φ'(m + sd z)]) for z ~ N(0, 1)."""
    if sd <= 0.0:
        return phi_dphi(spec, m, stack)
    cap = spec[1][3] / sd
    edges = build_edges(-m / sd, 1.0 / sd, cap, spec[6], m, sd)
    s0 = 0.0
    s1 = 0.0
    for i in range(edges.shape[0] - 1):
        lo = edges[i]
        hi = edges[i + 1]
        half = 0.5 * (hi - lo)
        mid = 0.5 * (hi + lo)
        for j in range(GL_N):
            z = mid + half * GLX[j]
            w = half * GLW[j] * math.exp(-0.5 * z * z)
            f, d = phi_dphi(spec, m + sd * z, stack)
            s0 += w * f
            s1 += w * d
    return s0 * INV_SQRT_2PI, s1 * INV_SQRT_2PI


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
    if kind == K_RELU or kind == K_LEAKY_RELU or kind == K_LINEAR:
        al = 0.0
        if kind == K_LEAKY_RELU:
            al = spec[1][0]
        elif kind == K_LINEAR:
            al = 1.0
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
    edges = build_edges(0.0, 1.0 / s, spec[1][3] / s, spec[6], 0.0, s)
    v = 0.0
    dd = 0.0
    st = 0.0
    mean = 0.0
    for i in range(edges.shape[0] - 1):
        lo = edges[i]
        hi = edges[i + 1]
        half = 0.5 * (hi - lo)
        mid = 0.5 * (hi + lo)
        for j in range(GL_N):
            z = mid + half * GLX[j]
            w = half * GLW[j] * math.exp(-0.5 * z * z)
            f, d = phi_dphi(spec, s * z, stack)
            v += w * f * f
            dd += w * d * d
            st += w * (f * f - f0 * f0) * (z * z - 1.0)
            mean += w * f
    out[0] = v * INV_SQRT_2PI
    out[1] = dd * INV_SQRT_2PI
    out[2] = st * INV_SQRT_2PI / (2.0 * q)
    out[3] = mean * INV_SQRT_2PI
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
    if kind == K_RELU or kind == K_LEAKY_RELU or kind == K_LINEAR:
        al = 0.0
        if kind == K_LEAKY_RELU:
            al = spec[1][0]
        elif kind == K_LINEAR:
            al = 1.0
        s12 = c * math.sqrt(q1 * q2)
        th = math.acos(c)
        k = math.sqrt(q1 * q2) * INV_2PI * (math.sqrt((1.0 - c) * (1.0 + c)) + (math.pi - th) * c)
        out[0] = al * s12 + (1.0 - al) * (1.0 - al) * k
        out[1] = al + (1.0 - al) * (1.0 - al) * (math.pi - th) * INV_2PI
        return
    stack = make_stack(spec)
    if q1 <= 0.0 or q2 <= 0.0:
        f0, d0 = phi_dphi(spec, 0.0, stack)
        qo = q1 if q1 > 0.0 else q2
        g0, g1 = _inner(spec, 0.0, math.sqrt(qo), stack)
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
    edges = build_edges(0.0, a, cap, spec[6], 0.0, s1)
    # kinks of the inner mean when the inner spread is small
    if sd < 1.0 and ca > 0.0 and spec[6].shape[0] > 0:
        kz = np.empty(spec[6].shape[0], dtype=np.float64)
        for i in range(kz.shape[0]):
            kz[i] = spec[6][i] / (c * s2)
        allk = np.concatenate((edges, kz))
        for i in range(allk.shape[0]):
            if allk[i] < -ZMAX:
                allk[i] = -ZMAX
            elif allk[i] > ZMAX:
                allk[i] = ZMAX
        allk = np.sort(allk)
        m = 1
        for i in range(1, allk.shape[0]):
            if allk[i] - allk[m - 1] > 1e-13:
                allk[m] = allk[i]
                m += 1
        edges = allk[:m]
    e0 = 0.0
    e1 = 0.0
    for i in range(edges.shape[0] - 1):
        lo = edges[i]
        hi = edges[i + 1]
        half = 0.5 * (hi - lo)
        mid = 0.5 * (hi + lo)
        for j in range(GL_N):
            z = mid + half * GLX[j]
            w = half * GLW[j] * math.exp(-0.5 * z * z)
            f, d = phi_dphi(spec, s1 * z, stack)
            g0, g1 = _inner(spec, c * s2 * z, sd, stack)
            e0 += w * f * g0
            e1 += w * d * g1
    out[0] = e0 * INV_SQRT_2PI
    out[1] = e1 * INV_SQRT_2PI


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
    edges = build_edges(0.0, 1.0 / s, spec[1][3] / s, spec[6], 0.0, s)
    acc = 0.0
    for i in range(edges.shape[0] - 1):
        lo = edges[i]
        hi = edges[i + 1]
        half = 0.5 * (hi - lo)
        mid = 0.5 * (hi + lo)
        for j in range(GL_N):
            z = mid + half * GLX[j]
            w = half * GLW[j] * math.exp(-0.5 * z * z)
            f, d = phi_dphi(spec, s * z, stack)
            acc += w * d ** p
    return acc * INV_SQRT_2PI
