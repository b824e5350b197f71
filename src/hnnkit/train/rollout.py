r"""The ``rollout`` loss: train through ``k`` steps of an integrator (or of a map's own step).

Each sample is a **window** of ``k + 1`` consecutive observed states of one trajectory,
:math:`x_{i}, \dots, x_{i+k}` at the data's own times :math:`t_i, \dots, t_{i+k}`
(:attr:`hnnkit.data.Dataset.t`, so unevenly sampled data work). A window lies wholly in the
training part or wholly in the test part of its trajectory; one that straddles the split is
dropped. From the window's first state the model predicts the next ``k``:

- a field model (``vector_field``) with one of hnnkit's integrators
  (:data:`hnnkit.integrate.SOLVERS`, option ``method``); the fixed-step methods take
  ``substeps`` steps per observed interval, ``dopri5`` its tolerances ``rtol`` and ``atol``;
- a one-step map (:class:`hnnkit.models.maps.OneStepMap`) with ``method="model"``: its own
  ``step``, once per interval (the data must be evenly spaced; the spacing is bound to the
  map as its time step).

The loss is the mean squared error over the ``k`` predicted states and all coordinates:

.. math:: L = \frac{1}{k\,d} \sum_{j=1}^{k} \| \hat x_{i+j} - x_{i+j} \|^2,

averaged over windows. When every window has the same relative times (evenly sampled data)
all windows are integrated in one :func:`~hnnkit.integrate.odeint` call over the window's
grid (so ``dopri5`` integrates the whole window in one call); otherwise each interval is
integrated on a per-window rescaled clock, ``k`` calls. ``k = 1`` with ``method="model"`` is
training on consecutive pairs (SympNet); SRNN-style training is ``method="leapfrog"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..data import Dataset
from ..errors import HnnkitValueError, check_choice
from ..integrate import SOLVERS, odeint
from ..models.maps import STEP_RTOL, OneStepMap
from .losses import register_loss

#: ``method`` value that rolls a map model out with its own step.
MODEL_STEP = "model"
#: The options of the rollout loss and their defaults (``method=None``: ``"model"`` for a map,
#: ``"rk4"`` for a field model).
ROLLOUT_DEFAULTS: Mapping[str, Any] = {
    "k": 5,
    "method": None,
    "substeps": 1,
    "rtol": 1e-5,
    "atol": 1e-6,
}
#: The field method a field model gets when ``method`` is not given.
DEFAULT_FIELD_METHOD = "rk4"


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise HnnkitValueError(f"rollout option {name} must be an integer >= 1, got {value!r}")
    return value


def _positive_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise HnnkitValueError(f"rollout option {name} must be a number > 0, got {value!r}")
    return float(value)


def check_rollout_options(options: dict[str, Any], kind: str | None) -> dict[str, Any]:
    """The rollout loss's options, checked and completed for a model of ``kind``.

    Raises:
        UnknownNameError: an unknown ``method`` (the valid ones listed).
        HnnkitValueError: a bad ``k``, ``substeps``, ``rtol`` or ``atol``; a field method for a
            map model, or ``"model"`` for a field model.
    """
    out = dict(options)
    out["k"] = _positive_int("k", out["k"])
    out["substeps"] = _positive_int("substeps", out["substeps"])
    out["rtol"] = _positive_number("rtol", out["rtol"])
    out["atol"] = _positive_number("atol", out["atol"])
    method = out["method"]
    if method is None and kind is not None:
        method = MODEL_STEP if kind == "map" else DEFAULT_FIELD_METHOD
    if method is not None:
        method = check_choice("rollout method", method, (*SOLVERS, MODEL_STEP))
    if kind == "map" and method != MODEL_STEP:
        raise HnnkitValueError(
            f"rollout method {method!r} integrates a vector field, and a one-step map has none; "
            f"use method={MODEL_STEP!r} (the map's own step)"
        )
    if kind == "field" and method == MODEL_STEP:
        raise HnnkitValueError(
            f"rollout method {MODEL_STEP!r} iterates a one-step map's step(x, h), and this is a "
            f"field model; use an integrator: {', '.join(SOLVERS)}"
        )
    out["method"] = method
    return out


def longest_run(inside: Tensor) -> int:
    """The most consecutive ``True`` points in a row of ``inside`` ``(n_traj, n_points)``."""
    best = 0
    for row in inside.tolist():
        run = 0
        for v in row:
            run = run + 1 if v else 0
            best = max(best, run)
    return best


def rollout_windows(
    data: Dataset, k: int, part: str, *, clean: bool = False
) -> tuple[Tensor, Tensor]:
    """The windows of ``k + 1`` consecutive states of ``part`` (``"train"`` or ``"test"``).

    A window never crosses the train/test split: all its points are in ``part``.

    Args:
        data: the dataset.
        k: steps per window.
        part: ``"train"`` or ``"test"``.
        clean: the noise-free states where the data have them.

    Returns:
        ``(x, t)``: states ``(N, k + 1, d)`` and their times ``(N, k + 1)``, trajectory by
        trajectory, in time order.

    Raises:
        HnnkitValueError: if ``k + 1`` exceeds the trajectories' length or the longest run of
            consecutive ``part`` points (both lengths named).
    """
    check_choice("part", part, ("train", "test"))
    n = data.n_points
    if k + 1 > n:
        raise HnnkitValueError(
            f"the rollout loss with k={k} needs windows of {k + 1} consecutive states, and the "
            f"trajectories hold {n} points; use k <= {n - 1}"
        )
    states = data.x_clean if clean and data.x_clean is not None else data.x
    mask = data.test_mask if part == "test" else ~data.test_mask
    inside = mask.unfold(1, k + 1, 1).all(-1)  # (n_traj, n_windows)
    if not bool(inside.any()):
        longest = longest_run(mask)
        raise HnnkitValueError(
            f"the rollout loss with k={k} needs windows of {k + 1} consecutive {part} states, "
            f"and the longest run of {part} points in a trajectory is {longest}; use "
            f"k <= {max(longest - 1, 0)}"
        )
    x = states.unfold(1, k + 1, 1).transpose(-1, -2)  # (n_traj, n_windows, k+1, d)
    t = data.t.unfold(1, k + 1, 1)
    return x[inside], t[inside]


def even_spacing(t: Tensor) -> float | None:
    """The common interval of the windows' times ``(N, k + 1)``, or ``None`` if uneven."""
    dt = (t[:, 1:] - t[:, :-1]).double()
    h = float(dt.median())
    if h > 0 and bool(((dt - h).abs() <= STEP_RTOL * h).all()):
        return h
    return None


