"""``meanfield depth-scales`` and ``meanfield propagate``: the CNN mean-field theory (THEORY.md §3).

Defaults: ``--act tanh``; with neither ``--weight-var`` nor ``--bias-var`` the
point is on the critical line at σ_b² = 0.05 (σ_w² ≈ 1.76096 for tanh); with
only ``--bias-var``, σ_w² is the critical value for it; with only
``--weight-var``, σ_b² = 0.05. What was filled in is said on stderr.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ._common import info, print_json

ACT_HELP = "Activation: a name (see `meanfield activations`), name:param (leaky_relu:0.2) or an expression in x."
WV_HELP = "sigma_w^2 > 0 (default: on the critical line chi_1 = 1 for --bias-var)."
BV_HELP = "sigma_b^2 >= 0 (default 0.05)."
KERNEL_HELP = "Kernel size per spatial dimension (default 3; inferred from --taps)."
DIMS_HELP = "Spatial dimensions, 1 or 2 (default 1, or that of --taps)."
VAR_HELP = ("Variance profile of the kernel taps: uniform, delta, binomial, gaussian:<width> or custom "
            "(default uniform; custom when --taps is given).")
TAPS_HELP = "Custom profile taps, e.g. 0.25,0.5,0.25 (2-D: rows separated by ';'). Normalised to sum 1."
FORMAT_HELP = "Figure formats with --out, comma-separated: png, pdf, svg."


def _fmt(x: float, width: int = 10) -> str:
    import math

    if x is None or (isinstance(x, float) and math.isnan(x)):
        return f"{'null':>{width}}"
    if isinstance(x, float) and math.isinf(x):
        return f"{'inf':>{width}}"
    return f"{x:>{width}.5g}"


class _Capture:
    """Collect the profile-normalisation warnings and say them on stderr."""

    def __enter__(self):
        import warnings

        self._cm = warnings.catch_warnings(record=True)
        self.records = self._cm.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        self._cm.__exit__(*exc)
        from ..profiles import ProfileNormalisedWarning

        if exc[0] is None:  # on an error only the one-line message is printed
            import warnings

            for w in self.records:
                if issubclass(w.category, ProfileNormalisedWarning):
                    info(f"note: {w.message}")
                else:
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)
        return False


def _defaults_note(note: Optional[str]) -> None:
    if note:
        info(f"note: {note}")


def register(app: typer.Typer) -> None:
    @app.command("depth-scales")
    def depth_scales_cmd(
        act: str = typer.Option("tanh", "--act", help=ACT_HELP),
        weight_var: Optional[float] = typer.Option(None, "--weight-var", help=WV_HELP),
        bias_var: Optional[float] = typer.Option(None, "--bias-var", help=BV_HELP),
        kernel: Optional[int] = typer.Option(None, "--kernel", help=KERNEL_HELP),
        dims: Optional[int] = typer.Option(None, "--dims", help=DIMS_HELP),
        spatial: int = typer.Option(32, "--spatial", help="Positions n per spatial dimension (periodic)."),
        variance: Optional[str] = typer.Option(None, "--variance", help=VAR_HELP),
        taps: Optional[str] = typer.Option(None, "--taps", help=TAPS_HELP),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object with every mode on stdout."),
        out: Optional[Path] = typer.Option(None, "--out", help="Write figures to this directory."),
        fmt: str = typer.Option("png,pdf", "--format", help=FORMAT_HELP),
    ) -> None:
        """Per-Fourier-mode depth scales xi_{q,m}, xi_{c,m} of a CNN (Xiao et al. 2018, arXiv:1806.05393).

        lambda_m = sum_beta v_beta exp(2 pi i m beta / n); xi_{c,m} = -1/ln|chi_c lambda_m| (inf where the mode
        does not decay, 0 where lambda_m = 0). The table is sorted by frequency; --json lists every mode.
        """
        from ..cnn import mode_depth_scales, resolve_variances
        from ..plotting.style import check_formats

        formats = check_formats(fmt) if out is not None else None
        wv, bv, note = resolve_variances(act, weight_var, bias_var)
        with _Capture():
            r = mode_depth_scales(act, wv, bv, kernel=kernel, dims=dims, spatial=spatial, variance=variance,
                                  taps=taps)
        r = _with_act(r, act)
        _defaults_note(note)
        if max(r.kernel) > r.spatial:
            info(f"note: kernel {max(r.kernel)} > spatial {r.spatial}: taps wrap around the periodic grid "
                 "(variances of taps on the same position add)")
        if not r.converged:
            info(f"warning: no finite fixed point at these variances (phase {r.phase}); depth scales are null")
        if json_out:
            print_json(r.to_dict())
        else:
            _print_table(r)
        if out is not None:
            written = _depth_scale_figures(r, out, formats)
            for p in written:
                info(f"wrote {p}")

    @app.command("propagate")
    def propagate_cmd(
        act: str = typer.Option("tanh", "--act", help=ACT_HELP),
        weight_var: Optional[float] = typer.Option(None, "--weight-var", help=WV_HELP),
        bias_var: Optional[float] = typer.Option(None, "--bias-var", help=BV_HELP),
        kernel: Optional[int] = typer.Option(None, "--kernel", help=KERNEL_HELP),
        variance: Optional[str] = typer.Option(None, "--variance", help=VAR_HELP),
        taps: Optional[str] = typer.Option(None, "--taps", help=TAPS_HELP),
        depth: int = typer.Option(50, "--depth", help="Number of layers L (layers 0..L are written)."),
        dims: Optional[int] = typer.Option(None, "--dims", help=DIMS_HELP),
        spatial: Optional[int] = typer.Option(None, "--spatial",
                                              help="Positions n per dimension (default 16; inferred from --input-array)."),
        input_var: float = typer.Option(1.0, "--input-var", help="q0: variance of every input pre-activation."),
        input_corr: float = typer.Option(0.0, "--input-corr",
                                         help="c0: correlation between distinct positions (one input) or between "
                                              "the two inputs at the same position (--pair)."),
        pair: bool = typer.Option(False, "--pair", help="Propagate the joint covariance of two inputs."),
        input_array: Optional[Path] = typer.Option(
            None, "--input-array", help="A .npy signal: (n) or (c, n) in 1-D, (n, n) or (c, n, n) in 2-D (leading "
                                        "axis 2 with --pair); layer 0 is a first convolution applied to it."),
        method: str = typer.Option("auto", "--method",
                                   help="auto (translation-invariant shortcut when the input allows it), full, "
                                        "or translation-invariant."),
        summary_only: bool = typer.Option(False, "--summary-only",
                                          help="Do not store the full covariance of every layer."),
        max_memory: int = typer.Option(1024, "--max-memory",
                                       help="Memory limit of the full recursion in MiB (working arrays plus stored "
                                            "layers; memory is O(n^2) per layer in 1-D, O(n^4) in 2-D)."),
        json_out: bool = typer.Option(False, "--json", help="Print the per-layer summary as JSON on stdout."),
        out: Optional[Path] = typer.Option(None, "--out",
                                           help="Write propagate.nc (layer-by-layer covariance) and a figure here."),
        fmt: str = typer.Option("png,pdf", "--format", help=FORMAT_HELP),
    ) -> None:
        """Exact infinite-width recursion Sigma^{l+1} = A * C(Sigma^l) of the spatial covariance, layer by layer.

        Memory is O(n^2) per layer in 1-D and O(n^4) in 2-D for the full recursion; a translation-invariant input
        (the default --input-var/--input-corr) is propagated with the O(n^dims) shortcut, where every displacement
        follows the fully-connected maps.
        """
        import numpy as np

        from .._validation import InvalidArgumentError, check_int
        from ..cnn import propagate, resolve_variances
        from ..plotting.style import check_formats

        formats = check_formats(fmt) if out is not None else None
        max_bytes = check_int("max_memory", max_memory, lo=1) * 2 ** 20
        wv, bv, note = resolve_variances(act, weight_var, bias_var)
        arr = None
        if input_array is not None:
            try:
                arr = np.load(input_array, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise InvalidArgumentError("input_array", f"cannot read {str(input_array)!r} as a .npy array: {exc}") \
                    from None
        with _Capture():
            ds = propagate(act, wv, bv, kernel=kernel, dims=dims, spatial=spatial, variance=variance, taps=taps,
                           depth=depth, input_var=input_var, input_corr=input_corr, pair=pair, input_array=arr,
                           method=method, keep_covariance=not summary_only, max_bytes=max_bytes)
        ds.attrs["act"] = act
        _defaults_note(note)
        info(f"method: {ds.attrs['method']} ({ds.attrs['inputs']} input(s), {ds.attrs['spatial']} positions per axis, "
             f"{ds.attrs['dims']}-D)")
        if ds.attrs["first_nonfinite_layer"] >= 0:
            info(f"warning: the covariance overflowed at layer {ds.attrs['first_nonfinite_layer']} "
                 "(no finite fixed point); later layers are null")
        if json_out:
            print_json(_propagate_json(ds))
        else:
            _print_propagation(ds)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            nc = out / "propagate.nc"
            tmp = out / ".propagate.nc.part"
            _write_netcdf(ds, tmp)
            tmp.replace(nc)
            info(f"wrote {nc}")
            for p in _propagate_figure(ds, out, formats):
                info(f"wrote {p}")


# --------------------------------------------------------------------------- helpers


def _write_netcdf(ds, path: Path) -> None:
    """Write NetCDF-4 with whichever engine is installed (netCDF4, or h5netcdf with h5py)."""
    import importlib.util

    for engine, module in (("netcdf4", "netCDF4"), ("h5netcdf", "h5py")):
        if importlib.util.find_spec(module) is not None:
            ds.to_netcdf(path, engine=engine)
            return
    ds.to_netcdf(path, engine="scipy")   # NetCDF-3 fallback


def _with_act(r, act: str):
    import dataclasses

    return dataclasses.replace(r, act=act)


def _print_table(r) -> None:
    typer.echo(f"act {r.act}  weight_var {r.weight_var:.8g}  bias_var {r.bias_var:.8g}  phase {r.phase}")
    k = "x".join(str(s) for s in r.kernel)
    typer.echo(f"kernel {k}  dims {r.dims}  spatial {r.spatial}  variance {r.variance}  "
               f"taps {_taps_text(r.taps)}")
    typer.echo(f"chi_q {_fmt(r.chi_q, 0)}  chi_c {_fmt(r.chi_c, 0)}  xi_q {_fmt(r.xi_q, 0)}  xi_c {_fmt(r.xi_c, 0)}")
    mode_w = 6 if r.dims == 1 else 10
    typer.echo(f"{'mode':>{mode_w}} {'|f|':>8} {'Re lambda':>11} {'Im lambda':>11} {'|lambda|':>10} "
               f"{'xi_q':>10} {'xi_c':>10}")
    af = r.abs_frequency
    for i in r.sorted_order():
        m = ",".join(str(int(x)) for x in r.modes[i])
        lam = r.lambdas[i]
        typer.echo(f"{m:>{mode_w}} {af[i]:>8.4f} {lam.real:>11.6f} {lam.imag:>11.6f} {abs(lam):>10.6f} "
                   f"{_fmt(float(r.xi_q_modes[i]))} {_fmt(float(r.xi_c_modes[i]))}")


def _taps_text(v) -> str:
    import numpy as np

    v = np.asarray(v)
    if v.ndim == 1:
        return ",".join(f"{x:.4g}" for x in v)
    return ";".join(",".join(f"{x:.4g}" for x in row) for row in v)


def _depth_scale_figures(r, out: Path, formats) -> list:
    import matplotlib.pyplot as plt

    from ..cnn import mode_depth_scales
    from ..plotting.cnn import plot_mode_depth_scales, plot_mode_heatmap
    from ..plotting.style import paper_style, provenance, save_figure

    prov = provenance(command="depth-scales", act=r.act, weight_var=r.weight_var, bias_var=r.bias_var,
                      kernel=list(r.kernel), dims=r.dims, spatial=r.spatial, variance=r.variance, taps=r.taps)
    written = []
    with paper_style():
        if r.dims == 1:
            k = r.kernel[0]
            rs = [mode_depth_scales(r.act, r.weight_var, r.bias_var, kernel=k, spatial=r.spatial, variance=v)
                  for v in ("uniform", "delta", "binomial")]
            if r.variance not in ("uniform", "delta", "binomial"):
                rs.append(r)
            fig, ax = plt.subplots(figsize=(4.6, 3.4), constrained_layout=True)
            plot_mode_depth_scales(rs, ax=ax)
            written += save_figure(fig, out / "xi_modes", formats, prov)
            plt.close(fig)
        else:
            fig, ax = plt.subplots(figsize=(4.4, 3.6), constrained_layout=True)
            plot_mode_heatmap(r, ax=ax)
            written += save_figure(fig, out / "xi_modes_2d", formats, prov)
            plt.close(fig)
    return written


def _propagate_json(ds) -> dict:
    keys = ("act", "weight_var", "bias_var", "dims", "spatial", "variance", "depth", "inputs", "method",
            "q_star", "c_star", "chi_q", "chi_c", "phase", "first_nonfinite_layer")
    obj = {k: ds.attrs[k] for k in keys}
    obj["kernel"] = ds.attrs["kernel"].tolist()
    obj["taps"] = ds.attrs["taps"].reshape(tuple(ds.attrs["taps_shape"])).tolist()
    layers = []
    for l in ds["layer"].values:
        layers.append({"layer": int(l), "q": ds["q"].values[l].tolist(), "c": float(ds["c"].values[l]),
                       "dist_fixed_point": float(ds["dist_fixed_point"].values[l])})
    obj["layers"] = layers
    return obj


def _print_propagation(ds) -> None:
    a = ds.attrs
    typer.echo(f"act {a['act']}  weight_var {a['weight_var']:.8g}  bias_var {a['bias_var']:.8g}  phase {a['phase']}  "
               f"q* {_fmt(a['q_star'], 0)}  c* {_fmt(a['c_star'], 0)}")
    typer.echo(f"variance {a['variance']}  taps {_taps_text(a['taps'].reshape(tuple(a['taps_shape'])))}  "
               f"dims {a['dims']}  spatial {a['spatial']}  inputs {a['inputs']}  method {a['method']}")
    P = int(a["inputs"])
    head = "".join(f"{'q[' + str(i) + ']':>13}" for i in range(P))
    typer.echo(f"{'layer':>6}{head}{'c':>13}{'|S-S*|/q*':>13}")
    for l in ds["layer"].values:
        qs = "".join(f"{_fmt(float(x), 13)}" for x in ds["q"].values[l])
        typer.echo(f"{int(l):>6}{qs}{_fmt(float(ds['c'].values[l]), 13)}"
                   f"{_fmt(float(ds['dist_fixed_point'].values[l]), 13)}")


def _propagate_figure(ds, out: Path, formats) -> list:
    import json

    import matplotlib.pyplot as plt

    from ..plotting.cnn import plot_propagation
    from ..plotting.style import paper_style, save_figure

    prov = json.loads(ds.attrs["provenance"])
    prov["parameters"]["command"] = "propagate"
    with paper_style():
        fig, axs = plt.subplots(2, 2, figsize=(7.0, 5.2), constrained_layout=True)
        plot_propagation(ds, axes=axs.ravel())
        written = save_figure(fig, out / "propagate", formats, prov)
        plt.close(fig)
    return written
