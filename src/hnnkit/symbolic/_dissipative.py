"""H and the dissipation D of a dissipative KAN-HNN."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import sympy
import torch
from torch import Tensor, nn

from ..errors import HnnkitValueError
from ..models.kan import KAN
from ..phase_space import join, split, symplectic
from ._checks import make_dissipative
from ._evidence import EVIDENCE_Z
from ._extract import (
    MAX_DEGREE,
    check_kan_input,
    checked_energy,
    compose_edges,
    extract_hamiltonian,
    hamiltonian_losses,
    held_out,
    selection_data,
    versus_network,
    warn_if_worse,
)
from ._formula import (
    SymbolicHamiltonian,
    parts_loss,
    round_parts,
)
from ._library import DEFAULT_LIBRARY
from ._select import fit_by_evidence
from ._splits import splits_of


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
        terms: the kept terms of both (:class:`Term`, ``part`` ``"H"`` or ``"D"``) with their
            confidences.
        checks: ``denoise``, ``versus_network`` (as :class:`SymbolicHamiltonian`'s), ``d_min_on_data`` and ``d_nonnegative`` (:math:`D \ge 0` on the train and
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
    terms: list[Any] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Whether the closed-form field predicts the held-out data worse than the network,
        by more than the noise (``checks["versus_network"]["worse"]``)."""
        return bool(self.checks.get("versus_network", {}).get("worse", False))

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
            "failed": self.failed,
            "terms": [t.to_dict() for t in self.terms],
        }


