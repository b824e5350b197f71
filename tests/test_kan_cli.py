"""``hnnkit train --model kan`` and ``hnnkit symbolic``: a short run end to end, and the errors."""

import copy
import dataclasses
import json
import shutil

import pytest
import sympy
import torch

from hnnkit.cli import main
from hnnkit.train import load_checkpoint

# 20 trajectories of the noise-free spring (H = q² + p²) and 12 L-BFGS steps: the KAN is far
# from converged (loss 4e-4), but its edges are clean parabolas and the formula comes out exact.
TRAIN = [
    "train",
    "--system",
    "spring",
    "--model",
    "kan",
    "--noise-std",
    "0",
    "--n-trajectories",
    "20",
    "--steps",
    "12",
    "--log-every",
    "4",
    "--quiet",
]


@pytest.fixture(scope="module")
def kan_run(tmp_path_factory):
    """One trained KAN run directory (with --l1 and --prune), shared by the tests below."""
    root = tmp_path_factory.mktemp("kan-cli")
    run = root / "run"
    with pytest.MonkeyPatch.context() as mp:  # the module scope cannot use the autouse fixture
        mp.setenv("HNNKIT_CACHE", str(root / "cache"))
        assert main([*TRAIN, "--l1", "5e-5", "--prune", "--out", str(run)]) == 0
    return run


def test_train_kan_writes_a_complete_run(kan_run):
    for name in ("config.json", "checkpoint.pt", "log.csv", "metrics.json", "loss.png"):
        assert (kan_run / name).is_file(), name
    assert not (kan_run / "kan_run.pt").exists()  # the checkpoint holds what extraction reads
    state = load_checkpoint(kan_run / "checkpoint.pt")  # weights_only=True
    assert {"model", "optimizer", "generator", "step", "history", "settings", "config"} <= set(
        state
    )
    assert state["step"] == 12 and [h["step"] for h in state["history"]] == [3, 7, 11, 12]
    assert state["config"] == {
        k: v
        for k, v in json.loads((kan_run / "config.json").read_text()).items()
        if k not in ("dataset", "provenance")
    }
    assert state["optimizer"]["state"]  # the last stage's L-BFGS state
    assert state["kan"] == json.loads((kan_run / "metrics.json").read_text())["kan"]
    assert state["symbolic"]["kan"]["widths"] == [2, 1, 2] and "state_dict" not in state["symbolic"]
    # the pruned weights: the unused output's edge is masked in the checkpoint
    assert state["model"]["energy_net.act_fun.1.mask"][0, 0] == 0
    cfg = json.loads((kan_run / "config.json").read_text())
    assert cfg["optimizer"] == "lbfgs" and cfg["weight_decay"] == 0.0  # the kan defaults
    assert cfg["kan"]["widths"] == [2, 1, 2] and cfg["kan"]["output_index"] == 1
    assert cfg["kan"]["l1"] == 5e-5 and cfg["kan"]["prune"] is True
    metrics = json.loads((kan_run / "metrics.json").read_text())
    assert metrics["train_loss"]["mean"] < 1e-2 and metrics["kan"]["steps"] == 12
    # with L1 the unused output 0 is pruned: node (2, 0) and its one edge (1, 0, 0)
    assert metrics["kan"]["pruned_nodes"] == [[2, 0]]
    assert [1, 0, 0] in metrics["kan"]["pruned_edges"]
    steps = [int(line.split(",")[0]) for line in (kan_run / "log.csv").read_text().split()[1:]]
    assert steps == [3, 7, 11, 12]  # a quarter of the steps, the grid update, then the rest


