"""Empirical checks of the mean-field theory on random finite-width networks (PyTorch).

A mean-field prediction is only worth what it predicts. This module draws
random vanilla CNNs (1-D or 2-D, circular padding, stride 1) with Gaussian,
Delta-Orthogonal or block-orthogonal kernels (:mod:`meanfield.init`), pushes
inputs through them on a CPU or a CUDA device, and compares the measured
per-layer statistics with the infinite-width theory; it also measures the
singular-value spectrum of random networks' input-output Jacobians.

Forward runs (:func:`run_cnn`)
------------------------------
Each layer computes ``h^{l+1} = conv(φ(h^l)) + b`` with circular padding, the
weights of layer ``l`` of network ``s`` drawn, used and discarded on the fly from
their own ``torch.Generator`` (seeded by ``SeedSequence([seed + s, 1, l])``, so
that layers can be drawn ahead in parallel and any layer can be reproduced):
nothing but the current layer's activations is kept, no autograd graph is built, per-layer
statistics are written into preallocated device tensors and copied to the host
once at the end, so the cost is linear in depth and the memory independent of
it (10,000 layers of 256 channels on a 32-wide 1-D input need a few MiB).

Inputs (a *batch* that every network sees):

- the **main pair** ``h⁰_a, h⁰_b``: entries ``N(0, q₀)`` independent over
  channels and positions, ``corr(h⁰_a, h⁰_b) = c₀`` at the same position. Per
  layer we measure ``q^l`` (mean of ``h²`` over channels, positions and both
  inputs), ``c^l = ⟨h_a h_b⟩ / sqrt(⟨h_a²⟩⟨h_b²⟩)`` and the within-input spatial
  covariance profile ``K^l(d) = ⟨h(α) h(α+d)⟩``. For these translation-invariant
  inputs the theory is the fully-connected maps iterated from ``(q₀, c₀)``
  (THEORY.md §3: 𝒜 acts as the identity on translation-invariant covariances);
  ``K^l(d ≠ 0)`` follows the covariance map from 0.
- the **mode probes** (when the fixed point ``q*`` exists and is positive): a
  reference pair ``R_a, R_b`` exactly at the fixed point ``Σ*`` (variance ``q*``,
  correlation ``c*``), a *variance probe* ``V(α) = sqrt(1 + ε g(α)) R_a(α)``
  and a *correlation probe* ``B(α)`` with variance ``q*`` and
  ``corr(R_a, B) = c* − ε (1 + g(α)) / 2``, built from the same Gaussian numbers
  as ``R_b`` (common random numbers). ``g`` is a fixed real pattern with every
  Fourier mode at unit magnitude (random phases from seed 20180606),
  normalised to ``max|g| = 1``. The per-position differences
  ``δq^l(α) = ⟨V²⟩ − ⟨R_a²⟩`` and
  ``δq₁₂^l(α) = −½⟨(B − R_a)²⟩ + ½⟨(R_b − R_a)²⟩`` (which is
  ``⟨R_a B⟩ − ⟨R_a R_b⟩`` when ``⟨B²⟩ = ⟨R_b²⟩ = q*``, as in the infinite-width
  limit, and has noise proportional to ``ε`` even when ``c* = 1``) are the
  perturbations ``Σ^l − Σ*`` of a diagonal and of the cross-input diagonal;
  their spatial Fourier coefficients ``P^l(m)`` decay, to first order in ``ε``,
  by ``χ_q λ_m`` and ``χ_c λ_m`` per layer (THEORY.md §3). Common random
  numbers cancel most of the finite-width noise in the differences, whose
  remaining noise is *relative* (``O(1/sqrt(channels · positions))``).

Theory and fits (:func:`validate`)
----------------------------------
The theory curves are the FC maps of :mod:`meanfield.core` iterated layer by
layer; the probes' exact infinite-width evolution is iterated position by
position (the diagonal and cross-input diagonal of Σ form closed recursions:
``q^{l+1}(α) = Σ_β v_β qmap(q^l(α+β))``, and likewise for ``q₁₂`` at fixed
variance ``q*``). The per-layer factor of mode ``m`` is fitted per network,
``ρ = Σ_l conj(Z^l) P^{l+1} / Σ_l conj(Z^l) P^l`` with the exact theory curve
``Z`` as instrument (noise in ``P^l`` then does not bias ``ρ`` towards 0), over
the layers where the theory amplitude stays above a tenth of its initial value
(at most 20 layers; at least one), and compared with ``|χ λ_m|`` and with the
same fit of the exact (nonlinear, infinite-width) probe curve.

Statistics. Every comparison is a z-score: (empirical mean over the ``S``
networks − theory) / expected error, the expected error being the across-network
standard error (``S − 1`` degrees of freedom) combined in quadrature with a
floating-point rounding allowance ``u · sqrt(l + 1) · scale`` (``u`` the unit
roundoff of the dtype; for ``c`` the scale is ``sqrt(2|1 − c|) + u sqrt(l+1)``,
because rounding perturbs ``h_a − h_b``). The pass threshold is the Student-t
quantile ``t_{S−1}(1 − α/(2K))`` for a family-wise false-alarm rate
``α = 0.01`` over the ``K`` comparisons of a family (Bonferroni; conservative,
since consecutive layers are strongly correlated). The finite-width mean-field
bias is ``O(1/channels)`` while the standard error is
``O(1/sqrt(channels · positions · S))``; it is not modelled: with 32 networks of
64 and 128 channels no layer deviated by more than 2.7 standard errors and the
deviations showed no trend with ``1/channels`` (docs/validation.md).

Jacobian spectra (:func:`jacobian_spectrum`)
--------------------------------------------
The input-output Jacobian ``J = ∂h^L/∂h⁰ = Π_l W_l D_l`` of a fully-connected
or convolutional network, inputs at ``q*``. Small networks (``N ≤ 2048``
units per layer) form ``J`` exactly (forward-mode on the identity) and take its
singular values; large ones use stochastic Lanczos quadrature on ``JᵀJ``, whose
matrix-vector products are one JVP and one VJP. Theory (derived from Pennington
et al. 2017/2018 by free multiplicative convolution, THEORY.md §4): mean
``m₁ = Π_l σ_w² μ₁(q^l)`` (``χ₁^L`` at the fixed point) and variance
``σ² = m₁² Σ_l (μ₂/μ₁² − 1 − s₁)`` (``L(μ₂/μ₁² − 1 − s₁)`` at criticality),
``s₁ = −1`` for Gaussian and 0 for orthogonal weights. The full theoretical
density is not computed here, only its first two moments.

References
----------
L. Xiao, Y. Bahri, J. Sohl-Dickstein, S. S. Schoenholz, J. Pennington,
"Dynamical Isometry and a Mean Field Theory of CNNs: How to Train 10,000-Layer
Vanilla Convolutional Neural Networks", ICML 2018, arXiv:1806.05393.
S. S. Schoenholz, J. Gilmer, S. Ganguli, J. Sohl-Dickstein, "Deep Information
Propagation", ICLR 2017, arXiv:1611.01232.
J. Pennington, S. S. Schoenholz, S. Ganguli, "Resurrecting the sigmoid in deep
learning through dynamical isometry: theory and practice", NeurIPS 2017,
arXiv:1711.04735.
J. Pennington, S. S. Schoenholz, S. Ganguli, "The emergence of spectral
universality in deep networks", AISTATS 2018, arXiv:1802.09979.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ._validation import InvalidArgumentError, check_int, check_real, check_variance

__all__ = [
    "INITS",
    "SPECTRUM_INITS",
    "TorchMissingError",
    "resolve_device",
    "torch_activation",
    "probe_pattern",
    "theory_curves",
    "probe_theory",
    "run_cnn",
    "validate",
    "Validation",
    "jacobian_spectrum",
    "Spectrum",
    "spectrum_theory",
    "z_threshold",
    "check_run_arguments",
    "check_spectrum_arguments",
    "draw_layer",
]

#: Kernel initialisers of :func:`run_cnn` (``gaussian`` takes a variance profile).
INITS = ("gaussian", "delta-orthogonal", "block-orthogonal")

#: Initialisers of :func:`jacobian_spectrum` (``orthogonal`` is Delta-Orthogonal for a convolution).
SPECTRUM_INITS = ("gaussian", "orthogonal", "delta-orthogonal", "block-orthogonal")

#: Family-wise false-alarm rate of the pass/fail thresholds.
FAMILY_ALPHA = 0.01

#: Seed of the fixed random phases of the probe pattern ``g``.
PATTERN_SEED = 20180606

#: Default relative amplitude ``ε`` of the mode probes.
DEFAULT_PROBE_AMPLITUDE = 0.05

#: A mode's fit window ends where the theory amplitude drops below this fraction of its start ...
WINDOW_FRACTION = 0.1
#: ... or after this many layers.
WINDOW_MAX = 20

#: Above this many units per layer ``jacobian_spectrum(method="auto")`` switches from exact to Lanczos.
EXACT_MAX_UNITS = 2048


class TorchMissingError(ImportError):
    """PyTorch is not installed; ``pip install 'meanfield[torch]'``."""



def _check_dims12(dims: Any) -> int:
    """Spatial dimensionality of a run: 1 or 2."""
    d = check_int("dims", dims)
    if d not in (1, 2):
        raise InvalidArgumentError("dims", f"must be 1 or 2, got {d}")
    return d

def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - exercised only without torch
        raise TorchMissingError("this needs PyTorch; install it with: pip install 'meanfield[torch]'") from None
    return torch


# --------------------------------------------------------------------------- devices and dtypes


def resolve_device(device: Any = "auto"):
    """Turn ``"auto" | "cpu" | "cuda" | "cuda:N"`` (or a ``torch.device``) into a ``torch.device``.

    ``"auto"`` picks CUDA when a device is present, the CPU otherwise.

    Raises
    ------
    InvalidArgumentError
        (``device``) for an unknown name, or CUDA requested when none is present.

    Examples
    --------
    >>> resolve_device("cpu")   # doctest: +SKIP
    device(type='cpu')
    """
    torch = _torch()
    if isinstance(device, torch.device):
        name = str(device)
    elif device is None:
        name = "auto"
    elif isinstance(device, str):
        name = device.strip().lower()
    else:
        raise InvalidArgumentError("device", f"must be auto, cpu or cuda, got {device!r}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise InvalidArgumentError("device", "CUDA was requested but no CUDA device is available "
                                                 "(use --device cpu or auto)")
        try:
            dev = torch.device(name)
        except RuntimeError:
            raise InvalidArgumentError("device", f"cannot parse {name!r}") from None
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise InvalidArgumentError("device", f"{name} does not exist ({torch.cuda.device_count()} CUDA device(s))")
        return dev
    raise InvalidArgumentError("device", f"must be auto, cpu or cuda, got {device!r}")


def _resolve_dtype(dtype: Any):
    torch = _torch()
    if isinstance(dtype, torch.dtype):
        if dtype in (torch.float32, torch.float64):
            return dtype
        raise InvalidArgumentError("dtype", f"must be float32 or float64, got {dtype}")
    name = str(dtype).strip().lower()
    table = {"float32": torch.float32, "float": torch.float32, "fp32": torch.float32, "single": torch.float32,
             "float64": torch.float64, "double": torch.float64, "fp64": torch.float64}
    if name not in table:
        raise InvalidArgumentError("dtype", f"must be float32 or float64, got {dtype!r}")
    return table[name]


class _NoTF32:
    """Disable TF32 convolutions/matmuls on CUDA for the duration of a run (they carry a 10-bit mantissa)."""

    def __enter__(self):
        torch = _torch()
        self.saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        return self

    def __exit__(self, *exc):
        torch = _torch()
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = self.saved
        return False


class _BlasThreads:
    """Limit NumPy's OpenBLAS to ``n`` threads while kernels are drawn (restored afterwards).

    NumPy's QR/random numbers and torch's convolutions otherwise run two thread
    pools on the same cores, and a busy-waiting OpenBLAS pool can slow a 512×512
    QR down tenfold. A no-op when NumPy's BLAS is not OpenBLAS.
    """

    _fns: Any = None

    @classmethod
    def _find(cls):
        if cls._fns is not None:
            return cls._fns
        cls._fns = ()
        try:
            import ctypes

            with open("/proc/self/maps") as fh:
                libs = sorted({ln.split()[-1] for ln in fh if "openblas" in ln.lower() and ".so" in ln})
            for path in libs:
                lib = ctypes.CDLL(path)
                for suffix in ("64_", "_64_", ""):
                    for prefix in ("scipy_openblas", "openblas"):
                        get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                        put = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                        if get is not None and put is not None:
                            get.restype = ctypes.c_int
                            put.argtypes = [ctypes.c_int]
                            cls._fns = (get, put)
                            return cls._fns
        except (OSError, AttributeError):  # pragma: no cover - platform dependent
            cls._fns = ()
        return cls._fns

    def __init__(self, n: int | None):
        self.n = n
        self.saved = None

    def __enter__(self):
        fns = self._find() if self.n is not None else ()
        if fns:
            self.saved = int(fns[0]())
            fns[1](int(self.n))
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            self._find()[1](self.saved)
        return False


# --------------------------------------------------------------------------- activations in torch


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def torch_activation(act: Any) -> tuple[Callable, Callable, str]:
    """``(φ, φ', name)`` as torch functions for an activation of the registry.

    Every named activation of :func:`meanfield.list_activations` runs natively in
    torch on any device. User expressions (``"x*tanh(x)"``) are evaluated through
    the package's NumPy kernels on the host (correct but slow).

    Examples
    --------
    >>> import torch
    >>> phi, dphi, name = torch_activation("tanh")   # doctest: +SKIP
    >>> float(dphi(torch.zeros(1)))                   # doctest: +SKIP
    1.0
    """
    torch = _torch()
    from .activations import get_activation

    a = get_activation(act)
    base = a.name.split(":", 1)[0] if a.expression is None else None
    p = a.param
    F = torch.nn.functional
    sq2 = math.sqrt(2.0)
    inv_sqrt_2pi = 1.0 / math.sqrt(2.0 * math.pi)

    table: dict[str, tuple[Callable, Callable]] = {
        "tanh": (torch.tanh, lambda x: 1.0 - torch.tanh(x) ** 2),
        "erf": (torch.erf, lambda x: (2.0 / math.sqrt(math.pi)) * torch.exp(-x * x)),
        "relu": (torch.relu, lambda x: (x > 0).to(x.dtype)),
        "leaky_relu": (lambda x: F.leaky_relu(x, p),
                       lambda x: torch.where(x > 0, torch.ones_like(x), torch.full_like(x, p))),
        "linear": (lambda x: x, lambda x: torch.ones_like(x)),
        "hard_tanh": (lambda x: torch.clamp(x, -1.0, 1.0), lambda x: (x.abs() < 1).to(x.dtype)),
        "sigmoid": (torch.sigmoid, lambda x: torch.sigmoid(x) * (1.0 - torch.sigmoid(x))),
        "softplus": (F.softplus, torch.sigmoid),
        "elu": (lambda x: torch.where(x > 0, x, p * torch.expm1(torch.clamp(x, max=0.0))),
                lambda x: torch.where(x > 0, torch.ones_like(x), p * torch.exp(torch.clamp(x, max=0.0)))),
        "selu": (lambda x: _SELU_SCALE * torch.where(x > 0, x, _SELU_ALPHA * torch.expm1(torch.clamp(x, max=0.0))),
                 lambda x: _SELU_SCALE * torch.where(x > 0, torch.ones_like(x),
                                                     _SELU_ALPHA * torch.exp(torch.clamp(x, max=0.0)))),
        "gelu": (lambda x: x * 0.5 * (1.0 + torch.erf(x / sq2)),
                 lambda x: 0.5 * (1.0 + torch.erf(x / sq2)) + x * inv_sqrt_2pi * torch.exp(-0.5 * x * x)),
        "swish": (lambda x: x * torch.sigmoid(x),
                  lambda x: torch.sigmoid(x) * (1.0 + x * (1.0 - torch.sigmoid(x)))),
        "sin": (torch.sin, torch.cos),
    }
    if base in table:
        phi, dphi = table[base]
        return phi, dphi, a.name

    def _host(fn):
        def f(x):
            y = fn(x.detach().cpu().double().numpy())
            return torch.as_tensor(y, dtype=x.dtype, device=x.device)
        return f

    return _host(a.__call__), _host(a.derivative), a.name


# --------------------------------------------------------------------------- inputs, profiles, theory


def probe_pattern(spatial: int, dims: int = 1) -> np.ndarray:
    """The fixed real pattern ``g`` of the mode probes: every Fourier mode at equal magnitude.

    Unit-magnitude Fourier coefficients with random phases (seed
    :data:`PATTERN_SEED`; Hermitian symmetric, real at the self-conjugate modes),
    inverse-transformed and scaled to ``max|g| = 1``.

    Returns
    -------
    numpy.ndarray
        float64, shape ``(n,)`` or ``(n, n)``.
    """
    n = check_int("spatial", spatial, lo=2)
    d = check_int("dims", dims, lo=1, hi=2)
    rng = np.random.default_rng(PATTERN_SEED)
    shape = (n,) * d
    ph = rng.uniform(0.0, 2.0 * np.pi, size=shape)
    coef = np.exp(1j * ph)
    # Hermitian symmetrisation: coef[-m] = conj(coef[m]); self-conjugate modes get a real sign.
    idx = np.indices(shape).reshape(d, -1).T
    for m in idx:
        mt = tuple(m)
        mc = tuple((-m) % n)
        if mt == mc:
            coef[mt] = 1.0 if np.cos(ph[mt]) >= 0 else -1.0
        elif mt < mc:
            coef[mc] = np.conj(coef[mt])
    g = np.fft.ifftn(coef).real
    return g / np.max(np.abs(g))


def _canonical_modes(n: int, d: int) -> np.ndarray:
    """One representative ``m`` of each pair ``{m, −m mod n}`` (the coefficients of a real signal), sorted."""
    out = []
    for m in np.indices((n,) * d).reshape(d, -1).T:
        mc = (-m) % n
        if tuple(m) <= tuple(mc):
            out.append(tuple(int(x) for x in m))
    freq = np.fft.fftfreq(n)
    out.sort(key=lambda m: (round(float(np.sqrt(np.sum(freq[list(m)] ** 2))), 12), m))
    return np.array(out, dtype=np.int64).reshape(-1, d)


def _shift_sum(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``y(α) = Σ_β v_β x(α + β)`` on the periodic grid (the action of 𝒜 on a diagonal)."""
    from .profiles import tap_offsets

    y = np.zeros_like(x)
    offs = [tap_offsets(k) for k in v.shape]
    for idx in np.ndindex(*v.shape):
        w = v[idx]
        if w == 0.0:
            continue
        shifts = tuple(-int(offs[a][idx[a]]) for a in range(v.ndim))
        y += w * np.roll(x, shifts, axis=tuple(range(v.ndim)))
    return y


def theory_curves(act: Any, weight_var: float, bias_var: float, depth: int, input_var: float = 1.0,
                  input_corr: float = 0.0) -> dict[str, np.ndarray]:
    """Infinite-width q^l, c^l for two inputs of variance q₀ and correlation c₀ (FC maps, layer by layer).

    For the translation-invariant inputs of :func:`run_cnn` these are also the
    CNN's curves, for any variance profile (THEORY.md §3).

    Parameters
    ----------
    act : str or Activation
    weight_var, bias_var : float
        σ_w², σ_b².
    depth : int
        ``L``; the arrays have ``L + 1`` entries (entry 0 is the input).
    input_var, input_corr : float
        q₀ > 0 and c₀ ∈ [−1, 1].

    Returns
    -------
    dict
        ``q`` (variance), ``q12`` (covariance of the two inputs), ``c = q12/q``,
        ``q12_spatial`` and ``c_spatial`` (covariance/correlation of two distinct
        positions of one input, which start uncorrelated). Entries after the
        variance overflows are NaN.

    Examples
    --------
    >>> t = theory_curves("relu", 1.0, 0.0, 3, 1.0, 0.5)   # doctest: +SKIP
    >>> t["q"].tolist()                                     # doctest: +SKIP
    [1.0, 0.5, 0.25, 0.125]

    References
    ----------
    Poole et al. 2016, arXiv:1606.05340; Schoenholz et al. 2017, arXiv:1611.01232;
    Xiao et al. 2018, arXiv:1806.05393.
    """
    from .core import pair_expectation, qmap

    L = check_int("depth", depth, lo=0)
    q0 = check_variance("input_var", input_var, positive=True)
    c0 = check_real("input_corr", input_corr, lo=-1.0, hi=1.0)
    q = np.full(L + 1, np.nan)
    q12 = np.full(L + 1, np.nan)
    s12 = np.full(L + 1, np.nan)
    q[0], q12[0], s12[0] = q0, c0 * q0, 0.0
    for l in range(L):
        if not (math.isfinite(q[l]) and q[l] < 1e300):
            break
        qn = float(qmap(act, q[l], weight_var, bias_var))
        if not math.isfinite(qn):
            break
        x12 = float(np.clip(q12[l], -q[l], q[l]))
        y12 = float(np.clip(s12[l], -q[l], q[l]))
        e = pair_expectation(act, [q[l], q[l]], [q[l], q[l]], [x12, y12])
        q[l + 1] = qn
        q12[l + 1] = weight_var * e[0] + bias_var
        s12[l + 1] = weight_var * e[1] + bias_var
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.clip(q12 / q, -1.0, 1.0)
        cs = np.clip(s12 / q, -1.0, 1.0)
    return {"q": q, "q12": q12, "c": c, "q12_spatial": s12, "c_spatial": cs}


def probe_theory(act: Any, weight_var: float, bias_var: float, profile: np.ndarray, spatial: int, layers: int,
                 amplitude: float = DEFAULT_PROBE_AMPLITUDE, q_star: float | None = None,
                 c_star: float | None = None) -> dict[str, np.ndarray]:
    """Exact infinite-width evolution of the mode probes of :func:`run_cnn`.

    The diagonal of Σ and the cross-input diagonal at fixed variance ``q*`` obey
    closed per-position recursions (derived from THEORY.md §3)::

        q^{l+1}(α)   = Σ_β v_β [σ_w² E φ(u)²  + σ_b²],            u ~ N(0, q^l(α+β))
        q12^{l+1}(α) = Σ_β v_β [σ_w² E φ(u₁)φ(u₂) + σ_b²],        (u₁,u₂) at variances q*, covariance q12^l(α+β)

    started from ``q⁰ = q*(1 + ε g)`` and ``q12⁰ = q*(c* − ε(1 + g)/2)``.

    Returns
    -------
    dict
        ``dvar`` and ``dcross``: ``(layers + 1, *grid)`` arrays of ``q^l − q*`` and
        ``q12^l − q* c*``; ``pattern`` ``g``.
    """
    from .core import pair_expectation, point, qmap

    v = np.asarray(profile, dtype=np.float64)
    d = v.ndim
    n = check_int("spatial", spatial, lo=2)
    Lp = check_int("layers", layers, lo=0)
    eps = check_real("amplitude", amplitude, lo=0.0, hi=1.0, lo_open=True)
    if q_star is None or c_star is None:
        pt = point(act, weight_var, bias_var)
        q_star, c_star = pt.q_star, pt.c_star
    g = probe_pattern(n, d)
    qs, cs = float(q_star), float(c_star)
    q = qs * (1.0 + eps * g)
    x = qs * (cs - eps * (1.0 + g) / 2.0)
    dv = np.empty((Lp + 1,) + g.shape)
    dc = np.empty((Lp + 1,) + g.shape)
    dv[0], dc[0] = q - qs, x - qs * cs
    qq = np.full(g.shape, qs)
    for l in range(Lp):
        q = _shift_sum(qmap(act, q, weight_var, bias_var), v)
        x = _shift_sum(weight_var * pair_expectation(act, qq, qq, np.clip(x, -qs, qs)) + bias_var, v)
        dv[l + 1], dc[l + 1] = q - qs, x - qs * cs
    return {"dvar": dv, "dcross": dc, "pattern": g}


def _profile_for(init: str, variance: Any, kernel: Any, dims: int) -> tuple[np.ndarray, str]:
    """The (expected) variance profile of an initialiser, and its name."""
    from .cnn import make_profile

    if init == "gaussian":
        if isinstance(variance, str) or variance is None:
            spec = variance or "uniform"
            head = spec.strip().split(":", 1)[0].strip().lower()
            if head and (head[0].isdigit() or head[0] in ".+-"):
                return make_profile("custom", kernel, dims, taps=spec), "custom"
            return make_profile(spec, kernel, dims), spec
        return make_profile("custom", kernel, dims, taps=variance), "custom"
    expected = "delta" if init == "delta-orthogonal" else "binomial"
    if variance is not None and str(variance).strip().lower() != expected:
        raise InvalidArgumentError("variance", f"{init} kernels have the {expected} profile; "
                                               f"--variance applies to gaussian init only")
    return make_profile(expected, kernel, dims), expected


def z_threshold(seeds: int, comparisons: int, alpha: float = FAMILY_ALPHA) -> float:
    """Two-sided Student-t threshold ``t_{S−1}(1 − α/(2K))`` (Bonferroni over ``K`` comparisons).

    ``inf`` when ``seeds < 2`` (no standard error can be estimated).

    Examples
    --------
    >>> round(z_threshold(16, 62), 2)   # doctest: +SKIP
    5.07
    """
    from scipy.special import stdtrit

    S = int(seeds)
    K = max(int(comparisons), 1)
    if S < 2:
        return math.inf
    return float(stdtrit(S - 1, 1.0 - alpha / (2.0 * K)))


# --------------------------------------------------------------------------- the forward engine


def _conv_fn(dims: int):
    torch = _torch()
    return torch.nn.functional.conv1d if dims == 1 else torch.nn.functional.conv2d


def _circular(x, kernel: tuple[int, ...], adjoint: bool = False):
    """Circular padding so that tap ``i`` sits at offset ``i − (k−1)//2`` (``adjoint``: the flipped kernel)."""
    torch = _torch()
    pads = []
    for k in reversed(kernel):
        left = (k - 1) // 2
        right = k - 1 - left
        if adjoint:
            left, right = right, left
        pads += [left, right]
    if all(p == 0 for p in pads):
        return x
    return torch.nn.functional.pad(x, pads, mode="circular")


def _layer_generator(seed: int, layer: int):
    """The ``torch.Generator`` of one layer of network ``seed`` (independent of every other layer).

    Seeded from ``numpy.random.SeedSequence([seed, 1, layer])`` so that layers can
    be drawn in any order and in parallel, and a network is reproducible layer by
    layer (the inputs use ``[seed, 0, 0]``).
    """
    torch = _torch()
    state = np.random.SeedSequence([int(seed), 1, int(layer)]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) | (int(state[1] & 0x7FFFFFFF) << 32))


