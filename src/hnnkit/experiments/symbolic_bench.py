r"""The symbolic-recovery benchmark: how often does the KAN-HNN read back the true
Hamiltonian, and how often does SINDy read back the true vector field, on the same data?

The grid is systems × noise levels × seeds; one **cell** is one (system, noise, seed). A cell

1. simulates the system (:func:`hnnkit.data.generate`, noise-free) and adds Gaussian noise of
   ``noise`` times each state coordinate's standard deviation (over all trajectories) to the
   states; the targets stay the true :math:`\dot x` at the clean states (hnnkit's
   convention), so both methods regress the *same* noisy states on the *same* targets, on the
   same training split (the first half of the trajectories);
2. trains a KAN-HNN (L-BFGS, a few restarts) and extracts :math:`H` (and :math:`D` for the
   damped spring) with :mod:`hnnkit.symbolic`, on the system's edge library;
3. fits SINDy (:mod:`hnnkit.experiments.sindy_baseline`) on the matching library: monomials of
   the coordinates to the edges' degree (4), plus :math:`\sin`/:math:`\cos` of each coordinate
   where the KAN's library has them;
4. judges both with :func:`hnnkit.experiments.term_match.match_terms` at 1 %: the KAN's
   :math:`H` (constant allowed; and :math:`D`), SINDy's field component by component (no
   constant allowed);
5. writes ``cells/<system>/noise-<level>/seed-<seed>.json`` atomically, with the settings,
   the formulas, the verdicts, the fit times and provenance. A rerun skips every cell whose
   file holds the same settings.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sympy
import torch

from ..data import Dataset, generate
from ..errors import HnnkitValueError, check_choice
from ..files import DirectoryLock, atomic_write_json, atomic_write_text
from ..models import build_model
from ..report import provenance
from ..report.results import read_json
from ..report.symbolic_bench import bench_table
from ..symbolic import (
    POLYNOMIAL_LIBRARY,
    extract_dissipative,
    extract_hamiltonian,
    phase_space_symbols,
)
from ..systems import Custom, HamiltonianSystem, get_system
from ..train import restart_seed, train_with_restarts
from .kan_recover import default_widths
from .sindy_baseline import DEFAULT_THRESHOLD, fit_sindy
from .term_match import match_all, match_terms

#: Noise levels of the grid: fractions of each state coordinate's standard deviation.
NOISE_LEVELS: tuple[float, ...] = (0.0, 0.01, 0.05, 0.10)
#: Recorded in every cell's config: bumped when the pipeline of a cell changes (the extraction
#: included), so that a rerun recomputes the cells an older pipeline wrote.
BENCH_VERSION = 2
#: The success tolerance: relative error of every coefficient.
RTOL = 0.01
TRIG_LIBRARY: tuple[str, ...] = (*POLYNOMIAL_LIBRARY, "sin", "cos")
RADIAL_LIBRARY: tuple[str, ...] = (*POLYNOMIAL_LIBRARY, "sqrt", "1/x")


@dataclass(frozen=True)
class BenchSystem:
    r"""One system of the grid.

    Attributes:
        make: builds the system.
        hamiltonian: the true :math:`H` in :func:`~hnnkit.symbolic.phase_space_symbols`.
        dof: degrees of freedom.
        widths: the KAN's widths.
        library: the KAN edge library (:data:`hnnkit.symbolic.LIBRARY` names).
        trig: SINDy's library gets :math:`\sin`, :math:`\cos` of each coordinate.
        polynomial: :math:`H` is a polynomial (the issue's targets are on these).
        gamma: friction rate (the damped spring: :math:`D = \gamma p^2/2`, Rayleigh form).
    """

    make: Callable[[], HamiltonianSystem]
    hamiltonian: str
    dof: int
    widths: tuple[int, ...]
    library: tuple[str, ...] = POLYNOMIAL_LIBRARY
    trig: bool = False
    polynomial: bool = True
    gamma: float = 0.0

    @property
    def dissipation(self) -> str | None:
        return f"{self.gamma / 2!r}*p**2" if self.gamma else None


def _coupled(n: int) -> str:
    kinetic = " + ".join(f"p{i}**2/2" for i in range(1, n + 1))
    springs = " + ".join(f"q{i}**2/2" for i in range(1, n + 1))
    coupling = " + ".join(f"(q{i} - q{i + 1})**2/2" for i in range(1, n))
    return f"{kinetic} + {springs} + {coupling}"


_HH = "(p1**2 + p2**2)/2 + (q1**2 + q2**2)/2 + q1**2*q2 - q2**3/3"
_DUFFING = "p**2/2 + q**2/2 + q**4/4"
_TWO_BODY = "(p1**2 + p2**2 + p3**2 + p4**2)/2 - 1/sqrt((q1 - q3)**2 + (q2 - q4)**2)"

#: The grid's systems.
SYSTEMS: dict[str, BenchSystem] = {
    "spring": BenchSystem(lambda: get_system("spring"), "q**2 + p**2", 1, (2, 1, 1)),
    "pendulum": BenchSystem(
        lambda: get_system("pendulum"),
        "3*(1 - cos(q)) + p**2",
        1,
        (2, 1, 1),
        TRIG_LIBRARY,
        trig=True,
        polynomial=False,
    ),
    "duffing": BenchSystem(lambda: Custom(_DUFFING, name="duffing"), _DUFFING, 1, (2, 1, 1)),
    "henon-heiles": BenchSystem(
        lambda: Custom(_HH, dof=2, radius_range=(0.1, 0.5), name="henon-heiles"),
        _HH,
        2,
        default_widths(2),
    ),
    "coupled-2": BenchSystem(lambda: Custom(_coupled(2), dof=2), _coupled(2), 2, default_widths(2)),
    "coupled-3": BenchSystem(lambda: Custom(_coupled(3), dof=3), _coupled(3), 3, default_widths(3)),
    "two-body": BenchSystem(
        lambda: get_system("two-body"),
        _TWO_BODY,
        4,
        default_widths(4),
        RADIAL_LIBRARY,
        polynomial=False,
    ),
    "damped-spring": BenchSystem(
        lambda: get_system("damped-spring"), "q**2 + p**2", 1, (2, 1, 1), gamma=0.1
    ),
}


@dataclass(frozen=True)
class BenchSettings:
    """How each cell is run (recorded in every cell file; a cell reruns when they change).

    Attributes:
        n_trajectories: simulated trajectories (half of them held out).
        n_points: samples per trajectory.
        steps: L-BFGS steps of the KAN (the restart steps included).
        restarts: KAN initialisations tried for ``restart_steps`` each; the best continues.
        restart_steps: steps per restart candidate.
        grid: spline intervals per KAN edge.
        sindy_threshold: STLSQ's threshold.
        sindy_degree: SINDy's polynomial degree (the KAN edges' degree).
        rtol: the success tolerance.
    """

    n_trajectories: int = 20
    n_points: int = 30
    steps: int = 20
    restarts: int = 2
    restart_steps: int = 5
    grid: int = 5
    sindy_threshold: float = DEFAULT_THRESHOLD
    sindy_degree: int = 4
    rtol: float = RTOL


#: Run-length profiles: ``quick`` checks the pipeline in about a minute.
PROFILES: dict[str, BenchSettings] = {
    "default": BenchSettings(),
    "quick": BenchSettings(n_trajectories=10, steps=10, restarts=1, restart_steps=0),
}

#: The ``--quick`` grid: one cell per method path (conservative and dissipative), two noises.
QUICK_GRID: dict[str, tuple[Any, ...]] = {
    "systems": ("spring", "damped-spring"),
    "noise": (0.0, 0.05),
    "seeds": (0,),
}


def check_grid(
    systems: Sequence[str], noise: Sequence[float], seeds: Sequence[int]
) -> tuple[list[str], list[float], list[int]]:
    """Validate a grid's axes.

    Raises:
        UnknownNameError: on an unknown system.
        HnnkitValueError: on a noise level outside :data:`NOISE_LEVELS`, a negative seed or
            an empty axis.
    """
    for s in systems:
        check_choice("benchmark system", s, SYSTEMS)
    for n in noise:
        if not any(abs(n - lv) < 1e-12 for lv in NOISE_LEVELS):
            raise HnnkitValueError(
                f"noise level {n} is not in the grid; choose among "
                f"{', '.join(f'{lv:g}' for lv in NOISE_LEVELS)} (fractions of each state's std)"
            )
    if any(int(s) < 0 for s in seeds):
        raise HnnkitValueError(f"seeds must be >= 0, got {list(seeds)}")
    if not systems or not noise or not seeds:
        raise HnnkitValueError("the grid needs at least one system, noise level and seed")
    return list(systems), [float(n) for n in noise], [int(s) for s in seeds]


def bench_data(name: str, noise: float, seed: int, settings: BenchSettings) -> Dataset:
    """The cell's data: simulated without noise, then states get ``noise`` × each
    coordinate's std of Gaussian noise (targets stay the clean field)."""
    data = generate(
        SYSTEMS[name].make(),
        n_trajectories=settings.n_trajectories,
        n_points=settings.n_points,
        noise_std=0.0,
        seed=seed,
        test_fraction=0.5,
    )
    clean = data.x_clean if data.x_clean is not None else data.x
    std = clean.reshape(-1, clean.shape[-1]).std(0)
    gen = torch.Generator().manual_seed(restart_seed(seed, 1 + round(noise * 1000)))
    x = clean + noise * std * torch.randn(clean.shape, generator=gen, dtype=clean.dtype)
    return dataclasses.replace(data, x=x, config={**data.config, "relative_noise": noise})


