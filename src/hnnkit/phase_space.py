r"""Canonical phase space: the ``(q, p)`` layout and the symplectic gradient.

A state is a tensor of shape ``(..., 2n)`` holding ``q_1..q_n`` followed by ``p_1..p_n``.
:func:`symplectic_gradient` is the one place where :math:`J\nabla H` is computed: true
systems and learned Hamiltonian networks both go through it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from .errors import HnnkitValueError, SingularMatrixError


def split(x: Tensor) -> tuple[Tensor, Tensor]:
    """Split a state ``(..., 2n)`` into ``q`` and ``p``, each ``(..., n)``.

    Raises:
        HnnkitValueError: if the last dimension is odd.
    """
    d = x.shape[-1]
    if d % 2:
        raise HnnkitValueError(
            f"a phase-space state needs an even last dimension (q then p), got shape {tuple(x.shape)}"
        )
    return x[..., : d // 2], x[..., d // 2 :]


def join(q: Tensor, p: Tensor) -> Tensor:
    """Inverse of :func:`split`: concatenate ``q`` and ``p`` along the last axis."""
    return torch.cat([q, p], dim=-1)


def symplectic(grad: Tensor) -> Tensor:
    r"""Apply :math:`J` to a gradient: :math:`(\partial_q H, \partial_p H) \mapsto (\partial_p H, -\partial_q H)`."""
    dq, dp = split(grad)
    return torch.cat([dp, -dq], dim=-1)


def energy_gradient(hamiltonian: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    r"""Gradient :math:`\nabla_x H(x)` of a batched scalar function, by autograd.

    A differentiable graph is built exactly when autograd is enabled at the call site,
    so the same code trains a network (``create_graph``), differentiates through an
    ODE solve, and runs cheaply under ``torch.no_grad()``.

    Args:
        hamiltonian: maps ``(..., 2n)`` to ``(...)``, one energy per state.
        x: states ``(..., 2n)``.

    Returns:
        ``(..., 2n)``, the gradient with respect to ``x``.

    Raises:
        HnnkitValueError: if ``hamiltonian`` does not return one energy per state.
    """
    build_graph = torch.is_grad_enabled()
    with torch.enable_grad():
        xi = x if (x.requires_grad and build_graph) else x.detach().requires_grad_(True)
        h = hamiltonian(xi)
        if h.shape != x.shape[:-1]:
            name = getattr(hamiltonian, "__qualname__", type(hamiltonian).__name__)
            raise HnnkitValueError(
                f"{name} must return one energy per state, shape {tuple(x.shape[:-1])}, "
                f"got {tuple(h.shape)}"
            )
        (g,) = torch.autograd.grad(h.sum(), xi, create_graph=build_graph)
    return g if build_graph else g.detach()


def symplectic_gradient(hamiltonian: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    r"""Hamilton's equations :math:`\dot x = J\nabla H(x)`, i.e. :math:`(\dot q, \dot p) = (\partial_p H, -\partial_q H)`.

    Args:
        hamiltonian: maps ``(..., 2n)`` to ``(...)``.
        x: states ``(..., 2n)``.

    Returns:
        ``(..., 2n)`` time derivatives.
    """
    return symplectic(energy_gradient(hamiltonian, x))


def solve_symmetric(
    matrix: Tensor,
    rhs: Tensor,
    *,
    what: str,
    advice: str,
    max_condition: float | None = None,
) -> Tensor:
    r"""Solve :math:`A y = b` state by state, refusing a singular or ill-conditioned :math:`A`.

    Used for the mass matrices of the Lagrangian description: :math:`\partial^2 H/\partial p^2`
    of a system and :math:`\partial^2 L/\partial\dot q^2` of a learned Lagrangian. The condition
    number is :math:`\max|\lambda| / \min|\lambda|` over the eigenvalues of the symmetric part
    (computed without a graph); the solve itself is differentiable.

    Args:
        matrix: ``(..., n, n)``, symmetric.
        rhs: ``(..., n)``.
        what: names the matrix in the error, e.g. ``"Spring's d²H/dp²"``.
        advice: what to do about it, appended to the error.
        max_condition: the largest condition number accepted; default ``1 / eps`` of the
            dtype (about 4.5e15 in float64, 8.4e6 in float32).

    Returns:
        ``(..., n)``, the solution :math:`y`.

    Raises:
        SingularMatrixError: (a ``HnnkitValueError``) if :math:`A` is non-finite, singular, or
            its condition number exceeds ``max_condition`` at any state (the message gives how
            many states and the worst condition number; ``.rows`` the first ones' flat indices).
    """
    limit = 1.0 / torch.finfo(matrix.dtype).eps if max_condition is None else max_condition
    with torch.no_grad():
        a = matrix.detach()
        finite = torch.isfinite(a).flatten(-2).all(-1)
        sym = torch.where(finite[..., None, None], 0.5 * (a + a.transpose(-1, -2)), 0.0)
        eig = torch.linalg.eigvalsh(sym).abs()
        cond = eig.amax(-1) / eig.amin(-1)  # inf (or nan for 0/0) where singular
        cond = torch.where(finite & ~torch.isnan(cond), cond, torch.inf)
        bad = cond > limit
    if bool(bad.any()):
        n_bad, total = int(bad.sum()), bad.numel()
        rows = bad.flatten().nonzero().flatten()[: SingularMatrixError.MAX_ROWS].tolist()
        raise SingularMatrixError(
            f"{what} is singular or ill-conditioned at {n_bad} of {total} states (worst "
            f"condition number {float(cond.max()):.3g}, limit {limit:.3g}); {advice}",
            rows=tuple(rows),
        )
    return torch.linalg.solve(matrix, rhs.unsqueeze(-1)).squeeze(-1)
