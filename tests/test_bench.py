"""`hnnkit bench`: grids, resumable sweeps on the local and Ray engines, and the leaderboard."""

import json
import math
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from hnnkit.cli import main
from hnnkit.errors import DataFileError, HnnkitValueError, UnknownNameError
from hnnkit.experiments import engines
from hnnkit.experiments.bench import bench
from hnnkit.experiments.grid import builtin_grids, load_grid, parse_grid
from hnnkit.report.leaderboard import confidence_interval, ranks

#: Settings that make a cell take a fraction of a second (the numbers mean nothing).
TINY = {
    "data": {"n_trajectories": 4, "n_points": 8},
    "model": {"hidden": [8]},
    "train": {"steps": 3},
    "eval": {"t_span": [0.0, 1.0], "n_points": 10},
}


def tiny(name: str = "smoke", **changes):
    """The built-in grid ``name`` with :data:`TINY` settings and ``changes`` to its keys."""
    data = tomllib.loads(builtin_grids()[name].read_text(encoding="utf-8"))
    data.update(TINY)
    data.update(changes)
    return parse_grid(data, default_name=name)


def metrics_of(out: Path) -> dict[str, dict]:
    """Each cell's metrics and curves (the numbers, not the timings), by hash."""
    found = {}
    for path in sorted((out / "cells").glob("*.json")):
        record = json.loads(path.read_text())
        found[path.stem] = {"metrics": record["metrics"], "curves": record["curves"]}
    return found


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    """The tiny smoke grid (3 systems × 3 models × 2 seeds) run one cell after the other."""
    out = tmp_path_factory.mktemp("sequential")
    lines = []
    summary = bench(tiny(), out, workers=1, quiet=True, echo=lines.append)
    return out, summary, lines


def test_the_smoke_grid_runs_every_cell_and_writes_the_leaderboard(sequential):
    out, summary, _ = sequential
    grid = tiny()
    assert len(grid.systems) >= 3 and len(grid.models) >= 3 and len(grid.seeds) == 2
    assert summary["computed"] == len(grid.cells) == 18 and summary["failed"] == 0
    record = json.loads((out / "cells" / f"{grid.cells[0].hash}.json").read_text())
    # each cell records its config, seed, versions and git commit, and ran on one thread
    assert record["experiment"]["seed"] == grid.cells[0].seed == record["cell"]["seed"]
    assert record["provenance"]["torch_threads"] == 1 and "git_commit" in record["provenance"]
    assert record["steps"] == 3 and record["seconds_per_step"] > 0
    curves = record["curves"]
    assert len(curves["t"]) == 10 and curves["t"][0] == 0.0 and curves["rollout_mse"][0] < 1e-20
    text = (out / "leaderboard.md").read_text()
    for system in grid.systems:
        assert f"## {system}" in text
    assert "95% confidence interval" in text and "Failed cells (0)" in text
    page = (out / "leaderboard.html").read_text()
    assert page.count("<img") == 3 and "data:image/png;base64," in page


def test_two_local_workers_give_the_numbers_of_one(sequential, tmp_path):
    out, _, _ = sequential
    summary = bench(tiny(), tmp_path, workers=2, quiet=True, echo=lambda _: None)
    assert summary["workers"] == 2 and summary["computed"] == 18
    assert metrics_of(tmp_path) == metrics_of(out)  # identical: one torch thread per cell


def test_ray_gives_the_numbers_of_the_local_engine(sequential, tmp_path):
    ray = pytest.importorskip("ray", reason="the Ray engine needs the ray extra")
    out, _, _ = sequential
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        summary = bench(tiny(), tmp_path, engine="ray", quiet=True, echo=lambda _: None)
    finally:
        ray.shutdown()
    assert summary["engine"] == "ray" and summary["computed"] == 18
    assert metrics_of(tmp_path) == metrics_of(out)


