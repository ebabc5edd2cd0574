"""Activation functions: the named registry, user expressions and traced Python functions.

Every activation reaches the numerical kernels as a small *spec* tuple (see
:mod:`meanfield._jit.act`). Named activations are hand-written branches with
analytic derivatives. A user expression (CLI: ``--act "x*tanh(softplus(x))"``)
or a Python function (API: ``get_activation(lambda x: x * np.tanh(x))``) is
turned into an expression tree — by parsing against a whitelist, or by tracing
the function with a symbolic argument — differentiated symbolically, and
compiled to a stack program run by a Numba interpreter. No text a user types
is ever passed to ``eval``; only φ is needed from the user (THEORY.md §2).
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ._jit import act as _k
from ._validation import InvalidArgumentError

__all__ = ["Activation", "get_activation", "list_activations", "ACTIVATIONS"]


@dataclass(frozen=True)
class _Entry:
    kind: int
    description: str
    param_name: str | None = None
    param_default: float = 0.0
    kinks: tuple = ()
    panel_cap: float = math.inf
    homogeneous: bool = False
    closed_form: bool = False


ACTIVATIONS: dict[str, _Entry] = {
    "tanh": _Entry(_k.K_TANH, "hyperbolic tangent"),
    "erf": _Entry(_k.K_ERF, "error function erf(x) (closed-form Gaussian integrals)", closed_form=True),
    "relu": _Entry(_k.K_RELU, "max(x, 0) (closed-form arc-cosine kernel)", kinks=(0.0,), homogeneous=True, closed_form=True),
    "leaky_relu": _Entry(_k.K_LEAKY_RELU, "max(x, slope*x); parameter slope (default 0.01), e.g. leaky_relu:0.2",
                         "slope", 0.01, (0.0,), homogeneous=True, closed_form=True),
    "linear": _Entry(_k.K_LINEAR, "identity x (closed form)", homogeneous=True, closed_form=True),
    "hard_tanh": _Entry(_k.K_HARD_TANH, "clip(x, -1, 1)", kinks=(-1.0, 1.0)),
    "sigmoid": _Entry(_k.K_SIGMOID, "logistic 1/(1+exp(-x))"),
    "softplus": _Entry(_k.K_SOFTPLUS, "log(1+exp(x))"),
    "elu": _Entry(_k.K_ELU, "x if x>0 else alpha*(exp(x)-1); parameter alpha (default 1), e.g. elu:0.5",
                  "alpha", 1.0, (0.0,)),
    "selu": _Entry(_k.K_SELU, "scaled ELU (Klambauer et al. 2017)", kinks=(0.0,)),
    "gelu": _Entry(_k.K_GELU, "x*Phi(x), exact (erf) form"),
    "swish": _Entry(_k.K_SWISH, "x*sigmoid(x) (also: silu)"),
    "sin": _Entry(_k.K_SIN, "sine", panel_cap=4.0),
}
_ALIASES = {"silu": "swish", "hardtanh": "hard_tanh", "identity": "linear", "leakyrelu": "leaky_relu"}

_EMPTY_PROG = np.zeros((0, 2), dtype=np.int64)
_EMPTY_F = np.zeros(0, dtype=np.float64)


@dataclass(frozen=True, eq=False)
class Activation:
    """A nonlinearity φ as the mean-field kernels see it.

    Build one with :func:`get_activation`. Call it (``act(x)``) for φ and use
    :meth:`derivative` for φ'.

    Attributes
    ----------
    name : str
        Registry name, ``name:param`` for parametrised ones, or the expression text.
    kind : int
        Kernel code (``0`` for compiled expressions).
    param : float
        The parameter of parametrised activations (leaky slope, ELU alpha), else 0.
    expression : str or None
        Canonical form of a user expression or traced function.
    kinks : tuple of float
        Pre-activation values where φ' jumps; used as quadrature breakpoints.
    homogeneous : bool
        φ(a x) = a φ(x) for a > 0 (ReLU family, linear): the maps scale linearly in q
        and no finite q* exists for σ_w² at or above the critical value when σ_b² > 0.
    closed_form : bool
        Gaussian expectations use closed forms instead of quadrature.
    """

    name: str
    kind: int
    param: float = 0.0
    expression: str | None = None
    kinks: tuple = ()
    panel_cap: float = math.inf
    homogeneous: bool = False
    closed_form: bool = False
    description: str = ""
    spec: tuple = field(default=None, repr=False)

    @property
    def phi0(self) -> float:
        """φ(0)."""
        return float(self(np.zeros(1))[0])

    def __call__(self, x):
        """φ(x), elementwise (float64)."""
        x = np.asarray(x, dtype=np.float64)
        flat = np.ascontiguousarray(x.ravel())
        f = np.empty_like(flat)
        d = np.empty_like(flat)
        _k.eval_array(self.spec, flat, f, d)
        return f.reshape(x.shape)

    def derivative(self, x):
        """φ'(x), elementwise (analytic or symbolic, never finite differences)."""
        x = np.asarray(x, dtype=np.float64)
        flat = np.ascontiguousarray(x.ravel())
        f = np.empty_like(flat)
        d = np.empty_like(flat)
        _k.eval_array(self.spec, flat, f, d)
        return d.reshape(x.shape)

    def __str__(self) -> str:
        return self.name


