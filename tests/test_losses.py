"""The loss registry and batch adapters of hnnkit.train.fit."""

import pytest
import torch

from hnnkit.data import generate
from hnnkit.errors import UnknownNameError
from hnnkit.models import HNN
from hnnkit.train import LOSSES, StopTraining, fit, register_loss, write_log


@pytest.fixture(scope="module")
def spring():
    return generate("spring", n_trajectories=6, noise_std=0.0, seed=0)


def _hnn(seed=0):
    return HNN(2, hidden=(16,), generator=torch.Generator().manual_seed(seed))


def test_the_builtin_losses_are_registered():
    assert {"derivative", "through-step", "autoencoder"} <= set(LOSSES)


def test_a_registered_loss_is_what_fit_minimises(spring):
    calls = []

    def l1(model, batch):
        calls.append(sorted(batch))
        return (model.vector_field(None, batch["x"]) - batch["dx"]).abs().mean()

    register_loss("test-l1", l1, requires=("x", "dx"))
    res = fit(_hnn(), spring, loss="test-l1", steps=40, lr=3e-3, log_every=40)
    # 40 steps, then the log row's and the final train and test evaluations: 2 + 2
    assert len(calls) == 44 and calls[0] == ["dx", "x"]
    x, dx = (v.float() for v in spring.split("train"))
    with torch.enable_grad():
        direct = float((res.model.vector_field(None, x) - dx).abs().mean().detach())
    assert res.train_loss == pytest.approx(direct, rel=1e-6)
    # a plain function works too, and differs from the derivative (MSE) loss
    same = fit(_hnn(), spring, loss=l1, steps=40, lr=3e-3, log_every=40)
    mse = fit(_hnn(), spring, steps=40, lr=3e-3, log_every=40)
    assert same.train_loss == res.train_loss != mse.train_loss


def test_the_derivative_loss_by_name_equals_the_default(spring):
    a = fit(_hnn(), spring, steps=10, batch_size=16)
    b = fit(_hnn(), spring, loss="derivative", steps=10, batch_size=16)
    assert a.train_loss == b.train_loss and a.test_loss == b.test_loss


def test_unknown_loss_and_missing_entries_are_refused(spring):
    with pytest.raises(UnknownNameError, match="loss"):
        fit(_hnn(), spring, loss="nope", steps=1)
    with pytest.raises(ValueError, match="x_next"):
        fit(_hnn(), spring, loss="autoencoder", steps=1)


def test_a_callback_can_stop_training(spring, tmp_path):
    def stop_at_7(step, loss):
        if step == 7:
            raise StopTraining

    res = fit(_hnn(), spring, steps=50, log_every=5, run_dir=tmp_path, callbacks=[stop_at_7])
    assert [h["step"] for h in res.history] == [5, 7]
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == 7


def test_write_log_keeps_the_standard_columns_first(tmp_path):
    write_log(tmp_path / "a.csv", [{"seconds": 1.0, "step": 1, "extra": 2.0, "train_loss": 0.5}])
    assert (tmp_path / "a.csv").read_text().splitlines()[0] == "step,train_loss,seconds,extra"
    write_log(tmp_path / "b.csv", [])
    assert (
        tmp_path / "b.csv"
    ).read_text().strip() == "step,batch_loss,train_loss,test_loss,seconds"