def test_a_killed_sweep_continues_and_reuses_the_finished_cells(tmp_path):
    grid_file = tmp_path / "grid.toml"
    header = 'systems = ["spring", "damped-spring"]\nmodels = ["baseline", "hnn"]\nseeds = 3\n'
    grid_file.write_text(header + _toml_tables(TINY))
    assert len(load_grid(grid_file).cells) == 12
    out = tmp_path / "out"
    command = [sys.executable, "-m", "hnnkit.cli", "bench", str(grid_file), "--out", str(out)]
    proc = subprocess.Popen(
        [*command, "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while len(list((out / "cells").glob("*.json"))) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, "the sweep did not start"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / "cells").glob("*.json")}
    assert 2 <= len(done) < 12  # killed mid-run
    lines = []
    summary = bench(grid_file, out, workers=1, quiet=True, echo=lines.append)
    assert f"reusing {len(done)} finished cells" in lines[0]
    assert summary["reused"] == len(done) and summary["computed"] == 12 - len(done)
    for path, (mtime, content) in done.items():  # not recomputed: not even rewritten
        assert path.stat().st_mtime_ns == mtime and path.read_bytes() == content
    assert len(list((out / "cells").glob("*.json"))) == 12


def _toml_tables(tables: dict) -> str:
    lines = []
    for table, body in tables.items():
        lines.append(f"[{table}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in body.items()]
    return "\n" + "\n".join(lines) + "\n"


def test_rerun_redoes_one_cell_and_reuses_the_others(sequential, tmp_path):
    out, _, _ = sequential
    target = tiny().cells[4]
    copy = tmp_path / "copy"
    (copy / "cells").mkdir(parents=True)
    for p in (out / "cells").glob("*.json"):
        (copy / "cells" / p.name).write_bytes(p.read_bytes())
    before = {p.name: p.stat().st_mtime_ns for p in (copy / "cells").glob("*.json")}
    lines = []
    summary = bench(tiny(), copy, rerun=[target.hash[:6]], workers=1, quiet=True, echo=lines.append)
    assert summary["computed"] == 1 and summary["reused"] == 17
    assert any("rerunning it (--rerun)" in line and target.hash in line for line in lines)
    after = {p.name: p.stat().st_mtime_ns for p in (copy / "cells").glob("*.json")}
    changed = [n for n in before if after[n] != before[n]]
    assert changed == [f"{target.hash}.json"]
    # the redone cell has the same numbers
    assert metrics_of(copy)[target.hash] == metrics_of(out)[target.hash]
    with pytest.raises(HnnkitValueError, match="no cell of grid"):
        bench(tiny(), copy, rerun=["ffffffffffff"], quiet=True)
    shared = Counter(c.hash[0] for c in tiny().cells).most_common(1)[0][0]  # 18 hashes, 16 digits
    with pytest.raises(HnnkitValueError, match=r"matches \d+ cells"):
        bench(tiny(), copy, rerun=[shared], quiet=True)


def test_a_failing_cell_is_recorded_and_the_others_finish(tmp_path):
    # a system parameter that does not exist fails in the worker: that cell fails, the rest finish
    grid = tiny(
        systems=["spring"],
        models=["baseline", "hnn"],
        seeds=1,
        **{"per-model": {"hnn": {"data": {"params": {"stiffness": 2.0}}}}},
    )
    lines = []
    summary = bench(grid, tmp_path, workers=1, quiet=True, echo=lines.append)
    assert summary["failed"] == 1 and summary["computed"] == 2
    bad = next(c for c in grid.cells if c.model == "hnn")
    record = json.loads((tmp_path / "cells" / f"{bad.hash}.json").read_text())
    assert record["status"] == "failed" and "stiffness" in record["error"]
    trace = (tmp_path / record["traceback_file"]).read_text()
    assert "Traceback" in trace and "stiffness" in trace
    text = (tmp_path / "leaderboard.md").read_text()
    assert "Failed cells (1)" in text and bad.hash in text
    assert "| 1 | baseline NN | 1 |" in text  # the other cell is in the table
    # run again: the failed cell is tried again, the finished one reused
    summary = bench(grid, tmp_path, workers=1, quiet=True, echo=lines.append)
    assert summary["reused"] == 1 and summary["computed"] == 1


def test_a_corrupted_cell_result_is_reported_and_recomputed(sequential, tmp_path):
    out, _, _ = sequential
    grid = tiny()
    (tmp_path / "cells").mkdir()
    for p in (out / "cells").glob("*.json"):
        (tmp_path / "cells" / p.name).write_bytes(p.read_bytes())
    torn, wrong = grid.cells[0], grid.cells[1]
    torn_path = tmp_path / "cells" / f"{torn.hash}.json"
    torn_path.write_text(torn_path.read_text()[:100])  # cut short
    wrong_path = tmp_path / "cells" / f"{wrong.hash}.json"
    record = json.loads(wrong_path.read_text())
    del record["metrics"]["rollout_mse"]
    wrong_path.write_text(json.dumps(record))
    lines = []
    summary = bench(grid, tmp_path, workers=1, quiet=True, echo=lines.append)
    assert sorted(summary["recomputed_corrupt"]) == sorted([torn.hash, wrong.hash])
    assert summary["computed"] == 2 and summary["reused"] == 16
    reported = [line for line in lines if "is corrupted" in line]
    assert len(reported) == 2 and any("metrics lack rollout_mse" in line for line in reported)
    assert (tmp_path / "cells" / f"{torn.hash}.json.corrupt").is_file()
    assert metrics_of(tmp_path) == metrics_of(out)


def test_the_confidence_interval_is_students_t():
    stats = pytest.importorskip("scipy.stats")
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    ci = confidence_interval(values)
    # mean 3, s = sqrt(2.5), t(0.975, 4) = 2.776445: half-width 1.963243
    assert ci.n == 5 and ci.mean == pytest.approx(3.0)
    assert ci.half == pytest.approx(2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5), rel=1e-12)
    assert ci.half == pytest.approx(1.9632432, rel=1e-6)
    low, high = stats.t.interval(0.95, 4, loc=3.0, scale=stats.sem(values))
    assert (ci.mean - ci.half, ci.mean + ci.half) == pytest.approx((low, high), rel=1e-12)
    two = confidence_interval([0.1, 0.3])  # n = 2: t(0.975, 1) = 12.706
    assert two.half == pytest.approx(12.706204736174698 * 0.1, rel=1e-9)
    assert confidence_interval([4.0]).half is None and confidence_interval([]) is None
    nan = confidence_interval([1.0, float("nan"), 3.0, None])  # non-finite values do not count
    assert nan.n == 2 and nan.mean == pytest.approx(2.0)
    assert ranks({"a": 0.2, "b": 0.1, "c": 0.2}, higher=False) == {"a": 2, "b": 1, "c": 2}
    assert ranks({"a": 0.2, "b": 0.1}, higher=True) == {"a": 1, "b": 2}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"systems": ["spring", "warp-drive"]}, r"unknown system\(s\) 'warp-drive'.*pendulum"),
        ({"models": ["hnn", "transformer"]}, r"unknown model\(s\) 'transformer'.*baseline"),
        ({"models": ["pixel-hnn"]}, r"unknown model\(s\) 'pixel-hnn'"),
        ({"speed": 3}, r"unknown key\(s\) 'speed' in the grid; valid keys: name"),
        ({"systems": []}, "no cells: systems is empty; name at least one of"),
        ({"seeds": 0}, "no cells: seeds = 0"),
        ({"seeds": [1, 1]}, "more than once"),
        ({"train": {"stpes": 3}}, r"unknown key\(s\) 'stpes' in train"),
        ({"train": {"steps": -1}}, "train.steps must be >= 1"),
        ({"noise_std": [-0.1]}, "noise_std must be a finite number >= 0"),
        ({"n_trajectories": [10]}, "both an axis of the grid and set in a data table"),
        ({"per-system": {"mars": {}}}, "per-system.mars: 'mars' is not in the grid's systems"),
        ({"per-model": {"hnn": {"systems": []}}, "models": ["hnn"]}, "no cells"),
    ],
)
def test_a_bad_grid_is_refused_with_the_valid_choices(changes, message):
    with pytest.raises(HnnkitValueError, match=message):
        tiny(**changes)


