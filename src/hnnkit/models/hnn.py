"""The Hamiltonian neural network: a learned scalar energy and its symplectic gradient."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..errors import HnnkitValueError
from ..phase_space import energy_gradient, symplectic
from .mlp import MLP
from .registry import register_model


class HNN(nn.Module):
    r"""Hamiltonian neural network: :math:`\dot x = J \nabla_x H_\theta(x)`.

    Wraps any scalar network. The model never knows the system; it only promises
    that its field is the symplectic gradient of its own :meth:`hamiltonian`, so that
    :math:`H_\theta` is conserved along its exact flow.

    Args:
        dim: phase-space dimension ``2n``.
        energy_net: any module mapping ``(..., dim)`` to ``(..., k)`` or ``(...)``. Default:
            :class:`MLP` ``dim → 200 → 200 → 1`` with tanh.
        output_index: which output of a multi-output ``energy_net`` is the energy
            (the original code uses the second of two outputs). ``None``: the net returns
            one value per state, either ``(...)`` or ``(..., 1)``.
        hidden, activation: settings of the default MLP.
        generator: optional ``torch.Generator`` for the default MLP's initialisation.
    """

    def __init__(
        self,
        dim: int,
        energy_net: nn.Module | None = None,
        *,
        output_index: int | None = None,
        hidden: Sequence[int] = (200, 200),
        activation: str = "tanh",
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if not isinstance(dim, int) or dim < 2 or dim % 2:
            raise HnnkitValueError(f"dim must be a positive even integer (q then p), got {dim!r}")
        self.dim = dim
        self.energy_net = (
            energy_net
            if energy_net is not None
            else MLP(dim, 1, hidden, activation, generator=generator)
        )
        self.output_index = output_index

    def hamiltonian(self, x: Tensor) -> Tensor:
        """Learned energy :math:`H_\\theta(x)`: ``(..., dim)`` → ``(...)``."""
        out = self.energy_net(x)
        if self.output_index is not None:
            return out[..., self.output_index]
        if out.shape == x.shape[:-1]:
            return out
        if out.shape == (*x.shape[:-1], 1):
            return out[..., 0]
        raise HnnkitValueError(
            f"energy_net must return one value per state, shape {tuple(x.shape[:-1])} or "
            f"{(*x.shape[:-1], 1)}, got {tuple(out.shape)}; pass output_index=k to pick one output"
        )

    def energy_gradient(self, x: Tensor) -> Tensor:
        r""":math:`\nabla_x H_\theta`. Closed form for an :class:`MLP`, autograd otherwise."""
        if isinstance(self.energy_net, MLP):
            return self.energy_net.input_gradient(x, self.output_index or 0)
        return energy_gradient(self.hamiltonian, x)

    def vector_field(self, t: Tensor | float, x: Tensor) -> Tensor:
        r""":math:`J\nabla_x H_\theta(x)` for states ``(..., dim)``; ``t`` is ignored."""
        return symplectic(self.energy_gradient(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.vector_field(None, x)


def build_hnn(
    dim: int,
    *,
    generator: torch.Generator | None = None,
    hidden: Sequence[int] = (200, 200),
    activation: str = "tanh",
) -> HNN:
    """The registered ``hnn``: an :class:`HNN` whose energy is an MLP ``dim → hidden → 1``."""
    return HNN(dim, hidden=tuple(hidden), activation=activation, generator=generator)


register_model(
    "hnn",
    build_hnn,
    description="Hamiltonian NN: dx/dt = J∇H(x), H an MLP (Greydanus et al. 2019)",
    defaults={"optimizer": "adam", "steps": 2000, "weight_decay": 1e-4},
    cost=2,
)
