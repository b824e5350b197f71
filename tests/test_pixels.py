"""Pixel pendulum: renderer geometry, preprocessing, dataset cache, autoencoder and latent HNN."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from hnnkit.data import pixels as px
from hnnkit.errors import DataFileError, HnnkitValueError, UnknownNameError
from hnnkit.experiments.pixel_pendulum import run_pixel_pendulum, train_pixel_model
from hnnkit.models.autoencoder import MLPAutoencoder, PixelHNN
from hnnkit.systems.pixel import (
    PendulumGeometry,
    bob_pixel_position,
    pendulum_coverage,
    render_pendulum,
)

BOB_ONLY = PendulumGeometry(rod_width=0.0, axle_radius=0.0)


def _centroid(img: torch.Tensor) -> torch.Tensor:
    """Intensity-weighted centroid (row, col) of ``(..., H, W)`` images, pixel (i, j) at (i, j)."""
    h, w = img.shape[-2:]
    rows = torch.arange(h, dtype=img.dtype)[:, None]
    cols = torch.arange(w, dtype=img.dtype)[None, :]
    m = img.sum((-2, -1))
    return torch.stack([(img * rows).sum((-2, -1)) / m, (img * cols).sum((-2, -1)) / m], -1)


# -- renderer -------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [400, 64])
def test_bob_centroid_is_at_the_analytic_position(size):
    theta = torch.tensor([0.0, 0.3, -0.7, math.pi / 2, 2.5, -math.pi])
    img = render_pendulum(theta, size, geometry=BOB_ONLY, channels="red-green", as_uint8=False)
    err = (_centroid(img.double()) - bob_pixel_position(theta, size, geometry=BOB_ONLY)).abs()
    assert err.max() < 0.05  # far inside the ~1 px the issue asks for


def test_geometry_and_angle_convention():
    size = 400
    r0 = c0 = (size - 1) / 2
    scale = size / 4.4  # world square [-2.2, 2.2], rod length 1
    pos = bob_pixel_position(
        torch.tensor([0.0, math.pi / 2, -math.pi / 2, math.pi], dtype=torch.float64), size
    )
    expected = torch.tensor(
        [[r0 + scale, c0], [r0, c0 + scale], [r0, c0 - scale], [r0 - scale, c0]],
        dtype=torch.float64,
    )
    torch.testing.assert_close(pos, expected)  # 0 = down, +pi/2 = bob to the right


def test_coverage_is_antialiased_and_has_the_right_area():
    size = 400
    g = PendulumGeometry()
    s = g.scale(size)
    cov = pendulum_coverage(torch.tensor(0.37), size)
    # the bob's coverage sums to its analytic area in pixels
    assert float(cov["bob"].sum()) == pytest.approx(math.pi * (s * g.bob_radius) ** 2, rel=2e-3)
    # the rod (a capsule): length x width plus a disc at each end
    rod_area = s * g.length * s * g.rod_width + math.pi * (s * g.rod_width / 2) ** 2
    assert float(cov["rod"].sum()) == pytest.approx(rod_area, rel=2e-3)
    # gray levels strictly between background and rod exist, and only on the rod's edge
    rod_only = PendulumGeometry(bob_radius=0.0, axle_radius=0.0)
    theta = 0.37
    rg = render_pendulum(
        torch.tensor(theta), size, geometry=rod_only, channels="red-green", as_uint8=False
    )
    partial = (rg > 0.005) & (rg < 0.495)
    rows, cols = torch.nonzero(partial, as_tuple=True)
    r0 = c0 = (size - 1) / 2
    along = ((rows - r0) * math.cos(theta) + (cols - c0) * math.sin(theta)).clamp(0, s * g.length)
    dist = torch.hypot(rows - r0 - along * math.cos(theta), cols - c0 - along * math.sin(theta))
    assert rows.numel() > 2 * s * g.length  # both long edges are antialiased
    assert float((dist - s * g.rod_width / 2).abs().max()) < 0.75  # ... and nothing else is gray


def test_window_equals_crop_and_red_green_equals_r_minus_g():
    theta = torch.tensor([0.1, -0.4])
    full = render_pendulum(theta, 120, as_uint8=False)
    box = px.crop_box(120)
    win = render_pendulum(theta, 120, window=box, as_uint8=False)
    torch.testing.assert_close(win, full[:, box[0] : box[1], box[2] : box[3]])
    rg = render_pendulum(theta, 120, channels="red-green", as_uint8=False)
    torch.testing.assert_close(rg, full[..., 0] - full[..., 1])
    u8 = render_pendulum(theta, 120)
    assert u8.dtype == torch.uint8 and u8.shape == (2, 120, 120, 3)


def test_renderer_errors():
    with pytest.raises(HnnkitValueError, match="size must be an integer"):
        render_pendulum(torch.tensor([0.0]), 1)
    with pytest.raises(HnnkitValueError, match="window"):
        render_pendulum(torch.tensor([0.0]), 50, window=(10, 5, 0, 50))
    with pytest.raises(HnnkitValueError, match="NaN"):
        render_pendulum(torch.tensor([float("nan")]), 50)
    with pytest.raises(HnnkitValueError, match="channels"):
        render_pendulum(torch.tensor([0.0]), 50, channels="gray")
    with pytest.raises(HnnkitValueError, match="bob_radius"):
        PendulumGeometry(bob_radius=-1)


# -- physics and preprocessing ---------------------------------------------------------------
def test_simulation_conserves_energy_and_has_the_gym_frequency():
    theta, omega = px.simulate_pendulum(torch.tensor([1e-3, 0.5]), torch.tensor([0.0, 0.3]), 200)
    e = px.pixel_pendulum_energy(torch.stack([theta, 0.25 * omega], -1))
    assert float((e - e[:, :1]).abs().max()) < 1e-9
    # small angle: theta = 1e-3 cos(sqrt(15) t) up to the anharmonic shift (~2e-9 here);
    # t = 0.05 s per frame, omega^2 = 3g/(2l) = 15
    t = torch.arange(200, dtype=torch.float64) * 0.05
    torch.testing.assert_close(theta[0], 1e-3 * torch.cos(math.sqrt(15) * t), atol=1e-8, rtol=0)


def test_gym_dynamics_is_gyms_update():
    th, om = px.simulate_pendulum(torch.tensor([0.2]), torch.tensor([0.5]), 3, dynamics="gym")
    a, w = 0.2, 0.5
    for k in range(1, 3):
        w = (
            w + (-3 * 10 / 2 * math.sin(a)) * 0.05
        )  # gym: -3g/(2l) sin(th + pi) with th = theta - pi
        a = a + w * 0.05
        assert float(th[0, k]) == pytest.approx(a) and float(om[0, k]) == pytest.approx(w)
    with pytest.raises(UnknownNameError, match="dynamics"):
        px.simulate_pendulum(torch.tensor([0.2]), torch.tensor([0.5]), 3, dynamics="euler")


def test_area_resize():
    m = px.area_resize_matrix(136, 28)
    torch.testing.assert_close(m.sum(1), torch.ones(28, dtype=torch.float64))
    img = torch.arange(16.0).reshape(4, 4)
    torch.testing.assert_close(px.resize_area(img, 2), torch.tensor([[2.5, 4.5], [10.5, 12.5]]))
    assert px.crop_box(1000) == (440, 780, 330, 670)  # the original's [440:-220, 330:-330]


# -- dataset ---------------------------------------------------------------------------------
SMALL = {"n_trajectories": 5, "n_frames": 8, "size": 12, "render_size": 48}


def test_dataset_shapes_and_alignment():
    d = px.pixel_pendulum_dataset(**SMALL)
    assert d.frames.shape == (5, 8, 12, 12) and d.coords.shape == (5, 8, 2)
    assert int(d.test_mask.sum()) == 1 and bool(d.test_mask[-1])
    tr = d.train
    assert tr.x.shape == (4 * 6, 2 * 144) and tr.coords.shape == (24, 2)
    # sample j of trajectory 0 = [frame_j, frame_j+1]; x_next shifts by one frame
    torch.testing.assert_close(tr.x[3, :144], d.frames[0, 3].flatten())
    torch.testing.assert_close(tr.x[3, 144:], tr.x_next[3, :144])
    torch.testing.assert_close(tr.coords[3], d.coords[0, 3])
    assert float(d.frames.max()) == pytest.approx(
        128 / 255
    )  # R - G of the red rod, as in the original
    with pytest.raises(HnnkitValueError, match="n_frames"):
        px.pixel_pendulum_dataset(n_trajectories=4, n_frames=2)


def test_cache_round_trip_and_corrupted_cache(tmp_path, monkeypatch):
    d1 = px.pixel_pendulum_dataset(**SMALL, cache=tmp_path)
    (path,) = tmp_path.glob("pixel-pendulum-*.npz")

    def boom(*args, **kwargs):
        raise AssertionError("regenerated although a valid cache exists")

    monkeypatch.setattr(px, "simulate_pixel_pendulum", boom)
    d2 = px.pixel_pendulum_dataset(**SMALL, cache=tmp_path)
    torch.testing.assert_close(d1.frames, d2.frames)
    torch.testing.assert_close(d1.coords, d2.coords)
    assert d1.config == d2.config
    monkeypatch.undo()

    path.write_bytes(path.read_bytes()[:200])  # truncated
    with pytest.warns(UserWarning, match="regenerating"):
        d3 = px.pixel_pendulum_dataset(**SMALL, cache=tmp_path)
    torch.testing.assert_close(d1.frames, d3.frames)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rewritten, so the next load is clean
        px.pixel_pendulum_dataset(**SMALL, cache=tmp_path)


def test_cache_default_directory_comes_from_env(tmp_path, monkeypatch):
    monkeypatch.setenv("HNNKIT_CACHE", str(tmp_path / "c"))
    px.pixel_pendulum_dataset(**SMALL, cache=True)
    assert len(list((tmp_path / "c").glob("pixel-pendulum-*.npz"))) == 1


# -- models ----------------------------------------------------------------------------------
def test_autoencoder_shapes(gen):
    ae = MLPAutoencoder(1568, 2, 200, generator=gen)
    assert sum(isinstance(m, torch.nn.Linear) for m in ae.modules()) == 8  # 4 + 4, as the original
    x = torch.rand(5, 1568)
    assert ae.encode(x).shape == (5, 2)
    assert ae.decode(ae.encode(x)).shape == (5, 1568) and ae(x).shape == (5, 1568)
    assert ae.encode(x[0]).shape == (2,)
    with pytest.raises(HnnkitValueError, match="1568"):
        ae.encode(torch.rand(5, 100))
    m = PixelHNN(1568, generator=gen)
    assert m.vector_field(None, torch.rand(7, 2)).shape == (7, 2)


def test_latent_hnn_field_is_j_grad_h(gen):
    model = PixelHNN(32, ae_hidden=16, latent_hidden=(24, 24), generator=gen).double()
    z = torch.randn(6, 2, dtype=torch.float64, generator=gen)
    eps = 1e-6
    grad = torch.zeros_like(z)
    for i in range(2):
        dz = torch.zeros_like(z)
        dz[:, i] = eps
        grad[:, i] = (model.hamiltonian(z + dz) - model.hamiltonian(z - dz)) / (2 * eps)
    expected = torch.stack([grad[:, 1], -grad[:, 0]], -1)  # (dH/dp, -dH/dq)
    torch.testing.assert_close(model.vector_field(None, z), expected, atol=1e-8, rtol=1e-6)
    base = PixelHNN(32, baseline=True, ae_hidden=16, latent_hidden=(8,), generator=gen)
    with pytest.raises(HnnkitValueError, match="no Hamiltonian"):
        base.hamiltonian(z.float())


def test_loss_terms_are_the_originals(gen):
    model = PixelHNN(20, ae_hidden=8, latent_hidden=(8,), generator=gen)
    x, xn = torch.rand(4, 20, generator=gen), torch.rand(4, 20, generator=gen)
    t = model.losses(x, xn)
    z, zn = model.encode(x), model.encode(xn)
    torch.testing.assert_close(t["reconstruction"], (x - model.decode(z)).pow(2).mean(1))
    torch.testing.assert_close(t["velocity"], (z[:, 1] - (zn[:, 0] - z[:, 0])).pow(2))
    torch.testing.assert_close(t["dynamics"], (zn - z - model.vector_field(None, z)).pow(2).mean(1))
    torch.testing.assert_close(
        t["total"], t["reconstruction"] + t["velocity"] + 0.1 * t["dynamics"]
    )


def test_rollout_shapes(gen):
    model = PixelHNN(50, ae_hidden=8, latent_hidden=(8,), generator=gen)
    x0 = torch.rand(3, 50, generator=gen)
    z, x = model.rollout(x0, 5)
    assert z.shape == (5, 3, 2) and x.shape == (5, 3, 50)
    with torch.no_grad():
        torch.testing.assert_close(z[0], model.encode(x0))
        torch.testing.assert_close(x, model.decode(z))


def test_tiny_training_run_reduces_the_loss(gen):
    data = px.pixel_pendulum_dataset(n_trajectories=6, n_frames=12, size=10, render_size=40)
    model = PixelHNN(data.input_dim, ae_hidden=32, latent_hidden=(16, 16), generator=gen)
    hist = train_pixel_model(model, data, steps=60, generator=gen, batch_size=32, log_every=60)
    assert hist[-1]["train_loss"] < 0.5 * hist[0]["train_loss"]
    assert hist[-1]["test_loss"] < 0.5 * hist[0]["test_loss"]


def test_a_killed_pixel_run_resumes_to_the_uninterrupted_result(tmp_path):
    data = px.pixel_pendulum_dataset(n_trajectories=4, n_frames=8, size=8, render_size=32)

    def run(ckpt, kill_at=None):
        gen = torch.Generator().manual_seed(3)
        model = PixelHNN(data.input_dim, ae_hidden=16, latent_hidden=(8, 8), generator=gen)
        if kill_at is not None:
            calls, loss = [0], model.loss

            def dying_loss(*args):
                calls[0] += 1
                if calls[0] == kill_at:
                    raise KeyboardInterrupt  # the kill, after the checkpoint at step 6
                return loss(*args)

            model.loss = dying_loss
        hist = train_pixel_model(
            model,
            data,
            steps=10,
            generator=gen,
            batch_size=8,
            log_every=2,
            checkpoint=ckpt,
            checkpoint_every=3,
        )
        return model, hist

    reference, ref_hist = run(tmp_path / "whole.pt")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "killed.pt", kill_at=12)  # the 12th loss call is step 7's training loss
    assert torch.load(tmp_path / "killed.pt", weights_only=True)["step"] == 6
    resumed, hist = run(tmp_path / "killed.pt")
    for a, b in zip(reference.parameters(), resumed.parameters(), strict=True):
        assert torch.equal(a, b)
    assert [r["step"] for r in hist] == [r["step"] for r in ref_hist] == [0, 2, 4, 6, 8, 10]
    assert [r["train_loss"] for r in hist] == [r["train_loss"] for r in ref_hist]
    again, _ = run(tmp_path / "killed.pt")  # finished: nothing left to do
    assert all(
        torch.equal(a, b) for a, b in zip(resumed.parameters(), again.parameters(), strict=True)
    )
    with pytest.raises(HnnkitValueError, match="cannot resume"):
        gen = torch.Generator().manual_seed(3)
        model = PixelHNN(data.input_dim, ae_hidden=16, latent_hidden=(8, 8), generator=gen)
        train_pixel_model(model, data, steps=20, generator=gen, checkpoint=tmp_path / "whole.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataFileError, match="corrupted"):
        train_pixel_model(model, data, steps=20, generator=gen, checkpoint=tmp_path / "bad.pt")


def test_run_pixel_pendulum_smoke(tmp_path):
    res = run_pixel_pendulum(tmp_path / "run", profile="smoke", seed=0, cache=False)
    for kind in ("baseline", "hnn"):
        m = res["models"][kind]
        assert all(math.isfinite(m[k]["mean"]) for k in ("train_loss", "test_loss", "energy"))
    names = {p.rsplit("/", 1)[-1] for p in res["figures"]}
    assert {"pixel-pendulum-fig8.png", "pixel-pendulum-fig8.svg", "pixel-pendulum.gif"} <= names
    assert (tmp_path / "run" / "metrics.json").exists() and (
        tmp_path / "run" / "hnn" / "log.csv"
    ).exists()
    with pytest.raises(UnknownNameError, match="profile"):
        run_pixel_pendulum(tmp_path / "x", profile="huge")


def test_hnnkit_evaluate_recomputes_a_pixel_model_directory(tmp_path, monkeypatch, capsys):
    import json

    from hnnkit.cli import main

    monkeypatch.setenv("HNNKIT_CACHE", str(tmp_path / "cache"))
    res = run_pixel_pendulum(tmp_path / "run", profile="smoke", seed=0, cache=False)
    for kind, name in (("baseline", "pixel-baseline"), ("hnn", "pixel-hnn")):
        run = tmp_path / "run" / kind
        cfg = json.loads((run / "config.json").read_text())
        assert cfg["model"] == name and cfg["seed"] == 0 and "provenance" in cfg
        assert cfg["pixels"] == res["config"]["data"]
        recorded = res["models"][kind]
        (run / "metrics.json").unlink()  # evaluate writes it again from the checkpoint alone
        assert main(["evaluate", str(run)]) == 0
        assert "test_loss" in capsys.readouterr().out
        got = json.loads((run / "metrics.json").read_text())
        for key in ("train_loss", "test_loss", "energy"):
            assert got[key]["mean"] == pytest.approx(recorded[key]["mean"], rel=1e-12, abs=0)
        assert main(["evaluate", str(run), "--t-span", "0", "5"]) == 2  # not for a pixel run
    # a config that does not describe the checkpoint is refused
    run = tmp_path / "run" / "hnn"
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**cfg, "options": {"ae_hidden": 64}}))
    assert main(["evaluate", str(run)]) == 2
    assert "does not describe" in capsys.readouterr().err


def test_the_task_builds_its_models_through_the_registry():
    from hnnkit.experiments import pixel_pendulum as pp
    from hnnkit.models import get_model, list_models

    assert set(pp.REGISTERED) == set(pp.MODELS)
    assert set(pp.REGISTERED.values()) == set(list_models(data="pixels"))
    paper = pp.PROFILES["paper"]
    for name in pp.REGISTERED.values():
        # the registry lists the paper profile's training settings
        assert dict(get_model(name).defaults) == {
            "optimizer": "adam",
            "steps": paper.steps,
            "weight_decay": paper.weight_decay,
        }
    assert get_model("pixel-baseline").builder(8, generator=None).baseline
    assert not get_model("pixel-hnn").builder(8, generator=None).baseline
