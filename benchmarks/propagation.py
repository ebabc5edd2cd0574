#!/usr/bin/env python
"""Throughput of the streaming forward runs of ``meanfield validate`` against the machine's matmul rate.

Work is counted as ``inputs · layers · channels² · positions · taps`` multiply-adds
(``layers·channels²·positions·kernel`` per input, as in issue #6; ``inputs`` is the
batch every network sees: 2, or 6 with the Fourier-mode probes). The fraction of
peak is ``2 · MACs / s`` over the machine's dense matrix-multiply rate, measured in
the same run with ``torch.mm`` on square matrices of the same dtype (TF32 off).

Three timings per device:

``conv``
    the convolutions and activations alone, weights drawn beforehand;
``engine``
    the same plus the per-layer statistics streamed into device tensors
    (what :func:`meanfield.empirical.run_cnn` does per layer);
``run_cnn``
    the whole public call: kernels drawn layer by layer by :mod:`meanfield.init`
    (float64 on the host; Delta-Orthogonal needs a QR per layer), inputs, stats.

and the wall time of ``run_cnn`` at two depths, to show that the cost is linear in depth.

Usage::

    python benchmarks/propagation.py                      # CPU (and CUDA when present)
    python benchmarks/propagation.py --device cuda --depth 2000
    python benchmarks/propagation.py --json               # machine-readable
    python benchmarks/propagation.py --markdown out.md    # the BENCHMARKS.md section
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time


def _sync(dev):
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def matmul_rate(dev, dtype, size: int | None = None, repeat: int = 5) -> dict:
    """Best-of-``repeat`` FLOP/s of ``torch.mm`` on square matrices (2 n³ flops)."""
    import torch

    n = size or (8192 if dev.type == "cuda" else 2048)
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    torch.mm(a, b)
    _sync(dev)
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        torch.mm(a, b)
        _sync(dev)
        best = min(best, time.perf_counter() - t)
    return {"n": n, "seconds": best, "flops": 2.0 * n ** 3 / best}


def _work(inputs, depth, channels, spatial, kernel, dims) -> float:
    return float(inputs) * depth * channels ** 2 * spatial ** dims * kernel ** dims


def time_engine(dev, dtype, *, depth, channels, spatial, kernel, dims, init, stats: bool, probes=True,
                repeat: int = 2) -> dict:
    """Convolutions (+ streamed statistics) with kernels drawn beforehand (8 distinct layers, reused)."""
    import torch

    from meanfield import empirical as emp

    kshape = (kernel,) * dims
    ws = []
    with emp._BlasThreads(1):
        for l in range(8):
            w, b = emp.draw_layer(0, l, channels, kshape, init, 1.76, 0.05, "uniform")
            ws.append((w.to(dev, dtype), b.to(dev, dtype)))
    B = 6 if probes else 2
    phi, _, _ = emp.torch_activation("tanh")
    N = spatial ** dims
    f64 = torch.float64
    st_main = torch.zeros((depth + 1, 3), dtype=f64, device=dev)
    st_prof = torch.zeros((depth + 1,) + (spatial,) * dims, dtype=f64, device=dev)
    st_probe = torch.zeros((depth + 1, 4) + (spatial,) * dims, dtype=f64, device=dev)
    sp_dims = tuple(range(2, 2 + dims))

    def record(l, h):
        hd = h.to(f64)
        a, b = hd[0], hd[1]
        st_main[l, 0] = (a * a).mean()
        st_main[l, 1] = (b * b).mean()
        st_main[l, 2] = (a * b).mean()
        F = torch.fft.fftn(hd[:2], dim=sp_dims)
        st_prof[l] = torch.fft.ifftn((F.real ** 2 + F.imag ** 2).sum(dim=(0, 1)), dim=tuple(range(dims))).real / (
            2.0 * channels * N)
        if B == 6:
            ra, rb, vv, bb = hd[2], hd[3], hd[4], hd[5]
            st_probe[l, 0] = ((vv - ra) * (vv + ra)).mean(0)
            db, dr = bb - ra, rb - ra
            st_probe[l, 1] = 0.5 * ((dr - db) * (dr + db)).mean(0)
            st_probe[l, 2] = (ra * ra).mean(0)
            st_probe[l, 3] = (ra * rb).mean(0)

    def stream():
        for l in range(depth):
            yield ws[l % 8]

    best = math.inf
    with torch.no_grad(), emp._NoTF32():
        for _ in range(repeat):
            h = torch.randn((B, channels) + (spatial,) * dims, device=dev, dtype=dtype)
            _sync(dev)
            t = time.perf_counter()
            emp._forward_one(h, stream(), phi, dims, kshape, depth, True, record if stats else (lambda l, x: None))
            _sync(dev)
            best = min(best, time.perf_counter() - t)
    work = _work(B, depth, channels, spatial, kernel, dims)
    return {"seconds": best, "macs_per_s": work / best, "work_macs": work}


def time_run_cnn(dev, dtype_name, *, depth, channels, spatial, kernel, dims, init, seeds=1) -> dict:
    from meanfield import empirical as emp

    t = time.perf_counter()
    ds = emp.run_cnn("tanh", 1.76, 0.05, depth=depth, channels=channels, spatial=spatial, kernel=kernel, dims=dims,
                     init=init, seeds=seeds, device=str(dev), dtype=dtype_name)
    wall = time.perf_counter() - t
    B = 6 if ds.attrs["probes"] else 2
    work = _work(B, depth, channels, spatial, kernel, dims) * seeds
    return {"seconds": wall, "engine_seconds": ds.attrs["seconds"], "macs_per_s": work / ds.attrs["seconds"],
            "work_macs": work}


def bench_device(dev, args) -> dict:
    import torch

    dtype = torch.float32 if args.dtype == "float32" else torch.float64
    cfg = dict(channels=args.channels, spatial=args.spatial, kernel=args.kernel, dims=args.dims)
    depth = args.depth or (2000 if dev.type == "cuda" else 200)
    mm = matmul_rate(dev, dtype)
    out = {"device": str(dev), "dtype": args.dtype, "depth": depth, **cfg, "matmul": mm}
    if dev.type == "cuda":
        out["device_name"] = torch.cuda.get_device_name(dev)
    conv = time_engine(dev, dtype, depth=depth, init=args.init, stats=False, **cfg)
    eng = time_engine(dev, dtype, depth=depth, init=args.init, stats=True, **cfg)
    full = time_run_cnn(dev, args.dtype, depth=depth, init=args.init, **cfg)
    half = time_run_cnn(dev, args.dtype, depth=max(depth // 2, 1), init=args.init, **cfg)
    for name, r in (("conv", conv), ("engine", eng), ("run_cnn", full)):
        r["fraction_of_matmul_peak"] = 2.0 * r["macs_per_s"] / mm["flops"]
        out[name] = r
    out["linearity"] = {"depth": [max(depth // 2, 1), depth], "seconds": [half["engine_seconds"],
                                                                          full["engine_seconds"]],
                        "ratio": full["engine_seconds"] / half["engine_seconds"]}
    return out


def markdown(results: list[dict], args) -> str:
    lines = ["## Forward propagation throughput (`benchmarks/propagation.py`)", "",
             f"tanh CNN, {args.dims}-D, {args.channels} channels, {args.spatial} positions, kernel {args.kernel}, "
             f"{args.init} kernels, 6 inputs per network (main pair + mode probes), {args.dtype}. Work = inputs · "
             "layers · channels² · positions · taps multiply-adds; fraction of peak = 2·MAC/s over the measured "
             "`torch.mm` rate.", "",
             "| device | matmul GFLOP/s | stage | layers | s | GMAC/s | fraction of matmul peak |",
             "|---|---:|---|---:|---:|---:|---:|"]
    for r in results:
        dev = r.get("device_name", r["device"])
        for stage in ("conv", "engine", "run_cnn"):
            s = r[stage]
            sec = s.get("engine_seconds", s["seconds"])
            lines.append(f"| {dev} | {r['matmul']['flops'] / 1e9:.0f} | {stage} | {r['depth']} | {sec:.2f} | "
                         f"{s['macs_per_s'] / 1e9:.2f} | {s['fraction_of_matmul_peak']:.1%} |")
    lines.append("")
    for r in results:
        lin = r["linearity"]
        lines.append(f"Linear in depth ({r['device']}): {lin['depth'][0]} layers {lin['seconds'][0]:.2f} s, "
                     f"{lin['depth'][1]} layers {lin['seconds'][1]:.2f} s (ratio {lin['ratio']:.2f}).")
    lines.append("")
    lines.append(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU threads, "
                 f"Python {platform.python_version()}.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="all", help="cpu, cuda, or all (CPU and CUDA when present)")
    ap.add_argument("--depth", type=int, default=None, help="layers (default 200 on CPU, 2000 on CUDA)")
    ap.add_argument("--channels", type=int, default=256)
    ap.add_argument("--spatial", type=int, default=32)
    ap.add_argument("--kernel", type=int, default=3)
    ap.add_argument("--dims", type=int, default=1)
    ap.add_argument("--init", default="delta-orthogonal")
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    ap.add_argument("--markdown", default=None, help="also write the markdown section to this file")
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("Error: the benchmark needs PyTorch; install it with: pip install 'meanfield[torch]'", file=sys.stderr)
        return 1
    devs = []
    if args.device in ("all", "cpu"):
        devs.append(torch.device("cpu"))
    if args.device in ("all", "cuda") and torch.cuda.is_available():
        devs.append(torch.device("cuda"))
    if args.device == "cuda" and not torch.cuda.is_available():
        print("Error: --device cuda: no CUDA device is available", file=sys.stderr)
        return 2
    results = [bench_device(d, args) for d in devs]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(markdown(results, args), end="")
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(markdown(results, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
