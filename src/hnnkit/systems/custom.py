r"""A Hamiltonian supplied by the user: a torch callable or a formula string.

Formula strings are parsed with SymPy from an allow-list of tokens and turned into torch
operations by walking the expression tree. Nothing is ever ``eval``'d on the raw text:
before SymPy sees the string, every identifier must be a coordinate (``q1..qn``,
``p1..pn``, or ``q``/``p`` when ``dof = 1``), a named parameter, a known function or a
known constant, and only arithmetic characters may appear.

Before SymPy evaluates anything, the formula is parsed into a Python syntax tree (parsed
only, never compiled or run) and bounded, so that a short formula cannot make SymPy compute
an astronomically large exact number or recurse without end:

* at most :data:`MAX_FORMULA_LENGTH` (2000) characters;
* at most :data:`MAX_NESTING` (50) levels of nesting (parentheses, function calls, powers
  and unary signs each count one level);
* every number literal at most :data:`MAX_LITERAL` (1e15) in magnitude;
* every exponent that is a number (a constant subexpression, parameters included) at most
  :data:`MAX_EXPONENT` (100) in magnitude, and every constant subexpression at most 1e300
  in magnitude (beyond float64's range).
"""

from __future__ import annotations

import ast
import math
import numbers
import re
from collections.abc import Callable, Mapping
from typing import Any

import sympy
import torch
from torch import Tensor

from ..errors import HnnkitValueError
from .base import HamiltonianSystem, sample_in_annulus

#: SymPy function → torch function, for formulas.
TORCH_FUNCTIONS: dict[Any, Callable[[Tensor], Tensor]] = {
    sympy.sin: torch.sin,
    sympy.cos: torch.cos,
    sympy.tan: torch.tan,
    sympy.exp: torch.exp,
    sympy.log: torch.log,
    sympy.sinh: torch.sinh,
    sympy.cosh: torch.cosh,
    sympy.tanh: torch.tanh,
    sympy.asin: torch.asin,
    sympy.acos: torch.acos,
    sympy.atan: torch.atan,
    sympy.Abs: torch.abs,
}
_FUNCTION_NAMES = {f.__name__: f for f in TORCH_FUNCTIONS} | {"abs": sympy.Abs, "sqrt": sympy.sqrt}
_CONSTANTS = {"pi": sympy.pi, "E": sympy.E}
_ALLOWED_CHARS = re.compile(r"^[A-Za-z0-9_+\-*/^().,\s]*$")
_NUMBER = re.compile(r"(?<![A-Za-z0-9_])\d*\.?\d+(?:[eE][+-]?\d+)?")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: The longest formula accepted, in characters.
MAX_FORMULA_LENGTH = 2000
#: The deepest nesting accepted (parentheses, calls, powers, unary signs).
MAX_NESTING = 50
#: The largest magnitude of a number literal in a formula.
MAX_LITERAL = 1e15
#: The largest magnitude of a numeric exponent in a formula.
MAX_EXPONENT = 100
_MAX_CONSTANT = 1e300
_MATH = {
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "exp": math.exp,
    "log": math.log,
    "sinh": math.sinh,
    "cosh": math.cosh,
    "tanh": math.tanh,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "Abs": abs,
    "abs": abs,
    "sqrt": math.sqrt,
}
_BINARY = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)


def _constant_value(node: ast.AST, values: dict[int, float | None]) -> float | None:
    """The value of a constant node from its children's values (``None``: unknown)."""
    if isinstance(node, ast.UnaryOp):
        v = values.get(id(node.operand))
        return None if v is None else (-v if isinstance(node.op, ast.USub) else v)
    if isinstance(node, ast.Call):
        args = [values.get(id(a)) for a in node.args]
        if len(args) != 1 or args[0] is None:
            return None
        try:
            return float(_MATH[node.func.id](args[0]))  # type: ignore[attr-defined]
        except (ValueError, OverflowError):
            return math.inf
    if isinstance(node, ast.BinOp):
        a, b = values.get(id(node.left)), values.get(id(node.right))
        if a is None or b is None:
            return None
        try:
            if isinstance(node.op, ast.Add):
                return a + b
            if isinstance(node.op, ast.Sub):
                return a - b
            if isinstance(node.op, ast.Mult):
                return a * b
            if isinstance(node.op, ast.Div):
                return a / b if b != 0 else None
            if a == 0:
                return 0.0 if b > 0 else None
            if b * math.log10(abs(a)) > 300:  # |a|**b beyond float64, without computing it
                return math.inf
            return abs(a) ** b if a < 0 and b != int(b) else a**b
        except (OverflowError, ZeroDivisionError):
            return math.inf
    return None