def true_field(system: BenchSystem) -> list[sympy.Expr]:
    r"""The true :math:`\dot x = J\nabla H` (minus :math:`\gamma p` in :math:`\dot p`)."""
    sym = phase_space_symbols(system.dof)
    h = sympy.sympify(system.hamiltonian, locals={str(s): s for s in sym})
    q, p = sym[: system.dof], sym[system.dof :]
    return [sympy.diff(h, s) for s in p] + [
        -sympy.diff(h, s) - system.gamma * ps for s, ps in zip(q, p, strict=True)
    ]


def _fit_kan(system: BenchSystem, data: Dataset, seed: int, st: BenchSettings):
    x_train = data.split("train")[0].to(torch.float64)
    dim = x_train.shape[-1]

    def build(r: int):
        gen = torch.Generator().manual_seed(restart_seed(seed, r))
        model = build_model(
            "kan",
            dim,
            generator=gen,
            widths=list(system.widths),
            grid=st.grid,
            dissipative=bool(system.gamma),
            x=x_train,
        )
        return model, None

    model, _ = train_with_restarts(
        build,
        data,
        steps=st.steps,
        restarts=st.restarts,
        restart_steps=st.restart_steps or None,
        grids=(st.grid,),
        fit_options={"optimizer": "lbfgs", "lr": 1.0, "seed": seed},
    )
    model = model.cpu()
    with warnings.catch_warnings():  # the verdict, not a warning, reports a bad formula
        warnings.simplefilter("ignore")
        if system.gamma:
            return extract_dissipative(model, data, library=system.library)
        model.energy_net.prune(x_train)
        return extract_hamiltonian(model, data, library=system.library)


