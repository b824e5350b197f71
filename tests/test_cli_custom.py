"""``hnnkit train --system custom --hamiltonian ...``, ``--energy-range`` and ``hnnkit systems``."""

import json

import pytest
import torch

from hnnkit.cli import main
from hnnkit.data import generate
from hnnkit.systems import Custom

HENON_HEILES = "(p1**2+p2**2)/2 + (q1**2+q2**2)/2 + q1**2*q2 - q2**3/3"
TINY = ["--steps", "20", "--hidden", "16", "--n-trajectories", "6", "--n-points", "12"]
TINY += ["--log-every", "10", "--quiet"]


def refused(capsys, argv, needle, out):
    """``argv`` fails with one line ``hnnkit train: error: ...`` holding ``needle``, exit 2, no run."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hnnkit train: error: "), err
    assert needle in err[0], err[0]
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]


def test_custom_henon_heiles_with_an_energy_band_trains_and_evaluates(tmp_path, capsys):
    run = tmp_path / "hh"
    argv = ["train", "--system", "custom", "--hamiltonian", HENON_HEILES, "--dof", "2"]
    argv += ["--energy-range", "0.02", "0.1", "--out", str(run), *TINY]
    assert main(argv) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["system"] == "custom" and cfg["hamiltonian"] == HENON_HEILES
    assert cfg["dof"] == 2 and cfg["params"] == {} and cfg["energy_range"] == [0.02, 0.1]
    assert cfg["dataset"]["energy_range"] == [0.02, 0.1]
    # the generated start states really lie in the band (same config, same data)
    system = Custom(HENON_HEILES, dof=2)
    data = generate(system, n_trajectories=6, n_points=12, energy_range=(0.02, 0.1), seed=0)
    assert data.config == cfg["dataset"]
    e0 = system.energy(data.x_clean[:, 0])
    assert float(e0.min()) >= 0.02 and float(e0.max()) <= 0.1
    # evaluate rebuilds the same system and data from config.json
    assert main(["evaluate", str(run), "--t-span", "0", "2"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("train_loss", "test_loss", "energy", "rollout_mse", "valid_time"):
        assert metrics[key]["mean"] >= 0, key
    assert metrics["symplecticity"]["mean"] < 1e-10  # an HNN's flow is symplectic
    assert (run / "rollouts.png").is_file()


def test_custom_parameters_are_recorded_and_used(tmp_path):
    run = tmp_path / "k"
    argv = ["train", "--system", "custom", "--hamiltonian", "k*q**2/2 + p**2/2"]
    argv += ["--param", "k=4", "--out", str(run), *TINY]
    assert main(argv) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["params"] == {"k": 4.0} and cfg["dof"] == 1
    assert cfg["dataset"]["system_params"]["parameters"] == {"k": 4.0}
    # omega = 2: the field at (q, p) = (1, 0) is (0, -4)
    field = Custom("k*q**2/2 + p**2/2", parameters={"k": 4.0}).vector_field(
        0.0, torch.tensor([[1.0, 0.0]], dtype=torch.float64)
    )
    torch.testing.assert_close(field, torch.tensor([[0.0, -4.0]], dtype=torch.float64))


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (
            ["--system", "custom"],
            '--system custom needs --hamiltonian FORMULA, e.g. --hamiltonian "',
        ),
        (
            ["--system", "spring", "--hamiltonian", "p**2"],
            "--hamiltonian: only for --system custom",
        ),
        (["--system", "spring", "--dof", "2"], "--dof: only for --system custom"),
        (["--system", "custom", "--hamiltonian", "__import__('os').system('true')"], "not allowed"),
        (["--system", "custom", "--hamiltonian", "q**(10**10) + p**2"], "numeric exponents"),
        (["--system", "custom", "--hamiltonian", "x**2 + p**2"], "unknown names ['x']"),
        (["--system", "custom", "--hamiltonian", "q1**2 + p1**2", "--dof", "0"], "--dof must be"),
        (["--system", "custom", "--hamiltonian", "k*q**2", "--param", "k"], "--param takes NAME="),
        (
            ["--system", "custom", "--hamiltonian", "q**2+p**2", "--energy-range", "-1", "-0.5"],
            "below the minimum of H",
        ),
        (["--system", "spring", "--energy-range", "0.5", "0.1"], "LO < HI"),
        (["--system", "real-pendulum", "--energy-range", "0.1", "0.5"], "fixed recording"),
        (["--system", "spring", "--test-fraction", "1.5"], "--test-fraction must be in (0, 1)"),
        ([], "needs --system NAME"),
    ],
)
def test_bad_custom_options_are_one_line_errors(tmp_path, capsys, extra, needle):
    out = tmp_path / "run"
    tiny = ["--steps", "20", "--hidden", "16", "--quiet"]
    refused(capsys, ["train", *extra, "--out", str(out), *tiny], needle, out)


def test_systems_lists_every_system_in_aligned_columns(capsys):
    assert main(["systems"]) == 0
    lines = capsys.readouterr().out.splitlines()
    if lines[-1].startswith("(…"):  # the note on shortened formulas, under the table
        lines = lines[:-1]
    names = [line.split()[0] for line in lines[1:]]
    for name in ("spring", "pendulum", "two-body", "three-body", "custom", "real-pendulum"):
        assert name in names
    header = lines[0]
    starts = [header.index(c) for c in ("class", "dof", "H(q, p)")]
    for line in lines[1:]:
        assert line[starts[0] - 2 : starts[0]] == "  " and line[starts[0]] != " ", line
        assert line[starts[2] - 2 : starts[2]] == "  " and line[starts[2]] != " ", line
    row = {line.split()[0]: line for line in lines[1:]}
    assert row["real-pendulum"].split()[1] == "measured"
    assert "--hamiltonian" in row["custom"] and row["two-body"].split()[2] == "4"