def dissipation_field(form: str) -> Callable[[Tensor], Tensor]:
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
    drop_rtol: float | None = 0.0,
    round_rtol: float = 0.01,
    max_degree: int | None = MAX_DEGREE,
    denoise: str = "auto",
    z: float = EVIDENCE_Z,
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
    evidence (:mod:`hnnkit.symbolic`, "Term selection"), :math:`D` is checked to be :math:`\ge 0` on the states
    (a negative :math:`D` is pruned: first of its terms odd in a coordinate, then of its
    smallest terms; a warning if that fails), :math:`H` is checked to be bounded below on the
    data's box (:func:`energy_check`), and both are rounded. On noise-free damped-spring data
    (:math:`\dot p = -2q - \gamma p`) this gives :math:`H = p^2 + q^2` and
    :math:`D = \tfrac{\gamma}{2} p^2`.

    Args:
        model: the trained dissipative HNN.
        data: a :class:`~hnnkit.data.Dataset`, ``(x, dx)`` or ``(x, dx, x_test, dx_test)``.
        library, occam_tol, n_samples, refit_iter, drop_rtol, round_rtol, max_degree, denoise,
            z: as :func:`extract_hamiltonian`, for both formulas.

    Raises:
        HnnkitValueError: if ``model`` is not a dissipative HNN with two KANs, or the data do not
            match them.
    """
    from ..models.dissipative import DissipativeHNN

    nets = (getattr(model, "energy_net", None), getattr(model, "dissipation_net", None))
    if not isinstance(model, DissipativeHNN) or not all(isinstance(n, KAN) for n in nets):
        raise HnnkitValueError(
            "extract_dissipative needs a DissipativeHNN whose energy_net and dissipation_net are "
            "both KANs, e.g. DissipativeHNN(2, energy_net=KAN([2, 1, 1]), "
            f"dissipation_net=KAN([2, 1, 1]), form='rayleigh'); got {type(model).__name__}"
        )
    energy_kan, dissipation_kan = nets
    sp = splits_of(data)
    check_kan_input(energy_kan, sp.x, sp.dx)
    ref = energy_kan.act_fun[0].coef

    def conservative_targets(xs: Tensor, dxs: Tensor) -> Tensor:
        f_d = model.dissipative_field(xs.to(ref.device, ref.dtype)).detach()
        return (dxs.to(ref.device, ref.dtype) - f_d).to("cpu", torch.float64)

    h_data = dataclasses.replace(
        sp,
        dx=conservative_targets(sp.x, sp.dx),
        dx_test=conservative_targets(sp.x_test, sp.dx_test) if sp.has_test else None,
    )
    options = {"library": library, "occam_tol": occam_tol, "n_samples": n_samples}
    with warnings.catch_warnings():  # this H is only the start of the joint fit below
        warnings.simplefilter("ignore", UserWarning)
        hamiltonian = extract_hamiltonian(
            energy_kan,
            h_data,
            output_index=energy_kan.widths[-1] - 1,
            refit=False,
            denoise="none",
            max_degree=max_degree,
            **options,
        )
    symbols = hamiltonian.symbols
    d, _ = compose_edges(
        dissipation_kan,
        sp.x,
        dissipation_kan.widths[-1] - 1,
        symbols,
        library,
        occam_tol,
        n_samples,
        max_degree,
    )
    if model.form == "rayleigh":
        n = len(symbols) // 2
        momenta = symbols[n:]
        d = sympy.expand(
            (d + d.xreplace({s: -s for s in momenta})) / 2 - d.xreplace({s: 0 for s in momenta})
        )
    to_field = dissipation_field(model.form)
    sel, smoothing = selection_data(sp, denoise)
    xd, dxd = sel.x, sel.dx
    val = held_out(sel)
    states = torch.cat([sp.x, sp.x_test]) if sp.has_test else sp.x
    # H and D are refitted, selected and rounded together against the targets, so that
    # neither has to absorb what the other (or the network's friction) leaves.
    fitted = fit_by_evidence(
        [(hamiltonian.composed, symplectic), (d, to_field)],
        ["H", "D"],
        symbols,
        (xd, dxd),
        val,
        select=drop_rtol is not None,
        z=z,
        rtol=drop_rtol or 0.0,
        refit_iter=refit_iter,
    )
    parts, full_h, dropped = fitted.parts, fitted.full[0][0], fitted.dropped
    parts, d_checks = make_dissipative(parts, symbols, xd, dxd, states, max_iter=refit_iter)
    nice_parts = round_parts(parts, symbols, xd, dxd, rtol=round_rtol, atol=None)
    (h_expr, _), (expr, _) = parts
    (h_nice, _), (nice, _) = nice_parts
    h_exprs = {"composed": hamiltonian.composed, "full": full_h, "refit": h_expr, "nice": h_nice}
    hamiltonian = replace(
        hamiltonian,
        expr=h_expr,
        nice=h_nice,
        full=full_h,
        dropped=dropped[0],
        losses=hamiltonian_losses(symbols, h_exprs, h_data.as_tuple()),
        checks=checked_energy(h_nice, symbols, states),
        terms=[t for t in fitted.terms if t.part == "H"],
    )

    def network_field(xs: Tensor) -> Tensor:
        xx = xs.to(ref.device, ref.dtype)
        return model.vector_field(0.0, xx).detach().to("cpu", torch.float64)

    versus = versus_network(nice_parts, network_field, symbols, val, z=z)
    losses = {
        "train": parts_loss(nice_parts, symbols, sp.x, sp.dx),
        "test": parts_loss(nice_parts, symbols, sp.x_test, sp.dx_test) if sp.has_test else math.nan,
        **versus.pop("losses"),
    }
    warn_if_worse(f"H = {h_nice}, D = {nice}", versus)
    d_checks.update(denoise=dataclasses.asdict(smoothing), versus_network=versus)
    terms = sorted(fitted.terms, key=lambda t: (t.part != "H", -t.confidence, t.name))
    return SymbolicDissipative(
        hamiltonian=hamiltonian,
        expr=expr,
        nice=nice,
        composed=d,
        form=model.form,
        losses=losses,
        dropped=dropped[1],
        checks={**hamiltonian.checks, **d_checks},
        terms=terms,
    )
