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
import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, ClassVar

from ..errors import DataFileError, HnnkitValueError
from ..models import DEFAULT_KEYS, get_model, train_defaults
from ..models.registry import OPTIONAL_DEFAULTS, REQUIRED_DEFAULT_KEYS
from ..train import LOSSES, get_loss
from .checks import apply_checks, check_keys, integer, number, plain, span, string

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
#: The tables of an experiment, in the order of its TOML file.
TABLES = ("data", "model", "train", "eval")
#: Data settings of a simulation only (a recording or a file fixes them).
SIMULATION = ("n_trajectories", "n_points", "t_span", "noise_std", "energy_range")


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


class _Table:
    """``to_dict`` (the settings given: ``None`` and empty tables left out) and ``from_dict``
    (unknown keys refused, naming the valid ones) of a spec read from the TOML table ``TABLE``."""

    TABLE: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in _as_dict(self).items() if v is not None and v != {}}

    @classmethod
    def from_dict(cls, data: Any) -> Any:
        return cls(**check_keys(cls.TABLE, data, _keys(cls)))


# --- the specs ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSpec(_Table):
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
    energy_range: tuple[float, float] | None = None
    TABLE: ClassVar[str] = "data"

    def __post_init__(self) -> None:
        if (self.system is None) == (self.file is None):
            raise HnnkitValueError(
                "data needs exactly one of 'system' (a registered system name, or "
                f"{MEASURED!r}) and 'file' (a .csv or .npz of trajectories)"
            )
        if not isinstance(self.params, dict):
            raise HnnkitValueError(f"data.params must be a table, got {self.params!r}")
        params = {str(k): plain(f"data.params.{k}", v) for k, v in self.params.items()}
        object.__setattr__(self, "params", params)
        apply_checks(
            self,
            "data",
            system=string(optional=True),
            file=string(optional=True),
            n_trajectories=integer(2, optional=True),
            n_points=integer(2, optional=True),
            t_span=span,
            noise_std=number(optional=True),
            seed=integer(0, optional=True),
            test_fraction=number(strict=True, high=1.0, optional=True),
            energy_range=span,
        )
        simulated = (*SIMULATION, *(("test_fraction",) if self.file is None else ()))
        fixed = [k for k in simulated if getattr(self, k) is not None]
        if self.measured and (fixed or self.params):
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
        keys = (*SIMULATION, "test_fraction")
        return {k: getattr(self, k) for k in keys if getattr(self, k) is not None}


@dataclass(frozen=True)
class ModelSpec:
    """A registered model name and its keyword arguments (``hidden``, ``activation``)."""

    name: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        apply_checks(self, "model", name=string())
        check_keys("model", self.kwargs, MODEL_KWARGS)
        kw = dict(self.kwargs)
        if "hidden" in kw:
            hidden = kw["hidden"]
            if not isinstance(hidden, list | tuple) or not hidden:
                raise HnnkitValueError(
                    f"model.hidden must be a list of layer sizes like [200, 200], got {hidden!r}"
                )
            kw["hidden"] = tuple(integer(1)("model.hidden", h) for h in hidden)
        if "activation" in kw:
            string()("model.activation", kw["activation"])
        object.__setattr__(self, "kwargs", kw)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **_jsonable(self.kwargs)}

    @classmethod
    def from_dict(cls, data: Any) -> ModelSpec:
        data = dict(check_keys("model", data, ("name", *MODEL_KWARGS)))
        if "name" not in data:
            raise HnnkitValueError("model needs a 'name' (a registered model, e.g. 'hnn')")
        return cls(data.pop("name"), data)


@dataclass(frozen=True)
class TrainSpec(_Table):
    """Settings of :func:`hnnkit.train.fit`; ``loss`` is any registered loss
    (:func:`hnnkit.train.register_loss`, e.g. ``derivative``, ``through-step``, ``rollout``) and
    ``loss_options`` its options (e.g. ``{"k": 5, "method": "leapfrog"}`` for ``rollout``).

    ``optimizer``, ``steps``, ``weight_decay`` and ``loss`` left ``None`` take the model's
    registered training defaults (:func:`hnnkit.models.train_defaults`; ``loss`` defaults to
    ``derivative``), filled in by :func:`resolve_train` before an experiment runs: the defaults
    live in the registry only. The resolved ``loss_options`` hold every option of the loss (the
    model's registered ones when its default loss is used, then the loss's own defaults); a
    loss without options keeps ``{}``, which leaves the config hash as it was before losses
    had options.
    """

    optimizer: str | None = None
    lr: float = 1e-3
    steps: int | None = None
    batch_size: int | None = None
    weight_decay: float | None = None
    loss: str | None = None
    loss_options: dict[str, Any] = field(default_factory=dict)
    TABLE: ClassVar[str] = "train"

    def __post_init__(self) -> None:
        apply_checks(
            self,
            "train",
            optimizer=string(OPTIMIZERS, optional=True),
            lr=number(strict=True),
            steps=integer(1, optional=True),
            batch_size=integer(1, optional=True),
            weight_decay=number(optional=True),
            # a registered loss (hnnkit.train.LOSSES)
            loss=string(tuple(LOSSES), optional=True),
        )
        if not isinstance(self.loss_options, dict):
            raise HnnkitValueError(
                f"train.loss_options must be a table like {{k = 5, method = 'leapfrog'}}, got "
                f"{self.loss_options!r}"
            )
        options = {
            str(k): plain(f"train.loss_options.{k}", v) for k, v in self.loss_options.items()
        }
        if self.loss is not None:
            try:
                get_loss(self.loss).resolve_options(options)
            except HnnkitValueError as exc:
                raise HnnkitValueError(f"train.loss_options: {exc}") from None
        object.__setattr__(self, "loss_options", options)

    @property
    def through_step(self) -> bool:
        return self.loss == "through-step"

    def for_model(self, model: str) -> TrainSpec:
        """These settings, each one left ``None`` set to model ``model``'s registered default
        (:func:`train_settings`), and the loss options completed."""
        given = {k: getattr(self, k) for k in DEFAULT_KEYS}
        resolved = train_settings(model, **given)
        return self if resolved == given else replace(self, **resolved)


