r"""The neural ODE baseline: the baseline's MLP field, trained through ``odeint`` on rollouts.

A neural ODE (Chen, Rubanova, Bettencourt & Duvenaud, NeurIPS 2018) is a network field
:math:`\dot x = f_\theta(x)` fitted by integrating it and comparing the solution with observed
states — the torchdiffeq / torchdyn way of learning dynamics. The registered ``neural-ode`` is
the paper's :class:`~hnnkit.models.Baseline` (an MLP ``dim → 200 → 200 → dim``, no energy
structure) trained with the ``rollout`` loss (:mod:`hnnkit.train.rollout`) instead of on
derivative targets. Set against ``baseline`` it isolates the effect of training on
trajectories; against ``srnn`` (the same training signal with a separable energy) the effect of
the conservation prior.

Default rollout: ``k = 5`` observed intervals integrated with ``dopri5`` at ``rtol = 1e-5``,
``atol = 1e-6``, gradients by autograd through the adaptive steps. ``dopri5`` (with its dense
output, so the window's observation times do not shorten the steps) is the neural-ODE
practice; ``--loss-option method=rk4`` gives the fixed-step alternative.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .baseline import Baseline
from .registry import register_model

#: The rollout the registered ``neural-ode`` trains through by default.
NEURAL_ODE_LOSS_OPTIONS = {"k": 5, "method": "dopri5", "rtol": 1e-5, "atol": 1e-6}


def build_neural_ode(
    dim: int,
    *,
    generator: torch.Generator | None = None,
    hidden: Sequence[int] = (200, 200),
    activation: str = "tanh",
) -> Baseline:
    """The registered ``neural-ode``: a :class:`Baseline` MLP ``dim → hidden → dim`` (its
    training defaults, not its architecture, differ from ``baseline``)."""
    return Baseline(dim, tuple(hidden), activation, generator=generator)


register_model(
    "neural-ode",
    build_neural_ode,
    description="baseline MLP field trained through odeint (dopri5) on k=5-step rollouts",
    defaults={
        "optimizer": "adam",
        "steps": 2000,
        "weight_decay": 1e-4,
        "loss": "rollout",
        "loss_options": NEURAL_ODE_LOSS_OPTIONS,
    },
    cost=22,
)
