"""Files that hnnkit writes: atomic writes, strict JSON, and an exclusive lock per run directory.

Guarantees:

* **Atomic writes.** Every file is written to a temporary sibling (``.NAME.*.tmp``) and
  renamed onto its final path, so a reader never sees half a file, even after ``kill -9``.
  :func:`remove_stale_temporaries` deletes the temporaries that such a kill leaves behind.
* **Strict JSON.** :func:`atomic_write_json` writes RFC 8259 JSON: a non-finite float
  (NaN, ±inf) is written as ``null``, never as the non-standard ``NaN``/``Infinity``.
* **One writer per directory.** :class:`DirectoryLock` takes an exclusive ``flock`` on
  ``DIR/.hnnkit.lock``. A second process gets :class:`DirectoryLockedError`, naming the
  holder's pid and command; the kernel drops the lock when its holder dies, so a killed run
  never leaves a stale lock behind.
* **Clear errors.** :func:`describe_os_error` turns an ``OSError`` (read-only directory, full
  disk, a path under a file) into one sentence that says what to do.
"""

from __future__ import annotations

import errno
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import HnnkitValueError

#: The lock file inside a locked directory.
LOCK_NAME = ".hnnkit.lock"


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` then rename the temporary file onto ``path`` atomically.

    The file gets the permissions of an ordinary new file (``0o666`` less the umask), not the
    owner-only ones of a temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def strict_json(obj: Any) -> Any:
    """``obj`` with tuples, sets, arrays and paths as JSON types, and non-finite floats as ``None``."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): strict_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [strict_json(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):  # numpy and torch scalars and arrays
        return strict_json(obj.tolist())
    return obj


def dumps(obj: Any) -> str:
    """Strict, indented JSON text of ``obj`` (see :func:`strict_json`).

    Raises:
        TypeError: on an object JSON cannot hold.
    """
    return json.dumps(strict_json(obj), indent=2, allow_nan=False) + "\n"


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as strict, indented JSON to ``path`` atomically."""
    return atomic_write_text(path, dumps(obj))


def atomic_write_npz(path: str | os.PathLike, arrays: dict[str, Any]) -> Path:
    """Write numpy ``arrays`` as an uncompressed ``.npz`` to ``path`` atomically."""
    import numpy as np

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a name
            np.savez(fh, **arrays)

    return atomic_write(path, write)


def remove_stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Delete the ``.NAME.*.tmp`` files that a killed atomic write left in ``directory`` (recursively).

    Call it only while holding the directory's :class:`DirectoryLock`: a live writer's
    temporary would be deleted too. Returns the deleted paths.
    """
    removed = []
    for p in Path(directory).rglob(".*.tmp"):
        if p.is_file():
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed


class DirectoryLockedError(HnnkitValueError):
    """Another live process holds the directory's lock."""


class DirectoryLock:
    """An exclusive, process-wide lock on a directory, held for the life of a ``with`` block.

    Args:
        directory: the directory to lock (created if missing).
        purpose: what the holder is doing, recorded in the lock file for other processes'
            messages (e.g. ``"hnnkit train"``).

    Raises:
        DirectoryLockedError: on entry, if another process holds the lock; the message names
            its pid and purpose.
    """

    def __init__(self, directory: str | os.PathLike, purpose: str = "hnnkit"):
        self.directory = Path(directory)
        self.purpose = purpose
        self._fh = None

    def __enter__(self) -> DirectoryLock:
        import fcntl

        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / LOCK_NAME
        fh = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise DirectoryLockedError(
                f"{self.directory} is in use by {holder}; wait for it to finish, or pass "
                "another output directory"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} ({self.purpose})\n")
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc: object) -> None:
        import fcntl

        if self._fh is not None:
            self._fh.seek(0)
            self._fh.truncate()
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


def describe_os_error(exc: OSError) -> str:
    """One sentence for an ``OSError`` met while writing results: what failed and how to fix it."""
    where = exc.filename or "a file"
    hints = {
        errno.EACCES: "it is not writable; choose a directory you can write to (--out)",
        errno.EPERM: "it is not writable; choose a directory you can write to (--out)",
        errno.EROFS: "the file system is read-only; choose another directory (--out)",
        errno.ENOSPC: "the disk is full; free some space or choose another disk (--out)",
        errno.EDQUOT: "the disk quota is exceeded; free some space or choose another disk",
        errno.ENOTDIR: "a part of the path is a file, not a directory; choose another path",
        errno.EISDIR: "it is a directory where a file was expected; choose another path",
        errno.ENAMETOOLONG: "the path is too long; choose a shorter one",
    }
    hint = hints.get(exc.errno or -1, "check the path and its permissions")
    return f"cannot write {where}: {exc.strerror or exc}; {hint}"


__all__ = [
    "LOCK_NAME",
    "DirectoryLock",
    "DirectoryLockedError",
    "atomic_write",
    "atomic_write_json",
    "atomic_write_npz",
    "atomic_write_text",
    "describe_os_error",
    "dumps",
    "remove_stale_temporaries",
    "strict_json",
]
