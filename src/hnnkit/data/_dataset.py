"""The typed container every model trains on."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import DataFileError, HnnkitValueError
from ..files import atomic_write_npz

_FORMAT_VERSION = 1
#: The fraction of trajectories held out by :func:`from_arrays` and the file loaders.
DEFAULT_TEST_FRACTION = 0.2


@dataclass(frozen=True, eq=False)
class Dataset:
    """Trajectories of states and their time derivatives, with a train/test split.

    Attributes:
        x: observed states ``(n_trajectories, n_points, 2n)`` (noise included).
        dx: target time derivatives ``(n_trajectories, n_points, 2n)``.
        t: sample times ``(n_trajectories, n_points)``.
        test_mask: ``(n_trajectories, n_points)`` bool, ``True`` for held-out points. For
            generated data whole trajectories are held out.
        x_clean: noise-free states when known, else ``None``.
        config: everything needed to regenerate the data (system, sizes, seed, ...).
        step: for targets that are forward differences ``(x[i+1] - x[i]) / h_i`` of measured
            states (the real pendulum), each point's interval ``h_i``
            ``(n_trajectories, n_points)``; ``None`` when ``dx`` holds derivatives. Training
            with ``fit(..., through_step=True)`` compares such targets with one step of the
            model's own flow instead of its vector field.
    """

    x: Tensor
    dx: Tensor
    t: Tensor
    test_mask: Tensor
    x_clean: Tensor | None = None
    config: dict[str, Any] = field(default_factory=dict)
    step: Tensor | None = None

    def __post_init__(self) -> None:
        if self.x.ndim != 3:
            raise HnnkitValueError(
                f"Dataset.x must have shape (n_trajectories, n_points, 2n), got {tuple(self.x.shape)}"
            )
        if self.x.shape[-1] % 2:
            raise HnnkitValueError(
                f"Dataset.x needs an even state dimension (q then p), got {self.x.shape[-1]}"
            )
        for name in ("dx", "x_clean"):
            v = getattr(self, name)
            if v is not None and v.shape != self.x.shape:
                raise HnnkitValueError(
                    f"Dataset.{name} must have the shape of x {tuple(self.x.shape)}, got {tuple(v.shape)}"
                )
        if self.t.shape != self.x.shape[:2]:
            raise HnnkitValueError(
                f"Dataset.t must have shape {tuple(self.x.shape[:2])}, got {tuple(self.t.shape)}"
            )
        if self.test_mask.shape != self.x.shape[:2] or self.test_mask.dtype != torch.bool:
            raise HnnkitValueError(
                f"Dataset.test_mask must be a bool tensor of shape {tuple(self.x.shape[:2])}, "
                f"got {self.test_mask.dtype} {tuple(self.test_mask.shape)}"
            )
        if self.step is not None and (
            self.step.shape != self.x.shape[:2] or not bool((self.step > 0).all())
        ):
            raise HnnkitValueError(
                f"Dataset.step must hold one positive interval per point, shape "
                f"{tuple(self.x.shape[:2])}; got {tuple(self.step.shape)}"
            )
        for name in ("x", "dx", "t", "x_clean", "step"):
            v = getattr(self, name)
            if v is not None and not torch.isfinite(v).all():
                bad = int((~torch.isfinite(v)).sum())
                raise HnnkitValueError(
                    f"Dataset.{name} contains {bad} NaN or infinite values; clean or drop those samples first"
                )
        n_test = int(self.test_mask.sum())
        if n_test == 0 or n_test == self.test_mask.numel():
            raise HnnkitValueError(
                f"Dataset needs both train and test points, got {n_test} test of {self.test_mask.numel()}"
            )

    # -- views ---------------------------------------------------------------------------
    @property
    def n_trajectories(self) -> int:
        return self.x.shape[0]

    @property
    def n_points(self) -> int:
        return self.x.shape[1]

    @property
    def dim(self) -> int:
        """Phase-space dimension ``2n``."""
        return self.x.shape[-1]

    @property
    def trajectory_ids(self) -> Tensor:
        """``(n_trajectories, n_points)`` integer id of the trajectory of each point."""
        return torch.arange(self.n_trajectories).unsqueeze(1).expand(-1, self.n_points)

    @property
    def test_trajectories(self) -> Tensor:
        """Indices of trajectories that hold any test point."""
        return torch.nonzero(self.test_mask.any(dim=1)).flatten()

    @property
    def test_initial_states(self) -> Tensor:
        """First states ``(n_test_trajectories, 2n)`` of the held-out trajectories, noise-free when known."""
        states = self.x_clean if self.x_clean is not None else self.x
        return states[self.test_trajectories, 0]

    @property
    def train_trajectories(self) -> Tensor:
        """Indices of trajectories that hold any training point."""
        return torch.nonzero((~self.test_mask).any(dim=1)).flatten()

    def split(self, part: str) -> tuple[Tensor, Tensor]:
        """Flattened ``(x, dx)`` of ``part`` in ``{"train", "test"}``, each ``(N, 2n)``."""
        if part not in ("train", "test"):
            raise HnnkitValueError(f"part must be 'train' or 'test', got {part!r}")
        mask = self.test_mask if part == "test" else ~self.test_mask
        return self.x[mask], self.dx[mask]

    def split_step(self, part: str) -> Tensor:
        """The forward-difference intervals of ``part``, ``(N, 1)``, aligned with :meth:`split`.

        Raises:
            HnnkitValueError: if ``part`` is unknown or the targets are derivatives (no ``step``).
        """
        if part not in ("train", "test"):
            raise HnnkitValueError(f"part must be 'train' or 'test', got {part!r}")
        if self.step is None:
            raise HnnkitValueError(
                "through_step=True needs targets that are forward differences (Dataset.step "
                "set, as by real_pendulum()); this dataset holds derivatives, so use "
                "through_step=False"
            )
        mask = self.test_mask if part == "test" else ~self.test_mask
        return self.step[mask][:, None]

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> Dataset:
        """A copy with float tensors moved/cast (masks stay bool)."""

        def cv(v: Tensor | None) -> Tensor | None:
            return None if v is None else v.to(device=device, dtype=dtype)

        return Dataset(
            x=cv(self.x),
            dx=cv(self.dx),
            t=cv(self.t),
            test_mask=self.test_mask.to(device=device),
            x_clean=cv(self.x_clean),
            config=dict(self.config),
            step=cv(self.step),
        )

    # -- files ---------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Export to ``.npz`` atomically, with the config and a checksum of the arrays."""
        arrays = {k: v.detach().cpu().numpy() for k, v in self._arrays().items()}
        meta = {"format": _FORMAT_VERSION, "config": self.config, "sha256": _digest(arrays)}
        arrays["meta"] = np.frombuffer(json.dumps(meta, default=str).encode(), dtype=np.uint8)
        return atomic_write_npz(path, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Dataset:
        """Load a dataset written by :meth:`save`.

        Raises:
            DataFileError: if the file is missing, or its content is not what
                :meth:`save` writes: not an ``.npz`` archive, truncated, object arrays,
                missing or unknown arrays, wrong dtypes or shapes, bad metadata, or a failed
                checksum.
        """
        path = Path(path)
        if not path.is_file():
            raise DataFileError(
                f"dataset file {path} does not exist; create it with Dataset.save or hnnkit.data.generate"
            )
        try:
            with np.load(path, allow_pickle=False) as z:
                if not isinstance(z, np.lib.npyio.NpzFile):
                    raise ValueError("not an .npz archive")
                arrays = {k: z[k] for k in z.files}
            if "meta" not in arrays:
                raise ValueError("no 'meta' entry")
            meta = json.loads(arrays.pop("meta").tobytes().decode())
            if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
                raise ValueError("the metadata is not a dict with a 'config'")
        except (
            OSError,
            ValueError,
            KeyError,
            TypeError,
            zipfile.BadZipFile,
            EOFError,
            UnicodeDecodeError,
        ) as exc:
            raise DataFileError(
                f"dataset file {path} is corrupted ({exc}); delete it and regenerate"
            ) from exc
        if meta.get("format") != _FORMAT_VERSION:
            raise DataFileError(
                f"dataset file {path} has format {meta.get('format')!r}, this version reads "
                f"format {_FORMAT_VERSION}; delete it and regenerate"
            )
        if meta.get("sha256") != _digest(arrays):
            raise DataFileError(
                f"dataset file {path} failed its checksum; delete it and regenerate"
            )
        required, optional = {"x", "dx", "t", "test_mask"}, {"x_clean", "step"}
        if not required <= set(arrays) <= required | optional:
            raise DataFileError(
                f"dataset file {path} holds arrays {sorted(arrays)}; a dataset needs "
                f"{sorted(required)} (and optionally {sorted(optional)}). Delete it and regenerate"
            )
        for k, a in arrays.items():
            if a.dtype.kind != ("b" if k == "test_mask" else "f"):
                raise DataFileError(
                    f"dataset file {path}: array {k!r} has dtype {a.dtype}, expected "
                    f"{'bool' if k == 'test_mask' else 'floating point'}; delete it and regenerate"
                )
        t = {k: torch.from_numpy(v) for k, v in arrays.items()}
        try:
            return cls(
                x=t["x"],
                dx=t["dx"],
                t=t["t"],
                test_mask=t["test_mask"],
                x_clean=t.get("x_clean"),
                config=meta["config"],
                step=t.get("step"),
            )
        except HnnkitValueError as exc:
            raise DataFileError(
                f"dataset file {path} does not hold a valid dataset ({exc}); delete it and regenerate"
            ) from exc

    def _arrays(self) -> dict[str, Tensor]:
        out = {"x": self.x, "dx": self.dx, "t": self.t, "test_mask": self.test_mask}
        if self.x_clean is not None:
            out["x_clean"] = self.x_clean
        if self.step is not None:
            out["step"] = self.step
        return out

    def __repr__(self) -> str:
        n_test = len(self.test_trajectories)
        return (
            f"Dataset(system={self.config.get('system', '?')!r}, trajectories={self.n_trajectories}, "
            f"points={self.n_points}, dim={self.dim}, test_points={int(self.test_mask.sum())}, "
            f"test_trajectories={n_test})"
        )


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(k.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _as_real_tensor(name: str, value: Any) -> Tensor:
    """``value`` as a real floating tensor: integers and bools become float64, complex is refused."""
    if isinstance(value, Tensor):
        out = value.detach()
    else:
        try:
            arr = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise HnnkitValueError(f"{name} must be an array of real numbers ({exc})") from exc
        if arr.dtype.kind not in "biufc":
            raise HnnkitValueError(
                f"{name} must be an array of real numbers, got dtype {arr.dtype}"
            )
        out = torch.from_numpy(np.ascontiguousarray(arr))
    if out.is_complex():
        raise HnnkitValueError(
            f"{name} is complex ({out.dtype}); pass real arrays (e.g. the real part, or the "
            "real and imaginary parts as separate coordinates)"
        )
    if not out.is_floating_point():  # integers and bools: exact float64 before any arithmetic
        out = out.to(torch.float64)
    return out


def from_arrays(
    states: Tensor | np.ndarray,
    derivatives: Tensor | np.ndarray | None = None,
    t: Tensor | np.ndarray | None = None,
    *,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    config: dict[str, Any] | None = None,
) -> Dataset:
    """Build a :class:`Dataset` from your own trajectories.

    Args:
        states: ``(n_trajectories, n_points, 2n)`` (or ``(n_points, 2n)`` for one trajectory),
            a tensor or array of real numbers; integers are converted to float64 (numpy
            arrays of any real dtype become float64, tensors keep a floating dtype).
        derivatives: matching time derivatives. If ``None`` they are estimated by
            second-order finite differences in time (``numpy.gradient``), which needs ``t``.
        t: times, ``(n_points,)`` or ``(n_trajectories, n_points)``, strictly increasing
            along each trajectory; default ``0, 1, 2, ...``.
        test_fraction: the last ``test_fraction`` of trajectories are held out; with a
            single trajectory, the last ``test_fraction`` of its points.

    Raises:
        HnnkitValueError: on inconsistent shapes, non-finite values, complex or non-numeric
            input, or times that do not strictly increase (the message names the first
            offending index).
    """
    x = _as_real_tensor("states", states)
    if not isinstance(states, Tensor):
        x = x.to(torch.float64)
    if x.ndim == 2:
        x = x.unsqueeze(0)
    if x.ndim != 3:
        raise HnnkitValueError(
            f"states must have shape (n_trajectories, n_points, 2n) or (n_points, 2n), got {tuple(x.shape)}"
        )
    if not torch.isfinite(x).all():
        raise HnnkitValueError(
            "states contain NaN or infinite values; clean or drop those samples first"
        )
    n_traj, n_pts, _ = x.shape
    if t is None:
        tt = torch.arange(n_pts, dtype=x.dtype).expand(n_traj, -1).clone()
    else:
        tt = _as_real_tensor("t", t).to(x.dtype)
        shared = tt.ndim == 1
        tt = tt.expand(n_traj, -1).clone() if shared else tt
    if tt.shape != (n_traj, n_pts):
        raise HnnkitValueError(
            f"t must have shape ({n_pts},) or ({n_traj}, {n_pts}), got {tuple(tt.shape)}"
        )
    if not torch.isfinite(tt).all():
        raise HnnkitValueError("t contains NaN or infinite values; pass finite times")
    if n_pts > 1:
        bad = (tt[:, 1:] <= tt[:, :-1]).nonzero()
        if bad.numel():
            i, j = (int(v) for v in bad[0])
            where = f"t[{j + 1}]" if t is None or shared else f"t[{i}, {j + 1}]"
            raise HnnkitValueError(
                f"t must be strictly increasing along each trajectory; {where} = "
                f"{float(tt[i, j + 1])!r} is not after the time before it, {float(tt[i, j])!r} "
                f"(trajectory {i}, point {j + 1}). Sort the samples by time and drop duplicates."
            )
    if derivatives is None:
        if n_pts < 3:
            raise HnnkitValueError(
                "estimating derivatives needs at least 3 points per trajectory; pass derivatives"
            )
        xn, tn = x.numpy(), tt.numpy()
        dx = torch.from_numpy(
            np.stack([np.gradient(xn[i], tn[i], axis=0, edge_order=2) for i in range(n_traj)])
        )
    else:
        dx = _as_real_tensor("derivatives", derivatives)
        dx = dx.unsqueeze(0) if dx.ndim == 2 else dx
    if not 0 < test_fraction < 1:
        raise HnnkitValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    mask = torch.zeros(n_traj, n_pts, dtype=torch.bool)
    if n_traj == 1:
        mask[0, n_pts - max(1, round(test_fraction * n_pts)) :] = True
    else:
        mask[n_traj - min(n_traj - 1, max(1, round(test_fraction * n_traj))) :] = True
    return Dataset(
        x=x, dx=dx.to(x.dtype), t=tt, test_mask=mask, config=dict(config or {"system": "user"})
    )
