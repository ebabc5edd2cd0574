"""Tests of meanfield.init (PyTorch initialisers), against torch's own convolutions."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from scipy import stats

torch = pytest.importorskip("torch")
F = torch.nn.functional

from meanfield._validation import InvalidArgumentError  # noqa: E402
from meanfield.init import block_orthogonal_, delta_orthogonal_, gaussian_  # noqa: E402

CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
SPATIAL = ([(k,) for k in range(1, 8)]
           + [(k, k) for k in range(1, 6)]
           + [(2, 2, 2), (3, 3, 3)])
CHANNELS = [(5, 3), (4, 4)]
METHODS = {"delta": delta_orthogonal_, "block": block_orthogonal_}


def _ids(sp):
    return "x".join(map(str, sp))


def gen(seed: int) -> "torch.Generator":
    return torch.Generator().manual_seed(seed)


def circular_conv(w: "torch.Tensor", x: "torch.Tensor") -> "torch.Tensor":
    """torch's cross-correlation with circular padding, output the size of the input."""
    spatial = w.shape[2:]
    pads = []
    for k in reversed(spatial):  # F.pad takes the last dimension first
        left = (k - 1) // 2
        pads += [left, k - 1 - left]
    return CONV[len(spatial)](F.pad(x, pads, mode="circular"), w)


def dense_operator(w: "torch.Tensor", n: int) -> "torch.Tensor":
    """Circular convolution on an ``n^d`` grid as a matrix, column j = conv(e_j)."""
    c_in, d = w.shape[1], w.dim() - 2
    size = c_in * n ** d
    basis = torch.eye(size, dtype=w.dtype).reshape((size, c_in) + (n,) * d)
    return circular_conv(w, basis).reshape(size, -1).T


# ----------------------------------------------------------------------------- norm preservation


@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-12), (torch.float32, 1e-5)], ids=["f64", "f32"])
@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("channels", CHANNELS, ids=lambda c: f"{c[0]}x{c[1]}")
@pytest.mark.parametrize("spatial", SPATIAL, ids=_ids)
def test_torch_circular_conv_preserves_norm_times_gain(spatial, channels, method, dtype, tol):
    gain = 1.7
    c_out, c_in = channels
    w = torch.empty((c_out, c_in) + spatial, dtype=dtype)
    out = METHODS[method](w, gain=gain, generator=gen(0))
    assert out is w and w.dtype == dtype
    n = max(spatial) + 2 if len(spatial) < 3 else 4
    x = torch.randn((4, c_in) + (n,) * len(spatial), generator=gen(1), dtype=dtype)
    y = circular_conv(w, x)
    ratios = y.flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)
    assert torch.all((ratios - gain).abs() <= tol * gain), ratios


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("channels", CHANNELS, ids=lambda c: f"{c[0]}x{c[1]}")
@pytest.mark.parametrize("spatial", SPATIAL, ids=_ids)
def test_torch_every_singular_value_equals_gain(spatial, channels, method):
    gain = 2.0
    c_out, c_in = channels
    w = METHODS[method](torch.empty((c_out, c_in) + spatial, dtype=torch.float64), gain, gen(3))
    n = max(spatial) if len(spatial) < 3 else 3  # torch's circular pad needs n >= k - 1
    s = torch.linalg.svdvals(dense_operator(w, n))
    assert s.numel() == c_in * n ** len(spatial)
    assert torch.all((s - gain).abs() <= 1e-12)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths:UserWarning")
@pytest.mark.parametrize("spatial", [(1,), (2,), (3,), (4,), (2, 2), (3, 4), (2, 3, 4)], ids=_ids)
def test_centre_tap_is_where_torch_same_padding_puts_it(spatial):
    # with padding="same" (zero padding) a Delta-Orthogonal conv is y[:, a] = H x[:, a]
    d = len(spatial)
    conv = {1: torch.nn.Conv1d, 2: torch.nn.Conv2d, 3: torch.nn.Conv3d}[d](
        3, 5, spatial, padding="same", bias=False, dtype=torch.float64)
    delta_orthogonal_(conv.weight, gain=1.5, generator=gen(0))
    centre = tuple((k - 1) // 2 for k in spatial)
    h = conv.weight.detach()[(slice(None), slice(None)) + centre]
    x = torch.randn((2, 3) + (5,) * d, dtype=torch.float64)
    expected = torch.einsum("oi,bi...->bo...", h, x)
    torch.testing.assert_close(conv(x), expected, rtol=0, atol=1e-13)
    torch.testing.assert_close(h.T @ h, 2.25 * torch.eye(3, dtype=torch.float64), rtol=0, atol=1e-13)


def test_block_orthogonal_with_conv_module_circular_same():
    conv = torch.nn.Conv2d(6, 8, 4, padding="same", padding_mode="circular", bias=False, dtype=torch.float64)
    block_orthogonal_(conv.weight, gain=0.5, generator=gen(4))
    x = torch.randn(3, 6, 9, 9, dtype=torch.float64)
    ratios = conv(x).flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)
    assert torch.all((ratios - 0.5).abs() <= 1e-12)