def list_activations() -> dict[str, str]:
    """Names of the registered activations and one-line descriptions.

    Returns
    -------
    dict
        ``{name: description}``; aliases are listed in the description.
    """
    return {k: v.description for k, v in ACTIVATIONS.items()}


def _spec(kind, param, cap, kinks, prog=_EMPTY_PROG, consts=_EMPTY_F, dprog=_EMPTY_PROG, dconsts=_EMPTY_F):
    par = np.array([param, 0.0, 0.0, cap], dtype=np.float64)
    return (np.int64(kind), par, prog, consts, dprog, dconsts, np.asarray(kinks, dtype=np.float64))


_NAME_RE = re.compile(r"^[A-Za-z_]+$")


def get_activation(act: "str | Activation | Callable", **params: Any) -> Activation:
    """Resolve a name, an expression or a Python function into an :class:`Activation`.

    Parameters
    ----------
    act : str, Activation or callable
        A registered name (``"tanh"``, ``"leaky_relu"``), a name with its parameter
        (``"leaky_relu:0.2"``, ``"elu:0.5"``), an expression in ``x``
        (``"x*tanh(softplus(x))"``, ``"where(x > 0, x, 0.1*x)"``), or a Python
        function of one argument written with numpy ufuncs (``lambda x: np.tanh(x) + 0.1*x``),
        which is traced symbolically.
    **params
        The parameter of a parametrised activation by name (``slope=0.2``, ``alpha=0.5``).

    Returns
    -------
    Activation

    Raises
    ------
    InvalidArgumentError
        Unknown name (the message lists the known ones), malformed expression, or a
        function that cannot be traced.

    Examples
    --------
    >>> from meanfield.activations import get_activation
    >>> get_activation("leaky_relu", slope=0.2).name
    'leaky_relu:0.2'
    >>> float(get_activation("x*x")(3.0))
    9.0
    """
    if isinstance(act, Activation):
        if params:
            raise InvalidArgumentError("act", "parameters cannot be given with an Activation instance")
        return act
    if callable(act) and not isinstance(act, str):
        tree = _trace(act)
        label = getattr(act, "__name__", "function")
        return _from_tree(tree, label if label != "<lambda>" else _to_str(tree))
    if not isinstance(act, str):
        raise InvalidArgumentError("act", f"must be a name, an expression or a function, got {type(act).__name__}")
    text = act.strip()
    if not text:
        raise InvalidArgumentError("act", "empty activation")
    name, _, ptext = text.partition(":")
    key = _ALIASES.get(name.strip().lower(), name.strip().lower())
    if _NAME_RE.match(name.strip()) and (key in ACTIVATIONS):
        entry = ACTIVATIONS[key]
        if ptext and entry.param_name is None:
            raise InvalidArgumentError("act", f"activation {key!r} takes no parameter")
        value = entry.param_default
        if ptext:
            try:
                value = float(ptext)
            except ValueError:
                raise InvalidArgumentError("act", f"parameter of {key!r} must be a number, got {ptext!r}") from None
        for pname, pval in params.items():
            if pname != entry.param_name:
                raise InvalidArgumentError("act", f"activation {key!r} has no parameter {pname!r}")
            value = float(pval)
        if not math.isfinite(value):
            raise InvalidArgumentError("act", f"parameter of {key!r} must be finite")
        if key == "elu" and value < 0:
            raise InvalidArgumentError("act", "elu alpha must be >= 0")
        label = key if (not ptext and not params) else f"{key}:{value:g}"
        return Activation(label, entry.kind, value, None, entry.kinks, entry.panel_cap, entry.homogeneous,
                          entry.closed_form, entry.description, _spec(entry.kind, value, entry.panel_cap, entry.kinks))
    if params:
        raise InvalidArgumentError("act", "parameters can only be given to named activations")
    if _NAME_RE.match(text) and text != "x":
        known = ", ".join(sorted(ACTIVATIONS))
        raise InvalidArgumentError("act", f"unknown activation {text!r}; known: {known} (or an expression in x)")
    tree = _parse(text)
    return _from_tree(tree, text)


