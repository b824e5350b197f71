import math

import pytest
import torch

from hnnkit.metrics import (
    derivative_mse,
    energy_drift,
    group_sem,
    mean_sem,
    rollout_mse,
    valid_prediction_time,
)


def test_mean_sem_matches_hand_computation():
    v = torch.tensor([1.0, 2.0, 3.0, 4.0])
    out = mean_sem(v)
    assert out["mean"] == pytest.approx(2.5)
    assert out["sem"] == pytest.approx(math.sqrt(5 / 3) / 2)


def test_derivative_mse_uses_rows_for_the_standard_error():
    pred = torch.zeros(4, 2)
    target = torch.tensor([[1.0, 0.0], [0.0, 0.0], [2.0, 0.0], [0.0, 1.0]])
    out = derivative_mse(pred, target)
    sq = target.pow(2).flatten()
    assert out["mean"] == pytest.approx(sq.mean().item())
    assert out["sem"] == pytest.approx(sq.std().item() / 2)  # sqrt(N rows = 4)


def test_group_sem_is_the_notebooks_bootstrap_conf():
    v = torch.arange(15, dtype=torch.float64)
    means = v.reshape(5, 3).mean(1)
    assert group_sem(v) == pytest.approx(means.std(unbiased=False).item() / math.sqrt(5))
    with pytest.raises(ValueError, match="multiple of 5"):
        group_sem(torch.ones(7))


def test_rollout_metrics():
    t = torch.linspace(0, 1, 11)
    true = torch.ones(11, 2, 2)
    pred = true.clone()
    pred[6:, 0] += 1.0  # trajectory 0 leaves the truth at t = 0.6
    assert torch.allclose(rollout_mse(true, pred)[:, 1], torch.zeros(11))
    assert rollout_mse(true, pred)[10, 0] == pytest.approx(1.0)
    vpt = valid_prediction_time(t, true, pred, threshold=0.1)
    assert vpt[0] == pytest.approx(0.6) and vpt[1] == pytest.approx(1.0)
    e = torch.tensor([[2.0, 1.0], [3.0, 1.0]])
    assert torch.allclose(energy_drift(e), torch.tensor([0.5, 0.0]))
