import pytest
import torch

from hnnkit.data import generate
from hnnkit.errors import DataFileError, NonFiniteLossError
from hnnkit.integrate import odeint
from hnnkit.models import HNN, Baseline
from hnnkit.models.kan import find_kan
from hnnkit.train import fit, load_checkpoint


@pytest.fixture(scope="module")
def spring():
    return generate("spring", n_trajectories=10, noise_std=0.0, seed=0)


def _model(kind="hnn", seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        HNN(2, hidden=(32, 32), generator=g)
        if kind == "hnn"
        else Baseline(2, hidden=(32, 32), generator=g)
    )


@pytest.mark.parametrize("kind", ["hnn", "baseline"])
def test_training_reduces_the_loss_and_is_deterministic(spring, kind):
    a = fit(_model(kind), spring, steps=60, lr=3e-3, log_every=20)
    b = fit(_model(kind), spring, steps=60, lr=3e-3, log_every=20)
    assert a.train_loss == b.train_loss and a.test_loss == b.test_loss
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert a.history[-1]["train_loss"] < 0.3 * a.history[0]["train_loss"]
    assert [h["step"] for h in a.history] == [20, 40, 60]


def test_minibatches_follow_the_seed(spring):
    a = fit(_model(), spring, steps=10, batch_size=50, seed=1)
    b = fit(_model(), spring, steps=10, batch_size=50, seed=1)
    c = fit(_model(), spring, steps=10, batch_size=50, seed=2)
    assert a.train_loss == b.train_loss != c.train_loss


def test_resume_after_a_kill_equals_an_uninterrupted_run(spring, tmp_path):
    full = fit(_model(), spring, steps=30, batch_size=64, log_every=5, run_dir=tmp_path / "full")

    class Killed(Exception):
        pass

    def kill_at_17(step, loss):
        if step == 17:
            raise Killed

    with pytest.raises(Killed):
        fit(
            _model(),
            spring,
            steps=30,
            batch_size=64,
            log_every=5,
            run_dir=tmp_path / "r",
            callbacks=[kill_at_17],
        )
    assert load_checkpoint(tmp_path / "r" / "checkpoint.pt")["step"] == 15
    resumed = fit(
        _model(seed=99),
        spring,
        steps=30,
        batch_size=64,
        log_every=5,
        run_dir=tmp_path / "r",
        resume=True,
    )
    for pa, pb in zip(full.model.parameters(), resumed.model.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert resumed.test_loss == full.test_loss
    assert [h["step"] for h in resumed.history] == [5, 10, 15, 20, 25, 30]
    log = (tmp_path / "r" / "log.csv").read_text().splitlines()
    assert log[0].startswith("step,") and len(log) == 7


def test_resume_with_other_settings_is_refused(spring, tmp_path):
    fit(_model(), spring, steps=5, run_dir=tmp_path)
    with pytest.raises(ValueError, match="cannot resume"):
        fit(_model(), spring, steps=5, lr=0.1, run_dir=tmp_path, resume=True)


def test_non_finite_loss_names_the_step_and_keeps_the_checkpoint(spring, tmp_path):
    model = _model()

    def explode(step, loss):
        if step == 6:
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))

    with pytest.raises(NonFiniteLossError, match="at step 7") as info:
        fit(model, spring, steps=20, log_every=5, run_dir=tmp_path, callbacks=[explode])
    assert info.value.checkpoint.endswith("checkpoint.pt")
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["step"] == 5 and all(torch.isfinite(v).all() for v in state["model"].values())


def test_corrupt_or_missing_checkpoint_is_explained(tmp_path):
    with pytest.raises(DataFileError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "bad.pt").write_bytes(b"\x80\x02garbage")
    with pytest.raises(DataFileError, match="corrupted"):
        load_checkpoint(tmp_path / "bad.pt")


def test_bad_arguments(spring):
    with pytest.raises(ValueError, match="valid optimizers"):
        fit(_model(), spring, optimizer="sgd")
    with pytest.raises(ValueError, match="full-batch"):
        fit(_model(), spring, optimizer="lbfgs", batch_size=10)
    with pytest.raises(ValueError, match="steps"):
        fit(_model(), spring, steps=-1)
    with pytest.raises(ValueError, match="run_dir"):
        fit(_model(), spring, resume=True)


