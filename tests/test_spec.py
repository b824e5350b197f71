"""Experiments as data: the specs validate at the edge, round-trip, hash stably, and run."""

import json

import pytest

from hnnkit.errors import DataFileError, HnnkitValueError
from hnnkit.experiments.run import run_experiment
from hnnkit.experiments.spec import (
    DataSpec,
    EvalSpec,
    Experiment,
    ModelSpec,
    TrainSpec,
    resolve_train,
)
from hnnkit.experiments.tasks import TASKS
from hnnkit.models import train_defaults

SPEC = {
    "name": "spring-hnn",
    "seed": 0,
    "data": {"system": "spring", "n_trajectories": 10, "noise_std": 0.1},
    "model": {"name": "hnn", "hidden": [32, 32]},
    "train": {"steps": 30},
    "eval": {"t_span": [0.0, 5.0]},
}


def _exp(**changes):
    d = json.loads(json.dumps(SPEC))
    for path, value in changes.items():
        table, _, key = path.partition("__")
        if key:
            d[table][key] = value
        else:
            d[table] = value
    return d


def test_the_dict_and_toml_forms_round_trip(tmp_path):
    exp = Experiment.from_dict(SPEC)
    assert Experiment.from_dict(exp.to_dict()) == exp
    path = tmp_path / "e.toml"
    path.write_text(exp.to_toml())
    assert Experiment.from_toml(path) == exp
    assert exp.model.kwargs["hidden"] == (32, 32)
    assert exp.data.t_span is None  # left to the system's default, not copied here


def test_the_hash_is_stable_ignores_the_name_and_changes_with_any_setting():
    exp = Experiment.from_dict(SPEC)
    h = exp.config_hash()
    assert len(h) == 12 and int(h, 16) >= 0
    assert Experiment.from_dict(dict(reversed(list(SPEC.items())))).config_hash() == h
    assert Experiment.from_dict(_exp(name="other")).config_hash() == h
    assert Experiment.from_dict(_exp(train__lr=2e-3)).config_hash() != h
    assert Experiment.from_dict(_exp(seed=1)).config_hash() != h
    assert Experiment.from_dict(_exp(data__params={"k": 2.0})).config_hash() != h
    # equal values of another type (1 vs 1.0) are the same experiment
    assert Experiment.from_dict(_exp(train__lr=0.001)).config_hash() == h
    assert exp.run_name == "spring-hnn"
    assert Experiment.from_dict(_exp(name=None)).run_name == h


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"data__n_traj": 5}, ["'n_traj'", "n_trajectories", "valid keys"]),
        ({"train__step": 5}, ["'step'", "steps"]),
        ({"model__hiden": [3]}, ["'hiden'", "hidden"]),
        ({"eval__metric": ["energy"]}, ["'metric'", "metrics"]),
        ({"extra": {}}, ["'extra'", "data, model"]),
        ({"train__steps": "30"}, ["train.steps", "integer"]),
        ({"train__steps": 0}, ["train.steps", ">= 1"]),
        ({"train__steps": True}, ["train.steps", "integer"]),
        ({"train__lr": -1.0}, ["train.lr", "> 0"]),
        ({"train__lr": float("nan")}, ["train.lr", "finite"]),
        ({"train__optimizer": "sgd"}, ["train.optimizer", "adam, lbfgs"]),
        ({"train__loss": "l1"}, ["train.loss", "derivative, through-step, autoencoder"]),
        ({"data__noise_std": -0.1}, ["data.noise_std", ">= 0"]),
        ({"data__n_trajectories": 1}, ["data.n_trajectories", ">= 2"]),
        ({"data__t_span": [3.0, 1.0]}, ["data.t_span", "end > start"]),
        ({"data__test_fraction": 1.0}, ["data.test_fraction", "< 1"]),
        ({"data__file": "x.npz"}, ["exactly one of 'system'", "'file'"]),
        ({"model__hidden": [0]}, ["model.hidden", ">= 1"]),
        ({"eval__protocol": "best"}, ["eval.protocol", "corrected, original"]),
        ({"eval__metrics": ["energy", "speed"]}, ["eval.metrics", "rollout_mse"]),
        ({"seed": -1}, ["experiment.seed", ">= 0"]),
        ({"name": "../x"}, ["experiment.name", "directory name"]),
        ({"data": {"system": "real-pendulum", "noise_std": 0.1}}, ["noise_std", "fixed"]),
    ],
)
def test_bad_settings_are_refused_naming_the_key_and_the_choices(changes, words):
    with pytest.raises(HnnkitValueError) as err:
        Experiment.from_dict(_exp(**changes))
    for word in words:
        assert word in str(err.value), (word, str(err.value))


