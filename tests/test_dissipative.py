import json
import math

import pytest
import torch
from torch import nn

from hnnkit.data import generate
from hnnkit.integrate import odeint
from hnnkit.models import DissipativeHNN
from hnnkit.phase_space import split, symplectic_gradient
from hnnkit.systems import DampedPendulum, DampedSpring, Pendulum, Spring, get_system
from hnnkit.train import fit

FORMS = ["helmholtz", "rayleigh"]


class Quadratic(nn.Module):
    """A scalar net ``½ (a|q|² + b|p|²)`` with known derivatives."""

    def __init__(self, a: float, b: float):
        super().__init__()
        self.a = nn.Parameter(torch.tensor(a, dtype=torch.float64))
        self.b = nn.Parameter(torch.tensor(b, dtype=torch.float64))

    def forward(self, x):
        q, p = split(x)
        return 0.5 * (self.a * q.pow(2).sum(-1) + self.b * p.pow(2).sum(-1))


def _model(form, dim=2, hidden=(16, 16), seed=0):
    return DissipativeHNN(
        dim, form=form, hidden=hidden, generator=torch.Generator().manual_seed(seed)
    ).double()


# -- the model ---------------------------------------------------------------------------
@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("batch", [(), (7,), (3, 5)])
def test_field_is_exactly_conservative_plus_dissipative(form, batch, gen):
    m = _model(form, dim=4)
    with torch.no_grad():  # the default dissipation starts at zero; give it something to do
        m.dissipation_net.layers[-1].weight.normal_(generator=gen)
    x = torch.randn(*batch, 4, dtype=torch.float64, generator=gen)
    f, fc, fd = m.vector_field(0.0, x), m.conservative_field(x), m.dissipative_field(x)
    assert f.shape == fc.shape == fd.shape == x.shape
    assert torch.equal(f, fc + fd)
    assert torch.equal(m(x), f)
    assert fd.abs().max() > 1e-3
    # conservative part is J∇H_θ, by autograd
    assert torch.allclose(fc, symplectic_gradient(m.hamiltonian, x), atol=1e-12)
    assert m.hamiltonian(x).shape == m.dissipation(x).shape == batch
    if form == "rayleigh":  # friction acts on the momenta only, and vanishes at rest
        assert torch.equal(fd[..., :2], torch.zeros_like(fd[..., :2]))
        q, _ = split(x)
        at_rest = torch.cat([q, torch.zeros_like(q)], -1)
        assert m.dissipation(at_rest).abs().max() < 1e-12
        assert m.dissipative_field(at_rest).abs().max() < 1e-12
    else:  # dissipative part is -∇D_θ, by autograd
        xi = x.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(m.dissipation(xi).sum(), xi)
        assert torch.allclose(fd, -g, atol=1e-12)


@pytest.mark.parametrize("form", FORMS)
def test_untrained_model_is_a_plain_hnn_and_energy_rate_is_the_budget(form, gen):
    m = _model(form)
    x = torch.randn(10, 2, dtype=torch.float64, generator=gen)
    assert torch.equal(m.dissipative_field(x), torch.zeros_like(x))
    with torch.no_grad():
        m.dissipation_net.layers[-1].weight.normal_(generator=gen)
    # dH_θ/dt along the model's flow = ∇H_θ · f, and the conservative part does no work
    xi = x.clone().requires_grad_(True)
    (gh,) = torch.autograd.grad(m.hamiltonian(xi).sum(), xi)
    with torch.no_grad():
        assert torch.allclose(m.energy_rate(x), (gh * m.vector_field(0, x)).sum(-1), atol=1e-12)


@pytest.mark.parametrize("form", FORMS)
def test_dissipation_rate_of_a_known_quadratic_is_gamma(form):
    gamma = 0.37
    # helmholtz: D = ½γ|p|² gives f_D = (0, -γp); rayleigh: the symmetrised D is the same
    m = DissipativeHNN(
        4, energy_net=Quadratic(1.0, 1.0), dissipation_net=Quadratic(0.0, gamma), form=form
    )
    x = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    q, p = split(x)
    assert torch.allclose(m.dissipative_field(x), torch.cat([torch.zeros_like(q), -gamma * p], -1))
    assert torch.allclose(m.dissipation_rate(x), torch.full((6,), gamma, dtype=torch.float64))
    # a graph is kept only when autograd is on (so the rate can itself be trained on)
    assert m.dissipation_rate(x).requires_grad
    with torch.no_grad():
        assert not m.dissipation_rate(x).requires_grad


def test_model_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"dissipation form 'ohmic'.*helmholtz, rayleigh"):
        DissipativeHNN(2, form="ohmic")
    with pytest.raises(ValueError, match="dim must be a positive even integer"):
        DissipativeHNN(3)
    m = DissipativeHNN(2, dissipation_net=nn.Linear(2, 3))
    with pytest.raises(ValueError, match="dissipation_net must return one value per state"):
        m.dissipation(torch.zeros(4, 2))


# -- training: a known answer ------------------------------------------------------------
def _train(gamma, form, steps=400):
    """A fast fit on noise-free damped-spring data (10 trajectories, 32x32 nets, 400 steps)."""
    data = generate(
        DampedSpring(gamma=gamma), n_trajectories=10, n_points=30, noise_std=0.0, seed=0
    )
    m = DissipativeHNN(2, form=form, hidden=(32, 32), generator=torch.Generator().manual_seed(0))
    fit(m, data, steps=steps, lr=3e-3)
    x = data.x_clean.reshape(-1, 2).float()
    return m, data, x


