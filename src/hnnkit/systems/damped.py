r"""Damped spring and damped pendulum: a Hamiltonian plus linear friction on the momentum.

These two systems give the dissipative HNN (:class:`hnnkit.models.DissipativeHNN`) a known
answer. Each one keeps the Hamiltonian :math:`H` of its frictionless parent, so
:meth:`energy` is still :math:`H`, and adds a friction force that is linear in the momentum:

.. math::
    \dot q = \partial_p H, \qquad \dot p = -\partial_q H - \gamma\, p .

The energy then decays as :math:`\dot H = -\gamma\, p \cdot \partial_p H \le 0`, and the phase-space
volume contracts at the rate :math:`\nabla\cdot\dot x = -n\gamma` (``n`` degrees of freedom), which is
the quantity :meth:`hnnkit.models.DissipativeHNN.dissipation_rate` estimates.

Importing this module registers ``damped-spring`` and ``damped-pendulum``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..errors import HnnkitValueError
from ..phase_space import join, split
from .base import register_system
from .pendulum import Pendulum
from .spring import Spring

#: Default friction rate of both damped systems: the energy falls by about 26% over one
#: 3-time-unit training trajectory, enough to measure and small enough to stay underdamped.
DEFAULT_GAMMA = 0.1


def _check_gamma(gamma: float) -> float:
    if isinstance(gamma, bool) or not (
        isinstance(gamma, int | float) and math.isfinite(gamma) and gamma >= 0
    ):
        raise HnnkitValueError(
            f"gamma (friction rate in dp/dt = -dH/dq - gamma*p) must be a finite number >= 0, "
            f"got {gamma!r}; use gamma=0 for the frictionless system"
        )
    return float(gamma)


class DampedSpring(Spring):
    r"""Mass-spring with viscous friction: :math:`H = \tfrac12 k q^2 + p^2/2m`, :math:`\dot p = -kq - \gamma p`.

    The position obeys :math:`\ddot q + \gamma \dot q + \omega_0^2 q = 0` with
    :math:`\omega_0 = \sqrt{k/m}`. With the defaults (``k = 2``, ``m = 0.5``, ``γ = 0.1``) the
    frictionless part is :math:`H = q^2 + p^2` of :class:`Spring`, the motion is underdamped
    (:math:`\gamma < 2\omega_0 = 4`) and the energy decays roughly as :math:`e^{-\gamma t}`.
    Sampling, time span, noise and split are those of :class:`Spring`.

    Args:
        k: spring constant (> 0).
        m: mass (> 0).
        gamma: friction rate :math:`\gamma \ge 0` (default 0.1); ``0`` gives :class:`Spring`.
        radius_range: ``(min, max)`` phase-space radius of sampled initial states.

    Raises:
        HnnkitValueError: if ``gamma`` is negative or not finite, or ``k``/``m`` are not positive.
    """

    # friction has no Lagrangian L(q, dq/dt): no velocity maps (nor a Lagrangian NN) here
    quadratic_momentum = False
    formula = "k*q**2/2 + p**2/(2*m);  dp/dt += -gamma*p"

    def __init__(
        self,
        k: float = 2.0,
        m: float = 0.5,
        gamma: float = DEFAULT_GAMMA,
        radius_range: tuple[float, float] = (0.1, 1.0),
    ):
        super().__init__(k=k, m=m, radius_range=radius_range)
        self.gamma = _check_gamma(gamma)

    def vector_field(self, t: Tensor | float, x: Tensor) -> Tensor:
        self.check_state(x)
        q, p = split(x)
        return join(p / self.m, -self.k * q - self.gamma * p)

    def exact_solution(self, t: Tensor, x0: Tensor) -> Tensor | None:
        r"""Underdamped closed form; ``None`` when :math:`\gamma \ge 2\omega_0` (then the data are integrated).

        With :math:`\beta = \gamma/2`, :math:`\omega_d = \sqrt{\omega_0^2 - \beta^2}` and
        :math:`v = \dot q = p/m`:
        :math:`q(t) = e^{-\beta t}\,(q_0\cos\omega_d t + \frac{v_0 + \beta q_0}{\omega_d}\sin\omega_d t)`,
        :math:`v(t) = e^{-\beta t}\,(v_0\cos\omega_d t - \frac{\omega_0^2 q_0 + \beta v_0}{\omega_d}\sin\omega_d t)`.
        """
        self.check_state(x0, "x0")
        beta = 0.5 * self.gamma
        w0 = self.omega
        if beta >= w0:
            return None
        wd = math.sqrt(w0 * w0 - beta * beta)
        t = torch.as_tensor(t, dtype=x0.dtype, device=x0.device)
        shape = (-1, *([1] * x0.ndim))
        decay = torch.exp(-beta * t).reshape(shape)
        c = torch.cos(wd * t).reshape(shape)
        s = torch.sin(wd * t).reshape(shape)
        q0, p0 = split(x0)
        v0 = p0 / self.m
        q = decay * (q0 * c + (v0 + beta * q0) / wd * s)
        v = decay * (v0 * c - (w0 * w0 * q0 + beta * v0) / wd * s)
        return join(q, self.m * v)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "gamma": self.gamma}


class DampedPendulum(Pendulum):
    r"""Pendulum with viscous friction: :math:`H = 2mgl(1-\cos q) + l^2p^2/2m`, :math:`\dot p = -2mgl\sin q - \gamma p`.

    With the defaults (``m = 0.5``, ``l = 1``, ``g = 3``, ``γ = 0.1``):
    :math:`\dot q = 2p`, :math:`\dot p = -3\sin q - 0.1\,p`. Sampling, time span, noise and split
    are those of :class:`Pendulum`. There is no closed form; data are integrated.

    Args:
        m: mass (> 0).
        l: length (> 0).
        g: gravitational acceleration (> 0).
        gamma: friction rate :math:`\gamma \ge 0` (default 0.1); ``0`` gives :class:`Pendulum`.
        radius_range: ``(min, max)`` phase-space radius of sampled initial states.

    Raises:
        HnnkitValueError: if ``gamma`` is negative or not finite, or ``m``/``l``/``g`` are not positive.
    """

    # friction has no Lagrangian L(q, dq/dt): no velocity maps (nor a Lagrangian NN) here
    quadratic_momentum = False
    formula = "2*m*g*l*(1 - cos(q)) + l**2*p**2/(2*m);  dp/dt += -gamma*p"

    def __init__(
        self,
        m: float = 0.5,
        l: float = 1.0,  # noqa: E741 - the physics symbol
        g: float = 3.0,
        gamma: float = DEFAULT_GAMMA,
        radius_range: tuple[float, float] = (1.3, 2.3),
    ):
        super().__init__(m=m, l=l, g=g, radius_range=radius_range)
        self.gamma = _check_gamma(gamma)

    def vector_field(self, t: Tensor | float, x: Tensor) -> Tensor:
        self.check_state(x)
        q, p = split(x)
        return join(
            self.l**2 * p / self.m, -2 * self.m * self.g * self.l * torch.sin(q) - self.gamma * p
        )

    def params(self) -> dict[str, Any]:
        return {**super().params(), "gamma": self.gamma}


register_system("damped-spring", DampedSpring)
register_system("damped-pendulum", DampedPendulum)

__all__ = ["DEFAULT_GAMMA", "DampedPendulum", "DampedSpring"]
