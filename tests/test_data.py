import math
import warnings

import numpy as np
import pytest
import scipy.integrate
import torch

from hnnkit.data import Dataset, cache_dir, from_arrays, generate
from hnnkit.errors import DataFileError
from hnnkit.systems import Spring, TwoBody


def test_spring_defaults_follow_the_original_code():
    d = generate("spring", seed=0)
    assert d.x.shape == (50, 30, 2)
    assert torch.allclose(d.t[0], torch.linspace(0, 3, 30, dtype=torch.float64))
    # split by whole trajectories, last half held out
    assert d.test_mask[25:].all() and not d.test_mask[:25].any()
    assert d.split("train")[0].shape == (750, 2) and d.split("test")[0].shape == (750, 2)
    # phase-space radius in [0.1, 1] -> H = r^2 in [0.01, 1], constant along each clean trajectory
    e = Spring().energy(d.x_clean)
    assert (e.min() >= 0.01 - 1e-12) and (e.max() <= 1 + 1e-12)
    assert torch.allclose(e, e[:, :1].expand_as(e), atol=1e-12)
    # noise is a standard deviation of 0.1 on the inputs only
    resid = d.x - d.x_clean
    assert abs(resid.std().item() - 0.1) < 0.005
    assert torch.allclose(d.dx, Spring().vector_field(0, d.x_clean))


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = (
        generate("pendulum", seed=3),
        generate("pendulum", seed=3),
        generate("pendulum", seed=4),
    )
    assert torch.equal(a.x, b.x) and torch.equal(a.dx, b.dx)
    assert not torch.allclose(a.x, c.x)
    assert a.x.shape == (50, 45, 2)


def test_two_body_integration_matches_scipy_per_trajectory():
    d = generate(TwoBody(), n_trajectories=3, n_points=50, seed=1)
    assert d.x.shape == (3, 50, 8) and torch.equal(d.x, d.x_clean)  # no observation noise
    s = TwoBody()
    for i in range(3):
        ref = scipy.integrate.solve_ivp(
            lambda t, y: s.vector_field(t, torch.from_numpy(y)).numpy(),
            (0, 20),
            d.x_clean[i, 0].numpy(),
            t_eval=np.linspace(0, 20, 50),
            method="DOP853",
            rtol=1e-12,
            atol=1e-12,
        )
        assert np.abs(ref.y.T - d.x_clean[i].numpy()).max() < 1e-7


def test_cache_round_trip_and_corruption_is_regenerated(tmp_path, monkeypatch):
    monkeypatch.setenv("HNNKIT_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    a = generate("spring", n_trajectories=6, seed=0, cache=True)
    files = list((tmp_path / "c").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"
    b = generate("spring", n_trajectories=6, seed=0, cache=True)
    assert torch.equal(a.x, b.x) and a.config == b.config
    files[0].write_bytes(files[0].read_bytes()[:200])  # truncate: a killed writer
    with pytest.warns(UserWarning, match="corrupted"):
        c = generate("spring", n_trajectories=6, seed=0, cache=True)
    assert torch.equal(a.x, c.x)
    assert [p.name for p in (tmp_path / "c").iterdir()] == [files[0].name]  # no temp files left


def test_save_load_npz_and_checksum(tmp_path):
    d = generate("spring", n_trajectories=4, seed=0)
    path = d.save(tmp_path / "spring.npz")
    back = Dataset.load(path)
    assert torch.equal(back.x, d.x) and torch.equal(back.test_mask, d.test_mask)
    assert back.config == d.config
    raw = dict(np.load(path))
    raw["x"] = raw["x"] + 1.0
    np.savez(tmp_path / "tampered.npz", **raw)
    with pytest.raises(DataFileError, match="checksum"):
        Dataset.load(tmp_path / "tampered.npz")
    with pytest.raises(DataFileError, match="does not exist"):
        Dataset.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(DataFileError, match="corrupted"):
        Dataset.load(tmp_path / "junk.npz")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_trajectories": -5}, "n_trajectories"),
        ({"n_points": 1}, "n_points"),
        ({"noise_std": -0.1}, "noise_std"),
        ({"t_span": (3.0, 0.0)}, "t_span"),
        ({"test_fraction": 1.5}, "test_fraction"),
    ],
)
def test_bad_generation_arguments_name_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate("spring", **kwargs)


def test_unknown_system_and_method():
    with pytest.raises(KeyError, match="valid systems"):
        generate("sprnig")
    with pytest.raises(ValueError, match="valid integration methods"):
        generate("pendulum", n_trajectories=3, method="rk5")


def test_from_arrays_estimates_derivatives_to_second_order():
    errs = []
    for n in (50, 100):
        t = torch.linspace(0, 2 * math.pi, n, dtype=torch.float64)
        states = torch.stack([torch.sin(t), torch.cos(t)], -1)
        d = from_arrays(states, t=t, test_fraction=0.2)
        exact = torch.stack([torch.cos(t), -torch.sin(t)], -1)
        errs.append((d.dx[0] - exact).abs().max().item())
        assert (
            d.test_mask[0, -round(0.2 * n) :].all()
            and not d.test_mask[0, : n - round(0.2 * n)].any()
        )
    assert errs[0] < 1e-2
    assert 3.0 < errs[0] / errs[1] < 5.0  # halving h divides the error by ~4


def test_nan_in_user_data_is_rejected():
    states = torch.zeros(2, 5, 2)
    states[1, 3, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        from_arrays(states, derivatives=torch.zeros(2, 5, 2))
    with pytest.raises(ValueError, match="shape"):
        from_arrays(torch.zeros(5))


def test_callable_custom_system_is_never_cached(tmp_path):
    from hnnkit.systems import Custom

    s = Custom(lambda q, p: (q**2 + p**2).sum(-1))
    with pytest.warns(UserWarning, match="not cached .*Python callable"):
        generate(s, n_trajectories=3, cache=tmp_path)
    assert not any(tmp_path.iterdir())
    with warnings.catch_warnings():  # no cache asked for: nothing to warn about
        warnings.simplefilter("error")
        generate(s, n_trajectories=3)
