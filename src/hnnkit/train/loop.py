"""Training: one loop for every model and dataset, with logging, atomic checkpoints and resume.

:func:`fit` reads the dataset through its batch adapter (:mod:`hnnkit.train.batches`) and
minimises a registered loss (:mod:`hnnkit.train.losses`): ``derivative`` (default; the MSE
between the model's vector field and the target derivatives, ``L2_loss`` in
greydanus/hamiltonian-nn ``utils.py``), ``through-step`` or ``autoencoder``.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import DataFileError, HnnkitValueError, NonFiniteLossError, check_choice
from ..files import atomic_write, atomic_write_text
from ..models.maps import is_map
from .batches import Batch, batch_size_of, split_batches, take
from .losses import Loss, LossFn, get_loss

OPTIMIZERS = ("adam", "lbfgs")
CHECKPOINT = "checkpoint.pt"
LOG = "log.csv"
#: The entries of every checkpoint :func:`fit` writes (``extra`` adds others).
CHECKPOINT_ENTRIES = (
    "model",
    "optimizer",
    "generator",
    "step",
    "seconds",
    "history",
    "settings",
    "config",
)
#: The columns of ``log.csv``, in order (a history row's other keys follow them).
LOG_COLUMNS = ("step", "batch_loss", "train_loss", "test_loss", "seconds")

Callback = Callable[[int, float], None]


class StopTraining(Exception):
    """Raised by a callback to end :func:`fit` after the current step (e.g. on a plateau).

    The step is logged and checkpointed like the last one.
    """


@dataclass
class Progress:
    """What a ``monitor`` of :func:`fit` sees at a log step.

    Attributes:
        model: the model being trained.
        step: the step just taken.
        batch_loss: its training objective (loss plus regulariser).
        train, test: the full train and test batches.
        loss: the training loss.
        generator: the minibatch generator (a monitor may draw from it).
        batch_size: the minibatch size (``None``: full batch).
    """

    model: nn.Module
    step: int
    batch_loss: float
    train: Batch
    test: Batch
    loss: Loss
    generator: torch.Generator
    batch_size: int | None


Monitor = Callable[[Progress], Mapping[str, float]]


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        model: the trained model (the same object that was passed in).
        history: one dict per logged step: ``step``, ``batch_loss``, ``train_loss``,
            ``test_loss``, ``seconds`` (training time since the start, resumed parts included).
        train_loss: final loss on the whole training split.
        test_loss: final loss on the whole test split.
        seconds: wall time of the optimisation loop (this call only, not earlier resumed parts).
    """

    model: nn.Module
    history: list[dict[str, float]] = field(default_factory=list)
    train_loss: float = math.nan
    test_loss: float = math.nan
    seconds: float = 0.0


def _model_dtype_device(model: nn.Module) -> tuple[torch.dtype, torch.device]:
    p = next(model.parameters(), None)
    if p is None:
        raise HnnkitValueError(f"model {type(model).__name__} has no parameters to train")
    return p.dtype, p.device


def _make_optimizer(
    name: str, params, lr: float, weight_decay: float, lbfgs_max_iter: int, fused: bool = True
):
    if name == "adam":
        if not fused:
            return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
        try:  # one fused kernel per step instead of a loop of small ops (~10% per step here)
            return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
        except (RuntimeError, ValueError):  # a device or dtype the fused kernel lacks
            return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.LBFGS(
        params,
        lr=lr,
        max_iter=lbfgs_max_iter,
        history_size=10,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-32,
        tolerance_change=1e-32,
    )


