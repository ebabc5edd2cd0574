"""meanfield: mean-field theory of deep fully-connected and convolutional networks.

Importing this package is cheap: numba kernels compile lazily on first use and
matplotlib, torch and typer are imported only by the modules that need them.
"""

__version__ = "0.1.0"
