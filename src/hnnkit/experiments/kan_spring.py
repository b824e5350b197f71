r"""The ``kan-spring`` experiment: a KAN-HNN against an MLP-HNN, and a symbolic Hamiltonian.

Reproduces J. Crossman's report "Hamiltonian Neural Networks Project" (2024), which compares
an HNN whose energy network is a Kolmogorov–Arnold network with the original MLP-HNN on the
ideal spring, and reads :math:`H = q^2 + p^2 + c` off the trained KAN.

Setting (``variant="spring"``, the report's):

* spring with ``k = 2``, ``m = 0.5`` (so :math:`H = q^2 + p^2`), 50 trajectories × 30
  points on ``t ∈ [0, 3]``, energy in ``[0.1, 1]`` (phase-space radius in
  ``[√0.1, 1]``), 25/25 split by trajectory, no noise;
* ``mlp-hnn``: one hidden layer of 200 tanh units, 2 outputs, the energy is output 1;
* ``kan-hnn``: ``KAN([2, 1, 2])``, grid 5, cubic splines, the energy is output 1 (output 0
  is unused, to test whether L1 prunes it);
* each with and without L1 (``-l1``, λ = 5e-5): for the KAN the mean absolute edge
  activation (the KAN paper's L1), for the MLP :math:`\sum|\theta|` (the report's eq. 17);
* full-batch L-BFGS (strong Wolfe, lr 1e-3), 20 000 steps for ``profile="paper"``;
* KAN grids: the first layer's grid is fitted to the training states and the hidden grid
  starts on ``(-2, 2)``; after a quarter of the steps every grid is refitted to the range
  its inputs then take (:meth:`~hnnkit.models.kan.KAN.update_grid`), optionally followed by
  grid extension (``grids=(5, 10, 20)``);
* rollouts from :math:`(q, p) = (1, 0)` of every model, of the extracted formula and of the
  true system, all with the same adaptive Dormand–Prince solver and tolerances.

Variants: ``"spring-noisy"`` adds observation noise σ = 0.1; ``"pendulum"`` uses the
paper's pendulum :math:`H = 3(1 - \cos q) + p^2` (noise-free, rollout from (2.1, 0)).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..data import Dataset, generate
from ..errors import HnnkitValueError, check_choice
from ..files import atomic_write_json, atomic_write_text
from ..integrate import odeint
from ..models import HNN, MLP
from ..models import kan_hnn as _kan_hnn
from ..models.kan import kan_regularizer
from ..report.kan import LABELS, plot_kan_diagram, plot_losses, plot_rollouts
from ..symbolic import DEFAULT_LIBRARY, SymbolicHamiltonian, extract_hamiltonian, save_kan_run
from ..systems import HamiltonianSystem, get_system
from ..train import derivative_loss, parameter_l1, train_with_restarts
from ._seeds import run_seeds

#: The report's final losses (train, test) after 20 000 L-BFGS steps, float32, pykan 0.0.5.
SEED_REPORT: dict[str, tuple[float, float]] = {
    "mlp-hnn": (2.6696e-7, 2.6558e-7),
    "kan-hnn": (1.4791e-7, 1.4370e-7),
    "kan-hnn-l1": (2.9114e-7, 3.4841e-7),
}
MODELS = ("mlp-hnn", "mlp-hnn-l1", "kan-hnn", "kan-hnn-l1")
LAMBDA_L1 = 5e-5
LR = 1e-3
ENERGY_OUTPUT = 1  # the report's networks have 2 outputs; the energy is the second


@dataclass(frozen=True)
class Profile:
    """Run length of :func:`run_kan_spring`.

    Attributes:
        steps: L-BFGS steps per model (an upper bound when ``plateau_chunk`` is set).
        restarts: KAN initialisations tried; the best after ``restart_steps`` continues.
        restart_steps: steps each restart candidate gets before the choice.
        log_every: steps between logged train/test losses.
        plateau_chunk: train in chunks of this many steps and stop when a chunk lowers the
            objective by less than ``plateau_rtol`` (``None``: one uninterrupted run).
        plateau_rtol: relative improvement below which a chunk counts as a plateau.
        rollout_time: length of the rollouts from the initial state.
        rollout_points: output times of the rollouts.
        rollout_rtol: relative (and absolute) tolerance of the rollout solver.
    """

    steps: int
    restarts: int
    restart_steps: int
    log_every: int
    plateau_chunk: int | None
    plateau_rtol: float
    rollout_time: float
    rollout_points: int
    rollout_rtol: float


PROFILES: dict[str, Profile] = {
    "smoke": Profile(3, 1, 0, 1, None, 0.0, 2.0, 30, 1e-6),
    "quick": Profile(20, 1, 0, 1, None, 0.0, 10.0, 80, 1e-8),
    "paper": Profile(20_000, 3, 50, 50, 1000, 1e-4, 20.0, 1000, 1e-10),
}


@dataclass(frozen=True)
class Variant:
    """One system setting of the experiment.

    Attributes:
        system: registered system name.
        params: its constructor arguments.
        noise_std: observation noise standard deviation.
        n_points: samples per trajectory.
        x0: initial state of the rollouts.
        expected: the true Hamiltonian, for reports.
    """

    system: str
    params: dict[str, Any]
    noise_std: float
    n_points: int
    x0: tuple[float, float]
    expected: str


VARIANTS: dict[str, Variant] = {
    "spring": Variant(
        "spring",
        {"k": 2.0, "m": 0.5, "radius_range": (math.sqrt(0.1), 1.0)},
        0.0,
        30,
        (1.0, 0.0),
        "q**2 + p**2",
    ),
    "spring-noisy": Variant(
        "spring",
        {"k": 2.0, "m": 0.5, "radius_range": (math.sqrt(0.1), 1.0)},
        0.1,
        30,
        (1.0, 0.0),
        "q**2 + p**2",
    ),
    "pendulum": Variant("pendulum", {}, 0.0, 45, (2.1, 0.0), "3*(1 - cos(q)) + p**2"),
}


# -- models and training --------------------------------------------------------------------------
Regularizer = Callable[[nn.Module], Tensor]


# Moved to hnnkit.models.kan_hnn (the ``kan`` model of the registry); aliases kept for callers.
make_kan_hnn = _kan_hnn.make_kan_hnn
make_kan_dhnn = _kan_hnn.make_kan_dhnn


def make_model(name: str, *, generator: torch.Generator, dtype: torch.dtype = torch.float64) -> HNN:
    """Build one of :data:`MODELS` (untrained): an MLP-HNN 2→200→2 or a KAN-HNN [2, 1, 2].

    The KAN's grid range is ``(-2, 2)``; :func:`run_kan_spring` then fits the first layer's
    grid to the training states.

    Raises:
        UnknownNameError: on an unknown model name.
    """
    check_choice("model", name, MODELS)
    if name.startswith("kan"):
        return make_kan_hnn((2, 1, 2), grid=5, generator=generator, dtype=dtype)
    net = MLP(2, 2, hidden=(200,), activation="tanh", generator=generator).to(dtype)
    return HNN(2, energy_net=net, output_index=ENERGY_OUTPUT)


def restart_seed(seed: int, restart: int) -> int:
    """Seed of the initialisation of restart candidate ``restart`` of a run seeded ``seed``."""
    return 1000 * seed + restart


def _train_model(
    name: str,
    data: Dataset,
    prof: Profile,
    *,
    seed: int,
    restarts: int,
    grids: tuple[int, ...],
    device: torch.device,
    quiet: bool,
) -> tuple[HNN, dict[str, Any]]:
    x_train = data.split("train")[0].to(device, torch.float64)
    is_kan = name.startswith("kan")

    def build(r: int) -> tuple[HNN, Regularizer | None]:
        gen = torch.Generator().manual_seed(restart_seed(seed, r))
        model = make_model(name, generator=gen).to(device)
        if is_kan:
            model.energy_net.update_grid(x_train, layers=[0])
        reg = None
        if name.endswith("-l1"):
            reg = kan_regularizer(x_train, LAMBDA_L1) if is_kan else parameter_l1(LAMBDA_L1)
        return model, reg

    model, log = train_with_restarts(
        build,
        data,
        steps=prof.steps,
        restarts=restarts if is_kan else 1,
        restart_steps=prof.restart_steps or None,
        grids=grids if is_kan else None,
        log_every=prof.log_every,
        plateau_chunk=prof.plateau_chunk,
        plateau_rtol=prof.plateau_rtol,
        quiet=quiet,
    )
    log["regularizer"] = (
        None if not name.endswith("-l1") else ("kan-activation-l1" if is_kan else "parameter-l1")
    )
    return model, log


def _losses(model: nn.Module, data: Dataset) -> tuple[float, float]:
    p = next(model.parameters())
    out = []
    for part in ("train", "test"):
        x, dx = (v.to(p.device, p.dtype) for v in data.split(part))
        out.append(float(derivative_loss(model, x, dx).detach()))
    return out[0], out[1]


# -- the experiment -------------------------------------------------------------------------------
def _coefficient_check(sym: SymbolicHamiltonian, variant: str) -> dict[str, Any]:
    coefs = sym.coefficients()
    if variant.startswith("spring"):
        cq, cp = coefs.get("q**2", math.nan), coefs.get("p**2", math.nan)
        others = {k: v for k, v in coefs.items() if k not in ("q**2", "p**2", "1")}
        ok = (
            abs(cq - 1) <= 1e-3
            and abs(cp - 1) <= 1e-3
            and all(abs(v) <= 1e-3 for v in others.values())
        )
        return {
            "expected": "q**2 + p**2 + c",
            "q2": cq,
            "p2": cp,
            "other_terms": others,
            "within_1e-3": ok,
        }
    cos_terms = {k: v for k, v in coefs.items() if k.startswith("cos(")}
    return {
        "expected": "a*cos(q) + b*p**2 + c, a = -3, b = 1",
        "cos_terms": cos_terms,
        "p2": coefs.get("p**2", math.nan),
    }


def run_kan_spring(
    out_dir: str | Path,
    *,
    profile: str = "quick",
    seed: int = 0,
    quiet: bool = True,
    variant: str = "spring",
    restarts: int | None = None,
    steps: int | None = None,
    grids: tuple[int, ...] = (5,),
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Run the KAN-HNN vs MLP-HNN experiment and extract the KAN's formula.

    Writes into ``out_dir``: ``figures/`` (PNG + SVG: ``losses``, ``rollout_phase``,
    ``rollout_mse``, ``rollout_energy``, ``kan_diagram``), ``metrics.json`` (the returned
    dict), ``formula.txt`` and ``kan-hnn/kan_run.pt`` / ``kan-hnn-l1/kan_run.pt`` (what
    :func:`hnnkit.symbolic.extract_from_run` reads). Nothing else is written.

    Args:
        out_dir: output directory (created if missing).
        profile: ``"smoke"`` (seconds), ``"quick"`` (default; under a minute on 2 CPU
            cores) or ``"paper"`` (the report's 20 000 L-BFGS steps, stopping early on a
            plateau; hours on a CPU). See :data:`PROFILES`.
        seed: seeds the data (``seed``) and the initialisations; no global RNG is used.
        quiet: no progress bars when ``True`` (default).
        variant: ``"spring"`` (default), ``"spring-noisy"`` (σ = 0.1) or ``"pendulum"``.
        restarts: KAN initialisations to try (default: the profile's: 1 for smoke and quick, 3
            for paper). Each trains for the profile's ``restart_steps`` (a quarter of the steps
            when it has none); the one with the lowest training objective continues.
        steps: override the profile's L-BFGS steps per model.
        grids: grid sizes of the KANs, in order (default ``(5,)``, the report's). With several,
            the KANs' steps after the restarts are split evenly between them and the grid is
            refined (:meth:`~hnnkit.models.kan.KAN.refine`, "grid extension") between stages,
            e.g. ``(5, 10, 20)``.
        device: torch device for the models and rollouts (default ``"cpu"``).

    Returns:
        A JSON-able dict: ``models`` (final train/test losses, steps, seconds, history per
        model), ``kan_le_mlp`` (whether the KAN-HNN's train and test losses are at most the
        MLP-HNN's), ``formula`` / ``latex`` / ``coefficients`` / ``coefficients_nice`` /
        ``symbolic_losses`` (from the KAN-HNN without L1), ``formula_l1`` (the same for the
        L1 model), ``check`` (the coefficient check against the true H), ``pruning`` (per
        KAN: removed edges and nodes, edge scores) and ``unused_output_pruned`` (for the L1
        KAN), ``rollout`` (final MSE and energy MSE per model), ``figures`` and ``settings``.

    Raises:
        UnknownNameError: on an unknown ``profile`` or ``variant``.
        HnnkitValueError: on non-positive ``restarts``, ``steps`` or ``grids``.
    """
    check_choice("profile", profile, PROFILES)
    check_choice("variant", variant, VARIANTS)
    prof = PROFILES[profile]
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise HnnkitValueError(f"steps must be a positive integer, got {steps!r}")
        prof = Profile(
            **{**asdict(prof), "steps": steps, "restart_steps": min(prof.restart_steps, steps)}
        )
    grids = tuple(grids)
    if not grids or any(isinstance(g, bool) or not isinstance(g, int) or g < 1 for g in grids):
        raise HnnkitValueError(
            f"grids must be positive integers such as (5,) or (5, 10, 20), got {grids!r}"
        )
    restarts = prof.restarts if restarts is None else restarts
    if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 1:
        raise HnnkitValueError(f"restarts must be a positive integer, got {restarts!r}")
    dev = torch.device(device)
    var = VARIANTS[variant]
    out = Path(out_dir)
    figs = out / "figures"
    figs.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    system: HamiltonianSystem = get_system(var.system, **var.params)
    data = generate(system, 50, var.n_points, (0.0, 3.0), var.noise_std, seed, test_fraction=0.5)
    x_train = data.split("train")[0]

    models: dict[str, HNN] = {}
    logs: dict[str, dict[str, Any]] = {}
    for name in MODELS:
        models[name], logs[name] = _train_model(
            name, data, prof, seed=seed, restarts=restarts, grids=grids, device=dev, quiet=quiet
        )
    results: dict[str, Any] = {"models": {}}
    for name in MODELS:
        train, test = _losses(models[name], data)
        results["models"][name] = {
            "train_loss": train,
            "test_loss": test,
            "steps": logs[name]["steps"],
            "seconds": logs[name]["seconds"],
            "regularizer": logs[name]["regularizer"],
            "restart_objectives": logs[name].get("restart_objectives", []),
            "history": logs[name]["history"],
        }
    mlp, kan = results["models"]["mlp-hnn"], results["models"]["kan-hnn"]
    results["kan_le_mlp"] = (
        kan["train_loss"] <= mlp["train_loss"] and kan["test_loss"] <= mlp["test_loss"]
    )

    # Pruning, then symbolic extraction from both KANs.
    results["pruning"] = {}
    symbolic: dict[str, SymbolicHamiltonian] = {}
    for name in ("kan-hnn", "kan-hnn-l1"):
        net = models[name].energy_net
        pr = net.prune(x_train.to(dev, torch.float64))
        results["pruning"][name] = {
            "edges_removed": [list(e) for e in pr.edges],
            "nodes_removed": [list(n) for n in pr.nodes],
            "edge_scores": [s.tolist() for s in pr.scores],
            "unused_output_pruned": not net.active_nodes()[-1][1 - ENERGY_OUTPUT],
        }
        train_after, test_after = _losses(models[name], data)
        results["pruning"][name].update(
            {"train_loss_after": train_after, "test_loss_after": test_after}
        )
        symbolic[name] = extract_hamiltonian(models[name], data, library=DEFAULT_LIBRARY)
        save_kan_run(out / name / "kan_run.pt", models[name], data)
    results["unused_output_pruned"] = results["pruning"]["kan-hnn-l1"]["unused_output_pruned"]
    main = symbolic["kan-hnn"].to_dict()
    results.update(
        {
            "formula": main["formula"],
            "formula_raw": main["formula_raw"],
            "latex": main["latex"],
            "coefficients": main["coefficients"],
            "coefficients_nice": main["coefficients_nice"],
            "symbolic_losses": main["losses"],
            "symbolic_edges": main["edges"],
            "formula_l1": symbolic["kan-hnn-l1"].to_dict(),
            "check": _coefficient_check(symbolic["kan-hnn"], variant),
            "check_l1": _coefficient_check(symbolic["kan-hnn-l1"], variant),
            "expected": var.expected,
        }
    )

    # Rollouts from x0: every model, the extracted formula and the true system, same solver.
    t = torch.linspace(0.0, prof.rollout_time, prof.rollout_points, dtype=torch.float64, device=dev)
    x0 = torch.tensor(var.x0, dtype=torch.float64, device=dev)
    fields: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"truth": system.vector_field}
    fields.update({name: models[name].vector_field for name in MODELS})
    fields["kan-symbolic"] = symbolic["kan-hnn"].to_system().vector_field
    trajs, energies = {}, {}
    with torch.no_grad():
        for name, f in fields.items():
            trajs[name] = odeint(
                f, x0, t, method="dopri5", rtol=prof.rollout_rtol, atol=prof.rollout_rtol
            )
            energies[name] = system.energy(trajs[name])
    e0 = float(system.energy(x0))
    results["rollout"] = {
        name: {
            "final_mse": float((trajs[name][-1] - trajs["truth"][-1]).pow(2).mean()),
            "mean_mse": float((trajs[name] - trajs["truth"]).pow(2).mean()),
            "energy_mse": float((energies[name] - e0).pow(2).mean()),
        }
        for name in trajs
        if name != "truth"
    }
    results["rollout"]["settings"] = {
        "x0": list(var.x0),
        "t_end": prof.rollout_time,
        "points": prof.rollout_points,
        "method": "dopri5",
        "rtol": prof.rollout_rtol,
        "atol": prof.rollout_rtol,
    }

    figures: dict[str, list[Path]] = {"losses": plot_losses(logs, figs / "losses")}
    figures.update(plot_rollouts(t, trajs, energies, figs / "rollout"))
    labels = {
        LABELS[name]: {(e.layer, e.i, e.j): _pretty_fit(e.name) for e in symbolic[name].edges}
        for name in ("kan-hnn", "kan-hnn-l1")
    }
    figures["kan_diagram"] = plot_kan_diagram(
        {LABELS[name]: models[name].energy_net for name in ("kan-hnn", "kan-hnn-l1")},
        x_train,
        figs / "kan_diagram",
        edge_labels=labels,
        subtitles={
            LABELS[name]: f"H = {_pretty_formula(symbolic[name].nice)}"
            for name in ("kan-hnn", "kan-hnn-l1")
        },
    )
    results["figures"] = figures
    results["settings"] = {
        "variant": variant,
        "system": repr(system),
        "noise_std": var.noise_std,
        "n_trajectories": 50,
        "n_points": var.n_points,
        "t_span": [0.0, 3.0],
        "test_fraction": 0.5,
        "profile": profile,
        "profile_settings": asdict(prof),
        "restarts": restarts,
        "grids": list(grids),
        "seed": seed,
        "lr": LR,
        "lambda_l1": LAMBDA_L1,
        "optimizer": "lbfgs (strong Wolfe, history 10, 20 iterations per step)",
        "dtype": "float64",
        "device": str(dev),
        "seed_report": {k: list(v) for k, v in SEED_REPORT.items()},
    }
    results["seconds_total"] = time.perf_counter() - t_start
    atomic_write_json(out / "metrics.json", results)
    atomic_write_text(
        out / "formula.txt",
        f"{symbolic['kan-hnn']}\n\nraw refit: H = {main['formula_raw']}\nLaTeX: {main['latex']}\n\n"
        f"with L1: {symbolic['kan-hnn-l1']}\n",
    )
    return results


