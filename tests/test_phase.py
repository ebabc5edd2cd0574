"""Tests of meanfield.phase (the grid engine, the critical line, files) and meanfield.plotting.phase.

References are independent of the code under test: the exact point solver
:func:`meanfield.point` (adaptive quadrature + bracketed Newton), the closed forms
of erf (evaluated in mpmath at 40 digits), the root of the critical line from
:func:`meanfield.critical_weight_var`, and the check value of THEORY.md §2
(tanh, σ_b² = 0.05: critical σ_w² ≈ 1.76096).
"""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest

import meanfield
from meanfield import phase as ph
from meanfield._validation import InvalidArgumentError

KEYS = ("q_star", "c_star", "chi_1", "chi_q", "chi_c", "xi_q", "xi_c")


@pytest.fixture(autouse=True, scope="module")
def _isolated_cache(tmp_path_factory):
    """Tables are cached under a temporary directory (never the user's cache)."""
    mp_ = pytest.MonkeyPatch()
    mp_.setenv("MEANFIELD_CACHE_DIR", str(tmp_path_factory.mktemp("tables")))
    yield
    mp_.undo()


@pytest.fixture(scope="module")
def tanh_grid():
    W = np.linspace(0.1, 16.0, 41)
    B = np.linspace(0.0, 4.0, 41)
    return ph.phase_diagram("tanh", W, B)


def _value(p, k):
    v = getattr(p, k)
    return math.nan if v is None else v


def _assert_matches_point(ds, i, j, act, rtol=1e-12):
    w = float(ds.weight_var[i])
    b = float(ds.bias_var[j])
    p = meanfield.point(act, w, b)
    g = ds.isel(weight_var=i, bias_var=j)
    assert str(g.phase.item()) == p.phase, (w, b)
    assert bool(g.converged.item()) == p.converged, (w, b)
    for k in KEYS:
        ref = _value(p, k)
        got = float(g[k].item())
        assert math.isnan(ref) == math.isnan(got), (k, w, b, ref, got)
        assert math.isinf(ref) == math.isinf(got), (k, w, b, ref, got)
        if not math.isfinite(ref):
            continue
        # conditioning: near χ = 1 an error δχ becomes δχ/|1-χ| in ξ (THEORY.md §2)
        if k == "xi_c" and abs(1 - p.chi_c) < 1e-3:
            continue
        if k == "xi_q" and abs(1 - p.chi_q) < 1e-3:
            continue
        if k in ("c_star", "chi_c", "xi_c") and abs(1 - p.chi_1) < 1e-3:
            continue
        if k == "c_star":
            assert abs(got - ref) <= rtol, (k, w, b, ref, got)
        else:
            assert abs(got - ref) <= rtol * abs(ref), (k, w, b, ref, got, abs(got - ref) / abs(ref))


# ----------------------------------------------------------------------------- the engine vs the point solver
def test_dataset_layout(tanh_grid):
    ds = tanh_grid
    assert ds["q_star"].dims == ("weight_var", "bias_var")
    assert set(ph.DATA_VARS) <= set(ds.data_vars)
    for k in KEYS:
        assert ds[k].dtype == np.float64
    assert ds.converged.dtype == bool
    assert set(np.unique(ds.phase.values)) <= set(ph.PHASE_CODES)
    for key in ("software", "activation", "method", "critical_tol", "newton_tol"):
        assert key in ds.attrs
    assert ds.attrs["software"] == f"meanfield {meanfield.__version__}"
    assert ds.attrs["method"] == "chebyshev-tables"
    assert meanfield.phase_diagram is ph.phase_diagram


def test_random_points_match_point_solver(tanh_grid):
    rng = np.random.default_rng(7)
    ds = tanh_grid
    n = 0
    for _ in range(36):
        i = int(rng.integers(ds.sizes["weight_var"]))
        j = int(rng.integers(ds.sizes["bias_var"]))
        _assert_matches_point(ds, i, j, "tanh")
        n += 1
    # the bias_var = 0 edge (q* = 0 for σ_w² < 1, c* undefined) and the largest variances
    for i, j in ((0, 0), (3, 0), (20, 0), (40, 0), (40, 40), (0, 40)):
        _assert_matches_point(ds, i, j, "tanh")


