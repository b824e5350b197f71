"""Composing a KAN's edge fits into H and extracting it."""

from __future__ import annotations

import dataclasses
import functools
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
from ..phase_space import symplectic
from ._checks import energy_check
from ._denoise import Smoothing, smooth_states
from ._evidence import EVIDENCE_Z, evidence
from ._formula import (
    SELECT_ATOL,
    Part,
    SymbolicHamiltonian,
    hamiltonian_terms,
    hnn_loss_fn,
    phase_space_symbols,
    round_coefficients,
)
from ._library import DEFAULT_LIBRARY, LIBRARY, EdgeFit, X, fit_edge
from ._select import field_residuals, fit_by_evidence, refit_with_offsets
from ._splits import Splits, splits_of


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


#: Highest total degree of the polynomial terms kept from a composition (:func:`compose_edges`).
MAX_DEGREE = 4


def _is_polynomial_fit(fit: EdgeFit) -> bool:
    return fit.name == "const" or fit.name == "x" or fit.name.startswith("x^")


def truncate_degree(
    expr: sympy.Expr, symbols: Sequence[sympy.Symbol], max_degree: int | None
) -> sympy.Expr:
    """``expr`` expanded, without its polynomial terms of total degree above ``max_degree``
    (terms with other functions, e.g. ``cos(q)``, are kept)."""
    expr = sympy.expand(expr, power_exp=False, log=False, trig=False)
    if max_degree is None:
        return expr
    keep = []
    for term in sympy.Add.make_args(expr):
        if term.is_polynomial(*symbols) and sympy.Poly(term, *symbols).total_degree() > max_degree:
            continue
        keep.append(term)
    return sympy.Add(*keep)


def _compose_polynomial(
    edge: sympy.Expr, node: sympy.Expr, symbols: Sequence[sympy.Symbol], max_degree: int
) -> sympy.Expr:
    """``edge(node)`` for a polynomial ``edge`` in :data:`X` and a polynomial ``node``, with the
    powers of ``node`` truncated to ``max_degree`` as they are formed (exact up to that degree)."""
    coeffs = sympy.Poly(edge, X).all_coeffs()[::-1]  # c0, c1, ...
    base = sympy.Poly(node, *symbols)

    def cut(p: sympy.Poly) -> sympy.Poly:
        terms = {m: c for m, c in p.terms() if sum(m) <= max_degree}
        return sympy.Poly.from_dict(terms or {(0,) * len(symbols): 0}, *symbols)

    out = sympy.Float(coeffs[0]) if coeffs else sympy.Integer(0)
    power = None
    for c in coeffs[1:]:
        power = base if power is None else cut(power * base)
        out = out + sympy.Float(c) * cut(power).as_expr()
    return sympy.expand(out)


