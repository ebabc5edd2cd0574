"""CNN mean-field theory (THEORY.md §3): Fourier eigenvalues, per-mode depth scales, the exact
covariance recursion and its linearisation.

Every reference value is independent of the code under test: direct DFT sums written out
here, the Dirichlet closed form, THEORY.md's check values, the fully-connected maps
``meanfield.qmap``/``meanfield.cmap``/``meanfield.point``, and numpy eigenvalues of a
finite-difference Jacobian.
"""

from __future__ import annotations

import cmath
import math
import warnings

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

import meanfield
from meanfield import cnn
from meanfield._validation import InvalidArgumentError
from meanfield.profiles import ProfileNormalisedWarning


# --------------------------------------------------------------------------- references


def direct_dft(v, n):
    """λ_m = Σ_i v_i exp(2πi m β_i / n), β_i = i − (k−1)//2, by explicit loops (1-D or 2-D)."""
    v = np.asarray(v, dtype=float)
    v = v / v.sum()
    if v.ndim == 1:
        k = v.size
        return np.array([sum(v[i] * cmath.exp(2j * math.pi * m * (i - (k - 1) // 2) / n) for i in range(k))
                         for m in range(n)])
    k1, k2 = v.shape
    out = np.zeros((n, n), dtype=complex)
    for m1 in range(n):
        for m2 in range(n):
            out[m1, m2] = sum(v[i, j] * cmath.exp(2j * math.pi * (m1 * (i - (k1 - 1) // 2) + m2 * (j - (k2 - 1) // 2)) / n)
                              for i in range(k1) for j in range(k2))
    return out


def matched_error(a, b):
    """Largest distance after optimally pairing two multisets of complex numbers."""
    a = np.asarray(a).ravel()
    b = np.asarray(b).ravel()
    assert a.size == b.size
    cost = np.abs(a[:, None] - b[None, :])
    r, c = linear_sum_assignment(cost)
    return float(cost[r, c].max())


PROFILES_1D = {
    "uniform3": [1, 1, 1],
    "uniform5": [1, 1, 1, 1, 1],
    "binomial5": [1, 4, 6, 4, 1],
    "delta3": [0, 1, 0],
    "even4": [0.1, 0.5, 0.2, 0.2],          # asymmetric, even size: complex λ
    "skew3": [0.2, 0.5, 0.3],
}


# --------------------------------------------------------------------------- Fourier eigenvalues


@pytest.mark.parametrize("name", sorted(PROFILES_1D))
@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13])
def test_lambda_matches_direct_dft(name, n):
    v = np.asarray(PROFILES_1D[name], dtype=float)
    v = v / v.sum()
    lam = cnn.fourier_eigenvalues(v, n)
    assert lam.shape == (n,) and lam.dtype == np.complex128
    np.testing.assert_allclose(lam, direct_dft(v, n), rtol=0, atol=2e-15)
    assert lam[0] == 1.0


def test_lambda_theory_check_values():
    lam = cnn.fourier_eigenvalues(np.full(3, 1 / 3), 8)
    expected = [1, .80474, .33333, .13807, .33333, .13807, .33333, .80474]   # THEORY.md §3
    np.testing.assert_allclose(np.abs(lam), expected, atol=5e-6)


@pytest.mark.parametrize("k", [1, 3, 5, 7])
@pytest.mark.parametrize("n", [4, 7, 8, 16, 33])
def test_lambda_dirichlet_closed_form(k, n):
    lam = cnn.fourier_eigenvalues(np.full(k, 1.0 / k), n)
    for m in range(1, n):
        th = 2 * math.pi * m / n
        ref = math.sin(k * th / 2) / (k * math.sin(th / 2))
        assert lam[m] == pytest.approx(ref, abs=3e-15)


def test_dirichlet_zeros_are_exact():
    # uniform k = 3: λ_m = (1 + 2 cos 2πm/n)/3 vanishes at m/n = 1/3
    lam = cnn.fourier_eigenvalues(np.full(3, 1 / 3), 6)
    assert lam[2] == 0 and lam[4] == 0
    assert np.all(cnn.fourier_eigenvalues([1 / 3, 1 / 3, 1 / 3], 3)[1:] == 0)


def test_lambda_wraps_when_kernel_exceeds_grid():
    v = np.array([1, 2, 3, 4, 5.0]) / 15
    np.testing.assert_allclose(cnn.fourier_eigenvalues(v, 3), direct_dft(v, 3), atol=2e-15)


@pytest.mark.parametrize("a,b", [([1, 1, 1], [1, 1, 1]), ([1, 2, 1], [1, 2, 1]), ([0, 1, 0], [1, 1, 1]),
                                 ([0.1, 0.5, 0.2, 0.2], [0.2, 0.5, 0.3]), ([1, 4, 6, 4, 1], [1, 2, 1])])
@pytest.mark.parametrize("n", [3, 8])
def test_separable_2d_lambda_is_product(a, b, n):
    a = np.asarray(a, float) / np.sum(a)
    b = np.asarray(b, float) / np.sum(b)
    lam2 = cnn.fourier_eigenvalues(np.outer(a, b), n)
    ref = np.multiply.outer(direct_dft(a, n), direct_dft(b, n))
    assert lam2.shape == (n, n)
    np.testing.assert_allclose(lam2, ref, atol=3e-15)


def test_named_2d_profiles_are_separable():
    for kind in ("uniform", "binomial", "gaussian:0.8"):
        v1 = cnn.make_profile(kind, 3, 1)
        v2 = cnn.make_profile(kind, 3, 2)
        l1 = cnn.fourier_eigenvalues(v1, 8)
        np.testing.assert_allclose(cnn.fourier_eigenvalues(v2, 8), np.multiply.outer(l1, l1), atol=3e-15)


def test_non_separable_2d_lambda_direct():
    v = np.array([[0.0, 1.0, 0.5], [2.0, 3.0, 0.0], [0.25, 0.0, 1.0]])
    v /= v.sum()
    np.testing.assert_allclose(cnn.fourier_eigenvalues(v, 5), direct_dft(v, 5), atol=3e-15)


# --------------------------------------------------------------------------- depth scales per mode


@pytest.mark.parametrize("act,wv,bv", [("tanh", 1.5, 0.05), ("tanh", 2.5, 0.05), ("erf", 4.0, 0.1),
                                       ("tanh", None, None)])
@pytest.mark.parametrize("variance", ["uniform", "delta", "binomial"])
def test_mode_zero_reproduces_fc_depth_scales(act, wv, bv, variance):
    r = cnn.mode_depth_scales(act, wv, bv, kernel=3, spatial=8, variance=variance)
    if wv is None:
        assert r.bias_var == 0.05
        assert r.weight_var == meanfield.critical_weight_var(act, 0.05).weight_var
    p = meanfield.point(act, r.weight_var, r.bias_var)
    assert r.xi_q_modes[0] == p.xi_q and r.xi_c_modes[0] == p.xi_c
    assert r.xi_q == p.xi_q and r.xi_c == p.xi_c and r.chi_c == p.chi_c and r.chi_q == p.chi_q
    # the other modes from −1/ln|χ λ_m| with an independent λ_m
    lam = np.abs(direct_dft(r.taps, 8))
    for m in range(1, 8):
        for chi, xi_m, xi0 in ((p.chi_q, r.xi_q_modes[m], p.xi_q), (p.chi_c, r.xi_c_modes[m], p.xi_c)):
            if lam[m] < 1e-14:
                assert xi_m == 0
            elif abs(lam[m] - 1) < 1e-14:
                assert xi_m == xi0          # delta: every mode is the FC network
            elif p.phase == "critical" and chi is p.chi_c:
                assert xi_m == pytest.approx(-1 / math.log(lam[m]), rel=1e-12)
            else:
                assert xi_m == pytest.approx(-1 / math.log(chi * lam[m]), rel=1e-12)


def test_delta_at_criticality_every_correlation_mode_is_infinite_and_uniform_forgets():
    d = cnn.mode_depth_scales("tanh", spatial=16, variance="delta")
    u = cnn.mode_depth_scales("tanh", spatial=16, variance="uniform")
    assert d.phase == "critical"
    assert np.all(np.isinf(d.xi_c_modes))
    assert np.isinf(u.xi_c_modes[0]) and np.all(np.isfinite(u.xi_c_modes[1:]))
    # spatial structure is forgotten within a few layers at high frequency
    assert u.xi_c_modes[8] < 1


def test_mode_depth_scales_2d_modes_and_zeros():
    r = cnn.mode_depth_scales("tanh", 1.5, 0.05, kernel=3, dims=2, spatial=6, variance="uniform")
    assert r.modes.shape == (36, 2) and r.lambdas.shape == (36,)
    assert [tuple(x) for x in r.modes[:3]] == [(0, 0), (0, 1), (0, 2)]
    zero = np.abs(r.lambdas) == 0          # m1 = 2, 4 or m2 = 2, 4
    assert zero.sum() == 36 - 16
    assert np.all(r.xi_c_modes[zero] == 0)
    order = r.sorted_order()
    af = r.abs_frequency[order]
    assert np.all(np.diff(af) >= -1e-12) and order[0] == 0


def test_unbounded_point_reports_null_depth_scales():
    r = cnn.mode_depth_scales("relu", 3.0, 0.1, spatial=4)
    assert not r.converged and r.phase == "unbounded"
    assert np.all(np.isnan(r.xi_c_modes)) and np.all(np.isnan(r.xi_q_modes))
    with pytest.raises(InvalidArgumentError, match="weight_var"):
        cnn.fixed_point_covariance("relu", 3.0, 0.1, spatial=4)


def test_to_dict_schema():
    r = cnn.mode_depth_scales("tanh", 1.5, 0.05, kernel=3, spatial=5, variance="binomial")
    d = r.to_dict()
    for k in ("act", "weight_var", "bias_var", "kernel", "dims", "spatial", "variance", "taps", "chi_q",
              "chi_c", "xi_q", "xi_c", "modes"):
        assert k in d
    assert d["kernel"] == 3 and d["taps"] == [0.25, 0.5, 0.25]
    assert [m["mode"] for m in d["modes"]] == [[i] for i in range(5)]
    assert set(d["modes"][0]) == {"mode", "lambda_re", "lambda_im", "abs_lambda", "xi_q", "xi_c"}


# --------------------------------------------------------------------------- the exact map and its linearisation


def expected_spectrum(act, wv, bv, v, n):
    p = meanfield.point(act, wv, bv)
    lam = direct_dft(v, n) if np.ndim(v) == 1 else direct_dft(v, n).ravel()
    N = lam.size
    return np.concatenate([p.chi_q * lam] + [p.chi_c * lam] * (N - 1))


@pytest.mark.parametrize("variance", ["uniform", "delta", "binomial"])
@pytest.mark.parametrize("act,wv,bv", [("tanh", 2.5, 0.05), ("tanh", 1.5, 0.05), ("erf", 4.0, 0.1)])
def test_jacobian_eigenvalues_1d(variance, act, wv, bv):
    v = cnn.make_profile(variance, 3)
    n = 8
    J = cnn.linearised_map_jacobian(act, wv, bv, v, n)
    assert J.shape == (n * n, n * n)
    err = matched_error(np.linalg.eigvals(J), expected_spectrum(act, wv, bv, v, n))
    assert err < 1e-7, err


def test_jacobian_eigenvalues_critical_line_and_complex_profile():
    wv = meanfield.critical_weight_var("tanh", 0.05).weight_var
    v = np.array([0.1, 0.5, 0.2, 0.2])
    J = cnn.linearised_map_jacobian("tanh", wv, 0.05, v, 7)
    ev = np.linalg.eigvals(J)
    assert np.abs(ev.imag).max() > 0.1          # genuinely complex λ_m
    assert matched_error(ev, expected_spectrum("tanh", wv, 0.05, v, 7)) < 1e-7


def test_jacobian_eigenvalues_2d():
    v = np.outer([1, 2, 1], [1, 1, 1]) / 12.0
    J = cnn.linearised_map_jacobian("tanh", 2.5, 0.05, v, 3)
    assert J.shape == (81, 81)
    assert matched_error(np.linalg.eigvals(J), expected_spectrum("tanh", 2.5, 0.05, v, 3)) < 1e-7


def fixed_point_reference(act, wv, bv, N):
    p = meanfield.point(act, wv, bv)
    return p.q_star * ((1 - p.c_star) * np.eye(N) + p.c_star * np.ones((N, N)))


@pytest.mark.parametrize("act,wv,bv,depth,tol", [("erf", 4.0, 0.1, 140, 1e-9), ("erf", 1.0, 0.3, 70, 1e-9),
                                                 ("tanh", 1.2, 0.2, 40, 1e-5)])
@pytest.mark.parametrize("variance", ["uniform", "binomial"])
def test_recursion_converges_to_fixed_point(act, wv, bv, depth, tol, variance):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 6))                 # a non-stationary input: 3 channels, 6 positions
    ds = cnn.propagate(act, wv, bv, kernel=3, variance=variance, depth=depth, input_array=x)
    assert ds.attrs["method"] == "full"
    S = ds["covariance"].isel(layer=-1).values.reshape(6, 6)
    Sstar = fixed_point_reference(act, wv, bv, 6)
    np.testing.assert_allclose(S, Sstar, rtol=0, atol=tol)
    np.testing.assert_allclose(S, cnn.fixed_point_covariance(act, wv, bv, 6), rtol=0, atol=tol)
    d = ds["dist_fixed_point"].values
    assert d[0] > 0.1 and d[-1] < tol


def iterate_fc(act, wv, bv, q0, c0, depth):
    qs, cs = [q0], [c0]
    for _ in range(depth):
        q, c = qs[-1], cs[-1]
        cs.append(float(meanfield.cmap(act, c, wv, bv, q=q)))
        qs.append(float(meanfield.qmap(act, q, wv, bv)))
    return np.array(qs), np.array(cs)


@pytest.mark.parametrize("act,wv,bv", [("tanh", 1.9, 0.05), ("erf", 1.2, 0.2)])
def test_zero_mode_matches_fc_maps_layer_by_layer(act, wv, bv):
    depth = 8
    q_ref, c_ref = iterate_fc(act, wv, bv, 1.3, 0.2, depth)
    full = cnn.propagate(act, wv, bv, kernel=3, variance="uniform", spatial=5, depth=depth, input_var=1.3,
                         input_corr=0.2, method="full")
    fast = cnn.propagate(act, wv, bv, kernel=3, variance="uniform", spatial=5, depth=depth, input_var=1.3,
                         input_corr=0.2)
    assert fast.attrs["method"] == "translation-invariant"
    for ds in (full, fast):
        np.testing.assert_allclose(ds["q"].values[:, 0], q_ref, rtol=1e-13)
        np.testing.assert_allclose(ds["c"].values, c_ref, rtol=1e-12, atol=1e-14)
        S = ds["covariance"].values.reshape(depth + 1, 5, 5)
        # every layer stays of the form q[(1−c)I + c11ᵀ]
        for l in range(depth + 1):
            ref = q_ref[l] * ((1 - c_ref[l]) * np.eye(5) + c_ref[l] * np.ones((5, 5)))
            np.testing.assert_allclose(S[l], ref, rtol=1e-12)
        amp = ds["corr_mode_amplitude"].values
        assert np.all(np.abs(amp[:, 1:]) < 1e-13 * q_ref.max())
    np.testing.assert_allclose(full["covariance"].values, fast["covariance"].values, rtol=1e-13)


def test_pair_of_inputs_cross_correlation_follows_cmap():
    depth = 6
    q_ref, c_ref = iterate_fc("tanh", 1.9, 0.05, 0.8, 0.6, depth)
    for method in ("full", "auto"):
        ds = cnn.propagate("tanh", 1.9, 0.05, kernel=3, variance="binomial", spatial=4, depth=depth,
                           input_var=0.8, input_corr=0.6, pair=True, method=method)
        assert ds.sizes["input"] == 2
        np.testing.assert_allclose(ds["q"].values, np.stack([q_ref, q_ref], axis=1), rtol=1e-13)
        np.testing.assert_allclose(ds["c"].values, c_ref, rtol=1e-12)


def test_shortcut_equals_full_2d_and_dims():
    kw = dict(kernel=3, dims=2, spatial=3, depth=3, input_var=1.0, input_corr=0.1, variance="binomial")
    a = cnn.propagate("erf", 2.0, 0.1, method="full", **kw)
    b = cnn.propagate("erf", 2.0, 0.1, **kw)
    assert a["covariance"].dims == ("layer", "input", "x", "y", "input2", "x2", "y2")
    assert a["cov_profile"].dims == ("layer", "input", "input2", "dx", "dy")
    assert a["corr_mode_amplitude"].dims == ("layer", "m", "m2")
    np.testing.assert_allclose(a["covariance"].values, b["covariance"].values, rtol=1e-13)
    np.testing.assert_allclose(a["spatial_corr"].values, b["spatial_corr"].values, rtol=1e-12)


def test_delta_profile_keeps_spatial_structure_uniform_loses_it():
    wv = meanfield.critical_weight_var("tanh", 0.05).weight_var
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 8))
    res = {}
    for variance in ("delta", "uniform"):
        ds = cnn.propagate("tanh", wv, 0.05, kernel=3, variance=variance, depth=12, input_array=x)
        amp = ds["corr_mode_amplitude"].values
        res[variance] = amp[-1, 1:5] / amp[0, 1:5]
    # delta: every mode shrinks only as slowly as the FC c-map approaches c* = 1 (a power law), all alike
    assert np.all(res["delta"] > 0.02) and res["delta"].max() / res["delta"].min() < 2
    # uniform: mode m shrinks like |λ_m|^l (|λ_1| = 0.80, |λ_2| = 0.33, |λ_3| = 0.14 on n = 8)
    assert res["uniform"][0] < 0.1 * res["delta"][0]
    assert np.all(res["uniform"][1:] < 1e-4)


