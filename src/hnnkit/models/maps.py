r"""The one-step map contract: models that learn :math:`x_n \mapsto x_{n+1}` instead of a field.

hnnkit has two kinds of model:

- a **field** model has ``vector_field(t, x) -> dx/dt`` (the baseline, the HNN, the dhnn, the
  KAN-HNN); it is rolled out by an integrator (:func:`hnnkit.integrate.odeint`);
- a **map** model (a :class:`OneStepMap`, e.g. a SympNet) has ``step(x, h) -> x_next``: the
  state a time ``h`` later, for states ``(..., dim)``. It is rolled out by iterating ``step``.

A map is learned at one time step, the spacing of its training data: :func:`hnnkit.train.fit`
binds it (:meth:`OneStepMap.bind_time_step`, stored with the weights), and ``step`` refuses any
other ``h``, so that a rollout is made of whole steps. :func:`is_map` tells the two kinds apart;
the registry records each model's :data:`~hnnkit.models.registry.MODEL_KINDS` entry
(``hnnkit models`` shows it).

A map model has no vector field: its ``vector_field`` raises :class:`NotAFieldError`, naming
what to use instead (the ``rollout`` loss with ``method="model"``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import HnnkitValueError

#: Relative tolerance of ``step``'s check of ``h`` against the bound time step (data times are
#: often stored in float32).
STEP_RTOL = 1e-5


class NotAFieldError(HnnkitValueError):
    """A field was asked of a one-step map (it has ``step(x, h)``, no ``vector_field``)."""


class OneStepMap(nn.Module):
    r"""Base class of map models: :math:`x_{n+1} = \Phi_\theta(x_n)` at a fixed time step.

    Subclasses implement :meth:`map` (and, when the map is invertible in closed form,
    :meth:`inverse_map`). The time step is set once from the training data
    (:meth:`bind_time_step`) and saved in the state dict.

    Args:
        dim: phase-space dimension ``2n``.
    """

    def __init__(self, dim: int) -> None:
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 2 or dim % 2:
            raise HnnkitValueError(f"dim must be an even integer >= 2 (q then p), got {dim!r}")
        self.dim = dim
        self._time_step = math.nan

    # -- the learned map -----------------------------------------------------------------
    def map(self, x: Tensor) -> Tensor:
        """The state one time step after ``x``; ``(..., dim) -> (..., dim)`` (subclasses)."""
        raise NotImplementedError(f"{type(self).__name__} must implement map(x)")

    def inverse_map(self, x: Tensor) -> Tensor | None:
        """The state one time step before ``x``, or ``None`` for a map without a closed-form
        inverse (the default)."""
        return None

    def forward(self, x: Tensor) -> Tensor:
        return self.map(x)

    # -- the contract ----------------------------------------------------------------------
    @property
    def time_step(self) -> float:
        """The time step the map was trained at (``nan`` before training)."""
        return self._time_step

    def bind_time_step(self, h: float) -> None:
        """Set the time step (from the training data); a bound map keeps its own.

        Raises:
            HnnkitValueError: if ``h`` is not a finite number > 0, or differs from the time step
                the map is already bound to.
        """
        h = float(h)
        if not (math.isfinite(h) and h > 0):
            raise HnnkitValueError(f"a map's time step must be a finite number > 0, got {h!r}")
        if not math.isnan(self._time_step) and not _close(h, self._time_step):
            raise HnnkitValueError(
                f"{type(self).__name__} was trained at the time step {self._time_step:.6g}, "
                f"these data are spaced {h:.6g}; train a new map on them"
            )
        if math.isnan(self._time_step):
            self._time_step = h

    def check_step(self, h: Tensor | float) -> None:
        """Refuse a step ``h`` (a number, or one per state) other than the bound time step.

        Raises:
            HnnkitValueError: if the map is not bound yet, or ``h`` differs from its time step.
        """
        if math.isnan(self._time_step):
            raise HnnkitValueError(
                f"{type(self).__name__} has no time step yet: train it (fit binds the spacing "
                "of the data) or call bind_time_step(h)"
            )
        hs = h.detach().flatten().tolist() if isinstance(h, Tensor) else [float(h)]
        bad = [v for v in hs if not _close(v, self._time_step)]
        if bad:
            raise HnnkitValueError(
                f"{type(self).__name__} is a one-step map trained at the time step "
                f"{self._time_step:.6g}; it cannot step by {bad[0]:.6g}. Apply it at its own "
                "step (evaluate on a grid of multiples of it) or train it on data spaced "
                f"{bad[0]:.6g} apart"
            )

    def step(self, x: Tensor, h: Tensor | float) -> Tensor:
        """The state a time ``h`` after ``x`` (``h`` must be the bound time step).

        Args:
            x: states ``(..., dim)``.
            h: the step, a number or a tensor broadcastable to ``x.shape[:-1] + (1,)``.

        Returns:
            ``(..., dim)``.

        Raises:
            HnnkitValueError: if ``h`` is not the map's time step.
        """
        self.check_step(h)
        return self.map(x)

    def vector_field(self, t: Any, x: Tensor) -> Tensor:
        """Not available: a one-step map has no vector field.

        Raises:
            NotAFieldError: always, saying what to use instead.
        """
        raise NotAFieldError(
            f"{type(self).__name__} is a one-step map x_n -> x_(n+1) (step(x, h)), not a vector "
            "field: train it with loss='rollout' and method='model' (`hnnkit train --loss "
            "rollout --loss-option method=model`), roll it out by iterating step, and score it "
            "with hnnkit.evaluate.evaluate_corrected; the derivative and through-step losses and "
            "integrator studies need a field model (hnn, baseline)"
        )

    def get_extra_state(self) -> dict[str, float]:
        return {"time_step": self._time_step}

    def set_extra_state(self, state: Any) -> None:
        self._time_step = float(state["time_step"])


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= STEP_RTOL * max(abs(a), abs(b))


def is_map(model: object) -> bool:
    """Whether ``model`` is a one-step map (:class:`OneStepMap`) rather than a field model."""
    return isinstance(model, OneStepMap)


def iterate_map(model: OneStepMap, x0: Tensor, n_steps: int, every: int = 1) -> Tensor:
    """Roll ``model`` out from ``x0`` ``(..., dim)``: ``n_steps`` steps at its time step.

    Args:
        model: a bound map.
        x0: initial states.
        n_steps: the number of steps (>= 0).
        every: keep every ``every``-th state.

    Returns:
        ``(n_steps // every + 1, *x0.shape)``, time first (``out[0]`` is ``x0``), the states at
        times ``0, every·h, 2·every·h, …``.
    """
    model.check_step(model.time_step)
    out, x = [x0], x0
    for i in range(1, n_steps + 1):
        x = model.map(x)
        if i % every == 0:
            out.append(x)
    return torch.stack(out)


__all__ = ["STEP_RTOL", "NotAFieldError", "OneStepMap", "is_map", "iterate_map"]
