"""Activation evaluation inside kernels.

An activation reaches a kernel as a *spec* tuple
``(kind, par, prog, consts, dprog, dconsts, kinks)``:

- ``kind``: integer code (``K_*`` below); ``K_EXPR`` runs the stack programs.
- ``par``: float64[4]; ``par[0]`` the activation's parameter (leaky slope, elu alpha),
  ``par[3]`` the widest quadrature panel allowed in pre-activation units (``inf`` if none;
  finite for oscillating functions).
- ``prog``/``dprog``: int64[n, 2] stack programs (opcode, argument) for φ and φ'.
- ``consts``/``dconsts``: the programs' constants.
- ``kinks``: float64[:] pre-activation values where φ' jumps (quadrature breakpoints).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# --- activation kinds -------------------------------------------------------
K_EXPR = 0
K_TANH = 1
K_ERF = 2
K_RELU = 3
K_LEAKY_RELU = 4
K_LINEAR = 5
K_HARD_TANH = 6
K_SIGMOID = 7
K_SOFTPLUS = 8
K_ELU = 9
K_SELU = 10
K_GELU = 11
K_SWISH = 12
K_SIN = 13

SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

# --- stack-program opcodes --------------------------------------------------
OP_X, OP_CONST = 0, 1
OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_POW = 2, 3, 4, 5, 6
OP_NEG = 7
OP_EXP, OP_LOG, OP_LOG1P, OP_EXPM1, OP_SQRT = 8, 9, 10, 11, 12
OP_SIN, OP_COS, OP_TAN, OP_TANH, OP_SINH, OP_COSH = 13, 14, 15, 16, 17, 18
OP_ARCTAN, OP_ARCSINH, OP_ERF, OP_ABS, OP_SIGN = 19, 20, 21, 22, 23
OP_MAX, OP_MIN = 24, 25
OP_GT, OP_GE, OP_LT, OP_LE = 26, 27, 28, 29
OP_WHERE = 30
OP_SIGMOID, OP_SOFTPLUS, OP_ERFC = 31, 32, 33

UNARY_OPS = {
    "exp": OP_EXP, "log": OP_LOG, "log1p": OP_LOG1P, "expm1": OP_EXPM1, "sqrt": OP_SQRT,
    "sin": OP_SIN, "cos": OP_COS, "tan": OP_TAN, "tanh": OP_TANH, "sinh": OP_SINH, "cosh": OP_COSH,
    "arctan": OP_ARCTAN, "arcsinh": OP_ARCSINH, "erf": OP_ERF, "erfc": OP_ERFC, "abs": OP_ABS, "sign": OP_SIGN,
    "sigmoid": OP_SIGMOID, "softplus": OP_SOFTPLUS, "neg": OP_NEG,
}
BINARY_OPS = {
    "add": OP_ADD, "sub": OP_SUB, "mul": OP_MUL, "div": OP_DIV, "pow": OP_POW,
    "max": OP_MAX, "min": OP_MIN, "gt": OP_GT, "ge": OP_GE, "lt": OP_LT, "le": OP_LE,
}


@njit(cache=True)
def _sigmoid(x):
    if x >= 0.0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


@njit(cache=True)
def _softplus(x):
    if x > 0.0:
        return x + math.log1p(math.exp(-x))
    return math.log1p(math.exp(x))


@njit(cache=True)
def run_program(prog, consts, x, stack):
    """Evaluate a stack program at the scalar ``x`` using the work array ``stack``."""
    sp = 0
    for i in range(prog.shape[0]):
        op = prog[i, 0]
        if op == OP_X:
            stack[sp] = x
            sp += 1
        elif op == OP_CONST:
            stack[sp] = consts[prog[i, 1]]
            sp += 1
        elif op <= OP_POW or (op >= OP_MAX and op <= OP_LE):
            b = stack[sp - 1]
            a = stack[sp - 2]
            sp -= 1
            if op == OP_ADD:
                r = a + b
            elif op == OP_SUB:
                r = a - b
            elif op == OP_MUL:
                r = a * b
            elif op == OP_DIV:
                r = a / b
            elif op == OP_POW:
                if b == 2.0:
                    r = a * a
                elif b == 3.0:
                    r = a * a * a
                elif a < 0.0 and b == math.floor(b):
                    r = math.pow(a, b)
                else:
                    r = a ** b
            elif op == OP_MAX:
                r = a if a >= b else b
            elif op == OP_MIN:
                r = a if a <= b else b
            elif op == OP_GT:
                r = 1.0 if a > b else 0.0
            elif op == OP_GE:
                r = 1.0 if a >= b else 0.0
            elif op == OP_LT:
                r = 1.0 if a < b else 0.0
            else:
                r = 1.0 if a <= b else 0.0
            stack[sp - 1] = r
        elif op == OP_WHERE:
            b = stack[sp - 1]
            a = stack[sp - 2]
            c = stack[sp - 3]
            sp -= 2
            stack[sp - 1] = a if c != 0.0 else b
        else:
            a = stack[sp - 1]
            if op == OP_NEG:
                r = -a
            elif op == OP_EXP:
                r = math.exp(a) if a < 709.0 else math.inf
            elif op == OP_LOG:
                r = math.log(a) if a > 0.0 else (-math.inf if a == 0.0 else math.nan)
            elif op == OP_LOG1P:
                r = math.log1p(a) if a > -1.0 else (-math.inf if a == -1.0 else math.nan)
            elif op == OP_EXPM1:
                r = math.expm1(a) if a < 709.0 else math.inf
            elif op == OP_SQRT:
                r = math.sqrt(a) if a >= 0.0 else math.nan
            elif op == OP_SIN:
                r = math.sin(a)
            elif op == OP_COS:
                r = math.cos(a)
            elif op == OP_TAN:
                r = math.tan(a)
            elif op == OP_TANH:
                r = math.tanh(a)
            elif op == OP_SINH:
                r = math.sinh(a) if abs(a) < 709.0 else math.copysign(math.inf, a)
            elif op == OP_COSH:
                r = math.cosh(a) if abs(a) < 709.0 else math.inf
            elif op == OP_ARCTAN:
                r = math.atan(a)
            elif op == OP_ARCSINH:
                r = math.asinh(a)
            elif op == OP_ERF:
                r = math.erf(a)
            elif op == OP_ERFC:
                r = math.erfc(a)
            elif op == OP_ABS:
                r = abs(a)
            elif op == OP_SIGN:
                r = 1.0 if a > 0.0 else (-1.0 if a < 0.0 else 0.0)
            elif op == OP_SIGMOID:
                r = _sigmoid(a)
            else:  # OP_SOFTPLUS
                r = _softplus(a)
            stack[sp - 1] = r
    return stack[0]


@njit(cache=True)
def phi_dphi(spec, x, stack):
    """Return ``(φ(x), φ'(x))`` for the activation ``spec``."""
    kind = spec[0]
    if kind == K_TANH:
        t = math.tanh(x)
        return t, 1.0 - t * t
    if kind == K_ERF:
        return math.erf(x), 1.1283791670955126 * math.exp(-x * x)
    if kind == K_RELU:
        return (x, 1.0) if x > 0.0 else (0.0, 0.0)
    if kind == K_LEAKY_RELU:
        a = spec[1][0]
        return (x, 1.0) if x > 0.0 else (a * x, a)
    if kind == K_LINEAR:
        return x, 1.0
    if kind == K_HARD_TANH:
        if x >= 1.0:
            return 1.0, 0.0
        if x <= -1.0:
            return -1.0, 0.0
        return x, 1.0
    if kind == K_SIGMOID:
        s = _sigmoid(x)
        return s, s * (1.0 - s)
    if kind == K_SOFTPLUS:
        return _softplus(x), _sigmoid(x)
    if kind == K_ELU:
        a = spec[1][0]
        if x > 0.0:
            return x, 1.0
        return a * math.expm1(x), a * math.exp(x)
    if kind == K_SELU:
        if x > 0.0:
            return SELU_SCALE * x, SELU_SCALE
        return SELU_SCALE * SELU_ALPHA * math.expm1(x), SELU_SCALE * SELU_ALPHA * math.exp(x)
    if kind == K_GELU:
        cdf = 0.5 * math.erfc(-x * 0.7071067811865476)
        return x * cdf, cdf + x * 0.3989422804014327 * math.exp(-0.5 * x * x)
    if kind == K_SWISH:
        s = _sigmoid(x)
        return x * s, s + x * s * (1.0 - s)
    if kind == K_SIN:
        return math.sin(x), math.cos(x)
    # K_EXPR
    return run_program(spec[2], spec[3], x, stack), run_program(spec[4], spec[5], x, stack)


@njit(cache=True)
def relu_family_slope(spec):
    """α for φ = max(x, αx) (relu 0, leaky_relu its slope, linear 1); NaN for other activations."""
    k = spec[0]
    if k == K_RELU:
        return 0.0
    if k == K_LEAKY_RELU:
        return spec[1][0]
    if k == K_LINEAR:
        return 1.0
    return math.nan


@njit(cache=True)
def make_stack(spec):
    n = max(spec[2].shape[0], spec[4].shape[0], 1)
    return np.empty(n + 1, dtype=np.float64)


@njit(cache=True)
def eval_array(spec, x, out_phi, out_dphi):
    """Vectorised ``φ`` and ``φ'`` over the array ``x``."""
    stack = make_stack(spec)
    for i in range(x.shape[0]):
        f, d = phi_dphi(spec, x[i], stack)
        out_phi[i] = f
        out_dphi[i] = d