def _verdict(matches: list[Any]) -> dict[str, Any]:
    return {
        "success": all(m.success for m in matches),
        "worst_error": max(m.worst_error for m in matches),
        "why": [m.summary() for m in matches],
    }


def run_kan_cell(name: str, data: Dataset, seed: int, st: BenchSettings) -> dict[str, Any]:
    """Train and extract; the verdict on :math:`H` (and :math:`D`) at ``st.rtol``."""
    system = SYSTEMS[name]
    sym = phase_space_symbols(system.dof)
    start = time.perf_counter()
    try:
        found = _fit_kan(system, data, seed, st)
    except (HnnkitValueError, RuntimeError) as exc:  # e.g. every edge pruned away
        seconds = time.perf_counter() - start
        return {"success": False, "seconds": seconds, "error": str(exc), "worst_error": None}
    seconds = time.perf_counter() - start
    h = found.hamiltonian if system.gamma else found
    matches = [match_terms(h.expr, system.hamiltonian, sym, rtol=st.rtol)]
    out: dict[str, Any] = {"hamiltonian": sympy.sstr(h.expr, full_prec=True)}
    if system.gamma:
        matches.append(match_terms(found.expr, system.dissipation, sym, rtol=st.rtol))
        out["dissipation"] = sympy.sstr(found.expr, full_prec=True)
    losses = h.losses if not system.gamma else found.losses
    return {**_verdict(matches), **out, "seconds": seconds, "losses": dict(losses)}


