"""Your own trajectories from a file: ``.npz`` (what :meth:`Dataset.save` writes) or ``.csv``.

A CSV file has a header row and one row per sample:

============================  ==========================================================
column                        meaning
============================  ==========================================================
``trajectory``                the trajectory's id (any text or number); rows of one id
                              form one trajectory, in file order
``t``                         the sample's time, strictly increasing within a trajectory
``q1`` … ``qn``               generalised coordinates (``q`` when n = 1)
``p1`` … ``pn``               conjugate momenta (``p`` when n = 1), as many as the ``q``
``dq1`` … ``dqn``,            optional: the time derivatives of the state (``dq``, ``dp``
``dp1`` … ``dpn``             when n = 1); all of them or none. When absent they are
                              estimated by second-order finite differences in time
============================  ==========================================================

Every trajectory must have the same number of samples (at least 3 without derivative
columns); times may differ between trajectories. The last ``test_fraction`` of the
trajectories (in order of first appearance) are held out, whole.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataFileError, HnnkitValueError
from ._dataset import DEFAULT_TEST_FRACTION, Dataset, from_arrays

#: The file types :func:`load_trajectories` reads.
SUFFIXES = (".csv", ".npz")
_INDEXED = re.compile(r"^(d?[qp])(\d+)$")


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, as hex."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_trajectories(
    path: str | os.PathLike,
    *,
    test_fraction: float | None = None,
    sha256: str | None = None,
) -> Dataset:
    """A :class:`Dataset` from a ``.csv`` (columns in the module docstring) or ``.npz`` file.

    The dataset's config records ``source`` (the absolute path), ``sha256`` (of the file),
    ``format`` and, for a CSV, ``derivatives`` (``"given"`` or ``"finite differences"``),
    ``dof``, ``test_fraction`` and the trajectory ids.

    Args:
        path: the file.
        test_fraction: for a CSV, the fraction of trajectories held out (default
            :data:`~hnnkit.data.DEFAULT_TEST_FRACTION`); an ``.npz`` keeps its own split.
        sha256: if given, the file's expected SHA-256: a different file is refused.

    Raises:
        DataFileError: if the file is missing, of another type, changed (``sha256``), or its
            content is unusable: missing, unknown or duplicated columns, a ``q`` without its
            ``p`` (an odd state width), non-numeric, NaN or infinite values, trajectories of
            different lengths, times not strictly increasing within a trajectory.
        HnnkitValueError: on a bad ``test_fraction``, or one given for an ``.npz``.
    """
    path = Path(path).absolute()
    if path.suffix.lower() not in SUFFIXES:
        raise DataFileError(
            f"{path}: unknown data file type {path.suffix or '(none)'!r}; pass a .csv (columns "
            "trajectory, t, q1..qn, p1..pn[, dq1..dqn, dp1..dpn]) or an .npz written by "
            "Dataset.save"
        )
    if not path.is_file():
        raise DataFileError(f"data file {path} does not exist")
    digest = file_sha256(path)
    if sha256 is not None and digest != sha256:
        raise DataFileError(
            f"data file {path} has changed since it was recorded (sha256 {sha256[:12]}… then, "
            f"{digest[:12]}… now); restore the original file or retrain on the new one"
        )
    meta = {"source": str(path), "sha256": digest}
    if path.suffix.lower() == ".npz":
        if test_fraction is not None:
            raise HnnkitValueError(
                f"test_fraction is for CSV files; {path.name} is an .npz that holds its own "
                "train/test split (drop test_fraction)"
            )
        data = Dataset.load(path)
        return dataclasses.replace(data, config={**data.config, **meta, "format": "npz"})
    test_fraction = DEFAULT_TEST_FRACTION if test_fraction is None else float(test_fraction)
    if not 0 < test_fraction < 1:
        raise HnnkitValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    return _load_csv(path, test_fraction, meta)


def _fail(path: Path, what: str) -> DataFileError:
    return DataFileError(f"data file {path.name}: {what}")


def _columns(path: Path, header: list[str]) -> tuple[int, bool, dict[str, int]]:
    """``(dof, has_derivatives, {canonical name: column index})`` from the header row."""
    names = [h.strip() for h in header]
    seen: set[str] = set()
    for h in names:
        if h in seen:
            raise _fail(path, f"column {h!r} appears twice")
        seen.add(h)
    index: dict[str, int] = {}
    unknown = []
    aliases = {"q": "q1", "p": "p1", "dq": "dq1", "dp": "dp1"}
    plain = [h for h in names if h in aliases]
    numbered = [h for h in names if _INDEXED.match(h)]
    if plain and numbered:
        raise _fail(
            path,
            f"mixes the one-degree-of-freedom names {plain} with numbered ones {numbered}; use "
            "q, p (dq, dp) for one degree of freedom, else q1..qn, p1..pn",
        )
    for i, h in enumerate(names):
        if h in ("trajectory", "t"):
            index[h] = i
        elif h in aliases:
            index[aliases[h]] = i
        elif (m := _INDEXED.match(h)) and int(m.group(2)) >= 1:
            index[f"{m.group(1)}{int(m.group(2))}"] = i
        else:
            unknown.append(h)
    valid = (
        "trajectory, t, q1..qn, p1..pn and optionally dq1..dqn, dp1..dpn (q, p, dq, dp for n = 1)"
    )
    if unknown:
        raise _fail(path, f"unknown columns {unknown}; the columns are {valid}")
    missing = [c for c in ("trajectory", "t") if c not in index]
    counts = {
        k: sorted(int(c[len(k) :]) for c in index if re.fullmatch(rf"{k}\d+", c))
        for k in ("q", "p", "dq", "dp")
    }
    n_q, n_p = len(counts["q"]), len(counts["p"])
    if n_q == 0 and n_p == 0:
        missing.append("q1..qn, p1..pn")
    if missing:
        raise _fail(path, f"missing columns {', '.join(missing)}; the columns are {valid}")
    if n_q != n_p:
        raise _fail(
            path,
            f"has {n_q} q columns and {n_p} p columns, an odd state width of {n_q + n_p}; a state "
            "is q1..qn then p1..pn, the same n of each",
        )
    n = n_q
    for k in ("q", "p"):
        if counts[k] != list(range(1, n + 1)):
            raise _fail(path, f"{k} columns must be {k}1..{k}{n}, got {counts[k]}")
    n_d = len(counts["dq"]) + len(counts["dp"])
    if n_d and (counts["dq"] != list(range(1, n + 1)) or counts["dp"] != list(range(1, n + 1))):
        raise _fail(
            path,
            f"derivative columns must be all of dq1..dq{n}, dp1..dp{n} or none (then they are "
            f"estimated by finite differences); got dq {counts['dq']}, dp {counts['dp']}",
        )
    return n, n_d > 0, index


def _load_csv(path: Path, test_fraction: float, meta: dict[str, Any]) -> Dataset:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError as exc:
        raise _fail(path, f"is not UTF-8 text ({exc}); save it as a UTF-8 CSV") from None
    except csv.Error as exc:
        raise _fail(path, f"is not a valid CSV file ({exc})") from None
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise _fail(path, "is empty; it needs a header row and data rows")
    n, given, index = _columns(path, rows[0])
    coords = [f"q{i}" for i in range(1, n + 1)] + [f"p{i}" for i in range(1, n + 1)]
    wanted = ["t", *coords, *(["d" + c for c in coords] if given else [])]
    cols = [index[c] for c in wanted]
    width = len(rows[0])
    ids: list[str] = []
    groups: dict[str, list[tuple[int, list[float]]]] = {}
    for line, r in enumerate(rows[1:], start=2):
        if len(r) != width:
            raise _fail(path, f"line {line} has {len(r)} fields, the header has {width}")
        values = []
        for name, c in zip(wanted, cols, strict=True):
            try:
                v = float(r[c])
            except ValueError:
                raise _fail(path, f"line {line}, column {name}: {r[c]!r} is not a number") from None
            if not math.isfinite(v):
                raise _fail(
                    path,
                    f"line {line}, column {name} is {r[c].strip()}; every value must be finite "
                    "(drop or repair the sample)",
                )
            values.append(v)
        key = r[index["trajectory"]].strip()
        if key not in groups:
            ids.append(key)
            groups[key] = []
        groups[key].append((line, values))
    if not groups:
        raise _fail(path, "has a header but no data rows")
    lengths = {k: len(v) for k, v in groups.items()}
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k!r}: {v}" for k, v in list(lengths.items())[:8])
        raise _fail(
            path,
            f"trajectories have different numbers of samples ({shown}); every trajectory must "
            "have the same number (trim or resample them)",
        )
    for k, group in groups.items():
        for (_, a), (line, b) in zip(group, group[1:], strict=False):
            if not b[0] > a[0]:
                raise _fail(
                    path,
                    f"line {line}: time {b[0]!r} of trajectory {k!r} is not after the time before "
                    f"it, {a[0]!r}; times must strictly increase within a trajectory (sort its "
                    "rows by t and drop duplicates)",
                )
    arr = np.array([[v for _, v in groups[k]] for k in ids], dtype=np.float64)
    t, states = arr[..., 0], arr[..., 1 : 1 + 2 * n]
    derivs = arr[..., 1 + 2 * n :] if given else None
    if derivs is None and arr.shape[1] < 3:
        raise _fail(
            path,
            f"trajectories have {arr.shape[1]} samples; estimating derivatives needs at least 3 "
            "(or add dq/dp columns)",
        )
    config = {
        "system": "user",
        **meta,
        "format": "csv",
        "dof": n,
        "derivatives": "given" if given else "finite differences",
        "test_fraction": test_fraction,
        "trajectories": ids,
    }
    try:
        return from_arrays(states, derivs, t, test_fraction=test_fraction, config=config)
    except HnnkitValueError as exc:
        raise _fail(path, f"does not hold a usable dataset ({exc})") from exc