def _input_generator(seed: int):
    torch = _torch()
    state = np.random.SeedSequence([int(seed), 0, 0]).generate_state(2, np.uint32)
    return torch.Generator().manual_seed(int(state[0]) | (int(state[1] & 0x7FFFFFFF) << 32))


def draw_layer(seed: int, layer: int, channels: int, kernel: tuple[int, ...], init: str, weight_var: float,
               bias_var: float, profile: Any = "uniform", c_in: int | None = None):
    """The float64 CPU ``(weight, bias)`` of layer ``layer`` of network ``seed``.

    ``weight`` is ``(channels, c_in, *kernel)`` (``c_in`` defaults to ``channels``), filled by
    :mod:`meanfield.init` (``gaussian_`` with ``profile``, ``delta_orthogonal_`` or
    ``block_orthogonal_`` with ``gain = sqrt(weight_var)``, or an ``"orthogonal"``
    matrix when ``kernel == ()``); ``bias`` is ``N(0, bias_var)``.
    """
    torch = _torch()
    from . import init as _init

    gen = _layer_generator(seed, layer)
    cin = channels if c_in is None else c_in
    w = torch.empty((channels, cin) + tuple(kernel), dtype=torch.float64)
    if init == "gaussian":
        if len(kernel) == 0:
            w.normal_(0.0, math.sqrt(weight_var / cin), generator=gen)
        else:
            _init.gaussian_(w, weight_var, profile=profile, generator=gen)
    elif init in ("delta-orthogonal", "orthogonal"):
        if len(kernel) == 0:
            w1 = w.view(channels, cin, 1)
            _init.delta_orthogonal_(w1, gain=math.sqrt(weight_var), generator=gen)
        else:
            _init.delta_orthogonal_(w, gain=math.sqrt(weight_var), generator=gen)
    elif init == "block-orthogonal":
        _init.block_orthogonal_(w, gain=math.sqrt(weight_var), generator=gen)
    else:  # pragma: no cover - validated by the callers
        raise InvalidArgumentError("init", f"unknown initialiser {init!r}")
    b = torch.randn(channels, generator=gen, dtype=torch.float64) * math.sqrt(bias_var)
    return w, b