def check_formula_bounds(text: str, constants: Mapping[str, float] | None = None) -> None:
    """Reject a formula whose size could make SymPy hang, before SymPy sees it.

    The text is parsed into a Python syntax tree (never compiled or evaluated) and checked
    against the bounds in the module docstring: length, nesting depth, literal sizes and
    numeric exponents (the values of constant subexpressions, with ``constants`` — named
    parameters and constants — known, are estimated in floating point).

    Args:
        text: the formula, with ``^`` for powers allowed.
        constants: values of the names that stand for numbers.

    Raises:
        HnnkitValueError: if a bound is exceeded, or the text is not a single expression
            of numbers, names, ``+ - * / **`` and function calls.
    """
    if len(text) > MAX_FORMULA_LENGTH:
        raise HnnkitValueError(
            f"hamiltonian formula is {len(text)} characters long; at most "
            f"{MAX_FORMULA_LENGTH} are accepted. Use parameters= for repeated constants."
        )
    depth = 0
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if depth > MAX_NESTING:
            raise HnnkitValueError(
                f"hamiltonian formula {_short(text)} nests parentheses more than {MAX_NESTING} "
                "deep; simplify it"
            )
    try:
        src = " ".join(text.replace("^", "**").split())  # one line: offsets index src
        tree = ast.parse(src, mode="eval")
    except SyntaxError as exc:
        raise HnnkitValueError(
            f"could not parse hamiltonian formula {_short(text)}: {exc.msg}"
        ) from None
    except (RecursionError, MemoryError):
        raise HnnkitValueError(
            f"hamiltonian formula {_short(text)} is nested too deeply (at most {MAX_NESTING} levels)"
        ) from None
    constants = dict(constants or {})
    order: list[ast.AST] = []
    stack: list[tuple[ast.AST, int]] = [(tree.body, 0)]
    while stack:  # pre-order walk without recursion; +-*/ chains add no depth
        node, d = stack.pop()
        if isinstance(node, ast.UnaryOp | ast.Call) or (
            isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow)
        ):
            d += 1
        if d > MAX_NESTING:
            raise HnnkitValueError(
                f"hamiltonian formula {_short(text)} nests powers, functions or signs more "
                f"than {MAX_NESTING} deep; simplify it"
            )
        order.append(node)
        if isinstance(node, ast.BinOp) and isinstance(node.op, _BINARY):
            stack += [(node.left, d), (node.right, d)]
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            stack.append((node.operand, d))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCTION_NAMES
            and not node.keywords
            and node.args
            and not any(isinstance(a, ast.Starred) for a in node.args)
        ):
            stack += [(a, d) for a in node.args]
        elif isinstance(node, ast.Name):
            pass
        elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
            if not abs(node.value) <= MAX_LITERAL:
                raise HnnkitValueError(
                    f"hamiltonian formula {_short(text)} contains the number "
                    f"{_short(_source(src, node))}; number literals must be at most "
                    f"{MAX_LITERAL:g} in magnitude (use parameters= for physical constants)"
                )
        else:
            raise HnnkitValueError(
                f"hamiltonian formula {_short(text)} contains {_short(_source(src, node))}, "
                "which is not allowed; a formula is one expression of numbers, coordinates, "
                "parameters, + - * / ** and function calls"
            )
    known = constants | {"pi": math.pi, "E": math.e}
    values: dict[int, float | None] = {}  # value of each constant subtree, None if unknown
    free: dict[int, bool] = {}  # whether a subtree holds a coordinate (or an unknown name)
    for node in reversed(order):  # children before parents
        kids = _children(node)
        free[id(node)] = (isinstance(node, ast.Name) and node.id not in known) or any(
            free[id(k)] for k in kids
        )
        if isinstance(node, ast.Constant):
            v: float | None = float(node.value)
        elif isinstance(node, ast.Name):
            v = None if node.id not in known else float(known[node.id])
        else:
            v = _constant_value(node, values)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            e = values[id(node.right)]
            if not free[id(node.right)] and not (e is not None and abs(e) <= MAX_EXPONENT):
                raise HnnkitValueError(
                    f"hamiltonian formula {_short(text)} raises to the power "
                    f"{_short(_source(src, node.right))}; numeric exponents must be at most "
                    f"{MAX_EXPONENT} in magnitude"
                )
        if v is not None and not abs(v) <= _MAX_CONSTANT:
            raise HnnkitValueError(
                f"hamiltonian formula {_short(text)}: the constant "
                f"{_short(_source(src, node))} exceeds {_MAX_CONSTANT:g} in magnitude "
                "(beyond float64's range)"
            )
        values[id(node)] = v


