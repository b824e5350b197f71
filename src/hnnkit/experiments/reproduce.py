"""``hnnkit reproduce``: train, evaluate and report every task of the paper.

Each task's per-seed run of a model is an :class:`~hnnkit.experiments.spec.Experiment`
(:meth:`~hnnkit.experiments.tasks.Task.experiment`, trained by
:func:`hnnkit.experiments.run.train_model`); results.json is read, validated and written by
:mod:`hnnkit.report.results`.
"""

from __future__ import annotations

import json
import os
import pickle
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from .. import models
from ..errors import DataFileError, HnnkitValueError, UnknownNameError
from ..evaluate import PROTOCOLS
from ..files import (
    DirectoryLock,
    atomic_write_json,
    atomic_write_text,
    describe_os_error,
    dumps,
    remove_stale_temporaries,
)
from ..report import html_report, markdown_table, provenance
from ..report import results as res
from ..report.tables import skipped_lines
from ._seeds import MeasuredDataMissing as MeasuredDataMissing
from ._seeds import Progress, log_mode
from ._seeds import run_seed as run_seed
from .run import DHNN_FORM as DHNN_FORM
from .run import build_model as build_model
from .run import model_from_spec, model_system, system_of
from .tasks import PROFILES, TASKS, Task, get_task

#: pip names of optional dependencies whose module is named otherwise
PIP_NAMES = {"kan": "pykan", "PIL": "pillow", "sklearn": "scikit-learn", "yaml": "pyyaml"}


def pip_name(module: str) -> str:
    """The ``pip install`` name of the top-level ``module``."""
    return PIP_NAMES.get(module, module)


def _all_tasks() -> tuple[str, ...]:
    return tuple(TASKS)


def _required_models(name: str) -> tuple[str, ...]:
    return TASKS[name].models if name in TASKS else ()


def _missing_dependency(exc: ModuleNotFoundError) -> str | None:
    """The top-level module that ``exc`` says is absent, unless it is hnnkit's own."""
    missing = (exc.name or "").split(".")[0]
    return missing if missing and missing != "hnnkit" else None


def check_task(task: Task) -> None:
    """Refuse a task whose models are not registered, before any training.

    Raises:
        HnnkitValueError: naming the task, the model and the registered models.
    """
    for kind in task.models:
        try:
            models.get_model(kind)
        except UnknownNameError as exc:
            raise HnnkitValueError(
                f"task {task.name}: {exc}; if a plugin registers it, pass it with "
                "`hnnkit --plugin MODULE ...`"
            ) from None


