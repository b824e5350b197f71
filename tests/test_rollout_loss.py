"""The rollout loss: windows of consecutive states, k steps of an integrator, options in fit,
TrainSpec and the command line."""

import json

import pytest
import torch

from hnnkit.cli import main
from hnnkit.data import Dataset, from_arrays, generate
from hnnkit.errors import HnnkitValueError, UnknownNameError
from hnnkit.experiments.spec import Experiment, TrainSpec, resolve_train
from hnnkit.models import HNN, Baseline
from hnnkit.systems import Spring
from hnnkit.train import fit, get_loss, rollout_loss, rollout_windows

ROLLOUT = get_loss("rollout")


@pytest.fixture(scope="module")
def clean_spring():
    return generate("spring", n_trajectories=6, noise_std=0.0, seed=0).to(dtype=torch.float64)


def _uneven_spring(seed=0, n_traj=4, n_points=25):
    """Spring trajectories observed at random, uneven times (exact solution)."""
    system = Spring()
    g = torch.Generator().manual_seed(seed)
    x0 = system.sample_initial(n_traj, generator=g).double()
    gaps = 0.02 + 0.2 * torch.rand(n_traj, n_points - 1, generator=g, dtype=torch.float64)
    t = torch.cat([torch.zeros(n_traj, 1, dtype=torch.float64), gaps.cumsum(1)], 1)
    x = torch.stack([system.exact_solution(t[i], x0[i]) for i in range(n_traj)])
    return system, from_arrays(x, system.vector_field(None, x), t, test_fraction=0.25)


def _windows(data, k):
    x, t = rollout_windows(data, k, "train")
    return {"x": x, "t": t}


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("rk4", {"substeps": 10}),
        ("dopri5", {"rtol": 1e-10, "atol": 1e-12}),
        ("leapfrog", {"substeps": 50}),
    ],
)
def test_the_true_field_scores_zero_and_a_wrong_one_does_not(clean_spring, method, options):
    opts = ROLLOUT.resolve_options({"k": 4, "method": method, **options}, "field")
    batch = _windows(clean_spring, 4)
    true = float(rollout_loss(Spring(), batch, opts))
    wrong = float(rollout_loss(Spring(k=2.4), batch, opts))
    tol = 1e-8 if method == "leapfrog" else 1e-14  # leapfrog is 2nd order: (h/50)^2 error
    assert true < tol
    assert wrong > 1e-4


def test_uneven_times_are_followed_window_by_window():
    system, data = _uneven_spring()
    assert not torch.allclose(data.t[0, 1:] - data.t[0, :-1], data.t[0, 1:2] - data.t[0, :1])
    batch = _windows(data, 3)
    for method, extra in (("rk4", {"substeps": 8}), ("dopri5", {"rtol": 1e-10, "atol": 1e-12})):
        opts = ROLLOUT.resolve_options({"k": 3, "method": method, **extra}, "field")
        assert float(rollout_loss(system, batch, opts)) < 1e-12
        assert float(rollout_loss(Spring(k=2.4), batch, opts)) > 1e-5
    # the uneven path agrees with integrating each window alone on its own times
    opts = ROLLOUT.resolve_options({"k": 3, "method": "rk4"}, "field")
    from hnnkit.integrate import odeint

    wrong = Spring(k=2.4)
    i = 5
    ref = odeint(wrong.vector_field, batch["x"][i, 0], batch["t"][i], method="rk4")[1:]
    one = {"x": batch["x"][i : i + 1], "t": batch["t"][i : i + 1]}
    assert float(rollout_loss(wrong, one, opts)) == pytest.approx(
        float((ref - batch["x"][i, 1:]).pow(2).mean()), rel=1e-10
    )


def test_the_gradient_flows_and_training_lowers_the_loss(clean_spring):
    model = HNN(2, hidden=(16,), generator=torch.Generator().manual_seed(0)).double()
    opts = ROLLOUT.resolve_options({"k": 3, "method": "leapfrog"}, "field")
    batch = _windows(clean_spring, 3)
    rollout_loss(model, batch, opts).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
    res = fit(
        model,
        clean_spring,
        loss="rollout",
        loss_options={"k": 3, "method": "leapfrog"},
        steps=60,
        lr=1e-2,
        log_every=60,
    )
    fresh = HNN(2, hidden=(16,), generator=torch.Generator().manual_seed(0)).double()
    first = float(rollout_loss(fresh, batch, opts).detach())
    assert res.train_loss < 0.5 * first


def test_windows_never_cross_the_split():
    # one trajectory whose middle is held out: windows lie wholly on one side
    t = torch.arange(20, dtype=torch.float64)
    x = torch.stack([t.sin(), t.cos()], -1).unsqueeze(0)
    mask = torch.zeros(1, 20, dtype=torch.bool)
    mask[0, 8:14] = True
    data = Dataset(x=x, dx=x.clone(), t=t.unsqueeze(0), test_mask=mask)
    for part, inside in (("train", ~mask[0]), ("test", mask[0])):
        xs, ts = rollout_windows(data, 3, part)
        allowed = set(t[inside].tolist())
        assert all(set(row.tolist()) <= allowed for row in ts)
        # consecutive points of one trajectory, states matching their times
        assert torch.equal(ts[:, 1:] - ts[:, :-1], torch.ones_like(ts[:, 1:]))
        assert torch.equal(xs[..., 0], ts.sin())
    assert rollout_windows(data, 3, "test")[0].shape[0] == 3  # 6 test points: 3 windows of 4
    assert rollout_windows(data, 3, "train")[0].shape[0] == 5 + 3  # 8 before, 6 after
    with pytest.raises(HnnkitValueError, match=r"longest run of test points in a trajectory is 6"):
        rollout_windows(data, 6, "test")