def test_a_grid_that_is_neither_a_file_nor_built_in_is_refused(tmp_path):
    with pytest.raises(UnknownNameError, match="smoke"):
        load_grid("nonesuch")
    with pytest.raises(DataFileError, match="not found"):
        load_grid(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("systems = [spring")
    with pytest.raises(DataFileError, match="not valid TOML"):
        load_grid(bad)
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('systems = ["spring"]\nmodels = ["nope"]\n')
    with pytest.raises(HnnkitValueError, match=r"unknown\.toml: unknown model\(s\) 'nope'"):
        load_grid(unknown)


def test_the_shipped_grids_are_valid():
    grids = {name: load_grid(name) for name in builtin_grids()}
    assert {"smoke", "default", "zoo"} <= set(grids)
    assert len(grids["default"].seeds) == 10 and len(grids["zoo"].seeds) == 3


def test_the_ray_engine_without_ray_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails as if not installed
    with pytest.raises(HnnkitValueError, match=r"pip install 'hnnkit\[ray\]'"):
        bench(tiny(), tmp_path, engine="ray", quiet=True)


def test_an_unreachable_ray_address_is_an_error_at_once(tmp_path):
    pytest.importorskip("ray", reason="the Ray engine needs the ray extra")
    t0 = time.monotonic()
    with pytest.raises(HnnkitValueError, match="cannot reach a Ray cluster at --address"):
        bench(tiny(), tmp_path, engine="ray", address="127.0.0.1:1", quiet=True)
    assert time.monotonic() - t0 < engines.CONNECT_TIMEOUT + 5
    with pytest.raises(HnnkitValueError, match="is not HOST:PORT"):
        engines.check_reachable("nowhere")
    with pytest.raises(HnnkitValueError, match="pass --engine ray"):
        bench(tiny(), tmp_path, address="auto", quiet=True)


def test_the_command_line_runs_a_grid_and_refuses_bad_input(sequential, tmp_path, capsys):
    out, _, _ = sequential
    copy = tmp_path / "copy"
    (copy / "cells").mkdir(parents=True)
    for p in (out / "cells").glob("*.json"):
        (copy / "cells" / p.name).write_bytes(p.read_bytes())
    grid_file = tmp_path / "grid.toml"
    header = builtin_grids()["smoke"].read_text().split("[data]")[0]
    grid_file.write_text(header + _toml_tables(TINY))
    assert main(["bench", str(grid_file), "--out", str(copy), "--quiet"]) == 0
    assert "reusing 18 finished cells" in capsys.readouterr().out
    assert main(["bench", str(grid_file), "--out", str(copy), "--workers", "0"]) == 2
    assert "--workers must be a positive integer" in capsys.readouterr().err
    assert main(["bench", "nonesuch", "--out", str(copy)]) == 2
    assert "valid grid" in capsys.readouterr().err


def test_every_option_of_bench_is_explained(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--out", "--engine", "--workers", "--address", "--rerun", "--quiet"):
        assert option in text
    for name in builtin_grids():
        assert name in text
    assert "(default: local)" in text and "(default: bench)" in text
    assert "pip install 'hnnkit[ray]'" in text


def test_cells_start_costliest_first_with_ties_in_grid_order():
    from hnnkit.experiments.grid import longest_first

    grid = parse_grid(
        {
            "systems": ["spring"],
            "models": ["la-sympnet", "baseline", "srnn"],
            "seeds": 2,
            "train": {"steps": 10},
            "per-model": {"baseline": {"train": {"steps": 40}}},
        }
    )
    order = [(c.model, c.seed) for c in longest_first(grid.cells)]
    # srnn: 28 x 10 steps; baseline: 1 x 40 steps; la-sympnet: 0.6 x 10 steps (per state)
    assert order == [
        ("srnn", 0), ("srnn", 1), ("baseline", 0), ("baseline", 1),
        ("la-sympnet", 0), ("la-sympnet", 1),
    ]  # fmt: skip
    by = {(c.model, c.seed): c.cost for c in grid.cells}
    assert by[("baseline", 0)] == pytest.approx(4 * by[("srnn", 0)] / 28)


def test_the_cost_estimate_scales_with_steps_and_the_batch():
    base = {"systems": ["spring"], "models": ["hnn"], "data": {"n_trajectories": 20}}
    (full,) = parse_grid({**base, "train": {"steps": 100}}).cells
    (longer,) = parse_grid({**base, "train": {"steps": 300}}).cells
    (batched,) = parse_grid({**base, "train": {"steps": 100, "batch_size": 30}}).cells
    states = 20 * (1 - 0.5) * 30  # the spring's default test fraction and points
    assert full.cost == pytest.approx(2 * 100 * states)
    assert longer.cost == pytest.approx(3 * full.cost)
    assert batched.cost == pytest.approx(full.cost * 30 / states)


def test_local_workers_fork_on_linux_and_spawn_elsewhere(monkeypatch):
    monkeypatch.setattr(engines.sys, "platform", "linux")
    monkeypatch.delitem(sys.modules, "ray", raising=False)
    assert engines._start_method() == "fork"
    monkeypatch.setitem(sys.modules, "ray", object())  # Ray's threads: never fork them
    assert engines._start_method() == "spawn"
    monkeypatch.delitem(sys.modules, "ray")
    for other in ("darwin", "win32"):
        monkeypatch.setattr(engines.sys, "platform", other)
        assert engines._start_method() == "spawn"


def test_the_time_left_weighs_the_cells_by_their_estimated_cost(monkeypatch):
    from hnnkit.experiments import bench as bench_module

    grid = parse_grid(
        {"systems": ["spring"], "models": ["srnn", "baseline"], "seeds": 1, "train": {"steps": 10}}
    )
    srnn, baseline = grid.cells
    clock = iter([100.0, 156.0])
    monkeypatch.setattr(bench_module.time, "perf_counter", lambda: next(clock))
    lines = []
    progress = bench_module._Progress([srnn, baseline], quiet=False, echo=lines.append)
    monkeypatch.setattr(bench_module, "log_mode", lambda: True)
    progress.bar = None
    progress.update(srnn, {"status": "ok", "seconds": 56.0})
    # 56 s for a cost of 28 units; the baseline's 1 unit is left: about 2 s, not another 56 s
    assert lines[-1].endswith("about 2 s left"), lines
