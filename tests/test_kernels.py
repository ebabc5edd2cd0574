"""Tests of meanfield.kernels (NumPy orthogonal and Gaussian convolution kernels).

References used here are independent of the code under test: circular
convolution by explicit rolls, the dense convolution operator assembled tap by
tap, the exact marginal of a Haar matrix entry, binomial coefficients from
``math.comb`` and chi-square sampling errors.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats

from meanfield import kernels
from meanfield._validation import InvalidArgumentError
from meanfield.kernels import block_orthogonal, delta_orthogonal, gaussian, haar_orthogonal

# ----------------------------------------------------------------------------- references


def circular_conv(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``y[o, a] = sum_{i, b} w[o, i, b] x[i, a + b - centre]`` (indices mod n), by rolls."""
    d = w.ndim - 2
    centre = [(k - 1) // 2 for k in w.shape[2:]]
    y = np.zeros((w.shape[0],) + x.shape[1:])
    axes = tuple(range(1, d + 1))
    for b in itertools.product(*[range(k) for k in w.shape[2:]]):
        shift = tuple(-(b[j] - centre[j]) for j in range(d))
        xs = np.roll(x, shift, axis=axes)  # xs[a] = x[a + b - centre]
        y += np.einsum("oi,i...->o...", w[(slice(None), slice(None)) + b], xs)
    return y


def zero_padded_conv(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Same as :func:`circular_conv` but with zero padding ("same" size output)."""
    d = w.ndim - 2
    centre = [(k - 1) // 2 for k in w.shape[2:]]
    n = x.shape[1:]
    y = np.zeros((w.shape[0],) + n)
    for a in itertools.product(*[range(m) for m in n]):
        for b in itertools.product(*[range(k) for k in w.shape[2:]]):
            src = tuple(a[j] + b[j] - centre[j] for j in range(d))
            if all(0 <= s < m for s, m in zip(src, n)):
                y[(slice(None),) + a] += w[(slice(None), slice(None)) + b] @ x[(slice(None),) + src]
    return y


def dense_operator(w: np.ndarray, n: int) -> np.ndarray:
    """The circular convolution on an ``n^d`` grid as a ``(c_out n^d) x (c_in n^d)`` matrix."""
    c_out, c_in = w.shape[:2]
    spatial = w.shape[2:]
    d = len(spatial)
    grid = (n,) * d
    npos = n ** d
    m = np.zeros((c_out, npos, c_in, npos))
    centre = [(k - 1) // 2 for k in spatial]
    for ia, a in enumerate(itertools.product(range(n), repeat=d)):
        for b in itertools.product(*[range(k) for k in spatial]):
            src = tuple((a[j] + b[j] - centre[j]) % n for j in range(d))
            m[:, ia, :, np.ravel_multi_index(src, grid)] += w[(slice(None), slice(None)) + b]
    return m.reshape(c_out * npos, c_in * npos)


def haar_entry_cdf(x: np.ndarray, n: int) -> np.ndarray:
    """CDF of one entry of a Haar O(n) matrix: density ∝ (1-x^2)^((n-3)/2) on [-1, 1]."""
    return stats.beta((n - 1) / 2, (n - 1) / 2).cdf((np.asarray(x) + 1) / 2)


def binomial_profile(k: int, d: int) -> np.ndarray:
    v = np.array([math.comb(k - 1, i) for i in range(k)], float) / 2 ** (k - 1)
    out = v
    for _ in range(d - 1):
        out = np.multiply.outer(out, v)
    return out


# the sizes the issue asks for
SPATIAL = ([(k,) for k in range(1, 8)]
           + [(k, k) for k in range(1, 6)]
           + [(2, 2, 2), (3, 3, 3)])
CHANNELS = [(5, 3), (4, 4)]  # (c_out, c_in): c_in < c_out and c_in = c_out
METHODS = {"delta": delta_orthogonal, "block": block_orthogonal}


def _ids(sp):
    return "x".join(map(str, sp))


# ----------------------------------------------------------------------------- norm preservation


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("channels", CHANNELS, ids=lambda c: f"{c[0]}x{c[1]}")
@pytest.mark.parametrize("spatial", SPATIAL, ids=_ids)
def test_circular_conv_preserves_norm_times_gain(method, channels, spatial):
    gain = 1.7
    c_out, c_in = channels
    w = METHODS[method]((c_out, c_in) + spatial, gain=gain, rng=12345)
    assert w.shape == (c_out, c_in) + spatial and w.dtype == np.float64
    rng = np.random.default_rng(7)
    n = max(spatial) + 2 if len(spatial) < 3 else 4
    for _ in range(3):
        x = rng.standard_normal((c_in,) + (n,) * len(spatial))
        y = circular_conv(w, x)
        assert abs(np.linalg.norm(y) / np.linalg.norm(x) - gain) <= 1e-12 * gain


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("channels", CHANNELS, ids=lambda c: f"{c[0]}x{c[1]}")
@pytest.mark.parametrize("spatial", SPATIAL, ids=_ids)
def test_every_singular_value_equals_gain(method, channels, spatial):
    gain = 0.8
    c_out, c_in = channels
    w = METHODS[method]((c_out, c_in) + spatial, gain=gain, rng=2024)
    n = {1: 6, 2: 4, 3: 3}[len(spatial)]  # n < k (aliased taps) included on purpose
    m = dense_operator(w, n)
    s = np.linalg.svd(m, compute_uv=False)
    assert s.shape == (c_in * n ** len(spatial),)
    np.testing.assert_allclose(s, gain, rtol=0, atol=1e-12)


@pytest.mark.parametrize("spatial", [(3,), (4,), (2, 5), (3, 1), (4, 4), (1, 2, 3), (3, 3, 3)], ids=_ids)
def test_delta_orthogonal_preserves_norm_under_zero_padding(spatial):
    w = delta_orthogonal((5, 3) + spatial, gain=2.5, rng=1)
    x = np.random.default_rng(2).standard_normal((3,) + tuple(s + 2 for s in spatial))
    y = zero_padded_conv(w, x)
    assert abs(np.linalg.norm(y) - 2.5 * np.linalg.norm(x)) <= 1e-12 * np.linalg.norm(y)


@pytest.mark.parametrize("spatial", [(1,), (2,), (4,), (6,), (2, 4), (3, 5), (4, 4), (2, 3, 4)], ids=_ids)
def test_delta_orthogonal_centre_tap(spatial):
    w = delta_orthogonal((6, 4) + spatial, gain=3.0, rng=5)
    centre = tuple((k - 1) // 2 for k in spatial)
    h = w[(slice(None), slice(None)) + centre]
    np.testing.assert_allclose(h.T @ h, 9.0 * np.eye(4), atol=1e-12)
    mask = np.ones(spatial, bool)
    mask[centre] = False
    assert np.all(w[:, :, mask] == 0)


@pytest.mark.parametrize("shape", [(4, 4, 1), (6, 3, 1, 1), (5, 2, 1, 1, 1)])
def test_block_orthogonal_size_one_is_orthogonal_matrix(shape):
    w = block_orthogonal(shape, gain=1.3, rng=3)
    h = w.reshape(shape[0], shape[1])
    np.testing.assert_allclose(h.T @ h, 1.69 * np.eye(shape[1]), atol=1e-12)


def test_block_orthogonal_has_full_support():
    w = block_orthogonal((8, 8, 5, 5), rng=0)
    tap_norms = np.linalg.norm(w, axis=(0, 1))
    assert np.all(tap_norms > 1e-3)


@settings(max_examples=30, deadline=None)
@given(method=st.sampled_from(sorted(METHODS)),
       d=st.integers(1, 3), k=st.integers(1, 4), c_in=st.integers(1, 4), extra=st.integers(0, 3),
       gain=st.floats(0.05, 20.0), seed=st.integers(0, 2 ** 32 - 1))
def test_norm_preservation_property(method, d, k, c_in, extra, gain, seed):
    shape = (c_in + extra, c_in) + (k,) * d
    w = METHODS[method](shape, gain=gain, rng=seed)
    x = np.random.default_rng(seed).standard_normal((c_in,) + (3,) * d)
    y = circular_conv(w, x)
    assert abs(np.linalg.norm(y) / np.linalg.norm(x) - gain) <= 1e-12 * gain


def test_gain_zero_gives_zero_kernel():
    assert not np.any(delta_orthogonal((3, 3, 3), gain=0.0, rng=0))
    assert not np.any(block_orthogonal((3, 3, 3), gain=0.0, rng=0))


# ----------------------------------------------------------------------------- Haar statistics


def test_haar_orthogonal_is_orthogonal():
    for n in (1, 2, 7, 30):
        q = haar_orthogonal(n, rng=n)
        np.testing.assert_allclose(q.T @ q, np.eye(n), atol=1e-13)


@pytest.mark.parametrize("n", [1, 2, 5])
def test_haar_both_determinant_signs_occur(n):
    rng = np.random.default_rng(11)
    dets = np.array([np.linalg.det(haar_orthogonal(n, rng)) for _ in range(400)])
    np.testing.assert_allclose(np.abs(dets), 1.0, atol=1e-12)
    frac = np.mean(dets > 0)
    assert 0 < frac < 1
    # Haar O(n): P(det = +1) = 1/2; 5 binomial standard errors
    assert abs(frac - 0.5) <= 5 * 0.5 / math.sqrt(dets.size)


@pytest.mark.parametrize("n, entry", [(2, (0, 0)), (5, (1, 3)), (9, (8, 0))])
def test_haar_entry_marginal_ks(n, entry):
    rng = np.random.default_rng(100 + n)
    xs = np.array([haar_orthogonal(n, rng)[entry] for _ in range(3000)])
    assert stats.kstest(xs, lambda x: haar_entry_cdf(x, n)).pvalue > 1e-3


def test_ks_has_power_against_qr_without_sign_fix():
    # the same test rejects plain QR (no sign fix), which is not Haar
    rng = np.random.default_rng(0)
    xs = np.array([np.linalg.qr(rng.standard_normal((5, 5)))[0][0, 0] for _ in range(3000)])
    assert stats.kstest(xs, lambda x: haar_entry_cdf(x, 5)).pvalue < 1e-10


def test_orthogonal_kernels_entries_are_haar_marginals():
    # an entry of the c_out x c_in isometry is an entry of a Haar O(c_out) matrix
    rng = np.random.default_rng(42)
    c_out, c_in = 6, 3
    d_entries = [delta_orthogonal((c_out, c_in, 3), rng=rng)[4, 1, 1] for _ in range(2000)]
    b_entries = [block_orthogonal((c_out, c_in, 1, 1), rng=rng)[2, 2, 0, 0] for _ in range(2000)]
    for xs in (d_entries, b_entries):
        assert stats.kstest(xs, lambda x: haar_entry_cdf(x, c_out)).pvalue > 1e-3


def test_delta_orthogonal_determinant_signs_occur():
    rng = np.random.default_rng(9)
    dets = [np.linalg.det(delta_orthogonal((3, 3, 3), rng=rng)[:, :, 1]) for _ in range(100)]
    assert min(dets) < 0 < max(dets)


# ----------------------------------------------------------------------------- variance profiles


@pytest.mark.parametrize("shape", [(4, 4, 5), (6, 3, 4), (3, 3, 3, 3), (2, 2, 3, 3, 3)],
                         ids=lambda s: "x".join(map(str, s)))
def test_block_orthogonal_average_profile_is_binomial(shape):
    rng = np.random.default_rng(2018)
    gain = 1.5
    c_in, spatial = shape[1], shape[2:]
    nsamp = 600
    prof = np.empty((nsamp,) + spatial)
    for s in range(nsamp):
        w = block_orthogonal(shape, gain=gain, rng=rng)
        prof[s] = np.sum(w ** 2, axis=(0, 1)) / (gain ** 2 * c_in)
    np.testing.assert_allclose(prof.sum(axis=tuple(range(1, prof.ndim))), 1.0, atol=1e-12)
    mean = prof.mean(axis=0)
    se = prof.std(axis=0, ddof=1) / math.sqrt(nsamp)
    expected = binomial_profile(spatial[0], len(spatial))
    assert np.all(np.abs(mean - expected) <= 5 * se + 1e-12), (mean, expected, se)
    # and the test can tell binomial from uniform
    assert np.any(np.abs(mean - 1.0 / expected.size) > 5 * se)


@pytest.mark.parametrize("profile, spatial", [
    ("uniform", (3,)), ("delta", (4,)), ("binomial", (5,)), ("gaussian:1.0", (3, 3)),
    ("1,2,1", (3,)), ("custom:1,2,3;4,5,6;7,8,9", (3, 3)), ("binomial", (2, 3, 4)),
])
def test_gaussian_tap_variances(profile, spatial):
    import warnings

    c_out, c_in, weight_var = 48, 40, 1.8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = gaussian((c_out, c_in) + spatial, weight_var, profile=profile, rng=77)
        from meanfield.profiles import parse_profile

        v = parse_profile(profile, kernel_size=spatial, dims=len(spatial))
    nent = c_out * c_in
    for b in itertools.product(*[range(k) for k in spatial]):
        tap = w[(slice(None), slice(None)) + b]
        var = weight_var * v[b] / c_in
        if var == 0:
            assert np.all(tap == 0)
            continue
        # sum of squares / var ~ chi^2(nent): relative sd sqrt(2/nent)
        assert abs(np.mean(tap ** 2) / var - 1) <= 5 * math.sqrt(2 / nent)
        assert abs(tap.mean()) <= 5 * math.sqrt(var / nent)


def test_gaussian_accepts_profile_array_and_non_square():
    v = np.array([[1.0, 2.0, 1.0, 0.0, 0.0], [0.0, 1.0, 1.0, 1.0, 1.0]]) / 8
    w = gaussian((5, 5, 2, 5), 1.0, profile=v, rng=0)
    assert w.shape == (5, 5, 2, 5)
    assert np.all(w[:, :, 1, 0] == 0) and np.all(w[:, :, 0, 3:] == 0)


def test_gaussian_allows_c_in_above_c_out():
    assert gaussian((2, 6, 3), 1.0, rng=0).shape == (2, 6, 3)


def test_gaussian_entries_are_normal():
    w = gaussian((30, 20, 3), 2.0, profile="binomial", rng=5)
    z = w[:, :, 1].ravel() / math.sqrt(2.0 * 0.5 / 20)
    assert stats.kstest(z, "norm").pvalue > 1e-3


# ----------------------------------------------------------------------------- reproducibility


@pytest.mark.parametrize("fn, shape", [
    (delta_orthogonal, (6, 4, 3, 3)), (block_orthogonal, (6, 4, 3, 3)),
    (lambda s, rng: gaussian(s, 1.0, rng=rng), (6, 4, 3, 3)),
])
def test_same_seed_same_kernel_different_seed_different_kernel(fn, shape):
    a = fn(shape, rng=123)
    b = fn(shape, rng=123)
    c = fn(shape, rng=124)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    g1, g2 = np.random.default_rng(5), np.random.default_rng(5)
    np.testing.assert_array_equal(fn(shape, rng=g1), fn(shape, rng=g2))
    # a Generator advances: two draws from it differ
    assert not np.allclose(fn(shape, rng=g1), fn(shape, rng=np.random.default_rng(5)))


def test_rng_none_and_seedsequence():
    assert delta_orthogonal((2, 2, 3)).shape == (2, 2, 3)
    ss = np.random.SeedSequence(3)
    np.testing.assert_array_equal(block_orthogonal((2, 2, 3), rng=ss), block_orthogonal((2, 2, 3), rng=ss))


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("fn", [delta_orthogonal, block_orthogonal])
def test_c_in_above_c_out_is_explained(fn):
    with pytest.raises(ValueError, match=r"c_in = 5 > c_out = 3.*needs c_in <= c_out") as err:
        fn((3, 5, 3))
    assert isinstance(err.value, InvalidArgumentError) and err.value.argument == "shape"


@pytest.mark.parametrize("shape", [(4, 4), (4, 4, 3, 3, 3, 3), (0, 4, 3), (4, 4, 0), (4, 4.5, 3), "abc", 7])
@pytest.mark.parametrize("fn", [delta_orthogonal, block_orthogonal, lambda s: gaussian(s, 1.0)])
def test_bad_shape(fn, shape):
    with pytest.raises(InvalidArgumentError) as err:
        fn(shape)
    assert err.value.argument == "shape"


def test_block_orthogonal_needs_equal_sizes():
    with pytest.raises(InvalidArgumentError, match="same size in every spatial dimension") as err:
        block_orthogonal((4, 4, 3, 5))
    assert err.value.argument == "shape"
    assert delta_orthogonal((4, 4, 3, 5), rng=0).shape == (4, 4, 3, 5)  # fine for delta


@pytest.mark.parametrize("gain", [-1.0, float("nan"), float("inf"), "x"])
def test_bad_gain(gain):
    for fn in (delta_orthogonal, block_orthogonal):
        with pytest.raises(InvalidArgumentError) as err:
            fn((3, 3, 3), gain=gain)
        assert err.value.argument == "gain"


@pytest.mark.parametrize("rng", [-1, 1.5, "seed", True, np.random.RandomState(0)])
def test_bad_rng(rng):
    with pytest.raises(InvalidArgumentError) as err:
        delta_orthogonal((3, 3, 3), rng=rng)
    assert err.value.argument == "rng"


def test_gaussian_bad_arguments():
    with pytest.raises(InvalidArgumentError) as err:
        gaussian((3, 3, 3), -1.0)
    assert err.value.argument == "weight_var"
    for bad in ("nope", "1,2", [1.0, -1.0, 0.0], "gaussian:0"):
        with pytest.raises(InvalidArgumentError) as err:
            gaussian((3, 3, 3), 1.0, profile=bad)
        assert err.value.argument == "profile"


def test_haar_bad_n():
    with pytest.raises(InvalidArgumentError) as err:
        haar_orthogonal(0)
    assert err.value.argument == "n"


def test_kernels_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, meanfield.kernels, meanfield.profiles; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
    assert kernels.__name__ == "meanfield.kernels"
