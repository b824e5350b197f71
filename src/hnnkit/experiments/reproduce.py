"""``hnnkit reproduce``: train, evaluate and report every task of the paper."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch

from ..data import Dataset, generate, real_pendulum
from ..errors import DataFileError, HnnkitValueError, UnknownNameError
from ..evaluate import (
    PROTOCOLS,
    aggregate,
    divergence_rollouts,
    energy_decay_rate,
    evaluate_corrected,
    evaluate_original,
    loss_metrics,
    recording_rollouts,
)
from ..files import (
    DirectoryLock,
    atomic_write_json,
    atomic_write_text,
    describe_os_error,
    dumps,
    remove_stale_temporaries,
)
from ..metrics import mean_sem
from ..models import HNN, Baseline, DissipativeHNN
from ..report import (
    divergence_figure,
    energy_curves,
    html_report,
    loss_curves,
    markdown_table,
    provenance,
    rollout_panels,
)
from ..systems import get_system
from ..train import CHECKPOINT, fit
from .tasks import PROFILES, TASKS, Task

#: Tasks implemented in their own modules: name → "module:function" taking (out_dir, profile, seeds, quiet).
EXTRA_TASKS: dict[str, str] = {
    "pixel-pendulum": "hnnkit.experiments.pixel_pendulum:reproduce_task",
    "kan-spring": "hnnkit.experiments.kan_spring:reproduce_task",
}
ALL_TASKS = (*TASKS, *EXTRA_TASKS)  # as shipped; parse_tasks reads EXTRA_TASKS afresh
MODELS = ("baseline", "hnn")  # the default; a task may add "dhnn" (Task.models)
#: The dissipative HNN's form in ``hnnkit reproduce``: the paper's (Sosanya & Greydanus 2022).
DHNN_FORM = "helmholtz"


#: pip names of optional dependencies whose module is named otherwise
_PIP_NAMES = {"kan": "pykan", "PIL": "pillow", "sklearn": "scikit-learn", "yaml": "pyyaml"}


def _pip_name(module: str) -> str:
    """The ``pip install`` name of the top-level ``module``."""
    return _PIP_NAMES.get(module, module)


def _available_extra(name: str) -> tuple[Callable[..., dict[str, Any]] | None, str | None]:
    """``(runner, None)`` for an extra task, or ``(None, reason)`` when an optional dependency
    it needs is not installed.

    Raises:
        HnnkitValueError: when the task's module cannot be imported for any other reason
            (an import inside hnnkit fails, the runner is missing): a broken installation.
    """
    import importlib

    module, fn = EXTRA_TASKS[name].split(":")
    try:
        return getattr(importlib.import_module(module), fn), None
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing and missing != "hnnkit" and missing != module.split(".")[0]:
            pip = _pip_name(missing)
            return None, f"needs the optional package {pip!r}; pip install {pip}"
        raise HnnkitValueError(
            f"task {name} cannot be loaded ({exc}); the hnnkit installation is broken, reinstall it"
        ) from exc
    except (ImportError, AttributeError) as exc:
        raise HnnkitValueError(
            f"task {name} cannot be loaded ({type(exc).__name__}: {exc}); the hnnkit "
            "installation is broken, reinstall it"
        ) from exc


def _all_tasks() -> tuple[str, ...]:
    return (*TASKS, *EXTRA_TASKS)


def parse_tasks(spec: str | None) -> list[str]:
    """``"spring,pendulum"`` → ``["spring", "pendulum"]``; ``None`` → every task.

    Empty items (``"spring,,pendulum,"``) are ignored and repeats dropped; a list with no task
    at all is refused.

    Raises:
        HnnkitValueError: on an empty list. UnknownNameError: on an unknown task.
    """
    if spec is None or spec == "all":
        return list(_all_tasks())
    names = list(dict.fromkeys(s.strip() for s in spec.split(",") if s.strip()))
    if not names:
        raise HnnkitValueError(
            f"no task given in --tasks {spec!r}; pass a comma-separated list of: "
            f"{', '.join(_all_tasks())} (or leave --tasks out to run them all)"
        )
    for n in names:
        if n not in _all_tasks():
            raise UnknownNameError("task", n, _all_tasks())
    return names


#: the cells of a model that the report's table shows
_TABLE_CELLS = ("train_loss", "test_loss", "energy")


def _move_aside(path: Path) -> Path:
    """Rename a corrupted ``path`` to ``path.corrupt`` (``.corrupt.1``, … if taken); return it."""
    target = path.with_name(path.name + ".corrupt")
    n = 0
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt.{n}")
    path.replace(target)
    return target


def _read_json(path: Path) -> tuple[Any, str | None]:
    """``(data, None)``, or ``(None, why)`` when ``path`` is not valid JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8")), None
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"is not valid JSON ({exc})"