def _pretty_formula(expr) -> str:
    import sympy

    text = sympy.sstr(expr)
    for a, b in (("**2", "²"), ("**3", "³"), ("**4", "⁴"), ("*", "·")):
        text = text.replace(a, b)
    import textwrap

    return "\n".join(textwrap.wrap(text, 46, break_on_hyphens=False))


def _pretty_fit(name: str) -> str:
    return {"x^2": "x²", "x^3": "x³", "x^4": "x⁴", "const": "const"}.get(name, name)


def reproduce_task(
    out_dir: str | Path,
    *,
    profile: str = "quick",
    seeds: int = 1,
    quiet: bool = True,
    device: str = "cpu",
) -> dict[str, Any]:
    """Adapter for ``hnnkit reproduce --tasks kan-spring``: one ``results.json`` entry.

    Runs :func:`run_kan_spring` for seeds ``0..seeds-1`` in ``out_dir/seedN`` (a finished
    seed's ``metrics.json`` is reused), copies seed 0's figures to ``out_dir/figures`` and
    reports losses ×10⁷ as mean ± standard error over seeds, with the report's values in
    the ``paper`` columns.
    """
    scale = 1e7
    runs = run_seeds(
        out_dir,
        seeds,
        lambda seed_dir, s: run_kan_spring(
            seed_dir, profile=profile, seed=s, quiet=quiet, device=device
        ),
    )

    def cell(values: list[float]) -> dict[str, float | None]:
        n = len(values)
        mean = sum(values) / n
        sem = None if n < 2 else math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)
        return {"mean": mean * scale, "sem": None if sem is None else sem * scale}

    entry: dict[str, Any] = {
        "scale": scale,
        "profile": profile,
        "n_seeds": seeds,
        "models": {},
        "paper": {},
    }
    for name in MODELS:
        rows = [r["models"][name] for r in runs]
        c = {
            "n_seeds": seeds,
            "train_loss": cell([r["train_loss"] for r in rows]),
            "test_loss": cell([r["test_loss"] for r in rows]),
            "energy": cell([r["rollout"][name]["energy_mse"] for r in runs]),
        }
        c["original"] = {k: c[k] for k in ("train_loss", "test_loss", "energy")}
        entry["models"][name] = c
        if name in SEED_REPORT:
            tr, te = SEED_REPORT[name]
            entry["paper"][name] = {"train": (tr * scale, None), "test": (te * scale, None)}
    entry["formula"] = runs[0]["formula"]
    entry["latex"] = runs[0]["latex"]
    entry["kan_le_mlp"] = [r["kan_le_mlp"] for r in runs]
    entry["unused_output_pruned"] = [r["unused_output_pruned"] for r in runs]
    return entry


__all__ = [
    "MODELS",
    "PROFILES",
    "SEED_REPORT",
    "VARIANTS",
    "Profile",
    "Variant",
    "make_kan_hnn",
    "make_model",
    "plot_kan_diagram",
    "reproduce_task",
    "restart_seed",
    "run_kan_spring",
    "train_with_restarts",
]
