"""PyTorch initialisers for convolution weights: Delta-Orthogonal, block-orthogonal, Gaussian.

In the style of :mod:`torch.nn.init`: each function fills a ``Conv1d``/``Conv2d``/
``Conv3d`` weight of shape ``(c_out, c_in, *spatial)`` in place (under
``torch.no_grad()``) and returns it. The kernel is generated in float64 on the
CPU by the same algorithms as :mod:`meanfield.kernels`, drawing its random
numbers from a ``torch.Generator`` (or torch's global generator), and then
copied into the weight, whatever its dtype and device. The same generator seed
gives the same kernel.

``gain`` is sigma_w: with circular padding (any padding for Delta-Orthogonal)
the convolution multiplies the norm of every input by ``gain``; the matching
Gaussian ``weight_var`` is ``gain**2``. This is the convention of
``tf.keras.initializers.Orthogonal`` (TF >= 1.13) and JAX's
``jax.nn.initializers.orthogonal``/``delta_orthogonal``. ``torch.nn.init.orthogonal_``
flattens the kernel to ``c_out x (c_in k^d)`` and is *not* norm-preserving for a
convolution. See ``docs/orthogonal.md``.

The centre tap is ``(k-1)//2`` along every dimension, which is where
``torch.nn.Conv*d(..., padding="same")`` aligns the kernel with the output
position (PyTorch computes a cross-correlation; for norms the direction does
not matter).

This is the only module of :mod:`meanfield` that imports torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from . import kernels as _k
from ._validation import InvalidArgumentError, check_variance

__all__ = ["delta_orthogonal_", "block_orthogonal_", "gaussian_"]


class _TorchSampler:
    """Float64 NumPy random numbers drawn from a ``torch.Generator`` (or the global one)."""

    def __init__(self, generator: torch.Generator | None):
        if generator is not None and not isinstance(generator, torch.Generator):
            raise InvalidArgumentError(
                "generator", f"must be a torch.Generator or None, got {type(generator).__name__}")
        self.generator = generator
        self.device = generator.device if generator is not None else torch.device("cpu")

    def normal(self, shape: tuple[int, ...]) -> np.ndarray:
        z = torch.randn(shape, generator=self.generator, dtype=torch.float64, device=self.device)
        return z.cpu().numpy()

    def coins(self, n: int) -> np.ndarray:
        u = torch.rand(n, generator=self.generator, dtype=torch.float64, device=self.device)
        return (u < 0.5).cpu().numpy()


def _check_weight(weight: Any) -> tuple[int, int, tuple[int, ...]]:
    if not isinstance(weight, torch.Tensor):
        raise InvalidArgumentError("weight", f"must be a torch.Tensor, got {type(weight).__name__}")
    if not weight.is_floating_point():
        raise InvalidArgumentError("weight", f"must have a real floating dtype, got {weight.dtype}")
    return _k._check_shape(tuple(weight.shape), "weight")


def _fill(weight: torch.Tensor, values: np.ndarray) -> torch.Tensor:
    with torch.no_grad():
        weight.copy_(torch.from_numpy(values))
    return weight


def delta_orthogonal_(weight: torch.Tensor, gain: float = 1.0,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill a convolution weight with a Delta-Orthogonal kernel, in place.

    Parameters
    ----------
    weight : torch.Tensor
        ``(c_out, c_in, *spatial)`` with 1, 2 or 3 spatial dimensions (any
        sizes, even ones included), ``c_in <= c_out``; any floating dtype and
        device.
    gain : float, default 1.0
        sigma_w: the convolution multiplies every input's norm by ``gain``
        (under any padding).
    generator : torch.Generator, optional
        Source of randomness; torch's global generator when omitted.

    Returns
    -------
    torch.Tensor
        ``weight``, now zero except at the centre tap ``(k-1)//2`` of each
        spatial dimension, which holds ``gain`` times a Haar-random
        ``c_out x c_in`` matrix with orthonormal columns.

    Raises
    ------
    InvalidArgumentError
        (a ValueError) for a weight of the wrong kind or shape, ``c_in > c_out``,
        or a bad ``gain``/``generator``.

    Examples
    --------
    >>> import torch
    >>> from meanfield.init import delta_orthogonal_
    >>> conv = torch.nn.Conv2d(16, 32, 3, padding="same", bias=False)
    >>> _ = delta_orthogonal_(conv.weight, gain=1.0, generator=torch.Generator().manual_seed(0))
    >>> x = torch.randn(2, 16, 8, 8)
    >>> bool(torch.allclose(conv(x).norm(), x.norm(), rtol=1e-5))
    True

    References
    ----------
    L. Xiao, Y. Bahri, J. Sohl-Dickstein, S. S. Schoenholz, J. Pennington,
    "Dynamical Isometry and a Mean Field Theory of CNNs", ICML 2018,
    arXiv:1806.05393, Algorithm 2.
    """
    c_out, c_in, spatial = _check_weight(weight)
    _k._check_orthogonal_channels(c_out, c_in, "weight")
    gain = _k._check_gain(gain)
    return _fill(weight, _k._delta_orthogonal(c_out, c_in, spatial, gain, _TorchSampler(generator)))


