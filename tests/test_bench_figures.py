"""The sweep figures: error against time and against the data set's size, from cell records."""

import math

import numpy as np
import pytest

from hnnkit.report import bench_figures
from hnnkit.report.leaderboard import confidence_interval


def record(model, n, seed, test_loss, rollout):
    return {
        "status": "ok",
        "cell": {"model": model, "n_trajectories": n, "seed": seed},
        "metrics": {
            "test_loss": {"mean": test_loss},
            "rollout_mse": {"mean": rollout},
        },
    }


@pytest.fixture
def captured(monkeypatch):
    """The figure each call draws, kept open instead of saved."""
    figures = []

    def keep(fig, path_stem):
        figures.append(fig)
        return [path_stem]

    monkeypatch.setattr(bench_figures, "_save_png", keep)
    return figures


def test_data_efficiency_draws_each_models_mean_and_interval_per_size(captured):
    sizes = [10, 20, 40]
    loss = {"baseline": {10: [0.4, 0.5], 20: [0.2, 0.3], 40: [0.1, 0.12]}}
    loss["hnn"] = {n: [v / 4 for v in vals] for n, vals in loss["baseline"].items()}
    records = [
        record(m, n, s, v, 10 * v) for m in loss for n in sizes for s, v in enumerate(loss[m][n])
    ]
    assert bench_figures.data_efficiency(records, ["baseline", "hnn"], sizes, "x", title="t")
    (fig,) = captured
    ax = fig.axes[0]  # test loss
    lines = [line for line in ax.get_lines() if line.get_marker() == "o"]  # not the bars' caps
    assert len(lines) == 2
    for line, model, sign in zip(lines, ["baseline", "hnn"], (-1, 1), strict=True):
        x = np.asarray(line.get_xdata(), dtype=float)
        y = np.asarray(line.get_ydata(), dtype=float)
        # side by side: each model a little off the size, on opposite sides
        np.testing.assert_allclose(x, np.array(sizes) * bench_figures.DODGE ** (sign / 2))
        means = [confidence_interval(loss[model][n]).mean for n in sizes]
        np.testing.assert_allclose(y, means)
    assert ax.get_xscale() == "log"
    assert "held out" in ax.get_xlabel()


def test_data_efficiency_needs_two_sizes():
    assert bench_figures.data_efficiency([], ["hnn"], [10], "x", title="t") is None


def test_error_vs_time_draws_the_mean_over_seeds(captured):
    t = [0.0, 1.0, 2.0]
    records = [
        {
            "status": "ok",
            "cell": {"model": "hnn"},
            "curves": {"t": t, "rollout_mse": [0.0, k, 2 * k], "energy_mse": [0.0, 1e-5, 1e-2]},
        }
        for k in (1.0, 3.0)
    ]
    assert bench_figures.error_vs_time(records, ["hnn"], "x", title="t")
    (fig,) = captured
    (line,) = fig.axes[0].get_lines()
    np.testing.assert_allclose(line.get_ydata(), [0.0, 2.0, 4.0])
    assert fig.axes[1].get_yscale() == "log"  # energy spans two decades and more
    assert not math.isnan(float(np.asarray(fig.axes[1].get_lines()[0].get_ydata())[-1]))
