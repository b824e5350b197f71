"""Benchmark: the cost of one cell of a grid, measured on a few cells with fewer training steps.

Runs the seed-0 cells named by ``--cells SYSTEM/MODEL,...`` of a built-in grid (default:
``default``) through :func:`hnnkit.experiments.bench_cell.run_cell` with ``--steps`` training
steps (``--kan-steps`` for the KAN-HNN), and extrapolates each to the grid's own steps: the
CPU seconds of training scale linearly with the steps, the rest (data, evaluation) is kept.
CPU seconds (the process's CPU time) stand for the wall time on an idle core; the wall times
and load average are printed beside them.

Usage::

    python benchmarks/bench_cell_cost.py --cells double-pendulum/hnn,fpu-beta/baseline --steps 100
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace

import torch

from _common import machine_line
from hnnkit.experiments.bench_cell import run_cell
from hnnkit.experiments.grid import load_grid


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--grid", default="default")
    ap.add_argument("--cells", default="double-pendulum/hnn,double-pendulum/baseline")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--kan-steps", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)
    grid = load_grid(args.grid)
    print(machine_line(1))
    print(f"command: python benchmarks/bench_cell_cost.py {' '.join(sys.argv[1:])}".rstrip())
    for item in args.cells.split(","):
        system, model = item.split("/")
        cell = next(c for c in grid.cells if (c.system, c.model, c.seed) == (system, model, 0))
        full = int(cell.experiment.train.steps or 0)
        steps = args.kan_steps if model == "kan" else args.steps
        exp = replace(cell.experiment, train=replace(cell.experiment.train, steps=steps))
        load = os.getloadavg()[0]
        r = run_cell(exp.to_dict())
        if r["status"] != "ok":
            print(f"{item}: failed: {r['error']}")
            continue
        share = r["cpu_seconds"] / r["seconds"]  # this process's share of a core
        train_cpu = r["train_seconds"] * share
        estimate = r["cpu_seconds"] - train_cpu + train_cpu * full / steps
        print(
            json.dumps(
                {
                    "cell": item,
                    "steps": steps,
                    "full_steps": full,
                    "wall_s": round(r["seconds"], 1),
                    "cpu_s": round(r["cpu_seconds"], 1),
                    "train_cpu_s": round(train_cpu, 1),
                    "estimate_full_cpu_s": round(estimate, 0),
                    "load": round(load, 1),
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
