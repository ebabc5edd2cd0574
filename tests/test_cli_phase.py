"""``meanfield phase`` and ``meanfield critical-line`` end to end (subprocess-free, via cli.main).

References: the files are read back with xarray/pandas and compared with the API
(:func:`meanfield.phase_diagram`, :func:`meanfield.critical_weight_var`); errors must be one
line on stderr with exit code 2 and nothing on stdout.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import meanfield
from meanfield import phase as ph
from meanfield.cli import main


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MEANFIELD_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "tables-cli"))


def run(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_phase_writes_figure_and_data(tmp_path, capsys):
    code, out, err = run(["phase", "--resolution", "24", "--out", str(tmp_path), "--format", "png,pdf,svg",
                          "--json"], capsys)
    assert code == 0, err
    obj = json.loads(out)  # stdout holds only the JSON
    for k in ("png", "pdf", "svg", "nc", "csv"):
        assert (tmp_path / f"phase-tanh.{k}").is_file()
        assert obj["files"][k] == str(tmp_path / f"phase-tanh.{k}")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left behind
    rows = {r["bias_var"]: r["critical_weight_var"] for r in obj["critical_line"]}
    assert rows[0.05] == pytest.approx(1.76096, abs=1e-5)
    assert sum(obj["phase_counts"].values()) == 24 * 24
    ds = ph.open_phase_diagram(tmp_path / "phase-tanh.nc")
    ref = meanfield.phase_diagram("tanh", np.linspace(0.5, 4, 24), np.linspace(0, 0.5, 24))
    assert np.array_equal(ds.chi_1.values, ref.chi_1.values)
    assert "command" in ds.attrs and ds.attrs["activation"] == "tanh"
    csv = ph.open_phase_diagram(tmp_path / "phase-tanh.csv")
    assert np.array_equal(csv.xi_c.values, ref.xi_c.values, equal_nan=True)
    from PIL import Image

    assert "meanfield" in Image.open(tmp_path / "phase-tanh.png").info["Description"]


def test_phase_defaults_and_human_output(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["phase", "--resolution", "12", "--slices", ""], capsys)
    assert code == 0, err
    assert (tmp_path / "meanfield-out" / "phase-tanh.png").is_file()
    assert (tmp_path / "meanfield-out" / "phase-tanh.pdf").is_file()
    assert not (tmp_path / "meanfield-out" / "phase-tanh.svg").exists()
    assert "phase-tanh.csv" in out and "done in" in err


def test_phase_other_activation_file_names(tmp_path, capsys):
    code, out, err = run(["phase", "--act", "leaky_relu:0.2", "--resolution", "8", "--out", str(tmp_path),
                          "--format", "png", "--json"], capsys)
    assert code == 0, err
    assert (tmp_path / "phase-leaky_relu-0.2.png").is_file()
    assert json.loads(out)["method"] == "exact point kernel"


@pytest.mark.parametrize("argv, option", [
    (["--resolution", "1"], "--resolution"),
    (["--resolution", "100000"], "--resolution"),
    (["--weight-var-range", "4", "1"], "--weight-var-range"),
    (["--weight-var-range", "0", "1"], "--weight-var-range"),
    (["--bias-var-range", "-1", "1"], "--bias-var-range"),
    (["--bias-var-range", "nan", "1"], "--bias-var-range"),
    (["--format", "gif"], "--format"),
    (["--slices", "abc"], "--slices"),
    (["--slices", "-0.1"], "--slices"),
    (["--act", "nonsense"], "--act"),
])
def test_phase_bad_input_is_exit_2(argv, option, tmp_path, capsys):
    code, out, err = run(["phase", "--out", str(tmp_path)] + argv, capsys)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("Error:") and option in err
    assert list(tmp_path.iterdir()) == []


def test_phase_unparseable_number_is_exit_2(capsys):
    code, out, err = run(["phase", "--resolution", "many"], capsys)
    assert code == 2 and out == "" and err.count("\n") == 1


def test_ctrl_c_leaves_no_partial_output(tmp_path, capsys, monkeypatch):
    def interrupted(ds, path):
        path.write_text("half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(ph, "to_csv", interrupted)
    code, out, err = run(["phase", "--resolution", "8", "--out", str(tmp_path), "--format", "png"], capsys)
    assert code == 130
    assert list(tmp_path.iterdir()) == []


def test_critical_line_json_csv_and_table(tmp_path, capsys):
    code, out, err = run(["critical-line", "--bias-var-range", "0", "0.1", "--points", "3", "--json"], capsys)
    assert code == 0, err
    obj = json.loads(out)
    pts = obj["points"]
    assert [p["bias_var"] for p in pts] == [0.0, 0.05, 0.1]
    for p in pts:
        assert p["weight_var"] == meanfield.critical_weight_var("tanh", p["bias_var"]).weight_var
    f = tmp_path / "line.csv"
    code, out, err = run(["critical-line", "--points", "5", "--out", str(f)], capsys)
    assert code == 0 and f.is_file() and out.strip() == str(f)
    lines = f.read_text().splitlines()
    assert lines[0] == "bias_var,weight_var,q_star,converged" and len(lines) == 6
    code, out, err = run(["critical-line", "--act", "relu", "--points", "2"], capsys)
    assert code == 0 and "null" in out  # q* is not finite on the ReLU critical line


@pytest.mark.parametrize("argv", [["--points", "1"], ["--bias-var-range", "1", "0"], ["--act", "what"]])
def test_critical_line_bad_input(argv, capsys):
    code, out, err = run(["critical-line"] + argv, capsys)
    assert code == 2 and out == "" and err.count("\n") == 1
