"""The multilayer perceptron used as baseline and as energy network."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..errors import HnnkitValueError, check_choice

#: name → (activation, its derivative expressed through the activation's input)
ACTIVATIONS = {
    "tanh": (torch.tanh, lambda a: 1 - torch.tanh(a).pow(2)),
    "relu": (torch.relu, lambda a: (a > 0).to(a.dtype)),
    "softplus": (nn.functional.softplus, torch.sigmoid),
    "silu": (nn.functional.silu, lambda a: torch.sigmoid(a) * (1 + a * (1 - torch.sigmoid(a)))),
}


class MLP(nn.Module):
    """Fully connected network ``in → hidden... → out`` with one activation between layers.

    Weights get orthogonal initialisation and biases PyTorch's default; the last layer
    has no bias. This matches ``MLP`` in greydanus/hamiltonian-nn ``nn_models.py`` (two
    hidden layers of 200 tanh units; the paper calls it "three layers").

    Args:
        in_dim: input size.
        out_dim: output size.
        hidden: sizes of the hidden layers (default ``(200, 200)``).
        activation: one of ``tanh`` (default), ``relu``, ``softplus``, ``silu``.
        generator: optional ``torch.Generator`` for the initialisation (else the global RNG).
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden: Sequence[int] = (200, 200),
        activation: str = "tanh",
        *,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        sizes = [in_dim, *hidden, out_dim]
        if any(not isinstance(s, int) or s < 1 for s in sizes):
            raise HnnkitValueError(f"layer sizes must be positive integers, got {sizes}")
        self.activation = check_choice("activation", activation, ACTIVATIONS)
        self.sizes = tuple(sizes)
        self.layers = nn.ModuleList(
            nn.Linear(a, b, bias=(i < len(sizes) - 2))
            for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True))
        )
        with torch.no_grad():
            for layer in self.layers:
                nn.init.orthogonal_(layer.weight, generator=generator)
                if layer.bias is not None and generator is not None:
                    bound = layer.in_features**-0.5
                    layer.bias.copy_(
                        torch.rand(layer.bias.shape, generator=generator) * 2 * bound - bound
                    )

    def forward(self, x: Tensor) -> Tensor:
        act = ACTIVATIONS[self.activation][0]
        for layer in self.layers[:-1]:
            x = act(layer(x))
        return self.layers[-1](x)

    def input_gradient(self, x: Tensor, output_index: int = 0) -> Tensor:
        r"""Closed-form :math:`\nabla_x f_k(x)` for output ``k``, ``(..., in)`` → ``(..., in)``.

        A forward pass stores the pre-activations; the gradient is then the chain of
        transposed weights and activation slopes. Training through this expression needs a
        single backward pass instead of autograd-of-autograd, which is what makes HNN
        training fast. A test checks it against autograd.
        """
        act, dact = ACTIVATIONS[self.activation]
        slopes = []
        h = x
        for layer in self.layers[:-1]:
            a = layer(h)
            if self.activation == "tanh":
                h = torch.tanh(a)
                slopes.append(1 - h * h)  # tanh' from tanh itself: one transcendental less
            else:
                slopes.append(dact(a))
                h = act(a)
        g = self.layers[-1].weight[output_index].expand(*x.shape[:-1], -1)
        for layer, s in zip(reversed(self.layers[:-1]), reversed(slopes), strict=True):
            g = (g * s) @ layer.weight
        return g
