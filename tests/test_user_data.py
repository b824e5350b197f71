"""Your own start states, energy bands and trajectory files (CSV/npz), library and CLI."""

import csv
import json
import math

import numpy as np
import pytest
import torch

from hnnkit.cli import main
from hnnkit.data import (
    DEFAULT_TEST_FRACTION,
    file_sha256,
    generate,
    load_trajectories,
    sample_energy_band,
)
from hnnkit.errors import DataFileError, HnnkitValueError
from hnnkit.systems import Custom, Spring

HENON_HEILES = "(p1**2+p2**2)/2 + (q1**2+q2**2)/2 + q1**2*q2 - q2**3/3"
TINY = ["--steps", "20", "--hidden", "16", "--log-every", "10", "--quiet"]


# -- initial_states and energy_range --------------------------------------------------------


def test_given_initial_states_start_the_trajectories():
    x0 = torch.tensor([[1.0, 0.0], [0.0, 0.5], [0.3, -0.2]], dtype=torch.float64)
    d = generate("spring", initial_states=x0, n_points=5, noise_std=0.0)
    assert d.n_trajectories == 3
    torch.testing.assert_close(d.x_clean[:, 0], x0, rtol=0, atol=1e-12)
    assert d.config["initial_states"]["n"] == 3
    other = generate("spring", initial_states=x0 * 2, n_points=5, noise_std=0.0)
    assert other.config["initial_states"]["sha256"] != d.config["initial_states"]["sha256"]


@pytest.mark.parametrize(
    ("states", "kwargs", "needle"),
    [
        (np.zeros((3, 4)), {}, "shape (n, 2)"),
        (np.zeros(2), {}, "shape (n, 2)"),
        (np.array([[0.1, 0.2], [np.nan, 0.0]]), {}, "row 1"),
        (np.array([[0.1, 0.2], [0.3, 0.0]]), {"n_trajectories": 5}, "omit n_trajectories"),
        (np.array([[0.1, 0.2], [0.3, 0.0]]), {"energy_range": (0.1, 0.2)}, "not both"),
    ],
)
def test_bad_initial_states_are_refused(states, kwargs, needle):
    with pytest.raises(HnnkitValueError, match=r"initial_states|not both") as info:
        generate("spring", initial_states=states, n_points=5, **kwargs)
    assert needle in str(info.value)


def test_energy_band_of_a_henon_heiles_system():
    hh = Custom(HENON_HEILES, dof=2)
    x = sample_energy_band(hh, 200, (0.02, 0.1), generator=torch.Generator().manual_seed(3))
    e = hh.energy(x)
    assert x.shape == (200, 4)
    assert float(e.min()) >= 0.02 and float(e.max()) <= 0.1
    # the energies fill the band (uniform targets): both ends are reached
    assert float(e.min()) < 0.03 and float(e.max()) > 0.09
    # first crossings stay in the well around the origin (below the escape energy 1/6)
    assert float(x[:, :2].norm(dim=-1).max()) < 1.0


def test_energy_band_is_reproducible_and_recorded():
    a = generate("pendulum", n_trajectories=6, n_points=5, energy_range=(0.5, 1.0), seed=4)
    b = generate("pendulum", n_trajectories=6, n_points=5, energy_range=(0.5, 1.0), seed=4)
    torch.testing.assert_close(a.x, b.x, rtol=0, atol=0)
    assert a.config["energy_range"] == [0.5, 1.0]
    assert a.config["energy_sampler"] == "ray-bisection-1"
    from hnnkit.systems import Pendulum

    e = Pendulum().energy(a.x_clean[:, 0])
    assert float(e.min()) >= 0.5 and float(e.max()) <= 1.0


def test_energy_band_changes_the_cache_key(tmp_path):
    plain = generate("spring", n_trajectories=4, n_points=5, cache=tmp_path)
    band = generate("spring", n_trajectories=4, n_points=5, energy_range=(0.5, 0.6), cache=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 2
    e = Spring().energy(band.x_clean[:, 0])
    assert float(e.min()) >= 0.5 and float(e.max()) <= 0.6
    assert not torch.equal(plain.x, band.x)


@pytest.mark.parametrize(
    ("band", "needle"),
    [
        ((-1.0, -0.5), "below the minimum of H"),
        ((0.3, 0.3), "lo < hi"),
        ((0.3, math.nan), "lo < hi"),
    ],
)
def test_unusable_energy_bands_are_refused(band, needle):
    with pytest.raises(HnnkitValueError, match="energy_range") as info:
        generate(Custom(HENON_HEILES, dof=2), n_trajectories=4, n_points=5, energy_range=band)
    assert needle in str(info.value)


def test_an_energy_band_out_of_reach_is_refused_after_bounded_tries():
    # the spring's H = q² + p² reaches at most R_MAX² = 1e8 along the rays
    with pytest.raises(HnnkitValueError, match="found only 0 of 4 states"):
        generate("spring", n_trajectories=4, n_points=5, energy_range=(1e9, 1e10))


def test_a_band_whose_motion_escapes_is_a_value_error():
    # Hénon–Heiles above its escape energy 1/6: some start states run off to infinity
    with pytest.raises(HnnkitValueError, match="leave every bounded region"):
        generate(
            Custom(HENON_HEILES, dof=2), n_trajectories=4, n_points=5, energy_range=(1e9, 1e10)
        )


# -- CSV and npz files ----------------------------------------------------------------------


def write_csv(path, data, *, derivatives=True, dof1_names=False, rows=None):
    """Write a dataset's clean trajectories as CSV; ``rows`` may edit the rows first."""
    n = data.dim // 2
    qs = ["q"] if dof1_names else [f"q{i}" for i in range(1, n + 1)]
    ps = ["p"] if dof1_names else [f"p{i}" for i in range(1, n + 1)]
    header = ["trajectory", "t", *qs, *ps]
    if derivatives:
        header += ["d" + c for c in qs + ps]
    body = []
    for i in range(data.n_trajectories):
        for j in range(data.n_points):
            row = [f"run{i}", repr(float(data.t[i, j])), *map(repr, data.x_clean[i, j].tolist())]
            if derivatives:
                row += list(map(repr, data.dx[i, j].tolist()))
            body.append(row)
    if rows is not None:
        header, body = rows(header, body)
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *body])
    return path