@dataclass(frozen=True)
class EvalSpec(_Table):
    """The evaluation: protocol, rollout span (``None``: the task's or 0–20), metrics, and the
    number of output times of the corrected protocol's rollouts (``None``: 200)."""

    protocol: str = "corrected"
    t_span: tuple[float, float] | None = None
    metrics: tuple[str, ...] = METRICS
    n_points: int | None = None
    TABLE: ClassVar[str] = "eval"

    def __post_init__(self) -> None:
        apply_checks(
            self,
            "eval",
            protocol=string(PROTOCOLS),
            t_span=span,
            n_points=integer(2, optional=True),
        )
        if not isinstance(self.metrics, list | tuple) or not self.metrics:
            raise HnnkitValueError(
                f"eval.metrics must be a list of metric names ({', '.join(METRICS)}), "
                f"got {self.metrics!r}"
            )
        object.__setattr__(
            self, "metrics", tuple(string(METRICS)("eval.metrics", m) for m in self.metrics)
        )


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
        for key, cls in zip(TABLES, (DataSpec, ModelSpec, TrainSpec, EvalSpec), strict=True):
            if not isinstance(getattr(self, key), cls):
                raise HnnkitValueError(
                    f"experiment.{key} must be a {cls.__name__}, got {getattr(self, key)!r}"
                )
        apply_checks(self, "experiment", seed=integer(0), name=string(optional=True))
        if self.seed > 2**63 - 1:
            raise HnnkitValueError(f"experiment.seed must be < 2**63, got {self.seed}")
        if self.name is not None:
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
        for key in TABLES:
            out[key] = getattr(self, key).to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Any) -> Experiment:
        data = check_keys("experiment", data, ("name", "seed", *TABLES))
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
        for table in TABLES:
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


def resolve_train(exp: Experiment) -> Experiment:
    """``exp`` with every training setting left ``None`` (``optimizer``, ``steps``,
    ``weight_decay``, ``loss``) set to its model's registered default
    (:func:`hnnkit.models.train_defaults`), and the loss options completed.

    ``hnnkit run``, ``hnnkit train`` and the tasks resolve through this function before they
    hash or train, so a run's config and hash record the values used.

    Raises:
        UnknownNameError: if the model is not registered.
    """
    train = exp.train.for_model(exp.model.name)
    return exp if train is exp.train else replace(exp, train=train)


def train_settings(model: str, **given: Any) -> dict[str, Any]:
    """``given`` training settings (the keys of :data:`hnnkit.models.DEFAULT_KEYS`), each one
    that is ``None`` or missing set to model ``model``'s registered default: the one place where
    :func:`hnnkit.models.train_defaults` fills in a run's settings.

    ``loss`` defaults to the model's (``derivative`` unless it registers another); the model's
    registered ``loss_options`` apply only to that default loss, under the ones given; then the
    loss fills in and checks its options for the model's kind (field or map).

    Raises:
        UnknownNameError: if ``model`` or the loss is not registered.
        HnnkitValueError: an option the loss does not take or refuses, or a loss that cannot
            train the model (a field loss for a one-step map).
    """
    entry = get_model(model)
    defaults = train_defaults(model)
    out = {**given}
    for key in REQUIRED_DEFAULT_KEYS:
        if given.get(key) is None:
            out[key] = defaults[key]
    default_loss = defaults.get("loss", OPTIONAL_DEFAULTS["loss"])
    loss = given.get("loss") or default_loss
    options = dict(given.get("loss_options") or {})
    if loss == default_loss:
        options = {**defaults.get("loss_options", {}), **options}
    chosen = get_loss(loss)
    chosen.check_kind(entry.kind, model)
    out["loss"] = loss
    out["loss_options"] = chosen.resolve_options(options, entry.kind)
    return out
