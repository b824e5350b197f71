"""The Lagrangian NN: exact on the true Lagrangian, clear errors, training and the CLI."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from hnnkit.cli import main
from hnnkit.data import generate
from hnnkit.errors import HnnkitValueError
from hnnkit.models import HNN, LNN, build_model, get_model
from hnnkit.models.lnn import mlp_hessian
from hnnkit.phase_space import split
from hnnkit.systems import get_system
from hnnkit.systems.base import velocity_map_systems
from hnnkit.train import derivative_loss, fit


# -- the true Lagrangians, written out as T - V (independent of the systems' own maps) -------
class SpringL(nn.Module):
    def __init__(self, k: float, m: float):
        super().__init__()
        self.k, self.m = k, m

    def forward(self, z):
        q, v = z[..., :1], z[..., 1:]
        return (0.5 * self.m * v**2 - 0.5 * self.k * q**2).sum(-1)


class PendulumL(nn.Module):
    def __init__(self, m: float, l: float, g: float):  # noqa: E741
        super().__init__()
        self.m, self.l, self.g = m, l, g

    def forward(self, z):
        q, v = z[..., :1], z[..., 1:]
        kinetic = self.m * v**2 / (2 * self.l**2)  # H has l²p²/2m, so dq/dt = l²p/m
        return (kinetic - 2 * self.m * self.g * self.l * (1 - torch.cos(q))).sum(-1)


class NBodyL(nn.Module):
    def __init__(self, masses: tuple[float, ...], g: float):
        super().__init__()
        self.masses, self.g = masses, g

    def forward(self, z):
        nb = len(self.masses)
        r = z[..., : 2 * nb].unflatten(-1, (nb, 2))
        v = z[..., 2 * nb :].unflatten(-1, (nb, 2))
        lag = sum(0.5 * m * v[..., i, :].pow(2).sum(-1) for i, m in enumerate(self.masses))
        for i in range(nb):
            for j in range(i + 1, nb):
                dist = (r[..., i, :] - r[..., j, :]).norm(dim=-1)
                lag = lag + self.g * self.masses[i] * self.masses[j] / dist
        return lag


class DoublePendulumL(nn.Module):
    def __init__(self, m1: float, m2: float, l1: float, l2: float, g: float):
        super().__init__()
        self.m1, self.m2, self.l1, self.l2, self.g = m1, m2, l1, l2, g

    def forward(self, z):
        m1, m2, l1, l2, g = self.m1, self.m2, self.l1, self.l2, self.g
        q1, q2, w1, w2 = z.unbind(-1)
        kinetic = (
            0.5 * (m1 + m2) * l1**2 * w1**2
            + 0.5 * m2 * l2**2 * w2**2
            + m2 * l1 * l2 * w1 * w2 * torch.cos(q1 - q2)
        )
        potential = (m1 + m2) * g * l1 * (1 - torch.cos(q1)) + m2 * g * l2 * (1 - torch.cos(q2))
        return kinetic - potential


class SystemL(nn.Module):
    """A system's own L = p·q̇ − H (through its momentum map): for systems without a
    closed form here (e.g. a double pendulum)."""

    def __init__(self, system):
        super().__init__()
        self.system = system

    def forward(self, z):
        n = self.system.dof
        return self.system.lagrangian(z[..., :n], z[..., n:])


class TrueH(nn.Module):
    def __init__(self, system):
        super().__init__()
        self.system = system

    def forward(self, x):
        return self.system.energy(x)


DOUBLE = {"m1": 1.3, "m2": 0.7, "l1": 1.1, "l2": 0.9, "g": 9.8}
#: name → (system parameters, its L = T − V)
CLOSED_FORMS = {
    "spring": ({"k": 3.0, "m": 0.7}, lambda: SpringL(3.0, 0.7)),
    "pendulum": ({"m": 0.8, "l": 1.3, "g": 9.8}, lambda: PendulumL(0.8, 1.3, 9.8)),
    "two-body": ({"masses": (1.5, 0.5), "g": 2.0}, lambda: NBodyL((1.5, 0.5), 2.0)),
    "three-body": ({}, lambda: NBodyL((1.0, 1.0, 1.0), 1.0)),
    "double-pendulum": (DOUBLE, lambda: DoublePendulumL(**DOUBLE)),
}
MAPPED = velocity_map_systems()


def _states(system, n=32, seed=0):
    return system.sample_initial(n, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", list(CLOSED_FORMS))
def test_lnn_with_the_true_lagrangian_reproduces_the_true_field(name):
    params, lagrangian = CLOSED_FORMS[name]
    system = get_system(name, **params)
    x = _states(system)
    model = LNN(system.dim, system, lagrangian())
    torch.testing.assert_close(
        model.vector_field(None, x), system.vector_field(0.0, x), rtol=0, atol=1e-8
    )
    # its energy q̇·∂L/∂q̇ − L is the system's H
    q, _ = split(x)
    torch.testing.assert_close(model.hamiltonian(x), system.energy(x), rtol=0, atol=1e-10)
    assert torch.allclose(model.energy(q, system.velocity(x)), system.energy(x), atol=1e-10)


@pytest.mark.parametrize("name", MAPPED)
def test_lnn_with_the_systems_own_lagrangian_reproduces_its_field(name):
    # every system with a velocity map (double-pendulum included once registered)
    system = get_system(name)
    x = _states(system, n=16)
    model = LNN(system.dim, system, SystemL(system))
    torch.testing.assert_close(
        model.vector_field(None, x), system.vector_field(0.0, x), rtol=0, atol=1e-8
    )


@pytest.mark.parametrize("name", MAPPED)
def test_hnn_with_the_true_hamiltonian_reproduces_the_true_field(name):
    system = get_system(name)
    x = _states(system, n=16)
    model = HNN(system.dim, energy_net=TrueH(system))
    torch.testing.assert_close(
        model.vector_field(None, x), system.vector_field(0.0, x), rtol=0, atol=1e-8
    )


@pytest.mark.parametrize("activation", ["softplus", "tanh", "silu"])
def test_closed_form_mlp_hessian_matches_autograd(activation):
    system = get_system("two-body")
    gen = torch.Generator().manual_seed(0)
    model = LNN(8, system, hidden=(9, 7, 5), activation=activation, generator=gen).double()
    z = torch.randn(6, 8, dtype=torch.float64, generator=gen)
    g, hess = mlp_hessian(model.lagrangian_net, z)
    f = lambda zz: model.lagrangian_net(zz)[0]  # noqa: E731
    torch.testing.assert_close(g, torch.func.vmap(torch.func.grad(f))(z))
    torch.testing.assert_close(hess, torch.func.vmap(torch.func.hessian(f))(z))
    # the accelerations of the closed form equal those of the generic autograd path
    q, v = z[:, :4], z[:, 4:]
    generic = LNN(8, system, _Wrapped(model.lagrangian_net))
    torch.testing.assert_close(model.acceleration(q, v), generic.acceleration(q, v))


class _Wrapped(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, z):
        return self.net(z)


def test_parameter_gradient_of_the_field_is_correct():
    system = get_system("pendulum")
    model = LNN(2, system, hidden=(6, 6), generator=torch.Generator().manual_seed(0)).double()
    x = _states(system, n=5)
    w = model.lagrangian_net.layers[1].weight
    assert torch.autograd.gradcheck(
        lambda W: (
            torch.func.functional_call(model, {"lagrangian_net.layers.1.weight": W}, (x,))
            .pow(2)
            .sum()
        ),
        (w.detach().clone().requires_grad_(True),),
    )


class LinearInVelocity(nn.Module):
    def forward(self, z):  # L = q̇·sin(q) − q²/2: ∂²L/∂q̇² = 0
        q, v = z[..., :1], z[..., 1:]
        return (v * torch.sin(q) - 0.5 * q**2).sum(-1)


def test_singular_hessian_is_a_clear_error_not_nan():
    system = get_system("spring")
    model = LNN(2, system, LinearInVelocity())
    with pytest.raises(HnnkitValueError, match=r"d²L/dq̇² is singular or ill-conditioned at 7 of 7"):
        model.vector_field(None, _states(system, n=7))


def test_ill_conditioned_hessian_is_refused_at_the_set_limit():
    system = get_system("two-body")

    # L = ½(q̇₁² + q̇₂² + q̇₃²) + ½·1e-7·q̇₄²: ∂²L/∂q̇² = diag(1, 1, 1, 1e-7), condition 1e7
    class Skewed(nn.Module):
        def forward(self, z):
            v = z[..., 4:]
            return 0.5 * v[..., :3].pow(2).sum(-1) + 0.5e-7 * v[..., 3].pow(2)

    x = _states(system, n=3)
    with pytest.raises(HnnkitValueError, match=r"worst condition number 1e\+07"):
        LNN(8, system, Skewed(), max_condition=1e6).vector_field(None, x)
    assert torch.isfinite(LNN(8, system, Skewed()).vector_field(None, x)).all()


def test_lnn_needs_a_system_with_a_velocity_map():
    g = torch.Generator().manual_seed(0)
    assert get_model("lnn").needs_system and "system" not in get_model("lnn").options
    with pytest.raises(HnnkitValueError, match=r"lnn.*DampedSpring has no velocity map.*spring"):
        build_model("lnn", 2, generator=g, system=get_system("damped-spring"))
    with pytest.raises(HnnkitValueError, match=r"lnn.*needs the true system.*no system"):
        build_model("lnn", 2, generator=g)
    with pytest.raises(HnnkitValueError, match=r"relu.*zero second derivative"):
        build_model("lnn", 2, generator=g, system=get_system("spring"), activation="relu")
    with pytest.raises(HnnkitValueError, match="dof 4, but the LNN's dim 2"):
        build_model("lnn", 2, generator=g, system=get_system("two-body"))


def test_shapes_and_no_grad():
    system = get_system("spring")
    model = build_model("lnn", 2, generator=torch.Generator().manual_seed(0), system=system)
    x = torch.randn(3, 4, 2, generator=torch.Generator().manual_seed(1))
    assert model.vector_field(None, x).shape == (3, 4, 2)
    assert model.vector_field(0.0, x[0, 0]).shape == (2,)
    assert model.hamiltonian(x).shape == (3, 4)
    with torch.no_grad():
        out = model.vector_field(None, x)
    assert not out.requires_grad and torch.isfinite(out).all()


def test_same_seed_same_parameters_and_training():
    system = get_system("spring")
    data = generate("spring", n_trajectories=4, seed=0)

    def trained(seed):
        gen = torch.Generator().manual_seed(seed)
        model = build_model("lnn", 2, generator=gen, system=system, hidden=(16, 16))
        fit(model, data, steps=5, lr=1e-3, seed=seed, log_every=5, quiet=True)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    a, b, c = trained(0), trained(0), trained(1)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_short_training_reduces_the_loss():
    system = get_system("spring")
    data = generate("spring", n_trajectories=10, noise_std=0.0, seed=0)
    gen = torch.Generator().manual_seed(0)
    model = build_model("lnn", 2, generator=gen, system=system, hidden=(32, 32))
    x, dx = (v.float() for v in data.split("train"))
    first = derivative_loss(model, x, dx).item()
    fit(model, data, steps=60, lr=3e-3, seed=0, log_every=60, quiet=True)
    last = derivative_loss(model, x, dx).item()
    assert last < 0.5 * first, (first, last)


def test_cli_trains_and_evaluates_an_lnn(tmp_path):
    run = tmp_path / "run"
    args = ["train", "--system", "spring", "--model", "lnn", "--out", str(run), "--steps", "20"]
    assert main([*args, "--hidden", "16,16", "--n-trajectories", "6", "--quiet"]) == 0
    trained = json.loads((run / "metrics.json").read_text())
    assert main(["evaluate", str(run), "--t-span", "0", "1"]) == 0  # a short span: 20 steps
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_loss"]["mean"] == pytest.approx(trained["test_loss"]["mean"], rel=1e-6)
    assert {"rollout_mse", "energy_drift"} <= set(metrics)


def test_cli_refuses_an_lnn_on_a_dissipative_system(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--system", "damped-spring", "--model", "lnn", "--out", str(out)]
    assert main([*args, "--steps", "2", "--n-trajectories", "2"]) == 2
    assert "DampedSpring has no velocity map" in capsys.readouterr().err
    assert not out.exists()
