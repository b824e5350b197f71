"""Experiments as data: ``Experiment = DataSpec × ModelSpec × TrainSpec × EvalSpec``.

Every spec is a frozen dataclass with ``to_dict()`` / ``from_dict()``. ``from_dict`` is the
edge where a TOML file or a JSON record comes in: an unknown key (named, with the valid
ones listed), a value of the wrong type or out of range raises
:class:`~hnnkit.errors.HnnkitValueError`. A data setting left out (``None``) takes the
system's own default, which :func:`hnnkit.data.generate` applies: the defaults live there
only. ``Experiment.config_hash()`` (sha256 of the sorted JSON, 12 hex digits) names the
experiment's run directory.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from ..errors import DataFileError, HnnkitValueError
from ..train import LOSSES

#: The system name of the measured pendulum recording (a data set, not a simulated system).
MEASURED = "real-pendulum"
OPTIMIZERS = ("adam", "lbfgs")
PROTOCOLS = ("corrected", "original")
#: The metrics an evaluation can report (``EvalSpec.metrics``).
METRICS = (
    "train_loss",
    "test_loss",
    "energy",
    "rollout_mse",
    "valid_time",
    "energy_drift",
    "symplecticity",
)
#: Model keyword arguments a spec may set, with their checks.
MODEL_KWARGS = ("hidden", "activation")


# --- checks shared by the specs -------------------------------------------------------------


def _where(spec: str, key: str) -> str:
    return f"{spec}.{key}"


def _check_keys(spec: str, data: Any, valid: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise HnnkitValueError(f"{spec} must be a table of settings, got {type(data).__name__}")
    unknown = [k for k in data if k not in valid]
    if unknown:
        raise HnnkitValueError(
            f"unknown key(s) {', '.join(map(repr, unknown))} in {spec}; valid keys: "
            f"{', '.join(valid)}"
        )
    return data


def _int(spec: str, key: str, value: Any, minimum: int, *, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise HnnkitValueError(
            f"{_where(spec, key)} must be an integer, got {value!r} ({type(value).__name__})"
        )
    if value < minimum:
        raise HnnkitValueError(f"{_where(spec, key)} must be >= {minimum}, got {value}")
    return value


def _float(
    spec: str,
    key: str,
    value: Any,
    *,
    low: float = 0.0,
    strict: bool = False,
    high: float | None = None,
    optional: bool = False,
) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise HnnkitValueError(
            f"{_where(spec, key)} must be a number, got {value!r} ({type(value).__name__})"
        )
    value = float(value)
    ok = math.isfinite(value) and (value > low if strict else value >= low)
    if ok and high is not None:
        ok = value < high
    if not ok:
        bound = f"{'>' if strict else '>='} {low:g}" + (f" and < {high:g}" if high else "")
        raise HnnkitValueError(f"{_where(spec, key)} must be a finite number {bound}, got {value}")
    return value


def _str(spec: str, key: str, value: Any, choices: tuple[str, ...] | None = None) -> str:
    if not isinstance(value, str) or not value:
        raise HnnkitValueError(f"{_where(spec, key)} must be a non-empty string, got {value!r}")
    if choices is not None and value not in choices:
        raise HnnkitValueError(
            f"{_where(spec, key)} = {value!r} is not valid; choose one of: {', '.join(choices)}"
        )
    return value


def _span(spec: str, key: str, value: Any, *, optional: bool = True) -> tuple[float, float] | None:
    if value is None and optional:
        return None
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise HnnkitValueError(f"{_where(spec, key)} must be [start, end], got {value!r}")
    start = _float(spec, key, value[0], low=-math.inf)
    end = _float(spec, key, value[1], low=-math.inf)
    if not end > start:  # type: ignore[operator]
        raise HnnkitValueError(f"{_where(spec, key)} needs end > start, got {list(value)}")
    return (start, end)  # type: ignore[return-value]


def _plain(spec: str, key: str, value: Any) -> Any:
    """A TOML/JSON scalar or list of scalars (the values a system or model parameter takes)."""
    if isinstance(value, list | tuple):
        return tuple(_plain(spec, key, v) for v in value)
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise HnnkitValueError(
        f"{_where(spec, key)} must be a number, string, boolean or a list of them, got {value!r}"
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _as_dict(spec: Any) -> dict[str, Any]:
    return {f.name: _jsonable(getattr(spec, f.name)) for f in fields(spec)}


def _keys(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


# --- the specs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSpec:
    """Where the data come from: a registered system (with its parameters) or a data file.

    ``system = "real-pendulum"`` is the measured recording (no other setting applies). Every
    ``None`` takes the system's default (:func:`hnnkit.data.generate`); ``seed = None`` takes
    the experiment's seed.
    """

    system: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    file: str | None = None
    n_trajectories: int | None = None
    n_points: int | None = None
    t_span: tuple[float, float] | None = None
    noise_std: float | None = None
    seed: int | None = None
    test_fraction: float | None = None

    def __post_init__(self) -> None:
        s = "data"
        if (self.system is None) == (self.file is None):
            raise HnnkitValueError(
                "data needs exactly one of 'system' (a registered system name, or "
                f"{MEASURED!r}) and 'file' (a dataset written by Dataset.save)"
            )
        if self.system is not None:
            _str(s, "system", self.system)
        if self.file is not None:
            _str(s, "file", self.file)
        if not isinstance(self.params, dict):
            raise HnnkitValueError(f"data.params must be a table, got {self.params!r}")
        params = {str(k): _plain(s, f"params.{k}", v) for k, v in self.params.items()}
        object.__setattr__(self, "params", params)
        _int(s, "n_trajectories", self.n_trajectories, 2, optional=True)
        _int(s, "n_points", self.n_points, 2, optional=True)
        object.__setattr__(self, "t_span", _span(s, "t_span", self.t_span))
        object.__setattr__(self, "noise_std", _float(s, "noise_std", self.noise_std, optional=True))
        _int(s, "seed", self.seed, 0, optional=True)
        if self.test_fraction is not None:
            tf = _float(s, "test_fraction", self.test_fraction, strict=True, high=1.0)
            object.__setattr__(self, "test_fraction", tf)
        fixed = [
            k
            for k in ("n_trajectories", "n_points", "t_span", "noise_std", "test_fraction")
            if getattr(self, k) is not None
        ]
        if (self.system == MEASURED or self.file is not None) and (fixed or self.params):
            source = f"system {MEASURED!r}" if self.file is None else "a data file"
            raise HnnkitValueError(
                f"data.{', data.'.join(fixed or ['params'])}: not for {source}, whose data are "
                "fixed; drop them"
            )

    @property
    def measured(self) -> bool:
        """Whether the data are a fixed recording or file, not simulated."""
        return self.system == MEASURED or self.file is not None

    def generate_kwargs(self) -> dict[str, Any]:
        """The settings given, as keyword arguments of :func:`hnnkit.data.generate`."""
        keys = ("n_trajectories", "n_points", "t_span", "noise_std", "test_fraction")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in _as_dict(self).items() if v is not None and v != {}}

    @classmethod
    def from_dict(cls, data: Any) -> DataSpec:
        return cls(**_check_keys("data", data, _keys(cls)))


@dataclass(frozen=True)
class ModelSpec:
    """A registered model name and its keyword arguments (``hidden``, ``activation``)."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _str("model", "name", self.name)
        _check_keys("model", self.kwargs, MODEL_KWARGS)
        kw = dict(self.kwargs)
        if "hidden" in kw:
            hidden = kw["hidden"]
            if not isinstance(hidden, list | tuple) or not hidden:
                raise HnnkitValueError(
                    f"model.hidden must be a list of layer sizes like [200, 200], got {hidden!r}"
                )
            kw["hidden"] = tuple(_int("model", "hidden", h, 1) for h in hidden)
        if "activation" in kw:
            _str("model", "activation", kw["activation"])
        object.__setattr__(self, "kwargs", kw)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **_jsonable(self.kwargs)}

    @classmethod
    def from_dict(cls, data: Any) -> ModelSpec:
        data = dict(_check_keys("model", data, ("name", *MODEL_KWARGS)))
        if "name" not in data:
            raise HnnkitValueError("model needs a 'name' (a registered model, e.g. 'hnn')")
        return cls(data.pop("name"), data)


