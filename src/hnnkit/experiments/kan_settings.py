"""Settings of the ``kan-spring`` experiment (:mod:`hnnkit.experiments.kan_spring`): its
models, run-length profiles and system variants."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

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
KAN_WIDTHS = (2, 1, 2)
#: The data: trajectories (half of them held out, whole) on ``t ∈ T_SPAN``.
N_TRAJECTORIES = 50
T_SPAN = (0.0, 3.0)
TEST_FRACTION = 0.5


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


_SPRING = {"k": 2.0, "m": 0.5, "radius_range": (math.sqrt(0.1), 1.0)}
VARIANTS: dict[str, Variant] = {
    "spring": Variant("spring", _SPRING, 0.0, 30, (1.0, 0.0), "q**2 + p**2"),
    "spring-noisy": Variant("spring", _SPRING, 0.1, 30, (1.0, 0.0), "q**2 + p**2"),
    "pendulum": Variant("pendulum", {}, 0.0, 45, (2.1, 0.0), "3*(1 - cos(q)) + p**2"),
}


def run_config(
    name: str,
    variant: str,
    profile: str,
    prof: Profile,
    *,
    seed: int,
    restarts: int,
    grids: tuple[int, ...],
) -> dict[str, Any]:
    """The settings of KAN model ``name``'s run directory, in the keys of ``hnnkit train --model
    kan``'s ``config.json`` (from which ``hnnkit evaluate`` rebuilds the model and the data),
    plus the ``task``, ``variant`` and ``profile``; the ``kan`` section's ``grid`` is the last
    of ``grids``, the size the trained weights have."""
    var = VARIANTS[variant]
    return {
        "system": var.system,
        "model": "kan",
        "seed": seed,
        "steps": prof.steps,
        "lr": LR,
        "batch_size": None,
        "weight_decay": 0.0,
        "n_trajectories": N_TRAJECTORIES,
        "n_points": var.n_points,
        "noise_std": var.noise_std,
        "optimizer": "lbfgs",
        "params": {k: list(v) if isinstance(v, tuple) else v for k, v in var.params.items()},
        "test_fraction": TEST_FRACTION,
        "kan": {
            "widths": list(KAN_WIDTHS),
            "grid": grids[-1],
            "k": 3,
            "grid_range": [-2.0, 2.0],
            "output_index": ENERGY_OUTPUT,
            "dtype": "float64",
            "l1": LAMBDA_L1 if name.endswith("-l1") else 0.0,
            "restarts": restarts,
            "prune": True,
            "grids": list(grids),
        },
        "task": "kan-spring",
        "variant": variant,
        "profile": profile,
    }


__all__ = [
    "ENERGY_OUTPUT",
    "KAN_WIDTHS",
    "LAMBDA_L1",
    "LR",
    "MODELS",
    "N_TRAJECTORIES",
    "PROFILES",
    "SEED_REPORT",
    "TEST_FRACTION",
    "T_SPAN",
    "VARIANTS",
    "Profile",
    "Variant",
    "run_config",
]
