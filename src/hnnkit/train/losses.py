"""The loss registry of :func:`hnnkit.train.fit`.

A loss is a function ``(model, batch) -> scalar tensor``. A batch is a dict of tensors with
one row per sample, as the dataset's batch adapter (:mod:`hnnkit.train.batches`) yields it:
``{"x", "dx"}`` (and ``"step"`` for forward-difference targets) for a phase-space
:class:`~hnnkit.data.Dataset`, ``{"x", "x_next"}`` for the pixel pendulum. Register a new one
with :func:`register_loss`; ``fit(..., loss=name)`` (or ``loss=function``) then trains with it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from torch import Tensor, nn

from ..errors import HnnkitValueError, check_choice
from ..integrate import step_slope

Batch = Mapping[str, Tensor]
LossFn = Callable[[nn.Module, Batch], Tensor]


@dataclass(frozen=True)
class Loss:
    """A registered loss: the function and the batch entries it reads (checked before training)."""

    name: str
    fn: LossFn
    requires: tuple[str, ...] = ()

    def __call__(self, model: nn.Module, batch: Batch) -> Tensor:
        return self.fn(model, batch)

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


LOSSES: dict[str, Loss] = {}


def register_loss(name: str, fn: LossFn, *, requires: tuple[str, ...] = ()) -> Loss:
    """Register ``fn(model, batch) -> scalar`` as ``name`` (replacing an earlier one of that name).

    Args:
        name: what ``fit(..., loss=name)`` and a training spec call it.
        fn: the loss; it is differentiated with respect to the model's parameters.
        requires: batch entries ``fn`` reads (checked against the data before training).

    Returns:
        The registered :class:`Loss`.
    """
    if not isinstance(name, str) or not name:
        raise HnnkitValueError(f"a loss name must be a non-empty string, got {name!r}")
    if not callable(fn):
        raise HnnkitValueError(f"loss {name!r} must be callable (model, batch) -> scalar")
    LOSSES[name] = Loss(name, fn, tuple(requires))
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


register_loss("derivative", _derivative, requires=("x", "dx"))
register_loss("through-step", _through_step, requires=("x", "dx", "step"))
register_loss("autoencoder", _autoencoder, requires=("x", "x_next"))