@pytest.fixture(scope="module")
def spring_data():
    return generate("spring", n_trajectories=6, n_points=12, noise_std=0.0, seed=2)


def test_csv_with_derivatives_round_trips(tmp_path, spring_data):
    path = write_csv(tmp_path / "spring.csv", spring_data)
    d = load_trajectories(path)
    torch.testing.assert_close(d.x, spring_data.x_clean, rtol=0, atol=1e-15)
    torch.testing.assert_close(d.dx, spring_data.dx, rtol=0, atol=1e-15)
    assert d.config["derivatives"] == "given"
    assert d.config["sha256"] == file_sha256(path)
    assert d.config["test_fraction"] == DEFAULT_TEST_FRACTION
    assert d.config["trajectories"] == [f"run{i}" for i in range(6)]
    assert d.test_trajectories.tolist() == [5]  # round(0.2 * 6) = 1 whole trajectory
    assert load_trajectories(path, test_fraction=0.5).test_trajectories.tolist() == [3, 4, 5]


@pytest.mark.parametrize("dof1_names", [False, True])
def test_csv_finite_differences_are_second_order(tmp_path, dof1_names):
    """Halving the step divides the error of the estimated field by about 4 (O(h²))."""
    errors = []
    for m in (41, 81):
        data = generate("spring", n_trajectories=3, n_points=m, t_span=(0, 2), noise_std=0.0)
        path = write_csv(tmp_path / f"s{m}.csv", data, derivatives=False, dof1_names=dof1_names)
        d = load_trajectories(path)
        assert d.config["derivatives"] == "finite differences"
        truth = Spring().vector_field(None, d.x)
        errors.append(float((d.dx - truth).abs().max()))
    ratio = errors[0] / errors[1]
    assert 3.2 < ratio < 4.8, errors
    assert errors[1] < 5e-3


def _drop(col):
    def edit(header, body):
        i = header.index(col)
        return header[:i] + header[i + 1 :], [r[:i] + r[i + 1 :] for r in body]

    return edit


def _set(row, col, value):
    def edit(header, body):
        body[row][header.index(col)] = value
        return header, body

    return edit


def _rename(old, new):
    def edit(header, body):
        return [new if h == old else h for h in header], body

    return edit


def _add_column(name):
    def edit(header, body):
        return [*header, name], [[*r, "0"] for r in body]

    return edit


BAD_CSV = {
    "missing t": (_drop("t"), "missing columns t"),
    "missing trajectory": (_drop("trajectory"), "missing columns trajectory"),
    "nan": (_set(3, "q1", "nan"), "line 5, column q1 is nan"),
    "inf": (_set(4, "dp1", "inf"), "line 6, column dp1 is inf"),
    "not a number": (_set(2, "p1", "abc"), "'abc' is not a number"),
    "ragged": (lambda h, b: (h, b[:-1]), "different numbers of samples"),
    "time goes back": (_set(5, "t", "0.0"), "times must strictly increase"),
    "odd width": (_drop("p1"), "odd state width of 1"),
    "unknown column": (_add_column("energy"), "unknown columns ['energy']"),
    "half the derivatives": (_drop("dp1"), "all of dq1..dq1, dp1..dp1 or none"),
    "mixed names": (_rename("q1", "q"), "mixes the one-degree-of-freedom names"),
}


@pytest.mark.parametrize("case", list(BAD_CSV))
def test_bad_csv_files_are_refused(tmp_path, spring_data, case):
    edit, needle = BAD_CSV[case]
    path = write_csv(tmp_path / "bad.csv", spring_data, rows=edit)
    with pytest.raises(DataFileError, match=r"data file bad\.csv") as info:
        load_trajectories(path)
    assert needle in str(info.value)


