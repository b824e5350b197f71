"""Forward-difference targets: one RK4 step of the model's flow instead of its field."""

import math

import pytest
import torch

from hnnkit.data import Dataset, real_pendulum
from hnnkit.evaluate import loss_metrics
from hnnkit.integrate import step_slope
from hnnkit.models import HNN
from hnnkit.systems import get_system
from hnnkit.train import derivative_loss, fit

F64 = torch.float64


def _spring_forward_differences(n_traj: int = 6, n_points: int = 40, h: float = 0.2) -> Dataset:
    """Exact spring trajectories (q = r cos(2t + φ), p = -r sin(2t + φ)) with forward-difference targets."""
    g = torch.Generator().manual_seed(0)
    r = 0.3 + 0.7 * torch.rand(n_traj, 1, generator=g, dtype=F64)
    phi = 2 * math.pi * torch.rand(n_traj, 1, generator=g, dtype=F64)
    t = h * torch.arange(n_points + 1, dtype=F64).expand(n_traj, -1)
    x = torch.stack([r * torch.cos(2 * t + phi), -r * torch.sin(2 * t + phi)], dim=-1)
    dx = (x[:, 1:] - x[:, :-1]) / h
    mask = torch.zeros(n_traj, n_points, dtype=torch.bool)
    mask[n_traj // 2 :] = True
    return Dataset(
        x=x[:, :-1],
        dx=dx,
        t=t[:, :-1],
        test_mask=mask,
        config={"system": "spring-fd"},
        step=torch.full((n_traj, n_points), h, dtype=F64),
    )


def test_step_slope_is_the_forward_difference_of_the_flow_to_fourth_order():
    spring = get_system("spring")
    x = torch.tensor([[1.0, 0.0], [0.3, -0.4]], dtype=F64)

    def exact_slope(h: float) -> torch.Tensor:
        c, s = math.cos(2 * h), math.sin(2 * h)
        flow = torch.stack([c * x[:, 0] + s * x[:, 1], -s * x[:, 0] + c * x[:, 1]], dim=-1)
        return (flow - x) / h

    errs = [
        (step_slope(spring.vector_field, x, h) - exact_slope(h)).abs().max() for h in (0.2, 0.1)
    ]
    order = math.log2(float(errs[0] / errs[1]))
    assert 3.7 < order < 4.3, order  # local error h^5, divided by h
    # the field itself misses a forward difference at first order in h
    assert (spring.vector_field(None, x) - exact_slope(0.2)).abs().max() > 0.1


def test_the_true_field_fits_forward_differences_only_through_the_step():
    data = _spring_forward_differences()
    spring = get_system("spring")
    x, dx = data.split("train")
    h = data.step[~data.test_mask][:, None]
    assert derivative_loss(spring, x, dx, h) < 1e-6
    assert derivative_loss(spring, x, dx) > 1e-2


def test_training_through_the_step_learns_the_field_not_the_contraction():
    data = _spring_forward_differences()
    spring = get_system("spring")
    probe = torch.tensor([[0.8, 0.0], [0.0, 0.6], [-0.5, 0.3]], dtype=F64)
    errors = {}
    for through in (False, True):
        model = HNN(2, hidden=(32, 32), generator=torch.Generator().manual_seed(0)).double()
        res = fit(model, data, steps=600, lr=3e-3, through_step=through)
        errors[through] = float(
            (model.vector_field(None, probe) - spring.vector_field(None, probe))
            .abs()
            .max()
            .detach()
        )
        assert math.isfinite(res.test_loss)
    # an HNN cannot contract phase space, so without the step it learns a distorted field;
    # through the step it learns the true one
    assert errors[True] < 0.05 < errors[False], errors
    scored = loss_metrics(model, data, through_step=True)["test_loss"]["mean"]
    assert scored < 1e-3


def test_through_step_needs_forward_difference_targets():
    data = _spring_forward_differences()
    plain = Dataset(x=data.x, dx=data.dx, t=data.t, test_mask=data.test_mask)
    model = HNN(2, hidden=(8,), generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"Dataset\.step"):
        fit(model, plain, steps=1, through_step=True)
    with pytest.raises(ValueError, match=r"Dataset\.step"):
        loss_metrics(model, plain, through_step=True)


def test_dataset_step_is_validated_and_saved(tmp_path):
    data = _spring_forward_differences()
    back = Dataset.load(data.save(tmp_path / "fd.npz"))
    assert torch.equal(back.step, data.step)
    with pytest.raises(ValueError, match="positive interval"):
        Dataset(x=data.x, dx=data.dx, t=data.t, test_mask=data.test_mask, step=-data.step)


@pytest.mark.real_pendulum
def test_real_pendulum_keeps_its_forward_difference_intervals():
    d = real_pendulum()
    assert d.step is not None and d.step.shape == d.t.shape
    torch.testing.assert_close(d.step[0, :-1], d.t[0, 1:] - d.t[0, :-1])
    # the targets are exactly the forward differences over those intervals
    torch.testing.assert_close(d.x[0, 1:] - d.x[0, :-1], d.dx[0, :-1] * d.step[0, :-1, None])