class _WeightStream:
    """Yields ``(weight, bias)`` on the device for layers ``0..depth-1`` of network ``seed``.

    With ``workers > 0`` a thread pool draws the next layers (NumPy's QR and random
    numbers release the GIL) while the device convolves the current one; the result
    does not depend on ``workers`` since every layer has its own generator.
    """

    def __init__(self, seed, depth, channels, kernel, init, weight_var, bias_var, profile, device, tdtype,
                 workers: int = 0):
        self.seed, self.depth = seed, depth
        self.args = (channels, kernel, init, weight_var, bias_var, profile)
        self.device, self.tdtype, self.workers = device, tdtype, workers

    def _get(self, l):
        w, b = draw_layer(self.seed, l, *self.args)
        nb = self.device.type == "cuda"
        if nb:
            w, b = w.pin_memory(), b.pin_memory()
        return (w.to(device=self.device, dtype=self.tdtype, non_blocking=nb),
                b.to(device=self.device, dtype=self.tdtype, non_blocking=nb))

    def __iter__(self):
        if self.workers <= 0:
            for l in range(self.depth):
                yield self._get(l)
            return
        from collections import deque
        from concurrent.futures import ThreadPoolExecutor

        ahead = 2 * self.workers
        with ThreadPoolExecutor(max_workers=self.workers) as ex:
            pending: deque = deque()
            nxt = 0
            try:
                while nxt < min(ahead, self.depth):
                    pending.append(ex.submit(self._get, nxt))
                    nxt += 1
                for _ in range(self.depth):
                    item = pending.popleft().result()
                    if nxt < self.depth:
                        pending.append(ex.submit(self._get, nxt))
                        nxt += 1
                    yield item
            finally:
                for f in pending:
                    f.cancel()


def _make_inputs(gen, channels, spatial, dims, q0, c0, probes, q_star, c_star, eps, g, device, tdtype):
    """The batch ``[h_a, h_b, (R_a, R_b, V, B)]`` of shape ``(B, C, *grid)``."""
    torch = _torch()
    shape = (channels,) + (spatial,) * dims
    nz = 4 if probes else 2
    z = torch.randn((nz,) + shape, generator=gen, dtype=torch.float64)
    sq = math.sqrt(q0)
    ha = sq * z[0]
    hb = sq * (c0 * z[0] + math.sqrt(max(1.0 - c0 * c0, 0.0)) * z[1])
    xs = [ha, hb]
    if probes:
        gt = torch.as_tensor(g, dtype=torch.float64)
        qs = math.sqrt(q_star)
        ra = qs * z[2]
        rb = qs * (c_star * z[2] + math.sqrt(max(1.0 - c_star * c_star, 0.0)) * z[3])
        vv = torch.sqrt(1.0 + eps * gt) * ra
        cpos = torch.clamp(c_star - eps * (1.0 + gt) / 2.0, -1.0, 1.0)
        bb = qs * (cpos * z[2] + torch.sqrt(torch.clamp(1.0 - cpos * cpos, min=0.0)) * z[3])
        xs += [ra, rb, vv, bb]
    return torch.stack(xs).to(device=device, dtype=tdtype)


