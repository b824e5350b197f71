r"""Planar Newtonian gravity: the two-body and three-body tasks of the HNN paper.

State layout (``dof = 2 * n_bodies``)::

    x = (x_1, y_1, x_2, y_2, ..., x_N, y_N,  px_1, py_1, ..., px_N, py_N)

so ``q`` holds the positions body by body and ``p`` the momenta in the same order.
(The original code orders coordinates as ``[qx1, qx2, qy1, qy2, px1, ...]``; the
physics is the same, only the permutation differs.)
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from ..errors import HnnkitValueError
from ..phase_space import join, split
from .base import HamiltonianSystem, check_positive


class NBody(HamiltonianSystem):
    r"""``N`` point masses in the plane under Newtonian gravity.

    .. math::
        H = \sum_i \frac{|p_i|^2}{2 m_i} - \sum_{i<j} \frac{g\, m_i m_j}{|q_i - q_j|}

    (The potential has the distance, not its square, in the denominator.) The vector
    field is written analytically; a test checks it against autograd of ``H``.

    Args:
        n_bodies: number of bodies (>= 2).
        masses: one mass per body (default all 1, as in the original code).
        g: gravitational constant (default 1).
    """

    separable = True
    quadratic_momentum = True
    default_noise_std = 0.0
    default_test_fraction = 0.2
    formula = "sum_i |p_i|**2/(2*m_i) - sum_{i<j} g*m_i*m_j/|q_i - q_j|"

    def __init__(self, n_bodies: int = 2, masses: tuple[float, ...] | None = None, g: float = 1.0):
        if not isinstance(n_bodies, int) or n_bodies < 2:
            raise HnnkitValueError(f"n_bodies must be an integer >= 2, got {n_bodies!r}")
        super().__init__(dof=2 * n_bodies)
        masses = tuple(float(m) for m in (masses if masses is not None else [1.0] * n_bodies))
        if len(masses) != n_bodies:
            raise HnnkitValueError(
                f"masses must have one entry per body ({n_bodies}), got {masses}"
            )
        check_positive(g=g, **{f"masses[{i}]": m for i, m in enumerate(masses)})
        self.n_bodies, self.masses, self.g = n_bodies, masses, float(g)
        i, j = torch.triu_indices(n_bodies, n_bodies, offset=1)
        self._pairs = (i, j)
        self._constants: dict[tuple[torch.dtype, torch.device], tuple[Tensor, Tensor]] = {}

    def _positions(self, q: Tensor) -> Tensor:
        return q.reshape(*q.shape[:-1], self.n_bodies, 2)

    def _mass(self, like: Tensor) -> Tensor:
        return torch.tensor(self.masses, dtype=like.dtype, device=like.device)

    def kinetic(self, p: Tensor) -> Tensor:
        """:math:`\\sum_i |p_i|^2 / 2m_i`."""
        m = self._mass(p)
        return (self._positions(p).pow(2).sum(-1) / (2 * m)).sum(-1)

    def potential(self, q: Tensor) -> Tensor:
        """:math:`-\\sum_{i<j} g m_i m_j / |q_i - q_j|`."""
        r = self._positions(q)
        i, j = self._pairs
        m = self._mass(q)
        dist = (r[..., i, :] - r[..., j, :]).norm(dim=-1)
        return -(self.g * m[i] * m[j] / dist).sum(-1)

    def hamiltonian(self, q: Tensor, p: Tensor) -> Tensor:
        return self.kinetic(p) + self.potential(q)

    def _field_constants(self, like: Tensor) -> tuple[Tensor, Tensor]:
        """``1/m`` per coordinate ``(2N,)`` and ``g m_i m_j`` with a zero diagonal ``(N, N)``."""
        key = (like.dtype, like.device)
        if key not in self._constants:
            m = self._mass(like)
            coupling = self.g * m[:, None] * m[None, :]
            coupling.fill_diagonal_(0.0)
            self._constants[key] = (m.repeat_interleave(2).reciprocal(), coupling)
        return self._constants[key]

    def vector_field(self, t: Tensor | float, x: Tensor) -> Tensor:
        self.check_state(x)
        inv_m, coupling = self._field_constants(x)
        q, p = split(x)
        r = self._positions(q)  # (..., N, 2)
        diff = r.unsqueeze(-3) - r.unsqueeze(-2)  # diff[..., i, j, :] = r_j - r_i
        dist2 = diff[..., 0].square() + diff[..., 1].square()
        # the diagonal (i = j) is zeroed by ``coupling``; a unit distance keeps it finite
        dist2.diagonal(dim1=-2, dim2=-1).fill_(1.0)
        force = coupling * dist2.pow(-1.5)  # (..., N, N)
        dp = (force.unsqueeze(-1) * diff).sum(-2)  # (..., N, 2)
        return join(p * inv_m, dp.flatten(-2))

    def angular_momentum(self, x: Tensor) -> Tensor:
        r"""Total angular momentum about the origin, :math:`L = \sum_i x_i p_{y,i} - y_i p_{x,i}`."""
        self.check_state(x)
        q, p = split(x)
        r, mom = self._positions(q), self._positions(p)
        return (r[..., 0] * mom[..., 1] - r[..., 1] * mom[..., 0]).sum(-1)

    def invariants(self, x: Tensor) -> dict[str, Tensor]:
        """The angular momentum, conserved because gravity between the bodies is central."""
        return {"angular_momentum": self.angular_momentum(x)}

    def params(self) -> dict[str, Any]:
        return {"n_bodies": self.n_bodies, "masses": self.masses, "g": self.g}


def _rotate(v: Tensor, angle: float) -> Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1]], dim=-1)


class TwoBody(NBody):
    r"""Two bodies on near-circular orbits (task 4 of the HNN paper).

    Sampling follows ``random_config`` in greydanus/hamiltonian-nn
    ``experiment-2body/data.py``: body 1 sits at ``U[0.5, 1.5]^2`` (per coordinate) from
    the centre of mass and body 2 opposite it; both move at the circular-orbit speed
    (counter-clockwise) times one factor ``1 + orbit_noise·N(0, 1)`` per orbit. For unequal
    masses the positions and speeds are weighted about the centre of mass, which reduces
    to the original's for ``m_1 = m_2 = 1``. The original dataset holds 1000 orbits of 50
    points over ``t ∈ [0, 20]``, no observation noise, 20% held out.

    Args:
        masses: ``(m_1, m_2)``.
        g: gravitational constant.
        radius_range: per-coordinate range of body 1's position.
        orbit_noise: relative standard deviation of the velocity perturbation.
    """

    default_t_span = (0.0, 20.0)
    default_n_points = 50
    default_n_trajectories = 1000

    def __init__(
        self,
        masses: tuple[float, float] = (1.0, 1.0),
        g: float = 1.0,
        radius_range: tuple[float, float] = (0.5, 1.5),
        orbit_noise: float = 0.05,
    ):
        super().__init__(n_bodies=2, masses=masses, g=g)
        self.radius_range = (float(radius_range[0]), float(radius_range[1]))
        self.orbit_noise = float(orbit_noise)

    def sample_initial(self, n: int, *, generator: torch.Generator) -> Tensor:
        lo, hi = self.radius_range
        m1, m2 = self.masses
        total = m1 + m2
        pos = lo + (hi - lo) * torch.rand(n, 2, generator=generator, dtype=torch.float64)
        sep = pos * total / m2  # separation vector r_1 - r_2, with r_1 = pos
        d = sep.norm(dim=-1, keepdim=True)
        v_rel = torch.sqrt(self.g * total / d)
        tangent = _rotate(sep / d, math.pi / 2)
        kick = 1 + self.orbit_noise * torch.randn(n, 1, generator=generator, dtype=torch.float64)
        v1 = (m2 / total) * v_rel * tangent * kick
        v2 = -(m1 / total) * v_rel * tangent * kick
        r1, r2 = sep * (m2 / total), -sep * (m1 / total)
        q = torch.cat([r1, r2], dim=-1)
        p = torch.cat([m1 * v1, m2 * v2], dim=-1)
        return join(q, p)

    def params(self) -> dict[str, Any]:
        return {
            "masses": self.masses,
            "g": self.g,
            "radius_range": self.radius_range,
            "orbit_noise": self.orbit_noise,
        }


class ThreeBody(NBody):
    r"""Three equal bodies started near a rotating equilateral configuration (Table 2 of the paper).

    Sampling follows ``random_config`` in greydanus/hamiltonian-nn
    ``experiment-3body/data.py``: the bodies sit on a ring of radius ``U[0.9, 1.2]`` at
    120° from each other, with the speed of the circular (Lagrange) solution
    :math:`v = \sqrt{g m / (\sqrt{3} r)}`, each velocity component then multiplied by
    ``1 + orbit_noise·U[-1, 1]``. The original dataset holds 5000 orbits of 20 points over
    ``t ∈ [0, 5]``, no noise, 20% held out. The dynamics are chaotic.

    Args:
        masses: three masses; the ring sampler uses their mean.
        g: gravitational constant.
        radius_range: ring radius range.
        orbit_noise: half-width of the uniform relative velocity perturbation.
    """

    default_t_span = (0.0, 5.0)
    default_n_points = 20
    default_n_trajectories = 5000

    def __init__(
        self,
        masses: tuple[float, float, float] = (1.0, 1.0, 1.0),
        g: float = 1.0,
        radius_range: tuple[float, float] = (0.9, 1.2),
        orbit_noise: float = 0.2,
    ):
        super().__init__(n_bodies=3, masses=masses, g=g)
        self.radius_range = (float(radius_range[0]), float(radius_range[1]))
        self.orbit_noise = float(orbit_noise)

    def sample_initial(self, n: int, *, generator: torch.Generator) -> Tensor:
        lo, hi = self.radius_range
        direction = 2 * torch.rand(n, 2, generator=generator, dtype=torch.float64) - 1
        r = lo + (hi - lo) * torch.rand(n, 1, generator=generator, dtype=torch.float64)
        p1 = direction / direction.norm(dim=-1, keepdim=True).clamp_min(1e-12) * r
        m = sum(self.masses) / 3
        speed = torch.sqrt(self.g * m / (math.sqrt(3) * r))
        v1 = _rotate(p1 / r, math.pi / 2) * speed
        positions = [p1, _rotate(p1, 2 * math.pi / 3), _rotate(p1, 4 * math.pi / 3)]
        velocities = [v1, _rotate(v1, 2 * math.pi / 3), _rotate(v1, 4 * math.pi / 3)]
        noise = 1 + self.orbit_noise * (
            2 * torch.rand(n, 3, 2, generator=generator, dtype=torch.float64) - 1
        )
        mom = [
            mi * v * noise[:, i]
            for i, (mi, v) in enumerate(zip(self.masses, velocities, strict=True))
        ]
        return join(torch.cat(positions, dim=-1), torch.cat(mom, dim=-1))

    def params(self) -> dict[str, Any]:
        return {
            "masses": self.masses,
            "g": self.g,
            "radius_range": self.radius_range,
            "orbit_noise": self.orbit_noise,
        }
