"""Benchmark: training through the solver, hnnkit's ``dopri5`` against ``torchdiffeq.odeint``.

What is timed (issue 16, "Dense output for dopri5"): one forward solve plus ``loss.backward()``
through it, for a neural vector field

* field: an MLP 2 -> 200 -> 200 -> 2 with tanh, float32, seeded;
* states: 1000 initial states drawn from N(0, 1), seeded;
* outputs: 11 times on [0, 1]; loss: the mean square of the whole solution;
* solver: dopri5 at rtol 1e-5, atol 1e-6 (both libraries), autograd through the steps
  ("discretise, then optimise": torchdiffeq's plain ``odeint``, not the adjoint).

Both run in the same process, one thread by default, with repeats interleaved (hnnkit,
torchdiffeq, hnnkit, ...) so machine load hits both alike; medians and the ratio
median(hnnkit) / median(torchdiffeq) are printed (< 1: hnnkit is faster). Also printed: the
number of field evaluations of each (forward only; backward re-traverses the same graph), and
each solution's max abs error at the outputs against a float64 scipy DOP853 reference at
rtol = atol = 1e-12 of the same field.

torchdiffeq is a benchmark-only dependency (the ``bench`` extra); without it the script says so
and times hnnkit alone.

Usage::

    python benchmarks/bench_ode.py                  # ~1 min on 2 loaded cores
    python benchmarks/bench_ode.py --repeats 9 --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable

import numpy as np
import scipy
import torch
from scipy.integrate import solve_ivp
from torch import nn

from _common import fmt_runs, interleaved, machine_line
from hnnkit.integrate import odeint

RTOL, ATOL = 1e-5, 1e-6


class CountingField(nn.Module):
    """The MLP field ``f(t, x)``, counting its calls."""

    def __init__(self, width: int = 200, *, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.net = nn.Sequential(
            nn.Linear(2, width), nn.Tanh(), nn.Linear(width, width), nn.Tanh(), nn.Linear(width, 2)
        )
        self.calls = 0

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.net(x)


def scipy_reference(field: CountingField, x0: torch.Tensor, t: torch.Tensor) -> np.ndarray:
    """The solution at ``t`` by DOP853 at rtol = atol = 1e-12 on the float64 copy of ``field``."""
    layers = [m for m in field.net if isinstance(m, nn.Linear)]
    weights = [
        (m.weight.detach().double().numpy(), m.bias.detach().double().numpy()) for m in layers
    ]
    n = x0.shape[0]

    def rhs(_: float, y: np.ndarray) -> np.ndarray:
        h = y.reshape(n, 2)
        for i, (w, b) in enumerate(weights):
            h = h @ w.T + b
            if i < len(weights) - 1:
                h = np.tanh(h)
        return h.reshape(-1)

    tt = t.double().numpy()
    sol = solve_ivp(
        rhs,
        (tt[0], tt[-1]),
        x0.double().numpy().reshape(-1),
        method="DOP853",
        t_eval=tt,
        rtol=1e-12,
        atol=1e-12,
    )
    assert sol.success, sol.message
    return sol.y.T.reshape(len(tt), n, 2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument("--repeats", type=int, default=7, help="interleaved repeats (default 7)")
    ap.add_argument("--states", type=int, default=1000, help="initial states (default 1000)")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, args.threads))

    try:
        import torchdiffeq
    except ImportError:
        torchdiffeq = None
    versions = {"numpy": np.__version__, "scipy": scipy.__version__}
    if torchdiffeq is not None:
        versions["torchdiffeq"] = torchdiffeq.__version__
    print("bench_ode: " + machine_line(args.threads, **versions))

    field = CountingField()
    x0 = torch.randn(args.states, 2, generator=torch.Generator().manual_seed(1))
    t = torch.linspace(0.0, 1.0, 11)

    def hnnkit_solve() -> torch.Tensor:
        return odeint(field, x0, t, method="dopri5", rtol=RTOL, atol=ATOL)

    def torchdiffeq_solve() -> torch.Tensor:
        return torchdiffeq.odeint(field, x0, t, method="dopri5", rtol=RTOL, atol=ATOL)

    solvers: dict[str, Callable[[], torch.Tensor]] = {"hnnkit dopri5": hnnkit_solve}
    if torchdiffeq is None:
        print("torchdiffeq is not installed (pip install 'hnnkit[bench]'): timing hnnkit alone")
    else:
        solvers["torchdiffeq dopri5"] = torchdiffeq_solve

    reference = scipy_reference(field, x0, t)
    stats: dict[str, dict[str, float]] = {}
    for name, solve in solvers.items():
        field.calls = 0
        with torch.no_grad():
            out = solve()
        err = float(np.abs(out.double().numpy() - reference).max())
        stats[name] = {"evaluations": field.calls, "max_abs_error": err}

    def train_step(solve: Callable[[], torch.Tensor]) -> Callable[[], None]:
        def run() -> None:
            field.zero_grad()
            loss = solve().square().mean()
            loss.backward()

        return run

    print(
        f"forward + backward, {args.states} states, 11 outputs on [0, 1], float32, "
        f"rtol {RTOL:g} atol {ATOL:g}; {args.repeats} interleaved repeats"
    )
    times = interleaved([(n, train_step(s)) for n, s in solvers.items()], args.repeats, width=20)
    for name in solvers:
        med = statistics.median(times[name])
        stats[name]["median_s"] = med
        print(
            f"{name:<20s} median {med:7.3f} s  runs {fmt_runs(times[name])}  "
            f"field evaluations {stats[name]['evaluations']:3d}  "
            f"max abs error vs scipy {stats[name]['max_abs_error']:.2e}"
        )
    if torchdiffeq is not None:
        ratio = stats["hnnkit dopri5"]["median_s"] / stats["torchdiffeq dopri5"]["median_s"]
        print(f"time ratio hnnkit / torchdiffeq = {ratio:.2f} (target <= 1)")
        stats["ratio"] = {"hnnkit_over_torchdiffeq": ratio}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"threads": args.threads, "results": stats}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
