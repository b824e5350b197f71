r"""Evaluation protocols: from trained models and a task to the paper's metrics and rollouts.

Two protocols are implemented.

``original`` replicates the analysis notebooks of greydanus/hamiltonian-nn, quirks included,
so that numbers can be compared with the paper's Table 1:

- spring (``analyze-spring.ipynb`` cells 17–21): 15 start states with each coordinate in
  ``±U[0.2, 1.0]``; the notebook's ``integrate_models`` rescales time *in place* by
  ``1 + 0.9·noise_std = 1.09`` for the models, so successive trials integrate the truth over
  ``[0, 21.8·1.09^i]`` and the models over ``1.09×`` that, on mismatched clocks; the
  "energy" is ``q² + p²``; RK45 ``rtol=1e-12`` (``atol=1e-6``, scipy's default);
- pendulum (``analyze-pend.ipynb``): the same start sampler over ``[0, 20]``, 100 points,
  no rescale, "energy" ``q² + p²`` (not the pendulum's H);
- real pendulum (``analyze-real.ipynb``): one rollout from the first test point over the test
  times with ``rtol=1e-3``, scored pointwise against the data's energy
  ``2.4(1 − cos q) + p²``; ± from 5 contiguous blocks;
- two-body / three-body (``analyze-2body.ipynb``, ``analyze-3body.ipynb``): 15 new orbits,
  ``[0, 25]`` resp. ``[0, 3]``, 500 points, ``rtol=1e-9``, total energy;
- the ± of energies is ``std(means of 5 groups of 3)/√5``; the ± of losses is a standard
  error over test points;
- tasks the paper does not have (``damped-pendulum``) follow the pendulum recipe with 15 start
  states from the system's sampler and the system's true H.

For a dissipative truth the energy error compares the true H along the model's rollout with the
true H along the true (decaying) trajectory, so a model that conserves energy is penalised.

``corrected`` (the default) starts from the clean initial states of the held-out
trajectories, uses aligned times, tight tolerances (``rtol=1e-10`` truth, ``1e-9`` models,
float64) and the system's true Hamiltonian, and reports mean ± standard error over
trajectories (pooled over seeds by :func:`aggregate`).

One-step maps (:class:`hnnkit.models.maps.OneStepMap`, e.g. a SympNet) are evaluated beside
field models: see :mod:`hnnkit.evaluate.maps` for their grid, test loss and symplecticity
defect, and why the original protocol skips them.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..data import Dataset
from ..errors import HnnkitValueError, check_choice
from ..integrate import flow_map, odeint, step_slope
from ..metrics import (
    derivative_mse,
    energy_drift,
    group_sem,
    mean_sem,
    rollout_mse,
    symplecticity_error,
    valid_prediction_time,
)
from ..models.maps import NotAFieldError, is_map
from ..systems import HamiltonianSystem
from .maps import (
    ORIGINAL_SKIP_REASON,
    map_derivative,
    map_grid,
    map_step_function,
    map_time_step,
    rollout_model,
)

PROTOCOLS = ("corrected", "original")


@dataclass
class Rollouts:
    """Rollouts for figures: times ``(T,)``, truth ``(T, B, d)``, one ``(T, B, d)`` per model, energies ``(T, B)``."""

    t: Tensor
    true: Tensor
    models: dict[str, Tensor]
    true_energy: Tensor
    model_energy: dict[str, Tensor]


class _TimeScaled:
    """``field`` on a rescaled clock: ``d x / d s = T_b · f(x)`` with one span ``T_b`` per batch row."""

    def __init__(self, field: Any, spans: Tensor):
        self.field, self.spans = field, spans

    def vector_field(self, s: Tensor | float, x: Tensor) -> Tensor:
        return self.spans * self.field.vector_field(s, x)


def as_float64(model: nn.Module) -> nn.Module:
    """A float64 copy of ``model`` for accurate integration (the original is untouched)."""
    return copy.deepcopy(model).double().eval()


@torch.no_grad()
def rollout(
    field: Any,
    x0: Tensor,
    t: Tensor,
    *,
    rtol: float,
    atol: float,
    method: str = "dopri5",
    compact: bool = True,
) -> Tensor:
    """Integrate ``field.vector_field`` from ``x0`` ``(B, d)`` at times ``t``; ``(T, B, d)``.

    ``compact=False`` for a field with per-row constants (see :func:`hnnkit.integrate.odeint`).
    """
    return odeint(field.vector_field, x0, t, method=method, rtol=rtol, atol=atol, compact=compact)


@torch.no_grad()
def compare_rollouts(
    system: HamiltonianSystem,
    fields: dict[str, Callable[[Tensor, Tensor], Tensor]],
    x0: Tensor,
    t: Tensor,
    *,
    rtol: float,
    method: str = "dopri5",
) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, dict[str, float]]]:
    """Roll the true ``system`` and every ``fields[name]`` (``f(t, x)``) out from ``x0`` with one
    solver (``rtol = atol = rtol``) and score each against the truth.

    Returns:
        ``(trajectories, energies, scores)``: trajectories ``(T, d)`` with ``"truth"`` first,
        the true energy along each, and per field ``final_mse`` (last state), ``mean_mse``
        (over all times) and ``energy_mse`` (against the energy of ``x0``).
    """
    trajs, energies = {}, {}
    for name, f in {"truth": system.vector_field, **fields}.items():
        trajs[name] = odeint(f, x0, t, method=method, rtol=rtol, atol=rtol)
        energies[name] = system.energy(trajs[name])
    e0 = float(system.energy(x0))
    scores = {
        name: {
            "final_mse": float((trajs[name][-1] - trajs["truth"][-1]).pow(2).mean()),
            "mean_mse": float((trajs[name] - trajs["truth"]).pow(2).mean()),
            "energy_mse": float((energies[name] - e0).pow(2).mean()),
        }
        for name in fields
    }
    return trajs, energies, scores


@torch.no_grad()
def energy_error_by_integrator(
    field: Any,
    energy: Any,
    x0: Tensor,
    *,
    t_end: float,
    step: float,
    methods: tuple[str, ...] = ("rk4", "implicit-midpoint"),
    n_points: int = 200,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Relative energy error :math:`|E(t) - E(0)| / |E(0)|` along fixed-step rollouts, per method.

    The integrator-against-energy study: a symplectic method (implicit midpoint, or leapfrog for
    a separable H) keeps the error of the field's own energy bounded over long times, a
    non-symplectic one (RK4) lets it drift. Pass an HNN's ``vector_field`` with its
    ``hamiltonian`` to see what its integrator does to its learned energy, or a system's.

    Args:
        field: ``f(t, x)``, e.g. ``model.vector_field``.
        energy: ``(..., d) → (...)``, the energy to follow (``model.hamiltonian``, ``system.energy``).
        x0: initial states ``(B, d)``.
        t_end: length of the rollouts.
        step: the fixed step of every method.
        methods: :data:`hnnkit.integrate.SOLVERS` names (default ``rk4`` and ``implicit-midpoint``).
        n_points: output times, evenly spaced over ``[0, t_end]``.

    Returns:
        ``(t, {method: (n_points, B)})``.
    """
    owner = getattr(field, "__self__", field)
    if is_map(owner):
        raise NotAFieldError(
            f"{type(owner).__name__} is a one-step map: there is no field to integrate with "
            f"{', '.join(methods)}; roll it out with its own step "
            "(hnnkit.evaluate.rollout_model) and follow the energy along that"
        )
    t = torch.linspace(0.0, t_end, n_points, dtype=x0.dtype, device=x0.device)
    e0 = energy(x0)
    out = {}
    for method in methods:
        path = odeint(field, x0, t, method=method, step_size=step)
        out[method] = (energy(path) - e0).abs() / e0.abs().clamp_min(1e-300)
    return t, out


