r"""Metrics: derivative MSE, rollout error over time, energy error, valid prediction time.

All functions take plain tensors, so they work for any model or integrator.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .errors import HnnkitValueError


def mean_sem(values: Tensor, n: int | None = None) -> dict[str, float]:
    """``{"mean", "sem"}`` of ``values``: unbiased std over all elements divided by ``sqrt(n)``.

    ``n`` defaults to the number of elements. The original code's train/test losses use the
    std over all ``N·D`` squared errors divided by ``sqrt(N)`` rows (the end of every
    ``train.py`` in greydanus/hamiltonian-nn); pass ``n=N`` for that.
    """
    v = values.detach().double().flatten()
    n = v.numel() if n is None else n
    sem = float(v.std(unbiased=True) / math.sqrt(n)) if v.numel() > 1 else 0.0
    return {"mean": float(v.mean()), "sem": sem}


def group_sem(values: Tensor, groups: int = 5) -> float:
    """Standard error from ``groups`` contiguous group means: ``std(group means) / sqrt(groups)``.

    The original analysis notebooks (``bootstrap_conf`` in ``analyze-spring.ipynb``) use this
    with 5 groups of 3 trajectories; ``np.std`` there is the biased (population) std.
    """
    v = values.detach().double().flatten()
    if v.numel() < groups or v.numel() % groups:
        raise HnnkitValueError(f"group_sem needs a multiple of {groups} values, got {v.numel()}")
    return float(v.reshape(groups, -1).mean(1).std(unbiased=False) / math.sqrt(groups))


def derivative_mse(pred: Tensor, target: Tensor) -> dict[str, float]:
    """Train/test "loss" as the paper reports it: mean squared error ± std/√N over N points."""
    if pred.shape != target.shape:
        raise HnnkitValueError(
            f"pred and target must match, got {tuple(pred.shape)} and {tuple(target.shape)}"
        )
    return mean_sem((pred - target).pow(2), n=pred.reshape(-1, pred.shape[-1]).shape[0])


def rollout_mse(true: Tensor, pred: Tensor) -> Tensor:
    """Coordinate MSE at each time: ``(T, B, d)`` → ``(T, B)`` (mean over the state dimension)."""
    if true.shape != pred.shape:
        raise HnnkitValueError(
            f"rollouts must match, got {tuple(true.shape)} and {tuple(pred.shape)}"
        )
    return (true - pred).pow(2).mean(-1)


def energy_error(true_energy: Tensor, pred_energy: Tensor) -> Tensor:
    """Squared energy error at each time, ``(T, B)``."""
    return (true_energy - pred_energy).pow(2)


def energy_drift(energy: Tensor) -> Tensor:
    r"""Relative drift of an energy series ``(T, B)``: :math:`|E(T) - E(0)| / |E(0)|` per trajectory.

    Any other conserved quantity's series (an angular momentum) is scored the same way.
    """
    return (energy[-1] - energy[0]).abs() / energy[0].abs().clamp_min(1e-12)


def valid_prediction_time(t: Tensor, true: Tensor, pred: Tensor, threshold: float = 0.1) -> Tensor:
    r"""First time the relative error :math:`\|\hat x - x\| / \|x\|` exceeds ``threshold``.

    Args:
        t: ``(T,)`` times.
        true, pred: ``(T, B, d)`` rollouts.
        threshold: relative error that ends the valid prediction (default 0.1).

    Returns:
        ``(B,)`` times; trajectories that never exceed it get ``t[-1]``. A NaN prediction (a
        rollout that diverged) is past the threshold.
    """
    rel = (pred - true).norm(dim=-1) / true.norm(dim=-1).clamp_min(1e-12)
    bad = ~(rel <= threshold)
    first = torch.where(
        bad.any(0), bad.float().argmax(0), torch.full_like(bad[0], len(t) - 1, dtype=torch.long)
    )
    return t.to(true.dtype)[first]


def step_jacobian(step: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    r"""Jacobian :math:`M = \partial \Phi(x) / \partial x` of a one-step map at each state.

    Args:
        step: a differentiable map ``(B, d) → (B, d)`` that treats rows independently (e.g.
            :func:`hnnkit.integrate.flow_map`).
        x: states ``(B, d)``.

    Returns:
        ``(B, d, d)``: ``M[b, i, j] = ∂Φ_i(x_b) / ∂x_{b, j}`` (one backward pass per output).
    """
    if x.ndim != 2:
        raise HnnkitValueError(f"x must have shape (batch, d), got {tuple(x.shape)}")
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        y = step(xg)
        if y.shape != x.shape:
            raise HnnkitValueError(
                f"step must map {tuple(x.shape)} to the same shape, got {tuple(y.shape)}"
            )
        rows = [
            torch.autograd.grad(y[:, i].sum(), xg, retain_graph=i + 1 < x.shape[1])[0]
            for i in range(x.shape[1])
        ]
    return torch.stack(rows, dim=1)


def symplecticity_error(step: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    r"""How far a one-step map is from symplectic: :math:`\|M^\top J M - J\|_F / \|J\|_F` per state.

    ``J = [[0, I], [-I, 0]]`` for states ``(q, p)``. Zero (to round-off) for the exact flow of
    any Hamiltonian field and for a symplectic integrator (leapfrog, implicit midpoint) applied
    to one, so it tells an HNN from a baseline under such an integrator. Classical RK4's defect
    is :math:`O(h^6)` per step (on the harmonic oscillator exactly :math:`y^6/72 - y^8/576`,
    :math:`y = \omega h`). ``x``: ``(B, 2n)``; returns ``(B,)``.
    """
    d = x.shape[-1]
    if d % 2:
        raise HnnkitValueError(f"states must have an even size (q then p), got {d}")
    n = d // 2
    eye = torch.eye(n, dtype=x.dtype, device=x.device)
    zero = torch.zeros_like(eye)
    j = torch.cat([torch.cat([zero, eye], 1), torch.cat([-eye, zero], 1)], 0)
    m = step_jacobian(step, x)
    defect = m.transpose(-1, -2) @ j @ m - j
    return defect.flatten(-2).norm(dim=-1) / j.norm()
