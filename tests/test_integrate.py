"""Numerical tests of hnnkit.integrate.odeint against known answers."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from hnnkit.errors import HnnkitValueError, UnknownNameError
from hnnkit.integrate import SOLVERS, Dopri5, Leapfrog, odeint

F64 = torch.float64
FIXED = ["euler", "rk4", "leapfrog", "implicit-midpoint"]
ALL = [*FIXED, "dopri5"]

# H = q^2 + p^2  ->  (dq/dt, dp/dt) = (2p, -2q);  (q, p) @ SPRING_MATRIX == (2p, -2q)
SPRING_MATRIX = {
    dtype: torch.tensor([[0.0, -2.0], [2.0, 0.0]], dtype=dtype)
    for dtype in (torch.float64, torch.float32)
}


def spring(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return x @ SPRING_MATRIX[x.dtype]


def pendulum(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """H = 3(1 - cos q) + p^2  ->  (2p, -3 sin q)."""
    q, p = x[..., :1], x[..., 1:]
    return torch.cat([2 * p, -3 * torch.sin(q)], dim=-1)


def spring_exact(t: torch.Tensor, q0: float = 1.0, p0: float = 0.0) -> torch.Tensor:
    c, s = torch.cos(2 * t), torch.sin(2 * t)
    return torch.stack([q0 * c + p0 * s, p0 * c - q0 * s], dim=-1)


def energy(x: torch.Tensor) -> torch.Tensor:
    return x.square().sum(-1)


# ---------------------------------------------------------------------------- accuracy

# h = 0.01 (substeps=20 on a 0.2 grid) over 400 steps, dopri5 at rtol=1e-9; tolerances
# are about 3x the float64 errors (euler 0.083, rk4 1.1e-8, leapfrog 1.3e-4,
# implicit-midpoint 2.6e-4, dopri5 1.1e-9)
EXACT_TOL = {
    "euler": 0.15,
    "rk4": 3e-8,
    "leapfrog": 4e-4,
    "implicit-midpoint": 8e-4,
    "dopri5": 4e-9,
}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("method", ALL)
def test_exact_harmonic_oscillator(method: str, dtype: torch.dtype) -> None:
    t = torch.linspace(0.0, 4.0, 21, dtype=dtype)
    x0 = torch.tensor([1.0, 0.0], dtype=dtype)
    out = odeint(spring, x0, t, method=method, substeps=20, rtol=1e-9, atol=1e-10)
    assert out.dtype == dtype and out.shape == (21, 2)
    assert torch.equal(out[0], x0)
    exact = spring_exact(t.double())
    err = (out.double() - exact).abs().max().item()
    tol = EXACT_TOL[method] if dtype == F64 else max(EXACT_TOL[method], 5e-6)
    assert err < tol, f"{method} {dtype}: max error {err:.3g} >= {tol:.3g}"
    if method == "euler":  # and not trivially: euler's error is really of order h
        assert err > 1e-2


@functools.cache
def _pendulum_reference() -> torch.Tensor:
    x0 = torch.tensor([1.0, 0.5], dtype=F64)
    return odeint(pendulum, x0, [0.0, 2.0], method="dopri5", rtol=1e-13, atol=1e-13)[-1]


@pytest.mark.parametrize(
    ("method", "substeps", "expected"),
    [
        ("euler", [100, 200, 400, 800], 1),
        ("rk4", [8, 16, 32, 64], 4),
        ("leapfrog", [10, 20, 40, 80], 2),
        ("implicit-midpoint", [10, 20, 40, 80], 2),
    ],
)
def test_empirical_convergence_order(method: str, substeps: list[int], expected: int) -> None:
    x0 = torch.tensor([1.0, 0.5], dtype=F64)
    ref = _pendulum_reference()
    errors = [
        (odeint(pendulum, x0, [0.0, 2.0], method=method, substeps=n)[-1] - ref).norm().item()
        for n in substeps
    ]
    steps = [2.0 / n for n in substeps]
    slope = np.polyfit(np.log(steps), np.log(errors), 1)[0]
    assert abs(slope - expected) < 0.3, f"{method}: order {slope:.3f}, errors {errors}"
    assert SOLVERS[method].order == expected


def test_dopri5_meets_tolerance() -> None:
    t = torch.linspace(0.0, 10.0, 41, dtype=F64)
    x0 = torch.tensor([[1.0, 0.0], [0.3, -0.8]], dtype=F64)
    exact = torch.stack([spring_exact(t, 1.0, 0.0), spring_exact(t, 0.3, -0.8)], dim=1)
    errors = []
    for rtol in (1e-4, 1e-6, 1e-8):
        out = odeint(spring, x0, t, rtol=rtol, atol=rtol * 1e-2)
        err = (out - exact).abs().max().item()
        assert err < 10 * rtol, f"rtol={rtol}: error {err:.3g}"
        errors.append(err)
    assert errors[0] > errors[1] > errors[2]
    assert errors[0] / errors[2] > 1e2


@pytest.mark.parametrize("system", ["spring", "pendulum"])
def test_dopri5_agrees_with_scipy_dop853(system: str) -> None:
    f = {"spring": spring, "pendulum": pendulum}[system]
    f_np = {
        "spring": lambda s, y: np.array([2 * y[1], -2 * y[0]]),
        "pendulum": lambda s, y: np.array([2 * y[1], -3 * np.sin(y[0])]),
    }[system]
    x0 = np.array([1.2, -0.4])
    t = np.linspace(0.0, 4.0, 17)
    sol = solve_ivp(
        f_np,
        (t[0], t[-1]),
        x0,
        method="DOP853",
        t_eval=t,
        rtol=1e-10,
        atol=1e-12,
    )
    assert sol.success
    out = odeint(f, torch.from_numpy(x0), torch.from_numpy(t), rtol=1e-12, atol=1e-12)
    diff = np.abs(out.numpy() - sol.y.T).max()
    assert diff < 1e-8, diff
    if system == "spring":
        assert (out - spring_exact(torch.from_numpy(t), 1.2, -0.4)).abs().max() < 1e-10


def test_dopri5_outputs_are_at_the_output_times() -> None:
    # x' = 3 t^2 has x = t^3; dopri5's steps and its dense output are exact quadratures for
    # cubics (order conditions up to 4), so any error would come from evaluating beside the
    # output times.
    t = torch.tensor([0.0, 0.013, 0.5, 0.77, 1.9, 3.0], dtype=F64)
    out = odeint(lambda s, x: 3 * s.square().expand_as(x), torch.zeros(1, dtype=F64), t)
    assert (out[:, 0] - t**3).abs().max() < 1e-13


# -------------------------------------------------------------------- batching, shapes


def _scaled_oscillator(w: torch.Tensor):
    def f(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return w * torch.cat([x[..., 1:], -x[..., :1]], dim=-1)

    return f


def test_dopri5_step_sizes_are_per_trajectory() -> None:
    w = torch.tensor([[1.0], [12.0]], dtype=F64)  # a slow and a fast oscillator
    x0 = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=F64)
    t = torch.linspace(0.0, 2.0, 5, dtype=F64)
    times = []
    rhs = _scaled_oscillator(w)

    def f(s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        times.append(s.clone())
        return rhs(s, x)

    # the field holds one frequency per row, so every row must stay in every call
    out = odeint(f, x0, t, rtol=1e-9, atol=1e-12, compact=False)
    exact = torch.stack([torch.cos(w * t), -torch.sin(w * t)], dim=-1).transpose(0, 1)
    assert (out - exact).abs().max() < 1e-7
    # each row got its own times: the slow row needed far fewer distinct stage times
    seen = torch.cat(times, dim=1)  # (2, n_evaluations)
    slow, fast = (len(torch.unique(row)) for row in seen)
    assert fast > 4 * slow, (slow, fast)
    # the batch solve equals the row-by-row solves, to rounding (a step size shared by
    # the batch would move the slow row's answer by about rtol = 1e-6)
    batch = odeint(rhs, x0, t, rtol=1e-6, atol=1e-6, compact=False)
    for i in range(2):
        row = odeint(_scaled_oscillator(w[i]), x0[i], t, rtol=1e-6, atol=1e-6)
        assert (batch[:, i] - row).abs().max() < 1e-14


def _amplitude_oscillator(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A harmonic oscillator whose frequency ``1 + 10 r²`` grows with its conserved radius."""
    w = 1.0 + 10.0 * x.pow(2).sum(-1, keepdim=True)
    return w * torch.stack([x[..., 1], -x[..., 0]], dim=-1)


