import json
import math

import pytest

from hnnkit.cli import main


def test_systems_lists_every_registered_system(capsys):
    assert main(["systems"]) == 0
    out = capsys.readouterr().out
    for name in ("spring", "pendulum", "two-body", "three-body", "custom"):
        assert name in out
    assert "k*q**2/2 + p**2/(2*m)" in out


def test_systems_shortens_long_formulas_unless_full(capsys):
    from hnnkit.cli import FORMULA_WIDTH
    from hnnkit.systems import FPUBeta

    whole = str(FPUBeta().formula)
    assert len(whole) > FORMULA_WIDTH
    assert main(["systems"]) == 0
    out = capsys.readouterr().out
    fpu = next(line for line in out.splitlines() if line.startswith("fpu-beta"))
    assert whole not in out and whole[: FORMULA_WIDTH - 1] + "…" in fpu
    assert "--full prints them whole" in out
    assert main(["systems", "--full"]) == 0
    assert whole in capsys.readouterr().out


def test_train_then_evaluate_writes_a_complete_run_dir(tmp_path, capsys):
    run = tmp_path / "run"
    args = [
        "train",
        "--system",
        "spring",
        "--model",
        "hnn",
        "--out",
        str(run),
        "--steps",
        "20",
        "--hidden",
        "16,16",
        "--n-trajectories",
        "6",
        "--log-every",
        "10",
        "--quiet",
    ]
    assert main(args) == 0
    for name in ("config.json", "checkpoint.pt", "log.csv", "metrics.json", "loss.png", "loss.svg"):
        assert (run / name).is_file(), name
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["seed"] == 0 and cfg["provenance"]["torch"] and "git_commit" in cfg["provenance"]
    trained = json.loads((run / "metrics.json").read_text())
    assert main(["evaluate", str(run), "--t-span", "0", "5"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    # evaluate adds to what training recorded instead of dropping it
    assert metrics["train_seconds"] == trained["train_seconds"]
    assert {
        "train_loss",
        "test_loss",
        "energy",
        "rollout_mse",
        "valid_time",
        "energy_drift",
    } <= set(metrics)
    assert (run / "rollouts.png").is_file()
    # resume continues to a longer run from the saved checkpoint
    assert main([*args[:-1], "--resume", "--quiet"]) == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["reproduce", "--tasks", "spin"], "unknown task 'spin'; valid tasks are"),
        (["reproduce", "--profile", "fast"], "valid profiles are: paper, quick, smoke"),
        (["reproduce", "--protocol", "new"], "valid protocols are: corrected, original"),
        (["train", "--system", "sprung", "--out", "x"], "valid systems are"),
        (
            ["train", "--system", "spring", "--through-step", "--out", "x"],
            "--through-step needs targets that are forward differences",
        ),
        (
            ["train", "--system", "spring", "--model", "kan", "--through-step", "--out", "x"],
            "--through-step is for --model hnn, baseline or dhnn",
        ),
    ],
)
def test_bad_input_is_rejected_with_the_valid_values(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "results").exists() and not (tmp_path / "x").exists()


def test_reproduce_refuses_a_file_and_missing_cuda(tmp_path, capsys):
    # (a corrupted results.json is reproduce's own concern: tests/test_reproduce*.py)
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["reproduce", "--out", str(f)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hnnkit reproduce: error: ") and "is a file" in err
    d = tmp_path / "out"
    d.mkdir()
    import torch

    if not torch.cuda.is_available():
        assert main(["reproduce", "--out", str(d), "--device", "cuda"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err


@pytest.mark.real_pendulum
def test_dhnn_trains_through_the_step_on_the_real_pendulum(tmp_path, capsys):
    run = tmp_path / "dhnn"
    argv = ["train", "--system", "real-pendulum", "--model", "dhnn", "--through-step"]
    argv += ["--steps", "30", "--hidden", "16,16", "--out", str(run)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "learned dissipation rate" in out
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["through_step"] is True and cfg["weight_decay"] == 1e-5  # the dhnn's default
    trained = json.loads((run / "metrics.json").read_text())
    assert math.isfinite(trained["dissipation_rate"]["mean"])
    # evaluate rebuilds the dhnn and scores it through the step, as training did
    assert main(["evaluate", str(run), "--t-span", "0", "2"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_loss"] == trained["test_loss"]
    assert metrics["symplecticity"]["mean"] > 1e-6  # a dissipative field is not symplectic


def test_evaluate_explains_a_missing_or_corrupt_run(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
    config = {"system": "spring", "model": "hnn", "seed": 0, "hidden": [8]}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "checkpoint.pt").write_bytes(b"truncated")
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "corrupted" in capsys.readouterr().err
