"""The real pendulum of Schmidt & Lipson (2009), task 3 of the HNN paper.

The measurements ship as ``real_pend_h_1.txt`` inside ``invar_datasets.zip`` (supplementary
material of Schmidt & Lipson, *Science* 324:81, 2009). The data are not redistributed with
hnnkit: the loader finds a local copy or downloads the zip once, checks the SHA-256 of the
member and caches it.

Preprocessing follows greydanus/hamiltonian-nn ``experiment-real/data.py``: ``q`` is the
angle column ``o`` and ``p`` the angular-velocity column ``v`` (no scaling); the targets are
forward finite differences ``(x[i+1] - x[i]) / (t[i+1] - t[i])`` over the real time stamps
(the intervals are kept as ``Dataset.step``),
leaving 555 points; the test set is points 444..553 (110 points, t ≈ 81–99) and the
training set points 0..443 plus point 554 — the original's ``int(555*0.8)`` /
``int(555*(1-0.8)) = 110`` split, reproduced exactly.
"""

from __future__ import annotations

import hashlib
import io
import os
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import DataFileError
from ..files import atomic_write
from ._dataset import Dataset
from ._generate import cache_dir

MEMBER = "real_pend_h_1.txt"
MEMBER_SHA256 = "45d92988198b89a5933f5a53e67aa819d06937516f71a462ac09e1307d8b3411"
#: Public copies of ``invar_datasets.zip``; the member's checksum is verified whatever the source.
URLS = (
    "https://raw.githubusercontent.com/Physics-aware-AI/Symplectic-ODENet/"
    "5e83faf93e8f4990e63821c49d0ce5926a96cc94/experiment-real/invar_datasets.zip",
    "https://raw.githubusercontent.com/Vozikis/Equation-Learning/master/experiment-real/invar_datasets.zip",
)
#: Energy used to score the real pendulum, from ``experiment-real/data.py`` (k = 2.4 "fit to the data").
ENERGY_K = 2.4


def _from_zip(blob: bytes, origin: str) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as z:
            names = [n for n in z.namelist() if n.endswith(MEMBER) and "__MACOSX" not in n]
            if not names:
                raise DataFileError(f"{origin} has no member {MEMBER}")
            return z.read(names[0])
    except zipfile.BadZipFile as exc:
        raise DataFileError(
            f"{origin} is not a valid zip file ({exc}); delete it and try again"
        ) from exc


def _verified(raw: bytes, origin: str) -> bytes:
    digest = hashlib.sha256(raw).hexdigest()
    if digest != MEMBER_SHA256:
        raise DataFileError(
            f"{origin}: {MEMBER} has sha256 {digest}, expected {MEMBER_SHA256}; the file is corrupted or a "
            "different version — delete it and let hnnkit download it again"
        )
    return raw


def _read_local(path: Path) -> bytes:
    if path.is_dir():
        for name in (MEMBER, "invar_datasets.zip"):
            if (path / name).is_file():
                return _read_local(path / name)
        raise DataFileError(f"{path} holds neither {MEMBER} nor invar_datasets.zip")
    if not path.is_file():
        raise DataFileError(
            f"real-pendulum data {path} does not exist; pass the path of {MEMBER} or invar_datasets.zip"
        )
    blob = path.read_bytes()
    raw = _from_zip(blob, str(path)) if path.suffix == ".zip" else blob
    return _verified(raw, str(path))


def load_raw(path: str | os.PathLike | None = None, *, download: bool = True) -> np.ndarray:
    """The measurements as a ``(556, 4)`` array of ``trial, t, o (angle), v (angular velocity)``.

    Lookup order: ``path``; the directory in ``$HNNKIT_DATA``; the cache
    (``$HNNKIT_CACHE/real_pendulum``); then a download from :data:`URLS` into the cache.

    Raises:
        DataFileError: if no valid copy is found and the download fails or is disabled.
    """
    if path is not None:
        raw = _read_local(Path(path))
    else:
        raw = None
        env = os.environ.get("HNNKIT_DATA")
        if env and any((Path(env) / n).is_file() for n in (MEMBER, "invar_datasets.zip")):
            raw = _read_local(Path(env))
        cached = cache_dir() / "real_pendulum" / MEMBER
        if raw is None and cached.is_file():
            try:
                raw = _read_local(cached)
            except DataFileError:
                cached.unlink()
        if raw is None:
            if not download:
                raise DataFileError(
                    f"real-pendulum data not found; set HNNKIT_DATA to a folder holding {MEMBER} "
                    "or invar_datasets.zip (from Python: real_pendulum(path=FILE) also works)"
                )
            raw = _download()
            atomic_write(cached, lambda p: p.write_bytes(raw))
    text = raw.decode("ascii").splitlines()
    return np.array(
        [[float(v) for v in line.split()] for line in text[1:] if line.strip()], dtype=np.float64
    )


def _download() -> bytes:
    errors = []
    for url in URLS:
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                return _verified(_from_zip(r.read(), url), url)
        except (OSError, DataFileError) as exc:
            errors.append(f"{url}: {exc}")
    raise DataFileError(
        "could not download the real-pendulum data ("
        + "; ".join(errors)
        + f"). Download invar_datasets.zip by hand (or take {MEMBER} out of it) and set "
        "HNNKIT_DATA to the folder holding it (from Python: real_pendulum(path=FILE) also works)"
    )


def real_pendulum(path: str | os.PathLike | None = None, *, download: bool = True) -> Dataset:
    """The real-pendulum :class:`Dataset`: one trajectory of 555 ``(q, p)`` points with derivatives.

    See the module docstring for the preprocessing and split.
    """
    arr = load_raw(path, download=download)
    t, x = arr[:, 1], arr[:, 2:4]
    h = t[1:] - t[:-1]
    dx = (x[1:] - x[:-1]) / h[:, None]
    x, t = x[:-1], t[:-1]
    n = len(x)
    a = int(n * 0.8)
    b = a + int(n * (1 - 0.8))
    mask = torch.zeros(1, n, dtype=torch.bool)
    mask[0, a:b] = True
    return Dataset(
        x=torch.from_numpy(x).unsqueeze(0),
        dx=torch.from_numpy(dx).unsqueeze(0),
        t=torch.from_numpy(t).unsqueeze(0),
        test_mask=mask,
        config={"system": "RealPendulum", "source": MEMBER, "sha256": MEMBER_SHA256},
        step=torch.from_numpy(h).unsqueeze(0),
    )