def run_sindy_cell(name: str, data: Dataset, st: BenchSettings) -> dict[str, Any]:
    """SINDy on the training split; the verdict on each field component at ``st.rtol``."""
    system = SYSTEMS[name]
    sym = phase_space_symbols(system.dof)
    x, dx = (v.reshape(-1, v.shape[-1]).numpy() for v in data.split("train"))
    fit = fit_sindy(
        x, dx, sym, degree=st.sindy_degree, trig=system.trig, threshold=st.sindy_threshold
    )
    matches = match_all(fit.field, true_field(system), sym, rtol=st.rtol, allow_constant=False)
    field = [sympy.sstr(e, full_prec=True) for e in fit.field]
    return {**_verdict(matches), "field": field, "seconds": fit.seconds}


def cell_path(out: Path, name: str, noise: float, seed: int) -> Path:
    """Where a cell's result lives."""
    return out / "cells" / name / f"noise-{noise:g}" / f"seed-{seed}.json"


def cell_config(name: str, noise: float, seed: int, st: BenchSettings, sindy: bool) -> dict:
    """Everything that decides a cell's result (a cell file with another config is rerun)."""
    system = SYSTEMS[name]
    return {
        "bench_version": BENCH_VERSION,
        "system": name,
        "hamiltonian": system.hamiltonian,
        "dissipation": system.dissipation,
        "widths": list(system.widths),
        "library": list(system.library),
        "noise": noise,
        "seed": seed,
        "sindy": sindy,
        "settings": dataclasses.asdict(st),
    }


def run_cell(
    out: Path, name: str, noise: float, seed: int, st: BenchSettings, *, sindy: bool = True
) -> tuple[dict[str, Any], bool]:
    """Run one cell unless its file already holds this config; returns ``(result, ran)``."""
    path = cell_path(out, name, noise, seed)
    config = cell_config(name, noise, seed, st, sindy)
    old, _ = read_json(path) if path.is_file() else (None, None)
    if isinstance(old, dict) and old.get("config") == config:
        return old, False
    torch.set_num_threads(1)
    data = bench_data(name, noise, seed, st)
    result = {
        "config": config,
        "kan": run_kan_cell(name, data, seed, st),
        "sindy": run_sindy_cell(name, data, st) if sindy else None,
        "provenance": provenance(),
    }
    atomic_write_json(path, result)
    return result, True