def test_torch_orthogonal_is_not_norm_preserving_for_convolutions():
    # the claim in docs/orthogonal.md: torch.nn.init.orthogonal_ flattens the kernel
    w = torch.empty(8, 8, 3, dtype=torch.float64)
    torch.nn.init.orthogonal_(w, gain=1.0, generator=gen(0))
    s = torch.linalg.svdvals(dense_operator(w, 8))
    assert s.min() < 0.5 and s.max() > 1.3  # measured 0.09 and 1.58 at this seed
    block_orthogonal_(w, gain=1.0, generator=gen(0))
    s = torch.linalg.svdvals(dense_operator(w, 8))
    assert (s.max() - s.min()) < 1e-12


# ----------------------------------------------------------------------------- dtype, device, autograd


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_any_dtype_gets_the_float64_kernel_rounded(method, dtype):
    ref = METHODS[method](torch.empty(6, 4, 3, 3, dtype=torch.float64), 1.3, gen(8))
    w = METHODS[method](torch.empty(6, 4, 3, 3, dtype=dtype), 1.3, gen(8))
    assert w.dtype == dtype
    torch.testing.assert_close(w, ref.to(dtype), rtol=0, atol=0)


def test_parameter_in_place_without_history():
    conv = torch.nn.Conv2d(4, 4, 3)
    w0 = conv.weight
    out = block_orthogonal_(conv.weight, generator=gen(0))
    assert out is w0 and conv.weight is w0
    assert conv.weight.requires_grad and conv.weight.grad_fn is None
    gaussian_(conv.weight, 2.0, "binomial", generator=gen(0))
    assert conv.weight.grad_fn is None
    conv(torch.randn(1, 4, 5, 5)).sum().backward()
    assert conv.weight.grad is not None


def test_non_contiguous_weight():
    base = torch.empty(3, 3, 6, 4, dtype=torch.float64)
    w = base.transpose(0, 1)
    delta_orthogonal_(w, generator=gen(1))
    ref = delta_orthogonal_(torch.empty(3, 3, 6, 4, dtype=torch.float64), generator=gen(1))
    torch.testing.assert_close(w, ref, rtol=0, atol=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("method", sorted(METHODS))
def test_cuda_weight_matches_cpu(method):
    w = METHODS[method](torch.empty(8, 4, 3, 3, device="cuda", dtype=torch.float32), 1.1, gen(5))
    ref = METHODS[method](torch.empty(8, 4, 3, 3, dtype=torch.float32), 1.1, gen(5))
    assert w.device.type == "cuda"
    torch.testing.assert_close(w.cpu(), ref, rtol=0, atol=0)
    x = torch.randn(2, 4, 6, 6, device="cuda")
    y = circular_conv(w, x)
    torch.testing.assert_close(y.norm(), 1.1 * x.norm(), rtol=1e-5, atol=0)
    # a CUDA generator works too
    g = torch.Generator(device="cuda").manual_seed(0)
    METHODS[method](w, 1.0, g)


# ----------------------------------------------------------------------------- randomness


@pytest.mark.parametrize("fn", [delta_orthogonal_, block_orthogonal_,
                                lambda w, generator: gaussian_(w, 1.0, generator=generator)])
def test_same_seed_same_kernel_different_seeds_differ(fn):
    a = fn(torch.empty(6, 4, 3, 3), generator=gen(123))
    b = fn(torch.empty(6, 4, 3, 3), generator=gen(123))
    c = fn(torch.empty(6, 4, 3, 3), generator=gen(124))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)
    g = gen(7)
    assert not torch.allclose(fn(torch.empty(6, 4, 3, 3), generator=g), fn(torch.empty(6, 4, 3, 3), generator=g))
    # no generator: torch's global one, seeded by torch.manual_seed
    torch.manual_seed(99)
    d = fn(torch.empty(6, 4, 3, 3), generator=None)
    torch.manual_seed(99)
    e = fn(torch.empty(6, 4, 3, 3), generator=None)
    torch.testing.assert_close(d, e, rtol=0, atol=0)


def test_haar_determinant_signs_and_entry_marginal():
    g = gen(2018)
    n = 4
    dets, entries = [], []
    for _ in range(2000):
        w = delta_orthogonal_(torch.empty(n, n, 1, dtype=torch.float64), generator=g)[:, :, 0]
        dets.append(torch.linalg.det(w).item())
        entries.append(w[2, 1].item())
    dets = np.array(dets)
    np.testing.assert_allclose(np.abs(dets), 1.0, atol=1e-12)
    frac = np.mean(dets > 0)
    assert 0 < frac < 1 and abs(frac - 0.5) <= 5 * 0.5 / math.sqrt(dets.size)
    # Haar O(n) entry: (x + 1)/2 ~ Beta((n-1)/2, (n-1)/2)
    beta = stats.beta((n - 1) / 2, (n - 1) / 2)
    assert stats.kstest((np.array(entries) + 1) / 2, beta.cdf).pvalue > 1e-3


