import pytest
import torch
from torch import nn

from hnnkit.data import generate, real_pendulum
from hnnkit.evaluate import (
    OriginalProtocol,
    aggregate,
    evaluate_corrected,
    evaluate_original,
    loss_metrics,
)
from hnnkit.experiments.protocols import ORIGINAL, real_pendulum_energy
from hnnkit.models import HNN, Baseline
from hnnkit.systems import Pendulum, Spring


class Exact(nn.Module):
    """An HNN energy net equal to the system's H: a perfect model."""

    def __init__(self, system):
        super().__init__()
        self.system = system
        self.w = nn.Parameter(torch.ones((), dtype=torch.float64))

    def forward(self, x):
        return self.w * self.system.energy(x)


@pytest.fixture(scope="module")
def spring_data():
    return generate("spring", n_trajectories=10, seed=0, noise_std=0.0)


def test_a_perfect_model_scores_zero_under_the_corrected_protocol(spring_data):
    model = HNN(2, energy_net=Exact(Spring()))
    out, roll = evaluate_corrected(
        Spring(), {"hnn": model}, spring_data, t_span=(0, 20), n_points=50
    )
    assert out["hnn"]["energy"]["mean"] < 1e-14
    assert out["hnn"]["rollout_mse"]["mean"] < 1e-12
    assert roll.true.shape == (50, 5, 2) and roll.models["hnn"].shape == (50, 5, 2)
    assert all(v == pytest.approx(20.0) for v in out["hnn"]["valid_time"]["values"])
    assert out["truth"]["energy_drift"]["mean"] < 1e-14  # the exact solution, the yardstick
    assert "angular_momentum_drift" not in out["hnn"]  # the spring has no other invariant
    assert loss_metrics(model, spring_data)["test_loss"]["mean"] < 1e-20
    assert (
        out["hnn"]["symplecticity"]["mean"] < 1e-13
        and out["truth"]["symplecticity"]["mean"] < 1e-13
    )


def test_corrected_protocol_tells_a_symplectic_gradient_from_a_free_field(spring_data, gen):
    models = {
        "hnn": HNN(2, hidden=(8, 8), generator=gen),
        "baseline": Baseline(2, hidden=(8, 8), generator=gen),
    }
    out, _ = evaluate_corrected(Spring(), models, spring_data, t_span=(0, 2), n_points=11)
    assert out["hnn"]["symplecticity"]["mean"] < 1e-13  # untrained, yet exactly symplectic
    assert out["baseline"]["symplecticity"]["mean"] > 1e-4


def test_original_spring_protocol_stretches_time_and_so_penalises_even_a_perfect_model(spring_data):
    model = HNN(2, energy_net=Exact(Spring()))
    spring = ORIGINAL["spring"]
    out, roll = evaluate_original(Spring(), {"hnn": model}, spring_data, spring, noise_std=0.1)
    # energy is conserved exactly on both clocks, so the energy metric is ~0 ...
    assert out["hnn"]["energy"]["mean"] < 1e-8
    # ... but coordinates are compared at mismatched times (the 1.09 rescale), so they differ
    assert (roll.models["hnn"] - roll.true).abs().max() > 0.1
    assert roll.t[-1].item() == pytest.approx(20 * 1.09**15, rel=1e-12)  # the notebook's final span
    _, roll0 = evaluate_original(Spring(), {"hnn": model}, spring_data, spring, noise_std=0.0)
    assert (roll0.models["hnn"] - roll0.true).abs().max() < 1e-5


def test_original_pendulum_energy_is_q2_plus_p2():
    data = generate("pendulum", n_trajectories=4, seed=0)
    model = HNN(2, energy_net=Exact(Pendulum()))
    out, roll = evaluate_original(Pendulum(), {"hnn": model}, data, ORIGINAL["pendulum"])
    assert torch.allclose(roll.true_energy, roll.true.pow(2).sum(-1))
    assert out["hnn"]["energy"]["mean"] < 1e-6


@pytest.mark.real_pendulum
def test_real_pendulum_protocols_use_the_test_segment(monkeypatch):
    data = real_pendulum()
    model = HNN(2, hidden=(8,), generator=torch.Generator().manual_seed(0))
    out, roll = evaluate_original(None, {"hnn": model}, data, ORIGINAL["real-pendulum"])
    assert (
        roll.t.shape == (110,)
        and roll.t[0] == 0
        and roll.t[-1].item() == pytest.approx(99 + 1 / 6 - 81)
    )
    assert torch.equal(roll.true[:, 0], data.x[0, 444:554])
    assert out["hnn"]["energy"]["mean"] > 0


def test_protocol_objects_carry_the_quirks_not_names(spring_data):
    model = HNN(2, energy_net=Exact(Spring()))
    # the system's own sampler and H (the default) vs the notebook's +-U[0.2, 1] and q^2 + p^2
    own, roll_own = evaluate_original(Spring(), {"hnn": model}, spring_data)
    assert roll_own.t[-1].item() == pytest.approx(20.0) and roll_own.t.shape == (100,)
    assert torch.allclose(roll_own.true_energy, Spring().energy(roll_own.true))
    assert own["hnn"]["energy"]["mean"] < 1e-12
    short = OriginalProtocol(starts="notebook", span=2.0, n_points=11, n_states=5)
    _, roll = evaluate_original(Spring(), {"hnn": model}, spring_data, short)
    assert roll.true.shape == (11, 5, 2) and roll.t[-1].item() == pytest.approx(2.0)
    assert bool((roll.true[0].abs() >= 0.2).all() and (roll.true[0].abs() <= 1.0).all())
    with pytest.raises(ValueError, match="starts"):
        OriginalProtocol(starts="name-of-a-task")
    with pytest.raises(ValueError, match="energy"):  # measured data name their energy
        evaluate_original(None, {"hnn": model}, spring_data)
    with pytest.raises(ValueError, match="energy"):
        evaluate_corrected(None, {"hnn": model}, spring_data, t_span=(0, 1))
    assert ORIGINAL["real-pendulum"].energy is real_pendulum_energy


def test_aggregate_pools_seeds_and_trajectories():
    a = {"mean": 1.0, "sem": 0.1, "values": [1.0, 1.0]}
    b = {"mean": 3.0, "sem": 0.1, "values": [3.0, 3.0]}
    out = aggregate([a, b])
    assert out["mean"] == pytest.approx(2.0)
    assert out["sem"] == pytest.approx(torch.tensor([1.0, 1, 3, 3]).std().item() / 2)
    assert aggregate([{"mean": 5.0, "sem": 0.5}]) == {"mean": 5.0, "sem": 0.5}
