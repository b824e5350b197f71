"""Multi-stage training on top of :func:`~hnnkit.train.fit`: restarts, grid schedules, plateau stops.

Every stage is one :func:`fit` call (its checkpoints, logging and non-finite checks); what
happens between stages (choosing among restart candidates, refitting and refining a KAN's
grids) is here, so that any model reaches it through ``train_with_restarts``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from ..data import Dataset
from ..errors import HnnkitValueError, NonFiniteLossError
from ..models.kan import find_kan
from .loop import fit
from .losses import derivative_loss

Regularizer = Callable[[nn.Module], Tensor]


def restart_seed(seed: int, restart: int) -> int:
    """Seed of the initialisation of restart candidate ``restart`` of a run seeded ``seed``."""
    return 1000 * seed + restart


def parameter_l1(lamb: float) -> Regularizer:
    """``lamb`` times the sum of the absolute values of the trainable parameters (the report's eq. 17)."""

    def regularizer(model: nn.Module) -> Tensor:
        return lamb * sum(p.abs().sum() for p in model.parameters() if p.requires_grad)

    return regularizer


def _train(
    model: nn.Module,
    data: Dataset,
    *,
    steps: int,
    log_every: int,
    regularizer: Regularizer | None,
    chunk: int | None,
    rtol: float,
    quiet: bool,
    fit_options: dict[str, Any],
) -> dict[str, Any]:
    """:func:`fit`, in chunks with a plateau stop when ``chunk`` is set.

    Each chunk is a fresh :func:`fit` call (a fresh optimizer: L-BFGS restarts its curvature
    history), and the objective at the end of a chunk decides whether to go on.
    """

    history: list[dict[str, float]] = []
    done, seconds, previous = 0, 0.0, math.inf
    chunk = chunk or steps
    while done < steps:
        n = min(chunk, steps - done)
        res = fit(
            model,
            data,
            steps=n,
            log_every=min(log_every, n),
            regularizer=regularizer,
            quiet=quiet,
            **fit_options,
        )
        history += [
            {**h, "step": h["step"] + done, "seconds": h["seconds"] + seconds} for h in res.history
        ]
        done += n
        seconds += res.seconds
        objective = res.history[-1]["batch_loss"] if res.history else math.nan
        if (
            done < steps
            and math.isfinite(previous)
            and previous - objective <= rtol * abs(previous)
        ):
            break
        previous = objective
    return {"history": history, "steps": done, "seconds": seconds}


def train_objective(model: nn.Module, data: Dataset, regularizer: Regularizer | None) -> float:
    """The derivative loss on the whole training split plus the regulariser."""
    p = next(model.parameters())
    x, dx = (v.to(p.device, p.dtype) for v in data.split("train"))
    with torch.enable_grad():  # the HNN's vector field differentiates the energy
        value = derivative_loss(model, x, dx)
        if regularizer is not None:
            value = value + regularizer(model)
    return float(value.detach())


def train_with_restarts(
    build: Callable[[int], tuple[nn.Module, Regularizer | None]],
    data: Dataset,
    *,
    steps: int,
    restarts: int = 1,
    restart_steps: int | None = None,
    grids: Sequence[int] | None = None,
    log_every: int = 1,
    plateau_chunk: int | None = None,
    plateau_rtol: float = 0.0,
    quiet: bool = True,
    fit_options: dict[str, Any] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Train a model with restarts and, for a KAN energy, a grid schedule.

    1. ``restarts > 1``: the candidates ``build(0)``, ..., ``build(restarts - 1)`` each train
       for ``restart_steps``; the one with the lowest training objective (loss plus
       regulariser; a candidate whose loss became non-finite scores ``inf``) is kept and
       continues. KANs shaped like ``[2, 1, 1]`` converge only from some initialisations.
    2. With ``grids`` (a KAN energy): training continues to a quarter of ``steps`` (the restart
       steps count) on the initial grids. Every grid is then refitted to the range its inputs
       take (:meth:`~hnnkit.models.kan.KAN.update_grid`, margin 0.1) and the steps left are
       split over ``grids``, with :meth:`~hnnkit.models.kan.KAN.refine` between sizes.
    3. Without ``grids``: the steps left, in one run.

    Used by the ``kan-spring`` experiment and by ``hnnkit train --model kan``.

    Args:
        build: restart index → ``(untrained model, regularizer or None)``.
        data: the dataset; training uses its train split.
        steps: total optimisation steps, restart steps included (an upper bound with
            ``plateau_chunk``).
        restarts: candidates to try (default 1: no choice).
        restart_steps: steps of each candidate before the choice (default ``None``: a quarter
            of ``steps``, at least 1); capped at ``steps``.
        grids: grid sizes of a KAN energy in order, e.g. ``(5,)`` or ``(5, 10, 20)``; ``None``
            (default) for a network without grids.
        log_every: steps between logged train/test losses (default 1).
        plateau_chunk: after the restarts, train in chunks of this many steps and stop a stage
            when a chunk lowers the objective by less than ``plateau_rtol`` (default ``None``:
            no plateau stop).
        plateau_rtol: relative improvement below which a chunk counts as a plateau.
        quiet: no progress bars (default ``True``).
        fit_options: passed to :func:`fit` (default: full-batch L-BFGS at lr
            1e-3, the report's).

    Returns:
        ``(model, log)``; ``log`` holds ``history`` (steps counted from the start, the chosen
        candidate's restart steps included), ``steps``, ``seconds`` (all candidates),
        ``restart_objectives`` and, with several candidates, ``restart_chosen``.

    Raises:
        HnnkitValueError: on ``steps < 1``, ``restarts < 1`` or ``restart_steps < 0``.
        NonFiniteLossError: when the kept model's loss becomes non-finite.
    """
    for name, value, low in (("steps", steps, 1), ("restarts", restarts, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise HnnkitValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if restart_steps is not None and not restart_steps >= 0:
        raise HnnkitValueError(f"restart_steps must be >= 0, got {restart_steps!r}")
    options = {"optimizer": "lbfgs", "lr": 1e-3, **(fit_options or {})}
    log: dict[str, Any] = {"history": [], "steps": 0, "seconds": 0.0, "restart_objectives": []}

    def stage(model: nn.Module, reg: Regularizer | None, n: int, chunk: int | None) -> dict:
        return _train(
            model,
            data,
            steps=n,
            log_every=log_every,
            regularizer=reg,
            chunk=chunk,
            rtol=plateau_rtol,
            quiet=quiet,
            fit_options=options,
        )

    if restarts > 1:
        n_first = min(restart_steps or max(1, steps // 4), steps)
        scored = []
        for r in range(restarts):
            model, reg = build(r)
            try:
                part = stage(model, reg, n_first, None)
                score = train_objective(model, data, reg)
            except NonFiniteLossError:
                part, score = {"history": [], "steps": n_first, "seconds": 0.0}, math.inf
            log["seconds"] += part["seconds"]
            scored.append((score if math.isfinite(score) else math.inf, part, model, reg))
        best = min(range(restarts), key=lambda k: scored[k][0])
        _, part, model, reg = scored[best]
        log.update(history=part["history"], steps=part["steps"], restart_chosen=best)
        log["restart_objectives"] = [s[0] for s in scored]
    else:
        model, reg = build(0)

    def run(n: int, chunk: int | None) -> None:
        if n < 1:
            return
        part = stage(model, reg, n, chunk)
        offset = log["steps"]
        log["history"] += [{**h, "step": h["step"] + offset} for h in part["history"]]
        log["steps"] += part["steps"]
        log["seconds"] += part["seconds"]

    if grids is None:
        run(steps - log["steps"], plateau_chunk)
        return model, log
    grids = tuple(grids)
    kan = find_kan(model)
    x_train = data.split("train")[0].to(kan.act_fun[0].coef)
    # Warm-up on the initial grids, then every grid refitted to the range its inputs now take
    # (the hidden node has left its tiny initial range: on the pendulum it sits in [2, 4.2],
    # outside the initial [-2, 2]), then the steps left split over the grid sizes.
    run(max(1, steps // 4) - log["steps"], plateau_chunk)
    remaining = steps - log["steps"]
    for k, grid in enumerate(grids):
        kan.update_grid(x_train, margin=0.1)
        if grid != kan.grid_size:
            kan.refine(grid)
        n = remaining // len(grids) + (remaining % len(grids) if k == len(grids) - 1 else 0)
        run(n, plateau_chunk)
    return model, log
