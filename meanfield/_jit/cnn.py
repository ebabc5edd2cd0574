"""Numba kernels of the CNN mean-field recursion (THEORY.md §3).

Arrays in, arrays out: no validation, no RNG, no Python objects. Nothing here
compiles at import time; every kernel compiles on first call and is cached on
disk. Each ``*_parallel`` kernel has a ``*_serial`` twin with the same loop body
(the test suite checks that they agree bit for bit); a ``prange`` iteration only
ever writes its own output cells.

- :func:`pair_map_parallel` / :func:`pair_map_serial` — the entry-wise map
  ``𝒞``: ``out[k] = σ_w² E[φ(u₁)φ(u₂)] + σ_b²`` for
  ``(u₁, u₂) ~ N(0, [[s11[k], s12[k]], [s12[k], s22[k]]])``, with the core's
  bivariate expectation :func:`meanfield._jit.quad.expect_pair_c` (and the
  one-variable :func:`meanfield._jit.quad.expect1` on exact variance triples
  ``s11 = s22 = s12``, as the FC q-map).
- :func:`shift_average_parallel` / :func:`shift_average_serial` — the spatial
  average ``[𝒜 ⋆ X]_{(a,α),(b,α')} = Σ_t w_t X_{(a,α+β_t),(b,α'+β_t)}`` over
  the taps, with the (periodic) shifts given as permutation tables.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from .quad import expect1, expect_pair_c


@njit(cache=True)
def _entry(spec, s11, s22, s12, weight_var, bias_var, buf):
    """σ_w² E[φ(u₁)φ(u₂)] + σ_b² for one covariance triple (buf: float64[5] scratch)."""
    if s11 == s22 and s12 == s11:
        expect1(spec, s11, buf)
        return weight_var * buf[0] + bias_var
    if s11 > 0.0 and s22 > 0.0:
        c = s12 / math.sqrt(s11 * s22)
    else:
        c = 0.0
    expect_pair_c(spec, s11, s22, c, buf)
    return weight_var * buf[0] + bias_var


@njit(cache=True, parallel=True)
def pair_map_parallel(spec, s11, s22, s12, weight_var, bias_var, out):
    """Entry-wise covariance map on K triples, parallel over triples."""
    n = s11.shape[0]
    for k in prange(n):
        buf = np.empty(5, dtype=np.float64)
        out[k] = _entry(spec, s11[k], s22[k], s12[k], weight_var, bias_var, buf)


@njit(cache=True)
def pair_map_serial(spec, s11, s22, s12, weight_var, bias_var, out):
    """Serial twin of :func:`pair_map_parallel`."""
    n = s11.shape[0]
    buf = np.empty(5, dtype=np.float64)
    for k in range(n):
        out[k] = _entry(spec, s11[k], s22[k], s12[k], weight_var, bias_var, buf)


@njit(cache=True)
def _shift_row(x, perm, w, npos, r, out):
    m = x.shape[0]
    a = r // npos
    al = r - a * npos
    ntap = w.shape[0]
    for col in range(m):
        b = col // npos
        al2 = col - b * npos
        acc = 0.0
        for t in range(ntap):
            acc += w[t] * x[a * npos + perm[t, al], b * npos + perm[t, al2]]
        out[r, col] = acc


@njit(cache=True, parallel=True)
def shift_average_parallel(x, perm, w, npos, out):
    """``out = 𝒜 ⋆ x`` for a (P·N, P·N) matrix; ``perm[t, α]`` = position α shifted by tap t."""
    m = x.shape[0]
    for r in prange(m):
        _shift_row(x, perm, w, npos, r, out)


@njit(cache=True)
def shift_average_serial(x, perm, w, npos, out):
    """Serial twin of :func:`shift_average_parallel`."""
    m = x.shape[0]
    for r in range(m):
        _shift_row(x, perm, w, npos, r, out)
