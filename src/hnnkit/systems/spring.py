"""The ideal mass-spring system (task 1 of the HNN paper)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..phase_space import join, split
from .base import HamiltonianSystem, check_positive, sample_in_annulus


class Spring(HamiltonianSystem):
    r"""Ideal mass-spring, :math:`H(q, p) = \tfrac12 k q^2 + p^2 / 2m`.

    The defaults ``k = 2`` and ``m = 0.5`` give :math:`H = q^2 + p^2`, the Hamiltonian
    hard-coded in the original code (greydanus/hamiltonian-nn,
    ``experiment-spring/data.py``): :math:`\dot q = 2p`, :math:`\dot p = -2q`, angular
    frequency :math:`\omega = \sqrt{k/m} = 2` and period :math:`\pi`.

    Initial states have a random direction in the (q, p) plane and a phase-space radius
    drawn from ``U[radius_range]`` (the original draws ``U[0.1, 1]``, so ``H`` lies in
    ``[0.01, 1]``). One trajectory spans ``t ∈ [0, 3]`` with 30 points, the observation
    noise has standard deviation 0.1, and half the 50 trajectories are held out.

    Args:
        k: spring constant (> 0).
        m: mass (> 0).
        radius_range: ``(min, max)`` phase-space radius of sampled initial states.
    """

    default_t_span = (0.0, 3.0)
    default_n_points = 30
    default_n_trajectories = 50
    default_noise_std = 0.1
    default_test_fraction = 0.5
    separable = True
    quadratic_momentum = True
    formula = "k*q**2/2 + p**2/(2*m)"

    def __init__(
        self, k: float = 2.0, m: float = 0.5, radius_range: tuple[float, float] = (0.1, 1.0)
    ):
        super().__init__(dof=1)
        check_positive(k=k, m=m)
        self.k, self.m = float(k), float(m)
        self.radius_range = (float(radius_range[0]), float(radius_range[1]))

    @property
    def omega(self) -> float:
        """Angular frequency :math:`\\sqrt{k/m}`."""
        return math.sqrt(self.k / self.m)

    def hamiltonian(self, q: Tensor, p: Tensor) -> Tensor:
        return (0.5 * self.k * q.pow(2) + p.pow(2) / (2 * self.m)).sum(-1)

    def vector_field(self, t: Tensor | float, x: Tensor) -> Tensor:
        self.check_state(x)
        q, p = split(x)
        return join(p / self.m, -self.k * q)

    def sample_initial(self, n: int, *, generator: torch.Generator) -> Tensor:
        return sample_in_annulus(n, self.radius_range, generator=generator)

    def exact_solution(self, t: Tensor, x0: Tensor) -> Tensor:
        r""":math:`q(t) = q_0\cos\omega t + \frac{p_0}{m\omega}\sin\omega t`, :math:`p(t) = -m\omega q_0 \sin\omega t + p_0\cos\omega t`."""
        self.check_state(x0, "x0")
        t = torch.as_tensor(t, dtype=x0.dtype, device=x0.device)
        w = self.omega
        c = torch.cos(w * t).reshape(-1, *([1] * x0.ndim))
        s = torch.sin(w * t).reshape(-1, *([1] * x0.ndim))
        q0, p0 = split(x0)
        return join(q0 * c + p0 / (self.m * w) * s, -self.m * w * q0 * s + p0 * c)

    def params(self) -> dict[str, Any]:
        return {"k": self.k, "m": self.m, "radius_range": self.radius_range}
