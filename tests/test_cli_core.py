"""The CLI contract of the foundation: exact JSON keys, nulls, one-line errors with exit code 2."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

import meanfield as mf

POINT_KEYS = {"act", "weight_var", "bias_var", "q_star", "c_star", "chi_1", "chi_q", "chi_c", "xi_q", "xi_c", "phase"}


def run(*args):
    return subprocess.run([sys.executable, "-m", "meanfield", *args], capture_output=True, text=True, timeout=300)


def test_point_json_contract():
    r = run("point", "--act", "tanh", "--weight-var", "1.9", "--bias-var", "0.05", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert POINT_KEYS <= set(d)
    assert d["phase"] in ("ordered", "chaotic", "critical", "unbounded")
    p = mf.point("tanh", 1.9, 0.05)
    for k in ("q_star", "c_star", "chi_1", "chi_q", "chi_c", "xi_q", "xi_c"):
        assert d[k] == getattr(p, k)


def test_point_unbounded_is_null_not_nan():
    r = run("point", "--act", "relu", "--weight-var", "3", "--bias-var", "0.1", "--json")
    assert r.returncode == 0
    assert "NaN" not in r.stdout and "Infinity" not in r.stdout
    d = json.loads(r.stdout)
    assert d["phase"] == "unbounded" and d["q_star"] is None and d["xi_c"] is None


def test_point_critical_xi_is_null():
    cp = mf.critical_weight_var("tanh", 0.0)
    r = run("point", "--act", "tanh", "--weight-var", repr(cp.weight_var), "--bias-var", "0", "--json")
    d = json.loads(r.stdout)
    assert d["phase"] == "critical" and d["xi_c"] is None


def test_point_table_is_readable():
    r = run("point", "--act", "tanh", "--weight-var", "1.9", "--bias-var", "0.05")
    assert r.returncode == 0 and "q_star" in r.stdout and "chaotic" in r.stdout


@pytest.mark.parametrize("args,key", [(("--bias-var", "0.05"), "bias_var"), (("--q-star", "0.0625"), "q_star")])
def test_critical_json_contract(args, key):
    r = run("critical", "--act", "tanh", *args, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert {"act", "bias_var", "weight_var", "q_star"} <= set(d)
    if key == "bias_var":
        assert math.isclose(d["weight_var"], mf.critical_weight_var("tanh", 0.05).weight_var, rel_tol=1e-15)
    else:
        assert d["q_star"] == 0.0625 and d["bias_var"] >= 0


def test_activations_lists_registry():
    r = run("activations")
    assert r.returncode == 0
    for name in ("tanh", "erf", "relu", "leaky_relu", "linear", "hard_tanh", "sigmoid", "softplus", "elu", "selu",
                 "gelu", "swish", "sin"):
        assert name in r.stdout


def test_custom_expression_on_cli():
    r = run("point", "--act", "x*tanh(log(1+exp(x)))", "--weight-var", "1.0", "--bias-var", "0.1", "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout)["q_star"] == mf.point("x*tanh(softplus(x))", 1.0, 0.1).q_star


@pytest.mark.parametrize("args,needle", [
    (("point", "--weight-var", "-1", "--bias-var", "0"), "--weight-var"),
    (("point", "--weight-var", "1", "--bias-var", "-0.5"), "--bias-var"),
    (("point", "--weight-var", "nan", "--bias-var", "0"), "--weight-var"),
    (("point", "--weight-var", "1", "--bias-var", "inf"), "--bias-var"),
    (("point", "--act", "tanhh", "--weight-var", "1", "--bias-var", "0"), "--act"),
    (("point", "--act", "x+", "--weight-var", "1", "--bias-var", "0"), "--act"),
    (("point", "--act", "__import__('os').system('true')", "--weight-var", "1", "--bias-var", "0"), "--act"),
    (("point", "--weight-var", "abc", "--bias-var", "0"), "--weight-var"),
    (("point", "--bias-var", "0"), "--weight-var"),
    (("critical", "--act", "tanh"), "--bias-var"),
    (("critical", "--bias-var", "-1"), "--bias-var"),
    (("critical", "--q-star", "0"), "--q-star"),
])
def test_bad_input_one_line_exit_2(args, needle):
    r = run(*args)
    assert r.returncode == 2
    assert r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert needle in lines[0] and "Traceback" not in r.stderr


def test_version_and_quick_help():
    r = run("--version")
    assert r.returncode == 0 and mf.__version__ in r.stdout
    r = run("--help")
    assert r.returncode == 0 and "point" in r.stdout and "critical" in r.stdout


def test_help_does_not_import_heavy_modules():
    code = ("import sys; from meanfield.cli import app; "
            "heavy = [m for m in ('numba', 'matplotlib', 'torch', 'xarray', 'scipy') if m in sys.modules]; "
            "print(','.join(heavy))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "", r.stdout
