r"""From composed formulas to the terms the data need: the candidate library, the exact linear
refit, selection by held-out evidence (:mod:`._evidence`) and a polish of inner parameters."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy
import torch
from torch import Tensor

from ._evidence import EVIDENCE_Z, Term, field_columns, select_by_evidence
from ._formula import Part, parts_loss, refit_parts, term_coefficients


def candidate_terms(
    expr: sympy.Expr, symbols: Sequence[sympy.Symbol]
) -> tuple[sympy.Expr, list[tuple[sympy.Expr, float]]]:
    """``(additive constant, [(term without its coefficient, coefficient), ...])`` of ``expr``
    (expanded; equal terms merged; in a stable order)."""
    const, merged = term_coefficients(expr, symbols)
    ordered = sorted(merged.items(), key=lambda kv: sympy.default_sort_key(kv[0]))
    return const, ordered


@dataclass
class Fitted:
    """The result of :func:`fit_by_evidence`.

    Attributes:
        parts: the selected formulas (raw coefficients), one per part.
        full: every candidate term refitted (before selection), one per part.
        terms: the kept :class:`~hnnkit.symbolic.Term` s with their confidences.
        dropped: per part, the candidate terms that were dropped.
        atol: the selection's absolute floor.
    """

    parts: list[Part]
    full: list[Part]
    terms: list[Term] = field(default_factory=list)
    dropped: list[list[sympy.Expr]] = field(default_factory=list)
    atol: float = 0.0


def fit_by_evidence(
    parts: Sequence[Part],
    names: Sequence[str],
    symbols: Sequence[sympy.Symbol],
    train: tuple[Tensor, Tensor],
    val: tuple[Tensor, Tensor, Tensor | None],
    *,
    select: bool = True,
    z: float = EVIDENCE_Z,
    rtol: float = 0.0,
    refit_iter: int = 500,
) -> Fitted:
    r"""Refit the terms of ``parts`` together and keep those the held-out data need.

    1. Every part's expanded summands are the candidate library (their coefficients free, any
       inner numbers such as the 1.0 of ``cos(1.0*q)`` held).
    2. The coefficients solve the linear least-squares problem of the summed field against
       the training targets exactly.
    3. With ``select``, backward elimination by held-out evidence
       (:func:`~hnnkit.symbolic._evidence.select_by_evidence`).
    4. Where a kept term has inner numbers, every number of the kept formula is polished by
       L-BFGS on the training loss (:func:`~hnnkit.symbolic.refit_coefficients`).

    Args:
        parts: ``(formula, field map)`` per part (``J∇`` for an energy).
        names: a name per part (``"H"``, ``"D"``), for the :class:`Term` s.
        symbols: the phase-space symbols.
        train: ``(x, dx)`` training states and targets.
        val: ``(x, dx, groups)`` held-out states, targets and trajectory of each state
            (``groups`` ``None``: one block per state).
        select: run the selection (``False`` keeps every term).
        z: standard errors a term's rise must exceed.
        rtol: an extra relative floor: a term must also raise the held-out loss by more than
            ``rtol`` times it.
        refit_iter: L-BFGS iterations of the polish.
    """
    x, dx = (v.detach().to(torch.float64) for v in train)
    xv, dxv, gv = val
    xv, dxv = xv.detach().to(torch.float64), dxv.detach().to(torch.float64)
    dim = x.shape[-1]
    groups = (
        np.arange(len(xv)) if gv is None else np.asarray(gv.detach().cpu().numpy(), dtype=np.int64)
    )
    consts, bases, fields, owners, starts = [], [], [], [], []
    for p, (expr, to_field) in enumerate(parts):
        const, terms = candidate_terms(expr, symbols)
        consts.append(const)
        for basis, c in terms:
            bases.append(basis)
            fields.append(to_field)
            owners.append(p)
            starts.append(c)
    a_tr = field_columns(bases, fields, symbols, x)
    a_v = field_columns(bases, fields, symbols, xv)
    b_tr, b_v = dx.reshape(-1).cpu().numpy(), dxv.reshape(-1).cpu().numpy()
    keys = [f"{owners[k]}:{sympy.srepr(b)}" for k, b in enumerate(bases)]
    everything = select_by_evidence(
        a_tr, b_tr, a_v, b_v, groups, dim, z=z, keys=keys, atol=None, drop=False
    )
    chosen = (
        select_by_evidence(a_tr, b_tr, a_v, b_v, groups, dim, z=z, keys=keys, rtol=rtol)
        if select
        else everything
    )

    def assemble(coef: np.ndarray, kept: Sequence[int]) -> list[Part]:
        out = []
        for p, (_, to_field) in enumerate(parts):
            body = [sympy.Float(float(coef[k])) * bases[k] for k in kept if owners[k] == p]
            out.append((sympy.Add(*body) + consts[p], to_field))
        return out

    full = assemble(everything.coefficients, everything.kept)
    kept_parts = assemble(chosen.coefficients, chosen.kept)
    if any(bases[k].atoms(sympy.Float) for k in chosen.kept):
        polished, loss = refit_parts(kept_parts, symbols, x, dx, max_iter=refit_iter)
        if loss <= parts_loss(kept_parts, symbols, x, dx):
            kept_parts = polished
    terms = [
        Term(
            part=names[owners[k]],
            expr=bases[k],
            coefficient=float(chosen.coefficients[k]),
            loss_rise=ev[0],
            log_ratio=ev[1],
            log_ratio_se=ev[2],
            confidence=ev[3],
        )
        for k, ev in zip(
            chosen.kept, chosen.evidence or [(math.nan,) * 4] * len(chosen.kept), strict=True
        )
    ]
    dropped = [
        [bases[k] for k in range(len(bases)) if owners[k] == p and k not in set(chosen.kept)]
        for p in range(len(parts))
    ]
    return Fitted(kept_parts, full, terms, dropped, chosen.atol)


def field_residuals(
    parts: Sequence[tuple[sympy.Expr, Callable[[Tensor], Tensor]]],
    symbols: Sequence[sympy.Symbol],
    x: Tensor,
    dx: Tensor,
) -> np.ndarray:
    """Residual of the summed field of ``parts`` against ``dx``, flattened (float64)."""
    from ._formula import field_of

    r = field_of(parts, symbols, x.detach().to(torch.float64)) - dx.detach().to(torch.float64)
    return r.reshape(-1).cpu().numpy()


def refit_with_offsets(
    parts: Sequence[Part],
    symbols: Sequence[sympy.Symbol],
    x: Tensor,
    dx: Tensor,
    groups: Tensor,
) -> tuple[list[Part], Tensor]:
    """The coefficients of ``parts`` (their terms fixed) refitted jointly with one offset per
    trajectory of the smoothed states ``x`` (:func:`~hnnkit.symbolic.refine_offsets`).

    Returns ``(refitted parts, refined states)``."""
    from ._denoise import refine_offsets
    from ._formula import field_of

    def refit(states: Tensor) -> Callable[[Tensor], Tensor]:
        new = fit_by_evidence(
            parts, ["H"] * len(parts), symbols, (states, dx), (states, dx, None), select=False
        ).parts
        return lambda xs: field_of(new, symbols, xs)

    refined = refine_offsets(refit, x, dx, groups)
    final = fit_by_evidence(
        parts, ["H"] * len(parts), symbols, (refined, dx), (refined, dx, None), select=False
    )
    return final.parts, refined


__all__ = ["Fitted", "candidate_terms", "field_residuals", "fit_by_evidence", "refit_with_offsets"]
