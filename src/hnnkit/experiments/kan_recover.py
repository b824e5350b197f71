"""Train a KAN-HNN on a data set and read its Hamiltonian back: one call, for benchmarks and
scripts (``hnnkit train --model kan`` + ``hnnkit symbolic`` without a run directory)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..data import Dataset
from ..errors import HnnkitValueError
from ..models import HNN, make_kan_hnn
from ..symbolic import SymbolicHamiltonian, extract_hamiltonian
from ..train import fit


def default_widths(dof: int) -> tuple[int, ...]:
    """The KAN shape used for ``dof`` degrees of freedom: ``[2, 1, 1]`` for one (a separable
    sum of two edge functions), ``[2n, n, 1]`` for more (each hidden node sums functions of
    every coordinate, so that its outer edge composes into products and differences)."""
    if dof < 1:
        raise HnnkitValueError(f"dof must be >= 1, got {dof}")
    return (2, 1, 1) if dof == 1 else (2 * dof, dof, 1)


@dataclass
class Recovery:
    """What :func:`recover_hamiltonian` gives.

    Attributes:
        model: the trained KAN-HNN.
        formula: the extracted :class:`~hnnkit.symbolic.SymbolicHamiltonian`.
        train_seconds: time to train the network.
        extract_seconds: time to extract the formula.
        train_loss, test_loss: the network's derivative MSE after training.
    """

    model: HNN
    formula: SymbolicHamiltonian
    train_seconds: float
    extract_seconds: float
    train_loss: float
    test_loss: float


def recover_hamiltonian(
    data: Dataset,
    *,
    widths: Sequence[int] | None = None,
    steps: int = 20,
    seed: int = 0,
    grid: int = 5,
    **extract_options: Any,
) -> Recovery:
    """Train a KAN-HNN on ``data`` (full-batch L-BFGS, float64) and extract its ``H``.

    Args:
        data: a phase-space :class:`~hnnkit.data.Dataset` (its trajectories let extraction
            smooth noisy states).
        widths: the KAN's shape (default :func:`default_widths` of the data's dof).
        steps: L-BFGS steps (default 20; the exact refit needs the candidate terms, not a
            converged network, so few steps usually suffice).
        seed: initialisation seed.
        grid: spline intervals per edge.
        **extract_options: passed to :func:`~hnnkit.symbolic.extract_hamiltonian`
            (``library``, ``max_degree``, ``denoise``, ``z``, ...).

    Raises:
        HnnkitValueError: on a shape whose first width is not the data's state size.
    """
    dim = data.dim
    widths = tuple(widths) if widths is not None else default_widths(dim // 2)
    if widths[0] != dim:
        raise HnnkitValueError(
            f"widths {list(widths)} must start with the state size {dim} of these data "
            f"({dim // 2} degrees of freedom), e.g. {list(default_widths(dim // 2))}"
        )
    x = data.split("train")[0]
    model = make_kan_hnn(widths, grid=grid, generator=torch.Generator().manual_seed(seed), x=x)
    t0 = time.perf_counter()
    result = fit(model, data, optimizer="lbfgs", steps=steps, seed=seed)
    t1 = time.perf_counter()
    formula = extract_hamiltonian(model, data, **extract_options)
    t2 = time.perf_counter()
    return Recovery(model, formula, t1 - t0, t2 - t1, result.train_loss, result.test_loss)


__all__ = ["Recovery", "default_widths", "recover_hamiltonian"]
