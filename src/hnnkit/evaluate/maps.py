r"""Evaluating one-step maps (:class:`hnnkit.models.maps.OneStepMap`) beside field models.

A map trained at the time step :math:`h` is applied only at multiples of :math:`h`, so:

- **rollouts** iterate its step; the evaluation grid of :func:`hnnkit.evaluate.evaluate_corrected`
  becomes :func:`map_grid`: the multiples of ``stride · h`` in the span, with the stride that
  gives about the requested number of points (every model, the truth included, is scored on
  that grid, so the metrics stay comparable across models);
- the **test loss** of a map is the mean squared error between its *central-difference
  derivative* :math:`(\Phi(x) - \Phi^{-1}(x)) / 2h` and the target derivatives (the same
  targets and points as a field model's derivative loss). For the exact flow of a smooth field
  this estimate differs from the derivative by :math:`O(h^2)` (on the spring, :math:`h = 3/29`:
  a relative :math:`(\omega h)^2/6 \approx 0.7\%`), where the forward slope
  :math:`(\Phi(x) - x)/h` would be off by :math:`O(h)` (about 10%), an error larger than the
  models' own. A map without a closed-form inverse gets that forward slope;
- the **symplecticity defect** is measured on its own step (:func:`map_step_function`).

The original notebooks' protocol integrates fields with dopri5 on their clocks (the spring's
rescaled by :math:`1.09^i`), which a map cannot follow: it is skipped for maps, with
:data:`ORIGINAL_SKIP_REASON` in the output.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from ..errors import HnnkitValueError
from ..integrate import Dopri5, odeint
from ..models.maps import STEP_RTOL, OneStepMap, is_map, iterate_map

#: Why the original protocol skips a one-step map (recorded in its output).
ORIGINAL_SKIP_REASON = (
    "one-step map: the original protocol integrates a vector field with dopri5 on the "
    "notebooks' clocks (rescaled for the spring), which a map trained at a fixed step cannot "
    "follow; see the corrected protocol"
)


def map_time_step(models: Mapping[str, Any]) -> float | None:
    """The common time step of the maps among ``models`` (``None`` if there is none).

    Raises:
        HnnkitValueError: if the maps were trained at different steps, or one has none.
    """
    steps = {name: m.time_step for name, m in models.items() if is_map(m)}
    if not steps:
        return None
    for name, h in steps.items():
        if math.isnan(h):
            raise HnnkitValueError(f"model {name!r} is a one-step map with no time step: train it")
    h = next(iter(steps.values()))
    if any(abs(v - h) > STEP_RTOL * h for v in steps.values()):
        listed = ", ".join(f"{k}: {v:.6g}" for k, v in steps.items())
        raise HnnkitValueError(
            f"one-step maps trained at different time steps ({listed}) cannot share an "
            "evaluation grid; evaluate them separately"
        )
    return h


def map_grid(h: float, t_span: tuple[float, float], n_points: int) -> tuple[Tensor, int]:
    """An evaluation grid of multiples of a map's step ``h`` in ``t_span``, about ``n_points``
    long: ``(t, stride)`` with ``t = t0 + stride·h·j`` for ``j = 0, 1, …`` up to ``t1``.

    Raises:
        HnnkitValueError: if the span is shorter than one step.
    """
    t0, t1 = float(t_span[0]), float(t_span[1])
    span = t1 - t0
    if span < h * (1 - STEP_RTOL):
        raise HnnkitValueError(
            f"the evaluation span [{t0:g}, {t1:g}] is shorter than the map's time step {h:.6g}; "
            "pass a longer span"
        )
    stride = max(1, round(span / ((n_points - 1) * h)))
    count = math.floor(span / (stride * h) * (1 + 1e-12)) + 1
    t = t0 + stride * h * torch.arange(count, dtype=torch.float64)
    return t, stride


def steps_on(model: OneStepMap, t: Tensor) -> int:
    """The number of map steps between consecutive times ``t`` (which must be even multiples
    of the map's step).

    Raises:
        HnnkitValueError: if the times are not evenly spaced by a whole number of steps.
    """
    h = model.time_step
    gaps = (t[1:] - t[:-1]).double()
    n = round(float(gaps[0]) / h) if len(gaps) else 1
    if n < 1 or not bool(((gaps - n * h).abs() <= STEP_RTOL * n * h).all()):
        raise HnnkitValueError(
            f"{type(model).__name__} is a one-step map trained at the time step {h:.6g}; it can "
            f"be rolled out only on times evenly spaced by a multiple of it, got spacings "
            f"{float(gaps.min()):.6g}..{float(gaps.max()):.6g}"
        )
    return n


#: Step attempts a batch rollout of :func:`rollout_model` may take (healthy rollouts of the
#: built-in tasks take a few thousand at rtol 1e-9): a field that makes dopri5 crawl (an LNN
#: near a singular mass matrix) costs minutes, not the hour of the solver's default 100 000.
ROLLOUT_MAX_STEPS = 10_000
#: Step attempts of one call while :func:`rollout_model` bisects for a diverging trajectory or
#: follows one output interval at a time (a blow-up reaches the step size underflow in
#: about a thousand).
RETRY_MAX_STEPS = 1_000
#: Step attempts a trajectory integrated alone (one output interval at a time) may take in all.
ALONE_MAX_STEPS = 20_000


def _solve(f: Callable, x0: Tensor, t: Tensor, rtol: float, atol: float) -> Tensor:
    return odeint(f, x0, t, method="dopri5", rtol=rtol, atol=atol, max_steps=RETRY_MAX_STEPS)


#: What a rollout treats as its solve failing at some trajectories: the solvers' errors
#: (``RuntimeError``: step size underflow, too many steps, a non-finite state) and a field that
#: refuses a state it reached (``ValueError``: an LNN's singular mass matrix).
FAILURES = (RuntimeError, ValueError)


def _by_interval(f: Callable, x0: Tensor, t: Tensor, rtol: float, atol: float) -> Tensor:
    """One trajectory ``x0`` ``(1, d)`` integrated one output interval at a time, NaN from the
    first output time it does not reach: within :data:`RETRY_MAX_STEPS` step attempts per
    interval and :data:`ALONE_MAX_STEPS` in all (a trajectory that crawls through every
    interval is lost where its budget ends, so that it costs minutes at most)."""
    out = torch.full((len(t), *x0.shape), math.nan, dtype=x0.dtype, device=x0.device)
    out[0] = x0
    used = 0
    for i in range(len(t) - 1):
        budget = min(RETRY_MAX_STEPS, ALONE_MAX_STEPS - used)
        if budget < 1:
            break
        solver = Dopri5(f, rtol=rtol, atol=atol, max_steps=budget)
        try:
            end = solver.integrate(out[i], t[i : i + 2])[-1]
        except FAILURES:
            break
        used += solver.attempts
        if not bool(torch.isfinite(end).all()):
            break
        out[i + 1] = end
    return out


def _split(f: Callable, x0: Tensor, t: Tensor, rtol: float, atol: float, failed: bool) -> Tensor:
    """Bisect ``x0`` ``(B, d)`` until every part integrates (``failed``: this part is known to
    fail); a lone failing trajectory goes through :func:`_by_interval`."""
    if not failed:
        try:
            return _solve(f, x0, t, rtol, atol)
        except FAILURES:
            pass
    if x0.shape[0] == 1:
        return _by_interval(f, x0, t, rtol, atol)
    half = x0.shape[0] // 2
    first = _split(f, x0[:half], t, rtol, atol, failed=False)
    # the part failed; if its first half did not, its second half must
    second = _split(f, x0[half:], t, rtol, atol, failed=bool(torch.isfinite(first).all()))
    return torch.cat([first, second], dim=1)


@torch.no_grad()
def rollout_model(model: Any, x0: Tensor, t: Tensor, *, rtol: float, atol: float) -> Tensor:
    """``model`` rolled out from ``x0`` ``(B, d)`` at times ``t``: a field integrated with
    dopri5 (``rtol``, ``atol``), a map iterated (``t`` evenly spaced by multiples of its step).

    A field whose flow blows up from some start states (an undertrained Lagrangian network
    whose mass matrix turns singular, a diverging baseline) does not fail the rollout. The batch
    is one dopri5 solve with ``lose_failing`` (:class:`~hnnkit.integrate.Dopri5`, at most
    :data:`ROLLOUT_MAX_STEPS` step attempts), which drops a trajectory it cannot follow and
    makes it NaN from there on; one that only ran out of step attempts may be slow rather than
    lost, so it is integrated again one output interval at a time (:data:`RETRY_MAX_STEPS`
    attempts per interval, :data:`ALONE_MAX_STEPS` in all) and is NaN from the first output
    time it does not reach. Should the solve still fail (a field that refuses a state without
    naming it), the failing trajectories are found by bisecting the batch. A field that fails
    at its very start states, and inputs :func:`~hnnkit.integrate.odeint` refuses, are errors,
    not divergences.

    Returns:
        ``(T, B, d)``; NaN rows from the time a trajectory diverged on.

    Raises:
        RuntimeError, ValueError: if the field itself fails at the start states, or ``x0`` or
            ``t`` are not valid inputs of :func:`~hnnkit.integrate.odeint`.
    """
    if is_map(model):
        every = steps_on(model, t)
        return iterate_map(model, x0, every * (len(t) - 1), every)
    if x0.ndim == 1:
        return rollout_model(model, x0[None], t, rtol=rtol, atol=atol)[:, 0]
    solver = Dopri5(
        model.vector_field, rtol=rtol, atol=atol, max_steps=ROLLOUT_MAX_STEPS, lose_failing=True
    )
    try:  # a trajectory the solver cannot follow is NaN from there on, the others go on
        out = solver.integrate(x0, t)
        for b in solver.ran_out:  # out of step attempts: slow, or lost? one interval at a time
            out[:, b : b + 1] = _by_interval(model.vector_field, x0[b : b + 1], t, rtol, atol)
        return out
    except FAILURES as exc:
        if x0.ndim != 2:
            raise
        if not isinstance(exc, RuntimeError):  # a ValueError: bad inputs, or f refusing a state
            still = lambda _t, x: torch.zeros_like(x)  # noqa: E731
            odeint(still, x0, t, method="dopri5", rtol=rtol, atol=atol)  # raises for bad inputs
        model.vector_field(t[:1].expand(x0.shape[0], 1), x0)  # raises for a broken field
        return _split(model.vector_field, x0, t, rtol, atol, failed=True)


def map_step_function(model: OneStepMap) -> Callable[[Tensor], Tensor]:
    """The map's own step at its time step, ``x ↦ step(x, h)`` (for the symplecticity defect)."""
    h = model.time_step
    return lambda x: model.step(x, h)


def map_derivative(model: OneStepMap, x: Tensor) -> Tensor:
    r"""The map's estimate of :math:`\dot x` at ``x``: :math:`(\Phi(x) - \Phi^{-1}(x))/2h`, or
    :math:`(\Phi(x) - x)/h` for a map without a closed-form inverse (see the module docstring)."""
    h = model.time_step
    model.check_step(h)
    back = model.inverse_map(x)
    if back is None:
        return (model.map(x) - x) / h
    return (model.map(x) - back) / (2 * h)


__all__ = [
    "ALONE_MAX_STEPS",
    "ORIGINAL_SKIP_REASON",
    "RETRY_MAX_STEPS",
    "ROLLOUT_MAX_STEPS",
    "map_derivative",
    "map_grid",
    "map_step_function",
    "map_time_step",
    "rollout_model",
    "steps_on",
]