@pytest.mark.parametrize("form", FORMS)
def test_without_friction_the_dissipative_part_trains_to_about_zero(form):
    m, _, x = _train(0.0, form)
    with torch.no_grad():
        fd, f = m.dissipative_field(x), m.vector_field(0, x)
        rate = float(m.dissipation_rate(x).mean())
    assert abs(rate) < 0.01  # the divergence (friction rate) is identifiable in both forms
    if form == "rayleigh":  # ... and so is the whole friction force in this form
        assert fd.pow(2).mean().sqrt() < 0.01 * f.pow(2).mean().sqrt()
    # helmholtz: a harmonic (divergence-free) part can move between H_θ and D_θ, so f_D need not vanish


@pytest.mark.parametrize("form", FORMS)
def test_damped_spring_friction_rate_is_recovered_within_ten_percent(form):
    gamma = 0.1
    m, _, x = _train(gamma, form)
    with torch.no_grad():
        rate = float(m.dissipation_rate(x).mean())
    assert rate == pytest.approx(gamma, rel=0.1)


# -- the damped systems ------------------------------------------------------------------
@pytest.mark.parametrize("cls, parent", [(DampedSpring, Spring), (DampedPendulum, Pendulum)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_damped_field_is_hamiltonian_plus_linear_friction(cls, parent, dtype, gen):
    s = cls(gamma=0.3)
    x = s.sample_initial(16, generator=gen).to(dtype)
    q, p = split(x)
    ref = symplectic_gradient(s.energy, x) + torch.cat([torch.zeros_like(q), -0.3 * p], -1)
    f = s.vector_field(0.0, x)
    assert f.dtype == dtype
    tol = 1e-12 if dtype == torch.float64 else 1e-5
    assert torch.allclose(f, ref, atol=tol, rtol=tol)
    assert torch.allclose(s.energy(x), parent().energy(x))  # energy stays H
    assert torch.equal(cls(gamma=0.0).vector_field(0.0, x), parent().vector_field(0.0, x))


def test_damped_spring_exact_solution_matches_an_accurate_solve():
    s = DampedSpring(gamma=0.4)
    x0 = s.sample_initial(5, generator=torch.Generator().manual_seed(0))
    t = torch.linspace(0, 10, 41, dtype=torch.float64)
    exact = s.exact_solution(t, x0)
    num = odeint(s.vector_field, x0, t, method="dopri5", rtol=1e-11, atol=1e-12)
    assert exact.shape == (41, 5, 2)
    assert torch.allclose(exact, num, atol=1e-9)
    e = s.energy(exact)
    assert bool((e[1:] <= e[:-1] + 1e-15).all())  # energy never increases
    # on average it decays as exp(-γ t) (H = q² + p², dH/dt = -2γp²)
    assert (e[-1] / e[0]).mean().item() == pytest.approx(math.exp(-0.4 * 10), rel=0.2)
    assert DampedSpring(gamma=5.0).exact_solution(t, x0) is None  # overdamped: integrate


def test_damped_systems_are_registered_and_validate_gamma():
    assert isinstance(get_system("damped-spring"), DampedSpring)
    s = get_system("damped-pendulum", gamma=0.2)
    assert isinstance(s, DampedPendulum) and s.params()["gamma"] == 0.2
    assert "gamma=0.1" in repr(get_system("damped-spring"))
    for bad in (-0.1, float("nan"), float("inf"), "0.1", True):
        with pytest.raises(ValueError, match=r"gamma .* must be a finite number >= 0"):
            DampedSpring(gamma=bad)
    with pytest.raises(ValueError, match="gamma"):
        get_system("damped-pendulum", gamma=-1)


# -- the reproduce task ------------------------------------------------------------------
def test_reproduce_smoke_damped_pendulum_has_dhnn_rows(tmp_path, monkeypatch):
    import hnnkit.train
    from hnnkit.experiments.reproduce import reproduce

    decays = {}

    def recording_fit(model, data, **kwargs):
        decays[type(model).__name__] = kwargs["weight_decay"]
        return fit(model, data, **kwargs)

    # every task model trains through hnnkit.train.fit, looked up at each call
    monkeypatch.setattr(hnnkit.train, "fit", recording_fit)

    out = tmp_path / "r"
    reproduce(out, tasks="damped-pendulum", profile="smoke", quiet=True, echo=lambda s: None)
    entry = json.loads((out / "results.json").read_text())["tasks"]["damped-pendulum"]
    assert set(entry["models"]) == {"baseline", "hnn", "dhnn"}
    dhnn = entry["models"]["dhnn"]
    for key in ("train_loss", "test_loss", "energy"):
        assert dhnn[key]["mean"] > 0
    assert dhnn["gamma_true"] == 0.1 and math.isfinite(dhnn["dissipation_rate"]["mean"])
    assert "gamma_true" not in entry["models"]["hnn"]
    assert (out / "damped-pendulum" / "figures" / "energy.png").is_file()
    table = (out / "table.md").read_text()
    assert "| damped-pendulum | dissipative HNN |" in table and "learned dissipation rate" in table
    # L2 would shrink the learned friction; the others keep the original's 1e-4
    assert decays == {"Baseline": 1e-4, "HNN": 1e-4, "DissipativeHNN": 0.0}
