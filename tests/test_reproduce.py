import json

import pytest

from hnnkit.experiments.reproduce import reproduce


def _check_entries(out, data, tasks):
    for task in tasks:
        entry = data["tasks"][task]
        assert "skipped" not in entry, entry["skipped"]
        for model in ("baseline", "hnn"):
            m = entry["models"][model]
            assert m["n_seeds"] == 1
            for key in ("train_loss", "test_loss", "energy"):
                assert set(m[key]) == {"mean", "sem"} and m[key]["mean"] > 0
            assert set(m["original"]) >= {"train_loss", "test_loss", "energy"}
        assert (out / task / "figures" / "rollouts.png").is_file()
        assert (out / task / "figures" / "loss.svg").is_file()


@pytest.mark.real_pendulum  # skipped with a reason when the recording cannot be found
def test_smoke_reproduce_real_pendulum(tmp_path):
    out = tmp_path / "r"
    res = reproduce(out, tasks="real-pendulum", profile="smoke", quiet=True, echo=lambda s: None)
    data = json.loads((out / "results.json").read_text())
    assert data == res
    _check_entries(out, data, ["real-pendulum"])


def test_smoke_reproduce_writes_results_table_report_and_resumes(tmp_path):
    out = tmp_path / "r"
    lines = []
    res = reproduce(out, tasks="spring", profile="smoke", quiet=True, echo=lines.append)
    data = json.loads((out / "results.json").read_text())
    assert data == json.loads(json.dumps(res))
    _check_entries(out, data, ["spring"])
    assert data["provenance"]["torch"] and "git_commit" in data["provenance"]
    table = (out / "table.md").read_text()
    assert "| spring | HNN |" in table and "paper energy" in table
    html = (out / "report.html").read_text()
    assert (
        "data:image/png;base64," in html
        and "<table>" in html
        and "http" not in html.split("<body>")[1]
    )
    assert any("| spring | baseline NN |" in line for line in lines)
    # A second call skips finished tasks instead of retraining them.
    again = []
    reproduce(out, tasks="spring", profile="smoke", quiet=True, echo=again.append)
    assert any("already in" in line for line in again)
    # Finished seeds are reused after a kill: drop the task summary but keep seed results.
    data["tasks"].pop("spring")
    (out / "results.json").write_text(json.dumps(data))
    mtime = (out / "spring" / "seed0" / "metrics.json").stat().st_mtime
    reproduce(out, tasks="spring", profile="smoke", quiet=True, echo=lambda s: None)
    assert (out / "spring" / "seed0" / "metrics.json").stat().st_mtime == mtime


def test_original_column_averages_seeds_with_the_within_run_error():
    from hnnkit.report.results import within_run

    cell = within_run([{"mean": 1.0, "sem": 0.3}, {"mean": 3.0, "sem": 0.4}])
    assert cell["mean"] == pytest.approx(2.0)
    assert cell["sem"] == pytest.approx((0.125) ** 0.5)  # sqrt((0.09 + 0.16) / 2)


def test_three_body_records_the_divergence_and_draws_it(tmp_path):
    reproduce(tmp_path, tasks="three-body", profile="smoke", quiet=True, echo=lambda *a: None)
    metrics = json.loads((tmp_path / "three-body" / "seed0" / "metrics.json").read_text())
    div = metrics["divergence"]
    assert div["energy_drift"]["truth"][0] < 1e-7  # the reference solve conserves H
    assert div["learned_energy_drift"]["hnn"][0] < 1e-6  # the HNN conserves its own H_θ
    assert set(div["divergence_time"]) == {"baseline", "hnn"}
    assert (tmp_path / "three-body" / "figures" / "divergence.png").is_file()
    # angular momentum is scored like the energy, with the reference solve as yardstick
    entry = json.loads((tmp_path / "results.json").read_text())["tasks"]["three-body"]
    assert entry["truth"]["angular_momentum_drift"]["mean"] < 1e-8
    for model in ("baseline", "hnn"):
        assert entry["models"][model]["angular_momentum_drift"]["mean"] > 1e-6  # untrained
    assert "angular-momentum drift" in (tmp_path / "table.md").read_text()


def test_extra_tasks_run_in_reproduce_and_reuse_finished_seeds(tmp_path):
    res = reproduce(
        tmp_path,
        tasks="pixel-pendulum,kan-spring",
        profile="smoke",
        quiet=True,
        echo=lambda *a: None,
    )
    for task in ("pixel-pendulum", "kan-spring"):
        assert "models" in res["tasks"][task], res["tasks"][task]
        assert (tmp_path / task / "seed0" / "metrics.json").is_file()
        assert any((tmp_path / task / "figures").glob("*.png"))
    stamp = (tmp_path / "kan-spring" / "seed0" / "metrics.json").stat().st_mtime_ns
    (tmp_path / "results.json").unlink()  # force the tasks to run again: finished seeds are reused
    reproduce(tmp_path, tasks="kan-spring", profile="smoke", quiet=True, echo=lambda *a: None)
    assert (tmp_path / "kan-spring" / "seed0" / "metrics.json").stat().st_mtime_ns == stamp