def compose_edges(
    kan: KAN,
    x: Tensor,
    output_index: int,
    symbols: Sequence[sympy.Symbol],
    library: Sequence[str],
    occam_tol: float,
    n_samples: int,
    max_degree: int | None = None,
) -> tuple[sympy.Expr, list[EdgeFit]]:
    """Fit every live edge of ``kan`` to a library function and compose output ``output_index``.

    Each edge is sampled over the range its input takes on the states ``x``; an edge that is
    flat there becomes its constant. Returns the expanded expression in ``symbols`` and the fits.
    With ``max_degree``, polynomial terms of higher total degree are left out of the result;
    where every edge from a layer on is polynomial, they are cut as the composition forms them
    (exact up to that degree, and a composition of quartic edges stays small).

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
    fits: dict[tuple[int, int, int], EdgeFit] = {}
    for layer in range(kan.depth):
        inputs = acts[layer].inputs
        for j in range(kan.widths[layer + 1]):
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
                fits[(layer, i, j)] = fit
    # from which layer on every edge is polynomial: there powers can be cut as they form
    poly_from = kan.depth
    while poly_from > 0 and all(
        _is_polynomial_fit(f) for (lay, _, _), f in fits.items() if lay >= poly_from - 1
    ):
        poly_from -= 1
    nodes: list[sympy.Expr] = list(symbols)
    for layer in range(kan.depth):
        outs: list[sympy.Expr] = [sympy.Integer(0)] * kan.widths[layer + 1]
        cut = max_degree is not None and layer >= poly_from
        for (lay, i, j), fit in sorted(fits.items()):
            if lay != layer:
                continue
            if cut and nodes[i].is_polynomial(*symbols):
                outs[j] = outs[j] + _compose_polynomial(fit.expr, nodes[i], symbols, max_degree)
            else:
                outs[j] = outs[j] + fit.expr.xreplace({X: nodes[i]})
        nodes = [
            truncate_degree(o, symbols, max_degree if cut else None) if o != 0 else o for o in outs
        ]
    composed = truncate_degree(nodes[output_index], symbols, max_degree)
    return composed, [fits[k] for k in sorted(fits)]


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
    drop_rtol: float | None = 0.0,
    round_rtol: float = 0.01,
    max_degree: int | None = MAX_DEGREE,
    denoise: str = "auto",
    z: float = EVIDENCE_Z,
    offsets: bool = True,
) -> SymbolicHamiltonian:
    r"""Extract a closed-form :math:`H(q, p)` from a trained KAN (or an HNN whose energy net is one).

    Any number of degrees of freedom: a KAN ``[2n, h, 1]`` composes its edges into a
    candidate library in all :math:`2n` variables, products and differences included (cut at
    total degree ``max_degree``); the library's coefficients are refitted exactly by linear
    least squares against the targets (the field :math:`J\nabla H`); terms are kept by held-out
    evidence (:mod:`hnnkit.symbolic`, "Term selection"); noisy states are first smoothed along
    their trajectories (``denoise``); the formula's held-out loss is compared with the
    network's, and :attr:`SymbolicHamiltonian.failed` (with a warning) says when it is worse by
    more than the noise: the library cannot express the data, and the closest formula is shown.

    Args:
        model: a :class:`~hnnkit.models.kan.KAN` or a model with ``energy_net`` a KAN (e.g.
            ``HNN(2, energy_net=KAN([2, 1, 2]), output_index=1)``).
        data: a :class:`~hnnkit.data.Dataset` (its train split drives the fits and the refit,
            its held-out split judges the terms; its times and trajectories allow smoothing and
            blocked standard errors), or ``(x, dx)``, or ``(x, dx, x_test, dx_test)``.
        output_index: which KAN output is the energy (default: the model's
            ``output_index``, else 0).
        library: function library for the edges (default :data:`DEFAULT_LIBRARY`).
        occam_tol: :math:`R^2` tolerance of the Occam rule (default 1e-3).
        n_samples: points per edge, evenly spread over the range its input takes on the
            training states (default 201).
        refit: refit the coefficients and select the terms (default ``True``); ``False``
            returns the composition as it is.
        refit_iter: L-BFGS iterations of the polish of inner numbers (default 500).
        drop_rtol: ``None`` keeps every term; otherwise an extra relative floor of the
            selection (default 0: the evidence test alone).
        round_rtol: relative loss tolerance of the presentation rounding (default 0.01).
        max_degree: highest total degree of the polynomial candidates (default 4; ``None``
            for no cut).
        denoise: smoothing of the states before the refit (:func:`smooth_states`): ``"auto"``
            (default: integrate where the data are noisy and their trajectories known),
            ``"integrate"``, ``"savgol"`` or ``"none"``.
        z: standard errors a term's held-out loss rise must exceed (default 3).
        offsets: after an ``"integrate"`` smoothing, refine each trajectory's offset jointly
            with the kept terms' coefficients (default ``True``; :func:`refine_offsets`).

    Returns:
        :class:`SymbolicHamiltonian` (``.terms`` with confidences, ``.failed``).

    Raises:
        HnnkitValueError: if ``model`` holds no KAN (the message names the models that can be
            extracted), the data have more (or fewer) degrees of freedom than the KAN's input,
            ``output_index`` is out of range, the energy output has no live edge, or
            ``denoise`` needs trajectories that the data do not carry.
    """
    kan = find_kan(model)
    if output_index is None:
        output_index = getattr(model, "output_index", None)
        output_index = 0 if output_index is None else output_index
    if not 0 <= output_index < kan.widths[-1]:
        raise HnnkitValueError(f"output_index must be in [0, {kan.widths[-1]}), got {output_index}")
    sp = splits_of(data)
    check_kan_input(kan, sp.x, sp.dx)
    symbols = phase_space_symbols(sp.x.shape[-1] // 2)
    composed, edge_fits = compose_edges(
        kan, sp.x, output_index, symbols, library, occam_tol, n_samples, max_degree
    )
    sel, smoothing = selection_data(sp, denoise)
    train, val = (sel.x, sel.dx), held_out(sel)
    full = expr = composed
    dropped: list[sympy.Expr] = []
    terms: list[Any] = []
    if refit:
        options = {"select": drop_rtol is not None, "z": z, "rtol": drop_rtol or 0.0}
        fitted = fit_by_evidence(
            [(composed, symplectic)], ["H"], symbols, train, val, refit_iter=refit_iter, **options
        )
        polynomial = tuple(n for n in library if LIBRARY[n].degree is not None)
        if polynomial and not all(_is_polynomial_fit(e) for e in edge_fits):
            # Occam at the formula level: a sin/cos/exp edge is kept only if its formula beats
            # the all-polynomial composition on held-out data beyond the noise
            alt, alt_edges = compose_edges(
                kan, sp.x, output_index, symbols, polynomial, occam_tol, n_samples, max_degree
            )
            other = fit_by_evidence(
                [(alt, symplectic)], ["H"], symbols, train, val, refit_iter=refit_iter, **options
            )
            g = np.arange(len(val[0])) if val[2] is None else val[2].cpu().numpy()
            atol = SELECT_ATOL * float(val[1].var(0).mean()) if len(val[1]) > 1 else 0.0
            r_poly = field_residuals(other.parts, symbols, val[0], val[1])
            r_fn = field_residuals(fitted.parts, symbols, val[0], val[1])
            if evidence(r_fn, r_poly, g, val[0].shape[-1], atol, z)[3] <= 1:
                composed, edge_fits, fitted = alt, alt_edges, other
        expr, full = fitted.parts[0][0], fitted.full[0][0]
        dropped, terms = fitted.dropped[0], fitted.terms
        if smoothing.method == "integrate" and terms and offsets:
            # the smoothed paths' offsets refined with the coefficients (no attenuation left)
            refined, x_ref = refit_with_offsets(fitted.parts, symbols, sel.x, sel.dx, sel.groups)
            expr = refined[0][0]
            new = hamiltonian_terms(expr, symbols)
            terms = [
                dataclasses.replace(t, coefficient=new.get(t.expr, t.coefficient)) for t in terms
            ]
            smoothing = dataclasses.replace(smoothing, method="integrate+offsets")
            sel = dataclasses.replace(sel, x=x_ref)
    nice = round_coefficients(expr, symbols, sel.x, sel.dx, rtol=round_rtol)
    states = sp.x if not sp.has_test else torch.cat([sp.x, sp.x_test])
    exprs = {"composed": composed, "full": full, "refit": expr, "nice": nice}
    losses = hamiltonian_losses(symbols, exprs, sp.as_tuple())
    net_field = functools.partial(kan_energy_field, kan, output_index)
    versus = versus_network([(nice, symplectic)], net_field, symbols, val, z=z)
    losses.update(versus.pop("losses"))
    checks = checked_energy(nice, symbols, states)
    checks["denoise"] = dataclasses.asdict(smoothing)
    checks["versus_network"] = versus
    warn_if_worse(f"H = {nice}", versus)
    return SymbolicHamiltonian(
        expr=expr,
        nice=nice,
        composed=composed,
        symbols=symbols,
        full=full,
        edges=edge_fits,
        losses=losses,
        dropped=dropped,
        checks=checks,
        terms=sorted(terms, key=lambda t: (-t.confidence, t.name)),
    )


def check_kan_input(kan: KAN, x: Tensor, dx: Tensor) -> None:
    """Raise a clear error unless ``x`` and ``dx`` are ``(N, 2n)`` states that the KAN takes."""
    width = kan.widths[0]
    if x.ndim != 2 or dx.shape != x.shape or x.shape[-1] % 2:
        raise HnnkitValueError(
            f"states and derivatives must both be (N, 2n) for KAN{list(kan.widths)}, "
            f"got {tuple(x.shape)} and {tuple(dx.shape)}"
        )
    if x.shape[-1] != width:
        n, m = x.shape[-1] // 2, width / 2
        more = "more" if x.shape[-1] > width else "fewer"
        raise HnnkitValueError(
            f"the data have {n} degrees of freedom (states of size {2 * n}) but the KAN "
            f"KAN{list(kan.widths)} takes {width} inputs ({m:g} degrees of freedom): {more} "
            f"than it can read. Train a KAN whose first width is {2 * n}, e.g. "
            f"`hnnkit train --model kan --kan-widths {2 * n},{2 * n},1`"
        )


def selection_data(sp: Splits, denoise: str) -> tuple[Splits, Smoothing]:
    """The data the refit and the selection use: ``sp`` with its states smoothed."""
    if denoise not in ("auto", "none") and not sp.has_trajectories:
        raise HnnkitValueError(
            f"denoise={denoise!r} smooths along trajectories, but these data do not say which "
            "trajectory and time each state has: pass a hnnkit Dataset (or a run directory "
            "written by this version), or denoise='none'"
        )
    if denoise == "none" or not sp.has_trajectories:
        return sp, Smoothing("none")
    x, smoothing = smooth_states(sp.x, sp.dx, sp.t, sp.groups, method=denoise)
    xt = sp.x_test
    if sp.has_test and smoothing.method != "none":
        xt, _ = smooth_states(
            sp.x_test, sp.dx_test, sp.t_test, sp.groups_test, method=smoothing.method
        )
    return dataclasses.replace(sp, x=x, x_test=xt), smoothing


def held_out(sp: Splits) -> tuple[Tensor, Tensor, Tensor | None]:
    """``(x, dx, groups)`` that judge the terms: the held-out split, else the training one."""
    if sp.has_test:
        return sp.x_test, sp.dx_test, sp.groups_test
    return sp.x, sp.dx, sp.groups


def kan_energy_field(kan: KAN, output_index: int, x: Tensor) -> Tensor:
    """:math:`J\nabla H` of the KAN's energy output at ``x`` (float64)."""
    ref = kan.act_fun[0].coef
    xx = x.detach().to(ref.device, ref.dtype).requires_grad_(True)
    with torch.enable_grad():
        h = kan(xx)[..., output_index]
        (g,) = torch.autograd.grad(h.sum(), xx)
    return symplectic(g).detach().to("cpu", torch.float64)


