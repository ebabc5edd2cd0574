"""meanfield: mean-field theory of deep fully-connected and convolutional networks.

Fixed points q*, c*, susceptibilities χ₁, χ_q, χ_c, depth scales ξ_q, ξ_c, the
critical line, phase diagrams, per-Fourier-mode depth scales of CNNs
(Xiao et al. 2018, arXiv:1806.05393), orthogonal convolution kernels and
finite-width checks.

Importing this package is cheap: numba kernels compile lazily on first use and
matplotlib, torch and typer are imported only by the modules that need them.
"""

__version__ = "0.1.0"

from ._validation import InvalidArgumentError  # noqa: E402
from .activations import Activation, get_activation, list_activations  # noqa: E402
from .core import (  # noqa: E402
    CriticalPoint, FixedPoint, cmap, critical_point, critical_weight_var, depth_scale,
    derivative_moment, gaussian_expectations, pair_expectation, point, qmap,
)

__all__ = [
    "__version__", "InvalidArgumentError", "Activation", "get_activation", "list_activations",
    "FixedPoint", "CriticalPoint", "point", "critical_weight_var", "critical_point", "qmap", "cmap",
    "gaussian_expectations", "pair_expectation", "derivative_moment", "depth_scale",
]


def __getattr__(name):  # lazy access to optional/heavier parts
    if name == "phase_diagram":
        from .phase import phase_diagram

        return phase_diagram
    raise AttributeError(f"module 'meanfield' has no attribute {name!r}")
