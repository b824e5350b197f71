from pathlib import Path

import pytest
import torch

#: The real-pendulum measurements are not in the repository; tests use the copy beside the checkout.
SHARED_REAL_PENDULUM = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_pendulum"

torch.set_num_threads(1)  # small problems: threading overhead dominates (see README, Performance)


@pytest.fixture
def gen():
    """A fresh seeded generator for each test."""
    return torch.Generator().manual_seed(1234)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Never let a test read or write the user's real dataset cache."""
    monkeypatch.setenv("HNNKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HNNKIT_DATA", str(SHARED_REAL_PENDULUM))
