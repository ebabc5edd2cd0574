"""Order/chaos phase diagrams over a (σ_w², σ_b²) grid and the critical line.

:func:`phase_diagram` solves the mean-field fixed point (q*, c*), the
susceptibilities χ₁, χ_q, χ_c and the depth scales ξ_q, ξ_c at every point of a
grid and returns an :class:`xarray.Dataset`; :func:`critical_line` traces the
edge of chaos χ₁ = 1 from its q*-parametrisation.

How the grid is fast and still exact
------------------------------------
The maps depend on (σ_w², σ_b²) only through the variance q and the correlation
c. For every activation that has no closed form, the one-variable expectations
V(q) = E[φ²], D(q) = E[φ'²], dV/dq are tabulated once as Chebyshev series on
quarter-octave panels of q (from :func:`meanfield._jit.quad.expect1`, ~1e-15
accurate), and the two-variable ones (the divided difference
G = (V − F)/(q(1 − c)) of F = E[φ(u₁)φ(u₂)], and E[φ'(u₁)φ'(u₂)]) as tensor
Chebyshev patches in (s, θ = arccos c), graded toward c = 1. The pair
expectations are computed for all c at once: in polar coordinates
F(q, cos θ) = Σ_m A_m(q) cos mθ with
A_m = ∫ r e^{-r²/2} a_m(√q r)² dr (halved for m >= 1), a_m(R) the Chebyshev
coefficients of x ↦ φ(R x), so one DCT per radial node gives every θ; G is a
sum of positive terms A_m sin²(mθ/2)/(q sin²(θ/2)) and never cancels. Each
table's truncation error is estimated from the decay of its Chebyshev
coefficients and θ-panels are bisected until it is below 1e-13 of the smallest
value on each patch (see :func:`table_info`).

Every grid point is then solved on the tables in parallel with the same
bracketed Newton iterations and the same decisions as :func:`meanfield.point`;
a decision that the tables' error could flip is handed to the exact point
kernel, as are activations whose pair expectations the tables cannot resolve
(kinks in φ', which make the polar series converge slowly). Closed-form
activations (erf, the ReLU family, linear) always use the exact point kernel.

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

import functools
import hashlib
import math
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from . import __version__
from ._validation import InvalidArgumentError, check_int, check_range
from .activations import Activation, get_activation
from .core import CRITICAL_TOL, _MAXIT, _TOL

__all__ = ["phase_diagram", "critical_line", "to_netcdf", "to_csv", "open_phase_diagram", "table_info",
           "DATA_VARS", "PHASE_CODES"]

DATA_VARS = ("q_star", "c_star", "chi_1", "chi_q", "chi_c", "xi_q", "xi_c", "phase", "converged")
PHASE_CODES = ("ordered", "chaotic", "critical", "unbounded")
TABLE_VERSION = 2

# --- table geometry -----------------------------------------------------------
_N1 = 16                 # Chebyshev nodes per 1-D panel
_ELO1, _ETOP1 = -84, 56  # 1-D panels: [0, 2^-85], then quarter octaves of q up to 2^56 (~7e16 > QMAX)
_NSUB1 = 4               # (= meanfield._jit.grid.NSUB1)
_NPAN1 = 1 + (_ETOP1 - _ELO1 + 1) * _NSUB1
_N2S, _N2T = 24, 24      # nodes per 2-D patch in s and θ
_KLO2, _KTOP2 = -6, 7    # 2-D s-panels: [0, 2^-6], then dyadic up to s = 2^7 (q = 16384)
_JMAX = 24               # most θ-panels per s-panel
_TAIL_TOL_1D = 1e-11     # accepted tail of a 1-D panel (relative); at large q this is the noise floor
                         # of the reference quadrature's D and dV (Stein's formula cancels), ~1e-13
_TAIL_TOL = 1e-13        # accepted tail of a 2-D patch, relative to the smallest value on it
_NMAX_ANGLE = 1 << 16    # largest angular DCT
_GLX, _GLW = np.polynomial.legendre.leggauss(12)
_RADIAL_BASE = (0.0, 1.0, 2.0, 3.0, 4.0, 5.5, 7.5, 10.0)


def _cheb_nodes(n: int) -> np.ndarray:
    """First-kind Chebyshev points cos(π(k + ½)/n), k = 0..n-1 (descending)."""
    return np.cos(np.pi * (np.arange(n) + 0.5) / n)


def _cheb_coefs(values: np.ndarray, axis: int) -> np.ndarray:
    """Chebyshev coefficients from values at first-kind points along ``axis`` (DCT-II)."""
    from scipy.fft import dct

    n = values.shape[axis]
    c = dct(values, type=2, axis=axis) / n
    sl = [slice(None)] * values.ndim
    sl[axis] = 0
    c[tuple(sl)] *= 0.5
    return c


def _tail(c: np.ndarray, axis: int, k: int = 4) -> np.ndarray:
    """Largest |coefficient| among the last ``k`` along ``axis`` (the truncation estimate)."""
    sl = [slice(None)] * c.ndim
    sl[axis] = slice(-k, None)
    return np.max(np.abs(c[tuple(sl)]), axis=axis)


_NOISE = 3e-16  # coefficients below this fraction of a panel's largest are rounding noise


def _trim(c: np.ndarray) -> int:
    """Effective length of a coefficient vector: 1 + the last index with |c| > _NOISE max|c|."""
    a = np.abs(c)
    big = np.nonzero(a > _NOISE * a.max())[0] if a.size and a.max() > 0 else np.zeros(0, dtype=int)
    return int(big.max()) + 1 if big.size else 1


def _trim_patch(c: np.ndarray) -> tuple[int, int]:
    """Effective (rows, columns) of a 2-D coefficient patch; zeroes what lies beyond (in place)."""
    a = np.abs(c)
    ns = _trim(a.max(axis=1))
    nt = _trim(a.max(axis=0))
    c[ns:, :] = 0.0
    c[:, nt:] = 0.0
    return ns, nt


@functools.lru_cache(maxsize=1)
def _code_hash() -> bytes:
    """Digest of the kernels the tables are computed with: a cached table is stale once they change."""
    h = hashlib.sha256()
    jit = Path(__file__).resolve().parent / "_jit"
    for name in ("act.py", "quad.py", "grid.py"):
        try:
            h.update((jit / name).read_bytes())
        except OSError:  # pragma: no cover - a zipped install: fall back to the version alone
            h.update(name.encode())
    return h.digest()


def _spec_key(a: Activation) -> str:
    h = hashlib.sha256()
    h.update(_code_hash())
    h.update(a.name.encode())
    for part in a.spec:
        arr = np.asarray(part)
        h.update(str(arr.dtype).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:24]


class _Tables:
    """Chebyshev tables of one activation (see the module docstring).

    1-D: ``t1[k, f, :]`` for f in (V, D, dV) on s-panel k; ``valid1[k]``.
    2-D: ``t2g[k, j]``/``t2p[k, j]`` (ns × nt patches) on s-panel k, θ-panel j;
    ``g1[k, j]``: G at θ-edge j as a series in s; ``edges[k]``; ``nedge[k]``;
    ``ok2[k]`` (1 built and accurate, 0 not built, -1 cannot be built).
    """

    def __init__(self, act: Activation):
        self.act = act
        self.spec = act.spec
        self.key = _spec_key(act)
        self.lock = threading.Lock()
        nk2 = 1 + _KTOP2 - _KLO2
        self.t2g = np.zeros((nk2, _JMAX, _N2S, _N2T))
        self.t2p = np.zeros((nk2, _JMAX, _N2S, _N2T))
        self.g1 = np.zeros((nk2, _JMAX + 1, _N2S))
        self.edges = np.zeros((nk2, _JMAX + 1))
        self.nedge = np.zeros(nk2, dtype=np.int64)
        self.n2 = np.ones((nk2, _JMAX, 4), dtype=np.int64)  # effective (ns, nt) of the G and P patches
        self.ok2 = np.zeros(nk2, dtype=np.int8)
        self.err2 = np.full(nk2, np.nan)
        self.t1 = None
        self.n1 = None
        self.valid1 = None
        self.err1 = None
        self.build_seconds = 0.0

    # ---------------------------------------------------------------- 1-D
    def build_1d(self) -> None:
        from ._jit.grid import expect1_many

        t0 = time.perf_counter()
        npan = _NPAN1
        lo = np.empty(npan)
        hi = np.empty(npan)
        lo[0], hi[0] = 0.0, 2.0 ** (_ELO1 - 1)
        k = np.arange(npan - 1)
        e = _ELO1 + k // _NSUB1
        j = k % _NSUB1
        lo[1:] = np.ldexp(0.5 + 0.5 * j / _NSUB1, e)
        hi[1:] = np.ldexp(0.5 + 0.5 * (j + 1) / _NSUB1, e)
        x = _cheb_nodes(_N1)
        qn = 0.5 * (lo + hi)[:, None] + 0.5 * (hi - lo)[:, None] * x[None, :]
        q = np.concatenate([qn.ravel(), hi])
        e = np.empty((q.size, 5))
        expect1_many(self.spec, q, e)
        nodes = e[: npan * _N1].reshape(npan, _N1, 5)
        ends = e[npan * _N1:]
        vals = np.moveaxis(nodes[:, :, :3], 2, 1)  # (npan, 3, N1)
        coef = _cheb_coefs(vals, axis=2)
        scale = np.max(np.abs(vals), axis=2)
        tail = _tail(coef, axis=2)
        rel = np.where(scale > 0, tail / np.where(scale > 0, scale, 1.0), 0.0)
        finite = np.all(np.isfinite(nodes[:, :, :3]), axis=(1, 2)) & np.all(np.isfinite(ends[:, :3]), axis=1)
        noflag = (np.all(nodes[:, :, 4] == 0.0, axis=1)) & (ends[:, 4] == 0.0)
        ok = finite & noflag & np.all(rel <= _TAIL_TOL_1D, axis=1)
        coef = np.where(np.isfinite(coef), coef, 0.0)
        self.n1 = np.ones((npan, 3), dtype=np.int64)
        for i in range(npan):
            for f in range(3):
                self.n1[i, f] = n = _trim(coef[i, f])
                coef[i, f, n:] = 0.0
        self.t1 = np.ascontiguousarray(coef)
        self.valid1 = ok.astype(np.int8)
        self.err1 = np.where(ok, np.max(rel, axis=1), np.nan)
        self.build_seconds += time.perf_counter() - t0

    # ---------------------------------------------------------------- 2-D
    def _pair_coefficients(self, s_nodes: np.ndarray):
        """A_m(q), B_m(q) of F = Σ A_m cos mθ and E[φ'φ'] = Σ B_m cos mθ at q = s² (rows).

        Returns (A, B, ok) with ok[i] False where the angular series did not converge
        within _NMAX_ANGLE terms (non-smooth φ').
        """
        rows_s, rows_r, rows_w = [], [], []
        for i, s in enumerate(s_nodes):
            edges = list(_RADIAL_BASE)
            if s > 0.5:
                w = 1.0 / s
                while w < 2.0:
                    edges.append(w)
                    w *= 2.0
            e = np.unique(np.array(edges))
            half = 0.5 * np.diff(e)
            mid = 0.5 * (e[1:] + e[:-1])
            r = (mid[:, None] + half[:, None] * _GLX[None, :]).ravel()
            wr = (half[:, None] * _GLW[None, :]).ravel() * r * np.exp(-0.5 * r * r)
            rows_s.append(np.full(r.size, i))
            rows_r.append(r * s)
            rows_w.append(wr)
        row_i = np.concatenate(rows_s)
        R = np.concatenate(rows_r)
        wt = np.concatenate(rows_w)
        r = R / np.maximum(s_nodes[row_i], 1e-300)
        # Row j adds wt_j a_m(R_j)^2 to A_m: coefficients below thr_j * max_m |a_m| change A (and
        # G, whose terms carry m^2 <= (20 R)^2) by < 1e-20 of its scale, so light rows (large r,
        # Gaussian weight ~e^{-r^2/2}) need far fewer terms.
        thr = np.clip(np.sqrt(1e-20 / (np.abs(wt) * (1.0 + r * r) + 1e-300)), 1e-13, 1e-3)
        # first guess for tanh-like decay (singularity at distance ~1 from the real axis)
        L = 0.64 * R * np.log(1.0 / thr) + 8.0
        N = np.maximum(16, 2 ** np.ceil(np.log2(L / 0.4))).astype(np.int64)
        nlim = np.minimum(32 * N, _NMAX_ANGLE)  # slower decay than this: kinks in φ' (algebraic decay)
        ns = s_nodes.size
        mmax = 8
        parts = []
        todo = np.arange(R.size)
        par = self.parity
        while todo.size:
            redo = []
            groups = [(int(n), todo[N[todo] == n]) for n in np.unique(N[todo])]
            for n, sel in groups:
                cf, cd = self._row_coefficients(np.ascontiguousarray(R[sel]), n, par)
                # resolved if the last coefficient above thr (and the noise floor) lies below 0.4 n:
                # aliasing then perturbs the kept ones (< n/2) only by those of index > 1.5 n
                good = np.ones(sel.size, dtype=bool)
                for c in (cf, cd):
                    a = np.abs(c)
                    big = a > thr[sel, None] * np.max(a, axis=1, keepdims=True)
                    last = (a.shape[1] - 1) - np.argmax(big[:, ::-1], axis=1)
                    good &= (last <= 0.4 * n) & np.all(np.isfinite(c), axis=1)
                fin = good | (n >= nlim[sel])
                if np.any(~good & (n >= nlim[sel])):
                    return None, None, np.zeros(ns, dtype=bool)  # unresolvable: give up at once
                m = n // 2
                c2 = 0.5 * cf[fin, :m] ** 2
                d2 = 0.5 * cd[fin, :m] ** 2
                c2[:, 0] *= 2.0
                d2[:, 0] *= 2.0
                parts.append((sel[fin], c2, d2))
                mmax = max(mmax, m)
                nxt = sel[~fin]
                N[nxt] *= 2
                redo.append(nxt)
            todo = np.concatenate(redo) if redo else np.zeros(0, dtype=np.int64)
        A = np.zeros((ns, mmax))
        B = np.zeros((ns, mmax))
        for sel, c2, d2 in parts:
            m = c2.shape[1]
            wm = np.zeros((ns, sel.size))
            wm[row_i[sel], np.arange(sel.size)] = wt[sel]
            A[:, :m] += wm @ c2
            B[:, :m] += wm @ d2
        # drop the trailing columns that cannot matter (squares of coefficients below 1e-13)
        big = np.nonzero((np.max(np.abs(A), axis=0) > 1e-30 * np.max(np.abs(A)))
                         | (np.max(np.abs(B), axis=0) > 1e-30 * np.max(np.abs(B))))[0]
        keep = int(big.max()) + 1 if big.size else 1
        A = np.ascontiguousarray(A[:, :keep])
        B = np.ascontiguousarray(B[:, :keep])
        return A, B, np.ones(ns, dtype=bool)

    @property
    def parity(self) -> int:
        """1 if φ is odd, 2 if even (bitwise, at 200 test points), else 0."""
        if getattr(self, "_parity", None) is None:
            from ._jit.act import eval_array

            rng = np.random.default_rng(12345)
            x = np.concatenate([np.logspace(-8, 3, 120), rng.uniform(0.0, 12.0, 80)])
            xx = np.concatenate([x, -x])
            f = np.empty_like(xx)
            d = np.empty_like(xx)
            eval_array(self.spec, xx, f, d)
            fp, fm, dp, dm = f[: x.size], f[x.size:], d[: x.size], d[x.size:]
            f0 = np.empty(1)
            d0 = np.empty(1)
            eval_array(self.spec, np.zeros(1), f0, d0)
            if np.array_equal(fm, -fp) and np.array_equal(dm, dp) and f0[0] == 0.0:
                self._parity = 1
            elif np.array_equal(fm, fp) and np.array_equal(dm, -dp) and d0[0] == 0.0:
                self._parity = 2
            else:
                self._parity = 0
        return self._parity

    def _row_coefficients(self, R: np.ndarray, n: int, par: int):
        """Chebyshev coefficients 0..n/2 of x ↦ φ(R x) and φ'(R x) on [-1, 1] for each R.

        From n first-kind points (DCT-II); for odd or even φ only the n/2 positive points are
        evaluated and the odd/even halves come from a DCT-IV/DCT-II of half length.
        """
        from scipy.fft import dct

        from ._jit.grid import eval_rows

        if par == 0:
            x = np.cos(np.pi * (np.arange(n) + 0.5) / n)
            f = np.empty((R.size, n))
            d = np.empty((R.size, n))
            eval_rows(self.spec, R, x, f, d)
            cf = dct(f, type=2, axis=1, workers=-1)[:, : n // 2 + 1] / n
            cd = dct(d, type=2, axis=1, workers=-1)[:, : n // 2 + 1] / n
            cf[:, 0] *= 0.5
            cd[:, 0] *= 0.5
            return cf, cd
        h = n // 2
        x = np.cos(np.pi * (np.arange(h) + 0.5) / n)
        f = np.empty((R.size, h))
        d = np.empty((R.size, h))
        eval_rows(self.spec, R, x, f, d)
        odd_src, even_src = (f, d) if par == 1 else (d, f)
        co = dct(odd_src, type=4, axis=1, workers=-1) * (2.0 / n)   # coefficients 1, 3, 5, ...
        ce = dct(even_src, type=2, axis=1, workers=-1) * (2.0 / n)  # coefficients 0, 2, 4, ...
        ce[:, 0] *= 0.5
        odd = np.zeros((R.size, h + 1))
        even = np.zeros((R.size, h + 1))
        odd[:, 1::2] = co[:, : (h + 1) // 2]
        even[:, 0::2] = ce[:, : h // 2 + 1]
        return (odd, even) if par == 1 else (even, odd)

    def _smooth(self) -> bool:
        """Can the polar series resolve this activation? (False when φ' has kinks: their
        Chebyshev coefficients decay algebraically.) Tested once on three radii."""
        if getattr(self, "_smooth_flag", None) is None:
            A, _, ok = self._pair_coefficients(np.array([0.7, 3.0]))
            self._smooth_flag = bool(A is not None and np.all(ok))
        return self._smooth_flag

    def _patch_values(self, A, B, q, ed):
        """G and P at the Chebyshev nodes of the θ-panels ``ed``: arrays (ns, J, nt)."""
        m = np.arange(A.shape[1], dtype=np.float64)
        xt = _cheb_nodes(_N2T)
        J = ed.size - 1
        th = (0.5 * (ed[:-1] + ed[1:]))[:, None] + (0.5 * np.diff(ed))[:, None] * xt[None, :]  # (J, nt)
        thf = th.ravel()
        half = 0.5 * thf
        K = (np.sin(np.outer(m[1:], half)) / np.sin(half)[None, :]) ** 2  # sin²(mθ/2)/sin²(θ/2) > 0
        C = np.cos(np.outer(m, thf))
        G = (A[:, 1:] @ K) / q[:, None]   # a sum of positive terms: no cancellation as θ -> 0
        P = B @ C
        return G.reshape(q.size, J, _N2T), P.reshape(q.size, J, _N2T)

    def build_2d(self, k: int) -> None:
        """Build s-panel k of the 2-D tables (idempotent).

        θ-panels start graded toward θ = 0 (width ~1/s there, where F's singularity
        at c = 1 + O(1/q) approaches) and are bisected where the Chebyshev tail in θ
        exceeds _TAIL_TOL; the panel is marked unusable (-1) when that fails.
        """
        if self.ok2[k] != 0:
            return
        t0 = time.perf_counter()
        try:
            self._build_2d(k)
        finally:
            self.build_seconds += time.perf_counter() - t0

    def _build_2d(self, k: int) -> None:
        if not self._smooth():
            self.ok2[:] = np.where(self.ok2 == 0, -1, self.ok2)
            return
        if k == 0:
            a, b = 0.0, 2.0 ** _KLO2
        else:
            a, b = 2.0 ** (_KLO2 + k - 1), 2.0 ** (_KLO2 + k)
        xs = _cheb_nodes(_N2S)
        s = 0.5 * (a + b) + 0.5 * (b - a) * xs
        q = s * s
        A, B, ok = self._pair_coefficients(s)
        if A is None or not np.all(ok):
            self.ok2[k] = -1
            return
        h = min(0.5 * math.pi, 1.0 / b)
        ed = [0.0]
        e = h
        while e < 0.5 * math.pi * (1 - 1e-12):
            ed.append(e)
            e *= 2.0
        ed.append(0.5 * math.pi)
        if len(ed) > 2 and (ed[-1] - ed[-2]) < 0.5 * (ed[-2] - ed[-3]):
            del ed[-2]
        ed = np.array(ed)
        err = math.inf
        for _ in range(8):
            G, P = self._patch_values(A, B, q, ed)
            cg = _cheb_coefs(_cheb_coefs(G, axis=0), axis=2)  # (ns, J, nt)
            cp = _cheb_coefs(_cheb_coefs(P, axis=0), axis=2)
            if not (np.all(np.isfinite(cg)) and np.all(np.isfinite(cp))):
                break
            e_s = np.zeros(ed.size - 1)
            e_t = np.zeros(ed.size - 1)
            for c, v in ((cg, G), (cp, P)):
                # relative to the smallest value on the patch (G, P >= 0 for c >= 0: Mehler)
                sc = np.maximum(np.min(np.abs(v), axis=(0, 2)), 1e-300)
                e_s = np.maximum(e_s, np.max(_tail(c, axis=0), axis=1) / sc)
                e_t = np.maximum(e_t, np.max(_tail(c, axis=2), axis=0) / sc)
            err = float(max(e_s.max(), e_t.max()))
            if err <= _TAIL_TOL:
                break
            # bisect the θ-panels that fail in either direction (near θ = 0 a narrower
            # panel also makes the dependence on s milder)
            split = np.nonzero(np.maximum(e_t, e_s) > _TAIL_TOL)[0]
            if ed.size - 1 + split.size > _JMAX:
                break
            ed = np.sort(np.concatenate([ed, 0.5 * (ed[split] + ed[split + 1])]))
        self.err2[k] = err
        if not err <= _TAIL_TOL:
            self.ok2[k] = -1
            return
        J = ed.size - 1
        cg = np.ascontiguousarray(np.moveaxis(cg, 1, 0))  # (J, ns, nt)
        cp = np.ascontiguousarray(np.moveaxis(cp, 1, 0))
        for j in range(J):
            self.n2[k, j, 0], self.n2[k, j, 1] = _trim_patch(cg[j])
            self.n2[k, j, 2], self.n2[k, j, 3] = _trim_patch(cp[j])
        self.t2g[k, :J] = cg
        self.t2p[k, :J] = cp
        sign = (-1.0) ** np.arange(_N2T)
        for j in range(J):
            self.g1[k, j] = self.t2g[k, j] @ sign          # left end of panel j (x = -1)
        self.g1[k, J] = self.t2g[k, J - 1].sum(axis=1)    # right end of the last panel (x = +1)
        self.edges[k, : J + 1] = ed
        self.nedge[k] = J
        self.ok2[k] = 1

    # ---------------------------------------------------------------- disk cache
    def _cache_path(self) -> Path | None:
        if os.environ.get("MEANFIELD_NO_CACHE"):
            return None
        root = os.environ.get("MEANFIELD_CACHE_DIR")
        if root:
            base = Path(root)
        elif sys.platform == "darwin":
            base = Path.home() / "Library" / "Caches" / "meanfield"
        elif os.name == "nt":
            base = Path(os.environ.get("LOCALAPPDATA", Path.home())) / "meanfield" / "cache"
        else:
            base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "meanfield"
        return base / f"tables-v{TABLE_VERSION}-{__version__}-{self.key}.npz"

    _FIELDS = ("t1", "n1", "valid1", "err1", "t2g", "t2p", "n2", "g1", "edges", "nedge", "ok2", "err2")

    def load(self) -> bool:
        path = self._cache_path()
        if path is None or not path.is_file():
            return False
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {f: z[f] for f in self._FIELDS}
            for f in ("t2g", "t2p", "n2", "g1", "edges", "nedge", "ok2", "err2"):
                if data[f].shape != getattr(self, f).shape:
                    return False
            if data["t1"].shape != (_NPAN1, 3, _N1) or data["n1"].shape != (_NPAN1, 3):
                return False
        except Exception:  # noqa: BLE001 - a damaged cache is rebuilt
            return False
        for f, v in data.items():
            setattr(self, f, np.ascontiguousarray(v))
        return True

    def save(self) -> None:
        path = self._cache_path()
        if path is None or self.t1 is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
            with open(tmp, "wb") as fh:
                np.savez(fh, **{f: getattr(self, f) for f in self._FIELDS})
            os.replace(tmp, path)
        except OSError:  # a read-only cache is not an error
            try:
                tmp.unlink()  # type: ignore[possibly-undefined]
            except (OSError, NameError):
                pass


_TABLES: dict[str, _Tables] = {}
_TABLES_LOCK = threading.Lock()


def _tables(a: Activation) -> _Tables:
    key = _spec_key(a)
    with _TABLES_LOCK:
        t = _TABLES.get(key)
        if t is None:
            t = _Tables(a)
            if not t.load():
                t.build_1d()
                t.save()
            _TABLES[key] = t
    return t


def _uses_tables(a: Activation) -> bool:
    return not (a.homogeneous or a.closed_form)


def table_info(act: "str | Activation") -> dict[str, Any]:
    """Accuracy and extent of the Chebyshev tables of an activation.

    Returns
    -------
    dict
        ``method`` (``"chebyshev-tables"`` or ``"exact point kernel"``), and for tables:
        ``q_max`` (largest q of the valid 1-D table), ``err_1d`` and ``err_2d`` (the largest
        relative truncation estimate of the built panels), ``panels_2d`` (s-ranges built)
        and ``build_seconds``.
    """
    a = get_activation(act)
    if not _uses_tables(a):
        return {"method": "exact point kernel", "activation": a.name}
    t = _tables(a)
    v = np.nonzero(t.valid1)[0]
    top = v.max() if v.size else 0
    built = [int(k) for k in np.nonzero(t.ok2 == 1)[0]]
    return {
        "method": "chebyshev-tables",
        "activation": a.name,
        "q_max": float(2.0 ** (_ELO1 + (top - 1) // _NSUB1) * (0.5 + 0.5 * ((top - 1) % _NSUB1 + 1) / _NSUB1)),
        "err_1d": float(np.nanmax(t.err1)) if np.any(np.isfinite(t.err1)) else None,
        "err_2d": float(np.nanmax(t.err2[t.ok2 == 1])) if built else None,
        "panels_2d": [[0.0 if k == 0 else 2.0 ** (_KLO2 + k - 1), 2.0 ** (_KLO2 + k)] for k in built],
        "unresolved_panels_2d": [int(k) for k in np.nonzero(t.ok2 == -1)[0]],
        "build_seconds": t.build_seconds,
    }


# ----------------------------------------------------------------------------- engine
_CHUNK = 1 << 16
_FALLBACK_BATCH = 256


class _Progress:
    """A one-line progress bar on stderr (only when asked, or for long runs on a terminal)."""

    def __init__(self, total: int, label: str, enabled: bool | None):
        self.total = total
        self.label = label
        self.t0 = time.perf_counter()
        self.enabled = enabled
        self.shown = False
        self.stream = sys.stderr

    def update(self, done: int) -> None:
        if self.enabled is False:
            return
        el = time.perf_counter() - self.t0
        if self.enabled is None:
            isatty = getattr(self.stream, "isatty", lambda: False)()
            if not (isatty and el > 0.5):
                return
        frac = done / self.total if self.total else 1.0
        width = 30
        bar = "#" * int(round(width * frac)) + "-" * (width - int(round(width * frac)))
        eta = el / frac - el if frac > 0 else float("nan")
        self.stream.write(f"\r{self.label} [{bar}] {100 * frac:5.1f}% {done}/{self.total} points"
                          + (f", {eta:4.0f} s left" if frac < 1 and math.isfinite(eta) else f", {el:.1f} s") + " ")
        self.stream.flush()
        self.shown = True

    def close(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()


def _grid_rows(a: Activation, W: np.ndarray, B: np.ndarray, *, progress: bool | None = None,
               label: str = "") -> tuple[np.ndarray, dict[str, Any]]:
    """Solve every point of the W × B product grid; returns (rows (nw*nb, G_SIZE), stats)."""
    from ._jit import grid as _g

    total = W.size * B.size
    out = np.empty((total, _g.G_SIZE))
    stats = {"fallback_points": 0, "table_points": 0}
    bar = _Progress(total, label or f"phase {a.name}", progress)
    t = _tables(a) if _uses_tables(a) else None
    try:
        for start in range(0, total, _CHUNK):
            idx = np.arange(start, min(total, start + _CHUNK), dtype=np.int64)
            rows = out[start: start + idx.size]
            if t is None:
                _g.grid_exact(a.spec, W, B, idx, CRITICAL_TOL, _TOL, _MAXIT, rows)
            else:
                _g.grid_q(a.spec, t.t1, t.n1, _ELO1, t.valid1, W, B, idx, CRITICAL_TOL, _TOL, _MAXIT, rows)
                pos = np.nonzero(rows[:, _g.G_FLAG] == _g.F_NEED_C)[0]
                if pos.size:
                    s = np.sqrt(rows[pos, _g.G_Q])
                    ks = np.unique([_g.s_panel(float(v), _KLO2)[0] for v in _unique_panels(s)])
                    with t.lock:
                        for k in ks:
                            if k < t.ok2.size and t.ok2[k] == 0:
                                t.build_2d(int(k))
                                t.save()
                    _g.grid_c(t.t2g, t.t2p, t.n2, t.g1, t.edges, t.nedge, t.ok2, _KLO2, W, B, idx, pos, _MAXIT, rows)
                fb = np.nonzero(rows[:, _g.G_FLAG] == _g.F_FALLBACK)[0]
                # the exact kernel can take ~30 ms a point (chaotic, kinked φ'): small batches keep
                # the progress bar moving and Ctrl-C responsive
                for k in range(0, fb.size, _FALLBACK_BATCH):
                    part = fb[k: k + _FALLBACK_BATCH]
                    sub = np.empty((part.size, _g.G_SIZE))
                    _g.grid_exact(a.spec, W, B, idx[part], CRITICAL_TOL, _TOL, _MAXIT, sub)
                    rows[part] = sub
                    bar.update(start + int(idx.size * (k + part.size) / fb.size))
                stats["fallback_points"] += int(fb.size)
                stats["table_points"] += int(idx.size - fb.size)
            bar.update(start + idx.size)
    finally:
        bar.close()
    return out, stats


def _unique_panels(s: np.ndarray) -> np.ndarray:
    """One representative s per dyadic panel (cheap: via the binary exponent)."""
    m, e = np.frexp(s)
    e = np.where(s <= 2.0 ** _KLO2, _KLO2, e)
    _, first = np.unique(e, return_index=True)
    return s[first]


def _coords(name: str, values, *, positive: bool) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidArgumentError(name, "must be a 1-D array of real numbers") from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise InvalidArgumentError(name, f"must be a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise InvalidArgumentError(name, "must not be empty")
    if not np.all(np.isfinite(arr)):
        raise InvalidArgumentError(name, "must be finite")
    if positive and np.any(arr <= 0):
        raise InvalidArgumentError(name, f"variances must be > 0, got {arr.min():g}")
    if not positive and np.any(arr < 0):
        raise InvalidArgumentError(name, f"variances must be >= 0, got {arr.min():g}")
    if arr.size > 1 and np.any(np.diff(arr) <= 0):
        raise InvalidArgumentError(name, "must be strictly increasing")
    return np.ascontiguousarray(arr)


def phase_diagram(act: "str | Activation", weight_var, bias_var, *, threads: int | None = None,
                  progress: bool | None = None):
    """Fixed points, susceptibilities, depth scales and phase over a (σ_w², σ_b²) grid.

    Parameters
    ----------
    act : str, Activation or callable
        Activation (see :func:`meanfield.activations.get_activation`).
    weight_var : array_like
        1-D, strictly increasing σ_w² values (> 0).
    bias_var : array_like
        1-D, strictly increasing σ_b² values (>= 0).
    threads : int, optional
        Number of threads (default: Numba's default, all cores). The result does not
        depend on it.
    progress : bool, optional
        Show a progress bar on stderr. Default: only for runs longer than half a second
        on a terminal.

    Returns
    -------
    xarray.Dataset
        Dims ``(weight_var, bias_var)``; data variables ``q_star, c_star, chi_1, chi_q,
        chi_c, xi_q, xi_c`` (float64; NaN where undefined, ``inf`` where infinite, as
        ``None``/``inf`` in :class:`meanfield.FixedPoint`), ``phase`` (strings
        ``ordered``/``chaotic``/``critical``/``unbounded``) and ``converged`` (bool).
        Attributes record the package version, activation, method, tolerances and the
        tables' error estimates.

    Notes
    -----
    Every grid point equals :func:`meanfield.point` at the same variances to the
    tables' accuracy (~1e-13 relative or better where the problem is well conditioned)
    and carries the same phase and convergence flags: decisions that the tables'
    error could flip are taken by the exact point kernel (see the module docstring).

    Examples
    --------
    >>> import numpy as np, meanfield
    >>> ds = meanfield.phase_diagram("tanh", np.linspace(0.5, 4, 8), [0.0, 0.05])
    >>> str(ds.phase.sel(weight_var=4.0, bias_var=0.05).item())
    'chaotic'

    References
    ----------
    .. [1] Schoenholz et al., "Deep information propagation", ICLR 2017, arXiv:1611.01232.
    .. [2] Poole et al., "Exponential expressivity in deep neural networks through transient
       chaos", NeurIPS 2016, arXiv:1606.05340.
    """
    import xarray as xr

    from ._jit import grid as _g

    a = get_activation(act)
    W = _coords("weight_var", weight_var, positive=True)
    B = _coords("bias_var", bias_var, positive=False)
    if threads is not None:
        threads = check_int("threads", threads, lo=1)
    import numba

    old = numba.get_num_threads()
    if threads is not None:
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    t0 = time.perf_counter()
    try:
        rows, stats = _grid_rows(a, W, B, progress=progress)
    finally:
        numba.set_num_threads(old)
    elapsed = time.perf_counter() - t0
    shape = (W.size, B.size)
    total = W.size * B.size
    q, c, chi1, chiq, chic, xi_q, xi_c = (np.empty(total) for _ in range(7))
    code = np.empty(total, dtype=np.int8)
    converged = np.empty(total, dtype=np.bool_)
    _g.finalize(rows, CRITICAL_TOL, q, c, chi1, chiq, chic, xi_q, xi_c, code, converged)
    phase = np.asarray(PHASE_CODES)[code]
    dims = ("weight_var", "bias_var")
    info = table_info(a)
    attrs = {
        "title": f"Mean-field phase diagram of {a.name}",
        "software": f"meanfield {__version__}",
        "activation": a.name,
        "method": info["method"],
        "critical_tol": CRITICAL_TOL,
        "newton_tol": _TOL,
        "max_iterations": _MAXIT,
        "accuracy_contract": "rel 1e-9 for q_star, chi_*; abs 1e-9 for c_star; rel 1e-6 for xi_* where |1-chi|>=1e-6",
        "points_from_tables": stats["table_points"] if info["method"] == "chebyshev-tables" else 0,
        "points_from_exact_kernel": (stats["fallback_points"] if info["method"] == "chebyshev-tables"
                                     else int(W.size * B.size)),
        "seconds": round(elapsed, 4),
        "conventions": "NaN = undefined (None in meanfield.point), inf = infinite; sigma_w^2 = weight_var, "
                       "sigma_b^2 = bias_var",
        "references": "Poole et al. 2016 arXiv:1606.05340; Schoenholz et al. 2017 arXiv:1611.01232; "
                      "Xiao et al. 2018 arXiv:1806.05393",
    }
    if info["method"] == "chebyshev-tables":
        attrs["table_error_1d"] = info["err_1d"] if info["err_1d"] is not None else np.nan
        attrs["table_error_2d"] = info["err_2d"] if info["err_2d"] is not None else np.nan
    desc = {
        "q_star": ("q*", "fixed point of the length map q' = sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2"),
        "c_star": ("c*", "stable fixed point of the correlation map (1 in the ordered phase)"),
        "chi_1": ("chi_1", "sigma_w^2 E[phi'(sqrt(q*) z)^2]; slope of the c-map at c = 1"),
        "chi_q": ("chi_q", "slope of the length map at q*"),
        "chi_c": ("chi_c", "slope of the c-map at c*"),
        "xi_q": ("xi_q", "depth scale -1/ln chi_q"),
        "xi_c": ("xi_c", "depth scale -1/ln chi_c (inf on the critical line)"),
        "phase": ("phase", "ordered (chi_1 < 1), chaotic (chi_1 > 1), critical (|chi_1 - 1| <= critical_tol), "
                  "unbounded (no finite q*)"),
        "converged": ("converged", "both fixed-point solves converged"),
    }
    data = {"q_star": q, "c_star": c, "chi_1": chi1, "chi_q": chiq, "chi_c": chic, "xi_q": xi_q, "xi_c": xi_c,
            "phase": phase, "converged": converged}
    ds = xr.Dataset(
        {k: (dims, v.reshape(shape), {"long_name": desc[k][0], "description": desc[k][1]}) for k, v in data.items()},
        coords={"weight_var": ("weight_var", W, {"long_name": "sigma_w^2", "description": "weight variance"}),
                "bias_var": ("bias_var", B, {"long_name": "sigma_b^2", "description": "bias variance"})},
        attrs=attrs,
    )
    return ds


# ----------------------------------------------------------------------------- critical line
def critical_line(act: "str | Activation", bias_var_range: Sequence[float] = (0.0, 2.0), points: int = 200):
    """The critical line χ₁ = 1 (edge of chaos) at evenly spaced σ_b².

    Each point solves σ_b²(q*) = σ_b² on the q*-parametrised critical line
    σ_w²(q*) = 1/E[φ'(√q* z)²], σ_b²(q*) = q* − σ_w²(q*) E[φ(√q* z)²]
    (:func:`meanfield.critical_weight_var`), so the line is exact, not read off a grid.

    Parameters
    ----------
    act : str or Activation
    bias_var_range : (float, float)
        σ_b² from ``start`` to ``stop`` (0 <= start < stop).
    points : int
        Number of σ_b² values (>= 2).

    Returns
    -------
    xarray.Dataset
        Dim ``bias_var``; variables ``weight_var`` (the critical σ_w², NaN where none
        exists), ``q_star`` (NaN where not finite or not unique, e.g. the ReLU family),
        ``converged`` (bool) and ``message`` (str).

    Examples
    --------
    >>> from meanfield.phase import critical_line
    >>> line = critical_line("tanh", (0.0, 0.1), points=3)
    >>> [round(float(w), 4) for w in line.weight_var]
    [1.0, 1.761, 1.9861]

    References
    ----------
    .. [1] Schoenholz et al., "Deep information propagation", ICLR 2017, arXiv:1611.01232.
    .. [2] Xiao et al., "Dynamical isometry and a mean field theory of CNNs", ICML 2018,
       arXiv:1806.05393.
    """
    import xarray as xr

    from .core import critical_weight_var

    a = get_activation(act)
    lo, hi = check_range("bias_var_range", bias_var_range, lo=0.0)
    n = check_int("points", points, lo=2, hi=1_000_000)
    b = np.linspace(lo, hi, n)
    w = np.full(n, np.nan)
    q = np.full(n, np.nan)
    conv = np.zeros(n, dtype=bool)
    msg = np.empty(n, dtype=object)
    for i, bi in enumerate(b):
        cp = critical_weight_var(a, float(bi))
        w[i] = np.nan if cp.weight_var is None else cp.weight_var
        q[i] = np.nan if cp.q_star is None else cp.q_star
        conv[i] = cp.converged
        msg[i] = cp.message
    attrs = {"title": f"Critical line chi_1 = 1 of {a.name}", "software": f"meanfield {__version__}",
             "activation": a.name, "method": "q*-parametrisation (meanfield.critical_weight_var)",
             "references": "Schoenholz et al. 2017 arXiv:1611.01232; Xiao et al. 2018 arXiv:1806.05393"}
    return xr.Dataset(
        {"weight_var": ("bias_var", w, {"long_name": "sigma_w^2", "description": "critical weight variance"}),
         "q_star": ("bias_var", q, {"long_name": "q*", "description": "fixed point on the critical line"}),
         "converged": ("bias_var", conv),
         "message": ("bias_var", msg.astype(str))},
        coords={"bias_var": ("bias_var", b, {"long_name": "sigma_b^2"})}, attrs=attrs)


def critical_curve(act: "str | Activation", weight_var_range: Sequence[float], bias_var_range: Sequence[float],
                   points: int = 400) -> dict[str, np.ndarray]:
    """The critical line inside a (σ_w², σ_b²) box, traced in q* (for figures).

    Samples the q*-parametrisation σ_w²(q*), σ_b²(q*) densely and keeps the part with
    σ_b² >= 0 inside the box (NaN separates disjoint pieces), so the line is exact at
    every drawn vertex, whatever the grid resolution of a phase diagram.

    Returns
    -------
    dict
        ``weight_var``, ``bias_var``, ``q_star`` arrays (for the ReLU family, the vertical
        line σ_w² = 1/E[φ'²] with ``q_star`` NaN).
    """
    from ._jit import fixed as _f
    from .core import critical_weight_var

    a = get_activation(act)
    w0, w1 = check_range("weight_var_range", weight_var_range, lo=0.0, positive=True)
    b0, b1 = check_range("bias_var_range", bias_var_range, lo=0.0)
    n = check_int("points", points, lo=2)
    h = _f.homogeneous_h(a.spec)
    if h > 0:
        wc = 1.0 / h
        if not (w0 <= wc <= w1):
            return {"weight_var": np.zeros(0), "bias_var": np.zeros(0), "q_star": np.zeros(0)}
        return {"weight_var": np.array([wc, wc]), "bias_var": np.array([b0, b1]), "q_star": np.full(2, np.nan)}
    qs = np.geomspace(1e-10, 1e8, 4000)
    out = np.empty(5)
    W = np.empty(qs.size)
    B = np.empty(qs.size)
    for i, qi in enumerate(qs):
        _f.critical_from_q(a.spec, float(qi), out)
        W[i], B[i] = (out[0], out[1]) if out[4] == 0 else (np.nan, np.nan)
    B = np.where((B < b0) & (B > b0 - 1e-12 * max(1.0, b1 - b0)), b0, B)  # rounding at σ_b² = 0
    inside = (W >= w0) & (W <= w1) & (B >= b0) & (B <= b1) & np.isfinite(W)
    if not np.any(inside):
        return {"weight_var": np.zeros(0), "bias_var": np.zeros(0), "q_star": np.zeros(0)}
    # refine: resample each inside run evenly in arc length (in box-normalised units)
    keep = inside.copy()
    keep[1:] |= inside[:-1]
    keep[:-1] |= inside[1:]
    idx = np.nonzero(keep)[0]
    qk = qs[idx]
    lq = np.log(qk)
    Wk, Bk = W[idx], B[idx]
    seg = np.concatenate([[0.0], np.hypot(np.diff(Wk) / (w1 - w0), np.diff(Bk) / (b1 - b0))])
    seg[1:][np.diff(idx) > 1] = np.nan  # gaps between runs
    breaks = np.nonzero(~np.isfinite(seg))[0]
    pieces = np.split(np.arange(idx.size), breaks)
    res_w, res_b, res_q = [], [], []
    total = np.nansum(seg)
    for p in pieces:
        if p.size < 2:
            continue
        s = np.concatenate([[0.0], np.cumsum(np.nan_to_num(seg[p[1:]]))])
        m = max(8, int(n * (s[-1] / total if total > 0 else 1.0)))
        lq_new = np.interp(np.linspace(0.0, s[-1], m), s, lq[p])
        qn = np.exp(lq_new)
        wn = np.empty(qn.size)
        bn = np.empty(qn.size)
        for i, qi in enumerate(qn):
            _f.critical_from_q(a.spec, float(qi), out)
            wn[i], bn[i] = out[0], max(out[1], b0) if out[1] > b0 - 1e-12 * max(1.0, b1 - b0) else out[1]
        res_w += [wn, [np.nan]]
        res_b += [bn, [np.nan]]
        res_q += [qn, [np.nan]]
    wv = np.concatenate(res_w[:-1]) if res_w else np.zeros(0)
    bv = np.concatenate(res_b[:-1]) if res_b else np.zeros(0)
    qv = np.concatenate(res_q[:-1]) if res_q else np.zeros(0)
    # the degenerate end point q* = 0 at σ_b² = 0 (smooth odd φ): σ_w² = 1/φ'(0)²
    if b0 == 0.0:
        cp = critical_weight_var(a, 0.0)
        if cp.q_star == 0.0 and cp.weight_var is not None and w0 <= cp.weight_var <= w1 and bv.size:
            wv, bv, qv = np.r_[cp.weight_var, wv], np.r_[0.0, bv], np.r_[0.0, qv]
    return {"weight_var": wv, "bias_var": bv, "q_star": qv}


# ----------------------------------------------------------------------------- files
def _atomic_write(path: "str | os.PathLike", writer: Callable[[Path], None]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        writer(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise
    return path


def _netcdf_engine() -> str:
    """h5netcdf when its HDF5 backend (h5py) is importable, else netCDF4."""
    import importlib.util

    if importlib.util.find_spec("h5netcdf") and importlib.util.find_spec("h5py"):
        return "h5netcdf"
    if importlib.util.find_spec("netCDF4"):
        return "netcdf4"
    raise RuntimeError("writing NetCDF needs h5netcdf with h5py, or netCDF4: pip install h5py")


def to_netcdf(ds, path: "str | os.PathLike") -> Path:
    """Write a phase diagram (or critical line) to NetCDF-4, atomically.

    The file appears complete or not at all (temporary name, then rename), so an
    interrupted run never leaves a truncated file. Uses h5netcdf (with h5py) or netCDF4,
    whichever is installed.
    """
    engine = _netcdf_engine()
    enc: dict[str, dict] = {}
    for name, v in ds.data_vars.items():
        z = {"zlib": True, "complevel": 4} if engine == "netcdf4" else {"compression": "gzip", "compression_opts": 4}
        if v.dtype.kind in "fib":
            enc[name] = z
        elif v.dtype.kind == "U":  # fixed-width char array (compressible) instead of variable-length strings
            enc[name] = dict(z, dtype="S1")

    def w(tmp: Path) -> None:
        ds.to_netcdf(tmp, engine=engine, format="NETCDF4", encoding=enc)

    return _atomic_write(path, w)


def to_csv(ds, path: "str | os.PathLike") -> Path:
    """Write a phase diagram as a tidy CSV (one row per grid point), atomically.

    Columns: ``weight_var, bias_var`` and the data variables; floats as their shortest
    exact representation (they read back bit for bit), ``inf`` for infinite values and
    empty fields for undefined ones.
    """
    dims = list(ds.dims)

    def column(v: np.ndarray) -> list[str]:
        if v.dtype.kind == "f":  # repr: the shortest string that round-trips exactly
            return ["" if x != x else repr(x) for x in v.tolist()]
        return [str(x) for x in v.tolist()]

    def w(tmp: Path) -> None:
        names = dims + list(ds.data_vars)
        full = ds.reset_coords(drop=True)
        grids = np.meshgrid(*[full[d].values for d in dims], indexing="ij")
        cols = [column(g.ravel()) for g in grids]
        cols += [column(np.asarray(full[v].transpose(*dims).values).ravel()) for v in ds.data_vars]
        with open(tmp, "w", newline="") as fh:
            fh.write(",".join(names) + "\n")
            fh.writelines(",".join(r) + "\n" for r in zip(*cols))

    return _atomic_write(path, w)


def open_phase_diagram(path: "str | os.PathLike"):
    """Read a phase diagram written by :func:`to_netcdf` (``.nc``) or :func:`to_csv` (``.csv``)."""
    import xarray as xr

    path = Path(path)
    if path.suffix.lower() == ".csv":
        import pandas as pd

        df = pd.read_csv(path, keep_default_na=False, na_values=[""])
        for col in df.columns:
            if col == "phase":
                df[col] = df[col].astype(str)
        ds = df.set_index(["weight_var", "bias_var"]).to_xarray()
        if "converged" in ds:
            ds["converged"] = ds["converged"].astype(bool)
        return ds
    with xr.open_dataset(path, engine=_netcdf_engine()) as ds:
        return ds.load()
