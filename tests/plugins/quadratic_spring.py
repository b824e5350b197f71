"""A task in one file: the spring, compared across the baseline and the ``quadratic-hnn``.

Imported as a plugin after the model's (``hnnkit --plugin tests/plugins/quadratic_energy.py
--plugin tests/plugins/quadratic_spring.py reproduce --tasks quadratic-spring``), it adds the
task ``quadratic-spring`` to ``hnnkit reproduce``: noise-free spring data, smoke-sized, every
model trained with its registered training defaults.
"""

from hnnkit.experiments.spec import DataSpec, EvalSpec, TrainSpec
from hnnkit.experiments.tasks import Task, register_task
from hnnkit.models import train_defaults

MODELS = ("baseline", "quadratic-hnn")

register_task(
    Task(
        name="quadratic-spring",
        data=DataSpec(system="spring", n_trajectories=8, noise_std=0.0),
        training=TrainSpec(steps=30),
        training_by_model={"quadratic-hnn": train_defaults("quadratic-hnn")},
        eval=EvalSpec(t_span=(0.0, 10.0)),
        model={"hidden": (32, 32)},  # for the baseline; the quadratic form takes no option
        models=MODELS,
    )
)
