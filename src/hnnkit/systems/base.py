r"""The contract every physical system follows, and the name → class registry.

A system is defined by its Hamiltonian :math:`H(q, p)` alone. The vector field
:math:`\dot x = J\nabla H`, the energy and the checks on shapes are derived here, once,
through :func:`hnnkit.phase_space.symplectic_gradient` — the same function the learned
HNNs use.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..errors import HnnkitValueError, UnknownNameError
from ..phase_space import join, split, symplectic_gradient


class HamiltonianSystem:
    r"""Base class: a conservative system with ``dof`` degrees of freedom.

    Subclasses implement :meth:`hamiltonian` and :meth:`sample_initial`; everything else
    (vector field, energy, data generation, rollouts, metrics) is inherited.

    Class attributes that subclasses may override:
        default_t_span: the time window of one training trajectory.
        default_n_points: samples per trajectory in that window.
        default_n_trajectories: trajectories in a default dataset.
        default_noise_std: standard deviation of the Gaussian observation noise.
        default_test_fraction: fraction of trajectories held out for testing.
        separable: whether :math:`H = T(p) + V(q)` (leapfrog is then valid).
        formula: a human-readable formula for :math:`H`.

    Args:
        dof: degrees of freedom ``n``; states have shape ``(..., 2n)``.
    """

    default_t_span: ClassVar[tuple[float, float]] = (0.0, 3.0)
    default_n_points: ClassVar[int] = 30
    default_n_trajectories: ClassVar[int] = 50
    default_noise_std: ClassVar[float] = 0.0
    default_test_fraction: ClassVar[float] = 0.5
    separable: ClassVar[bool] = False
    formula: ClassVar[str] = "H(q, p)"

    def __init__(self, dof: int):
        if not isinstance(dof, int) or dof < 1:
            raise HnnkitValueError(f"dof must be a positive integer, got {dof!r}")
        self.dof = dof

    # -- to implement ------------------------------------------------------------------
    def hamiltonian(self, q: Tensor, p: Tensor) -> Tensor:
        """Energy of each state: ``q, p`` of shape ``(*batch, dof)`` → ``(*batch,)``."""
        raise NotImplementedError

    def sample_initial(self, n: int, *, generator: torch.Generator) -> Tensor:
        """Draw ``n`` initial states ``(n, 2*dof)`` (float64) using ``generator`` only."""
        raise NotImplementedError

    # -- derived -----------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Phase-space dimension ``2 * dof``."""
        return 2 * self.dof

    def check_state(self, x: Tensor, name: str = "x") -> None:
        """Raise :class:`HnnkitValueError` unless ``x`` is a finite float tensor ``(..., 2*dof)``."""
        if not isinstance(x, Tensor):
            raise HnnkitValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim == 0 or x.shape[-1] != self.dim:
            raise HnnkitValueError(
                f"{name} must have shape (..., {self.dim}) for {self!r} "
                f"(q1..q{self.dof} then p1..p{self.dof}), got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise HnnkitValueError(f"{name} must be a floating tensor, got dtype {x.dtype}")

    def energy(self, x: Tensor) -> Tensor:
        """:math:`H(x)` for states ``(..., 2*dof)`` → ``(...)``."""
        self.check_state(x)
        return self._energy(x)

    def _energy(self, x: Tensor) -> Tensor:
        q, p = split(x)
        h = self.hamiltonian(q, p)
        if h.shape != x.shape[:-1]:
            raise HnnkitValueError(
                f"{type(self).__name__}.hamiltonian must return one energy per state, shape "
                f"{tuple(x.shape[:-1])}, got {tuple(h.shape)}"
            )
        return h

    def vector_field(self, t: Tensor | float, x: Tensor) -> Tensor:
        r""":math:`\dot x = J\nabla H(x)`, by autograd. Subclasses may override it analytically."""
        self.check_state(x)
        return symplectic_gradient(self._energy, x)

    def exact_solution(self, t: Tensor, x0: Tensor) -> Tensor | None:
        """Closed-form trajectory ``(len(t), *x0.shape)``, or ``None`` when there is none."""
        return None

    def invariants(self, x: Tensor) -> dict[str, Tensor]:
        """Conserved quantities other than the energy, by name, ``(..., 2*dof)`` → ``(...)`` each.

        None by default. The evaluation reports each one's drift along every rollout, as it
        does for the energy (e.g. the N-body problems' angular momentum).
        """
        return {}

    def params(self) -> dict[str, Any]:
        """The constructor arguments that define this system (for configs and ``repr``)."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


def sample_in_annulus(
    n: int, radius_range: tuple[float, float], *, generator: torch.Generator, dim: int = 2
) -> Tensor:
    """States with a uniform random direction (from ``U[-1,1]^dim``, normalised) and a radius in ``radius_range``.

    This is how the original HNN code samples spring and pendulum initial conditions
    (``experiment-spring/data.py``, ``experiment-pend/data.py``).
    """
    lo, hi = radius_range
    if not (0 <= lo <= hi):
        raise HnnkitValueError(f"radius_range must satisfy 0 <= min <= max, got {radius_range}")
    direction = 2 * torch.rand(n, dim, generator=generator, dtype=torch.float64) - 1
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    radius = lo + (hi - lo) * torch.rand(n, 1, generator=generator, dtype=torch.float64)
    return direction * radius


# -- registry ----------------------------------------------------------------------------
_REGISTRY: dict[str, Callable[..., HamiltonianSystem]] = {}


def register_system(name: str, cls: Callable[..., HamiltonianSystem]) -> None:
    """Make ``cls`` available as ``get_system(name, **params)`` and on the command line."""
    if not isinstance(name, str) or not name:
        raise HnnkitValueError(f"system name must be a non-empty string, got {name!r}")
    _REGISTRY[name] = cls


def get_system(name: str, **params: Any) -> HamiltonianSystem:
    """Build a registered system by name.

    Raises:
        UnknownNameError: if ``name`` is not registered (the message lists valid names).
    """
    if name not in _REGISTRY:
        raise UnknownNameError("system", name, _REGISTRY)
    return _REGISTRY[name](**params)


def list_systems() -> dict[str, Callable[..., HamiltonianSystem]]:
    """A copy of the registry, name → class."""
    return dict(_REGISTRY)


def check_positive(**values: float) -> None:
    """Raise if any named physical constant is not a finite positive number."""
    for name, v in values.items():
        if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise HnnkitValueError(f"{name} must be a finite positive number, got {v!r}")


__all__ = [
    "HamiltonianSystem",
    "check_positive",
    "get_system",
    "join",
    "list_systems",
    "register_system",
    "sample_in_annulus",
]