def test_covariance_map_delta_is_entrywise_map():
    # delta: 𝒜 is the identity, so one step is the FC covariance map entry by entry
    rng = np.random.default_rng(0)
    A = rng.standard_normal((5, 7))
    S = A @ A.T / 7
    out = cnn.covariance_map("erf", 1.7, 0.2, [0, 1, 0], S)
    d = np.diag(S)
    ref = 1.7 * (2 / np.pi) * np.arcsin(2 * S / np.sqrt(np.outer(1 + 2 * d, 1 + 2 * d))) + 0.2
    np.testing.assert_allclose(out, ref, rtol=1e-14, atol=1e-15)


def test_covariance_map_uniform_shift_average():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((6, 9))
    S = A @ A.T / 9
    out = cnn.covariance_map("erf", 1.7, 0.2, [1 / 3, 1 / 3, 1 / 3], S)
    d = np.diag(S)
    C = 1.7 * (2 / np.pi) * np.arcsin(2 * S / np.sqrt(np.outer(1 + 2 * d, 1 + 2 * d))) + 0.2
    ref = sum(np.roll(np.roll(C, -b, 0), -b, 1) for b in (-1, 0, 1)) / 3
    np.testing.assert_allclose(out, ref, rtol=1e-14, atol=1e-15)


def test_parallel_and_serial_kernels_agree():
    from meanfield._jit import cnn as k

    spec = meanfield.get_activation("tanh").spec
    rng = np.random.default_rng(5)
    s11 = rng.uniform(0.1, 3, 40)
    s22 = rng.uniform(0.1, 3, 40)
    s12 = rng.uniform(-1, 1, 40) * np.sqrt(s11 * s22)
    s11[:3] = s22[:3] = s12[:3] = 0.7          # variance triples
    a = np.empty(40)
    b = np.empty(40)
    k.pair_map_parallel(spec, s11, s22, s12, 1.3, 0.1, a)
    k.pair_map_serial(spec, s11, s22, s12, 1.3, 0.1, b)
    assert np.array_equal(a, b)
    ref = 1.3 * meanfield.pair_expectation("tanh", s11, s22, s12) + 0.1
    np.testing.assert_allclose(a, ref, rtol=1e-13)
    X = rng.standard_normal((2 * 9, 2 * 9))
    perm, w = cnn._shift_tables(cnn.make_profile("binomial", 3, 2), 3)
    o1 = np.empty_like(X)
    o2 = np.empty_like(X)
    k.shift_average_parallel(X, perm, w, 9, o1)
    k.shift_average_serial(X, perm, w, 9, o2)
    assert np.array_equal(o1, o2)