@dataclass(frozen=True)
class TrainSpec:
    """Settings of :func:`hnnkit.train.fit`; ``loss`` is any registered loss
    (:func:`hnnkit.train.register_loss`, e.g. ``derivative``, ``through-step``)."""

    optimizer: str = "adam"
    lr: float = 1e-3
    steps: int = 2000
    batch_size: int | None = None
    weight_decay: float = 1e-4
    loss: str = "derivative"

    def __post_init__(self) -> None:
        s = "train"
        _str(s, "optimizer", self.optimizer, OPTIMIZERS)
        object.__setattr__(self, "lr", _float(s, "lr", self.lr, strict=True))
        _int(s, "steps", self.steps, 1)
        _int(s, "batch_size", self.batch_size, 1, optional=True)
        object.__setattr__(self, "weight_decay", _float(s, "weight_decay", self.weight_decay))
        _str(s, "loss", self.loss, tuple(LOSSES))  # a registered loss (hnnkit.train.LOSSES)

    @property
    def through_step(self) -> bool:
        return self.loss == "through-step"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in _as_dict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Any) -> TrainSpec:
        return cls(**_check_keys("train", data, _keys(cls)))


@dataclass(frozen=True)
class EvalSpec:
    """The evaluation: protocol, rollout span (``None``: the task's or 0–20) and metrics."""

    protocol: str = "corrected"
    t_span: tuple[float, float] | None = None
    metrics: tuple[str, ...] = METRICS

    def __post_init__(self) -> None:
        _str("eval", "protocol", self.protocol, PROTOCOLS)
        object.__setattr__(self, "t_span", _span("eval", "t_span", self.t_span))
        if not isinstance(self.metrics, list | tuple) or not self.metrics:
            raise HnnkitValueError(
                f"eval.metrics must be a list of metric names ({', '.join(METRICS)}), "
                f"got {self.metrics!r}"
            )
        for m in self.metrics:
            _str("eval", "metrics", m, METRICS)
        object.__setattr__(self, "metrics", tuple(self.metrics))

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in _as_dict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Any) -> EvalSpec:
        return cls(**_check_keys("eval", data, _keys(cls)))


