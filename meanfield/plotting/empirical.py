"""Figures for the empirical checks: theory lines against finite-width points, mode rates, spectra.

Every ``plot_*`` function draws on ``ax`` (a new figure when omitted) and returns
a dict of the artists it made; the ``*_figure`` functions assemble a complete
figure in the paper style. Inputs are the results of
:func:`meanfield.empirical.validate` and :func:`meanfield.empirical.jacobian_spectrum`.

References
----------
Xiao et al. 2018, arXiv:1806.05393; Pennington et al. 2017, arXiv:1711.04735.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["plot_layer_curve", "plot_mode_rates", "plot_mode_decay", "plot_spectrum", "validation_figure",
           "spectrum_figure", "thin_layers"]

_KIND_COLOUR = {"variance": "C0", "correlation": "C3"}


def _ax(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    return ax


def thin_layers(depth: int, points: int = 60) -> np.ndarray:
    """At most ``points`` layer indices in ``0..depth`` for the markers (all when few; else log-spaced)."""
    if depth + 1 <= points:
        return np.arange(depth + 1)
    idx = np.unique(np.round(np.geomspace(1, depth, points - 1)).astype(int))
    return np.concatenate([[0], idx])


def plot_layer_curve(result: Any, quantity: str = "q", ax=None, points: int = 60, label_prefix: str = "",
                     colour: str | None = None) -> dict:
    """Theory line and empirical points (± 2 standard errors) of ``q^l`` or ``c^l`` against layer.

    Parameters
    ----------
    result : meanfield.empirical.Validation
    quantity : {"q", "c", "1-c"}
        ``"1-c"`` plots ``1 − c^l`` on a log axis (useful when ``c → 1``).
    ax : matplotlib.axes.Axes, optional
    points : int
        Markers are drawn at most at this many layers (log-spaced for deep runs).

    Returns
    -------
    dict
        ``theory`` (Line2D) and ``empirical`` (ErrorbarContainer).
    """
    ax = _ax(ax)
    L = int(result.layers[-1])
    if quantity == "q":
        th, em, se, lab = result.q_theory, result.q_empirical, result.q_stderr, r"$q^l$"
    elif quantity in ("c", "1-c"):
        th, em, se, lab = result.c_theory, result.c_empirical, result.c_stderr, r"$c^l$"
        if quantity == "1-c":
            th, em, lab = 1.0 - th, 1.0 - em, r"$1-c^l$"
    else:
        from .._validation import InvalidArgumentError

        raise InvalidArgumentError("quantity", f"must be q, c or 1-c, got {quantity!r}")
    idx = thin_layers(L, points)
    col = colour or "k"
    line, = ax.plot(result.layers, th, "-", color=col, lw=1.2, label=f"{label_prefix}theory")
    err = ax.errorbar(idx, em[idx], yerr=2.0 * np.nan_to_num(se[idx]), fmt="o", ms=3, mfc="none", color=col,
                      elinewidth=0.8, capsize=1.5, label=f"{label_prefix}random CNNs (±2 s.e.)")
    ax.set_xlabel("layer $l$")
    ax.set_ylabel(lab)
    if L > 300:
        ax.set_xscale("symlog", linthresh=10)
    if quantity == "1-c":
        ax.set_yscale("log")
    return {"theory": line, "empirical": err}


def plot_mode_rates(result: Any, ax=None, kinds: Sequence[str] = ("variance", "correlation")) -> dict:
    """Per-mode decay factor per layer: ``|χ λ_m|`` (lines) against the fitted ones (points ± 2 s.e.).

    Parameters
    ----------
    result : meanfield.empirical.Validation
    ax : matplotlib.axes.Axes, optional
    kinds : sequence of {"variance", "correlation"}

    Returns
    -------
    dict
        ``{kind: {"theory": Line2D, "fitted": ErrorbarContainer}}`` (empty when the
        run had no mode probes).
    """
    ax = _ax(ax)
    out: dict = {}
    sym = {"variance": r"$|\chi_q\lambda_m|$", "correlation": r"$|\chi_c\lambda_m|$"}
    for kind in kinds:
        recs = [m for m in result.modes if m["kind"] == kind]
        if not recs:
            continue
        f = np.array([m["frequency"] for m in recs])
        order = np.argsort(f, kind="stable")
        f = f[order]
        rt = np.array([m["rate_theory"] for m in recs])[order]
        rf = np.array([m["rate_fitted"] for m in recs])[order]
        se = np.array([m["rate_stderr"] for m in recs], dtype=float)[order]
        col = _KIND_COLOUR.get(kind, "k")
        line, = ax.plot(f, rt, "-", color=col, lw=1.2, label=f"{sym[kind]} (theory)")
        err = ax.errorbar(f, rf, yerr=2.0 * np.nan_to_num(se), fmt="o", ms=3.5, mfc="none", color=col,
                          elinewidth=0.8, capsize=1.5, label=f"{kind} modes, fitted")
        out[kind] = {"theory": line, "fitted": err}
    ax.set_xlabel(r"spatial frequency $|m|/n$")
    ax.set_ylabel("decay factor per layer")
    ax.set_ylim(bottom=0.0)
    return out


def plot_mode_decay(result: Any, kind: str = "correlation", modes: Sequence[int] | None = None, ax=None) -> dict:
    """``|P^l(m)|`` against layer for a few modes: exact infinite-width probe (lines) and random CNNs (points).

    Returns
    -------
    dict
        ``{mode_index: {"theory": Line2D, "empirical": Line2D}}``.
    """
    ax = _ax(ax)
    pr = result.probe.get(kind)
    out: dict = {}
    if pr is None:
        return out
    th = np.abs(pr["theory"])
    em = np.abs(np.mean(pr["empirical"], axis=0))
    M = th.shape[1]
    if modes is None:
        modes = sorted({0, M // 4, M // 2, M - 1})
    lay = np.arange(th.shape[0])
    for i, j in enumerate(modes):
        col = f"C{i}"
        lt, = ax.semilogy(lay, th[:, j] / th[0, j], "-", color=col, lw=1.0, label=f"mode {j}")
        le, = ax.semilogy(lay, em[:, j] / th[0, j], "o", ms=3, mfc="none", color=col)
        out[j] = {"theory": lt, "empirical": le}
    ax.set_xlabel("layer $l$")
    ax.set_ylabel(f"{kind} perturbation $|P^l_m|/|P^0_m|$")
    return out


def validation_figure(result: Any, title: str | None = None):
    """Three panels: ``q^l``, ``c^l`` (theory lines, random-CNN points ± 2 s.e.), per-mode decay factors.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from .style import paper_style

    with paper_style():
        has_modes = bool(result.modes)
        ncol = 3 if has_modes else 2
        fig, axes = plt.subplots(1, ncol, figsize=(3.3 * ncol, 2.9), layout="constrained")
        plot_layer_curve(result, "q", ax=axes[0])
        cmin = np.nanmin(1.0 - np.asarray(result.c_theory))
        plot_layer_curve(result, "1-c" if (cmin > 0 and np.nanmax(result.c_theory) > 0.99) else "c", ax=axes[1])
        axes[0].legend(loc="best", fontsize="small")
        if has_modes:
            plot_mode_rates(result, ax=axes[2])
            axes[2].legend(loc="best", fontsize="x-small")
        p = result.params
        s = result.summary
        head = title or (f"{p['act']}  $\\sigma_w^2$={p['weight_var']:.4g}  $\\sigma_b^2$={p['bias_var']:.4g}  "
                         f"{p['init']} ({p['variance']})  L={p['depth']}  C={p['channels']}  n={p['spatial']}  "
                         f"{p['seeds']} nets")
        zs = f"max|z|: q {s.get('q_max_abs_z', float('nan')):.2g}, c {s.get('c_max_abs_z', float('nan')):.2g}"
        if has_modes:
            zs += (f", modes {s.get('mode_variance_max_abs_z', float('nan')):.2g}/"
                   f"{s.get('mode_correlation_max_abs_z', float('nan')):.2g}")
        fig.suptitle(head + "\n" + zs, fontsize="small")
    return fig


