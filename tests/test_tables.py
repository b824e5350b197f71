"""Table 1's formatting: numbers, the lowest energy in bold, the HTML header groups."""

import math

import pytest

from hnnkit.report.tables import fmt, html_report, markdown_table, number


@pytest.mark.parametrize(
    "value, digits, text",
    [
        (3784.0, 3, "3780"),
        (174.0, 2, "170"),
        (0.38, 3, "0.38"),
        (0.001234, 3, "0.00123"),
        (9.2, 3, "9.2"),
        (-3.25, 2, "-3.2"),
        (0.0, 3, "0"),
        (2.52e7, 3, "2.52e7"),
        (1.0e-5, 2, "1e-5"),
        (0.000999, 3, "9.99e-4"),
        (math.inf, 3, "inf"),
    ],
)
def test_numbers_are_positional_in_the_readable_range_and_compact_outside(value, digits, text):
    assert number(value, digits) == text


def test_the_error_follows_its_means_notation():
    assert fmt({"mean": 1.12e5, "sem": 15056.0}) == "1.12e5 ± 1.5e4"
    assert fmt({"mean": 357.0, "sem": 37.4}) == "357 ± 37"
    assert fmt({"mean": 2.67, "sem": None}) == "2.67"
    assert fmt(None) == "–"


def _results():
    def model(train, energy_orig, energy_corr):
        cell = lambda m: {"mean": m, "sem": m / 10}  # noqa: E731
        return {
            "n_seeds": 3,
            "train_loss": cell(train),
            "test_loss": cell(train),
            "energy": cell(energy_corr),
            "original": {
                "train_loss": cell(train),
                "test_loss": cell(train),
                "energy": cell(energy_orig),
            },
        }

    return {
        "profile": "quick",
        "tasks": {
            "spring": {
                "scale": 1e3,
                "paper": {"hnn": {"train": [37, 2], "test": [36, 2], "energy": [0.38, 0.1]}},
                # the original protocol and the corrected one disagree on which is lower
                "models": {"hnn": model(36.0, 0.2, 900.0), "baseline": model(37.0, 212.0, 11.8)},
            },
            "two-body": {"skipped": "not in this profile"},
        },
    }


def test_markdown_bolds_each_protocols_lowest_energy_per_task():
    table = markdown_table(_results())
    rows = {
        line.split(" | ")[1]: line for line in table.splitlines() if line.startswith("| spring")
    }
    assert rows["baseline NN"].startswith(
        "| spring | baseline NN | ×1e3 | 3 | Table 1 | – | – | – |"
    )
    hnn, base = rows["HNN"].split(" | "), rows["baseline NN"].split(" | ")
    assert hnn[10] == "**0.2 ± 0.02**" and base[10] == "212 ± 21"  # original protocol
    assert hnn[13] == "900 ± 90 |" and base[13] == "**11.8 ± 1.2** |"  # corrected protocol
    assert "| spring | HNN | ×1e3 | 3 | Table 1 | 37 ± 2 | 36 ± 2 | 0.38 ± 0.1 |" in rows["HNN"]
    assert table.index("| spring | baseline NN |") < table.index("| spring | HNN |")


def test_html_groups_the_protocols_and_spans_the_task():
    page = html_report(_results(), {})
    assert '<th colspan="3" class="paper">paper (source under the task)</th>' in page
    assert "<small>×1e3 · Table 1</small>" in page
    assert '<th colspan="3" class="corrected">ours, corrected protocol</th>' in page
    assert page.count('rowspan="2" class="task">spring') == 1  # one cell for both models
    assert '<td class="corrected best">11.8<span class="pm"> ± 1.2</span></td>' in page
    assert "<b>two-body</b>: not in this profile" in page


def test_long_horizon_marks_the_drift_closest_to_the_truth_and_skips_ties():
    from hnnkit.report.tables import long_horizon_markdown, long_horizon_table

    def cell(v):
        return {"mean": v, "sem": 0.0}

    results = {
        "tasks": {
            "damped": {  # friction: the truth's energy decays by 0.85 over the span
                "models": {
                    "hnn": {"valid_time": cell(2.0), "energy_drift": cell(0.0)},
                    "dhnn": {"valid_time": cell(2.0), "energy_drift": cell(0.8)},
                },
                "truth": {"energy_drift": cell(0.85)},
            },
            "orbit": {
                "models": {
                    "baseline": {"rollout_mse": cell(5.0), "angular_momentum_drift": cell(0.3)},
                    "hnn": {"rollout_mse": cell(9.0), "angular_momentum_drift": cell(0.01)},
                },
                "truth": {"angular_momentum_drift": cell(1e-12)},
            },
            "kan": {"models": {"kan-hnn": {"train_loss": cell(1.0)}}},  # no long-horizon data
        }
    }
    header, rows, best = long_horizon_table(results)
    assert header == [
        "task",
        "model",
        "scale",
        "rollout MSE",
        "valid time",
        "energy drift",
        "angular-momentum drift",
    ]
    where = {(r[0], r[1]): n for n, r in enumerate(rows)}
    assert ("kan", "kan-hnn") not in where and ("damped", "truth") in where
    assert (where["damped", "dhnn"], 5) in best and (where["damped", "hnn"], 5) not in best
    assert not any(col == 4 for _, col in best)  # equal valid times: nobody is marked
    assert (where["orbit", "baseline"], 3) in best and (where["orbit", "hnn"], 6) in best
    assert "| orbit | truth | ×1e3 | – | – | – | 1e-12 ± 0 |" in long_horizon_markdown(results)
    results["tasks"]["orbit"]["n_seeds"] = 1  # one seed: no error bar, not "± 0"
    assert "| orbit | truth | ×1e3 | – | – | – | 1e-12 (n = 1) |" in long_horizon_markdown(results)


def test_skipped_tasks_come_first_with_their_fix():
    from hnnkit.report.tables import skipped_lines

    results = _results()
    results["tasks"]["real-pendulum"] = {
        "skipped": "its measured data were not found (no file)",
        "fix": "set HNNKIT_DATA=DIR or connect to download",
    }
    table = markdown_table(results)
    head = table.split("| task |")[0]
    assert head.startswith("> **Skipped, not in the table:** 2 tasks")
    assert "> - **two-body**: not in this profile" in head
    assert (
        "> - **real-pendulum**: set HNNKIT_DATA=DIR or connect to download "
        "(skipped: its measured data were not found (no file))"
    ) in head
    body = html_report(results, {}).split("<body>")[1]
    assert body.index('<div class="skipped">') < body.index("<table>")
    assert body.index("set HNNKIT_DATA=DIR or connect to download") < body.index("<table>")
    assert skipped_lines(results) == [
        "SKIPPED 2 tasks, not in the table:",
        "  two-body: not in this profile",
        "  real-pendulum: set HNNKIT_DATA=DIR or connect to download "
        "(skipped: its measured data were not found (no file))",
    ]
    del results["tasks"]["two-body"], results["tasks"]["real-pendulum"]
    assert markdown_table(results).startswith("**Summary.**") and skipped_lines(results) == []
    assert '<div class="skipped">' not in html_report(results, {})
