"""``hnnkit bench GRID --out DIR``: run every cell of a grid and write the leaderboard.

The sweep's directory holds::

    DIR/grid.toml                 the grid as run
    DIR/cells/HASH.json           one record per cell (config, seed, metrics, curves,
                                  times, versions, git commit; or the error)
    DIR/cells/HASH.traceback.txt  the traceback of a failed cell
    DIR/cells.csv                 one line per cell: hash, coordinates, status, main metrics
    DIR/sweep.json                what the last run did (reused, computed, recomputed, failed)
    DIR/leaderboard.md, DIR/leaderboard.html, DIR/figures/

Guarantees: this process alone writes in ``DIR`` (it holds its
:class:`~hnnkit.files.DirectoryLock`; workers return records and write nothing), every file is
written atomically, and a record is written as soon as its cell finishes. So a killed sweep
run again continues where it stopped: a finished cell whose record checks out
(:func:`~hnnkit.experiments.bench_cell.cell_problem`) is reused, a corrupted record is moved
aside (``HASH.json.corrupt``), reported and recomputed, and a failed cell is tried again.
``rerun`` redoes the named cells even if finished.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from ..errors import HnnkitValueError, check_choice
from ..files import (
    DirectoryLock,
    atomic_write_json,
    atomic_write_text,
    describe_os_error,
    remove_stale_temporaries,
)
from ..report import provenance
from ..report.leaderboard import write_leaderboard
from ..report.results import read_json
from ._seeds import log_mode
from .bench_cell import FAILED, OK, cell_problem
from .engines import ENGINES, cpu_count, run_jobs
from .grid import Cell, Grid, load_grid, longest_first

CELLS = "cells"
SWEEP = "sweep.json"


def cell_path(out: Path, cell: Cell) -> Path:
    return out / CELLS / f"{cell.hash}.json"


def _check_args(engine: str, workers: int | None, address: str | None, out: Path) -> None:
    check_choice("engine", engine, ENGINES)
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise HnnkitValueError(f"--workers must be a positive integer, got {workers!r}")
    if address is not None and engine != "ray":
        raise HnnkitValueError(
            f"--address {address} is the address of a Ray cluster: pass --engine ray with it"
        )
    if out.exists() and not out.is_dir():
        raise HnnkitValueError(
            f"--out {out} is a file; pass a directory (it is created if missing)"
        )


def grid_summary(grid: Grid) -> dict[str, Any]:
    """The grid's axes as plain data, for the leaderboard."""
    metrics = list(grid.cells[0].experiment.eval.metrics)
    return {
        "name": grid.name,
        "description": grid.description,
        "systems": list(grid.systems),
        "models": list(grid.models),
        "seeds": list(grid.seeds),
        "noise_std": list(grid.noise_std),
        "n_trajectories": list(grid.n_trajectories),
        "metrics": metrics,
    }


def bench(
    grid: Grid | str | Path,
    out: str | Path,
    *,
    engine: str = "local",
    workers: int | None = None,
    address: str | None = None,
    rerun: Iterable[str] = (),
    quiet: bool = False,
    echo: Callable[[str], None] = print,
    setup: Callable[[], object] | None = None,
) -> dict[str, Any]:
    """Run the cells of ``grid`` that ``out`` does not hold finished, and write the leaderboard.

    Args:
        grid: a :class:`~hnnkit.experiments.grid.Grid`, a grid file or a built-in grid's name.
        out: the sweep's directory (created if missing; what it holds is reused).
        engine: ``"local"`` (this machine: in this process with one worker, else a pool of
            spawned processes) or ``"ray"``.
        workers: parallel cells (default: one per CPU core, at most one per cell to run); with
            Ray and no ``address``, the CPUs of the local Ray instance.
        address: with ``engine="ray"``, the cluster to join (``"auto"`` or ``HOST:PORT``).
        rerun: hashes (or unique prefixes) of cells to redo even if finished.
        quiet: no progress bar or progress lines.
        echo: where messages go.
        setup: a picklable callable each worker runs before a cell (e.g. importing plugins).

    Returns:
        ``sweep.json``'s content: counts of the cells reused, computed, failed and recomputed.

    Raises:
        HnnkitValueError: on a bad grid or argument, a missing Ray or an unreachable address.
    """
    out = Path(out)
    grid = grid if isinstance(grid, Grid) else load_grid(grid)
    _check_args(engine, workers, address, out)
    redo = {grid.find(h).hash for h in rerun}
    try:
        with DirectoryLock(out, "hnnkit bench"):
            stale = remove_stale_temporaries(out)
            if stale:
                echo(f"removed {len(stale)} temporary file(s) left in {out} by a killed run")
            return _bench_locked(grid, out, engine, workers, address, redo, quiet, echo, setup)
    except OSError as exc:
        raise HnnkitValueError(describe_os_error(exc)) from exc