def test_every_point_is_flagged_like_point_solver_on_a_small_grid():
    # includes q* = 0 (degenerate), σ_w² = 1 exactly at σ_b² = 0 and near-critical points
    W = np.array([0.3, 1.0, 1.0001, 1.7609, 1.761, 9.0])
    B = np.array([0.0, 1e-8, 0.05])
    ds = ph.phase_diagram("tanh", W, B)
    for i in range(W.size):
        for j in range(B.size):
            _assert_matches_point(ds, i, j, "tanh", rtol=1e-11)


@pytest.mark.parametrize("act", ["erf", "relu", "leaky_relu:0.2"])
def test_closed_form_activations_use_the_exact_kernel(act):
    W = np.array([0.5, 1.0, 1.9, 2.0, 2.5, 4.0])
    B = np.array([0.0, 0.05, 1.0])
    ds = ph.phase_diagram(act, W, B)
    assert ds.attrs["method"] == "exact point kernel"
    for i in range(W.size):
        for j in range(B.size):
            _assert_matches_point(ds, i, j, act, rtol=0.0)  # the same kernel: identical numbers


def test_relu_unbounded_region():
    ds = ph.phase_diagram("relu", [1.0, 2.0, 3.0], [0.0, 0.1])
    ph_ = ds.phase.values
    assert ph_[0, 1] == "ordered"
    assert ph_[2, 0] == "unbounded" and ph_[2, 1] == "unbounded" and ph_[1, 1] == "unbounded"
    assert np.isnan(ds.q_star.values[2, 1]) and bool(ds.converged.values[2, 1])
    p = meanfield.point("relu", 3.0, 0.1)
    assert p.phase == "unbounded" and p.q_star is None


def _erf_cstar_mp(w, b):
    """c* of φ = erf from the closed forms, at 40 digits (q* by Newton, c* by bisection)."""
    mp.mp.dps = 40
    w, b = mp.mpf(w), mp.mpf(b)
    V = lambda q: 2 / mp.pi * mp.asin(2 * q / (1 + 2 * q))  # noqa: E731
    q = mp.re(mp.findroot(lambda q: w * V(q) + b - q, mp.mpf(1)))
    F = lambda c: 2 / mp.pi * mp.asin(2 * q * c / (1 + 2 * q))  # noqa: E731
    D = 4 / mp.pi / mp.sqrt(1 + 4 * q)
    chi1 = w * D
    if chi1 <= 1:
        return float(q), 1.0, float(chi1)
    h = lambda c: (w * F(c) + b) / q - c  # noqa: E731  (h(0) > 0 > h(1-) in the chaotic phase)
    lo, hi = mp.mpf(0), mp.mpf(1) - mp.mpf(10) ** -30
    if h(lo) <= 0:
        c = lo
    else:
        for _ in range(130):  # bisection to 2^-130
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if h(mid) > 0 else (lo, mid)
        c = (lo + hi) / 2
    chic = w * 4 / mp.pi / mp.sqrt((1 + 2 * q) ** 2 - 4 * q * q * c * c)
    return float(q), float(c), float(chic)


def test_tables_reach_closed_form_accuracy_near_criticality():
    """The expression erf(x) goes through the tables; closed-form erf at 40 digits is the oracle.

    Near the critical line c* is ill-conditioned; the tables' divided difference
    G = (V - F)/(q(1 - c)) keeps it accurate there anyway.
    """
    wc = meanfield.critical_weight_var("erf", 0.3).weight_var
    W = np.array([wc * (1 + 1e-6), wc * (1 + 1e-4), wc * 1.01, 3.0, 12.0])
    ds = ph.phase_diagram("erf(x)", W, [0.3])
    assert ds.attrs["method"] == "chebyshev-tables" and ds.attrs["points_from_exact_kernel"] == 0
    for i, w in enumerate(W):
        q, c, chic = _erf_cstar_mp(w, 0.3)
        g = ds.isel(weight_var=i, bias_var=0)
        assert float(g.q_star) == pytest.approx(q, rel=1e-13)
        assert abs(float(g.c_star) - c) <= 1e-12
        assert float(g.chi_c) == pytest.approx(chic, rel=1e-12)


def test_erf_expression_grid_equals_closed_form_grid():
    W = np.linspace(0.2, 16, 30)
    B = np.linspace(0, 4, 25)
    a = ph.phase_diagram("erf(x)", W, B)
    b = ph.phase_diagram("erf", W, B)
    assert (a.phase.values == b.phase.values).all()
    assert (a.converged.values == b.converged.values).all()
    well = np.abs(1 - b.chi_1.values) > 1e-3
    for k in ("q_star", "chi_1", "chi_q", "chi_c"):
        x, y = a[k].values, b[k].values
        assert np.array_equal(np.isnan(x), np.isnan(y))
        fin = np.isfinite(y) & (y != 0) & well
        assert np.max(np.abs(x[fin] - y[fin]) / np.abs(y[fin])) < 1e-12, k
    fin = np.isfinite(b.c_star.values) & well
    assert np.max(np.abs(a.c_star.values[fin] - b.c_star.values[fin])) < 1e-12


