r"""A Hamiltonian supplied by the user: a torch callable or a formula string.

Formula strings are parsed with SymPy from an allow-list of tokens and turned into torch
operations by walking the expression tree. Nothing is ever ``eval``'d on the raw text:
before SymPy sees the string, every identifier must be a coordinate (``q1..qn``,
``p1..pn``, or ``q``/``p`` when ``dof = 1``), a named parameter, a known function or a
known constant, and only arithmetic characters may appear.
"""

from __future__ import annotations

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
        HnnkitValueError: on characters or names outside the allow-list, or text that
            does not parse.
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
    return expr


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
        self.name = name
        self.parameters = dict(parameters or {})
        if isinstance(hamiltonian, str):
            self.expr: sympy.Expr | None = parse_hamiltonian(hamiltonian, dof, self.parameters)
            qs, ps = coordinate_symbols(dof)
            self._fn = sympy_to_torch(self.expr, qs + ps)
            self.source = hamiltonian
            self.formula = str(self.expr)  # type: ignore[misc]
            dq = [self.expr.diff(s) for s in qs]
            self.separable = all(not (d.free_symbols & set(ps)) for d in dq)  # type: ignore[misc]
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
        return {"hamiltonian": self.source, "dof": self.dof}