# ---------------------------------------------------------------------------
# Expression trees: ('x',), ('c', v), ('u', op, a), ('b', op, a, b), ('w', cond, a, b)
# ---------------------------------------------------------------------------
X = ("x",)


def C(v):
    return ("c", float(v))


_FUNCS_1 = {
    "exp": "exp", "log": "log", "ln": "log", "log1p": "log1p", "expm1": "expm1", "sqrt": "sqrt",
    "sin": "sin", "cos": "cos", "tan": "tan", "tanh": "tanh", "sinh": "sinh", "cosh": "cosh",
    "arctan": "arctan", "atan": "arctan", "arcsinh": "arcsinh", "asinh": "arcsinh", "erf": "erf", "erfc": "erfc",
    "abs": "abs", "sign": "sign", "sigmoid": "sigmoid", "softplus": "softplus", "relu": "relu", "square": "square",
}
_FUNCS_2 = {"max": "max", "maximum": "max", "min": "min", "minimum": "min", "pow": "pow"}
_CMP = {ast.Gt: "gt", ast.GtE: "ge", ast.Lt: "lt", ast.LtE: "le"}
_BIN = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow"}
_NAMES = {"pi": math.pi, "e": math.e}
_MAX_LEN = 1000
_MAX_NODES = 400


def _allowed_text() -> str:
    return ("allowed: numbers, x, pi, e, + - * / ** and comparisons, and the functions "
            + ", ".join(sorted(set(_FUNCS_1) | set(_FUNCS_2) | {"where"})))


