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

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ..data import generate
from ..errors import HnnkitValueError, check_choice
from ..evaluate import aggregate, compare_rollouts
from ..files import atomic_write_json, atomic_write_text
from ..models import HNN
from ..report.kan import formula_summary, formula_text, kan_spring_figures, pruning_summary
from ..symbolic import DEFAULT_LIBRARY, SymbolicHamiltonian, extract_hamiltonian
from ..systems import HamiltonianSystem, get_system
from ..train import restart_seed
from ._seeds import run_seeds
from .kan_settings import (
    ENERGY_OUTPUT,
    LAMBDA_L1,
    LR,
    MODELS,
    N_TRAJECTORIES,
    PROFILES,
    SEED_REPORT,
    T_SPAN,
    TEST_FRACTION,
    VARIANTS,
    Profile,
    Variant,
    run_config,
)
from .kan_training import finish_run, make_model, split_losses, train_model


# -- the experiment -------------------------------------------------------------------------------
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
    dict), ``formula.txt``, and for each KAN a standard run directory ``kan-hnn/`` /
    ``kan-hnn-l1/`` (``config.json``, ``checkpoint.pt`` with the ``symbolic`` entry,
    ``log.csv``, ``metrics.json``), which ``hnnkit symbolic`` and ``hnnkit evaluate`` read as
    any ``hnnkit train --model kan`` run. Nothing else is written.

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
    data = generate(
        system,
        N_TRAJECTORIES,
        var.n_points,
        T_SPAN,
        var.noise_std,
        seed,
        test_fraction=TEST_FRACTION,
    )
    x_train = data.split("train")[0]

    models: dict[str, HNN] = {}
    logs: dict[str, dict[str, Any]] = {}
    for name in MODELS:
        kan_run = name.startswith("kan")  # a KAN's directory is a standard run directory
        models[name], logs[name] = train_model(
            name,
            data,
            prof,
            seed=seed,
            restarts=restarts,
            grids=grids,
            device=dev,
            quiet=quiet,
            run_dir=out / name if kan_run else None,
            config=run_config(
                name, variant, profile, prof, seed=seed, restarts=restarts, grids=grids
            ),
        )
    results: dict[str, Any] = {"models": {}}
    for name in MODELS:
        train, test = split_losses(models[name], data)
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
        train_after, test_after = split_losses(models[name], data)
        results["pruning"][name] = {
            **pruning_summary(pr, net, unused_output=1 - ENERGY_OUTPUT),
            "train_loss_after": train_after,
            "test_loss_after": test_after,
        }
        symbolic[name] = extract_hamiltonian(models[name], data, library=DEFAULT_LIBRARY)
        finish_run(out / name, models[name], data, logs[name], pr)
    results["unused_output_pruned"] = results["pruning"]["kan-hnn-l1"]["unused_output_pruned"]
    spring = variant.startswith("spring")
    results.update(formula_summary(symbolic["kan-hnn"], symbolic["kan-hnn-l1"], spring=spring))
    results["expected"] = var.expected

    # Rollouts from x0: every model, the extracted formula and the true system, same solver.
    t = torch.linspace(0.0, prof.rollout_time, prof.rollout_points, dtype=torch.float64, device=dev)
    x0 = torch.tensor(var.x0, dtype=torch.float64, device=dev)
    fields = {name: models[name].vector_field for name in MODELS}
    fields["kan-symbolic"] = symbolic["kan-hnn"].to_system().vector_field
    trajs, energies, results["rollout"] = compare_rollouts(
        system, fields, x0, t, rtol=prof.rollout_rtol
    )
    results["rollout"]["settings"] = {
        "x0": list(var.x0),
        "t_end": prof.rollout_time,
        "points": prof.rollout_points,
        "method": "dopri5",
        "rtol": prof.rollout_rtol,
        "atol": prof.rollout_rtol,
    }
    results["figures"] = kan_spring_figures(
        figs,
        logs=logs,
        t=t,
        trajs=trajs,
        energies=energies,
        models=models,
        formulas={name: symbolic[name] for name in ("kan-hnn", "kan-hnn-l1")},
        x=x_train,
    )
    results["settings"] = {
        "variant": variant,
        "system": repr(system),
        "noise_std": var.noise_std,
        "n_trajectories": N_TRAJECTORIES,
        "n_points": var.n_points,
        "t_span": list(T_SPAN),
        "test_fraction": TEST_FRACTION,
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
        out / "formula.txt", formula_text(symbolic["kan-hnn"], symbolic["kan-hnn-l1"])
    )
    return results


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
        pooled = aggregate([{"mean": v, "sem": None} for v in values])  # mean ± SEM over seeds
        return {k: None if v is None else v * scale for k, v in pooled.items()}

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
    "make_model",
    "reproduce_task",
    "restart_seed",
    "run_kan_spring",
]