def entry_problem(name: str, entry: Any) -> str | None:
    """Why a results.json ``entry`` of task ``name`` cannot be shown in the report, or ``None``."""
    if not isinstance(entry, dict):
        return "it is not a table"
    if "skipped" in entry:
        return None
    models = entry.get("models")
    if not isinstance(models, dict) or not models:
        return "it has no models"
    if name in TASKS and not set(TASKS[name].models) <= set(models):
        missing = sorted(set(TASKS[name].models) - set(models))
        return f"it lacks the model(s) {', '.join(missing)}"
    for kind, m in models.items():
        if not isinstance(m, dict):
            return f"model {kind} is not a table"
        for key in _TABLE_CELLS:
            if not isinstance(m.get(key), dict) or "mean" not in m[key]:
                return f"model {kind} lacks {key}"
    if "profile" not in entry:
        return "it lacks its profile"
    return None


def _cell_ok(cell: Any) -> bool:
    return isinstance(cell, dict) and "mean" in cell and "sem" in cell


def seed_problem(task: Task, metrics: Any) -> str | None:
    """Why a per-seed ``metrics.json`` cannot be summarised for ``task``, or ``None``."""
    if not isinstance(metrics, dict) or not isinstance(metrics.get("models"), dict):
        return "has no models"
    for kind in task.models:
        m = metrics["models"].get(kind)
        if not isinstance(m, dict):
            return f"lacks the model {kind}"
        losses, corrected = m.get("losses"), m.get("corrected")
        if not isinstance(losses, dict) or not all(
            _cell_ok(losses.get(k)) for k in ("train_loss", "test_loss")
        ):
            return f"lacks {kind}'s losses"
        if not isinstance(corrected, dict) or not all(
            _cell_ok(corrected.get(k))
            for k in ("energy", "rollout_mse", "valid_time", "energy_drift")
        ):
            return f"lacks {kind}'s corrected-protocol metrics"
        if not _cell_ok(m.get("original_energy")) or not isinstance(
            m.get("train_seconds"), int | float
        ):
            return f"lacks {kind}'s original-protocol energy or training time"
    return None


def _seed_profile(name: str, metrics: dict[str, Any]) -> str | None:
    """The profile a per-seed ``metrics.json`` was trained with: recorded, or told by its steps."""
    if metrics.get("profile") in PROFILES:
        return metrics["profile"]
    try:
        history = next(iter(metrics["models"].values()))["history"]
        steps = max(int(h["step"]) for h in history)
    except (KeyError, TypeError, ValueError, StopIteration, AttributeError):
        return None
    found = [p for p in PROFILES if TASKS[name].for_profile(p).training.steps == steps]
    return found[0] if len(found) == 1 else None


def _seed_files(task_dir: Path) -> list[tuple[Path, Any]]:
    """``(path, data)`` of ``seed0/metrics.json``, ``seed1/…``: up to the first missing or unreadable."""
    found = []
    while (path := task_dir / f"seed{len(found)}" / "metrics.json").is_file():
        data, bad = _read_json(path)
        if bad is not None or not isinstance(data, dict):
            break
        found.append((path, data))
    return found