def _parse(text: str):
    if len(text) > _MAX_LEN:
        raise InvalidArgumentError("act", f"expression longer than {_MAX_LEN} characters")
    try:
        tree = ast.parse(text.replace("^", "**"), mode="eval")
    except SyntaxError as exc:
        raise InvalidArgumentError("act", f"malformed expression {text!r} ({exc.msg})") from None
    count = [0]

    def conv(node):
        count[0] += 1
        if count[0] > _MAX_NODES:
            raise InvalidArgumentError("act", "expression too large")
        if isinstance(node, ast.Expression):
            return conv(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return C(node.value)
        if isinstance(node, ast.Name):
            if node.id == "x":
                return X
            if node.id in _NAMES:
                return C(_NAMES[node.id])
            raise InvalidArgumentError("act", f"unknown name {node.id!r} in expression; the variable is x; {_allowed_text()}")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            a = conv(node.operand)
            return ("u", "neg", a) if isinstance(node.op, ast.USub) else a
        if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            return ("b", _BIN[type(node.op)], conv(node.left), conv(node.right))
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _CMP:
            return ("b", _CMP[type(node.ops[0])], conv(node.left), conv(node.comparators[0]))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and not node.keywords:
            fname = node.func.id
            args = [conv(a) for a in node.args]
            if fname in _FUNCS_1 and len(args) == 1:
                return _unary(_FUNCS_1[fname], args[0])
            if fname in _FUNCS_2 and len(args) == 2:
                return ("b", _FUNCS_2[fname], args[0], args[1])
            if fname == "where" and len(args) == 3:
                return ("w", args[0], args[1], args[2])
            if fname in _FUNCS_1 or fname in _FUNCS_2 or fname == "where":
                raise InvalidArgumentError("act", f"wrong number of arguments to {fname}() in expression")
            raise InvalidArgumentError("act", f"unknown function {fname!r} in expression; {_allowed_text()}")
        raise InvalidArgumentError("act", f"unsupported syntax in expression {text!r}; {_allowed_text()}")

    return _simplify(conv(tree))


def _unary(op, a):
    if op == "relu":
        return ("b", "max", a, C(0.0))
    if op == "square":
        return ("b", "pow", a, C(2.0))
    return ("u", op, a)


# --- tracing Python functions ----------------------------------------------
_UFUNC_1 = {"tanh": "tanh", "exp": "exp", "log": "log", "log1p": "log1p", "expm1": "expm1", "sqrt": "sqrt",
            "sin": "sin", "cos": "cos", "tan": "tan", "sinh": "sinh", "cosh": "cosh", "arctan": "arctan",
            "arcsinh": "arcsinh", "absolute": "abs", "fabs": "abs", "sign": "sign", "negative": "neg", "erf": "erf",
            "erfc": "erfc", "expit": "sigmoid", "square": "square", "positive": "pos"}
_UFUNC_2 = {"add": "add", "subtract": "sub", "multiply": "mul", "true_divide": "div", "divide": "div",
            "power": "pow", "float_power": "pow", "maximum": "max", "minimum": "min", "fmax": "max", "fmin": "min",
            "greater": "gt", "greater_equal": "ge", "less": "lt", "less_equal": "le"}


def _lift(v):
    if isinstance(v, _Sym):
        return v.node
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)):
        return C(float(v))
    if isinstance(v, np.ndarray) and v.ndim == 0:
        return C(float(v))
    raise TypeError(f"unsupported value {v!r} in traced activation")


class _Sym:
    """Symbolic stand-in for x while tracing a user function."""

    __array_priority__ = 1000

    def __init__(self, node):
        self.node = node

    def _b(self, op, other, rev=False):
        o = _lift(other)
        return _Sym(("b", op, o, self.node) if rev else ("b", op, self.node, o))

    __add__ = lambda s, o: s._b("add", o)
    __radd__ = lambda s, o: s._b("add", o, True)
    __sub__ = lambda s, o: s._b("sub", o)
    __rsub__ = lambda s, o: s._b("sub", o, True)
    __mul__ = lambda s, o: s._b("mul", o)
    __rmul__ = lambda s, o: s._b("mul", o, True)
    __truediv__ = lambda s, o: s._b("div", o)
    __rtruediv__ = lambda s, o: s._b("div", o, True)
    __pow__ = lambda s, o: s._b("pow", o)
    __rpow__ = lambda s, o: s._b("pow", o, True)
    __gt__ = lambda s, o: s._b("gt", o)
    __ge__ = lambda s, o: s._b("ge", o)
    __lt__ = lambda s, o: s._b("lt", o)
    __le__ = lambda s, o: s._b("le", o)
    __neg__ = lambda s: _Sym(("u", "neg", s.node))
    __pos__ = lambda s: s
    __abs__ = lambda s: _Sym(("u", "abs", s.node))

    def __bool__(self):
        raise TypeError("Python control flow on x (if/and/or/comparisons used as booleans) cannot be traced; "
                        "use np.where(cond, a, b)")

    def __float__(self):
        raise TypeError("math-module functions cannot be traced; use numpy ufuncs (np.tanh, np.exp, ...)")

    __int__ = __float__
    __index__ = __float__

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if method != "__call__" or kwargs.get("out") is not None:
            return NotImplemented
        name = ufunc.__name__
        if name in _UFUNC_1 and len(inputs) == 1:
            op = _UFUNC_1[name]
            a = _lift(inputs[0])
            return _Sym(a if op == "pos" else _unary(op, a))
        if name in _UFUNC_2 and len(inputs) == 2:
            return _Sym(("b", _UFUNC_2[name], _lift(inputs[0]), _lift(inputs[1])))
        raise TypeError(f"numpy function {name!r} is not supported in traced activations")

    def __array_function__(self, func, types, args, kwargs):
        if func is np.where and len(args) == 3 and not kwargs:
            return _Sym(("w", _lift(args[0]), _lift(args[1]), _lift(args[2])))
        if func is np.clip:
            a, lo, hi = (list(args) + [kwargs.get("a_min"), kwargs.get("a_max")])[:3]
            node = _lift(a)
            if lo is not None:
                node = ("b", "max", node, _lift(lo))
            if hi is not None:
                node = ("b", "min", node, _lift(hi))
            return _Sym(node)
        raise TypeError(f"numpy function {func.__name__!r} is not supported in traced activations")


