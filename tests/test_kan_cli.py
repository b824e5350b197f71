"""``hnnkit train --model kan`` and ``hnnkit symbolic``: a short run end to end, and the errors."""

import json
import shutil

import pytest
import torch

from hnnkit.cli import main

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
    for name in (
        "config.json",
        "checkpoint.pt",
        "log.csv",
        "metrics.json",
        "loss.png",
        "kan_run.pt",
    ):
        assert (kan_run / name).is_file(), name
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
    state = torch.load(run / "kan_run.pt", weights_only=True)
    assert state["kan"]["widths"] == [2, 1] and state["output_index"] == 0


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
        (["--model", "kan", "--resume"], "--resume is not supported with --model kan"),
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
    assert "holds no kan_run.pt" in error(tmp_path)
    hnn = tmp_path / "hnn"
    hnn.mkdir()
    (hnn / "config.json").write_text(json.dumps({"model": "hnn", "system": "pendulum"}))
    assert "--system pendulum --model kan" in error(hnn)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "kan_run.pt").write_bytes(b"truncated")
    assert "is corrupted" in error(bad)
    torch.save({"model": {}}, bad / "kan_run.pt")  # a readable file that is not a KAN run
    assert "is not a KAN run file" in error(bad)
    # a kan-spring output directory holds one run per model: name them
    (tmp_path / "kan-hnn").mkdir()
    (tmp_path / "kan-hnn" / "kan_run.pt").write_bytes((kan_run / "kan_run.pt").read_bytes())
    assert "these subdirectories do" in error(tmp_path) and "kan-hnn" in error(tmp_path)


def test_a_dissipative_kan_run_gives_h_and_d_from_the_command_line(tmp_path, capsys):
    run = tmp_path / "damped"
    argv = ["train", "--system", "damped-spring", "--model", "kan", "--dissipative"]
    argv += ["--noise-std", "0", "--n-trajectories", "8", "--steps", "25", "--quiet"]
    assert main([*argv, "--out", str(run)]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["kan"]["dissipative"] is True and cfg["kan"]["widths"] == [2, 1, 1]
    capsys.readouterr()
    out_json = tmp_path / "formula.json"
    assert main(["symbolic", str(run), "--json", str(out_json)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("H = p**2 + q**2") and lines[1] == "D = 0.05*p**2  (rayleigh)"
    info = json.loads(out_json.read_text())
    assert abs(info["dissipation_coefficients"]["p**2"] - 0.05) < 1e-4  # gamma / 2
    assert main(["symbolic", str(run), "--library", "quadratic"]) == 0  # the noisy-data choice
    assert "D = 0.05*p**2  (rayleigh)" in capsys.readouterr().out
    assert abs(info["hamiltonian"]["coefficients"]["q**2"] - 1) < 1e-3
    assert info["losses"]["test"] < 1e-20
    # evaluate rebuilds the two-KAN model from config.json and the checkpoint
    assert main(["evaluate", str(run), "--t-span", "0", "1"]) == 0
    assert json.loads((run / "metrics.json").read_text())["rollout_mse"]["mean"] < 1e-3