def test_pair_tables_against_mpmath():
    """2-D table values G and E[φ'φ'] of erf(x) against the closed forms at 40 digits."""
    from meanfield._jit import grid as g

    t = ph._tables(meanfield.get_activation("erf(x)"))
    rng = np.random.default_rng(3)
    mp.mp.dps = 40
    poly = np.empty(64)
    for _ in range(40):
        s = math.exp(rng.uniform(math.log(1e-2), math.log(4.5)))
        k, xs = g.s_panel(s, ph._KLO2)
        t.build_2d(k)
        assert t.ok2[k] == 1
        theta = rng.uniform(0, math.pi / 2) if rng.random() < 0.5 else 10 ** rng.uniform(-6, 0)
        ed = t.edges[k, : t.nedge[k] + 1]
        j = min(max(int(np.searchsorted(ed, theta)) - 1, 0), t.nedge[k] - 1)
        x = (theta - 0.5 * (ed[j] + ed[j + 1])) / (0.5 * (ed[j + 1] - ed[j]))
        ns, nt = t.n2[k, j, 0], t.n2[k, j, 1]
        g._collapse(t.t2g[k, j], ns, nt, xs, poly)
        G = g._cheb_n(poly, nt, x)
        ns, nt = t.n2[k, j, 2], t.n2[k, j, 3]
        g._collapse(t.t2p[k, j], ns, nt, xs, poly)
        P = g._cheb_n(poly, nt, x)
        Q, C = mp.mpf(s) ** 2, mp.cos(mp.mpf(theta))
        V = 2 / mp.pi * mp.asin(2 * Q / (1 + 2 * Q))
        F = 2 / mp.pi * mp.asin(2 * Q * C / (1 + 2 * Q))
        Gr = (V - F) / (Q * (1 - C))
        Pr = 4 / mp.pi / mp.sqrt((1 + 2 * Q) ** 2 - 4 * Q * Q * C * C)
        assert abs(float((G - Gr) / Gr)) < 2e-14
        assert abs(float((P - Pr) / Pr)) < 2e-14


def test_one_dimensional_tables_against_quadrature():
    from meanfield._jit import grid as g

    t = ph._tables(meanfield.get_activation("tanh"))
    rng = np.random.default_rng(11)
    q = 10 ** rng.uniform(-20, 3, 200)
    ref = meanfield.gaussian_expectations("tanh", q)
    for f, key in enumerate(("V", "D", "dV")):
        got = np.array([g.t1_eval(t.t1, t.n1, ph._ELO1, t.valid1, float(v), f) for v in q])
        r = ref[key]
        assert np.max(np.abs(got - r) / np.abs(r)) < 1e-13, key


# ----------------------------------------------------------------------------- structure of the diagram
def test_critical_crossing_of_each_row_matches_critical_weight_var():
    W = np.linspace(0.5, 4.0, 140)  # (avoids σ_w² = 1 exactly, where χ₁ = 1 at σ_b² = 0)
    B = np.linspace(0.0, 0.5, 11)
    ds = ph.phase_diagram("tanh", W, B)
    h = W[1] - W[0]
    for j, b in enumerate(B):
        chi = ds.chi_1.values[:, j]
        s = np.nonzero(np.diff(np.sign(chi - 1.0)))[0]
        assert s.size == 1
        i = s[0]
        # linear interpolation of χ₁ - 1 between the two grid points that bracket the line
        w_lin = W[i] + h * (1 - chi[i]) / (chi[i + 1] - chi[i])
        wc = meanfield.critical_weight_var("tanh", float(b)).weight_var
        assert W[i] <= wc <= W[i + 1]
        # interpolation error <= h^2 max|χ₁''| / (8 min|χ₁'|) on the cell; generous bound h^2.
        # At σ_b² = 0, χ₁(σ_w²) has a kink at the critical point (q* = 0 below it): first order.
        assert abs(w_lin - wc) <= (h * h if b > 0 else h), (b, w_lin, wc)