def rebuild_entry(out: Path, name: str) -> tuple[dict[str, Any] | None, str]:
    """A task's results.json entry rebuilt from ``out/name/seedN/metrics.json`` without training.

    Returns ``(entry, where)`` or ``(None, why not)``.
    """
    seeds = _seed_files(out / name)
    if not seeds:
        return None, f"there are no per-seed results in {out / name}"
    if name in TASKS:
        profiles = {_seed_profile(name, m) for _, m in seeds}
        if len(profiles) != 1 or None in profiles:
            return None, f"the profile of the per-seed results in {out / name} cannot be told"
        profile = profiles.pop()
        task = TASKS[name].for_profile(profile)
        for path, m in seeds:
            if (problem := seed_problem(task, m)) is not None:
                return None, f"{path} {problem}"
        entry = summarise(task, [m for _, m in seeds], profile)
        entry["n_seeds"] = len(seeds)
        return entry, f"{len(seeds)} per-seed metrics.json in {out / name}"
    profile = seeds[0][1].get("profile")
    if profile not in PROFILES:
        return None, f"{seeds[0][0]} does not record its profile"
    runner, reason = _available_extra(name)
    if runner is None:
        return None, reason or "not available"
    try:  # every seed is finished: the runner only reads and pools them
        entry = runner(out / name, profile=profile, seeds=len(seeds), quiet=True, device="cpu")
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        return None, f"its per-seed results cannot be pooled ({type(exc).__name__}: {exc})"
    entry.setdefault("profile", profile)
    entry.setdefault("n_seeds", len(seeds))
    return entry, f"{len(seeds)} per-seed metrics.json in {out / name}"


def load_results(
    out: Path, *, force: bool = False, echo: Callable[[str], None] = print
) -> dict[str, Any]:
    """Read ``out/results.json``.

    A corrupted file is kept as ``results.json.corrupt`` and the entries rebuilt from the
    per-seed ``metrics.json`` files (see :func:`rebuild_entry`); tasks that cannot be rebuilt
    are recomputed when asked for. ``force`` is accepted for compatibility and changes nothing.
    """
    del force
    path = out / "results.json"
    if not path.exists():
        return {"tasks": {}}
    data, bad = _read_json(path)
    if bad is None and not (isinstance(data, dict) and isinstance(data.get("tasks"), dict)):
        bad = "has no 'tasks' table"
    if bad is None:
        return data
    aside = _move_aside(path)
    results: dict[str, Any] = {"tasks": {}}
    notes = []
    for name in _all_tasks():
        if not (out / name).is_dir():
            continue
        entry, where = rebuild_entry(out, name)
        if entry is not None:
            results["tasks"][name] = entry
        else:
            notes.append(f"{name} ({where}; it is recomputed when asked for)")
    rebuilt = ", ".join(results["tasks"]) or "no task"
    echo(
        f"{path} {bad}: kept it as {aside}, and rebuilt the entries of {rebuilt} from the "
        "per-seed metrics.json files" + (f"; not rebuilt: {'; '.join(notes)}" if notes else "")
    )
    atomic_write_json(path, results)
    return results


def check_out_dir(out: Path) -> None:
    """Refuse an ``--out`` that exists and is not a directory."""
    if out.exists() and not out.is_dir():
        raise HnnkitValueError(
            f"--out {out} is a file; pass a directory (it is created if missing)"
        )


def resolve_device(device: str) -> torch.device:
    """``cpu``/``cuda``/``auto`` → a device, refusing ``cuda`` without CUDA."""
    if device not in ("cpu", "cuda", "auto"):
        raise UnknownNameError("device", device, ("cpu", "cuda", "auto"))
    if device == "cuda" and not torch.cuda.is_available():
        raise HnnkitValueError(
            "--device cuda was asked for but CUDA is not available; use --device cpu"
        )
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _dataset(task: Task, seed: int) -> Dataset:
    if task.system is None:
        return real_pendulum()
    return generate(task.system, seed=seed, cache=True, **task.data)


