import hashlib
import shutil
from pathlib import Path

import pytest
import torch

from hnnkit.data import real_pendulum
from hnnkit.data.real_pendulum import MEMBER_SHA256, load_raw
from hnnkit.errors import DataFileError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_pendulum"


@pytest.fixture(autouse=True)
def _local_copy(monkeypatch):
    if not (SHARED / "real_pend_h_1.txt").exists():
        pytest.fail(f"the test data copy {SHARED} is missing; CI provides it beside the checkout")
    monkeypatch.setenv("HNNKIT_DATA", str(SHARED))


def test_preprocessing_and_split_follow_the_original():
    raw = load_raw()
    assert raw.shape == (556, 4)
    d = real_pendulum()
    assert d.x.shape == (1, 555, 2)
    assert torch.allclose(d.x[0], torch.from_numpy(raw[:-1, 2:4]))
    i = 100
    expected = (raw[i + 1, 2:4] - raw[i, 2:4]) / (raw[i + 1, 1] - raw[i, 1])
    assert torch.allclose(d.dx[0, i], torch.from_numpy(expected))
    test = torch.nonzero(d.test_mask[0]).flatten()
    assert test[0] == 444 and test[-1] == 553 and len(test) == 110
    assert not d.test_mask[0, 554]  # the original puts the last point back into training
    assert d.split("train")[0].shape == (445, 2)


def test_zip_and_text_copies_both_load_and_match():
    a = real_pendulum(SHARED / "real_pend_h_1.txt")
    b = real_pendulum(SHARED / "invar_datasets.zip")
    assert torch.equal(a.x, b.x)


def test_checksum_mismatch_and_missing_file(tmp_path, monkeypatch):
    bad = tmp_path / "real_pend_h_1.txt"
    shutil.copy(SHARED / "real_pend_h_1.txt", bad)
    bad.write_bytes(bad.read_bytes().replace(b"e-001", b"e-002", 1))
    assert hashlib.sha256(bad.read_bytes()).hexdigest() != MEMBER_SHA256
    with pytest.raises(DataFileError, match="sha256"):
        real_pendulum(bad)
    with pytest.raises(DataFileError, match="does not exist"):
        real_pendulum(tmp_path / "nope.txt")
    monkeypatch.delenv("HNNKIT_DATA")
    with pytest.raises(DataFileError, match="HNNKIT_DATA"):
        real_pendulum(download=False)


def test_cached_copy_is_used(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("HNNKIT_CACHE", str(cache))
    monkeypatch.delenv("HNNKIT_DATA")
    (cache / "real_pendulum").mkdir(parents=True)
    shutil.copy(SHARED / "real_pend_h_1.txt", cache / "real_pendulum" / "real_pend_h_1.txt")
    assert real_pendulum(download=False).x.shape == (1, 555, 2)
