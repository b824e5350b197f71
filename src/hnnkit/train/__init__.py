"""Training: one :func:`fit` for every model and dataset, with pluggable losses.

- :mod:`.loop`: :func:`fit`, checkpoints (:func:`load_checkpoint`), ``log.csv`` (:func:`write_log`);
- :mod:`.losses`: the loss registry (:func:`register_loss`; ``derivative``, ``through-step``,
  ``autoencoder``; losses with options and their own batches);
- :mod:`.rollout`: the ``rollout`` loss (``k`` steps of an integrator or of a map's step);
- :mod:`.batches`: how each dataset type is read (:func:`register_batches`);
- :mod:`.schedules`: multi-stage runs on top of :func:`fit` (restarts, KAN grid schedule,
  plateau stop).
"""

from .batches import ADAPTERS, register_batches, split_batches
from .loop import (
    CHECKPOINT,
    CHECKPOINT_ENTRIES,
    LOG,
    LOG_COLUMNS,
    OPTIMIZERS,
    FitResult,
    Monitor,
    Progress,
    StopTraining,
    fit,
    load_checkpoint,
    resume_checkpoint,
    update_checkpoint,
    write_log,
)
from .losses import LOSSES, Loss, derivative_loss, get_loss, register_loss
from .rollout import rollout_loss, rollout_windows
from .schedules import (
    SCHEDULE,
    parameter_l1,
    restart_seed,
    train_objective,
    train_with_restarts,
)

__all__ = [
    "ADAPTERS",
    "CHECKPOINT",
    "CHECKPOINT_ENTRIES",
    "LOG",
    "LOG_COLUMNS",
    "LOSSES",
    "OPTIMIZERS",
    "SCHEDULE",
    "FitResult",
    "Loss",
    "Monitor",
    "Progress",
    "StopTraining",
    "derivative_loss",
    "fit",
    "get_loss",
    "load_checkpoint",
    "parameter_l1",
    "register_batches",
    "register_loss",
    "restart_seed",
    "resume_checkpoint",
    "rollout_loss",
    "rollout_windows",
    "split_batches",
    "train_objective",
    "train_with_restarts",
    "update_checkpoint",
    "write_log",
]
