import hashlib
import os
from pathlib import Path

import pytest
import torch

from hnnkit.data import real_pendulum
from hnnkit.data.real_pendulum import MEMBER_SHA256, load_raw
from hnnkit.errors import DataFileError

pytestmark = pytest.mark.real_pendulum


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


def test_zip_and_text_copies_both_load_and_match(real_pendulum_dir):
    text, archive = (
        real_pendulum_dir / "real_pend_h_1.txt",
        real_pendulum_dir / "invar_datasets.zip",
    )
    if not (text.is_file() and archive.is_file()):
        pytest.skip(f"{real_pendulum_dir} holds only one of the text and zip copies")
    assert torch.equal(real_pendulum(text).x, real_pendulum(archive).x)


def test_checksum_mismatch_and_missing_file(tmp_path, monkeypatch):
    bad = tmp_path / "real_pend_h_1.txt"
    bad.write_bytes(load_raw_bytes())
    bad.write_bytes(bad.read_bytes().replace(b"e-001", b"e-002", 1))
    assert hashlib.sha256(bad.read_bytes()).hexdigest() != MEMBER_SHA256
    with pytest.raises(DataFileError, match="sha256"):
        real_pendulum(bad)
    with pytest.raises(DataFileError, match="does not exist"):
        real_pendulum(tmp_path / "nope.txt")
    monkeypatch.delenv("HNNKIT_DATA")
    with pytest.raises(DataFileError, match="HNNKIT_DATA"):
        real_pendulum(download=False)


def load_raw_bytes() -> bytes:
    """The recording's text, as hnnkit finds it (checksum verified)."""
    from hnnkit.data.real_pendulum import _read_local

    return _read_local(Path(os.environ["HNNKIT_DATA"]))


def test_cached_copy_is_used(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("HNNKIT_CACHE", str(cache))
    raw = load_raw_bytes()
    monkeypatch.delenv("HNNKIT_DATA")
    (cache / "real_pendulum").mkdir(parents=True)
    (cache / "real_pendulum" / "real_pend_h_1.txt").write_bytes(raw)
    assert real_pendulum(download=False).x.shape == (1, 555, 2)
