"""Plugins: a user's module, imported with --plugin or HNNKIT_PLUGINS, reaches every command.

The example plugin tests/plugins/quadratic_energy.py is a whole model in one file: an HNN
whose energy is a learned quadratic form xᵀAx, registered as ``quadratic-hnn``.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hnnkit.cli import main
from hnnkit.models import get_model, list_models, unregister_model

PLUGINS = Path(__file__).parent / "plugins"
QUADRATIC = PLUGINS / "quadratic_energy.py"
SMALL = ["--system", "spring", "--noise-std", "0", "--n-trajectories", "6", "--quiet"]


def _hnnkit(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    """``hnnkit ARGV`` in a fresh process (nothing imported or registered yet)."""
    env = {k: v for k, v in os.environ.items() if k != "HNNKIT_PLUGINS"}
    return subprocess.run(
        [sys.executable, "-m", "hnnkit.cli", "--threads", "1", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def quadratic_run(tmp_path_factory):
    """``hnnkit --plugin tests/plugins/quadratic_energy.py train --model quadratic-hnn``, noise-free spring."""
    run = tmp_path_factory.mktemp("plugin") / "run"
    argv = ["--plugin", str(QUADRATIC), "train", "--model", "quadratic-hnn", "--out", str(run)]
    assert main([*argv, *SMALL]) == 0
    return run


def test_a_plugin_model_trains_and_recovers_the_spring(quadratic_run):
    cfg = json.loads((quadratic_run / "config.json").read_text())
    assert cfg["model"] == "quadratic-hnn"
    assert cfg["plugins"] == [str(QUADRATIC.resolve())]
    # the plugin's registered defaults, not the CLI's
    assert (cfg["optimizer"], cfg["steps"], cfg["weight_decay"]) == ("lbfgs", 20, 0.0)
    assert "hidden" not in cfg and "activation" not in cfg  # its builder takes neither
    metrics = json.loads((quadratic_run / "metrics.json").read_text())
    # H = q² + p² (k = 2, m = 1/2) is a quadratic form: noise-free data are fitted exactly
    assert metrics["test_loss"]["mean"] < 1e-7
    assert metrics["train_loss"]["mean"] < 1e-7


def test_the_learned_form_is_the_springs_energy(quadratic_run):
    import torch

    state = torch.load(quadratic_run / "checkpoint.pt", weights_only=True)
    w = state["model"]["energy_net.weight"].double()
    a = 0.5 * (w + w.T)
    # x = (q, p), H = q² + p²: A = I up to the 1e-4 a derivative loss of ~1e-10 allows
    assert torch.allclose(a, torch.eye(2, dtype=a.dtype), atol=1e-3)


def test_evaluate_in_a_fresh_process_reimports_the_runs_plugin(quadratic_run, tmp_path):
    """The run's config.json records the plugin; ``hnnkit evaluate`` needs no --plugin."""
    done = _hnnkit("evaluate", str(quadratic_run), "--t-span", "0", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((quadratic_run / "metrics.json").read_text())
    assert metrics["rollout_mse"]["mean"] < 1e-6
    assert metrics["energy"]["mean"] < 1e-6


def test_evaluate_says_how_to_pass_a_plugin_that_is_gone(tmp_path):
    plugin = tmp_path / "gone_model.py"
    plugin.write_text(
        QUADRATIC.read_text().replace('"quadratic-hnn"', '"gone-hnn"'), encoding="utf-8"
    )
    run = tmp_path / "run"
    argv = ["--plugin", str(plugin), "train", "--model", "gone-hnn", "--out", str(run)]
    assert main([*argv, *SMALL, "--steps", "1"]) == 0
    plugin.unlink()
    unregister_model("gone-hnn")  # as in a new process
    done = _hnnkit("evaluate", str(run), cwd=tmp_path)
    assert done.returncode == 2
    err = done.stderr.strip()
    assert err.startswith(f"hnnkit evaluate: error: {run / 'config.json'} records plugin {plugin}")
    assert "FileNotFoundError" in err
    assert "pass the module that registers model 'gone-hnn' with `hnnkit --plugin MODULE" in err


def test_hnnkit_models_lists_a_plugins_model(capsys):
    assert main(["--plugin", str(QUADRATIC), "models"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    assert rows["quadratic-hnn"][1:4] == ["lbfgs", "20", "0"]
    assert "quadratic form x^T A x" in " ".join(rows["quadratic-hnn"])
    assert {"hnn", "baseline", "dhnn", "kan"} <= set(rows)


def test_the_environment_variable_and_a_dotted_name_work_too(monkeypatch, tmp_path, capsys):
    monkeypatch.syspath_prepend(str(PLUGINS))
    monkeypatch.setenv("HNNKIT_PLUGINS", " quadratic_energy , ")
    run = tmp_path / "run"
    argv = ["train", "--model", "quadratic-hnn", "--out", str(run), "--steps", "2"]
    assert main([*argv, *SMALL]) == 0
    assert json.loads((run / "config.json").read_text())["plugins"] == ["quadratic_energy"]
    # imported twice (as a file and as a module): the same definition, registered once
    assert get_model("quadratic-hnn").builder.__name__ == "build_quadratic_hnn"


def test_a_relative_path_is_recorded_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(PLUGINS)
    run = tmp_path / "run"
    argv = ["--plugin", "./quadratic_energy.py", "train", "--model", "quadratic-hnn"]
    assert main([*argv, "--out", str(run), "--steps", "1", *SMALL]) == 0
    assert json.loads((run / "config.json").read_text())["plugins"] == [str(QUADRATIC.resolve())]


@pytest.mark.parametrize(
    "source, reason",
    [
        ("raise RuntimeError('boom')\n", "RuntimeError: boom"),
        ("def broken(:\n", "SyntaxError: "),
        ("import hnnkit_no_such_module\n", "ModuleNotFoundError: No module named"),
        (
            "from hnnkit.models import register_model\n"
            "register_model('hnn', lambda dim, *, generator=None: None, description='x', "
            "defaults={'optimizer': 'adam', 'steps': 1, 'weight_decay': 0})\n",
            "HnnkitValueError: model 'hnn' is already registered",
        ),
    ],
)
def test_a_plugin_that_fails_to_import_is_one_clear_error(source, reason, tmp_path, capsys):
    plugin = tmp_path / "bad_plugin.py"
    plugin.write_text(source, encoding="utf-8")
    before = set(list_models())
    out = tmp_path / "run"
    argv = ["--plugin", str(plugin), "train", "--system", "spring", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"hnnkit train: error: plugin {plugin} failed to import: {reason}")
    assert "\n" not in err  # one line, no traceback
    assert not out.exists()
    assert set(list_models()) == before
    assert get_model("hnn").description.startswith("Hamiltonian NN")


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["--plugin", "hnnkit_no_such_plugin", "models"],
            "hnnkit models: error: plugin hnnkit_no_such_plugin failed to import: "
            "ModuleNotFoundError: No module named 'hnnkit_no_such_plugin'",
        ),
        (
            ["--plugin", "./no_such_file.py", "systems"],
            "hnnkit systems: error: plugin ./no_such_file.py failed to import: "
            "FileNotFoundError: no such file",
        ),
    ],
)
def test_a_missing_plugin_is_named(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith(message)


def test_a_plugin_named_in_the_environment_that_fails_is_named(monkeypatch, capsys):
    monkeypatch.setenv("HNNKIT_PLUGINS", "hnnkit_no_such_env_plugin")
    assert main(["models"]) == 2
    assert capsys.readouterr().err.startswith(
        "hnnkit models: error: plugin hnnkit_no_such_env_plugin failed to import"
    )


def test_an_unknown_model_is_refused_with_the_registered_choices(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--system", "spring", "--model", "cubic-hnn", "--out", "x"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --model: invalid choice: 'cubic-hnn' (choose from" in err
    for name in ("baseline", "dhnn", "hnn", "kan"):
        assert f"'{name}'" in err


def test_a_run_of_an_unregistered_model_says_to_pass_its_plugin(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    cfg = {"system": "spring", "model": "cubic-hnn", "seed": 0}
    (run / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"{run / 'config.json'} names an unknown model 'cubic-hnn' (valid: baseline," in err
    assert "if a plugin registers it, pass it with `hnnkit --plugin MODULE ...`" in err


COUPLED = PLUGINS / "coupled_system.py"


def test_a_plugin_system_from_the_shell_trains_and_evaluates(tmp_path):
    """The README's ``Coupled`` system as a plugin file: ``hnnkit --plugin FILE train --system
    coupled`` and then ``hnnkit evaluate`` (which imports the recorded plugin again), each in a
    fresh process; the data's true energy is conserved along their trajectories."""
    run = tmp_path / "coupled"
    argv = ["--plugin", str(COUPLED), "train", "--system", "coupled", "--out", str(run)]
    small = ["--steps", "40", "--n-trajectories", "6", "--noise-std", "0", "--quiet"]
    done = _hnnkit(*argv, *small, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["system"] == "coupled" and cfg["plugins"] == [str(COUPLED.resolve())]
    assert cfg["experiment"]["data"]["system"] == "coupled" and len(cfg["config_hash"]) == 12
    done = _hnnkit("evaluate", str(run), "--t-span", "0", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"train_loss", "test_loss", "rollout_mse", "energy"} <= set(metrics)
    assert all(metrics[k]["mean"] is not None for k in ("rollout_mse", "energy"))

    from hnnkit.cli import load_plugin
    from hnnkit.experiments.run import load_data
    from hnnkit.experiments.spec import Experiment
    from hnnkit.systems import get_system, unregister_system

    load_plugin(str(COUPLED))
    try:
        exp = Experiment.from_dict(cfg["experiment"])
        data = load_data(exp.data, exp.data_seed)  # the run's data, from its recorded spec
        x = data.x_clean if data.x_clean is not None else data.x
        assert x.shape[-1] == 4
        energy = get_system("coupled").energy(x.to(torch.float64))  # (trajectories, points)
        drift = (energy - energy[:, :1]).abs().max() / energy.abs().max()
        assert drift < 1e-6, drift
    finally:
        unregister_system("coupled")