def test_overflow_is_flagged_not_silent():
    ds = cnn.propagate("relu", 1e300, 0.0, spatial=4, depth=4, input_var=1.0)
    assert ds.attrs["first_nonfinite_layer"] >= 1
    fin = ds["finite"].values
    bad = ds.attrs["first_nonfinite_layer"]
    assert np.all(fin[:bad] == 1) and np.all(fin[bad:] == 0)
    assert np.all(np.isnan(ds["q"].values[bad:]))


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("kwargs,arg", [
    (dict(variance="custom", taps="0.5,-0.1,0.5"), "taps"),
    (dict(variance="custom", taps="0.5,nan,0.5"), "taps"),
    (dict(variance="custom", taps="0,0,0"), "taps"),
    (dict(variance="custom"), "taps"),
    (dict(variance="triangle"), "variance"),
    (dict(variance="gaussian:-1"), "variance"),
    (dict(variance="uniform", taps="1,2,1"), "taps"),
    (dict(taps="1,2,1;2,4,2;1,2,1", dims=1), "dims"),
    (dict(taps="1,2,1", kernel=5), "kernel"),
    (dict(kernel=0), "kernel"),
    (dict(dims=3), "dims"),
    (dict(spatial=0), "spatial"),
    (dict(spatial=2.5), "spatial"),
])
def test_bad_profiles_and_shapes_are_clear_errors(kwargs, arg):
    kw = dict(act="tanh", weight_var=1.5, bias_var=0.05)
    kw.update(kwargs)
    with pytest.raises(InvalidArgumentError) as ei:
        cnn.mode_depth_scales(**kw)
    assert ei.value.argument == arg


