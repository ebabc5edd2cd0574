"""``meanfield phase`` (phase diagram: figure + NetCDF + CSV) and ``meanfield critical-line``."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Optional, Tuple

import typer

from ._common import fail, info, print_json

ACT_HELP = "Activation: a name (see `meanfield activations`), name:param (leaky_relu:0.2) or an expression in x."
MAX_RESOLUTION = 4000


def _slug(name: str) -> str:
    """A file-name-safe form of an activation name (``leaky_relu:0.2`` -> ``leaky_relu-0.2``)."""
    s = re.sub(r"[^A-Za-z0-9_.]+", "-", name).strip("-.")
    return s[:80] or "activation"


def _floats(option: str, text: str) -> list[float]:
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(float(part))
        except ValueError:
            fail(option, f"expected comma-separated numbers, got {part!r}")
    return out


def _summary_rows(act, lo: float, hi: float, extra: list[float]) -> list[dict]:
    """The critical σ_w² at a few σ_b² rows (the ends, the middle and the slices)."""
    import numpy as np

    from ..core import critical_weight_var

    rows = sorted(set([float(v) for v in np.linspace(lo, hi, 5)] + [v for v in extra if lo <= v <= hi]))
    out = []
    for b in rows:
        cp = critical_weight_var(act, b)
        out.append({"bias_var": b, "critical_weight_var": cp.weight_var, "q_star": cp.q_star})
    return out


def register(app: typer.Typer) -> None:
    @app.command("phase")
    def phase_cmd(
        act: str = typer.Option("tanh", "--act", help=ACT_HELP),
        weight_var_range: Tuple[float, float] = typer.Option((0.5, 4.0), "--weight-var-range",
                                                             help="sigma_w^2 from START to STOP (0 < START < STOP)."),
        bias_var_range: Tuple[float, float] = typer.Option((0.0, 0.5), "--bias-var-range",
                                                           help="sigma_b^2 from START to STOP (0 <= START < STOP)."),
        resolution: int = typer.Option(400, "--resolution",
                                       help=f"Grid points along each axis (2..{MAX_RESOLUTION})."),
        out: Path = typer.Option(Path("meanfield-out"), "--out", help="Output directory."),
        fmt: str = typer.Option("png,pdf", "--format", help="Figure formats: any of png,pdf,svg."),
        slices: str = typer.Option("0.01,0.05", "--slices",
                                   help="sigma_b^2 rows for the depth-scale panel (comma-separated; '' for none)."),
        json_out: bool = typer.Option(False, "--json", help="Print the written paths and a summary as JSON."),
    ) -> None:
        """Order/chaos phase diagram over a (sigma_w^2, sigma_b^2) grid: figure, NetCDF and tidy CSV.

        Writes DIR/phase-<act>.png/.pdf (and .svg), DIR/phase-<act>.nc and DIR/phase-<act>.csv. Panel (a)
        shows the correlation depth scale xi_c on a log colour scale with the exact critical line
        chi_1 = 1; panel (b) shows xi_q, xi_c and the trainable depth 6 xi_c against sigma_w^2 at the
        --slices rows (Schoenholz et al. 2017).
        """
        import numpy as np

        from .._validation import check_int, check_range
        from ..activations import get_activation
        from ..plotting.style import check_formats

        a = get_activation(act)
        w0, w1 = check_range("weight_var_range", weight_var_range, lo=0.0, positive=True)
        b0, b1 = check_range("bias_var_range", bias_var_range, lo=0.0)
        n = check_int("resolution", resolution, lo=2, hi=MAX_RESOLUTION)
        formats = check_formats(fmt)
        rows = _floats("slices", slices)
        for v in rows:
            if not (v >= 0 and np.isfinite(v)):
                fail("slices", f"sigma_b^2 rows must be finite and >= 0, got {v:g}")
        rows = sorted(set(rows))
        if len(rows) > 6:
            fail("slices", f"at most 6 rows, got {len(rows)}")
        if out.exists() and not out.is_dir():
            fail("out", f"{out} exists and is not a directory")

        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from ..phase import critical_curve, phase_diagram, table_info, to_csv, to_netcdf
        from ..plotting.phase import depth_slices, phase_figure
        from ..plotting.style import paper_style, provenance, save_figure

        t0 = time.perf_counter()
        W = np.linspace(w0, w1, n)
        B = np.linspace(b0, b1, n)
        if not json_out:
            info(f"meanfield phase: {a.name} on a {n} x {n} grid, sigma_w^2 in [{w0:g}, {w1:g}], "
                 f"sigma_b^2 in [{b0:g}, {b1:g}]")
        ds = phase_diagram(a, W, B, progress=None)
        crit = critical_curve(a, (w0, w1), (b0, b1))
        sl = depth_slices(a, rows, (w0, w1)) if rows else None
        cmd = (f"meanfield phase --act {act} --weight-var-range {w0:g} {w1:g} --bias-var-range {b0:g} {b1:g} "
               f"--resolution {n} --slices {','.join(f'{v:g}' for v in rows)}")
        prov = provenance(command=cmd, act=a.name, weight_var_range=[w0, w1], bias_var_range=[b0, b1],
                          resolution=n, slices=rows, method=ds.attrs["method"])
        ds.attrs["command"] = cmd
        ds.attrs["created"] = prov["created"]

        stem = f"phase-{_slug(a.name)}"
        out.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{stem}.", dir=out))
        written: dict[str, str] = {}
        try:
            with paper_style():
                fig, _ = phase_figure(ds, slices=rows, critical=crit, slice_data=sl)
                paths = save_figure(fig, stage / stem, formats, prov)
                plt.close(fig)
            to_netcdf(ds, stage / f"{stem}.nc")
            to_csv(ds, stage / f"{stem}.csv")
            # every file is complete: move them into place together
            for p in sorted(stage.iterdir()):
                if p.name.startswith("."):
                    continue
                dest = out / p.name
                os.replace(p, dest)
                written[p.suffix.lstrip(".")] = str(dest)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        del paths
        elapsed = time.perf_counter() - t0
        phases = {k: int((ds.phase.values == k).sum()) for k in ("ordered", "chaotic", "critical", "unbounded")}
        summary = {
            "act": a.name,
            "files": written,
            "grid": {"weight_var": [w0, w1, n], "bias_var": [b0, b1, n]},
            "critical_line": _summary_rows(a, b0, b1, rows),
            "phase_counts": phases,
            "not_converged": int((~ds.converged.values).sum()),
            "method": ds.attrs["method"],
            "points_from_exact_kernel": int(ds.attrs["points_from_exact_kernel"]),
            "seconds": round(elapsed, 3),
        }
        ti = table_info(a)
        if ti.get("method") == "chebyshev-tables":
            summary["table_error_estimate"] = {"1d": ti["err_1d"], "2d": ti["err_2d"]}
        if json_out:
            print_json(summary)
            return
        for k in ("png", "pdf", "svg", "nc", "csv"):
            if k in written:
                typer.echo(written[k])
        info(f"done in {elapsed:.1f} s: " + ", ".join(f"{v} {k}" for k, v in phases.items() if v)
             + (f"; {summary['not_converged']} points did not converge" if summary["not_converged"] else ""))

    @app.command("critical-line")
    def critical_line_cmd(
        act: str = typer.Option("tanh", "--act", help=ACT_HELP),
        bias_var_range: Tuple[float, float] = typer.Option((0.0, 2.0), "--bias-var-range",
                                                           help="sigma_b^2 from START to STOP (0 <= START < STOP)."),
        points: int = typer.Option(200, "--points", help="Number of evenly spaced sigma_b^2 values (>= 2)."),
        json_out: bool = typer.Option(False, "--json", help="Print the line as JSON on stdout."),
        out: Optional[Path] = typer.Option(None, "--out", help="Write the line to this CSV file."),
    ) -> None:
        """The critical line chi_1 = 1 (edge of chaos): sigma_w^2 and q* at evenly spaced sigma_b^2.

        Traced from the q*-parametrisation sigma_w^2(q*) = 1/E[phi'^2], sigma_b^2(q*) = q* - sigma_w^2 E[phi^2],
        so every point is exact (not read off a grid). Without --json or --out, prints a table.
        """
        from .._validation import check_int, check_range
        from ..phase import _atomic_write, critical_line

        lo, hi = check_range("bias_var_range", bias_var_range, lo=0.0)
        n = check_int("points", points, lo=2, hi=100_000)
        if out is not None and out.exists() and out.is_dir():
            fail("out", f"{out} is a directory; give a file name such as line.csv")
        line = critical_line(act, (lo, hi), n)
        rows = [{"bias_var": float(b), "weight_var": float(w), "q_star": float(q), "converged": bool(c),
                 "message": str(m)}
                for b, w, q, c, m in zip(line.bias_var.values, line.weight_var.values, line.q_star.values,
                                         line.converged.values, line.message.values)]
        if out is not None:
            def w(tmp: Path) -> None:
                line[["weight_var", "q_star", "converged"]].to_dataframe().reset_index().to_csv(
                    tmp, index=False, float_format="%.17g", na_rep="")

            _atomic_write(out, w)
        if json_out:
            obj = {"act": line.attrs["activation"], "method": line.attrs["method"], "points": rows}
            if out is not None:
                obj["file"] = str(out)
            print_json(obj)
            return
        if out is not None:
            typer.echo(str(out))
            return
        typer.echo(f"{'bias_var':>12}  {'weight_var':>18}  {'q_star':>18}")
        for r in rows:
            typer.echo(f"{r['bias_var']:>12.6g}  {_fmt(r['weight_var']):>18}  {_fmt(r['q_star']):>18}")
        bad = [r for r in rows if not r["converged"]]
        if bad:
            info(f"warning: {len(bad)} points have no critical sigma_w^2 (null); see --json for messages")


def _fmt(v: float) -> str:
    import math

    return "null" if v is None or not math.isfinite(v) else f"{v:.12g}"


__all__ = ["register"]