def _trace(fn):
    label = getattr(fn, "__name__", "function")
    try:
        out = fn(_Sym(X))
        node = _lift(out)
    except InvalidArgumentError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot trace"
        raise InvalidArgumentError(
            "act", f"could not trace Python function {label!r}: {exc}. Write it with numpy ufuncs on its argument "
            "(np.tanh, np.exp, np.where, ...)") from None
    return _simplify(node)


# --- simplification, differentiation, printing ------------------------------
_FOLD1 = {"neg": lambda a: -a, "exp": math.exp, "log": math.log, "log1p": math.log1p, "expm1": math.expm1,
          "sqrt": math.sqrt, "sin": math.sin, "cos": math.cos, "tan": math.tan, "tanh": math.tanh,
          "sinh": math.sinh, "cosh": math.cosh, "arctan": math.atan, "arcsinh": math.asinh, "erf": math.erf,
          "erfc": math.erfc, "abs": abs, "sign": lambda a: float(np.sign(a)),
          "sigmoid": lambda a: 1 / (1 + math.exp(-a)), "softplus": lambda a: math.log1p(math.exp(a))}
_FOLD2 = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
          "div": lambda a, b: a / b, "pow": lambda a, b: a ** b, "max": max, "min": min,
          "gt": lambda a, b: float(a > b), "ge": lambda a, b: float(a >= b),
          "lt": lambda a, b: float(a < b), "le": lambda a, b: float(a <= b)}


def _isc(n, v=None):
    return n[0] == "c" and (v is None or n[1] == v)


