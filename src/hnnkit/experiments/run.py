"""Run an :class:`~hnnkit.experiments.spec.Experiment`: data → model → fit → evaluate → run directory.

The same steps train every model of ``hnnkit reproduce`` (:func:`load_data`,
:func:`train_model`) and ``hnnkit run EXPERIMENT.toml`` (:func:`run_experiment`), which
writes a run directory in the format of ``hnnkit train`` + ``hnnkit evaluate``:
``config.json``, ``checkpoint.pt``, ``log.csv``, ``metrics.json``, the figures, and the spec
itself as ``experiment.toml``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .. import models
from ..data import Dataset, generate, real_pendulum
from ..errors import HnnkitValueError
from ..evaluate import OriginalProtocol, evaluate_corrected, evaluate_original, loss_metrics
from ..files import (
    DirectoryLock,
    atomic_write_json,
    atomic_write_text,
    describe_os_error,
    remove_stale_temporaries,
)
from ..metrics import mean_sem
from ..models import DissipativeHNN
from ..report import loss_curves, provenance, rollout_panels
from ..report.results import read_json
from ..systems import get_system
from ..train import FitResult, fit, get_loss
from .spec import MEASURED, DataSpec, Experiment, ModelSpec, TrainSpec
from .tasks import task_for_data

#: The dissipative HNN's form: the paper's (Sosanya & Greydanus 2022).
DHNN_FORM = models.get_model("dhnn").options["form"]
#: The rollout span of an evaluation that names none and whose system has no task.
DEFAULT_EVAL_SPAN = (0.0, 20.0)
SPEC_FILE = "experiment.toml"


def load_data(spec: DataSpec, seed: int) -> Dataset:
    """The data ``spec`` describes (simulated with ``seed`` unless measured or a file).

    Raises:
        DataFileError: when a data file or the recording cannot be read.
    """
    if spec.file is not None:
        return Dataset.load(spec.file)
    if spec.system == MEASURED:
        return real_pendulum()
    system: Any = get_system(spec.system, **spec.params) if spec.params else spec.system
    return generate(system, seed=seed, cache=True, **spec.generate_kwargs())


def build_model(
    kind: str,
    dim: int,
    hidden: tuple[int, ...] | None = None,
    seed: int = 0,
    activation: str | None = None,
) -> torch.nn.Module:
    """The registered model ``kind`` (:mod:`hnnkit.models.registry`) initialised from ``seed``;
    ``hidden`` and ``activation`` go to the models that take them (``None``: the model's own
    default, which lives in its builder only)."""
    gen = torch.Generator().manual_seed(seed)
    shared = {"hidden": hidden, "activation": activation}
    shared = {k: v for k, v in shared.items() if v is not None}
    return models.build_with_shared_options(kind, dim, generator=gen, **shared)


def model_from_spec(spec: ModelSpec, dim: int, seed: int) -> torch.nn.Module:
    """The untrained model of ``spec`` for phase-space dimension ``dim``.

    Raises:
        UnknownNameError: if the model is not registered (the message lists those that are).
    """
    kw = spec.kwargs
    hidden = kw.get("hidden")
    return build_model(
        spec.name, dim, None if hidden is None else tuple(hidden), seed, kw.get("activation")
    )


def model_options(spec: ModelSpec) -> dict[str, Any]:
    """The shared options (``hidden``, ``activation``) the model of ``spec`` is built with: the
    spec's, else the builder's defaults; an option the model does not take is left out."""
    entry = models.get_model(spec.name)
    out: dict[str, Any] = {}
    for key in ("hidden", "activation"):
        if entry.accepts(key):
            value = spec.kwargs.get(key, entry.options[key])
            out[key] = list(value) if key == "hidden" else value
    return out


def check_loss(train: TrainSpec, data: Dataset) -> None:
    """Refuse a loss that is not registered (:data:`hnnkit.train.LOSSES`), or one that needs
    the forward differences' intervals (``through-step``) on data without them."""
    loss = get_loss(train.loss)
    if "step" in loss.requires and data.step is None:
        raise HnnkitValueError(
            f"loss {train.loss!r} needs targets that are forward differences (as the "
            "real-pendulum recording's); these data hold exact derivatives: use 'derivative'"
        )