def loss_metrics(
    model: nn.Module, dataset: Dataset, *, through_step: bool = False
) -> dict[str, dict[str, float]]:
    """Derivative MSE ± std/√N on the train and test splits (the end of each original ``train.py``).

    With ``through_step`` the prediction of a forward-difference target is one RK4 step of
    the model's flow over ``dataset.step`` (see :func:`hnnkit.train.fit`), else the field. A
    one-step map's prediction is its central-difference derivative
    (:func:`hnnkit.evaluate.maps.map_derivative`), compared with the same targets.
    """
    dtype = next(model.parameters()).dtype
    out = {}
    for part in ("train", "test"):
        x, dx = (v.to(dtype) for v in dataset.split(part))
        with torch.enable_grad():
            if is_map(model):
                pred = map_derivative(model, x).detach()
            elif through_step:
                h = dataset.split_step(part).to(dtype)
                pred = step_slope(model.vector_field, x, h).detach()
            else:
                pred = model.vector_field(None, x).detach()
        out[f"{part}_loss"] = derivative_mse(pred, dx)
    return out


def _measured_test_segment(dataset: Dataset) -> tuple[Tensor, Tensor]:
    """Times (from 0) and states ``(T, 1, d)`` of the held-out points of a single measured trajectory."""
    mask = dataset.test_mask[0]
    t_data = dataset.t[0, mask]
    return t_data - t_data[0], dataset.x[0, mask].unsqueeze(1)