def _simplify(n):
    t = n[0]
    if t in ("x", "c"):
        return n
    if t == "u":
        a = _simplify(n[2])
        op = n[1]
        if _isc(a):
            try:
                v = _FOLD1[op](a[1])
                if isinstance(v, float) and math.isfinite(v):
                    return C(v)
            except (ValueError, OverflowError, ZeroDivisionError):
                pass
        if op == "neg" and a[0] == "u" and a[1] == "neg":
            return a[2]
        # log(1 + exp(a)) and log1p(exp(a)) -> softplus(a): stable for large a
        if op == "log1p" and a[0] == "u" and a[1] == "exp":
            return ("u", "softplus", a[2])
        if op == "log" and a[0] == "b" and a[1] == "add":
            l, r = a[2], a[3]
            if _isc(l, 1.0) and r[0] == "u" and r[1] == "exp":
                return ("u", "softplus", r[2])
            if _isc(r, 1.0) and l[0] == "u" and l[1] == "exp":
                return ("u", "softplus", l[2])
        return ("u", op, a)
    if t == "w":
        c, a, b = (_simplify(m) for m in n[1:])
        if _isc(c):
            return a if c[1] != 0.0 else b
        return ("w", c, a, b)
    op, a, b = n[1], _simplify(n[2]), _simplify(n[3])
    if _isc(a) and _isc(b):
        try:
            v = _FOLD2[op](a[1], b[1])
            if math.isfinite(v):
                return C(v)
        except (ValueError, OverflowError, ZeroDivisionError):
            pass
    if op == "add":
        if _isc(a, 0.0):
            return b
        if _isc(b, 0.0):
            return a
    elif op == "sub":
        if _isc(b, 0.0):
            return a
        if _isc(a, 0.0):
            return ("u", "neg", b)
    elif op == "mul":
        if _isc(a, 0.0) or _isc(b, 0.0):
            return C(0.0)
        if _isc(a, 1.0):
            return b
        if _isc(b, 1.0):
            return a
    elif op == "div":
        if _isc(a, 0.0):
            return C(0.0)
        if _isc(b, 1.0):
            return a
        # 1 / (1 + exp(-a)) -> sigmoid(a)
        if _isc(a, 1.0) and b[0] == "b" and b[1] == "add" and _isc(b[2], 1.0) and b[3][0] == "u" \
                and b[3][1] == "exp":
            inner = b[3][2]
            return ("u", "sigmoid", inner[2] if inner[0] == "u" and inner[1] == "neg" else ("u", "neg", inner))
    elif op == "pow":
        if _isc(b, 1.0):
            return a
        if _isc(b, 0.0):
            return C(1.0)
    return ("b", op, a, b)


def _d(n):
    """Symbolic derivative d n / d x."""
    t = n[0]
    if t == "x":
        return C(1.0)
    if t == "c":
        return C(0.0)
    if t == "w":
        return ("w", n[1], _d(n[2]), _d(n[3]))
    if t == "u":
        op, a = n[1], n[2]
        da = _d(a)
        if op == "neg":
            g = C(-1.0)
        elif op == "exp":
            g = n
        elif op == "log":
            g = ("b", "div", C(1.0), a)
        elif op == "log1p":
            g = ("b", "div", C(1.0), ("b", "add", C(1.0), a))
        elif op == "expm1":
            g = ("u", "exp", a)
        elif op == "sqrt":
            g = ("b", "div", C(0.5), n)
        elif op == "sin":
            g = ("u", "cos", a)
        elif op == "cos":
            g = ("u", "neg", ("u", "sin", a))
        elif op == "tan":
            g = ("b", "add", C(1.0), ("b", "pow", n, C(2.0)))
        elif op == "tanh":
            g = ("b", "sub", C(1.0), ("b", "pow", n, C(2.0)))
        elif op == "sinh":
            g = ("u", "cosh", a)
        elif op == "cosh":
            g = ("u", "sinh", a)
        elif op == "arctan":
            g = ("b", "div", C(1.0), ("b", "add", C(1.0), ("b", "pow", a, C(2.0))))
        elif op == "arcsinh":
            g = ("b", "div", C(1.0), ("u", "sqrt", ("b", "add", C(1.0), ("b", "pow", a, C(2.0)))))
        elif op == "erf":
            g = ("b", "mul", C(2.0 / math.sqrt(math.pi)), ("u", "exp", ("u", "neg", ("b", "pow", a, C(2.0)))))
        elif op == "erfc":
            g = ("b", "mul", C(-2.0 / math.sqrt(math.pi)), ("u", "exp", ("u", "neg", ("b", "pow", a, C(2.0)))))
        elif op == "abs":
            g = ("u", "sign", a)
        elif op == "sign":
            g = C(0.0)
        elif op == "sigmoid":
            g = ("b", "mul", n, ("b", "sub", C(1.0), n))
        elif op == "softplus":
            g = ("u", "sigmoid", a)
        else:  # pragma: no cover
            raise AssertionError(op)
        return ("b", "mul", g, da)
    op, a, b = n[1], n[2], n[3]
    if op in ("gt", "ge", "lt", "le"):
        return C(0.0)
    da, db = _d(a), _d(b)
    if op == "add":
        return ("b", "add", da, db)
    if op == "sub":
        return ("b", "sub", da, db)
    if op == "mul":
        return ("b", "add", ("b", "mul", da, b), ("b", "mul", a, db))
    if op == "div":
        return ("b", "sub", ("b", "div", da, b), ("b", "div", ("b", "mul", a, db), ("b", "pow", b, C(2.0))))
    if op == "pow":
        if _isc(b):
            return ("b", "mul", ("b", "mul", b, ("b", "pow", a, C(b[1] - 1.0))), da)
        return ("b", "mul", n, ("b", "add", ("b", "mul", db, ("u", "log", a)), ("b", "div", ("b", "mul", b, da), a)))
    if op == "max":
        return ("w", ("b", "ge", a, b), da, db)
    if op == "min":
        return ("w", ("b", "le", a, b), da, db)
    raise AssertionError(op)  # pragma: no cover


