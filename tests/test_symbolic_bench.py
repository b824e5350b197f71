"""The symbolic-recovery benchmark: the term matcher that decides every cell, the SINDy
baseline, one resumable cell end to end, the table, and bad input."""

from __future__ import annotations

import dataclasses
import json
import sys

import pytest
import sympy

from hnnkit.cli import main
from hnnkit.errors import HnnkitValueError, UnknownNameError
from hnnkit.experiments import symbolic_bench as sb
from hnnkit.experiments.term_match import canonical_terms, match_all, match_terms
from hnnkit.report.symbolic_bench import bench_table
from hnnkit.symbolic import phase_space_symbols

S1 = phase_space_symbols(1)
S2 = phase_space_symbols(2)
PENDULUM = "3*(1 - cos(q)) + p**2"


# -- the term matcher ----------------------------------------------------------------------
def test_exact_terms_match_and_a_constant_is_allowed():
    assert match_terms("p**2 + q**2 - 0.65", "q**2 + p**2", S1).success
    assert match_terms("p**2 + q**2 + 7", "q**2 + p**2 + 1", S1).success
    # a vector field has no free constant
    m = match_terms("2*p + 0.3", "2*p", S1, allow_constant=False)
    assert not m.success and [t.is_constant for t in m.extra] == [True]


def test_a_wrong_missing_or_extra_term_fails():
    wrong = match_terms("p**2 + q**3", "q**2 + p**2", S1)
    assert not wrong.success
    assert [t.label() for t in wrong.missing] == ["q^2"]
    assert [t.label() for t in wrong.extra] == ["q^3"]
    # a tiny spurious term is still a wrong form
    tiny = match_terms("p**2 + q**2 + 1e-7*p**4*q**3", "q**2 + p**2", S1)
    assert not tiny.success and [t.monomial for t in tiny.extra] == [(("p", 4), ("q", 3))]
    assert not match_terms("p**2", "q**2 + p**2", S1).success


@pytest.mark.parametrize(
    ("scale", "ok"), [(1.005, True), (0.995, True), (1.015, False), (0.985, False)]
)
def test_each_coefficient_must_be_within_one_percent(scale, ok):
    found = f"{scale}*q**4/4 + p**2/2 + q**2/2"
    m = match_terms(found, "p**2/2 + q**2/2 + q**4/4", S1)
    assert m.success is ok
    assert m.worst_error == pytest.approx(abs(scale - 1), rel=1e-9)


@pytest.mark.parametrize(
    "found",
    [
        "p**2 - 3*cos(q) + 11",  # expanded
        "p**2 - 3*cos(-q)",  # cos is even
        "p**2 - 2.998*cos(1.004*q - 0.003)",  # a KAN's affine argument, within 1 %
        "p**2 + 3*cos(q + pi)",  # a phase of pi flips the sign
        "p**2 - 3*sin(q + pi/2)",  # sin(x + pi/2) = cos(x)
        "p**2 + 3*sin(-q - pi/2)",  # both
    ],
)
def test_cos_forms_of_the_pendulum_match(found):
    m = match_terms(found, PENDULUM, S1)
    assert m.success, m.summary()


@pytest.mark.parametrize(
    "found",
    [
        "p**2 - 3*cos(1.02*q)",  # frequency 2 % off
        "p**2 - 3*cos(q + 0.05)",  # phase 0.05 rad off
        "p**2 + 3*cos(q)",  # wrong sign
        "p**2 - 3*sin(q)",  # another function
        "p**2 - 3*cos(q**2)",  # an argument that is not affine
    ],
)
def test_wrong_cos_forms_fail(found):
    assert not match_terms(found, PENDULUM, S1).success


def test_cross_terms_compare_after_expansion():
    true = "(p1**2 + p2**2)/2 + (q1**2 + q2**2)/2 + (q1 - q2)**2/2"
    found = "0.5*p1**2 + 0.5*p2**2 + 1.003*q1**2 + 0.998*q2**2 - 1.0*q1*q2"
    assert match_terms(found, true, S2).success
    assert not match_terms(found.replace("- 1.0*q1*q2", ""), true, S2).success
    hh = canonical_terms("q1**2*q2 - q2**3/3", S2)
    assert {t.label(): t.coefficient for t in hh} == pytest.approx({"q1^2*q2": 1.0, "q2^3": -1 / 3})