def fit(
    model: nn.Module,
    dataset: Any,
    *,
    loss: str | LossFn | Loss = "derivative",
    loss_options: Mapping[str, Any] | None = None,
    optimizer: str = "adam",
    lr: float = 1e-3,
    steps: int = 2000,
    batch_size: int | None = None,
    weight_decay: float = 0.0,
    seed: int = 0,
    generator: torch.Generator | None = None,
    first_step: int = 1,
    fused: bool = True,
    log_every: int = 100,
    checkpoint_every: int | None = None,
    run_dir: str | os.PathLike | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    regularizer: Callable[[nn.Module], Tensor] | None = None,
    through_step: bool = False,
    lbfgs_max_iter: int = 20,
    callbacks: Sequence[Callback] = (),
    monitor: Monitor | None = None,
    quiet: bool = True,
    config: dict[str, Any] | None = None,
    save_initial: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> FitResult:
    r"""Train ``model`` on ``dataset`` by minimising ``loss``.

    Args:
        model: the model; data are cast to its dtype and device. For the ``derivative``
            loss anything with ``vector_field(t, x)`` (Baseline, HNN, ...).
        dataset: any dataset with a batch adapter (:func:`hnnkit.train.register_batches`):
            a :class:`~hnnkit.data.Dataset` or a pixel-pendulum data set.
        loss: a registered loss name (:data:`hnnkit.train.LOSSES`: ``"derivative"``,
            ``"through-step"``, ``"autoencoder"``, or one added with
            :func:`~hnnkit.train.register_loss`) or a function ``(model, batch) -> scalar``.
            ``through-step`` is for a dataset whose targets are forward differences
            (``dataset.step`` set, e.g. the real pendulum): they are compared with one RK4
            step of the model's flow over each point's interval, so the model learns the
            vector field rather than the forward difference's distortion of it.
            ``rollout`` (:mod:`hnnkit.train.rollout`) trains through ``k`` steps of an
            integrator, or of a one-step map's own step, on windows of consecutive states.
        loss_options: the options of a loss that takes them (``rollout``: ``k``, ``method``,
            ``substeps``, ``rtol``, ``atol``); those left out take the loss's defaults. A loss
            with its own batch builder reads ``dataset`` through it (and may bind a one-step
            map's time step to the data's spacing).
        optimizer: ``"adam"`` (default, as in the paper) or ``"lbfgs"`` (full batch, strong
            Wolfe line search, ``lbfgs_max_iter`` inner iterations per step).
        lr: learning rate (default 1e-3).
        steps: the last step (default 2000).
        batch_size: minibatch size drawn without replacement each step (``randperm``);
            ``None`` (default) for full batch.
        weight_decay: L2 penalty (Adam's ``weight_decay``; added to the loss for L-BFGS).
        seed: seeds the minibatch generator. Model initialisation is the caller's: pass a
            ``torch.Generator`` to the model's constructor.
        generator: draw the minibatches from this generator instead of a fresh one seeded
            with ``seed`` (its state is checkpointed and restored on resume).
        first_step: index of the first step (default 1; 0 gives ``steps + 1`` updates, as
            the original pixel code's ``range(steps + 1)``).
        fused: use Adam's fused kernel where available (default); ``False`` for the plain loop.
        log_every: log every this many steps (and at the last); by default the log holds the
            batch objective and the loss over the whole train and test splits, which are not
            touched at other steps.
        checkpoint_every: write the checkpoint every this many steps (default: every
            ``log_every``) and at the last step; needs ``run_dir`` or ``checkpoint``.
        run_dir: directory for ``log.csv`` and ``checkpoint.pt``. ``None``: nothing is written.
        checkpoint: the checkpoint file (default ``run_dir/checkpoint.pt``).
        resume: continue from the checkpoint if it exists. The result equals an
            uninterrupted run with the same arguments.
        regularizer: ``model -> scalar`` added to the training loss (e.g. L1 on a KAN).
        through_step: alias of ``loss="through-step"``.
        callbacks: called as ``cb(step, loss)`` after every step; one may raise
            :class:`StopTraining` to end the run after that step.
        monitor: ``Progress -> {column: value}``, what a log row holds besides ``step`` and
            ``seconds`` (default: ``batch_loss``, ``train_loss``, ``test_loss`` over the
            whole splits). With a monitor the final losses are the last row's.
        quiet: no progress bar when ``True``.
        config: extra JSON-able settings stored in the checkpoint (model description etc.).
        save_initial: also write the checkpoint before the first step (replacing one there,
            unless resuming from it), so that a run killed before its first periodic
            checkpoint resumes from its start; a multi-stage schedule needs this.
        extra: more entries of the checkpoint (tensors, numbers, strings, lists and dicts of
            them, as ``torch.load(weights_only=True)`` reads), e.g. a schedule's position.

    Returns:
        :class:`FitResult`.

    Raises:
        HnnkitValueError: on invalid arguments, a loss that needs entries the data lack, or
            a checkpoint that does not match the arguments.
        NonFiniteLossError: when the loss becomes NaN/inf; the last good checkpoint is kept.
    """
    check_choice("optimizer", optimizer, OPTIMIZERS)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise HnnkitValueError(f"steps must be a non-negative integer, got {steps!r}")
    if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        raise HnnkitValueError(f"lr must be a finite number > 0, got {lr!r}")
    if not (
        isinstance(weight_decay, int | float) and math.isfinite(weight_decay) and weight_decay >= 0
    ):
        raise HnnkitValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
    if log_every < 1:
        raise HnnkitValueError(f"log_every must be >= 1, got {log_every!r}")
    if first_step not in (0, 1):
        raise HnnkitValueError(f"first_step must be 0 or 1, got {first_step!r}")
    if resume and run_dir is None and checkpoint is None:
        raise HnnkitValueError("resume=True needs run_dir, the directory holding checkpoint.pt")
    if through_step:
        if loss not in ("derivative", "through-step"):
            raise HnnkitValueError(f"through_step=True is loss='through-step', not {loss!r}")
        loss = "through-step"
    kind = "map" if is_map(model) else "field"
    loss_fn = get_loss(loss).with_options(loss_options, kind)
    loss_fn.check_model(model)
    dtype, device = _model_dtype_device(model)
    if loss_fn.batches is not None:
        train, test = loss_fn.batches(model, dataset, device, dtype, loss_fn.options)
    else:
        train, test = split_batches(dataset, device, dtype)
    loss_fn.check(train)
    n_train = batch_size_of(train)
    if batch_size is not None and not (isinstance(batch_size, int) and 1 <= batch_size):
        raise HnnkitValueError(
            f"batch_size must be a positive integer or None (full batch), got {batch_size!r}"
        )
    full_batch = batch_size is None or batch_size >= n_train
    if optimizer == "lbfgs" and not full_batch:
        raise HnnkitValueError("optimizer='lbfgs' needs full-batch training; set batch_size=None")
    checkpoint_every = checkpoint_every or log_every
    clash = sorted(set(extra or ()) & set(CHECKPOINT_ENTRIES))
    if clash:
        raise HnnkitValueError(f"extra checkpoint entries {clash} would replace fit's own")

    settings: dict[str, Any] = {
        "optimizer": optimizer,
        "lr": lr,
        "steps": steps,
        "batch_size": batch_size,
        "weight_decay": weight_decay,
        "seed": seed,
        "lbfgs_max_iter": lbfgs_max_iter,
    }
    # entries that differ from the first format only when set, so that older checkpoints resume
    if loss_fn.name == "through-step":
        settings["through_step"] = True
    elif loss_fn.name != "derivative":
        settings["loss"] = loss_fn.name
    if loss_fn.options:
        settings["loss_options"] = dict(loss_fn.options)
    if first_step != 1:
        settings["first_step"] = first_step
    if not fused and optimizer == "adam":
        settings["fused"] = False
    params = [p for p in model.parameters() if p.requires_grad]
    opt = _make_optimizer(optimizer, params, lr, weight_decay, lbfgs_max_iter, fused)
    gen = generator if generator is not None else torch.Generator().manual_seed(seed)
    history: list[dict[str, float]] = []
    start, elapsed = first_step - 1, 0.0
    run_path = Path(run_dir) if run_dir is not None else None
    ckpt_path = Path(checkpoint) if checkpoint is not None else None
    if ckpt_path is None and run_path is not None:
        ckpt_path = run_path / CHECKPOINT
    if run_path is not None:
        run_path.mkdir(parents=True, exist_ok=True)
    resumed = False
    if ckpt_path is not None:
        if resume and ckpt_path.exists():
            resumed = True
            state = resume_checkpoint(ckpt_path, settings)
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            gen.set_state(state["generator"])
            start, history = state["step"], list(state["history"])
            elapsed = float(state.get("seconds", 0.0))
        elif not resume and not save_initial:
            ckpt_path.unlink(missing_ok=True)

    def train_loss_fn(batch: Batch) -> Tensor:
        value = loss_fn(model, batch)
        if regularizer is not None:
            value = value + regularizer(model)
        if optimizer == "lbfgs" and weight_decay:
            value = value + 0.5 * weight_decay * sum(p.pow(2).sum() for p in params)
        return value

    def split_loss(batch: Batch) -> float:
        return float(loss_fn(model, batch).detach())

    def default_monitor(p: Progress) -> dict[str, float]:
        return {
            "batch_loss": p.batch_loss,
            "train_loss": split_loss(train),
            "test_loss": split_loss(test),
        }

    watch = monitor or default_monitor

    def save(step: int) -> None:
        if ckpt_path is None:
            return
        state = {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "generator": gen.get_state(),
            "step": step,
            "seconds": elapsed + time.perf_counter() - t0,
            "history": history,
            "settings": settings,
            "config": config or {},
            **(extra or {}),
        }
        atomic_write(ckpt_path, lambda p: torch.save(state, p))
        if run_path is not None:
            write_log(run_path / LOG, history)

    bar = None
    if not quiet:
        from tqdm.auto import tqdm

        # disable=None: no bar when stderr is not a terminal (a log file gets no redraws)
        bar = tqdm(
            total=steps,
            initial=max(start, 0),
            desc=type(model).__name__,
            unit="step",
            leave=False,
            disable=None,
        )
    t0 = time.perf_counter()
    if save_initial and not resumed:
        save(start)
    model.train()
    for step in range(start + 1, steps + 1):
        if full_batch:
            batch = train
        else:
            batch = take(train, torch.randperm(n_train, generator=gen)[:batch_size].to(device))

        if optimizer == "lbfgs":

            def closure(batch: Batch = batch) -> Tensor:
                opt.zero_grad(set_to_none=True)
                value = train_loss_fn(batch)
                value.backward()
                return value

            loss_value = float(opt.step(closure).detach())
        else:
            opt.zero_grad(set_to_none=True)
            value = train_loss_fn(batch)
            value.backward()
            loss_value = float(value.detach())
            if math.isfinite(loss_value):
                opt.step()
        if not math.isfinite(loss_value):
            raise NonFiniteLossError(
                step,
                loss_value,
                str(ckpt_path) if ckpt_path is not None and ckpt_path.exists() else None,
            )
        stop = False
        try:
            for cb in callbacks:
                cb(step, loss_value)
        except StopTraining:
            stop = True
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.3e}", refresh=False)
        if step % log_every == 0 or step == steps or stop:
            progress = Progress(model, step, loss_value, train, test, loss_fn, gen, batch_size)
            row = {"step": step, **watch(progress)}
            row["seconds"] = elapsed + time.perf_counter() - t0
            history.append(row)
        if step % checkpoint_every == 0 or step == steps or stop:
            save(step)
        if stop:
            break
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - t0
    model.eval()
    result = FitResult(model=model, history=history, seconds=seconds)
    if monitor is None:
        result.train_loss = split_loss(train)
        result.test_loss = split_loss(test)
    elif history:
        result.train_loss = history[-1].get("train_loss", math.nan)
        result.test_loss = history[-1].get("test_loss", math.nan)
    if run_path is not None and steps == start:
        write_log(run_path / LOG, history)
    return result


