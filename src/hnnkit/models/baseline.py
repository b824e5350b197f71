"""The baseline: a network that predicts time derivatives directly."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .mlp import MLP
from .registry import register_model


class Baseline(nn.Module):
    r"""Predicts :math:`\dot x = f_\theta(x)` with an MLP ``dim → hidden → dim``.

    Args:
        dim: phase-space dimension ``2n``.
        hidden: hidden layer sizes (default ``(200, 200)``, as in the paper).
        activation: activation name (default ``tanh``).
        generator: optional ``torch.Generator`` for the initialisation.
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
        self.dim = dim
        self.net = MLP(dim, dim, hidden, activation, generator=generator)

    def vector_field(self, t: Tensor | float, x: Tensor) -> Tensor:
        """:math:`\\dot x` for states ``(..., dim)``; ``t`` is ignored."""
        return self.net(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def build_baseline(
    dim: int,
    *,
    generator: torch.Generator | None = None,
    hidden: Sequence[int] = (200, 200),
    activation: str = "tanh",
) -> Baseline:
    """The registered ``baseline``: a :class:`Baseline` MLP ``dim → hidden → dim``."""
    return Baseline(dim, tuple(hidden), activation, generator=generator)


register_model(
    "baseline",
    build_baseline,
    description="MLP that predicts dx/dt directly (the paper's baseline)",
    defaults={"optimizer": "adam", "steps": 2000, "weight_decay": 1e-4},
)