def test_matcher_bad_input():
    with pytest.raises(HnnkitValueError, match="not coordinates"):
        match_terms("x**2", "q**2", S1)
    with pytest.raises(HnnkitValueError, match="rtol must be >= 0"):
        match_terms("q**2", "q**2", S1, rtol=-1)
    with pytest.raises(HnnkitValueError, match="2 found formulas for 1"):
        match_all(["q", "p"], ["q"], S1)


# -- SINDy ---------------------------------------------------------------------------------
def _train_arrays(name: str, noise: float = 0.0):
    data = sb.bench_data(name, noise, 0, sb.BenchSettings(n_trajectories=6, n_points=20))
    return (v.reshape(-1, v.shape[-1]).numpy() for v in data.split("train"))


def test_sindy_recovers_the_noise_free_spring_and_pendulum():
    pytest.importorskip("pysindy", reason="the SINDy baseline needs the sindy extra")
    from hnnkit.experiments.sindy_baseline import fit_sindy

    st = sb.BenchSettings(n_trajectories=6, n_points=20)
    cell = sb.run_sindy_cell("spring", sb.bench_data("spring", 0.0, 0, st), st)
    assert cell["success"], cell["why"]
    x, dx = _train_arrays("pendulum")
    fit = fit_sindy(x, dx, S1, trig=True)
    assert all(m.success for m in match_all(fit.field, sb.true_field(sb.SYSTEMS["pendulum"]), S1))


def test_sindy_fails_with_a_library_that_cannot_express_the_field():
    pytest.importorskip("pysindy", reason="the SINDy baseline needs the sindy extra")
    from hnnkit.experiments.sindy_baseline import fit_sindy

    x, dx = _train_arrays("pendulum")
    fit = fit_sindy(x, dx, S1, degree=2, trig=False)  # no sin(q)
    matches = match_all(fit.field, sb.true_field(sb.SYSTEMS["pendulum"]), S1, allow_constant=False)
    assert matches[0].success  # dq/dt = 2p is in the library
    assert not matches[1].success and matches[1].missing  # -3 sin(q) is not


def test_missing_pysindy_says_how_to_install_it(monkeypatch, tmp_path):
    from hnnkit.experiments.sindy_baseline import require_pysindy

    monkeypatch.setitem(sys.modules, "pysindy", None)  # import pysindy now raises ImportError
    with pytest.raises(HnnkitValueError, match=r"hnnkit\[sindy\]"):
        require_pysindy()
    with pytest.raises(HnnkitValueError, match="--no-sindy"):
        sb.run_bench(tmp_path, ["spring"], [0.0], [0], sb.PROFILES["quick"])
    assert not list(tmp_path.glob("cells/**/*.json"))


# -- data, one cell, the table --------------------------------------------------------------
def test_relative_noise_has_the_requested_std_per_coordinate():
    st = sb.BenchSettings(n_trajectories=40, n_points=30)
    clean = sb.bench_data("duffing", 0.0, 3, st)
    noisy = sb.bench_data("duffing", 0.1, 3, st)
    assert noisy.dx.equal(clean.dx)  # the targets stay the clean field
    err = (noisy.x - clean.x).reshape(-1, 2)
    ratio = err.std(0) / clean.x.reshape(-1, 2).std(0)
    assert ratio.numpy() == pytest.approx([0.1, 0.1], rel=0.08)


def test_true_field_of_the_damped_spring():
    q, p = S1
    field = sb.true_field(sb.SYSTEMS["damped-spring"])
    assert [sympy.expand(f - g) for f, g in zip(field, [2 * p, -2 * q - 0.1 * p], strict=True)] == [
        0,
        0,
    ]


