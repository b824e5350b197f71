"""Trustworthy data, systems and integrators: cache keys, file checks, input bounds, blow-ups."""

from __future__ import annotations

import math

import pytest
import torch

from hnnkit.errors import HnnkitValueError, NonFiniteStateError
from hnnkit.integrate import odeint

# -- integrators: a blow-up is reported, never returned as NaN/inf ------------------------


def _square(t, x):
    return x**2  # x(t) = 1 / (1/x0 - t): blows up at t = 1 from x0 = 1, at t = 10 from 0.1


def _square_separable(t, x):
    q, p = x[..., :1], x[..., 1:]
    return torch.cat([p, q**2], dim=-1)  # q'' = q**2: (0, 0) stays at rest, (1, 1) blows up


@pytest.mark.parametrize("method", ["euler", "rk4", "implicit-midpoint"])
def test_fixed_step_blow_up_names_time_and_trajectory(method):
    x0 = torch.tensor([[0.1], [1.0], [0.1]], dtype=torch.float64)  # only trajectory 1 blows up
    t = torch.linspace(0.0, 3.0, 31, dtype=torch.float64)
    with pytest.raises(NonFiniteStateError, match=r"trajectory \(1,\)") as info:
        odeint(_square, x0, t, method=method)
    err = info.value
    assert err.index == (1,)
    assert isinstance(err, HnnkitValueError) and isinstance(err, RuntimeError)
    assert 0.5 <= err.time <= 3.0 and f"t={err.time:g}" in str(err)
    assert "smaller step" in str(err)
    # the trajectories that stay bounded are fine on their own
    ok = odeint(_square, x0[[0, 2]], t, method=method)
    assert abs(float(ok[-1, 0, 0]) - 1 / (1 / 0.1 - 3.0)) < 1e-2


def test_leapfrog_blow_up_names_time_and_trajectory():
    x0 = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    t = torch.linspace(0.0, 5.0, 51, dtype=torch.float64)
    with pytest.raises(NonFiniteStateError, match=r"trajectory \(1,\)") as info:
        odeint(_square_separable, x0, t, method="leapfrog")
    assert info.value.index == (1,) and 1.0 <= info.value.time <= 5.0


def test_first_non_finite_output_time_is_exact():
    # x' = x, x0 = 1, and f is NaN once x > 2: forward Euler with h = 0.1 has x_n = 1.1**n,
    # which first exceeds 2 at n = 8 (t = 0.8), so the state is NaN from t = 0.9 on.
    def f(t, x):
        return torch.where(x > 2, torch.nan, x)

    x0 = torch.tensor([[0.01], [1.0], [0.01]], dtype=torch.float64)
    t = torch.linspace(0.0, 3.0, 31, dtype=torch.float64)
    with pytest.raises(NonFiniteStateError) as info:
        odeint(f, x0, t, method="euler")
    assert info.value.index == (1,) and math.isclose(info.value.time, 0.9, abs_tol=1e-12)
    # dopri5 stops where the exact solution e^t reaches 2: t = ln 2
    with pytest.raises(NonFiniteStateError) as info:
        odeint(f, x0, t, method="dopri5")
    assert info.value.index == (1,) and abs(info.value.time - math.log(2)) < 1e-6


def test_single_state_blow_up_has_an_empty_index():
    with pytest.raises(NonFiniteStateError, match="the trajectory") as info:
        odeint(
            _square,
            torch.ones(1, dtype=torch.float64),
            [0.0, 1.5, 3.0],
            method="rk4",
            step_size=0.1,
        )
    assert info.value.index == () and info.value.time == 1.5


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_dopri5_rejects_half_precision(dtype):
    with pytest.raises(HnnkitValueError, match="float32 or float64"):
        odeint(lambda t, x: -x, torch.ones(2, 1, dtype=dtype), [0.0, 1.0], method="dopri5")
