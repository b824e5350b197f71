"""``hnnkit reproduce`` never loses finished work and never hides a task.

Most tests reuse one smoke spring run (trained once per module) and copy it, so that only the
test that must retrain trains.
"""

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from hnnkit.cli import main
from hnnkit.errors import HnnkitValueError
from hnnkit.experiments import reproduce as rep
from hnnkit.experiments.reproduce import parse_tasks, reproduce, summarise
from hnnkit.experiments.tasks import TASKS, Task, register_task, unregister_task
from hnnkit.files import DirectoryLockedError
from hnnkit.report import html_report, markdown_table


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished smoke spring run (results.json, per-seed metrics, checkpoints)."""
    base = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HNNKIT_CACHE", str(base / "cache"))
        reproduce(base / "r", tasks="spring", profile="smoke", quiet=True, echo=lambda s: None)
    return base / "r"


@pytest.fixture
def run_copy(trained, tmp_path):
    out = tmp_path / "r"
    shutil.copytree(trained, out)
    return out


def _results(out):
    return json.loads((out / "results.json").read_text())


def _write_results(out, data):
    (out / "results.json").write_text(json.dumps(data))


def _drop_entry(out, name="spring"):
    data = _results(out)
    entry = data["tasks"].pop(name)
    _write_results(out, data)
    return entry


# 1. one writer per --out, and entries written by other runs are merged, never dropped


def test_a_second_reproduce_into_a_held_out_dir_is_refused_naming_the_holder(run_copy, capsys):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\nfrom hnnkit.files import DirectoryLock\n"
            f"with DirectoryLock({str(run_copy)!r}, 'hnnkit reproduce'):\n"
            "    print('held', flush=True)\n    sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(DirectoryLockedError, match=f"pid {holder.pid}"):
            reproduce(run_copy, tasks="spring", profile="smoke", quiet=True, echo=lambda s: None)
        code = main(
            ["reproduce", "--out", str(run_copy), "--tasks", "spring", "--profile", "smoke"]
        )
        err = capsys.readouterr().err
        assert code == 2 and "hnnkit reproduce: error:" in err and f"pid {holder.pid}" in err
    finally:
        holder.communicate("", timeout=30)


def test_entries_written_by_another_run_meanwhile_are_merged_not_dropped(run_copy):
    spring = _drop_entry(run_copy)  # spring is summarised again from its per-seed metrics
    stale = [
        run_copy / ".results.json.x1.tmp",
        run_copy / "spring" / "seed0" / ".metrics.json.x2.tmp",
    ]
    for p in stale:
        p.write_text("half a file from a killed run")

    def echo(line):
        if line.startswith("[spring] seed"):  # another run finishes "pendulum" meanwhile
            data = _results(run_copy)
            data["tasks"]["pendulum"] = {**spring, "note": "from the other run"}
            _write_results(run_copy, data)

    res = reproduce(run_copy, tasks="spring", profile="smoke", quiet=True, echo=echo)
    data = _results(run_copy)
    assert set(data["tasks"]) == {"spring", "pendulum"}
    assert data["tasks"]["pendulum"]["note"] == "from the other run"
    assert res == data
    assert "| pendulum | HNN |" in (run_copy / "table.md").read_text()
    assert not any(p.exists() for p in stale)


# 2. a corrupted checkpoint or per-seed metrics.json is retrained, not "skipped"


def test_a_corrupted_checkpoint_is_moved_aside_and_retrained_not_skipped(run_copy):
    _drop_entry(run_copy)  # as after a kill during training: no summary, no metrics.json
    seed = run_copy / "spring" / "seed0"
    (seed / "metrics.json").unlink()
    (seed / "hnn" / "checkpoint.pt").write_bytes(b"\x00garbage, not a checkpoint")
    lines = []
    reproduce(run_copy, tasks="spring", profile="smoke", quiet=True, echo=lines.append)
    entry = _results(run_copy)["tasks"]["spring"]
    assert "skipped" not in entry and set(entry["models"]) == {"baseline", "hnn"}
    assert any("checkpoint" in line and "corrupted" in line for line in lines), lines
    assert (seed / "hnn" / "checkpoint.pt.corrupt").read_bytes().startswith(b"\x00garbage")
    from hnnkit.train import load_checkpoint

    assert load_checkpoint(seed / "hnn" / "checkpoint.pt")["step"] > 0
    assert (seed / "metrics.json").is_file()


@pytest.mark.parametrize(
    "content",
    ["{not json", json.dumps({"seed": 0, "models": {"baseline": {}, "hnn": {}}})],
    ids=["unreadable", "missing-fields"],
)
def test_a_corrupted_seed_metrics_file_is_reported_and_recomputed(run_copy, content):
    _drop_entry(run_copy)
    (run_copy / "spring" / "seed0" / "metrics.json").write_text(content)
    lines = []
    reproduce(run_copy, tasks="spring", profile="smoke", quiet=True, echo=lines.append)
    assert any("metrics.json" in line and "recomput" in line for line in lines), lines
    assert "models" in _results(run_copy)["tasks"]["spring"]
    cached = json.loads((run_copy / "spring" / "seed0" / "metrics.json").read_text())
    assert set(cached["models"]["hnn"]) >= {"losses", "corrected"}


def test_only_missing_measured_data_is_a_skip_and_the_report_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("HNNKIT_DATA", str(tmp_path / "nonexistent"))
    from hnnkit.experiments import run

    monkeypatch.setattr(run, "real_pendulum", _no_real_pendulum)
    lines = []
    res = reproduce(tmp_path / "r", tasks="real-pendulum", profile="smoke", echo=lines.append)
    assert "skipped" in res["tasks"]["real-pendulum"]
    assert any("[real-pendulum] skipped" in line for line in lines)
    fix = "set HNNKIT_DATA=DIR (a folder holding real_pend_h_1.txt or invar_datasets.zip) or "
    fix += "connect to the internet to download it"
    assert res["tasks"]["real-pendulum"]["fix"] == fix
    # named with its fix at the top of table.md, of report.html, and last in the terminal
    table = (tmp_path / "r" / "table.md").read_text()
    assert table.startswith("> **Skipped, not in the table:** 1 task")
    assert f"> - **real-pendulum**: {fix} (skipped: its measured data were not found" in table
    body = (tmp_path / "r" / "report.html").read_text().split("<body>")[1]
    assert body.index("real-pendulum") < body.index("<table>")
    assert body.index(fix) < body.index("<table>")
    assert lines[-2:] == [
        "SKIPPED 1 task, not in the table:",
        f"  real-pendulum: {fix} (skipped: its measured data were not found "
        "(real-pendulum data not found; set HNNKIT_DATA))",
    ]


def _no_real_pendulum(*args, **kwargs):
    from hnnkit.errors import DataFileError

    raise DataFileError("real-pendulum data not found; set HNNKIT_DATA")


# 3. an entry that lacks what the report needs is recomputed, never dropped


def test_an_incomplete_results_entry_is_recomputed_from_seed_metrics(run_copy):
    data = _results(run_copy)
    data["tasks"]["spring"] = {"profile": "smoke", "n_seeds": 1}  # no models
    _write_results(run_copy, data)
    mtime = (run_copy / "spring" / "seed0" / "metrics.json").stat().st_mtime_ns
    lines = []
    res = reproduce(run_copy, tasks="spring", profile="smoke", quiet=True, echo=lines.append)
    assert any("[spring]" in line and "incomplete" in line for line in lines), lines
    assert set(res["tasks"]["spring"]["models"]) == {"baseline", "hnn"}
    assert "| spring | HNN |" in (run_copy / "table.md").read_text()
    assert (run_copy / "spring" / "seed0" / "metrics.json").stat().st_mtime_ns == mtime


def test_an_incomplete_entry_of_a_task_not_asked_for_is_rebuilt_or_reported(run_copy):
    shutil.copytree(run_copy / "spring", run_copy / "pendulum")  # per-seed files to rebuild from
    data = _results(run_copy)
    data["tasks"]["pendulum"] = {"profile": "smoke", "models": {"hnn": "garbage"}}
    data["tasks"]["two-body"] = {"profile": "smoke"}  # nothing on disk to rebuild it from
    _write_results(run_copy, data)
    lines = []
    res = reproduce(run_copy, tasks="spring", profile="smoke", echo=lines.append, quiet=True)
    assert set(res["tasks"]["pendulum"]["models"]) == {"baseline", "hnn"}
    assert any("[pendulum]" in line and "rebuilt" in line for line in lines), lines
    assert any("[two-body]" in line and "--tasks two-body" in line for line in lines), lines
    table = (run_copy / "table.md").read_text()
    assert "| pendulum | HNN |" in table and "two-body" in table


# 4. a corrupted results.json is rebuilt from the per-seed files, not recomputed from scratch


def _fake_extra(tmp_path, monkeypatch, name, body):
    """Register task ``name`` run by ``reproduce_task`` of a module whose text is ``body``
    (removed from the registry after the test)."""
    import importlib

    mod = f"fake_extra_{name.replace('-', '_')}"
    (tmp_path / "mods").mkdir(exist_ok=True)
    (tmp_path / "mods" / f"{mod}.py").write_text(textwrap.dedent(body))
    monkeypatch.syspath_prepend(str(tmp_path / "mods"))
    sys.modules.pop(mod, None)  # another test's module of that name
    runner = importlib.import_module(mod).reproduce_task
    register_task(Task(name=name, runner=runner))
    _REGISTERED.append(name)
    return mod


_REGISTERED: list[str] = []


@pytest.fixture(autouse=True)
def _forget_registered_tasks():
    yield
    while _REGISTERED:
        unregister_task(_REGISTERED.pop())


COUNTING_EXTRA = """
    import json
    from hnnkit.experiments._seeds import run_seeds

    CALLS = []

    def _run(seed_dir, seed, profile):
        CALLS.append(seed)
        seed_dir.mkdir(parents=True, exist_ok=True)
        m = {"profile": profile, "seed": seed, "value": 1.0 + seed}
        (seed_dir / "metrics.json").write_text(json.dumps(m))
        return m

    def reproduce_task(out_dir, *, profile="quick", seeds=1, quiet=True, device="cpu"):
        runs = run_seeds(out_dir, seeds, lambda d, s: _run(d, s, profile))
        cell = {"mean": sum(r["value"] for r in runs) / len(runs), "sem": 0.0}
        model = {"n_seeds": seeds, "train_loss": cell, "test_loss": cell, "energy": cell}
        return {"profile": profile, "n_seeds": seeds, "models": {"hnn": model}}
