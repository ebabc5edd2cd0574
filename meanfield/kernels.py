"""Orthogonal and Gaussian convolution kernels in NumPy (float64).

A kernel has the PyTorch layout ``(c_out, c_in, *spatial)`` with one, two or
three spatial dimensions: ``W[:, :, beta]`` is the ``c_out x c_in`` matrix
applied to the input at tap ``beta``. The centre tap along a dimension of size
``k`` is ``(k-1)//2`` (:func:`meanfield.profiles.tap_offsets`).

Two orthogonal constructions of Xiao et al. (2018), THEORY.md Section 5:

* :func:`delta_orthogonal` (their Algorithm 2): every tap zero except the
  centre, which holds ``gain`` times a Haar-random ``c_out x c_in`` matrix with
  orthonormal columns. Norm-preserving under any padding.
* :func:`block_orthogonal` (their Algorithm 1): products of random symmetric
  projections give a ``c_out x c_out`` orthogonal convolution with the full
  spatial support, composed with ``gain`` times a Haar isometry
  ``R^c_in -> R^c_out``. Norm-preserving under circular padding; its expected
  variance profile is binomial.

"Norm-preserving" means ``||conv(x)|| = gain * ||x||`` for every input ``x``:
the convolution operator has all its singular values equal to ``gain``
(``gain`` is sigma_w, so ``weight_var = gain**2``; see ``docs/orthogonal.md``).
Both constructions need ``c_in <= c_out``.

:func:`gaussian` is the Gaussian baseline ``N(0, weight_var * v_beta / c_in)``
with any variance profile ``v`` (:mod:`meanfield.profiles`).

The algorithms draw their randomness through a small *sampler* object
(standard normals and fair coin flips), so that :mod:`meanfield.init` runs the
very same code with a ``torch.Generator``. This module never imports torch.
"""

from __future__ import annotations

import itertools
import numbers
from typing import Any, Protocol, Sequence

import numpy as np

from ._validation import InvalidArgumentError, check_int, check_real, check_variance
from .profiles import variance_profile, parse_profile

__all__ = ["haar_orthogonal", "delta_orthogonal", "block_orthogonal", "gaussian"]


# --------------------------------------------------------------------------- randomness


class _Sampler(Protocol):
    """Source of randomness for the kernel algorithms (float64 NumPy output)."""

    def normal(self, shape: tuple[int, ...]) -> np.ndarray:  # pragma: no cover - protocol
        ...

    def coins(self, n: int) -> np.ndarray:  # pragma: no cover - protocol
        ...


class _NumpySampler:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng

    def normal(self, shape: tuple[int, ...]) -> np.ndarray:
        return self.rng.standard_normal(shape)

    def coins(self, n: int) -> np.ndarray:
        return self.rng.random(n) < 0.5


