r"""Chains of masses and springs: linear coupled oscillators and the FPUT-β chain.

Both are ``n`` unit-spaced masses on a line, ``q_i`` the displacement of mass ``i`` from
rest and ``p_i`` its momentum (``dof = n``; the state is ``(q_1..q_n, p_1..p_n)``). Their
small oscillations are the chain's normal modes, known in closed form, and their
``formula`` is written out term by term for the chosen ``n``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..errors import HnnkitValueError
from ..phase_space import join, split
from .base import ZooSystem, check_positive
from .energy_band import check_energy_band, sample_energy_band


def _check_count(n: object, lo: int, hi: int, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not lo <= n <= hi:
        raise HnnkitValueError(f"n ({what}) must be an integer from {lo} to {hi}, got {n!r}")
    return n


def _sum(terms: list[str]) -> str:
    return " + ".join(terms)


class CoupledOscillators(ZooSystem):
    r"""``n`` masses, each on its own spring to rest, neighbours joined by coupling springs.

    .. math::
        H = \sum_{i=1}^n \Big(\frac{p_i^2}{2m} + \frac{k}{2} q_i^2\Big)
            + \sum_{i=1}^{n-1} \frac{\kappa}{2} (q_i - q_{i+1})^2 .

    For ``n = 2`` (the default):
    :math:`H = (p_1^2 + p_2^2)/2m + k(q_1^2 + q_2^2)/2 + \kappa (q_1 - q_2)^2/2`, with the
    in-phase mode at :math:`\omega^2 = k/m` and the anti-phase mode at
    :math:`\omega^2 = (k + 2\kappa)/m`. In general the ends are free (no coupling spring
    beyond masses 1 and ``n``) and the normal-mode frequencies are

    .. math::
        \omega_j^2 = \frac{k + 4\kappa \sin^2\!\big(j\pi / 2n\big)}{m},
        \qquad j = 0, \dots, n - 1 .

    The system is linear: a test of whether a model learns the coupling (the cross terms
    :math:`q_i q_{i+1}`) and the beat between modes, with an exact answer everywhere.

    Defaults: ``m = 1``, ``k = 1``, ``kappa = 0.5`` (for ``n = 2`` the periods are 6.28 and
    4.44, the energy beats between the masses with period 25.7); initial states have
    energies uniform in ``energy_range = (0.1, 1.0)``; one trajectory spans ``t ∈ [0, 10]``
    with 50 points, 50 trajectories, no observation noise, 20% held out.

    Args:
        n: number of masses (1 to 64).
        m: mass of each (> 0).
        k: stiffness of each mass's own spring (> 0).
        kappa: stiffness of each coupling spring (> 0).
        energy_range: ``(lo, hi)`` band of :math:`H` (>= 0) for sampled initial states.

    Raises:
        HnnkitValueError: for ``n`` outside 1..64, a non-positive constant or a bad band.
    """

    separable = True

    def __init__(
        self,
        n: int = 2,
        m: float = 1.0,
        k: float = 1.0,
        kappa: float = 0.5,
        energy_range: tuple[float, float] = (0.1, 1.0),
    ):
        n = _check_count(n, 1, 64, "number of masses")
        super().__init__(dof=n)
        check_positive(m=m, k=k, kappa=kappa)
        self.n, self.m, self.k, self.kappa = n, float(m), float(k), float(kappa)
        self.energy_range = check_energy_band(
            energy_range, owner="coupled-oscillators", floor=0.0, ceiling=None
        )
        kinetic = _sum([f"p{i}**2" for i in range(1, n + 1)])
        onsite = _sum([f"q{i}**2" for i in range(1, n + 1)])
        formula = f"({kinetic})/(2*m) + k*({onsite})/2"
        if n > 1:
            coupling = _sum([f"(q{i} - q{i + 1})**2" for i in range(1, n)])
            formula += f" + kappa*({coupling})/2"
        self.formula = formula  # type: ignore[misc]

    def normal_mode_frequencies(self) -> Tensor:
        r"""The angular frequencies :math:`\omega_j`, ``(n,)`` float64, ascending."""
        j = torch.arange(self.n, dtype=torch.float64)
        return torch.sqrt(
            (self.k + 4 * self.kappa * torch.sin(j * math.pi / (2 * self.n)) ** 2) / self.m
        )

    def hamiltonian(self, q: Tensor, p: Tensor) -> Tensor:
        dq = q[..., 1:] - q[..., :-1]
        return (
            p.pow(2).sum(-1) / (2 * self.m)
            + 0.5 * self.k * q.pow(2).sum(-1)
            + 0.5 * self.kappa * dq.pow(2).sum(-1)
        )

    def vector_field(self, t: Tensor | float, x: Tensor) -> Tensor:
        self.check_state(x)
        q, p = split(x)
        dq = q[..., 1:] - q[..., :-1]  # stretch of each coupling spring
        force = -self.k * q
        force[..., :-1] += self.kappa * dq
        force[..., 1:] -= self.kappa * dq
        return join(p / self.m, force)

    def sample_initial(self, n: int, *, generator: torch.Generator) -> Tensor:
        rest = torch.zeros(self.dim, dtype=torch.float64)  # the minimum of H
        return sample_energy_band(self, n, self.energy_range, generator=generator, minimum=rest)

    def params(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "m": self.m,
            "k": self.k,
            "kappa": self.kappa,
            "energy_range": self.energy_range,
        }


class FPUBeta(ZooSystem):
    r"""The Fermi–Pasta–Ulam–Tsingou β chain: ``n`` masses between two fixed walls.

    .. math::
        H = \sum_{i=1}^n \frac{p_i^2}{2m}
            + \sum_{i=0}^{n} \Big(\frac{k}{2} (q_{i+1} - q_i)^2
                                 + \frac{\beta}{4} (q_{i+1} - q_i)^4\Big),
        \qquad q_0 = q_{n+1} = 0 .

    With :math:`\beta = 0` the chain is linear, with the normal-mode frequencies
    :math:`\omega_j = 2\sqrt{k/m}\,\sin\big(j\pi / 2(n+1)\big)`, :math:`j = 1..n`; the
    quartic term couples the modes weakly at small amplitude (the FPUT recurrence). The
    high-dimensional test of the zoo: ``2n`` phase-space dimensions, 8 to 64.

    Defaults: ``n = 8``, ``m = k = 1``, ``beta = 1``; initial states with energies uniform
    in ``energy_range = (0.05, 0.5)`` (small amplitude: typical stretches below 0.25, so the
    quartic term is at most a few per cent of the energy); one trajectory spans
    ``t ∈ [0, 10]`` (the slowest linear mode's period is 18.1 for ``n = 8``, the fastest
    3.2) with 50 points, 50 trajectories, no observation noise, 20% held out.

    Args:
        n: number of moving masses, 4 to 32.
        m: mass of each (> 0).
        k: linear stiffness of each spring (> 0).
        beta: quartic stiffness :math:`\beta \ge 0` (``0``: the linear chain).
        energy_range: ``(lo, hi)`` band of :math:`H` (>= 0) for sampled initial states.

    Raises:
        HnnkitValueError: for ``n`` outside 4..32, a non-positive ``m`` or ``k``, a negative
            ``beta`` or a bad band.
    """

    separable = True

    def __init__(
        self,
        n: int = 8,
        m: float = 1.0,
        k: float = 1.0,
        beta: float = 1.0,
        energy_range: tuple[float, float] = (0.05, 0.5),
    ):
        n = _check_count(n, 4, 32, "number of moving masses of the FPUT chain")
        super().__init__(dof=n)
        check_positive(m=m, k=k)
        if isinstance(beta, bool) or not isinstance(beta, int | float) or not beta >= 0:
            raise HnnkitValueError(
                f"beta must be a finite number >= 0 (0: the linear chain), got {beta!r}"
            )
        if not math.isfinite(beta):
            raise HnnkitValueError(f"beta must be finite, got {beta!r}")
        self.n, self.m, self.k, self.beta = n, float(m), float(k), float(beta)
        self.energy_range = check_energy_band(
            energy_range, owner="fpu-beta", floor=0.0, ceiling=None
        )
        kinetic = _sum([f"p{i}**2" for i in range(1, n + 1)])
        stretch = ["q1", *(f"(q{i + 1} - q{i})" for i in range(1, n)), f"q{n}"]
        quadratic = _sum([f"{s}**2" for s in stretch])
        quartic = _sum([f"{s}**4" for s in stretch])
        self.formula = f"({kinetic})/(2*m) + k*({quadratic})/2 + beta*({quartic})/4"  # type: ignore[misc]

    def normal_mode_frequencies(self) -> Tensor:
        r"""The linear (:math:`\beta = 0`) angular frequencies :math:`\omega_j`, ``(n,)`` float64, ascending."""
        j = torch.arange(1, self.n + 1, dtype=torch.float64)
        return 2 * math.sqrt(self.k / self.m) * torch.sin(j * math.pi / (2 * (self.n + 1)))

    def _stretches(self, q: Tensor) -> Tensor:
        """``q_{i+1} - q_i`` for ``i = 0..n`` with the walls ``q_0 = q_{n+1} = 0``: ``(..., n+1)``."""
        zero = torch.zeros_like(q[..., :1])
        padded = torch.cat([zero, q, zero], dim=-1)
        return padded[..., 1:] - padded[..., :-1]

    def hamiltonian(self, q: Tensor, p: Tensor) -> Tensor:
        d2 = self._stretches(q).pow(2)
        return (
            p.pow(2).sum(-1) / (2 * self.m)
            + 0.5 * self.k * d2.sum(-1)
            + 0.25 * self.beta * d2.pow(2).sum(-1)
        )

    def vector_field(self, t: Tensor | float, x: Tensor) -> Tensor:
        self.check_state(x)
        q, p = split(x)
        d = self._stretches(q)
        tension = self.k * d + self.beta * d**3  # (..., n+1): the force each spring pulls with
        return join(p / self.m, tension[..., 1:] - tension[..., :-1])

    def sample_initial(self, n: int, *, generator: torch.Generator) -> Tensor:
        rest = torch.zeros(self.dim, dtype=torch.float64)  # the minimum of H
        return sample_energy_band(self, n, self.energy_range, generator=generator, minimum=rest)

    def params(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "m": self.m,
            "k": self.k,
            "beta": self.beta,
            "energy_range": self.energy_range,
        }