def _rollout_batches(
    model: nn.Module,
    data: Any,
    device: torch.device,
    dtype: torch.dtype,
    options: Mapping[str, Any],
) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    if not isinstance(data, Dataset):
        raise HnnkitValueError(
            f"the rollout loss reads trajectories of a hnnkit.data.Dataset, not a "
            f"{type(data).__name__}"
        )
    k = options["k"]
    out = []
    for part in ("train", "test"):
        x, t = rollout_windows(data, k, part)
        out.append({"x": x.to(device=device, dtype=dtype), "t": t.to(device, torch.float64)})
    if options["method"] == MODEL_STEP:
        assert isinstance(model, OneStepMap)
        h = even_spacing(torch.cat([out[0]["t"], out[1]["t"]]))
        if h is None:
            raise HnnkitValueError(
                "a one-step map learns one time step, and these data are unevenly spaced; "
                "resample them evenly or train a field model"
            )
        model.bind_time_step(h)
    return out[0], out[1]


def check_rollout_data(data: Any, options: Mapping[str, Any]) -> None:
    """Raise unless ``data`` hold windows of ``k + 1`` states in both parts (see
    :func:`rollout_windows`)."""
    if isinstance(data, Dataset):
        for part in ("train", "test"):
            rollout_windows(data, options["k"], part)


class _Rescaled:
    """``dx/ds = h · f(t0 + s·h, x)``: one observed interval per window on the unit clock."""

    def __init__(self, f: Any, t0: Tensor, h: Tensor):
        self.f, self.t0, self.h = f, t0, h

    def __call__(self, s: Tensor, x: Tensor) -> Tensor:
        return self.h * self.f(self.t0 + s * self.h, x)


def rollout_predictions(
    model: nn.Module, x0: Tensor, t: Tensor, options: Mapping[str, Any]
) -> Tensor:
    """The model's states at the window times ``t`` ``(N, k + 1)`` from ``x0`` ``(N, d)``.

    Returns:
        ``(N, k, d)``: the ``k`` predicted states after ``x0``.
    """
    k, method = t.shape[1] - 1, options["method"]
    if method == MODEL_STEP:
        out, x = [], x0
        for _ in range(k):
            x = model.map(x)  # type: ignore[operator]
            out.append(x)
        return torch.stack(out, 1)
    solve = {"method": method, "substeps": options["substeps"]}
    if method == "dopri5":
        solve = {"method": method, "rtol": options["rtol"], "atol": options["atol"]}
    rel = t - t[:, :1]
    if even_spacing(t) is not None:
        grid = rel.mean(0).to(x0.dtype)
        return odeint(model.vector_field, x0, grid, **solve)[1:].transpose(0, 1)
    out, x = [], x0
    for j in range(k):
        h = (rel[:, j + 1] - rel[:, j]).to(x0.dtype).unsqueeze(-1)
        f = _Rescaled(model.vector_field, t[:, j : j + 1].to(x0.dtype), h)
        unit = torch.tensor([0.0, 1.0], dtype=x0.dtype, device=x0.device)
        x = odeint(f, x, unit, **solve, compact=False)[-1]
        out.append(x)
    return torch.stack(out, 1)


def rollout_loss(
    model: nn.Module, batch: Mapping[str, Tensor], options: Mapping[str, Any]
) -> Tensor:
    """The mean squared error of the ``k``-step predictions over a batch of windows.

    Args:
        model: a field model, or a one-step map with ``method="model"``.
        batch: ``{"x": (N, k + 1, d), "t": (N, k + 1)}`` (:func:`rollout_windows`).
        options: ``k``, ``method``, ``substeps``, ``rtol``, ``atol``.
    """
    x, t = batch["x"], batch["t"]
    pred = rollout_predictions(model, x[:, 0], t, options)
    return (pred - x[:, 1:]).pow(2).mean()


register_loss(
    "rollout",
    rollout_loss,
    requires=("x", "t"),
    defaults=ROLLOUT_DEFAULTS,
    check_options=check_rollout_options,
    batches=_rollout_batches,
    check_data=check_rollout_data,
)

__all__ = [
    "DEFAULT_FIELD_METHOD",
    "MODEL_STEP",
    "ROLLOUT_DEFAULTS",
    "check_rollout_options",
    "even_spacing",
    "longest_run",
    "rollout_loss",
    "rollout_predictions",
    "rollout_windows",
]
