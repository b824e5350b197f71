import pytest
import torch

from hnnkit.data import generate
from hnnkit.errors import DataFileError, NonFiniteLossError
from hnnkit.integrate import odeint
from hnnkit.models import HNN, Baseline
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
