"""Benchmark grids: systems × models × seeds (× noise levels × training-set sizes) as data.

A grid is a TOML file; every cell of it is one :class:`~hnnkit.experiments.spec.Experiment`,
keyed by its config hash (:meth:`Cell.hash`)::

    name = "smoke"                       # default: the file's name
    description = "three systems, three models, two seeds"
    systems = ["spring", "pendulum", "damped-spring"]   # registered systems
    models = ["baseline", "hnn", "dhnn"]                # registered phase-space models
    seeds = 2                            # seeds 0 and 1; or a list, e.g. [0, 4, 7]
    noise_std = [0.0, 0.1]               # optional axis: one cell per noise level
    n_trajectories = [10, 20, 40]        # optional axis: one cell per training-set size

    [data]                               # the Experiment tables of every cell
    n_points = 20
    [model]
    hidden = [64, 64]
    [train]
    steps = 200
    [eval]
    t_span = [0.0, 10.0]

    [per-system.two-body.data]           # settings of one system's cells
    n_trajectories = 50
    [per-model.dhnn]                     # settings of one model's cells, and the
    systems = ["damped-spring"]          # systems it runs on (default: all of them)
    [per-model.dhnn.train]
    weight_decay = 0.0

A setting is the ``[data]``/``[model]``/``[train]``/``[eval]`` table's, overridden by the
system's (``per-system``), overridden by the model's (``per-model``); an axis
(``noise_std``, ``n_trajectories``) and a table may not both set the same key. Training
settings left out are the model's registered defaults
(:func:`~hnnkit.experiments.spec.resolve_train`), so a cell's hash records the values used.

The grids shipped with hnnkit (:func:`builtin_grids`: ``smoke``, ``default``, ``zoo``) are
read by name: ``hnnkit bench smoke``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import DataFileError, HnnkitValueError, UnknownNameError
from ..models import get_model, list_models
from ..models.registry import PHASE_SPACE
from ..systems import get_system, list_systems
from .checks import check_keys, integer, number
from .spec import TABLES, Experiment, resolve_train

#: Where the grids shipped with hnnkit live (``NAME.toml``).
GRIDS_DIR = Path(__file__).resolve().parent.parent / "grids"
#: The keys of a grid file.
GRID_KEYS = (
    "name",
    "description",
    "systems",
    "models",
    "seeds",
    "noise_std",
    "n_trajectories",
    *TABLES,
    "per-system",
    "per-model",
)
#: The data keys that an axis of the grid sets, and the cell label of each.
AXES = ("noise_std", "n_trajectories")


@dataclass(frozen=True)
class Cell:
    """One cell of a grid: its coordinates and the experiment it runs.

    ``noise_std`` and ``n_trajectories`` are the grid's axis values (``None`` where the grid
    has no such axis: the experiment's own setting, or the system's default, applies).
    """

    system: str
    model: str
    seed: int
    noise_std: float | None
    n_trajectories: int | None
    experiment: Experiment

    @property
    def hash(self) -> str:
        """The experiment's config hash: the cell's key and the name of its result file."""
        return self.experiment.config_hash()

    def labels(self) -> dict[str, Any]:
        """The cell's coordinates as plain data."""
        return {
            "system": self.system,
            "model": self.model,
            "seed": self.seed,
            "noise_std": self.noise_std,
            "n_trajectories": self.n_trajectories,
        }

    @cached_property
    def cost(self) -> float:
        """A rough relative cost of the cell's training, to start the costliest cells first:
        the model's registered cost per step and state × steps × states per step (the batch
        size, or every training state for full-batch training). Results do not depend on it."""
        return estimated_cost(self.experiment)

    @property
    def label(self) -> str:
        """``system/model/seedN`` (with ``noise=…`` and ``n=…`` when the grid has those axes)."""
        parts = [self.system, self.model, f"seed{self.seed}"]
        if self.noise_std is not None:
            parts.append(f"noise={self.noise_std:g}")
        if self.n_trajectories is not None:
            parts.append(f"n={self.n_trajectories}")
        return "/".join(parts)


@dataclass(frozen=True)
class Grid:
    """A parsed, validated grid: its axes and every cell, in the order they run (system, then
    the axes, then seed, then model, so that the cells of one data set are neighbours)."""

    name: str
    description: str
    systems: tuple[str, ...]
    models: tuple[str, ...]
    seeds: tuple[int, ...]
    noise_std: tuple[float | None, ...]
    n_trajectories: tuple[int | None, ...]
    cells: tuple[Cell, ...]
    text: str = ""

    def find(self, prefix: str) -> Cell:
        """The cell whose hash is ``prefix`` or starts with it.

        Raises:
            HnnkitValueError: if no cell or several cells match.
        """
        if not isinstance(prefix, str) or not prefix.strip():
            raise HnnkitValueError("--rerun needs a cell's config hash (or a unique prefix)")
        found = [c for c in self.cells if c.hash.startswith(prefix.strip().lower())]
        if not found:
            raise HnnkitValueError(
                f"no cell of grid {self.name!r} has a hash starting with {prefix!r}; the "
                "hashes are listed in OUT/cells.csv (and under the failed cells in leaderboard.md)"
            )
        if len(found) > 1:
            listed = ", ".join(f"{c.hash} ({c.label})" for c in found[:6])
            raise HnnkitValueError(
                f"{prefix!r} matches {len(found)} cells of grid {self.name!r} ({listed}"
                f"{', …' if len(found) > 6 else ''}); give more digits of the hash"
            )
        return found[0]