def test_block_orthogonal_entry_marginal_rectangular():
    g = gen(5)
    c_out, c_in = 7, 2
    xs = [block_orthogonal_(torch.empty(c_out, c_in, 1, 1, dtype=torch.float64), generator=g)[6, 1, 0, 0].item()
          for _ in range(2000)]
    beta = stats.beta((c_out - 1) / 2, (c_out - 1) / 2)
    assert stats.kstest((np.array(xs) + 1) / 2, beta.cdf).pvalue > 1e-3


@pytest.mark.parametrize("shape", [(4, 4, 4), (5, 3, 3, 3)], ids=lambda s: "x".join(map(str, s)))
def test_block_orthogonal_average_profile_is_binomial(shape):
    g = gen(11)
    c_in, spatial = shape[1], shape[2:]
    nsamp = 500
    prof = torch.stack([block_orthogonal_(torch.empty(shape, dtype=torch.float64), 2.0, g).pow(2).sum((0, 1))
                        for _ in range(nsamp)]).numpy() / (4.0 * c_in)
    mean = prof.mean(0)
    se = prof.std(0, ddof=1) / math.sqrt(nsamp)
    v = np.array([math.comb(spatial[0] - 1, i) for i in range(spatial[0])], float) / 2 ** (spatial[0] - 1)
    expected = v if len(spatial) == 1 else np.outer(v, v)
    assert np.all(np.abs(mean - expected) <= 5 * se + 1e-12), (mean, expected, se)


@pytest.mark.parametrize("profile", ["uniform", "delta", "binomial", "gaussian:0.8", "1,3,1;3,9,3;1,3,1"])
def test_gaussian_tap_variances(profile):
    c_out, c_in, weight_var = 64, 32, 1.76
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        w = gaussian_(torch.empty(c_out, c_in, 3, 3, dtype=torch.float64), weight_var, profile, gen(1)).numpy()
    expected = {
        "uniform": np.full((3, 3), 1 / 9),
        "delta": np.pad([[1.0]], 1),
        "binomial": np.outer([1, 2, 1], [1, 2, 1]) / 16,
        "gaussian:0.8": np.outer(*[np.exp(-np.array([1, 0, 1]) ** 2 / (2 * 0.64))] * 2),
        "1,3,1;3,9,3;1,3,1": np.outer([1, 3, 1], [1, 3, 1]) / 25.0,
    }[profile]
    expected = expected / expected.sum()
    nent = c_out * c_in
    for b in itertools.product(range(3), range(3)):
        var = weight_var * expected[b] / c_in
        tap = w[:, :, b[0], b[1]]
        if var == 0:
            assert np.all(tap == 0)
        else:
            assert abs(np.mean(tap ** 2) / var - 1) <= 5 * math.sqrt(2 / nent)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("fn", [delta_orthogonal_, block_orthogonal_])
def test_c_in_above_c_out_is_a_value_error_saying_why(fn):
    with pytest.raises(ValueError, match=r"c_in = 8 > c_out = 4.*needs c_in <= c_out") as err:
        fn(torch.empty(4, 8, 3))
    assert err.value.argument == "weight"


def test_bad_weights_and_arguments():
    for bad in (np.zeros((3, 3, 3)), torch.zeros(3, 3, 3, dtype=torch.int64), torch.zeros(3, 3),
                torch.zeros(3, 3, 1, 1, 1, 1), torch.zeros(0, 3, 3)):
        for fn in (delta_orthogonal_, block_orthogonal_, lambda w: gaussian_(w, 1.0)):
            with pytest.raises(InvalidArgumentError) as err:
                fn(bad)
            assert err.value.argument == "weight"
    with pytest.raises(InvalidArgumentError, match="same size in every spatial dimension"):
        block_orthogonal_(torch.empty(3, 3, 3, 5))
    with pytest.raises(InvalidArgumentError) as err:
        delta_orthogonal_(torch.empty(3, 3, 3), gain=float("nan"))
    assert err.value.argument == "gain"
    with pytest.raises(InvalidArgumentError) as err:
        block_orthogonal_(torch.empty(3, 3, 3), generator=np.random.default_rng(0))
    assert err.value.argument == "generator"
    with pytest.raises(InvalidArgumentError) as err:
        gaussian_(torch.empty(3, 3, 3), -0.5)
    assert err.value.argument == "weight_var"
    with pytest.raises(InvalidArgumentError) as err:
        gaussian_(torch.empty(3, 3, 3), 1.0, profile="sideways")
    assert err.value.argument == "profile"