"""


def test_a_corrupted_results_json_is_rebuilt_from_the_seed_files_and_kept_aside(
    run_copy, tmp_path, monkeypatch
):
    import importlib

    mod = _fake_extra(tmp_path, monkeypatch, "fake-extra", COUNTING_EXTRA)
    reproduce(run_copy, tasks="fake-extra", profile="smoke", seeds=2, echo=lambda s: None)
    calls = importlib.import_module(mod).CALLS
    assert calls == [0, 1]
    before = _results(run_copy)["tasks"]
    (run_copy / "results.json").write_text('{"tasks": {"spring": {"mod')  # a torn write
    mtime = (run_copy / "spring" / "seed0" / "metrics.json").stat().st_mtime_ns
    lines = []
    res = reproduce(run_copy, tasks="spring", profile="smoke", quiet=True, echo=lines.append)
    assert (run_copy / "results.json.corrupt").read_text() == '{"tasks": {"spring": {"mod'
    assert any("results.json.corrupt" in line and "rebuilt" in line for line in lines), lines
    assert set(res["tasks"]) == {"spring", "fake-extra"}
    for name in ("spring", "fake-extra"):
        assert res["tasks"][name]["models"] == before[name]["models"], name
    assert res["tasks"]["fake-extra"]["n_seeds"] == 2
    assert calls == [0, 1]  # rebuilt from the cached seeds, none rerun
    assert (run_copy / "spring" / "seed0" / "metrics.json").stat().st_mtime_ns == mtime
    assert any("[spring] already in" in line for line in lines)


# 5. an empty task list is refused


@pytest.mark.parametrize("spec", [",", "", " , ", ",,"])
def test_an_empty_task_list_is_refused_listing_the_tasks(spec, tmp_path, capsys):
    with pytest.raises(HnnkitValueError, match="no task") as info:
        parse_tasks(spec)
    assert "spring" in str(info.value) and "kan-spring" in str(info.value)
    assert main(["reproduce", "--tasks", spec, "--out", str(tmp_path / "r")]) == 2
    assert "hnnkit reproduce: error: no task" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_empty_items_in_a_task_list_are_ignored_and_repeats_dropped():
    assert parse_tasks("spring,,pendulum,") == ["spring", "pendulum"]
    assert parse_tasks(" spring , spring") == ["spring"]


# 6. a task that fails to import or run is an error naming it; only an absent optional
# dependency skips, naming the pip install that fixes it


def test_an_absent_optional_dependency_skips_the_task_naming_pip_install(tmp_path, monkeypatch):
    _fake_extra(
        tmp_path,
        monkeypatch,
        "needs-dep",
        "def reproduce_task(out_dir, **kw):\n    import not_a_real_dependency_xyz\n",
    )
    lines = []
    res = reproduce(tmp_path / "r", tasks="needs-dep", profile="smoke", echo=lines.append)
    entry = res["tasks"]["needs-dep"]
    assert "not_a_real_dependency_xyz" in entry["skipped"]
    assert entry["fix"] == "pip install not_a_real_dependency_xyz"
    assert any("pip install not_a_real_dependency_xyz" in line for line in lines)
    assert (
        "**needs-dep**: pip install not_a_real_dependency_xyz"
        in ((tmp_path / "r" / "table.md").read_text().split("| task |")[0])
    )


@pytest.mark.parametrize(
    "body, cause",
    [
        (
            "def reproduce_task(out_dir, **kw):\n    from hnnkit import no_such_name\n",
            "ImportError: cannot import name 'no_such_name'",
        ),
        (
            "def reproduce_task(out_dir, **kw):\n    import hnnkit.no_such_module\n",
            "installation is broken",
        ),
        ("def reproduce_task(out_dir, **kw):\n    return None\n", "returned NoneType"),
    ],
    ids=["name-in-hnnkit", "module-in-hnnkit", "no-entry"],
)
def test_a_task_that_fails_to_import_is_an_error_naming_it(body, cause, tmp_path, monkeypatch):
    _fake_extra(tmp_path, monkeypatch, "broken", body)
    with pytest.raises(HnnkitValueError, match="broken") as info:
        reproduce(tmp_path / "r", tasks="broken", profile="smoke", echo=lambda s: None)
    assert cause in str(info.value)
    done = tmp_path / "r" / "results.json"
    assert not done.exists() or "broken" not in json.loads(done.read_text())["tasks"]


def test_a_task_whose_runner_raises_names_the_task_and_the_cause(tmp_path, monkeypatch):
    _fake_extra(
        tmp_path,
        monkeypatch,
        "raises",
        "def reproduce_task(out_dir, **kw):\n    raise RuntimeError('boom')\n",
    )
    lines = []
    with pytest.raises(RuntimeError, match="boom"):
        reproduce(tmp_path / "r", tasks="raises", profile="smoke", echo=lines.append)
    assert "[raises] failed: RuntimeError: boom" in lines


def test_a_task_naming_an_unregistered_model_is_refused_before_any_training(tmp_path):
    base = TASKS["spring"]
    register_task(Task(name="cubic-spring", data=base.data, models=("baseline", "cubic-hnn")))
    _REGISTERED.append("cubic-spring")
    with pytest.raises(HnnkitValueError) as info:
        reproduce(tmp_path / "r", tasks="spring,cubic-spring", profile="smoke", echo=print)
    msg = str(info.value)
    assert msg.startswith("task cubic-spring: unknown model 'cubic-hnn'"), msg
    assert "--plugin" in msg
    assert not (tmp_path / "r").exists()


def test_a_task_without_data_or_runner_and_a_taken_name_are_refused():
    with pytest.raises(HnnkitValueError, match="needs data"):
        Task(name="nothing")
    with pytest.raises(HnnkitValueError, match="runner must be callable"):
        Task(name="x", runner="module:function")
    with pytest.raises(HnnkitValueError, match="already registered"):
        register_task(Task(name="spring", runner=lambda out_dir, **kw: {}))
    register_task(TASKS["spring"])  # the same definition again: allowed


def test_the_pip_name_of_the_kan_dependency_is_pykan():
    assert rep.pip_name("kan") == "pykan"


# 7. tests/test_reproduce.py skips the real-pendulum run when its data are absent


def test_reproduce_tests_that_need_the_real_pendulum_data_are_marked_to_skip_without_it():
    import inspect

    import test_reproduce

    tests = {
        name: fn
        for name, fn in vars(test_reproduce).items()
        if name.startswith("test_") and callable(fn)
    }
    needing = {name for name, fn in tests.items() if "real-pendulum" in inspect.getsource(fn)}
    assert needing, "test_reproduce.py no longer runs the real-pendulum task"
    for name in needing:
        marks = {m.name for m in getattr(tests[name], "pytestmark", [])}
        assert "real_pendulum" in marks, f"{name} needs the recording but is not marked"
    # the main smoke test still runs everywhere: it needs no measured data
    assert "test_smoke_reproduce_writes_results_table_report_and_resumes" not in needing


# 8. strict JSON: a NaN metric is null in the files, and summary and tables take it


def _cell(mean, sem=0.1):
    return {"mean": mean, "sem": sem}


def _seed(seed, symplecticity):
    model = {
        "losses": {"train_loss": _cell(1.0), "test_loss": _cell(None)},
        "original_energy": _cell(None, None),
        "corrected": {
            "energy": _cell(2.0),
            "rollout_mse": _cell(None),
            "valid_time": _cell(3.0),
            "energy_drift": _cell(0.1),
            "symplecticity": symplecticity,
        },
        "history": [],
        "train_seconds": 1.0,
        "dissipation": {"rate": _cell(None), "gamma_true": 0.1},
    }
    return {
        "seed": seed,
        "models": {"baseline": model, "hnn": model},
        "truth": {"energy_drift": _cell(None)},
        "energy_decay": {"truth": None, "hnn": 0.5},
    }


def test_null_metrics_from_strict_json_are_summarised_and_tabled():
    task = TASKS["spring"].for_profile("smoke")
    per_seed = [
        _seed(0, _cell(None, None)),
        _seed(1, {"mean": None, "sem": None, "values": [None, 1.0]}),
    ]
    entry = json.loads(json.dumps(summarise(task, per_seed, "smoke")))  # no crash
    from hnnkit.files import dumps

    entry = json.loads(dumps(entry))  # NaN → null as on disk
    hnn = entry["models"]["hnn"]
    assert hnn["symplecticity"]["mean"] is None and hnn["train_loss"]["mean"] == 1000.0
    assert entry["energy_decay_rate"]["hnn"] == 0.5 and entry["energy_decay_rate"]["truth"] is None
    results = {"profile": "smoke", "tasks": {"spring": entry}}
    table = markdown_table(results)
    assert "| spring | HNN |" in table and "symplecticity" in table
    assert "<table>" in html_report(results, {})


def test_an_extra_tasks_corrupted_seed_file_is_moved_aside_with_a_message(tmp_path):
    from hnnkit.experiments._seeds import run_seeds

    (tmp_path / "seed0").mkdir()
    (tmp_path / "seed0" / "metrics.json").write_text("[1, 2")
    lines = []
    runs = run_seeds(tmp_path, 1, lambda d, s: {"seed": s}, echo=lines.append)
    assert runs == [{"seed": 0}]
    assert (tmp_path / "seed0" / "metrics.json.corrupt").read_text() == "[1, 2"
    assert any("corrupted" in line and "rerunning seed 0" in line for line in lines)


def test_seeds_of_another_profile_are_refused_not_relabelled(run_copy):
    _drop_entry(run_copy)
    with pytest.raises(
        HnnkitValueError, match="--profile smoke, this run asks for --profile quick"
    ):
        reproduce(run_copy, tasks="spring", profile="quick", quiet=True, echo=lambda s: None)
