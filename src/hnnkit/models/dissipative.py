r"""The dissipative HNN: a learned conservative energy plus a learned dissipation.

Following Sosanya & Greydanus (2022), "Dissipative Hamiltonian Neural Networks: Learning
Dissipative and Conservative Dynamics Separately" (arXiv:2201.10085), the model learns two
scalar functions of the state, a Hamiltonian :math:`H_\theta` and a dissipation function
:math:`D_\theta`, and writes the vector field as the sum of a conservative (divergence-free) part
and a dissipative part:

.. math::
    \dot x = \underbrace{J\nabla H_\theta(x)}_{\text{conservative}}
           + \underbrace{f_D(x)}_{\text{dissipative}} .

Two forms of :math:`f_D` are offered:

``"helmholtz"`` (the paper's model)
    :math:`f_D = -\nabla_x D_\theta` over all of phase space: an implicit Helmholtz (Hodge)
    decomposition into a rotational part :math:`J\nabla H_\theta` and an irrotational part.
    The paper writes :math:`+\nabla D`; the sign here makes a *positive* :math:`D_\theta` dissipate.
    It can represent any field, including contraction in ``q``. The split is not unique:
    a harmonic function can move between :math:`H_\theta` and :math:`D_\theta`, but the divergence
    (:meth:`dissipation_rate`) is.

``"rayleigh"``
    :math:`f_D = (0, -\partial_p D_\theta)`: a generalized friction force acting on the momenta
    only, derived from a Rayleigh dissipation function. :math:`D_\theta` is made even in ``p`` and
    zero at ``p = 0`` (:math:`D(q,p) = \tfrac12[d(q,p) + d(q,-p)] - d(q,0)`), so friction vanishes at
    rest and cannot absorb a conservative force; for :math:`\dot p = -\partial_q H - \gamma p` the
    split is unique and :math:`D_\theta \to \tfrac12\gamma |p|^2`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..errors import HnnkitValueError, check_choice
from ..phase_space import energy_gradient, join, split, symplectic
from .mlp import MLP
from .registry import register_model

FORMS = ("helmholtz", "rayleigh")


def _scalar(net: nn.Module, x: Tensor, name: str) -> Tensor:
    out = net(x)
    if out.shape == x.shape[:-1]:
        return out
    if out.shape == (*x.shape[:-1], 1):
        return out[..., 0]
    raise HnnkitValueError(
        f"{name} must return one value per state, shape {tuple(x.shape[:-1])} or "
        f"{(*x.shape[:-1], 1)}, got {tuple(out.shape)}"
    )


def _gradient(net: nn.Module, x: Tensor, name: str) -> Tensor:
    if isinstance(net, MLP):
        return net.input_gradient(x, 0)
    return energy_gradient(lambda z: _scalar(net, z, name), x)


class DissipativeHNN(nn.Module):
    r"""Dissipative Hamiltonian neural network: :math:`\dot x = J\nabla H_\theta + f_D`.

    Same interface as :class:`hnnkit.models.HNN` (``vector_field(t, x)``, ``hamiltonian(x)``), so
    :func:`hnnkit.train.fit`, :func:`hnnkit.integrate.odeint` and the metrics take it unchanged.
    The two parts are exposed separately (:meth:`conservative_field`, :meth:`dissipative_field`,
    :meth:`energy_rate`) so that an energy budget can be plotted:
    :math:`\tfrac{d}{dt} H_\theta = \nabla H_\theta \cdot f_D` along the model's flow, because the
    conservative part does no work.

    Args:
        dim: phase-space dimension ``2n``.
        energy_net: module mapping ``(..., dim)`` to ``(...)`` or ``(..., 1)``, the energy
            :math:`H_\theta`. Default: :class:`MLP` ``dim → hidden → 1``.
        dissipation_net: module of the same kind for :math:`D_\theta`. Default: :class:`MLP`
            ``dim → hidden → 1`` whose last layer starts at zero, so that an untrained model is a
            plain HNN and the dissipation only grows where the data ask for it.
        form: ``"helmholtz"`` (default, the paper's :math:`f_D = -\nabla D_\theta`) or ``"rayleigh"``
            (:math:`f_D = (0, -\partial_p D_\theta)`, friction on the momenta only); see the module
            docstring.
        hidden: hidden sizes of the default MLPs (default ``(200, 200)``).
        activation: activation of the default MLPs (default ``tanh``).
        generator: optional ``torch.Generator`` for the default MLPs' initialisation.

    Raises:
        HnnkitValueError: if ``dim`` is not a positive even integer.
        UnknownNameError: if ``form`` is not one of ``helmholtz``, ``rayleigh``.
    """

    def __init__(
        self,
        dim: int,
        energy_net: nn.Module | None = None,
        dissipation_net: nn.Module | None = None,
        *,
        form: str = "helmholtz",
        hidden: Sequence[int] = (200, 200),
        activation: str = "tanh",
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2 or dim % 2:
            raise HnnkitValueError(f"dim must be a positive even integer (q then p), got {dim!r}")
        self.form = check_choice("dissipation form", form, FORMS)
        self.dim = dim
        self.energy_net = (
            energy_net
            if energy_net is not None
            else MLP(dim, 1, hidden, activation, generator=generator)
        )
        if dissipation_net is None:
            dissipation_net = MLP(dim, 1, hidden, activation, generator=generator)
            with torch.no_grad():
                dissipation_net.layers[-1].weight.zero_()
        self.dissipation_net = dissipation_net

    # -- the two scalar functions ------------------------------------------------------
    def hamiltonian(self, x: Tensor) -> Tensor:
        r"""Learned conservative energy :math:`H_\theta(x)`: ``(..., dim)`` → ``(...)``."""
        return _scalar(self.energy_net, x, "energy_net")

    def dissipation(self, x: Tensor) -> Tensor:
        r"""Learned dissipation function :math:`D_\theta(x)`: ``(..., dim)`` → ``(...)``.

        For ``form="rayleigh"`` this is the symmetrised :math:`\tfrac12[d(q,p)+d(q,-p)] - d(q,0)`.
        """
        d = self.dissipation_net
        if self.form == "helmholtz":
            return _scalar(d, x, "dissipation_net")
        q, p = split(x)
        return 0.5 * (
            _scalar(d, x, "dissipation_net") + _scalar(d, join(q, -p), "dissipation_net")
        ) - _scalar(d, join(q, torch.zeros_like(p)), "dissipation_net")

    # -- the two fields ----------------------------------------------------------------
    def energy_gradient(self, x: Tensor) -> Tensor:
        r""":math:`\nabla_x H_\theta`. Closed form for an :class:`MLP`, autograd otherwise."""
        return _gradient(self.energy_net, x, "energy_net")

    def conservative_field(self, x: Tensor) -> Tensor:
        r"""The energy-conserving part :math:`J\nabla H_\theta(x)`, ``(..., dim)``."""
        return symplectic(self.energy_gradient(x))

    def dissipative_field(self, x: Tensor) -> Tensor:
        r"""The dissipative part :math:`f_D(x)`, ``(..., dim)``: :math:`-\nabla D_\theta` (helmholtz) or :math:`(0, -\partial_p D_\theta)` (rayleigh)."""
        d = self.dissipation_net
        if self.form == "helmholtz":
            return -_gradient(d, x, "dissipation_net")
        q, p = split(x)
        # d(q,0) does not depend on p, so only the two symmetric terms contribute to ∂_p D
        _, gp_plus = split(_gradient(d, x, "dissipation_net"))
        _, gp_minus = split(_gradient(d, join(q, -p), "dissipation_net"))
        return join(torch.zeros_like(q), -0.5 * (gp_plus - gp_minus))

    def vector_field(self, t: Tensor | float, x: Tensor) -> Tensor:
        r""":math:`J\nabla H_\theta(x) + f_D(x)` for states ``(..., dim)``; ``t`` is ignored."""
        return self.conservative_field(x) + self.dissipative_field(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.vector_field(None, x)

    # -- read-outs ---------------------------------------------------------------------
    def energy_rate(self, x: Tensor) -> Tensor:
        r"""Rate of change of the learned energy along the model's flow, :math:`\nabla H_\theta \cdot f_D`, ``(...)``.

        Negative where the model loses energy. Integrating it along a rollout gives the energy
        dissipated so far; :math:`H_\theta(x(t)) - H_\theta(x(0))` equals that integral.
        """
        return (self.energy_gradient(x) * self.dissipative_field(x)).sum(-1)

    def dissipation_rate(self, x: Tensor) -> Tensor:
        r"""Local friction rate :math:`-\nabla\cdot f_D(x) / n` per state, ``(...)``.

        The conservative part is divergence-free, so this is the phase-space contraction rate of
        the whole learned field per degree of freedom. For :math:`\dot p = -\partial_q H - \gamma p`
        it equals :math:`\gamma` everywhere; average it over states to estimate :math:`\gamma`.
        For ``helmholtz`` it is :math:`\Delta D_\theta / n`, for ``rayleigh``
        :math:`\operatorname{tr}\partial_p^2 D_\theta / n`. Computed by autograd (a graph is kept
        only when autograd is enabled at the call site).
        """
        n = self.dim // 2
        build_graph = torch.is_grad_enabled()
        first = 0 if self.form == "helmholtz" else n
        with torch.enable_grad():
            xi = x if (x.requires_grad and build_graph) else x.detach().requires_grad_(True)
            f = self.dissipative_field(xi)
            div = torch.zeros(x.shape[:-1], dtype=f.dtype, device=f.device)
            for i in range(first, self.dim):
                (g,) = torch.autograd.grad(
                    f[..., i].sum(), xi, create_graph=build_graph, retain_graph=True
                )
                div = div + g[..., i]
        rate = -div / n
        return rate if build_graph else rate.detach()


def build_dhnn(
    dim: int,
    *,
    generator: torch.Generator | None = None,
    hidden: Sequence[int] = (200, 200),
    activation: str = "tanh",
    form: str = "helmholtz",
) -> DissipativeHNN:
    """The registered ``dhnn``: a :class:`DissipativeHNN` with MLPs ``dim → hidden → 1`` for H and D.

    ``form`` defaults to the paper's (Sosanya & Greydanus 2022), ``"helmholtz"``.
    """
    return DissipativeHNN(
        dim, form=form, hidden=tuple(hidden), activation=activation, generator=generator
    )


register_model(
    "dhnn",
    build_dhnn,
    description="HNN plus a learned dissipation D, dx/dt = J∇H - ∇D (Sosanya & Greydanus 2022)",
    # The real pendulum's setting. Measured learned friction, seed 0, 2000 steps: real pendulum
    # 0.0118 with 1e-5 against 0.0050 with 0 (the recording decays at 0.0119); noise-free
    # damped pendulum (gamma 0.1) 0.094 with 1e-5 against 0.098 with 0.
    defaults={"optimizer": "adam", "steps": 2000, "weight_decay": 1e-5},
    cost=3,
)
