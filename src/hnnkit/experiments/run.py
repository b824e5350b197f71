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
from .. import train as training  # training.fit: looked up at each call
from ..data import Dataset, generate, load_trajectories, real_pendulum
from ..errors import HnnkitValueError
from ..evaluate import (
    OriginalProtocol,
    Rollouts,
    evaluate_corrected,
    evaluate_original,
    loss_metrics,
)
from ..files import (
    DirectoryLock,
    atomic_write_json,
    atomic_write_text,
    describe_os_error,
    remove_stale_temporaries,
)
from ..metrics import mean_sem
from ..models import DissipativeHNN, kan_regularizer
from ..report import loss_curves, provenance, rollout_panels
from ..report.results import read_json
from ..symbolic import RUN_ENTRY, kan_run_entry
from ..systems import Custom, HamiltonianSystem, get_system
from ..train import (
    CHECKPOINT,
    LOG,
    SCHEDULE,
    FitResult,
    get_loss,
    load_checkpoint,
    restart_seed,
    train_with_restarts,
    update_checkpoint,
    write_log,
)
from .spec import MEASURED, DataSpec, Experiment, ModelSpec, TrainSpec, resolve_train
from .tasks import task_for_data

#: The dissipative HNN's form: the paper's (Sosanya & Greydanus 2022).
DHNN_FORM = models.get_model("dhnn").options["form"]
#: The rollout span of an evaluation that names none and whose system has no task.
DEFAULT_EVAL_SPAN = (0.0, 20.0)
SPEC_FILE = "experiment.toml"
#: The loss of a model that registers none.
DERIVATIVE = "derivative"
#: The system of a formula: ``DataSpec(system="custom", params={"hamiltonian": FORMULA,
#: "dof": n, **constants})`` is :class:`hnnkit.systems.Custom` (``hnnkit train --system custom``).
CUSTOM = "custom"


def system_of(spec: DataSpec) -> HamiltonianSystem | None:
    """The true system of ``spec``: ``None`` for measured data (a recording or a file).

    Raises:
        UnknownNameError: if the system is not registered.
        HnnkitValueError: on bad parameters, or a ``custom`` system without its formula.
    """
    if spec.measured:
        return None
    if spec.system == CUSTOM:
        params = dict(spec.params)
        formula, dof = params.pop("hamiltonian", None), params.pop("dof", 1)
        if not isinstance(formula, str) or isinstance(dof, bool) or not isinstance(dof, int):
            raise HnnkitValueError(
                "data.system = 'custom' needs data.params.hamiltonian (a formula in q, p or "
                "q1..qn, p1..pn) and an integer data.params.dof (default 1)"
            )
        return Custom(formula, dof, parameters=params)
    return get_system(spec.system, **spec.params)  # type: ignore[arg-type]


def load_data(spec: DataSpec, seed: int, *, sha256: str | None = None) -> Dataset:
    """The data ``spec`` describes (simulated with ``seed`` unless measured or a file).

    A file is a ``.csv`` or ``.npz`` of trajectories (:func:`hnnkit.data.load_trajectories`);
    ``sha256``, if given, is the file's expected digest.

    Raises:
        DataFileError: when a data file or the recording cannot be read (or has changed).
    """
    if spec.file is not None:
        return load_trajectories(spec.file, test_fraction=spec.test_fraction, sha256=sha256)
    if spec.system == MEASURED:
        return real_pendulum()
    custom = spec.params or spec.system == CUSTOM
    system: Any = system_of(spec) if custom else spec.system
    return generate(system, seed=seed, cache=True, **spec.generate_kwargs())


def build_model(
    kind: str,
    dim: int,
    hidden: tuple[int, ...] | None = None,
    seed: int = 0,
    activation: str | None = None,
    system: HamiltonianSystem | None = None,
) -> torch.nn.Module:
    """The registered model ``kind`` (:mod:`hnnkit.models.registry`) initialised from ``seed``;
    ``hidden`` and ``activation`` go to the models that take them (``None``: the model's own
    default, which lives in its builder only), ``system`` (the data's true system) to a model
    that needs it (the ``lnn``)."""
    gen = torch.Generator().manual_seed(seed)
    shared = {"hidden": hidden, "activation": activation}
    shared = {k: v for k, v in shared.items() if v is not None}
    return models.build_with_shared_options(kind, dim, generator=gen, system=system, **shared)