def estimated_cost(exp: Experiment) -> float:
    """See :attr:`Cell.cost`; for a measured data set or a system that cannot be built here,
    the data size defaults to 50 trajectories of 30 points."""
    spec = resolve_train(exp)
    data = exp.data
    n_traj, n_points, test = 50, 30, 0.5
    if not data.measured:
        try:
            system = get_system(data.system, **data.params)
        except Exception:  # an estimate only: the cell itself reports the error
            system = None
        if system is not None:
            n_traj = system.default_n_trajectories
            n_points = system.default_n_points
            test = system.default_test_fraction
    n_traj = data.n_trajectories or n_traj
    n_points = data.n_points or n_points
    test = data.test_fraction if data.test_fraction is not None else test
    states = max(1.0, n_traj * (1.0 - test)) * n_points
    if spec.train.batch_size is not None:
        states = min(states, spec.train.batch_size)
    return get_model(exp.model.name).cost * (spec.train.steps or 1) * states


def longest_first(cells: list[Cell] | tuple[Cell, ...]) -> list[Cell]:
    """``cells`` by :attr:`Cell.cost`, costliest first (ties in their grid order), the order in
    which a sweep starts them: on ``N`` workers the last cells to finish are then short ones."""
    return sorted(cells, key=lambda c: -c.cost)


def builtin_grids() -> dict[str, Path]:
    """The grids shipped with hnnkit: name → file."""
    return {p.stem: p for p in sorted(GRIDS_DIR.glob("*.toml"))}


def load_grid(source: str | os.PathLike) -> Grid:
    """Read and validate a grid: a TOML file, or the name of a built-in grid (``smoke``).

    Raises:
        DataFileError: if the file is missing or not TOML.
        UnknownNameError: if ``source`` is neither a file nor a built-in grid.
        HnnkitValueError: on an unknown system, model or key, an empty grid or a bad value
            (the message names the file and the setting).
    """
    path = Path(source)
    builtin = builtin_grids()
    if not path.is_file():
        if str(source) in builtin:
            path = builtin[str(source)]
        elif path.suffix == ".toml" or os.sep in str(source):
            raise DataFileError(
                f"grid file {source} not found; pass a grid TOML file or a built-in grid "
                f"({', '.join(builtin)})"
            )
        else:
            raise UnknownNameError("grid (a TOML file or a built-in grid)", str(source), builtin)
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{path} is not valid TOML ({exc})") from exc
    try:
        return parse_grid(data, default_name=path.stem, text=text)
    except (HnnkitValueError, UnknownNameError) as exc:
        raise HnnkitValueError(f"grid {path}: {exc}") from None


def parse_grid(data: Any, *, default_name: str = "grid", text: str = "") -> Grid:
    """A :class:`Grid` from the parsed TOML ``data`` (see the module docstring for the format).

    Raises:
        HnnkitValueError: on an unknown system, model or key, an empty grid or a bad value.
    """
    data = check_keys("the grid", data, GRID_KEYS)
    systems = _names(data, "systems", list_systems(), "system")
    models = _names(data, "models", _phase_space_models(), "model")
    seeds = _seeds(data.get("seeds", 1))
    axes = {key: _axis(data, key) for key in AXES}
    base = {t: _table(data, t, t) for t in TABLES}
    per_system = _per(data, "per-system", systems, "systems", ())
    per_model = _per(data, "per-model", models, "models", ("systems",))
    runs_on = {}
    for m in models:
        only = per_model.get(m, {}).get("systems")
        if only is not None:
            runs_on[m] = _names({"systems": only}, "systems", systems, f"system of per-model.{m}")
    cells = []
    for system in systems:
        for noise in axes["noise_std"]:
            for size in axes["n_trajectories"]:
                for seed in seeds:
                    for model in models:
                        if system not in runs_on.get(model, systems):
                            continue
                        tables = _merge(base, per_system.get(system, {}), per_model.get(model, {}))
                        exp = _experiment(system, model, seed, noise, size, tables)
                        cells.append(Cell(system, model, seed, noise, size, exp))
    if not cells:
        raise HnnkitValueError(
            "the grid has no cells: no model runs on any of its systems (see per-model.*.systems)"
        )
    hashes: dict[str, Cell] = {}
    for c in cells:
        if c.hash in hashes:
            raise HnnkitValueError(
                f"cells {hashes[c.hash].label} and {c.label} run the same experiment "
                f"({c.hash}); remove the repeated value"
            )
        hashes[c.hash] = c
    name = data.get("name", default_name)
    description = data.get("description", "")
    for key, value in (("name", name), ("description", description)):
        if not isinstance(value, str):
            raise HnnkitValueError(f"{key} must be a string, got {value!r}")
    return Grid(
        name=name,
        description=description,
        systems=systems,
        models=models,
        seeds=seeds,
        noise_std=axes["noise_std"],
        n_trajectories=axes["n_trajectories"],
        cells=tuple(cells),
        text=text,
    )


