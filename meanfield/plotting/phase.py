"""Phase-diagram figures: ξ_c over (σ_w², σ_b²) with the exact critical line, and depth-scale slices.

Every function takes ``ax=None`` (a new figure is made) and returns the artists it
drew, so that panels can be composed and restyled. :func:`phase_figure` composes
the two panels that ``meanfield phase`` writes.

References
----------
.. [1] S. S. Schoenholz, J. Gilmer, S. Ganguli, J. Sohl-Dickstein, "Deep information
   propagation", ICLR 2017, arXiv:1611.01232 (phase diagram, ξ_c, trainable depth 6ξ_c).
.. [2] B. Poole, S. Lahiri, M. Raghu, J. Sohl-Dickstein, S. Ganguli, "Exponential
   expressivity in deep neural networks through transient chaos", NeurIPS 2016,
   arXiv:1606.05340.
.. [3] L. Xiao, Y. Bahri, J. Sohl-Dickstein, S. S. Schoenholz, J. Pennington,
   "Dynamical isometry and a mean field theory of CNNs", ICML 2018, arXiv:1806.05393.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["plot_phase_diagram", "plot_depth_scales", "phase_figure", "depth_slices", "XI_MAX"]

XI_MAX = 1e3
"""Colour-scale ceiling for ξ_c (it diverges on the critical line)."""

SLICE_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")


def _ax(ax):
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots()
    return ax


def _edges(c: np.ndarray) -> np.ndarray:
    """Cell edges around 1-D cell centres (for pcolormesh)."""
    if c.size == 1:
        return np.array([c[0] - 0.5, c[0] + 0.5])
    mid = 0.5 * (c[1:] + c[:-1])
    return np.concatenate([[c[0] - (mid[0] - c[0])], mid, [c[-1] + (c[-1] - mid[-1])]])


def _uniform(c: np.ndarray) -> bool:
    if c.size < 3:
        return True
    d = np.diff(c)
    return bool(np.allclose(d, d.mean(), rtol=1e-6, atol=0.0))


def _label_position(mask: np.ndarray, w: np.ndarray, b: np.ndarray):
    """A point deep inside ``mask`` (the cell farthest from its boundary), in data units."""
    from scipy import ndimage

    if not mask.any():
        return None
    padded = np.pad(mask, 1, constant_values=False)
    # distances in units of the axes (grid cells scaled to a square box)
    sampling = (1.0 / max(mask.shape[0], 1), 1.0 / max(mask.shape[1], 1))
    d = ndimage.distance_transform_edt(padded, sampling=sampling)[1:-1, 1:-1]
    i, j = np.unravel_index(np.argmax(d), d.shape)
    if d[i, j] < 0.08:  # too thin a region to hold a label
        return None
    return float(w[i]), float(b[j])


def plot_phase_diagram(ds, ax=None, *, critical: dict | None = None, slices: Sequence[float] = (),
                       cmap: str = "viridis", xi_max: float = XI_MAX, xi_min: float | None = None,
                       colorbar: bool = True,
                       label_phases: bool = True, slice_colors: Sequence[str] = SLICE_COLORS) -> dict[str, Any]:
    """ξ_c over (σ_w², σ_b²) on a log colour scale, with the critical line and phase labels.

    Parameters
    ----------
    ds : xarray.Dataset
        From :func:`meanfield.phase_diagram`.
    ax : matplotlib.axes.Axes, optional
    critical : dict, optional
        ``{"weight_var": ..., "bias_var": ...}`` vertices of the critical line, e.g. from
        :func:`meanfield.phase.critical_curve` (traced from the q*-parametrisation, so the
        line is exact whatever the grid's resolution). Computed when omitted.
    slices : sequence of float
        σ_b² rows to mark with thin lines (the rows of :func:`plot_depth_scales`).
    cmap : str
        Colour map of ξ_c.
    xi_max, xi_min : float
        Colour-scale limits; ξ_c above ``xi_max`` is drawn in the top colour (it diverges on
        the critical line). ``xi_min`` defaults to the smallest ξ_c on the grid; pass the
        same value to panels that should share a colour bar.
    colorbar, label_phases : bool

    Returns
    -------
    dict
        ``mesh``, ``line`` (or None), ``colorbar`` (or None), ``labels``, ``slices``.
    """
    import matplotlib.colors as mcolors

    from ..phase import critical_curve

    ax = _ax(ax)
    w = ds["weight_var"].values
    b = ds["bias_var"].values
    xi = ds["xi_c"].values.astype(float).T  # (bias, weight) for pcolormesh
    lo = np.nanmin(np.where(np.isfinite(xi) & (xi > 0), xi, np.nan)) if np.any(np.isfinite(xi) & (xi > 0)) else 0.1
    vmin = xi_min if xi_min is not None else max(min(lo, xi_max / 10.0), 1e-2)
    norm = mcolors.LogNorm(vmin=vmin, vmax=xi_max)
    import matplotlib

    cmap_obj = matplotlib.colormaps[cmap].with_extremes(bad="#d9d9d9")  # grey: undefined / unbounded
    data = np.where(np.isinf(xi), xi_max, np.clip(xi, vmin, xi_max))
    if _uniform(w) and _uniform(b):  # an image is much faster to render than a quad mesh
        ew, eb = _edges(w), _edges(b)
        mesh = ax.imshow(np.ma.masked_invalid(data), origin="lower", aspect="auto", interpolation="nearest",
                         extent=(ew[0], ew[-1], eb[0], eb[-1]), norm=norm, cmap=cmap_obj, rasterized=True)
    else:
        mesh = ax.pcolormesh(_edges(w), _edges(b), np.ma.masked_invalid(data), norm=norm, cmap=cmap_obj,
                             shading="flat", rasterized=True)
    ax.set_xlim(w[0], w[-1]) if w.size > 1 else None
    ax.set_ylim(b[0], b[-1]) if b.size > 1 else None
    ax.set_xlabel(r"weight variance $\sigma_w^2$")
    ax.set_ylabel(r"bias variance $\sigma_b^2$")
    line = None
    if critical is None and w.size > 1 and b.size > 1:
        critical = critical_curve(ds.attrs.get("activation", "tanh"), (float(w[0]), float(w[-1])),
                                  (float(b[0]), float(b[-1])))
    if critical is not None and len(critical["weight_var"]):
        (line,) = ax.plot(critical["weight_var"], critical["bias_var"], color="white", lw=2.6, solid_capstyle="round",
                          zorder=3)
        (line,) = ax.plot(critical["weight_var"], critical["bias_var"], color="black", lw=1.3, zorder=4,
                          label=r"$\chi_1 = 1$")
    labels = []
    if label_phases:
        ph = ds["phase"].values
        for name, text in (("ordered", "ordered\n" r"$\chi_1 < 1$"), ("chaotic", "chaotic\n" r"$\chi_1 > 1$"),
                           ("unbounded", "unbounded\n" r"no finite $q^*$")):
            pos = _label_position(ph == name, w, b)
            if pos is not None:
                dark = name == "unbounded"
                labels.append(ax.text(pos[0], pos[1], text, ha="center", va="center", fontsize=9,
                                      color="black" if dark else "white", zorder=5, linespacing=1.3,
                                      bbox=dict(boxstyle="round,pad=0.3", ec="none",
                                                fc=(1, 1, 1, 0.5) if dark else (0, 0, 0, 0.35))))
    sl = []
    for k, bv in enumerate(slices):
        if b.size > 1 and b[0] <= bv <= b[-1]:
            sl.append(ax.axhline(bv, color=slice_colors[k % len(slice_colors)], lw=0.9, ls=(0, (3, 2)), zorder=4))
    cb = None
    if colorbar:
        cb = ax.figure.colorbar(mesh, ax=ax, pad=0.02, fraction=0.06, extend="max")
        cb.set_label(r"$\xi_c$ (layers)", labelpad=4)
        cb.ax.tick_params(labelsize=7.5)
    if line is not None:
        ax.legend(loc="upper left", handlelength=1.6, borderaxespad=0.4, labelcolor="black",
                  frameon=True, framealpha=0.85, edgecolor="none")
    return {"mesh": mesh, "line": line, "colorbar": cb, "labels": labels, "slices": sl}


def depth_slices(act, bias_vars: Sequence[float], weight_var_range: Sequence[float], points: int = 1200):
    """ξ_q, ξ_c (and the critical σ_w²) against σ_w² at a few σ_b² (a 1-D phase diagram per row).

    Returns
    -------
    xarray.Dataset
        From :func:`meanfield.phase_diagram` on a fine σ_w² grid (geometrically denser
        toward each row's critical point, where ξ_c diverges), with a ``critical_weight_var``
        variable over ``bias_var``.
    """
    import xarray as xr

    from ..core import critical_weight_var
    from ..phase import phase_diagram

    w0, w1 = float(weight_var_range[0]), float(weight_var_range[1])
    ws = [np.linspace(w0, w1, points)]
    crit = []
    for bv in bias_vars:
        cp = critical_weight_var(act, float(bv))
        wc = cp.weight_var
        crit.append(np.nan if wc is None else wc)
        if wc is not None and w0 < wc < w1:
            d = np.geomspace(1e-7, max(wc - w0, w1 - wc), points // 4)
            ws.append(np.concatenate([wc - d, wc + d]))
    w = np.unique(np.concatenate(ws))
    w = w[(w >= w0) & (w <= w1) & (w > 0)]
    ds = phase_diagram(act, w, np.unique(np.asarray(bias_vars, dtype=float)))
    ds["critical_weight_var"] = xr.DataArray(
        np.array([crit[list(bias_vars).index(bv)] for bv in ds.bias_var.values]), dims="bias_var")
    return ds


def plot_depth_scales(sl, ax=None, *, depth_factor: float = 6.0, slice_colors: Sequence[str] = SLICE_COLORS,
                      y_range: Sequence[float] = (0.1, XI_MAX), legend: bool = True) -> dict[str, Any]:
    """ξ_c (solid), ξ_q (dashed) and the trainable depth 6ξ_c (dotted) against σ_w² per σ_b² row.

    Networks train while their depth L ≲ 6ξ_c (Schoenholz et al. 2017), so the dotted
    curve is the deepest trainable network at each σ_w²; all three diverge or peak at
    the row's critical σ_w² (thin vertical line).

    Parameters
    ----------
    sl : xarray.Dataset
        From :func:`depth_slices` (or any :func:`meanfield.phase_diagram` output).
    ax : matplotlib.axes.Axes, optional
    depth_factor : float
        The trainable depth in units of ξ_c (6 in Schoenholz et al. 2017).
    y_range : (float, float)
        Limits of the (log) depth axis.
    legend : bool

    Returns
    -------
    dict
        ``xi_c``, ``xi_q``, ``trainable`` and ``critical`` (lists of artists), ``legend`` (line
        styles) and ``row_legend`` (σ_b² rows).
    """
    from matplotlib.lines import Line2D

    ax = _ax(ax)
    w = sl["weight_var"].values
    out: dict[str, Any] = {"xi_c": [], "xi_q": [], "trainable": [], "critical": []}
    for k, bv in enumerate(sl["bias_var"].values):
        col = slice_colors[k % len(slice_colors)]
        row = sl.sel(bias_var=bv)
        xc = row["xi_c"].values.astype(float)
        xq = row["xi_q"].values.astype(float)
        xc_plot = np.where(np.isfinite(xc), xc, np.nan)
        (lt,) = ax.plot(w, depth_factor * xc_plot, color=col, lw=1.0, ls=(0, (1, 1.5)), zorder=2)
        (lc,) = ax.plot(w, xc_plot, color=col, lw=1.4, zorder=3)
        (lq,) = ax.plot(w, np.where(np.isfinite(xq), xq, np.nan), color=col, lw=1.1, ls=(0, (4, 2)), zorder=3)
        out["xi_c"].append(lc)
        out["xi_q"].append(lq)
        out["trainable"].append(lt)
        wc = float(sl["critical_weight_var"].sel(bias_var=bv)) if "critical_weight_var" in sl else np.nan
        if np.isfinite(wc) and w[0] < wc < w[-1]:
            out["critical"].append(ax.axvline(wc, color=col, lw=0.6, alpha=0.6, zorder=0))
    ax.set_yscale("log")
    ax.set_xlim(w[0], w[-1])
    ax.set_ylim(*y_range)
    ax.set_xlabel(r"weight variance $\sigma_w^2$")
    ax.set_ylabel(r"depth scale (layers)")
    if legend:
        style = [Line2D([], [], color="0.2", lw=1.4, label=r"$\xi_c$"),
                 Line2D([], [], color="0.2", lw=1.1, ls=(0, (4, 2)), label=r"$\xi_q$"),
                 Line2D([], [], color="0.2", lw=1.0, ls=(0, (1, 1.5)),
                        label=rf"${depth_factor:g}\,\xi_c$ (trainable depth)")]
        rows = [Line2D([], [], color=slice_colors[k % len(slice_colors)], lw=1.4, label=rf"$\sigma_b^2 = {bv:g}$")
                for k, bv in enumerate(sl["bias_var"].values)]
        out["legend"] = ax.legend(handles=style, loc="lower center", ncol=3, handlelength=1.8, columnspacing=1.0,
                                  handletextpad=0.5, borderaxespad=0.3, fontsize=7)
        ax.add_artist(out["legend"])
        out["row_legend"] = ax.legend(handles=rows, loc="upper right", handlelength=1.4, borderaxespad=0.3,
                                      fontsize=7.5)
    return out


def phase_figure(ds, *, slices: Sequence[float] = (0.01, 0.05), critical: dict | None = None,
                 slice_data=None, figsize=(6.75, 2.9)):
    """The two-panel figure of ``meanfield phase``: (a) ξ_c map with the critical line, (b) depth scales.

    Returns
    -------
    (matplotlib.figure.Figure, dict)
        The figure and ``{"phase": ..., "depth": ...}`` artists.
    """
    import matplotlib.pyplot as plt

    from ..phase import critical_curve

    act = ds.attrs.get("activation", "tanh")
    w = ds["weight_var"].values
    b = ds["bias_var"].values
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=figsize, layout="constrained",
                                   gridspec_kw={"width_ratios": [1.22, 1.0]})
    fig.get_layout_engine().set(w_pad=0.04, wspace=0.06)
    if critical is None and w.size > 1 and b.size > 1:
        critical = critical_curve(act, (float(w[0]), float(w[-1])), (float(b[0]), float(b[-1])))
    a0 = plot_phase_diagram(ds, ax0, critical=critical, slices=slices)
    a1 = None
    if len(slices):
        if slice_data is None:
            slice_data = depth_slices(act, slices, (float(w[0]), float(w[-1])))
        a1 = plot_depth_scales(slice_data, ax1)
    else:
        ax1.set_visible(False)
    ax0.set_title(rf"(a) phase diagram, $\phi$ = {act}", loc="left")
    ax1.set_title(r"(b) depth scales", loc="left")
    if a1 is not None:
        ax1.set_xticks([t for t in ax0.get_xticks() if w[0] <= t <= w[-1]])
        ax1.set_xlim(ax0.get_xlim())
    return fig, {"phase": a0, "depth": a1}