def update_checkpoint(path: str | os.PathLike, **entries: Any) -> dict[str, Any]:
    """Replace or add ``entries`` of the checkpoint at ``path`` (atomically); returns the new state.

    For what a run learns after its last :func:`fit` step (a pruned model's weights, the
    full history of a multi-stage schedule, what symbolic extraction reads).

    Raises:
        DataFileError: as :func:`load_checkpoint`.
    """
    state = {**load_checkpoint(path), **entries}
    atomic_write(Path(path), lambda p: torch.save(state, p))
    return state


def resume_checkpoint(path: str | os.PathLike, settings: dict[str, Any]) -> dict[str, Any]:
    """:func:`load_checkpoint`, refusing a checkpoint written with other training ``settings``.

    Raises:
        HnnkitValueError: if the checkpoint's ``settings`` differ from ``settings``.
        DataFileError: as :func:`load_checkpoint`.
    """
    state = load_checkpoint(path)
    if state.get("settings") != settings:
        raise HnnkitValueError(
            f"cannot resume: {path} was written with {state.get('settings')}, this run asks for "
            f"{settings}; use the same settings, or another output directory"
        )
    return state


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by :func:`fit` with ``weights_only=True``.

    Raises:
        DataFileError: if the file is missing or cannot be read (truncated, not a checkpoint).
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(
            f"checkpoint {path} does not exist; train first with `hnnkit train --out {path.parent}`"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged files
        raise DataFileError(
            f"checkpoint {path} is corrupted or not an hnnkit checkpoint ({type(exc).__name__}: {exc}); "
            "delete it and retrain (or resume from an earlier copy)"
        ) from exc
    if not isinstance(state, dict) or "model" not in state:
        raise DataFileError(f"checkpoint {path} is not an hnnkit checkpoint (no 'model' entry)")
    return state


def write_log(path: str | os.PathLike, history: Sequence[Mapping[str, float]]) -> None:
    """Write ``history`` (:attr:`FitResult.history`) atomically as ``log.csv``.

    The columns are :data:`LOG_COLUMNS` present in the rows (all of them for an empty
    history), then any other keys of the rows in order of appearance.
    """
    keys = [k for row in history for k in row]
    cols = [c for c in LOG_COLUMNS if not history or c in keys]
    cols += [k for k in dict.fromkeys(keys) if k not in cols]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    for row in history:
        w.writerow({k: row.get(k) for k in cols})
    atomic_write_text(Path(path), buf.getvalue())
