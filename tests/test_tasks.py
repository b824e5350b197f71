"""The task registry: tasks are data (protocol, energy, plots, profiles are fields), a plugin
adds one with register_task, and no code outside tasks.py asks for a task by its name."""

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from hnnkit.errors import HnnkitValueError, UnknownNameError
from hnnkit.evaluate import OriginalProtocol
from hnnkit.experiments.protocols import ORIGINAL, real_pendulum_energy
from hnnkit.experiments.reproduce import parse_tasks, reproduce
from hnnkit.experiments.tasks import (
    TASKS,
    Task,
    get_task,
    list_tasks,
    register_task,
    task_for_data,
    unregister_task,
)
from hnnkit.report.results import read_results
from hnnkit.systems import list_systems

SRC = Path(__file__).parents[1] / "src" / "hnnkit"
GOLDEN = Path(__file__).parent / "fixtures" / "golden_smoke_results.json"


def test_the_paper_tasks_are_registered_in_order_with_their_protocols():
    names = list(list_tasks())
    assert names[:8] == [
        "spring",
        "pendulum",
        "real-pendulum",
        "damped-pendulum",
        "two-body",
        "three-body",
        "pixel-pendulum",
        "kan-spring",
    ]
    for name in ("spring", "pendulum", "real-pendulum", "two-body", "three-body"):
        assert get_task(name).original is ORIGINAL[name]
    assert get_task("damped-pendulum").original == OriginalProtocol()
    assert get_task("real-pendulum").energy is real_pendulum_energy
    assert [n for n, t in TASKS.items() if t.energy is not None] == ["real-pendulum"]
    assert [n for n, t in TASKS.items() if t.divergence] == ["three-body"]
    assert [n for n, t in TASKS.items() if t.orbit_plot] == ["two-body", "three-body"]
    assert [n for n, t in TASKS.items() if t.runner is not None] == ["pixel-pendulum", "kan-spring"]
    assert get_task("spring").for_profile("smoke").training.steps == 30
    assert get_task("kan-spring").models == ()


def test_unknown_and_taken_names_are_refused_listing_the_tasks():
    with pytest.raises(UnknownNameError, match="kan-spring"):
        get_task("sprung")
    with pytest.raises(UnknownNameError, match="three-body"):
        parse_tasks("spring,sprung")
    with pytest.raises(HnnkitValueError, match="already registered"):
        register_task(replace(get_task("spring"), scale=1.0))
    with pytest.raises(HnnkitValueError, match="without whitespace"):
        Task(name="a b", runner=lambda out_dir, **kw: {})
    with pytest.raises(HnnkitValueError, match="reduces only data, training and model"):
        replace(get_task("spring"), smoke={"steps": 3})


def test_an_experiment_on_a_tasks_system_follows_that_tasks_protocol():
    assert task_for_data(get_task("spring").data) is get_task("spring")
    assert task_for_data(get_task("real-pendulum").data) is get_task("real-pendulum")
    other = replace(get_task("spring").data, n_trajectories=3)
    assert task_for_data(other) is get_task("spring")  # the same system, other sizes


def _literal_comparisons(text, names):
    """``== "NAME"`` / ``in ("NAME", ...)`` / ``!= "NAME"`` of a task or system name."""
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    pattern = rf'(==|!=|\bin)\s*[\(\[{{]?\s*"({alternatives})"'
    return [m.group(0) for m in re.finditer(pattern, text)]


def test_no_code_outside_tasks_and_protocols_branches_on_a_task_or_system_name():
    names = set(TASKS) | set(list_systems())
    found = {}
    for folder in ("experiments", "evaluate", "report"):
        for path in sorted((SRC / folder).rglob("*.py")):
            if path.name in ("tasks.py", "protocols.py"):
                continue
            hits = _literal_comparisons(path.read_text(encoding="utf-8"), names)
            if hits:
                found[str(path.relative_to(SRC))] = hits
    assert not found, found
    # the check catches what it is meant to
    assert _literal_comparisons('if task.name == "three-body":', names)
    assert _literal_comparisons('orbit = name in ("two-body", "three-body")', names)


@pytest.fixture
def renamed_spring():
    """The spring task under another name."""
    task = register_task(replace(get_task("spring"), name="spring-by-another-name"))
    yield task
    unregister_task(task.name)


