r"""Batched ODE integrators in pure PyTorch: :func:`odeint`.

``odeint(f, x0, t)`` solves :math:`\dot x = f(t, x)`, :math:`x(t_0) = x_0` for a batch of
trajectories at once and returns the states at the output times ``t``, time first:
``out[i] = x(t[i])``, ``out.shape == (len(t), *x0.shape)``. Every method is differentiable
(autograd runs through the steps: "discretise, then optimise"), works on CPU and CUDA, in
float32 and float64.

Calling convention for ``f``
    ``f(t, x)`` receives ``x`` with the shape of ``x0`` and ``t`` as a tensor of shape
    ``x.shape[:-1] + (1,)`` holding each trajectory's current time, so that it broadcasts
    against ``x`` (for the fixed-step methods all trajectories share one time and ``t`` is an
    expanded view). Autonomous systems simply ignore ``t``. ``f`` must return ``dx/dt`` with
    the shape of ``x``. This is torchdiffeq's ``f(t, x)`` signature; only the shape of ``t``
    differs (torchdiffeq passes a 0-d tensor).

Methods (the :data:`SOLVERS` registry)
    ``euler``
        :math:`x_{n+1} = x_n + h f(t_n, x_n)`; order 1, fixed step.
    ``rk4``
        The classical Runge–Kutta method, order 4, fixed step:
        :math:`k_1 = f(t_n, x_n)`, :math:`k_2 = f(t_n + h/2, x_n + h k_1/2)`,
        :math:`k_3 = f(t_n + h/2, x_n + h k_2/2)`, :math:`k_4 = f(t_n + h, x_n + h k_3)`,
        :math:`x_{n+1} = x_n + h (k_1 + 2k_2 + 2k_3 + k_4)/6`.
    ``dopri5``
        Dormand–Prince 5(4) [DP80]_, adaptive, order 5 with an embedded order-4 error
        estimate, first-same-as-last (6 new evaluations of ``f`` per step). Butcher tableau::

            0    |
            1/5  | 1/5
            3/10 | 3/40        9/40
            4/5  | 44/45      -56/15       32/9
            8/9  | 19372/6561 -25360/2187  64448/6561 -212/729
            1    | 9017/3168  -355/33      46732/5247  49/176   -5103/18656
            1    | 35/384      0           500/1113    125/192  -2187/6784    11/84
            -----+---------------------------------------------------------------------
            b5   | 35/384      0           500/1113    125/192  -2187/6784    11/84    0
            b4   | 5179/57600  0           7571/16695  393/640  -92097/339200 187/2100 1/40

        Each trajectory has its own step size ``h`` and accepts or rejects its own steps.
        With :math:`y_0` the state before and :math:`y_1` (order 5) after a step, the error
        :math:`e = y_1 - \hat y_1` (the difference with the order-4 solution) is measured as
        :math:`\|e\| = \sqrt{\tfrac1d \sum_i (e_i / (\mathrm{atol} + \mathrm{rtol}\max(|y_{0,i}|, |y_{1,i}|)))^2}`;
        the step is accepted when :math:`\|e\| \le 1`, and the next step is
        :math:`h_{new} = h \cdot \mathrm{clip}(0.9\,\|e\|^{-1/5}, 0.2, 10)`.

        *Dense output.* The step size follows the error control only: a step is shortened
        only at the last output time ``t[-1]`` (``f`` is never evaluated beyond it), and the
        outputs that fall inside an accepted step :math:`[t_n, t_n + h]` are read off the
        Dormand–Prince continuous extension [Sh86]_ [HNW93]_ (Sec. II.6), a free by-product
        of the step's seven stages :math:`k_j`:
        :math:`y(t_n + \theta h) = y_n + h \sum_j b_j(\theta) k_j`, :math:`0 \le \theta \le 1`,
        with :math:`b_j(\theta) = \theta^2(3 - 2\theta) b_j + \theta^2(\theta-1)^2 e_j(\theta)`
        (plus :math:`\theta(\theta-1)^2` for :math:`k_1` and :math:`\theta^2(\theta-1)` for
        :math:`k_7`): the cubic Hermite interpolant of :math:`y_n, f_n, y_{n+1}, f_{n+1}` plus a
        correction, linear :math:`e_j`, that makes it order 4 (local error
        :math:`O(h^5)`) and :math:`C^1` across steps. It costs no evaluation of ``f``, so the
        number of outputs no longer changes the number of steps (before this, steps landed on
        every output time: 68 evaluations instead of 20 on ``benchmarks/bench_ode.py``). At
        an output time that a step ends on, the output is the step's own 5th-order state.
        The first step comes from the heuristic of
        Hairer, Nørsett & Wanner [HNW93]_ (Sec. II.4): :math:`h_0 = 0.01\,\|x_0\|/\|f_0\|`,
        then :math:`h = \min(100 h_0, (0.01/\max(\|f_0\|, \|f(t_0+h_0, x_0+h_0 f_0) - f_0\|/h_0))^{1/5})`
        (norms weighted as above).
    ``leapfrog`` (alias ``verlet``)
        Störmer–Verlet, kick–drift–kick, order 2, symplectic and time-reversible, fixed
        step; only for separable Hamiltonians :math:`H(q, p) = T(p) + V(q)`:
        :math:`p_{n+1/2} = p_n + \tfrac h2 \dot p(q_n)`, :math:`q_{n+1} = q_n + h\,\dot q(p_{n+1/2})`,
        :math:`p_{n+1} = p_{n+1/2} + \tfrac h2 \dot p(q_{n+1})` [HLW06]_.
    ``implicit-midpoint``
        :math:`x_{n+1} = x_n + h f(t_n + h/2, (x_n + x_{n+1})/2)`, order 2, symplectic for any
        Hamiltonian, fixed step; the implicit equation is solved by fixed-point iteration.

Fixed-step methods take ``substeps`` equal steps between consecutive output times, or, with
``step_size``, ``ceil(interval / step_size)`` equal steps per interval.

References:
    .. [DP80] J. R. Dormand and P. J. Prince, "A family of embedded Runge-Kutta formulae",
       J. Comput. Appl. Math. 6(1):19-26, 1980.
    .. [HNW93] E. Hairer, S. P. Nørsett and G. Wanner, *Solving Ordinary Differential
       Equations I: Nonstiff Problems*, 2nd ed., Springer, 1993 (Sec. II.4, starting step size).
    .. [Sh86] L. F. Shampine, "Some practical Runge-Kutta formulas", Math. Comp.
       46(173):135-150, 1986 (the continuous extension of the Dormand–Prince pair).
    .. [HLW06] E. Hairer, C. Lubich and G. Wanner, *Geometric Numerical Integration*, 2nd ed.,
       Springer, 2006 (Sec. I.3 and VI.3).
"""

from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any, ClassVar

import torch
from torch import Tensor

from .errors import (
    HnnkitValueError,
    NonFiniteStateError,
    SolverGaveUpError,
    StateRefusedError,
    check_choice,
)