def model_from_spec(
    spec: ModelSpec, dim: int, seed: int, *, system: HamiltonianSystem | None = None
) -> torch.nn.Module:
    """The untrained model of ``spec`` for phase-space dimension ``dim``; ``system`` (the
    data's true system, :func:`model_system`) goes to a model that needs it.

    Raises:
        UnknownNameError: if the model is not registered (the message lists those that are).
        HnnkitValueError: if the model needs a system it cannot use (``lnn`` without one).
    """
    kw = spec.kwargs
    hidden = kw.get("hidden")
    return build_model(
        spec.name,
        dim,
        None if hidden is None else tuple(hidden),
        seed,
        kw.get("activation"),
        system=system,
    )


def model_system(model: str, data: DataSpec) -> HamiltonianSystem | None:
    """The true system of ``data`` if model ``model`` needs one
    (:attr:`~hnnkit.models.ModelEntry.needs_system`), else ``None`` (not built)."""
    return system_of(data) if models.get_model(model).needs_system else None


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


def loss_config(train: TrainSpec) -> dict[str, Any]:
    """What a run's ``config.json`` records of its (resolved) loss: ``through_step: true``, or
    ``loss`` when it is not ``derivative``, and ``loss_options`` when the loss has options."""
    cfg: dict[str, Any] = {}
    if train.through_step:
        cfg["through_step"] = True
    elif train.loss not in (None, DERIVATIVE):
        cfg["loss"] = train.loss
    if train.loss_options:
        cfg["loss_options"] = dict(train.loss_options)
    return cfg


def check_loss(train: TrainSpec, data: Dataset) -> None:
    """Refuse a loss that is not registered (:data:`hnnkit.train.LOSSES`), one that needs
    the forward differences' intervals (``through-step``) on data without them, or data the
    loss cannot read (a ``rollout`` longer than the trajectories)."""
    loss = get_loss(train.loss or DERIVATIVE)
    if "step" in loss.requires and data.step is None:
        raise HnnkitValueError(
            f"loss {train.loss!r} needs targets that are forward differences (as the "
            "real-pendulum recording's); these data hold exact derivatives: use 'derivative'"
        )
    if loss.check_data is not None:
        loss.check_data(data, loss.resolve_options(train.loss_options))


