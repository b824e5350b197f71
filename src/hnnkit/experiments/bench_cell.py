"""One cell of a benchmark sweep, on whichever process or machine runs it, and its result record.

:func:`run_cell` trains and evaluates one experiment in memory and returns its result as plain
data; it writes no file (the sweep's driver alone writes, :mod:`hnnkit.experiments.bench`), so
it runs unchanged in a local worker process or on a Ray node. It uses one torch thread, so that
a cell's numbers do not depend on the engine or on how many cells run beside it, and it never
raises: a failure is returned as a record with the error and its traceback.

:func:`cell_problem` checks a stored record before a sweep reuses it.
"""

from __future__ import annotations

import json
import math
import platform
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import torch

from ..data import Dataset, generate
from ..metrics import energy_error, rollout_mse
from ..report import provenance
from .run import evaluate_experiment, load_data, system_of, train_model
from .spec import Experiment, resolve_train

#: The version of the cell record's format.
FORMAT = 1
OK, FAILED = "ok", "failed"
#: The most time points of a stored error-against-time curve.
CURVE_POINTS = 200
#: Data sets kept in a worker's memory (cells of one data set differ in their model only).
DATA_MEMORY = 8

_DATA: OrderedDict[str, Dataset] = OrderedDict()


def _data(exp: Experiment) -> Dataset:
    """``exp``'s data, simulated once per worker process for the cells that share it (no file is
    written: the data set cache on disk is left alone, as several workers would write to it)."""
    key = json.dumps([exp.data.to_dict(), exp.data_seed], sort_keys=True)
    if key in _DATA:
        _DATA.move_to_end(key)
        return _DATA[key]
    spec = exp.data
    if spec.measured:
        data = load_data(spec, exp.data_seed)
    else:
        data = generate(system_of(spec), seed=exp.data_seed, **spec.generate_kwargs())
    _DATA[key] = data
    while len(_DATA) > DATA_MEMORY:
        _DATA.popitem(last=False)
    return data


def _curves(rollouts: Any) -> dict[str, list[float]]:
    """Error against time, averaged over the held-out trajectories: ``t``, ``rollout_mse`` (the
    coordinate MSE) and ``energy_mse`` (the squared error of the true energy), each ``(T,)``."""
    t = rollouts.t
    (pred,) = rollouts.models.values()
    (e_pred,) = rollouts.model_energy.values()
    mse = rollout_mse(rollouts.true, pred).reshape(len(t), -1).mean(1)
    energy = energy_error(rollouts.true_energy, e_pred).reshape(len(t), -1).mean(1)
    stride = max(1, math.ceil(len(t) / CURVE_POINTS))
    return {
        "t": t[::stride].tolist(),
        "rollout_mse": mse[::stride].tolist(),
        "energy_mse": energy[::stride].tolist(),
    }


def run_cell(
    experiment: dict[str, Any], setup: Callable[[], object] | None = None
) -> dict[str, Any]:
    """Train and evaluate one cell; its result record (never raises).

    Args:
        experiment: the cell's :class:`~hnnkit.experiments.spec.Experiment` as ``to_dict()``.
        setup: run first (e.g. importing the plugins that register the cell's model).

    Returns:
        ``{"format", "status": "ok", "config_hash", "metrics", "curves", "dataset",
        "train_seconds", "steps", "seconds_per_step", "seconds", "cpu_seconds", "host",
        "provenance"}``; on failure ``{"format", "status": "failed", "config_hash", "error",
        "traceback", "seconds", "cpu_seconds", "host", "provenance"}``. ``seconds`` are
        wall-clock, ``cpu_seconds`` this process's CPU time (the wall time of an idle core).
    """
    t0, cpu0 = time.perf_counter(), time.process_time()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    record: dict[str, Any] = {"format": FORMAT, "config_hash": None}
    try:
        if setup is not None:
            setup()
        exp = resolve_train(Experiment.from_dict(experiment))
        record["config_hash"] = exp.config_hash()
        data = _data(exp)
        res = train_model(exp, data, None, torch.device("cpu"), quiet=True, resume=False)
        metrics, rollouts = evaluate_experiment(exp, res.model.cpu(), data)
        steps = int(exp.train.steps or 0)
        record.update(
            status=OK,
            metrics=metrics,
            curves=_curves(rollouts) if rollouts is not None else None,
            dataset={
                k: data.config.get(k) for k in ("n_trajectories", "n_points", "noise_std", "t_span")
            },
            train_seconds=res.seconds,
            steps=steps,
            seconds_per_step=res.seconds / steps if steps else None,
        )
    except Exception as exc:
        record.update(
            status=FAILED,
            error=f"{type(exc).__name__}: {exc}",
            traceback=traceback.format_exc(),
        )
    finally:
        record["seconds"] = time.perf_counter() - t0
        record["cpu_seconds"] = time.process_time() - cpu0  # ≈ the wall time on an idle core
        record["host"] = platform.node()
        record["provenance"] = _provenance()  # torch_threads: the cell's one
        torch.set_num_threads(threads)
    return record


