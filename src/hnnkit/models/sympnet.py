r"""SympNets (Jin, Zhang, Zhu, Tang & Karniadakis 2020): one-step maps symplectic by construction.

A SympNet learns the map :math:`x_n \mapsto x_{n+1}` of a Hamiltonian flow over one time step
as a composition of *shears*, each of which is symplectic, so the whole map is symplectic for any
parameters. With states :math:`x = (q, p)`, :math:`q, p \in \mathbb{R}^n`, an **up** module
changes :math:`p` by a function of :math:`q` and a **low** module :math:`q` by a function of
:math:`p`:

- *linear* (up): :math:`p \leftarrow p + S q`, with :math:`S = A + A^\top` symmetric; a linear
  module is ``sublayers`` such shears alternating up/low, then a bias :math:`x \leftarrow x + b`;
- *activation* (up): :math:`p \leftarrow p + a \odot \sigma(q)`;
- *gradient* (up): :math:`p \leftarrow p + K^\top (a \odot \sigma(K q + b))`, with
  :math:`K \in \mathbb{R}^{w \times n}`, the gradient of
  :math:`\sum_i a_i \Sigma(K_i q + b_i)` (:math:`\Sigma' = \sigma`), so the width :math:`w`
  sets the expressiveness.

The low versions swap the roles of :math:`q` and :math:`p`. Every shear's Jacobian is
:math:`\begin{pmatrix} I & 0 \\ M & I\end{pmatrix}` (or its transpose) with :math:`M`
symmetric, hence symplectic; every shear is inverted by subtracting the same term, so
:meth:`SympNet.inverse_map` is exact.

- **LA-SympNet**: linear and activation modules,
  :math:`L_{N+1} \circ A_N \circ L_N \circ \cdots \circ A_1 \circ L_1`, the activation modules
  alternating up/low (``layers`` = N, ``sublayers`` per linear module);
- **G-SympNet**: ``layers`` gradient modules of width ``width``, alternating up/low.

Registered as ``la-sympnet`` and ``g-sympnet`` (``kind="map"``), trained by default with the
``rollout`` loss, ``k = 1``, ``method = "model"``: the mean squared error of one step on every
consecutive pair of observed states, as in the paper.

Sizes against the authors' public experiments (checked in their scripts): the LA-SympNet's
defaults (3 activation modules, 2 sublayers, sigmoid) are their pendulum's; the G-SympNet's
width 30 and sigmoid are too, with 4 gradient modules where their pendulum has 5. Their
pendulum trains 50 000 Adam steps (lr 1e-3) on 40 pairs at h = 0.1, their three-body 300 000
steps of a far larger net (20 modules; 4 sublayers, or width 50). hnnkit keeps the small sizes
and 3000 steps for every system, so on the N-body tasks its SympNets have a much smaller budget
than the paper's.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..errors import HnnkitValueError, check_choice
from .maps import OneStepMap
from .registry import MAP, register_model

#: The activations a SympNet takes (the paper's experiments use the sigmoid).
SYMPNET_ACTIVATIONS = {"sigmoid": torch.sigmoid, "tanh": torch.tanh}
VARIANTS = ("la", "g")
#: Standard deviation of the initial weights (small: the map starts near the identity plus a bias).
INIT_STD = 0.1


def _param(shape: tuple[int, ...], generator: torch.Generator | None, std: float) -> nn.Parameter:
    return nn.Parameter(torch.randn(shape, generator=generator) * std)


class _Shear(nn.Module):
    """One symplectic shear: adds ``term(source)`` to the target half (``up``: p from q)."""

    def __init__(self, up: bool):
        super().__init__()
        self.up = up

    def term(self, source: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor, sign: float = 1.0) -> Tensor:
        n = x.shape[-1] // 2
        q, p = x[..., :n], x[..., n:]
        if self.up:
            return torch.cat([q, p + sign * self.term(q)], -1)
        return torch.cat([q + sign * self.term(p), p], -1)


class _LinearShear(_Shear):
    def __init__(self, n: int, up: bool, generator: torch.Generator | None):
        super().__init__(up)
        self.a = _param((n, n), generator, INIT_STD)

    def term(self, source: Tensor) -> Tensor:
        return source @ (self.a + self.a.T)


class _ActivationShear(_Shear):
    def __init__(self, n: int, up: bool, act: str, generator: torch.Generator | None):
        super().__init__(up)
        self.act = SYMPNET_ACTIVATIONS[act]
        self.scale = _param((n,), generator, INIT_STD)

    def term(self, source: Tensor) -> Tensor:
        return self.scale * self.act(source)


class _GradientShear(_Shear):
    def __init__(self, n: int, width: int, up: bool, act: str, generator: torch.Generator | None):
        super().__init__(up)
        self.act = SYMPNET_ACTIVATIONS[act]
        self.k = _param((width, n), generator, 1.0 / math.sqrt(n))
        self.b = _param((width,), generator, INIT_STD)
        self.scale = _param((width,), generator, INIT_STD)

    def term(self, source: Tensor) -> Tensor:
        return (self.scale * self.act(source @ self.k.T + self.b)) @ self.k


class _Bias(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.b = nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor, sign: float = 1.0) -> Tensor:
        return x + sign * self.b


class SympNet(OneStepMap):
    r"""An LA- or G-SympNet: a one-step map :math:`x_{n+1} = \Phi_\theta(x_n)`, symplectic for
    every :math:`\theta` (see the module docstring).

    Args:
        dim: phase-space dimension ``2n``.
        variant: ``"la"`` (linear + activation modules) or ``"g"`` (gradient modules).
        layers: the number of activation modules (LA) or gradient modules (G); >= 1.
        sublayers: LA only: shears per linear module (default 2); >= 1.
        width: G only: the width ``w`` of each gradient module (default 30); >= 1.
        activation: ``"sigmoid"`` (default, the paper's) or ``"tanh"``.
        generator: the initialisation's randomness.

    Raises:
        HnnkitValueError: on a bad size; UnknownNameError: on an unknown variant or activation.
    """

    def __init__(
        self,
        dim: int,
        variant: str = "g",
        layers: int = 4,
        sublayers: int = 2,
        width: int = 30,
        activation: str = "sigmoid",
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__(dim)
        check_choice("SympNet variant", variant, VARIANTS)
        check_choice("SympNet activation", activation, SYMPNET_ACTIVATIONS)
        for name, value in (("layers", layers), ("sublayers", sublayers), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise HnnkitValueError(f"SympNet {name} must be an integer >= 1, got {value!r}")
        self.variant, self.activation = variant, activation
        n = dim // 2
        modules: list[nn.Module] = []
        if variant == "la":

            def linear() -> list[nn.Module]:
                shears: list[nn.Module] = [
                    _LinearShear(n, i % 2 == 0, generator) for i in range(sublayers)
                ]
                return [*shears, _Bias(dim)]

            modules += linear()
            for i in range(layers):
                modules.append(_ActivationShear(n, i % 2 == 0, activation, generator))
                modules += linear()
        else:
            modules += [
                _GradientShear(n, width, i % 2 == 0, activation, generator) for i in range(layers)
            ]
        self.blocks = nn.ModuleList(modules)

    def map(self, x: Tensor) -> Tensor:
        """The state one time step after ``x``; ``(..., dim) -> (..., dim)``."""
        for module in self.blocks:
            x = module(x)
        return x

    def inverse_map(self, x: Tensor) -> Tensor:
        """The exact inverse of :meth:`map` (each shear undone in reverse order)."""
        for module in reversed(self.blocks):
            x = module(x, -1.0)
        return x


def build_la_sympnet(
    dim: int,
    *,
    generator: torch.Generator | None = None,
    layers: int = 3,
    sublayers: int = 2,
    activation: str = "sigmoid",
) -> SympNet:
    """The registered ``la-sympnet``: ``layers`` activation modules between linear modules of
    ``sublayers`` shears (defaults 3 and 2, sigmoid)."""
    return SympNet(dim, "la", layers, sublayers, 1, activation, generator=generator)


def build_g_sympnet(
    dim: int,
    *,
    generator: torch.Generator | None = None,
    layers: int = 4,
    width: int = 30,
    activation: str = "sigmoid",
) -> SympNet:
    """The registered ``g-sympnet``: ``layers`` gradient modules of width ``width`` (defaults
    4 and 30, sigmoid)."""
    return SympNet(dim, "g", layers, 1, width, activation, generator=generator)


#: A SympNet's training: one step on every consecutive pair (the rollout loss, k = 1), Adam at
#: hnnkit's default lr 1e-3. On the spring (seed 0, default data) a G-SympNet's rollout MSE over
#: [0, 20] was 0.064 after 1000 steps, 0.016 after 3000 and 0.015 after 5000: 3000 steps.
SYMPNET_DEFAULTS = {
    "optimizer": "adam",
    "steps": 3000,
    "weight_decay": 0.0,
    "loss": "rollout",
    "loss_options": {"k": 1, "method": "model"},
}

register_model(
    "la-sympnet",
    build_la_sympnet,
    description="LA-SympNet: linear and activation shears, a symplectic one-step map "
    "(Jin et al. 2020)",
    defaults=SYMPNET_DEFAULTS,
    kind=MAP,
    cost=0.6,
)
register_model(
    "g-sympnet",
    build_g_sympnet,
    description="G-SympNet: gradient-module shears, a symplectic one-step map (Jin et al. 2020)",
    defaults=SYMPNET_DEFAULTS,
    kind=MAP,
    cost=0.4,
)

__all__ = ["SYMPNET_ACTIVATIONS", "VARIANTS", "SympNet", "build_g_sympnet", "build_la_sympnet"]