@dataclass(frozen=True)
class Experiment:
    """One run: data × model × training × evaluation, and the seed of the model and the batches.

    ``name`` (optional) names the run directory instead of the hash; it is not part of the
    hash, which depends only on what is computed.
    """

    data: DataSpec
    model: ModelSpec
    train: TrainSpec = field(default_factory=TrainSpec)
    eval: EvalSpec = field(default_factory=EvalSpec)
    seed: int = 0
    name: str | None = None

    def __post_init__(self) -> None:
        for key, cls in (
            ("data", DataSpec),
            ("model", ModelSpec),
            ("train", TrainSpec),
            ("eval", EvalSpec),
        ):
            if not isinstance(getattr(self, key), cls):
                raise HnnkitValueError(
                    f"experiment.{key} must be a {cls.__name__}, got {getattr(self, key)!r}"
                )
        _int("experiment", "seed", self.seed, 0)
        if self.seed > 2**63 - 1:
            raise HnnkitValueError(f"experiment.seed must be < 2**63, got {self.seed}")
        if self.name is not None:
            _str("experiment", "name", self.name)
            if os.sep in self.name or self.name in (".", "..") or self.name.startswith("."):
                raise HnnkitValueError(
                    f"experiment.name {self.name!r} must be a plain directory name "
                    "(no path separator, not starting with '.')"
                )

    @property
    def data_seed(self) -> int:
        """The seed of the data: the data's own, else the experiment's."""
        return self.seed if self.data.seed is None else self.data.seed

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {} if self.name is None else {"name": self.name}
        out["seed"] = self.seed
        for key in ("data", "model", "train", "eval"):
            out[key] = getattr(self, key).to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Experiment:
        data = _check_keys("experiment", data, ("name", "seed", "data", "model", "train", "eval"))
        missing = [k for k in ("data", "model") if k not in data]
        if missing:
            raise HnnkitValueError(
                f"the experiment lacks the table(s) {', '.join(missing)} "
                "(needed: data, model; optional: train, eval, seed, name)"
            )
        return cls(
            data=DataSpec.from_dict(data["data"]),
            model=ModelSpec.from_dict(data["model"]),
            train=TrainSpec.from_dict(data.get("train", {})),
            eval=EvalSpec.from_dict(data.get("eval", {})),
            seed=data.get("seed", 0),
            name=data.get("name"),
        )

    def config_hash(self) -> str:
        """12 hex digits of the sha256 of the sorted JSON of everything but the name."""
        body = {k: v for k, v in self.to_dict().items() if k != "name"}
        text = json.dumps(body, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def run_name(self) -> str:
        """The run directory's name: ``name``, else the config hash."""
        return self.name or self.config_hash()

    def with_seed(self, seed: int) -> Experiment:
        return replace(self, seed=seed)

    @classmethod
    def from_toml(cls, path: str | os.PathLike) -> Experiment:
        """Read an experiment from a TOML file (tables ``[data]``, ``[model]``, ``[train]``, ``[eval]``).

        Raises:
            DataFileError: if the file is missing or not TOML. HnnkitValueError: on a bad setting.
        """
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataFileError(f"{path} not found; pass an experiment TOML file") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise DataFileError(f"{path} is not valid TOML ({exc})") from exc
        try:
            return cls.from_dict(data)
        except HnnkitValueError as exc:
            raise HnnkitValueError(f"{path}: {exc}") from exc

    def to_toml(self) -> str:
        """This experiment as TOML that :meth:`from_toml` reads back to an equal experiment."""
        d = self.to_dict()
        lines = [f"{k} = {_toml_value(d[k])}" for k in ("name", "seed") if k in d]
        for table in ("data", "model", "train", "eval"):
            body = d[table]
            lines += ["", f"[{table}]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in body.items() if not isinstance(v, dict)]
            for k, v in body.items():
                if isinstance(v, dict):
                    lines += ["", f"[{table}.{k}]"]
                    lines += [f"{kk} = {_toml_value(vv)}" for kk, vv in v.items()]
        return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise HnnkitValueError(f"{value!r} cannot be written to TOML")
