r"""The Hénon–Heiles system: a star in an axisymmetric galaxy, mixed regular and chaotic orbits."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..phase_space import join, split
from .base import ZooSystem, check_positive
from .energy_band import check_energy_band, sample_energy_band


class HenonHeiles(ZooSystem):
    r"""Hénon–Heiles, :math:`H = \tfrac12(p_x^2 + p_y^2) + \tfrac12(x^2 + y^2) + \lambda\,(x^2 y - y^3/3)`.

    Coordinates ``q1 = x``, ``q2 = y`` (dimensionless positions), ``p1 = p_x``, ``p2 = p_y``;
    unit mass and unit harmonic frequency. With :math:`\lambda = 1` this is the form of
    Hénon & Heiles (1964). The potential has a minimum at the origin and three saddles,
    at :math:`(0, 1/\lambda)` and :math:`(\pm\sqrt3/(2\lambda), -1/(2\lambda))`, all at the
    **escape energy** :math:`E_{esc} = 1/(6\lambda^2)`: below it every orbit that starts in
    the triangle-shaped well stays there for ever; above it most escape. Orbits are mostly
    regular at low energy and mostly chaotic near :math:`E_{esc}` (in Hénon & Heiles' surfaces
    of section, nearly all regular at :math:`E = 1/12`, half chaotic at :math:`E = 1/8`).

    The Hamiltonian is separable and the cubic term gives the :math:`x^2 y` cross term.
    Initial states are drawn in the well with energies uniform in ``energy_range``
    (default ``(0.02, 0.14)``, below :math:`E_{esc} = 1/6`). One trajectory spans
    ``t ∈ [0, 10]`` (about 1.6 periods of the linear oscillation) with 50 points, 50
    trajectories, no observation noise, 20% held out.

    Args:
        lam: strength :math:`\lambda` of the cubic term (> 0, default 1).
        energy_range: ``(lo, hi)`` band of :math:`H` for sampled initial states, within
            ``[0, 1/(6λ²))``.

    Raises:
        HnnkitValueError: for a non-positive ``lam`` or a band that reaches the escape energy.
    """

    separable = True
    formula = "(p1**2 + p2**2)/2 + (q1**2 + q2**2)/2 + lam*(q1**2*q2 - q2**3/3)"

    def __init__(self, lam: float = 1.0, energy_range: tuple[float, float] = (0.02, 0.14)):
        super().__init__(dof=2)
        check_positive(lam=lam)
        self.lam = float(lam)
        self.energy_range = check_energy_band(
            energy_range,
            owner="henon-heiles",
            floor=0.0,
            ceiling=self.escape_energy,
            beyond="orbits escape through the saddles",
        )

    @property
    def escape_energy(self) -> float:
        r"""The energy of the three saddles, :math:`1/(6\lambda^2)`."""
        return 1.0 / (6.0 * self.lam**2)

    def potential(self, q: Tensor) -> Tensor:
        r""":math:`V(x, y) = \tfrac12(x^2 + y^2) + \lambda(x^2 y - y^3/3)`, ``(..., 2)`` → ``(...)``."""
        x, y = q[..., 0], q[..., 1]
        return 0.5 * (x * x + y * y) + self.lam * (x * x * y - y**3 / 3)

    def hamiltonian(self, q: Tensor, p: Tensor) -> Tensor:
        return 0.5 * p.pow(2).sum(-1) + self.potential(q)

    def vector_field(self, t: Tensor | float, x: Tensor) -> Tensor:
        self.check_state(x)
        q, p = split(x)
        qx, qy = q[..., 0], q[..., 1]
        fx = -qx - 2 * self.lam * qx * qy
        fy = -qy - self.lam * (qx * qx - qy * qy)
        return join(p, torch.stack([fx, fy], -1))

    def sample_initial(self, n: int, *, generator: torch.Generator) -> Tensor:
        rest = torch.zeros(self.dim, dtype=torch.float64)  # the minimum of H
        return sample_energy_band(self, n, self.energy_range, generator=generator, minimum=rest)

    def params(self) -> dict[str, Any]:
        return {"lam": self.lam, "energy_range": self.energy_range}
