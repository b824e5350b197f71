r"""Initial states in an energy band: rays from the minimum of :math:`H`, bisection on the radius.

:func:`sample_energy_band` draws states whose true energy lies in ``[lo, hi]``, for any
system whose Hamiltonian has a minimum near the origin (bounded below there):

1. **The minimum.** :math:`x^*` is found by L-BFGS descent on :math:`H` from the origin (from
   a state of the system's own sampler where :math:`H(0)` is not finite), unless the caller
   passes it as ``minimum`` (a system whose equilibrium is known does). Descent that runs
   off to :math:`-\infty` or to non-finite values is refused: :math:`H` is not bounded below
   there. :math:`x^*` is a *local* minimum: for a Hénon–Heiles-like :math:`H` (unbounded
   below far away) it is the bottom of the well around the origin, which is what a band
   below the escape energy describes.
2. **One state per draw.** A target energy :math:`e \sim U[lo, hi]` and a direction
   :math:`u` uniform on the unit sphere of phase space (normalised Gaussian draws). Along
   the ray :math:`x^* + r u` the radius grows geometrically (factor :data:`GROWTH`, from
   :data:`R_START` up to :data:`R_MAX`) until :math:`H \ge e` first holds; bisection between
   the last two radii then finds the first crossing :math:`H(x^* + r u) = e`. The first
   crossing keeps the state in the well that holds :math:`x^*`.
3. **Checks.** A ray that never reaches ``e`` (a direction along which :math:`H` stays
   lower, e.g. along the angle of a pendulum), or meets a non-finite :math:`H`, is drawn
   again, at most :data:`MAX_ROUNDS` times in all; every accepted state's energy is
   re-evaluated and lies in ``[lo, hi]``.

The energies are uniform in ``[lo, hi]``; the states are not uniform in the phase-space
volume of the band (the ray density favours directions of steep :math:`H`).
Everything random comes from the ``generator`` argument.

It lives in the systems layer so that a system's own :meth:`sample_initial` can draw from an
energy band (the zoo systems do); :mod:`hnnkit.data.sampling` re-exports it.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..errors import HnnkitValueError
from .base import HamiltonianSystem

#: The first radius tried along each ray.
R_START = 1e-4
#: The factor by which the radius grows until the target energy is reached.
GROWTH = 1.1
#: The largest radius tried along a ray.
R_MAX = 1e4
#: Rounds of fresh draws for the rays that failed, before giving up.
MAX_ROUNDS = 50
#: Bisection steps per ray (the radius to about 2**-60 of its bracket).
BISECTIONS = 60


def _energy(system: HamiltonianSystem, x: Tensor) -> Tensor:
    with torch.no_grad():
        return system.energy(x)


def energy_minimum(
    system: HamiltonianSystem, *, generator: torch.Generator | None = None
) -> tuple[Tensor, float]:
    """The local minimum ``(x*, H(x*))`` of ``system``'s Hamiltonian nearest the origin.

    Raises:
        HnnkitValueError: if :math:`H` is not finite at any starting point, or descent
            finds no finite minimum (``H`` unbounded below).
    """
    x = torch.zeros(system.dim, dtype=torch.float64)
    if not math.isfinite(float(_energy(system, x))):
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        x = system.sample_initial(1, generator=gen).to(torch.float64)[0]
        if not math.isfinite(float(_energy(system, x))):
            raise HnnkitValueError(
                f"energy_range needs a finite H near the origin; {system!r} has none there"
            )
    x = x.clone().requires_grad_(True)
    opt = torch.optim.LBFGS(
        [x], lr=1, max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-15,
        line_search_fn="strong_wolfe",
    )  # fmt: skip

    def closure() -> Tensor:
        opt.zero_grad()
        h = system.energy(x)
        if torch.isfinite(h):
            h.backward()
        return h

    try:
        opt.step(closure)
    except RuntimeError as exc:
        raise HnnkitValueError(
            f"could not find the minimum of H of {system!r} ({exc}); energy_range needs H "
            "bounded below near the origin"
        ) from exc
    x = x.detach()
    h_min = float(_energy(system, x))
    if not math.isfinite(h_min) or h_min < -1e12 or not bool(torch.isfinite(x).all()):
        raise HnnkitValueError(
            f"H of {system!r} has no finite minimum near the origin (descent reached H = "
            f"{h_min:g}); energy_range needs H bounded below"
        )
    return x, h_min


def check_energy_range(energy_range: object) -> tuple[float, float]:
    """``(lo, hi)`` as floats, finite with ``lo < hi``, else :class:`HnnkitValueError`."""
    try:
        lo, hi = (float(v) for v in energy_range)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise HnnkitValueError(
            f"energy_range must be two numbers (lo, hi), e.g. (0.02, 0.1); got {energy_range!r}"
        ) from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise HnnkitValueError(
            f"energy_range (lo, hi) needs finite numbers with lo < hi, got ({lo:g}, {hi:g})"
        )
    return lo, hi


def check_energy_band(
    energy_range: object, *, owner: str, floor: float, ceiling: float | None, beyond: str = ""
) -> tuple[float, float]:
    """``energy_range`` as ``(lo, hi)``, checked to lie in ``[floor, ceiling)``.

    A system's constructor calls it for its own band: ``floor`` is the minimum of its
    :math:`H`, ``ceiling`` the energy above which orbits are no longer bounded in the well
    (``None``: no such energy).

    Args:
        energy_range: two numbers ``(lo, hi)``.
        owner: the system's name, for the message.
        floor: the lowest allowed ``lo``.
        ceiling: ``hi`` must lie below it, or ``None``.
        beyond: what happens above ``ceiling``, for the message (e.g. ``"orbits escape"``).

    Raises:
        HnnkitValueError: if the band is malformed or leaves ``[floor, ceiling)``.
    """
    lo, hi = check_energy_range(energy_range)
    if lo < floor:
        raise HnnkitValueError(
            f"{owner}: energy_range ({lo:g}, {hi:g}) starts below the minimum of H, {floor:g}; "
            "choose a band above it"
        )
    if ceiling is not None and hi >= ceiling:
        why = f" ({beyond})" if beyond else ""
        raise HnnkitValueError(
            f"{owner}: energy_range ({lo:g}, {hi:g}) reaches {ceiling:g}, the energy above which "
            f"the motion leaves the well{why}; choose a band below {ceiling:g}"
        )
    return lo, hi


def sample_energy_band(
    system: HamiltonianSystem,
    n: int,
    energy_range: tuple[float, float],
    *,
    generator: torch.Generator,
    minimum: Tensor | None = None,
) -> Tensor:
    """``n`` states ``(n, 2·dof)`` (float64) whose true energy lies in ``energy_range``.

    The method is the module docstring's: rays from the minimum, bisection on the radius.

    Args:
        system: a system whose :math:`H` has a minimum near the origin (or at ``minimum``).
        n: how many states.
        energy_range: ``(lo, hi)``, the band of :math:`H`.
        generator: the only source of randomness.
        minimum: ``(2·dof,)``: the minimum of :math:`H` that the rays start from, when the
            caller knows it (it is then not searched for); default: found by
            :func:`energy_minimum`.

    Raises:
        HnnkitValueError: if the band is empty or lies below the minimum of :math:`H`, if
            :math:`H` is not bounded below, or if fewer than ``n`` states are found within
            :data:`MAX_ROUNDS` rounds of draws.
    """
    lo, hi = check_energy_range(energy_range)
    if minimum is None:
        x_min, h_min = energy_minimum(system, generator=generator)
    else:
        system.check_state(minimum, "minimum")
        x_min = minimum.detach().to(torch.float64).reshape(system.dim)
        h_min = float(_energy(system, x_min))
    if hi <= h_min:
        raise HnnkitValueError(
            f"energy_range ({lo:g}, {hi:g}) lies below the minimum of H, {h_min:.6g} (at "
            f"{[round(v, 6) for v in x_min.tolist()]}); choose a band above it"
        )
    lo_eff = max(lo, h_min)
    found: list[Tensor] = []
    need = n
    for _ in range(MAX_ROUNDS):
        if need <= 0:
            break
        m = max(need, 8)
        u = torch.randn(m, system.dim, generator=generator, dtype=torch.float64)
        u = u / u.norm(dim=-1, keepdim=True).clamp_min(1e-300)
        e = lo_eff + (hi - lo_eff) * torch.rand(m, generator=generator, dtype=torch.float64)
        x = _ray_crossings(system, x_min, u, e)
        if x.shape[0]:
            h = _energy(system, x)
            x = x[torch.isfinite(h) & (h >= lo) & (h <= hi)]
            found.append(x[:need])
            need -= x[:need].shape[0]
    if need > 0:
        raise HnnkitValueError(
            f"found only {n - need} of {n} states with energy in ({lo:g}, {hi:g}) for {system!r} "
            f"after {MAX_ROUNDS} rounds of rays from its minimum (H = {h_min:.6g}); H may not "
            "reach this band near the minimum: choose a band closer to it"
        )
    return torch.cat(found)[:n]


def _ray_crossings(system: HamiltonianSystem, x0: Tensor, u: Tensor, e: Tensor) -> Tensor:
    """The first crossing ``H(x0 + r u) = e`` per ray, for the rays that have one ``(k, d)``."""
    m = u.shape[0]
    r_below = torch.zeros(m, dtype=torch.float64)
    r_above = torch.full((m,), math.nan, dtype=torch.float64)
    r = torch.full((m,), R_START, dtype=torch.float64)
    open_ = torch.ones(m, dtype=torch.bool)
    bad = torch.zeros(m, dtype=torch.bool)
    steps = math.ceil(math.log(R_MAX / R_START) / math.log(GROWTH)) + 1
    for _ in range(steps):
        if not bool(open_.any()):
            break
        h = _energy(system, x0 + r[:, None] * u)
        bad |= open_ & ~torch.isfinite(h)
        hit = open_ & torch.isfinite(h) & (h >= e)
        r_above[hit] = r[hit]
        low = open_ & torch.isfinite(h) & (h < e)
        r_below[low] = r[low]
        open_ &= ~hit & ~bad
        r = r * GROWTH
    ok = ~torch.isnan(r_above) & ~bad
    a, b, uu, ee = r_below[ok], r_above[ok], u[ok], e[ok]
    for _ in range(BISECTIONS):
        mid = 0.5 * (a + b)
        h = _energy(system, x0 + mid[:, None] * uu)
        up = ~torch.isfinite(h) | (h >= ee)
        b = torch.where(up, mid, b)
        a = torch.where(up, a, mid)
    return x0 + b[:, None] * uu
