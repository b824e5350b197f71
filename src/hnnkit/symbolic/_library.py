"""The function library and the fit of one KAN edge to it."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy
from torch import Tensor

from ..errors import HnnkitValueError, UnknownNameError

X = sympy.Symbol("x", real=True)
"""The dummy variable of edge formulas."""


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
