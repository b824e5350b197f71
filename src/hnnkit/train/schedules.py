"""Multi-stage training on top of :func:`~hnnkit.train.fit`: restarts, grid schedules, plateau stops.

Every stage is one :func:`fit` call (its checkpoints, logging and non-finite checks); what
happens between stages (choosing among restart candidates, refitting and refining a KAN's
grids) is here, so that any model reaches it through ``train_with_restarts``.
"""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..data import Dataset
from ..errors import HnnkitValueError, NonFiniteLossError
from ..models.kan import find_kan
from .loop import fit, load_checkpoint
from .losses import derivative_loss

Regularizer = Callable[[nn.Module], Tensor]


def _cpu_state(model: nn.Module) -> dict[str, Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def _saved_position(path: Path, plan: dict[str, Any]) -> dict[str, Any]:
    """The schedule position stored in the checkpoint at ``path``, refused unless made by ``plan``."""
    saved = load_checkpoint(path).get(SCHEDULE)
    if not isinstance(saved, dict) or "part" not in saved:
        raise HnnkitValueError(
            f"cannot resume: {path} holds no training schedule (written by a single fit or an "
            "older hnnkit); train again without resuming"
        )
    if saved.get("plan") != plan:
        raise HnnkitValueError(
            f"cannot resume: {path} was written by the schedule {saved.get('plan')}, this run "
            f"asks for {plan}; use the same settings, or another output"
        )
    return saved


def restart_seed(seed: int, restart: int) -> int:
    """Seed of the initialisation of restart candidate ``restart`` of a run seeded ``seed``."""
    return 1000 * seed + restart


def parameter_l1(lamb: float) -> Regularizer:
    """``lamb`` times the sum of the absolute values of the trainable parameters (the report's eq. 17)."""

    def regularizer(model: nn.Module) -> Tensor:
        return lamb * sum(p.abs().sum() for p in model.parameters() if p.requires_grad)

    return regularizer


def train_objective(model: nn.Module, data: Dataset, regularizer: Regularizer | None) -> float:
    """The derivative loss on the whole training split plus the regulariser."""
    p = next(model.parameters())
    x, dx = (v.to(p.device, p.dtype) for v in data.split("train"))
    with torch.enable_grad():  # the HNN's vector field differentiates the energy
        value = derivative_loss(model, x, dx)
        if regularizer is not None:
            value = value + regularizer(model)
    return float(value.detach())


#: The checkpoint entry holding a schedule's position (what :func:`train_with_restarts` resumes).
SCHEDULE = "schedule"


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
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
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

    Each part (a candidate, or a chunk of a stage) is one :func:`fit` call with a fresh
    optimizer. With ``checkpoint``, every part writes it (from its first step on, with the
    schedule's position in the entry :data:`SCHEDULE`: the part, the log so far, the
    finished candidates' weights), and ``resume=True`` continues from it at step
    granularity: the result equals an uninterrupted run's.

    Used by the ``kan-spring`` experiment and by ``hnnkit train --model kan``.

    Args:
        build: restart index → ``(untrained model, regularizer or None)``; deterministic.
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
        checkpoint: the checkpoint file (default ``None``: none written).
        resume: continue from ``checkpoint`` when it exists.

    Returns:
        ``(model, log)``; ``log`` holds ``history`` (steps counted from the start, the chosen
        candidate's restart steps included), ``steps``, ``seconds`` (all candidates),
        ``restart_objectives`` and, with several candidates, ``restart_chosen``.

    Raises:
        HnnkitValueError: on ``steps < 1``, ``restarts < 1`` or ``restart_steps < 0``; with
            ``resume``, on a checkpoint written by another schedule or without one.
        NonFiniteLossError: when the kept model's loss becomes non-finite.
    """
    for name, value, low in (("steps", steps, 1), ("restarts", restarts, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise HnnkitValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if restart_steps is not None and not restart_steps >= 0:
        raise HnnkitValueError(f"restart_steps must be >= 0, got {restart_steps!r}")
    if resume and checkpoint is None:
        raise HnnkitValueError("resume=True needs checkpoint, the file the schedule writes")
    options = {"optimizer": "lbfgs", "lr": 1e-3, **(fit_options or {})}
    grids = None if grids is None else tuple(grids)
    plan = {
        "steps": steps,
        "restarts": restarts,
        "restart_steps": restart_steps,
        "grids": None if grids is None else list(grids),
        "log_every": log_every,
        "plateau_chunk": plateau_chunk,
        "plateau_rtol": plateau_rtol,
    }
    ckpt = None if checkpoint is None else Path(checkpoint)
    saved = _saved_position(ckpt, plan) if resume and ckpt is not None and ckpt.exists() else None
    pos: dict[str, Any] = (
        copy.deepcopy(saved)
        if saved is not None
        else {
            "plan": plan,
            "phase": "candidates" if restarts > 1 else "stages",
            "candidates": [],
            "chosen": 0,
            "stage": 0,
            "stage_steps": None,
            "stage_done": 0,
            "stage_offset": 0,
            "stage_seconds": 0.0,
            "previous": math.inf,
            "log": {"history": [], "steps": 0, "seconds": 0.0, "restart_objectives": []},
        }
    )
    log = pos["log"]
    n_first = min(restart_steps or max(1, steps // 4), steps)

    def part(model: nn.Module, reg: Regularizer | None, n: int, key: list) -> tuple[list, float]:
        """One fit call of ``n`` steps; resumed from the checkpoint when it holds this part."""
        here = saved is not None and saved["part"] == key
        extra = None
        if ckpt is not None:
            snapshot = {k: v for k, v in pos.items() if k != "part"}
            extra = {SCHEDULE: copy.deepcopy({**snapshot, "part": key})}
        res = fit(
            model,
            data,
            steps=n,
            log_every=min(log_every, n),
            regularizer=reg,
            quiet=quiet,
            checkpoint=ckpt,
            resume=here,
            save_initial=ckpt is not None,
            extra=extra,
            **options,
        )
        seconds = res.history[-1]["seconds"] if here and res.history else res.seconds
        return res.history, seconds

    kept: dict[int, tuple[nn.Module, Regularizer | None]] = {}
    if pos["phase"] == "candidates":
        for r in range(len(pos["candidates"]), restarts):
            model, reg = build(r)
            try:
                history, seconds = part(model, reg, n_first, ["candidate", r])
                score = train_objective(model, data, reg)
            except NonFiniteLossError:
                history, seconds, score = [], 0.0, math.inf
            log["seconds"] += seconds
            kept[r] = (model, reg)
            pos["candidates"].append(
                {
                    "score": score if math.isfinite(score) else math.inf,
                    "history": history,
                    "model": _cpu_state(model) if ckpt is not None else {},
                }
            )
        scores = [c["score"] for c in pos["candidates"]]
        best = min(range(restarts), key=lambda k: scores[k])
        log.update(history=list(pos["candidates"][best]["history"]), steps=n_first)
        log["restart_chosen"] = best
        log["restart_objectives"] = scores
        if best in kept:
            model, reg = kept[best]
        else:  # trained before the resumed part: its weights are in the checkpoint
            model, reg = build(best)
            model.load_state_dict(pos["candidates"][best]["model"])
        pos.update(phase="stages", chosen=best, candidates=[])
    else:
        model, reg = build(pos["chosen"])
    kept.clear()

    kan = find_kan(model) if grids is not None else None
    x_train = None if kan is None else data.split("train")[0].to(kan.act_fun[0].coef)
    n_stages = 1 if grids is None else 1 + len(grids)
    if saved is not None and kan is not None and pos["stage"] >= 1:
        size = grids[pos["stage"] - 1]  # the shapes the checkpoint's weights have
        if size != kan.grid_size:
            kan.refine(size)
    while pos["stage"] < n_stages:
        k = pos["stage"]
        if pos["stage_steps"] is None:  # the stage starts here (not resumed inside it)
            if grids is None:
                n = steps - log["steps"]
            elif k == 0:  # warm-up on the initial grids
                n = max(1, steps // 4) - log["steps"]
            else:
                # every grid refitted to the range its inputs now take (the hidden node has
                # left its tiny initial range: on the pendulum it sits in [2, 4.2], outside the
                # initial [-2, 2]), then the steps left split over the grid sizes
                if k == 1:
                    pos["remaining"] = steps - log["steps"]
                kan.update_grid(x_train, margin=0.1)
                if grids[k - 1] != kan.grid_size:
                    kan.refine(grids[k - 1])
                g, rest = len(grids), pos["remaining"]
                n = rest // g + (rest % g if k == g else 0)
            pos.update(
                stage_steps=n,
                stage_done=0,
                stage_offset=log["steps"],
                stage_seconds=0.0,
                previous=math.inf,
            )
        n = pos["stage_steps"]
        chunk = plateau_chunk or n
        while pos["stage_done"] < n:
            m = min(chunk, n - pos["stage_done"])
            history, seconds = part(model, reg, m, ["stage", k, pos["stage_done"]])
            offset, base = pos["stage_offset"] + pos["stage_done"], pos["stage_seconds"]
            log["history"] += [
                {**h, "step": h["step"] + offset, "seconds": h["seconds"] + base} for h in history
            ]
            pos["stage_done"] += m
            pos["stage_seconds"] += seconds
            log["steps"] += m
            log["seconds"] += seconds
            objective = history[-1]["batch_loss"] if history else math.nan
            previous = pos["previous"]
            if (
                pos["stage_done"] < n
                and math.isfinite(previous)
                and previous - objective <= plateau_rtol * abs(previous)
            ):
                break
            pos["previous"] = objective
        pos.update(stage=k + 1, stage_steps=None)
    return model, log