def _children(node: ast.AST) -> list[ast.AST]:
    if isinstance(node, ast.BinOp):
        return [node.left, node.right]
    if isinstance(node, ast.UnaryOp):
        return [node.operand]
    if isinstance(node, ast.Call):
        return list(node.args)
    return []


def _source(src: str, node: ast.AST) -> str:
    """The text of ``node`` in ``src`` (one line), without the recursion of ``ast.unparse``."""
    return src[node.col_offset : node.end_col_offset]  # type: ignore[attr-defined]


def _short(text: str, limit: int = 60) -> str:
    return repr(text) if len(text) <= limit else repr(text[: limit - 3] + "...")


def coordinate_symbols(dof: int) -> tuple[list[sympy.Symbol], list[sympy.Symbol]]:
    """SymPy symbols ``q1..qn`` and ``p1..pn`` (real)."""
    q = [sympy.Symbol(f"q{i + 1}", real=True) for i in range(dof)]
    p = [sympy.Symbol(f"p{i + 1}", real=True) for i in range(dof)]
    return q, p


def parse_hamiltonian(
    text: str, dof: int, parameters: Mapping[str, float] | None = None
) -> sympy.Expr:
    """Parse a formula string into a SymPy expression in ``q1..qn, p1..pn``.

    ``q`` and ``p`` are accepted as aliases of ``q1`` and ``p1`` when ``dof == 1``;
    ``^`` means power. ``parameters`` substitutes named constants.

    Raises:
        HnnkitValueError: on characters or names outside the allow-list, a formula beyond
            the bounds of :func:`check_formula_bounds` (length 2000, nesting 50, literals
            1e15, numeric exponents 100), text that does not parse, a parameter that is not
            a finite real number, or a formula that depends on no coordinate.
    """
    if not isinstance(text, str) or not text.strip():
        raise HnnkitValueError(f"hamiltonian must be a non-empty formula string, got {text!r}")
    if "__" in text or not _ALLOWED_CHARS.match(text):
        raise HnnkitValueError(
            f"hamiltonian formula {text!r} contains characters that are not allowed; use "
            "numbers, q1..qn, p1..pn, + - * / ** ^ ( ) and functions "
            f"{', '.join(sorted(_FUNCTION_NAMES))}"
        )
    parameters = dict(parameters or {})
    for k, v in parameters.items():
        if not isinstance(k, str) or not _IDENTIFIER.fullmatch(k) or "__" in k:
            raise HnnkitValueError(f"parameter names must be identifiers, got {k!r}")
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise HnnkitValueError(f"parameter {k!r} must be a finite real number, got {v!r}")
    qs, ps = coordinate_symbols(dof)
    names: dict[str, Any] = {s.name: s for s in qs + ps}
    if dof == 1:
        names |= {"q": qs[0], "p": ps[0]}
    names |= {k: sympy.Float(v) for k, v in parameters.items()}
    names |= _FUNCTION_NAMES | _CONSTANTS
    unknown = sorted(
        {tok for tok in _IDENTIFIER.findall(_NUMBER.sub(" ", text)) if tok not in names}
    )
    if unknown:
        coords = "q, p" if dof == 1 else f"q1..q{dof}, p1..p{dof}"
        raise HnnkitValueError(
            f"hamiltonian formula {text!r} uses unknown names {unknown}; allowed are the "
            f"coordinates {coords}, parameters {sorted(parameters)}, functions "
            f"{sorted(_FUNCTION_NAMES)} and constants {sorted(_CONSTANTS)}"
        )
    check_formula_bounds(text, {k: float(v) for k, v in parameters.items()})
    from sympy.parsing.sympy_parser import convert_xor, parse_expr, standard_transformations

    try:
        expr = parse_expr(
            text,
            local_dict=names,
            global_dict={
                "Integer": sympy.Integer,
                "Float": sympy.Float,
                "Rational": sympy.Rational,
            },
            transformations=(*standard_transformations, convert_xor),
            evaluate=True,
        )
    except Exception as exc:  # SymPy raises many types for malformed text
        raise HnnkitValueError(f"could not parse hamiltonian formula {text!r}: {exc}") from exc
    if not isinstance(expr, sympy.Expr):
        raise HnnkitValueError(f"hamiltonian formula {text!r} is not a scalar expression")
    if not expr.free_symbols & set(qs + ps):
        coords = "q or p" if dof == 1 else f"q1..q{dof} or p1..p{dof}"
        raise HnnkitValueError(
            f"hamiltonian formula {text!r} is the constant {expr}: the Hamiltonian must depend "
            f"on {coords} (a constant energy has no motion to learn)"
        )
    return expr