def test_symbolic_prints_the_spring_hamiltonian(kan_run, tmp_path, capsys):
    out_json = tmp_path / "formula.json"
    assert main(["symbolic", str(kan_run), "--python", "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("H = p**2 + q**2"), out
    assert "LaTeX: H = p^{2} + q^{2}" in out
    assert "def hamiltonian(q, p):" in out and "torch.pow(q, 2)" in out
    coefficients = json.loads(out_json.read_text())["coefficients"]
    assert abs(coefficients["q**2"] - 1) < 1e-3 and abs(coefficients["p**2"] - 1) < 1e-3
    assert set(coefficients) == {"q**2", "p**2", "1"}


def test_evaluate_rebuilds_a_kan_run(kan_run, tmp_path):
    run = shutil.copytree(kan_run, tmp_path / "run")  # evaluate rewrites metrics.json
    kan_section = json.loads((run / "metrics.json").read_text())["kan"]
    assert main(["evaluate", str(run), "--t-span", "0", "2"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["rollout_mse"]["mean"] < 1e-2
    assert metrics["kan"] == kan_section  # training's record survives re-evaluation
    assert (run / "rollouts.png").is_file()


def test_restarts_keep_the_best_candidate(tmp_path):
    run = tmp_path / "run"
    argv = [*TRAIN[:-5], "--steps", "4", "--restarts", "2", "--kan-widths", "2,1", "--quiet"]
    assert main([*argv, "--out", str(run)]) == 0
    info = json.loads((run / "metrics.json").read_text())["kan"]
    objectives = info["restart_objectives"]
    assert len(objectives) == 2 and info["restart_chosen"] == objectives.index(min(objectives))
    state = load_checkpoint(run / "checkpoint.pt")["symbolic"]
    assert state["kan"]["widths"] == [2, 1] and state["output_index"] == 0
    assert main(["symbolic", str(run)]) == 0  # the chosen candidate's weights are the ones read


class _Killed(Exception):
    pass


def test_a_killed_kan_run_resumes_to_the_uninterrupted_one(kan_run, tmp_path, monkeypatch):
    import hnnkit.train.schedules as schedules

    monkeypatch.setenv("HNNKIT_CACHE", str(kan_run.parent / "cache"))
    argv = [*TRAIN, "--l1", "5e-5", "--prune", "--out", str(tmp_path / "run")]
    run = shutil.copytree(kan_run, tmp_path / "run")
    (run / "checkpoint.pt").unlink()  # config.json alone: --resume trains it in place
    fit, steps = schedules.fit, [0]

    def killed_fit(*args, **kwargs):
        def kill(step, loss):
            steps[0] += 1
            if steps[0] == 9:  # inside the stage after the grid update
                raise _Killed

        return fit(*args, **{**kwargs, "callbacks": [kill]})

    monkeypatch.setattr(schedules, "fit", killed_fit)
    with pytest.raises(_Killed):
        main([*argv, "--resume"])
    assert load_checkpoint(run / "checkpoint.pt")["schedule"]["part"] == ["stage", 1, 0]
    monkeypatch.setattr(schedules, "fit", fit)
    assert main([*argv, "--resume"]) == 0
    done, reference = (load_checkpoint(r / "checkpoint.pt") for r in (run, kan_run))
    assert done["model"].keys() == reference["model"].keys()
    assert all(torch.equal(done["model"][k], reference["model"][k]) for k in done["model"])
    assert done["history"] == [
        {**h, "seconds": d["seconds"]}
        for h, d in zip(reference["history"], done["history"], strict=True)
    ]
    assert done["kan"] == reference["kan"]
    # a finished run resumed trains no further and keeps its files
    assert main([*argv, "--resume"]) == 0
    again = load_checkpoint(run / "checkpoint.pt")
    assert all(torch.equal(again["model"][k], done["model"][k]) for k in done["model"])


def test_an_old_kan_run_with_kan_run_pt_still_reads(kan_run, tmp_path, capsys):
    from hnnkit.cli import model_from_config
    from hnnkit.symbolic import kan_run_entry

    old = shutil.copytree(kan_run, tmp_path / "old")
    new = load_checkpoint(old / "checkpoint.pt")
    entry = new["symbolic"]
    # the checkpoint that train --model kan wrote before: no optimizer, generator or schedule
    state = {k: new[k] for k in ("model", "step", "history", "settings", "config")}
    model = model_from_config(state["config"], 2)
    model.load_state_dict(state["model"])
    torch.save(state, old / "checkpoint.pt")
    data = tuple(entry["data"][k] for k in ("x", "dx", "x_test", "dx_test"))
    torch.save(kan_run_entry(model, data), old / "kan_run.pt")  # the older standalone file
    # a stale kan_run.pt beside a checkpoint that holds the run entry is not read
    stale = shutil.copytree(kan_run, tmp_path / "stale")
    (stale / "kan_run.pt").write_bytes(b"stale")
    found = {}
    for name, run in (("new", kan_run), ("old", old), ("stale", stale)):
        out_json = tmp_path / f"{name}.json"
        assert main(["symbolic", str(run), "--json", str(out_json)]) == 0
        found[name] = _terms(json.loads(out_json.read_text())["coefficients"])
    assert set(found["new"]) == set(found["old"]) == set(found["stale"]) == {Q**2, P**2}
    assert all(found["new"][t] == found["old"][t] == found["stale"][t] for t in found["new"])
    capsys.readouterr()
    assert main([*TRAIN, "--l1", "5e-5", "--prune", "--out", str(old), "--resume"]) == 2
    assert "holds no training schedule); pass --force" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--model", "kan", "--restarts", "0"], "--restarts must be >= 1"),
        (["--model", "kan", "--restarts", "-2"], "--restarts must be >= 1"),
        (["--model", "hnn", "--restarts", "3"], "--restarts: only for --model kan"),
        (["--model", "baseline", "--prune"], "--prune: only for --model kan"),
        (["--model", "kan", "--kan-widths", "4,1"], "must start with the 2 phase-space"),
        (["--model", "kan", "--kan-widths", "2"], "at least two positive sizes"),
        (["--model", "kan", "--l1", "-1"], "--l1 must be >= 0"),
        (["--model", "kan", "--grid", "0"], "--grid must be >= 1"),
        (["--model", "hnn", "--dissipative"], "--dissipative: only for --model kan"),
        (["--model", "kan", "--dissipative", "--kan-widths", "2,1,2"], "one output (H and D"),
        (["--model", "kan", "--dissipative", "--l1", "1e-4"], "--l1: not supported with --diss"),
        (["--model", "kan", "--dissipative", "--prune"], "--prune: not supported with --diss"),
    ],
)
def test_bad_kan_options_are_rejected_before_any_work(extra, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["train", "--system", "spring", "--out", str(out), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_symbolic_errors_are_clear(kan_run, tmp_path, capsys):
    def error(path) -> str:
        assert main(["symbolic", str(path)]) == 2
        return capsys.readouterr().err

    assert "does not exist; train one with `hnnkit train" in error(tmp_path / "missing")
    assert "holds no KAN run (checkpoint.pt or kan_run.pt)" in error(tmp_path)
    hnn = tmp_path / "hnn"
    hnn.mkdir()
    (hnn / "config.json").write_text(json.dumps({"model": "hnn", "system": "pendulum"}))
    assert "--system pendulum --model kan" in error(hnn)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "kan_run.pt").write_bytes(b"truncated")
    assert "is corrupted" in error(bad)
    torch.save({"weights": {}}, bad / "kan_run.pt")  # a readable file that is not a KAN run
    assert "is not a KAN run file" in error(bad)
    # a kan-spring output directory holds one run per model: name them
    (tmp_path / "kan-hnn").mkdir()
    (tmp_path / "kan-hnn" / "checkpoint.pt").write_bytes(b"")
    assert "these subdirectories do" in error(tmp_path) and "kan-hnn" in error(tmp_path)
    # a checkpoint without the KAN run entry (a kan run trained before checkpoints held it)
    plain = tmp_path / "plain"
    plain.mkdir()
    state = load_checkpoint(kan_run / "checkpoint.pt")
    del state["symbolic"]
    torch.save(state, plain / "checkpoint.pt")
    assert "a checkpoint without a KAN run entry" in error(plain)


@pytest.fixture(scope="module")
def damped_run(tmp_path_factory):
    """The README's dissipative run: two KANs on 8 noise-free damped-spring trajectories."""
    root = tmp_path_factory.mktemp("kan-damped")
    run = root / "damped"
    argv = ["train", "--system", "damped-spring", "--model", "kan", "--dissipative"]
    argv += ["--noise-std", "0", "--n-trajectories", "8", "--steps", "25", "--quiet"]
    with pytest.MonkeyPatch.context() as mp:  # the module scope cannot use the autouse fixture
        mp.setenv("HNNKIT_CACHE", str(root / "cache"))
        assert main([*argv, "--out", str(run)]) == 0
    return run


Q, P = sympy.symbols("q p", real=True)


def _terms(coefficients: dict[str, float]) -> dict[sympy.Expr, float]:
    """A ``--json`` coefficient table as term → coefficient, the constant ``"1"`` left out."""
    parsed = {sympy.sympify(k, locals={"q": Q, "p": P}): v for k, v in coefficients.items()}
    return {term: v for term, v in parsed.items() if term != 1}


def _expr_terms(expr: sympy.Expr) -> dict[sympy.Expr, float]:
    coefs = sympy.expand(expr).as_coefficients_dict()
    return {term: float(c) for term, c in coefs.items() if term != 1}


def _assert_exact_pair(h: dict, d: dict, tol: float) -> None:
    """H = q² + p² + c and D = 0.05 p² (= γp²/2, γ = 0.1) within ``tol``, no other term."""
    assert set(h) == {Q**2, P**2} and set(d) == {P**2}, (h, d)
    assert abs(h[Q**2] - 1) < tol and abs(h[P**2] - 1) < tol and abs(d[P**2] - 0.05) < tol


def test_a_dissipative_kan_run_gives_h_and_d_from_the_command_line(damped_run, tmp_path, capsys):
    run = damped_run
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["kan"]["dissipative"] is True and cfg["kan"]["widths"] == [2, 1, 1]
    for library in ("default", "quadratic"):  # quadratic: the noisy-data choice
        out_json = tmp_path / f"{library}.json"
        assert main(["symbolic", str(run), "--library", library, "--json", str(out_json)]) == 0
        info = json.loads(out_json.read_text())
        h, d = _terms(info["hamiltonian"]["coefficients"]), _terms(info["dissipation_coefficients"])
        _assert_exact_pair(h, d, 1e-9)  # the raw refit
        printed = sympy.sympify(info["dissipation"], locals={"q": Q, "p": P})
        assert _expr_terms(printed) == {P**2: 0.05}  # what the first lines print
        nice_h = sympy.sympify(info["hamiltonian"]["formula"], locals={"q": Q, "p": P})
        assert _expr_terms(nice_h) == {Q**2: 1.0, P**2: 1.0}
        assert info["losses"]["test"] < 1e-20
        assert info["checks"]["d_nonnegative"] and info["checks"]["h_bounded_below"]
    capsys.readouterr()
    # evaluate rebuilds the two-KAN model from config.json and the checkpoint
    evaluated = shutil.copytree(run, tmp_path / "run")  # evaluate rewrites metrics.json
    assert main(["evaluate", str(evaluated), "--t-span", "0", "1"]) == 0
    assert json.loads((evaluated / "metrics.json").read_text())["rollout_mse"]["mean"] < 1e-3


def _perturbed(kan, rel: float, gen: torch.Generator):
    """A copy of ``kan`` with every parameter multiplied by ``1 + rel·N(0, 1)``."""
    clone = copy.deepcopy(kan)
    with torch.no_grad():
        for prm in clone.parameters():
            prm.mul_(1 + rel * torch.randn(prm.shape, generator=gen, dtype=prm.dtype))
    return clone


def test_the_dissipative_run_reads_back_the_same_on_any_machine(damped_run):
    from hnnkit.models import DissipativeHNN
    from hnnkit.symbolic import extract_dissipative, extract_from_run
    from hnnkit.symbolic._runs import load_run as _load_run

    threads = torch.get_num_threads()
    found = {}
    try:  # the same trained model read back with one and with two threads
        for n in (1, 2):
            torch.set_num_threads(n)
            found[n] = extract_from_run(damped_run)
    finally:
        torch.set_num_threads(threads)
    assert torch.get_num_threads() == threads
    for pick in (lambda f: f.hamiltonian.expr, lambda f: f.expr):
        one, two = _expr_terms(pick(found[1])), _expr_terms(pick(found[2]))
        assert set(one) == set(two)
        assert all(abs(one[t] - two[t]) < 1e-9 for t in one), (one, two)
    reference = found[1]
    _assert_exact_pair(_expr_terms(reference.hamiltonian.expr), _expr_terms(reference.expr), 1e-9)

    kan, _, data, (dkan, form) = _load_run(damped_run)
    gen = torch.Generator().manual_seed(0)

    def model(rel: float) -> DissipativeHNN:
        return DissipativeHNN(
            2,
            energy_net=_perturbed(kan, rel, gen),
            dissipation_net=_perturbed(dkan, rel, gen),
            form=form,
        )

    moved = dataclasses.replace(  # the run's data (a Splits): states and targets perturbed
        data,
        **{
            k: (t := getattr(data, k))
            * (1 + 1e-12 * torch.randn(t.shape, generator=gen, dtype=t.dtype))
            for k in ("x", "dx", "x_test", "dx_test")
        },
    )
    for again in (extract_dissipative(model(1e-12), data), extract_dissipative(model(0), moved)):
        assert set(_expr_terms(again.hamiltonian.expr)) == set(
            _expr_terms(reference.hamiltonian.expr)
        )
        assert set(_expr_terms(again.expr)) == set(_expr_terms(reference.expr))
    # 1e-7: what another machine's BLAS accumulates over the 25 L-BFGS steps
    other = extract_dissipative(model(1e-7), data)
    _assert_exact_pair(_expr_terms(other.hamiltonian.expr), _expr_terms(other.expr), 1e-6)
    assert _expr_terms(other.nice) == {P**2: 0.05}


# -- the kan-spring experiment's model directories are standard run directories ----------------
@pytest.fixture(scope="module")
def kan_spring_out(tmp_path_factory):
    """One smoke run of the kan-spring experiment (four models, 3 L-BFGS steps each)."""
    from hnnkit.experiments.kan_spring import run_kan_spring

    root = tmp_path_factory.mktemp("kan-spring")
    with pytest.MonkeyPatch.context() as mp:  # the module scope cannot use the autouse fixture
        mp.setenv("HNNKIT_CACHE", str(root / "cache"))
        results = run_kan_spring(root / "out", profile="smoke")
    return root / "out", results


def test_kan_spring_writes_a_standard_run_directory_per_kan(kan_spring_out):
    out, results = kan_spring_out
    top = ["figures", "formula.txt", "kan-hnn", "kan-hnn-l1", "metrics.json"]
    assert sorted(p.name for p in out.iterdir()) == top
    for name in ("kan-hnn", "kan-hnn-l1"):
        run = out / name
        files = ["checkpoint.pt", "config.json", "log.csv", "metrics.json"]
        assert sorted(p.name for p in run.iterdir()) == files  # no kan_run.pt
        state = load_checkpoint(run / "checkpoint.pt")  # written by fit, weights_only=True
        assert {"model", "optimizer", "generator", "settings", "kan", "symbolic"} <= set(state)
        assert state["step"] == 3 and state["settings"]["optimizer"] == "lbfgs"
        cfg = json.loads((run / "config.json").read_text())
        assert state["config"] == {
            k: v for k, v in cfg.items() if k not in ("dataset", "provenance")
        }
        assert cfg["model"] == "kan" and cfg["task"] == "kan-spring"
        assert cfg["kan"]["widths"] == [2, 1, 2] and cfg["kan"]["output_index"] == 1
        assert cfg["kan"]["l1"] == (5e-5 if name.endswith("-l1") else 0.0)
        assert cfg["params"]["k"] == 2.0 and cfg["params"]["m"] == 0.5
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["kan"] == state["kan"] and metrics["kan"]["steps"] == 3
        after = results["pruning"][name]  # the experiment's losses of the pruned model
        assert metrics["train_loss"]["mean"] == pytest.approx(after["train_loss_after"], rel=1e-12)
        assert metrics["test_loss"]["mean"] == pytest.approx(after["test_loss_after"], rel=1e-12)
        rows = (run / "log.csv").read_text().split()[1:]
        assert [int(r.split(",")[0]) for r in rows] == [h["step"] for h in state["history"]]


def test_symbolic_reads_a_kan_spring_model_directory(kan_spring_out, tmp_path, capsys):
    out, results = kan_spring_out
    out_json = tmp_path / "formula.json"
    assert main(["symbolic", str(out / "kan-hnn"), "--json", str(out_json)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == f"H = {results['formula']}"  # the experiment's own extraction
    assert printed[0].startswith("H = p**2 + q**2")
    start = next(i for i, line in enumerate(printed) if line.startswith("coefficients")) + 1
    table = {}
    for line in printed[start:]:
        if not line.startswith("  "):
            break
        term, value = line.split()
        table[term] = float(value)
    assert set(table) == {"p**2", "q**2", "1"}
    assert abs(table["p**2"] - 1) < 1e-6 and abs(table["q**2"] - 1) < 1e-6
    terms = _terms(json.loads(out_json.read_text())["coefficients"])
    assert set(terms) == {Q**2, P**2} and all(abs(v - 1) < 1e-6 for v in terms.values())


def test_evaluate_reads_a_kan_spring_model_directory(kan_spring_out, tmp_path):
    out, _ = kan_spring_out
    run = shutil.copytree(out / "kan-hnn-l1", tmp_path / "run")  # evaluate rewrites metrics.json
    trained = json.loads((run / "metrics.json").read_text())
    assert main(["evaluate", str(run), "--t-span", "0", "1"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    # the same weights and the same data (the experiment's spring: its k, m and radius range)
    assert metrics["train_loss"] == trained["train_loss"]
    assert metrics["test_loss"] == trained["test_loss"]
    assert metrics["kan"] == trained["kan"] and "rollout_mse" in metrics


def test_symbolic_prints_the_held_out_losses_and_each_terms_confidence(
    damped_run, tmp_path, capsys
):
    out_json = tmp_path / "trust.json"
    assert main(["symbolic", str(damped_run), "--json", str(out_json)]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    held = next(line for line in lines if line.startswith("held-out loss:"))
    formula, network = (float(v) for v in held.split()[3::2])
    assert formula < 1e-20 < network  # the closed form is exact, the network is not
    assert "warning" not in captured.err
    info = json.loads(out_json.read_text())
    assert info["failed"] is False
    terms = {
        (t["part"], sympy.sympify(t["term"], locals={"q": Q, "p": P})): t for t in info["terms"]
    }
    assert set(terms) == {("H", Q**2), ("H", P**2), ("D", P**2)}
    assert abs(terms[("D", P**2)]["coefficient"] - 0.05) < 1e-9
    for t in terms.values():  # each term is needed: the held-out loss rises without it
        assert t["confidence"] > 1 and t["loss_rise"] > 0
    # --denoise: noise-free states are left alone by "auto"; "none" gives the same terms
    assert info["checks"]["denoise"]["method"] == "none"
    out_none = tmp_path / "none.json"
    assert main(["symbolic", str(damped_run), "--denoise", "none", "--json", str(out_none)]) == 0
    again = json.loads(out_none.read_text())
    assert {(t["part"], t["term"]) for t in again["terms"]} == {
        (t["part"], t["term"]) for t in info["terms"]
    }
