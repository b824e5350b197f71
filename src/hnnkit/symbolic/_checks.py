"""Physics checks on a formula: H bounded below, D non-negative."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy
import torch
from torch import Tensor

from ..systems.custom import sympy_to_torch
from ._formula import Part, expr_gradient, refit_parts, split_terms, term_shape

#: Round-off allowance of the sign checks, relative to the largest value on the states.
_SIGN_RTOL = 1e-9


def values_on(expr: sympy.Expr, symbols: Sequence[sympy.Symbol], x: Tensor) -> Tensor:
    """``expr`` at the states ``x`` (float64, one value per state)."""
    xx = x.detach().to(torch.float64)
    out = sympy_to_torch(expr, list(symbols))(xx)
    return torch.as_tensor(out, dtype=torch.float64).expand(xx.shape[:-1])


def nonnegative_on(
    expr: sympy.Expr, symbols: Sequence[sympy.Symbol], x: Tensor
) -> tuple[bool, float]:
    """``(expr >= 0 at every state up to round-off, its minimum)``."""
    v = values_on(expr, symbols, x)
    lo = float(v.min())
    return lo >= -_SIGN_RTOL * float(v.abs().max()), lo


def is_odd(term: sympy.Expr, symbols: Sequence[sympy.Symbol]) -> bool:
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
    on_box = values_on(expr, symbols, grid)
    k = int(on_box.argmin())
    idx = np.unravel_index(k, (n,) * dim)
    interior = all(0 < i < n - 1 for i in idx)
    # a flat or rising direction at the edge counts: the minimum is only "at the boundary"
    # when it is strictly below every interior value
    inner = on_box.reshape((n,) * dim)[(slice(1, -1),) * dim]
    bounded = interior or bool(inner.numel() and float(inner.min()) <= float(on_box[k]))
    return {
        "h_min_on_data": float(values_on(expr, symbols, xx).min()),
        "h_min_on_box": float(on_box[k]),
        "h_bounded_below": bounded,
    }


def make_dissipative(
    parts: list[Part],
    symbols: Sequence[sympy.Symbol],
    x: Tensor,
    dx: Tensor,
    states: Tensor,
    *,
    max_iter: int,
) -> tuple[list[Part], dict[str, Any]]:
    """Make the dissipation ``parts[1]`` non-negative on ``states``, pruning terms if needed.

    A dissipation function must satisfy :math:`D \\ge 0`. When the selected :math:`D` is
    negative somewhere on the data, the terms odd in a coordinate (which change sign with it)
    are removed together and the rest refitted with :math:`H`; if :math:`D` is still negative,
    terms are removed one at a time, smallest field first, until it is not (at least one term
    stays). Returns the parts and ``{"d_min_on_data", "d_nonnegative", "d_pruned"}``.
    """
    ok, lo = nonnegative_on(parts[1][0], symbols, states)
    pruned: list[sympy.Expr] = []
    if not ok:
        const, terms = split_terms(parts[1][0], symbols)
        to_field = parts[1][1]
        xx = x.detach().to(torch.float64)
        odd = [t for t in terms if is_odd(t, symbols)]
        trials: list[list[sympy.Expr]] = []
        if odd and len(odd) < len(terms):
            trials.append(odd)
        rms = {
            t: float(to_field(expr_gradient(t, symbols, xx)).pow(2).sum(-1).mean()) for t in terms
        }
        by_size = sorted(terms, key=lambda t: (rms[t], sympy.srepr(term_shape(t))))
        trials += [by_size[: k + 1] for k in range(len(terms) - 1)]
        for remove in trials:
            keep = [t for t in terms if t not in remove]
            trial = [parts[0], (sympy.Add(*keep) + const, to_field)]
            trial, _ = refit_parts(trial, symbols, x, dx, max_iter=max_iter)
            ok, lo = nonnegative_on(trial[1][0], symbols, states)
            if ok:
                parts, pruned = trial, remove
                break
        if not ok:
            lo = nonnegative_on(parts[1][0], symbols, states)[1]
            warnings.warn(
                f"the extracted dissipation D = {parts[1][0]} is negative on the data "
                f"(min {lo:.3g}): it is not a dissipation; try library=QUADRATIC_LIBRARY or "
                "more training",
                UserWarning,
                stacklevel=3,
            )
    return parts, {"d_min_on_data": lo, "d_nonnegative": ok, "d_pruned": [str(t) for t in pruned]}