def test_phase_boundary_and_monotone_regions(tanh_grid):
    ds = tanh_grid
    chi = ds.chi_1.values
    ph_ = ds.phase.values
    assert ((ph_ == "ordered") == (chi < 1 - 1e-10)).all()
    assert ((ph_ == "chaotic") == (chi > 1 + 1e-10)).all()
    degenerate = ds.q_star.values == 0.0  # σ_b² = 0, σ_w² < 1: c* undefined (NaN), as meanfield.point
    assert np.all(np.isnan(ds.c_star.values[degenerate]))
    assert np.all(ds.c_star.values[(ph_ == "ordered") & ~degenerate] == 1.0)
    assert np.all(ds.c_star.values[ph_ == "chaotic"] < 1.0)
    assert np.all(np.isinf(ds.xi_c.values[ph_ == "critical"]))


def test_parallel_equals_serial():
    W = np.linspace(0.3, 6.0, 37)
    B = np.linspace(0.0, 1.0, 29)
    a = ph.phase_diagram("tanh", W, B, threads=1)
    b = ph.phase_diagram("tanh", W, B, threads=2)
    for k in KEYS:
        assert np.array_equal(a[k].values, b[k].values, equal_nan=True), k
    assert (a.phase.values == b.phase.values).all()
    assert (a.converged.values == b.converged.values).all()


def test_kinked_activation_falls_back_to_the_exact_kernel():
    ds = ph.phase_diagram("hard_tanh", [0.8, 2.5], [0.05])
    assert ds.attrs["points_from_exact_kernel"] >= 1  # the chaotic point
    for i in range(2):
        _assert_matches_point(ds, i, 0, "hard_tanh")


def test_progress_bar_on_stderr(capsys):
    ph.phase_diagram("tanh", np.linspace(0.5, 4, 20), np.linspace(0, 0.5, 20), progress=True)
    err = capsys.readouterr().err
    assert "%" in err and "400/400" in err


def test_disk_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("MEANFIELD_CACHE_DIR", str(tmp_path))
    a = meanfield.get_activation("x*tanh(softplus(x))")
    t = ph._Tables(a)
    t.build_1d()
    t.build_2d(5)
    t.save()
    assert list(tmp_path.glob("tables-*.npz"))
    u = ph._Tables(a)
    assert u.load()
    assert np.array_equal(u.t1, t.t1) and np.array_equal(u.t2g, t.t2g) and u.ok2[5] == 1


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize("w, b, arg", [
    ([0.0, 1.0], [0.0], "weight_var"),
    ([-1.0, 1.0], [0.0], "weight_var"),
    ([1.0, 0.5], [0.0], "weight_var"),
    ([1.0, 2.0], [-0.1, 0.0], "bias_var"),
    ([1.0, 2.0], [0.1, 0.1], "bias_var"),
    ([1.0, np.nan], [0.0], "weight_var"),
    ([[1.0]], [0.0], "weight_var"),
    ([], [0.0], "weight_var"),
])
def test_bad_coordinates(w, b, arg):
    with pytest.raises(InvalidArgumentError) as e:
        ph.phase_diagram("tanh", w, b)
    assert e.value.argument == arg


def test_bad_activation_and_threads():
    with pytest.raises(InvalidArgumentError):
        ph.phase_diagram("nonsense", [1.0], [0.0])
    with pytest.raises(InvalidArgumentError):
        ph.phase_diagram("tanh", [1.0], [0.0], threads=0)


# ----------------------------------------------------------------------------- critical line
def test_critical_line_values():
    line = ph.critical_line("tanh", (0.0, 0.1), points=3)
    assert line.weight_var.values[0] == pytest.approx(1.0, abs=1e-14)
    assert line.weight_var.values[1] == pytest.approx(1.76096, abs=1e-5)  # THEORY.md §2 check value
    for b, w in zip(line.bias_var.values, line.weight_var.values):
        p = meanfield.point("tanh", float(w), float(b))
        assert p.chi_1 == pytest.approx(1.0, abs=1e-11)
    relu = ph.critical_line("relu", (0.0, 1.0), points=4)
    assert np.all(relu.weight_var.values == 2.0) and np.all(np.isnan(relu.q_star.values))


def test_critical_curve_vertices_are_on_the_line():
    cc = ph.critical_curve("tanh", (0.5, 4.0), (0.0, 0.5))
    w, b = cc["weight_var"], cc["bias_var"]
    assert w.size > 50 and np.all(np.isfinite(w))
    assert w[0] == 1.0 and b[0] == 0.0
    for k in range(0, w.size, 37):
        if b[k] > 0:
            p = meanfield.point("tanh", float(w[k]), float(b[k]))
            assert abs(p.chi_1 - 1.0) < 1e-9
    assert np.all(np.diff(b) >= 0)  # tanh: σ_b²(q*) increases
    relu = ph.critical_curve("relu", (0.5, 4.0), (0.0, 0.5))
    assert np.all(relu["weight_var"] == 2.0)


