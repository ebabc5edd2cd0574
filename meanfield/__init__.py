"""meanfield: mean-field theory of deep fully-connected and convolutional networks.

Fixed points q*, c*, susceptibilities χ₁, χ_q, χ_c, depth scales ξ_q, ξ_c, the
critical line, phase diagrams, per-Fourier-mode depth scales of CNNs
(Xiao et al. 2018, arXiv:1806.05393), orthogonal convolution kernels and
finite-width checks.

Importing this package is cheap: the public names are loaded on first access,
numba kernels compile lazily on first call, and matplotlib, torch and typer are
imported only by the modules that need them.

References
----------
.. [1] Poole et al., arXiv:1606.05340. .. [2] Schoenholz et al., arXiv:1611.01232.
.. [3] Xiao et al., arXiv:1806.05393. .. [4] Pennington et al., arXiv:1711.04735, 1802.09979.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "InvalidArgumentError": "._validation",
    "Activation": ".activations", "get_activation": ".activations", "list_activations": ".activations",
    "FixedPoint": ".core", "CriticalPoint": ".core", "point": ".core", "critical_weight_var": ".core",
    "critical_point": ".core", "qmap": ".core", "cmap": ".core", "gaussian_expectations": ".core",
    "pair_expectation": ".core", "derivative_moment": ".core", "depth_scale": ".core",
    "phase_diagram": ".phase", "critical_line": ".phase",
}
_SUBMODULES = {"activations", "core", "phase", "cnn", "profiles", "kernels", "init", "empirical", "plotting"}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module("." + name, __name__)
    raise AttributeError(f"module 'meanfield' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__) | _SUBMODULES)
