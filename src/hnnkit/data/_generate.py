"""Simulated datasets: sample, integrate the true system, add observation noise."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import DataFileError, HnnkitValueError, check_choice, check_seed
from ..integrate import SOLVERS, odeint
from ..systems import HamiltonianSystem, get_system
from ..systems.base import identity_problem
from ._dataset import Dataset
from .sampling import check_energy_range, sample_energy_band

#: Bumped whenever generation changes, so that stale cache files are never reused.
GENERATOR_VERSION = 1
#: How ``energy_range`` samples start states (recorded in the config and the cache key).
ENERGY_SAMPLER = "ray-bisection-1"


def check_initial_states(
    system: HamiltonianSystem, states: Any, n_trajectories: int | None = None
) -> Tensor:
    """``states`` as a float64 tensor ``(n, 2·dof)`` of finite start states of ``system``.

    Raises:
        HnnkitValueError: on a wrong shape, non-numeric or non-finite values, fewer than 2
            states, or ``n_trajectories`` given and different from ``n``.
    """
    if isinstance(states, Tensor):
        states = states.detach().cpu().numpy()
    try:
        x0 = torch.as_tensor(np.asarray(states, dtype=np.float64)).clone()
    except (TypeError, ValueError) as exc:
        raise HnnkitValueError(f"initial_states must be an array of real numbers ({exc})") from None
    if x0.ndim != 2 or x0.shape[1] != system.dim:
        raise HnnkitValueError(
            f"initial_states must have shape (n, {system.dim}) for {system!r} (q1..q{system.dof} "
            f"then p1..p{system.dof}), got {tuple(x0.shape)}"
        )
    if x0.shape[0] < 2:
        raise HnnkitValueError(
            f"initial_states needs at least 2 states (a train and a test trajectory), got "
            f"{x0.shape[0]}"
        )
    if not bool(torch.isfinite(x0).all()):
        row = int((~torch.isfinite(x0)).any(dim=1).nonzero()[0])
        raise HnnkitValueError(
            f"initial_states row {row} holds NaN or infinite values; pass finite states"
        )
    if n_trajectories is not None and n_trajectories != x0.shape[0]:
        raise HnnkitValueError(
            f"n_trajectories={n_trajectories} but initial_states holds {x0.shape[0]} states; "
            "omit n_trajectories"
        )
    return x0


def cache_dir() -> Path:
    """Where datasets are cached: ``$HNNKIT_CACHE``, else ``~/.cache/hnnkit``."""
    env = os.environ.get("HNNKIT_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "hnnkit"


def _check_count(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise HnnkitValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def generate(
    system: HamiltonianSystem | str,
    n_trajectories: int | None = None,
    n_points: int | None = None,
    t_span: tuple[float, float] | None = None,
    noise_std: float | None = None,
    seed: int = 0,
    *,
    test_fraction: float | None = None,
    method: str = "dopri5",
    rtol: float = 1e-10,
    atol: float = 1e-10,
    cache: bool | str | os.PathLike = False,
    initial_states: Tensor | np.ndarray | None = None,
    energy_range: tuple[float, float] | None = None,
) -> Dataset:
    r"""Simulate a dataset of trajectories of ``system``.

    1. Draw ``n_trajectories`` initial states with ``system.sample_initial`` from a
       ``torch.Generator`` seeded with ``seed`` (no global RNG is touched); or, with
       ``energy_range``, states whose true energy lies in that band
       (:func:`hnnkit.data.sampling.sample_energy_band`: rays from the minimum of H,
       bisection on the radius); or take ``initial_states`` as given.
    2. Integrate the true system in float64 on ``n_points`` evenly spaced times in
       ``t_span``, with its exact solution when it has one, else with ``method`` at
       ``rtol``/``atol`` (dopri5 at 1e-10 by default, all trajectories in one batch).
    3. Targets are the true vector field at the *clean* states.
    4. Observations get Gaussian noise of standard deviation ``noise_std`` (the original
       code adds ``0.1 * randn`` — a standard deviation of 0.1; the paper's "σ² = 0.1" is
       not what was run).

    The last ``test_fraction`` of the trajectories are held out (whole trajectories).
    Every ``None`` argument takes the system's default (the original paper's setting).

    Args:
        system: a system or a registered name.
        seed: an integer in ``[0, 2**63 - 1]``.
        cache: ``True`` to cache under :func:`cache_dir`, or a directory. The key is a
            hash of the full config, which includes ``system.identity()``: the system's
            class, a hash of its source code (or its declared ``version``), every
            constructor parameter and, for a class whose ``params()`` misses some, its
            attributes. A system without an identity (a ``Custom`` built from a Python
            callable, a class defined in an interactive session, non-plain state) is not
            cached, with a warning that says why. A cache file that is unreadable,
            malformed or written for another config is regenerated, with a warning.
        initial_states: ``(n, 2·dof)`` finite start states to use instead of sampling;
            ``n_trajectories`` is then ``n`` (if given, it must equal ``n``). The config
            records their number and a SHA-256 of their float64 values (``initial_states``).
        energy_range: ``(lo, hi)``: sample start states whose true energy lies in the band
            (recorded as ``energy_range`` with the method, ``energy_sampler``). Needs H
            bounded below near the origin; not with ``initial_states``.

    Returns:
        A :class:`Dataset` whose ``config`` records every setting above.

    Raises:
        HnnkitValueError: on negative counts or noise, bad ``t_span``, ``test_fraction`` or
            ``seed``; on ``initial_states`` of the wrong shape or not finite; on an empty
            ``energy_range``, one below the minimum of H, or one where no states are found.
        UnknownNameError: on an unknown system or method name.
    """
    if isinstance(system, str):
        system = get_system(system)
    x0 = None
    if initial_states is not None:
        if energy_range is not None:
            raise HnnkitValueError(
                "pass initial_states or energy_range, not both (energy_range samples the states)"
            )
        x0 = check_initial_states(system, initial_states, n_trajectories)
        n_trajectories = x0.shape[0]
    if energy_range is not None:
        energy_range = check_energy_range(energy_range)
    n_trajectories = _check_count(
        "n_trajectories",
        system.default_n_trajectories if n_trajectories is None else n_trajectories,
        2,
    )
    n_points = _check_count(
        "n_points", system.default_n_points if n_points is None else n_points, 2
    )
    t_span = tuple(float(v) for v in (system.default_t_span if t_span is None else t_span))
    if len(t_span) != 2 or not t_span[1] > t_span[0]:
        raise HnnkitValueError(f"t_span must be (start, end) with end > start, got {t_span}")
    noise_std = float(system.default_noise_std if noise_std is None else noise_std)
    if not noise_std >= 0:
        raise HnnkitValueError(f"noise_std must be >= 0 (a standard deviation), got {noise_std}")
    test_fraction = float(system.default_test_fraction if test_fraction is None else test_fraction)
    if not 0 < test_fraction < 1:
        raise HnnkitValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    seed = check_seed("seed", seed)
    check_choice("integration method", method, SOLVERS)

    config: dict[str, Any] = {
        "system": type(system).__name__,
        "system_params": system.params(),
        "n_trajectories": n_trajectories,
        "n_points": n_points,
        "t_span": list(t_span),
        "noise_std": noise_std,
        "seed": seed,
        "test_fraction": test_fraction,
        "method": method,
        "rtol": rtol,
        "atol": atol,
        "generator_version": GENERATOR_VERSION,
    }
    if x0 is not None:  # keys only when used: earlier configs (and cache keys) are unchanged
        digest = hashlib.sha256(x0.numpy().tobytes()).hexdigest()
        config["initial_states"] = {"n": x0.shape[0], "sha256": digest}
    if energy_range is not None:
        config["energy_range"] = list(energy_range)
        config["energy_sampler"] = ENERGY_SAMPLER
    identity = system.identity()
    if identity is not None:
        config["system_identity"] = identity
    try:  # normalise to plain JSON types (tuples -> lists) so saved and fresh configs compare equal
        config = json.loads(json.dumps(config))
    except TypeError:
        pass
    path = None
    if cache is not False:
        if identity is None:
            why = identity_problem(system) or "it has no identity"
            warnings.warn(
                f"{system!r} is not cached because it cannot describe itself for the cache "
                f"key: {why}. It is simulated on every call.",
                stacklevel=2,
            )
        else:
            path = _cache_path(config, cache)
    if path is not None and path.exists():
        try:
            data = Dataset.load(path)
            if data.config != config:
                raise DataFileError(f"dataset file {path} was written for another config")
            return data
        except DataFileError as exc:
            warnings.warn(f"{exc}; regenerating", stacklevel=2)
            path.unlink(missing_ok=True)

    data = _simulate(system, config, x0)
    if path is not None:
        data.save(path)
    return data


def _cache_path(config: dict[str, Any], cache: bool | str | os.PathLike) -> Path | None:
    if cache is False:
        return None
    try:
        key = json.dumps(config, sort_keys=True)
    except TypeError:  # e.g. a Custom system built from a Python callable
        return None
    root = cache_dir() if cache is True else Path(cache)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return root / f"{config['system'].lower()}-{digest}.npz"


@torch.no_grad()
def _simulate(system: HamiltonianSystem, config: dict[str, Any], x0: Tensor | None) -> Dataset:
    gen = torch.Generator().manual_seed(config["seed"])
    n, m = config["n_trajectories"], config["n_points"]
    if x0 is None and "energy_range" in config:
        x0 = sample_energy_band(system, n, config["energy_range"], generator=gen)
    elif x0 is None:
        x0 = system.sample_initial(n, generator=gen).to(torch.float64)
        system.check_state(x0, "sample_initial output")
    t = torch.linspace(*config["t_span"], m, dtype=torch.float64)
    traj = system.exact_solution(t, x0)
    if traj is None:
        try:
            traj = odeint(
                system.vector_field,
                x0,
                t,
                method=config["method"],
                rtol=config["rtol"],
                atol=config["atol"],
            )
        except RuntimeError as exc:  # a step-size underflow: the true motion blows up
            if isinstance(exc, HnnkitValueError):
                raise
            raise HnnkitValueError(
                f"simulating {system!r} failed ({exc}); its trajectories leave every bounded "
                "region from some start states: choose start states (or an energy band) where "
                "the motion stays bounded, or a shorter t_span"
            ) from exc
    clean = traj.transpose(0, 1).contiguous()  # (n, m, d)
    dx = system.vector_field(t, clean)
    noisy = clean + config["noise_std"] * torch.randn(
        clean.shape, generator=gen, dtype=torch.float64
    )
    mask = torch.zeros(n, m, dtype=torch.bool)
    n_test = min(n - 1, max(1, round(config["test_fraction"] * n)))
    mask[n - n_test :] = True
    return Dataset(
        x=noisy,
        dx=dx,
        t=t.expand(n, -1).clone(),
        test_mask=mask,
        x_clean=clean,
        config=config,
    )
