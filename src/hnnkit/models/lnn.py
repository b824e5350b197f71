r"""The Lagrangian neural network (Cranmer et al. 2020): a learned :math:`L_\theta(q, \dot q)`.

The accelerations follow from the Euler–Lagrange equations,

.. math::
    \ddot q = \left(\nabla_{\dot q}\nabla_{\dot q}^\top L\right)^{-1}
        \left[\nabla_q L - \left(\nabla_q\nabla_{\dot q}^\top L\right)\dot q\right],

with the Hessians in closed form for the default MLP (:func:`mlp_hessian`), by autograd for
any other network, and the linear system solved state by state. A Hessian
:math:`\partial^2 L/\partial\dot q^2` that is singular or ill-conditioned at some state is an
error, never a NaN.

hnnkit's models all act on phase-space states :math:`x = (q, p)`, so that one data set, one
loss and one evaluation serve every model. The LNN therefore uses the known kinematics of the
system — the maps :math:`\dot q = \partial H/\partial p` and back, given by
:meth:`hnnkit.systems.HamiltonianSystem.velocity` and
:meth:`~hnnkit.systems.HamiltonianSystem.momentum` — as Cranmer et al.'s data in
:math:`(q, \dot q)` do. From :math:`x`, its field is

.. math::
    v = \dot q(x), \quad a = \ddot q(q, v), \quad
    \dot p = \frac{\partial p}{\partial q} v + \frac{\partial p}{\partial \dot q} a ,

(a Jacobian–vector product through the system's ``momentum``). Its :math:`\dot q` half is thus
the exact kinematics; only :math:`\dot p` is learned. A system without these maps (a damped
one, measured data) cannot be given to an LNN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from ..errors import HnnkitValueError, check_choice
from ..phase_space import join, solve_symmetric, split
from .mlp import ACTIVATIONS, MLP
from .registry import register_model

#: Initialisations of the default network: ``cranmer`` (the scaled normal of Cranmer et al.'s
#: code, zero biases) or ``orthogonal`` (the :class:`MLP` default, as the HNN's).
INITS = ("cranmer", "orthogonal")


class Kinematics(Protocol):
    """What an LNN needs of its system: the maps between momenta and velocities."""

    dof: int

    def velocity(self, x: Tensor) -> Tensor: ...

    def momentum(self, q: Tensor, qdot: Tensor) -> Tensor: ...


class LNN(nn.Module):
    r"""Lagrangian neural network on hnnkit's phase space.

    Args:
        dim: phase-space dimension ``2n``.
        system: the kinematics: an object with ``dof``, ``velocity(x)`` and
            ``momentum(q, qdot)`` (a :class:`~hnnkit.systems.HamiltonianSystem` whose
            ``has_velocity_map`` is true).
        lagrangian_net: any module mapping ``(..., 2n)`` (q then q̇) to ``(...)`` or
            ``(..., 1)``, differentiated twice by autograd. Default: an :class:`MLP`
            ``2n → hidden → 1``, whose Hessian has a closed form (:func:`mlp_hessian`).
        hidden: hidden sizes of the default MLP (default ``(200, 200)``).
        activation: its activation (default ``softplus``; ``relu`` is refused: its second
            derivative is zero, so :math:`\partial^2 L/\partial\dot q^2` would be singular).
        init: ``orthogonal`` (default, as the HNN's MLP) or ``cranmer`` (:data:`INITS`); on the
            spring, 300 Adam steps reached a training loss of 0.45 from ``orthogonal`` and
            0.54 from ``cranmer`` (whose last layer's scale sqrt(width) starts far off).
        max_condition: the largest condition number of :math:`\partial^2 L/\partial\dot q^2`
            accepted (default ``1/eps`` of the dtype).
        generator: the default MLP's initialisation (``None``: the global RNG).

    Raises:
        HnnkitValueError: on a bad ``dim``, a system whose ``dof`` is not ``dim / 2``, or the
            ``relu`` activation.
    """

    def __init__(
        self,
        dim: int,
        system: Kinematics,
        lagrangian_net: nn.Module | None = None,
        *,
        hidden: Sequence[int] = (200, 200),
        activation: str = "softplus",
        init: str = "orthogonal",
        max_condition: float | None = None,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if not isinstance(dim, int) or dim < 2 or dim % 2:
            raise HnnkitValueError(f"dim must be a positive even integer (q then p), got {dim!r}")
        if getattr(system, "dof", None) != dim // 2:
            raise HnnkitValueError(
                f"the system {system!r} has dof {getattr(system, 'dof', None)}, but the LNN's "
                f"dim {dim} needs dof {dim // 2}"
            )
        self.dim, self.system, self.max_condition = dim, system, max_condition
        if lagrangian_net is None:
            if activation == "relu":
                raise HnnkitValueError(
                    "activation 'relu' has a zero second derivative, so the LNN's Hessian "
                    "d²L/dq̇² would be singular everywhere; use softplus, tanh or silu"
                )
            check_choice("init", init, INITS)
            lagrangian_net = MLP(dim, 1, tuple(hidden), activation, generator=generator)
            if init == "cranmer":
                cranmer_init(lagrangian_net, generator=generator)
        self.lagrangian_net = lagrangian_net

    # -- the learned Lagrangian ----------------------------------------------------------
    def lagrangian(self, q: Tensor, qdot: Tensor) -> Tensor:
        r""":math:`L_\theta(q, \dot q)`: ``(..., n)`` each → ``(...)``."""
        out = self.lagrangian_net(torch.cat([q, qdot], dim=-1))
        if out.shape == (*q.shape[:-1], 1):
            return out[..., 0]
        if out.shape != q.shape[:-1]:
            raise HnnkitValueError(
                f"lagrangian_net must return one value per state, shape {tuple(q.shape[:-1])} "
                f"or {(*q.shape[:-1], 1)}, got {tuple(out.shape)}"
            )
        return out

    def energy(self, q: Tensor, qdot: Tensor) -> Tensor:
        r"""The energy of the learned Lagrangian, :math:`E = \dot q\cdot\partial L/\partial\dot q - L`."""
        n = q.shape[-1]
        build = torch.is_grad_enabled()
        with torch.enable_grad():
            z = _leaf(torch.cat([q, qdot], dim=-1), build)
            lag = self.lagrangian(z[..., :n], z[..., n:])
            (g,) = torch.autograd.grad(lag.sum(), z, create_graph=build)
        e = (qdot * g[..., n:]).sum(-1) - lag
        return e if build else e.detach()

    def hamiltonian(self, x: Tensor) -> Tensor:
        r"""The learned energy at phase-space states ``(..., 2n)`` → ``(...)``: :meth:`energy`
        at :math:`(q, \dot q(x))`."""
        q, _ = split(x)
        return self.energy(q, self.system.velocity(x))

    # -- dynamics -----------------------------------------------------------------------
    def acceleration(self, q: Tensor, qdot: Tensor) -> Tensor:
        r""":math:`\ddot q` from the Euler–Lagrange equations of :math:`L_\theta`.

        Args:
            q, qdot: ``(..., n)`` each.

        Returns:
            ``(..., n)``.

        Raises:
            HnnkitValueError: if :math:`\partial^2 L/\partial\dot q^2` is singular or
                ill-conditioned at any state (how many, and the worst condition number).
        """
        n = q.shape[-1]
        flat_q, flat_v = q.reshape(-1, n), qdot.reshape(-1, n)
        z = torch.cat([flat_q, flat_v], dim=-1)
        if isinstance(self.lagrangian_net, MLP) and self.lagrangian_net.sizes[-1] == 1:
            g, hess = mlp_hessian(self.lagrangian_net, z)
        else:
            g, hess = self._derivatives(z)
        mass = hess[..., n:, n:]
        force = g[..., :n] - (hess[..., n:, :n] @ flat_v.unsqueeze(-1)).squeeze(-1)
        a = solve_symmetric(
            mass,
            force,
            what="the LNN's Hessian d²L/dq̇²",
            advice=(
                "the learned Lagrangian is (nearly) linear in the velocities there; train "
                "longer or with a lower learning rate, use a smooth activation (softplus, "
                "tanh), or keep the states inside the training data's range"
            ),
            max_condition=self.max_condition,
        )
        return a.reshape(q.shape)

    def vector_field(self, t: Tensor | float | None, x: Tensor) -> Tensor:
        r""":math:`(\dot q, \dot p)` at states ``(..., 2n)``; ``t`` is ignored.

        :math:`\dot q` is the system's velocity map; :math:`\dot p` is the time derivative of
        the system's momentum along :math:`(\dot q, \ddot q)`, with :math:`\ddot q` learned.
        """
        if x.shape[-1] != self.dim:
            raise HnnkitValueError(f"x must have shape (..., {self.dim}), got {tuple(x.shape)}")
        q, _ = split(x)
        v = self.system.velocity(x)
        a = self.acceleration(q, v)
        build = torch.is_grad_enabled()
        _, pdot = torch.autograd.functional.jvp(
            self.system.momentum, (q, v), (v, a), create_graph=build, strict=False
        )
        return join(v, pdot)

    def forward(self, x: Tensor) -> Tensor:
        return self.vector_field(None, x)

    def _derivatives(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Gradient ``(B, 2n)`` and the Hessian rows of the velocities, ``(B, 2n, 2n)`` with
        zero ``q`` rows (not needed), of any ``lagrangian_net``, by autograd."""
        n = z.shape[-1] // 2
        build = torch.is_grad_enabled()
        with torch.enable_grad():
            zi = _leaf(z, build)
            lag = self.lagrangian(zi[..., :n], zi[..., n:])
            (g,) = torch.autograd.grad(lag.sum(), zi, create_graph=True)
            rows = [
                torch.autograd.grad(
                    g[..., n + i].sum(),
                    zi,
                    create_graph=build,
                    retain_graph=True,
                    materialize_grads=True,
                )[0]
                for i in range(n)
            ]
        hess = torch.cat(
            [torch.zeros_like(rows[0]).unsqueeze(-2).expand(-1, n, -1), torch.stack(rows, -2)], -2
        )
        return (g, hess) if build else (g.detach(), hess.detach())


def _leaf(z: Tensor, build: bool) -> Tensor:
    """``z`` itself if it carries a graph that is wanted, else a fresh leaf requiring grad."""
    return z if (z.requires_grad and build) else z.detach().requires_grad_(True)


#: The second derivative of each activation of :data:`hnnkit.models.mlp.ACTIVATIONS`.
_SECOND = {
    "tanh": lambda a: -2 * torch.tanh(a) * (1 - torch.tanh(a).pow(2)),
    "softplus": lambda a: torch.sigmoid(a) * (1 - torch.sigmoid(a)),
    "silu": lambda a: (
        torch.sigmoid(a) * (1 - torch.sigmoid(a)) * (2 + a * (1 - 2 * torch.sigmoid(a)))
    ),
    "relu": torch.zeros_like,
}


def mlp_hessian(mlp: MLP, z: Tensor) -> tuple[Tensor, Tensor]:
    r"""Closed-form gradient and Hessian of a scalar :class:`MLP` at inputs ``z`` ``(B, d)``.

    With pre-activations :math:`a_k = W_k h_{k-1} + b_k`, :math:`h_k = \sigma(a_k)`, the output
    :math:`w^\top h_K`, backward signals :math:`g_K = w`, :math:`g_{k-1} = W_k^\top(\sigma'(a_k)
    \odot g_k)` and input Jacobians :math:`J_1 = W_1`, :math:`J_{k+1} = W_{k+1}\,
    \mathrm{diag}\,\sigma'(a_k)\, J_k`:

    .. math::
        \nabla L = g_0, \qquad
        \nabla^2 L = \sum_k J_k^\top \mathrm{diag}\big(\sigma''(a_k)\odot g_k\big) J_k .

    Plain batched products, so that training needs one first-order backward pass (a test
    checks both against autograd).

    Returns:
        ``(B, d)`` gradient and ``(B, d, d)`` Hessian.
    """
    act, dact = ACTIVATIONS[mlp.activation]
    d2act = _SECOND[mlp.activation]
    hidden = list(mlp.layers[:-1])
    pre, jac = [], []
    h, j = z, None
    for layer in hidden:
        a = layer(h)
        j = layer.weight.expand(z.shape[0], -1, -1) if j is None else layer.weight @ j
        pre.append(a)
        jac.append(j)
        h = act(a)
        j = dact(a).unsqueeze(-1) * j
    g = mlp.layers[-1].weight[0].expand(z.shape[0], -1)
    hess = z.new_zeros(z.shape[0], z.shape[1], z.shape[1])
    for layer, a, j in zip(reversed(hidden), reversed(pre), reversed(jac), strict=True):
        hess = hess + j.transpose(-1, -2) @ ((d2act(a) * g).unsqueeze(-1) * j)
        g = (dact(a) * g) @ layer.weight
    return g, hess


def cranmer_init(mlp: MLP, *, generator: torch.Generator | None = None) -> None:
    r"""Re-initialise ``mlp`` as Cranmer et al.'s LNN code does: zero biases, normal weights
    with standard deviation :math:`s/\sqrt{w}` (:math:`w` the layer's larger side), where
    :math:`s = 2.2` for the first layer, :math:`0.58\,i` for the :math:`i`-th hidden layer and
    :math:`w` for the last (the output's scale grows with the width)."""
    layers = list(mlp.layers)
    with torch.no_grad():
        for i, layer in enumerate(layers):
            w = max(layer.weight.shape)
            scale = 2.2 if i == 0 else (w if i == len(layers) - 1 else 0.58 * i)
            std = scale / math.sqrt(w)
            layer.weight.copy_(
                torch.randn(layer.weight.shape, generator=generator, dtype=layer.weight.dtype) * std
            )
            if layer.bias is not None:
                layer.bias.zero_()


def build_lnn(
    dim: int,
    *,
    generator: torch.Generator | None = None,
    system: Any = None,
    hidden: Sequence[int] = (200, 200),
    activation: str = "softplus",
    init: str = "orthogonal",
) -> LNN:
    """The registered ``lnn``: an :class:`LNN` whose Lagrangian is an MLP ``dim → hidden → 1``.

    Raises:
        HnnkitValueError: without a system (measured data), or for a system without the
            velocity maps (the message names the systems that have them).
    """
    if system is None:
        raise HnnkitValueError(
            "model 'lnn' needs the true system's kinematics (the map between p and dq/dt), "
            "and these data have no system (a recording or a data file); use another model, "
            "or simulate a registered system that has a velocity map"
        )
    check = getattr(system, "check_velocity_map", None)
    if check is not None:
        try:
            check()
        except HnnkitValueError as exc:
            raise HnnkitValueError(f"model 'lnn' cannot be built: {exc}") from None
    return LNN(
        dim, system, hidden=tuple(hidden), activation=activation, init=init, generator=generator
    )


register_model(
    "lnn",
    build_lnn,
    description="Lagrangian NN: L(q, dq/dt) an MLP, Euler-Lagrange accelerations (Cranmer et al. 2020)",
    defaults={"optimizer": "adam", "steps": 2000, "weight_decay": 0.0},
    cost=8,
)
