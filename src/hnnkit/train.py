"""Training: one loop for every model, with logging, atomic checkpoints and resume.

The loss is the mean squared error between the model's vector field and the target
derivatives, for the baseline and the HNN alike (``L2_loss`` in greydanus/hamiltonian-nn
``utils.py``: the mean over all elements).
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .data import Dataset
from .errors import DataFileError, HnnkitValueError, NonFiniteLossError, check_choice
from .files import atomic_write, atomic_write_text
from .integrate import step_slope

OPTIMIZERS = ("adam", "lbfgs")
CHECKPOINT = "checkpoint.pt"
LOG = "log.csv"

Callback = Callable[[int, float], None]


@dataclass
class FitResult:
    """What :func:`fit` returns.

    Attributes:
        model: the trained model (the same object that was passed in).
        history: one dict per logged step: ``step``, ``train_loss``, ``test_loss``, ``seconds``.
        train_loss: final derivative MSE on the whole training split.
        test_loss: final derivative MSE on the whole test split.
        seconds: wall time of the optimisation loop (this call only, not earlier resumed parts).
    """

    model: nn.Module
    history: list[dict[str, float]] = field(default_factory=list)
    train_loss: float = math.nan
    test_loss: float = math.nan
    seconds: float = 0.0


def derivative_loss(model: nn.Module, x: Tensor, dx: Tensor, step: Tensor | None = None) -> Tensor:
    """Mean squared error between the model's prediction of ``dx`` and ``dx``.

    The prediction is ``model.vector_field(None, x)``, or, when ``step`` ``(N, 1)`` is given
    (forward-difference targets), the slope of one RK4 step of the model's flow over it
    (:func:`hnnkit.integrate.step_slope`).
    """
    if step is None:
        pred = model.vector_field(None, x)
    else:
        pred = step_slope(model.vector_field, x, step)
    return (pred - dx).pow(2).mean()


def _model_dtype_device(model: nn.Module) -> tuple[torch.dtype, torch.device]:
    p = next(model.parameters(), None)
    if p is None:
        raise HnnkitValueError(f"model {type(model).__name__} has no parameters to train")
    return p.dtype, p.device


def _make_optimizer(name: str, params, lr: float, weight_decay: float, lbfgs_max_iter: int):
    if name == "adam":
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
    dataset: Dataset,
    *,
    optimizer: str = "adam",
    lr: float = 1e-3,
    steps: int = 2000,
    batch_size: int | None = None,
    weight_decay: float = 0.0,
    seed: int = 0,
    log_every: int = 100,
    checkpoint_every: int | None = None,
    run_dir: str | os.PathLike | None = None,
    resume: bool = False,
    regularizer: Callable[[nn.Module], Tensor] | None = None,
    through_step: bool = False,
    lbfgs_max_iter: int = 20,
    callbacks: Sequence[Callback] = (),
    quiet: bool = True,
    config: dict[str, Any] | None = None,
) -> FitResult:
    r"""Train ``model`` to match ``dataset``'s derivatives.

    Args:
        model: anything with ``vector_field(t, x)`` and parameters (Baseline, HNN, ...).
            Data are cast to the model's dtype and device.
        dataset: the data; trains on ``dataset.split("train")``.
        optimizer: ``"adam"`` (default, as in the paper) or ``"lbfgs"`` (full batch, strong
            Wolfe line search, ``lbfgs_max_iter`` inner iterations per step).
        lr: learning rate (default 1e-3).
        steps: optimisation steps (default 2000).
        batch_size: minibatch size drawn without replacement each step from a seeded
            generator; ``None`` (default) for full batch.
        weight_decay: L2 penalty (Adam's ``weight_decay``; added to the loss for L-BFGS).
        seed: seeds the minibatch generator. Model initialisation is the caller's: pass a
            ``torch.Generator`` to the model's constructor.
        log_every: compute the test loss and log every this many steps (and at the end).
            The test split is not touched at other steps.
        checkpoint_every: write ``checkpoint.pt`` every this many steps (default: every
            ``log_every``); needs ``run_dir``.
        run_dir: directory for ``log.csv`` and ``checkpoint.pt``. ``None``: nothing is written.
        resume: continue from ``run_dir/checkpoint.pt`` if it exists. The result equals an
            uninterrupted run with the same arguments.
        regularizer: ``model -> scalar`` added to the training loss (e.g. L1 on a KAN).
        through_step: for a dataset whose targets are forward differences (``dataset.step``
            set, e.g. the real pendulum): compare them with one RK4 step of the model's flow
            over each point's interval, so the model learns the vector field rather than
            the forward difference's distortion of it (4 field evaluations per prediction).
        callbacks: called as ``cb(step, loss)`` after every step.
        quiet: no progress bar when ``True``.
        config: extra JSON-able settings stored in the checkpoint (model description etc.).

    Returns:
        :class:`FitResult`.

    Raises:
        HnnkitValueError: on invalid arguments or a checkpoint that does not match them.
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
    if resume and run_dir is None:
        raise HnnkitValueError("resume=True needs run_dir, the directory holding checkpoint.pt")
    dtype, device = _model_dtype_device(model)
    x_train, dx_train = (v.to(device=device, dtype=dtype) for v in dataset.split("train"))
    x_test, dx_test = (v.to(device=device, dtype=dtype) for v in dataset.split("test"))
    n_train = x_train.shape[0]
    h_train = h_test = None
    if through_step:
        h_train, h_test = (
            dataset.split_step(part).to(device=device, dtype=dtype) for part in ("train", "test")
        )
    if batch_size is not None and not (isinstance(batch_size, int) and 1 <= batch_size):
        raise HnnkitValueError(
            f"batch_size must be a positive integer or None (full batch), got {batch_size!r}"
        )
    full_batch = batch_size is None or batch_size >= n_train
    if optimizer == "lbfgs" and not full_batch:
        raise HnnkitValueError("optimizer='lbfgs' needs full-batch training; set batch_size=None")
    checkpoint_every = checkpoint_every or log_every

    settings = {
        "optimizer": optimizer,
        "lr": lr,
        "steps": steps,
        "batch_size": batch_size,
        "weight_decay": weight_decay,
        "seed": seed,
        "lbfgs_max_iter": lbfgs_max_iter,
    }
    if through_step:  # only when set, so that older checkpoints still resume
        settings["through_step"] = True
    params = [p for p in model.parameters() if p.requires_grad]
    opt = _make_optimizer(optimizer, params, lr, weight_decay, lbfgs_max_iter)
    gen = torch.Generator().manual_seed(seed)
    history: list[dict[str, float]] = []
    start = 0
    run_path = Path(run_dir) if run_dir is not None else None
    if run_path is not None:
        run_path.mkdir(parents=True, exist_ok=True)
        if resume and (run_path / CHECKPOINT).exists():
            state = resume_checkpoint(run_path / CHECKPOINT, settings)
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            gen.set_state(state["generator"])
            start, history = state["step"], list(state["history"])
        elif not resume:
            (run_path / CHECKPOINT).unlink(missing_ok=True)

    def train_loss_fn(xb: Tensor, dxb: Tensor, hb: Tensor | None) -> Tensor:
        loss = derivative_loss(model, xb, dxb, hb)
        if regularizer is not None:
            loss = loss + regularizer(model)
        if optimizer == "lbfgs" and weight_decay:
            loss = loss + 0.5 * weight_decay * sum(p.pow(2).sum() for p in params)
        return loss

    def evaluate_split(x: Tensor, dx: Tensor, h: Tensor | None) -> float:
        return float(derivative_loss(model, x, dx, h).detach())

    def save(step: int) -> None:
        if run_path is None:
            return
        state = {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "generator": gen.get_state(),
            "step": step,
            "history": history,
            "settings": settings,
            "config": config or {},
        }
        atomic_write(run_path / CHECKPOINT, lambda p: torch.save(state, p))
        _write_log(run_path / LOG, history)

    bar = None
    if not quiet:
        from tqdm.auto import tqdm

        # disable=None: no bar when stderr is not a terminal (a log file gets no redraws)
        bar = tqdm(
            total=steps,
            initial=start,
            desc=type(model).__name__,
            unit="step",
            leave=False,
            disable=None,
        )
    t0 = time.perf_counter()
    model.train()
    for step in range(start + 1, steps + 1):
        if full_batch:
            xb, dxb, hb = x_train, dx_train, h_train
        else:
            idx = torch.randperm(n_train, generator=gen)[:batch_size].to(device)
            xb, dxb = x_train[idx], dx_train[idx]
            hb = None if h_train is None else h_train[idx]

        if optimizer == "lbfgs":

            def closure(xb: Tensor = xb, dxb: Tensor = dxb, hb: Tensor | None = hb) -> Tensor:
                opt.zero_grad(set_to_none=True)
                loss = train_loss_fn(xb, dxb, hb)
                loss.backward()
                return loss

            loss_value = float(opt.step(closure).detach())
        else:
            opt.zero_grad(set_to_none=True)
            loss = train_loss_fn(xb, dxb, hb)
            loss.backward()
            loss_value = float(loss.detach())
            if math.isfinite(loss_value):
                opt.step()
        if not math.isfinite(loss_value):
            raise NonFiniteLossError(
                step,
                loss_value,
                str(run_path / CHECKPOINT)
                if run_path and (run_path / CHECKPOINT).exists()
                else None,
            )
        for cb in callbacks:
            cb(step, loss_value)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.3e}", refresh=False)
        if step % log_every == 0 or step == steps:
            history.append(
                {
                    "step": step,
                    "batch_loss": loss_value,
                    "train_loss": evaluate_split(x_train, dx_train, h_train),
                    "test_loss": evaluate_split(x_test, dx_test, h_test),
                    "seconds": time.perf_counter() - t0,
                }
            )
        if step % checkpoint_every == 0 or step == steps:
            save(step)
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - t0
    model.eval()
    result = FitResult(model=model, history=history, seconds=seconds)
    result.train_loss = evaluate_split(x_train, dx_train, h_train)
    result.test_loss = evaluate_split(x_test, dx_test, h_test)
    if run_path is not None and steps == start:
        _write_log(run_path / LOG, history)
    return result


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


def _write_log(path: Path, history: list[dict[str, float]]) -> None:
    buf = io.StringIO()
    cols = ["step", "batch_loss", "train_loss", "test_loss", "seconds"]
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    for row in history:
        w.writerow({k: row.get(k) for k in cols})
    atomic_write_text(path, buf.getvalue())
