"""Structural checks of one-step maps: symplecticity, time-reversibility, phase-space volume."""

import math

import pytest
import torch

from hnnkit.errors import HnnkitValueError
from hnnkit.integrate import flow_map
from hnnkit.metrics import step_jacobian, symplecticity_error
from hnnkit.models import HNN, Baseline
from hnnkit.systems import DampedPendulum, Pendulum, Spring, ThreeBody


@pytest.fixture
def states(gen):
    return Pendulum().sample_initial(6, generator=gen)


def _models(gen):
    """An untrained HNN (a non-separable learned H) and an untrained baseline, float64."""
    hnn = HNN(2, hidden=(16, 16), generator=gen).double()
    base = Baseline(2, hidden=(16, 16), generator=gen).double()
    return hnn, base


def test_leapfrog_is_symplectic_and_rk4_has_the_analytic_defect(states):
    f = Pendulum().vector_field
    assert symplecticity_error(flow_map(f, 0.1, method="leapfrog"), states).max() < 1e-14
    # On the spring (omega = 2) one RK4 step is a 2x2 matrix with det = |R(i y)|^2, y = 2h,
    # R the RK4 stability polynomial; for 2x2 maps M^T J M = det(M) J, so the defect is
    # |det M - 1| = y^6/72 - y^8/576.
    spring = flow_map(Spring().vector_field, 0.1, method="rk4")
    y = 0.2
    expected = y**6 / 72 - y**8 / 576
    err = symplecticity_error(spring, states)
    assert torch.allclose(err, torch.full_like(err, expected), rtol=1e-9)
    # The nonlinear 12-dimensional three-body flow shows the same order: the defect falls 64x
    # per halving of h.
    x = ThreeBody().sample_initial(4, generator=torch.Generator().manual_seed(0))
    defects = [
        float(symplecticity_error(flow_map(ThreeBody().vector_field, h, method="rk4"), x).max())
        for h in (0.1, 0.05, 0.025)
    ]
    orders = [math.log2(a / b) for a, b in zip(defects, defects[1:], strict=False)]
    assert defects[-1] > 1e-12 and all(5.7 < p < 6.3 for p in orders), (defects, orders)


def test_implicit_midpoint_makes_an_hnn_exactly_symplectic_but_not_a_baseline(gen, states):
    hnn, base = _models(gen)
    assert symplecticity_error(flow_map(hnn.vector_field, 0.1), states).max() < 1e-12
    # the baseline's field is not a symplectic gradient: no integrator can fix that
    assert symplecticity_error(flow_map(base.vector_field, 0.1), states).min() > 1e-4


def test_symmetric_methods_retrace_their_steps_and_rk4_does_not(gen, states):
    hnn, _ = _models(gen)
    f = hnn.vector_field
    for method, bound in (("implicit-midpoint", 1e-12), ("leapfrog", None)):
        if bound is None:  # leapfrog needs a separable H: use the true pendulum
            f, bound = Pendulum().vector_field, 1e-14
        back = flow_map(f, -0.1, method=method)(flow_map(f, 0.1, method=method)(states))
        assert (back - states).abs().max() < bound, method
    f = Pendulum().vector_field
    back = flow_map(f, -0.1, method="rk4")(flow_map(f, 0.1, method="rk4")(states))
    assert (back - states).abs().max() > 1e-9


def test_phase_space_volume_contracts_at_the_friction_rate(gen):
    # Liouville with friction: det M = exp(div f * h) = exp(-n gamma h), n = 1 here
    x = Pendulum().sample_initial(4, generator=gen)
    gamma, h = 0.3, 0.5
    step = flow_map(DampedPendulum(gamma=gamma).vector_field, h, method="rk4", substeps=50)
    det = torch.linalg.det(step_jacobian(step, x))
    assert torch.allclose(det, torch.full_like(det, math.exp(-gamma * h)), rtol=1e-9)
    # and the frictionless three-body flow keeps volume (and is symplectic) in 12 dimensions
    y = ThreeBody().sample_initial(2, generator=gen)
    step = flow_map(ThreeBody().vector_field, 0.01, method="leapfrog")
    assert torch.allclose(torch.linalg.det(step_jacobian(step, y)), torch.ones(2, dtype=y.dtype))
    assert symplecticity_error(step, y).max() < 1e-13


def test_bad_arguments_are_explained(states):
    f = Pendulum().vector_field
    with pytest.raises(HnnkitValueError, match="h must be a nonzero finite number"):
        flow_map(f, 0.0)
    with pytest.raises(ValueError, match="valid integration methods are"):
        flow_map(f, 0.1, method="rk5")  # rejected at once, not at the first step
    with pytest.raises(HnnkitValueError, match=r"shape \(batch, d\)"):
        step_jacobian(flow_map(f, 0.1), states[0])
    with pytest.raises(HnnkitValueError, match="even size"):
        symplecticity_error(lambda x: x, torch.zeros(2, 3, dtype=torch.float64))


def test_rk4_energy_decays_at_the_analytic_rate_and_implicit_midpoint_keeps_it(gen):
    from hnnkit.evaluate import energy_error_by_integrator

    spring = Spring()
    x0 = spring.sample_initial(3, generator=gen)
    h, t_end = 0.2, 400.0
    t, err = energy_error_by_integrator(
        spring.vector_field, spring.energy, x0, t_end=t_end, step=h, n_points=11
    )
    # each RK4 step multiplies the spring's energy by |R(iy)|^2 = 1 - y^6/72 + y^8/576, y = 2h
    y = 2 * h
    steps = torch.round(t / h)
    expected = 1 - (1 - y**6 / 72 + y**8 / 576) ** steps
    assert torch.allclose(
        err["rk4"], expected[:, None].expand_as(err["rk4"]), rtol=1e-6, atol=1e-14
    )
    assert err["rk4"][-1].min() > 5e-2  # two thousand steps: a visible drift
    assert err["implicit-midpoint"].max() < 1e-11  # quadratic invariants are kept exactly


def test_a_nonlinear_energy_stays_bounded_under_implicit_midpoint_and_drifts_under_rk4(gen):
    from hnnkit.evaluate import energy_error_by_integrator

    pendulum = Pendulum()
    x0 = pendulum.sample_initial(4, generator=gen)
    _, err = energy_error_by_integrator(
        pendulum.vector_field, pendulum.energy, x0, t_end=300.0, step=0.25, n_points=41
    )
    im, rk = err["implicit-midpoint"], err["rk4"]
    quarter = len(im) // 4
    # implicit midpoint: an oscillation of fixed size, no trend ...
    assert im[-quarter:].max() < 1.5 * im[:quarter].max()
    # ... RK4: an error that keeps growing with time
    assert (rk[-1] > 3 * rk[quarter]).all()
