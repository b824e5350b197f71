r"""Does a recovered formula have exactly the true terms? The success criterion of the
symbolic-recovery benchmark (:mod:`hnnkit.experiments.symbolic_bench`).

**Canonical form.** A SymPy expression is expanded (``sympy.expand``; trigonometric sums are
*not* expanded, so :math:`\cos(q - 10^{-3})` stays one term) and split into additive terms
:math:`c \cdot \prod_i s_i^{k_i} \cdot \prod_j f_j(\text{arg}_j)`. A term is identified by

* its **monomial**: the integer powers :math:`k_i` of the coordinates (exact);
* its **function factors**: each one's name and argument. An argument that is affine in the
  coordinates, :math:`a \cdot s + b`, is kept as numbers (the slopes :math:`a` and the offset
  :math:`b`), which are compared with a tolerance; any other argument (e.g. :math:`\cos(q^2)`)
  must match exactly.

Sinusoids are rewritten into one form, so that equal functions compare equal:

* :math:`\sin(x) = \cos(x - \pi/2)`;
* the offset is reduced to the nearest multiple :math:`k\pi/2` plus a remainder
  :math:`|\delta| \le \pi/4`, so that :math:`\cos(x + k\pi/2 + \delta)` is
  :math:`\cos`, :math:`-\sin`, :math:`-\cos` or :math:`\sin` of :math:`x + \delta`;
* the first nonzero slope is made positive (:math:`\cos` is even, :math:`\sin` odd, which
  flips the term's sign).

The pendulum's energy :math:`3(1 - \cos q) + p^2` is therefore the terms
:math:`\{p^2: 1,\ \cos(q): -3\}` plus a constant, and a KAN's
:math:`-2.998\cos(1.0004\,q - 0.001)` matches :math:`-3\cos q` at a 1 % tolerance.

**Matching.** Every true term must have exactly one found term of the same structure whose
coefficient is within ``rtol`` relative of the true one, and whose argument slopes are within
``rtol`` relative (offsets within ``rtol`` absolute, in radians for sinusoids); no other found
term may remain. The constant term is ignored when ``allow_constant`` (an energy's offset
has no dynamics).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sympy

from ..errors import HnnkitValueError

#: Functions whose argument is kept as (slopes, offset) numbers.
_SINUSOIDS = ("sin", "cos")
#: Even functions (f(-x) = f(x)) and odd ones (f(-x) = -f(x)) besides the sinusoids.
_EVEN = ("cosh", "Abs")
_ODD = ("sinh", "tanh")


@dataclass(frozen=True)
class Factor:
    """One function factor of a term: ``name(slopes · s + offset)`` (``opaque`` for any other
    argument, compared exactly)."""

    name: str
    slopes: tuple[tuple[str, float], ...] = ()
    offset: float = 0.0
    opaque: str | None = None

    def shape(self) -> tuple[str, tuple[str, ...], str | None]:
        """What must agree exactly: the name, the coordinates of the argument, an opaque one."""
        return (self.name, tuple(s for s, _ in self.slopes), self.opaque)

    def __str__(self) -> str:
        if self.opaque is not None:
            return self.opaque
        arg = " + ".join(f"{a:.6g}*{s}" for s, a in self.slopes)
        return f"{self.name}({arg} + {self.offset:.3g})" if self.offset else f"{self.name}({arg})"


@dataclass(frozen=True)
class Term:
    """One additive term ``coefficient · monomial · factors`` of a canonical expression.

    Attributes:
        coefficient: the number in front.
        monomial: ``((symbol name, power), ...)`` sorted by name; ``()`` for a constant.
        factors: the function factors, sorted.
    """

    coefficient: float
    monomial: tuple[tuple[str, int], ...] = ()
    factors: tuple[Factor, ...] = ()

    @property
    def is_constant(self) -> bool:
        return not self.monomial and not self.factors

    def shape(self) -> tuple[Any, ...]:
        """What two terms must share exactly to be compared by numbers."""
        return (self.monomial, tuple(f.shape() for f in self.factors))

    def label(self) -> str:
        """The term without its coefficient, e.g. ``p^2*cos(1*q)``."""
        parts = [s if k == 1 else f"{s}^{k}" for s, k in self.monomial]
        parts += [str(f) for f in self.factors]
        return "*".join(parts) or "1"

    def __str__(self) -> str:
        return f"{self.coefficient:.6g}*{self.label()}"


def _affine(
    arg: sympy.Expr, symbols: Sequence[sympy.Symbol]
) -> tuple[dict[str, float], float] | None:
    """``arg`` as ``({symbol: slope}, offset)`` when it is affine in ``symbols``, else ``None``."""
    arg = sympy.expand(arg)
    poly_syms = [s for s in symbols if arg.has(s)]
    try:
        poly = sympy.Poly(arg, *poly_syms) if poly_syms else None
    except sympy.PolynomialError:
        return None
    if poly is not None and poly.total_degree() > 1:
        return None
    if poly is None:
        return ({}, float(arg)) if arg.is_number else None
    slopes, offset = {}, 0.0
    for monom, c in poly.terms():
        if not c.is_number:
            return None
        if sum(monom) == 0:
            offset = float(c)
        else:
            slopes[str(poly_syms[monom.index(1)])] = float(c)
    return slopes, offset


def _sinusoid(name: str, slopes: dict[str, float], offset: float) -> tuple[float, Factor]:
    """Canonical ``(sign, factor)`` of ``name(slopes · s + offset)`` (see the module notes)."""
    if name == "sin":
        offset -= math.pi / 2
    k = round(offset / (math.pi / 2))
    delta = offset - k * math.pi / 2
    name, sign = [("cos", 1.0), ("sin", -1.0), ("cos", -1.0), ("sin", 1.0)][k % 4]
    items = sorted(slopes.items())
    if items and items[0][1] < 0:
        items = [(s, -a) for s, a in items]
        delta = -delta
        if name == "sin":
            sign = -sign
    return sign, Factor(name, tuple(items), delta)


def _factor(f: sympy.Expr, symbols: Sequence[sympy.Symbol]) -> tuple[float, Factor]:
    name = type(f).__name__
    aff = (
        _affine(f.args[0], symbols) if isinstance(f, sympy.Function) and len(f.args) == 1 else None
    )
    if aff is None:
        return 1.0, Factor(name, opaque=sympy.sstr(f))
    slopes, offset = aff
    if name in _SINUSOIDS:
        return _sinusoid(name, slopes, offset)
    items = sorted(slopes.items())
    sign = 1.0
    if items and items[0][1] < 0 and name in _EVEN + _ODD:
        items, offset = [(s, -a) for s, a in items], -offset
        sign = -1.0 if name in _ODD else 1.0
    return sign, Factor(name, tuple(items), offset)


def canonical_terms(expr: Any, symbols: Sequence[sympy.Symbol]) -> list[Term]:
    """Split ``expr`` into canonical :class:`Term` s (see the module notes).

    Terms with the same monomial and exactly the same factors are summed; terms whose
    coefficient is exactly 0 are dropped.

    Args:
        expr: a SymPy expression or a string SymPy parses (symbols by name as in ``symbols``).
        symbols: the coordinates, e.g. :func:`hnnkit.symbolic.phase_space_symbols`.

    Raises:
        HnnkitValueError: if ``expr`` holds a symbol that is not in ``symbols``.
    """
    names = {str(s): s for s in symbols}
    if isinstance(expr, str):
        expr = sympy.sympify(expr, locals=dict(names))
    expr = sympy.sympify(expr).xreplace({sympy.Symbol(n): s for n, s in names.items()})
    unknown = {str(s) for s in expr.free_symbols} - set(names)
    if unknown:
        raise HnnkitValueError(
            f"the formula {expr} uses {sorted(unknown)}, which are not coordinates; "
            f"expected symbols among {sorted(names)}"
        )
    out: dict[tuple[Any, ...], Term] = {}
    for term in sympy.Add.make_args(sympy.expand(expr)):
        coef, rest = term.as_coeff_Mul()
        c = float(coef)
        monomial: dict[str, int] = {}
        factors: list[Factor] = []
        for f in sympy.Mul.make_args(rest):
            if f == 1:
                continue
            base, exp = f.as_base_exp()
            if isinstance(base, sympy.Symbol) and exp.is_Integer and int(exp) > 0:
                monomial[str(base)] = monomial.get(str(base), 0) + int(exp)
            elif f.is_number:
                c *= float(f)
            elif isinstance(f, sympy.Function):
                sign, fac = _factor(f, symbols)
                c *= sign
                factors.append(fac)
            else:
                factors.append(Factor("expr", opaque=sympy.sstr(f)))
        t = Term(c, tuple(sorted(monomial.items())), tuple(sorted(factors, key=str)))
        key = (t.monomial, t.factors)
        if key in out:
            t = Term(out[key].coefficient + c, t.monomial, t.factors)
        out[key] = t
    return [t for t in out.values() if t.coefficient != 0.0]


@dataclass
class TermMatch:
    """The verdict of :func:`match_terms`.

    Attributes:
        success: exactly the true terms, each within tolerance.
        matched: ``(true term, found term, relative coefficient error)`` of every true term
            that has a found term of its shape (within tolerance or not).
        missing: true terms with no found term of their shape.
        extra: found terms that match no true term.
        worst_error: the largest relative coefficient error among ``matched`` (``inf`` when
            a term is missing).
        rtol: the tolerance it was judged with.
    """

    success: bool
    matched: list[tuple[Term, Term, float]] = field(default_factory=list)
    missing: list[Term] = field(default_factory=list)
    extra: list[Term] = field(default_factory=list)
    worst_error: float = 0.0
    rtol: float = 0.01

    def summary(self) -> str:
        """One line: ``ok`` or what is wrong."""
        if self.success:
            return f"ok (worst coefficient error {self.worst_error:.2%})"
        bits = [f"missing {t}" for t in self.missing] + [f"extra {t}" for t in self.extra]
        bits += [f"{f} vs {t} ({e:.2%})" for t, f, e in self.matched if e > self.rtol]
        return "; ".join(bits) or "arguments off"


def _argument_close(a: Factor, b: Factor, rtol: float) -> bool:
    if a.opaque is not None or b.opaque is not None:
        return a.opaque == b.opaque
    slopes_ok = all(
        abs(x - y) <= rtol * abs(y) for (_, x), (_, y) in zip(a.slopes, b.slopes, strict=True)
    )
    return slopes_ok and abs(a.offset - b.offset) <= rtol


def _comparable(found: Term, true: Term, rtol: float) -> bool:
    if found.shape() != true.shape():
        return False
    return all(
        _argument_close(f, t, rtol) for f, t in zip(found.factors, true.factors, strict=True)
    )


def _rel(found: Term, true: Term) -> float:
    return abs(found.coefficient - true.coefficient) / abs(true.coefficient)


def match_terms(
    found: Any,
    true: Any,
    symbols: Sequence[sympy.Symbol],
    *,
    rtol: float = 0.01,
    allow_constant: bool = True,
) -> TermMatch:
    """Whether ``found`` has exactly the terms of ``true``, each coefficient within ``rtol``.

    Args:
        found: the recovered formula (SymPy expression or string).
        true: the true formula.
        symbols: the coordinates both are written in.
        rtol: relative tolerance of each coefficient and argument slope, and the absolute
            tolerance of argument offsets (default 0.01: 1 %).
        allow_constant: ignore the constant term on both sides (default ``True``, for
            energies; ``False`` for vector fields).

    Returns:
        :class:`TermMatch`.

    Raises:
        HnnkitValueError: on a negative ``rtol`` or a symbol outside ``symbols``.
    """
    if not rtol >= 0:
        raise HnnkitValueError(f"rtol must be >= 0 (a relative tolerance, e.g. 0.01), got {rtol}")
    f_terms = canonical_terms(found, symbols)
    t_terms = canonical_terms(true, symbols)
    if allow_constant:
        f_terms = [t for t in f_terms if not t.is_constant]
        t_terms = [t for t in t_terms if not t.is_constant]
    left = list(f_terms)
    result = TermMatch(success=True, rtol=rtol)
    for t in t_terms:
        candidates = [f for f in left if _comparable(f, t, rtol)]
        if not candidates:
            result.missing.append(t)
            continue
        best = min(candidates, key=lambda f: _rel(f, t))
        left.remove(best)
        result.matched.append((t, best, _rel(best, t)))
    result.extra = left
    errors = [e for _, _, e in result.matched]
    result.worst_error = math.inf if result.missing else max(errors, default=0.0)
    result.success = not result.missing and not result.extra and result.worst_error <= rtol
    return result


def match_all(
    found: Sequence[Any],
    true: Sequence[Any],
    symbols: Sequence[sympy.Symbol],
    *,
    rtol: float = 0.01,
    allow_constant: bool = True,
) -> list[TermMatch]:
    """:func:`match_terms` of each pair (e.g. the components of a vector field).

    Raises:
        HnnkitValueError: when the two sequences differ in length.
    """
    if len(found) != len(true):
        raise HnnkitValueError(f"{len(found)} found formulas for {len(true)} true ones")
    return [
        match_terms(f, t, symbols, rtol=rtol, allow_constant=allow_constant)
        for f, t in zip(found, true, strict=True)
    ]


__all__ = ["Factor", "Term", "TermMatch", "canonical_terms", "match_all", "match_terms"]
