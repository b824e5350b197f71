"""Shared fixtures: an isolated dataset cache per test, and the real-pendulum measurements.

The real-pendulum recording is not in the repository. Tests marked ``real_pendulum`` use,
in this order: the folder in the user's ``$HNNKIT_DATA``; the copy beside the checkout
(``../shared/data/real_pendulum``); a checksummed download into a session cache. When none
is available (offline, fresh clone) they are skipped with a one-line reason.
"""

import os
from pathlib import Path

import pytest
import torch

from hnnkit.data.real_pendulum import MEMBER
from hnnkit.errors import DataFileError

#: The copy beside the checkout (CI provides it there).
SHARED_REAL_PENDULUM = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_pendulum"
#: The user's own folder, read once before any test changes the environment.
USER_DATA = os.environ.get("HNNKIT_DATA")

torch.set_num_threads(1)  # small problems: threading overhead dominates (see README, Performance)

_resolved: dict[str, Path | str] = {}


def _holds_recording(folder: Path) -> bool:
    return any((folder / name).is_file() for name in (MEMBER, "invar_datasets.zip"))


def real_pendulum_folder(tmp_path_factory: pytest.TempPathFactory) -> Path | str:
    """A folder holding the recording, or the reason there is none (resolved once per session)."""
    if "folder" not in _resolved:
        from hnnkit.data.real_pendulum import load_raw

        for candidate in (USER_DATA, SHARED_REAL_PENDULUM):
            if candidate and _holds_recording(Path(candidate)):
                _resolved["folder"] = Path(candidate)
                break
        else:
            folder = tmp_path_factory.mktemp("real-pendulum-download")
            saved = os.environ.get("HNNKIT_CACHE")
            os.environ["HNNKIT_CACHE"] = str(folder)
            try:
                load_raw(download=True)  # verifies the SHA-256 of the member
                _resolved["folder"] = folder / "real_pendulum"
            except DataFileError:
                _resolved["folder"] = (
                    "real-pendulum data unavailable: no $HNNKIT_DATA, no ../shared/data copy, "
                    "and the download failed (offline?)"
                )
            finally:
                if saved is None:
                    os.environ.pop("HNNKIT_CACHE", None)
                else:
                    os.environ["HNNKIT_CACHE"] = saved
    return _resolved["folder"]


@pytest.fixture
def gen():
    """A fresh seeded generator for each test."""
    return torch.Generator().manual_seed(1234)


@pytest.fixture
def real_pendulum_dir(tmp_path_factory) -> Path:
    """The folder holding the real-pendulum recording; skips the test when there is none."""
    folder = real_pendulum_folder(tmp_path_factory)
    if isinstance(folder, str):
        pytest.skip(folder)
    return folder


@pytest.fixture(autouse=True)
def _isolated_cache(request, tmp_path, monkeypatch, tmp_path_factory):
    """Never let a test read or write the user's real dataset cache; point HNNKIT_DATA at the
    recording for tests marked ``real_pendulum`` (skipping them when it is unavailable)."""
    monkeypatch.setenv("HNNKIT_CACHE", str(tmp_path / "cache"))
    if request.node.get_closest_marker("real_pendulum") is not None:
        folder = real_pendulum_folder(tmp_path_factory)
        if isinstance(folder, str):
            pytest.skip(folder)
        monkeypatch.setenv("HNNKIT_DATA", str(folder))
    else:  # no test silently depends on the recording
        monkeypatch.delenv("HNNKIT_DATA", raising=False)