def train_model(
    exp: Experiment,
    data: Dataset,
    run_dir: Path,
    device: torch.device,
    *,
    quiet: bool = True,
    checkpoint_every: int | None = None,
    config: dict[str, Any] | None = None,
) -> FitResult:
    """Build ``exp``'s model and fit it to ``data`` in ``run_dir`` (resuming a checkpoint there)."""
    check_loss(exp.train, data)
    tr = exp.train
    model = model_from_spec(exp.model, data.dim, exp.seed).to(device)
    return fit(
        model,
        data,
        loss=tr.loss,
        optimizer=tr.optimizer,
        lr=tr.lr,
        steps=tr.steps,
        batch_size=tr.batch_size,
        weight_decay=tr.weight_decay,
        seed=exp.seed,
        log_every=max(1, tr.steps // 40),
        checkpoint_every=checkpoint_every,
        run_dir=run_dir,
        resume=True,
        quiet=quiet,
        config=config,
    )


def dissipation(model: DissipativeHNN, data: Dataset, system: Any) -> dict[str, Any]:
    """The learned friction rate (mean of ``dissipation_rate`` over the held-out states) and the true gamma."""
    x, _ = data.split("test")
    if data.x_clean is not None:
        x = data.x_clean[data.test_mask]
    x = x.to(next(model.parameters()).dtype)
    rate = model.dissipation_rate(x).detach()
    gamma = system.params().get("gamma") if system is not None else None
    return {"rate": mean_sem(rate), "gamma_true": gamma}


def eval_span(exp: Experiment) -> tuple[float, float]:
    """The rollout span: the experiment's, else its system's task's, else 0–20."""
    if exp.eval.t_span is not None:
        return exp.eval.t_span
    task = task_for_data(exp.data)
    return task.eval_span if task is not None else DEFAULT_EVAL_SPAN


def run_config(exp: Experiment) -> dict[str, Any]:
    """``config.json`` of the run: the keys of ``hnnkit train``'s, the spec and its hash."""
    d, tr = exp.data, exp.train
    cfg: dict[str, Any] = {
        "system": d.system if d.file is None else None,
        "model": exp.model.name,
        "seed": exp.seed,
        **model_options(exp.model),
        "steps": tr.steps,
        "lr": tr.lr,
        "batch_size": tr.batch_size,
        "weight_decay": tr.weight_decay,
        "n_trajectories": d.n_trajectories,
        "n_points": d.n_points,
        "noise_std": d.noise_std,
        "optimizer": tr.optimizer,
    }
    if tr.through_step:
        cfg["through_step"] = True
    elif tr.loss != TrainSpec().loss:
        cfg["loss"] = tr.loss
    return {**cfg, "experiment": exp.to_dict(), "config_hash": exp.config_hash()}


def _stored_experiment(run_dir: Path) -> Experiment | None:
    path = run_dir / SPEC_FILE
    return Experiment.from_toml(path) if path.is_file() else None


def run_experiment(
    exp: Experiment,
    out: str | os.PathLike = "runs",
    *,
    device: str | torch.device = "cpu",
    quiet: bool = False,
    echo: Callable[[str], None] = print,
) -> tuple[Path, dict[str, Any]]:
    """Train and evaluate ``exp`` into ``out/<name or config hash>``; returns ``(run_dir, metrics)``.

    A finished run of the same experiment there is reused (its ``metrics.json`` is returned);
    an unfinished one resumes from its checkpoint. One process at a time holds the run
    directory (:class:`hnnkit.files.DirectoryLock`).

    Raises:
        HnnkitValueError: when the directory holds another experiment or other files.
    """
    run_dir = Path(out) / exp.run_name
    if Path(out).exists() and not Path(out).is_dir():
        raise HnnkitValueError(
            f"--out {out} is a file; pass a directory (it is created if missing)"
        )
    dev = torch.device(device)
    try:
        lock = DirectoryLock(run_dir, "hnnkit run")
        lock.__enter__()
    except OSError as exc:
        raise HnnkitValueError(describe_os_error(exc)) from exc
    try:
        remove_stale_temporaries(run_dir)
        return _run_locked(exp, run_dir, dev, quiet, echo)
    finally:
        lock.__exit__(None, None, None)


def _run_locked(
    exp: Experiment, run_dir: Path, device: torch.device, quiet: bool, echo: Callable[[str], None]
) -> tuple[Path, dict[str, Any]]:
    stored = _stored_experiment(run_dir)
    if stored is not None and stored.config_hash() != exp.config_hash():
        raise HnnkitValueError(
            f"{run_dir} holds another experiment (config hash {stored.config_hash()}, this one "
            f"{exp.config_hash()}); give this experiment another name or pass another --out"
        )
    if stored is None:
        others = [p.name for p in run_dir.iterdir() if not p.name.startswith(".")]
        if others:
            raise HnnkitValueError(
                f"{run_dir} is not empty ({', '.join(sorted(others)[:5])}) and holds no "
                f"{SPEC_FILE}; give the experiment another name or pass another --out"
            )
    done = run_dir / "metrics.json"
    if stored is not None and done.is_file():
        metrics, bad = read_json(done)
        if bad is None and isinstance(metrics, dict) and "config_hash" in metrics:
            echo(f"{run_dir} already holds this finished experiment; reusing it")
            return run_dir, metrics
    atomic_write_text(run_dir / SPEC_FILE, exp.to_toml())
    data = load_data(exp.data, exp.data_seed)
    check_loss(exp.train, data)
    cfg = run_config(exp)
    atomic_write_json(
        run_dir / "config.json", {**cfg, "dataset": data.config, "provenance": provenance()}
    )
    res = train_model(exp, data, run_dir, device, quiet=quiet, config=cfg)
    model = res.model.cpu()
    metrics = evaluate_model(exp, model, data, run_dir)
    metrics["train_seconds"] = res.seconds
    kind = exp.model.name
    loss_curves({kind: res.history}, run_dir / "loss", title=f"{exp.run_name}: loss vs step")
    atomic_write_json(done, metrics)  # last: its presence marks the run finished
    return run_dir, metrics


def evaluate_model(
    exp: Experiment, model: torch.nn.Module, data: Dataset, figures: Path | None = None
) -> dict[str, Any]:
    """``exp``'s evaluation of a trained ``model``: the metrics that ``exp.eval`` names.

    With ``figures``, the rollouts (corrected protocol) are drawn in ``figures/rollouts``.
    """
    kind = exp.model.name
    task = task_for_data(exp.data)  # the protocol of the experiment's system, if a task has it
    system = None if exp.data.measured else get_system(exp.data.system, **exp.data.params)
    wanted = exp.eval.metrics
    found: dict[str, Any] = dict(loss_metrics(model, data, through_step=exp.train.through_step))
    if exp.eval.protocol == "corrected":
        corr, rollouts = evaluate_corrected(
            system,
            {kind: model},
            data,
            t_span=eval_span(exp),
            energy=None if task is None else task.energy,
        )
        found.update(corr[kind])
        if figures is not None:
            rollout_panels(
                rollouts,
                figures / "rollouts",
                title=exp.run_name,
                orbit=task is not None and task.orbit_plot,
            )
    else:
        noise = float(exp.data.noise_std or 0.0)
        orig, _ = evaluate_original(
            system,
            {kind: model},
            data,
            OriginalProtocol() if task is None else task.original,
            seed=exp.data_seed,
            noise_std=noise,
        )
        found["energy"] = orig[kind]["energy"]
    metrics: dict[str, Any] = {
        "config_hash": exp.config_hash(),
        "protocol": exp.eval.protocol,
        **{
            k: {kk: vv for kk, vv in found[k].items() if kk != "values"}
            for k in wanted
            if k in found
        },
    }
    if isinstance(model, DissipativeHNN):
        metrics["dissipation_rate"] = dissipation(model, data, system)["rate"]
    return metrics
