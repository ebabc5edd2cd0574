"""The CLI contract of ``meanfield validate`` and ``meanfield spectrum`` (issue #6)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("torch")

VALIDATE_KEYS = {"layers", "q_theory", "q_empirical", "q_stderr", "c_theory", "c_empirical", "c_stderr", "modes",
                 "summary", "device", "seconds"}
SPECTRUM_KEYS = {"mean_empirical", "mean_theory", "mean_stderr", "variance_empirical", "variance_theory",
                 "variance_stderr", "histogram", "summary", "device", "seconds", "method"}


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "meanfield", *args], capture_output=True, text=True, timeout=600,
                          env=env)


SMALL = ("--depth", "6", "--channels", "16", "--spatial", "8", "--seeds", "2", "--device", "cpu")


def test_validate_json_contract():
    r = run("validate", "--act", "tanh", "--weight-var", "1.5", "--bias-var", "0.05", "--input-var", "1.0",
            "--input-corr", "0.3", "--kernel", "3", "--init", "delta-orthogonal", *SMALL, "--json")
    assert r.returncode == 0, r.stderr
    assert "NaN" not in r.stdout and "Infinity" not in r.stdout
    d = json.loads(r.stdout)
    assert VALIDATE_KEYS <= set(d)
    assert d["layers"] == list(range(7))
    for k in ("q_theory", "q_empirical", "q_stderr", "c_theory", "c_empirical", "c_stderr"):
        assert len(d[k]) == 7, k
    assert d["q_theory"][0] == 1.0 and abs(d["c_theory"][0] - 0.3) < 1e-15
    assert d["device"] == "cpu" and d["seconds"] > 0
    assert {"mode", "rate_theory", "rate_fitted"} <= set(d["modes"][0])
    assert {m["kind"] for m in d["modes"]} == {"variance", "correlation"}
    s = d["summary"]
    assert {"q_max_abs_z", "c_max_abs_z", "q_threshold", "pass"} <= set(s)


def test_validate_unbounded_relu_has_no_modes_and_null_free_json():
    r = run("validate", "--act", "relu", "--weight-var", "2.5", "--bias-var", "0.05", "--init", "gaussian",
            "--variance", "uniform", "--dims", "2", *SMALL, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["modes"] == [] and d["q_star"] is None
    assert "no mode probes" in r.stderr


def test_validate_writes_figures_and_data(tmp_path):
    out = tmp_path / "v"
    r = run("validate", "--init", "gaussian", "--variance", "delta", *SMALL, "--out", str(out), "--format", "png")
    assert r.returncode == 0, r.stderr
    for name in ("validate.png", "validate.json", "validate.nc"):
        assert (out / name).stat().st_size > 0, name
    assert "agreement" in r.stdout and "q theory" in r.stdout
    import xarray as xr

    with xr.open_dataset(out / "validate.nc") as ds:
        assert ds.sizes["layer"] == 7 and "q_theory" in ds


@pytest.mark.parametrize("args,opt", [
    (("--init", "xavier"), "--init"),
    (("--dims", "3"), "--dims"),
    (("--dtype", "float16"), "--dtype"),
    (("--init", "delta-orthogonal", "--variance", "uniform"), "--variance"),
    (("--input-corr", "2"), "--input-corr"),
    (("--channels", "0"), "--channels"),
])
def test_validate_errors_are_one_line(args, opt):
    r = run("validate", "--depth", "2", "--channels", "4", "--spatial", "4", "--seeds", "1", "--device", "cpu",
            *args)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"Error: {opt}"), r.stderr
    assert r.stdout == ""


def test_cuda_request_without_a_device_is_an_error():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    r = run("validate", "--depth", "2", "--channels", "4", "--spatial", "4", "--device", "cuda")
    assert r.returncode == 2 and r.stderr.startswith("Error: --device")


def test_spectrum_json_contract_and_both_inits(tmp_path):
    r = run("spectrum", "--act", "tanh", "--weight-var", "1.76", "--bias-var", "0.05", "--depth", "4",
            "--width", "32", "--init", "orthogonal", "--seeds", "2", "--device", "cpu", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert SPECTRUM_KEYS <= set(d) and d["method"] == "exact" and d["init"] == "orthogonal"
    assert len(d["histogram"]["edges"]) == len(d["histogram"]["density"]) + 1
    r = run("spectrum", "--depth", "3", "--width", "8", "--conv", "--kernel", "3", "--spatial", "4",
            "--init", "both", "--seeds", "2", "--device", "cpu", "--method", "lanczos", "--lanczos-steps", "8",
            "--json", "--out", str(tmp_path), "--format", "png")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert [x["init"] for x in d["runs"]] == ["gaussian", "orthogonal"]
    assert all(x["method"] == "lanczos" and x["conv"] for x in d["runs"])
    assert (tmp_path / "spectrum.png").stat().st_size > 0 and (tmp_path / "spectrum.json").exists()


def test_spectrum_errors():
    r = run("spectrum", "--init", "delta-orthogonal", "--depth", "2", "--width", "4")
    assert r.returncode == 2 and r.stderr.startswith("Error: --init")
    r = run("spectrum", "--method", "svd", "--depth", "2", "--width", "4")
    assert r.returncode == 2 and r.stderr.startswith("Error: --method")


def test_missing_torch_is_a_clear_one_line_error():
    code = ("import sys; sys.modules['torch'] = None\n"
            "from meanfield.cli import main\n"
            "main(['validate', '--depth', '2'])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1
    assert r.stderr.strip() == "Error: this command needs PyTorch; install it with: pip install 'meanfield[torch]'"


def test_help_lists_the_commands():
    r = run("--help")
    assert r.returncode == 0
    out = r.stdout + r.stderr
    assert "validate" in out and "spectrum" in out
