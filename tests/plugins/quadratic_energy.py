"""A model in one file: an HNN whose energy is a learned quadratic form, H(x) = xᵀ A x.

Imported as a plugin (``hnnkit --plugin tests/plugins/quadratic_energy.py ...``), it adds the
model ``quadratic-hnn`` to every command. A spring's energy, H = (k q² + p²/m) / 2, is such a
form, so on noise-free spring data this model's loss goes to zero.
"""

import torch
from torch import Tensor, nn

from hnnkit.models import HNN, register_model


class QuadraticEnergy(nn.Module):
    """H(x) = xᵀ A x with A = (W + Wᵀ)/2 learned: ``(..., dim)`` → ``(...)``."""

    def __init__(self, dim: int, *, generator: torch.Generator | None = None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(dim, dim, generator=generator) / dim)

    def forward(self, x: Tensor) -> Tensor:
        a = 0.5 * (self.weight + self.weight.T)
        return torch.einsum("...i,ij,...j->...", x, a, x)


def build_quadratic_hnn(dim: int, *, generator: torch.Generator | None = None) -> HNN:
    """The builder: phase-space dimension and a generator in, a model with vector_field out."""
    return HNN(dim, energy_net=QuadraticEnergy(dim, generator=generator))


register_model(
    "quadratic-hnn",
    build_quadratic_hnn,
    description="HNN whose energy is a quadratic form x^T A x (a plugin example)",
    # A convex least-squares problem in A: a few full-batch L-BFGS steps solve it.
    defaults={"optimizer": "lbfgs", "steps": 20, "weight_decay": 0.0},
)
