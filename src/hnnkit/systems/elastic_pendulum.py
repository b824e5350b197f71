r"""The elastic (spring) pendulum in canonical polar coordinates: two coupled, non-separable modes."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..phase_space import join, split
from .base import ZooSystem, check_positive
from .energy_band import check_energy_band, sample_energy_band


class ElasticPendulum(ZooSystem):
    r"""A mass on a spring that swings in a vertical plane.

    Coordinates: ``q1 = r``, the length of the spring, and ``q2 = θ``, its angle from the
    downward vertical (rad); ``p1 = p_r = m\dot r`` and ``p2 = p_θ = m r^2\dot θ``, their
    canonical momenta. Then

    .. math::
        H = \frac{p_r^2}{2m} + \frac{p_\theta^2}{2 m r^2} + \frac{k}{2}(r - l_0)^2
            - m g r \cos\theta + m g \Big(l_0 + \frac{m g}{2k}\Big),

    the constant making :math:`H = 0` at the hanging equilibrium
    :math:`r_{eq} = l_0 + m g / k`, :math:`\theta = 0`. The kinetic energy depends on
    :math:`r`, so :math:`H` is **not separable**. Small oscillations about the equilibrium
    are a radial (spring) mode at :math:`\omega_r = \sqrt{k/m}` and an angular (swing)
    mode at :math:`\omega_\theta = \sqrt{g / r_{eq}}`; the nonlinear terms couple them.

    The defaults ``m = 1``, ``g = 1``, ``l0 = 1``, ``k = 3`` put the two modes in the 2:1
    resonance (:math:`\omega_r = \sqrt3 = 2\omega_\theta`, :math:`r_{eq} = 4/3`), where
    energy flows back and forth between bouncing and swinging: a hard test of whether a
    model learns the coupling. Below :math:`2 m g l_0` (2 for the defaults) the mass can
    neither swing over the top nor reach :math:`r = 0`. Initial states have energies
    uniform in ``energy_range`` (default ``(0.05, 0.5)``: swings up to 0.87 rad, stretches
    up to ±0.58); one trajectory spans ``t ∈ [0, 10]`` (1.4 swing periods) with 50 points,
    50 trajectories, no observation noise, 20% held out.

    Args:
        m: mass (> 0).
        k: spring constant (> 0).
        l0: rest length of the spring (> 0).
        g: gravitational acceleration (> 0).
        energy_range: ``(lo, hi)`` band of :math:`H` for sampled initial states, within
            ``[0, 2 m g l0)``.

    Raises:
        HnnkitValueError: for a non-positive constant or a band that reaches ``2 m g l0``.
    """

    separable = False
    formula = (
        "p1**2/(2*m) + p2**2/(2*m*q1**2) + k*(q1 - l0)**2/2 - m*g*q1*cos(q2) + m*g*(l0 + m*g/(2*k))"
    )

    def __init__(
        self,
        m: float = 1.0,
        k: float = 3.0,
        l0: float = 1.0,
        g: float = 1.0,
        energy_range: tuple[float, float] = (0.05, 0.5),
    ):
        super().__init__(dof=2)
        check_positive(m=m, k=k, l0=l0, g=g)
        self.m, self.k, self.l0, self.g = float(m), float(k), float(l0), float(g)
        self.energy_range = check_energy_band(
            energy_range,
            owner="elastic-pendulum",
            floor=0.0,
            ceiling=2 * self.m * self.g * self.l0,
            beyond="the mass can swing over the top",
        )

    @property
    def rest_length(self) -> float:
        r""":math:`r_{eq} = l_0 + m g / k`, the spring's length at the hanging equilibrium."""
        return self.l0 + self.m * self.g / self.k

    @property
    def frequencies(self) -> tuple[float, float]:
        r"""Small-oscillation angular frequencies ``(ω_r, ω_θ) = (√(k/m), √(g/r_eq))``."""
        return math.sqrt(self.k / self.m), math.sqrt(self.g / self.rest_length)

    def hamiltonian(self, q: Tensor, p: Tensor) -> Tensor:
        m, k, l0, g = self.m, self.k, self.l0, self.g
        r, theta = q[..., 0], q[..., 1]
        kinetic = p[..., 0] ** 2 / (2 * m) + p[..., 1] ** 2 / (2 * m * r * r)
        potential = 0.5 * k * (r - l0) ** 2 - m * g * r * torch.cos(theta)
        return kinetic + potential + m * g * (l0 + m * g / (2 * k))

    def vector_field(self, t: Tensor | float, x: Tensor) -> Tensor:
        self.check_state(x)
        m, k, l0, g = self.m, self.k, self.l0, self.g
        q, p = split(x)
        r, theta, p_r, p_theta = q[..., 0], q[..., 1], p[..., 0], p[..., 1]
        dr = p_r / m
        dtheta = p_theta / (m * r * r)
        dp_r = p_theta**2 / (m * r**3) - k * (r - l0) + m * g * torch.cos(theta)
        dp_theta = -m * g * r * torch.sin(theta)
        return join(torch.stack([dr, dtheta], -1), torch.stack([dp_r, dp_theta], -1))

    def sample_initial(self, n: int, *, generator: torch.Generator) -> Tensor:
        rest = torch.tensor([self.rest_length, 0.0, 0.0, 0.0], dtype=torch.float64)
        return sample_energy_band(self, n, self.energy_range, generator=generator, minimum=rest)

    def params(self) -> dict[str, Any]:
        return {
            "m": self.m,
            "k": self.k,
            "l0": self.l0,
            "g": self.g,
            "energy_range": self.energy_range,
        }