__all__ = [
    "RK4",
    "SOLVERS",
    "Dopri5",
    "Euler",
    "FixedStepSolver",
    "ImplicitMidpoint",
    "Leapfrog",
    "ODEFunc",
    "Solver",
    "odeint",
]

ODEFunc = Callable[[Tensor, Tensor], Tensor]
"""``f(t, x) -> dx/dt``; ``t`` has shape ``x.shape[:-1] + (1,)``."""

_FIXED_STEP_CHUNK = 4096  # step start times are materialised on the device this many at a time


# --------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------


def _is_real_number(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_positive(name: str, value: object) -> float:
    if not _is_real_number(value) or not math.isfinite(float(value)) or float(value) <= 0:  # type: ignore[arg-type]
        raise HnnkitValueError(f"{name} must be a finite number > 0; got {value!r}")
    return float(value)  # type: ignore[arg-type]


def _check_count(name: str, value: object) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or int(value) < 1:
        raise HnnkitValueError(f"{name} must be an integer >= 1; got {value!r}")
    return int(value)


def _check_x0(x0: object) -> Tensor:
    if not isinstance(x0, Tensor):
        raise HnnkitValueError(
            f"x0 must be a floating-point torch.Tensor of shape (..., d); got {type(x0).__name__}"
        )
    if not x0.is_floating_point():
        raise HnnkitValueError(
            f"x0 must be a floating-point tensor (e.g. float32 or float64); got dtype {x0.dtype}"
        )
    if x0.ndim == 0:
        raise HnnkitValueError(
            "x0 must have at least one dimension (the state dimension), shape (d,) or "
            "(batch..., d); got a 0-d tensor"
        )
    finite = torch.isfinite(x0.detach())
    if not bool(finite.all()):
        bad = (~finite).nonzero()
        first = tuple(int(i) for i in bad[0])
        raise HnnkitValueError(
            f"x0 must be finite; got {bad.shape[0]} NaN/inf entries of {x0.numel()} "
            f"(first at index {first}: {x0.detach()[first].item()})"
        )
    return x0


def _check_t(t: object, x0: Tensor) -> tuple[Tensor, list[float]]:
    """Convert ``t`` to ``x0``'s dtype/device and check it; also return it as host floats."""
    try:
        if isinstance(t, Tensor):
            tt = t.detach().to(device=x0.device, dtype=x0.dtype)
        else:
            tt = torch.as_tensor(t, dtype=x0.dtype, device=x0.device)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise HnnkitValueError(
            f"t must be a 1-D tensor (or sequence) of increasing output times; got {t!r} ({exc})"
        ) from None
    if tt.ndim != 1 or tt.shape[0] < 1:
        raise HnnkitValueError(
            "t must be a 1-D tensor of at least one output time, strictly increasing; "
            f"got shape {tuple(tt.shape)}"
        )
    host = tt.cpu().double().tolist()  # the one host copy of the times
    for i, ti in enumerate(host):
        if not math.isfinite(ti):
            raise HnnkitValueError(f"t must be finite; got t[{i}] = {ti}")
    for i in range(1, len(host)):
        if not host[i] > host[i - 1]:
            shown = host if len(host) <= 8 else [*host[:8], "..."]
            raise HnnkitValueError(
                f"t must be strictly increasing (in x0's dtype {x0.dtype}); got "
                f"t[{i}] = {host[i]!r} <= t[{i - 1}] = {host[i - 1]!r} in t = {shown}"
            )
    return tt, host


def _evaluate(f: ODEFunc, t: Tensor, x: Tensor) -> Tensor:
    """Call ``f(t, x)`` and check that it returns a tensor of ``x``'s shape."""
    dx = f(t, x)
    if not isinstance(dx, Tensor) or dx.shape != x.shape:
        got = tuple(dx.shape) if isinstance(dx, Tensor) else type(dx).__name__
        name = getattr(f, "__qualname__", type(f).__name__)
        raise HnnkitValueError(
            f"f(t, x) ({name}) must return dx/dt with the shape of x, {tuple(x.shape)}; got {got}"
        )
    return dx


def _unravel(flat: int, batch_shape: torch.Size) -> tuple[int, ...]:
    idx = []
    for size in reversed(batch_shape):
        flat, r = divmod(flat, size)
        idx.append(r)
    return tuple(reversed(idx))


def _batch_index(flat: int, batch_shape: torch.Size) -> str:
    if len(batch_shape) == 0:
        return "the trajectory"
    return f"trajectory {_unravel(flat, batch_shape)}"


def _method_name(solver: Solver) -> str:
    return next((k for k, v in SOLVERS.items() if v is type(solver)), type(solver).__name__)


_NON_FINITE_ADVICE = (
    "The solution may blow up there, or the step is too large for the field: use a smaller "
    "step (step_size, more substeps, or tighter rtol/atol for dopri5), and check that f "
    "returns finite values there (no division by zero or overflowing term)."
)


def _non_finite_error(
    method: str, time: float, flat: int, batch_shape: torch.Size, what: str, n_bad: int = 1
) -> NonFiniteStateError:
    others = f" (and {n_bad - 1} other trajectories)" if n_bad > 1 else ""
    return NonFiniteStateError(
        f"{method}: {what} became non-finite (NaN or inf) at t={time:g} for "
        f"{_batch_index(flat, batch_shape)}{others}. {_NON_FINITE_ADVICE}",
        time=time,
        index=_unravel(flat, batch_shape),
    )


# --------------------------------------------------------------------------------------
# solvers
# --------------------------------------------------------------------------------------


class Solver(ABC):
    """Base class of the integrators in :data:`SOLVERS`; use them through :func:`odeint`.

    A solver is configured once with the vector field and the options, then
    :meth:`integrate` solves from ``x0`` over the output times ``t``. Options that a method
    does not use are accepted and ignored (e.g. ``rtol`` for ``rk4``, ``substeps`` for
    ``dopri5``).

    Args:
        f: the vector field ``f(t, x) -> dx/dt`` (see the module docstring for the shape of
            ``t``).
        rtol: relative tolerance of adaptive methods (default ``1e-7``), > 0.
        atol: absolute tolerance of adaptive methods (default ``1e-9``), > 0.
        step_size: fixed-step methods: the largest step; each output interval is split into
            ``ceil(interval / step_size)`` equal steps. Adaptive methods: the first step
            (instead of the automatic choice). Default ``None``.
        substeps: fixed-step methods: equal steps per output interval when ``step_size`` is
            not given (default 1), an integer >= 1.
        max_steps: the most steps one call may take (default ``100_000``), an integer >= 1.
        compact: adaptive methods on a ``(batch, d)`` state: drop trajectories that reached
            the last output time from the batch passed to ``f`` (default ``True``), so
            ``f`` must treat rows independently. Pass ``False`` when ``f`` depends on a
            row's position in the batch (e.g. per-row constants captured in ``f``).

    Raises:
        HnnkitValueError: if an option is out of range, or both ``step_size`` and
            ``substeps != 1`` are given to a fixed-step method.

    Attributes:
        order: the method's order of accuracy (class attribute).
        adaptive: whether the step size is chosen by error control.
        symplectic: whether the method preserves the symplectic form (Hamiltonian systems).
    """

    order: ClassVar[int]
    adaptive: ClassVar[bool] = False
    symplectic: ClassVar[bool] = False

    def __init__(
        self,
        f: ODEFunc,
        *,
        rtol: float = 1e-7,
        atol: float = 1e-9,
        step_size: float | None = None,
        substeps: int = 1,
        max_steps: int = 100_000,
        compact: bool = True,
    ) -> None:
        if not callable(f):
            raise HnnkitValueError(f"f must be a callable f(t, x) -> dx/dt; got {type(f).__name__}")
        self.f = f
        self.rtol = _check_positive("rtol", rtol)
        self.atol = _check_positive("atol", atol)
        self.step_size = None if step_size is None else _check_positive("step_size", step_size)
        self.substeps = _check_count("substeps", substeps)
        self.max_steps = _check_count("max_steps", max_steps)
        self.compact = bool(compact)

    def integrate(self, x0: Tensor, t: Tensor | Sequence[float]) -> Tensor:
        """Solve from ``x0`` at ``t[0]`` and return the states at every time in ``t``.

        Args:
            x0: initial states ``(d,)`` or ``(batch..., d)``, floating point and finite.
            t: output times, 1-D and strictly increasing; converted to ``x0``'s dtype and
                device (no gradient flows to ``t``).

        Returns:
            ``(len(t), *x0.shape)``, with ``out[0]`` equal to ``x0``.

        Raises:
            HnnkitValueError: on invalid ``x0`` or ``t``, or if ``f`` returns the wrong shape.
            NonFiniteStateError: (a ``HnnkitValueError`` and a ``RuntimeError``) if the
                state becomes NaN or infinite; the message names the first output time and
                trajectory affected.
            RuntimeError: if the solve fails otherwise (see the concrete solver).
        """
        x0 = _check_x0(x0)
        tt, host = _check_t(t, x0)
        self._check_state(x0)
        if len(host) == 1:
            return x0[None].clone()
        if x0.numel() == 0:
            return x0.new_empty((len(host), *x0.shape))
        return self._integrate(x0, tt, host)

    def _check_state(self, x0: Tensor) -> None:
        """Method-specific checks of ``x0`` (hook)."""

    @abstractmethod
    def _integrate(self, x0: Tensor, t: Tensor, t_host: list[float]) -> Tensor:
        """Solve with validated inputs; ``t`` has at least two points."""


class FixedStepSolver(Solver):
    """Base class of the fixed-step one-step methods.

    Between output times ``t[i]`` and ``t[i+1]`` it takes ``n_i`` equal steps, with
    ``n_i = substeps``, or ``n_i = ceil((t[i+1] - t[i]) / step_size)`` when ``step_size`` is
    given. The step sizes are Python floats and the step times are precomputed on the
    device, so the stepping loop itself never waits for the device (except in
    :class:`ImplicitMidpoint`, whose convergence test reads one number per iteration).
    See :class:`Solver` for the arguments.

    Subclasses set ``stage_fractions`` (the fractions ``c`` of the step at which ``f`` is
    evaluated) and implement :meth:`_step`.
    """

    stage_fractions: ClassVar[tuple[float, ...]]

    def __init__(
        self,
        f: ODEFunc,
        *,
        rtol: float = 1e-7,
        atol: float = 1e-9,
        step_size: float | None = None,
        substeps: int = 1,
        max_steps: int = 100_000,
        compact: bool = True,
    ) -> None:
        super().__init__(
            f,
            rtol=rtol,
            atol=atol,
            step_size=step_size,
            substeps=substeps,
            max_steps=max_steps,
            compact=compact,
        )
        if self.step_size is not None and self.substeps != 1:
            raise HnnkitValueError(
                f"give either step_size or substeps, not both; got step_size={step_size!r} "
                f"and substeps={substeps!r}"
            )

    def steps_per_interval(self, t_host: Sequence[float]) -> list[int]:
        """Number of equal steps in each output interval.

        Args:
            t_host: the output times as floats.

        Returns:
            one count per interval (``len(t_host) - 1`` entries).
        """
        if self.step_size is None:
            return [self.substeps] * (len(t_host) - 1)
        counts = []
        for a, b in zip(t_host[:-1], t_host[1:], strict=True):
            ratio = (b - a) / self.step_size
            counts.append(max(1, math.ceil(ratio - 1e-9 * max(1.0, ratio))))  # ignore rounding
        return counts

    def _integrate(self, x0: Tensor, t: Tensor, t_host: list[float]) -> Tensor:
        counts = self.steps_per_interval(t_host)
        total = sum(counts)
        if total > self.max_steps:
            how = (
                f"step_size={self.step_size!r}"
                if self.step_size is not None
                else f"substeps={self.substeps}"
            )
            raise HnnkitValueError(
                f"{how} needs {total} steps over t in [{t_host[0]}, {t_host[-1]}], more than "
                f"max_steps={self.max_steps}; use larger steps or raise max_steps"
            )
        tshape = (*x0.shape[:-1], 1)
        stages = len(self.stage_fractions)
        frac = torch.tensor(self.stage_fractions, dtype=x0.dtype).to(x0.device)
        view_shape = (-1, stages, *([1] * len(tshape)))

        x = x0
        carry = self._init_carry(t[0].expand(tshape), x0)
        outs = [x0]
        for i, n in enumerate(counts):
            h = (t_host[i + 1] - t_host[i]) / n
            for j0 in range(0, n, _FIXED_STEP_CHUNK):
                j1 = min(n, j0 + _FIXED_STEP_CHUNK)
                offsets = torch.arange(j0, j1, dtype=x0.dtype, device=x0.device)
                grid = t[i] + (offsets[:, None] + frac[None, :]) * h  # (m, stages)
                grid = grid.view(view_shape).expand(j1 - j0, stages, *tshape)
                # per-step tuples of stage-time views, made in C++ once per chunk
                times = list(zip(*(g.unbind(0) for g in grid.unbind(1)), strict=True))
                x, carry = self._advance(times, h, x, carry)
            outs.append(x)
        out = torch.stack(outs)
        self._check_finite(out, t_host)
        return out

    def _check_finite(self, out: Tensor, t_host: list[float]) -> None:
        """Raise :class:`NonFiniteStateError` if any output state is NaN or infinite.

        Every step adds an increment to the state (``x + h * k``), so a NaN or infinite entry
        never turns finite again: checking the last output state (one small reduction and
        one device read per solve) finds any. The first output time and trajectory
        affected are located only on failure.
        """
        with torch.no_grad():
            if bool(torch.isfinite(out[-1].detach()).all()):
                return
            finite = torch.isfinite(out.detach())
            bad = (~finite.all(-1)).reshape(out.shape[0], -1).cpu()  # (n_out, n_traj)
        i = int(bad.any(1).nonzero()[0])
        j = int(bad[i].nonzero()[0])
        raise _non_finite_error(
            _method_name(self), t_host[i], j, out.shape[1:-1], "the state", int(bad[i].sum())
        )

    def _init_carry(self, t0: Tensor, x0: Tensor) -> Any:
        """State carried from step to step (e.g. a reusable evaluation of ``f``)."""
        return None

    def _advance(
        self, times: Sequence[Sequence[Tensor]], h: float, x: Tensor, carry: Any
    ) -> tuple[Tensor, Any]:
        """Take ``len(times)`` steps of size ``h``; ``times[j]`` are step ``j``'s stage times."""
        for ts in times:
            x, carry = self._step(ts, h, x, carry)
        return x, carry

    @abstractmethod
    def _step(self, ts: Sequence[Tensor], h: float, x: Tensor, carry: Any) -> tuple[Tensor, Any]:
        """One step of size ``h`` from ``x``; ``ts[m]`` is the time at ``stage_fractions[m]``."""


class Euler(FixedStepSolver):
    """Forward Euler, :math:`x_{n+1} = x_n + h f(t_n, x_n)`: order 1, fixed step.

    Mostly useful as a baseline and in tests. See :class:`Solver` for the arguments.
    """

    order = 1
    stage_fractions = (0.0,)

    def _step(self, ts: Sequence[Tensor], h: float, x: Tensor, carry: Any) -> tuple[Tensor, Any]:
        return torch.add(x, _evaluate(self.f, ts[0], x), alpha=h), None


class RK4(FixedStepSolver):
    """The classical fourth-order Runge–Kutta method: order 4, fixed step, 4 evaluations.

    See the module docstring for the formulas and :class:`Solver` for the arguments.
    """

    order = 4
    stage_fractions = (0.0, 0.5, 1.0)

    def _step(self, ts: Sequence[Tensor], h: float, x: Tensor, carry: Any) -> tuple[Tensor, Any]:
        f = self.f
        k1 = _evaluate(f, ts[0], x)
        k2 = _evaluate(f, ts[1], torch.add(x, k1, alpha=0.5 * h))
        k3 = _evaluate(f, ts[1], torch.add(x, k2, alpha=0.5 * h))
        k4 = _evaluate(f, ts[2], torch.add(x, k3, alpha=h))
        incr = torch.add(k1 + k4, k2 + k3, alpha=2.0)
        return torch.add(x, incr, alpha=h / 6.0), None


class Leapfrog(FixedStepSolver):
    r"""Störmer–Verlet (leapfrog), kick–drift–kick: order 2, symplectic, fixed step.

    **Only valid for separable Hamiltonians** :math:`H(q, p) = T(p) + V(q)`, i.e. when the
    ``p``-part of ``f(t, x)`` (the force) depends only on ``q`` and the ``q``-part (the
    velocity) only on ``p``; for anything else the result is silently wrong, so use
    ``implicit-midpoint`` instead. The state is ``(..., 2n)``, ``q`` then ``p``. One step::

        p_half = p + h/2 * f(t, (q, p))[p-part]                 # kick
        q_new  = q + h * f(t + h/2, (q, p_half))[q-part]        # drift
        p_new  = p_half + h/2 * f(t + h, (q_new, p_half))[p-part]  # kick

    The final force is reused as the first kick of the next step, so a step costs two
    evaluations of ``f``, and between output times the two half-kicks that meet are merged
    into one. Energy errors stay bounded over very long times (no drift). See
    :class:`Solver` for the arguments.

    Raises:
        HnnkitValueError: (from :meth:`integrate`) if the last dimension of ``x0`` is odd.
    """

    order = 2
    symplectic = True
    stage_fractions = (0.5, 1.0)

    def _check_state(self, x0: Tensor) -> None:
        if x0.shape[-1] % 2:
            raise HnnkitValueError(
                "x0 must be a phase-space state (..., 2n), q then p, for leapfrog; got shape "
                f"{tuple(x0.shape)} with an odd last dimension"
            )

    def _init_carry(self, t0: Tensor, x0: Tensor) -> Any:
        d = x0.shape[-1]
        mask_p = torch.zeros(d, dtype=x0.dtype, device=x0.device)
        mask_p[d // 2 :] = 1.0
        mask_q = 1.0 - mask_p
        return _evaluate(self.f, t0, x0), mask_q, mask_p

    def _step(self, ts: Sequence[Tensor], h: float, x: Tensor, carry: Any) -> tuple[Tensor, Any]:
        return self._advance([ts], h, x, carry)

    def _advance(
        self, times: Sequence[Sequence[Tensor]], h: float, x: Tensor, carry: Any
    ) -> tuple[Tensor, Any]:
        # The closing half-kick of a step and the opening half-kick of the next are merged
        # into one full kick; the state is synchronised (p at integer steps) at the end.
        f = self.f
        force, mask_q, mask_p = carry
        x = torch.addcmul(x, force, mask_p, value=0.5 * h)  # kick: p += h/2 * pdot(q)
        last = len(times) - 1
        for j, ts in enumerate(times):
            x = torch.addcmul(x, _evaluate(f, ts[0], x), mask_q, value=h)  # drift
            force = _evaluate(f, ts[1], x)  # pdot depends on q only: new q, any p
            x = torch.addcmul(x, force, mask_p, value=h if j < last else 0.5 * h)  # kick(s)
        return x, (force, mask_q, mask_p)


class ImplicitMidpoint(FixedStepSolver):
    r"""Implicit midpoint rule: order 2, symplectic for every Hamiltonian, fixed step.

    Solves :math:`k = f(t_n + h/2, x_n + \tfrac h2 k)` by fixed-point iteration, then
    :math:`x_{n+1} = x_n + h k`. The iteration starts from the previous step's ``k`` and
    stops when, for every trajectory, :math:`h\,\|\Delta k\|_\infty \le \mathrm{tol}\cdot
    (\|x_n\|_\infty + h\|k\|_\infty)`, with ``tol = 8 eps`` of the dtype (about ``1.8e-15``
    in float64, ``9.5e-7`` in float32), or when it has stagnated at the rounding level. The
    iteration contracts only if ``h * Lipschitz(f) / 2 < 1``. Autograd runs through the
    iterations. Each iteration reads one number from the device. See :class:`Solver` for
    the arguments.

    Raises:
        RuntimeError: (from :meth:`integrate`) if the iteration does not converge in
            :attr:`max_iterations` iterations (the step is too large).
        NonFiniteStateError: (also a ``RuntimeError``) if the iteration or the state turns
            NaN or infinite.
    """

    order = 2
    symplectic = True
    stage_fractions = (0.0, 0.5)
    max_iterations: ClassVar[int] = 50

    def _init_carry(self, t0: Tensor, x0: Tensor) -> Any:
        return None

    def _step(self, ts: Sequence[Tensor], h: float, x: Tensor, carry: Any) -> tuple[Tensor, Any]:
        f = self.f
        k = _evaluate(f, ts[0], x) if carry is None else carry
        tol = 8.0 * torch.finfo(x.dtype).eps
        tiny = torch.finfo(x.dtype).tiny
        with torch.no_grad():
            xscale = x.abs().amax(dim=-1)  # per trajectory
        prev = r = math.inf
        for _ in range(self.max_iterations):
            k_new = _evaluate(f, ts[1], torch.add(x, k, alpha=0.5 * h))
            with torch.no_grad():  # relative size of the update h * (k_new - k), per trajectory
                change = (k_new - k).abs().amax(dim=-1)
                scale = torch.add(xscale, k_new.abs().amax(dim=-1), alpha=h).add_(tiny)
                r = float((change / scale).max()) * h  # the one device read per iteration
            k = k_new
            if r <= tol or (prev <= r <= 1e3 * tol):  # converged, or stagnating at rounding
                return torch.add(x, k, alpha=h), k
            if not math.isfinite(r):
                with torch.no_grad():
                    bad = ~torch.isfinite(k_new.detach()).all(-1).reshape(-1).cpu()
                raise _non_finite_error(
                    "implicit-midpoint",
                    float(ts[0].flatten()[0]),
                    int(bad.nonzero()[0]) if bool(bad.any()) else 0,
                    x.shape[:-1],
                    "the implicit-step iteration (the implicit equation may have no solution "
                    "at this step)",
                    max(1, int(bad.sum())),
                )
            prev = r
        t_now = float(ts[0].flatten()[0])
        raise RuntimeError(
            f"implicit-midpoint: the fixed-point iteration did not converge at t={t_now} with "
            f"step h={h:g} (relative change {r:.3g} after {self.max_iterations} iterations). "
            "The step is probably too large for the iteration to contract "
            "(it needs h * Lipschitz(f) / 2 < 1): raise substeps or lower step_size."
        )


def _poly_mul(a: Sequence[Fraction], b: Sequence[Fraction]) -> list[Fraction]:
    out = [Fraction(0)] * (len(a) + len(b) - 1)
    for i, ai in enumerate(a):
        for j, bj in enumerate(b):
            out[i + j] += ai * bj
    return out


def _poly_add(*polys: Sequence[Fraction]) -> list[Fraction]:
    out = [Fraction(0)] * max(len(p) for p in polys)
    for p in polys:
        for i, c in enumerate(p):
            out[i] += c
    return out


def _dopri5_dense_table() -> tuple[tuple[float, ...], ...]:
    r"""Coefficients of the Dormand–Prince continuous extension, expanded in powers of θ.

    :math:`b_j(\theta) = \theta^2(3 - 2\theta)\,b_j + \theta^2(\theta - 1)^2\,e_j(\theta)`,
    plus :math:`\theta(\theta-1)^2` for :math:`j = 1` and :math:`\theta^2(\theta-1)` for
    :math:`j = 7` (the cubic Hermite interpolant of :math:`y_0, f_0, y_1, f_1`), with the
    linear corrections :math:`e_j` of [HNW93]_ Sec. II.6 (from [Sh86]_), which make it order 4.
    Returns ``table[p - 1][j]``, the coefficient of :math:`\theta^p` in :math:`b_{j+1}`,
    ``p = 1..5``.
    """
    fr = Fraction
    b5 = (fr(35, 384), fr(0), fr(500, 1113), fr(125, 192), fr(-2187, 6784), fr(11, 84), fr(0))
    # e_j(θ) = num_j * (a_j + s_j θ) / den_j
    corr = (
        (-5, 2558722523, -31403016, 11282082432),
        (0, 0, 0, 1),
        (100, 882725551, -15701508, 32700410799),
        (-25, 443332067, -31403016, 1880347072),
        (32805, 23143187, -3489224, 199316789632),
        (-55, 29972135, -7076736, 822651844),
        (10, 7414447, -829305, 29380423),
    )
    hermite = [fr(0), fr(0), fr(3), fr(-2)]  # θ²(3 − 2θ)
    bump = [fr(0), fr(0), fr(1), fr(-2), fr(1)]  # θ²(θ − 1)²
    columns = []
    for j in range(7):
        num, a, s, den = corr[j]
        poly = _poly_add(
            [c * b5[j] for c in hermite], _poly_mul(bump, [fr(num * a, den), fr(num * s, den)])
        )
        if j == 0:
            poly = _poly_add(poly, [fr(0), fr(1), fr(-2), fr(1)])  # θ(θ − 1)²
        if j == 6:
            poly = _poly_add(poly, [fr(0), fr(0), fr(-1), fr(1)])  # θ²(θ − 1)
        columns.append(poly + [fr(0)] * (6 - len(poly)))
    return tuple(tuple(float(columns[j][p]) for j in range(7)) for p in range(1, 6))


class Dopri5(Solver):
    """Dormand–Prince 5(4), adaptive step with per-trajectory error control; order 5.

    Every trajectory of the batch carries its own step size and accepts or rejects its own
    steps (vectorised with masks); finished trajectories sit still with a zero step until
    the whole batch is done. Outputs inside a step come from the method's 4th-order
    continuous extension (dense output), so the steps follow the error control alone and
    only the last output time shortens a step. Uses first-same-as-last: 6 new evaluations of ``f`` per step attempt. Step-size control uses
    detached values; the states stay differentiable, so gradients flow through the solve
    (with respect to ``x0`` and to parameters inside ``f``). ``f`` receives ``t`` of shape
    ``x.shape[:-1] + (1,)``, each trajectory's own time. One small device-to-host read per
    step decides which trajectories reached an output time. See the module docstring for
    the tableau and the controller, and :class:`Solver` for the arguments (``step_size``,
    if given, is the first step of every trajectory; ``substeps`` is ignored).

    ``lose_failing=True`` (for evaluating learned fields that may blow up): a trajectory the
    solver cannot follow (its step size underflows, its state or ``f`` turns non-finite, ``f``
    refuses its state naming it, as :class:`~hnnkit.errors.SingularMatrixError` does, or it is
    unfinished after ``max_steps`` attempts, listed then in ``ran_out`` by flat index, as it
    may only be slow) is dropped from the batch and its outputs from then on are NaN, instead
    of an error; the others go on in the same solve. It needs a
    ``(B, d)`` batch with ``compact=True`` (``f`` must treat rows independently); otherwise the
    failures raise as usual.

    Raises:
        HnnkitValueError: (from :meth:`integrate`) for a float16 or bfloat16 ``x0``: the
            error control needs float32 or float64.
        SolverGaveUpError: (a ``RuntimeError``; from :meth:`integrate`) if ``max_steps`` step
            attempts do not reach the last output time, or if a trajectory's step size
            underflows (stiff or singular problem); ``.index`` and ``.time`` say which
            trajectory and where.
        NonFiniteStateError: (also a ``RuntimeError``) if the step size underflows because
            ``f`` or the trial state is NaN or infinite (the solution blows up).
    """

    order = 5
    adaptive = True

    def __init__(self, f: ODEFunc, *, lose_failing: bool = False, **options: Any) -> None:
        super().__init__(f, **options)
        self.lose_failing = bool(lose_failing)
        self.ran_out: list[int] = []  # by the last solve, with lose_failing
        self.attempts = 0  # step attempts of the last solve

    _C: ClassVar[tuple[float, ...]] = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
    _A: ClassVar[tuple[tuple[float, ...], ...]] = (
        (),
        (1 / 5,),
        (3 / 40, 9 / 40),
        (44 / 45, -56 / 15, 32 / 9),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
        (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
    )
    _B4: ClassVar[tuple[float, ...]] = (
        5179 / 57600,
        0.0,
        7571 / 16695,
        393 / 640,
        -92097 / 339200,
        187 / 2100,
        1 / 40,
    )
    # error weights b5 - b4 (b5 is the last row of _A followed by 0)
    _E: ClassVar[tuple[float, ...]] = tuple(
        b5 - b4 for b5, b4 in zip((*_A[6], 0.0), _B4, strict=True)
    )

    _DENSE: ClassVar[tuple[tuple[float, ...], ...]] = _dopri5_dense_table()
    """``_DENSE[p - 1][j]``: the coefficient of :math:`\\theta^p` in :math:`b_j(\\theta)`."""

    @staticmethod
    def _increment(
        x: Tensor, hcol: Tensor, coeffs: Sequence[float], ks: Sequence[Tensor]
    ) -> Tensor:
        """``x + h * sum_j coeffs[j] * ks[j]``, in one fused op per nonzero term."""
        terms = [(c, k) for c, k in zip(coeffs, ks, strict=False) if c != 0.0]
        c0, acc = terms[0]
        for c, k in terms[1:]:
            acc = torch.add(acc, k, alpha=c / c0)
        return torch.addcmul(x, hcol, acc, value=c0)

    def _norm(self, v: Tensor, scale: Tensor) -> Tensor:
        """Weighted RMS norm over the state dimension."""
        return torch.linalg.vector_norm(v / scale, dim=-1) * (v.shape[-1] ** -0.5)

    def _check_state(self, x0: Tensor) -> None:
        if torch.finfo(x0.dtype).bits < 32:
            raise HnnkitValueError(
                f"dopri5 needs float32 or float64 states; got {x0.dtype}, whose precision "
                "is too coarse for its error control (it would report a stiff problem). "
                "Cast with x0.float() or x0.double(), or use a fixed-step method."
            )

    def _initial_step(
        self, fw: Callable[[Tensor, Tensor], Tensor], t0: Tensor, x: Tensor, k1: Tensor
    ) -> Tensor:
        """Hairer–Nørsett–Wanner starting step, one per trajectory (no gradient)."""
        with torch.no_grad():
            scale = self.atol + self.rtol * x.abs()
            d0 = self._norm(x, scale)
            d1 = self._norm(k1, scale)
            small = (d0 < 1e-5) | (d1 < 1e-5)
            h0 = torch.where(small, torch.full_like(d0, 1e-6), 0.01 * d0 / d1.clamp_min(1e-300))
            f1 = fw(t0 + h0, x + h0[:, None] * k1)
            d2 = self._norm(f1 - k1, scale) / h0
            dm = torch.maximum(d1, d2)
            h1 = torch.where(
                dm <= 1e-15,
                torch.clamp_min(h0 * 1e-3, 1e-6),
                (0.01 / dm.clamp_min(1e-300)) ** (1.0 / self.order),
            )
            h = torch.minimum(100 * h0, h1)
            return torch.where(torch.isfinite(h) & (h > 0), h, torch.full_like(h, 1e-6))

    def _integrate(self, x0: Tensor, t: Tensor, t_host: list[float]) -> Tensor:
        bshape = x0.shape[:-1]
        d = x0.shape[-1]
        n_traj = math.prod(bshape)
        n_out = len(t_host)
        device, dtype = x0.device, x0.dtype
        f = self.f
        # below this a step no longer moves t: the step size has underflowed
        floor = 10 * torch.finfo(dtype).eps * max(abs(t_host[0]), abs(t_host[-1]))
        floor = max(floor, torch.finfo(dtype).tiny)
        # enorm^(-1/5) * 0.9 == (|v| * gain)^(-1/5): fold 0.9 and the RMS 1/sqrt(d) into one factor
        gain = d**-0.5 * 0.9 ** (-self.order)

        if x0.ndim == 2:

            def fw(tc: Tensor, xf: Tensor) -> Tensor:
                return _evaluate(f, tc[:, None], xf)

        else:

            def fw(tc: Tensor, xf: Tensor) -> Tensor:
                out = _evaluate(f, tc.reshape(*bshape, 1), xf.reshape(x0.shape))
                return out.reshape(n_traj, d)

        x = x0.reshape(n_traj, d)
        tcur = t[0].expand(n_traj).clone()
        k1 = fw(tcur, x)
        if self.step_size is not None:
            h = torch.full((n_traj,), self.step_size, dtype=dtype, device=device)
        else:
            h = self._initial_step(fw, tcur, x, k1)

        t_end = t[-1]
        idx = torch.ones(n_traj, dtype=torch.long, device=device)  # next output index
        idx_host = torch.ones(n_traj, dtype=torch.long)
        gid = torch.arange(n_traj)  # global trajectory id of each row of the working batch
        compact = self.compact and x0.ndim == 2
        vals: list[Tensor] = []
        positions: list[Tensor] = []
        remaining = (n_out - 1) * n_traj
        n_attempts = 0
        a_rows, c_nodes, e_w = self._A, self._C, self._E
        table = torch.tensor(self._DENSE, dtype=dtype, device=device)[:, [0, 2, 3, 4, 5, 6]]

        lose = self.lose_failing and compact
        lost = torch.zeros(n_traj, dtype=torch.bool)  # by global id, with ``lose``
        self.ran_out = []

        def drop(rows: Tensor) -> None:
            """Lose the working rows ``rows``: no more outputs, out of the batch."""
            nonlocal x, k1, h, tcur, idx, idx_host, gid, remaining
            dead = torch.zeros(gid.numel(), dtype=torch.bool)
            dead[rows] = True
            lost[gid[dead]] = True
            remaining -= int((n_out - idx_host[dead]).sum())
            kd = (~dead).to(device)
            x, k1, h, tcur, idx = x[kd], k1[kd], h[kd], tcur[kd], idx[kd]
            idx_host, gid = idx_host[~dead], gid[~dead]

        while remaining > 0:
            if n_attempts >= self.max_steps:
                if not lose:
                    self._fail_max_steps(tcur, h, idx, gid, t_host, bshape, n_traj)
                unfinished = (idx_host < n_out).nonzero().flatten()
                self.ran_out = sorted(int(g) for g in gid[unfinished])
                drop(unfinished)
                break
            n_attempts += 1
            with torch.no_grad():
                active = idx < n_out
                rem = t_end - tcur  # 0 for finished trajectories
                clamped = h >= rem  # only the last output time bounds a step
                heff = torch.where(clamped, rem, h)
                hcol = heff[:, None]

            ks = [k1]
            y = x
            try:
                for s in range(1, 7):
                    y = self._increment(x, hcol, a_rows[s], ks)
                    ks.append(fw(torch.add(tcur, heff, alpha=c_nodes[s]), y))
            except (RuntimeError, HnnkitValueError) as err:
                rows = [r for r in getattr(err, "rows", ()) if 0 <= r < x.shape[0]]
                if rows and lose:  # lose those trajectories, redo the step for the others
                    drop(torch.tensor(rows, dtype=torch.long))
                    continue
                if rows:  # f names the states it refused: their trajectory is lost there
                    j = int(gid[rows[0]])
                    raise StateRefusedError(
                        f"dopri5: f refused the state {_batch_index(j, bshape)} reached near "
                        f"t={float(tcur[rows[0]])} ({type(err).__name__}: {err})",
                        time=float(tcur[rows[0]]),
                        index=_unravel(j, bshape),
                    ) from err
                if x.shape[0] == n_traj:
                    raise
                raise HnnkitValueError(
                    f"f failed on {x.shape[0]} of the {n_traj} trajectories: dopri5 stops "
                    "passing trajectories that reached the last output time to f, so f must "
                    "treat rows independently. If f holds per-row constants, pass "
                    f"compact=False to odeint. ({type(err).__name__}: {err})"
                ) from err
            # y is the 5th-order solution, ks[6] = f(t + h, y) (first stage of the next step)

            with torch.no_grad():
                err = self._increment(torch.zeros_like(hcol), hcol, e_w, ks)
                scale = torch.maximum(x.abs(), y.abs()).mul_(self.rtol).add_(self.atol)
                size = torch.linalg.vector_norm(err.div_(scale), dim=-1)
                size = torch.nan_to_num_(size, nan=math.inf)  # NaN: reject and shrink
                accept = size <= d**0.5
                factor = size.mul_(gain).pow_(-1.0 / self.order).clamp_(0.2, 10.0)
                # a step cut short at the last output time does not shrink the proposal
                h_new = heff * factor
                h_new = torch.where(accept & clamped, torch.maximum(h_new, h), h_new)
                h_new = torch.where(active, h_new, h)
                underflow = active & (h_new < floor)
                moved = accept & active
                t_new = torch.where(clamped, t_end, tcur + heff)
                # the output times this step covers: t[idx] .. t[n_new - 1] (<= t_new)
                n_new = torch.where(moved, torch.searchsorted(t, t_new, right=True), idx)
                n_new = n_new.clamp_(max=n_out)
                status = torch.stack((n_new - idx, underflow.long())).cpu()  # one sync per step
                t0 = tcur
                tcur = torch.where(moved, t_new, tcur)

            if bool(status[1].any()) and not lose:
                r = int(status[1].nonzero()[0])
                j = int(gid[r])
                with torch.no_grad():
                    trial_ok = all(bool(torch.isfinite(v[r]).all()) for v in (y, *ks))
                if not trial_ok:
                    raise _non_finite_error(
                        "dopri5", float(t0[r]), j, bshape, "the trial state or f(t, x)"
                    )
                raise SolverGaveUpError(
                    f"dopri5: step size underflow for {_batch_index(j, bshape)} at "
                    f"t={float(t0[r])} (h={float(h_new[r]):.3g}); the problem is stiff or "
                    "singular there (the solution may blow up). Loosen rtol/atol, or check f there.",
                    time=float(t0[r]),
                    index=_unravel(j, bshape),
                )
            counts = status[0]
            n_hit = int(counts.sum())
            if n_hit:
                # dense output: every covered output time from the accepted step's stages
                rows = torch.repeat_interleave(torch.arange(counts.numel()), counts)
                first = torch.cumsum(counts, 0)[rows] - counts[rows]
                out_idx = idx_host[rows] + torch.arange(n_hit) - first
                rd = rows.to(device)
                vals.append(self._dense(x, y, ks, table, t0, heff, rd, t[out_idx.to(device)]))
                positions.append((out_idx - 1) * n_traj + gid[rows])
                idx_host += counts
                idx = idx + status[0].to(device)
                remaining -= n_hit

            acc_col = accept[:, None]
            x = torch.where(acc_col, y, x)
            k1 = torch.where(acc_col, ks[6], k1)
            h = h_new

            if n_hit and compact:
                keep = idx_host < n_out
                n_keep = int(keep.sum())
                # drop finished rows once they are a tenth of the batch: f then sees
                # only the trajectories still moving
                if 0 < n_keep <= 0.9 * keep.numel():
                    kd = keep.to(device)
                    x, k1, h, tcur, idx = x[kd], k1[kd], h[kd], tcur[kd], idx[kd]
                    idx_host, gid = idx_host[keep], gid[keep]
                    status = status[:, keep]
            if lose and bool(status[1].any()):  # step size underflow: lost there
                drop(status[1].nonzero().flatten())

        self.attempts = n_attempts  # step attempts this solve took
        if bool(lost.any()):  # the lost trajectories' missing outputs are NaN
            flat = x0.new_full(((n_out - 1) * n_traj, d), math.nan)
            if positions:
                flat = flat.index_put((torch.cat(positions).to(device),), torch.cat(vals))
            return torch.cat([x0[None], flat.reshape(n_out - 1, *x0.shape)], dim=0)
        pos = torch.cat(positions)
        order = torch.empty_like(pos)
        order[pos] = torch.arange(pos.numel())
        rest = torch.cat(vals)[order.to(device)].reshape(n_out - 1, *x0.shape)
        return torch.cat([x0[None], rest], dim=0)

    def _dense(
        self,
        x: Tensor,
        y: Tensor,
        ks: Sequence[Tensor],
        table: Tensor,
        t0: Tensor,
        heff: Tensor,
        rows: Tensor,
        t_out: Tensor,
    ) -> Tensor:
        """The continuous extension of one accepted step ``x -> y`` at ``t_out``, per row.

        ``x``, ``y``, ``ks[j]``: ``(n, d)``; ``t0``, ``heff``: ``(n,)``; ``rows``, ``t_out``:
        ``(m,)``, the row and the time of each output; ``table``: :attr:`_DENSE` without its
        zero column ``j = 1``, ``(5, 6)``. A time at (or, by rounding, past) the step's end
        returns ``y`` itself.
        """
        with torch.no_grad():
            h = heff[rows]
            theta = ((t_out - t0[rows]) / h).clamp_(0.0, 1.0)
            powers = theta[:, None].expand(-1, table.shape[0]).cumprod(-1)  # θ, θ², ..., θ⁵
            w = (powers @ table).mul_(h[:, None])  # (m, 6): h b_j(θ)
            at_end = (theta >= 1.0)[:, None]
        stages = torch.stack([ks[j] for j in (0, 2, 3, 4, 5, 6)], 1)[rows]  # (m, 6, d)
        val = torch.baddbmm(x[rows].unsqueeze(1), w.unsqueeze(1), stages).squeeze(1)
        return torch.where(at_end, y[rows], val)

    def _fail_max_steps(
        self,
        tcur: Tensor,
        h: Tensor,
        idx: Tensor,
        gid: Tensor,
        t_host: list[float],
        bshape: torch.Size,
        n_traj: int,
    ) -> None:
        unfinished = (idx < len(t_host)).nonzero().flatten().cpu()
        j = int(unfinished[torch.argmin(tcur.detach().cpu()[unfinished])])
        raise SolverGaveUpError(
            f"dopri5 exceeded max_steps={self.max_steps} step attempts before reaching "
            f"t={t_host[-1]}: {unfinished.numel()} of {n_traj} trajectories are unfinished "
            f"(the slowest, {_batch_index(int(gid[j]), bshape)}, is at t={float(tcur[j])} "
            f"with step h={float(h[j]):.3g}). The problem may be stiff or the solution may blow up. "
            f"Loosen rtol/atol (now rtol={self.rtol:g}, atol={self.atol:g}), raise max_steps, "
            "or use a fixed-step method.",
            time=float(tcur[j]),
            index=_unravel(int(gid[j]), bshape),
            others=tuple(_unravel(int(gid[u]), bshape) for u in unfinished if int(u) != j),
        )


SOLVERS: dict[str, type[Solver]] = {
    "euler": Euler,
    "rk4": RK4,
    "dopri5": Dopri5,
    "leapfrog": Leapfrog,
    "verlet": Leapfrog,
    "implicit-midpoint": ImplicitMidpoint,
}
"""Registry of integration methods, name -> solver class (``verlet`` is ``leapfrog``)."""


def flow_map(
    f: ODEFunc, h: float, *, method: str = "implicit-midpoint", substeps: int = 1
) -> Callable[[Tensor], Tensor]:
    """The one-step map ``x ↦ Φ_h(x)`` of ``method`` over a time ``h`` (``substeps`` steps).

    A negative ``h`` steps backwards in time (by integrating ``-f`` forwards). The map is
    differentiable like :func:`odeint`, so its Jacobian can be checked for symplecticity
    (:func:`hnnkit.metrics.symplecticity_error`) or time-reversibility.
    """
    if not _is_real_number(h) or h == 0 or not math.isfinite(h):
        raise HnnkitValueError(f"h must be a nonzero finite number, got {h!r}")
    check_choice("integration method", method, SOLVERS)
    field = f if h > 0 else (lambda t, x: -f(t, x))
    span = [0.0, abs(float(h))]
    return lambda x: odeint(field, x, span, method=method, substeps=substeps)[-1]


def step_slope(f: ODEFunc, x: Tensor, h: Tensor | float) -> Tensor:
    r"""``(Φ_h(x) − x) / h`` for one classical RK4 step of ``dx/dt = f(t, x)`` from ``x``.

    This is what a forward difference over ``h`` measures of ``f``'s flow: compare it with
    forward-difference targets instead of ``f(x)`` itself, whose mismatch with a forward
    difference is of order ``h`` (for an oscillation of frequency ω, a spurious contraction
    ``−ω²h/2·x``). Differentiable like ``f``; ``f`` is called with ``t = 0``.

    Args:
        f: the vector field.
        x: states ``(..., d)``.
        h: the step, a float or a tensor broadcastable to ``x.shape[:-1] + (1,)`` (one
            step per state).
    """
    t0 = torch.zeros((*x.shape[:-1], 1), dtype=x.dtype, device=x.device)
    k1 = f(t0, x)
    k2 = f(t0 + h / 2, x + (h / 2) * k1)
    k3 = f(t0 + h / 2, x + (h / 2) * k2)
    k4 = f(t0 + h, x + h * k3)
    return (k1 + 2 * k2 + 2 * k3 + k4) / 6


def odeint(
    f: ODEFunc,
    x0: Tensor,
    t: Tensor | Sequence[float],
    *,
    method: str = "dopri5",
    rtol: float = 1e-7,
    atol: float = 1e-9,
    step_size: float | None = None,
    substeps: int = 1,
    max_steps: int = 100_000,
    compact: bool = True,
) -> Tensor:
    """Integrate ``dx/dt = f(t, x)`` from ``x(t[0]) = x0``, batched over trajectories.

    Args:
        f: vector field ``f(t, x) -> dx/dt``. It is called with ``x`` of ``x0``'s shape and
            ``t`` a tensor of shape ``x.shape[:-1] + (1,)`` (each trajectory's current time,
            broadcastable against ``x``; autonomous systems ignore it). It must return a
            tensor of ``x``'s shape.
        x0: initial states, ``(d,)`` or ``(batch..., d)``, floating point, finite.
        t: output times, 1-D, strictly increasing, at least one; converted to ``x0``'s dtype
            and device. ``t[0]`` is the initial time. No gradient flows to ``t``.
        method: one of :data:`SOLVERS`: ``"dopri5"`` (default, adaptive), ``"rk4"``,
            ``"euler"``, ``"leapfrog"``/``"verlet"`` (separable Hamiltonians only),
            ``"implicit-midpoint"``.
        rtol: relative tolerance for ``dopri5`` (default ``1e-7``), > 0.
        atol: absolute tolerance for ``dopri5`` (default ``1e-9``), > 0.
        step_size: fixed-step methods: split each output interval into
            ``ceil(interval / step_size)`` equal steps; ``dopri5``: the first step. Default
            ``None``.
        substeps: fixed-step methods: equal steps per output interval when ``step_size`` is
            not given (default 1), integer >= 1.
        max_steps: the most steps (step attempts for ``dopri5``) one call may take
            (default ``100_000``).
        compact: ``dopri5`` with ``x0`` of shape ``(batch, d)``: stop passing trajectories
            that reached ``t[-1]`` to ``f`` (default ``True``; ``f`` then sees fewer rows
            as the solve goes on, so it must treat rows independently). ``False`` keeps
            every row in every call, for an ``f`` with per-row constants.

    Returns:
        Tensor of shape ``(len(t), *x0.shape)``, time first; ``out[0]`` equals ``x0``.
        Differentiable with respect to ``x0`` and to parameters used by ``f``.

    Raises:
        UnknownNameError: (a ``KeyError`` and ``ValueError``) for an unknown ``method``.
        HnnkitValueError: (a ``ValueError``) for an invalid ``x0``, ``t``, option, or if ``f``
            returns the wrong shape.
        NonFiniteStateError: (a ``HnnkitValueError`` and a ``RuntimeError``) with any
            method, if the state becomes NaN or infinite (the solution blows up, or the step
            is too large); the message, ``.time`` and ``.index`` give the first output time
            and trajectory affected.
        SolverGaveUpError: (a ``RuntimeError``) if ``dopri5`` exceeds ``max_steps`` or its
            step size underflows; ``.index`` and ``.time`` say which trajectory and where.
        RuntimeError: if the implicit-midpoint iteration does not converge.

    Example:
        >>> import torch
        >>> f = lambda t, x: torch.stack([2 * x[..., 1], -2 * x[..., 0]], dim=-1)
        >>> out = odeint(f, torch.tensor([1.0, 0.0], dtype=torch.float64), torch.linspace(0, 1, 5))
        >>> out.shape
        torch.Size([5, 2])
    """
    name = check_choice("integration method", method, SOLVERS)
    solver = SOLVERS[name](
        f,
        rtol=rtol,
        atol=atol,
        step_size=step_size,
        substeps=substeps,
        max_steps=max_steps,
        compact=compact,
    )
    return solver.integrate(x0, t)