def test_a_task_carries_its_protocol_not_its_name(renamed_spring, tmp_path, monkeypatch):
    """The spring task registered as another name gives the golden spring numbers under both
    protocols: the clock stretch and q² + p² of ORIGINAL["spring"] travel with the task."""
    monkeypatch.setenv("HNNKIT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "r"
    lines = []
    reproduce(out, tasks=renamed_spring.name, profile="smoke", quiet=True, echo=lines.append)
    got = read_results(out / "results.json")["tasks"][renamed_spring.name]["models"]
    want = read_results(GOLDEN)["tasks"]["spring"]["models"]
    for model in ("baseline", "hnn"):
        for cell in ("train_loss", "test_loss", "energy"):
            assert got[model][cell]["mean"] == pytest.approx(want[model][cell]["mean"], rel=1e-6)
            orig = got[model]["original"][cell]["mean"]
            assert orig == pytest.approx(want[model]["original"][cell]["mean"], rel=1e-6)
    seed = json.loads((out / renamed_spring.name / "seed0" / "metrics.json").read_text())
    assert "divergence" not in seed  # the three-body task's field, not this one's
    assert (out / renamed_spring.name / "figures" / "rollouts.png").is_file()


def test_a_task_without_profile_reductions_keeps_its_sizes():
    task = Task(name="small", data=get_task("spring").data, models=("hnn",))
    assert task.for_profile("smoke") == task.for_profile("quick") == task
    assert task.original == OriginalProtocol() and task.energy is None


# --- the proof: a model and a task, each in one plugin file, reach hnnkit reproduce ----------

PLUGINS = Path(__file__).parent / "plugins"


def _hnnkit(*argv, cwd):
    """``hnnkit ARGV`` in a fresh process (nothing registered but what the plugins add)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "HNNKIT_PLUGINS"}
    env["HNNKIT_CACHE"] = str(cwd / "cache")
    return subprocess.run(
        [sys.executable, "-m", "hnnkit.cli", "--threads", "1", *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_plugin_task_of_a_plugin_model_runs_in_reproduce(tmp_path):
    import math

    plugins = ["--plugin", str(PLUGINS / "quadratic_energy.py")]
    plugins += ["--plugin", str(PLUGINS / "quadratic_spring.py")]
    out = tmp_path / "r"
    argv = ["reproduce", "--tasks", "quadratic-spring", "--profile", "smoke", "--out", str(out)]
    done = _hnnkit(*plugins, *argv, "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    entry = read_results(out / "results.json")["tasks"]["quadratic-spring"]
    assert set(entry["models"]) == {"baseline", "quadratic-hnn"}
    for model in entry["models"].values():
        for cell in ("train_loss", "test_loss", "energy"):
            assert math.isfinite(model[cell]["mean"]), (cell, model[cell])
            assert math.isfinite(model["original"][cell]["mean"]), cell
    quad, base = entry["models"]["quadratic-hnn"], entry["models"]["baseline"]
    # H = q² + p² is a quadratic form: the plugin's model finds it, the baseline does not
    assert quad["energy"]["mean"] < 1e-3 * base["energy"]["mean"]
    assert quad["original"]["energy"]["mean"] < base["original"]["energy"]["mean"]
    assert entry["config"]["training"]["quadratic-hnn"]["optimizer"] == "lbfgs"
    table = (out / "table.md").read_text()
    assert "| quadratic-spring | quadratic-hnn |" in table
    assert "| quadratic-spring | baseline NN |" in table
    assert "| quadratic-spring | quadratic-hnn |" in done.stdout  # the printed table
    # the task's file without the model's: one error line before any training, naming both
    alone = _hnnkit(
        "--plugin", str(PLUGINS / "quadratic_spring.py"), *argv[:-1], str(tmp_path / "r2"),
        cwd=tmp_path,
    )  # fmt: skip
    assert alone.returncode == 2
    assert alone.stderr.startswith("hnnkit reproduce: error: plugin ")
    assert "quadratic_spring.py failed to import" in alone.stderr
    assert "unknown model 'quadratic-hnn'" in alone.stderr
    assert not (tmp_path / "r2").exists()
