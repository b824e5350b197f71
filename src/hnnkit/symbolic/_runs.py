"""KAN run files: what extraction needs, stored with a run, and read back."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..models.kan import KAN, find_kan
from ._dissipative import SymbolicDissipative, extract_dissipative
from ._extract import extract_hamiltonian
from ._formula import SymbolicHamiltonian
from ._splits import SPLIT_KEYS, Splits, splits_of

RUN_FORMAT = 1
#: The checkpoint entry of a KAN run directory that extraction reads (:func:`kan_run_entry`).
RUN_ENTRY = "symbolic"
#: The standalone run file of older KAN runs (``hnnkit train --model kan`` before the checkpoint
#: held :data:`RUN_ENTRY`, and the ``kan-spring`` experiment's model directories): still read.
RUN_FILE = "kan_run.pt"


def kan_run_entry(model: nn.Module, data: Any, *, weights: bool = True) -> dict[str, Any]:
    """What :func:`extract_from_run` needs besides the weights: the KAN's settings, its output
    index, the train and test states and targets, and for a dissipative model its D's KAN.

    ``hnnkit train --model kan`` and the ``kan-spring`` experiment store it as the entry
    :data:`RUN_ENTRY` of the run's checkpoint, whose ``model`` weights it then reads
    (``weights=False``: each KAN is named by its key in the model's ``state_dict``). With the
    weights it is the contents of an older run's standalone :data:`RUN_FILE`.

    Args:
        model: a :class:`~hnnkit.models.kan.KAN` or a model whose ``energy_net`` is one.
        data: a :class:`~hnnkit.data.Dataset`, ``(x, dx)`` or ``(x, dx, x_test, dx_test)``.
        weights: include the KANs' weights (default ``True``).
    """
    kan = find_kan(model)
    names = {id(m): name for name, m in model.named_modules()}
    sp = splits_of(data)
    output_index = getattr(model, "output_index", None)

    def net(k: KAN) -> dict[str, Any]:
        if weights:
            return {"state_dict": {n: v.detach().cpu() for n, v in k.state_dict().items()}}
        return {"key": names[id(k)]}

    state = {
        "format": RUN_FORMAT,
        "kan": _kan_spec(kan),
        **net(kan),
        "output_index": 0 if output_index is None else int(output_index),
        # x, dx, x_test, dx_test; with a Dataset also each state's time and trajectory
        # (t, groups, ...), which smoothing and the blocked evidence use
        "data": {k: None if v is None else v.detach().cpu() for k, v in sp.to_dict().items()},
    }
    dissipation = getattr(model, "dissipation_net", None)
    if isinstance(dissipation, KAN):  # a dissipative KAN-HNN: its D is read back too
        state["dissipation"] = {
            "kan": _kan_spec(dissipation),
            **net(dissipation),
            "form": model.form,
        }
    return state


def _kan_spec(kan: KAN) -> dict[str, Any]:
    return {
        "widths": list(kan.widths),
        "grid": kan.grid_size,
        "k": kan.k,
        "grid_range": list(kan.grid_range),
        "base_activation": kan.base_activation,
    }


def _kan_from_spec(
    spec: dict[str, Any], net: dict[str, Any], weights: dict[str, Tensor] | None
) -> KAN:
    """The KAN of ``spec``; its weights from ``net`` or, by ``net["key"]``, from ``weights``."""
    if "state_dict" in net:
        state_dict = net["state_dict"]
    else:
        prefix = f"{net['key']}." if net["key"] else ""
        state_dict = {k[len(prefix) :]: v for k, v in weights.items() if k.startswith(prefix)}
    kan = KAN(
        spec["widths"],
        spec["grid"],
        spec["k"],
        grid_range=tuple(spec["grid_range"]),
        base_activation=spec["base_activation"],
        dtype=state_dict["act_fun.0.coef"].dtype,
    )
    kan.load_state_dict(state_dict)
    return kan


def load_kan_run(path: str | os.PathLike) -> tuple[KAN, int, tuple[Tensor, ...]]:
    """Read a KAN run: ``(kan, output_index, (x, dx[, x_test, dx_test]))``.

    ``path`` may be a run directory (its ``checkpoint.pt``, or an older run's
    :data:`RUN_FILE`), a checkpoint, or an older run's :data:`RUN_FILE`. For a dissipative run
    this is the energy's KAN (:func:`extract_from_run` reads the dissipation too).

    Raises:
        DataFileError: if the file is missing or not a KAN run file.
    """
    kan, output_index, data, _ = load_run(path)
    x, dx, xt, dxt = data.as_tuple()
    return kan, output_index, (x, dx) if xt is None else (x, dx, xt, dxt)


def _holds_run_entry(ckpt: Path) -> bool:
    """Whether ``ckpt`` is a readable checkpoint holding :data:`RUN_ENTRY`."""
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception:  # missing, damaged or foreign: the caller falls back to the older file
        return False
    return isinstance(state, dict) and RUN_ENTRY in state


def load_run(
    path: str | os.PathLike,
) -> tuple[KAN, int, Splits, tuple[KAN, str] | None]:
    """:func:`load_kan_run` plus the dissipation's ``(KAN, form)`` of a dissipative run."""
    from ..errors import DataFileError

    path = Path(path)
    if path.is_dir():  # the checkpoint, unless only an older run's file holds the KAN run
        ckpt, old = path / "checkpoint.pt", path / RUN_FILE
        path = old if old.is_file() and not _holds_run_entry(ckpt) else ckpt
    train = f"`hnnkit train --system SYSTEM --model kan --out {path.parent}`"
    if not path.is_file():
        raise DataFileError(
            f"{path} does not exist; a KAN run directory holds checkpoint.pt (written by {train} "
            f"and the kan-spring experiment) or, from older versions, {RUN_FILE}"
        )
    retrain = f"retrain it, e.g. with {train}"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors for damaged files
        raise DataFileError(
            f"{path} is corrupted: it cannot be read as a torch file ({type(exc).__name__}); {retrain}"
        ) from exc
    weights = None
    if isinstance(state, dict) and "model" in state and "format" not in state:  # a checkpoint
        if RUN_ENTRY not in state:
            raise DataFileError(
                f"{path} is a checkpoint without a KAN run entry (not a --model kan run, or one "
                f"trained before checkpoints held it, whose directory then holds {RUN_FILE}); "
                f"{retrain}"
            )
        state, weights = state[RUN_ENTRY], state["model"]
    try:
        if not isinstance(state, dict) or state.get("format") != RUN_FORMAT:
            raise ValueError(f"no 'format': {RUN_FORMAT} entry")
        kan = _kan_from_spec(state["kan"], state, weights)
        d = state["data"]
        data = splits_of({k: d.get(k) for k in SPLIT_KEYS})
        output_index = int(state["output_index"])
        diss = state.get("dissipation")
        dissipation = (
            None
            if diss is None
            else (_kan_from_spec(diss["kan"], diss, weights), str(diss["form"]))
        )
    except Exception as exc:  # malformed contents raise many types
        raise DataFileError(
            f"{path} is not a KAN run file ({type(exc).__name__}: {exc}); {retrain}"
        ) from exc
    return kan, output_index, data, dissipation


def extract_from_run(
    path: str | os.PathLike, **kwargs: Any
) -> SymbolicHamiltonian | SymbolicDissipative:
    """:func:`extract_hamiltonian` on a saved KAN run (for ``hnnkit symbolic RUN_DIR``).

    ``path``: a run directory of ``hnnkit train --model kan`` or a model directory of the
    ``kan-spring`` experiment (its ``checkpoint.pt``), a checkpoint, or an older run's
    :data:`RUN_FILE` (or a directory holding one).

    A dissipative run (``hnnkit train --model kan --dissipative``) gives
    :func:`extract_dissipative`'s H and D instead.

    Args:
        path: the run file or its directory.
        **kwargs: passed to the extraction (``library``, ``occam_tol``, ...).

    Raises:
        DataFileError: as :func:`load_kan_run`.
    """
    from ..models.dissipative import DissipativeHNN

    kan, output_index, data, dissipation = load_run(path)
    if dissipation is not None:
        dkan, form = dissipation
        model = DissipativeHNN(kan.widths[0], energy_net=kan, dissipation_net=dkan, form=form)
        return extract_dissipative(model, data, **kwargs)
    kwargs.setdefault("output_index", output_index)
    return extract_hamiltonian(kan, data, **kwargs)
