"""The SRNN-style separable HNN and the neural ODE baseline: structure, rollout training, CLI."""

from __future__ import annotations

import json

import pytest
import torch

from hnnkit.cli import main
from hnnkit.data import generate
from hnnkit.errors import HnnkitValueError
from hnnkit.integrate import odeint
from hnnkit.models import build_model, get_model, train_defaults
from hnnkit.models.baseline import Baseline
from hnnkit.models.srnn import SeparableHNN
from hnnkit.train import fit, get_loss, rollout_loss, rollout_windows

F64 = torch.float64


def _model(dim=4, hidden=(16,), seed=0):
    return SeparableHNN(dim, hidden, generator=torch.Generator().manual_seed(seed)).double()


def test_the_energy_is_separable_and_the_field_its_symplectic_gradient():
    model = _model(dim=4)
    x = torch.randn(5, 4, dtype=F64, generator=torch.Generator().manual_seed(1))
    for xi in x:
        hess = torch.autograd.functional.hessian(model.hamiltonian, xi)
        assert hess[:2, 2:].abs().max() < 1e-14  # ∂²H/∂q∂p = 0
        assert hess[:2, :2].abs().max() > 1e-6 and hess[2:, 2:].abs().max() > 1e-6
    # the field is J∇H, with ∇H by autograd
    xr = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model.hamiltonian(xr).sum(), xr)
    want = torch.cat([g[:, 2:], -g[:, :2]], -1)
    assert torch.allclose(model.vector_field(None, x), want, atol=1e-13)
    assert torch.allclose(model.energy_gradient(x), g, atol=1e-13)
    # velocity from p only, force from q only: what leapfrog needs
    moved_q = x.clone()
    moved_q[:, :2] += 0.3
    f, fq = model.vector_field(None, x), model.vector_field(None, moved_q)
    assert torch.equal(f[:, :2], fq[:, :2]) and not torch.allclose(f[:, 2:], fq[:, 2:])


def test_leapfrog_conserves_the_learned_energy_over_long_times():
    model = _model(dim=2, seed=3)
    x0 = torch.tensor([[0.5, -0.2]], dtype=F64)
    with torch.no_grad():
        path = odeint(
            model.vector_field,
            x0,
            torch.linspace(0, 100, 201, dtype=F64),
            method="leapfrog",
            substeps=4,
        )
        energy = model.hamiltonian(path)[:, 0]
    # a symplectic method: the energy error stays bounded over 800 steps (no drift)
    spread = float(energy.max() - energy.min())
    assert spread < 1e-3 * float(energy.abs().max()) + 1e-6


def test_shapes_and_bad_dim():
    model = _model(dim=6)
    for shape in [(6,), (3, 6), (2, 3, 6)]:
        x = torch.zeros(shape, dtype=F64)
        assert model.vector_field(None, x).shape == shape
        assert model.hamiltonian(x).shape == shape[:-1]
    with pytest.raises(HnnkitValueError, match="positive even integer"):
        SeparableHNN(3)


def test_registry_entries_train_through_rollouts_by_default():
    assert get_model("srnn").defaults["loss"] == "rollout"
    srnn = train_defaults("srnn")
    assert srnn["loss_options"]["method"] == "leapfrog" and srnn["loss_options"]["k"] == 5
    node = train_defaults("neural-ode")
    assert node["loss"] == "rollout" and node["loss_options"]["method"] == "dopri5"
    assert isinstance(build_model("srnn", 4, hidden=(8,), generator=None), SeparableHNN)
    assert isinstance(build_model("neural-ode", 4, hidden=(8,), generator=None), Baseline)


@pytest.fixture(scope="module")
def spring_data():
    return generate("spring", n_trajectories=8, noise_std=0.0, seed=0).to(dtype=F64)


@pytest.mark.parametrize(
    ("model_name", "options"),
    [("srnn", {"k": 5, "method": "leapfrog"}), ("neural-ode", {"k": 3, "method": "dopri5"})],
)
def test_rollout_training_reduces_the_rollout_loss(spring_data, model_name, options):
    def fresh():
        return build_model(
            model_name, 2, hidden=(32,), generator=torch.Generator().manual_seed(0)
        ).double()

    loss = get_loss("rollout")
    opts = loss.resolve_options(options, "field")
    x, t = rollout_windows(spring_data, opts["k"], "test")
    before = float(rollout_loss(fresh(), {"x": x, "t": t}, opts).detach())
    model = fresh()
    fit(model, spring_data, loss="rollout", loss_options=options, steps=100, lr=1e-2, log_every=100)
    after = float(rollout_loss(model, {"x": x, "t": t}, opts).detach())
    assert after < 0.3 * before, (before, after)


@pytest.mark.parametrize("model_name", ["srnn", "neural-ode"])
def test_hnnkit_train_and_evaluate(tmp_path, model_name):
    run = tmp_path / model_name
    argv = [
        "train",
        "--system",
        "spring",
        "--model",
        model_name,
        "--steps",
        "20",
        "--out",
        str(run),
        "--n-trajectories",
        "4",
        "--n-points",
        "12",
        "--hidden",
        "8",
        "--quiet",
    ]
    assert main(argv) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["loss"] == "rollout"
    assert cfg["loss_options"]["method"] == ("leapfrog" if model_name == "srnn" else "dopri5")
    assert main(["evaluate", str(run)]) == 0
