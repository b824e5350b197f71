"""``hnnkit reproduce``: train, evaluate and report every task of the paper."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
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
from ..files import atomic_write_json, atomic_write_text
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
from ..train import fit
from .tasks import PROFILES, TASKS, Task

#: Tasks implemented in their own modules: name → "module:function" taking (out_dir, profile, seeds, quiet).
EXTRA_TASKS: dict[str, str] = {
    "pixel-pendulum": "hnnkit.experiments.pixel_pendulum:reproduce_task",
    "kan-spring": "hnnkit.experiments.kan_spring:reproduce_task",
}
ALL_TASKS = (*TASKS, *EXTRA_TASKS)
MODELS = ("baseline", "hnn")  # the default; a task may add "dhnn" (Task.models)
#: The dissipative HNN's form in ``hnnkit reproduce``: the paper's (Sosanya & Greydanus 2022).
DHNN_FORM = "helmholtz"


def _available_extra(name: str) -> Callable[..., dict[str, Any]] | None:
    import importlib

    module, fn = EXTRA_TASKS[name].split(":")
    try:
        return getattr(importlib.import_module(module), fn)
    except (ImportError, AttributeError):
        return None


def parse_tasks(spec: str | None) -> list[str]:
    """``"spring,pendulum"`` → ``["spring", "pendulum"]``; ``None`` → every task."""
    if spec is None or spec == "all":
        return list(ALL_TASKS)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    for n in names:
        if n not in ALL_TASKS:
            raise UnknownNameError("task", n, ALL_TASKS)
    return names


def load_results(out: Path, *, force: bool) -> dict[str, Any]:
    """Read ``out/results.json``; a corrupted file stops the run unless ``force``."""
    path = out / "results.json"
    if not path.exists():
        return {"tasks": {}}
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("tasks"), dict):
            raise ValueError("no 'tasks' table")
        return data
    except (ValueError, UnicodeDecodeError) as exc:
        if force:
            return {"tasks": {}}
        raise DataFileError(
            f"{path} is corrupted ({exc}); rerun with --force to recompute and overwrite it, or choose another --out"
        ) from exc


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


def run_seed(task: Task, seed: int, out: Path, device: torch.device, quiet: bool) -> dict[str, Any]:
    """Train the task's models for one seed, evaluate under both protocols; cached in ``seed{N}/metrics.json``.

    A cached file that lacks one of ``task.models`` (written before a model was added) is
    recomputed; the models already trained resume from their checkpoints.
    """
    seed_dir = out / task.name / f"seed{seed}"
    done = seed_dir / "metrics.json"
    if done.exists():
        try:
            cached = json.loads(done.read_text())
            if set(task.models) <= set(cached.get("models", {})):
                return cached
        except ValueError:
            done.unlink()
    data = _dataset(task, seed)
    system = get_system(task.system) if task.system else None
    tr = task.training
    models, histories, seconds = {}, {}, {}
    for kind in task.models:
        model = build_model(kind, data.dim, tr.hidden, seed).to(device)
        res = fit(
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
        models[kind], histories[kind], seconds[kind] = res.model.cpu(), res.history, res.seconds
    noise = float(task.data.get("noise_std", 0.0))
    orig, _ = evaluate_original(task.name, system, models, data, seed=seed, noise_std=noise)
    corr, rollouts = evaluate_corrected(task.name, system, models, data, t_span=task.eval_span)
    metrics: dict[str, Any] = {"seed": seed, "models": {}, "truth": corr["truth"]}
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


def _within_run(cells: list[dict[str, float]]) -> dict[str, float]:
    """Mean over seeds of each seed's value, with the root-mean-square of their own ± (the
    original code reports one run's standard error, not a spread over seeds)."""
    n = len(cells)
    return {
        "mean": sum(c["mean"] for c in cells) / n,
        "sem": (sum(c["sem"] ** 2 for c in cells) / n) ** 0.5,
    }


