"""Tests of meanfield.profiles (spatial variance profiles)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats

from meanfield._validation import InvalidArgumentError
from meanfield.profiles import (
    ProfileNormalisedWarning,
    parse_profile,
    tap_offsets,
    variance_profile,
)


def test_tap_offsets():
    assert tap_offsets(1).tolist() == [0]
    assert tap_offsets(2).tolist() == [0, 1]
    assert tap_offsets(3).tolist() == [-1, 0, 1]
    assert tap_offsets(4).tolist() == [-1, 0, 1, 2]
    assert tap_offsets(7).tolist() == [-3, -2, -1, 0, 1, 2, 3]
    for k in range(1, 12):
        assert tap_offsets(k)[(k - 1) // 2] == 0


@pytest.mark.parametrize("bad", [0, -2, 2.5, "3", True])
def test_tap_offsets_bad(bad):
    with pytest.raises(InvalidArgumentError) as err:
        tap_offsets(bad)
    assert err.value.argument == "kernel_size"


@pytest.mark.parametrize("k", range(1, 9))
def test_one_dimensional_kinds(k):
    np.testing.assert_allclose(variance_profile("uniform", k), np.full(k, 1 / k), rtol=1e-15)
    delta = variance_profile("delta", k)
    assert delta[(k - 1) // 2] == 1.0 and delta.sum() == 1.0
    np.testing.assert_allclose(variance_profile("binomial", k), stats.binom.pmf(np.arange(k), k - 1, 0.5),
                               rtol=1e-13)


@pytest.mark.parametrize("K", range(0, 5))
def test_binomial_matches_theory_formula_for_odd_sizes(K):
    # THEORY.md Section 3: v_beta = C(2K, beta + K) / 4^K for beta in -K..K
    v = variance_profile("binomial", 2 * K + 1)
    expected = [math.comb(2 * K, beta + K) / 4 ** K for beta in range(-K, K + 1)]
    np.testing.assert_allclose(v, expected, rtol=1e-15)


def test_gaussian_profile():
    width = 1.3
    for k in (1, 2, 4, 5):
        beta = np.arange(k) - (k - 1) // 2
        raw = np.array([math.exp(-b * b / (2 * width * width)) for b in beta])
        np.testing.assert_allclose(variance_profile(f"gaussian:{width}", k), raw / raw.sum(), rtol=1e-14)
    v2 = variance_profile("gaussian:0.7", 3, dims=2)
    v1 = variance_profile("gaussian:0.7", 3)
    np.testing.assert_allclose(v2, np.outer(v1, v1), rtol=1e-15)
    # very narrow Gaussian tends to delta, very wide to uniform
    np.testing.assert_allclose(variance_profile("gaussian:1e-3", 5), variance_profile("delta", 5), atol=1e-300)
    np.testing.assert_allclose(variance_profile("gaussian:1e6", 5), 0.2, rtol=1e-9)


@pytest.mark.parametrize("kind", ["uniform", "delta", "binomial", "gaussian:2"])
@pytest.mark.parametrize("dims", [1, 2, 3])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_multidimensional_profiles_are_separable(kind, dims, k):
    v = variance_profile(kind, k, dims=dims)
    assert v.shape == (k,) * dims and v.dtype == np.float64
    assert np.all(v >= 0)
    assert abs(v.sum() - 1) <= 1e-14
    v1 = variance_profile(kind, k)
    expected = v1
    for _ in range(dims - 1):
        expected = np.multiply.outer(expected, v1)
    np.testing.assert_allclose(v, expected, rtol=1e-14)
    if kind == "delta":
        centre = ((k - 1) // 2,) * dims
        assert v[centre] == 1.0


def test_non_square_kernel_sizes():
    v = variance_profile("binomial", (3, 5))
    np.testing.assert_allclose(v, np.outer([1, 2, 1], [1, 4, 6, 4, 1]) / 64, rtol=1e-15)
    assert variance_profile("delta", (2, 4))[0, 1] == 1.0
    assert variance_profile("uniform", (3,), dims=2).shape == (3, 3)


def test_default_kernel_size_is_three():
    np.testing.assert_allclose(variance_profile(), [1 / 3] * 3)
    assert variance_profile("binomial", dims=2).shape == (3, 3)


def test_custom_profiles():
    np.testing.assert_allclose(variance_profile("custom", taps="0.25,0.5,0.25"), [0.25, 0.5, 0.25])
    np.testing.assert_allclose(variance_profile("custom", taps=[0.1, 0.9]), [0.1, 0.9])
    np.testing.assert_allclose(variance_profile("custom:0.2, 0.8"), [0.2, 0.8])
    with pytest.warns(ProfileNormalisedWarning, match="taps summed to 16; normalised to sum 1"):
        v = variance_profile("custom", taps="1,2,1;2,4,2;1,2,1")
    np.testing.assert_allclose(v, np.outer([1, 2, 1], [1, 2, 1]) / 16, rtol=1e-15)
    # kernel size inferred, or checked when given
    with pytest.warns(ProfileNormalisedWarning):
        assert variance_profile("custom", kernel_size=5, taps=[1, 1, 1, 1, 1]).shape == (5,)
    # 1-D taps with dims > 1: separable
    with pytest.warns(ProfileNormalisedWarning, match="taps summed to 4;"):
        v = variance_profile("custom", taps="1,2,1", dims=2)
    np.testing.assert_allclose(v, variance_profile("binomial", 3, dims=2), rtol=1e-15)
    # non-square only with an explicit kernel size
    np.testing.assert_allclose(variance_profile("custom", kernel_size=(1, 2), taps=[[0.5, 0.5]]), [[0.5, 0.5]])


def test_normalisation_warning():
    with pytest.warns(ProfileNormalisedWarning, match=r"taps summed to 4; normalised to sum 1"):
        v = variance_profile("custom", taps=[1, 2, 1])
    np.testing.assert_allclose(v, [0.25, 0.5, 0.25])
    assert issubclass(ProfileNormalisedWarning, UserWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        variance_profile("custom", taps=[0.25, 0.5, 0.25])  # sums to 1: no warning
        variance_profile("binomial", 7, dims=3)


def test_parse_profile():
    np.testing.assert_allclose(parse_profile("binomial", 5), [1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16])
    np.testing.assert_allclose(parse_profile("0.25,0.5,0.25"), [0.25, 0.5, 0.25])
    np.testing.assert_allclose(parse_profile(" Uniform "), [1 / 3] * 3)
    np.testing.assert_allclose(parse_profile(".5,.5"), [0.5, 0.5])
    with pytest.warns(ProfileNormalisedWarning):
        assert parse_profile("1,2,1;2,4,2;1,2,1").shape == (3, 3)
    assert parse_profile("delta", (3, 3), dims=2).shape == (3, 3)


def test_fourier_multipliers_of_uniform_profile():
    # THEORY.md Section 3 check values: uniform size 3 on n = 8
    v = variance_profile("uniform", 3)
    beta = tap_offsets(3)
    n = 8
    lam = [abs(np.sum(v * np.exp(2j * np.pi * m * beta / n))) for m in range(n)]
    np.testing.assert_allclose(lam, [1, .80474, .33333, .13807, .33333, .13807, .33333, .80474], atol=6e-6)


@pytest.mark.parametrize("kwargs, argument", [
    (dict(kind="nope"), "variance"),
    (dict(kind=3), "variance"),
    (dict(kind="gaussian"), "variance"),
    (dict(kind="gaussian:0"), "variance"),
    (dict(kind="gaussian:-1"), "variance"),
    (dict(kind="gaussian:inf"), "variance"),
    (dict(kind="gaussian:wide"), "variance"),
    (dict(kind="custom"), "taps"),
    (dict(kind="custom", taps="1,-1,1"), "taps"),
    (dict(kind="custom", taps=[0, 0, 0]), "taps"),
    (dict(kind="custom", taps=[1, float("nan")]), "taps"),
    (dict(kind="custom", taps=[1, float("inf")]), "taps"),
    (dict(kind="custom", taps=[]), "taps"),
    (dict(kind="custom", taps="1,2;3"), "taps"),
    (dict(kind="custom", taps="1,a,3"), "taps"),
    (dict(kind="custom", taps="1,2,3;4,5,6"), "taps"),
    (dict(kind="custom", taps=np.ones((2, 2, 2, 2))), "taps"),
    (dict(kind="custom:1,1", taps=[1, 1]), "taps"),
    (dict(kind="uniform", taps=[1, 1]), "taps"),
    (dict(kind="custom", taps=[1, 2, 1], kernel_size=5), "kernel_size"),
    (dict(kind="custom", taps="1,2,1;2,4,2;1,2,1", dims=3), "dims"),
    (dict(kind="uniform", kernel_size=0), "kernel_size"),
    (dict(kind="uniform", kernel_size=2.5), "kernel_size"),
    (dict(kind="uniform", kernel_size=(3, 3), dims=3), "kernel_size"),
    (dict(kind="uniform", kernel_size=(3, 3, 3, 3)), "kernel_size"),
    (dict(kind="uniform", dims=0), "dims"),
    (dict(kind="uniform", dims=4), "dims"),
    (dict(kind="delta", dims=1.5), "dims"),
])
def test_bad_arguments_name_the_argument(kwargs, argument):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProfileNormalisedWarning)
        with pytest.raises(InvalidArgumentError) as err:
            variance_profile(**kwargs)
    assert err.value.argument == argument
    assert isinstance(err.value, ValueError)


@settings(max_examples=60, deadline=None)
@given(taps=st.lists(st.floats(0.0, 1e3, allow_nan=False), min_size=1, max_size=9).filter(lambda t: sum(t) > 0))
def test_custom_profile_property(taps):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ProfileNormalisedWarning)
        v = variance_profile("custom", taps=taps)
    t = np.asarray(taps, float)
    assert v.shape == t.shape and np.all(v >= 0)
    assert abs(v.sum() - 1) <= 1e-13
    np.testing.assert_allclose(v, t / t.sum(), rtol=1e-14)
