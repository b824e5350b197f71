"""The maps between (q, p) and (q, dq/dt) of every system that has them: HamiltonianSystem's
velocity, momentum and lagrangian, against the closed forms of each system's L = T - V."""

from __future__ import annotations

import pytest
import torch

from hnnkit.errors import HnnkitValueError
from hnnkit.phase_space import join, solve_symmetric, split
from hnnkit.systems import Custom, get_system
from hnnkit.systems.base import velocity_map_systems

MAPPED = velocity_map_systems()


def _states(system, n=16, seed=0):
    return system.sample_initial(n, generator=torch.Generator().manual_seed(seed))


def test_the_paper_systems_have_velocity_maps():
    assert {"spring", "pendulum", "two-body", "three-body"} <= set(MAPPED)
    assert "damped-spring" not in MAPPED and "damped-pendulum" not in MAPPED


@pytest.mark.parametrize("name", MAPPED)
def test_momentum_inverts_velocity(name):
    system = get_system(name)
    x = _states(system)
    q, p = split(x)
    v = system.velocity(x)
    torch.testing.assert_close(system.momentum(q, v), p, rtol=1e-12, atol=1e-12)
    # and back: the velocity of the momentum of a random velocity is that velocity
    w = torch.randn(v.shape, generator=torch.Generator().manual_seed(1), dtype=v.dtype)
    torch.testing.assert_close(system.velocity(join(q, system.momentum(q, w))), w)


@pytest.mark.parametrize("name", MAPPED)
def test_velocity_is_the_q_half_of_the_field(name):
    system = get_system(name)
    x = _states(system)
    torch.testing.assert_close(system.velocity(x), split(system.vector_field(0.0, x))[0])


@pytest.mark.parametrize("name", MAPPED)
def test_legendre_dl_dqdot_is_the_momentum(name):
    system = get_system(name)
    x = _states(system, n=8)
    q, p = split(x)
    v = system.velocity(x).detach().requires_grad_(True)
    (dl,) = torch.autograd.grad(system.lagrangian(q, v).sum(), v)
    torch.testing.assert_close(dl, p, rtol=1e-12, atol=1e-12)


def test_spring_lagrangian_is_t_minus_v():
    system = get_system("spring", k=3.0, m=0.7)
    q, v = torch.randn(2, 10, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    expected = (0.5 * 0.7 * v**2 - 0.5 * 3.0 * q**2)[..., 0]
    torch.testing.assert_close(system.lagrangian(q, v), expected)


def test_pendulum_lagrangian_is_t_minus_v():
    m, l, g = 0.8, 1.3, 9.8  # noqa: E741
    system = get_system("pendulum", m=m, l=l, g=g)
    q, v = torch.randn(2, 10, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    # H = 2mgl(1 - cos q) + l²p²/2m, so dq/dt = l²p/m and T = m v²/(2 l²)
    expected = (m * v**2 / (2 * l**2) - 2 * m * g * l * (1 - torch.cos(q)))[..., 0]
    torch.testing.assert_close(system.lagrangian(q, v), expected)


def test_two_body_lagrangian_is_t_minus_v():
    masses, g = (1.5, 0.5), 2.0
    system = get_system("two-body", masses=masses, g=g)
    q, v = torch.randn(2, 10, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    kinetic = 0.5 * masses[0] * v[..., :2].pow(2).sum(-1) + 0.5 * masses[1] * v[..., 2:].pow(2).sum(
        -1
    )
    potential = -g * masses[0] * masses[1] / (q[..., :2] - q[..., 2:]).norm(dim=-1)
    torch.testing.assert_close(system.lagrangian(q, v), kinetic - potential)


def test_position_dependent_mass_and_gyroscopic_term():
    # H = (p - q)²/(2(1 + q²)) + q²/2: dq/dt = (p - q)/(1 + q²), so p = (1 + q²) dq/dt + q
    system = Custom("(p - q)**2/(2*(1 + q**2)) + q**2/2")
    assert system.quadratic_momentum
    q = torch.linspace(-2, 2, 9, dtype=torch.float64)[:, None].requires_grad_(True)
    v = torch.linspace(1, -1, 9, dtype=torch.float64)[:, None]
    p = system.momentum(q, v)
    torch.testing.assert_close(p, (1 + q**2) * v + q)
    # differentiable in q: dp/dq = 2 q v + 1
    (dp,) = torch.autograd.grad(p.sum(), q)
    torch.testing.assert_close(dp, 2 * q.detach() * v + 1)


def test_custom_detects_a_hamiltonian_quadratic_in_p():
    assert Custom("p1**2/2 + p2**2 + p1*p2/4 + q1**2 + q2**4", dof=2).quadratic_momentum
    assert not Custom("cos(p) + q**2").quadratic_momentum
    assert not Custom("p**4/4 + q**2").quadratic_momentum
    with pytest.raises(HnnkitValueError, match=r"Custom has no velocity map.*override"):
        Custom("p**4/4 + q**2").velocity(torch.zeros(2, 2, dtype=torch.float64))


def test_dissipative_system_has_no_velocity_map():
    system = get_system("damped-spring")
    with pytest.raises(HnnkitValueError, match=r"DampedSpring has no velocity map.*spring"):
        system.velocity(torch.zeros(3, 2, dtype=torch.float64))
    with pytest.raises(HnnkitValueError, match="DampedSpring has no velocity map"):
        system.momentum(torch.zeros(3, 1), torch.zeros(3, 1))


def test_singular_mass_matrix_is_refused():
    # p2 does not appear: d²H/dp² = diag(1, 0) is singular
    system = Custom("p1**2/2 + q1**2/2 + q2**2/2", dof=2)
    with pytest.raises(HnnkitValueError, match=r"singular or ill-conditioned at 4 of 4 states"):
        system.momentum(
            torch.zeros(4, 2, dtype=torch.float64), torch.ones(4, 2, dtype=torch.float64)
        )


def test_bad_shapes_are_refused():
    system = get_system("two-body")
    with pytest.raises(HnnkitValueError, match=r"qdot must be a tensor of shape \(\.\.\., 4\)"):
        system.momentum(torch.zeros(3, 4), torch.zeros(3, 2))


def test_float32_without_autograd():
    system = get_system("pendulum")
    with torch.no_grad():
        p = system.momentum(torch.ones(5, 1), torch.full((5, 1), 2.0))
    assert p.dtype == torch.float32 and not p.requires_grad
    torch.testing.assert_close(p, torch.ones(5, 1))  # p = m v / l² = 0.5 · 2


def test_solve_symmetric_reports_the_bad_states():
    a = torch.eye(2, dtype=torch.float64).repeat(5, 1, 1)
    a[1] = torch.tensor([[1.0, 1.0], [1.0, 1.0]])  # singular
    a[3] = torch.diag(torch.tensor([1.0, 1e-17], dtype=torch.float64))  # ill-conditioned
    b = torch.ones(5, 2, dtype=torch.float64)
    with pytest.raises(HnnkitValueError, match=r"M is singular or ill-conditioned at 2 of 5"):
        solve_symmetric(a, b, what="M", advice="fix M")
    good = solve_symmetric(a[[0, 2, 4]] * 2, b[:3], what="M", advice="fix M")
    torch.testing.assert_close(good, torch.full((3, 2), 0.5, dtype=torch.float64))
