"""Benchmark: SympNets (one-step maps) against the HNN on the paper's spring and pendulum data.

Each cell is one :class:`hnnkit.experiments.spec.Experiment` (default data of the system, the
model's registered training defaults, the corrected protocol over the system's task span) run
with :func:`hnnkit.experiments.run.run_experiment`, so a finished run is reused when the
script is run again. The table shows, per system and model, mean ± standard error over the
seeds of each seed's mean over held-out trajectories:

* ``test_loss``: derivative MSE on the held-out points (a map: its central-difference
  derivative, see :mod:`hnnkit.evaluate.maps`);
* ``rollout_mse``, ``valid_time``, ``energy_drift``: the corrected protocol (a map on the grid
  of its time step);
* ``symplecticity``: the defect of one step (a field: implicit midpoint over the output
  interval; a map: its own step);
* ``ms/step``: training time per optimisation step.

Usage::

    python benchmarks/bench_maps.py                     # spring and pendulum, 3 seeds
    python benchmarks/bench_maps.py --seeds 1 --steps 200 --out /tmp/quick
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from hnnkit.experiments.run import run_experiment
from hnnkit.experiments.spec import DataSpec, Experiment, ModelSpec, TrainSpec

COLUMNS = ("test_loss", "rollout_mse", "valid_time", "energy_drift", "symplecticity")


def _mean_sem(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return mean, math.sqrt(var / n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", default="spring,pendulum")
    parser.add_argument("--models", default="hnn,g-sympnet,la-sympnet")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=None, help="default: each model's")
    parser.add_argument("--out", default="runs/bench_maps")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    table: dict[str, dict[str, dict[str, list[float]]]] = {}
    for system in args.systems.split(","):
        for model in args.models.split(","):
            cell = table.setdefault(system, {}).setdefault(model, {})
            for seed in range(args.seeds):
                exp = Experiment(
                    DataSpec(system=system),
                    ModelSpec(model),
                    TrainSpec(steps=args.steps),
                    seed=seed,
                    name=f"{system}-{model}-s{seed}",
                )
                run_dir, metrics = run_experiment(exp, args.out, quiet=True, echo=lambda s: None)
                steps = json.loads((run_dir / "config.json").read_text())["steps"]
                for key in COLUMNS:
                    cell.setdefault(key, []).append(metrics[key]["mean"])
                cell.setdefault("ms/step", []).append(1e3 * metrics["train_seconds"] / steps)
                print(f"{system} {model} seed {seed}: done ({run_dir})", flush=True)
    header = ("system", "model", *COLUMNS, "ms/step")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for system, models in table.items():
        for model, cell in models.items():
            parts = []
            for key in (*COLUMNS, "ms/step"):
                mean, sem = _mean_sem(cell[key])
                parts.append(f"{mean:.3g} ± {sem:.1g}")
            print(f"| {system} | {model} | " + " | ".join(parts) + " |")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "table.json").write_text(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
