"""The model registry: a name → a builder of an untrained model and its training defaults.

A model reaches ``hnnkit train --model NAME``, ``hnnkit evaluate``, ``hnnkit models`` and the
tasks of ``hnnkit reproduce`` by one call::

    register_model(
        "quadratic-hnn",
        build_quadratic_hnn,  # (dim, *, generator, **options) -> nn.Module with vector_field
        description="HNN whose energy is x^T A x",
        defaults={"optimizer": "adam", "steps": 500, "weight_decay": 0.0},
    )

The builder takes the phase-space dimension ``dim`` (``2n``) positionally, a
``torch.Generator`` (or ``None``) as the keyword ``generator``, and optionally more keyword
options, each with a default (``hidden`` and ``activation`` are the ones ``hnnkit train``
passes on from ``--hidden`` and ``--activation``). It returns a module whose
``vector_field(t, x)`` maps states ``(..., dim)`` to derivatives ``(..., dim)``.

A builder that also takes a keyword ``system`` (as the Lagrangian NN's, which needs the
system's velocity maps) gets the true system of the data (``None`` for measured data) from
every place that builds models; its entry records ``needs_system``.

``defaults`` are the training settings that ``hnnkit train`` uses when ``--optimizer``,
``--steps``, ``--weight-decay``, ``--loss`` or ``--loss-option`` is not given; this registry is
the only place they live. ``optimizer``, ``steps`` and ``weight_decay`` are required; ``loss``
(default ``"derivative"``) and ``loss_options`` (default ``{}``) are optional, e.g.
``{"loss": "rollout", "loss_options": {"k": 1, "method": "model"}}`` for a one-step map.

``kind`` (:data:`MODEL_KINDS`) says how the model moves states: ``"field"`` (the default) for a
model with ``vector_field(t, x)``, ``"map"`` for a one-step map with ``step(x, h)``
(:class:`hnnkit.models.maps.OneStepMap`, e.g. a SympNet); :func:`build_model` checks that the
builder returns that kind.

``cost`` is a rough relative cost of one training step per state (the baseline MLP = 1; the
built-in models' values come from their ms per step in the zoo grid's spring cells, README);
``hnnkit bench`` starts the costliest cells first so that no long cell is left running alone at
the end of a sweep. It changes no result.

``data`` says what a model learns from (:data:`DATA_KINDS`): ``"phase-space"`` (the default)
for the models above; ``"pixels"`` for a model whose builder's first argument is the size of a
flattened input of pixels and whose ``vector_field`` acts on its latent code (the pixel
pendulum's ``pixel-hnn`` and ``pixel-baseline``, trained only by that task). ``hnnkit train``,
``hnnkit run`` and the phase-space tasks take phase-space models only
(``get_model(name, data="phase-space")``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import torch
from torch import nn

from ..errors import HnnkitValueError
from ..registry import Registry
from .maps import is_map

#: The keys of a model's training defaults, in the order ``hnnkit models`` shows them.
DEFAULT_KEYS = ("optimizer", "steps", "weight_decay", "loss", "loss_options")
#: The training defaults every registration gives; the others have :data:`OPTIONAL_DEFAULTS`.
REQUIRED_DEFAULT_KEYS = ("optimizer", "steps", "weight_decay")
#: The optional training defaults and their values when left out.
OPTIONAL_DEFAULTS: Mapping[str, Any] = MappingProxyType({"loss": "derivative", "loss_options": {}})

FIELD = "field"
MAP = "map"
#: How a model moves states → what it exposes (shown by ``hnnkit models``).
MODEL_KINDS: Mapping[str, str] = MappingProxyType(
    {FIELD: "vector_field(t, x)", MAP: "step(x, h), a one-step map"}
)

PHASE_SPACE = "phase-space"
PIXELS = "pixels"
#: What a model learns from → what trains it (shown by ``hnnkit models`` and in errors).
DATA_KINDS: Mapping[str, str] = MappingProxyType(
    {
        PHASE_SPACE: "`hnnkit train`, `hnnkit run` and the phase-space tasks",
        PIXELS: "the pixel pendulum task only: `hnnkit reproduce --tasks pixel-pendulum`",
    }
)

Builder = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelEntry:
    """One registered model.

    Attributes:
        name: the registered name (``hnnkit train --model NAME``).
        builder: ``builder(dim, *, generator, **options) -> nn.Module`` (``dim``: the
            phase-space dimension, or the flattened input size of a ``"pixels"`` model).
        description: one line for ``hnnkit models``.
        defaults: the training defaults as registered (the keys of
            :data:`REQUIRED_DEFAULT_KEYS`, and of :data:`OPTIONAL_DEFAULTS` where given),
            read-only.
        options: the builder's keyword options (besides ``generator``) and their defaults.
        data: what the model learns from, a key of :data:`DATA_KINDS` (``"phase-space"`` or
            ``"pixels"``).
        kind: ``"field"`` or ``"map"`` (:data:`MODEL_KINDS`).
        needs_system: whether the builder takes the keyword ``system`` (the data's true
            system, or ``None`` for measured data); it is not among :attr:`options`.
        cost: relative cost of a training step per state (baseline MLP = 1), used only to
            order the cells of a sweep.
    """

    name: str
    builder: Builder
    description: str
    defaults: Mapping[str, Any]
    options: Mapping[str, Any]
    data: str = PHASE_SPACE
    kind: str = FIELD
    needs_system: bool = False
    cost: float = 1.0

    def accepts(self, option: str) -> bool:
        """Whether the builder takes the keyword option ``option``."""
        return option in self.options


def _builder_options(name: str, builder: Builder) -> dict[str, Any]:
    """The keyword options of ``builder`` with their defaults, after checking its contract."""
    contract = "builder(dim, *, generator, **options) with a default for every option"
    try:
        sig = inspect.signature(builder)
    except (TypeError, ValueError) as exc:
        raise HnnkitValueError(
            f"model {name!r}: cannot read the builder's signature ({exc}); it must be {contract}"
        ) from None
    try:
        sig.bind(2, generator=None)
    except TypeError as exc:
        raise HnnkitValueError(
            f"model {name!r}: the builder cannot be called as builder(dim, generator=...) "
            f"({exc}); it must be {contract}"
        ) from None
    options = {}
    for i, param in enumerate(sig.parameters.values()):
        if i == 0 or param.name in ("generator", "system"):
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        options[param.name] = None if param.default is param.empty else param.default
    return options


def _check_defaults(name: str, defaults: object) -> dict[str, Any]:
    example = '{"optimizer": "adam", "steps": 2000, "weight_decay": 1e-4}'
    if not isinstance(defaults, Mapping):
        raise HnnkitValueError(
            f"model {name!r}: defaults must be a mapping like {example}, got {defaults!r}"
        )
    keys = set(defaults)
    missing = [k for k in REQUIRED_DEFAULT_KEYS if k not in keys]
    extra = sorted(str(k) for k in keys - set(DEFAULT_KEYS))
    if missing or extra:
        parts = [f"missing {', '.join(missing)}"] if missing else []
        parts += [f"unknown {', '.join(extra)}"] if extra else []
        raise HnnkitValueError(
            f"model {name!r}: defaults need the keys {', '.join(REQUIRED_DEFAULT_KEYS)} and may "
            f"have {', '.join(OPTIONAL_DEFAULTS)} ({'; '.join(parts)}), e.g. {example}"
        )
    optimizer, steps, wd = (defaults[k] for k in REQUIRED_DEFAULT_KEYS)
    if not isinstance(optimizer, str) or not optimizer:
        raise HnnkitValueError(
            f"model {name!r}: defaults['optimizer'] must be an optimizer name such as 'adam' "
            f"or 'lbfgs', got {optimizer!r}"
        )
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise HnnkitValueError(
            f"model {name!r}: defaults['steps'] must be an integer >= 1, got {steps!r}"
        )
    if isinstance(wd, bool) or not isinstance(wd, int | float) or not math.isfinite(wd) or wd < 0:
        raise HnnkitValueError(
            f"model {name!r}: defaults['weight_decay'] must be a finite number >= 0, got {wd!r}"
        )
    out: dict[str, Any] = {"optimizer": optimizer, "steps": steps, "weight_decay": float(wd)}
    loss = defaults.get("loss", OPTIONAL_DEFAULTS["loss"])
    loss_options = defaults.get("loss_options", OPTIONAL_DEFAULTS["loss_options"])
    if not isinstance(loss, str) or not loss:
        raise HnnkitValueError(
            f"model {name!r}: defaults['loss'] must be a loss name such as 'derivative' or "
            f"'rollout', got {loss!r}"
        )
    if not isinstance(loss_options, Mapping) or not all(isinstance(k, str) for k in loss_options):
        raise HnnkitValueError(
            f"model {name!r}: defaults['loss_options'] must be a mapping of option names to "
            f"values, e.g. {{'k': 1, 'method': 'model'}}; got {loss_options!r}"
        )
    if "loss" in defaults:
        out["loss"] = loss
    if "loss_options" in defaults:
        out["loss_options"] = MappingProxyType(dict(loss_options))
    return out


def _same_definition(a: Builder, b: Builder) -> bool:
    """Whether two builders come from the same source definition (a module imported twice)."""

    def where(f: Builder) -> tuple[object, object]:
        code = getattr(f, "__code__", None)
        return getattr(f, "__qualname__", None), getattr(code, "co_filename", None)

    return where(a) == where(b) and where(a) != (None, None)


def register_model(
    name: str,
    builder: Builder,
    *,
    description: str,
    defaults: Mapping[str, Any],
    data: str = PHASE_SPACE,
    kind: str = FIELD,
    cost: float = 1.0,
    replace: bool = False,
) -> ModelEntry:
    """Make ``builder`` available as ``build_model(name, dim, generator=...)`` and on the command line.

    Args:
        name: the model's name: non-empty, no whitespace or commas (it is a CLI choice).
        builder: ``builder(dim, *, generator, **options) -> nn.Module`` (see the module
            docstring); every option needs a default.
        description: one line for ``hnnkit models``.
        defaults: training defaults ``{"optimizer": str, "steps": int >= 1,
            "weight_decay": float >= 0}``, optionally ``"loss"`` (a registered loss name,
            default ``"derivative"``) and ``"loss_options"`` (default ``{}``).
        data: what the model learns from: ``"phase-space"`` (default; ``hnnkit train`` offers
            it) or ``"pixels"`` (the builder's first argument is the flattened input size).
        kind: ``"field"`` (default: the builder returns a model with ``vector_field``) or
            ``"map"`` (a :class:`~hnnkit.models.maps.OneStepMap`).
        cost: rough relative cost of a training step per state, the baseline MLP = 1
            (default 1); only the order of a sweep's cells depends on it.
        replace: allow replacing another model registered under ``name``. Registering the
            same builder definition again (its module imported twice) is always allowed.

    Returns:
        The new :class:`ModelEntry`.

    Raises:
        HnnkitValueError: on a bad name, builder, description, defaults or data, or a name that
            another builder already holds (without ``replace=True``).
    """
    if (
        not isinstance(name, str)
        or not name
        or any(c.isspace() or c == "," for c in name)
        or name.startswith("-")
    ):
        raise HnnkitValueError(
            f"model name must be a non-empty string without whitespace or commas, not starting "
            f"with '-', got {name!r}"
        )
    if not callable(builder):
        raise HnnkitValueError(f"model {name!r}: builder must be callable, got {builder!r}")
    if not isinstance(description, str) or not description.strip() or "\n" in description:
        raise HnnkitValueError(
            f"model {name!r}: description must be one non-empty line, got {description!r}"
        )
    if not isinstance(data, str) or data not in DATA_KINDS:
        raise HnnkitValueError(
            f"model {name!r}: data must be one of {', '.join(DATA_KINDS)}, got {data!r}"
        )
    if not isinstance(kind, str) or kind not in MODEL_KINDS:
        raise HnnkitValueError(
            f"model {name!r}: kind must be one of {', '.join(MODEL_KINDS)}, got {kind!r}"
        )
    if isinstance(cost, bool) or not isinstance(cost, int | float) or not 0 < cost < math.inf:
        raise HnnkitValueError(
            f"model {name!r}: cost must be a finite number > 0 (the baseline MLP = 1), got {cost!r}"
        )
    options = _builder_options(name, builder)
    needs_system = "system" in inspect.signature(builder).parameters
    checked = _check_defaults(name, defaults)
    entry = ModelEntry(
        name=name,
        builder=builder,
        description=description.strip(),
        defaults=MappingProxyType(checked),
        options=MappingProxyType(options),
        data=data,
        kind=kind,
        needs_system=needs_system,
        cost=float(cost),
    )
    return _REGISTRY.register(name, entry, replace=replace)


def _qualified(f: Builder) -> str:
    return f"{getattr(f, '__module__', '?')}.{getattr(f, '__qualname__', repr(f))}"


_REGISTRY: Registry[ModelEntry] = Registry(
    "model",
    same=lambda old, new: _same_definition(old.builder, new.builder),
    owner=lambda entry: _qualified(entry.builder),
)


def unregister_model(name: str) -> ModelEntry:
    """Remove ``name`` from the registry and return its entry (e.g. after a test registers one).

    Raises:
        UnknownNameError: if ``name`` is not registered.
    """
    return _REGISTRY.unregister(name)


def get_model(name: str, *, data: str | None = None) -> ModelEntry:
    """The registry entry of ``name``; with ``data``, only a model that learns from ``data``.

    Raises:
        UnknownNameError: if ``name`` is not registered (the message lists the valid names).
        HnnkitValueError: if ``name`` learns from other data than ``data`` (the message says
            where that model is trained and lists the ``data`` models).
    """
    entry = _REGISTRY.lookup(name)
    if data is not None and entry.data != data:
        valid = ", ".join(list_models(data=data)) or "none"
        raise HnnkitValueError(
            f"model {name!r} learns from {entry.data}, not {data}; it is trained by "
            f"{DATA_KINDS[entry.data]} (the {data} models: {valid})"
        )
    return entry


def list_models(*, data: str | None = None) -> dict[str, ModelEntry]:
    """A copy of the registry, name → :class:`ModelEntry`, sorted by name; with ``data``
    (``"phase-space"`` or ``"pixels"``), only the models that learn from it."""
    return {
        name: _REGISTRY[name]
        for name in sorted(_REGISTRY)
        if data is None or _REGISTRY[name].data == data
    }


def train_defaults(name: str) -> dict[str, Any]:
    """The training defaults of model ``name`` as registered: ``optimizer``, ``steps``,
    ``weight_decay``, and ``loss`` and ``loss_options`` (a fresh dict) where the model sets them
    (else :data:`OPTIONAL_DEFAULTS` apply).

    Raises:
        UnknownNameError: if ``name`` is not registered.
    """
    out = dict(get_model(name).defaults)
    if "loss_options" in out:
        out["loss_options"] = dict(out["loss_options"])
    return out


def build_model(
    name: str,
    dim: int,
    *,
    generator: torch.Generator | None,
    system: Any = None,
    **options: Any,
) -> nn.Module:
    """An untrained model ``name`` for phase-space dimension ``dim``.

    Args:
        name: a registered name (:func:`list_models`).
        dim: phase-space dimension ``2n`` (a ``"pixels"`` model: the flattened input size).
        generator: the initialisation's randomness (``None``: the global RNG, only read).
        system: the data's true system, passed to a builder that takes it
            (:attr:`ModelEntry.needs_system`), ignored by the others.
        **options: the model's keyword options (:attr:`ModelEntry.options`), e.g.
            ``hidden=(200, 200), activation="tanh"`` for ``hnn``.

    Raises:
        UnknownNameError: if ``name`` is not registered.
        HnnkitValueError: on an option the model does not take, or (from the builder) on
            unusable values; also if the builder returns something without ``vector_field``
            (a ``"field"`` model) or that is not a one-step map (a ``"map"`` model).
    """
    entry = get_model(name)
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        valid = ", ".join(entry.options) or "none"
        raise HnnkitValueError(
            f"model {name!r} takes no option {', '.join(unknown)}; its options are: {valid}"
        )
    if entry.needs_system:
        options = {**options, "system": system}
    model = entry.builder(dim, generator=generator, **options)
    if entry.kind == MAP:
        if not is_map(model):
            raise HnnkitValueError(
                f"model {name!r} is registered as a one-step map, but its builder "
                f"{_qualified(entry.builder)} returned {type(model).__name__}, which is not a "
                "hnnkit.models.maps.OneStepMap"
            )
        return model
    if is_map(model):
        raise HnnkitValueError(
            f"model {name!r}: its builder {_qualified(entry.builder)} returned the one-step map "
            f"{type(model).__name__}; register it with kind='map'"
        )
    if not callable(getattr(model, "vector_field", None)):
        raise HnnkitValueError(
            f"model {name!r}: its builder {_qualified(entry.builder)} returned "
            f"{type(model).__name__}, which has no vector_field(t, x) method"
        )
    return model


def build_with_shared_options(
    name: str,
    dim: int,
    *,
    generator: torch.Generator | None,
    system: Any = None,
    **shared: Any,
) -> nn.Module:
    """Like :func:`build_model` for a phase-space model, but each of ``shared`` goes only to a
    model that takes it.

    For settings shared by several models of one experiment (``hidden``, ``activation``):
    a model without such an option (a KAN, a user's quadratic energy) is built without it.

    Raises:
        HnnkitValueError: if ``name`` is not a phase-space model (e.g. ``pixel-hnn``).
    """
    entry = get_model(name, data=PHASE_SPACE)
    options = {key: value for key, value in shared.items() if entry.accepts(key)}
    return build_model(name, dim, generator=generator, system=system, **options)


__all__ = [
    "DATA_KINDS",
    "DEFAULT_KEYS",
    "FIELD",
    "MAP",
    "MODEL_KINDS",
    "OPTIONAL_DEFAULTS",
    "PHASE_SPACE",
    "PIXELS",
    "REQUIRED_DEFAULT_KEYS",
    "ModelEntry",
    "build_model",
    "build_with_shared_options",
    "get_model",
    "list_models",
    "register_model",
    "train_defaults",
    "unregister_model",
]
