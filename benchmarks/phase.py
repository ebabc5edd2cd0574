"""Phase-diagram engine vs. the hand-written baseline, measured in one run; prints JSON.

Baseline: what a competent user writes by hand — vectorised NumPy Gauss–Hermite
quadrature (80 nodes for q, a 30 × 30 product rule for c) with plain fixed-point
iteration of the q- and c-maps. Engine: :func:`meanfield.phase_diagram` (Chebyshev
tables + parallel Newton). Both are compared with :func:`meanfield.point` (adaptive
quadrature, bracketed Newton; ~1e-14) at the same sample points.

Usage::

    python benchmarks/phase.py                 # 1000 x 1000 engine grid, 40 x 40 baseline grid
    python benchmarks/phase.py --quick         # smaller, for CI smoke tests
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np


# ----------------------------------------------------------------------------- baseline
def baseline(weight_var: np.ndarray, bias_var: np.ndarray, n_q: int = 80, n_c: int = 30, tol: float = 1e-10,
             max_iter: int = 500) -> dict[str, np.ndarray]:
    """Hand-written tanh mean-field grid: Gauss–Hermite + plain fixed-point iteration (vectorised).

    Iterates q <- σ_w² E[tanh(√q z)²] + σ_b² from q = 1 and c <- (σ_w² E[tanh(u₁)tanh(u₂)] + σ_b²)/q*
    from c = 0.5, updating only the points that have not yet moved by less than ``tol``
    (at most ``max_iter`` sweeps), as a careful user would.
    """
    W, B = np.meshgrid(weight_var, bias_var, indexing="ij")
    w = W.ravel()
    b = B.ravel()
    z, wz = np.polynomial.hermite_e.hermegauss(n_q)
    wz = wz / math.sqrt(2 * math.pi)
    z2, w2 = np.polynomial.hermite_e.hermegauss(n_c)
    w2 = w2 / math.sqrt(2 * math.pi)
    Z1, Z2 = np.meshgrid(z2, z2, indexing="ij")
    Z1, Z2, WW = Z1.ravel(), Z2.ravel(), np.outer(w2, w2).ravel()

    q = np.ones_like(w)
    act = np.arange(w.size)
    for _ in range(max_iter):
        u = np.sqrt(q[act])[:, None] * z[None, :]
        qn = w[act] * (np.tanh(u) ** 2 @ wz) + b[act]
        moved = np.abs(qn - q[act]) >= tol * np.maximum(1.0, qn)
        q[act] = qn
        act = act[moved]
        if act.size == 0:
            break
    u = np.sqrt(q)[:, None] * z[None, :]
    t = np.tanh(u)
    d = 1 - t * t
    chi1 = w * (d * d @ wz)
    chiq = w * ((d * d - 2 * t * t * d) @ wz)  # E[φ'² + φφ''], φ'' = -2 t (1 - t²)
    c = np.full_like(w, 0.5)
    sq = np.sqrt(q)
    act = np.arange(w.size)
    for _ in range(max_iter):
        cc = c[act][:, None]
        s = sq[act][:, None]
        u1 = s * Z1[None, :]
        u2 = s * (cc * Z1[None, :] + np.sqrt(np.maximum(1 - cc * cc, 0.0)) * Z2[None, :])
        cn = np.minimum((w[act] * ((np.tanh(u1) * np.tanh(u2)) @ WW) + b[act]) / q[act], 1.0)
        moved = np.abs(cn - c[act]) >= tol
        c[act] = cn
        act = act[moved]
        if act.size == 0:
            break
    cc = c[:, None]
    u1 = sq[:, None] * Z1[None, :]
    u2 = sq[:, None] * (cc * Z1[None, :] + np.sqrt(np.maximum(1 - cc * cc, 0.0)) * Z2[None, :])
    chic = w * (((1 - np.tanh(u1) ** 2) * (1 - np.tanh(u2) ** 2)) @ WW)
    shape = W.shape
    return {"q_star": q.reshape(shape), "c_star": c.reshape(shape), "chi_1": chi1.reshape(shape),
            "chi_q": chiq.reshape(shape), "chi_c": chic.reshape(shape)}


# ----------------------------------------------------------------------------- errors
KEYS = ("q_star", "c_star", "chi_1", "chi_q", "chi_c")


def errors(values: dict, refs: list, idx: list) -> dict[str, float]:
    """Max error against the point solver at the sample points (relative; absolute for c* and zeros)."""
    out = {}
    for k in KEYS:
        e = 0.0
        for (i, j), p in zip(idx, refs):
            r = getattr(p, k)
            v = float(values[k][i, j])
            if r is None:
                continue
            # relative, except for c* and where the reference is 0 (q* = 0 at σ_b² = 0): absolute
            err = abs(v - r) if (k == "c_star" or r == 0) else abs(v - r) / abs(r)
            e = max(e, err if math.isfinite(err) else math.inf)
        out[k] = e
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="engine grid is n x n")
    ap.add_argument("--n-baseline", type=int, default=40, help="baseline grid is m x m")
    ap.add_argument("--samples", type=int, default=120, help="reference points (meanfield.point)")
    ap.add_argument("--weight-var-range", type=float, nargs=2, default=(0.5, 4.0))
    ap.add_argument("--bias-var-range", type=float, nargs=2, default=(0.0, 0.5))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="n=200, n-baseline=12, samples=20, repeat=1")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.n_baseline, args.samples, args.repeat = 200, 12, 20, 1

    import numba

    import meanfield
    from meanfield.phase import phase_diagram, table_info

    w0, w1 = args.weight_var_range
    b0, b1 = args.bias_var_range
    Wb = np.linspace(w0, w1, args.n_baseline)
    Bb = np.linspace(b0, b1, args.n_baseline)
    W = np.linspace(w0, w1, args.n)
    B = np.linspace(b0, b1, args.n)

    # engine: compile + tables (cold), then timed warm runs
    t = time.perf_counter()
    phase_diagram("tanh", W[:: max(1, args.n // 20)], B[:: max(1, args.n // 20)])
    cold = time.perf_counter() - t
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        ds = phase_diagram("tanh", W, B)
        times.append(time.perf_counter() - t)
    t_engine = min(times)

    # baseline on a smaller grid
    t = time.perf_counter()
    base = baseline(Wb, Bb)
    t_base = time.perf_counter() - t

    # shared sample points on the baseline grid; the engine solves the same grid
    eng_small = phase_diagram("tanh", Wb, Bb)
    rng = np.random.default_rng(2024)
    idx = [(int(rng.integers(Wb.size)), int(rng.integers(Bb.size))) for _ in range(args.samples)]
    refs = [meanfield.point("tanh", float(Wb[i]), float(Bb[j])) for i, j in idx]
    eng_vals = {k: eng_small[k].values for k in KEYS}

    pps_engine = W.size * B.size / t_engine
    pps_base = Wb.size * Bb.size / t_base
    info = table_info("tanh")
    res = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "threads": numba.get_num_threads(), "python": platform.python_version(),
                    "numpy": np.__version__, "numba": numba.__version__,
                    "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
        "grid": {"weight_var": [w0, w1], "bias_var": [b0, b1]},
        "engine": {"points": int(W.size * B.size), "seconds": t_engine, "seconds_all_runs": times,
                   "points_per_second": pps_engine, "cold_seconds_small_grid": cold,
                   "table_build_seconds": info.get("build_seconds"),
                   "points_from_exact_kernel": int(ds.attrs["points_from_exact_kernel"]),
                   "max_error": errors(eng_vals, refs, idx)},
        "baseline": {"points": int(Wb.size * Bb.size), "seconds": t_base, "points_per_second": pps_base,
                     "method": "numpy Gauss-Hermite 80 (q), 30x30 (c), plain fixed-point iteration",
                     "max_error": errors(base, refs, idx)},
        "ratio_points_per_second": pps_engine / pps_base,
        "reference": f"meanfield.point at {args.samples} shared sample points of the baseline grid",
    }
    json.dump(res, sys.stdout, indent=2, default=float)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