def _pm_sampler(n: int, rng: np.random.Generator) -> Tensor:
    x0 = rng.random((n, 2)) * 1.6 - 0.8
    x0 += 0.2 * np.sign(x0)
    return torch.from_numpy(x0)


#: How :class:`OriginalProtocol` draws its start states.
STARTS = ("sampler", "notebook", "per-orbit")
#: How :class:`OriginalProtocol` groups the errors for its ±.
SPREADS = ("trajectory-groups", "time-blocks")


@dataclass(frozen=True)
class OriginalProtocol:
    """The settings of the original notebooks' energy metric for one task, as data.

    The instances for the paper's tasks are in :mod:`hnnkit.experiments.protocols`; the
    default (``OriginalProtocol()``) is the pendulum notebook's recipe with the system's own
    sampler and true H, which tasks the paper does not have follow.

    Attributes:
        starts: the start states: ``"sampler"`` (``system.sample_initial(n_states)`` from a
            generator seeded ``seed``), ``"notebook"`` (each coordinate ``±U[0.2, 1.0]`` from
            ``numpy.random.default_rng(seed)``, as the spring and pendulum notebooks) or
            ``"per-orbit"`` (start ``i`` from ``sample_initial(1)`` with a generator seeded
            ``i``, as the N-body notebooks). Ignored for measured data (no system), whose
            held-out segment is both start and truth.
        n_states: number of start states.
        span: rollouts over ``[0, span]`` ...
        n_points: ... at this many evenly spaced times.
        rtol, atol: tolerances of the dopri5 rollouts (truth and models).
        clock_stretch: ``None`` for aligned clocks; ``c`` for the spring notebook's in-place
            rescale: with ``s = 1 + c · noise_std``, trial ``i`` (1-based) integrates the truth
            over ``[0, span · s^i]`` and the models over ``s×`` that.
        energy: ``states (..., d) -> (...)`` to score with; ``None`` for the system's energy.
        spread: ``"trajectory-groups"``: the ± is ``std(means of groups)/√groups`` over the
            per-trajectory MSEs; ``"time-blocks"`` (one measured trajectory): over the
            pointwise errors in ``groups`` contiguous blocks.
        groups: number of groups of the ±.
    """

    starts: str = "sampler"
    n_states: int = 15
    span: float = 20.0
    n_points: int = 100
    rtol: float = 1e-12
    atol: float = 1e-6
    clock_stretch: float | None = None
    energy: Callable[[Tensor], Tensor] | None = None
    spread: str = "trajectory-groups"
    groups: int = 5

    def __post_init__(self) -> None:
        check_choice("starts", self.starts, STARTS)
        check_choice("spread", self.spread, SPREADS)


def _original_starts(protocol: OriginalProtocol, system: HamiltonianSystem, seed: int) -> Tensor:
    n = protocol.n_states
    if protocol.starts == "notebook":
        return _pm_sampler(n, np.random.default_rng(seed))
    if protocol.starts == "per-orbit":
        return torch.cat(
            [system.sample_initial(1, generator=torch.Generator().manual_seed(i)) for i in range(n)]
        )
    return system.sample_initial(n, generator=torch.Generator().manual_seed(seed))


