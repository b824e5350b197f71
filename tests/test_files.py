"""hnnkit.files: atomic writes, strict JSON, the directory lock and OSError messages."""

import errno
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from hnnkit.files import (
    LOCK_NAME,
    DirectoryLock,
    DirectoryLockedError,
    atomic_write,
    atomic_write_json,
    describe_os_error,
    remove_stale_temporaries,
)


def test_json_is_strict_non_finite_floats_become_null(tmp_path):
    obj = {"a": math.nan, "b": [1.5, math.inf, -math.inf], "c": (1, 2), "d": np.float64("nan")}
    obj["e"] = torch.tensor([0.5, float("nan")])
    path = atomic_write_json(tmp_path / "m.json", obj)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text

    def refuse(token: str):
        raise ValueError(f"non-standard JSON token {token}")

    loaded = json.loads(text, parse_constant=refuse)  # a strict reader accepts it
    assert loaded == {"a": None, "b": [1.5, None, None], "c": [1, 2], "d": None, "e": [0.5, None]}


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "results.json"
    atomic_write_json(path, {"old": 1})

    def fail(tmp):
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(path, fail)
    assert json.loads(path.read_text()) == {"old": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_written_files_get_ordinary_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        path = atomic_write_json(tmp_path / "m.json", {})
    finally:
        os.umask(mask)
    assert os.stat(path).st_mode & 0o777 == 0o644  # not a temporary file's 0o600


def test_stale_temporaries_are_removed_and_nothing_else(tmp_path):
    (tmp_path / "hnn").mkdir()
    stale = [tmp_path / ".checkpoint.pt.abc123.tmp", tmp_path / "hnn" / ".loss.svg.x1.tmp"]
    keep = [tmp_path / "checkpoint.pt", tmp_path / "notes.tmp", tmp_path / "hnn" / "log.csv"]
    for p in stale + keep:
        p.write_text("x")
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted(stale)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in stale)


HOLDER = """
import sys, time
from hnnkit.files import DirectoryLock
with DirectoryLock(sys.argv[1], "hnnkit train"):
    print("locked", flush=True)
    time.sleep(60)
"""


def _hold(directory):
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(directory)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_process_is_refused_with_the_holders_pid(tmp_path):
    proc = _hold(tmp_path)
    try:
        with pytest.raises(DirectoryLockedError, match=rf"pid {proc.pid} \(hnnkit train\)"):
            with DirectoryLock(tmp_path, "hnnkit reproduce"):
                pass
    finally:
        proc.kill()
        proc.wait()


def test_the_lock_of_a_killed_process_is_free(tmp_path):
    proc = _hold(tmp_path)
    proc.kill()  # as kill -9: no clean-up runs
    proc.wait()
    assert (tmp_path / LOCK_NAME).exists()
    with DirectoryLock(tmp_path, "hnnkit train"):
        assert f"pid {os.getpid()}" in (tmp_path / LOCK_NAME).read_text()


def test_the_lock_is_released_on_exit_and_on_error(tmp_path):
    with pytest.raises(RuntimeError):
        with DirectoryLock(tmp_path):
            raise RuntimeError("boom")
    start = time.perf_counter()
    with DirectoryLock(tmp_path):
        pass
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize(
    ("code", "hint"),
    [
        (errno.EACCES, "not writable"),
        (errno.EROFS, "read-only"),
        (errno.ENOSPC, "disk is full"),
        (errno.ENOTDIR, "is a file"),
    ],
)
def test_os_errors_are_described_with_what_to_do(code, hint):
    message = describe_os_error(OSError(code, os.strerror(code), "/x/results.json"))
    assert message.startswith("cannot write /x/results.json: ") and hint in message