def test_other_file_problems_are_refused(tmp_path, spring_data):
    with pytest.raises(DataFileError, match="does not exist"):
        load_trajectories(tmp_path / "none.csv")
    (tmp_path / "x.txt").write_text("a")
    with pytest.raises(DataFileError, match=r"unknown data file type '\.txt'"):
        load_trajectories(tmp_path / "x.txt")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataFileError, match="is empty"):
        load_trajectories(tmp_path / "empty.csv")
    path = write_csv(tmp_path / "s.csv", spring_data)
    with pytest.raises(DataFileError, match="has changed since it was recorded"):
        load_trajectories(path, sha256="0" * 64)
    with pytest.raises(HnnkitValueError, match=r"test_fraction must be in \(0, 1\)"):
        load_trajectories(path, test_fraction=1.0)


def test_npz_keeps_its_split_and_records_its_hash(tmp_path, spring_data):
    path = spring_data.save(tmp_path / "d.npz")
    d = load_trajectories(path)
    assert torch.equal(d.test_mask, spring_data.test_mask)
    assert d.config["format"] == "npz" and d.config["sha256"] == file_sha256(path)
    assert d.config["seed"] == spring_data.config["seed"]
    with pytest.raises(HnnkitValueError, match="holds its own train/test split"):
        load_trajectories(path, test_fraction=0.3)


# -- hnnkit train --data ---------------------------------------------------------------------


def refused(capsys, argv, needle, out, command="train"):
    """``argv`` fails with one line ``hnnkit CMD: error: ...`` holding ``needle``, exit 2, no run."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"hnnkit {command}: error: "), err
    assert needle in err[0], err[0]
    if command == "train":
        assert not out.exists()
        assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]


@pytest.mark.parametrize(("model", "derivatives"), [("hnn", True), ("dhnn", False)])
def test_train_and_evaluate_on_a_csv(tmp_path, capsys, spring_data, model, derivatives):
    path = write_csv(tmp_path / "spring.csv", spring_data, derivatives=derivatives)
    run = tmp_path / "run"
    argv = ["train", "--data", str(path), "--model", model, "--out", str(run), *TINY]
    assert main([*argv, "--test-fraction", "0.34"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["system"] == "data"
    assert cfg["data"] == {
        "path": str(path.absolute()),
        "sha256": file_sha256(path),
        "test_fraction": 0.34,
    }
    expected = "given" if derivatives else "finite differences"
    assert cfg["dataset"]["derivatives"] == expected
    assert cfg["dataset"]["trajectories"] == [f"run{i}" for i in range(6)]
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 0
    assert "scored against their recorded states" in capsys.readouterr().out
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("train_loss", "test_loss", "rollout_mse", "valid_time"):
        assert math.isfinite(metrics[key]["mean"]) and metrics[key]["mean"] >= 0, key
    assert 0 < metrics["valid_time"]["mean"] <= float(spring_data.t[0, -1]) + 1e-12
    assert (run / "rollouts.png").is_file()
    # a changed file is refused, by evaluate and by --resume
    with open(path, "a") as f:
        f.write(f"run9,0.0,{',0.0' * (4 if derivatives else 2)}\n".replace(",,", ","))
    refused(capsys, ["evaluate", str(run)], "has changed since it was recorded", run, "evaluate")


def test_npz_data_trains(tmp_path, spring_data):
    path = spring_data.save(tmp_path / "spring.npz")
    run = tmp_path / "run"
    assert main(["train", "--data", str(path), "--out", str(run), *TINY]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["dataset"]["format"] == "npz" and cfg["data"]["sha256"] == file_sha256(path)


@pytest.mark.parametrize("case", list(BAD_CSV))
def test_bad_csv_files_are_one_line_cli_errors(tmp_path, capsys, spring_data, case):
    edit, needle = BAD_CSV[case]
    path = write_csv(tmp_path / "bad.csv", spring_data, rows=edit)
    out = tmp_path / "run"
    refused(capsys, ["train", "--data", str(path), "--out", str(out), *TINY], needle, out)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--n-trajectories", "6"], "--n-trajectories: not for --data"),
        (["--energy-range", "0.1", "0.2"], "--energy-range: not for --data"),
        (["--hamiltonian", "q**2"], "--hamiltonian: not for --data"),
        (["--system", "spring"], "--data and --system spring: pass one of them"),
        (["--test-fraction", "0"], "--test-fraction must be in (0, 1)"),
    ],
)
def test_data_conflicts_are_refused(tmp_path, capsys, spring_data, extra, needle):
    path = write_csv(tmp_path / "s.csv", spring_data)
    out = tmp_path / "run"
    refused(capsys, ["train", "--data", str(path), *extra, "--out", str(out), *TINY], needle, out)


def test_missing_and_npz_split_conflicts_are_refused(tmp_path, capsys, spring_data):
    out = tmp_path / "run"
    argv = ["train", "--out", str(out), *TINY]
    refused(capsys, [*argv, "--data", str(tmp_path / "none.csv")], "does not exist", out)
    path = spring_data.save(tmp_path / "d.npz")
    refused(
        capsys, [*argv, "--data", str(path), "--test-fraction", "0.3"], "its own train/test", out
    )