def _stored(out: Path, cell: Cell, echo: Callable[[str], None]) -> tuple[dict | None, bool]:
    """``(record, corrupt)``: the cell's readable record, or ``None`` (and whether a corrupted
    one was moved aside)."""
    path = cell_path(out, cell)
    if not path.exists():
        return None, False
    record, bad = read_json(path)
    problem = bad or cell_problem(record, cell.hash, cell.experiment)
    if problem is None:
        return record, False
    aside = path.with_name(path.name + ".corrupt")
    path.replace(aside)
    echo(
        f"cell {cell.hash} ({cell.label}): its result is corrupted ({problem}); moved it to "
        f"{aside.relative_to(out)} and recomputing it"
    )
    return None, True


def _bench_locked(
    grid: Grid,
    out: Path,
    engine: str,
    workers: int | None,
    address: str | None,
    redo: set[str],
    quiet: bool,
    echo: Callable[[str], None],
    setup: Callable[[], object] | None,
) -> dict[str, Any]:
    t0 = time.perf_counter()
    atomic_write_text(out / "grid.toml", grid.text or f"# grid {grid.name}\n")
    records: dict[str, dict[str, Any]] = {}
    todo: list[Cell] = []
    corrupt: list[str] = []
    retried = 0
    for cell in grid.cells:
        record, was_corrupt = _stored(out, cell, echo)
        if was_corrupt:
            corrupt.append(cell.hash)
        if cell.hash in redo:
            echo(f"cell {cell.hash} ({cell.label}): rerunning it (--rerun)")
            todo.append(cell)
        elif record is not None and record["status"] == OK:
            records[cell.hash] = record
        else:
            retried += record is not None
            todo.append(cell)
    reused = len(records)
    n_workers = workers or max(1, min(cpu_count(), len(todo)))
    where = f"ray engine at {address}" if address else f"{engine} engine, {n_workers} workers"
    echo(
        f"grid {grid.name}: {len(grid.cells)} cells; reusing {reused} finished cells, "
        f"running {len(todo)}"
        + (f" ({retried} failed before, tried again)" if retried else "")
        + (f" on the {where}" if todo else "")
    )
    computed = failed = 0
    if todo:
        by_hash = {c.hash: c for c in todo}
        jobs = [(c.hash, c.experiment.to_dict()) for c in longest_first(todo)]
        results = run_jobs(jobs, engine=engine, workers=n_workers, address=address, setup=setup)
        progress = _Progress(todo, quiet, echo)
        try:
            for key, record in results:
                cell = by_hash[key]
                record = _store(out, cell, record, engine)
                records[key] = record
                computed += 1
                failed += record["status"] != OK
                progress.update(cell, record)
        finally:
            progress.close()
    ordered = [records[c.hash] for c in grid.cells if c.hash in records]
    summary = {
        "grid": grid.name,
        "cells": len(grid.cells),
        "reused": reused,
        "computed": computed,
        "failed": sum(r["status"] != OK for r in ordered),
        "failed_this_run": failed,
        "recomputed_corrupt": corrupt,
        "rerun": sorted(redo),
        "engine": engine,
        "address": address,
        "workers": n_workers,
        "seconds": time.perf_counter() - t0,
        "provenance": provenance(),
    }
    atomic_write_json(out / SWEEP, summary)
    atomic_write_text(out / "cells.csv", cells_csv(grid, records))
    meta = {"run": summary, "provenance": summary["provenance"]}
    write_leaderboard(out, grid_summary(grid), ordered, meta)
    echo(
        f"{summary['cells']} cells: {summary['cells'] - summary['failed']} finished, "
        f"{summary['failed']} failed ({computed} computed in this run, {reused} reused"
        + (f", {len(corrupt)} corrupted results recomputed" if corrupt else "")
        + f"); wrote {out / 'leaderboard.md'} and {out / 'leaderboard.html'}"
    )
    if summary["failed"]:
        echo(
            f"failed cells are listed in {out / 'leaderboard.md'}, with their tracebacks in "
            f"{out / CELLS}/HASH.traceback.txt"
        )
    return summary


