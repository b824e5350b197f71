"""The data extraction reads: train and held-out states, targets, and where known each
state's time and trajectory (for smoothing and for blocked standard errors)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ..errors import HnnkitValueError


@dataclass(frozen=True)
class Splits:
    """Train and held-out data, float64 on the CPU.

    Attributes:
        x, dx: training states and derivatives ``(N, 2n)``.
        x_test, dx_test: held-out ones, or ``None``.
        t, t_test: each state's time ``(N,)``, or ``None`` when unknown.
        groups, groups_test: each state's trajectory ``(N,)`` (int64), or ``None``.
    """

    x: Tensor
    dx: Tensor
    x_test: Tensor | None = None
    dx_test: Tensor | None = None
    t: Tensor | None = None
    t_test: Tensor | None = None
    groups: Tensor | None = None
    groups_test: Tensor | None = None

    @property
    def has_test(self) -> bool:
        return self.x_test is not None and self.dx_test is not None

    @property
    def has_trajectories(self) -> bool:
        """Whether every state's time and trajectory are known (smoothing needs them)."""
        parts = (self.t, self.groups)
        test = (self.t_test, self.groups_test) if self.has_test else ()
        return all(v is not None for v in (*parts, *test))

    def as_tuple(self) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        return self.x, self.dx, self.x_test, self.dx_test

    def to_dict(self) -> dict[str, Tensor | None]:
        """The tensors by name (for a run file)."""
        return {k: getattr(self, k) for k in SPLIT_KEYS}


#: The names :meth:`Splits.to_dict` and :func:`splits_of` use.
SPLIT_KEYS = ("x", "dx", "x_test", "dx_test", "t", "t_test", "groups", "groups_test")


def _f64(v: Tensor | None) -> Tensor | None:
    return None if v is None else v.detach().to("cpu", torch.float64)


def splits_of(data: Any) -> Splits:
    """Read ``data``: a :class:`~hnnkit.data.Dataset` (times and trajectories known), a
    :class:`Splits`, a dict with :data:`SPLIT_KEYS` (``x`` and ``dx`` required), or a tuple
    ``(x, dx)`` / ``(x, dx, x_test, dx_test)`` of ``(N, 2n)`` tensors.

    Raises:
        HnnkitValueError: on anything else.
    """
    if isinstance(data, Splits):
        return data
    if hasattr(data, "split") and hasattr(data, "test_mask"):
        ids = data.trajectory_ids
        out = {}
        for part, suffix in (("train", ""), ("test", "_test")):
            mask = data.test_mask if part == "test" else ~data.test_mask
            out["x" + suffix], out["dx" + suffix] = (_f64(v) for v in data.split(part))
            out["t" + suffix] = _f64(data.t[mask])
            out["groups" + suffix] = ids[mask].to(torch.int64)
        return Splits(**out)
    if isinstance(data, dict) and "x" in data and "dx" in data:
        return Splits(
            **{
                k: (v.to(torch.int64) if k.startswith("groups") else _f64(v))
                for k, v in data.items()
                if k in SPLIT_KEYS and v is not None
            }
        )
    if isinstance(data, tuple | list) and len(data) in (2, 4):
        x, dx, *rest = data
        xt, dxt = rest if rest else (None, None)
        return Splits(_f64(x), _f64(dx), _f64(xt), _f64(dxt))
    raise HnnkitValueError(
        "data must be a hnnkit Dataset, (x, dx) or (x, dx, x_test, dx_test) with states (N, 2n) "
        f"and derivatives (N, 2n); got {type(data).__name__}"
    )


__all__ = ["SPLIT_KEYS", "Splits", "splits_of"]
