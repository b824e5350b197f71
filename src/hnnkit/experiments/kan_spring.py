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
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch
from torch import Tensor, nn

from ..data import Dataset, generate
from ..errors import HnnkitValueError, NonFiniteLossError, check_choice
from ..files import atomic_write_json, atomic_write_text
from ..integrate import odeint
from ..models import HNN, MLP, DissipativeHNN
from ..models.kan import KAN, find_kan, kan_regularizer
from ..report.figures import STYLE as REPORT_STYLE
from ..report.figures import save
from ..symbolic import DEFAULT_LIBRARY, SymbolicHamiltonian, extract_hamiltonian, save_kan_run
from ..systems import HamiltonianSystem, get_system
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


def make_kan_hnn(
    widths: Sequence[int] = (2, 1, 2),
    *,
    grid: int = 5,
    generator: torch.Generator,
    x: Tensor | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> HNN:
    """A KAN-HNN whose energy is the KAN's last output: ``HNN(widths[0], energy_net=KAN(...))``.

    The KAN has cubic splines on ``grid`` intervals over ``(-2, 2)``. With ``x``, the first
    layer's grid is then fitted to ``x`` (:meth:`~hnnkit.models.kan.KAN.update_grid` with
    ``layers=[0]``); the hidden grids keep the wide initial range, which a freshly initialised
    hidden node needs (see the method's notes).

    Args:
        widths: node counts from the phase-space inputs to the outputs (default the report's
            ``(2, 1, 2)``, whose output 0 is unused).
        grid: spline intervals per edge (default 5).
        generator: initialisation randomness (only read).
        x: training states ``(N, widths[0])`` to fit the input grid to (default: none).
        dtype: parameter dtype (default float64).
        device: parameter device (default: torch's default device).

    Raises:
        HnnkitValueError: on invalid widths or grid (see :class:`~hnnkit.models.kan.KAN`).
    """
    kan = KAN(
        list(widths),
        grid,
        3,
        grid_range=(-2.0, 2.0),
        generator=generator,
        dtype=dtype,
        device=device,
    )
    if x is not None:
        kan.update_grid(x.to(kan.act_fun[0].coef), layers=[0])
    return HNN(kan.widths[0], energy_net=kan, output_index=kan.widths[-1] - 1)


def make_kan_dhnn(
    widths: Sequence[int] = (2, 1, 1),
    *,
    grid: int = 5,
    generator: torch.Generator,
    x: Tensor | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> DissipativeHNN:
    """A rayleigh-form :class:`~hnnkit.models.DissipativeHNN` whose energy and dissipation are
    both KANs of ``widths`` (one output each), built like :func:`make_kan_hnn`'s.

    :func:`hnnkit.symbolic.extract_dissipative` reads both back as formulas.

    Raises:
        HnnkitValueError: if ``widths`` does not end in one output, or as :func:`make_kan_hnn`.
    """
    if widths[-1] != 1:
        raise HnnkitValueError(
            f"a dissipative KAN-HNN needs KANs with one output (H and D), got widths "
            f"{','.join(map(str, widths))}; e.g. {widths[0]},1,1"
        )
    nets = [
        make_kan_hnn(widths, grid=grid, generator=generator, x=x, dtype=dtype, device=device)
        for _ in range(2)
    ]
    return DissipativeHNN(
        widths[0],
        energy_net=nets[0].energy_net,
        dissipation_net=nets[1].energy_net,
        form="rayleigh",
    )


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


def _parameter_l1(lamb: float) -> Regularizer:
    def regularizer(model: nn.Module) -> Tensor:
        return lamb * sum(p.abs().sum() for p in model.parameters() if p.requires_grad)

    return regularizer


def _train(
    model: nn.Module,
    data: Dataset,
    *,
    steps: int,
    log_every: int,
    regularizer: Regularizer | None,
    chunk: int | None,
    rtol: float,
    quiet: bool,
    fit_options: dict[str, Any],
) -> dict[str, Any]:
    """:func:`hnnkit.train.fit`, in chunks with a plateau stop when ``chunk`` is set."""
    from ..train import fit

    history: list[dict[str, float]] = []
    done, seconds, previous = 0, 0.0, math.inf
    chunk = chunk or steps
    while done < steps:
        n = min(chunk, steps - done)
        res = fit(
            model,
            data,
            steps=n,
            log_every=min(log_every, n),
            regularizer=regularizer,
            quiet=quiet,
            **fit_options,
        )
        history += [
            {**h, "step": h["step"] + done, "seconds": h["seconds"] + seconds} for h in res.history
        ]
        done += n
        seconds += res.seconds
        objective = res.history[-1]["batch_loss"] if res.history else math.nan
        if (
            done < steps
            and math.isfinite(previous)
            and previous - objective <= rtol * abs(previous)
        ):
            break
        previous = objective
    return {"history": history, "steps": done, "seconds": seconds}


def _objective(model: nn.Module, data: Dataset, regularizer: Regularizer | None) -> float:
    from ..train import derivative_loss

    p = next(model.parameters())
    x, dx = (v.to(p.device, p.dtype) for v in data.split("train"))
    with torch.enable_grad():  # the HNN's vector field differentiates the energy
        value = derivative_loss(model, x, dx)
        if regularizer is not None:
            value = value + regularizer(model)
    return float(value.detach())


def train_with_restarts(
    build: Callable[[int], tuple[HNN, Regularizer | None]],
    data: Dataset,
    *,
    steps: int,
    restarts: int = 1,
    restart_steps: int | None = None,
    grids: Sequence[int] | None = None,
    log_every: int = 1,
    plateau_chunk: int | None = None,
    plateau_rtol: float = 0.0,
    quiet: bool = True,
    fit_options: dict[str, Any] | None = None,
) -> tuple[HNN, dict[str, Any]]:
    """Train an HNN with restarts and, for a KAN energy, the grid schedule of this experiment.

    1. ``restarts > 1``: the candidates ``build(0)``, ..., ``build(restarts - 1)`` each train
       for ``restart_steps``; the one with the lowest training objective (loss plus
       regulariser; a candidate whose loss became non-finite scores ``inf``) is kept and
       continues. KANs shaped like ``[2, 1, 1]`` converge only from some initialisations.
    2. With ``grids`` (a KAN energy): training continues to a quarter of ``steps`` (the restart
       steps count) on the initial grids. Every grid is then refitted to the range its inputs
       take (:meth:`~hnnkit.models.kan.KAN.update_grid`, margin 0.1) and the steps left are
       split over ``grids``, with :meth:`~hnnkit.models.kan.KAN.refine` between sizes.
    3. Without ``grids``: the steps left, in one run.

    Used by :func:`run_kan_spring` and by ``hnnkit train --model kan``.

    Args:
        build: restart index → ``(untrained model, regularizer or None)``.
        data: the dataset; training uses its train split.
        steps: total optimisation steps, restart steps included (an upper bound with
            ``plateau_chunk``).
        restarts: candidates to try (default 1: no choice).
        restart_steps: steps of each candidate before the choice (default ``None``: a quarter
            of ``steps``, at least 1); capped at ``steps``.
        grids: grid sizes of a KAN energy in order, e.g. ``(5,)`` or ``(5, 10, 20)``; ``None``
            (default) for a network without grids.
        log_every: steps between logged train/test losses (default 1).
        plateau_chunk: after the restarts, train in chunks of this many steps and stop a stage
            when a chunk lowers the objective by less than ``plateau_rtol`` (default ``None``:
            no plateau stop).
        plateau_rtol: relative improvement below which a chunk counts as a plateau.
        quiet: no progress bars (default ``True``).
        fit_options: passed to :func:`hnnkit.train.fit` (default: full-batch L-BFGS at lr
            1e-3, the report's).

    Returns:
        ``(model, log)``; ``log`` holds ``history`` (steps counted from the start, the chosen
        candidate's restart steps included), ``steps``, ``seconds`` (all candidates),
        ``restart_objectives`` and, with several candidates, ``restart_chosen``.

    Raises:
        HnnkitValueError: on ``steps < 1``, ``restarts < 1`` or ``restart_steps < 0``.
        NonFiniteLossError: when the kept model's loss becomes non-finite.
    """
    for name, value, low in (("steps", steps, 1), ("restarts", restarts, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise HnnkitValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if restart_steps is not None and not restart_steps >= 0:
        raise HnnkitValueError(f"restart_steps must be >= 0, got {restart_steps!r}")
    options = {"optimizer": "lbfgs", "lr": LR, **(fit_options or {})}
    log: dict[str, Any] = {"history": [], "steps": 0, "seconds": 0.0, "restart_objectives": []}

    def stage(model: nn.Module, reg: Regularizer | None, n: int, chunk: int | None) -> dict:
        return _train(
            model,
            data,
            steps=n,
            log_every=log_every,
            regularizer=reg,
            chunk=chunk,
            rtol=plateau_rtol,
            quiet=quiet,
            fit_options=options,
        )

    if restarts > 1:
        n_first = min(restart_steps or max(1, steps // 4), steps)
        scored = []
        for r in range(restarts):
            model, reg = build(r)
            try:
                part = stage(model, reg, n_first, None)
                score = _objective(model, data, reg)
            except NonFiniteLossError:
                part, score = {"history": [], "steps": n_first, "seconds": 0.0}, math.inf
            log["seconds"] += part["seconds"]
            scored.append((score if math.isfinite(score) else math.inf, part, model, reg))
        best = min(range(restarts), key=lambda k: scored[k][0])
        _, part, model, reg = scored[best]
        log.update(history=part["history"], steps=part["steps"], restart_chosen=best)
        log["restart_objectives"] = [s[0] for s in scored]
    else:
        model, reg = build(0)

    def run(n: int, chunk: int | None) -> None:
        if n < 1:
            return
        part = stage(model, reg, n, chunk)
        offset = log["steps"]
        log["history"] += [{**h, "step": h["step"] + offset} for h in part["history"]]
        log["steps"] += part["steps"]
        log["seconds"] += part["seconds"]

    if grids is None:
        run(steps - log["steps"], plateau_chunk)
        return model, log
    grids = tuple(grids)
    kan = find_kan(model)
    x_train = data.split("train")[0].to(kan.act_fun[0].coef)
    # Warm-up on the initial grids, then every grid refitted to the range its inputs now take
    # (the hidden node has left its tiny initial range: on the pendulum it sits in [2, 4.2],
    # outside the initial [-2, 2]), then the steps left split over the grid sizes.
    run(max(1, steps // 4) - log["steps"], plateau_chunk)
    remaining = steps - log["steps"]
    for k, grid in enumerate(grids):
        kan.update_grid(x_train, margin=0.1)
        if grid != kan.grid_size:
            kan.refine(grid)
        n = remaining // len(grids) + (remaining % len(grids) if k == len(grids) - 1 else 0)
        run(n, plateau_chunk)
    return model, log


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
            reg = kan_regularizer(x_train, LAMBDA_L1) if is_kan else _parameter_l1(LAMBDA_L1)
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
    from ..train import derivative_loss

    p = next(model.parameters())
    out = []
    for part in ("train", "test"):
        x, dx = (v.to(p.device, p.dtype) for v in data.split(part))
        out.append(float(derivative_loss(model, x, dx).detach()))
    return out[0], out[1]


# -- figures --------------------------------------------------------------------------------------
COLORS = {
    "truth": "black",
    "mlp-hnn": "#1f77b4",
    "mlp-hnn-l1": "#17becf",
    "kan-hnn": "#9467bd",
    "kan-hnn-l1": "#e377c2",
    "kan-symbolic": "#2ca02c",
}
LABELS = {
    "truth": "ground truth",
    "mlp-hnn": "MLP-HNN",
    "mlp-hnn-l1": "MLP-HNN + L1",
    "kan-hnn": "KAN-HNN",
    "kan-hnn-l1": "KAN-HNN + L1",
    "kan-symbolic": "extracted formula",
}
STYLE = {**REPORT_STYLE, "svg.fonttype": "none"}  # SVG text stays text


def plot_losses(logs: dict[str, dict[str, Any]], stem: Path) -> list[Path]:
    """One panel per model: train and test derivative MSE against L-BFGS step (log scale)."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
        for ax, name in zip(axes.flat, MODELS, strict=True):
            hist = logs[name]["history"]
            steps = [h["step"] for h in hist]
            ax.plot(
                steps,
                [h["train_loss"] for h in hist],
                "-",
                color=COLORS[name],
                lw=1.8,
                label="train",
            )
            ax.plot(steps, [h["test_loss"] for h in hist], "--", color="0.3", lw=1.4, label="test")
            ax.set_yscale("log")
            ax.set_title(LABELS[name])
            ax.set_ylabel("derivative MSE")
            ax.legend(loc="upper right")
        for ax in axes[-1]:
            ax.set_xlabel("L-BFGS step")
            ax.xaxis.get_major_locator().set_params(integer=True)
        fig.suptitle("Train and test loss (without the L1 penalty)", fontsize=13)
        fig.tight_layout()
        return save(fig, stem)


def plot_rollouts(
    t: Tensor, trajs: dict[str, Tensor], energies: dict[str, Tensor], stem: Path
) -> dict[str, list[Path]]:
    """Phase-space rollouts, coordinate MSE vs time and energy vs time, as three figures."""
    tt = t.cpu().numpy()
    out = {}
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(5.6, 5.2))
        for name, traj in trajs.items():
            x = traj.cpu().numpy()
            style = {"lw": 3.0, "alpha": 0.5} if name == "truth" else {"lw": 1.4}
            ls = ":" if name == "kan-symbolic" else "-"
            ax.plot(x[:, 0], x[:, 1], ls, color=COLORS[name], label=LABELS[name], **style)
        x0 = trajs["truth"][0].cpu().numpy()
        ax.plot([x0[0]], [x0[1]], "o", color="purple", ms=7, label="start", zorder=5)
        ax.set_xlabel("position q")
        ax.set_ylabel("momentum p")
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_title(f"Phase-space rollouts, t ∈ [0, {tt[-1]:g}]")
        ax.legend(loc="upper right", framealpha=0.9)
        fig.tight_layout()
        out["rollout_phase"] = save(fig, stem.with_name(stem.name + "_phase"))

        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for name, traj in trajs.items():
            if name == "truth":
                continue
            mse = (traj - trajs["truth"]).pow(2).mean(-1).cpu().numpy()
            ax.plot(
                tt[1:],
                mse[1:],
                ":" if name == "kan-symbolic" else "-",
                color=COLORS[name],
                label=LABELS[name],
                lw=1.6,
            )
        ax.set_yscale("log")
        ax.set_xlabel("time t")
        ax.set_ylabel("MSE of (q, p) vs ground truth")
        ax.set_title("Rollout error")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        out["rollout_mse"] = save(fig, stem.with_name(stem.name + "_mse"))

        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for name, e in energies.items():
            style = {"lw": 3.0, "alpha": 0.5} if name == "truth" else {"lw": 1.4}
            ax.plot(
                tt,
                e.cpu().numpy(),
                ":" if name == "kan-symbolic" else "-",
                color=COLORS[name],
                label=LABELS[name],
                **style,
            )
        ax.set_xlabel("time t")
        ax.set_ylabel("true energy H(q, p) along the rollout")
        ax.set_title("Energy along the rollouts")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        out["rollout_energy"] = save(fig, stem.with_name(stem.name + "_energy"))
    return out


def plot_kan_diagram(
    kans: dict[str, KAN],
    x: Tensor,
    stem: Path,
    *,
    input_names: tuple[str, ...] = ("q", "p"),
    output_names: tuple[str, ...] = ("unused", "H"),
    edge_labels: dict[str, dict[tuple[int, int, int], str]] | None = None,
    subtitles: dict[str, str] | None = None,
) -> list[Path]:
    """Draw each KAN as nodes and edges, every edge with a small plot of its activation.

    Each edge :math:`\\phi_{l,i,j}` is drawn as a line whose opacity follows its mean
    absolute activation on ``x`` (relative to the strongest edge of its layer), with an
    inset showing :math:`\\phi` over the range its input takes on ``x``. Pruned (masked)
    edges are dashed and have no inset.

    Args:
        kans: title → KAN, drawn side by side.
        x: samples ``(N, widths[0])`` (e.g. the training states).
        stem: output path without suffix (``.png`` and ``.svg`` are written).
        input_names: labels of the input nodes.
        output_names: labels of the output nodes.
        edge_labels: title → ``{(layer, i, j): text}`` shown above the insets (e.g. fits).
        subtitles: title → a line shown under the title (e.g. the extracted formula).

    Returns:
        The written paths.
    """
    edge_labels = edge_labels or {}
    subtitles = subtitles or {}
    with plt.rc_context({**STYLE, "axes.grid": False}):
        fig, axes = plt.subplots(1, len(kans), figsize=(4.6 * len(kans), 6.0), squeeze=False)
        for ax, (title, kan) in zip(axes[0], kans.items(), strict=True):
            ref = kan.act_fun[0].coef
            with torch.no_grad():
                acts = kan.activations(x.to(ref.device, ref.dtype))
            depth = kan.depth
            scores = [a.edges.abs().mean(0).cpu() for a in acts]
            tops = [
                float(s.max()) or 1.0 for s in scores
            ]  # opacity relative to the layer's strongest edge

            def pos(level: int, n: int, kan=kan) -> tuple[float, float]:
                width = kan.widths[level]
                return (n + 0.5) / width, float(level)

            ax.set_xlim(0, 1)
            ax.set_ylim(-0.35, depth + 0.35)
            ax.axis("off")
            for layer in range(depth):
                lay = kan.act_fun[layer]
                for i in range(kan.widths[layer]):
                    for j in range(kan.widths[layer + 1]):
                        (x0, y0), (x1, y1) = pos(layer, i), pos(layer + 1, j)
                        live = bool(lay.mask[i, j] != 0)
                        strength = (
                            min(1.0, max(0.12, float(scores[layer][i, j]) / tops[layer]))
                            if live
                            else 0.25
                        )
                        ax.plot(
                            [x0, x1],
                            [y0, y1],
                            "-" if live else "--",
                            color="black",
                            alpha=strength,
                            lw=1.5,
                            zorder=1,
                        )
                        if not live:
                            continue
                        xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
                        w, h = 0.22, 0.34
                        inset = ax.inset_axes(
                            [xm - w / 2, ym - h / 2, w, h], transform=ax.transData, zorder=3
                        )
                        z_in = acts[layer].inputs[:, i]
                        z = torch.linspace(
                            float(z_in.min()),
                            float(z_in.max()),
                            120,
                            dtype=ref.dtype,
                            device=ref.device,
                        )
                        with torch.no_grad():
                            phi = kan.edge_function(layer, i, j, z)
                        inset.plot(
                            z.cpu().numpy(),
                            phi.cpu().numpy(),
                            color="#9467bd",
                            lw=2.0,
                            alpha=max(strength, 0.35),
                        )
                        inset.set_xticks([])
                        inset.set_yticks([])
                        inset.set_facecolor("white")
                        for spine in inset.spines.values():
                            spine.set_alpha(max(strength, 0.3))
                        label = edge_labels.get(title, {}).get((layer, i, j))
                        if label:
                            inset.set_title(label, fontsize=9, pad=2)
            for level in range(depth + 1):
                for n in range(kan.widths[level]):
                    px, py = pos(level, n)
                    alive = kan.active_nodes()[level][n]
                    ax.scatter(
                        [px],
                        [py],
                        s=260,
                        color="black" if alive else "white",
                        edgecolors="black",
                        zorder=4,
                    )
                    if level == 0 and n < len(input_names):
                        ax.text(px, py - 0.12, input_names[n], ha="center", va="top", fontsize=13)
                    if level == depth and n < len(output_names):
                        text = output_names[n] + ("" if alive else " (pruned)")
                        ax.text(px, py + 0.12, text, ha="center", va="bottom", fontsize=12)
            sub = subtitles.get(title)
            ax.set_title(title + (f"\n{sub}" if sub else ""), fontsize=12, pad=10)
        fig.tight_layout()
        return save(fig, stem)


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
