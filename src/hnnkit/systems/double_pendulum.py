r"""The planar double pendulum in canonical coordinates: chaotic, non-separable, two degrees of freedom."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..phase_space import join, split
from .base import ZooSystem, check_positive
from .energy_band import check_energy_band, sample_energy_band


class DoublePendulum(ZooSystem):
    r"""Two point masses on rigid massless rods, the second hanging from the first.

    Coordinates: ``q1``, ``q2`` are the angles of the rods from the downward vertical (rad);
    ``p1``, ``p2`` their canonical momenta. With :math:`\Delta = q_1 - q_2`,

    .. math::
        H = \frac{m_2 l_2^2 p_1^2 + (m_1 + m_2) l_1^2 p_2^2
                  - 2 m_2 l_1 l_2\, p_1 p_2 \cos\Delta}
                 {2 m_2 l_1^2 l_2^2 \left(m_1 + m_2 \sin^2\Delta\right)}
            + (m_1 + m_2)\, g\, l_1 (1 - \cos q_1) + m_2\, g\, l_2 (1 - \cos q_2).

    The potential is shifted so that :math:`H = 0` at rest hanging down. The kinetic
    energy is quadratic in :math:`p` with a :math:`q`-dependent mass matrix, so :math:`H`
    is **not separable** (leapfrog does not apply).

    Small oscillations (linearised about the origin) have the frequencies
    :math:`\omega^2` that solve :math:`\det(K - \omega^2 M) = 0` with
    :math:`M = \begin{pmatrix}(m_1+m_2) l_1^2 & m_2 l_1 l_2\\ m_2 l_1 l_2 & m_2 l_2^2\end{pmatrix}`
    and :math:`K = \mathrm{diag}((m_1+m_2) g l_1,\; m_2 g l_2)`; for equal masses and lengths
    :math:`\omega^2 = (g/l)(2 \pm \sqrt2)`.

    The lowest energy at which a rod can turn over is the lower of the saddle energies
    :math:`2 m_2 g l_2` (outer rod up) and :math:`2 (m_1 + m_2) g l_1` (inner rod up):
    2 for the defaults. Initial states are drawn with energies uniform in ``energy_range``
    (default ``(0.05, 1.0)``, below half that): the motion stays in the well around
    hanging rest, and is regular at the bottom of the band and chaotic at its top.

    Defaults: ``m1 = m2 = 1`` (mass), ``l1 = l2 = 1`` (length), ``g = 1`` (so the normal-mode
    periods are 3.40 and 8.21 time units); one trajectory spans ``t ∈ [0, 10]`` with 50
    points, 50 trajectories, no observation noise, 20% held out.

    Args:
        m1, m2: masses of the inner and outer bob (> 0).
        l1, l2: lengths of the inner and outer rod (> 0).
        g: gravitational acceleration (> 0).
        energy_range: ``(lo, hi)`` band of :math:`H` for sampled initial states; ``hi``
            must lie below the turn-over energy.

    Raises:
        HnnkitValueError: for a non-positive constant, or a band that is not below the
            turn-over energy.
    """

    separable = False
    formula = (
        "(m2*l2**2*p1**2 + (m1 + m2)*l1**2*p2**2 - 2*m2*l1*l2*p1*p2*cos(q1 - q2))"
        "/(2*m2*l1**2*l2**2*(m1 + m2*sin(q1 - q2)**2))"
        " + (m1 + m2)*g*l1*(1 - cos(q1)) + m2*g*l2*(1 - cos(q2))"
    )

    def __init__(
        self,
        m1: float = 1.0,
        m2: float = 1.0,
        l1: float = 1.0,
        l2: float = 1.0,
        g: float = 1.0,
        energy_range: tuple[float, float] = (0.05, 1.0),
    ):
        super().__init__(dof=2)
        check_positive(m1=m1, m2=m2, l1=l1, l2=l2, g=g)
        self.m1, self.m2, self.l1, self.l2, self.g = map(float, (m1, m2, l1, l2, g))
        self.energy_range = check_energy_band(
            energy_range,
            owner="double-pendulum",
            floor=0.0,
            ceiling=self.turnover_energy,
            beyond="a rod can turn over",
        )

    @property
    def turnover_energy(self) -> float:
        """The lowest energy at which a rod can turn over (the lowest saddle of the potential)."""
        return 2 * self.g * min(self.m2 * self.l2, (self.m1 + self.m2) * self.l1)

    def hamiltonian(self, q: Tensor, p: Tensor) -> Tensor:
        m1, m2, l1, l2, g = self.m1, self.m2, self.l1, self.l2, self.g
        q1, q2, p1, p2 = q[..., 0], q[..., 1], p[..., 0], p[..., 1]
        d = q1 - q2
        num = (
            m2 * l2**2 * p1**2
            + (m1 + m2) * l1**2 * p2**2
            - 2 * m2 * l1 * l2 * p1 * p2 * torch.cos(d)
        )
        den = 2 * m2 * l1**2 * l2**2 * (m1 + m2 * torch.sin(d) ** 2)
        pot = (m1 + m2) * g * l1 * (1 - torch.cos(q1)) + m2 * g * l2 * (1 - torch.cos(q2))
        return num / den + pot

    def vector_field(self, t: Tensor | float, x: Tensor) -> Tensor:
        self.check_state(x)
        m1, m2, l1, l2, g = self.m1, self.m2, self.l1, self.l2, self.g
        q, p = split(x)
        q1, q2, p1, p2 = q[..., 0], q[..., 1], p[..., 0], p[..., 1]
        d = q1 - q2
        s, c = torch.sin(d), torch.cos(d)
        den = m1 + m2 * s * s
        num = m2 * l2**2 * p1**2 + (m1 + m2) * l1**2 * p2**2 - 2 * m2 * l1 * l2 * p1 * p2 * c
        dq1 = (l2 * p1 - l1 * p2 * c) / (l1**2 * l2 * den)
        dq2 = ((m1 + m2) * l1 * p2 - m2 * l2 * p1 * c) / (m2 * l1 * l2**2 * den)
        # dT/d(q1 - q2): the kinetic energy depends on the angles only through their difference
        dt_dd = p1 * p2 * s / (l1 * l2 * den) - num * s * c / (l1**2 * l2**2 * den * den)
        dp1 = -dt_dd - (m1 + m2) * g * l1 * torch.sin(q1)
        dp2 = dt_dd - m2 * g * l2 * torch.sin(q2)
        return join(torch.stack([dq1, dq2], -1), torch.stack([dp1, dp2], -1))

    def sample_initial(self, n: int, *, generator: torch.Generator) -> Tensor:
        rest = torch.zeros(self.dim, dtype=torch.float64)  # the minimum of H
        return sample_energy_band(self, n, self.energy_range, generator=generator, minimum=rest)

    def params(self) -> dict[str, Any]:
        return {
            "m1": self.m1,
            "m2": self.m2,
            "l1": self.l1,
            "l2": self.l2,
            "g": self.g,
            "energy_range": self.energy_range,
        }