_PROVENANCE: dict[str, Any] = {}


def _provenance() -> dict[str, Any]:
    """:func:`hnnkit.report.provenance`, read once per worker process (versions and the git
    commit do not change under a running process), with this moment's time."""
    if not _PROVENANCE:
        try:
            _PROVENANCE.update(provenance())
        except Exception as exc:  # a record without it is still a result
            return {"error": f"{type(exc).__name__}: {exc}"}
    return {**_PROVENANCE, "utc": datetime.now(UTC).isoformat(timespec="seconds")}


#: Keys every stored record holds, and those of a finished (``ok``) one.
RECORD_KEYS = ("format", "status", "config_hash", "experiment", "cell", "provenance")
OK_KEYS = ("metrics", "train_seconds", "steps", "seconds_per_step")
#: The metrics the original protocol scores (the corrected one scores them all).
ORIGINAL_METRICS = ("train_loss", "test_loss", "energy")


def cell_problem(record: Any, cell_hash: str, experiment: Experiment) -> str | None:
    """Why a stored cell record cannot be reused for ``experiment`` (hash ``cell_hash``), or
    ``None`` when it can: a finished record of exactly this experiment with every metric that
    the experiment's evaluation names."""
    if not isinstance(record, dict):
        return "it is not a JSON object"
    missing = [k for k in RECORD_KEYS if k not in record]
    if missing:
        return f"it lacks {', '.join(missing)}"
    if record["format"] != FORMAT:
        return f"it has format {record['format']!r}, not {FORMAT}"
    if record["config_hash"] != cell_hash:
        return f"it holds config hash {record['config_hash']!r}, not {cell_hash!r}"
    try:
        stored = Experiment.from_dict(record["experiment"])
    except Exception as exc:
        return f"its experiment cannot be read ({exc})"
    if stored.config_hash() != cell_hash or stored != experiment:
        return "its experiment is not the cell's"
    if record["status"] == FAILED:
        return None if isinstance(record.get("error"), str) else "a failed record without error"
    if record["status"] != OK:
        return f"its status is {record['status']!r}"
    missing = [k for k in OK_KEYS if k not in record]
    if missing:
        return f"it lacks {', '.join(missing)}"
    metrics = record["metrics"]
    if not isinstance(metrics, dict):
        return "its metrics are not a table"
    scored = ORIGINAL_METRICS if experiment.eval.protocol == "original" else experiment.eval.metrics
    for name in experiment.eval.metrics:
        entry = metrics.get(name)
        if entry is None and name in scored:
            return f"its metrics lack {name}"
        if entry is not None and (not isinstance(entry, dict) or "mean" not in entry):
            return f"its metric {name} has no mean"
    curves = record.get("curves")
    if curves is not None:
        if not isinstance(curves, dict) or not all(
            isinstance(curves.get(k), list) for k in ("t", "rollout_mse", "energy_mse")
        ):
            return "its error-against-time curves are incomplete"
        if not len(curves["t"]) == len(curves["rollout_mse"]) == len(curves["energy_mse"]):
            return "its error-against-time curves have different lengths"
    return None
