"""Benchmark: ``hnnkit bench`` throughput, sequential against 2 local workers against Ray.

Runs the cells of one grid (default: the built-in ``smoke`` grid, 18 cells of 30 training
steps) through each engine in the same process, one after the other:

* ``sequential``: one cell after the other in this process (``--workers 1``);
* ``local x2``: a pool of 2 worker processes (``--workers 2``; forked on Linux, spawned
  elsewhere), their start included;
* ``ray x2``: Ray tasks on a local Ray instance of 2 CPUs, started before the clock (its start
  is timed and printed separately), the Ray workers' start included.

The cells start costliest first, as ``hnnkit bench`` starts them, after one untimed cell that
warms up this process (torch's and hnnkit's first-call costs, paid once per process).

Each engine runs the cells only (:func:`hnnkit.experiments.engines.run_jobs`, as ``hnnkit
bench`` does; the leaderboard, the same for every engine, is left out), reports cells per
minute, and the script checks that every engine gave the same numbers. Ray's per-cell
overhead against the process pool is ``(T_ray - T_pool) / cells``.

Usage::

    python benchmarks/bench_sweep.py                    # smoke grid, all three engines
    python benchmarks/bench_sweep.py --steps 200        # longer cells (less start-up share)
    python benchmarks/bench_sweep.py --no-ray
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import tomllib

import torch

from _common import machine_line
from hnnkit.experiments import bench_cell
from hnnkit.experiments.engines import run_jobs, start_ray
from hnnkit.experiments.grid import builtin_grids, longest_first, parse_grid


def numbers(record: dict) -> dict:
    """A record's numbers (metrics and curves), not its timings."""
    return {
        "status": record["status"],
        "metrics": record.get("metrics"),
        "curves": record.get("curves"),
    }


def timed(label: str, jobs: list, **engine) -> tuple[float, dict]:
    bench_cell._DATA.clear()  # every engine simulates its data sets (forked workers would not)
    t0 = time.perf_counter()
    records = dict(run_jobs(jobs, **engine))
    seconds = time.perf_counter() - t0
    failed = [k for k, r in records.items() if r["status"] != "ok"]
    print(
        f"{label:<12} {seconds:7.1f} s  {60 * len(jobs) / seconds:6.1f} cells/min"
        + (f"  ({len(failed)} failed: {records[failed[0]]['error']})" if failed else ""),
        flush=True,
    )
    return seconds, {k: numbers(r) for k, r in records.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--grid", default="smoke", help="a built-in grid (default smoke)")
    ap.add_argument(
        "--steps", type=int, default=None, help="training steps per cell (default: the grid's)"
    )
    ap.add_argument("--no-ray", action="store_true", help="leave Ray out")
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = tomllib.loads(builtin_grids()[args.grid].read_text(encoding="utf-8"))
    if args.steps is not None:
        data.setdefault("train", {})["steps"] = args.steps
    grid = parse_grid(data, default_name=args.grid)
    jobs = [(c.hash, c.experiment.to_dict()) for c in longest_first(grid.cells)]
    print(machine_line(1))
    print(f"grid {grid.name}: {len(jobs)} cells, {grid.cells[0].experiment.train.steps} steps each")
    print(f"command: python benchmarks/bench_sweep.py {' '.join(sys.argv[1:])}".rstrip())
    list(run_jobs(jobs[-1:], workers=1))  # untimed: the one-time start-up of torch and hnnkit
    t_seq, ref = timed("sequential", jobs, workers=1)
    t_pool, pool = timed("local x2", jobs, workers=2)
    assert pool == ref, "the local pool gave other numbers than the sequential run"
    print(f"speed-up of 2 local workers over sequential: {t_seq / t_pool:.2f}x (target >= 1.7x)")
    if not args.no_ray:
        t0 = time.perf_counter()
        ray, _ = start_ray(2, None)
        print(f"ray.init(num_cpus=2): {time.perf_counter() - t0:.1f} s (not in the times below)")
        try:
            t_ray, on_ray = timed("ray x2", jobs, engine="ray", workers=2)
        finally:
            ray.shutdown()
        assert on_ray == ref, "Ray gave other numbers than the sequential run"
        print(
            f"Ray's overhead against the process pool: {(t_ray - t_pool) / len(jobs) * 1e3:+.0f} ms "
            f"per cell ({t_ray / t_pool:.2f}x the pool's time)"
        )
    print("every engine gave the same numbers")
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