def plot_spectrum(spectra: Any, ax=None, logy: bool = False) -> dict:
    """Histogram of the eigenvalues of ``JJᵀ`` on a log axis (one step curve per result), theory moments in the legend.

    Parameters
    ----------
    spectra : Spectrum or sequence of Spectrum
    ax : matplotlib.axes.Axes, optional
    logy : bool
        Log density axis.

    Returns
    -------
    dict
        ``{init: {"histogram": Line2D, "mean": Line2D}}``.
    """
    ax = _ax(ax)
    if not isinstance(spectra, (list, tuple)):
        spectra = [spectra]
    out = {}
    for i, s in enumerate(spectra):
        col = f"C{i}"
        e = np.asarray(s.histogram["edges"])
        dens = np.asarray(s.histogram["density"])
        lab = (f"{s.params['init']}: mean {s.empirical['mean']:.3g} (theory {s.theory['mean']:.3g}), "
               f"var {s.empirical['variance']:.3g} (theory {s.theory['variance']:.3g})")
        h, = ax.step(e, np.concatenate([dens, dens[-1:]]), where="post", color=col, lw=1.2, label=lab)
        m = ax.axvline(s.theory["mean"], color=col, ls=":", lw=1.0)
        out[s.params["init"]] = {"histogram": h, "mean": m}
    ax.set_xscale("log")
    ax.set_xlabel(r"eigenvalue $\lambda$ of $JJ^\top$")
    ax.set_ylabel(r"density per decade of $\lambda$")
    if logy:
        ax.set_yscale("log")
    return out


def spectrum_figure(spectra: Any, title: str | None = None):
    """The spectrum histogram(s) in the paper style. Returns a Figure."""
    import matplotlib.pyplot as plt

    from .style import paper_style

    if not isinstance(spectra, (list, tuple)):
        spectra = [spectra]
    with paper_style():
        fig, ax = plt.subplots(figsize=(5.0, 3.2), layout="constrained")
        plot_spectrum(spectra, ax=ax)
        ax.legend(loc="upper left", fontsize="x-small")
        p = spectra[0].params
        net = (f"conv k={p['kernel']} n={p['spatial']}" if p["conv"] else "dense")
        ax.set_title(title or (f"{p['act']}  $\\sigma_w^2$={p['weight_var']:.4g}  $\\sigma_b^2$={p['bias_var']:.4g}  "
                               f"L={p['depth']}  width={p['width']}  {net}"), fontsize="small")
    return fig
