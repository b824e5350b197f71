"""The ideal pendulum (task 2 of the HNN paper)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..phase_space import join, split
from .base import HamiltonianSystem, check_positive, sample_in_annulus


class Pendulum(HamiltonianSystem):
    r"""Ideal pendulum, :math:`H(q, p) = 2mgl(1 - \cos q) + l^2 p^2 / 2m`.

    This is the form used in the HNN paper. The defaults ``m = 0.5``, ``l = 1``,
    ``g = 3`` give :math:`H = 3(1 - \cos q) + p^2`, the Hamiltonian hard-coded in the
    original code (greydanus/hamiltonian-nn, ``experiment-pend/data.py``), so
    :math:`\dot q = 2p` and :math:`\dot p = -3\sin q`.

    Initial states have a random direction and a phase-space radius drawn from
    ``U[1.3, 2.3]``; one trajectory spans ``t ∈ [0, 3]`` with 45 points (the original's
    ``timescale=15``), noise std 0.1, half the 50 trajectories held out.

    Args:
        m: mass (> 0).
        l: length (> 0).
        g: gravitational acceleration (> 0).
        radius_range: ``(min, max)`` phase-space radius of sampled initial states.
    """

    default_t_span = (0.0, 3.0)
    default_n_points = 45
    default_n_trajectories = 50
    default_noise_std = 0.1
    default_test_fraction = 0.5
    separable = True
    quadratic_momentum = True
    formula = "2*m*g*l*(1 - cos(q)) + l**2*p**2/(2*m)"

    def __init__(
        self,
        m: float = 0.5,
        l: float = 1.0,  # noqa: E741 - the physics symbol
        g: float = 3.0,
        radius_range: tuple[float, float] = (1.3, 2.3),
    ):
        super().__init__(dof=1)
        check_positive(m=m, l=l, g=g)
        self.m, self.l, self.g = float(m), float(l), float(g)
        self.radius_range = (float(radius_range[0]), float(radius_range[1]))

    def hamiltonian(self, q: Tensor, p: Tensor) -> Tensor:
        return (
            2 * self.m * self.g * self.l * (1 - torch.cos(q)) + self.l**2 * p.pow(2) / (2 * self.m)
        ).sum(-1)

    def vector_field(self, t: Tensor | float, x: Tensor) -> Tensor:
        self.check_state(x)
        q, p = split(x)
        return join(self.l**2 * p / self.m, -2 * self.m * self.g * self.l * torch.sin(q))

    def sample_initial(self, n: int, *, generator: torch.Generator) -> Tensor:
        return sample_in_annulus(n, self.radius_range, generator=generator)

    def params(self) -> dict[str, Any]:
        return {"m": self.m, "l": self.l, "g": self.g, "radius_range": self.radius_range}