def versus_network(
    parts: Sequence[Part],
    network_field: Any,
    symbols: Sequence[sympy.Symbol],
    val: tuple[Tensor, Tensor, Tensor | None],
    *,
    z: float,
) -> dict[str, Any]:
    """The formula's held-out loss against the network's on the same states: ``excess`` (MSE
    difference), ``threshold`` (``max(z·se, SELECT_ATOL·var)``) and ``worse``."""
    x, dx, groups = val
    dim = x.shape[-1]
    g = np.arange(len(x)) if groups is None else groups.cpu().numpy()
    r_formula = field_residuals(parts, symbols, x, dx)
    r_net = (network_field(x) - dx.detach().to(torch.float64)).reshape(-1).cpu().numpy()
    atol = SELECT_ATOL * float(dx.detach().double().var(0).mean()) if len(dx) > 1 else 0.0
    excess, log_ratio, se, confidence = evidence(r_net, r_formula, g, dim, atol, z)
    return {
        "losses": {
            "formula_heldout": float((r_formula**2).mean()),
            "network_heldout": float((r_net**2).mean()),
        },
        "excess": excess,
        "log_ratio": log_ratio,
        "log_ratio_se": se,
        "confidence": confidence,
        "worse": bool(confidence > 1),
    }


def warn_if_worse(formula: str, versus: dict[str, Any]) -> None:
    """Warn when the formula predicts the held-out data worse than the network, beyond noise."""
    if versus["worse"]:
        warnings.warn(
            f"the formula does not express the data: {formula} has a held-out loss "
            f"{versus['excess']:.3g} above the network's, more than the noise (log-likelihood "
            f"ratio {versus['log_ratio']:.3g} ± {versus['log_ratio_se']:.2g} per held-out "
            "trajectory); it is the closest formula the library gives, not the "
            "system's. Try a larger library (library=DEFAULT_LIBRARY, max_degree), a wider KAN, "
            "or more training",
            UserWarning,
            stacklevel=3,
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
