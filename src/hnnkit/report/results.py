"""The one results schema: ``results.json`` and the per-seed ``metrics.json`` of reproduce.

This module is the only code that parses ``results.json``. It writes the file with a
``schema_version``, reads it back (a file without a version is the same layout written
before the version was recorded), says what an entry lacks (:func:`entry_problem`),
summarises per-seed metrics into an entry (:func:`summarise_seeds`) and merges entries into
the file as it is on disk (:func:`write_entry`).

Layout::

    {"schema_version": 1, "profile": ..., "protocol": ..., "seeds": ..., "device": ...,
     "provenance": {...}, "seconds_total": ...,
     "tasks": {NAME: ENTRY}}

    ENTRY = {"skipped": WHY, "profile": ...}                                 # a skipped task
          | {"profile": ..., "n_seeds": N, "scale": S, "paper": {...}, "config": {...},
             "models": {MODEL: {"train_loss": CELL, "test_loss": CELL, "energy": CELL,
                                "original": {...}, "rollout_mse": CELL, ...}}, ...}
    CELL  = {"mean": float | null, "sem": float | null, "values"?: [...]}
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..errors import DataFileError
from ..evaluate import aggregate
from ..files import atomic_write_json, dumps

SCHEMA_VERSION = 1
RESULTS = "results.json"
#: the cells every model of a task entry must have (Table 1's columns)
TABLE_CELLS = ("train_loss", "test_loss", "energy")
#: the metrics of the corrected protocol a per-seed metrics.json must have for every model
SEED_CORRECTED = ("energy", "rollout_mse", "valid_time", "energy_drift")


# --- files ----------------------------------------------------------------------------------


def move_aside(path: Path) -> Path:
    """Rename a corrupted ``path`` to ``path.corrupt`` (``.corrupt.1``, … if taken); return it."""
    target = path.with_name(path.name + ".corrupt")
    n = 0
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt.{n}")
    path.replace(target)
    return target


def read_json(path: Path) -> tuple[Any, str | None]:
    """``(data, None)``, or ``(None, why)`` when ``path`` is not valid JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8")), None
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"is not valid JSON ({exc})"


def empty_results() -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "tasks": {}}


