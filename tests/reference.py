"""Independent high-precision references for the mean-field quantities.

Nothing here calls meanfield's numerics: φ, φ' and φ'' are written out again,
expectations use scipy's adaptive QUADPACK (``quad``) at tight tolerances with the
activation's kinks as breakpoints, roots use Brent's method, and χ_q uses the
direct form E[φ'² + φφ''] (meanfield uses Stein's identity instead).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate, optimize, special

SELU_A = 1.6732632423543772848170429916717
SELU_L = 1.0507009873554804934193349852946


def _sig(x):
    return special.expit(x)


# name -> (phi, dphi, d2phi, kinks, extra delta terms of phi*phi'' as [(u, weight)])
ACTS = {
    "tanh": (math.tanh, lambda x: 1 - math.tanh(x) ** 2, lambda x: -2 * math.tanh(x) * (1 - math.tanh(x) ** 2), ()),
    "erf": (math.erf, lambda x: 2 / math.sqrt(math.pi) * math.exp(-x * x),
            lambda x: -4 * x / math.sqrt(math.pi) * math.exp(-x * x), ()),
    "relu": (lambda x: max(x, 0.0), lambda x: 1.0 if x > 0 else 0.0, lambda x: 0.0, (0.0,)),
    "leaky_relu": (lambda x: x if x > 0 else 0.01 * x, lambda x: 1.0 if x > 0 else 0.01, lambda x: 0.0, (0.0,)),
    "linear": (lambda x: x, lambda x: 1.0, lambda x: 0.0, ()),
    "hard_tanh": (lambda x: min(1.0, max(-1.0, x)), lambda x: 1.0 if abs(x) < 1 else 0.0, lambda x: 0.0, (-1.0, 1.0)),
    "sigmoid": (_sig, lambda x: _sig(x) * (1 - _sig(x)),
                lambda x: _sig(x) * (1 - _sig(x)) * (1 - 2 * _sig(x)), ()),
    "softplus": (lambda x: np.logaddexp(0.0, x), _sig, lambda x: _sig(x) * (1 - _sig(x)), ()),
    "elu": (lambda x: x if x > 0 else math.expm1(x), lambda x: 1.0 if x > 0 else math.exp(x),
            lambda x: 0.0 if x > 0 else math.exp(x), (0.0,)),
    "selu": (lambda x: SELU_L * x if x > 0 else SELU_L * SELU_A * math.expm1(x),
             lambda x: SELU_L if x > 0 else SELU_L * SELU_A * math.exp(x),
             lambda x: 0.0 if x > 0 else SELU_L * SELU_A * math.exp(x), (0.0,)),
    "gelu": (lambda x: x * special.ndtr(x), lambda x: special.ndtr(x) + x * math.exp(-x * x / 2) / math.sqrt(2 * math.pi),
             lambda x: (2 - x * x) * math.exp(-x * x / 2) / math.sqrt(2 * math.pi), ()),
    "swish": (lambda x: x * _sig(x), lambda x: _sig(x) + x * _sig(x) * (1 - _sig(x)),
              lambda x: _sig(x) * (1 - _sig(x)) * (2 + x * (1 - 2 * _sig(x))), ()),
    "sin": (math.sin, math.cos, lambda x: -math.sin(x), ()),
}

# phi(u) * phi''(u) carries Dirac deltas where phi' jumps and phi != 0: hard_tanh at u = +-1
DELTAS = {"hard_tanh": ((-1.0, 1.0), (1.0, -1.0))}  # phi'' = delta(u+1) - delta(u-1)


def gauss_expect(f, q, kinks=(), epsrel=1e-13):
    """E[f(√q z)], z ~ N(0, 1), by adaptive quadrature in u = √q z."""
    if q == 0:
        return f(0.0)
    s = math.sqrt(q)
    dens = lambda u: f(u) * math.exp(-0.5 * u * u / q) / (s * math.sqrt(2 * math.pi))
    L = 12 * s
    pts = sorted({-L, L, 0.0, *[k for k in kinks if -L < k < L], *(x * min(s, 1.0) for x in (-3, -1, 1, 3))})
    pts += [p for p in np.linspace(-L, L, 49)]
    pts = sorted(set(pts))
    total = 0.0
    for a, b in zip(pts[:-1], pts[1:]):
        v, _ = integrate.quad(dens, a, b, epsabs=1e-17, epsrel=epsrel, limit=200)
        total += v
    return total


class Ref:
    """Reference computations for one registered activation."""

    def __init__(self, name):
        self.name = name
        self.phi, self.dphi, self.d2phi, self.kinks = ACTS[name]

    def V(self, q):
        return gauss_expect(lambda u: self.phi(u) ** 2, q, self.kinks)

    def D(self, q):
        return gauss_expect(lambda u: self.dphi(u) ** 2, q, self.kinks)

    def dV(self, q):
        v = gauss_expect(lambda u: self.dphi(u) ** 2 + self.phi(u) * self.d2phi(u), q, self.kinks)
        for u0, wgt in DELTAS.get(self.name, ()):
            v += wgt * self.phi(u0) * math.exp(-0.5 * u0 * u0 / q) / math.sqrt(2 * math.pi * q)
        return v

    def qstar(self, w, b, qmax=1e8):
        g = lambda q: w * self.V(q) + b - q
        if g(1.0) > 0:
            lo, hi = 1.0, 2.0
            while g(hi) > 0:
                lo, hi = hi, hi * 2
                if hi > qmax:
                    return None
        else:
            hi, lo = 1.0, 0.5
            while g(lo) < 0:
                hi, lo = lo, lo / 2
                if lo < 1e-14:
                    return 0.0
        return optimize.brentq(g, lo, hi, xtol=1e-300, rtol=1e-15, maxiter=500)

    def pair(self, q, c, deriv=False):
        """E[f(u1) f(u2)] at equal variance q, correlation c, by nested adaptive quadrature."""
        f = self.dphi if deriv else self.phi
        s = math.sqrt(q)
        sd = s * math.sqrt((1 - c) * (1 + c))

        def inner(z1):
            m = c * s * z1
            if sd == 0:
                return f(m)
            g = lambda z2: f(m + sd * z2) * math.exp(-0.5 * z2 * z2) / math.sqrt(2 * math.pi)
            pts = sorted({-12.0, 12.0, *[min(12, max(-12, (k - m) / sd)) for k in (*self.kinks, 0.0)]})
            return sum(integrate.quad(g, a, b, epsabs=1e-15, epsrel=1e-13, limit=200)[0]
                       for a, b in zip(pts[:-1], pts[1:]) if b > a)

        h = lambda z1: f(s * z1) * inner(z1) * math.exp(-0.5 * z1 * z1) / math.sqrt(2 * math.pi)
        pts = sorted({-12.0, 12.0, 0.0, -1 / s, 1 / s, *[k / s for k in self.kinks]})
        return sum(integrate.quad(h, a, b, epsabs=1e-15, epsrel=1e-12, limit=200)[0]
                   for a, b in zip(pts[:-1], pts[1:]))

    def cstar(self, w, b, q):
        hfun = lambda c: (w * self.pair(q, c) + b) / q - c
        hi = 0.5
        while hfun(hi) >= 0:
            hi = 1 - (1 - hi) / 4
        if hfun(0.0) <= 0:
            return 0.0
        return optimize.brentq(hfun, 0.0, hi, xtol=1e-13, rtol=1e-13)