def _at_most_quadratic(expr: sympy.Expr, ps: list[sympy.Symbol]) -> bool:
    """Whether ``expr`` is a polynomial of total degree at most 2 in the momenta ``ps``."""
    try:
        return sympy.Poly(expr, *ps).total_degree() <= 2
    except sympy.PolynomialError:
        return False


def sympy_to_torch(expr: sympy.Expr, symbols: list[sympy.Symbol]) -> Callable[[Tensor], Tensor]:
    """Compile a SymPy expression into a torch function of ``x (..., len(symbols))`` → ``(...)``.

    The tree is walked once; only arithmetic, powers and :data:`TORCH_FUNCTIONS` are
    supported, so the result is differentiable and runs on any device and dtype.
    """
    index = {s: i for i, s in enumerate(symbols)}

    def build(e: sympy.Expr) -> Callable[[Tensor], Tensor | float]:
        if e in index:
            i = index[e]
            return lambda x: x[..., i]
        if e.is_Number or e in (sympy.pi, sympy.E):
            c = float(e)
            return lambda x: c
        if e.is_Add or e.is_Mul:
            parts = [build(a) for a in e.args]
            if e.is_Add:
                return lambda x: sum_all(x, parts)
            return lambda x: prod_all(x, parts)
        if e.is_Pow:
            base, expo = build(e.args[0]), e.args[1]
            if expo.is_Number:
                ex = float(expo)
                if ex == 0.5:
                    return lambda x: torch.sqrt(torch.as_tensor(base(x)))
                return lambda x: torch.as_tensor(base(x)) ** ex
            fexp = build(expo)
            return lambda x: torch.as_tensor(base(x)) ** fexp(x)
        if e.func in TORCH_FUNCTIONS:
            fn, arg = TORCH_FUNCTIONS[e.func], build(e.args[0])
            return lambda x: fn(torch.as_tensor(arg(x)))
        raise HnnkitValueError(
            f"cannot convert {e} ({e.func.__name__}) to torch; supported: + - * / **, "
            f"{', '.join(sorted(_FUNCTION_NAMES))}"
        )

    def sum_all(x, parts):
        out = parts[0](x)
        for f in parts[1:]:
            out = out + f(x)
        return out

    def prod_all(x, parts):
        out = parts[0](x)
        for f in parts[1:]:
            out = out * f(x)
        return out

    root = build(sympy.sympify(expr))

    def fn(x: Tensor) -> Tensor:
        out = root(x)
        if not isinstance(out, Tensor):
            out = torch.full(x.shape[:-1], float(out), dtype=x.dtype, device=x.device)
        return out.expand(x.shape[:-1]) if out.shape != x.shape[:-1] else out

    return fn


