r"""The contract every physical system follows, and the name → class registry.

A system is defined by its Hamiltonian :math:`H(q, p)` alone. The vector field
:math:`\dot x = J\nabla H`, the energy and the checks on shapes are derived here, once,
through :func:`hnnkit.phase_space.symplectic_gradient` — the same function the learned
HNNs use.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import types
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor

from ..errors import HnnkitValueError, UnknownNameError
from ..phase_space import energy_gradient, join, solve_symmetric, split, symplectic_gradient
from ..registry import Registry


class HamiltonianSystem:
    r"""Base class: a conservative system with ``dof`` degrees of freedom.

    Subclasses implement :meth:`hamiltonian` and :meth:`sample_initial`; everything else
    (vector field, energy, data generation, rollouts, metrics) is inherited.

    Class attributes that subclasses may override:
        default_t_span: the time window of one training trajectory.
        default_n_points: samples per trajectory in that window.
        default_n_trajectories: trajectories in a default dataset.
        default_noise_std: standard deviation of the Gaussian observation noise.
        default_test_fraction: fraction of trajectories held out for testing.
        separable: whether :math:`H = T(p) + V(q)` (leapfrog is then valid).
        quadratic_momentum: whether :math:`H` is at most quadratic in :math:`p` with a
            positive-definite :math:`\partial^2 H/\partial p^2` (a kinetic energy
            :math:`\tfrac12 p^\top M(q)^{-1} p`). It enables the velocity maps
            :meth:`velocity`, :meth:`momentum` and :meth:`lagrangian` (which the Lagrangian NN
            needs); a system whose :math:`H` is not quadratic in :math:`p` overrides
            :meth:`velocity` and :meth:`momentum` instead.
        formula: a human-readable formula for :math:`H`.
        version: ``None`` (default), or a string or integer you bump whenever the class's
            behaviour changes. When a class declares it, :meth:`identity` uses it instead of
            a hash of that class's source code.

    Args:
        dof: degrees of freedom ``n``; states have shape ``(..., 2n)``.
    """

    default_t_span: ClassVar[tuple[float, float]] = (0.0, 3.0)
    default_n_points: ClassVar[int] = 30
    default_n_trajectories: ClassVar[int] = 50
    default_noise_std: ClassVar[float] = 0.0
    default_test_fraction: ClassVar[float] = 0.5
    separable: ClassVar[bool] = False
    quadratic_momentum: ClassVar[bool] = False
    formula: ClassVar[str] = "H(q, p)"
    version: ClassVar[str | int | None] = None

    def __init__(self, dof: int):
        if not isinstance(dof, int) or dof < 1:
            raise HnnkitValueError(f"dof must be a positive integer, got {dof!r}")
        self.dof = dof

    # -- to implement ------------------------------------------------------------------
    def hamiltonian(self, q: Tensor, p: Tensor) -> Tensor:
        """Energy of each state: ``q, p`` of shape ``(*batch, dof)`` → ``(*batch,)``."""
        raise NotImplementedError

    def sample_initial(self, n: int, *, generator: torch.Generator) -> Tensor:
        """Draw ``n`` initial states ``(n, 2*dof)`` (float64) using ``generator`` only."""
        raise NotImplementedError

    # -- derived -----------------------------------------------------------------------
    @property
    def dim(self) -> int:
        """Phase-space dimension ``2 * dof``."""
        return 2 * self.dof

    def check_state(self, x: Tensor, name: str = "x") -> None:
        """Raise :class:`HnnkitValueError` unless ``x`` is a finite float tensor ``(..., 2*dof)``."""
        if not isinstance(x, Tensor):
            raise HnnkitValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim == 0 or x.shape[-1] != self.dim:
            raise HnnkitValueError(
                f"{name} must have shape (..., {self.dim}) for {self!r} "
                f"(q1..q{self.dof} then p1..p{self.dof}), got {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise HnnkitValueError(f"{name} must be a floating tensor, got dtype {x.dtype}")

    def energy(self, x: Tensor) -> Tensor:
        """:math:`H(x)` for states ``(..., 2*dof)`` → ``(...)``."""
        self.check_state(x)
        return self._energy(x)

    def _energy(self, x: Tensor) -> Tensor:
        q, p = split(x)
        h = self.hamiltonian(q, p)
        if h.shape != x.shape[:-1]:
            raise HnnkitValueError(
                f"{type(self).__name__}.hamiltonian must return one energy per state, shape "
                f"{tuple(x.shape[:-1])}, got {tuple(h.shape)}"
            )
        return h

    def vector_field(self, t: Tensor | float, x: Tensor) -> Tensor:
        r""":math:`\dot x = J\nabla H(x)`, by autograd. Subclasses may override it analytically."""
        self.check_state(x)
        return symplectic_gradient(self._energy, x)

    # -- the Lagrangian description: maps between (q, p) and (q, q-dot) ----------------
    @property
    def has_velocity_map(self) -> bool:
        """Whether :meth:`velocity` and :meth:`momentum` work for this system."""
        cls = type(self)
        overridden = (
            cls.velocity is not HamiltonianSystem.velocity
            and cls.momentum is not HamiltonianSystem.momentum
        )
        return bool(self.quadratic_momentum) or overridden

    def check_velocity_map(self) -> None:
        """Raise :class:`HnnkitValueError` unless :attr:`has_velocity_map`; the message names
        the system, how to give it the maps, and the registered systems that have them."""
        if self.has_velocity_map:
            return
        name = type(self).__name__
        raise HnnkitValueError(
            f"{name} has no velocity map between (q, p) and (q, dq/dt): declare the class "
            f"attribute quadratic_momentum = True if its H is at most quadratic in p with a "
            f"positive-definite d²H/dp² (a kinetic energy p^T M(q)^-1 p / 2), or override "
            f"{name}.velocity and {name}.momentum. Registered systems with a velocity map: "
            f"{', '.join(velocity_map_systems()) or 'none'} (and custom systems whose H is "
            "at most quadratic in p)"
        )

    def velocity(self, x: Tensor) -> Tensor:
        r"""The generalised velocity :math:`\dot q = \partial H/\partial p` of states.

        By autograd of :meth:`hamiltonian`, with a graph when autograd is enabled and ``x``
        requires grad.

        Args:
            x: states ``(..., 2*dof)``.

        Returns:
            ``(..., dof)``.

        Raises:
            HnnkitValueError: on a bad state, or a system without a velocity map
                (:meth:`check_velocity_map`).
        """
        self.check_state(x)
        self.check_velocity_map()
        with torch.set_grad_enabled(torch.is_grad_enabled() and x.requires_grad):
            return split(energy_gradient(self._energy, x))[1]

    def momentum(self, q: Tensor, qdot: Tensor) -> Tensor:
        r"""The momentum of a velocity, :math:`p = (\partial^2 H/\partial p^2)^{-1}(\dot q - \partial_p H|_{p=0})`.

        Exact for :math:`H` at most quadratic in :math:`p`, where :math:`\dot q = \partial_p H`
        is affine in :math:`p`; for a kinetic energy :math:`\tfrac12 p^\top M(q)^{-1} p` it is
        :math:`p = M(q)\dot q`. Both derivatives are taken at :math:`p = 0` by autograd and the
        linear system is solved per state; differentiable in ``q`` and ``qdot``.

        Args:
            q: positions ``(..., dof)``.
            qdot: velocities ``(..., dof)``, broadcastable with ``q``.

        Returns:
            ``(..., dof)``.

        Raises:
            HnnkitValueError: on bad shapes, a system without a velocity map, or a singular
                :math:`\partial^2 H/\partial p^2` (a mass matrix that is not positive definite).
        """
        q, qdot = self._check_pair(q, qdot)
        self.check_velocity_map()
        build = torch.is_grad_enabled() and (q.requires_grad or qdot.requires_grad)
        with torch.enable_grad():
            p0 = torch.zeros_like(q).requires_grad_(True)
            h = self._energy(join(q, p0))
            (b,) = torch.autograd.grad(h.sum(), p0, create_graph=True, materialize_grads=True)
            rows = [
                torch.autograd.grad(
                    b[..., i].sum(),
                    p0,
                    create_graph=build,
                    retain_graph=True,
                    materialize_grads=True,
                )[0]
                for i in range(self.dof)
            ]
        hpp = torch.stack(rows, dim=-2)
        rhs = qdot - b if build else (qdot - b).detach()
        name = type(self).__name__
        return solve_symmetric(
            hpp if build else hpp.detach(),
            rhs,
            what=f"{name}'s mass matrix inverse d²H/dp²",
            advice=(
                f"{name}'s kinetic energy must be positive definite in p at every state "
                "(check its parameters and the states passed in)"
            ),
        )

    def lagrangian(self, q: Tensor, qdot: Tensor) -> Tensor:
        r"""The Lagrangian :math:`L(q, \dot q) = p\cdot\dot q - H(q, p)` with :math:`p` = :meth:`momentum`.

        For a kinetic energy plus a potential this is :math:`T - V`.

        Args:
            q: positions ``(..., dof)``.
            qdot: velocities ``(..., dof)``.

        Returns:
            ``(...)``.
        """
        q, qdot = self._check_pair(q, qdot)
        p = self.momentum(q, qdot)
        return (p * qdot).sum(-1) - self._energy(join(q, p))

    def _check_pair(self, q: Tensor, qdot: Tensor) -> tuple[Tensor, Tensor]:
        for name, v in (("q", q), ("qdot", qdot)):
            if not isinstance(v, Tensor) or v.ndim == 0 or v.shape[-1] != self.dof:
                got = tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__
                raise HnnkitValueError(
                    f"{name} must be a tensor of shape (..., {self.dof}) for {self!r}, got {got}"
                )
        try:
            return torch.broadcast_tensors(q, qdot)  # type: ignore[return-value]
        except RuntimeError:
            raise HnnkitValueError(
                f"q {tuple(q.shape)} and qdot {tuple(qdot.shape)} do not broadcast"
            ) from None

    def exact_solution(self, t: Tensor, x0: Tensor) -> Tensor | None:
        """Closed-form trajectory ``(len(t), *x0.shape)``, or ``None`` when there is none."""
        return None

    def invariants(self, x: Tensor) -> dict[str, Tensor]:
        """Conserved quantities other than the energy, by name, ``(..., 2*dof)`` → ``(...)`` each.

        None by default. The evaluation reports each one's drift along every rollout, as it
        does for the energy (e.g. the N-body problems' angular momentum).
        """
        return {}

    def params(self) -> dict[str, Any]:
        """The constructor arguments that define this system (for configs and ``repr``)."""
        return {}

    def identity(self) -> dict[str, Any] | None:
        """Everything that determines this system's trajectories, as plain JSON, or ``None``.

        :func:`hnnkit.data.generate` keys its dataset cache on this, so two systems with
        the same identity must give the same data. The default describes:

        * ``class``: the module and qualified name of the class;
        * ``code``: for each class from this one up to (not including)
          :class:`HamiltonianSystem`, its ``version`` if it declares one, else a hash of its
          source code and of the source of the functions (and the values of the plain
          constants) of its own package that its methods use by name — editing the class
          changes the identity;
        * ``params``: :meth:`params`;
        * ``state``: the instance attributes (``vars(self)``), only when some constructor
          argument is missing from :meth:`params` (a user subclass that does not override
          it); tensors and arrays are described by a hash of their contents.

        It is ``None`` — the system is then never cached, and :func:`identity_problem`
        says why — when a class's source is not available (defined in an interactive
        session) or the parameters or state are not plain data. Override it, or declare
        ``version``, to control caching of your own system. An attribute changed after
        construction is covered only if :meth:`params` reports it.

        Returns:
            A JSON-serialisable dict, or ``None`` when the system cannot describe itself.
        """
        return self._identify()[0]

    def _identify(self) -> tuple[dict[str, Any] | None, str]:
        """``(identity, "")``, or ``(None, why the system cannot describe itself)``."""
        cls = type(self)
        code: list[Any] = []
        for klass in cls.__mro__:
            if klass is HamiltonianSystem or not issubclass(klass, HamiltonianSystem):
                continue
            if klass.__dict__.get("version") is not None:
                code.append({"version": klass.__dict__["version"]})
                continue
            digest = _code_digest(klass)
            if digest is None:
                return None, (
                    f"the source code of {klass.__qualname__} is not available (a class "
                    "defined in an interactive session?); define it in a file, or declare a "
                    "class attribute `version` that you bump whenever the class changes"
                )
            code.append(digest)
        params = _plain(self.params())
        if params is None:
            return None, f"{cls.__name__}.params() holds values that are not plain data"
        ident: dict[str, Any] = {
            "class": f"{cls.__module__}.{cls.__qualname__}",
            "code": code,
            "params": params,
        }
        if not _constructor_covered(cls, params):
            state = _plain(vars(self))
            if state is None:
                bad = sorted(k for k, v in vars(self).items() if _plain(v) is None)
                return None, (
                    f"{cls.__name__}'s constructor arguments are not all in params(), and its "
                    f"attributes {bad} are not plain data (numbers, strings, lists, dicts, "
                    "tensors); return every constructor argument from params()"
                )
            ident["state"] = state
        return ident, ""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


def identity_problem(system: HamiltonianSystem) -> str | None:
    """Why ``system.identity()`` is ``None`` (``None`` when it has an identity).

    Args:
        system: any system.

    Returns:
        A sentence for a warning, or ``None``.
    """
    if type(system).identity is not HamiltonianSystem.identity:
        if system.identity() is not None:
            return None
        return f"{type(system).__name__}.identity() returned None"
    ident, why = system._identify()
    return None if ident is not None else why


def _plain(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON data (tensors and arrays by a hash of their contents), or ``None``."""
    if depth > 20:
        return None
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return value if math.isfinite(value) else repr(float(value))
    if isinstance(value, list | tuple):
        items = [_plain(v, depth + 1) for v in value]
        bad = any(o is None and v is not None for o, v in zip(items, value, strict=True))
        return None if bad else items
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            return None
        out = {k: _plain(v, depth + 1) for k, v in value.items()}
        return None if any(out[k] is None and value[k] is not None for k in out) else out
    if isinstance(value, torch.Tensor):
        a = value.detach().cpu().contiguous()
        h = hashlib.sha256(f"{a.dtype}{tuple(a.shape)}".encode())
        h.update(a.reshape(-1).view(torch.uint8).numpy().tobytes() if a.numel() else b"")
        return {"tensor": h.hexdigest()[:32]}
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        return None
    if isinstance(value, np.generic):
        return _plain(value.item(), depth + 1)
    if isinstance(value, np.ndarray) and value.dtype.kind in "biufc":
        a = np.ascontiguousarray(value)
        h = hashlib.sha256(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
        return {"array": h.hexdigest()[:32]}
    return None


def _constructor_covered(cls: type, params: dict[str, Any]) -> bool:
    """Whether every named constructor argument of ``cls`` is reported by ``params()``."""
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return False
    for name, par in list(sig.parameters.items())[1:]:
        if par.kind in (par.VAR_POSITIONAL, par.VAR_KEYWORD) or name not in params:
            return False
    return True


def _code_digest(cls: type) -> str | None:
    """A hash of ``cls``'s source and of the helpers of its own package it uses by name."""
    try:
        parts = [inspect.getsource(cls)]
    except (OSError, TypeError):
        return None
    package = cls.__module__.split(".")[0]
    module = inspect.getmodule(cls)
    names: set[str] = set()
    for member in vars(cls).values():
        func = getattr(member, "__func__", member)
        func = getattr(func, "fget", func)  # properties
        if isinstance(func, types.FunctionType):
            names |= _code_names(func.__code__)
    glb = vars(module) if module is not None else {}
    for name in sorted(names):
        obj = glb.get(name)
        if isinstance(obj, bool | int | float | str):
            parts.append(f"{name}={obj!r}")
        elif isinstance(obj, types.FunctionType) and obj.__module__.split(".")[0] == package:
            try:
                parts.append(inspect.getsource(obj))
            except (OSError, TypeError):
                return None
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


def _code_names(code: types.CodeType) -> set[str]:
    """Global names used by ``code`` and the functions nested in it."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def sample_in_annulus(
    n: int, radius_range: tuple[float, float], *, generator: torch.Generator, dim: int = 2
) -> Tensor:
    """States with a uniform random direction (from ``U[-1,1]^dim``, normalised) and a radius in ``radius_range``.

    This is how the original HNN code samples spring and pendulum initial conditions
    (``experiment-spring/data.py``, ``experiment-pend/data.py``).
    """
    lo, hi = radius_range
    if not (0 <= lo <= hi):
        raise HnnkitValueError(f"radius_range must satisfy 0 <= min <= max, got {radius_range}")
    direction = 2 * torch.rand(n, dim, generator=generator, dtype=torch.float64) - 1
    direction = direction / direction.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    radius = lo + (hi - lo) * torch.rand(n, 1, generator=generator, dtype=torch.float64)
    return direction * radius


# -- registry ----------------------------------------------------------------------------
_REGISTRY: Registry[Callable[..., HamiltonianSystem]] = Registry("system")
_MEASURED = "real-pendulum"  # a dataset name that is not a system (hnnkit.data.real_pendulum)


class ZooSystem(HamiltonianSystem):
    """The defaults every system of the benchmark zoo shares (double pendulum, Hénon–Heiles,
    Duffing, coupled oscillators, FPU-β, elastic pendulum): datasets of 50 noise-free
    trajectories of 50 points over [0, 10], 20% held out, and a kinetic energy quadratic in
    the momenta (so the velocity maps of :class:`HamiltonianSystem` apply)."""

    default_t_span = (0.0, 10.0)
    default_n_points = 50
    default_n_trajectories = 50
    default_noise_std = 0.0
    default_test_fraction = 0.2
    quadratic_momentum = True


def register_system(name: str, cls: Callable[..., HamiltonianSystem]) -> None:
    """Make ``cls`` available as ``get_system(name, **params)`` and on the command line."""
    if not isinstance(name, str) or not name:
        raise HnnkitValueError(f"system name must be a non-empty string, got {name!r}")
    _REGISTRY.register(name, cls, replace=True)  # a later registration replaces an earlier


def get_system(name: str, **params: Any) -> HamiltonianSystem:
    """Build a registered system by name.

    Raises:
        UnknownNameError: if ``name`` is not registered (the message lists valid names and
            points to the measured ``real-pendulum`` dataset).
        HnnkitValueError: for ``"real-pendulum"``, a measured dataset rather than a system.
    """
    if name == _MEASURED and name not in _REGISTRY:
        raise HnnkitValueError(
            f"{_MEASURED!r} is a measured dataset, not a simulated system: load it with "
            "hnnkit.data.real_pendulum() (on the command line, --system real-pendulum)"
        )
    if name not in _REGISTRY:
        err = UnknownNameError("system", name, _REGISTRY)
        err.args = (
            f"{err.args[0]}; the measured dataset {_MEASURED} is loaded with "
            "hnnkit.data.real_pendulum()",
        )
        raise err
    return _REGISTRY[name](**params)


def unregister_system(name: str) -> Callable[..., HamiltonianSystem]:
    """Remove ``name`` and return its class (e.g. after a test registers one).

    Raises:
        UnknownNameError: if ``name`` is not registered.
    """
    return _REGISTRY.unregister(name)


def list_systems() -> dict[str, Callable[..., HamiltonianSystem]]:
    """A copy of the registry, name → class."""
    return dict(_REGISTRY)


def velocity_map_systems() -> list[str]:
    """The registered systems whose class has the velocity maps (``quadratic_momentum``, or
    overridden ``velocity`` and ``momentum``); ``custom`` decides per formula and is left out."""
    names = []
    for name, cls in _REGISTRY.items():
        if not (isinstance(cls, type) and issubclass(cls, HamiltonianSystem)):
            continue
        overridden = (
            cls.velocity is not HamiltonianSystem.velocity
            and cls.momentum is not HamiltonianSystem.momentum
        )
        if cls.quadratic_momentum or overridden:
            names.append(name)
    return sorted(names)


def check_positive(**values: float) -> None:
    """Raise if any named physical constant is not a finite positive number."""
    for name, v in values.items():
        if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
            raise HnnkitValueError(f"{name} must be a finite positive number, got {v!r}")


__all__ = [
    "HamiltonianSystem",
    "check_positive",
    "get_system",
    "identity_problem",
    "join",
    "list_systems",
    "register_system",
    "sample_in_annulus",
    "velocity_map_systems",
]