def summarise(task: Task, per_seed: list[dict[str, Any]], profile: str) -> dict[str, Any]:
    """Aggregate seeds into the results.json entry of one task (values in the paper's scaling)."""
    s = 1.0 / task.scale if task.scale else 1.0
    scale = task.scale

    def scaled(cell: dict[str, float]) -> dict[str, float]:
        return {"mean": cell["mean"] * scale, "sem": cell["sem"] * scale}

    entry: dict[str, Any] = {"scale": scale, "paper": task.paper, "models": {}, "profile": profile}
    for kind in task.models:
        rows = [m["models"][kind] for m in per_seed]
        entry["models"][kind] = {
            "n_seeds": len(rows),
            "train_loss": scaled(
                aggregate(
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
                aggregate(
                    [
                        {
                            "mean": r["losses"]["test_loss"]["mean"],
                            "sem": r["losses"]["test_loss"]["sem"],
                        }
                        for r in rows
                    ]
                )
            ),
            "energy": scaled(aggregate([r["corrected"]["energy"] for r in rows])),
            "rollout_mse": scaled(aggregate([r["corrected"]["rollout_mse"] for r in rows])),
            "valid_time": aggregate([r["corrected"]["valid_time"] for r in rows]),
            "energy_drift": aggregate([r["corrected"]["energy_drift"] for r in rows]),
            **{  # the system's other conserved quantities (angular momentum), the step's symplecticity
                key: aggregate([r["corrected"][key] for r in rows])
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
            entry["models"][kind]["dissipation_rate"] = aggregate(
                [r["dissipation"]["rate"] for r in rows]
            )
            entry["models"][kind]["gamma_true"] = rows[0]["dissipation"]["gamma_true"]
    if all("energy_decay" in m for m in per_seed):
        keys = per_seed[0]["energy_decay"]
        entry["energy_decay_rate"] = {
            k: sum(m["energy_decay"][k] for m in per_seed) / len(per_seed) for k in keys
        }
    if all("truth" in m for m in per_seed):  # drifts along the reference trajectories
        entry["truth"] = {
            key: aggregate([m["truth"][key] for m in per_seed])
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
    """
    out = Path(out)
    names = (
        parse_tasks(tasks) if not isinstance(tasks, list) else [parse_tasks(t)[0] for t in tasks]
    )
    if protocol not in PROTOCOLS:
        raise UnknownNameError("protocol", protocol, PROTOCOLS)
    if profile not in PROFILES:
        raise UnknownNameError("profile", profile, PROFILES)
    n_seeds = seeds if seeds is not None else {"smoke": 1, "quick": 1, "paper": 3}[profile]
    if not isinstance(n_seeds, int) or n_seeds < 1:
        raise HnnkitValueError(f"--seeds must be a positive integer, got {seeds!r}")
    check_out_dir(out)
    dev = resolve_device(device)
    results = load_results(out, force=force)
    out.mkdir(parents=True, exist_ok=True)
    if force:
        import shutil

        for name in names:
            shutil.rmtree(out / name, ignore_errors=True)
            results["tasks"].pop(name, None)
    results.update(
        {
            "profile": profile,
            "protocol": protocol,
            "seeds": n_seeds,
            "device": str(dev),
            "provenance": provenance(),
        }
    )
    figures: dict[str, list[Path]] = {}
    t_all = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        entry = results["tasks"].get(name)
        if (
            entry is not None
            and entry.get("profile") == profile
            and entry.get("n_seeds", n_seeds) == n_seeds
            and "skipped" not in entry
        ):
            echo(f"[{name}] already in {out / 'results.json'}; skipping (use --force to recompute)")
        elif name in TASKS:
            task = TASKS[name].for_profile(profile)
            try:
                per_seed = []
                for seed in range(n_seeds):
                    echo(
                        f"[{name}] seed {seed + 1}/{n_seeds}: training {', '.join(task.models)} ({task.training.steps} steps)"
                    )
                    per_seed.append(run_seed(task, seed, out, dev, quiet))
                entry = summarise(task, per_seed, profile)
                entry["n_seeds"] = n_seeds
            except DataFileError as exc:
                entry = {"skipped": str(exc), "profile": profile}
                echo(f"[{name}] skipped: {exc}")
        else:
            runner = _available_extra(name)
            if runner is None:
                entry = {"skipped": "not available in this version of hnnkit", "profile": profile}
                echo(f"[{name}] skipped: not available in this version")
            else:
                echo(f"[{name}] running")
                entry = runner(
                    out / name, profile=profile, seeds=n_seeds, quiet=quiet, device=str(dev)
                )
                entry.setdefault("profile", profile)
                entry.setdefault("n_seeds", n_seeds)
        results["tasks"][name] = entry
        results["seconds_total"] = time.perf_counter() - t_all
        atomic_write_json(out / "results.json", results)
        echo(f"[{name}] done in {time.perf_counter() - t0:.1f} s")
    for name in results["tasks"]:
        figs = out / name / "figures"
        if figs.is_dir():
            figures[name] = sorted(p for p in figs.iterdir() if p.suffix in (".png", ".gif"))
    table = markdown_table(results)
    atomic_write_text(out / "table.md", table)
    atomic_write_text(out / "report.html", html_report(results, figures))
    echo("")
    echo(table)
    echo(f"Wrote {out / 'results.json'}, {out / 'table.md'} and {out / 'report.html'}")
    return results
