"""Figures of the CNN mean-field theory: per-mode depth scales and covariance propagation.

Every function takes ``ax`` (or ``axes``) = None, draws into a new figure when
none is given, and returns its artists. Wrap calls in
:func:`meanfield.plotting.paper_style` and save with
:func:`meanfield.plotting.save_figure`.

References
----------
Xiao et al., "Dynamical Isometry and a Mean Field Theory of CNNs", ICML 2018,
arXiv:1806.05393 (Figure 2: depth scales of Fourier modes for uniform vs delta
variance profiles).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

__all__ = ["plot_mode_depth_scales", "plot_mode_heatmap", "plot_propagation"]

_PROFILE_COLOURS = {"uniform": "C0", "delta": "C3", "binomial": "C2"}


def _new_ax(ax):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    return ax


def _label(kind: str) -> str:
    return {"uniform": "uniform", "delta": "delta (Delta-Orthogonal)",
            "binomial": "binomial (block-orthogonal)"}.get(kind, kind)


def plot_mode_depth_scales(results: Any, ax=None, which: str = "c", colours: dict | None = None) -> list:
    """ξ_{c,m} (or ξ_{q,m}) against the frequency ``m/n`` for one or several profiles.

    Parameters
    ----------
    results : ModeDepthScales or sequence of them
        1-D results of :func:`meanfield.cnn.mode_depth_scales`, e.g. for the
        uniform, delta and binomial profiles at the same (σ_w², σ_b²).
    ax : matplotlib.axes.Axes, optional
        Axes to draw into (a new figure when None).
    which : {"c", "q"}
        Correlation (default) or variance depth scales.
    colours : dict, optional
        Colour per profile kind.

    Returns
    -------
    list of matplotlib artists
        One line per profile plus the markers of infinite (``▲``, drawn at the top
        edge: the mode does not decay, ``|χ λ_m| >= 1``) and zero (``▼``, bottom edge:
        ``λ_m = 0``) depth scales. |λ_m| = |λ_{n−m}|, so modes are folded onto
        ``0 <= m/n <= 1/2``.

    Examples
    --------
    >>> from meanfield.cnn import mode_depth_scales                     # doctest: +SKIP
    >>> rs = [mode_depth_scales("tanh", 1.7, 0.05, variance=v) for v in ("uniform", "delta")]  # doctest: +SKIP
    >>> plot_mode_depth_scales(rs)                                      # doctest: +SKIP
    """
    from matplotlib.transforms import blended_transform_factory

    from .._validation import InvalidArgumentError

    if which not in ("c", "q"):
        raise InvalidArgumentError("which", f"must be 'c' or 'q', got {which!r}")
    ax = _new_ax(ax)
    rs = [results] if not isinstance(results, (list, tuple)) else list(results)
    colours = {**_PROFILE_COLOURS, **(colours or {})}
    artists = []
    tr = blended_transform_factory(ax.transData, ax.transAxes)
    any_inf = any_zero = False
    finite_vals = []
    for i, r in enumerate(rs):
        if r.dims != 1:
            raise InvalidArgumentError("results", "plot_mode_depth_scales takes 1-D results; use plot_mode_heatmap in 2-D")
        n = r.spatial
        m = np.arange(n // 2 + 1)
        xi = (r.xi_c_modes if which == "c" else r.xi_q_modes)[m]
        f = m / n
        col = colours.get(r.variance, f"C{(i + 4) % 10}")
        fin = np.isfinite(xi) & (xi > 0)
        (ln,) = ax.plot(f[fin], xi[fin], "o-", color=col, ms=3.5, lw=1.2, label=_label(r.variance))
        artists.append(ln)
        finite_vals.extend(xi[fin].tolist())
        inf = np.isinf(xi)
        if inf.any():
            any_inf = True
            artists.append(ax.plot(f[inf], np.full(inf.sum(), 0.97 - 0.035 * i), "^", color=col, ms=5, transform=tr,
                                   clip_on=False)[0])
        zero = xi == 0
        if zero.any():
            any_zero = True
            artists.append(ax.plot(f[zero], np.full(zero.sum(), 0.03 + 0.035 * i), "v", color=col, ms=5, transform=tr,
                                   clip_on=False)[0])
    ax.set_yscale("log")
    if finite_vals:
        lo, hi = min(finite_vals), max(finite_vals)
        ax.set_ylim(lo / 3.0, hi * 3.0)
    ax.set_xlim(-0.02, 0.52)
    sym = r"\xi_{c,m}" if which == "c" else r"\xi_{q,m}"
    ax.set_xlabel(r"frequency $m/n$")
    ax.set_ylabel(rf"depth scale ${sym}$")
    notes = []
    if any_inf:
        notes.append(r"$\blacktriangle$: $\infty$ (mode does not decay)")
    if any_zero:
        notes.append(r"$\blacktriangledown$: 0 ($\lambda_m = 0$)")
    r0 = rs[0]
    title = rf"{r0.act}, $\sigma_w^2={r0.weight_var:.4g}$, $\sigma_b^2={r0.bias_var:.4g}$, $k={r0.kernel[0]}$, $n={r0.spatial}$"
    ax.set_title(title, fontsize="medium")
    leg = ax.legend(title="; ".join(notes) if notes else None, fontsize="small", title_fontsize="x-small")
    artists.append(leg)
    return artists


def plot_mode_heatmap(result: Any, ax=None, which: str = "c") -> tuple:
    """Heat map of ξ_{c,(m1,m2)} (or ξ_q) over the 2-D modes, zero frequency in the centre.

    Parameters
    ----------
    result : ModeDepthScales
        A 2-D result of :func:`meanfield.cnn.mode_depth_scales`.
    ax : matplotlib.axes.Axes, optional
        Axes (new figure when None).
    which : {"c", "q"}
        Which depth scale.

    Returns
    -------
    (AxesImage, Colorbar)
        Log colour scale; infinite depth scales take the colour map's "over" colour
        (the colour bar's upper arrow), zeros its "under" colour.

    Examples
    --------
    >>> r = mode_depth_scales("tanh", 1.7, 0.05, dims=2, spatial=16)   # doctest: +SKIP
    >>> im, cb = plot_mode_heatmap(r)                                  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    from .._validation import InvalidArgumentError

    if which not in ("c", "q"):
        raise InvalidArgumentError("which", f"must be 'c' or 'q', got {which!r}")
    if result.dims != 2:
        raise InvalidArgumentError("result", "plot_mode_heatmap needs a 2-D result")
    ax = _new_ax(ax)
    n = result.spatial
    grid = np.fft.fftshift(result.grid("xi_" + which))
    fin = np.isfinite(grid) & (grid > 0)
    if fin.any():
        vmin, vmax = float(grid[fin].min()), float(grid[fin].max())
    else:
        vmin, vmax = 1.0, 10.0
    if vmax <= vmin:
        vmin, vmax = vmin / 2.0, vmax * 2.0
    cmap = plt.get_cmap("viridis").with_extremes(over="white", under="black", bad="0.5")
    show = np.where(np.isinf(grid), vmax * 10.0, np.where(grid == 0, vmin / 10.0, grid))
    ks = np.fft.fftshift(np.fft.fftfreq(n) * n)
    half = 0.5
    extent = (ks[0] - half, ks[-1] + half, ks[-1] + half, ks[0] - half)
    im = ax.imshow(show, cmap=cmap, norm=LogNorm(vmin=vmin, vmax=vmax), extent=extent, interpolation="nearest")
    extend = "neither"
    if np.isinf(grid).any() and (grid == 0).any():
        extend = "both"
    elif np.isinf(grid).any():
        extend = "max"
    elif (grid == 0).any():
        extend = "min"
    sym = r"\xi_{c,m}" if which == "c" else r"\xi_{q,m}"
    cb = ax.figure.colorbar(im, ax=ax, extend=extend)
    cb.set_label(rf"${sym}$" + (r" (white: $\infty$)" if extend in ("max", "both") else ""))
    ax.set_xlabel(r"mode $m_2$")
    ax.set_ylabel(r"mode $m_1$")
    ax.set_title(rf"{result.act}, $\sigma_w^2={result.weight_var:.4g}$, $\sigma_b^2={result.bias_var:.4g}$: "
                 rf"{result.variance}, $k={result.kernel[0]}\times{result.kernel[1]}$, $n={n}$", fontsize="medium")
    return im, cb


def plot_propagation(ds: Any, axes: Sequence | None = None) -> dict:
    """q^l, c^l, the spatial correlation profile and the Fourier-mode amplitudes against depth.

    Parameters
    ----------
    ds : xarray.Dataset
        Output of :func:`meanfield.cnn.propagate`.
    axes : sequence of 4 Axes, optional
        Where to draw (a new 2×2 figure when None).

    Returns
    -------
    dict
        ``{"q": [Line2D...], "c": [Line2D...], "profile": AxesImage,
        "profile_colorbar": Colorbar, "modes": [Line2D...]}``.

    Examples
    --------
    >>> ds = propagate("tanh", 1.76, 0.05, spatial=16, depth=30)   # doctest: +SKIP
    >>> art = plot_propagation(ds)                                  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    if axes is None:
        fig, axs = plt.subplots(2, 2, figsize=(7.0, 5.2), constrained_layout=True)
        axes = axs.ravel()
    ax_q, ax_c, ax_p, ax_m = axes
    layer = ds["layer"].values
    P = ds.sizes["input"]
    dims = int(ds.attrs.get("dims", 1))
    n = int(ds.attrs.get("spatial", ds.sizes["dx"]))
    art: dict = {}
    # q^l
    art["q"] = [ax_q.plot(layer, ds["q"].values[:, a], "-", lw=1.3, label=rf"input {a + 1}" if P > 1 else None)[0]
                for a in range(P)]
    qs = float(ds.attrs.get("q_star", math.nan))
    if math.isfinite(qs):
        art["q"].append(ax_q.axhline(qs, color="0.5", ls="--", lw=0.8, label=r"$q^*$"))
    ax_q.set_xlabel(r"layer $l$")
    ax_q.set_ylabel(r"$q^l$")
    ax_q.legend(fontsize="small")
    # c^l
    art["c"] = [ax_c.plot(layer, ds["c"].values, "-", lw=1.3, color="C1")[0]]
    cs = float(ds.attrs.get("c_star", math.nan))
    if math.isfinite(cs):
        art["c"].append(ax_c.axhline(cs, color="0.5", ls="--", lw=0.8, label=r"$c^*$"))
        ax_c.legend(fontsize="small")
    ax_c.set_xlabel(r"layer $l$")
    ax_c.set_ylabel(r"$c^l$" + (" (between positions)" if P == 1 else " (between inputs)"))
    # spatial correlation profile: displacement along the first axis (dy = 0 in 2-D)
    prof = ds["spatial_corr"].values[:, 0, P - 1]
    if dims == 2:
        prof = prof[..., 0]
    prof = np.fft.fftshift(prof, axes=1)
    dd = np.fft.fftshift(np.fft.fftfreq(n) * n)
    im = ax_p.imshow(prof.T, aspect="auto", origin="lower", cmap="magma", interpolation="nearest",
                     extent=(layer[0] - 0.5, layer[-1] + 0.5, dd[0] - 0.5, dd[-1] + 0.5))
    art["profile"] = im
    cb = ax_p.figure.colorbar(im, ax=ax_p)
    cb.set_label(r"correlation $\rho^l(d)$" if P == 1 else r"cross-input correlation $\rho^l_{12}(d)$")
    art["profile_colorbar"] = cb
    ax_p.set_xlabel(r"layer $l$")
    ax_p.set_ylabel(r"displacement $d$" + (r" (along $x$)" if dims == 2 else ""))
    # Fourier-mode amplitudes of the off-diagonals (departure from translation invariance)
    amp = ds["corr_mode_amplitude"].values
    if dims == 2:
        amp = amp[:, :, 0]
    ms = range(1, n // 2 + 1)
    art["modes"] = []
    if np.nanmax(np.abs(amp[:, 1:]), initial=0.0) > 0:
        for k, m in enumerate(ms):
            y = amp[:, m]
            ok = np.isfinite(y) & (y > 0)
            if ok.any():
                art["modes"].append(ax_m.semilogy(layer[ok], y[ok], lw=1.1, color=plt.get_cmap("viridis")(k / max(1, len(ms) - 1)),
                                                  label=rf"$m={m}$")[0])
        if len(art["modes"]) <= 8:
            ax_m.legend(fontsize="x-small", ncol=2)
    else:
        ax_m.text(0.5, 0.5, "translation-invariant input:\nno modes $m \\neq 0$", ha="center", va="center",
                  transform=ax_m.transAxes, fontsize="small")
        ax_m.set_yticks([])
    ax_m.set_xlabel(r"layer $l$")
    ax_m.set_ylabel(r"mode amplitude $|\hat\Sigma^l_m|$" + (r" ($m_2=0$)" if dims == 2 else ""))
    from matplotlib.ticker import MaxNLocator

    for a in (ax_q, ax_c, ax_p, ax_m):
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    act = ds.attrs.get("act", "")
    ax_q.figure.suptitle(
        rf"{act}, $\sigma_w^2={float(ds.attrs.get('weight_var', math.nan)):.4g}$, "
        rf"$\sigma_b^2={float(ds.attrs.get('bias_var', math.nan)):.4g}$, {ds.attrs.get('variance', '')} profile",
        fontsize="medium")
    return art
