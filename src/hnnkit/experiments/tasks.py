"""The tasks of ``hnnkit reproduce``: a registry of named, frozen definitions built from the specs.

A task's data, training and evaluation are :mod:`hnnkit.experiments.spec` types; its run for
one model and one seed is :meth:`Task.experiment`, an :class:`~hnnkit.experiments.spec.Experiment`
whose config hash the per-seed ``metrics.json`` records. Everything that differs between tasks
is a field of :class:`Task` (the original protocol, the energy of measured data, whether to
draw orbits or record a divergence, the profiles' reductions), so no code elsewhere asks for a
task by name.

A plugin adds a task with one call, after which ``hnnkit reproduce --tasks NAME`` runs it::

    register_task(Task(
        name="quadratic-spring",
        data=DataSpec(system="spring", n_trajectories=10, noise_std=0.0),
        training=TrainSpec(steps=30),
        eval=EvalSpec(t_span=(0.0, 10.0)),
        models=("baseline", "quadratic-hnn"),
    ))

A task that is not a comparison of registered models on simulated data gives a ``runner``
instead: ``runner(out_dir, *, profile, seeds, quiet, device) -> results.json entry`` (the
pixel pendulum, the KAN spring).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from torch import Tensor

from ..errors import HnnkitValueError, check_choice
from ..evaluate import OriginalProtocol
from ..registry import Registry
from .protocols import ORIGINAL, real_pendulum_energy
from .spec import DataSpec, EvalSpec, Experiment, ModelSpec, TrainSpec

PROFILES = ("smoke", "quick", "paper")

#: ``runner(out_dir, *, profile, seeds, quiet, device)`` → the task's results.json entry.
Runner = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Task:
    """One task of ``hnnkit reproduce`` (for the paper's tasks, one row of Table 1).

    Attributes:
        name: task name (``hnnkit reproduce --tasks``).
        data: the data (paper profile); ``system = "real-pendulum"`` is the measured recording.
        training: the original code's training settings (paper profile).
        eval: the corrected protocol's evaluation (its ``t_span`` is the rollouts' span).
        model: keyword arguments of every model of the task (``hidden``, ``activation``); a
            model whose builder does not take one is built without it.
        models: the registered models trained and compared on this task (empty for a
            task with a ``runner``).
        training_by_model: per model, the training settings that differ from ``training``
            (e.g. ``{"dhnn": {"loss": "through-step"}}``: trained and scored through one RK4
            step over the data's sampling interval, because the targets are forward
            differences of measured states).
        scale: the factor Table 1 multiplies values by (10³, or 10⁶ for two-body).
        paper: Table 1's ``{model: {train, test, energy}}`` as printed (already scaled).
        original_rerun: the original code re-run on this machine class (scaled), where known.
        original: the original protocol of the task's notebook (:data:`protocols.ORIGINAL`);
            a task the paper lacks follows ``OriginalProtocol()``.
        energy: the energy of measured data (for the corrected protocol and the recording's
            rollouts); ``None``: the system's true H.
        orbit_plot: draw the rollouts as orbits in the plane (N-body tasks).
        divergence: record and draw how far the models' trajectories diverge from the truth
            while conserving their own energy (three-body).
        quick, smoke: the reductions of the ``quick`` and ``smoke`` profiles:
            ``{"data": {...}, "training": {...}, "model": {...}}``.
        runner: for a task run by its own code, ``runner(out_dir, *, profile, seeds, quiet,
            device)`` returning the results.json entry; ``data``, ``training``, ``eval`` and
            the fields above are then not used.
    """

    name: str
    data: DataSpec | None = None
    training: TrainSpec = field(default_factory=TrainSpec)
    eval: EvalSpec = field(default_factory=lambda: EvalSpec(t_span=(0.0, 20.0)))
    model: dict[str, Any] = field(default_factory=lambda: {"hidden": (200, 200)})
    models: tuple[str, ...] = ("baseline", "hnn")
    training_by_model: dict[str, dict[str, Any]] = field(default_factory=dict)
    scale: float = 1e3
    paper: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    original_rerun: dict[str, dict[str, float]] = field(default_factory=dict)
    original: OriginalProtocol = field(default_factory=OriginalProtocol)
    energy: Callable[[Tensor], Tensor] | None = None
    orbit_plot: bool = False
    divergence: bool = False
    quick: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    smoke: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    runner: Runner | None = None

    def __post_init__(self) -> None:
        if (
            not isinstance(self.name, str)
            or not self.name
            or any(c.isspace() or c == "," for c in self.name)
        ):
            raise HnnkitValueError(
                f"a task name must be a non-empty string without whitespace or commas, got "
                f"{self.name!r}"
            )
        if self.runner is not None:
            if not callable(self.runner):
                raise HnnkitValueError(f"task {self.name!r}: runner must be callable")
            object.__setattr__(self, "models", ())  # the runner's own
            return
        if not isinstance(self.data, DataSpec):
            raise HnnkitValueError(
                f"task {self.name!r} needs data (a DataSpec) or a runner, got {self.data!r}"
            )
        if not isinstance(self.training, TrainSpec) or not isinstance(self.eval, EvalSpec):
            raise HnnkitValueError(
                f"task {self.name!r}: training must be a TrainSpec and eval an EvalSpec"
            )
        if self.eval.t_span is None:
            raise HnnkitValueError(f"task {self.name!r}: eval needs a t_span (the rollouts' span)")
        if not self.models or not all(isinstance(m, str) and m for m in self.models):
            raise HnnkitValueError(
                f"task {self.name!r}: models must be a non-empty list of registered model names"
            )
        object.__setattr__(self, "models", tuple(self.models))
        for key, reduction in (("quick", self.quick), ("smoke", self.smoke)):
            unknown = set(reduction) - {"data", "training", "model"}
            if unknown:
                raise HnnkitValueError(
                    f"task {self.name!r}: {key} reduces only data, training and model, not "
                    f"{', '.join(sorted(unknown))}"
                )

    @property
    def system(self) -> str | None:
        """The registered system, or ``None`` for measured data (or a runner's task)."""
        return None if self.data is None or self.data.measured else self.data.system

    @property
    def eval_span(self) -> tuple[float, float]:
        assert self.eval.t_span is not None
        return self.eval.t_span

    @property
    def through_step(self) -> tuple[str, ...]:
        """The models trained through one RK4 step (``loss = "through-step"``)."""
        return tuple(k for k in self.models if self.training_for(k).through_step)

    def training_for(self, model: str) -> TrainSpec:
        """The training settings of ``model`` on this task; a setting the task leaves ``None``
        is the model's registered default (:meth:`TrainSpec.for_model`)."""
        return replace(self.training, **self.training_by_model.get(model, {})).for_model(model)

    def model_spec(self, model: str) -> ModelSpec:
        return ModelSpec(model, dict(self.model))

    def experiment(self, model: str, seed: int) -> Experiment:
        """The run of ``model`` with ``seed`` (data, initialisation and batches) as an Experiment."""
        assert self.data is not None, f"task {self.name} has its own runner"
        return Experiment(
            data=self.data,
            model=self.model_spec(model),
            train=self.training_for(model),
            eval=self.eval,
            seed=seed,
            name=f"{self.name}-{model}-seed{seed}",
        )

    def config(self) -> dict[str, Any]:
        """The settings as plain data (the results.json entry's ``config``)."""
        assert self.data is not None, f"task {self.name} has its own runner"
        return {
            "data": self.data.to_dict(),
            "model": ModelSpec("-", dict(self.model)).to_dict() | {"name": list(self.models)},
            "training": {k: self.training_for(k).to_dict() for k in self.models},
            "eval": self.eval.to_dict(),
        }

    def for_profile(self, profile: str) -> Task:
        """This task with data sizes, steps and model sizes reduced for ``quick`` / ``smoke``."""
        check_choice("profile", profile, PROFILES)
        if profile == "paper" or self.runner is not None:
            return self
        shrink = self.quick if profile == "quick" else self.smoke
        return replace(
            self,
            data=replace(self.data, **shrink.get("data", {})),
            training=replace(self.training, **shrink.get("training", {})),
            model={**self.model, **shrink.get("model", {})},
        )


# --- the registry ---------------------------------------------------------------------------

#: The registered tasks, name → :class:`Task`, in registration order (the paper's first);
#: read it through :func:`get_task` / :func:`list_tasks`, add to it with :func:`register_task`.
TASKS: Registry[Task] = Registry("task", same=lambda old, new: _definition(old) == _definition(new))


def register_task(task: Task, *, replace: bool = False) -> Task:
    """Make ``task`` available as ``hnnkit reproduce --tasks NAME`` (and to :func:`get_task`).

    Registering an equal task again (its module imported twice) is allowed.

    Raises:
        HnnkitValueError: if ``task`` is not a :class:`Task`, or another task holds its name
            (without ``replace=True``).
    """
    if not isinstance(task, Task):
        raise HnnkitValueError(f"register_task takes a Task, got {type(task).__name__}")
    return TASKS.register(task.name, task, replace=replace)


def _definition(task: Task) -> tuple[Any, ...]:
    """``task``'s fields, with each function as where it is defined (a module imported twice
    defines equal tasks with distinct function objects)."""

    def where(value: Any) -> Any:
        code = getattr(value, "__code__", None)
        if code is not None:
            return (getattr(value, "__qualname__", None), code.co_filename)
        if isinstance(value, OriginalProtocol):
            return tuple(where(getattr(value, f)) for f in value.__dataclass_fields__)
        return value

    return tuple(where(getattr(task, f)) for f in task.__dataclass_fields__)


def unregister_task(name: str) -> Task:
    """Remove task ``name`` and return it (e.g. after a test registers one).

    Raises:
        UnknownNameError: if ``name`` is not registered.
    """
    return TASKS.unregister(name)


def get_task(name: str) -> Task:
    """The registered task ``name``.

    Raises:
        UnknownNameError: if ``name`` is not registered (the message lists the valid names).
    """
    return TASKS.lookup(name)


def list_tasks() -> dict[str, Task]:
    """A copy of the registry, name → :class:`Task`, in registration order."""
    return dict(TASKS)


def task_for_data(data: DataSpec) -> Task | None:
    """The first registered task (the paper's come first) on the system or recording of
    ``data``: an experiment on the same system follows its protocol and evaluation span."""
    if data.file is not None:
        return None
    for task in TASKS.values():
        if task.runner is None and task.data is not None and task.data.system == data.system:
            return task
    return None


def _run_pixel_pendulum(out_dir: Any, **options: Any) -> dict[str, Any]:
    """The pixel-pendulum task (its module is imported when the task runs)."""
    from .pixel_pendulum import reproduce_task

    return reproduce_task(out_dir, **options)


def _run_kan_spring(out_dir: Any, **options: Any) -> dict[str, Any]:
    """The KAN-spring task (its module is imported when the task runs)."""
    from .kan_spring import reproduce_task

    return reproduce_task(out_dir, **options)


# --- the paper's tasks ------------------------------------------------------------------

#: Reductions for the quick profile (the README's main command: all tasks in minutes on 2 cores).
QUICK: dict[str, dict[str, Any]] = {
    "spring": {"training": {"steps": 600}},
    "pendulum": {"training": {"steps": 600}},
    # the dhnn's training through an RK4 step costs 8 HNN steps; these keep the profile < 5 min
    "real-pendulum": {"training": {"steps": 500}},
    "damped-pendulum": {"data": {"n_trajectories": 20}, "training": {"steps": 400}},
    "two-body": {"data": {"n_trajectories": 200}, "training": {"steps": 1500}},
    "three-body": {"data": {"n_trajectories": 500}, "training": {"steps": 1000}},
}
#: Reductions for the smoke profile (seconds; for CI).
SMOKE: dict[str, dict[str, Any]] = {
    "spring": {
        "data": {"n_trajectories": 10},
        "training": {"steps": 30},
        "model": {"hidden": (32, 32)},
    },
    "pendulum": {
        "data": {"n_trajectories": 10},
        "training": {"steps": 30},
        "model": {"hidden": (32, 32)},
    },
    "real-pendulum": {"training": {"steps": 30}, "model": {"hidden": (32, 32)}},
    "damped-pendulum": {
        "data": {"n_trajectories": 10},
        "training": {"steps": 30},
        "model": {"hidden": (32, 32)},
    },
    "two-body": {
        "data": {"n_trajectories": 20},
        "training": {"steps": 30},
        "model": {"hidden": (32, 32)},
    },
    "three-body": {
        "data": {"n_trajectories": 20},
        "training": {"steps": 30},
        "model": {"hidden": (32, 32)},
    },
}

PAPER_TASKS: tuple[Task, ...] = (
    Task(
        name="spring",
        original=ORIGINAL["spring"],
        quick=QUICK["spring"],
        smoke=SMOKE["spring"],
        data=DataSpec(
            system="spring", n_trajectories=50, n_points=30, t_span=(0.0, 3.0), noise_std=0.1
        ),
        training=TrainSpec(steps=2000, weight_decay=1e-4),
        eval=EvalSpec(t_span=(0.0, 20.0)),
        paper={
            "baseline": {"train": (37, 2), "test": (37, 2), "energy": (170, 20)},
            "hnn": {"train": (37, 2), "test": (36, 2), "energy": (0.38, 0.1)},
        },
        original_rerun={
            "baseline": {"train": 37.1, "test": 36.6, "energy": 168},
            "hnn": {"train": 36.9, "test": 35.9, "energy": 0.38},
        },
    ),
    Task(
        name="pendulum",
        original=ORIGINAL["pendulum"],
        quick=QUICK["pendulum"],
        smoke=SMOKE["pendulum"],
        data=DataSpec(
            system="pendulum", n_trajectories=50, n_points=45, t_span=(0.0, 3.0), noise_std=0.1
        ),
        training=TrainSpec(steps=2000, weight_decay=1e-4),
        eval=EvalSpec(t_span=(0.0, 20.0)),
        paper={
            "baseline": {"train": (33, 2), "test": (35, 2), "energy": (42, 10)},
            "hnn": {"train": (33, 2), "test": (36, 2), "energy": (25, 5)},
        },
        original_rerun={
            "baseline": {"train": 32.6, "test": 35.3, "energy": 41.9},
            "hnn": {"train": 32.8, "test": 35.6, "energy": 24.9},
        },
    ),
    Task(
        name="real-pendulum",
        original=ORIGINAL["real-pendulum"],
        quick=QUICK["real-pendulum"],
        smoke=SMOKE["real-pendulum"],
        energy=real_pendulum_energy,
        data=DataSpec(system="real-pendulum"),
        training=TrainSpec(steps=2000, weight_decay=1e-5),
        eval=EvalSpec(t_span=(0.0, 18.17)),
        paper={
            "baseline": {"train": (2.7, 0.2), "test": (2.2, 0.3), "energy": (390, 7)},
            "hnn": {"train": (9.2, 0.5), "test": (6.0, 0.6), "energy": (14, 5)},
        },
        original_rerun={
            "baseline": {"train": 1.94, "test": 1.40, "energy": 371},
            "hnn": {"train": 9.15, "test": 5.81, "energy": 12.1},
        },
        models=("baseline", "hnn", "dhnn"),
        # The targets are forward differences over Δt ≈ 1/6, which add a spurious
        # contraction (≈ -0.1·x) ten times the real friction: the dhnn, the model that can
        # represent dissipation, learns through the step so that it learns the friction
        # only. Baseline and HNN keep the original training, for the paper's comparison.
        training_by_model={"dhnn": {"loss": "through-step"}},
    ),
    # Not in the paper: the pendulum with known linear friction (gamma = 0.1, the system's
    # default), noise-free so that the learned dissipation rate can be checked against gamma.
    Task(
        name="damped-pendulum",
        quick=QUICK["damped-pendulum"],
        smoke=SMOKE["damped-pendulum"],
        data=DataSpec(
            system="damped-pendulum",
            n_trajectories=50,
            n_points=45,
            t_span=(0.0, 3.0),
            noise_std=0.0,
        ),
        # No weight decay for the dhnn: an L2 penalty shrinks the learned dissipation (rate
        # 0.0895 with 1e-4 against 0.0980 without, 2000 steps, seed 0). The baseline and the
        # HNN keep the original's 1e-4: without it, Adam on these noise-free targets spikes
        # every few hundred steps (seed 0's baseline: train loss 8.3e-5 at step 1950, 2.6e-3
        # at step 2000), and the final iterate is what Table 1 reports.
        training=TrainSpec(steps=2000, weight_decay=1e-4),
        training_by_model={"dhnn": {"weight_decay": 0.0}},
        eval=EvalSpec(t_span=(0.0, 20.0)),
        models=("baseline", "hnn", "dhnn"),
    ),
    Task(
        name="two-body",
        original=ORIGINAL["two-body"],
        quick=QUICK["two-body"],
        smoke=SMOKE["two-body"],
        orbit_plot=True,
        data=DataSpec(
            system="two-body", n_trajectories=1000, n_points=50, t_span=(0.0, 20.0), noise_std=0.0
        ),
        training=TrainSpec(steps=10000, batch_size=200, weight_decay=0.0),
        eval=EvalSpec(t_span=(0.0, 25.0)),
        scale=1e6,
        paper={
            "baseline": {"train": (33, 1), "test": (30, 0.1), "energy": (6.3e4, 3e4)},
            "hnn": {"train": (3.0, 0.1), "test": (2.8, 0.1), "energy": (39, 5)},
        },
        original_rerun={
            "baseline": {"train": 32.6, "test": 29.5},
            "hnn": {"train": 6.20, "test": 6.06},
        },
    ),
    Task(
        name="three-body",
        original=ORIGINAL["three-body"],
        quick=QUICK["three-body"],
        smoke=SMOKE["three-body"],
        orbit_plot=True,
        # the review's point: the HNN conserves its own energy, yet its trajectory diverges
        divergence=True,
        data=DataSpec(
            system="three-body", n_trajectories=5000, n_points=20, t_span=(0.0, 5.0), noise_std=0.0
        ),
        training=TrainSpec(steps=10000, batch_size=600, weight_decay=1e-4),
        eval=EvalSpec(t_span=(0.0, 3.0)),
        scale=1e2,
        paper={
            "baseline": {"train": (9.6, 7), "test": (38, 40), "energy": (1.1e4, 8e3)},
            "hnn": {"train": (8.0, 2), "test": (49, 48), "energy": (4.2, 3)},
        },
    ),
    # Not in Table 1 as a comparison of registered models: each runs its own code.
    Task(name="pixel-pendulum", runner=_run_pixel_pendulum),
    Task(name="kan-spring", runner=_run_kan_spring),
)
for _task in PAPER_TASKS:
    register_task(_task)
