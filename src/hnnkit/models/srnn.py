r"""The SRNN-style HNN: a separable learned energy trained through a leapfrog rollout.

Chen, Zhang, Arjovsky & Bottou, "Symplectic Recurrent Neural Networks", ICLR 2020, learn a
separable Hamiltonian :math:`H_\theta(q, p) = T_\theta(p) + V_\theta(q)` (two networks) and
train it through a multi-step leapfrog integration of the observed trajectory, rather than on
finite-difference derivative targets. Separability is what makes leapfrog (Störmer–Verlet) an
explicit symplectic method for the learned system.

:class:`SeparableHNN` is that model; its field is the symplectic gradient
:math:`J\nabla H_\theta = (\nabla T_\theta(p), -\nabla V_\theta(q))`, so every integrator and
the whole evaluation take it like any other field model. The registered ``srnn`` trains by
default with the ``rollout`` loss (:mod:`hnnkit.train.rollout`) with ``method="leapfrog"``,
``k = 5`` steps and one leapfrog step per observed interval:

- ``k = 5`` windows fit 4 or more times into every trajectory of the built-in tasks' training
  parts (spring and pendulum: 30 points, three-body: 20), so the loss sees each point in
  several windows, while a window still spans a sizeable part of an orbit (five intervals,
  about 0.5 time units on the spring, a sixth of its period); it costs ``2k = 10`` field
  evaluations per batch, against one for the derivative loss. The SRNN paper trains on
  longer sequences; ``--loss-option k=N`` changes it.
- one step per interval, as in the paper: the learned field absorbs leapfrog's own
  discretisation error at the data's time step (the model learns the energy whose leapfrog
  map fits the data), so roll it out with leapfrog at the data's step for the closest match.

Left out from the paper: its optimisation of the initial state of each observed trajectory
(for noisy observations) and its own network layout; the networks here are hnnkit's
:class:`~hnnkit.models.MLP`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..errors import HnnkitValueError
from ..phase_space import join, split
from .mlp import MLP
from .registry import register_model

#: The rollout the registered ``srnn`` trains through by default.
SRNN_LOSS_OPTIONS = {"k": 5, "method": "leapfrog", "substeps": 1}


class SeparableHNN(nn.Module):
    r"""HNN with a separable energy :math:`H_\theta(q, p) = T_\theta(p) + V_\theta(q)`.

    :math:`T_\theta` and :math:`V_\theta` are two MLPs ``n → hidden → 1``. The field
    :math:`\dot q = \nabla T_\theta(p)`, :math:`\dot p = -\nabla V_\theta(q)` has a velocity
    that depends only on ``p`` and a force that depends only on ``q``, which is what the
    ``leapfrog`` integrator needs; :math:`\partial^2 H_\theta / \partial q\,\partial p = 0`
    by construction.

    Args:
        dim: phase-space dimension ``2n``.
        hidden: hidden layer sizes of each of the two MLPs (default ``(200, 200)``).
        activation: their activation (default ``tanh``).
        generator: optional ``torch.Generator`` for the initialisation.

    Raises:
        HnnkitValueError: if ``dim`` is not a positive even integer.
    """

    def __init__(
        self,
        dim: int,
        hidden: Sequence[int] = (200, 200),
        activation: str = "tanh",
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2 or dim % 2:
            raise HnnkitValueError(f"dim must be a positive even integer (q then p), got {dim!r}")
        self.dim = dim
        n = dim // 2
        self.kinetic = MLP(n, 1, hidden, activation, generator=generator)
        self.potential = MLP(n, 1, hidden, activation, generator=generator)

    def hamiltonian(self, x: Tensor) -> Tensor:
        r""":math:`T_\theta(p) + V_\theta(q)`: ``(..., dim)`` → ``(...)``."""
        q, p = split(x)
        return self.kinetic(p)[..., 0] + self.potential(q)[..., 0]

    def energy_gradient(self, x: Tensor) -> Tensor:
        r""":math:`\nabla_x H_\theta = (\nabla V_\theta(q), \nabla T_\theta(p))`, closed form."""
        q, p = split(x)
        return join(self.potential.input_gradient(q), self.kinetic.input_gradient(p))

    def vector_field(self, t: Tensor | float | None, x: Tensor) -> Tensor:
        r""":math:`(\nabla T_\theta(p), -\nabla V_\theta(q))` for states ``(..., dim)``; ``t``
        is ignored."""
        q, p = split(x)
        return join(self.kinetic.input_gradient(p), -self.potential.input_gradient(q))

    def forward(self, x: Tensor) -> Tensor:
        return self.vector_field(None, x)


def build_srnn(
    dim: int,
    *,
    generator: torch.Generator | None = None,
    hidden: Sequence[int] = (200, 200),
    activation: str = "tanh",
) -> SeparableHNN:
    """The registered ``srnn``: a :class:`SeparableHNN` with two MLPs ``n → hidden → 1``."""
    return SeparableHNN(dim, tuple(hidden), activation, generator=generator)


register_model(
    "srnn",
    build_srnn,
    description=(
        "separable HNN H = T(p) + V(q) trained through a k=5 leapfrog rollout "
        "(SRNN style, Chen et al. 2020)"
    ),
    defaults={
        "optimizer": "adam",
        "steps": 2000,
        "weight_decay": 1e-4,
        "loss": "rollout",
        "loss_options": SRNN_LOSS_OPTIONS,
    },
    cost=28,
)