def results_problem(data: Any) -> str | None:
    """Why parsed JSON is not a results file this version reads, or ``None``."""
    if not (isinstance(data, dict) and isinstance(data.get("tasks"), dict)):
        return "has no 'tasks' table"
    version = data.get("schema_version", SCHEMA_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        return f"has an invalid schema_version {version!r}"
    if version > SCHEMA_VERSION:
        return (
            f"was written with results schema {version}, newer than this hnnkit's "
            f"{SCHEMA_VERSION}; upgrade hnnkit"
        )
    if not all(isinstance(name, str) for name in data["tasks"]):
        return "has a task name that is not a string"
    return None


def read_results(path: str | Path) -> dict[str, Any]:
    """A results file, checked: a ``tasks`` table and a schema this version reads.

    Raises:
        DataFileError: if the file is missing, not JSON, or not a results file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"{path} not found; `hnnkit reproduce --out DIR` writes DIR/{RESULTS}")
    data, bad = read_json(path)
    if bad is None:
        bad = results_problem(data)
    if bad is not None:
        raise DataFileError(f"{path} {bad}")
    data.setdefault("schema_version", SCHEMA_VERSION)
    return data


def write_results(path: str | Path, results: dict[str, Any]) -> None:
    """Write ``results`` atomically, with the current ``schema_version``."""
    atomic_write_json(Path(path), {"schema_version": SCHEMA_VERSION, **results})


def load_results(
    out: Path,
    rebuild: Callable[[str], tuple[dict[str, Any] | None, str]],
    names: Iterable[str],
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Read ``out/results.json`` (none yet: an empty one).

    A corrupted file is kept as ``results.json.corrupt`` and the entries of the tasks
    ``names`` that have a directory in ``out`` are rebuilt with ``rebuild(name)`` (which
    returns ``(entry, where)`` or ``(None, why not)``); the others are recomputed when asked for.
    """
    path = out / RESULTS
    if not path.exists():
        return empty_results()
    data, bad = read_json(path)
    if bad is None:
        bad = results_problem(data)
    if bad is None:
        data.setdefault("schema_version", SCHEMA_VERSION)
        return data
    aside = move_aside(path)
    results = empty_results()
    notes = []
    for name in names:
        if not (out / name).is_dir():
            continue
        entry, where = rebuild(name)
        if entry is not None:
            results["tasks"][name] = entry
        else:
            notes.append(f"{name} ({where}; it is recomputed when asked for)")
    rebuilt = ", ".join(results["tasks"]) or "no task"
    echo(
        f"{path} {bad}: kept it as {aside}, and rebuilt the entries of {rebuilt} from the "
        "per-seed metrics.json files" + (f"; not rebuilt: {'; '.join(notes)}" if notes else "")
    )
    write_results(path, results)
    return results


def write_entry(
    out: Path, name: str, entry: dict[str, Any], meta: dict[str, Any], results: dict[str, Any]
) -> dict[str, Any]:
    """Write task ``name``'s ``entry`` into ``out/results.json``, merged into the file as it is
    now (entries that another run wrote are kept); returns the merged results as written."""
    path = out / RESULTS
    current = results
    if path.exists():
        data, bad = read_json(path)
        if bad is None and results_problem(data) is None:
            current = data
    current["tasks"][name] = entry
    current.update(meta)
    current["schema_version"] = SCHEMA_VERSION
    atomic_write_json(path, current)
    return json.loads(dumps(current))


# --- entries --------------------------------------------------------------------------------


def entry_problem(entry: Any, required_models: Iterable[str] = ()) -> str | None:
    """Why a results.json task ``entry`` cannot be shown in the report, or ``None``.

    A task entry is either ``{"skipped": why, ...}`` or has a ``profile`` and a non-empty
    ``models`` table in which every model (at least ``required_models``) has the cells
    :data:`TABLE_CELLS`, each with a ``mean``.
    """
    if not isinstance(entry, dict):
        return "it is not a table"
    if "skipped" in entry:
        return None
    models = entry.get("models")
    if not isinstance(models, dict) or not models:
        return "it has no models"
    missing = sorted(set(required_models) - set(models))
    if missing:
        return f"it lacks the model(s) {', '.join(missing)}"
    for kind, m in models.items():
        if not isinstance(m, dict):
            return f"model {kind} is not a table"
        for key in TABLE_CELLS:
            if not isinstance(m.get(key), dict) or "mean" not in m[key]:
                return f"model {kind} lacks {key}"
    if "profile" not in entry:
        return "it lacks its profile"
    return None


def repair_entries(
    out: Path,
    results: dict[str, Any],
    *,
    skip: Iterable[str],
    problem: Callable[[str, Any], str | None],
    rebuild: Callable[[str], tuple[dict[str, Any] | None, str]],
    echo: Callable[[str], None] = print,
) -> bool:
    """Rebuild, or mark as skipped with a message, the incomplete entries not in ``skip``.

    ``problem(name, entry)`` says what an entry lacks; ``rebuild(name)`` returns
    ``(entry, where)`` or ``(None, why not)``. Returns whether ``results`` changed.
    """
    skip = set(skip)
    changed = False
    for name, entry in list(results["tasks"].items()):
        if name in skip or (why_bad := problem(name, entry)) is None:
            continue
        rebuilt, where = rebuild(name)
        changed = True
        if rebuilt is not None:
            results["tasks"][name] = rebuilt
            echo(
                f"[{name}] the entry in results.json is incomplete ({why_bad}); rebuilt it from {where}"
            )
            continue
        why = (
            f"its entry in results.json is incomplete ({why_bad}) and cannot be rebuilt "
            f"({where or 'not a task of this version'}); rerun `hnnkit reproduce --tasks {name} "
            f"--out {out}` to recompute it"
        )
        results["tasks"][name] = {
            "skipped": why,
            "fix": f"rerun `hnnkit reproduce --tasks {name} --out {out}`",
            "profile": entry.get("profile") if isinstance(entry, dict) else None,
            "incomplete": entry,
        }
        echo(f"[{name}] {why}")
    return changed


# --- per-seed metrics and their summary -----------------------------------------------------


def _cell_ok(cell: Any) -> bool:
    return isinstance(cell, dict) and "mean" in cell and "sem" in cell


def seed_problem(models: Iterable[str], metrics: Any) -> str | None:
    """Why a per-seed ``metrics.json`` cannot be summarised for ``models``, or ``None``."""
    if not isinstance(metrics, dict) or not isinstance(metrics.get("models"), dict):
        return "has no models"
    for kind in models:
        m = metrics["models"].get(kind)
        if not isinstance(m, dict):
            return f"lacks the model {kind}"
        losses, corrected = m.get("losses"), m.get("corrected")
        if not isinstance(losses, dict) or not all(
            _cell_ok(losses.get(k)) for k in ("train_loss", "test_loss")
        ):
            return f"lacks {kind}'s losses"
        if not isinstance(corrected, dict) or not all(
            _cell_ok(corrected.get(k)) for k in SEED_CORRECTED
        ):
            return f"lacks {kind}'s corrected-protocol metrics"
        if not _cell_ok(m.get("original_energy")) or not isinstance(
            m.get("train_seconds"), int | float
        ):
            return f"lacks {kind}'s original-protocol energy or training time"
    return None


def num(value: Any) -> float:
    """A metric read back from strict JSON: ``null`` (a NaN when written) → NaN."""
    return math.nan if value is None else value


def cell(value: Any) -> dict[str, Any]:
    """A ``{"mean", "sem", "values"?}`` cell with ``null`` → NaN (a missing cell: NaN ± NaN)."""
    if not isinstance(value, dict):
        return {"mean": math.nan, "sem": math.nan}
    out = {"mean": num(value.get("mean")), "sem": num(value.get("sem"))}
    if isinstance(value.get("values"), list):
        out["values"] = [num(v) for v in value["values"]]
    return out


def aggregate_cells(cells: list[Any]) -> dict[str, float]:
    """:func:`hnnkit.evaluate.aggregate` of cells read back from JSON (``null`` → NaN)."""
    return aggregate([cell(c) for c in cells])


def within_run(cells: list[Any]) -> dict[str, float]:
    """Mean over seeds of each seed's value, with the root-mean-square of their own ± (the
    original code reports one run's standard error, not a spread over seeds)."""
    n = len(cells)
    cells = [cell(c) for c in cells]
    return {
        "mean": sum(c["mean"] for c in cells) / n,
        "sem": (sum(c["sem"] ** 2 for c in cells) / n) ** 0.5,
    }


def _model_summary(rows: list[dict[str, Any]], scale: float) -> dict[str, Any]:
    def scaled(c: dict[str, float]) -> dict[str, float]:
        return {"mean": num(c["mean"]) * scale, "sem": num(c["sem"]) * scale}

    def loss(key: str) -> list[dict[str, Any]]:
        return [{"mean": r["losses"][key]["mean"], "sem": r["losses"][key]["sem"]} for r in rows]

    corrected = [r["corrected"] for r in rows]
    summary: dict[str, Any] = {
        "n_seeds": len(rows),
        "train_loss": scaled(aggregate_cells(loss("train_loss"))),
        "test_loss": scaled(aggregate_cells(loss("test_loss"))),
        "energy": scaled(aggregate_cells([c["energy"] for c in corrected])),
        "rollout_mse": scaled(aggregate_cells([c["rollout_mse"] for c in corrected])),
        "valid_time": aggregate_cells([c["valid_time"] for c in corrected]),
        "energy_drift": aggregate_cells([c["energy_drift"] for c in corrected]),
        **{  # the system's other conserved quantities (angular momentum), the step's symplecticity
            key: aggregate_cells([c[key] for c in corrected])
            for key in corrected[0]
            if ((key.endswith("_drift") and key != "energy_drift") or key == "symplecticity")
            and all(key in c for c in corrected)  # seeds cached by an older version
        },
        "original": {
            "train_loss": scaled(within_run([r["losses"]["train_loss"] for r in rows])),
            "test_loss": scaled(within_run([r["losses"]["test_loss"] for r in rows])),
            "energy": scaled(within_run([r["original_energy"] for r in rows])),
            "note": "mean over seeds; ± is the original's within-run error (over test points "
            "for losses, over groups of 3 trajectories for energy), root-mean-square over seeds",
        },
        "train_seconds": sum(r["train_seconds"] for r in rows),
    }
    if all("diverged" in c for c in corrected):  # rollouts that blew up, over all seeds
        times = [c["diverged"]["first_time"] for c in corrected]
        times = [v for v in times if v is not None]
        summary["diverged"] = {
            "count": sum(c["diverged"]["count"] for c in corrected),
            "of": sum(c["diverged"]["of"] for c in corrected),
            "first_time": min(times) if times else None,
        }
    if all("dissipation" in r for r in rows):
        summary["dissipation_rate"] = aggregate_cells([r["dissipation"]["rate"] for r in rows])
        summary["gamma_true"] = rows[0]["dissipation"]["gamma_true"]
    return summary


def summarise_seeds(
    per_seed: list[dict[str, Any]],
    *,
    models: Iterable[str],
    scale: float,
    paper: dict[str, Any],
    profile: str,
) -> dict[str, Any]:
    """Aggregate per-seed metrics into a task entry (losses and energies times ``scale``)."""
    entry: dict[str, Any] = {"scale": scale, "paper": paper, "models": {}, "profile": profile}
    for kind in models:
        entry["models"][kind] = _model_summary([m["models"][kind] for m in per_seed], scale)
    if all("energy_decay" in m for m in per_seed):
        keys = per_seed[0]["energy_decay"]
        entry["energy_decay_rate"] = {
            k: sum(num(m["energy_decay"].get(k)) for m in per_seed) / len(per_seed) for k in keys
        }
    if all("truth" in m for m in per_seed):  # drifts along the reference trajectories
        entry["truth"] = {
            key: aggregate_cells([m["truth"][key] for m in per_seed])
            for key in per_seed[0]["truth"]
            if all(key in m["truth"] for m in per_seed)
        }
    return entry