def build_model(
    kind: str, dim: int, hidden: tuple[int, ...], seed: int, activation: str = "tanh"
) -> torch.nn.Module:
    """A ``"hnn"``, ``"dhnn"`` or ``"baseline"`` model initialised from ``seed`` (its own generator)."""
    g = torch.Generator().manual_seed(seed)
    if kind == "hnn":
        return HNN(dim, hidden=hidden, activation=activation, generator=g)
    if kind == "dhnn":
        return DissipativeHNN(
            dim, form=DHNN_FORM, hidden=hidden, activation=activation, generator=g
        )
    return Baseline(dim, hidden=hidden, activation=activation, generator=g)


class MeasuredDataMissing(DataFileError):
    """A task's measured data set cannot be found: the task is skipped, not failed."""


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

    A cached file that cannot be summarised (unreadable, or lacking a model or a metric) is
    reported and recomputed: the models already trained resume from their checkpoints. A
    corrupted checkpoint is moved aside (``checkpoint.pt.corrupt``) and its model retrained.

    Raises:
        MeasuredDataMissing: when the task's measured data cannot be found.
    """
    seed_dir = out / task.name / f"seed{seed}"
    done = seed_dir / "metrics.json"
    if done.exists():
        cached, problem = _read_json(done)
        if problem is not None:
            echo(f"[{task.name}] {done} {problem}; moved it to {_move_aside(done).name}")
        elif (problem := seed_problem(task, cached)) is None:
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
        data = _dataset(task, seed)
    except DataFileError as exc:
        if task.system is None:
            raise MeasuredDataMissing(str(exc)) from exc
        raise
    system = get_system(task.system) if task.system else None
    tr = task.training
    models, histories, seconds = {}, {}, {}
    for kind in task.models:
        model = build_model(kind, data.dim, tr.hidden, seed).to(device)

        def train(model: torch.nn.Module = model, kind: str = kind) -> Any:
            return fit(
                model,
                data,
                steps=tr.steps,
                lr=tr.lr,
                batch_size=tr.batch_size,
                weight_decay=tr.weight_decay_for(kind),
                seed=seed,
                log_every=max(1, tr.steps // 40),
                checkpoint_every=max(1, tr.steps // 10),  # resumable; each save costs an fsync
                run_dir=seed_dir / kind,
                resume=True,
                quiet=quiet,
                through_step=kind in task.through_step,
            )

        try:
            res = train()
        except DataFileError as exc:
            checkpoint = seed_dir / kind / CHECKPOINT
            if not checkpoint.is_file():
                raise
            aside = _move_aside(checkpoint)
            echo(
                f"[{task.name}] seed {seed}: the {kind} checkpoint {checkpoint} is corrupted "
                f"({exc}); moved it to {aside.name}, retraining {kind} from the start"
            )
            res = train()
        models[kind], histories[kind], seconds[kind] = res.model.cpu(), res.history, res.seconds
    noise = float(task.data.get("noise_std", 0.0))
    orig, _ = evaluate_original(task.name, system, models, data, seed=seed, noise_std=noise)
    corr, rollouts = evaluate_corrected(task.name, system, models, data, t_span=task.eval_span)
    metrics: dict[str, Any] = {"seed": seed, "models": {}, "truth": corr["truth"]}
    if profile is not None:  # lets a lost results.json be rebuilt from this file
        metrics["profile"] = profile
    for kind in task.models:
        losses = loss_metrics(models[kind], data, through_step=kind in task.through_step)
        metrics["models"][kind] = {
            "losses": losses,
            "original_energy": orig[kind]["energy"],
            "corrected": corr[kind],
            "history": histories[kind],
            "train_seconds": seconds[kind],
        }
        if isinstance(models[kind], DissipativeHNN):
            metrics["models"][kind]["dissipation"] = _dissipation(models[kind], data, system)
    energy_rollouts = rollouts
    if task.system is None:  # a measured recording: the energy over all of it, from its first point
        energy_rollouts = recording_rollouts(models, data)
        metrics["energy_decay"] = {
            "truth": energy_decay_rate(energy_rollouts.t, energy_rollouts.true_energy),
            **{
                k: energy_decay_rate(energy_rollouts.t, e)
                for k, e in energy_rollouts.model_energy.items()
            },
        }
    if seed == 0 or not (out / task.name / "figures").exists():
        figs = out / task.name / "figures"
        if "dhnn" in task.models:
            test_t = data.t[0, data.test_mask[0]] - data.t[0, 0]
            energy_curves(
                energy_rollouts,
                figs / "energy",
                title=f"{task.name}: energy along rollouts"
                + (" over the whole recording" if task.system is None else " (first test state)"),
                ylabel="2.4(1 − cos q) + p²" if task.system is None else "true H",
                shade=(float(test_t[0]), float(test_t[-1])) if task.system is None else None,
            )
        orbit = task.name in ("two-body", "three-body")
        rollout_panels(
            rollouts,
            figs / "rollouts",
            title=f"{task.name}: rollouts far past the training window",
            orbit=orbit,
        )
        loss_curves(histories, figs / "loss", title=f"{task.name}: loss vs step")
    if task.name == "three-body":
        # the review's point: the HNN conserves its own energy, yet its trajectory diverges
        x0 = data.test_initial_states[0]
        div = divergence_rollouts(system, models, x0, torch.linspace(0.0, 10.0, 500))
        metrics["divergence"] = {
            k: div[k]
            for k in ("divergence_time", "energy_drift", "learned_energy_drift", "threshold")
        }
        if seed == 0:
            divergence_figure(
                div,
                out / task.name / "figures" / "divergence",
                title="three-body (first test state): the HNN conserves its own energy, "
                "yet its trajectory diverges",
                orbit_until=task.data["t_span"][1],
            )
    atomic_write_json(done, metrics)
    return metrics


def _dissipation(model: DissipativeHNN, data: Dataset, system: Any) -> dict[str, Any]:
    """The learned friction rate (mean of ``dissipation_rate`` over the held-out states) and the true gamma."""
    x, _ = data.split("test")
    if data.x_clean is not None:
        x = data.x_clean[data.test_mask]
    x = x.to(next(model.parameters()).dtype)
    rate = model.dissipation_rate(x).detach()
    gamma = system.params().get("gamma") if system is not None else None
    return {"rate": mean_sem(rate), "gamma_true": gamma}


def _num(value: Any) -> float:
    """A metric read back from strict JSON: ``null`` (a NaN when written) → NaN."""
    return math.nan if value is None else value


def _cell(cell: Any) -> dict[str, Any]:
    """A ``{"mean", "sem", "values"?}`` cell with ``null`` → NaN (a missing cell: NaN ± NaN)."""
    if not isinstance(cell, dict):
        return {"mean": math.nan, "sem": math.nan}
    out = {"mean": _num(cell.get("mean")), "sem": _num(cell.get("sem"))}
    if isinstance(cell.get("values"), list):
        out["values"] = [_num(v) for v in cell["values"]]
    return out


def _aggregate(cells: list[Any]) -> dict[str, float]:
    """:func:`hnnkit.evaluate.aggregate` of cells read back from JSON (``null`` → NaN)."""
    return aggregate([_cell(c) for c in cells])


def _within_run(cells: list[dict[str, float]]) -> dict[str, float]:
    """Mean over seeds of each seed's value, with the root-mean-square of their own ± (the
    original code reports one run's standard error, not a spread over seeds)."""
    n = len(cells)
    cells = [_cell(c) for c in cells]
    return {
        "mean": sum(c["mean"] for c in cells) / n,
        "sem": (sum(c["sem"] ** 2 for c in cells) / n) ** 0.5,
    }