def test_unnormalised_taps_warn_and_normalise():
    with pytest.warns(ProfileNormalisedWarning):
        r = cnn.mode_depth_scales("tanh", 1.5, 0.05, taps="1,2,1", spatial=4)
    assert r.taps.tolist() == [0.25, 0.5, 0.25]
    with pytest.warns(ProfileNormalisedWarning):
        lam = cnn.fourier_eigenvalues([2, 2, 2], 8)
    np.testing.assert_allclose(lam, direct_dft([1, 1, 1], 8), atol=2e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cnn.fourier_eigenvalues([0.25, 0.5, 0.25], 8)


@pytest.mark.parametrize("profile", [np.ones((2, 2, 2)) / 8, [[-1, 2]], [], "uniform"])
def test_bad_profile_arrays(profile):
    with pytest.raises(InvalidArgumentError):
        cnn.fourier_eigenvalues(profile, 8)


def test_propagate_input_errors():
    with pytest.raises(InvalidArgumentError) as ei:
        cnn.propagate("tanh", 1.5, 0.05, spatial=8, input_corr=-0.5)     # not PSD for 8 positions
    assert ei.value.argument == "input_corr"
    bad = np.array([[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(InvalidArgumentError, match="positive semi-definite"):
        cnn.propagate("tanh", 1.5, 0.05, input_cov=bad)
    with pytest.raises(InvalidArgumentError, match="symmetric"):
        cnn.propagate("tanh", 1.5, 0.05, input_cov=np.array([[1.0, 0.1], [0.2, 1.0]]))
    with pytest.raises(InvalidArgumentError) as ei:
        cnn.propagate("tanh", 1.5, 0.05, input_cov=np.eye(5), dims=2)
    assert ei.value.argument == "input_cov"
    with pytest.raises(InvalidArgumentError) as ei:
        cnn.propagate("tanh", 1.5, 0.05, input_cov=np.eye(4), spatial=3)
    assert ei.value.argument == "spatial"
    with pytest.raises(InvalidArgumentError) as ei:
        cnn.propagate("tanh", 1.5, 0.05, input_array=np.ones((2, 3, 4)), dims=1)
    assert ei.value.argument == "input_array"
    with pytest.raises(InvalidArgumentError) as ei:
        cnn.propagate("tanh", 1.5, 0.05, depth=-1)
    assert ei.value.argument == "depth"
    with pytest.raises(InvalidArgumentError) as ei:
        cnn.propagate("tanh", 1.5, 0.05, spatial=1)
    assert ei.value.argument == "spatial"
    with pytest.raises(InvalidArgumentError) as ei:
        cnn.propagate("tanh", 1.5, 0.05, method="magic")
    assert ei.value.argument == "method"
    rng = np.random.default_rng(0)
    with pytest.raises(InvalidArgumentError) as ei:
        cnn.propagate("tanh", 1.5, 0.05, input_array=rng.standard_normal((2, 6)), method="translation-invariant")
    assert ei.value.argument == "method"


def test_memory_guard_names_spatial():
    # 2-D 64 x 64: (4096)^2 entries per layer = 128 MiB; the full recursion is refused
    with pytest.raises(InvalidArgumentError) as ei:
        cnn.propagate("tanh", 1.5, 0.05, dims=2, spatial=64, depth=10, method="full")
    assert ei.value.argument == "spatial" and "MiB" in ei.value.reason
    # ... while the translation-invariant shortcut needs O(n^2) and runs
    ds = cnn.propagate("erf", 1.5, 0.05, dims=2, spatial=64, depth=2)
    assert ds.attrs["method"] == "translation-invariant" and "covariance" not in ds
    assert ds["cov_profile"].shape == (3, 1, 1, 64, 64)
    with pytest.raises(InvalidArgumentError) as ei:
        cnn.linearised_map_jacobian("tanh", 2.5, 0.05, [1 / 3, 1 / 3, 1 / 3], 9 * 9)
    assert ei.value.argument == "spatial"