def evaluate_original(
    system: HamiltonianSystem | None,
    models: dict[str, nn.Module],
    dataset: Dataset,
    protocol: OriginalProtocol = OriginalProtocol(),
    *,
    seed: int = 0,
    noise_std: float = 0.1,
) -> tuple[dict[str, dict[str, Any]], Rollouts]:
    """The original notebooks' energy metric under ``protocol`` (see the module docstring).

    Args:
        system: the true system, or ``None`` for measured data: then the truth is the held-out
            segment of the dataset's single recording, from its first point.
        models: name → trained model.
        dataset: the data the models were trained on.
        protocol: the task's settings (:mod:`hnnkit.experiments.protocols` has the paper's).
        seed: seeds the start states.
        noise_std: the data's noise, for a ``clock_stretch``.

    Returns:
        ``({model: {"energy": {"mean", "sem"}}}, rollouts)``; a model with rollouts that blew
        up (:func:`~hnnkit.evaluate.maps.rollout_model`: NaN from then on) scores ``inf`` and
        has ``"diverged": {"count", "of"}``, how many of its rollouts did; a one-step map's entry is
        ``{"skipped": reason}`` instead (:data:`hnnkit.evaluate.maps.ORIGINAL_SKIP_REASON`),
        and it has no rollout.

    Raises:
        HnnkitValueError: for measured data without ``protocol.energy``.
    """
    skipped = {k: {"skipped": ORIGINAL_SKIP_REASON} for k, m in models.items() if is_map(m)}
    m64 = {k: as_float64(m) for k, m in models.items() if k not in skipped}
    tol = {"rtol": protocol.rtol, "atol": protocol.atol}
    energy_fn = protocol.energy or (system.energy if system is not None else None)
    if energy_fn is None:
        raise HnnkitValueError("measured data (system None) need the protocol's energy function")
    if system is None:
        t, true = _measured_test_segment(dataset)
        x0 = true[0]
        preds = {k: rollout_model(m, x0, t, **tol) for k, m in m64.items()}
    elif protocol.clock_stretch is None:
        x0 = _original_starts(protocol, system, seed)
        t = torch.linspace(0, protocol.span, protocol.n_points, dtype=torch.float64)
        true = rollout(system, x0, t, **tol)
        preds = {k: rollout_model(m, x0, t, **tol) for k, m in m64.items()}
    else:
        # Trial i integrates the truth over [0, span·s^i] and the models over s× that. All
        # run as one batch on a shared unit clock u ∈ [0, 1]: dx/du = T_i · f(x).
        x0 = _original_starts(protocol, system, seed)
        stretch = 1 + protocol.clock_stretch * noise_std
        powers = torch.arange(1, protocol.n_states + 1, dtype=torch.float64).unsqueeze(1)
        spans = protocol.span * stretch**powers
        s_grid = torch.linspace(0, 1, protocol.n_points, dtype=torch.float64)
        # one span per row: every row must stay in every call of the field
        true = rollout(_TimeScaled(system, spans), x0, s_grid, **tol, compact=False)
        preds = {
            k: rollout(_TimeScaled(m, spans * stretch), x0, s_grid, **tol, compact=False)
            for k, m in m64.items()
        }
        t = s_grid * spans[-1, 0]
    e_true = energy_fn(true)
    e_pred = {k: energy_fn(v) for k, v in preds.items()}
    out: dict[str, dict[str, Any]] = {}
    for k, e in e_pred.items():
        err = torch.nan_to_num((e_true - e).pow(2), nan=math.inf)  # (T, B); blown up: inf
        if protocol.spread == "time-blocks":
            per = err[:, 0]
            n = per.numel() - per.numel() % protocol.groups
            sem = group_sem(per[:n], protocol.groups)
            out[k] = {"energy": {"mean": float(per.mean()), "sem": sem}}
        else:
            per_traj = err.mean(0)
            sem = group_sem(per_traj, protocol.groups)
            out[k] = {"energy": {"mean": float(per_traj.mean()), "sem": sem}}
        lost = ~torch.isfinite(preds[k]).reshape(len(t), -1, preds[k].shape[-1]).all(-1)
        if bool(lost.any()):
            out[k]["diverged"] = {"count": int(lost.any(0).sum()), "of": lost.shape[1]}
    out.update(skipped)
    return out, Rollouts(t=t, true=true, models=preds, true_energy=e_true, model_energy=e_pred)


