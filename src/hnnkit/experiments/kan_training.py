"""Models, training and run directories of the ``kan-spring`` experiment
(:mod:`hnnkit.experiments.kan_spring`)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..data import Dataset
from ..errors import check_choice
from ..evaluate import loss_metrics
from ..files import atomic_write_json
from ..models import HNN, MLP, make_kan_hnn
from ..models.kan import PruneResult, kan_regularizer
from ..report import provenance
from ..symbolic import RUN_FILE
from ..train import (
    CHECKPOINT,
    derivative_loss,
    parameter_l1,
    restart_seed,
    train_with_restarts,
)
from .kan_settings import ENERGY_OUTPUT, KAN_WIDTHS, LAMBDA_L1, MODELS, Profile
from .run import finish_kan_checkpoint

Regularizer = Callable[[nn.Module], Tensor]


def make_model(name: str, *, generator: torch.Generator, dtype: torch.dtype = torch.float64) -> HNN:
    """Build one of :data:`MODELS` (untrained): an MLP-HNN 2→200→2 or a KAN-HNN [2, 1, 2].

    The KAN's grid range is ``(-2, 2)``; :func:`train_model` then fits the first layer's grid
    to the training states.

    Raises:
        UnknownNameError: on an unknown model name.
    """
    check_choice("model", name, MODELS)
    if name.startswith("kan"):
        return make_kan_hnn(KAN_WIDTHS, grid=5, generator=generator, dtype=dtype)
    net = MLP(2, 2, hidden=(200,), activation="tanh", generator=generator).to(dtype)
    return HNN(2, energy_net=net, output_index=ENERGY_OUTPUT)


def train_model(
    name: str,
    data: Dataset,
    prof: Profile,
    *,
    seed: int,
    restarts: int,
    grids: tuple[int, ...],
    device: torch.device,
    quiet: bool,
    run_dir: Path | None = None,
    config: dict[str, Any] | None = None,
) -> tuple[HNN, dict[str, Any]]:
    """Train model ``name``; with ``run_dir`` (a KAN's), ``fit`` writes its ``checkpoint.pt``
    there with ``config``, which ``config.json`` records first."""
    x_train = data.split("train")[0].to(device, torch.float64)
    is_kan = name.startswith("kan")
    ckpt = options = None
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / RUN_FILE).unlink(missing_ok=True)  # the older format's file, now stale
        meta = {"dataset": data.config, "provenance": provenance()}
        atomic_write_json(run_dir / "config.json", {**(config or {}), **meta})
        ckpt, options = run_dir / CHECKPOINT, {"config": config or {}}

    def build(r: int) -> tuple[HNN, Regularizer | None]:
        gen = torch.Generator().manual_seed(restart_seed(seed, r))
        model = make_model(name, generator=gen).to(device)
        if is_kan:
            model.energy_net.update_grid(x_train, layers=[0])
        reg = None
        if name.endswith("-l1"):
            reg = kan_regularizer(x_train, LAMBDA_L1) if is_kan else parameter_l1(LAMBDA_L1)
        return model, reg

    model, log = train_with_restarts(
        build,
        data,
        steps=prof.steps,
        restarts=restarts if is_kan else 1,
        restart_steps=prof.restart_steps or None,
        grids=grids if is_kan else None,
        log_every=prof.log_every,
        plateau_chunk=prof.plateau_chunk,
        plateau_rtol=prof.plateau_rtol,
        quiet=quiet,
        fit_options=options,
        checkpoint=ckpt,
    )
    log["regularizer"] = (
        None if not name.endswith("-l1") else ("kan-activation-l1" if is_kan else "parameter-l1")
    )
    return model, log


def split_losses(model: nn.Module, data: Dataset) -> tuple[float, float]:
    """The derivative MSE of ``model`` on the train and the test split."""
    p = next(model.parameters())
    out = []
    for part in ("train", "test"):
        x, dx = (v.to(p.device, p.dtype) for v in data.split(part))
        out.append(float(derivative_loss(model, x, dx).detach()))
    return out[0], out[1]


def finish_run(run: Path, model: HNN, data: Dataset, log: dict[str, Any], pr: PruneResult) -> None:
    """Complete a KAN's run directory as ``hnnkit train --model kan`` does: its checkpoint gets
    the pruned weights, the whole history, the ``kan`` summary and the
    :data:`~hnnkit.symbolic.RUN_ENTRY` that ``hnnkit symbolic`` reads; then ``log.csv`` and
    ``metrics.json``."""
    cpu = copy.deepcopy(model).cpu()
    summary = finish_kan_checkpoint(run, cpu, data, log, pr)
    metrics = {**loss_metrics(cpu, data), "train_seconds": log["seconds"], "kan": summary}
    atomic_write_json(run / "metrics.json", metrics)


__all__ = ["finish_run", "make_model", "split_losses", "train_model"]