def test_lbfgs_fits_noise_free_spring(spring):
    r = fit(_model(), spring, optimizer="lbfgs", lr=1.0, steps=5, log_every=5)
    assert r.train_loss < 1e-4


def test_trained_hnn_conserves_its_own_energy_along_rk4(spring):
    model = HNN(2, hidden=(32, 32), generator=torch.Generator().manual_seed(0)).double()
    fit(model, spring, optimizer="lbfgs", lr=1.0, steps=5, log_every=5)
    x0 = torch.tensor([[1.0, 0.0], [0.3, -0.5]], dtype=torch.float64)
    t = torch.linspace(0, 10, 101, dtype=torch.float64)
    with torch.no_grad():
        traj = odeint(model.vector_field, x0, t, method="rk4", substeps=10)
        h = model.hamiltonian(traj)
    rel = ((h - h[0]).abs() / (h[0].abs() + 1e-12)).max()
    assert rel < 1e-4


# -- train_with_restarts: checkpoints and resume of a multi-stage schedule ---------------------


class _Killed(Exception):
    pass


def _kan_schedule(data, checkpoint=None, *, resume=False, kill_at=None, **schedule):
    """A KAN-HNN through 2 restart candidates, a warm-up and two grid sizes (5, then 7)."""
    from hnnkit.models import build_model
    from hnnkit.models.kan import kan_regularizer
    from hnnkit.train import restart_seed, train_with_restarts

    x = data.split("train")[0].double()
    calls = [0]

    def kill(step, loss):  # counts the steps of every part, candidates included
        calls[0] += 1
        if calls[0] == kill_at:
            raise _Killed

    def build(r):
        gen = torch.Generator().manual_seed(restart_seed(0, r))
        model = build_model("kan", 2, generator=gen, widths=(2, 1, 1), x=x)
        return model, kan_regularizer(x, 1e-4)

    settings = {
        "steps": 12,
        "restarts": 2,
        "restart_steps": 2,
        "grids": (5, 7),
        "log_every": 2,
        "plateau_chunk": 3,
    }
    return train_with_restarts(
        build,
        data,
        **{**settings, **schedule},
        fit_options={"lbfgs_max_iter": 5, "callbacks": [kill]},
        checkpoint=checkpoint,
        resume=resume,
    )


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_killed_schedule_resumes_to_the_uninterrupted_result(spring, tmp_path):
    reference, log = _kan_schedule(spring)  # no checkpoint at all
    again, log_again = _kan_schedule(spring, tmp_path / "full.pt")
    assert _same(reference, again)  # checkpointing changes nothing
    assert [h["step"] for h in log["history"]] == [h["step"] for h in log_again["history"]]
    assert find_kan(reference).grid_size == 7 and len(log["restart_objectives"]) == 2
    # steps 1-2 and 3-4: the candidates; 5: the warm-up; 6-9: grid 5 in chunks of 3 and 1;
    # 10-14: grid 7. Killed anywhere, the resumed run ends where the uninterrupted one does.
    for kill_at in (1, 3, 5, 7, 9, 11):
        ckpt = tmp_path / f"killed-{kill_at}.pt"
        with pytest.raises(_Killed):
            _kan_schedule(spring, ckpt, kill_at=kill_at)
        resumed, log_resumed = _kan_schedule(spring, ckpt, resume=True)
        assert _same(reference, resumed), kill_at
        assert log_resumed["restart_objectives"] == log["restart_objectives"]
        assert log_resumed["restart_chosen"] == log["restart_chosen"]
        assert [h["step"] for h in log_resumed["history"]] == [h["step"] for h in log["history"]]
        assert [h["train_loss"] for h in log_resumed["history"]] == [
            h["train_loss"] for h in log["history"]
        ]
    # a finished run resumed again trains no further
    done, _ = _kan_schedule(spring, tmp_path / "full.pt", resume=True, kill_at=1)
    assert _same(reference, done)


def test_a_schedule_resumes_only_its_own_checkpoint(spring, tmp_path):
    ckpt = tmp_path / "c.pt"
    with pytest.raises(_Killed):
        _kan_schedule(spring, ckpt, kill_at=3)
    with pytest.raises(ValueError, match=r"cannot resume.*schedule"):
        _kan_schedule(spring, ckpt, resume=True, steps=14)
    fit(_model(), spring, steps=2, checkpoint=tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="holds no training schedule"):
        _kan_schedule(spring, tmp_path / "plain.pt", resume=True)