def evaluate_corrected(
    system: HamiltonianSystem | None,
    models: dict[str, nn.Module],
    dataset: Dataset,
    *,
    t_span: tuple[float, float],
    n_points: int = 200,
    max_trajectories: int = 25,
    energy: Callable[[Tensor], Tensor] | None = None,
) -> tuple[dict[str, dict[str, Any]], Rollouts]:
    """Aligned rollouts from held-out initial states, scored with the true energy.

    ``system`` ``None`` marks measured data: the truth is the held-out segment of the
    dataset's single recording (``t_span`` and ``n_points`` unused), scored with ``energy``
    (required then; default otherwise the system's), and the spread is over time points.

    Returns per model: ``energy`` (mean squared error of the true H along the rollout, per
    trajectory), ``rollout_mse`` (coordinate MSE over the span), ``valid_time`` (relative
    error < 0.1) and ``energy_drift`` (relative change of the true H over the span), each a
    ``{"mean", "sem", "values"}`` over trajectories; ``diverged``, ``{"count", "of",
    "first_time"}``: how many of the rollouts blew up (:func:`~hnnkit.evaluate.maps.rollout_model`
    makes them NaN from then on) and the earliest output time one was lost (``None`` if none).
    A diverged trajectory scores ``inf`` for the energy, rollout MSE and drifts (so the mean is
    ``inf``, written as ``null`` in strict JSON) and its valid time ends at its divergence or
    earlier; and for each of the system's other
    :meth:`~hnnkit.systems.HamiltonianSystem.invariants` (the N-body angular momentum),
    ``{name}_drift``, its relative change over the span. The entry ``"truth"`` holds the same
    drifts along the reference trajectories, the yardstick for the models' (zero for a
    conservative system up to the solver's error, the true decay for a dissipative one).
    ``symplecticity`` is the defect of one implicit-midpoint step of the model over the
    rollouts' output interval, from the initial states (:func:`~hnnkit.metrics.symplecticity_error`):
    round-off for an HNN, whatever the training, and of order the step for a field that is not a
    symplectic gradient; ``"truth"`` holds the true system's (none for measured data).

    One-step maps among ``models`` (:func:`hnnkit.models.is_map`) are iterated at their time
    step, and every model is scored on the grid of :func:`hnnkit.evaluate.maps.map_grid`
    (multiples of that step, about ``n_points`` of them, instead of ``n_points`` evenly
    spaced times); a map's ``symplecticity`` is the defect of its own step. Measured data must
    then be sampled at the map's step.

    Raises:
        HnnkitValueError: for measured data without ``energy``; maps trained at different time
            steps; measured times a map cannot follow.
    """
    m64 = {k: as_float64(m) for k, m in models.items()}
    h_map = map_time_step(m64)
    measured = system is None
    if measured:
        if energy is None:
            raise HnnkitValueError("measured data (system None) need an energy function")
        t, true = _measured_test_segment(dataset)
        x0 = true[0]
        energy_fn = energy
    else:
        x0 = dataset.test_initial_states[:max_trajectories]
        if h_map is None:
            t = torch.linspace(*t_span, n_points, dtype=torch.float64)
        else:
            t, _ = map_grid(h_map, t_span, n_points)
        true = (
            system.exact_solution(t, x0) if system.exact_solution(t[:2], x0) is not None else None
        )
        if true is None:
            true = rollout(system, x0, t, rtol=1e-10, atol=1e-10)
        energy_fn = energy or system.energy
    preds = {k: rollout_model(m, x0, t, rtol=1e-9, atol=1e-9) for k, m in m64.items()}
    e_true = energy_fn(true)
    e_pred = {k: energy_fn(v) for k, v in preds.items()}
    out: dict[str, dict[str, Any]] = {}

    def drifts(traj: Tensor, energy: Tensor) -> dict[str, Tensor]:
        found = {"energy_drift": energy_drift(energy)}
        if system is not None:
            for name, series in system.invariants(traj).items():
                found[f"{name}_drift"] = energy_drift(series)
        return found

    h = float(t[1] - t[0])
    starts = x0.reshape(-1, x0.shape[-1])  # (B, d), also for one measured trajectory

    def symplecticity(model: Any) -> Tensor:
        if is_map(model):  # its own step
            return symplecticity_error(map_step_function(model), starts)
        try:
            return symplecticity_error(flow_map(model.vector_field, h), starts)
        except RuntimeError:  # the implicit step did not converge: no verdict
            return torch.full((starts.shape[0],), math.nan)

    def diverged(pred: Tensor) -> dict[str, Any]:
        bad = ~torch.isfinite(pred).all(-1)  # (T, B)
        hit = bad.any(0)
        first = t[bad.float().argmax(0)][hit]
        return {
            "count": int(hit.sum()),
            "of": int(hit.numel()),
            "first_time": float(first.min()) if len(first) else None,
        }

    for k, pred in preds.items():
        per = {
            "energy": (e_true - e_pred[k]).pow(2).mean(0),
            "rollout_mse": rollout_mse(true, pred).mean(0),
            "valid_time": valid_prediction_time(t, true, pred),
            **drifts(pred, e_pred[k]),
            "symplecticity": symplecticity(m64[k]),
        }
        if measured:  # one trajectory: spread over time points instead
            per["energy"] = (e_true - e_pred[k]).pow(2)[:, 0]
            per["rollout_mse"] = rollout_mse(true, pred)[:, 0]
        for name in per:  # a diverged rollout (NaN from then on) scores an infinite error
            if name in ("energy", "rollout_mse") or name.endswith("_drift"):
                per[name] = per[name].nan_to_num(nan=math.inf)
        out[k] = {name: {**mean_sem(v), "values": v.tolist()} for name, v in per.items()}
        out[k]["diverged"] = diverged(pred)
    reference = drifts(true, e_true)
    if system is not None:
        reference["symplecticity"] = symplecticity(system)
    out["truth"] = {name: {**mean_sem(v), "values": v.tolist()} for name, v in reference.items()}
    return out, Rollouts(t=t, true=true, models=preds, true_energy=e_true, model_energy=e_pred)


