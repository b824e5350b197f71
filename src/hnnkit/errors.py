"""Exception types raised at hnnkit's public boundary.

Every error is a subclass of a builtin (``ValueError`` or ``KeyError``) so that callers
who do not know hnnkit can still catch it, and every message names the offending
argument, shows what was received and says what would be accepted.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable


class HnnkitValueError(ValueError):
    """An argument has the right type but an unusable value (shape, range, NaN, ...)."""


class UnknownNameError(KeyError, ValueError):
    """A name (system, solver, activation, task, ...) is not in its registry.

    Subclasses both ``KeyError`` (it is a failed lookup) and ``ValueError`` (it is a bad
    argument value), and prints its message without ``KeyError``'s extra quoting.
    """

    def __init__(self, kind: str, name: object, valid: Iterable[str]):
        self.kind = kind
        self.name = name
        self.valid = sorted(valid)
        super().__init__(f"unknown {kind} {name!r}; valid {kind}s are: {', '.join(self.valid)}")

    def __reduce__(self):  # picklable: ``hnnkit reproduce --workers`` sends errors back
        return (type(self), (self.kind, self.name, self.valid))

    def __str__(self) -> str:
        return str(self.args[0])


class DataFileError(HnnkitValueError):
    """A file on disk (dataset, checkpoint, results) is missing, corrupt or mismatched."""


class NonFiniteStateError(HnnkitValueError, RuntimeError):
    """An ODE solve produced a NaN or infinite state (the solution blew up, or the step is too large).

    Also a ``RuntimeError``, as the solvers' other failures are. ``time`` is the first output
    time at which the state was non-finite and ``index`` the batch index of the first
    trajectory affected there.
    """

    def __init__(self, message: str, *, time: float, index: tuple[int, ...]):
        self.time = time
        self.index = index
        super().__init__(message)

    def __reduce__(self):
        return (_non_finite_state, (type(self), str(self.args[0]), self.time, self.index))


class SolverGaveUpError(RuntimeError):
    """An adaptive solver could not go on: a trajectory's step size underflowed, or the step
    attempts ran out (``max_steps``) before the last output time.

    ``time`` is where the trajectory ``index`` (its batch index; for running out of steps, the
    unfinished trajectory that got least far) was when the solver stopped, so that a caller can
    integrate the other trajectories without it.
    """

    def __init__(
        self,
        message: str,
        *,
        time: float,
        index: tuple[int, ...],
        others: tuple[tuple[int, ...], ...] = (),
    ):
        self.time = time
        self.index = index
        #: further trajectories the solver could not finish (running out of step attempts
        #: leaves every unfinished one: ``index`` got least far, these the rest)
        self.others = tuple(others)
        super().__init__(message)

    def __reduce__(self):
        return (
            _gave_up,
            (type(self), str(self.args[0]), self.time, self.index, self.others),
        )


class SingularMatrixError(HnnkitValueError):
    """A batched solve met a singular or ill-conditioned matrix; ``rows`` are the flat batch
    indices of the first states where it did (at most :data:`MAX_ROWS`), so that a solver can
    name the trajectory that reached them."""

    MAX_ROWS = 8

    def __init__(self, message: str, *, rows: tuple[int, ...] = ()):
        self.rows = tuple(int(r) for r in rows[: self.MAX_ROWS])
        super().__init__(message)

    def __reduce__(self):
        return (_singular, (type(self), str(self.args[0]), self.rows))


class StateRefusedError(SolverGaveUpError, HnnkitValueError):
    """The field refused a state a trajectory reached (e.g. a singular mass matrix there): a
    :class:`SolverGaveUpError` naming the trajectory, and a ``ValueError`` as the field's own
    error was."""


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss."""

    def __init__(self, step: int, loss: float, checkpoint: str | None = None):
        self.step = step
        self.loss = loss
        self.checkpoint = checkpoint
        where = f"; the last good checkpoint is kept at {checkpoint}" if checkpoint else ""
        super().__init__(
            f"loss became non-finite ({loss}) at step {step}{where}. Lower the learning rate, "
            "check the data for NaN/inf, or use a float64 model."
        )

    def __reduce__(self):
        return (type(self), (self.step, self.loss, self.checkpoint))


def _non_finite_state(cls: type, message: str, time: float, index: tuple[int, ...]) -> Exception:
    return cls(message, time=time, index=index)


def _gave_up(
    cls: type, message: str, time: float, index: tuple[int, ...], others: tuple
) -> Exception:
    return cls(message, time=time, index=index, others=others)


def _singular(cls: type, message: str, rows: tuple[int, ...]) -> Exception:
    return cls(message, rows=rows)


def check_choice(kind: str, name: object, valid: Iterable[str]) -> str:
    """Return ``name`` if it is one of ``valid``, else raise :class:`UnknownNameError`."""
    valid = list(valid)
    if name not in valid:
        raise UnknownNameError(kind, name, valid)
    return name  # type: ignore[return-value]


#: Seeds must fit a signed 64-bit integer (``torch.Generator.manual_seed``).
MAX_SEED = 2**63 - 1


def check_seed(name: str, value: object) -> int:
    """Return ``value`` as an ``int`` if it is a valid random seed, else raise.

    Args:
        name: the argument's name, shown in the message.
        value: the seed; an integer (not a bool) with ``0 <= value <= 2**63 - 1``.

    Returns:
        ``int(value)``.

    Raises:
        HnnkitValueError: if ``value`` is not such an integer.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise HnnkitValueError(f"{name} must be an integer in [0, 2**63 - 1], got {value!r}")
    if not 0 <= int(value) <= MAX_SEED:
        raise HnnkitValueError(
            f"{name} must be in [0, 2**63 - 1] (a signed 64-bit seed), got {value!r}; "
            "pick a smaller non-negative integer"
        )
    return int(value)