def run_bench(
    out: str | Path,
    systems: Sequence[str],
    noise: Sequence[float],
    seeds: Sequence[int],
    settings: BenchSettings,
    *,
    sindy: bool = True,
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Run (or resume) the grid into ``out``; returns every cell's result, in grid order.

    Cells run seed by seed (every system and noise level for seed 0 first), so a stopped run
    leaves whole seeds. ``out`` is locked while it runs.
    """
    systems, noise, seeds = check_grid(systems, noise, seeds)
    if sindy:
        from .sindy_baseline import require_pysindy

        require_pysindy()
    out = Path(out)
    results = []
    with DirectoryLock(out):
        for seed in seeds:
            for name in systems:
                for level in noise:
                    res, ran = run_cell(out, name, level, seed, settings, sindy=sindy)
                    results.append(res)
                    if log is not None:
                        k, s = res["kan"], res["sindy"]
                        verdict = f"KAN {'ok' if k['success'] else 'fail'} ({k['seconds']:.1f} s)"
                        if s is not None:
                            verdict += f", SINDy {'ok' if s['success'] else 'fail'}"
                        log(
                            f"{name:14s} noise {level:<5g} seed {seed}: {verdict}"
                            f"{'' if ran else ' [done before]'}"
                        )
    return results


def sindy_sweep(
    systems: Sequence[str],
    noise: Sequence[float],
    seeds: Sequence[int],
    settings: BenchSettings,
    thresholds: Sequence[float],
) -> list[dict[str, Any]]:
    """SINDy alone on the grid's data at each STLSQ threshold (seconds: no KAN is trained).

    Returns one result per (threshold, system, noise, seed) shaped like a cell (``config``
    with ``threshold``, ``sindy``; ``kan`` is ``None``), for :func:`~hnnkit.report.
    symbolic_bench.bench_table`. It shows how much of SINDy's verdict is its threshold.
    """
    systems, noise, seeds = check_grid(systems, noise, seeds)
    if not thresholds or min(thresholds) <= 0:
        raise HnnkitValueError(f"SINDy thresholds must be > 0, got {list(thresholds)}")
    out = []
    for name in systems:
        for level in noise:
            for seed in seeds:
                data = bench_data(name, level, seed, settings)
                for thr in thresholds:
                    st = dataclasses.replace(settings, sindy_threshold=float(thr))
                    config = {"system": f"{name} @ {thr:g}", "noise": level, "seed": seed}
                    out.append(
                        {"config": config, "kan": None, "sindy": run_sindy_cell(name, data, st)}
                    )
    return out


def all_cells(out: str | Path) -> list[dict[str, Any]]:
    """Every cell result under ``out/cells`` (whatever grid wrote it), sorted by system (in
    :data:`SYSTEMS` order), noise and seed."""
    found = []
    for path in sorted(Path(out).glob("cells/*/noise-*/seed-*.json")):
        res, _ = read_json(path)
        if isinstance(res, dict) and isinstance(res.get("config"), dict):
            found.append(res)
    order = list(SYSTEMS)

    def key(r: dict[str, Any]) -> tuple[int, float, int]:
        c = r["config"]
        return (
            order.index(c["system"]) if c["system"] in order else len(order),
            c["noise"],
            c["seed"],
        )

    return sorted(found, key=key)


def write_report(out: str | Path, command: str | None = None) -> str:
    """Write ``out/table.md`` from every cell in ``out`` and return the table.

    The page names the command (when given), the cells it holds and the settings.
    """
    cells = all_cells(out)
    if not cells:
        raise HnnkitValueError(f"{out} holds no benchmark cells (cells/*/noise-*/seed-*.json)")
    polynomial = [n for n, s in SYSTEMS.items() if s.polynomial]
    table = bench_table(cells, polynomial=polynomial)
    settings = {json_key(c["config"]["settings"]) for c in cells}
    lines = ["# Symbolic-recovery benchmark", ""]
    if command:
        lines += ["```", command, "```", ""]
    lines += [
        f"{len(cells)} cells. Success: exactly the true terms, every coefficient within "
        f"{100 * cells[0]['config']['settings']['rtol']:g}% (KAN-HNN: H, and D for the damped "
        "spring, an additive constant allowed; SINDy: every component of the vector field).",
        "",
        table,
        "Settings: " + "; ".join(sorted(settings)),
        "",
    ]
    text = "\n".join(lines)
    atomic_write_text(Path(out) / "table.md", text)
    return table


def json_key(d: dict[str, Any]) -> str:
    """A dict as compact sorted ``k=v`` text."""
    return ", ".join(f"{k}={v}" for k, v in sorted(d.items()))


__all__ = [
    "BENCH_VERSION",
    "NOISE_LEVELS",
    "PROFILES",
    "QUICK_GRID",
    "RTOL",
    "SYSTEMS",
    "BenchSettings",
    "BenchSystem",
    "all_cells",
    "bench_data",
    "cell_config",
    "cell_path",
    "check_grid",
    "run_bench",
    "run_cell",
    "run_kan_cell",
    "run_sindy_cell",
    "sindy_sweep",
    "true_field",
    "write_report",
]
