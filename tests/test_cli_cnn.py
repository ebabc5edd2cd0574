"""``meanfield depth-scales`` and ``meanfield propagate`` through the real entry point (in process)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import meanfield
from meanfield.cli import main


def run(argv, capsys):
    with pytest.raises(SystemExit) as ei:
        main(argv)
    out = capsys.readouterr()
    return ei.value.code, out.out, out.err


def test_depth_scales_json_schema_and_values(capsys):
    code, out, err = run(["depth-scales", "--act", "tanh", "--weight-var", "1.5", "--bias-var", "0.05",
                          "--kernel", "3", "--spatial", "8", "--json"], capsys)
    assert code == 0
    d = json.loads(out)
    assert set(d) >= {"act", "weight_var", "bias_var", "kernel", "dims", "spatial", "variance", "taps", "chi_q",
                      "chi_c", "xi_q", "xi_c", "modes"}
    assert d["variance"] == "uniform" and d["kernel"] == 3 and d["dims"] == 1 and d["spatial"] == 8
    assert [m["mode"] for m in d["modes"]] == [[m] for m in range(8)]
    expected = [1, .80474, .33333, .13807, .33333, .13807, .33333, .80474]
    np.testing.assert_allclose([m["abs_lambda"] for m in d["modes"]], expected, atol=5e-6)
    p = meanfield.point("tanh", 1.5, 0.05)
    assert d["modes"][0]["xi_c"] == pytest.approx(p.xi_c, rel=1e-15)
    assert d["modes"][1]["xi_c"] == pytest.approx(-1 / math.log(p.chi_c * 0.8047378541243649), rel=1e-9)
    assert err == ""            # both variances given: nothing to say


def test_depth_scales_defaults_critical_and_nulls(capsys):
    code, out, err = run(["depth-scales", "--variance", "delta", "--spatial", "4", "--json"], capsys)
    assert code == 0
    d = json.loads(out)
    assert d["bias_var"] == 0.05
    assert d["weight_var"] == pytest.approx(meanfield.critical_weight_var("tanh", 0.05).weight_var, rel=1e-15)
    assert d["xi_c"] is None and all(m["xi_c"] is None for m in d["modes"])
    assert "critical line" in err and "0.05" in err


def test_depth_scales_2d_json_has_all_pairs(capsys):
    code, out, _ = run(["depth-scales", "--weight-var", "1.5", "--bias-var", "0.05", "--dims", "2", "--spatial",
                        "4", "--variance", "binomial", "--json"], capsys)
    assert code == 0
    d = json.loads(out)
    assert d["dims"] == 2 and len(d["modes"]) == 16
    assert [m["mode"] for m in d["modes"]][:5] == [[0, 0], [0, 1], [0, 2], [0, 3], [1, 0]]
    assert d["taps"] == [[0.0625, 0.125, 0.0625], [0.125, 0.25, 0.125], [0.0625, 0.125, 0.0625]]
    lam = {tuple(m["mode"]): m["lambda_re"] for m in d["modes"]}
    # separable: λ_(m1,m2) = λ_m1 λ_m2 with λ_m = (1 + cos(2πm/4))/2
    for (m1, m2), val in lam.items():
        ref = (1 + math.cos(math.pi * m1 / 2)) / 2 * (1 + math.cos(math.pi * m2 / 2)) / 2
        assert val == pytest.approx(ref, abs=1e-15)


def test_depth_scales_table_sorted_by_frequency(capsys):
    code, out, _ = run(["depth-scales", "--weight-var", "1.5", "--bias-var", "0.05", "--spatial", "6",
                        "--taps", "1,2,1"], capsys)
    assert code == 0
    rows = [ln.split() for ln in out.splitlines() if ln.strip() and ln.split()[0].isdigit()]
    assert [int(r[0]) for r in rows] == [0, 1, 5, 2, 4, 3]
    freqs = [float(r[1]) for r in rows]
    assert freqs == sorted(freqs)
    assert rows[-1][-1] == "0"        # λ_3 = 0 for [1,2,1]/4 on n = 6 -> ξ = 0


def test_depth_scales_normalisation_note(capsys):
    code, out, err = run(["depth-scales", "--weight-var", "1.5", "--bias-var", "0.05", "--spatial", "4",
                          "--taps", "1,2,1", "--json"], capsys)
    assert code == 0
    assert json.loads(out)["taps"] == [0.25, 0.5, 0.25]
    assert "normalised" in err


def test_depth_scales_figures(tmp_path, capsys):
    code, _, err = run(["depth-scales", "--weight-var", "1.7", "--bias-var", "0.05", "--spatial", "16", "--out",
                        str(tmp_path), "--format", "png"], capsys)
    assert code == 0 and (tmp_path / "xi_modes.png").stat().st_size > 1000
    code, _, _ = run(["depth-scales", "--weight-var", "1.7", "--bias-var", "0.05", "--dims", "2", "--spatial", "8",
                      "--out", str(tmp_path), "--format", "png"], capsys)
    assert code == 0 and (tmp_path / "xi_modes_2d.png").stat().st_size > 1000


@pytest.mark.parametrize("argv,option", [
    (["depth-scales", "--spatial", "0"], "--spatial"),
    (["depth-scales", "--taps", "1,-1,1"], "--taps"),
    (["depth-scales", "--taps", "1,x,1"], "--taps"),
    (["depth-scales", "--dims", "3"], "--dims"),
    (["depth-scales", "--variance", "triangle"], "--variance"),
    (["depth-scales", "--variance", "custom"], "--taps"),
    (["depth-scales", "--kernel", "0"], "--kernel"),
    (["depth-scales", "--weight-var", "-1"], "--weight-var"),
    (["depth-scales", "--taps", "1,2,1;2,4,2;1,2,1", "--dims", "1"], "--dims"),
    (["depth-scales", "--out", "x", "--format", "gif"], "--format"),
    (["propagate", "--depth", "-1"], "--depth"),
    (["propagate", "--input-corr", "2"], "--input-corr"),
    (["propagate", "--dims", "2", "--spatial", "64", "--method", "full"], "--spatial"),
    (["propagate", "--method", "magic"], "--method"),
    (["propagate", "--input-array", "/nonexistent.npy"], "--input-array"),
])
def test_bad_input_is_one_line_exit_2(argv, option, capsys):
    code, out, err = run(argv, capsys)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {option}")


def test_propagate_json(capsys):
    code, out, err = run(["propagate", "--act", "erf", "--weight-var", "1.2", "--bias-var", "0.2", "--spatial", "5",
                          "--depth", "4", "--input-var", "1.3", "--input-corr", "0.2", "--json"], capsys)
    assert code == 0
    d = json.loads(out)
    assert d["method"] == "translation-invariant" and len(d["layers"]) == 5
    q, c = 1.3, 0.2
    for row in d["layers"][1:]:
        c = float(meanfield.cmap("erf", c, 1.2, 0.2, q=q))
        q = float(meanfield.qmap("erf", q, 1.2, 0.2))
        assert row["q"][0] == pytest.approx(q, rel=1e-13)
        assert row["c"] == pytest.approx(c, rel=1e-12)
    assert "method" in err


def test_propagate_writes_netcdf_and_figure(tmp_path, capsys):
    import xarray as xr

    x = np.random.default_rng(0).standard_normal((2, 6))
    np.save(tmp_path / "x.npy", x)
    code, out, err = run(["propagate", "--act", "erf", "--weight-var", "1.5", "--bias-var", "0.1", "--kernel", "3",
                          "--variance", "binomial", "--depth", "3", "--input-array", str(tmp_path / "x.npy"),
                          "--out", str(tmp_path), "--format", "png"], capsys)
    assert code == 0
    assert (tmp_path / "propagate.png").stat().st_size > 1000
    with xr.open_dataset(tmp_path / "propagate.nc") as ds:
        assert ds.attrs["method"] == "full"
        assert ds["covariance"].shape == (4, 1, 6, 1, 6)
        assert ds["q"].shape == (4, 1)
        S0 = ds["covariance"].values[0, 0, :, 0, :]
    # layer 0 is a first convolution on the array: 𝒜 ⋆ (σ_w² x xᵀ/c) + σ_b²
    G = 1.5 * x.T @ x / 2
    v = [0.25, 0.5, 0.25]
    ref = sum(w * np.roll(np.roll(G, -b, 0), -b, 1) for w, b in zip(v, (-1, 0, 1))) + 0.1
    np.testing.assert_allclose(S0, ref, rtol=1e-13)
    rows = [ln for ln in out.splitlines() if ln.split() and ln.split()[0].isdigit()]
    assert len(rows) == 4


@pytest.mark.slow
def test_fourier_modes_notebook_executes(monkeypatch, tmp_path):
    """notebooks/fourier_modes.ipynb runs end to end at small size (MEANFIELD_NB_SMALL=1)."""
    from pathlib import Path

    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("MEANFIELD_NB_SMALL", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    path = Path(__file__).resolve().parents[1] / "notebooks" / "fourier_modes.ipynb"
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "max |eigenvalue - prediction|" in text
