"""Benchmark: ms per L-BFGS step of hnnkit's KAN-HNN, the MLP-HNN and pykan's KAN in an HNN.

What is timed (issue 6, "Performance"): one outer step of ``torch.optim.LBFGS`` with the
settings of ``hnnkit.train.fit(optimizer="lbfgs")`` (history 10, strong Wolfe line search,
20 inner iterations, tolerances 1e-32) on the HNN loss of the ``kan-spring`` data
(750 training states of the spring, H = q² + p²), for

* ``kan``: ``HNN(2, KAN([2, 1, 2]), output_index=1)`` (hnnkit's pure-torch KAN);
* ``pykan``: the same KAN exported with ``KAN.to_pykan()`` (identical parameters, so the
  same function), inside the same ``HNN`` wrapper; only when pykan is importable;
* ``mlp``: the report's MLP-HNN, 2 → 200 tanh → 2, ``output_index=1``.

Each step's closure count differs (line searches), so the ms per closure evaluation
(forward, gradient with ``create_graph``, backward) is printed too. Every model restarts from
the same initial state for each repeat; repeats are interleaved (kan, pykan, mlp, kan, ...)
and medians reported, so machine load hits all alike. Ratios are relative to ``kan``.

Usage::

    python benchmarks/bench_kan.py                    # about a minute on 2 loaded cores
    python benchmarks/bench_kan.py --threads 1 --dtype float32 --repeats 7
    PYTHONPATH=/path/to/pykan python benchmarks/bench_kan.py   # adds the pykan row
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import platform
import statistics
import tempfile
import time

import torch
from torch import nn

from hnnkit.data import generate
from hnnkit.models import HNN, MLP
from hnnkit.models.kan import KAN
from hnnkit.systems import get_system
from hnnkit.train import derivative_loss


def lbfgs_step_timing(
    model: nn.Module, x: torch.Tensor, dx: torch.Tensor, steps: int
) -> tuple[float, float, float]:
    """(ms per L-BFGS step, ms per closure, final loss) over ``steps`` steps from ``model``'s state."""
    opt = torch.optim.LBFGS(
        [p for p in model.parameters() if p.requires_grad],
        lr=1e-3,
        max_iter=20,
        history_size=10,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-32,
        tolerance_change=1e-32,
    )
    calls = 0

    def closure() -> torch.Tensor:
        nonlocal calls
        calls += 1
        opt.zero_grad(set_to_none=True)
        loss = derivative_loss(model, x, dx)
        loss.backward()
        return loss

    t0 = time.perf_counter()
    for _ in range(steps):
        opt.step(closure)
    elapsed = time.perf_counter() - t0
    return (
        1e3 * elapsed / steps,
        1e3 * elapsed / max(calls, 1),
        float(derivative_loss(model, x, dx).detach()),
    )


def build_models(dtype: torch.dtype, with_pykan: bool) -> dict[str, nn.Module]:
    gen = torch.Generator().manual_seed(0)
    kan = KAN([2, 1, 2], grid=5, k=3, grid_range=(-2.0, 2.0), generator=gen, dtype=dtype)
    models: dict[str, nn.Module] = {"kan": HNN(2, energy_net=kan, output_index=1)}
    if with_pykan:
        cwd = os.getcwd()
        with tempfile.TemporaryDirectory() as tmp:  # pykan may write ./model
            os.chdir(tmp)
            try:
                models["pykan"] = HNN(2, energy_net=kan.to_pykan(), output_index=1)
            finally:
                os.chdir(cwd)
    mlp = MLP(2, 2, hidden=(200,), activation="tanh", generator=gen).to(dtype)
    models["mlp"] = HNN(2, energy_net=mlp, output_index=1)
    return models


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--steps", type=int, default=3, help="L-BFGS steps per timed repeat (default 3)"
    )
    ap.add_argument(
        "--repeats", type=int, default=5, help="interleaved repeats; medians reported (default 5)"
    )
    ap.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)"
    )
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    try:
        import kan  # noqa: F401

        with_pykan = True
    except ImportError:
        with_pykan = False

    system = get_system("spring", k=2.0, m=0.5, radius_range=(math.sqrt(0.1), 1.0))
    data = generate(system, 50, 30, (0.0, 3.0), 0.0, 0, test_fraction=0.5)
    x, dx = (v.to(dtype) for v in data.split("train"))
    initial = build_models(dtype, with_pykan)
    for m in initial.values():  # warm-up (allocator, lazy imports)
        lbfgs_step_timing(copy.deepcopy(m), x, dx, 1)

    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in initial}
    for _ in range(args.repeats):
        for name, m in initial.items():
            samples[name].append(lbfgs_step_timing(copy.deepcopy(m), x, dx, args.steps))

    def med(name: str, k: int) -> float:
        return statistics.median(s[k] for s in samples[name])

    result = {
        "setting": {
            "n_train": x.shape[0],
            "dtype": args.dtype,
            "threads": torch.get_num_threads(),
            "steps_per_repeat": args.steps,
            "repeats": args.repeats,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
            "pykan": with_pykan,
        },
        "models": {
            name: {
                "ms_per_step": med(name, 0),
                "ms_per_closure": med(name, 1),
                "loss_after": med(name, 2),
            }
            for name in initial
        },
    }
    ref_step, ref_call = med("kan", 0), med("kan", 1)
    print(
        f"L-BFGS on the kan-spring HNN loss: N={x.shape[0]}, {args.dtype}, {torch.get_num_threads()} threads, "
        f"{args.repeats} repeats x {args.steps} steps (medians)"
    )
    print(
        f"{'model':<8} {'ms/step':>9} {'ms/closure':>11} {'step ratio':>11} {'closure ratio':>14}  loss after"
    )
    for name, r in result["models"].items():
        print(
            f"{name:<8} {r['ms_per_step']:9.1f} {r['ms_per_closure']:11.2f} {r['ms_per_step'] / ref_step:10.2f}x "
            f"{r['ms_per_closure'] / ref_call:13.2f}x  {r['loss_after']:.3e}"
        )
    if not with_pykan:
        print("pykan is not installed: no pykan row (pip install hnnkit[pykan] to add it)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
    return result


if __name__ == "__main__":
    main()