def _phase_space_models() -> list[str]:
    return [m for m in list_models() if get_model(m).data == PHASE_SPACE]


def _names(data: dict[str, Any], key: str, valid: Any, kind: str) -> tuple[str, ...]:
    valid = list(valid)
    if key not in data:
        raise HnnkitValueError(f"the grid needs {key} = [...], from: {', '.join(valid)}")
    value = data[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise HnnkitValueError(f"{key} must be a list of names, got {value!r}")
    if not value:
        raise HnnkitValueError(
            f"the grid has no cells: {key} is empty; name at least one of: {', '.join(valid)}"
        )
    unknown = [v for v in value if v not in valid]
    if unknown:
        raise HnnkitValueError(
            f"unknown {kind}(s) {', '.join(map(repr, unknown))} in {key}; valid {kind}s are: "
            f"{', '.join(sorted(valid))}"
        )
    repeated = sorted({v for v in value if value.count(v) > 1})
    if repeated:
        raise HnnkitValueError(f"{key} lists {', '.join(map(repr, repeated))} more than once")
    return tuple(value)


def _seeds(value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise HnnkitValueError(
                f"the grid has no cells: seeds = {value}; give a number of seeds >= 1 or a list"
            )
        return tuple(range(value))
    if not isinstance(value, list) or not value:
        raise HnnkitValueError(
            f"seeds must be a number of seeds (>= 1) or a non-empty list of seeds, got {value!r}"
        )
    seeds = tuple(integer(0)("seeds", s) for s in value)
    if len(set(seeds)) != len(seeds):
        raise HnnkitValueError(f"seeds lists a seed more than once: {list(seeds)}")
    return seeds


def _axis(data: dict[str, Any], key: str) -> tuple[Any, ...]:
    if key not in data:
        return (None,)
    value = data[key]
    if not isinstance(value, list) or not value:
        raise HnnkitValueError(f"{key} must be a non-empty list of values, got {value!r}")
    check = number() if key == "noise_std" else integer(2)
    values = tuple(check(key, v) for v in value)
    if len(set(values)) != len(values):
        raise HnnkitValueError(f"{key} lists a value more than once: {list(values)}")
    return values


def _table(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    table = data.get(key, {})
    if not isinstance(table, dict):
        raise HnnkitValueError(f"{where} must be a table of settings, got {table!r}")
    if key == "data":
        for forbidden in ("system", "file"):
            if forbidden in table:
                raise HnnkitValueError(
                    f"{where}.{forbidden}: a grid's data come from its systems list; drop it"
                )
    if key == "model" and "name" in table:
        raise HnnkitValueError(f"{where}.name: a grid's models come from its models list; drop it")
    return table


def _per(
    data: dict[str, Any], key: str, names: tuple[str, ...], listed: str, extra: tuple[str, ...]
) -> dict[str, dict[str, Any]]:
    per = data.get(key, {})
    if not isinstance(per, dict):
        raise HnnkitValueError(f"{key} must be a table of tables, got {per!r}")
    out = {}
    for name, body in per.items():
        if name not in names:
            raise HnnkitValueError(
                f"{key}.{name}: {name!r} is not in the grid's {listed} ({', '.join(names)})"
            )
        body = check_keys(f"{key}.{name}", body, (*TABLES, *extra))
        out[name] = {t: _table(body, t, f"{key}.{name}.{t}") for t in TABLES}
        out[name].update({k: body[k] for k in extra if k in body})
    return out


def _merge(*layers: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {t: {} for t in TABLES}
    for layer in layers:
        for t in TABLES:
            for k, v in layer.get(t, {}).items():
                if isinstance(v, dict) and isinstance(out[t].get(k), dict):
                    out[t][k] = {**out[t][k], **v}  # e.g. data.params: merged key by key
                else:
                    out[t][k] = v
    return out


def _experiment(
    system: str,
    model: str,
    seed: int,
    noise: float | None,
    size: int | None,
    tables: dict[str, dict[str, Any]],
) -> Experiment:
    data = dict(tables["data"])
    for key, value in zip(AXES, (noise, size), strict=True):
        if value is None:
            continue
        if key in data:
            raise HnnkitValueError(
                f"{key} is both an axis of the grid and set in a data table ({data[key]!r}); "
                "give it in one place"
            )
        data[key] = value
    body = {
        "seed": seed,
        "data": {"system": system, **data},
        "model": {"name": model, **tables["model"]},
        "train": tables["train"],
        "eval": tables["eval"],
    }
    where = f"cell {system}/{model}/seed{seed}"
    try:
        return resolve_train(Experiment.from_dict(body))
    except (HnnkitValueError, UnknownNameError) as exc:
        raise HnnkitValueError(f"{where}: {exc}") from None
