"""Composing a KAN's edge fits into H and extracting it."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import sympy
import torch
from torch import Tensor, nn

from ..errors import HnnkitValueError
from ..models.kan import KAN, find_kan
from ._checks import energy_check
from ._formula import (
    SymbolicHamiltonian,
    as_data,
    drop_terms,
    hnn_loss_fn,
    phase_space_symbols,
    refit_coefficients,
    round_coefficients,
)
from ._library import DEFAULT_LIBRARY, EdgeFit, X, fit_edge


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


def compose_edges(
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
    x, dx, x_test, dx_test = as_data(data)
    if x.ndim != 2 or x.shape[-1] != kan.widths[0] or x.shape[-1] % 2 or dx.shape != x.shape:
        raise HnnkitValueError(
            f"states and derivatives must both be (N, {kan.widths[0]}) for KAN{list(kan.widths)}, "
            f"got {tuple(x.shape)} and {tuple(dx.shape)}"
        )
    symbols = phase_space_symbols(x.shape[-1] // 2)
    composed, edge_fits = compose_edges(
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
        losses=hamiltonian_losses(
            symbols, {"composed": composed, "full": full, "refit": expr, "nice": nice}, data4
        ),
        dropped=dropped,
        checks=checked_energy(nice, symbols, states),
    )


def hamiltonian_losses(
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


def checked_energy(
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
