"""The loss registry of :func:`hnnkit.train.fit`.

A loss is a function ``(model, batch) -> scalar tensor``. A batch is a dict of tensors with
one row per sample, as the dataset's batch adapter (:mod:`hnnkit.train.batches`) yields it:
``{"x", "dx"}`` (and ``"step"`` for forward-difference targets) for a phase-space
:class:`~hnnkit.data.Dataset`, ``{"x", "x_next"}`` for the pixel pendulum. Register a new one
with :func:`register_loss`; ``fit(..., loss=name)`` (or ``loss=function``) then trains with it.

A loss may take **options** and build **its own batches**: registered with ``defaults`` (option
name → default), its function is ``(model, batch, options) -> scalar`` and
``fit(..., loss=name, loss_options={...})`` sets them; with ``batches``, ``fit`` reads the data
through ``batches(model, dataset, device, dtype, options) -> (train, test)`` instead of the
dataset's adapter (the ``rollout`` loss, :mod:`hnnkit.train.rollout`, yields windows of
consecutive states this way). ``models`` says which kind of model a loss trains: ``"field"``
(it calls ``vector_field``), ``"map"`` or ``"any"``; a one-step map
(:func:`hnnkit.models.maps.is_map`) given a field loss is refused before training.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import torch
from torch import Tensor, nn

from ..errors import HnnkitValueError, check_choice
from ..integrate import step_slope
from ..models.maps import NotAFieldError, is_map

Batch = Mapping[str, Tensor]
LossFn = Callable[[nn.Module, Batch], Tensor]
#: ``(model, dataset, device, dtype, options) -> (train, test)``: a loss's own batches.
BatchBuilder = Callable[
    [nn.Module, Any, torch.device, torch.dtype, Mapping[str, Any]], tuple[dict, dict]
]
#: ``(options, kind) -> options``: fills in and checks a loss's options for a model of ``kind``
#: (``"field"``, ``"map"``, or ``None`` when the model is not known yet).
OptionCheck = Callable[[dict[str, Any], str | None], dict[str, Any]]
#: Which models a loss trains.
MODEL_KINDS = ("field", "map", "any")


@dataclass(frozen=True)
class Loss:
    """A registered loss: the function, the batch entries it reads (checked before training),
    and for a loss with options, their defaults, their check, its own batches and their values.

    Attributes:
        name: the registered name.
        fn: ``(model, batch) -> scalar``, or ``(model, batch, options) -> scalar`` when
            ``defaults`` is not ``None``.
        requires: batch entries ``fn`` reads.
        defaults: option name → default; ``None`` for a loss without options.
        check_options: ``(options, kind) -> options`` (see :data:`OptionCheck`), or ``None``.
        batches: the loss's own batch builder (:data:`BatchBuilder`), or ``None`` for the
            dataset's adapter.
        check_data: ``(dataset, options) -> None``, raising when the data cannot feed the loss
            (checked before any work), or ``None``.
        models: ``"field"``, ``"map"`` or ``"any"``: the models the loss trains.
        options: the option values this loss computes with (:meth:`with_options`).
    """

    name: str
    fn: Callable[..., Tensor]
    requires: tuple[str, ...] = ()
    defaults: Mapping[str, Any] | None = None
    check_options: OptionCheck | None = None
    batches: BatchBuilder | None = None
    check_data: Callable[[Any, Mapping[str, Any]], None] | None = None
    models: str = "any"
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __call__(self, model: nn.Module, batch: Batch) -> Tensor:
        if self.defaults is None:
            return self.fn(model, batch)
        return self.fn(model, batch, self.options)

    def resolve_options(
        self, options: Mapping[str, Any] | None, kind: str | None = None
    ) -> dict[str, Any]:
        """``options`` with every one left out set to its default, checked for a model of
        ``kind`` (``"field"``, ``"map"`` or ``None``: not known yet).

        Raises:
            HnnkitValueError: options for a loss that takes none, an unknown option (the
                valid ones listed), or a value the loss refuses.
        """
        options = dict(options or {})
        if self.defaults is None:
            if options:
                raise HnnkitValueError(
                    f"loss {self.name!r} takes no options, got {', '.join(sorted(options))}"
                )
            return {}
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise HnnkitValueError(
                f"loss {self.name!r} has no option {', '.join(unknown)}; its options are "
                f"{', '.join(self.defaults)}"
            )
        resolved = {**self.defaults, **options}
        if self.check_options is not None:
            resolved = self.check_options(resolved, kind)
        return resolved

    def with_options(self, options: Mapping[str, Any] | None, kind: str | None = None) -> Loss:
        """This loss computing with ``options`` (:meth:`resolve_options`)."""
        resolved = self.resolve_options(options, kind)
        return replace(self, options=MappingProxyType(resolved))

    def check(self, batch: Batch) -> None:
        """Raise :class:`~hnnkit.errors.HnnkitValueError` if ``batch`` lacks an entry this loss reads."""
        missing = [k for k in self.requires if k not in batch]
        if missing:
            hint = (
                "; targets that are forward differences carry their intervals as Dataset.step "
                "(e.g. the real pendulum), plain derivatives need loss='derivative'"
                if "step" in missing
                else ""
            )
            raise HnnkitValueError(
                f"loss {self.name!r} needs the batch entries {missing}, the data yield "
                f"{sorted(batch)}{hint}"
            )

    def check_model(self, model: nn.Module) -> None:
        """Refuse a model of a kind this loss cannot train (:meth:`check_kind`)."""
        self.check_kind("map" if is_map(model) else "field", type(model).__name__)

    def check_kind(self, kind: str, model: str = "the model") -> None:
        """Refuse a model of ``kind`` (``"field"`` or ``"map"``) that this loss cannot train.

        Raises:
            NotAFieldError: a one-step map given a loss that needs a vector field.
            HnnkitValueError: a field model given a loss for maps.
        """
        if self.models == "field" and kind == "map":
            raise NotAFieldError(
                f"loss {self.name!r} compares a vector field with the targets, and {model} is a "
                "one-step map x_n -> x_(n+1) without one; train it with loss='rollout' "
                "(options k and method='model', e.g. `hnnkit train --loss rollout "
                "--loss-option k=1`)"
            )
        if self.models == "map" and kind == "field":
            raise HnnkitValueError(
                f"loss {self.name!r} trains one-step maps (step(x, h)); {model} is a field model"
            )


LOSSES: dict[str, Loss] = {}


def register_loss(
    name: str,
    fn: Callable[..., Tensor],
    *,
    requires: tuple[str, ...] = (),
    defaults: Mapping[str, Any] | None = None,
    check_options: OptionCheck | None = None,
    batches: BatchBuilder | None = None,
    check_data: Callable[[Any, Mapping[str, Any]], None] | None = None,
    models: str = "any",
) -> Loss:
    """Register ``fn(model, batch) -> scalar`` as ``name`` (replacing an earlier one of that name).

    Args:
        name: what ``fit(..., loss=name)`` and a training spec call it.
        fn: the loss; it is differentiated with respect to the model's parameters. With
            ``defaults``, ``fn(model, batch, options)``.
        requires: batch entries ``fn`` reads (checked against the data before training).
        defaults: the loss's options and their defaults (``None``: it takes none); the values
            must be JSON-able (they are recorded in a run's config and hash).
        check_options: ``(options, kind) -> options``, to fill in and refuse options
            (``kind``: ``"field"``, ``"map"`` or ``None``).
        batches: ``(model, dataset, device, dtype, options) -> (train, test)``: the loss's own
            batches (default: the dataset's adapter, :mod:`hnnkit.train.batches`).
        check_data: ``(dataset, options) -> None``: raises when the data cannot feed the loss
            (e.g. trajectories shorter than a rollout); run before any training.
        models: the models it trains: ``"field"`` (it calls ``vector_field``), ``"map"`` or
            ``"any"`` (default).

    Returns:
        The registered :class:`Loss`.
    """
    if not isinstance(name, str) or not name:
        raise HnnkitValueError(f"a loss name must be a non-empty string, got {name!r}")
    if not callable(fn):
        raise HnnkitValueError(f"loss {name!r} must be callable (model, batch) -> scalar")
    check_choice("models", models, MODEL_KINDS)
    LOSSES[name] = Loss(
        name,
        fn,
        tuple(requires),
        defaults=None if defaults is None else MappingProxyType(dict(defaults)),
        check_options=check_options,
        batches=batches,
        check_data=check_data,
        models=models,
    )
    return LOSSES[name]


def get_loss(loss: str | LossFn | Loss) -> Loss:
    """The :class:`Loss` that ``loss`` names (a registered name, a function or a ``Loss``).

    Raises:
        UnknownNameError: on an unregistered name.
    """
    if isinstance(loss, Loss):
        return loss
    if callable(loss):
        return Loss(getattr(loss, "__name__", "custom"), loss)
    check_choice("loss", loss, LOSSES)
    return LOSSES[loss]


def derivative_loss(model: nn.Module, x: Tensor, dx: Tensor, step: Tensor | None = None) -> Tensor:
    """Mean squared error between the model's prediction of ``dx`` and ``dx``.

    The prediction is ``model.vector_field(None, x)``, or, when ``step`` ``(N, 1)`` is given
    (forward-difference targets), the slope of one RK4 step of the model's flow over it
    (:func:`hnnkit.integrate.step_slope`). The mean is over all elements (``L2_loss`` in
    greydanus/hamiltonian-nn ``utils.py``).
    """
    if step is None:
        pred = model.vector_field(None, x)
    else:
        pred = step_slope(model.vector_field, x, step)
    return (pred - dx).pow(2).mean()


def _derivative(model: nn.Module, batch: Batch) -> Tensor:
    return derivative_loss(model, batch["x"], batch["dx"])


def _through_step(model: nn.Module, batch: Batch) -> Tensor:
    return derivative_loss(model, batch["x"], batch["dx"], batch["step"])


def _autoencoder(model: nn.Module, batch: Batch) -> Tensor:
    return model.loss(batch["x"], batch["x_next"])


register_loss("derivative", _derivative, requires=("x", "dx"), models="field")
register_loss("through-step", _through_step, requires=("x", "dx", "step"), models="field")
register_loss("autoencoder", _autoencoder, requires=("x", "x_next"))