def block_orthogonal_(weight: torch.Tensor, gain: float = 1.0,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill a convolution weight with a block-orthogonal kernel (Algorithm 1), in place.

    Parameters
    ----------
    weight : torch.Tensor
        ``(c_out, c_in, k, ..., k)`` with 1, 2 or 3 spatial dimensions of equal
        size ``k`` (even ``k`` allowed; ``k = 1`` is an orthogonal matrix),
        ``c_in <= c_out``; any floating dtype and device.
    gain : float, default 1.0
        sigma_w: with circular padding the convolution multiplies every input's
        norm by ``gain``.
    generator : torch.Generator, optional
        Source of randomness; torch's global generator when omitted.

    Returns
    -------
    torch.Tensor
        ``weight``. The kernel's expected variance profile is binomial.

    Raises
    ------
    InvalidArgumentError
        (a ValueError) for a weight of the wrong kind or shape, unequal spatial
        sizes, ``c_in > c_out``, or a bad ``gain``/``generator``.

    Examples
    --------
    >>> import torch
    >>> import torch.nn.functional as F
    >>> from meanfield.init import block_orthogonal_
    >>> conv = torch.nn.Conv1d(8, 8, 5, padding="same", padding_mode="circular", bias=False)
    >>> _ = block_orthogonal_(conv.weight, gain=2.0, generator=torch.Generator().manual_seed(0))
    >>> x = torch.randn(1, 8, 16)
    >>> bool(torch.allclose(conv(x).norm(), 2.0 * x.norm(), rtol=1e-5))
    True

    References
    ----------
    L. Xiao et al., ICML 2018, arXiv:1806.05393, Algorithm 1.
    """
    c_out, c_in, spatial = _check_weight(weight)
    _k._check_orthogonal_channels(c_out, c_in, "weight")
    _k._block_orthogonal_spatial(spatial, "weight")
    gain = _k._check_gain(gain)
    return _fill(weight, _k._block_orthogonal(c_out, c_in, spatial, gain, _TorchSampler(generator)))


def gaussian_(weight: torch.Tensor, weight_var: float, profile: Any = "uniform",
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Fill a convolution weight with Gaussian entries of a given spatial variance profile, in place.

    Parameters
    ----------
    weight : torch.Tensor
        ``(c_out, c_in, *spatial)`` with 1, 2 or 3 spatial dimensions; any
        floating dtype and device.
    weight_var : float
        sigma_w^2 (``>= 0``).
    profile : str or array_like, default "uniform"
        ``"uniform"``, ``"delta"``, ``"binomial"``, ``"gaussian:<width>"``,
        ``"custom:<taps>"``, bare taps (``"1,2,1"``) or an array of the spatial
        shape (:func:`meanfield.profiles.variance_profile`).
    generator : torch.Generator, optional
        Source of randomness; torch's global generator when omitted.

    Returns
    -------
    torch.Tensor
        ``weight`` with independent entries ``N(0, weight_var * v_beta / c_in)``.

    Examples
    --------
    >>> import torch
    >>> from meanfield.init import gaussian_
    >>> w = gaussian_(torch.empty(64, 32, 3, 3), weight_var=2.0, profile="binomial")
    >>> tuple(w.shape)
    (64, 32, 3, 3)

    References
    ----------
    L. Xiao et al., ICML 2018, arXiv:1806.05393, Section 3.
    """
    c_out, c_in, spatial = _check_weight(weight)
    weight_var = check_variance("weight_var", weight_var)
    return _fill(weight, _k._gaussian(c_out, c_in, spatial, weight_var, profile, _TorchSampler(generator)))
