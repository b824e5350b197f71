r"""Trajectory smoothing before the refit: less errors-in-variables bias on noisy states.

A least-squares refit of :math:`H` against :math:`\dot x` at noisy states :math:`x + \varepsilon`
is biased: the noise in the regressors attenuates the coefficients (about
:math:`\sigma_x^2/(\sigma_x^2 + \sigma^2)`, 0.95 on the paper's noisy spring). Where the
derivatives are accurate (simulated data: the targets are the true field at the clean states),
they pin each trajectory down to one unknown offset: :math:`x(t) = x(t_0) + \int_{t_0}^t \dot x`.
:func:`smooth_states` integrates a cubic spline of :math:`\dot x` along each trajectory and fits
that offset to the noisy states by least squares, which averages the noise over the trajectory's
:math:`m` points (:math:`\sigma/\sqrt m`). ``"savgol"`` smooths the states alone (a local cubic
in time over 7 points), for comparison; it does not use the derivatives.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ..errors import HnnkitValueError, check_choice

#: The smoothing methods of :func:`smooth_states`.
DENOISE_METHODS = ("auto", "integrate", "savgol", "none")
#: ``"auto"`` integrates only when the states' scatter about the integrated path is this many
#: times the integration's own error estimate (noise-free data stay as they are).
AUTO_RATIO = 10.0


@dataclass(frozen=True)
class Smoothing:
    """What :func:`smooth_states` did.

    Attributes:
        method: the method applied (``"none"`` when the states were left as they are).
        noise_rms: root-mean-square of (observed - smoothed) states, an estimate of the
            observation noise (0 for ``"none"``).
        integration_rms: estimated error of the integrated path itself (``"integrate"``).
    """

    method: str
    noise_rms: float = 0.0
    integration_rms: float = 0.0


def _integrated(t: np.ndarray, dx: np.ndarray) -> np.ndarray:
    """The antiderivative of a cubic spline through ``dx(t)`` (rows) at ``t``, 0 at ``t[0]``."""
    from scipy.interpolate import CubicSpline

    return CubicSpline(t, dx, axis=0).antiderivative()(t)


def _integrate_one(t: np.ndarray, x: np.ndarray, dx: np.ndarray) -> tuple[np.ndarray, float]:
    """Smoothed states of one trajectory and the estimated error of the integration."""
    path = _integrated(t, dx)
    smooth = path + (x - path).mean(0)
    err = 0.0
    if len(t) >= 8:  # the same integral on every other point: its error is ~16× larger
        half = _integrated(t[::2], dx[::2])
        diff = (path[::2] - path[0]) - half
        diff = diff - diff.mean(0)
        err = float(np.sqrt((diff**2).mean())) / 15
    return smooth, err


def smooth_states(
    x: Tensor, dx: Tensor, t: Tensor, groups: Tensor, *, method: str = "integrate"
) -> tuple[Tensor, Smoothing]:
    r"""Smooth noisy states along their trajectories before a refit.

    Args:
        x: observed states ``(N, 2n)``.
        dx: their time derivatives ``(N, 2n)`` (for ``"integrate"`` they must be accurate).
        t: the time of each state ``(N,)``.
        groups: the trajectory of each state ``(N,)`` (integers); a trajectory's states may
            come in any order.
        method: ``"integrate"`` (the default; cubic-spline antiderivative of ``dx`` plus the
            least-squares offset), ``"savgol"`` (Savitzky–Golay, cubic, 7 points, on ``x``
            alone), ``"auto"`` (``"integrate"`` where the states scatter about the integrated
            path by more than :data:`AUTO_RATIO` times its error estimate, else ``"none"``),
            or ``"none"``.

    Returns:
        ``(smoothed states (N, 2n) float64, Smoothing)``. Trajectories with fewer than 4
        states (8 for ``"savgol"``) are left as they are.

    Raises:
        HnnkitValueError: on mismatched shapes or an unknown method.
    """
    check_choice("denoise method", method, DENOISE_METHODS)
    xs = x.detach().double().cpu().numpy()
    if dx.shape != x.shape or t.shape != x.shape[:1] or groups.shape != x.shape[:1]:
        raise HnnkitValueError(
            f"smooth_states needs x and dx of one shape (N, 2n) and t, groups of shape (N,); "
            f"got {tuple(x.shape)}, {tuple(dx.shape)}, {tuple(t.shape)}, {tuple(groups.shape)}"
        )
    if method == "none":
        return x.detach().double().cpu(), Smoothing("none")
    dxs = dx.detach().double().cpu().numpy()
    ts = t.detach().double().cpu().numpy()
    gs = groups.detach().cpu().numpy()
    out = xs.copy()
    errs = []
    for g in np.unique(gs):
        idx = np.nonzero(gs == g)[0]
        idx = idx[np.argsort(ts[idx], kind="stable")]
        if method == "savgol":
            if len(idx) >= 8:
                from scipy.signal import savgol_filter

                out[idx] = savgol_filter(xs[idx], 7, 3, axis=0)
        elif len(idx) >= 4 and np.all(np.diff(ts[idx]) > 0):
            out[idx], err = _integrate_one(ts[idx], xs[idx], dxs[idx])
            errs.append(err)
    noise = float(np.sqrt(((xs - out) ** 2).mean()))
    integration = float(np.sqrt(np.mean(np.square(errs)))) if errs else 0.0
    if method == "auto":
        if not (noise > AUTO_RATIO * integration and math.isfinite(noise)):
            return x.detach().double().cpu(), Smoothing("none", noise, integration)
        method = "integrate"
    return torch.from_numpy(out), Smoothing(method, noise, integration)


def refine_offsets(
    refit: Callable[[Tensor], Callable[[Tensor], Tensor]],
    x: Tensor,
    dx: Tensor,
    groups: Tensor,
    *,
    iters: int = 8,
    step: float = 1e-5,
) -> Tensor:
    r"""Refine each trajectory's offset together with the formula (errors in variables, solved).

    :func:`smooth_states` leaves each trajectory's integrated path off by one constant offset
    (the mean of :math:`m` noisy states, :math:`\sigma/\sqrt m`). With accurate derivatives the
    offsets are identifiable: alternately (1) ``refit(states)`` refits the formula's
    coefficients on the current states and returns its field, and (2) each trajectory's offset
    takes one Gauss–Newton step on that field's residual against ``dx`` (the field's Jacobian
    by central differences of width ``step``). At the joint optimum a correct formula leaves
    no residual, so the attenuation is gone, not just reduced.

    Args:
        refit: ``states -> field function`` (refits the coefficients on ``states``).
        x: the smoothed states ``(N, 2n)`` (float64).
        dx: their derivatives ``(N, 2n)``.
        groups: the trajectory of each state ``(N,)``.
        iters: alternations (default 8).
        step: finite-difference width for the Jacobian (default 1e-5).

    Returns:
        The refined states ``(N, 2n)``.
    """
    xs = x.detach().double().clone()
    target = dx.detach().double()
    dim = xs.shape[-1]
    ids = groups.detach().cpu()
    eye = torch.eye(dim, dtype=torch.float64)
    for _ in range(iters):
        field = refit(xs)
        r = field(xs) - target  # (N, d)
        jac = torch.stack(
            [
                (field(xs + step * eye[j]) - field(xs - step * eye[j])) / (2 * step)
                for j in range(dim)
            ],
            dim=-1,
        )  # (N, d, d): d field_i / d x_j
        moved = False
        for g in torch.unique(ids):
            sel = ids == g
            j_g, r_g = jac[sel], r[sel]
            a = torch.einsum("nij,nik->jk", j_g, j_g)
            b = torch.einsum("nij,ni->j", j_g, r_g)
            a = a + 1e-10 * float(a.diagonal().sum().clamp_min(1e-300)) * eye
            try:
                delta = -torch.linalg.solve(a, b)
            except RuntimeError:  # a singular trajectory: leave its offset
                continue
            if torch.isfinite(delta).all():
                xs[sel] += delta
                moved = moved or bool(delta.abs().max() > 1e-14)
        if not moved:
            break
    return xs


__all__ = ["AUTO_RATIO", "DENOISE_METHODS", "Smoothing", "refine_offsets", "smooth_states"]
