import pytest
import torch


@pytest.fixture
def gen():
    """A fresh seeded generator for each test."""
    return torch.Generator().manual_seed(1234)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Never let a test read or write the user's real dataset cache."""
    monkeypatch.setenv("HNNKIT_CACHE", str(tmp_path / "cache"))