def _store(out: Path, cell: Cell, record: dict[str, Any], engine: str) -> dict[str, Any]:
    """Complete a worker's record (the cell's coordinates, experiment and hash, the engine) and
    write it, with a failed cell's traceback beside it."""
    record = {
        **record,
        "config_hash": cell.hash,
        "cell": cell.labels(),
        "experiment": cell.experiment.to_dict(),
        "engine": engine,
    }
    trace = cell_path(out, cell).with_suffix(".traceback.txt")
    if record["status"] == FAILED:
        atomic_write_text(trace, record.pop("traceback", "") or record["error"])
        record["traceback_file"] = str(trace.relative_to(out))
    else:
        trace.unlink(missing_ok=True)
    atomic_write_json(cell_path(out, cell), record)
    return record


def cells_csv(grid: Grid, records: dict[str, dict[str, Any]]) -> str:
    """One line per cell of ``grid``: hash, coordinates, status, seconds and main metrics."""
    keys = ("test_loss", "rollout_mse", "valid_time", "energy_drift", "symplecticity")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [
            "hash",
            "system",
            "model",
            "seed",
            "noise_std",
            "n_trajectories",
            "status",
            "train_seconds",
            *keys,
            "error",
        ]
    )
    for cell in grid.cells:
        r = records.get(cell.hash)
        status = "missing" if r is None else r["status"]
        metrics = (r or {}).get("metrics") or {}
        values = [(metrics.get(k) or {}).get("mean") for k in keys]
        w.writerow(
            [
                cell.hash,
                cell.system,
                cell.model,
                cell.seed,
                cell.noise_std,
                cell.n_trajectories,
                status,
                (r or {}).get("train_seconds"),
                *values,
                (r or {}).get("error", ""),
            ]
        )
    return buf.getvalue()


class _Progress:
    """A bar over the cells with the time left (tqdm) in a terminal; in a log file one line per
    finished cell with the time left; nothing when ``quiet``. The time left scales the time so
    far by the estimated cost of the cells left against that of the cells done
    (:attr:`~hnnkit.experiments.grid.Cell.cost`), as the costliest cells run first."""

    def __init__(self, cells: list[Cell], quiet: bool, echo: Callable[[str], None]):
        self.total, self.done, self.quiet, self.echo = len(cells), 0, quiet, echo
        self.cost = {c.hash: c.cost for c in cells}
        self.cost_total, self.cost_done = sum(self.cost.values()), 0.0
        self.t0 = time.perf_counter()
        self.bar = None
        if not quiet and not log_mode():
            from tqdm.auto import tqdm

            self.bar = tqdm(  # its own time left counts cells; ours weighs them by cost
                total=self.total,
                unit="cell",
                desc="cells",
                dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]",
            )

    def left(self) -> float:
        """Estimated seconds until the last cell finishes."""
        elapsed = time.perf_counter() - self.t0
        if self.cost_done <= 0:
            return elapsed / max(self.done, 1) * (self.total - self.done)
        return elapsed * max(self.cost_total - self.cost_done, 0.0) / self.cost_done

    def update(self, cell: Cell, record: dict[str, Any]) -> None:
        self.done += 1
        self.cost_done += self.cost.get(cell.hash, 0.0)
        status = "done" if record["status"] == OK else f"FAILED ({record.get('error', '')[:120]})"
        if self.bar is not None:
            self.bar.set_postfix_str(
                f"{cell.label} {record['status']}; about {_duration(self.left())} left",
                refresh=False,
            )
            self.bar.update(1)
            if record["status"] != OK:
                self.bar.write(f"cell {cell.hash} ({cell.label}) {status}")
            return
        if self.quiet and record["status"] == OK:
            return
        left = self.left()
        seconds = record.get("seconds")
        took = f" in {seconds:.1f} s" if isinstance(seconds, int | float) else ""
        self.echo(
            f"[{self.done}/{self.total}] {cell.label} ({cell.hash}) {status}{took}; "
            f"about {_duration(left)} left"
        )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
