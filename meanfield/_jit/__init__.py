"""Private Numba kernels: arrays in, arrays out; no validation, no RNG, no Python objects.

Everything here compiles lazily (on first call) and is cached on disk
(``cache=True``). Never ``fastmath``: it would fold the ``isnan``/``isinf``
checks that report failures.
"""