def _as_generator(rng: Any) -> np.random.Generator:
    """``numpy.random.Generator`` from a Generator, a seed, a SeedSequence or None."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, np.random.SeedSequence):
        return np.random.default_rng(rng)
    if isinstance(rng, numbers.Integral) and not isinstance(rng, (bool, np.bool_)):
        if rng < 0:
            raise InvalidArgumentError("rng", f"a seed must be >= 0, got {rng}")
        return np.random.default_rng(int(rng))
    raise InvalidArgumentError(
        "rng", f"must be a numpy.random.Generator, an integer seed or None, got {type(rng).__name__}")


# --------------------------------------------------------------------------- validation


def _check_shape(shape: Any, name: str = "shape") -> tuple[int, int, tuple[int, ...]]:
    """``(c_out, c_in, spatial)`` from a conv weight shape with 1-3 spatial dims."""
    try:
        dims = tuple(shape)
    except TypeError:
        raise InvalidArgumentError(name, f"must be a shape (c_out, c_in, *spatial), got {shape!r}") from None
    if not all(isinstance(s, numbers.Integral) and not isinstance(s, (bool, np.bool_)) for s in dims):
        raise InvalidArgumentError(name, f"must contain integers, got {shape!r}")
    dims = tuple(int(s) for s in dims)
    if not 3 <= len(dims) <= 5:
        raise InvalidArgumentError(
            name, f"must be (c_out, c_in, *spatial) with 1, 2 or 3 spatial dimensions "
                  f"(a Conv1d/2d/3d weight), got {len(dims)} dimensions {dims}")
    if min(dims) < 1:
        raise InvalidArgumentError(name, f"every size must be >= 1, got {dims}")
    return dims[0], dims[1], dims[2:]


def _check_orthogonal_channels(c_out: int, c_in: int, name: str) -> None:
    if c_in > c_out:
        raise InvalidArgumentError(
            name, f"c_in = {c_in} > c_out = {c_out}: an orthogonal (norm-preserving) map "
                  f"R^c_in -> R^c_out needs c_in <= c_out (there are not enough output channels "
                  f"to carry {c_in} orthonormal directions)")


def _check_gain(gain: Any) -> float:
    return check_real("gain", gain, lo=0.0)


# --------------------------------------------------------------------------- algorithms


def _haar_columns(n: int, p: int, sampler: _Sampler) -> np.ndarray:
    """``n x p`` matrix with orthonormal columns, uniform (Haar) on the Stiefel manifold.

    QR of an ``n x p`` standard normal matrix with the signs of ``diag(R)``
    folded into ``Q`` (Mezzadri 2007). For ``p = n`` this is Haar on O(n); for
    ``p < n`` it is distributed as the first ``p`` columns of a Haar ``n x n``
    matrix (left-invariance of the Gaussian), at a fraction of the cost.
    """
    z = sampler.normal((n, p))
    q, r = np.linalg.qr(z)
    d = np.sign(np.diagonal(r))
    d[d == 0] = 1.0
    return q * d


def _projection_pair(c: int, sampler: _Sampler) -> tuple[np.ndarray, np.ndarray]:
    """Random symmetric projection ``P = Q D Q^T`` (``D`` keeps each column w.p. 1/2) and ``I - P``."""
    q = _haar_columns(c, c, sampler)
    keep = sampler.coins(c)
    qa, qb = q[:, keep], q[:, ~keep]
    return qa @ qa.T, qb @ qb.T  # qa qa^T + qb qb^T = Q Q^T = I


def _compose_taps(kernel: np.ndarray, block: np.ndarray) -> np.ndarray:
    """Matrix-polynomial product ``out[beta] = sum_t kernel[beta - t] @ block[t]``.

    Both arrays are in *taps-first* layout ``(*spatial, rows, cols)``.
    """
    d = kernel.ndim - 2
    s = kernel.shape[0]
    b = block.shape[0]
    out = np.zeros((s + b - 1,) * d + (kernel.shape[-2], block.shape[-1]))
    for t in itertools.product(range(b), repeat=d):
        out[tuple(slice(tj, tj + s) for tj in t)] += kernel @ block[t]  # batched BLAS matmul
    return out


def _two_tap_block(c: int, d: int, sampler: _Sampler) -> np.ndarray:
    """The ``2 x ... x 2`` orthogonal kernel of Algorithm 1 (fresh projections), taps first.

    1-D: taps ``[P, I-P]``; 2-D: ``[[P1 P2, P1 (I-P2)], [(I-P1) P2, (I-P1)(I-P2)]]``;
    3-D: ``B[t1, t2, t3] = A1[t1] A2[t2] A3[t3]`` with ``A[0] = P``, ``A[1] = I - P``.
    Its Fourier symbol ``prod_j (P_j + (I - P_j) z_j)`` is unitary on the torus.
    """
    pairs = [_projection_pair(c, sampler) for _ in range(d)]
    block = np.empty((2,) * d + (c, c))
    for t in itertools.product((0, 1), repeat=d):
        m = pairs[0][t[0]]
        for j in range(1, d):
            m = m @ pairs[j][t[j]]
        block[t] = m
    return block


def _to_torch_layout(taps_first: np.ndarray) -> np.ndarray:
    """``(*spatial, c_out, c_in)`` -> contiguous ``(c_out, c_in, *spatial)``."""
    return np.ascontiguousarray(np.moveaxis(taps_first, (-2, -1), (0, 1)))


def _delta_orthogonal(c_out: int, c_in: int, spatial: tuple[int, ...], gain: float,
                      sampler: _Sampler) -> np.ndarray:
    w = np.zeros((c_out, c_in) + spatial)
    centre = tuple((k - 1) // 2 for k in spatial)
    w[(slice(None), slice(None)) + centre] = gain * _haar_columns(c_out, c_in, sampler)
    return w


def _block_orthogonal(c_out: int, c_in: int, spatial: tuple[int, ...], gain: float,
                      sampler: _Sampler) -> np.ndarray:
    d = len(spatial)
    k = spatial[0]
    kernel = np.eye(c_out).reshape((1,) * d + (c_out, c_out))
    for _ in range(k - 1):
        kernel = _compose_taps(kernel, _two_tap_block(c_out, d, sampler))
    h = gain * _haar_columns(c_out, c_in, sampler)
    return _to_torch_layout(kernel @ h)


def _profile_array(profile: Any, spatial: tuple[int, ...]) -> np.ndarray:
    """A variance profile of shape ``spatial`` from a spec string or an array."""
    try:
        if isinstance(profile, str):
            v = parse_profile(profile, kernel_size=spatial, dims=len(spatial))
        else:
            v = variance_profile("custom", kernel_size=spatial, dims=len(spatial), taps=profile)
    except InvalidArgumentError as err:
        raise InvalidArgumentError("profile", err.reason) from None
    return v


def _gaussian(c_out: int, c_in: int, spatial: tuple[int, ...], weight_var: float, profile: Any,
              sampler: _Sampler) -> np.ndarray:
    v = _profile_array(profile, spatial)
    std = np.sqrt(weight_var * v / c_in)
    return sampler.normal((c_out, c_in) + spatial) * std


def _block_orthogonal_spatial(spatial: tuple[int, ...], name: str) -> None:
    if len(set(spatial)) != 1:
        raise InvalidArgumentError(
            name, f"block-orthogonal kernels need the same size in every spatial dimension, "
                  f"got {spatial}")


# --------------------------------------------------------------------------- public API


def haar_orthogonal(n: int, rng: Any = None) -> np.ndarray:
    """A Haar-distributed (uniformly random) ``n x n`` orthogonal matrix.

    Parameters
    ----------
    n : int
        Size, ``>= 1``.
    rng : numpy.random.Generator, int or None
        Random generator or seed.

    Returns
    -------
    numpy.ndarray
        float64 ``(n, n)`` array ``Q`` with ``Q.T @ Q = I``.

    Notes
    -----
    ``Q`` is the QR factor of an ``n x n`` standard normal matrix with the signs
    of ``diag(R)`` folded in. Without that sign fix the distribution depends on
    the QR implementation and is not Haar (e.g. LAPACK's Householder QR makes
    ``Q[0, 0] <= 0``).

    Examples
    --------
    >>> q = haar_orthogonal(4, rng=0)
    >>> bool(np.allclose(q.T @ q, np.eye(4)))
    True

    References
    ----------
    F. Mezzadri, "How to generate random matrices from the classical compact
    groups", Notices of the AMS 54 (2007) 592-604, arXiv:math-ph/0609050.
    """
    n = check_int("n", n, lo=1)
    return _haar_columns(n, n, _NumpySampler(_as_generator(rng)))


def delta_orthogonal(shape: Sequence[int], gain: float = 1.0, rng: Any = None) -> np.ndarray:
    """Delta-Orthogonal convolution kernel (Xiao et al. 2018, Algorithm 2).

    Parameters
    ----------
    shape : tuple of int
        ``(c_out, c_in, *spatial)`` with 1, 2 or 3 spatial dimensions of any
        sizes (even sizes allowed). Requires ``c_in <= c_out``.
    gain : float, default 1.0
        sigma_w: the convolution multiplies every input's norm by ``gain``
        (``weight_var = gain**2``).
    rng : numpy.random.Generator, int or None
        Random generator or seed; the same seed gives the same kernel.

    Returns
    -------
    numpy.ndarray
        float64 array of ``shape``: zero except at the centre tap
        ``((k1-1)//2, (k2-1)//2, ...)``, which is ``gain`` times a Haar-random
        ``c_out x c_in`` matrix with orthonormal columns.

    Raises
    ------
    InvalidArgumentError
        (a ValueError) for a bad ``shape`` (including ``c_in > c_out``), ``gain``
        or ``rng``.

    Examples
    --------
    >>> w = delta_orthogonal((8, 4, 3, 3), gain=2.0, rng=0)
    >>> w.shape
    (8, 4, 3, 3)
    >>> m = w[:, :, 1, 1]
    >>> bool(np.allclose(m.T @ m, 4.0 * np.eye(4)))
    True

    References
    ----------
    L. Xiao, Y. Bahri, J. Sohl-Dickstein, S. S. Schoenholz, J. Pennington,
    "Dynamical Isometry and a Mean Field Theory of CNNs: How to Train
    10,000-Layer Vanilla Convolutional Neural Networks", ICML 2018,
    arXiv:1806.05393.
    """
    c_out, c_in, spatial = _check_shape(shape)
    _check_orthogonal_channels(c_out, c_in, "shape")
    gain = _check_gain(gain)
    return _delta_orthogonal(c_out, c_in, spatial, gain, _NumpySampler(_as_generator(rng)))


def block_orthogonal(shape: Sequence[int], gain: float = 1.0, rng: Any = None) -> np.ndarray:
    """Block-orthogonal convolution kernel with full spatial support (Xiao et al. 2018, Algorithm 1).

    Parameters
    ----------
    shape : tuple of int
        ``(c_out, c_in, k, ..., k)`` with 1, 2 or 3 spatial dimensions of equal
        size ``k >= 1`` (even ``k`` allowed; ``k = 1`` gives ``gain`` times a
        Haar ``c_out x c_in`` isometry). Requires ``c_in <= c_out``.
    gain : float, default 1.0
        sigma_w: under circular padding the convolution multiplies every
        input's norm by ``gain`` (``weight_var = gain**2``).
    rng : numpy.random.Generator, int or None
        Random generator or seed; the same seed gives the same kernel.

    Returns
    -------
    numpy.ndarray
        float64 array of ``shape``.

    Raises
    ------
    InvalidArgumentError
        (a ValueError) for a bad ``shape`` (including ``c_in > c_out`` and
        unequal spatial sizes), ``gain`` or ``rng``.

    Notes
    -----
    A random symmetric projection ``P = Q D Q^T`` (``Q`` Haar on O(c_out),
    ``D`` diagonal keeping each column with probability 1/2) gives the 2-tap
    orthogonal convolution ``[P, I - P]``; in 2-D the ``2 x 2`` kernel
    ``[[P1 P2, P1 (I-P2)], [(I-P1) P2, (I-P1)(I-P2)]]`` and in 3-D the analogous
    product of three. ``k - 1`` of them (fresh projections each time) are
    composed as matrix polynomials, and every tap is multiplied on the right by
    ``H = gain * (c_out x c_in Haar isometry)``. The Fourier symbol
    ``W(z) = prod (P + (I - P) z) H`` is ``gain`` times an isometry for every
    ``|z| = 1``, hence every singular value of the circular convolution is
    ``gain``, for any input size. The expected squared norm of tap ``beta`` is
    ``gain**2 c_in`` times the binomial profile
    (:func:`meanfield.profiles.variance_profile` ``"binomial"``).

    Examples
    --------
    >>> w = block_orthogonal((4, 4, 3), rng=0)
    >>> # the taps' Gram matrices sum to the identity (norm preservation of constants)
    >>> bool(np.allclose(np.einsum("oib,ojb->ij", w, w), np.eye(4)))
    True

    References
    ----------
    L. Xiao et al., ICML 2018, arXiv:1806.05393, Algorithm 1.
    """
    c_out, c_in, spatial = _check_shape(shape)
    _check_orthogonal_channels(c_out, c_in, "shape")
    _block_orthogonal_spatial(spatial, "shape")
    gain = _check_gain(gain)
    return _block_orthogonal(c_out, c_in, spatial, gain, _NumpySampler(_as_generator(rng)))


def gaussian(shape: Sequence[int], weight_var: float, profile: Any = "uniform",
             rng: Any = None) -> np.ndarray:
    """Gaussian convolution kernel with a spatial variance profile.

    Parameters
    ----------
    shape : tuple of int
        ``(c_out, c_in, *spatial)`` with 1, 2 or 3 spatial dimensions.
    weight_var : float
        sigma_w^2 (``>= 0``).
    profile : str or array_like, default "uniform"
        ``"uniform"``, ``"delta"``, ``"binomial"``, ``"gaussian:<width>"``,
        ``"custom:<taps>"``, bare taps (``"1,2,1"``) or an array of the spatial
        shape; see :func:`meanfield.profiles.variance_profile`.
    rng : numpy.random.Generator, int or None
        Random generator or seed.

    Returns
    -------
    numpy.ndarray
        float64 array with independent entries ``W[o, i, beta] ~ N(0,
        weight_var * v_beta / c_in)`` (THEORY.md Section 3).

    Examples
    --------
    >>> w = gaussian((64, 32, 3), weight_var=2.0, profile="delta", rng=0)
    >>> float(np.abs(w[:, :, 0]).max())
    0.0

    References
    ----------
    L. Xiao et al., ICML 2018, arXiv:1806.05393, Section 3.
    """
    c_out, c_in, spatial = _check_shape(shape)
    weight_var = check_variance("weight_var", weight_var)
    return _gaussian(c_out, c_in, spatial, weight_var, profile, _NumpySampler(_as_generator(rng)))
