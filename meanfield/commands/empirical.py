"""``meanfield validate`` and ``meanfield spectrum``: random finite-width networks against the theory.

Both need PyTorch (``pip install 'meanfield[torch]'``); it is imported inside the
commands so that ``meanfield --help`` stays fast and works without it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._common import info, print_json

ACT_HELP = "Activation: a name (see `meanfield activations`), name:param (leaky_relu:0.2) or an expression in x."
WV_HELP = "sigma_w^2 > 0 (default: on the critical line chi_1 = 1 for --bias-var)."
BV_HELP = "sigma_b^2 >= 0 (default 0.05)."
DEVICE_HELP = "auto (CUDA when present), cpu or cuda[:N]."
FORMAT_HELP = "Figure formats with --out, comma-separated: png, pdf, svg."
_TORCH_MISSING = "Error: this command needs PyTorch; install it with: pip install 'meanfield[torch]'"


def _need_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        typer.echo(_TORCH_MISSING, err=True)
        raise typer.Exit(code=1) from None


def _fmt(x) -> str:
    import math

    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "null" if x is None or math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


def _write_netcdf(ds, path: Path) -> None:
    import importlib.util
    import json

    ds = ds.copy()
    for k, v in list(ds.attrs.items()):
        if isinstance(v, (bool,)):
            ds.attrs[k] = int(v)
        elif v is None:
            ds.attrs[k] = "null"
        elif isinstance(v, (dict, list)):
            ds.attrs[k] = json.dumps(v)
    tmp = path.with_name("." + path.name + ".part")
    for engine, module in (("netcdf4", "netCDF4"), ("h5netcdf", "h5py")):
        if importlib.util.find_spec(module) is not None:
            ds.to_netcdf(tmp, engine=engine)
            break
    else:
        ds.to_netcdf(tmp, engine="scipy")
    tmp.replace(path)


def register(app: typer.Typer) -> None:
    @app.command("validate")
    def validate_cmd(
        act: str = typer.Option("tanh", "--act", help=ACT_HELP),
        weight_var: Optional[float] = typer.Option(None, "--weight-var", help=WV_HELP),
        bias_var: Optional[float] = typer.Option(None, "--bias-var", help=BV_HELP),
        input_var: float = typer.Option(1.0, "--input-var", help="q0: variance of the input pre-activations."),
        input_corr: float = typer.Option(0.3, "--input-corr", help="c0: correlation of the two inputs."),
        depth: int = typer.Option(50, "--depth", help="Layers L (statistics for l = 0..L; 0 is the input)."),
        channels: int = typer.Option(256, "--channels", help="Channels of every layer."),
        spatial: int = typer.Option(16, "--spatial", help="Positions n per spatial dimension (circular padding)."),
        kernel: int = typer.Option(3, "--kernel", help="Kernel size per spatial dimension."),
        dims: int = typer.Option(1, "--dims", help="Spatial dimensions, 1 or 2."),
        init: str = typer.Option("delta-orthogonal", "--init",
                                 help="gaussian (with --variance), delta-orthogonal or block-orthogonal."),
        variance: Optional[str] = typer.Option(
            None, "--variance", help="Variance profile of gaussian kernels: uniform (default), delta, binomial, "
                                     "gaussian:<width> or taps such as 0.25,0.5,0.25."),
        seeds: int = typer.Option(4, "--seeds", help="Independent networks (seeds seed..seed+seeds-1)."),
        seed: int = typer.Option(0, "--seed", help="First seed."),
        probes: bool = typer.Option(True, "--probes/--no-probes",
                                    help="Add the Fourier-mode probes (per-mode decay rates)."),
        probe_amplitude: float = typer.Option(0.05, "--probe-amplitude", help="Relative size epsilon of the probes."),
        device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
        dtype: str = typer.Option("float32", "--dtype", help="float32 or float64."),
        workers: Optional[int] = typer.Option(None, "--workers",
                                              help="Threads drawing kernels ahead (default 8 on CUDA, 0 on CPU)."),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
        out: Optional[Path] = typer.Option(None, "--out",
                                           help="Write validate.nc, validate.json and the figure here."),
        fmt: str = typer.Option("png,pdf", "--format", help=FORMAT_HELP),
        strict: bool = typer.Option(False, "--strict", help="Exit with code 3 when the comparison fails."),
    ) -> None:
        """Random vanilla CNNs against the mean-field theory: q^l, c^l and per-Fourier-mode decay rates.

        Two inputs with variance q0 and correlation c0 go through `seeds` random CNNs (circular padding,
        stride 1, weights drawn layer by layer and discarded); the measured q^l, c^l are compared with
        the fully-connected maps iterated from (q0, c0), and Fourier-mode probes at the fixed point are
        fitted for their per-layer decay factors against |chi_q lambda_m| and |chi_c lambda_m|
        (Xiao et al. 2018, arXiv:1806.05393). Deviations are reported in units of the expected
        finite-width error with Student-t thresholds (see docs/validation.md).
        """
        from ..empirical import check_run_arguments, validate
        from ..plotting.style import check_formats

        formats = check_formats(fmt) if out is not None else None
        cfg = check_run_arguments(act=act, weight_var=weight_var, bias_var=bias_var, depth=depth, channels=channels,
                                  spatial=spatial, kernel=kernel, dims=dims, init=init, variance=variance,
                                  input_var=input_var, input_corr=input_corr, seeds=seeds, seed=seed,
                                  probe_amplitude=probe_amplitude, device=device, dtype=dtype, workers=workers)
        _need_torch()
        wv, bv, note = cfg["weight_var"], cfg["bias_var"], cfg["note"]
        big = depth * seeds >= 2000

        def progress(s, l):
            if big and l % 1000 == 0 and l > 0:
                info(f"network {s + 1}/{seeds}: layer {l}/{depth}")

        r = validate(act, wv, bv, depth=depth, channels=channels, spatial=spatial, kernel=kernel, dims=dims,
                     init=init, variance=variance, input_var=input_var, input_corr=input_corr, seeds=seeds,
                     seed=seed, probes=probes, probe_amplitude=probe_amplitude, device=device, dtype=dtype,
                     workers=workers, progress=progress)
        r.params["act"] = act
        if note:
            info(f"note: {note}")
        for n in r.summary.get("notes", []):
            info(f"note: {n}")
        obj = r.to_dict()
        if json_out:
            print_json(obj)
        else:
            _print_validation(r)
        if out is not None:
            _write_validation(r, obj, out, formats)
        if strict and not r.summary["pass"]:
            raise typer.Exit(code=3)

    @app.command("spectrum")
    def spectrum_cmd(
        act: str = typer.Option("tanh", "--act", help=ACT_HELP),
        weight_var: Optional[float] = typer.Option(None, "--weight-var", help=WV_HELP),
        bias_var: Optional[float] = typer.Option(None, "--bias-var", help=BV_HELP),
        depth: int = typer.Option(16, "--depth", help="Layers L."),
        width: int = typer.Option(256, "--width", help="Units per layer (channels with --conv)."),
        init: str = typer.Option("gaussian", "--init",
                                 help="gaussian, orthogonal (Haar; Delta-Orthogonal with --conv), both, or "
                                      "delta-orthogonal / block-orthogonal with --conv."),
        conv: bool = typer.Option(False, "--conv", help="Convolutional layers (circular padding)."),
        kernel: int = typer.Option(3, "--kernel", help="Kernel size with --conv."),
        spatial: int = typer.Option(16, "--spatial", help="Positions per dimension with --conv."),
        dims: int = typer.Option(1, "--dims", help="Spatial dimensions with --conv (1 or 2)."),
        variance: Optional[str] = typer.Option(None, "--variance", help="Variance profile of gaussian --conv kernels."),
        input_var: Optional[float] = typer.Option(None, "--input-var", help="Input variance (default q*)."),
        seeds: int = typer.Option(4, "--seeds", help="Independent networks."),
        seed: int = typer.Option(0, "--seed", help="First seed."),
        method: str = typer.Option("auto", "--method",
                                   help="exact (form J; auto up to 2048 units), lanczos (JVP/VJP stochastic "
                                        "Lanczos quadrature) or auto."),
        lanczos_steps: int = typer.Option(64, "--lanczos-steps", help="Lanczos steps per start."),
        lanczos_probes: int = typer.Option(8, "--lanczos-probes", help="Random starts per network."),
        bins: int = typer.Option(60, "--bins", help="Histogram bins."),
        device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
        dtype: str = typer.Option("float64", "--dtype", help="float64 (default) or float32."),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
        out: Optional[Path] = typer.Option(None, "--out", help="Write spectrum.json and the figure here."),
        fmt: str = typer.Option("png,pdf", "--format", help=FORMAT_HELP),
    ) -> None:
        """Singular values of a random network's input-output Jacobian against free-probability theory.

        Mean of the eigenvalues of JJ^T: prod_l sigma_w^2 mu_1 (chi_1^L at q*); variance
        m1^2 sum_l (mu_2/mu_1^2 - 1 - s_1), i.e. L(mu_2/mu_1^2 - 1 - s_1) at criticality, with s_1 = -1 for
        Gaussian and 0 for orthogonal weights (Pennington et al. 2017/2018; THEORY.md section 4).
        """
        from ..empirical import check_spectrum_arguments, jacobian_spectrum
        from ..plotting.style import check_formats

        formats = check_formats(fmt) if out is not None else None
        inits = ["gaussian", "orthogonal"] if init == "both" else [init]
        for it in inits:
            cfg = check_spectrum_arguments(act=act, weight_var=weight_var, bias_var=bias_var, depth=depth,
                                           width=width, init=it, conv=conv, kernel=kernel, spatial=spatial,
                                           dims=dims, variance=variance if it == "gaussian" else None,
                                           input_var=input_var, seeds=seeds, seed=seed, method=method,
                                           lanczos_steps=lanczos_steps, lanczos_probes=lanczos_probes, bins=bins,
                                           device=device, dtype=dtype)
        _need_torch()
        wv, bv, note = cfg["weight_var"], cfg["bias_var"], cfg["note"]
        res = []
        for it in inits:
            res.append(jacobian_spectrum(act, wv, bv, depth=depth, width=width, init=it, conv=conv, kernel=kernel,
                                         spatial=spatial, dims=dims, variance=variance if it == "gaussian" else None,
                                         input_var=input_var, seeds=seeds, seed=seed, method=method,
                                         lanczos_steps=lanczos_steps, lanczos_probes=lanczos_probes, bins=bins,
                                         device=device, dtype=dtype))
        for r in res:
            r.params["act"] = act
        if note:
            info(f"note: {note}")
        objs = [r.to_dict() for r in res]
        obj = objs[0] if len(objs) == 1 else {"runs": objs}
        if json_out:
            print_json(obj)
        else:
            for r in res:
                _print_spectrum(r)
        if out is not None:
            from ..plotting.empirical import spectrum_figure
            from ..plotting.style import provenance, save_figure

            out.mkdir(parents=True, exist_ok=True)
            _write_json(obj, out / "spectrum.json")
            info(f"wrote {out / 'spectrum.json'}")
            fig = spectrum_figure(res)
            prov = provenance(command="spectrum", act=act, weight_var=wv, bias_var=bv, depth=depth, width=width,
                              init=init, conv=conv, kernel=kernel, spatial=spatial, dims=dims, seeds=seeds,
                              seed=seed, method=res[0].params["method"])
            for p in save_figure(fig, out / "spectrum", formats, prov):
                info(f"wrote {p}")
            import matplotlib.pyplot as plt

            plt.close(fig)


# --------------------------------------------------------------------------- helpers


def _write_json(obj, path: Path) -> None:
    import json

    from ._common import jsonable

    tmp = path.with_name("." + path.name + ".part")
    tmp.write_text(json.dumps(jsonable(obj), indent=2, allow_nan=False) + "\n")
    tmp.replace(path)


def _write_validation(r, obj, out: Path, formats) -> None:
    from ..plotting.empirical import validation_figure
    from ..plotting.style import provenance, save_figure

    out.mkdir(parents=True, exist_ok=True)
    _write_json(obj, out / "validate.json")
    info(f"wrote {out / 'validate.json'}")
    _write_netcdf(r.dataset, out / "validate.nc")
    info(f"wrote {out / 'validate.nc'}")
    fig = validation_figure(r)
    keys = ("act", "weight_var", "bias_var", "depth", "channels", "spatial", "kernel", "dims", "init", "variance",
            "input_var", "input_corr", "seeds", "seed", "dtype")
    prov = provenance(command="validate", device=r.device, **{k: r.params[k] for k in keys})
    for p in save_figure(fig, out / "validate", formats, prov):
        info(f"wrote {p}")
    import matplotlib.pyplot as plt

    plt.close(fig)


def _print_validation(r) -> None:
    import numpy as np

    p, s = r.params, r.summary
    typer.echo(f"{p['act']}  weight_var={p['weight_var']:.6g}  bias_var={p['bias_var']:.6g}  init={p['init']} "
               f"({p['variance']})  depth={p['depth']}  channels={p['channels']}  spatial={p['spatial']}^{p['dims']}"
               f"  seeds={p['seeds']}  device={r.device}  {r.seconds:.1f} s")
    typer.echo(f"q* = {_fmt(p['q_star'])}  c* = {_fmt(p['c_star'])}  chi_q = {_fmt(p['chi_q'])}  "
               f"chi_c = {_fmt(p['chi_c'])}  phase = {p['phase']}")
    L = int(r.layers[-1])
    show = sorted(set(np.unique(np.round(np.geomspace(1, max(L, 1), min(L, 10))).astype(int)).tolist()) | {0, L})
    typer.echo(f"{'layer':>7} {'q theory':>12} {'q random':>12} {'s.e.':>9} {'z':>6}   "
               f"{'c theory':>10} {'c random':>10} {'s.e.':>9} {'z':>6}")
    for l in show:
        typer.echo(f"{l:>7d} {r.q_theory[l]:>12.6g} {r.q_empirical[l]:>12.6g} {r.q_stderr[l]:>9.2g} "
                   f"{r.q_z[l]:>6.2f}   {r.c_theory[l]:>10.6g} {r.c_empirical[l]:>10.6g} {r.c_stderr[l]:>9.2g} "
                   f"{r.c_z[l]:>6.2f}")
    if r.modes:
        typer.echo(f"{'mode':>8} {'kind':>12} {'|chi lambda|':>12} {'exact fit':>10} {'fitted':>8} {'s.e.':>7} "
                   f"{'z':>6} {'window':>6}")
        for m in r.modes:
            typer.echo(f"{str(m['mode']):>8} {m['kind']:>12} {m['rate_theory']:>12.4f} "
                       f"{m['rate_theory_exact']:>10.4f} {m['rate_fitted']:>8.4f} {m['rate_stderr']:>7.3f} "
                       f"{m['z']:>6.2f} {m['window']:>6d}")
    fam = [k[:-len("_max_abs_z")] for k in s if k.endswith("_max_abs_z")]
    for f in fam:
        typer.echo(f"{f:>20}: max |z| = {_fmt(s[f + '_max_abs_z'])} (threshold {_fmt(s[f + '_threshold'])}, "
                   f"{s[f + '_comparisons']} comparisons)  {'ok' if s[f + '_pass'] else 'FAIL'}")
    typer.echo(f"{'agreement':>20}: {'yes' if s['pass'] else 'NO'}")


def _print_spectrum(r) -> None:
    p = r.params
    typer.echo(f"{p['act']}  weight_var={p['weight_var']:.6g}  bias_var={p['bias_var']:.6g}  init={p['init']}  "
               f"depth={p['depth']}  width={p['width']}  units={p['units']}  method={p['method']}  "
               f"seeds={p['seeds']}  {r.seconds:.1f} s")
    for k in ("mean", "variance", "normalized_variance"):
        typer.echo(f"{k:>20}: random {r.empirical[k]:.6g} +- {r.stderr[k]:.2g}   theory {r.theory[k]:.6g}   "
                   f"z = {_fmt(r.z[k])}")
    typer.echo(f"{'agreement':>20}: {'yes' if r.summary['pass'] else 'NO'} "
               f"(max |z| {_fmt(r.summary['max_abs_z'])}, threshold {_fmt(r.summary['threshold'])})")