def test_critical_line_bad_arguments():
    with pytest.raises(InvalidArgumentError):
        ph.critical_line("tanh", (1.0, 0.5))
    with pytest.raises(InvalidArgumentError):
        ph.critical_line("tanh", (-1.0, 0.5))
    with pytest.raises(InvalidArgumentError):
        ph.critical_line("tanh", (0.0, 0.5), points=1)


# ----------------------------------------------------------------------------- files
def test_netcdf_and_csv_round_trip(tmp_path):
    ds = ph.phase_diagram("tanh", np.linspace(0.5, 4, 9), np.linspace(0, 0.5, 7))
    nc = ph.to_netcdf(ds, tmp_path / "a.nc")
    csv = ph.to_csv(ds, tmp_path / "a.csv")
    assert not list(tmp_path.glob(".*part"))
    for back in (ph.open_phase_diagram(nc), ph.open_phase_diagram(csv)):
        assert list(back.weight_var.values) == list(ds.weight_var.values)
        assert list(back.bias_var.values) == list(ds.bias_var.values)
        for k in ph.DATA_VARS:
            x, y = ds[k].values, back[k].values
            if x.dtype.kind == "f":
                assert np.array_equal(x, y, equal_nan=True), k  # bit for bit
            else:
                assert (x == y).all(), k
    back = ph.open_phase_diagram(nc)
    assert back.attrs["software"] == ds.attrs["software"] and back.attrs["activation"] == "tanh"
    header = csv.read_text().splitlines()[0]
    assert header == "weight_var,bias_var,q_star,c_star,chi_1,chi_q,chi_c,xi_q,xi_c,phase,converged"
    assert len(csv.read_text().splitlines()) == 1 + 9 * 7


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    class Boom(Exception):
        pass

    def writer(tmp):
        tmp.write_text("partial")
        raise Boom

    with pytest.raises(Boom):
        ph._atomic_write(tmp_path / "x.csv", writer)
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- plots
def test_plot_functions_return_artists(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from meanfield.plotting.phase import depth_slices, phase_figure, plot_depth_scales, plot_phase_diagram
    from meanfield.plotting.style import paper_style, provenance, save_figure

    ds = ph.phase_diagram("tanh", np.linspace(0.5, 4, 30), np.linspace(0, 0.5, 25))
    art = plot_phase_diagram(ds)
    assert art["mesh"] is not None and art["line"] is not None and art["colorbar"] is not None
    assert {t.get_text().split("\n")[0] for t in art["labels"]} == {"ordered", "chaotic"}
    plt.close("all")
    sl = depth_slices("tanh", [0.05], (0.5, 4.0), points=200)
    assert float(sl.critical_weight_var.item()) == pytest.approx(1.76096, abs=1e-5)
    art = plot_depth_scales(sl)
    assert len(art["xi_c"]) == 1 and len(art["trainable"]) == 1
    y = art["trainable"][0].get_ydata()
    assert np.allclose(y, 6 * sl.xi_c.values[:, 0], equal_nan=True)
    plt.close("all")
    with paper_style():
        fig, _ = phase_figure(ds, slices=(0.01, 0.05))
        paths = save_figure(fig, tmp_path / "fig", ("png", "pdf"), provenance(act="tanh"))
    plt.close("all")
    pdf = (tmp_path / "fig.pdf").read_bytes()
    assert b"FontFile2" in pdf and b"/Subtype /Type3" not in pdf  # TrueType (Type 42), no Type 3
    from PIL import Image

    assert "meanfield" in Image.open(paths[0]).info.get("Description", "")


# ----------------------------------------------------------------------------- the notebook
@pytest.mark.slow
def test_notebook_runs_on_a_small_grid(tmp_path, monkeypatch):
    """notebooks/phase_diagram.ipynb executes top to bottom (small grid), so that it never rots."""
    from pathlib import Path

    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    path = Path(__file__).resolve().parents[1] / "notebooks" / "phase_diagram.ipynb"
    nb = nbformat.read(path, as_version=4)
    monkeypatch.setenv("MEANFIELD_NB_RESOLUTION", "24")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "grid == point solver" in outputs