class Custom(HamiltonianSystem):
    r"""A system defined by a Hamiltonian you supply.

    Example::

        Custom("p**2/2 + q**2/2 + q**4/4")                    # Duffing, dof = 1
        Custom("(p1**2 + p2**2)/2 + (q1**2 + q2**2)/2", dof=2)
        Custom(lambda q, p: (p**2 + q**2).sum(-1) / 2, dof=1) # a torch callable

    Args:
        hamiltonian: a formula string in ``q1..qn, p1..pn`` (``q``, ``p`` when ``dof = 1``),
            or a callable ``(q, p) -> H`` over torch tensors ``(*batch, dof)`` → ``(*batch,)``.
        dof: degrees of freedom.
        parameters: named constants usable in a formula string.
        radius_range: initial states are drawn with a random direction and a phase-space
            radius in this range.
        t_span, n_points, noise_std: defaults for data generation.
        name: shown in ``repr`` and reports.

    Raises:
        HnnkitValueError: on a formula that is unsafe, uses unknown names or fails to parse.
    """

    def __init__(
        self,
        hamiltonian: str | Callable[[Tensor, Tensor], Tensor],
        dof: int = 1,
        *,
        parameters: Mapping[str, float] | None = None,
        radius_range: tuple[float, float] = (0.1, 1.0),
        t_span: tuple[float, float] = (0.0, 3.0),
        n_points: int = 30,
        noise_std: float = 0.0,
        name: str = "custom",
    ):
        super().__init__(dof=dof)
        self.radius_range = (float(radius_range[0]), float(radius_range[1]))
        self.default_t_span = (float(t_span[0]), float(t_span[1]))  # type: ignore[misc]
        self.default_n_points = int(n_points)  # type: ignore[misc]
        self.default_noise_std = float(noise_std)  # type: ignore[misc]
        self.name = str(name)
        self.parameters = dict(parameters or {})
        if isinstance(hamiltonian, str):
            self.expr: sympy.Expr | None = parse_hamiltonian(hamiltonian, dof, self.parameters)
            qs, ps = coordinate_symbols(dof)
            self._fn = sympy_to_torch(self.expr, qs + ps)
            self.source = hamiltonian
            self.formula = str(self.expr)  # type: ignore[misc]
            dq = [self.expr.diff(s) for s in qs]
            self.separable = all(not (d.free_symbols & set(ps)) for d in dq)  # type: ignore[misc]
            self.quadratic_momentum = _at_most_quadratic(self.expr, ps)  # type: ignore[misc]
        elif callable(hamiltonian):
            self.expr = None
            user = hamiltonian
            self._fn = lambda x: user(x[..., :dof], x[..., dof:])
            self.source = getattr(hamiltonian, "__name__", "callable")
            self.formula = f"<{self.source}>"  # type: ignore[misc]
        else:
            raise HnnkitValueError(
                f"hamiltonian must be a formula string or a callable (q, p) -> H, got {type(hamiltonian).__name__}"
            )

    def hamiltonian(self, q: Tensor, p: Tensor) -> Tensor:
        return self._fn(torch.cat([q, p], dim=-1))

    def sample_initial(self, n: int, *, generator: torch.Generator) -> Tensor:
        return sample_in_annulus(n, self.radius_range, generator=generator, dim=self.dim)

    def params(self) -> dict[str, Any]:
        """Every constructor argument (a callable Hamiltonian is shown by its name)."""
        return {
            "hamiltonian": self.source,
            "dof": self.dof,
            "parameters": dict(self.parameters),
            "radius_range": self.radius_range,
            "t_span": self.default_t_span,
            "n_points": self.default_n_points,
            "noise_std": self.default_noise_std,
            "name": self.name,
        }

    def _identify(self) -> tuple[dict[str, Any] | None, str]:
        if self.expr is None:
            return None, (
                "its Hamiltonian is a Python callable, which cannot be hashed reliably; "
                "pass a formula string, or subclass HamiltonianSystem in a file"
            )
        return super()._identify()
