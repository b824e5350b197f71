r"""From a trained KAN to a closed-form Hamiltonian.

The pipeline (``extract_hamiltonian``):

1. **Edge fits.** Every live edge :math:`\phi_{l,i,j}` that feeds the energy output is
   sampled on the range its input takes on the data and matched against a library of
   functions. Polynomials are solved exactly by least squares; any other library function
   :math:`f` is fitted in affine-in/affine-out form :math:`c\,f(a x + b) + d` (a grid
   search over :math:`(a, b)` with the optimal :math:`(c, d)` in closed form, then a local
   least-squares polish).
2. **Occam's razor.** Among the candidates whose :math:`R^2` is within ``occam_tol`` of the
   best, the least complex wins; ties go to the earlier library entry (polynomials come
   first). Without it noisy data pick :math:`\cos(ax+b)` over :math:`x^2`.
3. **Composition.** The edge formulas are composed layer by layer into a SymPy :math:`H(q, p)`
   and expanded.
4. **Refit.** Every floating-point number in :math:`H` becomes a free coefficient and is
   refitted under the HNN loss, the mean squared error of :math:`J\nabla H` against the
   target derivatives: exactly by linear least squares when :math:`H` is linear in them
   (polynomials), else by L-BFGS.
5. **Occam on the formula.** Whole terms are dropped, smallest first, unless the held-out
   (test-split) loss of the refitted rest rises above ``loss·(1 + drop_rtol) + atol``:
   2 % for noise (noisy data otherwise keep small terms such as :math:`q^4` that fit it)
   and :data:`SELECT_ATOL` = 1e-6 of the targets' variance for round-off, so that terms
   worth only the last bits never decide the formula.
6. **Presentation.** Coefficients are rounded to "nice" values (0, integers, then 1–3
   decimals) one at a time, each only if the HNN loss stays within tolerance. Both the raw
   refitted and the rounded expressions are returned.

The result exports to SymPy, LaTeX, Python source and a torch function, and wraps as a
:class:`hnnkit.systems.Custom` system for rollouts.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import sympy
import torch
from torch import Tensor, nn

from .errors import HnnkitValueError, UnknownNameError
from .models.kan import KAN, find_kan
from .phase_space import join, split, symplectic
from .systems.custom import Custom, sympy_to_torch

X = sympy.Symbol("x", real=True)
"""The dummy variable of edge formulas."""
_NUMBER_PLACEHOLDER = sympy.Symbol("_c")


@dataclass(frozen=True)
class LibraryFunction:
    """One entry of the function library.

    Attributes:
        name: the library key.
        sympy_fn: SymPy function of one argument.
        numpy_fn: the same function on numpy arrays.
        complexity: the Occam cost; lower is simpler.
        degree: polynomial degree for polynomial entries (fitted exactly, no affine input),
            else ``None``.
        derivative: the derivative on numpy arrays (used by the local polish).
        domain: predicate on the argument values, ``None`` when defined everywhere.
    """

    name: str
    sympy_fn: Callable[[sympy.Expr], sympy.Expr]
    numpy_fn: Callable[[np.ndarray], np.ndarray]
    complexity: float
    degree: int | None = None
    derivative: Callable[[np.ndarray], np.ndarray] | None = None
    domain: Callable[[np.ndarray], np.ndarray] | None = None


def _poly(n: int) -> LibraryFunction:
    return LibraryFunction(f"x^{n}" if n > 1 else "x", lambda z: z**n, lambda z: z**n, float(n), n)


#: Every known library function, polynomials first.
LIBRARY: dict[str, LibraryFunction] = {
    f.name: f
    for f in [
        _poly(1),
        _poly(2),
        _poly(3),
        _poly(4),
        LibraryFunction("sin", sympy.sin, np.sin, 2.0, derivative=np.cos),
        LibraryFunction("cos", sympy.cos, np.cos, 2.0, derivative=lambda z: -np.sin(z)),
        LibraryFunction("exp", sympy.exp, np.exp, 2.0, derivative=np.exp),
        LibraryFunction(
            "log", sympy.log, np.log, 2.0, derivative=lambda z: 1 / z, domain=lambda z: z > 1e-8
        ),
        LibraryFunction(
            "sqrt",
            sympy.sqrt,
            np.sqrt,
            2.0,
            derivative=lambda z: 0.5 / np.sqrt(z),
            domain=lambda z: z > 1e-8,
        ),
        LibraryFunction("tanh", sympy.tanh, np.tanh, 3.0, derivative=lambda z: 1 - np.tanh(z) ** 2),
        LibraryFunction(
            "1/x",
            lambda z: 1 / z,
            lambda z: 1 / z,
            2.0,
            derivative=lambda z: -1 / z**2,
            domain=lambda z: np.abs(z) > 1e-3,
        ),
        LibraryFunction("abs", sympy.Abs, np.abs, 3.0, derivative=np.sign),
    ]
}
#: The default library: polynomials up to degree 4, then sin, cos, exp, log, sqrt, tanh, 1/x.
DEFAULT_LIBRARY: tuple[str, ...] = (
    "x",
    "x^2",
    "x^3",
    "x^4",
    "sin",
    "cos",
    "exp",
    "log",
    "sqrt",
    "tanh",
    "1/x",
)
#: Polynomials only: the safe choice for noisy data when the answer is known to be polynomial.
POLYNOMIAL_LIBRARY: tuple[str, ...] = ("x", "x^2", "x^3", "x^4")
#: Linear and quadratic edges only: keeps a dissipation function clean on noisy data, where
#: composed quartic edges reach degree 12 and fit the noise (docs/kan.md).
QUADRATIC_LIBRARY: tuple[str, ...] = ("x", "x^2")


# -- one edge -------------------------------------------------------------------------------
@dataclass
class EdgeFit:
    r"""The formula chosen for one KAN edge.

    Attributes:
        layer, i, j: the edge (layer index, input node, output node).
        name: the library entry (``"0"`` for a masked edge, ``"const"`` for a flat one).
        expr: the fitted formula in :data:`X`, with floating-point coefficients.
        r2: coefficient of determination of the chosen fit on the samples.
        complexity: the chosen entry's complexity.
        candidates: ``name → R²`` of every library entry tried.
    """

    layer: int
    i: int
    j: int
    name: str
    expr: sympy.Expr
    r2: float
    complexity: float
    candidates: dict[str, float] = field(default_factory=dict)


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    ss_tot = float(((y - y.mean()) ** 2).sum())
    ss_res = float(((y - pred) ** 2).sum())
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else (1.0 if ss_res == 0 else -math.inf)


def _fit_polynomial(x: np.ndarray, y: np.ndarray, degree: int) -> tuple[sympy.Expr, float]:
    # Polynomial.fit solves on a scaled domain (well conditioned); convert() maps back to x.
    poly = np.polynomial.Polynomial.fit(x, y, degree)
    coef = poly.convert().coef
    expr = sum((sympy.Float(float(c)) * X**n for n, c in enumerate(coef)), sympy.Integer(0))
    return expr, _r2(y, poly(x))


def _fit_affine_function(
    x: np.ndarray, y: np.ndarray, fn: LibraryFunction, a_max: float, n_grid: int
) -> tuple[sympy.Expr | None, float]:
    """Fit ``c*f(a*t + b) + d`` with ``t`` the standardised input; return the expression in x."""
    mu, sd = float(x.mean()), float(x.std()) or 1.0
    t = (x - mu) / sd
    a = np.linspace(-a_max, a_max, n_grid)
    b = np.linspace(-a_max, a_max, n_grid)
    arg = a[:, None, None] * t[None, None, :] + b[None, :, None]
    with np.errstate(all="ignore"):
        ok = np.ones(arg.shape[:2], dtype=bool) if fn.domain is None else fn.domain(arg).all(-1)
        f = np.where(ok[..., None], fn.numpy_fn(np.where(ok[..., None], arg, 1.0)), 0.0)
        fc = f - f.mean(-1, keepdims=True)
        yc = y - y.mean()
        cov = (fc * yc).sum(-1)
        var_f = (fc**2).sum(-1)
        r2_grid = np.where(
            ok & (var_f > 1e-12) & np.isfinite(var_f),
            cov**2 / (var_f * (yc**2).sum() + 1e-300),
            -np.inf,
        )
    if not np.isfinite(r2_grid).any():
        return None, -math.inf
    ia, ib = np.unravel_index(np.argmax(r2_grid), r2_grid.shape)
    a0, b0 = a[ia], b[ib]
    c0 = cov[ia, ib] / var_f[ia, ib]
    d0 = y.mean() - c0 * f[ia, ib].mean()

    theta = _levenberg_marquardt(t, y, fn, np.array([a0, b0, c0, d0], dtype=np.float64))
    aa, bb, cc, dd = (float(v) for v in theta)
    pred = cc * fn.numpy_fn(aa * t + bb) + dd
    if not np.isfinite(pred).all():
        return None, -math.inf
    scale, shift, sympy_fn = aa / sd, bb - aa * mu / sd, fn.sympy_fn
    if fn.name in ("sin", "cos"):
        sympy_fn, scale, shift, cc = _canonical_sinusoid(fn.name, scale, shift, cc)
    expr = sympy.Float(cc) * sympy_fn(sympy.Float(scale) * X + sympy.Float(shift)) + sympy.Float(dd)
    return expr, _r2(y, pred)


def _canonical_sinusoid(name: str, a: float, b: float, c: float) -> tuple[Any, float, float, float]:
    """Rewrite ``c*sin(a x + b)`` or ``c*cos(a x + b)`` with ``a > 0`` and the smallest phase.

    The result uses cos or sin, whichever needs a phase in ``[-pi/4, pi/4]``, so that the same
    function gets the same formula whether it was found as a sine or a cosine.
    """
    if name == "sin":  # sin(z) = cos(z - pi/2)
        b -= math.pi / 2
    if a < 0:  # cos is even
        a, b = -a, -b
    b = math.remainder(b, 2 * math.pi)  # (-pi, pi]
    if abs(b) > math.pi / 2:  # cos(z + pi) = -cos(z)
        c, b = -c, b - math.copysign(math.pi, b)
    if b > math.pi / 4:  # cos(z + b) = -sin(z + b - pi/2)
        return sympy.sin, a, b - math.pi / 2, -c
    if b < -math.pi / 4:  # cos(z + b) = sin(z + b + pi/2)
        return sympy.sin, a, b + math.pi / 2, c
    return sympy.cos, a, b, c


def _levenberg_marquardt(
    t: np.ndarray, y: np.ndarray, fn: LibraryFunction, theta: np.ndarray, iters: int = 100
) -> np.ndarray:
    """Polish ``(a, b, c, d)`` of ``c*f(a*t + b) + d`` by Levenberg–Marquardt with the analytic Jacobian."""

    def sse_of(th: np.ndarray) -> float:
        z = th[0] * t + th[1]
        if fn.domain is not None and not fn.domain(z).all():
            return math.inf
        with np.errstate(all="ignore"):
            r = th[2] * fn.numpy_fn(z) + th[3] - y
        v = float(r @ r)
        return v if math.isfinite(v) else math.inf

    sse, mu = sse_of(theta), 1e-3
    if fn.derivative is None or not math.isfinite(sse):
        return theta
    for _ in range(iters):
        z = theta[0] * t + theta[1]
        with np.errstate(all="ignore"):
            f, df = fn.numpy_fn(z), fn.derivative(z)
        r = theta[2] * f + theta[3] - y
        jac = np.stack([theta[2] * df * t, theta[2] * df, f, np.ones_like(t)], axis=1)
        jtj, jtr = jac.T @ jac, jac.T @ r
        improved = False
        while mu < 1e10:
            try:
                step = np.linalg.solve(jtj + mu * np.diag(np.diag(jtj) + 1e-12), -jtr)
            except np.linalg.LinAlgError:
                mu *= 10
                continue
            new = sse_of(theta + step)
            if new < sse:
                theta, improved = theta + step, True
                done = sse - new <= 1e-15 * (1 + sse)
                sse, mu = new, max(mu / 3, 1e-12)
                break
            mu *= 4
        if not improved or done:
            break
    return theta


def fit_edge(
    x: Tensor | np.ndarray,
    y: Tensor | np.ndarray,
    *,
    library: Sequence[str] = DEFAULT_LIBRARY,
    occam_tol: float = 1e-3,
    a_max: float = 5.0,
    n_grid: int = 31,
) -> tuple[str, sympy.Expr, float, float, dict[str, float]]:
    r"""Choose the simplest library formula for samples ``y = phi(x)`` of one edge.

    Polynomials of degree ``n`` are fitted exactly by least squares. Other entries ``f`` are
    fitted as :math:`c\,f(a\tilde x + b) + d` on the standardised input
    :math:`\tilde x = (x - \bar x)/\sigma_x`: an ``n_grid × n_grid`` search over
    :math:`a, b \in [-a_{max}, a_{max}]` (with the best :math:`c, d` in closed form), then a
    Levenberg–Marquardt polish. The winner is the least complex entry whose :math:`R^2` is at
    least the best :math:`R^2` minus ``occam_tol``; ties go to the earlier library entry.
    Entries are tried from the simplest, and the search stops as soon as the current choice
    has :math:`R^2 \ge 1 - \text{occam\_tol}` (no later entry could displace it), so
    ``candidates`` may not list every entry.

    Args:
        x: sample inputs, 1-D (at least 5 distinct points).
        y: sample outputs, same length.
        library: names from :data:`LIBRARY`, in order of preference (default
            :data:`DEFAULT_LIBRARY`).
        occam_tol: :math:`R^2` tolerance (default 1e-3).
        a_max: half-width of the search over the inner scale and shift (default 5).
        n_grid: grid points per axis of that search (default 31).

    Returns:
        ``(name, expr, r2, complexity, candidates)``: the chosen entry, its formula in
        :data:`X`, its :math:`R^2`, its complexity, and ``name → R²`` for all entries.

    Raises:
        HnnkitValueError: on mismatched or too short samples, a non-finite value, or a
            negative tolerance.
        UnknownNameError: on a library name not in :data:`LIBRARY`.
    """
    xs = np.asarray(x.detach().cpu() if isinstance(x, Tensor) else x, dtype=np.float64).ravel()
    ys = np.asarray(y.detach().cpu() if isinstance(y, Tensor) else y, dtype=np.float64).ravel()
    if xs.shape != ys.shape or len(np.unique(xs)) < 5:
        raise HnnkitValueError(
            f"fit_edge needs matching 1-D samples with at least 5 distinct x, got {xs.shape} and {ys.shape}"
        )
    if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
        raise HnnkitValueError("fit_edge samples contain NaN or infinite values")
    if not occam_tol >= 0:
        raise HnnkitValueError(f"occam_tol must be >= 0, got {occam_tol!r}")
    library = list(library)
    for name in library:
        if name not in LIBRARY:
            raise UnknownNameError("library function", name, LIBRARY)
    if not library:
        raise HnnkitValueError(
            "library must name at least one function, e.g. hnnkit.symbolic.DEFAULT_LIBRARY"
        )
    # Simplest first; once the current choice has R² >= 1 - occam_tol nothing later can win.
    order = sorted(library, key=lambda n: (LIBRARY[n].complexity, library.index(n)))
    fits: dict[str, tuple[sympy.Expr, float]] = {}
    chosen = order[0]
    for name in order:
        fn = LIBRARY[name]
        if fn.degree is not None:
            fits[name] = _fit_polynomial(xs, ys, fn.degree)
        else:
            expr, r2 = _fit_affine_function(xs, ys, fn, a_max, n_grid)
            if expr is not None:
                fits[name] = (expr, r2)
        if not fits:
            continue
        best = max(r2 for _, r2 in fits.values())
        chosen = next(n for n in order if n in fits and fits[n][1] >= best - occam_tol)
        if fits[chosen][1] >= 1 - occam_tol:
            break
    candidates = {name: r2 for name, (_, r2) in fits.items()}
    expr, r2 = fits[chosen]
    complexity = LIBRARY[chosen].complexity
    if chosen in ("sin", "cos"):  # the canonical form may have switched between the two
        chosen = "cos" if expr.atoms(sympy.cos) else "sin"
    return chosen, expr, r2, complexity, candidates


# -- the whole network ----------------------------------------------------------------------
@dataclass
class SymbolicHamiltonian:
    r"""A closed-form Hamiltonian extracted from a KAN.

    Attributes:
        expr: the final :math:`H`, with the raw coefficients of its last refit under the HNN
            loss (after the negligible terms of ``full`` were dropped).
        nice: ``expr`` with coefficients rounded for presentation (the HNN loss stays within
            tolerance of ``expr``'s).
        composed: :math:`H` as composed from the edge fits, before any refit.
        full: ``composed`` after the refit, every term kept.
        symbols: the phase-space symbols ``(q, p)`` (``q1..qn, p1..pn`` for ``n > 1``).
        edges: the :class:`EdgeFit` of every edge that feeds the energy.
        losses: HNN losses (derivative MSE) on the train and test data of ``composed``,
            ``full``, ``expr`` and ``nice``: keys ``composed_train``, ``full_train``,
            ``refit_train`` (of ``expr``), ``nice_train`` and the same with ``_test``
            (``nan`` when no test data were given).
        dropped: the terms of ``full`` that were dropped.
        checks: whether :math:`H` is bounded below where the data lie (:func:`energy_check`:
            ``h_min_on_data``, ``h_min_on_box``, ``h_bounded_below``).
    """

    expr: sympy.Expr
    nice: sympy.Expr
    composed: sympy.Expr
    symbols: tuple[sympy.Symbol, ...]
    full: sympy.Expr | None = None
    edges: list[EdgeFit] = field(default_factory=list)
    losses: dict[str, float] = field(default_factory=dict)
    dropped: list[sympy.Expr] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def dof(self) -> int:
        """Degrees of freedom ``n``."""
        return len(self.symbols) // 2

    def coefficients(self, *, nice: bool = False) -> dict[str, float]:
        """Term → coefficient of the expanded expression, e.g. ``{"q**2": 1.0000002, "p**2": 0.9999998, "1": 0.92}``.

        The key ``"1"`` holds the additive constant (it has no effect on the dynamics).
        """
        e = self.nice if nice else self.expr
        out = {str(term): float(c) for term, c in sympy.expand(e).as_coefficients_dict().items()}
        return dict(sorted(out.items(), key=lambda kv: (kv[0] == "1", kv[0])))

    def latex(self, *, nice: bool = True) -> str:
        """LaTeX of ``H = ...``."""
        return "H = " + sympy.latex(self.nice if nice else self.expr)

    def __str__(self) -> str:
        return f"H = {self.nice}"

    def python_source(self, *, nice: bool = True, name: str = "hamiltonian") -> str:
        """Source of a Python function ``name(q, p)`` over torch tensors that returns :math:`H`."""
        from sympy.printing.pytorch import torch_code

        args = ", ".join(s.name for s in self.symbols)
        body = torch_code(self.nice if nice else self.expr)
        return f"import torch\n\n\ndef {name}({args}):\n    return {body}\n"

    def torch_function(self, *, nice: bool = False) -> Callable[[Tensor], Tensor]:
        """A differentiable torch function ``x (..., 2n) → H (...)`` (any dtype and device)."""
        return sympy_to_torch(self.nice if nice else self.expr, list(self.symbols))

    def to_system(self, *, nice: bool = False, **kwargs: Any) -> Custom:
        """Wrap :math:`H` as a :class:`hnnkit.systems.Custom` system (e.g. to roll it out).

        Args:
            nice: use the rounded expression (default: the raw refit).
            **kwargs: passed to :class:`~hnnkit.systems.Custom` (``radius_range``, ``t_span``, ...).
        """
        expr = self.nice if nice else self.expr
        text = sympy.sstr(expr, full_prec=True)
        kwargs.setdefault("name", "kan-symbolic")
        return Custom(text, dof=self.dof, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: formulas (str and LaTeX), raw and nice coefficients, losses, edges."""
        return {
            "formula": str(self.nice),
            "formula_raw": sympy.sstr(self.expr, full_prec=True),
            "latex": sympy.latex(self.nice),
            "composed": str(self.composed),
            "full": str(self.full if self.full is not None else self.expr),
            "dropped_terms": [str(t) for t in self.dropped],
            "coefficients": self.coefficients(),
            "coefficients_nice": self.coefficients(nice=True),
            "losses": dict(self.losses),
            "checks": dict(self.checks),
            "edges": [
                {"edge": [e.layer, e.i, e.j], "fit": e.name, "formula": str(e.expr), "r2": e.r2}
                for e in self.edges
            ],
        }


def phase_space_symbols(dof: int) -> tuple[sympy.Symbol, ...]:
    """``(q, p)`` for one degree of freedom, else ``(q1..qn, p1..pn)`` (real symbols)."""
    if dof == 1:
        return (sympy.Symbol("q", real=True), sympy.Symbol("p", real=True))
    return tuple(sympy.Symbol(f"{c}{i + 1}", real=True) for c in "qp" for i in range(dof))


def _as_data(data: Any) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    if hasattr(data, "split") and hasattr(data, "test_mask"):
        x, dx = data.split("train")
        xt, dxt = data.split("test")
        return x, dx, xt, dxt
    if isinstance(data, tuple | list) and len(data) in (2, 4):
        return (*data, *([None, None] if len(data) == 2 else []))  # type: ignore[return-value]
    raise HnnkitValueError(
        "data must be a hnnkit Dataset, (x, dx) or (x, dx, x_test, dx_test) with states (N, 2n) "
        f"and derivatives (N, 2n); got {type(data).__name__}"
    )


def _live_edges(kan: KAN, output_index: int) -> set[tuple[int, int, int]]:
    """Unmasked edges that lie on a path to ``output_index``."""
    live: set[tuple[int, int, int]] = set()
    wanted = {output_index}
    for layer in reversed(range(kan.depth)):
        mask = kan.act_fun[layer].mask
        nxt = set()
        for i in range(kan.widths[layer]):
            for j in wanted:
                if mask[i, j] != 0:
                    live.add((layer, i, j))
                    nxt.add(i)
        wanted = nxt
    return live


def hnn_loss_fn(
    expr: sympy.Expr,
    symbols: Sequence[sympy.Symbol],
    x: Tensor,
    dx: Tensor,
    *,
    to_field: Callable[[Tensor], Tensor] = symplectic,
) -> float:
    r"""HNN loss of a closed-form :math:`H`: mean squared error of :math:`J\nabla H(x)` against ``dx``.

    ``to_field`` maps the gradient of ``expr`` to the vector field it contributes (default
    :math:`J\nabla`, an energy's; :func:`extract_dissipative` passes a dissipation function's).
    """
    g = _expr_gradient(expr, symbols, x)
    return float((to_field(g) - dx.to(torch.float64)).pow(2).mean())


def _expr_gradient(expr: sympy.Expr, symbols: Sequence[sympy.Symbol], x: Tensor) -> Tensor:
    """:math:`\nabla_x` of the closed form ``expr`` at the states ``x``, float64 (zero for a constant)."""
    fn = sympy_to_torch(expr, list(symbols))
    xx = x.detach().to(torch.float64).requires_grad_(True)
    with torch.enable_grad():
        h = fn(xx)
        if not h.requires_grad:  # a constant
            return torch.zeros_like(xx)
        (g,) = torch.autograd.grad(h.sum(), xx)
    return g


def _parametrize(expr: sympy.Expr, values: list[float]) -> sympy.Expr:
    """Replace every Float occurrence by its own symbol ``_theta_k`` (equal values stay independent)."""
    if isinstance(expr, sympy.Float):
        values.append(float(expr))
        return sympy.Symbol(f"_theta_{len(values) - 1}")
    if not expr.args:
        return expr
    return expr.func(*[_parametrize(a, values) for a in expr.args])


#: A formula and the map from its gradient to the vector field it contributes: ``J∇`` for an
#: energy, ``(0, -∂D/∂p)`` for a rayleigh dissipation (see :func:`hnn_loss_fn`).
_Part = tuple[sympy.Expr, Callable[[Tensor], Tensor]]

#: Term selection's floor for noise-free data: a term is kept only if dropping it (and
#: refitting the rest) raises the held-out loss by more than this fraction of the targets'
#: variance. Round-off and a not quite converged network leave spurious terms far below it
#: (1e-12 and less on the damped spring), a real term lies far above (0.05·p² costs 1.4e-3).
SELECT_ATOL = 1e-6


def _field_of(parts: Sequence[_Part], symbols: Sequence[sympy.Symbol], x: Tensor) -> Tensor:
    """The summed vector field of ``parts`` at ``x`` (float64)."""
    out = torch.zeros(x.shape, dtype=torch.float64, device=x.device)
    for expr, to_field in parts:
        out = out + to_field(_expr_gradient(expr, symbols, x))
    return out


def _parts_loss(
    parts: Sequence[_Part], symbols: Sequence[sympy.Symbol], x: Tensor, dx: Tensor
) -> float:
    """Mean squared error of the summed field of ``parts`` against ``dx``."""
    return float((_field_of(parts, symbols, x) - dx.to(torch.float64)).pow(2).mean())


def _linear_in(templates: Sequence[sympy.Expr], thetas: Sequence[sympy.Symbol]) -> bool:
    """Whether every template is affine in the parameters ``thetas``."""
    params = set(thetas)
    return all(
        not (sympy.diff(t, th).free_symbols & params)
        for t in templates
        for th in t.free_symbols & params
    )


def _least_squares(
    templates: Sequence[sympy.Expr],
    fields: Sequence[Callable[[Tensor], Tensor]],
    thetas: Sequence[sympy.Symbol],
    start: Sequence[float],
    symbols: Sequence[sympy.Symbol],
    x: Tensor,
    target: Tensor,
) -> list[float]:
    """The exact least-squares parameters of templates whose field is linear in them.

    Each parameter's column is the field of its template's derivative; columns are scaled to
    unit norm before the solve. A parameter that moves no field (an additive constant) keeps
    its start value.
    """
    zero = {th: 0 for th in thetas}
    rest = target - _field_of(
        [(t.xreplace(zero), f) for t, f in zip(templates, fields, strict=True)], symbols, x
    )
    columns, free = [], []
    for k, th in enumerate(thetas):
        t, f = next((t, f) for t, f in zip(templates, fields, strict=True) if th in t.free_symbols)
        col = f(_expr_gradient(sympy.diff(t, th), symbols, x)).reshape(-1)
        if bool(col.abs().max() > 0):
            columns.append(col)
            free.append(k)
    values = list(start)
    if columns:
        a = torch.stack(columns, dim=1).cpu().numpy()
        norms = np.linalg.norm(a, axis=0)
        coef = np.linalg.lstsq(a / norms, rest.reshape(-1).cpu().numpy(), rcond=None)[0] / norms
        for k, c in zip(free, coef, strict=True):
            values[k] = float(c)
    return values


def _lbfgs_refit(
    templates: Sequence[sympy.Expr],
    fields: Sequence[Callable[[Tensor], Tensor]],
    thetas: Sequence[sympy.Symbol],
    start: Sequence[float],
    symbols: Sequence[sympy.Symbol],
    x: Tensor,
    target: Tensor,
    max_iter: int,
) -> list[float]:
    """Full-batch L-BFGS (strong Wolfe, float64) on the field loss, for nonlinear templates."""
    fns = [sympy_to_torch(t, [*symbols, *thetas]) for t in templates]
    theta = nn.Parameter(torch.tensor(list(start), dtype=torch.float64))

    def loss_of(th: Tensor) -> Tensor:
        xi = x.clone().requires_grad_(True)
        aug = torch.cat([xi, th.expand(xi.shape[0], -1)], dim=-1)
        out = torch.zeros_like(target)
        for fn, to_field in zip(fns, fields, strict=True):
            h = fn(aug)
            if not (isinstance(h, Tensor) and h.requires_grad):  # a plain number
                continue
            (g,) = torch.autograd.grad(h.sum(), xi, create_graph=True, allow_unused=True)
            if g is not None:
                out = out + to_field(g)
        return (out - target).pow(2).mean() + 0.0 * th.sum()

    with torch.enable_grad():
        chunk = 25
        opt = torch.optim.LBFGS(
            [theta],
            lr=1.0,
            max_iter=chunk,
            history_size=50,
            line_search_fn="strong_wolfe",
            tolerance_grad=1e-14,
            tolerance_change=1e-18,
        )

        def closure() -> Tensor:
            opt.zero_grad()
            loss = loss_of(theta)
            loss.backward()
            return loss

        floor = 1e-16 * float(target.pow(2).mean())  # float64 resolution of the loss
        final = float(loss_of(theta).detach())
        for _ in range(max(1, max_iter // chunk)):  # stop once a chunk no longer helps
            opt.step(closure)
            current = float(loss_of(theta).detach())
            done = not math.isfinite(current) or current <= floor or final - current <= 1e-3 * final
            final = current
            if done:
                break
    return theta.detach().tolist()


def _refit_parts(
    parts: Sequence[_Part],
    symbols: Sequence[sympy.Symbol],
    x: Tensor,
    dx: Tensor,
    *,
    max_iter: int = 500,
) -> tuple[list[_Part], float]:
    """Refit every Float of every part at once against ``dx`` (see :func:`refit_coefficients`)."""
    xx = x.detach().to(torch.float64)
    target = dx.detach().to(torch.float64)
    start = _parts_loss(parts, symbols, xx, target)
    floats: list[float] = []
    templates = [_parametrize(e, floats) for e, _ in parts]
    if not floats:
        return list(parts), start
    thetas = [sympy.Symbol(f"_theta_{k}") for k in range(len(floats))]
    fields = [f for _, f in parts]
    solve = _least_squares if _linear_in(templates, thetas) else _lbfgs_refit
    args = (templates, fields, thetas, floats, symbols, xx, target)
    values = solve(*args) if solve is _least_squares else solve(*args, max_iter)
    new = [
        (t.xreplace({th: sympy.Float(v) for th, v in zip(thetas, values, strict=True)}), f)
        for t, f in zip(templates, fields, strict=True)
    ]
    final = _parts_loss(new, symbols, xx, target)
    if not (math.isfinite(final) and final <= start):
        return list(parts), start
    return new, final


def refit_coefficients(
    expr: sympy.Expr,
    symbols: Sequence[sympy.Symbol],
    x: Tensor,
    dx: Tensor,
    *,
    max_iter: int = 500,
    to_field: Callable[[Tensor], Tensor] = symplectic,
) -> tuple[sympy.Expr, float]:
    r"""Refit every floating-point number of ``expr`` under the HNN loss (or ``to_field``'s, see :func:`hnn_loss_fn`).

    Each occurrence of a :class:`sympy.Float` becomes its own parameter :math:`\theta_k`, and
    :math:`\frac{1}{N}\sum\lVert J\nabla_x H_\theta(x) - \dot x\rVert^2` is minimised. When
    ``expr`` is affine in the parameters (every polynomial is) the field is linear in them and
    the minimum is solved exactly by linear least squares, so the result does not depend on
    where an iteration stops. Otherwise (e.g. :math:`c\cos(aq + b)`) full-batch L-BFGS
    (strong Wolfe, float64) runs in rounds of 25 iterations, until a round lowers the loss by
    less than 0.1 % or the loss reaches float64 resolution. An additive constant has zero
    gradient and keeps its value.

    Args:
        expr: the expression in ``symbols``.
        symbols: the phase-space symbols, in the order of the state's last axis.
        x: states ``(N, 2n)``.
        dx: target derivatives ``(N, 2n)``.
        max_iter: at most this many L-BFGS iterations (default 500).
        to_field: as :func:`hnn_loss_fn`.

    Returns:
        ``(refitted expression, its HNN loss)``; the input expression if the refit does not
        lower the loss.
    """
    parts, loss = _refit_parts([(expr, to_field)], symbols, x, dx, max_iter=max_iter)
    return parts[0][0], loss


def _nice_candidates(v: float) -> list[float]:
    out = [0.0, float(round(v))]
    out += [round(v, d) for d in (1, 2, 3)]
    seen, uniq = set(), []
    for c in out:  # v itself stays a candidate: an integral Float becomes an Integer
        if c not in seen:
            seen.add(c)
            uniq.append(c)
    return uniq


def _shape(term: sympy.Expr) -> sympy.Expr:
    """A term without its numbers (``0.3*cos(1.0*q + 0.1)`` → ``cos(_c*q + _c)``)."""
    body = term.as_coeff_Mul()[1]
    return body.xreplace({f: _NUMBER_PLACEHOLDER for f in body.atoms(sympy.Float)})


def _terms(
    expr: sympy.Expr, symbols: Sequence[sympy.Symbol]
) -> tuple[sympy.Expr, list[sympy.Expr]]:
    """``(additive constant, the other top-level summands)``."""
    const, rest = expr.as_independent(*symbols, as_Add=True)
    return const, [t for t in sympy.Add.make_args(rest) if t != 0]


def _select_terms(
    parts: Sequence[_Part],
    symbols: Sequence[sympy.Symbol],
    x: Tensor,
    dx: Tensor,
    x_val: Tensor | None,
    dx_val: Tensor | None,
    *,
    rtol: float,
    atol: float | None,
    max_iter: int,
) -> tuple[list[_Part], float, list[list[sympy.Expr]]]:
    """Backward elimination of the terms of every part by their held-out evidence (:func:`drop_terms`)."""
    xx = x.detach().to(torch.float64)
    if x_val is None or dx_val is None:
        x_val, dx_val = x, dx
    xv, dxv = x_val.detach().to(torch.float64), dx_val.detach().to(torch.float64)
    if atol is None:
        atol = SELECT_ATOL * float(dxv.var(0).mean()) if len(dxv) > 1 else 0.0
    base = _parts_loss(parts, symbols, xv, dxv)
    limit = base * (1 + rtol) + atol
    candidates: dict[tuple[int, str], float] = {}
    for i, (expr, to_field) in enumerate(parts):
        for term in _terms(expr, symbols)[1]:
            rms = float(to_field(_expr_gradient(term, symbols, xx)).pow(2).sum(-1).mean().sqrt())
            key = (i, sympy.srepr(_shape(term)))
            candidates[key] = min(rms, candidates.get(key, math.inf))
    order = sorted(candidates, key=lambda k: (candidates[k], k))
    current, current_loss = list(parts), base
    dropped: list[list[sympy.Expr]] = [[] for _ in parts]
    for i, key in order:
        expr, to_field = current[i]
        const, summands = _terms(expr, symbols)
        keep = [t for t in summands if sympy.srepr(_shape(t)) != key]
        if len(keep) == len(summands) or not keep:  # never drop every term of a part
            continue
        trial = list(current)
        trial[i] = (sympy.Add(*keep) + const, to_field)
        trial, _ = _refit_parts(trial, symbols, x, dx, max_iter=max_iter)
        loss = _parts_loss(trial, symbols, xv, dxv)
        if loss <= limit:
            dropped[i] += [t for t in summands if sympy.srepr(_shape(t)) == key]
            current, current_loss = trial, loss
    return current, current_loss, dropped


def drop_terms(
    expr: sympy.Expr,
    symbols: Sequence[sympy.Symbol],
    x: Tensor,
    dx: Tensor,
    *,
    rtol: float = 0.02,
    atol: float | None = None,
    max_iter: int = 200,
    to_field: Callable[[Tensor], Tensor] = symplectic,
    x_val: Tensor | None = None,
    dx_val: Tensor | None = None,
) -> tuple[sympy.Expr, float, list[sympy.Expr]]:
    r"""Occam's razor on the whole formula: keep a term only where the held-out data need it.

    The terms of ``expr`` (top-level summands, the constant excluded) are tried from the
    smallest root-mean-square field :math:`\lVert J\nabla T\rVert` on ``x`` up. A term is
    removed when, with the coefficients of the others refitted on ``(x, dx)``
    (:func:`refit_coefficients`), the loss on the held-out ``(x_val, dx_val)`` stays at most
    ``loss·(1 + rtol) + atol``, with ``loss`` that of ``expr`` there. The two tolerances are
    the evidence a term must bring: ``rtol`` scales with the noise (a term that lowers a noisy
    loss by less than 2 % is fitting the noise, e.g. ``q⁴``, ``p²q²``), and ``atol`` is the
    noise-free floor, :data:`SELECT_ATOL` (1e-6) of the held-out targets' variance: terms that
    only move the loss in its last bits are dropped, so the kept set does not depend on
    round-off, thread counts or a network that is not quite converged.

    Args:
        expr, symbols, x, dx: as :func:`refit_coefficients`.
        rtol: relative loss tolerance (default 0.02).
        atol: absolute loss tolerance (default ``1e-6 · var(dx_val)``, the mean over
            components).
        max_iter: L-BFGS iterations of each refit (default 200).
        to_field: as :func:`hnn_loss_fn`.
        x_val, dx_val: held-out states and derivatives that judge each removal (default:
            ``x`` and ``dx``).

    Returns:
        ``(expression, its held-out loss, dropped terms)``.
    """
    parts, loss, dropped = _select_terms(
        [(expr, to_field)], symbols, x, dx, x_val, dx_val, rtol=rtol, atol=atol, max_iter=max_iter
    )
    return parts[0][0], loss, dropped[0]


def _round_parts(
    parts: Sequence[_Part],
    symbols: Sequence[sympy.Symbol],
    x: Tensor,
    dx: Tensor,
    *,
    rtol: float,
    atol: float | None,
) -> list[_Part]:
    """:func:`round_coefficients` over the coefficients of every part, judged on their summed field."""
    target = dx.detach().to(torch.float64)
    atol = 1e-9 * float(target.pow(2).mean()) if atol is None else atol
    limit = _parts_loss(parts, symbols, x, dx) * (1 + rtol) + atol
    split_parts = [expr.as_independent(*symbols, as_Add=True) for expr, _ in parts]
    consts = [c for c, _ in split_parts]
    current = [r for _, r in split_parts]
    fields = [f for _, f in parts]

    def assemble(rests: Sequence[sympy.Expr]) -> list[_Part]:
        return [(r + c, f) for r, c, f in zip(rests, consts, fields, strict=True)]

    order = sorted(
        ((i, f) for i, r in enumerate(current) for f in r.atoms(sympy.Float)),
        key=lambda item: (-abs(float(item[1])), item[0], float(item[1])),
    )
    for i, f in order:
        if f not in current[i].atoms(sympy.Float):
            continue
        for cand in _nice_candidates(float(f)):
            nice = sympy.Integer(int(cand)) if cand == int(cand) else sympy.Float(cand)
            trial = list(current)
            trial[i] = current[i].xreplace({f: nice})
            if _parts_loss(assemble(trial), symbols, x, dx) <= limit:
                current = trial
                break
    consts = [
        sympy.Float(float(f"{float(c):.4g}")) if c != 0 and c.is_Number else c for c in consts
    ]
    return assemble(current)


def round_coefficients(
    expr: sympy.Expr,
    symbols: Sequence[sympy.Symbol],
    x: Tensor,
    dx: Tensor,
    *,
    rtol: float = 0.01,
    atol: float | None = None,
    to_field: Callable[[Tensor], Tensor] = symplectic,
) -> sympy.Expr:
    """Round coefficients to nice values (0, integers, then 1–3 decimals) when the HNN loss allows.

    Coefficients are visited from the largest magnitude down; each takes the first candidate
    for which the HNN loss is at most ``loss·(1 + rtol) + atol`` (``loss`` of the unrounded
    ``expr``). The additive constant has no effect on the loss; it is rounded to 4
    significant digits. This is presentation only: keep the raw expression for numbers.

    Args:
        expr, symbols, x, dx: as :func:`refit_coefficients`.
        rtol: relative loss tolerance (default 0.01).
        atol: absolute loss tolerance (default ``1e-9 · mean(dx²)``).
        to_field: as :func:`hnn_loss_fn`.

    Returns:
        The rounded expression.
    """
    return _round_parts([(expr, to_field)], symbols, x, dx, rtol=rtol, atol=atol)[0][0]


#: Round-off allowance of the sign checks, relative to the largest value on the states.
_SIGN_RTOL = 1e-9


def _values_on(expr: sympy.Expr, symbols: Sequence[sympy.Symbol], x: Tensor) -> Tensor:
    """``expr`` at the states ``x`` (float64, one value per state)."""
    xx = x.detach().to(torch.float64)
    out = sympy_to_torch(expr, list(symbols))(xx)
    return torch.as_tensor(out, dtype=torch.float64).expand(xx.shape[:-1])


def _nonnegative_on(
    expr: sympy.Expr, symbols: Sequence[sympy.Symbol], x: Tensor
) -> tuple[bool, float]:
    """``(expr >= 0 at every state up to round-off, its minimum)``."""
    v = _values_on(expr, symbols, x)
    lo = float(v.min())
    return lo >= -_SIGN_RTOL * float(v.abs().max()), lo


def _is_odd(term: sympy.Expr, symbols: Sequence[sympy.Symbol]) -> bool:
    """Whether ``term`` changes sign under the reflection of some coordinate."""
    return any(
        s in term.free_symbols and sympy.expand(term + term.xreplace({s: -s})) == 0 for s in symbols
    )


def energy_check(
    expr: sympy.Expr, symbols: Sequence[sympy.Symbol], x: Tensor, *, n_grid: int | None = None
) -> dict[str, Any]:
    """Is :math:`H` bounded below where the system lives? A check on the data's bounding box.

    :math:`H` is evaluated on the states ``x`` and on a regular grid over their bounding box
    (``n_grid`` points per axis; default about 4000 points in all, at least 3 per axis). An
    energy whose smallest value on the box lies on the box's boundary keeps falling towards
    the edge of the data: it is reported as not bounded below there.

    Returns:
        ``{"h_min_on_data", "h_min_on_box", "h_bounded_below"}``.
    """
    xx = x.detach().to(torch.float64).cpu()
    dim = xx.shape[-1]
    n = n_grid or max(3, round(4000 ** (1 / dim)))
    lo, hi = xx.min(0).values, xx.max(0).values
    axes = [
        torch.linspace(float(a), float(b), n, dtype=torch.float64)
        for a, b in zip(lo, hi, strict=True)
    ]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, dim)
    on_box = _values_on(expr, symbols, grid)
    k = int(on_box.argmin())
    idx = np.unravel_index(k, (n,) * dim)
    interior = all(0 < i < n - 1 for i in idx)
    # a flat or rising direction at the edge counts: the minimum is only "at the boundary"
    # when it is strictly below every interior value
    inner = on_box.reshape((n,) * dim)[(slice(1, -1),) * dim]
    bounded = interior or bool(inner.numel() and float(inner.min()) <= float(on_box[k]))
    return {
        "h_min_on_data": float(_values_on(expr, symbols, xx).min()),
        "h_min_on_box": float(on_box[k]),
        "h_bounded_below": bounded,
    }


def _make_dissipative(
    parts: list[_Part],
    symbols: Sequence[sympy.Symbol],
    x: Tensor,
    dx: Tensor,
    states: Tensor,
    *,
    max_iter: int,
) -> tuple[list[_Part], dict[str, Any]]:
    """Make the dissipation ``parts[1]`` non-negative on ``states``, pruning terms if needed.

    A dissipation function must satisfy :math:`D \\ge 0`. When the selected :math:`D` is
    negative somewhere on the data, the terms odd in a coordinate (which change sign with it)
    are removed together and the rest refitted with :math:`H`; if :math:`D` is still negative,
    terms are removed one at a time, smallest field first, until it is not (at least one term
    stays). Returns the parts and ``{"d_min_on_data", "d_nonnegative", "d_pruned"}``.
    """
    ok, lo = _nonnegative_on(parts[1][0], symbols, states)
    pruned: list[sympy.Expr] = []
    if not ok:
        const, terms = _terms(parts[1][0], symbols)
        to_field = parts[1][1]
        xx = x.detach().to(torch.float64)
        odd = [t for t in terms if _is_odd(t, symbols)]
        trials: list[list[sympy.Expr]] = []
        if odd and len(odd) < len(terms):
            trials.append(odd)
        rms = {
            t: float(to_field(_expr_gradient(t, symbols, xx)).pow(2).sum(-1).mean()) for t in terms
        }
        by_size = sorted(terms, key=lambda t: (rms[t], sympy.srepr(_shape(t))))
        trials += [by_size[: k + 1] for k in range(len(terms) - 1)]
        for remove in trials:
            keep = [t for t in terms if t not in remove]
            trial = [parts[0], (sympy.Add(*keep) + const, to_field)]
            trial, _ = _refit_parts(trial, symbols, x, dx, max_iter=max_iter)
            ok, lo = _nonnegative_on(trial[1][0], symbols, states)
            if ok:
                parts, pruned = trial, remove
                break
        if not ok:
            lo = _nonnegative_on(parts[1][0], symbols, states)[1]
            warnings.warn(
                f"the extracted dissipation D = {parts[1][0]} is negative on the data "
                f"(min {lo:.3g}): it is not a dissipation; try library=QUADRATIC_LIBRARY or "
                "more training",
                UserWarning,
                stacklevel=3,
            )
    return parts, {"d_min_on_data": lo, "d_nonnegative": ok, "d_pruned": [str(t) for t in pruned]}


def _compose_edges(
    kan: KAN,
    x: Tensor,
    output_index: int,
    symbols: Sequence[sympy.Symbol],
    library: Sequence[str],
    occam_tol: float,
    n_samples: int,
) -> tuple[sympy.Expr, list[EdgeFit]]:
    """Fit every live edge of ``kan`` to a library function and compose output ``output_index``.

    Each edge is sampled over the range its input takes on the states ``x``; an edge that is
    flat there becomes its constant. Returns the expanded expression in ``symbols`` and the fits.

    Raises:
        HnnkitValueError: if the output has no live edge.
    """
    live = _live_edges(kan, output_index)
    if not live:
        raise HnnkitValueError(
            f"output {output_index} of the KAN has no live edge (was it pruned?); nothing to extract"
        )
    ref = kan.act_fun[0].coef
    with torch.no_grad():
        acts = kan.activations(x.to(ref.device, ref.dtype))
    nodes: list[sympy.Expr] = list(symbols)
    edge_fits: list[EdgeFit] = []
    for layer in range(kan.depth):
        inputs = acts[layer].inputs
        width_out = kan.widths[layer + 1]
        outs: list[sympy.Expr] = [sympy.Integer(0)] * width_out
        for j in range(width_out):
            incoming = [i for i in range(kan.widths[layer]) if (layer, i, j) in live]
            if not incoming:
                continue
            node_sd = float(acts[layer].edges[:, :, j].sum(-1).std())
            for i in incoming:
                lo, hi = float(inputs[:, i].min()), float(inputs[:, i].max())
                z = torch.linspace(
                    lo, hi if hi > lo else lo + 1e-6, n_samples, dtype=ref.dtype, device=ref.device
                )
                with torch.no_grad():
                    y = kan.edge_function(layer, i, j, z).cpu().double().numpy()
                zs = z.cpu().double().numpy()
                if float(y.std()) <= 1e-6 * max(node_sd, 1e-300) or float(np.ptp(y)) == 0.0:
                    fit = EdgeFit(layer, i, j, "const", sympy.Float(float(y.mean())), 1.0, 0.0)
                else:
                    name, expr, r2, cx, cands = fit_edge(
                        zs, y, library=library, occam_tol=occam_tol
                    )
                    fit = EdgeFit(layer, i, j, name, expr, r2, cx, cands)
                edge_fits.append(fit)
                outs[j] = outs[j] + fit.expr.xreplace({X: nodes[i]})
        nodes = outs
    composed = sympy.expand(nodes[output_index], power_exp=False, log=False, trig=False)
    return composed, edge_fits


def extract_hamiltonian(
    model: nn.Module,
    data: Any,
    *,
    output_index: int | None = None,
    library: Sequence[str] = DEFAULT_LIBRARY,
    occam_tol: float = 1e-3,
    n_samples: int = 201,
    refit: bool = True,
    refit_iter: int = 500,
    drop_rtol: float | None = 0.02,
    round_rtol: float = 0.01,
) -> SymbolicHamiltonian:
    """Extract a closed-form :math:`H(q, p)` from a trained KAN (or an HNN whose energy net is one).

    Args:
        model: a :class:`~hnnkit.models.kan.KAN` or a model with ``energy_net`` a KAN (e.g.
            ``HNN(2, energy_net=KAN([2, 1, 2]), output_index=1)``).
        data: a :class:`~hnnkit.data.Dataset` (its train split drives the fits and the refit,
            its test split is only scored), or ``(x, dx)``, or ``(x, dx, x_test, dx_test)``.
        output_index: which KAN output is the energy (default: the model's
            ``output_index``, else 0).
        library: function library for the edges (default :data:`DEFAULT_LIBRARY`).
        occam_tol: :math:`R^2` tolerance of the Occam rule (default 1e-3).
        n_samples: points per edge, evenly spread over the range its input takes on the
            training states (default 201).
        refit: refit the free coefficients under the HNN loss (default ``True``).
        refit_iter: L-BFGS iterations of that refit (default 500).
        drop_rtol: relative loss tolerance for dropping whole terms after the refit (see
            :func:`drop_terms`; default 0.02); ``None`` keeps every term.
        round_rtol: relative loss tolerance of the presentation rounding (default 0.01).

    Returns:
        :class:`SymbolicHamiltonian`.

    Raises:
        HnnkitValueError: if ``model`` holds no KAN, the data do not match the KAN's input
            size, ``output_index`` is out of range, or the energy output has no live edge.
    """
    kan = find_kan(model)
    if output_index is None:
        output_index = getattr(model, "output_index", None)
        output_index = 0 if output_index is None else output_index
    if not 0 <= output_index < kan.widths[-1]:
        raise HnnkitValueError(f"output_index must be in [0, {kan.widths[-1]}), got {output_index}")
    x, dx, x_test, dx_test = _as_data(data)
    if x.ndim != 2 or x.shape[-1] != kan.widths[0] or x.shape[-1] % 2 or dx.shape != x.shape:
        raise HnnkitValueError(
            f"states and derivatives must both be (N, {kan.widths[0]}) for KAN{list(kan.widths)}, "
            f"got {tuple(x.shape)} and {tuple(dx.shape)}"
        )
    symbols = phase_space_symbols(x.shape[-1] // 2)
    composed, edge_fits = _compose_edges(
        kan, x, output_index, symbols, library, occam_tol, n_samples
    )
    xd, dxd = x.detach().double().cpu(), dx.detach().double().cpu()
    data4 = (x, dx, x_test, dx_test)
    full = composed
    if refit:
        full, _ = refit_coefficients(composed, symbols, xd, dxd, max_iter=refit_iter)
    dropped: list[sympy.Expr] = []
    expr = full
    held_out = (None, None) if x_test is None else (x_test, dx_test)
    if refit and drop_rtol is not None:
        expr, _, dropped = drop_terms(
            full, symbols, xd, dxd, rtol=drop_rtol, x_val=held_out[0], dx_val=held_out[1]
        )
    nice = round_coefficients(expr, symbols, xd, dxd, rtol=round_rtol)
    states = xd if x_test is None else torch.cat([xd, x_test.detach().double().cpu()])
    return SymbolicHamiltonian(
        expr=expr,
        nice=nice,
        composed=composed,
        symbols=symbols,
        full=full,
        edges=edge_fits,
        losses=_hamiltonian_losses(
            symbols, {"composed": composed, "full": full, "refit": expr, "nice": nice}, data4
        ),
        dropped=dropped,
        checks=_checked_energy(nice, symbols, states),
    )


def _hamiltonian_losses(
    symbols: Sequence[sympy.Symbol],
    exprs: dict[str, sympy.Expr],
    data: tuple[Tensor, Tensor, Tensor | None, Tensor | None],
) -> dict[str, float]:
    """HNN losses ``{name}_train`` and ``{name}_test`` (``nan`` without test data) of each formula."""
    x, dx, x_test, dx_test = (None if t is None else t.detach().double().cpu() for t in data)
    losses = {f"{k}_train": hnn_loss_fn(e, symbols, x, dx) for k, e in exprs.items()}
    for k, e in exprs.items():
        has_test = x_test is not None and dx_test is not None
        losses[f"{k}_test"] = hnn_loss_fn(e, symbols, x_test, dx_test) if has_test else math.nan
    return losses


def _checked_energy(
    expr: sympy.Expr, symbols: Sequence[sympy.Symbol], states: Tensor
) -> dict[str, Any]:
    """:func:`energy_check`, with a warning when H is not bounded below on the data's box."""
    checks = energy_check(expr, symbols, states)
    if not checks["h_bounded_below"]:
        warnings.warn(
            f"the extracted H = {expr} is lowest on the edge of the data's bounding box "
            f"(min {checks['h_min_on_box']:.4g}): it may not be bounded below there",
            UserWarning,
            stacklevel=3,
        )
    return checks


@dataclass
class SymbolicDissipative:
    r"""Closed forms of a dissipative HNN's energy and dissipation, read from its two KANs.

    Attributes:
        hamiltonian: the energy :math:`H` (:class:`SymbolicHamiltonian`; its losses are
            against the targets with the learned dissipative field removed).
        expr: the dissipation function :math:`D` after its refit and term dropping (raw
            coefficients).
        nice: ``expr`` with coefficients rounded for presentation.
        composed: :math:`D` as composed from the dissipation KAN's edge fits (symmetrised in
            ``p`` for the rayleigh form), before any refit.
        form: ``"rayleigh"`` (:math:`f_D = (0, -\partial_p D)`) or ``"helmholtz"`` (:math:`f_D = -\nabla D`).
        losses: derivative MSE of the whole closed-form field :math:`J\nabla H + f_D` with the
            nice forms of both, ``train`` and ``test`` (``nan`` without test data).
        dropped: the terms of :math:`D` that the term selection dropped.
        checks: ``d_min_on_data`` and ``d_nonnegative`` (:math:`D \ge 0` on the train and
            test states, up to round-off), ``d_pruned`` (terms removed to make it so) and
            :math:`H`'s checks (:func:`energy_check`).
    """

    hamiltonian: SymbolicHamiltonian
    expr: sympy.Expr
    nice: sympy.Expr
    composed: sympy.Expr
    form: str
    losses: dict[str, float] = field(default_factory=dict)
    dropped: list[sympy.Expr] = field(default_factory=list)
    checks: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"H = {self.hamiltonian.nice}\nD = {self.nice}  ({self.form})"

    def coefficients(self, *, nice: bool = False) -> dict[str, float]:
        """Term → coefficient of :math:`D` (as :meth:`SymbolicHamiltonian.coefficients`)."""
        e = self.nice if nice else self.expr
        out = {str(term): float(c) for term, c in sympy.expand(e).as_coefficients_dict().items()}
        return dict(sorted(out.items(), key=lambda kv: (kv[0] == "1", kv[0])))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: ``hamiltonian`` (:meth:`SymbolicHamiltonian.to_dict`) and D's formulas."""
        return {
            "hamiltonian": self.hamiltonian.to_dict(),
            "dissipation": str(self.nice),
            "dissipation_raw": sympy.sstr(self.expr, full_prec=True),
            "dissipation_composed": str(self.composed),
            "dissipation_coefficients": self.coefficients(),
            "dissipation_dropped_terms": [str(t) for t in self.dropped],
            "form": self.form,
            "losses": dict(self.losses),
            "checks": dict(self.checks),
        }


def _dissipation_field(form: str) -> Callable[[Tensor], Tensor]:
    """Gradient of :math:`D` → the field it contributes in ``form``."""
    if form == "helmholtz":
        return lambda g: -g

    def rayleigh(g: Tensor) -> Tensor:
        _, gp = split(g)
        return join(torch.zeros_like(gp), -gp)

    return rayleigh


def extract_dissipative(
    model: nn.Module,
    data: Any,
    *,
    library: Sequence[str] = DEFAULT_LIBRARY,
    occam_tol: float = 1e-3,
    n_samples: int = 201,
    refit_iter: int = 500,
    drop_rtol: float | None = 0.02,
    round_rtol: float = 0.01,
) -> SymbolicDissipative:
    r"""Read :math:`H` and the dissipation :math:`D` of a trained dissipative HNN back as formulas.

    ``model`` is a :class:`~hnnkit.models.DissipativeHNN` whose ``energy_net`` and
    ``dissipation_net`` are both :class:`~hnnkit.models.kan.KAN` (one output each, or the
    last output). :math:`H` comes from :func:`extract_hamiltonian` on the targets minus the
    model's own dissipative field, so friction is not read as energy. :math:`D` is composed
    from the dissipation KAN's edge fits (for the rayleigh form, symmetrised as the model does,
    :math:`\tfrac12[d(q,p) + d(q,-p)] - d(q,0)`). Then :math:`H` and :math:`D` are refitted
    together under the loss of the whole field :math:`J\nabla H + f_D` against the targets
    (so neither absorbs the other's error), their terms are selected together by held-out
    evidence (:func:`drop_terms`), :math:`D` is checked to be :math:`\ge 0` on the states
    (a negative :math:`D` is pruned: first of its terms odd in a coordinate, then of its
    smallest terms; a warning if that fails), :math:`H` is checked to be bounded below on the
    data's box (:func:`energy_check`), and both are rounded. On noise-free damped-spring data
    (:math:`\dot p = -2q - \gamma p`) this gives :math:`H = p^2 + q^2` and
    :math:`D = \tfrac{\gamma}{2} p^2`.

    Args:
        model: the trained dissipative HNN.
        data: a :class:`~hnnkit.data.Dataset`, ``(x, dx)`` or ``(x, dx, x_test, dx_test)``.
        library, occam_tol, n_samples, refit_iter, drop_rtol, round_rtol: as
            :func:`extract_hamiltonian`, for both formulas.

    Raises:
        HnnkitValueError: if ``model`` is not a dissipative HNN with two KANs, or the data do not
            match them.
    """
    from .models.dissipative import DissipativeHNN

    nets = (getattr(model, "energy_net", None), getattr(model, "dissipation_net", None))
    if not isinstance(model, DissipativeHNN) or not all(isinstance(n, KAN) for n in nets):
        raise HnnkitValueError(
            "extract_dissipative needs a DissipativeHNN whose energy_net and dissipation_net are "
            "both KANs, e.g. DissipativeHNN(2, energy_net=KAN([2, 1, 1]), "
            f"dissipation_net=KAN([2, 1, 1]), form='rayleigh'); got {type(model).__name__}"
        )
    energy_kan, dissipation_kan = nets
    x, dx, x_test, dx_test = _as_data(data)
    if x.ndim != 2 or x.shape[-1] != energy_kan.widths[0] or dx.shape != x.shape:
        raise HnnkitValueError(
            f"states and derivatives must both be (N, {energy_kan.widths[0]}), got "
            f"{tuple(x.shape)} and {tuple(dx.shape)}"
        )
    ref = energy_kan.act_fun[0].coef

    def conservative_targets(xs: Tensor, dxs: Tensor) -> Tensor:
        f_d = model.dissipative_field(xs.to(ref.device, ref.dtype)).detach()
        return dxs.to(ref.device, ref.dtype) - f_d

    has_test = x_test is not None and dx_test is not None
    h_data = (x, conservative_targets(x, dx))
    if has_test:
        h_data += (x_test, conservative_targets(x_test, dx_test))
    options = {"library": library, "occam_tol": occam_tol, "n_samples": n_samples}
    with warnings.catch_warnings():  # this H is only the start of the joint fit below
        warnings.simplefilter("ignore", UserWarning)
        hamiltonian = extract_hamiltonian(
            energy_kan,
            h_data,
            output_index=energy_kan.widths[-1] - 1,
            refit_iter=refit_iter,
            drop_rtol=None,
            round_rtol=round_rtol,
            **options,
        )
    symbols = hamiltonian.symbols
    d, _ = _compose_edges(
        dissipation_kan, x, dissipation_kan.widths[-1] - 1, symbols, library, occam_tol, n_samples
    )
    if model.form == "rayleigh":
        n = len(symbols) // 2
        momenta = symbols[n:]
        d = sympy.expand(
            (d + d.xreplace({s: -s for s in momenta})) / 2 - d.xreplace({s: 0 for s in momenta})
        )
    to_field = _dissipation_field(model.form)
    xd, dxd = x.detach().double().cpu(), dx.detach().double().cpu()
    xv = x_test.detach().double().cpu() if has_test else None
    dxv = dx_test.detach().double().cpu() if has_test else None
    states = torch.cat([xd, xv]) if xv is not None else xd
    # H and D are refitted, selected and rounded together against the targets, so that
    # neither has to absorb what the other (or the network's friction) leaves.
    parts: list[_Part] = [(hamiltonian.full, symplectic), (d, to_field)]
    parts, _ = _refit_parts(parts, symbols, xd, dxd, max_iter=refit_iter)
    full_h = parts[0][0]
    dropped: list[list[sympy.Expr]] = [[], []]
    if drop_rtol is not None:
        parts, _, dropped = _select_terms(
            parts, symbols, xd, dxd, xv, dxv, rtol=drop_rtol, atol=None, max_iter=refit_iter
        )
    parts, d_checks = _make_dissipative(parts, symbols, xd, dxd, states, max_iter=refit_iter)
    nice_parts = _round_parts(parts, symbols, xd, dxd, rtol=round_rtol, atol=None)
    (h_expr, _), (expr, _) = parts
    (h_nice, _), (nice, _) = nice_parts
    conservative = (x, h_data[1], *(h_data[2:] if has_test else (None, None)))
    h_exprs = {"composed": hamiltonian.composed, "full": full_h, "refit": h_expr, "nice": h_nice}
    hamiltonian = replace(
        hamiltonian,
        expr=h_expr,
        nice=h_nice,
        full=full_h,
        dropped=dropped[0],
        losses=_hamiltonian_losses(symbols, h_exprs, conservative),
        checks=_checked_energy(h_nice, symbols, states),
    )
    losses = {
        "train": _parts_loss(nice_parts, symbols, xd, dxd),
        "test": _parts_loss(nice_parts, symbols, xv, dxv) if xv is not None else math.nan,
    }
    return SymbolicDissipative(
        hamiltonian=hamiltonian,
        expr=expr,
        nice=nice,
        composed=d,
        form=model.form,
        losses=losses,
        dropped=dropped[1],
        checks={**d_checks, **hamiltonian.checks},
    )


RUN_FORMAT = 1
_RUN_DATA = ("x", "dx", "x_test", "dx_test")
#: The checkpoint entry of a KAN run directory that extraction reads (:func:`kan_run_entry`).
RUN_ENTRY = "symbolic"
#: The standalone run file of older KAN runs (``hnnkit train --model kan`` before the checkpoint
#: held :data:`RUN_ENTRY`, and the ``kan-spring`` experiment's model directories): still read.
RUN_FILE = "kan_run.pt"


def kan_run_entry(model: nn.Module, data: Any, *, weights: bool = True) -> dict[str, Any]:
    """What :func:`extract_from_run` needs besides the weights: the KAN's settings, its output
    index, the train and test states and targets, and for a dissipative model its D's KAN.

    ``hnnkit train --model kan`` and the ``kan-spring`` experiment store it as the entry
    :data:`RUN_ENTRY` of the run's checkpoint, whose ``model`` weights it then reads
    (``weights=False``: each KAN is named by its key in the model's ``state_dict``). With the
    weights it is the contents of an older run's standalone :data:`RUN_FILE`.

    Args:
        model: a :class:`~hnnkit.models.kan.KAN` or a model whose ``energy_net`` is one.
        data: a :class:`~hnnkit.data.Dataset`, ``(x, dx)`` or ``(x, dx, x_test, dx_test)``.
        weights: include the KANs' weights (default ``True``).
    """
    kan = find_kan(model)
    names = {id(m): name for name, m in model.named_modules()}
    x, dx, xt, dxt = _as_data(data)
    output_index = getattr(model, "output_index", None)

    def net(k: KAN) -> dict[str, Any]:
        if weights:
            return {"state_dict": {n: v.detach().cpu() for n, v in k.state_dict().items()}}
        return {"key": names[id(k)]}

    state = {
        "format": RUN_FORMAT,
        "kan": _kan_spec(kan),
        **net(kan),
        "output_index": 0 if output_index is None else int(output_index),
        "data": {
            k: None if v is None else v.detach().cpu().double()
            for k, v in zip(_RUN_DATA, (x, dx, xt, dxt), strict=True)
        },
    }
    dissipation = getattr(model, "dissipation_net", None)
    if isinstance(dissipation, KAN):  # a dissipative KAN-HNN: its D is read back too
        state["dissipation"] = {
            "kan": _kan_spec(dissipation),
            **net(dissipation),
            "form": model.form,
        }
    return state


def _kan_spec(kan: KAN) -> dict[str, Any]:
    return {
        "widths": list(kan.widths),
        "grid": kan.grid_size,
        "k": kan.k,
        "grid_range": list(kan.grid_range),
        "base_activation": kan.base_activation,
    }


def _kan_from_spec(
    spec: dict[str, Any], net: dict[str, Any], weights: dict[str, Tensor] | None
) -> KAN:
    """The KAN of ``spec``; its weights from ``net`` or, by ``net["key"]``, from ``weights``."""
    if "state_dict" in net:
        state_dict = net["state_dict"]
    else:
        prefix = f"{net['key']}." if net["key"] else ""
        state_dict = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
    kan = KAN(
        spec["widths"],
        spec["grid"],
        spec["k"],
        grid_range=tuple(spec["grid_range"]),
        base_activation=spec["base_activation"],
        dtype=state_dict["act_fun.0.coef"].dtype,
    )
    kan.load_state_dict(state_dict)
    return kan


def load_kan_run(path: str | os.PathLike) -> tuple[KAN, int, tuple[Tensor, ...]]:
    """Read a KAN run: ``(kan, output_index, (x, dx[, x_test, dx_test]))``.

    ``path`` may be a run directory (its ``checkpoint.pt``, or an older run's
    :data:`RUN_FILE`), a checkpoint, or an older run's :data:`RUN_FILE`. For a dissipative run
    this is the energy's KAN (:func:`extract_from_run` reads the dissipation too).

    Raises:
        DataFileError: if the file is missing or not a KAN run file.
    """
    kan, output_index, data, _ = _load_run(path)
    return kan, output_index, data


def _holds_run_entry(ckpt: Path) -> bool:
    """Whether ``ckpt`` is a readable checkpoint holding :data:`RUN_ENTRY`."""
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception:  # missing, damaged or foreign: the caller falls back to the older file
        return False
    return isinstance(state, dict) and RUN_ENTRY in state


def _load_run(
    path: str | os.PathLike,
) -> tuple[KAN, int, tuple[Tensor, ...], tuple[KAN, str] | None]:
    """:func:`load_kan_run` plus the dissipation's ``(KAN, form)`` of a dissipative run."""
    from .errors import DataFileError

    path = Path(path)
    if path.is_dir():  # the checkpoint, unless only an older run's file holds the KAN run
        ckpt, old = path / "checkpoint.pt", path / RUN_FILE
        path = old if old.is_file() and not _holds_run_entry(ckpt) else ckpt
    train = f"`hnnkit train --system SYSTEM --model kan --out {path.parent}`"
    if not path.is_file():
        raise DataFileError(
            f"{path} does not exist; a KAN run directory holds checkpoint.pt (written by {train} "
            f"and the kan-spring experiment) or, from older versions, {RUN_FILE}"
        )
    retrain = f"retrain it, e.g. with {train}"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors for damaged files
        raise DataFileError(
            f"{path} is corrupted: it cannot be read as a torch file ({type(exc).__name__}); {retrain}"
        ) from exc
    weights = None
    if isinstance(state, dict) and "model" in state and "format" not in state:  # a checkpoint
        if RUN_ENTRY not in state:
            raise DataFileError(
                f"{path} is a checkpoint without a KAN run entry (not a --model kan run, or one "
                f"trained before checkpoints held it, whose directory then holds {RUN_FILE}); "
                f"{retrain}"
            )
        state, weights = state[RUN_ENTRY], state["model"]
    try:
        if not isinstance(state, dict) or state.get("format") != RUN_FORMAT:
            raise ValueError(f"no 'format': {RUN_FORMAT} entry")
        kan = _kan_from_spec(state["kan"], state, weights)
        d = state["data"]
        data = (d["x"], d["dx"]) if d.get("x_test") is None else tuple(d[k] for k in _RUN_DATA)
        output_index = int(state["output_index"])
        diss = state.get("dissipation")
        dissipation = (
            None
            if diss is None
            else (_kan_from_spec(diss["kan"], diss, weights), str(diss["form"]))
        )
    except Exception as exc:  # malformed contents raise many types
        raise DataFileError(
            f"{path} is not a KAN run file ({type(exc).__name__}: {exc}); {retrain}"
        ) from exc
    return kan, output_index, data, dissipation


def extract_from_run(
    path: str | os.PathLike, **kwargs: Any
) -> SymbolicHamiltonian | SymbolicDissipative:
    """:func:`extract_hamiltonian` on a saved KAN run (for ``hnnkit symbolic RUN_DIR``).

    ``path``: a run directory of ``hnnkit train --model kan`` or a model directory of the
    ``kan-spring`` experiment (its ``checkpoint.pt``), a checkpoint, or an older run's
    :data:`RUN_FILE` (or a directory holding one).

    A dissipative run (``hnnkit train --model kan --dissipative``) gives
    :func:`extract_dissipative`'s H and D instead.

    Args:
        path: the run file or its directory.
        **kwargs: passed to the extraction (``library``, ``occam_tol``, ...).

    Raises:
        DataFileError: as :func:`load_kan_run`.
    """
    from .models.dissipative import DissipativeHNN

    kan, output_index, data, dissipation = _load_run(path)
    if dissipation is not None:
        dkan, form = dissipation
        model = DissipativeHNN(kan.widths[0], energy_net=kan, dissipation_net=dkan, form=form)
        return extract_dissipative(model, data, **kwargs)
    kwargs.setdefault("output_index", output_index)
    return extract_hamiltonian(kan, data, **kwargs)


__all__ = [
    "DEFAULT_LIBRARY",
    "LIBRARY",
    "POLYNOMIAL_LIBRARY",
    "QUADRATIC_LIBRARY",
    "RUN_ENTRY",
    "RUN_FILE",
    "EdgeFit",
    "LibraryFunction",
    "SymbolicDissipative",
    "SymbolicHamiltonian",
    "X",
    "drop_terms",
    "energy_check",
    "extract_dissipative",
    "extract_from_run",
    "extract_hamiltonian",
    "fit_edge",
    "hnn_loss_fn",
    "kan_run_entry",
    "load_kan_run",
    "phase_space_symbols",
    "refit_coefficients",
    "round_coefficients",
]
