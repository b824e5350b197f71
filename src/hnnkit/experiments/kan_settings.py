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

__all__ = [
    "ENERGY_OUTPUT",
    "LAMBDA_L1",
    "LR",
    "MODELS",
    "PROFILES",
    "SEED_REPORT",
    "VARIANTS",
    "Profile",
    "Variant",
]
