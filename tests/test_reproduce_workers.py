"""``hnnkit reproduce --workers N``: the tasks run in spawned processes, with the numbers, the
order of results.json and the error reporting of the serial run."""

import json
import sys
import textwrap

import pytest

from hnnkit.cli import _LOADED_PLUGINS, main
from hnnkit.errors import HnnkitValueError
from hnnkit.experiments.reproduce import reproduce
from hnnkit.experiments.tasks import TASKS, Task, register_task, unregister_task
from hnnkit.report.results import read_results
from test_golden import FIXTURE, _compare

#: a task run by its own code: one seed file, one model whose cells are ``VALUE``
EXTRA = """
    import json
    import time

    VALUE = {value}

    def reproduce_task(out_dir, *, profile="quick", seeds=1, quiet=True, device="cpu"):
        time.sleep({sleep})
        {body}
        (out_dir / "seed0").mkdir(parents=True, exist_ok=True)
        (out_dir / "seed0" / "metrics.json").write_text(json.dumps({{"profile": profile}}))
        cell = {{"mean": VALUE, "sem": 0.0}}
        model = {{"n_seeds": seeds, "train_loss": cell, "test_loss": cell, "energy": cell}}
        return {{"profile": profile, "n_seeds": seeds, "models": {{"hnn": model}}}}
"""

_REGISTERED: list[str] = []


@pytest.fixture(autouse=True)
def _forget_registered_tasks():
    yield
    while _REGISTERED:
        name = _REGISTERED.pop()
        if name in TASKS:
            unregister_task(name)


def _extra(tmp_path, monkeypatch, name, *, value=1.0, sleep=0.0, body="pass"):
    """Register task ``name`` run by an importable module (a worker imports it by name)."""
    import importlib

    mod = f"workers_extra_{name.replace('-', '_')}"
    (tmp_path / "mods").mkdir(exist_ok=True)
    text = EXTRA.format(value=value, sleep=sleep, body=body)
    (tmp_path / "mods" / f"{mod}.py").write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    sys.modules.pop(mod, None)
    register_task(Task(name=name, runner=importlib.import_module(mod).reproduce_task))
    _REGISTERED.append(name)


def test_two_workers_give_the_golden_numbers_in_the_requested_order(tmp_path, monkeypatch):
    monkeypatch.setenv("HNNKIT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "r"
    lines = []
    reproduce(
        out, tasks="spring,pendulum", profile="smoke", quiet=True, echo=lines.append, workers=2
    )
    results = read_results(out / "results.json")
    assert list(results["tasks"]) == ["spring", "pendulum"]
    _compare(results, read_results(FIXTURE), ["spring", "pendulum"])
    assert any(line.startswith("[spring] done in") for line in lines)
    assert any(line.startswith("[pendulum] seed 1/1: training") for line in lines)
    table = (out / "table.md").read_text()
    assert table.index("| spring |") < table.index("| pendulum |")


def test_results_keep_the_requested_order_whichever_task_finishes_first(tmp_path, monkeypatch):
    _extra(tmp_path, monkeypatch, "slow-one", value=1.0, sleep=3.0)
    _extra(tmp_path, monkeypatch, "fast-one", value=2.0)
    out = tmp_path / "r"
    lines = []
    reproduce(out, tasks="slow-one,fast-one", profile="smoke", echo=lines.append, workers=2)
    done = [line.split("]")[0] for line in lines if " done in " in line]
    assert done == ["[fast-one", "[slow-one"]  # each reported as it finished
    results = json.loads((out / "results.json").read_text())
    assert list(results["tasks"]) == ["slow-one", "fast-one"]
    assert results["tasks"]["fast-one"]["models"]["hnn"]["energy"]["mean"] == 2.0


def test_a_failing_task_in_a_worker_names_the_task_and_keeps_the_others(tmp_path, monkeypatch):
    _extra(tmp_path, monkeypatch, "raises", body="raise RuntimeError('boom')")
    _extra(tmp_path, monkeypatch, "fine", sleep=1.0)
    out = tmp_path / "r"
    lines = []
    with pytest.raises(RuntimeError, match="boom"):
        reproduce(out, tasks="raises,fine", profile="smoke", echo=lines.append, workers=2)
    assert "[raises] failed: RuntimeError: boom" in lines
    assert list(json.loads((out / "results.json").read_text())["tasks"]) == ["fine"]
    # the lock is released: the next run reuses the finished task
    with pytest.raises(RuntimeError, match="boom"):
        reproduce(out, tasks="fine,raises", profile="smoke", echo=lines.append, workers=2)
    assert any(line.startswith("[fine] already in") for line in lines)


def test_a_task_not_registered_in_a_worker_is_an_error_naming_it(tmp_path):
    """A task whose runner a worker cannot import (defined here, not in a module) is refused
    before any work, with the way out."""

    def runner(out_dir, **kw):  # a local function: not importable by a worker
        return {}

    register_task(Task(name="local-one", runner=runner))
    _REGISTERED.append("local-one")
    with pytest.raises(HnnkitValueError, match=r"local-one.*--workers 1"):
        reproduce(tmp_path / "r", tasks="local-one,spring", profile="smoke", workers=2)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_a_worker_count_that_is_not_a_positive_integer_is_refused(workers, tmp_path):
    with pytest.raises(HnnkitValueError, match="--workers must be a positive integer"):
        reproduce(tmp_path / "r", tasks="spring", profile="smoke", workers=workers)
    assert not (tmp_path / "r").exists()


def test_each_worker_imports_the_plugins_given_on_the_command_line(tmp_path, capsys):
    """A task registered by a plugin file (a module a worker cannot import by name)."""
    plugin = tmp_path / "two_tasks_plugin.py"
    plugin.write_text(
        textwrap.dedent(
            """
            from hnnkit.experiments.tasks import Task, register_task

            def run(out_dir, *, profile="quick", seeds=1, quiet=True, device="cpu"):
                cell = {"mean": 3.0, "sem": 0.0}
                model = {"n_seeds": seeds, "train_loss": cell, "test_loss": cell, "energy": cell}
                return {"profile": profile, "n_seeds": seeds, "models": {"hnn": model}}

            register_task(Task(name="plugin-a", runner=run))
            register_task(Task(name="plugin-b", runner=run))
            """
        )
    )
    _REGISTERED.extend(["plugin-a", "plugin-b"])
    out = tmp_path / "r"
    try:
        argv = ["--plugin", str(plugin), "reproduce", "--tasks", "plugin-a,plugin-b"]
        assert main([*argv, "--profile", "smoke", "--out", str(out), "--workers", "2"]) == 0
    finally:
        _LOADED_PLUGINS.pop(str(plugin), None)
    results = json.loads((out / "results.json").read_text())
    assert list(results["tasks"]) == ["plugin-a", "plugin-b"]
    assert "running 2 tasks in 2 worker processes" in capsys.readouterr().out


def test_the_reproduce_help_offers_workers(capsys):
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--workers N" in text and "one per CPU core and at most one per task" in text