def summarise(task: Task, per_seed: list[dict[str, Any]], profile: str) -> dict[str, Any]:
    """Aggregate seeds into the results.json entry of one task (values in the paper's scaling)."""
    s = 1.0 / task.scale if task.scale else 1.0
    scale = task.scale

    def scaled(cell: dict[str, float]) -> dict[str, float]:
        return {"mean": _num(cell["mean"]) * scale, "sem": _num(cell["sem"]) * scale}

    entry: dict[str, Any] = {"scale": scale, "paper": task.paper, "models": {}, "profile": profile}
    for kind in task.models:
        rows = [m["models"][kind] for m in per_seed]
        entry["models"][kind] = {
            "n_seeds": len(rows),
            "train_loss": scaled(
                _aggregate(
                    [
                        {
                            "mean": r["losses"]["train_loss"]["mean"],
                            "sem": r["losses"]["train_loss"]["sem"],
                        }
                        for r in rows
                    ]
                )
            ),
            "test_loss": scaled(
                _aggregate(
                    [
                        {
                            "mean": r["losses"]["test_loss"]["mean"],
                            "sem": r["losses"]["test_loss"]["sem"],
                        }
                        for r in rows
                    ]
                )
            ),
            "energy": scaled(_aggregate([r["corrected"]["energy"] for r in rows])),
            "rollout_mse": scaled(_aggregate([r["corrected"]["rollout_mse"] for r in rows])),
            "valid_time": _aggregate([r["corrected"]["valid_time"] for r in rows]),
            "energy_drift": _aggregate([r["corrected"]["energy_drift"] for r in rows]),
            **{  # the system's other conserved quantities (angular momentum), the step's symplecticity
                key: _aggregate([r["corrected"][key] for r in rows])
                for key in rows[0]["corrected"]
                if ((key.endswith("_drift") and key != "energy_drift") or key == "symplecticity")
                and all(key in r["corrected"] for r in rows)  # seeds cached by an older version
            },
            "original": {
                "train_loss": scaled(_within_run([r["losses"]["train_loss"] for r in rows])),
                "test_loss": scaled(_within_run([r["losses"]["test_loss"] for r in rows])),
                "energy": scaled(_within_run([r["original_energy"] for r in rows])),
                "note": "mean over seeds; ± is the original's within-run error (over test points "
                "for losses, over groups of 3 trajectories for energy), root-mean-square over seeds",
            },
            "train_seconds": sum(r["train_seconds"] for r in rows),
        }
        if all("dissipation" in r for r in rows):
            entry["models"][kind]["dissipation_rate"] = _aggregate(
                [r["dissipation"]["rate"] for r in rows]
            )
            entry["models"][kind]["gamma_true"] = rows[0]["dissipation"]["gamma_true"]
    if all("energy_decay" in m for m in per_seed):
        keys = per_seed[0]["energy_decay"]
        entry["energy_decay_rate"] = {
            k: sum(_num(m["energy_decay"].get(k)) for m in per_seed) / len(per_seed) for k in keys
        }
    if all("truth" in m for m in per_seed):  # drifts along the reference trajectories
        entry["truth"] = {
            key: _aggregate([m["truth"][key] for m in per_seed])
            for key in per_seed[0]["truth"]
            if all(key in m["truth"] for m in per_seed)
        }
    entry["config"] = {
        "data": task.data,
        "training": task.training.__dict__,
        "eval_span": task.eval_span,
    }
    del s
    return entry


