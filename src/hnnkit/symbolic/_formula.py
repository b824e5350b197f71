"""A closed-form Hamiltonian: its symbols, its HNN loss, the refit, term dropping and rounding."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy
import torch
from torch import Tensor, nn

from ..errors import HnnkitValueError
from ..phase_space import symplectic
from ..systems.custom import Custom, sympy_to_torch
from ._library import EdgeFit

_NUMBER_PLACEHOLDER = sympy.Symbol("_c")


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
            ``h_min_on_data``, ``h_min_on_box``, ``h_bounded_below``); ``denoise`` (the
            smoothing applied before the refit); ``versus_network`` (the formula's held-out
            loss against the network's: ``excess``, ``threshold``, ``worse``).
        terms: the kept terms with their coefficients and confidences (:class:`Term`: how
            much the held-out loss rises without each), largest confidence first.
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
    terms: list[Any] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Whether the formula does not express the data: its held-out loss is worse than the
        network's by more than the noise (``checks["versus_network"]["worse"]``)."""
        return bool(self.checks.get("versus_network", {}).get("worse", False))

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
            "failed": self.failed,
            "terms": [t.to_dict() for t in self.terms],
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


def as_data(data: Any) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
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
    g = expr_gradient(expr, symbols, x)
    return float((to_field(g) - dx.to(torch.float64)).pow(2).mean())


def expr_gradient(expr: sympy.Expr, symbols: Sequence[sympy.Symbol], x: Tensor) -> Tensor:
    """:math:`\nabla_x` of the closed form ``expr`` at the states ``x``, float64 (zero for a constant)."""
    fn = sympy_to_torch(expr, list(symbols))
    xx = x.detach().to(torch.float64).requires_grad_(True)
    with torch.enable_grad():
        h = fn(xx)
        if not h.requires_grad:  # a constant
            return torch.zeros_like(xx)
        (g,) = torch.autograd.grad(h.sum(), xx)
    return g


def parametrize(expr: sympy.Expr, values: list[float]) -> sympy.Expr:
    """Replace every Float occurrence by its own symbol ``_theta_k`` (equal values stay independent)."""
    if isinstance(expr, sympy.Float):
        values.append(float(expr))
        return sympy.Symbol(f"_theta_{len(values) - 1}")
    if not expr.args:
        return expr
    return expr.func(*[parametrize(a, values) for a in expr.args])


#: A formula and the map from its gradient to the vector field it contributes: ``J∇`` for an
#: energy, ``(0, -∂D/∂p)`` for a rayleigh dissipation (see :func:`hnn_loss_fn`).
Part = tuple[sympy.Expr, Callable[[Tensor], Tensor]]

#: Term selection's floor for noise-free data: a term is kept only if dropping it (and
#: refitting the rest) raises the held-out loss by more than this fraction of the targets'
#: variance. Round-off and a not quite converged network leave spurious terms far below it
#: (1e-12 and less on the damped spring), a real term lies far above (0.05·p² costs 1.4e-3).
SELECT_ATOL = 1e-6


def field_of(parts: Sequence[Part], symbols: Sequence[sympy.Symbol], x: Tensor) -> Tensor:
    """The summed vector field of ``parts`` at ``x`` (float64)."""
    out = torch.zeros(x.shape, dtype=torch.float64, device=x.device)
    for expr, to_field in parts:
        out = out + to_field(expr_gradient(expr, symbols, x))
    return out


def parts_loss(
    parts: Sequence[Part], symbols: Sequence[sympy.Symbol], x: Tensor, dx: Tensor
) -> float:
    """Mean squared error of the summed field of ``parts`` against ``dx``."""
    return float((field_of(parts, symbols, x) - dx.to(torch.float64)).pow(2).mean())


def linear_in(templates: Sequence[sympy.Expr], thetas: Sequence[sympy.Symbol]) -> bool:
    """Whether every template is affine in the parameters ``thetas``."""
    params = set(thetas)
    return all(
        not (sympy.diff(t, th).free_symbols & params)
        for t in templates
        for th in t.free_symbols & params
    )


