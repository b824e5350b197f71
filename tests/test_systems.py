import math

import pytest
import torch

from hnnkit.data import generate
from hnnkit.phase_space import symplectic_gradient
from hnnkit.systems import (
    Custom,
    HamiltonianSystem,
    Pendulum,
    Spring,
    ThreeBody,
    TwoBody,
    get_system,
    list_systems,
    register_system,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])

BUILTIN = ["spring", "pendulum", "two-body", "three-body"]


def _system(name):
    return Custom("p**2/2 + q**2/2 + q**4/4") if name == "custom" else get_system(name)


@pytest.mark.parametrize("name", [*BUILTIN, "custom"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("device", DEVICES)
def test_vector_field_equals_autograd_of_hamiltonian(name, dtype, device, gen):
    s = _system(name)
    x = s.sample_initial(16, generator=gen).to(device=device, dtype=dtype)
    f = s.vector_field(0.0, x)
    ref = symplectic_gradient(s.energy, x)
    assert f.shape == x.shape and f.dtype == dtype
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert torch.allclose(f, ref, atol=tol, rtol=tol)


@pytest.mark.parametrize("name", [*BUILTIN, "custom"])
def test_energy_is_conserved_along_an_accurate_solve(name, gen):
    from hnnkit.integrate import odeint

    s = _system(name)
    x0 = s.sample_initial(8, generator=gen)
    t = torch.linspace(*s.default_t_span, 20, dtype=torch.float64)
    traj = odeint(s.vector_field, x0, t, method="dopri5", rtol=1e-11, atol=1e-11)
    e = s.energy(traj)
    drift = (e - e[0]).abs().max() / e[0].abs().max()
    assert drift < 1e-8


def test_spring_field_and_exact_solution():
    s = Spring()  # k=2, m=0.5 -> H = q^2 + p^2
    x = torch.tensor([[0.3, -0.7]], dtype=torch.float64)
    assert torch.allclose(s.energy(x), torch.tensor([0.09 + 0.49], dtype=torch.float64))
    assert torch.allclose(
        s.vector_field(0, x), torch.tensor([[2 * -0.7, -2 * 0.3]], dtype=torch.float64)
    )
    t = torch.linspace(0, 10, 101, dtype=torch.float64)
    sol = s.exact_solution(t, torch.tensor([1.0, 0.0], dtype=torch.float64))
    assert torch.allclose(sol[:, 0], torch.cos(2 * t), atol=1e-14)
    assert torch.allclose(sol[:, 1], -torch.sin(2 * t), atol=1e-14)


def test_pendulum_field_and_small_angle_frequency():
    s = Pendulum()  # H = 3(1 - cos q) + p^2
    x = torch.tensor([[math.pi / 2, 1.0]], dtype=torch.float64)
    assert torch.allclose(s.energy(x), torch.tensor([3.0 + 1.0], dtype=torch.float64))
    assert torch.allclose(s.vector_field(0, x), torch.tensor([[2.0, -3.0]], dtype=torch.float64))
    from hnnkit.integrate import odeint

    # Small oscillations: q'' = -6 sin q ~ -6 q, so q(t) = eps cos(sqrt(6) t).
    eps = 1e-4
    t = torch.linspace(0, 3, 31, dtype=torch.float64)
    traj = odeint(
        s.vector_field, torch.tensor([eps, 0.0], dtype=torch.float64), t, rtol=1e-12, atol=1e-16
    )
    assert torch.allclose(traj[:, 0], eps * torch.cos(math.sqrt(6) * t), atol=eps * 1e-6)


def test_two_body_circular_orbit_keeps_its_radius():
    from hnnkit.integrate import odeint

    s = TwoBody(orbit_noise=0.0)
    x0 = s.sample_initial(4, generator=torch.Generator().manual_seed(0))
    q = x0[:, :4].reshape(4, 2, 2)
    assert torch.allclose(q[:, 0], -q[:, 1])  # bodies opposite each other
    r = q[:, 0].norm(dim=-1)
    assert torch.allclose(s.energy(x0), -1 / (4 * r), atol=1e-12)  # E = -1/(4r) for m = g = 1
    traj = odeint(
        s.vector_field, x0, torch.linspace(0, 20, 50, dtype=torch.float64), rtol=1e-10, atol=1e-12
    )
    sep = (traj[..., 0:2] - traj[..., 2:4]).norm(dim=-1)
    assert torch.allclose(sep, (2 * r).expand_as(sep), rtol=1e-7)


def test_nbody_angular_momentum_is_exact_for_circular_orbits_and_kept_by_the_field(gen):
    s = TwoBody(orbit_noise=0.0)
    x0 = s.sample_initial(4, generator=gen)
    r = x0[:, :2].norm(dim=-1)
    # each unit mass at radius r moves at v = 1/(2 sqrt(r)) (v^2/r = 1/(2r)^2): |L| = 2 r v
    assert torch.allclose(s.angular_momentum(x0).abs(), r.sqrt(), rtol=1e-12)
    assert set(s.invariants(x0)) == {"angular_momentum"} and Spring().invariants(x0[:, :2]) == {}
    # central forces: dL/dt = grad L . f vanishes at any state, orbit or not
    three = ThreeBody()
    x = three.sample_initial(8, generator=gen).requires_grad_(True)
    (grad,) = torch.autograd.grad(three.angular_momentum(x).sum(), x)
    rate = (grad * three.vector_field(0.0, x)).sum(-1)
    assert rate.abs().max() < 1e-12 and three.angular_momentum(x).abs().min() > 0.1


def test_three_body_lagrange_triangle_rotates_rigidly():
    from hnnkit.integrate import odeint

    s = ThreeBody(orbit_noise=0.0)
    x0 = s.sample_initial(3, generator=torch.Generator().manual_seed(0))
    traj = odeint(
        s.vector_field, x0, torch.linspace(0, 1, 11, dtype=torch.float64), rtol=1e-11, atol=1e-12
    )
    pos = traj[..., :6].reshape(11, 3, 3, 2)
    d01 = (pos[:, :, 0] - pos[:, :, 1]).norm(dim=-1)
    d12 = (pos[:, :, 1] - pos[:, :, 2]).norm(dim=-1)
    assert torch.allclose(d01, d01[0].expand_as(d01), rtol=1e-6)
    assert torch.allclose(d01, d12, rtol=1e-6)


def test_custom_formula_matches_callable_and_analytic_field():
    text = Custom("p**2/2 + q**2/2 + q**4/4")
    call = Custom(lambda q, p: (p**2 / 2 + q**2 / 2 + q**4 / 4).sum(-1))
    x = torch.randn(10, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(text.energy(x), call.energy(x))
    q, p = x[:, 0], x[:, 1]
    assert torch.allclose(text.vector_field(0, x), torch.stack([p, -(q + q**3)], -1))
    assert text.separable


def test_custom_multi_dof_and_parameters():
    s = Custom("(p1**2 + p2**2)/(2*m) + k*(q1 - q2)**2/2", dof=2, parameters={"m": 2.0, "k": 3.0})
    x = torch.tensor([1.0, 0.5, 2.0, -4.0], dtype=torch.float64)
    assert s.energy(x).item() == pytest.approx((4 + 16) / 4 + 3 * 0.25 / 2)
    assert torch.allclose(
        s.vector_field(0, x), torch.tensor([1.0, -2.0, -1.5, 1.5], dtype=torch.float64)
    )


@pytest.mark.parametrize(
    "formula, match",
    [
        ("__import__('os').system('ls')", "not allowed"),
        ("q.__class__", "not allowed"),
        ("exec(q)", "unknown names"),
        ("q + r", "unknown names"),
        ("q + * p", "could not parse"),
        ("", "non-empty"),
    ],
)
def test_custom_rejects_unsafe_or_invalid_formulas(formula, match):
    with pytest.raises(ValueError, match=match):
        Custom(formula)


def test_registry_lists_valid_names_on_a_miss():
    assert set(BUILTIN) <= set(list_systems())
    with pytest.raises(KeyError, match=r"valid systems are: .*spring"):
        get_system("sprung")
    with pytest.raises(ValueError, match="two-body"):
        get_system("sprung")


def test_user_subclass_gets_everything_else_for_free():
    class Duffing(HamiltonianSystem):
        separable = True

        def __init__(self, alpha=1.0, beta=0.5):
            super().__init__(dof=1)
            self.alpha, self.beta = alpha, beta

        def hamiltonian(self, q, p):
            return (0.5 * p**2 + 0.5 * self.alpha * q**2 + 0.25 * self.beta * q**4).sum(-1)

        def sample_initial(self, n, *, generator):
            return 2 * torch.rand(n, 2, generator=generator, dtype=torch.float64) - 1

    register_system("duffing-test", Duffing)
    s = get_system("duffing-test", beta=1.0)
    data = generate(s, n_trajectories=4, n_points=10, noise_std=0.0)
    q, p = data.x[..., 0], data.x[..., 1]
    assert torch.allclose(data.dx[..., 1], -(q + q**3))
    assert torch.allclose(data.dx[..., 0], p)


def test_wrong_state_shape_and_bad_hamiltonian_shape_are_explained():
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 2\)"):
        Spring().vector_field(0, torch.zeros(3, 4))
    bad = Custom(lambda q, p: q**2 + p**2)  # forgot .sum(-1): returns (*b, 1)
    with pytest.raises(ValueError, match="one energy per state"):
        bad.energy(torch.zeros(5, 2))
    with pytest.raises(ValueError, match="positive"):
        Spring(k=-1.0)


def test_repr_shows_constants():
    assert repr(Spring()) == "Spring(k=2.0, m=0.5, radius_range=(0.1, 1.0))"
    assert "g=3.0" in repr(Pendulum())
