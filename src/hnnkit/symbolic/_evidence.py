r"""Term selection by held-out evidence, and the confidence of every kept term.

A formula is a sum of terms :math:`\sum_k c_k T_k(x)` (over one or more parts: the energy
:math:`H`, a dissipation :math:`D`), each entering the vector field linearly through its own
map (:math:`J\nabla T_k` for an energy). For fixed terms the coefficients solve an exact linear
least-squares problem on the training states. A term is **kept only if removing it (and
refitting the rest on the training states) raises the held-out loss by more than its noise**:

.. math::

    \Delta_k = L_{val}(\text{without } k) - L_{val}(\text{all}) >
        \max\bigl(z\,\mathrm{se}(\Delta_k),\ a\bigr),

* :math:`L_{val}` is the mean squared error of the field on held-out data;
* :math:`\mathrm{se}(\Delta_k)` is the standard error of that rise over the held-out
  trajectories (the per-trajectory rises' standard deviation over :math:`\sqrt G`; states of one
  trajectory are correlated, so they are one block), :math:`z` = :data:`EVIDENCE_Z` = 3, a
  one-sided paired test at about the 0.1 % level;
* :math:`a` = :data:`~hnnkit.symbolic.SELECT_ATOL` · var(held-out targets) is the noise-free
  floor: terms that only move the loss in its last bits never decide the formula, so it is the
  same on every machine, thread count and 1e-12 perturbation.

Backward elimination: the term with the smallest rise goes first while it fails the test; the
rises of all candidates come from one pseudo-inverse per round (rank-one downdates). The
**confidence** of a kept term is :math:`\Delta_k / \max(z\,\mathrm{se}, a)`: above 1 it passed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import sympy
from torch import Tensor

from ._formula import SELECT_ATOL, expr_gradient

#: Standard errors a held-out loss rise must exceed for its term to stay.
EVIDENCE_Z = 3.0


@dataclass(frozen=True)
class Term:
    r"""One term of an extracted formula.

    Attributes:
        part: ``"H"`` (energy) or ``"D"`` (dissipation).
        expr: the term without its coefficient, e.g. ``q1**2*q2`` or ``cos(q)``.
        coefficient: its raw refitted coefficient.
        loss_rise: how much the held-out loss (MSE) rises without the term (the rest refitted).
        log_ratio: mean over held-out trajectories of the log-likelihood ratio without/with it.
        log_ratio_se: its standard error.
        confidence: ``min(loss_rise / a, log_ratio / (z·log_ratio_se))`` (> 1: the data need
            the term; :func:`evidence`).
    """

    part: str
    expr: sympy.Expr
    coefficient: float
    loss_rise: float
    log_ratio: float
    log_ratio_se: float
    confidence: float

    @property
    def name(self) -> str:
        """The term's text, e.g. ``"q1**2*q2"``."""
        return str(self.expr)

    def to_dict(self) -> dict[str, object]:
        """JSON-able form."""
        return {
            "part": self.part,
            "term": self.name,
            "coefficient": self.coefficient,
            "loss_rise": self.loss_rise,
            "log_ratio": self.log_ratio,
            "log_ratio_se": self.log_ratio_se,
            "confidence": self.confidence,
        }


def field_columns(
    bases: Sequence[sympy.Expr],
    fields: Sequence[Callable[[Tensor], Tensor]],
    symbols: Sequence[sympy.Symbol],
    x: Tensor,
) -> np.ndarray:
    """The field of every basis term at ``x``, flattened: ``(N·2n, K)`` float64."""
    cols = [
        f(expr_gradient(b, symbols, x)).reshape(-1).cpu().numpy()
        for b, f in zip(bases, fields, strict=True)
    ]
    n = x.shape[0] * x.shape[1]
    return np.stack(cols, axis=1) if cols else np.zeros((n, 0))


def evidence(
    r0: np.ndarray, r1: np.ndarray, groups: np.ndarray, dim: int, atol: float, z: float
) -> tuple[float, float, float, float]:
    r"""Does the model with residuals ``r0`` beat the one with ``r1`` on held-out data, beyond noise?

    Returns ``(rise, log_ratio, log_ratio_se, confidence)``: ``rise`` = MSE(r1) - MSE(r0);
    per block (trajectory) :math:`g` the log-likelihood ratio of Gaussian residuals,
    :math:`d_g = \ln\frac{L_{1,g} + a}{L_{0,g} + a}` (:math:`a` = ``atol``, the floor), its mean
    and standard error over the blocks (per state when there is only one block), and
    ``confidence`` = ``min(rise / atol, mean / (z·se))``: above 1 the difference is real.
    """
    rise = float((r1**2).mean() - (r0**2).mean())
    s0 = (r0**2).reshape(-1, dim).mean(1)
    s1 = (r1**2).reshape(-1, dim).mean(1)
    ids, inv = np.unique(groups, return_inverse=True)
    if len(ids) < 2:
        inv = np.arange(len(s0))
    counts = np.bincount(inv)
    l0 = np.bincount(inv, weights=s0) / counts
    l1 = np.bincount(inv, weights=s1) / counts
    floor = max(atol, 1e-300)
    d = np.log((l1 + floor) / (l0 + floor))
    mean = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else 0.0
    by_size = rise / atol if atol > 0 else math.inf
    by_ratio = mean / (z * se) if se > 0 else (math.inf if mean > 0 else -math.inf)
    return rise, mean, se, float(min(by_size, by_ratio))