@torch.no_grad()
def recording_rollouts(
    models: dict[str, nn.Module], dataset: Dataset, *, energy: Callable[[Tensor], Tensor]
) -> Rollouts:
    """Rollouts over a whole measured recording (the real pendulum), from its first point.

    Train and test points together span about 95 time units, long enough for the friction of the
    real pendulum to remove two thirds of its energy; the models are integrated at
    ``rtol = 1e-7, atol = 1e-9`` in float64 (solver error far below the models' own) and scored
    with ``energy`` (for the real pendulum the data's ``2.4(1 − cos q) + p²``).
    """
    t = dataset.t[0] - dataset.t[0, 0]
    true = dataset.x[0].unsqueeze(1)
    preds = {
        k: rollout_model(as_float64(m), true[0], t, rtol=1e-7, atol=1e-9) for k, m in models.items()
    }
    return Rollouts(
        t=t,
        true=true,
        models=preds,
        true_energy=energy(true),
        model_energy={k: energy(v) for k, v in preds.items()},
    )


def energy_decay_rate(t: Tensor, energy: Tensor) -> float:
    r"""Least-squares slope :math:`\lambda` of :math:`\log E(t) \approx c - \lambda t` (first trajectory); ``nan`` if E ≤ 0 somewhere."""
    e = energy.reshape(len(t), -1)[:, 0].double()
    if not bool((e > 0).all()):
        return math.nan
    tt = t.double() - t.double().mean()
    le = e.log()
    return float(-(tt * (le - le.mean())).sum() / tt.pow(2).sum())


