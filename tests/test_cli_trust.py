"""`hnnkit train` and `evaluate` never lose or mislabel a run.

Each test names the guarantee it checks: resume and evaluate compare the whole config, one
process per run directory, no silent overwrite (``--force`` builds beside and swaps in),
validation before any file is written, clear OSError messages, and no leftovers.
"""

import errno
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import hnnkit.files
import hnnkit.train
from hnnkit.cli import main

TINY = ["--steps", "3", "--hidden", "8", "--n-trajectories", "4", "--n-points", "10", "--quiet"]


def train(out, *extra, system="spring"):
    return main(["train", "--system", system, "--out", str(out), *TINY, *extra])


def snapshot(run):
    """The bytes of a run's files, to show that a refused command touched nothing."""
    files = sorted(p for p in run.iterdir() if p.is_file() and p.name != hnnkit.files.LOCK_NAME)
    return {p.name: p.read_bytes() for p in files}


def leftovers(out):
    """Hidden siblings that a build-beside-and-swap left next to ``out``."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def error_line(capsys, command="train"):
    err = capsys.readouterr().err
    assert err.startswith(f"hnnkit {command}: error: ") and "Traceback" not in err, err
    assert err.count("\n") == 1, err
    return err


@pytest.fixture
def run(tmp_path, capsys):
    """A finished tiny spring run."""
    out = tmp_path / "run"
    assert train(out) == 0
    capsys.readouterr()
    return out


# 1. --resume and evaluate compare the whole config


@pytest.mark.parametrize(
    "extra, shown",
    [
        (["--system", "pendulum"], 'system: "spring" → "pendulum"'),
        (["--model", "baseline"], 'model: "hnn" → "baseline"'),
        (["--hidden", "16"], "hidden: [8] → [16]"),
        (["--seed", "1"], "seed: 0 → 1"),
    ],
)
def test_resume_with_another_config_is_refused_listing_the_differences(run, extra, shown, capsys):
    before = snapshot(run)
    argv = ["train", "--system", "spring", "--out", str(run), *TINY, "--resume", *extra]
    assert main(argv) == 2
    err = error_line(capsys)
    assert "cannot resume" in err and shown in err
    assert snapshot(run) == before  # the finished run is untouched, still evaluable


def test_resume_refuses_a_config_json_that_does_not_describe_its_checkpoint(run, capsys):
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**cfg, "system": "pendulum"}))
    before = snapshot(run)
    assert train(run, "--resume", system="pendulum") == 2
    err = error_line(capsys)
    assert 'system: "spring" → "pendulum"' in err
    assert snapshot(run) == before


def test_evaluate_refuses_a_config_json_that_does_not_describe_its_checkpoint(run, capsys):
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**cfg, "system": "pendulum"}))
    before = snapshot(run)
    assert main(["evaluate", str(run)]) == 2
    err = error_line(capsys, "evaluate")
    assert "does not describe the model" in err and 'system: "spring" → "pendulum"' in err
    assert snapshot(run) == before


def test_resume_with_the_same_config_continues(run, capsys):
    assert train(run, "--resume") == 0


# 2. one process per run directory


def hold_lock(directory):
    """A live process holding ``directory``'s lock, as a running train would."""
    code = (
        "import sys, time\n"
        "from hnnkit.files import DirectoryLock\n"
        "lock = DirectoryLock(sys.argv[1], 'hnnkit train').__enter__()\n"
        "print('locked', flush=True)\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(directory)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_locked_run_directory_is_refused_naming_the_holder_until_it_dies(run, capsys):
    before = snapshot(run)
    holder = hold_lock(run)
    try:
        assert train(run, "--force") == 2
        assert f"pid {holder.pid}" in error_line(capsys)
        assert main(["evaluate", str(run), "--t-span", "0", "1"]) == 2
        assert f"pid {holder.pid}" in error_line(capsys, "evaluate")
        assert snapshot(run) == before
    finally:
        holder.kill()
        holder.wait()
    # the kernel dropped the dead holder's lock
    assert train(run, "--force") == 0


def test_a_new_run_directory_is_locked_too(tmp_path, capsys):
    out = tmp_path / "new"
    holder = hold_lock(out)
    try:
        assert train(out) == 2
        assert f"pid {holder.pid}" in error_line(capsys)
        assert not (out / "config.json").exists()
    finally:
        holder.kill()
        holder.wait()


# 3. no silent overwrite; --force builds beside and swaps in


def test_training_again_without_resume_or_force_is_refused(run, capsys):
    before = snapshot(run)
    assert train(run) == 2
    err = error_line(capsys)
    assert "already holds a run" in err and "--resume" in err and "--force" in err
    assert snapshot(run) == before


def test_force_replaces_the_run_and_leaves_nothing_beside_it(run, capsys):
    assert train(run, "--force", "--seed", "7") == 0
    assert json.loads((run / "config.json").read_text())["seed"] == 7
    assert hnnkit.train.load_checkpoint(run / "checkpoint.pt")["config"]["seed"] == 7
    assert leftovers(run) == []


def test_a_failure_during_a_forced_run_keeps_the_old_run(run, monkeypatch):
    before = snapshot(run)
    real_fit = hnnkit.train.fit

    class Killed(Exception):
        pass

    def stop(step, loss):
        if step == 2:
            raise Killed

    def fit_killed_at_step_2(*args, **kwargs):
        return real_fit(*args, **kwargs, callbacks=[stop])

    monkeypatch.setattr(hnnkit.train, "fit", fit_killed_at_step_2)
    with pytest.raises(Killed):
        train(run, "--force", "--seed", "7")
    assert snapshot(run) == before
    assert leftovers(run) == []


def test_resume_and_force_together_are_refused(run, capsys):
    assert train(run, "--resume", "--force") == 2
    assert "pass one of them" in error_line(capsys)


def test_force_refuses_a_directory_that_holds_no_run(tmp_path, capsys):
    out = tmp_path / "notes"
    out.mkdir()
    (out / "thesis.tex").write_text("keep me")
    assert train(out, "--force") == 2
    assert "holds no hnnkit run" in error_line(capsys)
    assert (out / "thesis.tex").read_text() == "keep me"


# 4. real-pendulum options that would be ignored


@pytest.mark.parametrize(
    "flag, value", [("--n-trajectories", "4"), ("--n-points", "10"), ("--noise-std", "0.1")]
)
def test_real_pendulum_refuses_options_it_would_ignore(flag, value, tmp_path, capsys):
    out = tmp_path / "real"
    argv = ["train", "--system", "real-pendulum", "--out", str(out), "--steps", "3", flag, value]
    assert main(argv) == 2
    err = error_line(capsys)
    assert flag in err and "real-pendulum" in err
    assert not out.exists()


# 5. validation before any work or file


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--lr", "inf"], "--lr must be a finite number > 0"),
        (["--lr", "nan"], "--lr must be a finite number > 0"),
        (["--lr", "0"], "--lr must be a finite number > 0"),
        (["--lr=-1e-3"], "--lr must be a finite number > 0"),
        (["--weight-decay", "nan"], "--weight-decay must be a finite number >= 0"),
        (["--weight-decay", "-1"], "--weight-decay must be a finite number >= 0"),
        (["--weight-decay", "inf"], "--weight-decay must be a finite number >= 0"),
        (["--steps", "0"], "--steps must be >= 1"),
        (["--batch-size", "0"], "--batch-size must be >= 1"),
        (["--log-every", "0"], "--log-every must be >= 1"),
        (["--seed", "-1"], "--seed must be"),
        (["--seed", str(2**63)], "--seed must be"),
        (["--hidden", "8,0"], "--hidden takes positive layer sizes"),
        (["--n-trajectories", "1"], "--n-trajectories must be >= 2"),
        (["--n-points", "1"], "--n-points must be >= 2"),
        (["--noise-std", "-0.1"], "--noise-std must be a finite number >= 0"),
        (["--noise-std", "nan"], "--noise-std must be a finite number >= 0"),
        (["--noise-std", "inf"], "--noise-std must be a finite number >= 0"),
        (["--model", "kan", "--lr", "inf"], "--lr must be a finite number > 0"),
        (["--model", "kan", "--l1", "inf"], "--l1 must be >= 0 and finite"),
    ],
)
def test_bad_numbers_are_refused_before_any_file_is_written(extra, message, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["train", "--system", "spring", "--out", str(out), *TINY, *extra]
    assert main(argv) == 2
    assert message in error_line(capsys)
    assert not out.exists() and leftovers(out) == []


@pytest.mark.parametrize("threads", ["0", "100000"])
def test_threads_out_of_range_are_refused(threads, capsys):
    assert main(["--threads", threads, "systems"]) == 2
    assert "--threads must be between 1 and" in error_line(capsys, "systems")


def test_unknown_system_lists_real_pendulum(tmp_path, capsys):
    assert train(tmp_path / "run", system="sprung") == 2
    err = error_line(capsys)
    assert "unknown system 'sprung'" in err
    valid = err.split("valid systems are: ")[1].split(";")[0].strip().split(", ")
    assert "real-pendulum" in valid and "spring" in valid


def test_out_under_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert train(tmp_path / "file" / "run") == 2
    assert "is a file, not a directory" in error_line(capsys)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lr": math.inf}, "lr must be a finite"),
        ({"weight_decay": math.nan}, "weight_decay must be a finite"),
    ],
)
def test_fit_refuses_non_finite_lr_and_weight_decay(kwargs, message):
    from hnnkit.data import generate
    from hnnkit.models import HNN

    data = generate("spring", n_trajectories=4, n_points=10, seed=0)
    model = HNN(2, hidden=(8,), generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=message):
        hnnkit.train.fit(model, data, steps=3, **kwargs)


