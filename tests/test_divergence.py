"""Energy conservation versus trajectory divergence (issue #5): :func:`divergence_rollouts`."""

import math

import pytest
import torch
from torch import Tensor, nn

from hnnkit.evaluate import divergence_rollouts
from hnnkit.models import HNN
from hnnkit.report import divergence_figure
from hnnkit.systems import NBody, ThreeBody


class _MassScaledEnergy(nn.Module):
    """The true three-body H with every mass scaled by ``factor``: a slightly wrong learned energy."""

    def __init__(self, factor: float):
        super().__init__()
        self.system = NBody(n_bodies=3, masses=(factor,) * 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.system.energy(x)


@pytest.fixture(scope="module")
def result():
    system = ThreeBody()
    x0 = system.sample_initial(1, generator=torch.Generator().manual_seed(0))
    t = torch.linspace(0, 6, 121, dtype=torch.float64)
    models = {"exact": system, "hnn": HNN(12, _MassScaledEnergy(1.01))}
    return divergence_rollouts(system, models, x0, t)


def test_true_system_as_model_does_not_diverge(result):
    assert result["position_error"]["exact"].max() < 1e-6
    assert math.isnan(float(result["divergence_time"]["exact"][0]))
    assert result["energy_drift"]["exact"][0] < 1e-7
    assert result["energy_drift"]["truth"][0] < 1e-7
    assert "exact" not in result["learned_energy"]  # a system has no learned energy


def test_perturbed_hnn_conserves_its_energy_but_diverges(result):
    t = result["t"]
    assert result["learned_energy_drift"]["hnn"][0] < 1e-6
    td = float(result["divergence_time"]["hnn"][0])
    assert 0 < td < float(t[-1])
    err = result["position_error"]["hnn"][:, 0]
    assert err[-1] > result["threshold"][0] > err[1]
    assert result["orbit_scale"][0] == pytest.approx(1.0, abs=0.25)  # ring radius in [0.9, 1.2]
    # the wrong masses change the true energy along the HNN's rollout, though H_θ is conserved
    assert result["energy_drift"]["hnn"][0] > 100 * result["learned_energy_drift"]["hnn"][0]


def test_shapes_and_errors(result):
    T = len(result["t"])
    assert result["true"].shape == (T, 1, 12)
    assert result["position_error"]["hnn"].shape == (T, 1)
    assert set(result["true_energy"]) == {"truth", "exact", "hnn"}
    with pytest.raises(ValueError, match="x0 must have shape"):
        divergence_rollouts(ThreeBody(), {}, torch.zeros(8), result["t"])


def test_divergence_figure_writes_png_and_svg(result, tmp_path):
    paths = divergence_figure(result, tmp_path / "div", title="test", orbit_until=3.0)
    assert {p.suffix for p in paths} == {".png", ".svg"}
    assert all(p.stat().st_size > 0 for p in paths)


def test_a_one_step_map_is_rolled_out_on_its_own_grid_beside_fields():
    from hnnkit.models import build_model
    from hnnkit.systems import TwoBody

    system = TwoBody()
    x0 = system.sample_initial(2, generator=torch.Generator().manual_seed(1))
    sympnet = build_model("la-sympnet", 8, generator=torch.Generator().manual_seed(0))
    sympnet.bind_time_step(0.07)
    t = torch.linspace(0.0, 3.0, 31, dtype=torch.float64)  # 0.1 apart: not multiples of 0.07
    out = divergence_rollouts(system, {"exact": system, "map": sympnet}, x0, t)
    grid = out["t"]
    steps = (grid - grid[0]) / 0.07
    torch.testing.assert_close(steps, steps.round(), rtol=0, atol=1e-9)  # multiples of h
    assert float(grid[-1]) <= 3.0 + 1e-9 and float(grid[-1]) > 3.0 - 2 * 0.07
    assert out["models"]["map"].shape == out["true"].shape == (len(grid), 2, 8)
    assert out["position_error"]["exact"].max() < 1e-6  # the field on the same grid
    assert torch.isfinite(out["models"]["map"]).all()


def test_a_rollout_that_blows_up_has_diverged_at_its_blow_up():
    class Explodes(nn.Module):
        """The true field until t = 1, then NaN: exact up to its blow-up, lost at once."""

        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(()))
            self.system = ThreeBody()

        def vector_field(self, t, x):
            f = self.system.vector_field(t, x)
            return f * math.nan if float(torch.as_tensor(t).max()) >= 1.0 else f

    system = ThreeBody()
    x0 = system.sample_initial(1, generator=torch.Generator().manual_seed(0))
    t = torch.linspace(0, 3, 61, dtype=torch.float64)
    out = divergence_rollouts(system, {"explodes": Explodes()}, x0, t)
    lost = ~torch.isfinite(out["models"]["explodes"][:, 0]).all(-1)
    assert bool(lost[-1])  # it blew up within the span
    first_nan = float(t[int(lost.float().argmax())])
    td = float(out["divergence_time"]["explodes"][0])
    assert float(out["position_error"]["explodes"][: int(lost.float().argmax()), 0].max()) < 1e-6
    assert td == pytest.approx(first_nan)  # diverged when it blew up, not "no divergence"
    assert 1.0 <= first_nan <= 1.05 + 1e-9