def run_task_runner(
    task: Task, out_dir: Path, *, profile: str, seeds: int, quiet: bool, device: str
) -> dict[str, Any]:
    """The results.json entry of a task with its own ``runner``.

    An absent optional package skips the task (the entry says which ``pip install`` fixes
    it); any other failure to import is an error naming the task and the cause.
    """
    assert task.runner is not None
    try:
        entry = task.runner(out_dir, profile=profile, seeds=seeds, quiet=quiet, device=device)
    except ModuleNotFoundError as exc:
        missing = _missing_dependency(exc)
        if missing is None:
            raise HnnkitValueError(
                f"task {task.name} cannot be loaded ({exc}); the hnnkit installation is "
                "broken, reinstall it"
            ) from exc
        pip = pip_name(missing)
        return {
            "skipped": f"needs the optional package {pip!r} ({exc})",
            "fix": f"pip install {pip}",
            "profile": profile,
        }
    except ImportError as exc:
        raise HnnkitValueError(
            f"task {task.name} cannot be loaded ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(entry, dict):
        raise HnnkitValueError(
            f"task {task.name}: its runner returned {type(entry).__name__}, not a results.json "
            "entry (a dict with 'models')"
        )
    entry.setdefault("profile", profile)
    entry.setdefault("n_seeds", seeds)
    return entry


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


def entry_problem(name: str, entry: Any, task: Task | None = None) -> str | None:
    """Why a results.json ``entry`` of task ``name`` cannot be shown in the report, or ``None``.

    ``task``: the task as this run trains it (with the models of ``--models`` added); default
    the registered one.
    """
    return res.entry_problem(entry, task.models if task is not None else _required_models(name))


def parse_models(spec: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """The registered phase-space models of ``--models A,B`` (empty for ``None``).

    Raises:
        UnknownNameError: for a model that is not registered (listing those that are).
        HnnkitValueError: for an empty list or a model that does not learn from phase space.
    """
    if spec is None:
        return ()
    names = [n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec)]
    names = list(dict.fromkeys(n for n in names if n))
    if not names:
        raise HnnkitValueError(
            "--models names no model; give registered models, e.g. --models lnn,srnn "
            "(`hnnkit models` lists them)"
        )
    for name in names:
        models.get_model(name, data="phase-space")
    return tuple(names)


def add_models(task: Task, extra: tuple[str, ...]) -> tuple[Task, dict[str, str]]:
    """``task`` with the models ``extra`` added to its own, and the ones it cannot take.

    A model joins with the task's data, evaluation, step budget and model size, and with its own
    registered loss (a one-step map trains through its step) and, when its optimizer differs
    from the task's, its own optimizer, steps and weight decay. A model that cannot be built for
    the task's system (an LNN without a velocity map, on measured data) is left out; the
    returned dict says why, per model. A task with its own runner is returned as it is.
    """
    if task.runner is not None or not extra:
        return task, {}
    added: list[str] = []
    by_model = dict(task.training_by_model)
    left_out: dict[str, str] = {}
    system = system_of(task.data) if not task.data.measured else None
    for name in extra:
        if name in task.models:
            continue
        if models.get_model(name).needs_system and system is None:
            left_out[name] = "it needs the true system (its velocity map); the data are measured"
            continue
        if system is not None:
            try:
                model_from_spec(
                    task.model_spec(name), system.dim, 0, system=model_system(name, task.data)
                )
            except HnnkitValueError as exc:
                left_out[name] = str(exc)
                continue
        own = {"loss": None, "loss_options": {}}
        defaults = models.train_defaults(name)
        if task.training_for(task.models[0]).optimizer != defaults["optimizer"]:
            own |= {"optimizer": None, "steps": None, "weight_decay": None}
        by_model[name] = own
        added.append(name)
    if not added:
        return task, left_out
    return replace(task, models=(*task.models, *added), training_by_model=by_model), left_out


def _seed_profile(name: str, metrics: dict[str, Any]) -> str | None:
    """The profile a per-seed ``metrics.json`` was trained with: recorded, or told by its steps."""
    if metrics.get("profile") in PROFILES:
        return metrics["profile"]
    try:
        history = next(iter(metrics["models"].values()))["history"]
        steps = max(int(h["step"]) for h in history)
    except (KeyError, TypeError, ValueError, StopIteration, AttributeError):
        return None
    found = [p for p in PROFILES if get_task(name).for_profile(p).training.steps == steps]
    return found[0] if len(found) == 1 else None


def _seed_files(task_dir: Path) -> list[tuple[Path, Any]]:
    """``(path, data)`` of ``seed0/metrics.json``, ``seed1/…``: up to the first missing or unreadable."""
    found = []
    while (path := task_dir / f"seed{len(found)}" / "metrics.json").is_file():
        data, bad = res.read_json(path)
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
    if name not in TASKS:
        return None, "not a registered task (is the plugin that registers it loaded?)"
    if TASKS[name].runner is None:
        profiles = {_seed_profile(name, m) for _, m in seeds}
        if len(profiles) != 1 or None in profiles:
            return None, f"the profile of the per-seed results in {out / name} cannot be told"
        profile = profiles.pop()
        task = TASKS[name].for_profile(profile)
        for path, m in seeds:
            if (problem := res.seed_problem(task.models, m)) is not None:
                return None, f"{path} {problem}"
        entry = summarise(task, [m for _, m in seeds], profile)
        entry["n_seeds"] = len(seeds)
        return entry, f"{len(seeds)} per-seed metrics.json in {out / name}"
    profile = seeds[0][1].get("profile")
    if profile not in PROFILES:
        return None, f"{seeds[0][0]} does not record its profile"
    try:  # every seed is finished: the runner only reads and pools them
        entry = run_task_runner(
            TASKS[name], out / name, profile=profile, seeds=len(seeds), quiet=True, device="cpu"
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        return None, f"its per-seed results cannot be pooled ({type(exc).__name__}: {exc})"
    if "skipped" in entry:
        return None, entry["skipped"]
    return entry, f"{len(seeds)} per-seed metrics.json in {out / name}"


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


def summarise(task: Task, per_seed: list[dict[str, Any]], profile: str) -> dict[str, Any]:
    """Aggregate seeds into the results.json entry of one task (values in the paper's scaling)."""
    entry = res.summarise_seeds(
        per_seed, models=task.models, scale=task.scale, paper=task.paper, profile=profile
    )
    entry["config"] = task.config()
    return entry


def _task_names(tasks: str | list[str] | None) -> list[str]:
    if not isinstance(tasks, list):
        return parse_tasks(tasks)
    return parse_tasks(",".join(tasks))


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
    workers: int | None = 1,
    worker_setup: Callable[[], object] | None = None,
    models: str | list[str] | None = None,
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

    ``workers`` above 1 (``None``: one per CPU core and at most one per task on the CPU, 1 on
    an accelerator) runs the tasks to train in that many processes (spawned, one torch thread
    each), with the same numbers as one after the other; this process alone holds ``out`` and writes results.json (in the
    order of ``tasks``), table.md and report.html. A worker process knows only the tasks,
    models and systems that hnnkit and its imported modules register: ``worker_setup``, a
    picklable callable, runs in each worker before its first task (the command line passes
    one that imports the ``--plugin`` modules).

    ``models`` (``--models A,B``) adds registered phase-space models to every task trained on
    phase-space data (:func:`add_models`): they join the long-horizon table and the figures,
    and Table 1 keeps comparing the baseline and the HNN. A task already in ``results.json``
    without them is completed, training only the added models.
    """
    out = Path(out)
    names = _task_names(tasks)
    extra = parse_models(models)
    chosen: dict[str, Task] = {}
    for name in names:
        check_task(get_task(name))
        chosen[name], left_out = add_models(get_task(name), extra)
        for model, why in left_out.items():
            echo(f"[{name}] {model} is not trained on this task: {why}")
    if protocol not in PROTOCOLS:
        raise UnknownNameError("protocol", protocol, PROTOCOLS)
    if profile not in PROFILES:
        raise UnknownNameError("profile", profile, PROFILES)
    n_seeds = seeds if seeds is not None else {"smoke": 1, "quick": 1, "paper": 3}[profile]
    if not isinstance(n_seeds, int) or n_seeds < 1:
        raise HnnkitValueError(f"--seeds must be a positive integer, got {seeds!r}")
    n_workers = _worker_count(workers, len(names))
    check_out_dir(out)
    dev = resolve_device(device)
    if workers is None and dev.type != "cpu":  # one accelerator: its tasks one after the other
        n_workers = 1
    with ExitStack() as stack:
        try:
            stack.enter_context(DirectoryLock(out, "hnnkit reproduce"))
        except OSError as exc:
            raise HnnkitValueError(describe_os_error(exc)) from exc
        stale = remove_stale_temporaries(out)
        if stale:
            echo(f"removed {len(stale)} temporary file(s) left in {out} by a killed run")
        return _reproduce_locked(
            out,
            chosen,
            profile,
            n_seeds,
            dev,
            force,
            quiet,
            protocol,
            echo,
            n_workers,
            worker_setup,
        )


def _reproduce_locked(
    out: Path,
    chosen: dict[str, Task],
    profile: str,
    n_seeds: int,
    dev: torch.device,
    force: bool,
    quiet: bool,
    protocol: str,
    echo: Callable[[str], None],
    workers: int = 1,
    worker_setup: Callable[[], object] | None = None,
) -> dict[str, Any]:
    names = list(chosen)
    rebuild = lambda name: rebuild_entry(out, name)  # noqa: E731
    results = res.load_results(out, rebuild, _all_tasks(), echo)
    if res.repair_entries(
        out,
        results,
        skip=names,
        problem=entry_problem,
        rebuild=lambda n: rebuild(n) if n in _all_tasks() else (None, ""),
        echo=echo,
    ):
        res.write_results(out / res.RESULTS, results)
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
    todo = [n for n in names if not _finished(chosen[n], results["tasks"].get(n), profile, n_seeds)]
    if workers > 1 and len(todo) > 1:
        results = _reproduce_in_workers(
            out, chosen, results, meta, profile, n_seeds, dev, quiet, echo, workers, worker_setup
        )
        names = []  # all run
    for name in names:
        t0 = time.perf_counter()
        entry = results["tasks"].get(name)
        if not _check_entry(out, chosen[name], entry, profile, n_seeds, echo):
            meta["seconds_total"] = time.perf_counter() - t_all
            results = res.write_entry(out, name, entry, meta, results)
            continue
        try:
            entry = _run_task(chosen[name], out, profile, n_seeds, dev, quiet, echo)
        except Exception as exc:  # named here; the error itself goes on to the caller
            echo(f"[{name}] failed: {type(exc).__name__}: {exc}")
            raise
        meta["seconds_total"] = time.perf_counter() - t_all
        if "skipped" not in entry:  # the summary's time of the task
            entry["seconds"] = round(time.perf_counter() - t0, 1)
        results = res.write_entry(out, name, entry, meta, results)
        echo(f"[{name}] done in {time.perf_counter() - t0:.1f} s")
    for name in results["tasks"]:
        figs = out / name / "figures"
        if figs.is_dir():
            figures[name] = sorted(p for p in figs.iterdir() if p.suffix in (".png", ".gif"))
    # the original code's re-run on this machine class, for the summary's verdicts
    reruns = {n: TASKS[n].original_rerun for n in results["tasks"] if n in TASKS}
    table = markdown_table(results, reruns)  # the skipped tasks first, each with its fix
    atomic_write_text(out / "table.md", table)
    atomic_write_text(out / "report.html", html_report(results, figures, reruns=reruns))
    echo("")
    echo(table)
    echo(f"Wrote {out / 'results.json'}, {out / 'table.md'} and {out / 'report.html'}")
    for line in skipped_lines(results):  # last, where the terminal leaves off
        echo(line)
    return results


def _finished(task: Task, entry: Any, profile: str, n_seeds: int) -> bool:
    """Whether a task's results.json ``entry`` is complete, of this profile and seed count."""
    return (
        entry is not None
        and entry_problem(task.name, entry, task) is None
        and entry.get("profile") == profile
        and entry.get("n_seeds", n_seeds) == n_seeds
        and "skipped" not in entry
    )


def _check_entry(
    out: Path, task: Task, entry: Any, profile: str, n_seeds: int, echo: Callable[[str], None]
) -> bool:
    """Whether ``task`` is to be run (its ``entry`` is absent, incomplete or another run's)."""
    name = task.name
    problem = None if entry is None else entry_problem(name, entry, task)
    if problem is not None:
        echo(
            f"[{name}] the entry in results.json is incomplete ({problem}); recomputing it "
            "from the per-seed results (training only what is missing)"
        )
    elif _finished(task, entry, profile, n_seeds):
        echo(f"[{name}] already in {out / 'results.json'}; skipping (use --force to recompute)")
        return False
    return True


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _worker_count(workers: int | None, n_tasks: int) -> int:
    """``workers``, or with ``None`` one per CPU core and at most one per task."""
    if workers is None:
        return max(1, min(_cpu_count(), n_tasks))
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise HnnkitValueError(f"--workers must be a positive integer, got {workers!r}")
    return workers


def _reproduce_in_workers(
    out: Path,
    chosen: dict[str, Task],
    results: dict[str, Any],
    meta: dict[str, Any],
    profile: str,
    n_seeds: int,
    dev: torch.device,
    quiet: bool,
    echo: Callable[[str], None],
    workers: int,
    worker_setup: Callable[[], object] | None,
) -> dict[str, Any]:
    """The tasks ``chosen`` (those to run) in a pool of ``workers`` spawned processes.

    Each finished task's entry is merged into results.json here as it comes; a failed task is
    reported as in the serial run, the tasks not started are cancelled, those running are
    waited for and kept, and the first failure is raised. results.json ends with its tasks in
    the order that the serial run gives (those it held first, then ``names``).
    """
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

    t_all = time.perf_counter()
    names = list(chosen)
    held = list(results["tasks"])
    todo = []
    for name in names:
        entry = results["tasks"].get(name)
        if _check_entry(out, chosen[name], entry, profile, n_seeds, echo):
            todo.append(name)
        else:
            meta["seconds_total"] = time.perf_counter() - t_all
            results = res.write_entry(out, name, entry, meta, results)
    sent = {}
    for name in todo:
        try:
            sent[name] = pickle.dumps(chosen[name])
        except Exception as exc:
            raise HnnkitValueError(
                f"task {name} cannot be sent to a worker process ({type(exc).__name__}: {exc}); "
                "run it with --workers 1"
            ) from exc
    ctx = multiprocessing.get_context("spawn")
    lines = ctx.SimpleQueue()
    failure: BaseException | None = None
    n = min(workers, len(todo))
    echo(f"running {len(todo)} tasks in {n} worker processes: {', '.join(todo)}")
    with ProcessPoolExecutor(
        n, mp_context=ctx, initializer=_worker_init, initargs=(lines, worker_setup)
    ) as pool:
        futures: dict[Future, str] = {
            pool.submit(_worker_task, sent[name], out, profile, n_seeds, str(dev), quiet): name
            for name in todo
        }
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                _echo_lines(lines, echo)  # a task's lines are all sent before its result
                for future in sorted(done, key=lambda f: todo.index(futures[f])):
                    name = futures[future]
                    if future.cancelled():
                        continue
                    exc = future.exception()
                    if exc is not None:
                        echo(f"[{name}] failed: {type(exc).__name__}: {exc}")
                        if failure is None:
                            failure = exc
                            for f in pending:  # those not started; the running ones finish
                                f.cancel()
                        continue
                    entry, seconds = future.result()
                    meta["seconds_total"] = time.perf_counter() - t_all
                    if "skipped" not in entry:
                        entry["seconds"] = round(seconds, 1)
                    results = res.write_entry(out, name, entry, meta, results)
                    echo(f"[{name}] done in {seconds:.1f} s")
        except BaseException:
            for f in pending:
                f.cancel()
            raise
        finally:
            _echo_lines(lines, echo)
    # the serial run's order: the entries results.json held, then the tasks as asked for
    order = [*held, *(n for n in names if n not in held)]
    tasks = results["tasks"]
    results["tasks"] = {n: tasks[n] for n in [*order, *tasks] if n in tasks}
    atomic_write_json(out / res.RESULTS, results)
    results = json.loads(dumps(results))
    if failure is not None:
        raise failure
    return results


#: In a worker process: where its progress lines go (to the parent, which echoes them).
_WORKER_LINES: Any = None
#: In a worker process: the parent's ``worker_setup``, until it has run.
_WORKER_SETUP: Callable[[], object] | None = None


def _worker_init(lines: Any, setup: Callable[[], object] | None) -> None:
    global _WORKER_LINES, _WORKER_SETUP
    from . import _seeds

    _WORKER_LINES, _WORKER_SETUP = lines, setup
    _seeds.LINES_ONLY = True
    torch.set_num_threads(1)


def _worker_echo(line: str) -> None:
    _WORKER_LINES.put(line)


def _echo_lines(lines: Any, echo: Callable[[str], None]) -> None:
    while not lines.empty():
        echo(lines.get())


def _worker_task(
    task_bytes: bytes, out: Path, profile: str, n_seeds: int, device: str, quiet: bool
) -> tuple[dict[str, Any], float]:
    """In a worker process: one task's results.json entry and its seconds."""
    global _WORKER_SETUP
    t0 = time.perf_counter()
    try:
        if _WORKER_SETUP is not None:
            setup, _WORKER_SETUP = _WORKER_SETUP, None
            setup()
        task = pickle.loads(task_bytes)
        check_task(task)
        entry = _run_task(task, out, profile, n_seeds, torch.device(device), quiet, _worker_echo)
    except Exception as exc:
        raise _portable(exc) from None
    return entry, time.perf_counter() - t0


def _portable(exc: Exception) -> Exception:
    """``exc``, or if it cannot travel back to the parent process one of its message that can."""
    try:
        back = pickle.loads(pickle.dumps(exc))
        if type(back) is type(exc) and str(back) == str(exc):
            return exc
    except Exception:
        pass
    for kind in (DataFileError, HnnkitValueError, RuntimeError):
        if isinstance(exc, kind):
            return kind(f"{type(exc).__name__}: {exc}")
    return RuntimeError(f"{type(exc).__name__}: {exc}")


def _run_task(
    task: Task,
    out: Path,
    profile: str,
    n_seeds: int,
    dev: torch.device,
    quiet: bool,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    """Train and evaluate one task (or call its runner): its results.json entry."""
    name = task.name
    if task.runner is not None:
        echo(f"[{name}] running")
        with Progress(echo, f"[{name}] running", enabled=log_mode() and not quiet, announce=False):
            entry = run_task_runner(
                task, out / name, profile=profile, seeds=n_seeds, quiet=quiet, device=str(dev)
            )
        if "skipped" in entry:
            echo(f"[{name}] skipped: {entry['skipped']}; {entry['fix']}")
        return entry
    task = task.for_profile(profile)
    try:
        per_seed = []
        for seed in range(n_seeds):
            echo(
                f"[{name}] seed {seed + 1}/{n_seeds}: training {', '.join(task.models)} "
                f"({task.training.steps} steps)"
            )
            per_seed.append(run_seed(task, seed, out, dev, quiet, echo, profile))
    except MeasuredDataMissing as exc:
        echo(f"[{name}] skipped: {exc}")
        why = f"its measured data were not found ({exc.cause})"
        return {"skipped": why, "fix": exc.fix, "profile": profile}
    entry = summarise(task, per_seed, profile)
    entry["n_seeds"] = n_seeds
    return entry