# 6. OSError → one clear line


def test_a_read_only_parent_gives_a_clear_error(tmp_path, capsys):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        if not os.access(parent, os.W_OK):
            assert train(parent / "run") == 2
            assert "not writable" in error_line(capsys)
            return
    finally:
        parent.chmod(0o700)
    # root writes through a chmod 0o500 directory; /sys refuses even root (EPERM or EROFS)
    parent = Path("/sys/hnnkit-test")
    if not Path("/sys").is_dir():
        pytest.skip("running as root without /sys: no directory refuses writes")
    assert train(parent / "run") == 2
    line = error_line(capsys)
    assert "cannot write" in line and ("not writable" in line or "read-only" in line), line
    assert not parent.exists()


def test_a_full_disk_gives_a_clear_error_and_keeps_the_old_run(run, monkeypatch, capsys):
    before = snapshot(run)

    def full(path, text):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(hnnkit.files, "atomic_write_text", full)
    assert train(run, "--force") == 2
    assert "the disk is full" in error_line(capsys)
    assert snapshot(run) == before and leftovers(run) == []
    new = run.parent / "new"
    assert train(new) == 2
    assert "the disk is full" in error_line(capsys)
    assert not new.exists() and leftovers(new) == []
    assert main(["evaluate", str(run), "--t-span", "0", "1"]) == 2
    assert "the disk is full" in error_line(capsys, "evaluate")


