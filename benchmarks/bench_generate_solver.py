"""Benchmark: ``hnnkit.data.generate`` with two versions of ``hnnkit.integrate``, interleaved.

Loads an older ``integrate.py`` (``--old``, e.g. ``git show eabf31f:src/hnnkit/integrate.py >
/tmp/integrate_old.py``: dopri5 landing on every output time) next to the current one, swaps
the data module's ``odeint`` between them, and times ``generate(task, cache=False)`` with the
task's defaults, repeats interleaved (old, new, old, new, ...), 1 thread. Prints the medians,
the ratio new/old, the field evaluations of each and the max abs difference of the states.

Usage::

    python benchmarks/bench_generate_solver.py --old /tmp/integrate_old.py --tasks two-body,three-body
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time

import torch

import hnnkit.data._generate as generate_module
from _common import machine_line
from hnnkit.data import generate


def counting(solver, calls):
    def run(f, *args, **kwargs):
        def g(t, x):
            calls[0] += 1
            return f(t, x)

        return solver(g, *args, **kwargs)

    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--old", required=True, help="path of the older integrate.py")
    ap.add_argument("--tasks", default="two-body,three-body")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    spec = importlib.util.spec_from_file_location("hnnkit._integrate_old", args.old)
    old = importlib.util.module_from_spec(spec)
    sys.modules["hnnkit._integrate_old"] = old
    spec.loader.exec_module(old)
    solvers = {"old": old.odeint, "new": generate_module.odeint}
    print("bench_generate_solver: " + machine_line(1))
    for task in args.tasks.split(","):
        times: dict[str, list[float]] = {name: [] for name in solvers}
        states, evals = {}, {}
        for r in range(args.repeats):
            for name, solver in solvers.items():
                calls = [0]
                generate_module.odeint = counting(solver, calls)
                t0 = time.perf_counter()
                data = generate(task, cache=False)
                times[name].append(time.perf_counter() - t0)
                states[name], evals[name] = data.x_clean, calls[0]
                print(f"  {task} {name} repeat {r + 1}: {times[name][-1]:.2f} s", flush=True)
        generate_module.odeint = solvers["new"]
        med = {name: statistics.median(v) for name, v in times.items()}
        diff = float((states["old"] - states["new"]).abs().max())
        print(
            f"{task}: old {med['old']:.2f} s ({evals['old']} field evaluations), new "
            f"{med['new']:.2f} s ({evals['new']}); new/old {med['new'] / med['old']:.2f}; "
            f"max |x_old - x_new| = {diff:.1e}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