def aggregate(per_seed: list[dict[str, Any]]) -> dict[str, float]:
    """Pool per-seed ``{"mean", "sem", "values"?}`` entries into one mean ± standard error.

    With per-trajectory ``values`` the pool is over seeds × trajectories; otherwise over the
    seeds' means (falling back to the single seed's own standard error).
    """
    if all("values" in s for s in per_seed):
        vals = torch.tensor([v for s in per_seed for v in s["values"]], dtype=torch.float64)
        return mean_sem(vals)
    means = torch.tensor([s["mean"] for s in per_seed], dtype=torch.float64)
    if len(per_seed) == 1:
        return {"mean": per_seed[0]["mean"], "sem": per_seed[0]["sem"]}
    return {"mean": float(means.mean()), "sem": float(means.std() / math.sqrt(len(means)))}


#: Divergence threshold of :func:`divergence_rollouts`, as a fraction of the orbit scale.
DIVERGENCE_FRACTION = 0.1


@torch.no_grad()
def divergence_rollouts(
    system: HamiltonianSystem,
    models: dict[str, nn.Module],
    x0: Tensor,
    t: Tensor,
    *,
    fraction: float = DIVERGENCE_FRACTION,
) -> dict[str, Any]:
    r"""Energy conservation versus trajectory divergence of planar N-body models.

    The review of the HNN paper (``hnn-review.txt``, §6.2) observes that on the two- and
    three-body tasks the HNN roughly conserves total energy while the baseline's energy
    diverges quickly, yet "despite the fact that the HNN generates physically possible
    solutions in terms of total energy conservation, it predicted a trajectory that diverged
    from the ground truth after a short amount of time". This function measures both halves.

    The truth is integrated with dopri5 at ``rtol = atol = 1e-10`` and every model (a float64
    copy; an object that is not an ``nn.Module``, e.g. a true system, is used as is) at
    ``1e-9``, as in :func:`evaluate_corrected`.

    Position error: :math:`e(t) = \sqrt{\tfrac1N \sum_i |q_i^{model}(t) - q_i^{true}(t)|^2}`,
    the RMS over the ``N`` bodies of the distance between predicted and true positions
    (positions are the first ``dof`` coordinates, ``(x_1, y_1, ..., x_N, y_N)``).

    A model's rollout that blows up (:func:`~hnnkit.evaluate.maps.rollout_model`) is NaN from
    then on: it has diverged at the first such time at the latest, and its drifts are NaN.

    Divergence time: the first time with :math:`e(t) >` ``fraction`` × orbit scale, where the
    orbit scale is the true initial RMS distance of the bodies from the origin (the centre of
    mass for the samplers of :class:`~hnnkit.systems.TwoBody` and ``ThreeBody``), about 1 for
    the paper's three-body ring; ``nan`` when the error stays below it over ``t``.

    Energy drift: :math:`\max_t |H(t) - H(0)| / |H(0)|` under the true H along every rollout,
    and :math:`\max_t |H_\theta(t) - H_\theta(0)| / |H(0)|` under the model's own learned
    energy along its own rollout for models with one (:class:`~hnnkit.models.HNN`,
    :class:`~hnnkit.models.DissipativeHNN`). The learned energy is divided by the *true*
    :math:`|H(0)|`: an HNN learns H only up to an additive constant (the trained three-body
    HNN has :math:`H_\theta \approx -157` where :math:`H = -0.81`), so
    :math:`|H_\theta(0)|` would be an arbitrary scale, while the fitted field fixes the slope
    of :math:`H_\theta` to that of H.

    Args:
        system: the true planar N-body system (state ``(q, p)``, 2 coordinates per body).
        models: name → model with ``vector_field(t, x)``, or a one-step map
            (:func:`hnnkit.models.is_map`); a rollout that blows up is NaN from then on
            (:func:`~hnnkit.evaluate.maps.rollout_model`).
        x0: initial states ``(B, 2·dof)`` or one state ``(2·dof,)``.
        t: times ``(T,)``, starting at the initial time; with maps among ``models``, every
            rollout is on the maps' grid instead (multiples of their step over the same span,
            about ``T`` times, :func:`~hnnkit.evaluate.maps.map_grid`), returned as ``t``.
        fraction: divergence threshold as a fraction of the orbit scale (default 0.1).

    Returns:
        A dict with ``t`` ``(T,)``; ``true`` ``(T, B, d)``; ``models`` name → ``(T, B, d)``;
        ``true_energy`` (``"truth"`` and each model) → true H ``(T, B)``; ``learned_energy``
        name → :math:`H_\theta` ``(T, B)`` (learned-energy models only); ``position_error``
        name → ``(T, B)``; ``orbit_scale`` and ``threshold`` ``(B,)``; ``divergence_time``
        name → ``(B,)``; ``energy_drift`` (``"truth"`` and each model) → ``(B,)``;
        ``learned_energy_drift`` name → ``(B,)``; ``n_bodies``; ``fraction``.

    Raises:
        HnnkitValueError: if ``x0`` does not match the system's state dimension or ``t`` is
            not a 1-d series of at least two times.
    """
    from ..models import HNN, DissipativeHNN

    x0 = torch.as_tensor(x0, dtype=torch.float64)
    if x0.ndim == 1:
        x0 = x0.unsqueeze(0)
    dim = 2 * system.dof
    if x0.ndim != 2 or x0.shape[-1] != dim:
        raise HnnkitValueError(
            f"x0 must have shape (B, {dim}) or ({dim},) for this system, got {tuple(x0.shape)}"
        )
    t = torch.as_tensor(t, dtype=torch.float64)
    if t.ndim != 1 or len(t) < 2:
        raise HnnkitValueError(f"t must be a 1-d series of >= 2 times, got shape {tuple(t.shape)}")
    n_bodies = system.dof // 2

    def positions(x: Tensor) -> Tensor:
        return x[..., : system.dof].reshape(*x.shape[:-1], n_bodies, 2)

    def rel_change(e: Tensor, scale: Tensor) -> Tensor:
        return (e - e[0]).abs().amax(0) / scale

    m64 = {k: as_float64(m) if isinstance(m, nn.Module) else m for k, m in models.items()}
    h_map = map_time_step({k: m for k, m in m64.items() if isinstance(m, nn.Module)})
    if h_map is not None:  # the models share the maps' grid, as in evaluate_corrected
        t, _ = map_grid(h_map, (float(t[0]), float(t[-1])), len(t))
    true = rollout(system, x0, t, rtol=1e-10, atol=1e-10)
    orbit_scale = positions(true[0]).pow(2).sum(-1).mean(-1).sqrt()
    threshold = fraction * orbit_scale
    out: dict[str, Any] = {
        "t": t,
        "true": true,
        "models": {},
        "true_energy": {"truth": system.energy(true)},
        "learned_energy": {},
        "position_error": {},
        "orbit_scale": orbit_scale,
        "threshold": threshold,
        "divergence_time": {},
        "energy_drift": {},
        "learned_energy_drift": {},
        "n_bodies": n_bodies,
        "fraction": fraction,
    }
    h0 = out["true_energy"]["truth"][0].abs().clamp_min(1e-300)
    out["energy_drift"]["truth"] = rel_change(out["true_energy"]["truth"], h0)
    for name, m in m64.items():
        pred = rollout_model(m, x0, t, rtol=1e-9, atol=1e-9)
        out["models"][name] = pred
        err = (positions(pred) - positions(true)).pow(2).sum(-1).mean(-1).sqrt()
        out["position_error"][name] = err
        bad = ~(err <= threshold)  # a rollout that blew up (NaN) has diverged too
        first = t[bad.float().argmax(0)]
        out["divergence_time"][name] = torch.where(
            bad.any(0), first, torch.full_like(first, math.nan)
        )
        out["true_energy"][name] = system.energy(pred)
        out["energy_drift"][name] = rel_change(out["true_energy"][name], h0)
        if isinstance(m, (HNN, DissipativeHNN)):
            h = m.hamiltonian(pred)
            out["learned_energy"][name] = h
            out["learned_energy_drift"][name] = rel_change(h, h0)
    return out