# 7. malformed config.json; evaluate --t-span


@pytest.mark.parametrize(
    "content, message",
    [("[]", "holds a JSON list"), ('{"system": "spring"}', "lacks model, seed")],
)
def test_a_malformed_config_json_is_explained(run, content, message, capsys):
    (run / "config.json").write_text(content)
    assert main(["evaluate", str(run)]) == 2
    assert message in error_line(capsys, "evaluate")
    before = snapshot(run)
    assert train(run, "--resume") == 2
    assert message in error_line(capsys)
    assert snapshot(run) == before


def test_symbolic_explains_a_config_json_that_is_not_an_object(tmp_path, capsys):
    (tmp_path / "config.json").write_text("[]")
    assert main(["symbolic", str(tmp_path)]) == 2
    assert "holds a JSON list" in error_line(capsys, "symbolic")


@pytest.mark.parametrize(
    "span, message",
    [
        (["0", "100000"], "allows at most 200 for spring"),
        (["5", "1"], "END > START"),
        (["0", "nan"], "finite numbers"),
        (["1", "inf"], "finite numbers"),
    ],
)
def test_evaluate_refuses_an_unusable_t_span_at_once(run, span, message, capsys):
    t0 = time.perf_counter()
    assert main(["evaluate", str(run), "--t-span", *span]) == 2
    assert message in error_line(capsys, "evaluate")
    assert time.perf_counter() - t0 < 5


# 8. leftovers


def test_stale_temporaries_are_removed_under_the_lock(run, capsys):
    stale = [run / ".checkpoint.pt.abc123.tmp", run / ".loss.svg.def456.tmp"]
    for p in stale:
        p.write_bytes(b"half a file")
    assert train(run, "--resume") == 0
    assert not any(p.exists() for p in stale)
    for p in stale:
        p.write_bytes(b"half a file")
    assert main(["evaluate", str(run), "--t-span", "0", "1"]) == 0
    assert not any(p.exists() for p in stale)


def test_a_failed_new_run_leaves_no_directory(tmp_path, monkeypatch, capsys):
    from hnnkit.errors import HnnkitValueError

    def fail(*args, **kwargs):
        raise HnnkitValueError("training failed")

    monkeypatch.setattr(hnnkit.train, "fit", fail)
    out = tmp_path / "run"
    assert train(out) == 2
    assert "training failed" in error_line(capsys)
    assert not out.exists() and leftovers(out) == []


def test_leftovers_of_a_killed_swap_are_cleaned_and_the_old_run_restored(run, capsys):
    before = snapshot(run)
    # killed between "rename OUT aside" and "rename the new run in"
    aside = run.parent / f".{run.name}.old-999999"
    run.rename(aside)
    staging = run.parent / f".{run.name}.tmp-999999"
    staging.mkdir()
    (staging / "config.json").write_text("{}")
    assert train(run, "--resume") == 0  # the old run is back, finished: nothing to do
    assert snapshot(run)["checkpoint.pt"] == before["checkpoint.pt"]
    assert leftovers(run) == []