def _task_names(tasks: str | list[str] | None) -> list[str]:
    if not isinstance(tasks, list):
        return parse_tasks(tasks)
    return parse_tasks(",".join(tasks))


def _not_in_table(results: dict[str, Any]) -> str:
    """Markdown lines naming the tasks that results.json holds but the table cannot show."""
    lines = [
        f"- {name}: {entry['skipped']}"
        for name, entry in results.get("tasks", {}).items()
        if isinstance(entry, dict) and "skipped" in entry
    ]
    return "\n**Not in the table**\n\n" + "\n".join(lines) + "\n" if lines else ""


def _check_other_entries(
    out: Path, results: dict[str, Any], names: list[str], echo: Callable[[str], None]
) -> bool:
    """Rebuild (or mark as skipped, with a message) the incomplete entries of tasks not asked for.

    Returns whether ``results`` changed.
    """
    changed = False
    for name, entry in list(results["tasks"].items()):
        if name in names or (problem := entry_problem(name, entry)) is None:
            continue
        rebuilt, where = rebuild_entry(out, name) if name in _all_tasks() else (None, "")
        changed = True
        if rebuilt is not None:
            results["tasks"][name] = rebuilt
            echo(
                f"[{name}] the entry in results.json is incomplete ({problem}); rebuilt it from {where}"
            )
            continue
        why = (
            f"its entry in results.json is incomplete ({problem}) and cannot be rebuilt "
            f"({where or 'not a task of this version'}); rerun `hnnkit reproduce --tasks {name} "
            f"--out {out}` to recompute it"
        )
        results["tasks"][name] = {
            "skipped": why,
            "profile": entry.get("profile") if isinstance(entry, dict) else None,
            "incomplete": entry,
        }
        echo(f"[{name}] {why}")
    return changed