def test_a_missing_table_and_a_broken_file_are_named(tmp_path):
    with pytest.raises(HnnkitValueError, match=r"lacks the table.*model"):
        Experiment.from_dict({"data": {"system": "spring"}})
    with pytest.raises(DataFileError, match="not found"):
        Experiment.from_toml(tmp_path / "none.toml")
    (tmp_path / "bad.toml").write_text("[data\nsystem = ")
    with pytest.raises(DataFileError, match="not valid TOML"):
        Experiment.from_toml(tmp_path / "bad.toml")
    (tmp_path / "typo.toml").write_text(
        '[data]\nsystem = "spring"\n[model]\nname = "hnn"\n[trian]\n'
    )
    with pytest.raises(HnnkitValueError, match=r"typo.toml: unknown key.*'trian'"):
        Experiment.from_toml(tmp_path / "typo.toml")


def test_defaults_and_the_loss():
    # optimizer, steps, weight_decay and the loss: the model's registered defaults, filled in by
    # one function (the loss is derivative unless the model registers another)
    assert TrainSpec().to_dict() == {"lr": 1e-3}
    for model in ("hnn", "dhnn", "kan"):
        assert TrainSpec().for_model(model).to_dict() == {
            "lr": 1e-3,
            "loss": "derivative",
            **train_defaults(model),
        }
    assert TrainSpec(steps=7).for_model("kan").steps == 7  # a setting given stays
    exp = resolve_train(Experiment(DataSpec(system="spring"), ModelSpec("dhnn")))
    assert exp.train.weight_decay == train_defaults("dhnn")["weight_decay"]
    assert resolve_train(exp) is exp
    assert TrainSpec(loss="through-step").through_step and not TrainSpec().through_step
    assert EvalSpec().protocol == "corrected"
    assert DataSpec(system="spring").generate_kwargs() == {}  # every setting: the system's
    assert ModelSpec.from_dict({"name": "hnn", "hidden": [8]}).to_dict() == {
        "name": "hnn",
        "hidden": [8],
    }


def test_a_task_run_is_an_experiment_with_the_tasks_settings():
    task = TASKS["real-pendulum"].for_profile("smoke")
    exp = task.experiment("dhnn", 2)
    assert exp.seed == 2 and exp.train.steps == 30 and exp.model.kwargs["hidden"] == (32, 32)
    assert exp.train.loss == "through-step" and task.through_step == ("dhnn",)
    assert task.experiment("hnn", 2).train.loss == "derivative"
    damped = TASKS["damped-pendulum"]
    assert damped.training_for("dhnn").weight_decay == 0.0
    assert damped.training_for("hnn").weight_decay == 1e-4
    assert TASKS["spring"].data.to_dict() == {
        "system": "spring",
        "n_trajectories": 50,
        "n_points": 30,
        "t_span": [0.0, 3.0],
        "noise_std": 0.1,
    }
    # every task's every run is a valid, serialisable experiment
    for t in TASKS.values():
        for kind in t.models:
            e = t.for_profile("smoke").experiment(kind, 0)
            assert Experiment.from_dict(json.loads(json.dumps(e.to_dict()))) == e