@dataclass
class Selection:
    """What :func:`select_by_evidence` kept: indices into the candidates, coefficients, terms."""

    kept: list[int]
    coefficients: np.ndarray
    evidence: list[tuple[float, float, float, float]]
    loss_val: float
    atol: float


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Least squares with unit-norm columns (better conditioned)."""
    norms = np.linalg.norm(a, axis=0)
    norms[norms == 0] = 1.0
    return np.linalg.lstsq(a / norms, b, rcond=None)[0] / norms


def select_by_evidence(
    a_train: np.ndarray,
    b_train: np.ndarray,
    a_val: np.ndarray,
    b_val: np.ndarray,
    groups_val: np.ndarray,
    dim: int,
    *,
    z: float = EVIDENCE_Z,
    atol: float | None = None,
    keys: Sequence[str] | None = None,
    protected: Sequence[int] = (),
    rtol: float = 0.0,
    drop: bool = True,
) -> Selection:
    r"""Backward elimination of the columns of a linear model by held-out evidence.

    Args:
        a_train, b_train: design ``(M, K)`` and target ``(M,)`` on the training states.
        a_val, b_val: the same on held-out states.
        groups_val: the block (trajectory) of each held-out state, ``(M_val / dim,)``.
        dim: components per state (``2n``).
        z: standard errors the rise must exceed (default :data:`EVIDENCE_Z`).
        atol: the absolute floor (default :data:`SELECT_ATOL` · variance of ``b_val`` per
            component, averaged).
        keys: a stable name per column, for deterministic tie-breaks.
        protected: columns never removed.
        rtol: an extra relative floor: the rise must also exceed ``rtol`` times the held-out
            loss (default 0).
        drop: ``False`` only fits every column (no elimination, rises not computed).

    Returns:
        :class:`Selection` (kept indices in increasing order).
    """
    k_all = a_train.shape[1]
    keys = list(keys) if keys is not None else [f"{k:06d}" for k in range(k_all)]
    if atol is None:
        atol = SELECT_ATOL * float(b_val.reshape(-1, dim).var(0).mean()) if len(b_val) > dim else 0
    norms = np.linalg.norm(a_train, axis=0)
    live = [k for k in range(k_all) if norms[k] > 0]
    scale = np.where(norms > 0, norms, 1.0)
    at, av = a_train / scale, a_val / scale
    g_tr, c_tr = at.T @ at, at.T @ b_train
    g_v, c_v, bb_v = av.T @ av, av.T @ b_val, float(b_val @ b_val)
    m_v = len(b_val)
    prot = set(protected)

    def fit(idx: list[int]) -> np.ndarray:  # normal equations of unit-norm columns: fast
        g = g_tr[np.ix_(idx, idx)]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
                return scipy.linalg.solve(g, c_tr[idx], assume_a="pos")
        except (np.linalg.LinAlgError, ValueError):
            return np.linalg.lstsq(g, c_tr[idx], rcond=None)[0]

    def val_loss(idx: list[int], beta: np.ndarray) -> float:
        r = av[:, idx] @ beta - b_val
        return float(r @ r) / m_v

    current = list(live)
    while drop and len(current) > 1:
        h = np.linalg.pinv(g_tr[np.ix_(current, current)], rcond=1e-13, hermitian=True)
        beta = h @ c_tr[current]
        diag = np.diag(h).copy()
        diag[diag == 0] = np.inf
        downdated = beta[None, :] - (beta / diag)[:, None] * h.T  # row k: refit without k
        np.fill_diagonal(downdated, 0.0)
        gv = g_v[np.ix_(current, current)]
        quad = np.einsum("ki,ij,kj->k", downdated, gv, downdated)
        losses = (quad - 2 * downdated @ c_v[current] + bb_v) / m_v
        base = (beta @ gv @ beta - 2 * beta @ c_v[current] + bb_v) / m_v
        rises = losses - base
        order = sorted(range(len(current)), key=lambda i: (rises[i], keys[current[i]]))
        beta_exact = fit(current)
        r0 = av[:, current] @ beta_exact - b_val
        removed = False
        for i in order:
            k = current[i]
            if k in prot:
                continue
            trial = [c for c in current if c != k]
            b1 = fit(trial)
            r1 = av[:, trial] @ b1 - b_val
            floor = max(atol, rtol * float(r0 @ r0) / m_v)
            if evidence(r0, r1, groups_val, dim, floor, z)[3] <= 1:
                current = trial
                removed = True
                break
        if not removed:
            break
    if not current:  # no candidate moves the field
        return Selection([], np.zeros(k_all), [], float(b_val @ b_val) / m_v, float(atol))
    beta = np.linalg.lstsq(at[:, current], b_train, rcond=None)[0]  # the exact final solve
    r0 = av[:, current] @ beta - b_val
    stats = []
    for k in current if drop else []:
        trial = [c for c in current if c != k]
        if trial:
            r1 = av[:, trial] @ fit(trial) - b_val
        else:
            r1 = -b_val
        floor = max(atol, rtol * float(r0 @ r0) / m_v)
        stats.append(evidence(r0, r1, groups_val, dim, floor, z))
    coef = np.zeros(k_all)
    coef[current] = beta / scale[current]
    return Selection(
        kept=list(current),
        coefficients=coef,
        evidence=stats,
        loss_val=val_loss(current, beta),
        atol=float(atol),
    )


__all__ = [
    "EVIDENCE_Z",
    "Selection",
    "Term",
    "evidence",
    "field_columns",
    "select_by_evidence",
]