def test_a_rollout_longer_than_the_trajectories_is_refused(clean_spring):
    model = HNN(2, hidden=(8,), generator=torch.Generator().manual_seed(0))
    with pytest.raises(
        HnnkitValueError, match=r"k=30 needs windows of 31.*hold 30 points.*k <= 29"
    ):
        fit(model, clean_spring, loss="rollout", loss_options={"k": 30}, steps=1)


def test_bad_options_are_refused_with_the_valid_values(clean_spring):
    model = Baseline(2, hidden=(8,), generator=torch.Generator().manual_seed(0))
    with pytest.raises(UnknownNameError, match=r"rk4.*leapfrog.*model"):
        fit(model, clean_spring, loss="rollout", loss_options={"method": "rk45"}, steps=1)
    with pytest.raises(HnnkitValueError, match=r"this is a field model; use an integrator"):
        fit(model, clean_spring, loss="rollout", loss_options={"method": "model"}, steps=1)
    with pytest.raises(HnnkitValueError, match="no option kk; its options are k, method"):
        fit(model, clean_spring, loss="rollout", loss_options={"kk": 2}, steps=1)
    with pytest.raises(HnnkitValueError, match="k must be an integer >= 1"):
        fit(model, clean_spring, loss="rollout", loss_options={"k": 0}, steps=1)
    with pytest.raises(HnnkitValueError, match="takes no options"):
        fit(model, clean_spring, loss="derivative", loss_options={"k": 2}, steps=1)


def test_resume_refuses_other_options(clean_spring, tmp_path):
    def run(k, resume):
        model = HNN(2, hidden=(8,), generator=torch.Generator().manual_seed(0)).double()
        return fit(
            model,
            clean_spring,
            loss="rollout",
            loss_options={"k": k},
            steps=4,
            log_every=2,
            run_dir=tmp_path,
            resume=resume,
        )

    first = run(2, False)
    again = run(2, True)  # finished: nothing left, the same weights
    assert again.train_loss == first.train_loss
    with pytest.raises(HnnkitValueError, match="cannot resume"):
        run(3, True)


def test_the_spec_records_the_options_and_keeps_old_hashes(tmp_path):
    spec = {"data": {"system": "spring"}, "model": {"name": "hnn"}, "train": {"steps": 3}}
    plain = resolve_train(Experiment.from_dict(spec))
    assert plain.train.loss == "derivative" and plain.train.loss_options == {}
    assert "loss_options" not in plain.to_dict()["train"]  # as before losses had options
    spelled = resolve_train(
        Experiment.from_dict({**spec, "train": {"steps": 3, "loss": "derivative"}})
    )
    assert spelled.config_hash() == plain.config_hash()
    roll = resolve_train(
        Experiment.from_dict(
            {**spec, "train": {"steps": 3, "loss": "rollout", "loss_options": {"k": 2}}}
        )
    )
    assert roll.train.loss_options == {
        "k": 2,
        "method": "rk4",
        "substeps": 1,
        "rtol": 1e-5,
        "atol": 1e-6,
    }
    other = resolve_train(
        Experiment.from_dict(
            {**spec, "train": {"steps": 3, "loss": "rollout", "loss_options": {"k": 3}}}
        )
    )
    assert len({plain.config_hash(), roll.config_hash(), other.config_hash()}) == 3
    toml = tmp_path / "e.toml"
    toml.write_text(roll.to_toml())
    assert (
        Experiment.from_toml(toml) == roll
        and Experiment.from_toml(toml).config_hash() == roll.config_hash()
    )
    with pytest.raises(HnnkitValueError, match=r"train.loss_options: .*no option step"):
        TrainSpec(loss="rollout", loss_options={"step": 2})
    with pytest.raises(HnnkitValueError, match="takes no options"):
        TrainSpec(loss="derivative", loss_options={"k": 2})


SMALL = ["--n-trajectories", "4", "--n-points", "12", "--hidden", "8", "--quiet"]


def test_hnnkit_train_takes_the_loss_and_its_options(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "--system", "spring", "--model", "hnn", "--steps", "3", "--out", str(run)]
    opts = ["--loss", "rollout", "--loss-option", "k=3", "--loss-option", "method=leapfrog"]
    assert main([*argv, *opts, *SMALL]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["loss"] == "rollout" and cfg["loss_options"]["k"] == 3
    assert cfg["loss_options"]["method"] == "leapfrog"
    assert cfg["experiment"]["train"]["loss_options"] == cfg["loss_options"]
    # resume re-checks them
    assert main([*argv, "--loss", "rollout", "--loss-option", "k=2", "--resume", *SMALL]) == 2
    assert "loss_options" in capsys.readouterr().err
    assert main([*argv, *opts, "--resume", *SMALL]) == 0
    assert main(["evaluate", str(run)]) == 0
    # evaluate refuses a config.json whose loss options no longer describe the checkpoint
    edited = {**cfg, "loss_options": {**cfg["loss_options"], "k": 4}}
    (run / "config.json").write_text(json.dumps(edited))
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 2
    assert "loss_options" in capsys.readouterr().err
    # a rollout longer than the data is refused before any file is written
    bad = tmp_path / "bad"
    too_long = ["--loss", "rollout", "--loss-option", "k=12"]
    assert main([*argv[:-1], str(bad), *too_long, *SMALL]) == 2
    assert "k=12 needs windows of 13" in capsys.readouterr().err and not bad.exists()
    assert main([*argv[:-1], str(bad), "--loss-option", "k3", *SMALL]) == 2
    assert "--loss-option takes KEY=VALUE" in capsys.readouterr().err
