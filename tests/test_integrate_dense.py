"""Dense output of dopri5: the Dormand–Prince continuous extension, its order and its cost."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from hnnkit.integrate import Dopri5, odeint

F64 = torch.float64


def growth(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """x' = x cos t, x(0) = 1: x(t) = exp(sin t) (non-autonomous, not polynomial)."""
    return x * torch.cos(t)


def pendulum(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    q, p = x[..., :1], x[..., 1:]
    return torch.cat([2 * p, -3 * torch.sin(q)], dim=-1)


class Counted:
    def __init__(self, f):
        self.f, self.calls = f, 0

    def __call__(self, t, x):
        self.calls += 1
        return self.f(t, x)


def _one_step(h: float, theta: float) -> float:
    """Error at ``t = theta * h`` of one dopri5 step of size ``h`` from 0 on ``growth``."""
    f = Counted(growth)
    # tolerances so loose that the first step (step_size=h) is accepted
    out = odeint(f, torch.ones(1, dtype=F64), [0.0, theta * h, h], step_size=h, rtol=1, atol=1)
    assert f.calls == 7, f"expected one step (1 + 6 evaluations), got {f.calls}"
    return abs(out[1, 0].item() - math.exp(math.sin(theta * h)))


@pytest.mark.parametrize("theta", [0.5, 0.3])
def test_interpolant_error_is_order_h5_inside_a_step(theta: float) -> None:
    hs = [0.4, 0.2, 0.1, 0.05]
    errors = [_one_step(h, theta) for h in hs]
    ratios = [a / b for a, b in zip(errors, errors[1:], strict=False)]
    # a local error O(h^5) of an order-4 interpolant: halving h divides it by 2^5 = 32
    assert all(22 < r < 45 for r in ratios[1:]), (errors, ratios)
    slope = np.polyfit(np.log(hs), np.log(errors), 1)[0]
    assert 4.6 < slope < 5.4, (slope, errors)


def test_dense_coefficients_satisfy_the_order_conditions() -> None:
    c = torch.tensor(Dopri5._C, dtype=F64)
    a = torch.zeros(7, 7, dtype=F64)
    for i, row in enumerate(Dopri5._A):
        a[i, : len(row)] = torch.tensor(row, dtype=F64)
    table = torch.tensor(Dopri5._DENSE, dtype=F64)  # (5, 7): theta^1..theta^5
    for th in (0.0, 0.25, 0.5, 0.9, 1.0):
        b = torch.tensor([th**p for p in range(1, 6)], dtype=F64) @ table
        conditions = {
            "b.1 = θ": (b.sum(), th),
            "b.c = θ²/2": (b @ c, th**2 / 2),
            "b.c² = θ³/3": (b @ c**2, th**3 / 3),
            "b.Ac = θ³/6": (b @ (a @ c), th**3 / 6),
            "b.c³ = θ⁴/4": (b @ c**3, th**4 / 4),
            "b.(c*Ac) = θ⁴/8": (b @ (c * (a @ c)), th**4 / 8),
            "b.Ac² = θ⁴/12": (b @ (a @ c**2), th**4 / 12),
            "b.AAc = θ⁴/24": (b @ (a @ (a @ c)), th**4 / 24),
        }
        for name, (got, want) in conditions.items():
            assert abs(float(got) - want) < 1e-13, (th, name, float(got), want)
    # at θ = 1 the extension is the step's 5th-order solution
    b1 = table.sum(0)
    assert torch.allclose(b1, torch.tensor((*Dopri5._A[6], 0.0), dtype=F64), atol=1e-15)


@pytest.mark.parametrize("dtype", [F64, torch.float32])
def test_outputs_agree_with_a_tight_scipy_reference(dtype: torch.dtype) -> None:
    x0 = np.array([[1.2, -0.4], [0.1, 0.9], [2.5, 0.0]])
    t = np.linspace(0.0, 6.0, 97)  # many outputs per step

    def f_np(s, y):
        q, p = y[0::2], y[1::2]
        return np.stack([2 * p, -3 * np.sin(q)], axis=-1).reshape(-1)

    sol = solve_ivp(
        f_np, (0.0, 6.0), x0.reshape(-1), method="DOP853", t_eval=t, rtol=1e-12, atol=1e-12
    )
    ref = sol.y.T.reshape(len(t), 3, 2)
    rtol = 1e-9 if dtype == F64 else 1e-5
    out = odeint(pendulum, torch.tensor(x0, dtype=dtype), torch.tensor(t), rtol=rtol, atol=rtol)
    assert out.dtype == dtype
    err = np.abs(out.double().numpy() - ref).max()
    assert err < 100 * rtol, err
    if dtype == F64:
        loose = odeint(pendulum, torch.tensor(x0), torch.tensor(t), rtol=1e-6, atol=1e-6)
        assert np.abs(loose.numpy() - ref).max() > 3 * err  # the check can see a looser solve


def test_output_times_do_not_shorten_the_steps() -> None:
    x0 = torch.tensor([[1.2, -0.4], [0.3, 0.2]], dtype=F64)
    counts = []
    for n_out in (2, 11, 201):
        f = Counted(pendulum)
        out = odeint(f, x0, torch.linspace(0.0, 5.0, n_out, dtype=F64), rtol=1e-8, atol=1e-8)
        counts.append(f.calls)
        end = out[-1]
    assert counts[0] == counts[1] == counts[2], counts
    # and the last output is the same solve's end point
    short = odeint(pendulum, x0, [0.0, 5.0], rtol=1e-8, atol=1e-8)[-1]
    assert torch.equal(short, end)


def test_gradcheck_through_interpolated_outputs() -> None:
    x0 = torch.tensor([[0.4, -0.3], [1.0, 0.2]], dtype=F64, requires_grad=True)
    t = torch.tensor([0.0, 0.05, 0.1, 0.45, 0.7], dtype=F64)
    f = Counted(pendulum)

    def solve(x):  # one step over [0, 0.7]: every inner output is interpolated
        return odeint(f, x, t, step_size=0.7, rtol=1.0, atol=1.0)

    solve(x0.detach())
    assert f.calls == 7
    assert torch.autograd.gradcheck(solve, (x0,))


def test_compaction_with_dense_output_keeps_every_answer() -> None:
    # x' = |x| J x: each row turns at the frequency given by its own (conserved) radius, so
    # rows of radius 0.5, 3 and 20 finish at very different steps, each with many outputs
    w = torch.tensor([0.5, 3.0, 20.0], dtype=F64)
    rows = []

    def g(s, x):
        rows.append(x.shape[0])
        return x.norm(dim=-1, keepdim=True) * torch.cat([x[..., 1:], -x[..., :1]], -1)

    x0 = torch.stack([w, torch.zeros_like(w)], -1)
    t = torch.linspace(0.0, 1.0, 41, dtype=F64)
    out = odeint(g, x0, t, rtol=1e-10, atol=1e-10)
    assert min(rows) < 3  # finished rows left the batch
    exact = torch.stack([w * torch.cos(w * t[:, None]), -w * torch.sin(w * t[:, None])], -1)
    assert (out - exact).abs().max() < 1e-6
    full = odeint(g, x0, t, rtol=1e-10, atol=1e-10, compact=False)
    assert (out - full).abs().max() < 1e-12