def test_dopri5_drops_finished_trajectories_without_changing_the_answer() -> None:
    radius = torch.tensor([0.1, 0.3, 0.6, 1.0], dtype=F64)
    x0 = torch.stack([radius, torch.zeros_like(radius)], dim=-1).requires_grad_(True)
    t = torch.linspace(0.0, 1.0, 7, dtype=F64)
    rows: list[int] = []

    def f(s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        rows.append(x.shape[0])
        return _amplitude_oscillator(s, x)

    out = odeint(f, x0, t, rtol=1e-10, atol=1e-10)
    # the slow rows finish first and leave the batch; the fast one runs on alone
    assert rows[0] == 4 and min(rows) == 1, sorted(set(rows))
    w = (1.0 + 10.0 * radius**2)[None, :]
    exact = torch.stack(
        [radius * torch.cos(w * t[:, None]), -radius * torch.sin(w * t[:, None])], -1
    )
    assert (out - exact).abs().max() < 1e-6  # 1.75 periods of the fastest row at rtol 1e-10
    # the same numbers, and the same gradients, as the solve that keeps every row
    full = odeint(_amplitude_oscillator, x0, t, rtol=1e-10, atol=1e-10, compact=False)
    assert (out - full).abs().max() < 1e-13
    (g_compact,) = torch.autograd.grad(out[-1].pow(2).sum(), x0)
    (g_full,) = torch.autograd.grad(full[-1].pow(2).sum(), x0)
    assert (g_compact - g_full).abs().max() < 1e-10


def test_dopri5_compaction_with_per_row_constants_says_how_to_fix() -> None:
    w = torch.tensor([[1.0], [30.0]], dtype=F64)
    x0 = torch.tensor([[1.0, 0.0], [1.0, 0.0]], dtype=F64)
    with pytest.raises(ValueError, match="compact=False"):
        odeint(_scaled_oscillator(w), x0, torch.linspace(0.0, 1.0, 3, dtype=F64))


@pytest.mark.parametrize("method", ALL)
@pytest.mark.parametrize("shape", [(2,), (5, 2), (3, 4, 2)])
def test_output_shape_and_batch_consistency(method: str, shape: tuple[int, ...]) -> None:
    gen = torch.Generator().manual_seed(0)
    x0 = torch.randn(shape, generator=gen, dtype=F64)
    t = torch.linspace(0.0, 1.0, 4, dtype=F64)
    out = odeint(pendulum, x0, t, method=method, substeps=10, rtol=1e-9, atol=1e-9)
    assert out.shape == (4, *shape)
    assert torch.equal(out[0], x0)
    flat = odeint(pendulum, x0.reshape(-1, 2), t, method=method, substeps=10, rtol=1e-9, atol=1e-9)
    assert (out.reshape(4, -1, 2) - flat).abs().max() < 1e-13
    single = odeint(pendulum, x0, t[:1], method=method)
    assert single.shape == (1, *shape) and torch.equal(single[0], x0)


@pytest.mark.parametrize("method", ALL)
def test_time_argument_broadcasts(method: str) -> None:
    # q' = p, p' = cos(w t), a separable forced system with a per-row w; t must be each
    # row's own time, shaped (3, 1)
    w = torch.tensor([[1.0], [2.0], [3.0]], dtype=F64)
    shapes = set()

    def f(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        shapes.add(tuple(t.shape))
        return torch.cat([x[..., 1:], torch.cos(w * t)], dim=-1)

    x0 = torch.zeros(3, 2, dtype=F64)
    t = torch.linspace(0.5, 2.0, 4, dtype=F64)
    out = odeint(f, x0, t, method=method, substeps=200, rtol=1e-10, atol=1e-12, compact=False)
    s0 = t[0]
    p = (torch.sin(w * t) - torch.sin(w * s0)) / w
    q = (torch.cos(w * s0) - torch.cos(w * t)) / w**2 - (t - s0) * torch.sin(w * s0) / w
    exact = torch.stack([q, p], dim=-1).transpose(0, 1)
    tol = {"euler": 5e-3, "leapfrog": 1e-5, "implicit-midpoint": 1e-5}.get(method, 1e-9)
    assert (out - exact).abs().max() < tol
    assert shapes == {(3, 1)}


def test_step_size_splits_intervals() -> None:
    x0 = torch.tensor([0.3, 1.0], dtype=F64)
    t = torch.tensor([0.0, 0.25, 0.5, 0.6], dtype=F64)
    # ceil(0.25 / 0.1) = 3 and ceil(0.1 / 0.1) = 1 (not 2 from rounding)
    calls = []

    def f(s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return pendulum(s, x)

    a = odeint(f, x0, t, method="rk4", step_size=0.1)
    assert len(calls) == 4 * (3 + 3 + 1)
    b = odeint(pendulum, x0[None], t[:3], method="rk4", substeps=3)
    assert torch.equal(a[:3], b[:, 0])
    assert SOLVERS["rk4"](pendulum, step_size=0.1).steps_per_interval([0.0, 0.3, 0.7]) == [3, 4]


def test_leapfrog_costs_two_evaluations_per_step() -> None:
    calls = []

    def f(s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return spring(s, x)

    odeint(f, torch.tensor([1.0, 0.0], dtype=F64), [0.0, 1.0, 2.0], method="verlet", substeps=25)
    assert len(calls) == 1 + 2 * 50
    assert SOLVERS["verlet"] is SOLVERS["leapfrog"] is Leapfrog


# ------------------------------------------------------------------ geometric behaviour


def test_leapfrog_energy_bounded_rk4_drifts() -> None:
    x0 = torch.tensor([[1.0, 0.0], [0.3, 0.5]], dtype=F64)
    period = math.pi  # omega = 2
    steps_per_output = 1000  # 10 steps per period, an output every 100 periods
    t = torch.linspace(0.0, 1e4 * period, 101, dtype=F64)
    out = odeint(spring, x0, t, method="leapfrog", substeps=steps_per_output)
    rel = (energy(out) - energy(x0)) / energy(x0)  # (101, 2)
    # leapfrog conserves a modified energy: the error oscillates, O((h w)^2 / 4) ~ 0.1,
    # and does not grow over 10^5 steps
    assert rel.abs().max() < 0.12
    assert rel[-20:].abs().max() < 0.12
    assert rel[1:].abs().max() > 1e-3  # a real, not exactly-zero, oscillation

    # rk4 at the same step loses energy every step (|R(ih w)| < 1): over 100 periods,
    # sampled every 10, it decreases monotonically, by about 1 - 0.99922^1000 = 54 %
    t_rk = torch.linspace(0.0, 100 * period, 11, dtype=F64)
    e_rk = energy(odeint(spring, x0, t_rk, method="rk4", substeps=100))
    assert (e_rk[1:] < e_rk[:-1]).all()
    assert ((e_rk[-1] / e_rk[0] - 0.46).abs() < 0.05).all()


def test_implicit_midpoint_conserves_quadratic_energy() -> None:
    # the implicit midpoint rule conserves quadratic invariants exactly
    x0 = torch.tensor([[1.0, 0.0], [0.3, 0.5]], dtype=F64)
    t = torch.linspace(0, 20, 11, dtype=F64)
    out = odeint(spring, x0, t, method="implicit-midpoint", substeps=10)
    rel = (energy(out) - energy(x0)) / energy(x0)
    assert rel.abs().max() < 1e-12


# ----------------------------------------------------------------------------- autograd


@pytest.mark.parametrize("method", ["rk4", "dopri5", "leapfrog", "implicit-midpoint"])
def test_gradient_of_final_state_wrt_x0(method: str) -> None:
    T = 1.3
    x0 = torch.tensor([0.7, -0.2], dtype=F64, requires_grad=True)
    out = odeint(spring, x0, [0.0, T], method=method, substeps=200, rtol=1e-11, atol=1e-12)
    (grad,) = torch.autograd.grad(out[-1, 0], x0)
    # q(T) = q0 cos 2T + p0 sin 2T
    expected = torch.tensor([math.cos(2 * T), math.sin(2 * T)], dtype=F64)
    tol = 1e-8 if method in ("rk4", "dopri5") else 1e-4
    assert (grad - expected).abs().max() < tol, grad


def test_gradient_wrt_parameter_inside_f() -> None:
    w = torch.tensor(1.7, dtype=F64, requires_grad=True)
    T = 2.0
    f = _scaled_oscillator(w)
    out = odeint(f, torch.tensor([[1.0, 0.0]], dtype=F64), [0.0, 0.5, T], rtol=1e-11, atol=1e-12)
    (grad,) = torch.autograd.grad(out[-1, 0, 0], w)  # q(T) = cos(w T)
    assert abs(grad.item() - (-T * math.sin(w.item() * T))) < 1e-7


@pytest.mark.parametrize("method", ["rk4", "leapfrog", "implicit-midpoint"])
def test_gradcheck(method: str) -> None:
    x0 = torch.tensor([[0.4, -0.3], [1.0, 0.2]], dtype=F64, requires_grad=True)
    t = torch.tensor([0.0, 0.3, 0.7], dtype=F64)
    assert torch.autograd.gradcheck(
        lambda x: odeint(pendulum, x, t, method=method, substeps=3), (x0,)
    )


@pytest.mark.parametrize("method", ALL)
def test_float32_runs_in_float32(method: str) -> None:
    x0 = torch.tensor([[1.0, 0.0]], dtype=torch.float32)
    t = torch.linspace(0, 1, 3, dtype=F64)  # converted to x0's dtype
    out = odeint(pendulum, x0, t, method=method, substeps=20, rtol=1e-6, atol=1e-7)
    assert out.dtype == torch.float32
    ref = odeint(pendulum, x0.double(), t, rtol=1e-12, atol=1e-12)
    tol = {"euler": 0.1, "leapfrog": 2e-3, "implicit-midpoint": 2e-3}.get(method, 1e-5)
    assert (out.double() - ref).abs().max() < tol


# --------------------------------------------------------------------------- bad input


def test_rejects_non_increasing_t() -> None:
    x0 = torch.tensor([1.0, 0.0], dtype=F64)
    with pytest.raises(ValueError, match=r"t must be strictly increasing.*t\[2\]"):
        odeint(spring, x0, [0.0, 1.0, 1.0])
    with pytest.raises(HnnkitValueError, match="t must be strictly increasing"):
        odeint(spring, x0, [1.0, 0.0], method="rk4")
    with pytest.raises(ValueError, match="t must be a 1-D tensor"):
        odeint(spring, x0, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="t must be a 1-D tensor"):
        odeint(spring, x0, [])
    with pytest.raises(ValueError, match="t must be finite"):
        odeint(spring, x0, [0.0, math.nan])


def test_rejects_bad_x0() -> None:
    with pytest.raises(ValueError, match=r"x0 must be finite.*1 NaN/inf"):
        odeint(spring, torch.tensor([1.0, math.nan]), [0.0, 1.0])
    with pytest.raises(ValueError, match=r"x0 must be a floating-point tensor.*int64"):
        odeint(spring, torch.tensor([1, 0]), [0.0, 1.0])
    with pytest.raises(ValueError, match=r"x0 must be a floating-point torch\.Tensor.*list"):
        odeint(spring, [1.0, 0.0], [0.0, 1.0])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"x0 must be a phase-space state.*odd"):
        odeint(spring, torch.zeros(3, dtype=F64), [0.0, 1.0], method="leapfrog")


def test_rejects_unknown_method() -> None:
    x0 = torch.tensor([1.0, 0.0], dtype=F64)
    with pytest.raises(ValueError, match="unknown integration method 'rk5'"):
        odeint(spring, x0, [0.0, 1.0], method="rk5")
    with pytest.raises(KeyError) as info:
        odeint(spring, x0, [0.0, 1.0], method="RK4")
    assert isinstance(info.value, UnknownNameError)
    assert str(info.value).endswith(
        "valid integration methods are: dopri5, euler, implicit-midpoint, leapfrog, rk4, verlet"
    )


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"substeps": 0}, r"substeps must be an integer >= 1; got 0"),
        ({"substeps": 2.5}, r"substeps must be an integer >= 1; got 2.5"),
        ({"rtol": -1e-6}, r"rtol must be a finite number > 0; got -1e-06"),
        ({"atol": 0.0}, r"atol must be a finite number > 0; got 0.0"),
        ({"step_size": -0.1}, r"step_size must be a finite number > 0; got -0.1"),
        ({"max_steps": 0}, r"max_steps must be an integer >= 1"),
        ({"method": "rk4", "step_size": 0.1, "substeps": 4}, "either step_size or substeps"),
        ({"method": "rk4", "step_size": 1e-7}, "more than max_steps=100000"),
    ],
)
def test_rejects_bad_options(kwargs: dict, pattern: str) -> None:
    with pytest.raises(HnnkitValueError, match=pattern):
        odeint(spring, torch.tensor([1.0, 0.0], dtype=F64), [0.0, 1.0], **kwargs)


def test_rejects_wrong_shape_from_f() -> None:
    with pytest.raises(ValueError, match=r"must return dx/dt with the shape of x, \(4, 2\)"):
        odeint(lambda t, x: x[..., :1], torch.zeros(4, 2, dtype=F64), [0.0, 1.0])


def test_dopri5_max_steps_and_blow_up() -> None:
    x0 = torch.tensor([[1.0, 0.0], [2.0, 0.0]], dtype=F64)
    with pytest.raises(RuntimeError, match=r"dopri5 exceeded max_steps=5 .*Loosen rtol"):
        odeint(spring, x0, [0.0, 10.0], max_steps=5)
    # x' = x^2 from 1 blows up at t = 1
    with pytest.raises(RuntimeError, match="dopri5"):
        odeint(lambda t, x: x.square(), torch.ones(1, dtype=F64), [0.0, 2.0])
    assert issubclass(Dopri5, SOLVERS["dopri5"])


def test_implicit_midpoint_step_too_large() -> None:
    with pytest.raises(RuntimeError, match="did not converge"):
        odeint(
            lambda t, x: -1000.0 * x,
            torch.ones(2, dtype=F64),
            [0.0, 1.0],
            method="implicit-midpoint",
        )
