"""Batch adapters: how :func:`hnnkit.train.fit` reads each kind of dataset.

An adapter turns a dataset into its train and test splits as *batches*: dicts of tensors
with one row per sample, on the model's device and dtype. :func:`fit` draws minibatches by
indexing every entry with the same rows, and hands batches to the loss
(:mod:`hnnkit.train.losses`). Register an adapter for a new dataset type with
:func:`register_batches`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..data import Dataset
from ..data.pixels import PixelPendulumData
from ..errors import HnnkitValueError

Batch = dict[str, Tensor]
Adapter = Callable[[Any, torch.device, torch.dtype], tuple[Batch, Batch]]

ADAPTERS: dict[type, Adapter] = {}


def register_batches(kind: type, adapter: Adapter) -> None:
    """Teach :func:`fit` a dataset type: ``adapter(dataset, device, dtype) -> (train, test)``."""
    ADAPTERS[kind] = adapter


def split_batches(dataset: Any, device: torch.device, dtype: torch.dtype) -> tuple[Batch, Batch]:
    """The train and test batches of ``dataset`` through the adapter of its type.

    Raises:
        HnnkitValueError: for a dataset type without an adapter.
    """
    for kind in type(dataset).__mro__:
        if kind in ADAPTERS:
            train, test = ADAPTERS[kind](dataset, device, dtype)
            for name, batch in (("train", train), ("test", test)):
                sizes = {v.shape[0] for v in batch.values()}
                if len(sizes) != 1:
                    raise HnnkitValueError(
                        f"the {name} batch of {type(dataset).__name__} has entries of different "
                        f"lengths {sorted(sizes)}; every entry needs one row per sample"
                    )
            return train, test
    raise HnnkitValueError(
        f"fit does not know how to read a {type(dataset).__name__}; register an adapter with "
        "hnnkit.train.register_batches"
    )


def take(batch: Batch, idx: Tensor) -> Batch:
    """The rows ``idx`` of every entry of ``batch``."""
    return {k: v[idx] for k, v in batch.items()}


def batch_size_of(batch: Batch) -> int:
    """The number of samples (rows) in ``batch``."""
    return next(iter(batch.values())).shape[0]


def _phase_space(data: Dataset, device: torch.device, dtype: torch.dtype) -> tuple[Batch, Batch]:
    out = []
    for part in ("train", "test"):
        x, dx = (v.to(device=device, dtype=dtype) for v in data.split(part))
        batch = {"x": x, "dx": dx}
        if data.step is not None:
            batch["step"] = data.split_step(part).to(device=device, dtype=dtype)
        out.append(batch)
    return out[0], out[1]


def _pixels(data: PixelPendulumData, device: torch.device, dtype: torch.dtype):
    return tuple(
        {"x": s.x.to(device), "x_next": s.x_next.to(device)} for s in (data.train, data.test)
    )


register_batches(Dataset, _phase_space)
register_batches(PixelPendulumData, _pixels)