def test_run_writes_a_run_directory_and_reuses_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HNNKIT_CACHE", str(tmp_path / "cache"))
    exp = Experiment.from_dict(SPEC)
    run_dir, metrics = run_experiment(exp, tmp_path / "runs", quiet=True, echo=lambda s: None)
    assert run_dir == tmp_path / "runs" / "spring-hnn"
    names = {p.name for p in run_dir.iterdir()}
    assert {"config.json", "checkpoint.pt", "metrics.json", "log.csv", "experiment.toml"} <= names
    assert {"loss.png", "rollouts.png"} <= names
    cfg = json.loads((run_dir / "config.json").read_text())
    # the run records the experiment with the model's training defaults filled in
    assert exp.train.optimizer is None and resolve_train(exp).train.optimizer == "adam"
    exp = resolve_train(exp)
    assert (
        cfg["config_hash"] == exp.config_hash() == metrics["config_hash"] == "6b94858199e3"
    )  # as before the defaults moved
    assert cfg["model"] == "hnn" and cfg["hidden"] == [32, 32] and cfg["steps"] == 30
    assert Experiment.from_toml(run_dir / "experiment.toml") == exp
    # the same model, data and seed as the smoke spring task's hnn (tests/test_golden.py)
    assert metrics["train_loss"]["mean"] == pytest.approx(0.35530852332026654, rel=1e-6)
    assert set(metrics) >= {"train_loss", "test_loss", "energy", "rollout_mse", "valid_time"}
    lines = []
    again_dir, again = run_experiment(exp, tmp_path / "runs", echo=lines.append)
    assert again == metrics and again_dir == run_dir
    assert any("reusing" in line for line in lines)
    other = Experiment.from_dict(_exp(train__steps=31))  # same name, another experiment
    with pytest.raises(HnnkitValueError, match="holds another experiment"):
        run_experiment(other, tmp_path / "runs", quiet=True)


def test_a_registered_loss_is_what_the_run_minimises(tmp_path, monkeypatch):
    """``train.loss`` names any registered loss, and the run passes it to fit(loss=...)."""
    from hnnkit.train import LOSSES, derivative_loss, register_loss

    calls = []

    def counted(model, batch):
        calls.append(len(batch["x"]))
        return derivative_loss(model, batch["x"], batch["dx"])

    register_loss("counted-derivative", counted, requires=("x", "dx"))
    monkeypatch.setitem(LOSSES, "counted-derivative", LOSSES["counted-derivative"])
    try:
        monkeypatch.setenv("HNNKIT_CACHE", str(tmp_path / "cache"))
        exp = Experiment.from_dict(_exp(train__loss="counted-derivative", train__steps=3))
        run_dir, _ = run_experiment(exp, tmp_path / "runs", quiet=True, echo=lambda s: None)
    finally:
        LOSSES.pop("counted-derivative", None)
    assert calls  # the registered function was trained on
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["loss"] == "counted-derivative" and "through_step" not in cfg


def test_model_defaults_come_from_the_model_registry(tmp_path):
    from hnnkit.experiments.run import model_from_spec, model_options, run_config
    from hnnkit.models import get_model

    hnn = get_model("hnn").options
    assert model_options(ModelSpec("hnn")) == {
        "hidden": list(hnn["hidden"]),
        "activation": hnn["activation"],
    }
    assert model_options(ModelSpec("hnn", {"hidden": (8,)}))["hidden"] == [8]
    # a model without those options is built, and recorded, without them
    from hnnkit.models import register_model, unregister_model
    from hnnkit.models.baseline import Baseline

    register_model(
        "tiny-baseline",
        lambda dim, *, generator=None: Baseline(dim, hidden=(4,), generator=generator),
        description="a baseline of 4 units",
        defaults={"optimizer": "adam", "steps": 1, "weight_decay": 0.0},
    )
    try:
        spec = ModelSpec("tiny-baseline", {"hidden": (32, 32), "activation": "relu"})
        assert model_options(spec) == {}
        assert sum(p.numel() for p in model_from_spec(spec, 2, 0).parameters()) > 0
        exp = Experiment(DataSpec(system="spring"), spec)
        cfg = run_config(exp)
        assert "hidden" not in cfg and "activation" not in cfg
    finally:
        unregister_model("tiny-baseline")
    from hnnkit.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match=r"unknown model 'cubic'.*baseline"):
        model_from_spec(ModelSpec("cubic"), 2, 0)
