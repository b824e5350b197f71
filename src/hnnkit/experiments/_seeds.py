"""Per-seed runs of the reproduce tasks: the Table 1 tasks' (:func:`run_seed`) and the extra
tasks' (:func:`run_seeds`: reuse finished seeds, publish seed 0's figures)."""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..data.real_pendulum import MEMBER
from ..errors import DataFileError, HnnkitValueError
from ..evaluate import (
    divergence_rollouts,
    energy_decay_rate,
    evaluate_corrected,
    evaluate_original,
    loss_metrics,
    recording_rollouts,
)
from ..files import atomic_write, atomic_write_json
from ..models import DissipativeHNN
from ..report import divergence_figure, energy_curves, loss_curves, rollout_panels
from ..report.results import move_aside, read_json, seed_problem
from ..systems import get_system
from ..train import CHECKPOINT
from .run import dissipation, load_data, train_model
from .spec import Experiment
from .tasks import Task


def run_seeds(
    out_dir: str | Path,
    seeds: int,
    run: Callable[[Path, int], dict[str, Any]],
    echo: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """``run(out_dir/seedN, N)`` for ``N < seeds``, reusing each finished seed's ``metrics.json``.

    An unreadable ``metrics.json`` is moved aside to ``metrics.json.corrupt``, with a message
    through ``echo``, and the seed rerun. Afterwards seed 0's ``figures/`` are copied to
    ``out_dir/figures`` for the report.
    """
    out_dir = Path(out_dir)
    runs = []
    for s in range(seeds):
        seed_dir = out_dir / f"seed{s}"
        done = seed_dir / "metrics.json"
        if done.exists():
            try:
                cached = json.loads(done.read_text(encoding="utf-8"))
                if not isinstance(cached, dict):
                    raise ValueError("not a JSON object")
                runs.append(cached)
                continue
            except (ValueError, UnicodeDecodeError) as exc:
                aside = done.with_name("metrics.json.corrupt")
                done.replace(aside)
                echo(f"{done} is corrupted ({exc}); moved it to {aside.name}, rerunning seed {s}")
        runs.append(run(seed_dir, s))
    src, dst = out_dir / "seed0" / "figures", out_dir / "figures"
    if src.is_dir():
        dst.mkdir(parents=True, exist_ok=True)
        for p in src.iterdir():
            atomic_write(dst / p.name, lambda tmp, p=p: tmp.write_bytes(p.read_bytes()))
    return runs


#: Seconds between two progress lines in a log file (see :class:`Progress`).
PROGRESS_SECONDS = 10.0


#: Set in a worker process of ``hnnkit reproduce --workers``: progress goes out as lines, as
#: bars of several processes would overwrite each other.
LINES_ONLY = False


def log_mode() -> bool:
    """Whether stdout is not a terminal (a log file or a pipe), or this is a worker process of a
    parallel reproduce: progress goes out as lines (:class:`Progress`) instead of progress bars."""
    if LINES_ONLY:
        return True
    try:
        return not sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced or closed stdout
        return True


def _last_step(log: Path | None) -> int | None:
    """The last step recorded in a run's ``log.csv`` (written at each checkpoint)."""
    if log is None:
        return None
    try:
        last = log.read_text(encoding="utf-8").strip().rsplit("\n", 1)[-1]
        return int(last.split(",", 1)[0])
    except (OSError, ValueError):
        return None


class Progress:
    """Progress lines while a long step runs, for a log file: ``label (12 s)`` every
    :data:`PROGRESS_SECONDS`, and ``label: step N/M (12 s)`` as soon as the step that the run's
    ``log`` (``log.csv``, written at each checkpoint, every tenth of the steps) records reaches
    another tenth of ``total``. Silent unless ``enabled``; ``announce``: also print ``label``
    on entry. A context manager."""

    def __init__(
        self,
        echo: Callable[[str], None],
        label: str,
        *,
        enabled: bool,
        log: Path | None = None,
        total: int | None = None,
        every: float = PROGRESS_SECONDS,
        announce: bool = True,
    ) -> None:
        self.echo, self.label, self.enabled, self.announce = echo, label, enabled, announce
        self.log, self.total, self.every = log, total, every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        if self.enabled:
            if self.announce:
                self.echo(self.label)
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        t0 = last = time.perf_counter()
        tenth = 0
        while not self._stop.wait(min(1.0, self.every)):
            now = time.perf_counter()
            step = _last_step(self.log)
            reached = 0 if step is None or not self.total else 10 * step // self.total
            if reached > tenth or now - last >= self.every:
                tenth = max(tenth, reached)
                where = "" if step is None or not self.total else f": step {step}/{self.total}"
                self.echo(f"{self.label}{where} ({now - t0:.0f} s)")
                last = now


#: The one line that makes the measured recording available.
MEASURED_DATA_FIX = (
    f"set HNNKIT_DATA=DIR (a folder holding {MEMBER} or invar_datasets.zip) or connect to the "
    "internet to download it"
)


class MeasuredDataMissing(DataFileError):
    """A task's measured data set cannot be found: the task is skipped, not failed.

    ``cause`` is why it was not found; ``fix`` the one line that fixes it.
    """

    def __init__(self, cause: str, fix: str = MEASURED_DATA_FIX):
        self.cause, self.fix = cause, fix
        super().__init__(f"its measured data were not found ({cause}); {fix}")

    def __reduce__(self):
        return (type(self), (self.cause, self.fix))


def run_seed(
    task: Task,
    seed: int,
    out: Path,
    device: torch.device,
    quiet: bool,
    echo: Callable[[str], None] = print,
    profile: str | None = None,
) -> dict[str, Any]:
    """Train the task's models for one seed, evaluate under both protocols; cached in ``seed{N}/metrics.json``.

    Each model's run is the Experiment :meth:`Task.experiment` (its config hash is recorded).
    A cached file that cannot be summarised (unreadable, or lacking a model or a metric) is
    reported and recomputed: the models already trained resume from their checkpoints. A
    corrupted checkpoint is moved aside (``checkpoint.pt.corrupt``) and its model retrained.

    Raises:
        MeasuredDataMissing: when the task's measured data cannot be found.
    """
    seed_dir = out / task.name / f"seed{seed}"
    done = seed_dir / "metrics.json"
    if done.exists():
        cached, problem = read_json(done)
        if problem is not None:
            echo(f"[{task.name}] {done} {problem}; moved it to {move_aside(done).name}")
        elif (problem := seed_problem(task.models, cached)) is None:
            if profile is not None and cached.get("profile", profile) != profile:
                raise HnnkitValueError(
                    f"{done} was trained with --profile {cached['profile']}, this run asks for "
                    f"--profile {profile}; pass another --out, or --force to retrain {task.name}"
                )
            return cached
        echo(
            f"[{task.name}] {done} {problem}; recomputing it "
            "(trained models resume from their checkpoints)"
        )
    try:
        data = load_data(task.data, seed)
    except DataFileError as exc:
        if task.system is None:
            raise MeasuredDataMissing(str(exc)) from exc
        raise
    system = get_system(task.system) if task.system else None
    lines = log_mode()  # a log file: progress lines (unless quiet), no progress bars
    bars_quiet = quiet or lines

    def stage(label: str, **log: Any) -> Progress:
        return Progress(
            echo, f"[{task.name}] seed{seed}: {label}", enabled=lines and not quiet, **log
        )

    models, histories, seconds = {}, {}, {}
    for kind in task.models:
        exp = task.experiment(kind, seed)
        every = max(1, exp.train.steps // 10)  # resumable; each save costs an fsync

        def train(exp: Experiment = exp, kind: str = kind, every: int = every) -> Any:
            with stage(f"training {kind}", log=seed_dir / kind / "log.csv", total=exp.train.steps):
                return train_model(
                    exp, data, seed_dir / kind, device, quiet=bars_quiet, checkpoint_every=every
                )

        try:
            res = train()
        except DataFileError as exc:
            checkpoint = seed_dir / kind / CHECKPOINT
            if not checkpoint.is_file():
                raise
            aside = move_aside(checkpoint)
            echo(
                f"[{task.name}] seed {seed}: the {kind} checkpoint {checkpoint} is corrupted "
                f"({exc}); moved it to {aside.name}, retraining {kind} from the start"
            )
            res = train()
        models[kind], histories[kind], seconds[kind] = res.model.cpu(), res.history, res.seconds
    noise = float(task.data.noise_std or 0.0)
    energy = task.energy
    with stage("evaluating (original protocol)"):
        orig, _ = evaluate_original(system, models, data, task.original, seed=seed, noise_std=noise)
    with stage("evaluating (corrected protocol)"):
        corr, rollouts = evaluate_corrected(
            system, models, data, t_span=task.eval_span, energy=energy
        )
    metrics: dict[str, Any] = {"seed": seed, "models": {}, "truth": corr["truth"]}
    if profile is not None:  # lets a lost results.json be rebuilt from this file
        metrics["profile"] = profile
    for kind in task.models:
        through_step = kind in task.through_step
        metrics["models"][kind] = {
            "config_hash": task.experiment(kind, seed).config_hash(),
            "losses": loss_metrics(models[kind], data, through_step=through_step),
            # a one-step map has no original-protocol energy: the reason instead
            "original_energy": orig[kind].get(
                "energy", {"mean": math.nan, "sem": math.nan, "skipped": orig[kind].get("skipped")}
            ),
            "corrected": corr[kind],
            "history": histories[kind],
            "train_seconds": seconds[kind],
        }
        if isinstance(models[kind], DissipativeHNN):
            metrics["models"][kind]["dissipation"] = dissipation(models[kind], data, system)
    energy_rollouts = rollouts
    if task.system is None:  # a measured recording: the energy over all of it, from its first point
        energy_rollouts = recording_rollouts(models, data, energy=energy)
        metrics["energy_decay"] = {
            "truth": energy_decay_rate(energy_rollouts.t, energy_rollouts.true_energy),
            **{
                k: energy_decay_rate(energy_rollouts.t, e)
                for k, e in energy_rollouts.model_energy.items()
            },
        }
    if seed == 0 or not (out / task.name / "figures").exists():
        with stage("drawing the figures"):
            _seed_figures(
                task, data, out / task.name / "figures", rollouts, energy_rollouts, histories
            )
    if task.divergence:
        # the review's point: the HNN conserves its own energy, yet its trajectory diverges
        x0 = data.test_initial_states[0]
        with stage("divergence rollouts"):
            div = divergence_rollouts(system, models, x0, torch.linspace(0.0, 10.0, 500))
        metrics["divergence"] = {
            k: div[k]
            for k in ("divergence_time", "energy_drift", "learned_energy_drift", "threshold")
        }
        if seed == 0:
            divergence_figure(
                div,
                out / task.name / "figures" / "divergence",
                title=f"{task.name} (first test state): the HNN conserves its own energy, "
                "yet its trajectory diverges",
                orbit_until=task.data.t_span[1] if task.data.t_span else None,
            )
    atomic_write_json(done, metrics)
    return metrics


def _seed_figures(
    task: Task,
    data: Any,
    figs: Path,
    rollouts: Any,
    energy_rollouts: Any,
    histories: dict[str, Any],
) -> None:
    """Seed 0's figures of a task: energy (with a dhnn), rollouts, losses."""
    unit = "s" if task.system is None else None  # a recording's clock; else the system's units
    if "dhnn" in task.models:
        test_t = data.t[0, data.test_mask[0]] - data.t[0, 0]
        energy_curves(
            energy_rollouts,
            figs / "energy",
            title=f"{task.name}: energy along rollouts"
            + (" over the whole recording" if task.system is None else " (first test state)"),
            ylabel="energy H = 2.4(1 − cos q) + p²" if task.system is None else "energy H",
            shade=(float(test_t[0]), float(test_t[-1])) if task.system is None else None,
            time_unit=unit,
        )
    rollout_panels(
        rollouts,
        figs / "rollouts",
        title=f"{task.name}: rollouts far past the training window",
        orbit=task.orbit_plot,
        time_unit=unit,
    )
    loss_curves(histories, figs / "loss", title=f"{task.name}: loss vs step")