def _forward_one(h, stream, phi, dims, kernel, depth, probes, record):
    torch = _torch()
    conv = _conv_fn(dims)
    record(0, h)
    for l, (w, b) in enumerate(stream):
        x = _circular(phi(h), kernel)
        h = conv(x, w)
        h += b.view((1, -1) + (1,) * dims)
        record(l + 1, h)
        del x
    return h


_DEVICE_NAMES = ("auto", "cpu", "cuda")
_DTYPE_NAMES = ("float32", "float", "fp32", "single", "float64", "double", "fp64")


def check_run_arguments(*, act: Any = "tanh", weight_var: Any = None, bias_var: Any = None, depth: Any = 30,
                        channels: Any = 256, spatial: Any = 16, kernel: Any = 3, dims: Any = 1,
                        init: Any = "gaussian", variance: Any = None, input_var: Any = 1.0, input_corr: Any = 0.3,
                        seeds: Any = 4, seed: Any = 0, probe_amplitude: Any = DEFAULT_PROBE_AMPLITUDE,
                        device: Any = "auto", dtype: Any = "float32", workers: Any = None) -> dict:
    """Validate the arguments of :func:`run_cnn` without importing torch (the CLI checks them first).

    Returns
    -------
    dict
        The normalised values, with ``weight_var``/``bias_var`` filled in
        (:func:`meanfield.cnn.resolve_variances`), ``profile`` (the variance
        profile array), ``variance`` (its name) and ``note`` (what was filled in).

    Raises
    ------
    InvalidArgumentError
        Naming the first bad argument.
    """
    from .activations import get_activation
    from .cnn import resolve_variances

    out: dict[str, Any] = {}
    get_activation(act)
    out["depth"] = check_int("depth", depth, lo=0)
    out["channels"] = check_int("channels", channels, lo=1)
    out["spatial"] = check_int("spatial", spatial, lo=2)
    out["kernel"] = check_int("kernel", kernel, lo=1)
    out["dims"] = d = _check_dims12(dims)
    out["seeds"] = check_int("seeds", seeds, lo=1)
    out["seed"] = check_int("seed", seed, lo=0)
    if init not in INITS:
        raise InvalidArgumentError("init", f"must be one of {', '.join(INITS)}, got {init!r}")
    out["init"] = init
    out["input_var"] = check_variance("input_var", input_var, positive=True)
    out["input_corr"] = check_real("input_corr", input_corr, lo=-1.0, hi=1.0)
    out["probe_amplitude"] = check_real("probe_amplitude", probe_amplitude, lo=0.0, hi=1.0, lo_open=True)
    if isinstance(device, str):
        name = device.strip().lower()
        if not (name in _DEVICE_NAMES or name.startswith("cuda:")):
            raise InvalidArgumentError("device", f"must be auto, cpu or cuda, got {device!r}")
    if isinstance(dtype, str) and dtype.strip().lower() not in _DTYPE_NAMES:
        raise InvalidArgumentError("dtype", f"must be float32 or float64, got {dtype!r}")
    out["workers"] = None if workers is None else check_int("workers", workers, lo=0)
    wv, bv, note = resolve_variances(act, weight_var, bias_var)
    out["weight_var"], out["bias_var"], out["note"] = wv, bv, note
    out["profile"], out["variance"] = _profile_for(init, variance, out["kernel"], d)
    return out


def run_cnn(act: Any = "tanh", weight_var: Any = None, bias_var: Any = None, *, depth: int = 30,
            channels: int = 256, spatial: int = 16, kernel: int = 3, dims: int = 1, init: str = "gaussian",
            variance: Any = None, input_var: float = 1.0, input_corr: float = 0.3, seeds: int = 4, seed: int = 0,
            probes: bool = True, probe_amplitude: float = DEFAULT_PROBE_AMPLITUDE, device: Any = "auto",
            dtype: Any = "float32", workers: int | None = None,
            progress: Callable[[int, int], None] | None = None):
    """Propagate inputs through ``seeds`` random vanilla CNNs and record per-layer statistics.

    Parameters
    ----------
    act : str or Activation, default "tanh"
        Any named activation (native torch); expressions run through NumPy on the host.
    weight_var, bias_var : float, optional
        σ_w², σ_b² (defaults: σ_b² = 0.05 and σ_w² on the critical line,
        :func:`meanfield.cnn.resolve_variances`).
    depth : int, default 30
        Layers ``L`` (statistics for ``l = 0..L``; 0 is the input).
    channels : int, default 256
        Channels ``C`` of every layer (input included).
    spatial : int, default 16
        Positions ``n`` per spatial dimension (circular padding, stride 1).
    kernel : int, default 3
        Kernel size per dimension.
    dims : {1, 2}, default 1
    init : {"gaussian", "delta-orthogonal", "block-orthogonal"}
        Kernel initialiser (:mod:`meanfield.init`); ``gain = sqrt(weight_var)``.
    variance : str or array_like, optional
        Variance profile of ``gaussian`` kernels (default ``"uniform"``); the
        orthogonal kernels have the delta / binomial profile.
    input_var, input_corr : float
        q₀ and c₀ of the main input pair.
    seeds : int, default 4
        Number of independent networks (and inputs): networks ``seed .. seed +
        seeds − 1``; layer ``l`` of network ``t`` draws from its own generator
        (:func:`draw_layer`), the inputs from ``SeedSequence([t, 0, 0])``.
    seed : int, default 0
    probes : bool, default True
        Add the four mode-probe inputs (skipped when ``q*`` is not finite and
        positive).
    probe_amplitude : float, default 0.05
        ``ε`` of the probes.
    device : {"auto", "cpu", "cuda"} or torch.device
    dtype : {"float32", "float64"}
        Precision of the forward pass (statistics are accumulated in float64).
        TF32 is switched off for the run.
    workers : int, optional
        Threads drawing the next layers' kernels while the device works (default
        ``min(8, cpu_count)`` on CUDA, 0 on the CPU, where they would compete with
        the convolutions for the same cores). Results do not depend on it.
    progress : callable, optional
        ``progress(seed_index, layer)`` called every 100 layers.

    Returns
    -------
    xarray.Dataset
        Dimensions ``seed``, ``layer`` (0..L), ``dx`` (``dy``) and ``x`` (``y``).
        Per network: ``q``, ``q_a``, ``q_b``, ``q12``, ``c`` ``(seed, layer)``,
        ``cov_profile (seed, layer, dx[, dy])`` (within-input spatial covariance,
        both inputs averaged), and with probes ``probe_dvar``, ``probe_dcross``,
        ``probe_ref_var``, ``probe_ref_cross`` ``(seed, layer, x[, y])``.
        Across networks: ``q_mean``, ``q_stderr``, ``c_mean``, ``c_stderr``,
        ``cov_profile_mean``, ``cov_profile_stderr``. Attributes: the parameters,
        ``q_star``, ``c_star``, ``chi_q``, ``chi_c``, ``profile`` (JSON list),
        ``probes`` (bool), ``device``, ``dtype``, ``seconds``.

    Raises
    ------
    InvalidArgumentError
        For bad arguments (naming them).
    TorchMissingError
        When PyTorch is not installed.

    Examples
    --------
    >>> ds = run_cnn("tanh", 1.76, 0.05, depth=5, channels=32, spatial=8, seeds=2, device="cpu")  # doctest: +SKIP
    >>> ds.q_mean.sizes["layer"]                                                                 # doctest: +SKIP
    6

    References
    ----------
    Xiao et al. 2018, arXiv:1806.05393 (Algorithms 1 and 2, §3).
    """
    cfg = check_run_arguments(act=act, weight_var=weight_var, bias_var=bias_var, depth=depth, channels=channels,
                              spatial=spatial, kernel=kernel, dims=dims, init=init, variance=variance,
                              input_var=input_var, input_corr=input_corr, seeds=seeds, seed=seed,
                              probe_amplitude=probe_amplitude, device=device, dtype=dtype, workers=workers)
    torch = _torch()
    import xarray as xr

    from .core import point

    L, C, n, k, d, S, seed0 = (cfg[x] for x in ("depth", "channels", "spatial", "kernel", "dims", "seeds", "seed"))
    q0, c0, eps, wv, bv, v, vname = (cfg[x] for x in ("input_var", "input_corr", "probe_amplitude", "weight_var",
                                                       "bias_var", "profile", "variance"))
    dev = resolve_device(device)
    tdtype = _resolve_dtype(dtype)
    phi, _dphi, act_name = torch_activation(act)
    kshape = (k,) * d
    workers = cfg["workers"]
    if workers is None:
        import os

        workers = min(8, os.cpu_count() or 1) if dev.type == "cuda" else 0

    pt = point(act, wv, bv)
    q_star = pt.q_star
    c_star = pt.c_star
    have_fp = (q_star is not None and c_star is not None and math.isfinite(q_star) and q_star > 0
               and pt.phase != "unbounded")
    use_probes = bool(probes) and have_fp
    g = probe_pattern(n, d) if use_probes else None

    N = n ** d
    sp_dims = tuple(range(2, 2 + d))
    f64 = torch.float64
    st_main = torch.zeros((S, L + 1, 3), dtype=f64, device=dev)
    st_prof = torch.zeros((S, L + 1) + (n,) * d, dtype=f64, device=dev)
    st_probe = torch.zeros((S, L + 1, 4) + (n,) * d, dtype=f64, device=dev) if use_probes else None

    t0 = time.perf_counter()
    # one BLAS thread per kernel draw: on the CPU the convolutions need the cores, on CUDA the workers draw
    # layers in parallel (and a multi-threaded OpenBLAS inside each would oversubscribe the host)
    with torch.no_grad(), _NoTF32(), _BlasThreads(1 if (dev.type == "cpu" or workers > 1) else None):
        for s in range(S):
            h = _make_inputs(_input_generator(seed0 + s), C, n, d, q0, c0, use_probes, q_star, c_star, eps, g,
                             dev, tdtype)
            stream = _WeightStream(seed0 + s, L, C, kshape, init, wv, bv, v, dev, tdtype, workers=workers)

            def record(l, h, s=s):
                hd = h.to(f64)
                a, b = hd[0], hd[1]
                st_main[s, l, 0] = (a * a).mean()
                st_main[s, l, 1] = (b * b).mean()
                st_main[s, l, 2] = (a * b).mean()
                F = torch.fft.fftn(hd[:2], dim=sp_dims)
                pw = (F.real ** 2 + F.imag ** 2).sum(dim=(0, 1))
                st_prof[s, l] = torch.fft.ifftn(pw, dim=tuple(range(d))).real / (2.0 * C * N)
                if use_probes:
                    ra, rb, vv, bb = hd[2], hd[3], hd[4], hd[5]
                    st_probe[s, l, 0] = ((vv - ra) * (vv + ra)).mean(0)
                    # -<(B - R_a)^2>/2 + <(R_b - R_a)^2>/2: the cross-covariance perturbation when <B^2> and
                    # <R_b^2> are both q* (exact in theory); its noise is relative even when c* = 1
                    db, dr = bb - ra, rb - ra
                    st_probe[s, l, 1] = 0.5 * ((dr - db) * (dr + db)).mean(0)
                    st_probe[s, l, 2] = (ra * ra).mean(0)
                    st_probe[s, l, 3] = (ra * rb).mean(0)
                if progress is not None and l % 100 == 0:
                    progress(s, l)

            _forward_one(h, stream, phi, d, kshape, L, use_probes, record)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
    seconds = time.perf_counter() - t0

    main = st_main.cpu().numpy()
    prof = st_prof.cpu().numpy()
    qa, qb, q12 = main[..., 0], main[..., 1], main[..., 2]
    q = 0.5 * (qa + qb)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = q12 / np.sqrt(qa * qb)
    grid = ("x",) if d == 1 else ("x", "y")
    disp = ("dx",) if d == 1 else ("dx", "dy")
    coords = {"seed": np.arange(seed0, seed0 + S), "layer": np.arange(L + 1)}
    for name in grid + disp:
        coords[name] = np.arange(n)
    data = {
        "q": (("seed", "layer"), q), "q_a": (("seed", "layer"), qa), "q_b": (("seed", "layer"), qb),
        "q12": (("seed", "layer"), q12), "c": (("seed", "layer"), c),
        "cov_profile": (("seed", "layer") + disp, prof),
    }
    if use_probes:
        pr = st_probe.cpu().numpy()
        data["probe_dvar"] = (("seed", "layer") + grid, pr[:, :, 0])
        data["probe_dcross"] = (("seed", "layer") + grid, pr[:, :, 1])
        data["probe_ref_var"] = (("seed", "layer") + grid, pr[:, :, 2])
        data["probe_ref_cross"] = (("seed", "layer") + grid, pr[:, :, 3])
    ds = xr.Dataset(data, coords=coords)
    for name in ("q", "c", "cov_profile"):
        m, se = _mean_se(ds[name].values)
        ds[name + "_mean"] = (ds[name].dims[1:], m)
        ds[name + "_stderr"] = (ds[name].dims[1:], se)
    import json

    ds.attrs.update({
        "act": act_name, "weight_var": wv, "bias_var": bv, "depth": L, "channels": C, "spatial": n,
        "kernel": k, "dims": d, "init": init, "variance": vname, "profile": json.dumps(v.tolist()),
        "input_var": q0, "input_corr": c0, "seeds": S, "seed": seed0, "probes": int(use_probes),
        "probe_amplitude": eps, "q_star": _nan(q_star), "c_star": _nan(c_star), "chi_q": _nan(pt.chi_q),
        "chi_c": _nan(pt.chi_c), "chi_1": _nan(pt.chi_1), "phase": pt.phase, "device": str(dev),
        "dtype": str(tdtype).replace("torch.", ""), "seconds": seconds,
        "torch_version": torch.__version__,
    })
    return ds