def least_squares(
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
    rest = target - field_of(
        [(t.xreplace(zero), f) for t, f in zip(templates, fields, strict=True)], symbols, x
    )
    columns, free = [], []
    for k, th in enumerate(thetas):
        t, f = next((t, f) for t, f in zip(templates, fields, strict=True) if th in t.free_symbols)
        col = f(expr_gradient(sympy.diff(t, th), symbols, x)).reshape(-1)
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


def lbfgs_refit(
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


def refit_parts(
    parts: Sequence[Part],
    symbols: Sequence[sympy.Symbol],
    x: Tensor,
    dx: Tensor,
    *,
    max_iter: int = 500,
) -> tuple[list[Part], float]:
    """Refit every Float of every part at once against ``dx`` (see :func:`refit_coefficients`)."""
    xx = x.detach().to(torch.float64)
    target = dx.detach().to(torch.float64)
    start = parts_loss(parts, symbols, xx, target)
    floats: list[float] = []
    templates = [parametrize(e, floats) for e, _ in parts]
    if not floats:
        return list(parts), start
    thetas = [sympy.Symbol(f"_theta_{k}") for k in range(len(floats))]
    fields = [f for _, f in parts]
    solve = least_squares if linear_in(templates, thetas) else lbfgs_refit
    args = (templates, fields, thetas, floats, symbols, xx, target)
    values = solve(*args) if solve is least_squares else solve(*args, max_iter)
    new = [
        (t.xreplace({th: sympy.Float(v) for th, v in zip(thetas, values, strict=True)}), f)
        for t, f in zip(templates, fields, strict=True)
    ]
    final = parts_loss(new, symbols, xx, target)
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
    parts, loss = refit_parts([(expr, to_field)], symbols, x, dx, max_iter=max_iter)
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


def term_shape(term: sympy.Expr) -> sympy.Expr:
    """A term without its numbers (``0.3*cos(1.0*q + 0.1)`` → ``cos(_c*q + _c)``)."""
    body = term.as_coeff_Mul()[1]
    return body.xreplace({f: _NUMBER_PLACEHOLDER for f in body.atoms(sympy.Float)})


def split_terms(
    expr: sympy.Expr, symbols: Sequence[sympy.Symbol]
) -> tuple[sympy.Expr, list[sympy.Expr]]:
    """``(additive constant, the other top-level summands)``."""
    const, rest = expr.as_independent(*symbols, as_Add=True)
    return const, [t for t in sympy.Add.make_args(rest) if t != 0]


def select_terms(
    parts: Sequence[Part],
    symbols: Sequence[sympy.Symbol],
    x: Tensor,
    dx: Tensor,
    x_val: Tensor | None,
    dx_val: Tensor | None,
    *,
    rtol: float,
    atol: float | None,
    max_iter: int,
) -> tuple[list[Part], float, list[list[sympy.Expr]]]:
    """Backward elimination of the terms of every part by their held-out evidence (:func:`drop_terms`)."""
    xx = x.detach().to(torch.float64)
    if x_val is None or dx_val is None:
        x_val, dx_val = x, dx
    xv, dxv = x_val.detach().to(torch.float64), dx_val.detach().to(torch.float64)
    if atol is None:
        atol = SELECT_ATOL * float(dxv.var(0).mean()) if len(dxv) > 1 else 0.0
    base = parts_loss(parts, symbols, xv, dxv)
    limit = base * (1 + rtol) + atol
    candidates: dict[tuple[int, str], float] = {}
    for i, (expr, to_field) in enumerate(parts):
        for term in split_terms(expr, symbols)[1]:
            rms = float(to_field(expr_gradient(term, symbols, xx)).pow(2).sum(-1).mean().sqrt())
            key = (i, sympy.srepr(term_shape(term)))
            candidates[key] = min(rms, candidates.get(key, math.inf))
    order = sorted(candidates, key=lambda k: (candidates[k], k))
    current, current_loss = list(parts), base
    dropped: list[list[sympy.Expr]] = [[] for _ in parts]
    for i, key in order:
        expr, to_field = current[i]
        const, summands = split_terms(expr, symbols)
        keep = [t for t in summands if sympy.srepr(term_shape(t)) != key]
        if len(keep) == len(summands) or not keep:  # never drop every term of a part
            continue
        trial = list(current)
        trial[i] = (sympy.Add(*keep) + const, to_field)
        trial, _ = refit_parts(trial, symbols, x, dx, max_iter=max_iter)
        loss = parts_loss(trial, symbols, xv, dxv)
        if loss <= limit:
            dropped[i] += [t for t in summands if sympy.srepr(term_shape(t)) == key]
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
    parts, loss, dropped = select_terms(
        [(expr, to_field)], symbols, x, dx, x_val, dx_val, rtol=rtol, atol=atol, max_iter=max_iter
    )
    return parts[0][0], loss, dropped[0]


def round_parts(
    parts: Sequence[Part],
    symbols: Sequence[sympy.Symbol],
    x: Tensor,
    dx: Tensor,
    *,
    rtol: float,
    atol: float | None,
) -> list[Part]:
    """:func:`round_coefficients` over the coefficients of every part, judged on their summed field."""
    target = dx.detach().to(torch.float64)
    atol = 1e-9 * float(target.pow(2).mean()) if atol is None else atol
    limit = parts_loss(parts, symbols, x, dx) * (1 + rtol) + atol
    split_parts = [expr.as_independent(*symbols, as_Add=True) for expr, _ in parts]
    consts = [c for c, _ in split_parts]
    current = [r for _, r in split_parts]
    fields = [f for _, f in parts]

    def assemble(rests: Sequence[sympy.Expr]) -> list[Part]:
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
            if parts_loss(assemble(trial), symbols, x, dx) <= limit:
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
    return round_parts([(expr, to_field)], symbols, x, dx, rtol=rtol, atol=atol)[0][0]


def hamiltonian_terms(
    expr: sympy.Expr | str, symbols: Sequence[sympy.Symbol]
) -> dict[sympy.Expr, float]:
    """Term → coefficient of ``expr`` expanded (the additive constant left out).

    The keys are the terms without their coefficients (``q1**2*q2``, ``cos(q)``), as
    :attr:`Term.expr <hnnkit.symbolic.Term>`, so an extracted formula can be compared with a
    known one term by term with a tolerance: ``hamiltonian_terms("p**2/2 + q**4/4", (q, p))`` is
    ``{p**2: 0.5, q**4: 0.25}``. A text is parsed with the names of ``symbols``.
    """
    if isinstance(expr, str):
        expr = sympy.sympify(expr, locals={s.name: s for s in symbols})
    _, terms = term_coefficients(expr, symbols)
    return {k: v for k, v in terms.items() if v != 0}


def term_coefficients(
    expr: sympy.Expr, symbols: Sequence[sympy.Symbol]
) -> tuple[sympy.Expr, dict[sympy.Expr, float]]:
    """``(additive constant, {term without its coefficient: coefficient})`` of ``expr``
    expanded (equal terms merged, in the order sympy lists the summands)."""
    expanded = sympy.expand(expr, power_exp=False, log=False, trig=False)
    const, rest = expanded.as_independent(*symbols, as_Add=True)
    out: dict[sympy.Expr, float] = {}
    for term in sympy.Add.make_args(rest):
        if term == 0:
            continue
        c, basis = term.as_coeff_Mul()
        out[basis] = out.get(basis, 0.0) + float(c)
    return const, out