_SYM = {"add": "+", "sub": "-", "mul": "*", "div": "/", "pow": "**", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _to_str(n) -> str:
    t = n[0]
    if t == "x":
        return "x"
    if t == "c":
        return repr(n[1]) if n[1] != int(n[1]) or abs(n[1]) > 1e15 else str(int(n[1]))
    if t == "u":
        return f"-({_to_str(n[2])})" if n[1] == "neg" else f"{n[1]}({_to_str(n[2])})"
    if t == "w":
        return f"where({_to_str(n[1])}, {_to_str(n[2])}, {_to_str(n[3])})"
    if n[1] in _SYM:
        return f"({_to_str(n[2])} {_SYM[n[1]]} {_to_str(n[3])})"
    return f"{n[1]}({_to_str(n[2])}, {_to_str(n[3])})"


def _compile(n):
    prog: list[tuple[int, int]] = []
    consts: list[float] = []

    def emit(m):
        t = m[0]
        if t == "x":
            prog.append((_k.OP_X, 0))
        elif t == "c":
            consts.append(m[1])
            prog.append((_k.OP_CONST, len(consts) - 1))
        elif t == "u":
            emit(m[2])
            prog.append((_k.UNARY_OPS[m[1]], 0))
        elif t == "w":
            emit(m[1]), emit(m[2]), emit(m[3])
            prog.append((_k.OP_WHERE, 0))
        else:
            emit(m[2]), emit(m[3])
            prog.append((_k.BINARY_OPS[m[1]], 0))

    emit(n)
    return np.array(prog, dtype=np.int64).reshape(-1, 2), np.array(consts, dtype=np.float64)


def _contains(n, ops) -> bool:
    if n[0] in ("x", "c"):
        return False
    if n[0] in ("u", "b") and n[1] in ops:
        return True
    return any(_contains(m, ops) for m in n[1:] if isinstance(m, tuple))


def _from_tree(tree, label: str) -> Activation:
    if not _mentions_x(tree):
        raise InvalidArgumentError("act", f"expression {label!r} does not depend on x")
    dtree = _simplify(_d(tree))
    prog, consts = _compile(tree)
    dprog, dconsts = _compile(dtree)
    # oscillating expressions: panels at most 4 pre-activation units wide (GL-12 resolves
    # sin on half-widths <= 2 rad to ~1e-17); non-oscillating ones need no cap
    cap = 4.0 if _contains(tree, ("sin", "cos", "tan")) else math.inf
    spec = _spec(_k.K_EXPR, 0.0, cap, (0.0,), prog, consts, dprog, dconsts)
    return Activation(label, _k.K_EXPR, 0.0, _to_str(tree), (0.0,), cap, False, False,
                      f"user expression {_to_str(tree)}", spec)


def _mentions_x(n) -> bool:
    if n[0] == "x":
        return True
    if n[0] == "c":
        return False
    return any(_mentions_x(m) for m in n[1:] if isinstance(m, tuple))