def _nan(x) -> float:
    return math.nan if x is None else float(x)


def _mean_se(x: np.ndarray, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    S = x.shape[axis]
    m = np.mean(x, axis=axis)
    if S < 2:
        return m, np.full(m.shape, np.nan)
    return m, np.std(x, axis=axis, ddof=1) / math.sqrt(S)


# --------------------------------------------------------------------------- validation


def _mode_coefficients(arr: np.ndarray, modes: np.ndarray, d: int) -> np.ndarray:
    """``P^l(m)``: normalised Fourier coefficients of ``arr[..., grid]`` at the given modes."""
    axes = tuple(range(arr.ndim - d, arr.ndim))
    F = np.fft.fftn(arr, axes=axes) / (arr.shape[-1] ** d)
    if d == 1:
        return F[..., modes[:, 0]]
    return F[..., modes[:, 0], modes[:, 1]]


def _ratio_fit(P: np.ndarray, W: np.ndarray, Z: np.ndarray | None = None) -> np.ndarray:
    """Per-layer factor of each mode, fitted over its window.

    ``ρ = Σ_{l<W} conj(Z^l) P^{l+1} / Σ_{l<W} conj(Z^l) P^l`` with the instrument
    ``Z`` (default ``P`` itself: least squares). With ``Z`` the noise-free theory
    amplitudes, noise in ``P^l`` does not bias ``ρ`` towards 0 (no regression
    dilution); ``Z`` only weights the layers. ``P`` and ``Z`` are ``(..., layer, mode)``;
    ``W`` the per-mode window (number of steps).
    """
    if Z is None:
        Z = P
    Lp = P.shape[-2]
    lidx = np.arange(Lp - 1)[:, None]
    mask = lidx < W[None, :]
    zc = np.conj(Z[..., :-1, :])
    num = np.sum(np.where(mask, zc * P[..., 1:, :], 0.0), axis=-2)
    den = np.sum(np.where(mask, zc * P[..., :-1, :], 0.0), axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def _windows(Pth: np.ndarray, max_steps: int) -> np.ndarray:
    """Steps per mode: while the theory amplitude stays above WINDOW_FRACTION of its start (≥ 1, ≤ max)."""
    a = np.abs(Pth)
    ok = a >= WINDOW_FRACTION * a[0:1]
    W = np.ones(a.shape[1], dtype=np.int64)
    for j in range(a.shape[1]):
        w = 0
        for l in range(1, min(max_steps, a.shape[0] - 1) + 1):
            if not ok[l, j]:
                break
            w = l
        W[j] = max(w, 1)
    return W


@dataclass
class Validation:
    """Theory against experiment for one configuration (the result of :func:`validate`).

    Attributes
    ----------
    params : dict
        The configuration (act, variances, sizes, init, profile, seeds, ...).
    layers : numpy.ndarray
        ``0..L``.
    q_theory, q_empirical, q_stderr, q_z : numpy.ndarray
        Per layer; ``q_z`` = deviation in units of the expected error.
    c_theory, c_empirical, c_stderr, c_z : numpy.ndarray
    q_error, c_error : numpy.ndarray
        Expected error (standard error and rounding allowance in quadrature).
    modes : list of dict
        One record per (mode, kind): ``mode``, ``kind`` (``variance``/``correlation``),
        ``frequency``, ``lambda_abs``, ``rate_theory`` (``|χ λ_m|``), ``rate_theory_exact``
        (the same fit on the exact infinite-width probe curve), ``rate_fitted``,
        ``rate_stderr``, ``z``, ``window``.
    summary : dict
        Maximum |z| per family, thresholds, comparisons, pass flags, notes.
    dataset : xarray.Dataset
        The :func:`run_cnn` dataset with the theory curves added.
    device : str
    seconds : float
        Wall time of the whole validation (theory included).
    """

    params: dict
    layers: np.ndarray
    q_theory: np.ndarray
    q_empirical: np.ndarray
    q_stderr: np.ndarray
    q_error: np.ndarray
    q_z: np.ndarray
    c_theory: np.ndarray
    c_empirical: np.ndarray
    c_stderr: np.ndarray
    c_error: np.ndarray
    c_z: np.ndarray
    modes: list
    summary: dict
    dataset: Any = field(repr=False)
    device: str = "cpu"
    seconds: float = 0.0
    probe: dict = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        """The JSON record of ``meanfield validate --json``."""
        return {
            **self.params,
            "layers": self.layers.tolist(),
            "q_theory": self.q_theory, "q_empirical": self.q_empirical, "q_stderr": self.q_stderr,
            "c_theory": self.c_theory, "c_empirical": self.c_empirical, "c_stderr": self.c_stderr,
            "q_z": self.q_z, "c_z": self.c_z,
            "modes": self.modes,
            "summary": self.summary,
            "device": self.device,
            "seconds": self.seconds,
        }


def validate(act: Any = "tanh", weight_var: Any = None, bias_var: Any = None, *, depth: int = 30,
             channels: int = 256, spatial: int = 16, kernel: int = 3, dims: int = 1, init: str = "gaussian",
             variance: Any = None, input_var: float = 1.0, input_corr: float = 0.3, seeds: int = 4,
             seed: int = 0, probes: bool = True, probe_amplitude: float = DEFAULT_PROBE_AMPLITUDE,
             device: Any = "auto", dtype: Any = "float32", alpha: float = FAMILY_ALPHA,
             workers: int | None = None, progress: Callable[[int, int], None] | None = None) -> Validation:
    """Run random CNNs (:func:`run_cnn`) and compare them with the mean-field theory.

    Parameters are those of :func:`run_cnn`, plus ``alpha`` (family-wise
    false-alarm rate of the pass thresholds, default 0.01).

    Returns
    -------
    Validation
        Theory and empirical curves for q^l and c^l with standard errors and
        z-scores, per-mode fitted decay factors against ``|χ_q λ_m|`` and
        ``|χ_c λ_m|``, and a summary. ``summary["pass"]`` is True when every
        family's max |z| is below its threshold.

    Notes
    -----
    See the module docstring for the inputs, the probes, the error model and the
    thresholds. ``rate_theory`` is the linearised prediction; ``rate_theory_exact``
    fits the exact infinite-width probe curve over the same layers and differs
    from it by the nonlinearity at amplitude ε (an ``O(ε)`` effect, larger for
    ReLU near ``c* = 1``, where the c-map is not analytic); the z-score of a mode
    is measured against ``rate_theory_exact``.

    Examples
    --------
    >>> r = validate("tanh", 1.76, 0.05, depth=10, channels=64, spatial=8, seeds=4, device="cpu")  # doctest: +SKIP
    >>> r.summary["pass"]                                                                          # doctest: +SKIP
    True

    References
    ----------
    Xiao et al. 2018, arXiv:1806.05393; Schoenholz et al. 2017, arXiv:1611.01232.
    """
    from .cnn import fourier_eigenvalues

    t0 = time.perf_counter()
    alpha = check_real("alpha", alpha, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    ds = run_cnn(act, weight_var, bias_var, depth=depth, channels=channels, spatial=spatial, kernel=kernel,
                 dims=dims, init=init, variance=variance, input_var=input_var, input_corr=input_corr, seeds=seeds,
                 seed=seed, probes=probes, probe_amplitude=probe_amplitude, device=device, dtype=dtype,
                 workers=workers, progress=progress)
    A = ds.attrs
    wv, bv, L, S, d, n = A["weight_var"], A["bias_var"], A["depth"], A["seeds"], A["dims"], A["spatial"]
    import json

    v = np.array(json.loads(A["profile"]))
    th = theory_curves(act, wv, bv, L, A["input_var"], A["input_corr"])
    ds["q_theory"] = ("layer", th["q"])
    ds["c_theory"] = ("layer", th["c"])
    ds["q12_spatial_theory"] = ("layer", th["q12_spatial"])
    u = 2.0 ** -24 if A["dtype"] == "float32" else 2.0 ** -53
    lay = np.arange(L + 1)
    acc = np.sqrt(lay + 1.0) * u
    q_emp, q_se = ds.q_mean.values, ds.q_stderr.values
    c_emp, c_se = ds.c_mean.values, ds.c_stderr.values
    q_err = np.sqrt(q_se ** 2 + (acc * np.abs(th["q"])) ** 2)
    c_err = np.sqrt(c_se ** 2 + (acc * (np.sqrt(2.0 * np.abs(1.0 - th["c"])) + acc)) ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        q_z = (q_emp - th["q"]) / q_err
        c_z = (c_emp - th["c"]) / c_err

    # the spatial covariance at distinct positions (one input): the c-map from 0
    prof = ds.cov_profile_mean.values.reshape(L + 1, -1)
    prof_se = ds.cov_profile_stderr.values.reshape(L + 1, -1)
    off = prof[:, 1:]
    off_se = prof_se[:, 1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        s_err = np.sqrt(off_se ** 2 + (acc[:, None] * np.abs(th["q"])[:, None]) ** 2)
        s_z = (off - th["q12_spatial"][:, None]) / s_err

    modes_out: list = []
    probe: dict = {}
    family = {}
    notes = []
    if A["probes"]:
        chi_q, chi_c = A["chi_q"], A["chi_c"]
        lam = fourier_eigenvalues(v, n)
        modes = _canonical_modes(n, d)
        lam_m = lam[modes[:, 0]] if d == 1 else lam[modes[:, 0], modes[:, 1]]
        Lw = min(L, WINDOW_MAX)
        pt = probe_theory(act, wv, bv, v, n, Lw, A["probe_amplitude"], A["q_star"], A["c_star"])
        freq = np.fft.fftfreq(n)[modes]
        absf = np.sqrt(np.sum(freq ** 2, axis=1))
        for kind, emp_name, th_name, chi in (("variance", "probe_dvar", "dvar", chi_q),
                                             ("correlation", "probe_dcross", "dcross", chi_c)):
            Pth = _mode_coefficients(pt[th_name], modes, d)              # (Lw+1, M)
            Pem = _mode_coefficients(ds[emp_name].values[:, :Lw + 1], modes, d)  # (S, Lw+1, M)
            W = _windows(Pth, Lw)
            rho_th = _ratio_fit(Pth, W)
            rho_s = _ratio_fit(Pem, W, Pth)                             # (S, M)
            rm_re, rse_re = _mean_se(rho_s.real)
            rm_im, rse_im = _mean_se(rho_s.imag)
            lin = chi * lam_m
            with np.errstate(invalid="ignore", divide="ignore"):
                z_re = (rm_re - rho_th.real) / rse_re
                z_im = (rm_im - rho_th.imag) / rse_im
            z_im = np.where(np.isfinite(z_im), z_im, 0.0)
            z = np.where(np.abs(z_re) >= np.abs(z_im), z_re, z_im)
            probe[kind] = {"theory": Pth, "empirical": Pem, "window": W, "rho_theory": rho_th,
                           "rho_seeds": rho_s, "linear": lin}
            for j in range(modes.shape[0]):
                mval = int(modes[j, 0]) if d == 1 else [int(modes[j, 0]), int(modes[j, 1])]
                modes_out.append({
                    "mode": mval, "kind": kind, "frequency": float(absf[j]),
                    "lambda_abs": float(abs(lam_m[j])),
                    "rate_theory": float(abs(lin[j])),
                    "rate_theory_signed": float(lin[j].real),
                    "rate_theory_exact": float(abs(rho_th[j])),
                    "rate_fitted": float(abs(complex(rm_re[j], rm_im[j]))),
                    "rate_fitted_signed": float(rm_re[j]),
                    "rate_stderr": float(math.hypot(rse_re[j], rse_im[j])) if S > 1 else math.nan,
                    "z": float(z[j]) if S > 1 else math.nan,
                    "window": int(W[j]),
                })
            family[f"mode_{kind}"] = (z, 2 * modes.shape[0])
    else:
        if probes:
            notes.append(f"no mode probes: no finite positive fixed point q* at these variances (phase {A['phase']})")

    fams = {"q": (q_z, L + 1), "c": (c_z, L + 1), "spatial": (s_z, s_z.size)}
    fams.update(family)
    summary: dict[str, Any] = {"seeds": S, "dof": S - 1, "alpha": alpha,
                               "error_model": "across-network standard error (S-1 dof) with a rounding allowance "
                                              "u*sqrt(l+1)*scale in quadrature; thresholds t_{S-1}(1-alpha/(2K)), "
                                              "Bonferroni over the K comparisons of a family"}
    ok_all = True
    for name, (z, K) in fams.items():
        z = np.asarray(z, dtype=np.float64)
        finite = np.isfinite(z)
        thr = z_threshold(S, K, alpha)
        mx = float(np.max(np.abs(z[finite]))) if finite.any() else math.nan
        passed = bool(finite.any() and mx < thr)
        summary[f"{name}_max_abs_z"] = mx
        summary[f"{name}_rms_z"] = float(np.sqrt(np.mean(z[finite] ** 2))) if finite.any() else math.nan
        summary[f"{name}_threshold"] = thr
        summary[f"{name}_comparisons"] = int(K)
        summary[f"{name}_pass"] = passed
        if name in ("q", "c", "spatial"):
            bad = np.abs(np.where(finite, z, 0.0)) >= thr
            bad = bad.reshape(L + 1, -1).any(axis=1)
            first = int(np.argmax(bad)) if bad.any() else None
            summary[f"{name}_first_exceeding_layer"] = first
            if first is not None and L > A["channels"]:
                notes.append(f"{name}: deviates beyond the threshold from layer {first} on; at depth comparable to "
                             f"or beyond the width (depth/channels = {L / A['channels']:.3g}) finite-width "
                             "corrections accumulate: the mean-field maps are the infinite-width limit at fixed "
                             "depth")
        ok_all = ok_all and passed
    if S < 2:
        notes.append("one network: no standard error, no z-scores")
        ok_all = False
    if A["probes"]:
        for kind in ("variance", "correlation"):
            recs = [m for m in modes_out if m["kind"] == kind]
            lin_dev = max(abs(m["rate_theory_exact"] - m["rate_theory"]) for m in recs)
            summary[f"mode_{kind}_linearisation_gap"] = lin_dev
    summary["pass"] = bool(ok_all)
    summary["notes"] = notes
    seconds = time.perf_counter() - t0
    params = {k: A[k] for k in ("act", "weight_var", "bias_var", "depth", "channels", "spatial", "kernel", "dims",
                                "init", "variance", "input_var", "input_corr", "seeds", "seed", "dtype",
                                "q_star", "c_star", "chi_1", "chi_q", "chi_c", "phase", "probe_amplitude")}
    params["profile"] = v.tolist()
    params["run_seconds"] = A["seconds"]
    return Validation(params=params, layers=lay, q_theory=th["q"], q_empirical=q_emp, q_stderr=q_se, q_error=q_err,
                      q_z=q_z, c_theory=th["c"], c_empirical=c_emp, c_stderr=c_se, c_error=c_err, c_z=c_z,
                      modes=modes_out, summary=summary, dataset=ds, device=A["device"], seconds=seconds,
                      probe=probe)


# --------------------------------------------------------------------------- Jacobian spectra


def spectrum_theory(act: Any, weight_var: float, bias_var: float, depth: int, init: str = "gaussian",
                    input_var: float | None = None) -> dict:
    """First two moments of the eigenvalues of ``JJᵀ`` in the infinite-width limit.

    ``J = ∂h^L/∂h⁰ = W_{L−1} D_{L−1} ⋯ W_0 D_0`` with ``D_l = diag φ'(h^l)``. Free
    multiplicative convolution (the S-transform of a product is the product of the
    S-transforms, and ``S(z) = (1/m₁)(1 − (σ²/m₁²) z + …)``) gives, with
    ``μ_k(q) = E[φ'(√q z)^{2k}]`` and ``s₁ = −1`` for Gaussian, ``0`` for
    orthogonal weights (derived from Pennington et al. 2017/2018; THEORY.md §4)::

        m₁ = Π_l σ_w² μ₁(q^l),        σ²/m₁² = Σ_l (μ₂(q^l)/μ₁(q^l)² − 1 − s₁).

    At the fixed point ``q^l = q*``: ``m₁ = χ₁^L`` and, at criticality,
    ``σ² = L (μ₂/μ₁² − 1 − s₁)``.

    Parameters
    ----------
    act : str or Activation
    weight_var, bias_var : float
    depth : int
        ``L``.
    init : str
        ``"gaussian"`` (s₁ = −1) or an orthogonal kind (s₁ = 0).
    input_var : float, optional
        q⁰ (default q* when finite and positive, else 1).

    Returns
    -------
    dict
        ``mean``, ``variance``, ``normalized_variance``, ``s1``, ``q`` (q^0..q^{L−1}),
        ``mu1``, ``mu2``, ``chi_1`` (at q*, or None), ``input_var``.

    Examples
    --------
    >>> t = spectrum_theory("relu", 2.0, 0.0, 10, "orthogonal", input_var=1.0)   # doctest: +SKIP
    >>> t["mean"], t["normalized_variance"]                                      # doctest: +SKIP
    (1.0, 10.0)

    References
    ----------
    Pennington, Schoenholz, Ganguli, arXiv:1711.04735 and arXiv:1802.09979.
    """
    from .core import derivative_moment, point, qmap

    L = check_int("depth", depth, lo=1)
    pt = point(act, weight_var, bias_var)
    if input_var is None:
        ok = pt.q_star is not None and math.isfinite(pt.q_star) and pt.q_star > 0 and pt.phase != "unbounded"
        q0 = float(pt.q_star) if ok else 1.0
    else:
        q0 = check_variance("input_var", input_var, positive=True)
    q = np.empty(L)
    q[0] = q0
    for l in range(1, L):
        q[l] = float(qmap(act, q[l - 1], weight_var, bias_var))
    mu1 = np.asarray(derivative_moment(act, q, 1), dtype=np.float64)
    mu2 = np.asarray(derivative_moment(act, q, 2), dtype=np.float64)
    s1 = -1.0 if init == "gaussian" else 0.0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        logm = float(np.sum(np.log(weight_var * mu1)))
        m1 = math.exp(logm) if logm < 700 else math.inf
        nv = float(np.sum(mu2 / mu1 ** 2 - 1.0 - s1))
    return {"mean": m1, "variance": m1 * m1 * nv, "normalized_variance": nv, "s1": s1, "q": q, "mu1": mu1,
            "mu2": mu2, "chi_1": pt.chi_1, "input_var": q0}


@dataclass
class Spectrum:
    """Singular values of random networks' input-output Jacobians (the result of :func:`jacobian_spectrum`).

    Attributes
    ----------
    params : dict
        Configuration (act, variances, depth, width, init, conv, kernel, spatial, dims, seeds, method ...).
    eigenvalues : numpy.ndarray
        Exact method: every eigenvalue of ``JJᵀ`` of every network (pooled). Lanczos:
        the Ritz values.
    weights : numpy.ndarray
        Weight of each entry of ``eigenvalues`` in the pooled spectral density (sums to 1).
    moments : dict
        Per-network ``mean`` and ``variance`` arrays (``seeds`` entries).
    empirical, stderr, theory, z : dict
        ``mean``, ``variance``, ``normalized_variance``: across-network mean, its
        standard error, the infinite-width theory (:func:`spectrum_theory`), and
        the deviation in units of the expected error.
    histogram : dict
        Log-spaced ``edges`` (in λ) and ``density`` per decade of the pooled eigenvalues
        of ``JJᵀ`` (``Σ density · Δlog₁₀λ = 1 − fraction_below``); the lowest 1 % and any
        eigenvalue below the SVD's resolution ``(64 eps)² λ_max`` are left out and
        counted in ``fraction_below``.
    summary : dict
        max |z|, threshold, pass flag, notes.
    device : str
    seconds : float
    """

    params: dict
    eigenvalues: np.ndarray = field(repr=False)
    weights: np.ndarray = field(repr=False)
    moments: dict
    empirical: dict
    stderr: dict
    theory: dict
    z: dict
    histogram: dict = field(repr=False)
    summary: dict = field(default_factory=dict)
    device: str = "cpu"
    seconds: float = 0.0

    def to_dict(self) -> dict:
        """The JSON record of ``meanfield spectrum --json``."""
        ev = self.eigenvalues
        return {
            **self.params,
            "mean_empirical": self.empirical["mean"], "mean_stderr": self.stderr["mean"],
            "mean_theory": self.theory["mean"], "mean_z": self.z["mean"],
            "variance_empirical": self.empirical["variance"], "variance_stderr": self.stderr["variance"],
            "variance_theory": self.theory["variance"], "variance_z": self.z["variance"],
            "normalized_variance_empirical": self.empirical["normalized_variance"],
            "normalized_variance_stderr": self.stderr["normalized_variance"],
            "normalized_variance_theory": self.theory["normalized_variance"],
            "normalized_variance_z": self.z["normalized_variance"],
            "per_network": {k: np.asarray(v).tolist() for k, v in self.moments.items()},
            "eigenvalue_range": [float(np.min(ev)), float(np.max(ev))] if ev.size else [None, None],
            "histogram": {"edges": np.asarray(self.histogram["edges"]).tolist(),
                          "density": np.asarray(self.histogram["density"]).tolist(),
                          "fraction_below": self.histogram.get("fraction_below")},
            "summary": self.summary,
            "device": self.device,
            "seconds": self.seconds,
        }


class _JacobianNet:
    """One random network with stored weights and derivatives ``D_l``, for ``J v`` and ``Jᵀ u``."""

    def __init__(self, seed, act, wv, bv, depth, width, init, conv, kernel, spatial, dims, profile, q0, device,
                 tdtype):
        torch = _torch()
        self.conv, self.dims, self.device, self.tdtype = conv, dims, device, tdtype
        self.kernel = (kernel,) * dims if conv else ()
        phi, dphi, _ = torch_activation(act)
        shape = (width,) + ((spatial,) * dims if conv else ())
        gen = _input_generator(seed)
        h = (torch.randn(shape, generator=gen, dtype=torch.float64) * math.sqrt(q0)).to(device=device, dtype=tdtype)
        self.W, self.D = [], []
        kinit = init if conv or init == "gaussian" else "orthogonal"
        if conv and init == "orthogonal":
            kinit = "delta-orthogonal"
        with torch.no_grad():
            for l in range(depth):
                w, b = draw_layer(seed, l, width, self.kernel, kinit, wv, bv, profile)
                w, b = w.to(device=device, dtype=tdtype), b.to(device=device, dtype=tdtype)
                self.W.append(w)
                self.D.append(dphi(h))
                x = phi(h)
                h = self._apply(w, x[None])[0] + b.view((-1,) + (1,) * (dims if conv else 0))
        self.units = int(np.prod(shape))
        self.shape = shape

    def _apply(self, w, x):
        """``W x`` for a batch ``x`` of shape ``(B, *shape)``."""
        if not self.conv:
            return x @ w.T
        return _conv_fn(self.dims)(_circular(x, self.kernel), w)

    def _apply_t(self, w, y):
        """``Wᵀ y`` (the adjoint of the circular convolution: flipped, transposed kernel)."""
        if not self.conv:
            return y @ w
        wt = w.transpose(0, 1).flip(tuple(range(2, 2 + self.dims)))
        return _conv_fn(self.dims)(_circular(y, self.kernel, adjoint=True), wt)

    def jvp(self, v):
        """``J v`` for a batch ``v`` ``(B, *shape)``."""
        for w, d in zip(self.W, self.D):
            v = self._apply(w, d * v)
        return v

    def vjp(self, u):
        """``Jᵀ u`` for a batch ``u`` ``(B, *shape)``."""
        for w, d in zip(reversed(self.W), reversed(self.D)):
            u = d * self._apply_t(w, u)
        return u

    def matrix(self):
        """``J`` as a dense ``(units, units)`` matrix (forward mode on the identity, in blocks)."""
        torch = _torch()
        N = self.units
        out = torch.empty((N, N), dtype=self.tdtype, device=self.device)
        blk = max(1, min(N, (1 << 24) // max(N, 1)))
        for j0 in range(0, N, blk):
            j1 = min(N, j0 + blk)
            e = torch.zeros((j1 - j0, N), dtype=self.tdtype, device=self.device)
            e[torch.arange(j1 - j0), torch.arange(j0, j1)] = 1.0
            cols = self.jvp(e.view((j1 - j0,) + self.shape)).reshape(j1 - j0, N)
            out[:, j0:j1] = cols.T
        return out


def _lanczos(matvec, n, steps, probes, gen, dtype, device):
    """Stochastic Lanczos quadrature: Ritz values and weights for ``probes`` random unit starts.

    Full reorthogonalisation. Returns ``(theta, tau)`` arrays of shape ``(probes, m)``
    with ``Σ_j tau_j θ_j^k = vᵀ A^k v`` exactly for ``k ≤ 2m − 1``.
    """
    torch = _torch()
    m = min(steps, n)
    v = torch.randn((probes, n), generator=gen, dtype=torch.float64).to(device=device, dtype=dtype)
    v = v / v.norm(dim=1, keepdim=True)
    Q = torch.zeros((m, probes, n), dtype=dtype, device=device)
    alpha = torch.zeros((probes, m), dtype=torch.float64)
    beta = torch.zeros((probes, m), dtype=torch.float64)
    Q[0] = v
    mm = m
    for j in range(m):
        w = matvec(Q[j])
        a = (w * Q[j]).sum(dim=1)
        alpha[:, j] = a.double().cpu()
        # full reorthogonalisation (twice is enough)
        for _ in range(2):
            coef = torch.einsum("kpn,pn->kp", Q[: j + 1], w)
            w = w - torch.einsum("kp,kpn->pn", coef, Q[: j + 1])
        b = w.norm(dim=1)
        if j + 1 < m:
            beta[:, j] = b.double().cpu()
            if float(b.min()) <= 1e-12 * max(float(alpha[:, : j + 1].abs().max()), 1e-300):
                mm = j + 1
                break
            Q[j + 1] = w / b[:, None]
    thetas, taus = [], []
    for p in range(probes):
        off = beta[p, : mm - 1].numpy()
        T = np.diag(alpha[p, :mm].numpy()) + np.diag(off, 1) + np.diag(off, -1)
        th, U = np.linalg.eigh(T)
        thetas.append(th)
        taus.append(U[0] ** 2)
    return np.array(thetas), np.array(taus)


def check_spectrum_arguments(*, act: Any = "tanh", weight_var: Any = None, bias_var: Any = None, depth: Any = 16,
                             width: Any = 256, init: Any = "gaussian", conv: bool = False, kernel: Any = 3,
                             spatial: Any = 16, dims: Any = 1, variance: Any = None, input_var: Any = None,
                             seeds: Any = 4, seed: Any = 0, method: Any = "auto", lanczos_steps: Any = 64,
                             lanczos_probes: Any = 8, bins: Any = 60, device: Any = "auto",
                             dtype: Any = "float64") -> dict:
    """Validate the arguments of :func:`jacobian_spectrum` without importing torch.

    Returns the normalised values (``weight_var``/``bias_var`` filled in, ``note``,
    ``profile`` and ``variance`` for a convolution). Raises
    :class:`InvalidArgumentError` naming the first bad argument.
    """
    from .activations import get_activation
    from .cnn import resolve_variances

    out: dict[str, Any] = {}
    get_activation(act)
    out["depth"] = check_int("depth", depth, lo=1)
    out["width"] = check_int("width", width, lo=1)
    if init not in SPECTRUM_INITS:
        raise InvalidArgumentError("init", f"must be one of {', '.join(SPECTRUM_INITS)}, got {init!r}")
    if not conv and init in ("delta-orthogonal", "block-orthogonal"):
        raise InvalidArgumentError("init", f"{init} is a convolution kernel; use --conv, or orthogonal for "
                                           "dense layers")
    out["kernel"] = check_int("kernel", kernel, lo=1)
    out["spatial"] = check_int("spatial", spatial, lo=1)
    out["dims"] = d = _check_dims12(dims)
    out["seeds"] = check_int("seeds", seeds, lo=1)
    out["seed"] = check_int("seed", seed, lo=0)
    if method not in ("auto", "exact", "lanczos"):
        raise InvalidArgumentError("method", f"must be auto, exact or lanczos, got {method!r}")
    out["lanczos_steps"] = check_int("lanczos_steps", lanczos_steps, lo=2)
    out["lanczos_probes"] = check_int("lanczos_probes", lanczos_probes, lo=1)
    out["bins"] = check_int("bins", bins, lo=1)
    if input_var is not None:
        check_variance("input_var", input_var, positive=True)
    if isinstance(device, str):
        name = device.strip().lower()
        if not (name in _DEVICE_NAMES or name.startswith("cuda:")):
            raise InvalidArgumentError("device", f"must be auto, cpu or cuda, got {device!r}")
    if isinstance(dtype, str) and dtype.strip().lower() not in _DTYPE_NAMES:
        raise InvalidArgumentError("dtype", f"must be float32 or float64, got {dtype!r}")
    wv, bv, note = resolve_variances(act, weight_var, bias_var)
    out["weight_var"], out["bias_var"], out["note"] = wv, bv, note
    out["profile"], out["variance"] = None, None
    if conv:
        kinit = {"orthogonal": "delta-orthogonal"}.get(init, init)
        out["profile"], out["variance"] = _profile_for(kinit, variance, out["kernel"], d)
    elif variance is not None:
        raise InvalidArgumentError("variance", "a variance profile needs --conv")
    units = out["width"] * (out["spatial"] ** d if conv else 1)
    wbytes = out["depth"] * out["width"] ** 2 * (out["kernel"] ** d if conv else 1) * 8
    if wbytes > (8 << 30):
        raise InvalidArgumentError("width", f"the {out['depth']} stored layers need {wbytes / 2**30:.1f} GiB; "
                                            "reduce width or depth")
    out["units"] = units
    return out


def jacobian_spectrum(act: Any = "tanh", weight_var: Any = None, bias_var: Any = None, *, depth: int = 16,
                      width: int = 256, init: str = "gaussian", conv: bool = False, kernel: int = 3,
                      spatial: int = 16, dims: int = 1, variance: Any = None, input_var: float | None = None,
                      seeds: int = 4, seed: int = 0, method: str = "auto", lanczos_steps: int = 64,
                      lanczos_probes: int = 8, bins: int = 60, device: Any = "auto", dtype: Any = "float64",
                      alpha: float = FAMILY_ALPHA) -> Spectrum:
    """Spectrum of ``JJᵀ`` for random fully-connected or convolutional networks, against the theory.

    Parameters
    ----------
    act, weight_var, bias_var
        As in :func:`run_cnn` (defaults: σ_b² = 0.05 on the critical line).
    depth : int, default 16
        ``L`` layers ``h^{l+1} = W_l φ(h^l) + b_l``.
    width : int, default 256
        Units per layer (channels for a convolution).
    init : {"gaussian", "orthogonal", "delta-orthogonal", "block-orthogonal"}
        Gaussian weights ``N(0, σ_w²/fan_in)`` or orthogonal ones with gain σ_w
        (``orthogonal`` means Haar for a dense layer and Delta-Orthogonal for a
        convolution).
    conv : bool, default False
        Convolutional layers (``kernel``, ``spatial``, ``dims``, ``variance`` as in
        :func:`run_cnn`); ``J`` then acts on ``width · spatial^dims`` units.
    input_var : float, optional
        Variance of the input (default q*, so that every layer is at the fixed point).
    seeds, seed
        Networks ``seed .. seed + seeds − 1``.
    method : {"auto", "exact", "lanczos"}
        ``exact`` forms ``J`` (forward mode on the identity) and takes all singular
        values; ``lanczos`` runs stochastic Lanczos quadrature on ``JᵀJ`` with one
        JVP and one VJP per step; ``auto`` is exact up to 2048 units.
    lanczos_steps, lanczos_probes : int
        Lanczos steps and random starts per network.
    bins : int
        Histogram bins.
    device, dtype
        As in :func:`run_cnn`; float64 by default (deep Gaussian products span
        many orders of magnitude).
    alpha : float
        Family-wise false-alarm rate of the threshold.

    Returns
    -------
    Spectrum

    Notes
    -----
    The moments are compared in units of their expected error: the
    across-network standard error combined in quadrature with a finite-width
    allowance ``L(L+1)/(2N)`` on the normalised variance (``N`` = ``width``).
    That is the exact leading correction for a product of ``L`` Gaussian
    ``N × N`` matrices: Wick's theorem gives, layer by layer,
    ``E m₂ = E m₁'² + (1 + 1/N) E m₂'`` (derived), so ``m₂ = L + 1 + L(L+1)/(2N) + …``;
    measured corrections for tanh with Gaussian and orthogonal weights are of
    that size or smaller. The threshold is the Student-t quantile with
    ``seeds − 1`` degrees of freedom, Bonferroni over the three compared
    quantities. The full theoretical density is not computed.

    Examples
    --------
    >>> s = jacobian_spectrum("tanh", depth=8, width=128, init="orthogonal", seeds=2, device="cpu")  # doctest: +SKIP
    >>> round(s.theory["mean"], 3)                                                                  # doctest: +SKIP
    1.0

    References
    ----------
    Pennington, Schoenholz, Ganguli, NeurIPS 2017, arXiv:1711.04735; AISTATS 2018,
    arXiv:1802.09979; Xiao et al. 2018, arXiv:1806.05393.
    """
    t0 = time.perf_counter()
    cfg = check_spectrum_arguments(act=act, weight_var=weight_var, bias_var=bias_var, depth=depth, width=width,
                                   init=init, conv=conv, kernel=kernel, spatial=spatial, dims=dims,
                                   variance=variance, input_var=input_var, seeds=seeds, seed=seed, method=method,
                                   lanczos_steps=lanczos_steps, lanczos_probes=lanczos_probes, bins=bins,
                                   device=device, dtype=dtype)
    torch = _torch()
    L, Nw, k, n, d, S, seed0 = (cfg[x] for x in ("depth", "width", "kernel", "spatial", "dims", "seeds", "seed"))
    steps, probes, bins, wv, bv = (cfg[x] for x in ("lanczos_steps", "lanczos_probes", "bins", "weight_var",
                                                    "bias_var"))
    profile, vname = cfg["profile"], cfg["variance"]
    alpha = check_real("alpha", alpha, lo=0.0, hi=1.0, lo_open=True, hi_open=True)
    dev = resolve_device(device)
    tdtype = _resolve_dtype(dtype)
    th = spectrum_theory(act, wv, bv, L, init, input_var)
    units = cfg["units"]
    meth = method if method != "auto" else ("exact" if units <= EXACT_MAX_UNITS else "lanczos")

    m1s, vars_, nvs = [], [], []
    evs, wts = [], []
    with torch.no_grad(), _NoTF32(), _BlasThreads(1 if dev.type == "cpu" else None):
        for s in range(S):
            net = _JacobianNet(seed0 + s, act, wv, bv, L, Nw, init, conv, k, n, d, profile, th["input_var"], dev,
                               tdtype)
            if meth == "exact":
                J = net.matrix()
                sv = torch.linalg.svdvals(J.double()).cpu().numpy()
                ev = sv ** 2
                m1 = float(np.mean(ev))
                m2 = float(np.mean(ev ** 2))
                evs.append(ev)
                wts.append(np.full(ev.size, 1.0 / (ev.size * S)))
            else:
                gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed0 + s, 2, 0]).generate_state(1)[0]))

                def mv(V):
                    B = V.shape[0]
                    x = V.view((B,) + net.shape)
                    return net.vjp(net.jvp(x)).reshape(B, -1)

                theta, tau = _lanczos(mv, units, steps, probes, gen, tdtype, dev)
                m1 = float(np.mean(np.sum(tau * theta, axis=1)))
                m2 = float(np.mean(np.sum(tau * theta ** 2, axis=1)))
                evs.append(theta.ravel())
                wts.append((tau / (probes * S)).ravel())
            m1s.append(m1)
            vars_.append(m2 - m1 * m1)
            nvs.append((m2 - m1 * m1) / (m1 * m1) if m1 > 0 else math.nan)
            del net
    ev = np.concatenate(evs)
    wt = np.concatenate(wts)
    # log-spaced bins (the spectrum of a deep Gaussian network spans decades): density per decade of λ; the
    # lowest 1 % (by weight), and anything below the SVD's resolution (64 eps)^2 λ_max, are left out and counted
    # in "fraction_below"
    pos = ev[ev > 0]
    if pos.size:
        order = np.argsort(ev)
        cw = np.cumsum(wt[order])
        lo = float(ev[order][min(np.searchsorted(cw, 1e-2), ev.size - 1)])
        lo = max(lo, float(pos.min()), float(np.max(ev)) * (64 * np.finfo(np.float64).eps) ** 2)
        hi = float(np.max(ev))
        if not hi > lo:
            lo, hi = lo * 0.5, lo * 2.0
        edges = np.geomspace(lo, hi, bins + 1)
        cnt, _ = np.histogram(ev, bins=edges, weights=wt)
        dens = cnt / np.diff(np.log10(edges))
        below = float(np.sum(wt[ev < lo]))
    else:
        edges, dens, below = np.array([0.0, 1.0]), np.array([0.0]), 1.0
    emp, se, zz, err = {}, {}, {}, {}
    theory = {"mean": th["mean"], "variance": th["variance"], "normalized_variance": th["normalized_variance"]}
    # finite-width allowance: the leading O(L^2/N) correction of the normalised variance, L(L+1)/(2N), exact for
    # a product of L Gaussian N x N matrices (E m2 = (1 + 1/N) E m2' + E m1'^2 layer by layer); N = width (the
    # channels of a convolution: its Fourier blocks and Delta-Orthogonal's per-position networks are width x width)
    fs = L * (L + 1) / (2.0 * Nw)
    allow = {"mean": 0.0, "variance": fs * th["mean"] ** 2 if math.isfinite(th["mean"]) else math.nan,
             "normalized_variance": fs}
    for key, arr in (("mean", m1s), ("variance", vars_), ("normalized_variance", nvs)):
        m, e = _mean_se(np.asarray(arr, dtype=np.float64))
        emp[key], se[key] = float(m), float(e)
        err[key] = math.hypot(e, allow[key]) if S > 1 else math.nan
        with np.errstate(invalid="ignore", divide="ignore"):
            zz[key] = float((m - theory[key]) / err[key]) if S > 1 else math.nan
    thr = z_threshold(S, 3, alpha)
    finite = [abs(v) for v in zz.values() if math.isfinite(v)]
    mx = max(finite) if finite else math.nan
    notes = []
    if S < 2:
        notes.append("one network: no standard error, no z-scores")
    summary = {"max_abs_z": mx, "threshold": thr, "comparisons": 3, "seeds": S, "alpha": alpha,
               "pass": bool(finite and mx < thr and S > 1), "notes": notes,
               "finite_size_allowance": fs, "expected_error": err,
               "error_model": "across-network standard error (S-1 dof) with the finite-width allowance "
                              "L(L+1)/(2 width) on the normalised variance (times m1^2 on the variance) in "
                              "quadrature; threshold t_{S-1}(1-alpha/6)"}
    params = {"act": torch_activation(act)[2], "weight_var": wv, "bias_var": bv, "depth": L, "width": Nw,
              "init": init, "conv": bool(conv), "kernel": k if conv else None, "spatial": n if conv else None,
              "dims": d if conv else None, "variance": vname, "units": units, "input_var": th["input_var"],
              "seeds": S, "seed": seed0, "method": meth, "dtype": str(tdtype).replace("torch.", ""),
              "chi_1": th["chi_1"], "s1": th["s1"],
              "lanczos_steps": steps if meth == "lanczos" else None,
              "lanczos_probes": probes if meth == "lanczos" else None}
    return Spectrum(params=params, eigenvalues=ev, weights=wt,
                    moments={"mean": np.array(m1s), "variance": np.array(vars_), "normalized_variance": np.array(nvs)},
                    empirical=emp, stderr=se, theory=theory, z=zz,
                    histogram={"edges": edges, "density": dens, "fraction_below": below},
                    summary=summary, device=str(dev), seconds=time.perf_counter() - t0)