def test_a_tiny_cell_end_to_end_is_written_once_and_resumed(tmp_path):
    pytest.importorskip("pysindy", reason="the SINDy baseline needs the sindy extra")
    st = dataclasses.replace(
        sb.PROFILES["quick"], n_trajectories=4, n_points=15, steps=3, restart_steps=0
    )
    _, ran = sb.run_cell(tmp_path, "spring", 0.0, 0, st)
    path = sb.cell_path(tmp_path, "spring", 0.0, 0)
    assert ran and path.is_file()
    saved = json.loads(path.read_text())
    assert saved["config"]["seed"] == 0 and saved["config"]["settings"]["steps"] == 3
    assert set(saved["provenance"]) >= {"git_commit", "torch", "sympy"}
    assert saved["sindy"]["success"] is True  # noise-free spring: 2p, -2q
    assert isinstance(saved["kan"]["success"], bool) and saved["kan"]["seconds"] > 0
    again, ran = sb.run_cell(tmp_path, "spring", 0.0, 0, st)
    assert not ran and again == saved
    _, ran = sb.run_cell(tmp_path, "spring", 0.0, 0, dataclasses.replace(st, steps=4))
    assert ran  # other settings: the cell is rerun
    main(["symbolic-bench", "--report-only", "--out", str(tmp_path)])
    table = (tmp_path / "table.md").read_text()
    assert "| spring |" in table and "SINDy" in table


def test_sindy_sweep_shows_the_threshold_decides():
    pytest.importorskip("pysindy", reason="the SINDy baseline needs the sindy extra")
    st = sb.BenchSettings(n_trajectories=6, n_points=20)
    rows = sb.sindy_sweep(["spring"], [0.0], [0], st, [0.05, 5.0])
    verdict = {r["config"]["system"]: r["sindy"]["success"] for r in rows}
    # the spring's coefficients are 2: a threshold of 5 removes every true term
    assert verdict == {"spring @ 0.05": True, "spring @ 5": False}
    assert "| spring @ 5 | – · 0/1 (0%) |" in bench_table(rows)
    with pytest.raises(HnnkitValueError, match="thresholds must be > 0"):
        sb.sindy_sweep(["spring"], [0.0], [0], st, [0.0])


def _cell(system, noise, seed, kan, sindy, secs=2.0):
    return {
        "config": {"system": system, "noise": noise, "seed": seed},
        "kan": {"success": kan, "seconds": secs},
        "sindy": {"success": sindy, "seconds": secs / 100},
    }


def test_table_counts_successes_per_system_and_noise():
    cells = [
        _cell("spring", 0.0, 0, True, True),
        _cell("spring", 0.0, 1, True, False),
        _cell("spring", 0.1, 0, False, False, secs=4.0),
        _cell("pendulum", 0.0, 0, True, True),
    ]
    table = bench_table(cells, polynomial=["spring"])
    lines = table.splitlines()
    assert lines[2].startswith(
        "| spring | 2/2 (100%) · 1/2 (50%) | 0/1 (0%) · 0/1 (0%) | 0,1 | 2 · 0.02 |"
    )
    assert "| pendulum | 1/1 (100%) · 1/1 (100%) | not run |" in table
    assert lines[-1].startswith("| **polynomial systems** | 2/2 (100%)")


def test_grid_bad_input():
    with pytest.raises(UnknownNameError, match="spring"):
        sb.check_grid(["sprong"], [0.0], [0])
    with pytest.raises(HnnkitValueError, match=r"0, 0\.01, 0\.05, 0\.1"):
        sb.check_grid(["spring"], [0.02], [0])
    with pytest.raises(HnnkitValueError, match="seeds must be >= 0"):
        sb.check_grid(["spring"], [0.0], [-1])
    with pytest.raises(SystemExit):
        main(["symbolic-bench", "--noise", "a,b"])
    with pytest.raises(HnnkitValueError, match="--steps must be >= 1"):
        sb_args = ["symbolic-bench", "--steps", "0", "--systems", "spring"]
        from hnnkit.cli import build_parser

        args = build_parser().parse_args(sb_args)
        args.func(args)