def train_model(
    exp: Experiment,
    data: Dataset,
    run_dir: Path | None,
    device: torch.device,
    *,
    quiet: bool = True,
    checkpoint_every: int | None = None,
    config: dict[str, Any] | None = None,
    log_every: int | None = None,
    resume: bool = True,
) -> FitResult:
    """Build ``exp``'s model and fit it to ``data`` in ``run_dir`` (resuming a checkpoint there
    unless ``resume`` is false; ``None``: in memory, writing no file). Training settings ``exp`` leaves ``None`` are the model's
    registered defaults (:func:`~hnnkit.experiments.spec.resolve_train`); ``log_every``
    defaults to a fortieth of the steps."""
    exp = resolve_train(exp)
    check_loss(exp.train, data)
    tr = exp.train
    assert tr.steps is not None and tr.optimizer is not None and tr.weight_decay is not None
    assert tr.loss is not None
    system = model_system(exp.model.name, exp.data)
    model = model_from_spec(exp.model, data.dim, exp.seed, system=system).to(device)
    return training.fit(
        model,
        data,
        loss=tr.loss,
        loss_options=tr.loss_options,
        optimizer=tr.optimizer,
        lr=tr.lr,
        steps=tr.steps,
        batch_size=tr.batch_size,
        weight_decay=tr.weight_decay,
        seed=exp.seed,
        log_every=max(1, tr.steps // 40) if log_every is None else log_every,
        checkpoint_every=checkpoint_every,
        run_dir=run_dir,
        resume=resume,
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
    exp = resolve_train(exp)
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
    cfg.update(loss_config(tr))
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
        UnknownNameError: if the model is not registered.
    """
    exp = resolve_train(exp)  # the hash and the files record the settings used
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
    metrics, rollouts = evaluate_experiment(exp, model, data)
    if figures is not None and rollouts is not None:
        task = task_for_data(exp.data)
        rollout_panels(
            rollouts,
            figures / "rollouts",
            title=exp.run_name,
            orbit=task is not None and task.orbit_plot,
        )
    return metrics


def evaluate_experiment(
    exp: Experiment, model: torch.nn.Module, data: Dataset
) -> tuple[dict[str, Any], Rollouts | None]:
    """``exp``'s evaluation of a trained ``model``: the metrics that ``exp.eval`` names and, under
    the corrected protocol, the rollouts they were scored on (``None`` under the original one)."""
    kind = exp.model.name
    task = task_for_data(exp.data)  # the protocol of the experiment's system, if a task has it
    system = system_of(exp.data)
    wanted = exp.eval.metrics
    found: dict[str, Any] = dict(loss_metrics(model, data, through_step=exp.train.through_step))
    if exp.eval.protocol == "corrected":
        corr, rollouts = evaluate_corrected(
            system,
            {kind: model},
            data,
            t_span=eval_span(exp),
            energy=None if task is None else task.energy,
            **({} if exp.eval.n_points is None else {"n_points": exp.eval.n_points}),
        )
        found.update(corr[kind])
    else:
        rollouts = None
        noise = float(exp.data.noise_std or 0.0)
        orig, _ = evaluate_original(
            system,
            {kind: model},
            data,
            OriginalProtocol() if task is None else task.original,
            seed=exp.data_seed,
            noise_std=noise,
        )
        if "skipped" in orig[kind]:  # a one-step map: the reason goes in the metrics
            found["original_protocol"] = orig[kind]["skipped"]
        else:
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
    if "original_protocol" in found:
        metrics["original_protocol"] = found["original_protocol"]
    if isinstance(model, DissipativeHNN):
        metrics["dissipation_rate"] = dissipation(model, data, system)["rate"]
    return metrics, rollouts


# --- the run directory of `hnnkit train` ------------------------------------------------------


def kan_model(kan: dict[str, Any], dim: int, generator: torch.Generator | None = None, **extra):
    """The untrained KAN-HNN of a run's ``kan`` settings (``widths``, ``grid``, ``dissipative``)."""
    return models.build_model(
        "kan",
        dim,
        generator=torch.Generator() if generator is None else generator,
        widths=kan["widths"],
        grid=kan["grid"],
        dissipative=bool(kan.get("dissipative")),
        **extra,
    )


def train_kan(
    exp: Experiment,
    kan: dict[str, Any],
    data: Dataset,
    device: torch.device,
    out: Path,
    *,
    config: dict[str, Any],
    resume: bool = False,
    log_every: int = 100,
    quiet: bool = True,
) -> tuple[FitResult, dict[str, Any]]:
    """Train ``exp``'s KAN-HNN with the ``kan`` schedule (restarts, grid, L1, pruning) in ``out``.

    The run's files are every model's: ``checkpoint.pt`` (written by :func:`hnnkit.train.fit`
    at each stage of the schedule, so ``resume`` continues a killed run at step granularity;
    at the end it also holds the pruned weights, the whole history, the ``kan`` summary and
    the :data:`hnnkit.symbolic.RUN_ENTRY` that ``hnnkit symbolic`` reads) and ``log.csv``. A
    finished run resumed trains no further. Returns the result and the ``kan`` summary
    (``steps``, ``restart_objectives``, ``restart_chosen``, and the pruned edges and nodes).
    """
    tr = resolve_train(exp).train
    assert tr.steps is not None and tr.optimizer is not None and tr.weight_decay is not None
    ckpt = out / CHECKPOINT
    if resume and ckpt.is_file():
        state = load_checkpoint(ckpt)
        if "kan" in state and RUN_ENTRY in state:  # finished: nothing left to train
            model = kan_model(kan, data.dim)
            model.load_state_dict(state["model"])
            write_log(out / LOG, state["history"])
            return FitResult(model=model, history=state["history"]), dict(state["kan"])
        if SCHEDULE not in state:
            raise HnnkitValueError(
                f"cannot resume {out}: its checkpoint was written before --model kan runs could "
                "resume (it holds no training schedule); pass --force to retrain it"
            )
    x_train = data.split("train")[0].to(device, torch.float64)
    reg = kan_regularizer(x_train, kan["l1"]) if kan["l1"] > 0 else None

    def build(r: int):
        gen = torch.Generator().manual_seed(restart_seed(exp.seed, r))
        return kan_model(kan, data.dim, gen, x=x_train, device=device), reg

    model, log = train_with_restarts(
        build,
        data,
        steps=tr.steps,
        restarts=kan["restarts"],
        grids=(kan["grid"],),
        log_every=log_every,
        quiet=quiet,
        fit_options={
            "optimizer": tr.optimizer,
            "lr": tr.lr,
            "batch_size": tr.batch_size,
            "weight_decay": tr.weight_decay,
            "seed": exp.seed,
            "config": config,
        },
        checkpoint=ckpt,
        resume=resume,
    )
    model = model.cpu()
    pruned = model.energy_net.prune(x_train.cpu()) if kan["prune"] else None
    extra = finish_kan_checkpoint(out, model, data, log, pruned)
    return FitResult(model=model, history=log["history"], seconds=log["seconds"]), extra


def finish_kan_checkpoint(
    run_dir: Path, model: torch.nn.Module, data: Dataset, log: dict[str, Any], pruned: Any = None
) -> dict[str, Any]:
    """Complete a trained KAN's ``checkpoint.pt`` in ``run_dir`` and write its ``log.csv``.

    The checkpoint gets ``model``'s (pruned) weights, the schedule's whole history and time,
    the ``kan`` summary (``steps``, ``restart_objectives``, ``restart_chosen``, and with
    ``pruned``, a :class:`~hnnkit.models.kan.PruneResult`, the pruned edges and nodes) and the
    :data:`hnnkit.symbolic.RUN_ENTRY` that ``hnnkit symbolic`` reads. Returns the summary.
    """
    summary: dict[str, Any] = {
        "steps": log["steps"],
        "restart_objectives": log["restart_objectives"],
        "restart_chosen": log.get("restart_chosen", 0),
    }
    if pruned is not None:
        summary["pruned_edges"] = [list(e) for e in pruned.edges]
        summary["pruned_nodes"] = [list(n) for n in pruned.nodes]
    update_checkpoint(
        run_dir / CHECKPOINT,
        model=model.state_dict(),
        step=log["steps"],
        history=log["history"],
        seconds=log["seconds"],
        kan=summary,
        **{RUN_ENTRY: kan_run_entry(model, data, weights=False)},
    )
    write_log(run_dir / LOG, log["history"])
    return summary


def train_run(
    exp: Experiment,
    data: Dataset,
    out: Path,
    device: torch.device,
    *,
    config: dict[str, Any],
    resume: bool = False,
    log_every: int = 100,
    quiet: bool = True,
) -> tuple[FitResult, dict[str, Any]]:
    """Train ``exp`` into the run directory ``out`` as ``hnnkit train`` does; returns the result
    and the metrics.

    Writes ``config.json`` (``config`` with the dataset's config and the provenance),
    ``checkpoint.pt`` and ``log.csv`` (through :func:`train_model`, or :func:`train_kan` for a
    ``kan`` model, whose schedule is ``config["kan"]``), ``metrics.json`` (the losses, the
    training time, a ``dhnn``'s learned dissipation rate, a KAN's ``kan`` summary) and the
    loss curve.
    """
    atomic_write_json(
        out / "config.json", {**config, "dataset": data.config, "provenance": provenance()}
    )
    kind, extra = exp.model.name, {}
    if kind == "kan":
        res, extra = train_kan(
            exp,
            config["kan"],
            data,
            device,
            out,
            config=config,
            resume=resume,
            log_every=log_every,
            quiet=quiet,
        )
    else:
        res = train_model(
            exp, data, out, device, quiet=quiet, config=config, log_every=log_every, resume=resume
        )
    through_step = resolve_train(exp).train.through_step
    metrics: dict[str, Any] = dict(loss_metrics(res.model, data, through_step=through_step))
    metrics["train_seconds"] = res.seconds
    if kind == "dhnn":
        metrics["dissipation_rate"] = dissipation(res.model, data, None)["rate"]
    if extra:
        metrics["kan"] = extra
    atomic_write_json(out / "metrics.json", metrics)
    title = f"{config.get('system')} {kind}: loss vs step"
    loss_curves({kind: res.history}, out / "loss", title=title)
    return res, metrics
