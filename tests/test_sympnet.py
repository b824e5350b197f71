"""SympNets and the one-step map contract: symplectic by construction, trained on consecutive
pairs, evaluated beside field models, refused where a field is needed."""

import json
import math

import pytest
import torch

from hnnkit.cli import main
from hnnkit.data import generate
from hnnkit.errors import HnnkitValueError
from hnnkit.evaluate import (
    as_float64,
    energy_error_by_integrator,
    evaluate_corrected,
    evaluate_original,
    loss_metrics,
)
from hnnkit.evaluate.maps import map_derivative, map_grid
from hnnkit.metrics import symplecticity_error
from hnnkit.models import HNN, NotAFieldError, SympNet, build_model, get_model, is_map
from hnnkit.systems import Spring
from hnnkit.train import fit


def _random(variant, dim, seed, std):
    g = torch.Generator().manual_seed(seed)
    net = SympNet(dim, variant, generator=g).double()
    for p in net.parameters():
        p.data = torch.randn(p.shape, generator=g, dtype=torch.float64) * std
    return net, torch.randn(16, dim, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("variant", ["la", "g"])
@pytest.mark.parametrize("dim", [2, 4, 6])
def test_a_sympnet_is_symplectic_for_random_parameters(variant, dim):
    # LA: 9 linear shears in a row, so its Jacobian's size (and round-off) grows fast with the
    # weights' scale; G stays O(1)
    std = 0.3 if variant == "la" else 1.0
    for seed in range(4):
        net, x = _random(variant, dim, seed, std)
        assert float(symplecticity_error(net.map, x).max()) <= 1e-12
        assert torch.allclose(net.inverse_map(net.map(x)), x, rtol=0, atol=1e-12)


def test_a_network_that_is_not_a_composition_of_shears_is_caught():
    # the check can fail: a generic MLP map and a shear with a non-symmetric matrix are not
    # symplectic
    g = torch.Generator().manual_seed(0)
    a = torch.randn(2, 2, generator=g, dtype=torch.float64)

    def shear(x):
        q, p = x[..., :2], x[..., 2:]
        return torch.cat([q, p + q @ a], -1)  # a not symmetric

    x = torch.randn(8, 4, generator=g, dtype=torch.float64)
    assert float(symplecticity_error(shear, x).min()) > 1e-3


def test_the_registry_knows_sympnets_as_maps_trained_on_consecutive_pairs():
    for name, variant in (("la-sympnet", "la"), ("g-sympnet", "g")):
        entry = get_model(name)
        assert entry.kind == "map" and get_model("hnn").kind == "field"
        assert entry.defaults["loss"] == "rollout"
        assert dict(entry.defaults["loss_options"]) == {"k": 1, "method": "model"}
        net = build_model(name, 4, generator=torch.Generator().manual_seed(0))
        assert is_map(net) and net.variant == variant
        assert net.map(torch.zeros(3, 4)).shape == (3, 4) and net.map(torch.zeros(4)).shape == (4,)
    assert not is_map(HNN(2))


@pytest.fixture(scope="module")
def trained():
    data = generate("spring", n_trajectories=10, noise_std=0.0, seed=0)
    net = build_model("g-sympnet", 2, generator=torch.Generator().manual_seed(0))
    fit(net, data, loss="rollout", loss_options={"k": 1}, steps=400, lr=1e-2, log_every=400)
    return data, net


def test_training_binds_the_data_step_and_learns_the_flow(trained):
    data, net = trained
    h = float(data.t[0, 1] - data.t[0, 0])
    assert net.time_step == pytest.approx(h, rel=1e-12)
    x = data.x_clean[data.test_mask][:50].float()
    exact = Spring().exact_solution(torch.tensor([0.0, h]), x.double())[-1]
    with torch.no_grad():
        err = (net.step(x, h).double() - exact).pow(2).mean()
    assert float(err) < 1e-4 < float((x.double() - exact).pow(2).mean())
    with pytest.raises(HnnkitValueError, match="trained at the time step"):
        net.step(x, 2 * h)
    # the state dict carries the step
    again = build_model("g-sympnet", 2, generator=None)
    again.load_state_dict(net.state_dict())
    assert again.time_step == net.time_step


def test_the_test_loss_of_a_map_is_its_central_difference_derivative(trained):
    data, net = trained
    x, dx = (v.float() for v in data.split("test"))
    got = loss_metrics(net, data)["test_loss"]["mean"]
    h = net.time_step
    with torch.no_grad():
        want = ((net.map(x) - net.inverse_map(x)) / (2 * h) - dx).pow(2).mean()
    assert got == pytest.approx(float(want), rel=1e-5)
    # the exact flow's central difference is within O(h^2) of the derivative: a small floor
    spring, x64 = Spring(), x.double()
    fwd = spring.exact_solution(torch.tensor([0.0, h]), x64)[-1]
    back = spring.exact_solution(torch.tensor([0.0, -h]), x64)[-1]
    floor = float(((fwd - back) / (2 * h) - dx.double()).pow(2).mean())
    assert floor < 1e-3 and got < 0.1


def test_evaluate_corrected_scores_a_map_beside_a_field(trained):
    data, net = trained
    hnn = HNN(2, hidden=(16,), generator=torch.Generator().manual_seed(0))
    fit(hnn, data, steps=200, lr=1e-2, log_every=200)
    corr, rollouts = evaluate_corrected(Spring(), {"map": net, "hnn": hnn}, data, t_span=(0, 10))
    h = net.time_step
    # the grid: multiples of the map's step, the whole span covered
    assert torch.allclose(rollouts.t, h * torch.arange(len(rollouts.t), dtype=torch.float64))
    assert 10 - h < float(rollouts.t[-1]) <= 10
    for name in ("map", "hnn"):
        m = corr[name]
        assert {"energy", "rollout_mse", "valid_time", "energy_drift", "symplecticity"} <= set(m)
        assert all(math.isfinite(m[k]["mean"]) for k in m if k != "diverged")
        assert m["diverged"]["count"] == 0
    # the map's defect is of its own step: round-off
    assert corr["map"]["symplecticity"]["mean"] < 1e-12
    # its rollout is the iterated step
    x0 = data.test_initial_states[:25].double()
    m64 = as_float64(net)
    with torch.no_grad():
        three = m64.map(m64.map(m64.map(x0)))
    assert torch.allclose(rollouts.models["map"][3], three, rtol=0, atol=1e-12)
    assert corr["map"]["rollout_mse"]["mean"] < 0.05
    orig, _ = evaluate_original(Spring(), {"map": net, "hnn": hnn}, data)
    assert "skipped" in orig["map"] and "one-step map" in orig["map"]["skipped"]
    assert "energy" in orig["hnn"]


def test_map_grid_is_made_of_whole_steps():
    t, stride = map_grid(0.1, (0.0, 20.0), 100)
    assert stride == 2 and len(t) == 101 and float(t[-1]) == pytest.approx(20.0)
    with pytest.raises(HnnkitValueError, match="shorter than the map's time step"):
        map_grid(0.5, (0.0, 0.2), 10)


def test_a_map_asked_for_a_field_says_what_to_use(trained):
    data, net = trained
    with pytest.raises(NotAFieldError, match=r"one-step map.*loss='rollout'"):
        net.vector_field(None, torch.zeros(1, 2))
    with pytest.raises(NotAFieldError, match="derivative"):
        fit(net, data, loss="derivative", steps=1)
    with pytest.raises(NotAFieldError, match="through-step"):
        fit(net, data, loss="through-step", steps=1)
    with pytest.raises(HnnkitValueError, match="one-step map has none; use method='model'"):
        fit(net, data, loss="rollout", loss_options={"method": "leapfrog"}, steps=1)
    with pytest.raises(NotAFieldError, match="no field to integrate"):
        energy_error_by_integrator(
            net.vector_field, Spring().energy, torch.zeros(1, 2), t_end=1.0, step=0.1
        )
    fresh = SympNet(2)
    with pytest.raises(HnnkitValueError, match="no time step yet"):
        map_derivative(fresh, torch.zeros(1, 2))


def test_hnnkit_train_and_evaluate_a_sympnet(tmp_path, capsys):
    run = tmp_path / "run"
    small = ["--n-trajectories", "6", "--quiet"]
    argv = ["train", "--system", "spring", "--model", "la-sympnet", "--steps", "20"]
    assert main([*argv, "--out", str(run), *small]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["loss"] == "rollout" and cfg["loss_options"]["method"] == "model"
    assert cfg["loss_options"]["k"] == 1
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["symplecticity"]["mean"] < 1e-12
    assert {"test_loss", "rollout_mse", "valid_time", "energy_drift"} <= set(metrics)
    bad = tmp_path / "bad"
    assert main([*argv, "--loss", "derivative", "--out", str(bad), *small]) == 2
    err = capsys.readouterr().err
    assert "one-step map" in err and "--loss rollout" in err and not bad.exists()
