r"""The Duffing oscillator: a spring with a cubic restoring force, one degree of freedom."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..errors import HnnkitValueError
from ..phase_space import join, split
from .base import ZooSystem, check_positive
from .energy_band import check_energy_band, sample_energy_band


class Duffing(ZooSystem):
    r"""Undriven, undamped Duffing oscillator, :math:`H = p^2/2m + \alpha q^2/2 + \beta q^4/4`.

    The equation of motion is :math:`m\ddot q = -\alpha q - \beta q^3`. The defaults
    ``alpha = beta = m = 1`` give :math:`H = p^2/2 + q^2/2 + q^4/4`, a hardening spring
    whose period falls with the amplitude :math:`A`:
    :math:`T = 4 K(k^2) / \omega` with :math:`\omega^2 = (\alpha + \beta A^2)/m` and
    :math:`k^2 = \beta A^2 / (2(\alpha + \beta A^2))` (:math:`K` the complete elliptic
    integral of the first kind; the orbit is :math:`q = A\,\mathrm{cn}(\omega t, k)`).

    Other regimes: ``alpha < 0 < beta`` is the double well (minima :math:`-\alpha^2/4\beta`
    at :math:`q = \pm\sqrt{-\alpha/\beta}`, barrier :math:`H = 0` at :math:`q = 0`);
    ``beta < 0 < alpha`` is a softening spring, bounded only below the barrier energy
    :math:`\alpha^2/(4|\beta|)`.

    Initial states have energies uniform in ``energy_range`` (default ``(0.05, 1.0)``,
    amplitudes 0.31 to 1.11 for the defaults) and a random sign of :math:`(q, p)`, so a
    double well's two wells are equally likely. One trajectory spans ``t ∈ [0, 10]`` (1.6
    to 2.2 periods for the defaults) with 50 points, 50 trajectories, no observation
    noise, 20% held out.

    Args:
        alpha: linear stiffness :math:`\alpha` (any finite number; see the regimes).
        beta: cubic stiffness :math:`\beta` (finite; ``beta = 0`` needs ``alpha > 0``).
        m: mass (> 0).
        energy_range: ``(lo, hi)`` band of :math:`H` for sampled initial states, above the
            minimum of :math:`H` (and below the barrier of a softening spring).

    Raises:
        HnnkitValueError: for a Hamiltonian that is not bounded below (``alpha <= 0`` with
            ``beta <= 0``), or a band outside the bounded motion.
    """

    separable = True
    formula = "p**2/(2*m) + alpha*q**2/2 + beta*q**4/4"

    def __init__(
        self,
        alpha: float = 1.0,
        beta: float = 1.0,
        m: float = 1.0,
        energy_range: tuple[float, float] = (0.05, 1.0),
    ):
        super().__init__(dof=1)
        check_positive(m=m)
        for name, v in (("alpha", alpha), ("beta", beta)):
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise HnnkitValueError(f"{name} must be a finite number, got {v!r}")
        if not (beta > 0 or (beta == 0 and alpha > 0) or (beta < 0 < alpha)):
            raise HnnkitValueError(
                f"Duffing with alpha={alpha!r}, beta={beta!r} has no bounded motion (H is not "
                "bounded below near q = 0); use alpha > 0 or beta > 0"
            )
        self.alpha, self.beta, self.m = float(alpha), float(beta), float(m)
        self.energy_range = check_energy_band(
            energy_range,
            owner="duffing",
            floor=self.minimum_energy,
            ceiling=self.alpha**2 / (4 * -self.beta) if self.beta < 0 else None,
            beyond="the softening spring runs away over its barrier",
        )

    @property
    def minimum_energy(self) -> float:
        r"""The minimum of :math:`H`: 0, or :math:`-\alpha^2/4\beta` for the double well."""
        return -(self.alpha**2) / (4 * self.beta) if self.alpha < 0 else 0.0

    def hamiltonian(self, q: Tensor, p: Tensor) -> Tensor:
        q2 = q * q
        return (p * p / (2 * self.m) + 0.5 * self.alpha * q2 + 0.25 * self.beta * q2 * q2).sum(-1)

    def vector_field(self, t: Tensor | float, x: Tensor) -> Tensor:
        self.check_state(x)
        q, p = split(x)
        return join(p / self.m, -self.alpha * q - self.beta * q**3)

    def sample_initial(self, n: int, *, generator: torch.Generator) -> Tensor:
        # the minimum of H: the origin, or the bottom of the right well of a double well
        q_min = math.sqrt(-self.alpha / self.beta) if self.alpha < 0 else 0.0
        rest = torch.tensor([q_min, 0.0], dtype=torch.float64)
        x = sample_energy_band(self, n, self.energy_range, generator=generator, minimum=rest)
        sign = 2 * torch.randint(0, 2, (n, 1), generator=generator, dtype=torch.float64) - 1
        return x * sign

    def params(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha,
            "beta": self.beta,
            "m": self.m,
            "energy_range": self.energy_range,
        }
