"""``hnnkit reproduce --models``: the field's other models join the paper's tasks."""

import json

import pytest

from hnnkit.errors import HnnkitValueError, UnknownNameError
from hnnkit.experiments.reproduce import add_models, parse_models, reproduce
from hnnkit.experiments.tasks import get_task


def test_parse_models_refuses_unknown_pixel_and_empty_lists():
    assert parse_models("srnn, la-sympnet,srnn") == ("srnn", "la-sympnet")
    assert parse_models(None) == ()
    with pytest.raises(UnknownNameError, match="hnn"):
        parse_models("no-such-model")
    with pytest.raises(HnnkitValueError, match="pixel"):
        parse_models("pixel-hnn")
    with pytest.raises(HnnkitValueError, match="names no model"):
        parse_models(" , ")


def test_added_models_train_with_their_own_loss_and_measured_data_refuse_the_lnn():
    spring, left_out = add_models(get_task("spring"), ("la-sympnet", "srnn", "hnn"))
    assert left_out == {}
    assert spring.models == ("baseline", "hnn", "la-sympnet", "srnn")
    assert spring.training_for("la-sympnet").loss == "rollout"
    assert spring.training_for("la-sympnet").loss_options["method"] == "model"
    assert spring.training_for("srnn").loss_options["method"] == "leapfrog"
    # the task's own budget and models are unchanged
    assert spring.training_for("srnn").steps == get_task("spring").training.steps
    assert spring.training_for("hnn") == get_task("spring").training_for("hnn")
    real, left_out = add_models(get_task("real-pendulum"), ("lnn", "srnn"))
    assert set(left_out) == {"lnn"} and "measured" in left_out["lnn"]
    assert real.models[-1] == "srnn"
    pixel, left_out = add_models(get_task("pixel-pendulum"), ("srnn",))
    assert pixel is get_task("pixel-pendulum") and left_out == {}


def test_reproduce_with_added_models_completes_a_finished_task(tmp_path):
    out = tmp_path / "r"
    quiet = {"profile": "smoke", "quiet": True, "echo": lambda s: None, "workers": 1}
    reproduce(out, tasks="spring", **quiet)
    hnn_checkpoint = out / "spring" / "seed0" / "hnn" / "checkpoint.pt"
    before = hnn_checkpoint.stat().st_mtime_ns
    lines: list[str] = []
    res = reproduce(out, tasks="spring", models="srnn", **{**quiet, "echo": lines.append})
    entry = res["tasks"]["spring"]
    assert set(entry["models"]) == {"baseline", "hnn", "srnn"}
    srnn = entry["models"]["srnn"]
    assert srnn["rollout_mse"]["mean"] > 0 and srnn["valid_time"]["mean"] > 0
    # a symplectic gradient: the defect of one implicit-midpoint step is round-off
    assert srnn["symplecticity"]["mean"] < 1e-10
    assert hnn_checkpoint.stat().st_mtime_ns == before  # only the added model was trained
    assert any("incomplete" in line for line in lines)
    table = (out / "table.md").read_text()
    long_horizon = table.split("**Long horizon**")[1]
    assert "| spring | SRNN-style HNN |" in long_horizon
    assert json.loads((out / "results.json").read_text())["tasks"]["spring"]["models"]["srnn"]
