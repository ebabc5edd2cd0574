"""``meanfield point``, ``meanfield critical`` and ``meanfield activations``."""

from __future__ import annotations

from typing import Optional

import typer

from ._common import fail, info, print_json

ACT_HELP = "Activation: a name (see `meanfield activations`), name:param (leaky_relu:0.2) or an expression in x."


def _fmt(v) -> str:
    if v is None:
        return "null"
    if isinstance(v, float):
        return f"{v:.12g}"
    return str(v)


def register(app: typer.Typer) -> None:
    @app.command("point")
    def point_cmd(
        act: str = typer.Option("tanh", "--act", help=ACT_HELP),
        weight_var: float = typer.Option(..., "--weight-var", help="sigma_w^2 > 0."),
        bias_var: float = typer.Option(..., "--bias-var", help="sigma_b^2 >= 0."),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    ) -> None:
        """Fixed points q*, c*, susceptibilities, depth scales and phase at one (sigma_w^2, sigma_b^2)."""
        from ..core import point

        p = point(act, weight_var, bias_var)
        keys = ("act", "weight_var", "bias_var", "q_star", "c_star", "chi_1", "chi_q", "chi_c", "xi_q", "xi_c",
                "phase")
        d = p.to_dict()
        if json_out:
            obj = {k: d[k] for k in keys}
            obj["act"] = act
            obj["converged"] = p.converged
            obj["message"] = p.message
            print_json(obj)
            return
        for k in keys + ("converged", "message"):
            typer.echo(f"{k:>12}  {_fmt(d[k])}")
        if not p.converged:
            info(f"warning: {p.message}")

    @app.command("critical")
    def critical_cmd(
        act: str = typer.Option("tanh", "--act", help=ACT_HELP),
        bias_var: Optional[float] = typer.Option(None, "--bias-var", help="Find sigma_w^2 on the critical line at this sigma_b^2."),
        q_star: Optional[float] = typer.Option(None, "--q-star", help="Find the critical point with this q* (e.g. 1/depth)."),
        json_out: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
    ) -> None:
        """The point on the critical line (chi_1 = 1) at a given sigma_b^2 or a given q*."""
        from ..core import critical_point, critical_weight_var

        if (bias_var is None) == (q_star is None):
            fail("bias-var", "give exactly one of --bias-var and --q-star")
        cp = critical_weight_var(act, bias_var) if bias_var is not None else critical_point(act, q_star)
        obj = {"act": act, "bias_var": cp.bias_var, "weight_var": cp.weight_var, "q_star": cp.q_star}
        if json_out:
            obj["converged"] = cp.converged
            obj["message"] = cp.message
            print_json(obj)
        else:
            for k, v in obj.items():
                typer.echo(f"{k:>12}  {_fmt(v)}")
            typer.echo(f"{'message':>12}  {cp.message}")

    @app.command("activations")
    def activations_cmd(
        json_out: bool = typer.Option(False, "--json", help="Print the registry as JSON."),
    ) -> None:
        """List the named activations (any expression in x works too)."""
        from ..activations import list_activations

        reg = list_activations()
        if json_out:
            print_json(reg)
            return
        for k, v in reg.items():
            typer.echo(f"{k:>12}  {v}")
        typer.echo("\nAliases: silu = swish, hardtanh = hard_tanh, identity = linear.")
        typer.echo('Expressions: --act "x*tanh(softplus(x))", "where(x > 0, x, 0.1*x)" (functions: '
                   "exp log log1p expm1 sqrt sin cos tan tanh sinh cosh arctan arcsinh erf erfc abs sign "
                   "max min sigmoid softplus relu square where).")