def _write_entry(
    out: Path, name: str, entry: dict[str, Any], meta: dict[str, Any], results: dict[str, Any]
) -> dict[str, Any]:
    """Write task ``name``'s ``entry`` into ``out/results.json``, merged into the file as it is
    now (entries that another run wrote are kept); returns the merged results as written."""
    path = out / "results.json"
    current = results
    if path.exists():
        data, bad = _read_json(path)
        if bad is None and isinstance(data, dict) and isinstance(data.get("tasks"), dict):
            current = data
    current["tasks"][name] = entry
    current.update(meta)
    atomic_write_json(path, current)
    return json.loads(dumps(current))


def reproduce(
    out: str | Path = "results",
    *,
    tasks: str | list[str] | None = None,
    profile: str = "quick",
    seeds: int | None = None,
    device: str = "cpu",
    force: bool = False,
    quiet: bool = False,
    protocol: str = "corrected",
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the reproduction and write ``results.json``, ``table.md``, figures and ``report.html``.

    Every check on the arguments happens before any training. Finished seeds are reused
    (``DIR/TASK/seedN/metrics.json``), killed training resumes from its checkpoint, and
    tasks already in ``results.json`` are skipped unless ``force``.

    Guarantees: one run at a time holds ``out`` (:class:`hnnkit.files.DirectoryLock`; a second
    gets an error naming the holder); each task's entry is merged into ``results.json`` as it
    is on disk, so entries written by other runs are never dropped; a corrupted
    ``results.json`` is kept aside and rebuilt from the per-seed files; a corrupted checkpoint
    or per-seed file is reported and retrained; an incomplete entry is recomputed; a task is
    skipped only when its measured data or an optional dependency is absent, and the report
    says so.
    """
    out = Path(out)
    names = _task_names(tasks)
    if protocol not in PROTOCOLS:
        raise UnknownNameError("protocol", protocol, PROTOCOLS)
    if profile not in PROFILES:
        raise UnknownNameError("profile", profile, PROFILES)
    n_seeds = seeds if seeds is not None else {"smoke": 1, "quick": 1, "paper": 3}[profile]
    if not isinstance(n_seeds, int) or n_seeds < 1:
        raise HnnkitValueError(f"--seeds must be a positive integer, got {seeds!r}")
    check_out_dir(out)
    dev = resolve_device(device)
    # import the extra tasks now: a broken installation fails before any training
    extras = {name: _available_extra(name) for name in names if name not in TASKS}
    with ExitStack() as stack:
        try:
            stack.enter_context(DirectoryLock(out, "hnnkit reproduce"))
        except OSError as exc:
            raise HnnkitValueError(describe_os_error(exc)) from exc
        stale = remove_stale_temporaries(out)
        if stale:
            echo(f"removed {len(stale)} temporary file(s) left in {out} by a killed run")
        return _reproduce_locked(
            out, names, extras, profile, n_seeds, dev, force, quiet, protocol, echo
        )


def _reproduce_locked(
    out: Path,
    names: list[str],
    extras: dict[str, tuple[Callable[..., dict[str, Any]] | None, str | None]],
    profile: str,
    n_seeds: int,
    dev: torch.device,
    force: bool,
    quiet: bool,
    protocol: str,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    results = load_results(out, echo=echo)
    if _check_other_entries(out, results, names, echo):
        atomic_write_json(out / "results.json", results)
    if force:
        import shutil

        for name in names:
            shutil.rmtree(out / name, ignore_errors=True)
            results["tasks"].pop(name, None)
    meta = {
        "profile": profile,
        "protocol": protocol,
        "seeds": n_seeds,
        "device": str(dev),
        "provenance": provenance(),
    }
    results.update(meta)
    figures: dict[str, list[Path]] = {}
    t_all = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        entry = results["tasks"].get(name)
        problem = None if entry is None else entry_problem(name, entry)
        if problem is not None:
            echo(
                f"[{name}] the entry in results.json is incomplete ({problem}); recomputing it "
                "from the per-seed results (training only what is missing)"
            )
        elif (
            entry is not None
            and entry.get("profile") == profile
            and entry.get("n_seeds", n_seeds) == n_seeds
            and "skipped" not in entry
        ):
            echo(f"[{name}] already in {out / 'results.json'}; skipping (use --force to recompute)")
            meta["seconds_total"] = time.perf_counter() - t_all
            results = _write_entry(out, name, entry, meta, results)
            continue
        if name in TASKS:
            task = TASKS[name].for_profile(profile)
            try:
                per_seed = []
                for seed in range(n_seeds):
                    echo(
                        f"[{name}] seed {seed + 1}/{n_seeds}: training {', '.join(task.models)} ({task.training.steps} steps)"
                    )
                    per_seed.append(run_seed(task, seed, out, dev, quiet, echo, profile))
                entry = summarise(task, per_seed, profile)
                entry["n_seeds"] = n_seeds
            except MeasuredDataMissing as exc:
                entry = {"skipped": str(exc), "profile": profile}
                echo(f"[{name}] skipped: {exc}")
        else:
            runner, reason = extras[name]
            if runner is None:
                entry = {"skipped": reason, "profile": profile}
                echo(f"[{name}] skipped: {reason}")
            else:
                echo(f"[{name}] running")
                entry = runner(
                    out / name, profile=profile, seeds=n_seeds, quiet=quiet, device=str(dev)
                )
                entry.setdefault("profile", profile)
                entry.setdefault("n_seeds", n_seeds)
        meta["seconds_total"] = time.perf_counter() - t_all
        results = _write_entry(out, name, entry, meta, results)
        echo(f"[{name}] done in {time.perf_counter() - t0:.1f} s")
    for name in results["tasks"]:
        figs = out / name / "figures"
        if figs.is_dir():
            figures[name] = sorted(p for p in figs.iterdir() if p.suffix in (".png", ".gif"))
    table = markdown_table(results) + _not_in_table(results)
    atomic_write_text(out / "table.md", table)
    atomic_write_text(out / "report.html", html_report(results, figures))
    echo("")
    echo(table)
    echo(f"Wrote {out / 'results.json'}, {out / 'table.md'} and {out / 'report.html'}")
    return results
