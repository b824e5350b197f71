"""KAN-HNNs: an HNN (or a dissipative HNN) whose energy is a Kolmogorov–Arnold network.

Registered as ``kan``; ``build_model("kan", dim, generator=g, dissipative=True)`` (the
command line's ``--model kan --dissipative``) makes both the energy and the dissipation KANs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from ..errors import HnnkitValueError
from .dissipative import DissipativeHNN
from .hnn import HNN
from .kan import KAN
from .registry import register_model


def make_kan_hnn(
    widths: Sequence[int] = (2, 1, 2),
    *,
    grid: int = 5,
    generator: torch.Generator | None,
    x: Tensor | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> HNN:
    """A KAN-HNN whose energy is the KAN's last output: ``HNN(widths[0], energy_net=KAN(...))``.

    The KAN has cubic splines on ``grid`` intervals over ``(-2, 2)``. With ``x``, the first
    layer's grid is then fitted to ``x`` (:meth:`~hnnkit.models.kan.KAN.update_grid` with
    ``layers=[0]``); the hidden grids keep the wide initial range, which a freshly initialised
    hidden node needs (see the method's notes).

    Args:
        widths: node counts from the phase-space inputs to the outputs (default the report's
            ``(2, 1, 2)``, whose output 0 is unused).
        grid: spline intervals per edge (default 5).
        generator: initialisation randomness (only read; ``None``: the global RNG).
        x: training states ``(N, widths[0])`` to fit the input grid to (default: none).
        dtype: parameter dtype (default float64).
        device: parameter device (default: torch's default device).

    Raises:
        HnnkitValueError: on invalid widths or grid (see :class:`~hnnkit.models.kan.KAN`).
    """
    kan = KAN(
        list(widths),
        grid,
        3,
        grid_range=(-2.0, 2.0),
        generator=generator,
        dtype=dtype,
        device=device,
    )
    if x is not None:
        kan.update_grid(x.to(kan.act_fun[0].coef), layers=[0])
    return HNN(kan.widths[0], energy_net=kan, output_index=kan.widths[-1] - 1)


def make_kan_dhnn(
    widths: Sequence[int] = (2, 1, 1),
    *,
    grid: int = 5,
    generator: torch.Generator | None,
    x: Tensor | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> DissipativeHNN:
    """A rayleigh-form :class:`~hnnkit.models.DissipativeHNN` whose energy and dissipation are
    both KANs of ``widths`` (one output each), built like :func:`make_kan_hnn`'s.

    :func:`hnnkit.symbolic.extract_dissipative` reads both back as formulas.

    Raises:
        HnnkitValueError: if ``widths`` does not end in one output, or as :func:`make_kan_hnn`.
    """
    if widths[-1] != 1:
        raise HnnkitValueError(
            f"a dissipative KAN-HNN needs KANs with one output (H and D), got widths "
            f"{','.join(map(str, widths))}; e.g. {widths[0]},1,1"
        )
    nets = [
        make_kan_hnn(widths, grid=grid, generator=generator, x=x, dtype=dtype, device=device)
        for _ in range(2)
    ]
    return DissipativeHNN(
        widths[0],
        energy_net=nets[0].energy_net,
        dissipation_net=nets[1].energy_net,
        form="rayleigh",
    )


def build_kan(
    dim: int,
    *,
    generator: torch.Generator | None = None,
    widths: Sequence[int] | None = None,
    grid: int = 5,
    dissipative: bool = False,
    x: Tensor | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> HNN | DissipativeHNN:
    """The registered ``kan``: :func:`make_kan_hnn`, or :func:`make_kan_dhnn` with ``dissipative``.

    ``widths`` defaults to ``(dim, 1, 2)`` (the report's, output 0 unused), or ``(dim, 1, 1)``
    with ``dissipative``; it must start with ``dim``.

    Raises:
        HnnkitValueError: if ``widths[0]`` is not ``dim``, or as the two factories.
    """
    if widths is None:
        widths = (dim, 1, 1) if dissipative else (dim, 1, 2)
    widths = tuple(widths)
    if not widths or widths[0] != dim:
        raise HnnkitValueError(
            f"KAN widths must start with the {dim} phase-space coordinates, got "
            f"{','.join(map(str, widths))}; e.g. {dim},1,1"
        )
    make = make_kan_dhnn if dissipative else make_kan_hnn
    return make(widths, grid=grid, generator=generator, x=x, dtype=dtype, device=device)


register_model(
    "kan",
    build_kan,
    description="HNN whose energy is a KAN (Liu et al. 2024); dissipative: H and D both KANs",
    # The seed report's full-batch L-BFGS, without weight decay; an L-BFGS step runs up to 20
    # inner iterations, so it needs far fewer steps than Adam.
    defaults={"optimizer": "lbfgs", "steps": 100, "weight_decay": 0.0},
    cost=20,
)
