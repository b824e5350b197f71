"""Trustworthy data, systems and integrators: cache keys, file checks, input bounds, blow-ups."""

from __future__ import annotations

import math

import pytest
import torch

from hnnkit.errors import HnnkitValueError, NonFiniteStateError
from hnnkit.integrate import odeint

# -- integrators: a blow-up is reported, never returned as NaN/inf ------------------------


def _square(t, x):
    return x**2  # x(t) = 1 / (1/x0 - t): blows up at t = 1 from x0 = 1, at t = 10 from 0.1


def _square_separable(t, x):
    q, p = x[..., :1], x[..., 1:]
    return torch.cat([p, q**2], dim=-1)  # q'' = q**2: (0, 0) stays at rest, (1, 1) blows up


@pytest.mark.parametrize("method", ["euler", "rk4", "implicit-midpoint"])
def test_fixed_step_blow_up_names_time_and_trajectory(method):
    x0 = torch.tensor([[0.1], [1.0], [0.1]], dtype=torch.float64)  # only trajectory 1 blows up
    t = torch.linspace(0.0, 3.0, 31, dtype=torch.float64)
    with pytest.raises(NonFiniteStateError, match=r"trajectory \(1,\)") as info:
        odeint(_square, x0, t, method=method)
    err = info.value
    assert err.index == (1,)
    assert isinstance(err, HnnkitValueError) and isinstance(err, RuntimeError)
    assert 0.5 <= err.time <= 3.0 and f"t={err.time:g}" in str(err)
    assert "smaller step" in str(err)
    # the trajectories that stay bounded are fine on their own
    ok = odeint(_square, x0[[0, 2]], t, method=method)
    assert abs(float(ok[-1, 0, 0]) - 1 / (1 / 0.1 - 3.0)) < 1e-2


def test_leapfrog_blow_up_names_time_and_trajectory():
    x0 = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    t = torch.linspace(0.0, 5.0, 51, dtype=torch.float64)
    with pytest.raises(NonFiniteStateError, match=r"trajectory \(1,\)") as info:
        odeint(_square_separable, x0, t, method="leapfrog")
    assert info.value.index == (1,) and 1.0 <= info.value.time <= 5.0


def test_first_non_finite_output_time_is_exact():
    # x' = x, x0 = 1, and f is NaN once x > 2: forward Euler with h = 0.1 has x_n = 1.1**n,
    # which first exceeds 2 at n = 8 (t = 0.8), so the state is NaN from t = 0.9 on.
    def f(t, x):
        return torch.where(x > 2, torch.nan, x)

    x0 = torch.tensor([[0.01], [1.0], [0.01]], dtype=torch.float64)
    t = torch.linspace(0.0, 3.0, 31, dtype=torch.float64)
    with pytest.raises(NonFiniteStateError) as info:
        odeint(f, x0, t, method="euler")
    assert info.value.index == (1,) and math.isclose(info.value.time, 0.9, abs_tol=1e-12)
    # dopri5 stops where the exact solution e^t reaches 2: t = ln 2
    with pytest.raises(NonFiniteStateError) as info:
        odeint(f, x0, t, method="dopri5")
    assert info.value.index == (1,) and abs(info.value.time - math.log(2)) < 1e-6


def test_single_state_blow_up_has_an_empty_index():
    with pytest.raises(NonFiniteStateError, match="the trajectory") as info:
        odeint(
            _square,
            torch.ones(1, dtype=torch.float64),
            [0.0, 1.5, 3.0],
            method="rk4",
            step_size=0.1,
        )
    assert info.value.index == () and info.value.time == 1.5


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_dopri5_rejects_half_precision(dtype):
    with pytest.raises(HnnkitValueError, match="float32 or float64"):
        odeint(lambda t, x: -x, torch.ones(2, 1, dtype=dtype), [0.0, 1.0], method="dopri5")


# -- dataset cache: the key covers everything that determines the data -------------------

CACHE_KW = {"n_trajectories": 4, "n_points": 8, "noise_std": 0.0, "seed": 0}


def _files(d):
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_custom_parameters_and_radius_range_change_the_data(tmp_path):
    from hnnkit.data import generate
    from hnnkit.systems import Custom

    h = "k*q**2/2 + p**2/2"
    soft = generate(Custom(h, parameters={"k": 1}), **CACHE_KW, cache=tmp_path)
    stiff = generate(Custom(h, parameters={"k": 100}), **CACHE_KW, cache=tmp_path)
    assert len(_files(tmp_path)) == 2
    # dp/dt = -k q at the same (noise-free) states: the targets scale with k
    assert torch.equal(soft.x[:, 0], stiff.x[:, 0])
    ratio = stiff.dx[:, 0, 1] / soft.dx[:, 0, 1]
    assert torch.allclose(ratio, torch.full_like(ratio, 100.0), rtol=1e-12)

    near = generate(
        Custom(h, parameters={"k": 1}, radius_range=(0.1, 0.2)), **CACHE_KW, cache=tmp_path
    )
    far = generate(Custom(h, parameters={"k": 1}, radius_range=(2, 3)), **CACHE_KW, cache=tmp_path)
    assert len(_files(tmp_path)) == 4
    assert float(near.x[:, 0].norm(dim=-1).max()) <= 0.2 + 1e-12
    assert float(far.x[:, 0].norm(dim=-1).min()) >= 2 - 1e-12


def test_same_system_twice_reuses_the_cache_file(tmp_path, monkeypatch):
    from hnnkit.data import _generate, generate
    from hnnkit.systems import Custom

    first = generate(Custom("q**2/2 + p**2/2 + q**4/4"), **CACHE_KW, cache=tmp_path)
    (path,) = tmp_path.iterdir()
    stamp = path.stat().st_mtime_ns

    def no_simulation(*args, **kwargs):
        raise AssertionError("the cached dataset should have been loaded")

    monkeypatch.setattr(_generate, "_simulate", no_simulation)
    again = generate(Custom("q**2/2 + p**2/2 + q**4/4"), **CACHE_KW, cache=tmp_path)
    assert torch.equal(first.x, again.x) and first.config == again.config
    assert _files(tmp_path) == [path.name] and path.stat().st_mtime_ns == stamp


_USER_SYSTEM = """
import torch
from hnnkit.systems import HamiltonianSystem


class Coupled(HamiltonianSystem):
    separable = True

    def __init__(self):
        super().__init__(dof=2)

    def hamiltonian(self, q, p):
        c = COUPLING
        return 0.5 * p.pow(2).sum(-1) + 0.5 * (q.pow(2).sum(-1) + c * (q[..., 0] - q[..., 1]) ** 2)

    def sample_initial(self, n, *, generator):
        return 2 * torch.rand(n, 4, generator=generator, dtype=torch.float64) - 1
"""


def _import_user_module(path, coupling_in_class: str, coupling_global: str = "1"):
    import importlib.util
    import sys

    path.write_text(
        f"COUPLING = {coupling_global}\n"
        + _USER_SYSTEM.replace("c = COUPLING", f"c = {coupling_in_class}")
    )
    spec = importlib.util.spec_from_file_location("hnnkit_user_coupled", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # as `import` does; replaced by each new version
    spec.loader.exec_module(module)
    return module.Coupled


def test_editing_a_user_class_changes_the_cache_key(tmp_path, monkeypatch):
    import sys

    from hnnkit.data import generate

    monkeypatch.setitem(sys.modules, "hnnkit_user_coupled", None)  # removed afterwards
    cache, src = tmp_path / "cache", tmp_path / "user_coupled.py"
    weak = _import_user_module(src, "1")()
    key = weak.identity()
    generate(weak, **CACHE_KW, cache=cache)
    strong = _import_user_module(src, "50")()  # same module, class name and params
    assert strong.identity()["class"] == key["class"] and strong.identity() != key
    data = generate(strong, **CACHE_KW, cache=cache)
    assert len(_files(cache)) == 2
    # dp1/dt = -q1 - c (q1 - q2): the targets are the edited system's
    q = data.x_clean[..., :2]
    expect = -q[..., 0] - 50 * (q[..., 0] - q[..., 1])
    assert torch.allclose(data.dx[..., 2], expect, atol=1e-12)
    # a module-level constant the class uses by name is part of the key too
    glob = _import_user_module(src, "COUPLING", "1")().identity()
    assert glob != _import_user_module(src, "COUPLING", "50")().identity()


def test_constructor_arguments_missing_from_params_are_in_the_key(tmp_path):
    from hnnkit.data import generate
    from hnnkit.systems import HamiltonianSystem, sample_in_annulus

    class Stiff(HamiltonianSystem):
        def __init__(self, k=1.0):
            super().__init__(dof=1)
            self.k = k

        def hamiltonian(self, q, p):
            return (self.k * q**2 + p**2).sum(-1) / 2

        def sample_initial(self, n, *, generator):
            return sample_in_annulus(n, (0.5, 1.0), generator=generator)

    a = generate(Stiff(1.0), **CACHE_KW, cache=tmp_path)
    b = generate(Stiff(9.0), **CACHE_KW, cache=tmp_path)
    assert len(_files(tmp_path)) == 2
    assert torch.equal(a.x[:, 0], b.x[:, 0])  # same start states, dp/dt = -k q there
    assert torch.allclose(b.dx[:, 0, 1], 9 * a.dx[:, 0, 1], rtol=1e-12)
    assert Stiff(9.0).identity()["state"]["k"] == 9.0


def test_a_system_that_cannot_describe_itself_is_not_cached(tmp_path):
    from hnnkit.data import generate
    from hnnkit.systems import HamiltonianSystem, sample_in_annulus

    namespace = {"HamiltonianSystem": HamiltonianSystem, "sample_in_annulus": sample_in_annulus}
    exec(  # a class without a source file, as typed into an interactive session
        compile(_USER_SYSTEM.replace("c = COUPLING", "c = 1"), "<console>", "exec"), namespace
    )
    nameless = namespace["Coupled"]()
    assert nameless.identity() is None
    with pytest.warns(UserWarning, match="not cached .*source code of Coupled"):
        generate(nameless, **CACHE_KW, cache=tmp_path)

    class Opaque(HamiltonianSystem):
        def __init__(self, potential):
            super().__init__(dof=1)
            self.potential = potential

        def hamiltonian(self, q, p):
            return (self.potential(q) + p**2 / 2).sum(-1)

        def sample_initial(self, n, *, generator):
            return sample_in_annulus(n, (0.5, 1.0), generator=generator)

    with pytest.warns(UserWarning, match=r"not cached .*\['potential'\]"):
        generate(Opaque(lambda q: q**2), **CACHE_KW, cache=tmp_path)
    assert _files(tmp_path) == []

    class Versioned(Opaque):  # declaring params() makes it describable again
        def params(self):
            return {"potential": "square"}

    assert Versioned(lambda q: q**2).identity() is not None


def test_builtin_params_cover_every_constructor_argument():
    import inspect

    from hnnkit.systems import list_systems

    builtin = {n: c for n, c in list_systems().items() if c.__module__.startswith("hnnkit.")}
    assert {"spring", "pendulum", "custom", "two-body"} <= set(builtin)
    for name, cls in builtin.items():  # not the systems other tests register
        system = cls("q**2 + p**2") if name == "custom" else cls()
        wanted = list(inspect.signature(cls.__init__).parameters)[1:]
        assert set(wanted) <= set(system.params()), name
        assert system.identity() is not None and "state" not in system.identity(), name


# -- malformed cache files are regenerated ------------------------------------------------


def _malformed_files(path):
    """Ways a cache file can be wrong, each written over ``path``."""
    import json

    import numpy as np

    from hnnkit.data._dataset import _digest

    good = dict(np.load(path))

    def valid_checksum(arrays):
        meta = {"format": 1, "config": {}, "sha256": _digest(arrays)}
        arrays = dict(arrays, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
        np.savez(path, **arrays)

    yield "random bytes", lambda: path.write_bytes(bytes(range(256)) * 8)
    yield "wrong keys", lambda: np.savez(path, foo=np.zeros(3))
    yield "object array", lambda: np.savez(path, x=np.array([1, "a"], dtype=object))
    yield (
        "meta not a dict",
        lambda: np.savez(path, x=good["x"], meta=np.frombuffer(b"[1, 2]", dtype=np.uint8)),
    )
    yield "missing x", lambda: valid_checksum({k: good[k] for k in ("dx", "t", "test_mask")})
    yield (
        "no test points",
        lambda: valid_checksum(
            {
                **{k: good[k] for k in ("x", "dx", "t")},
                "test_mask": np.zeros_like(good["test_mask"]),
            }
        ),
    )
    yield (
        "integer states",
        lambda: valid_checksum(
            {**{k: good[k] for k in ("dx", "t", "test_mask")}, "x": good["x"].astype(np.int64)}
        ),
    )


def test_malformed_cache_files_raise_data_file_error_and_are_regenerated(tmp_path):
    from hnnkit.data import Dataset, generate
    from hnnkit.errors import DataFileError

    fresh = generate("spring", **CACHE_KW, cache=tmp_path)
    (path,) = tmp_path.iterdir()
    for what, write in _malformed_files(path):
        write()
        with pytest.raises(DataFileError):
            Dataset.load(path)
        with pytest.warns(UserWarning, match="regenerating"):
            again = generate("spring", **CACHE_KW, cache=tmp_path)
        assert torch.equal(again.x, fresh.x), what
        assert torch.equal(Dataset.load(path).x, fresh.x), what  # the file was rewritten


def test_a_cache_file_for_another_config_is_regenerated(tmp_path):
    from hnnkit.data import generate

    fresh = generate("spring", **CACHE_KW, cache=tmp_path)
    (path,) = tmp_path.iterdir()
    generate("pendulum", **CACHE_KW).save(path)  # a valid dataset under the wrong key
    with pytest.warns(UserWarning, match="another config"):
        again = generate("spring", **CACHE_KW, cache=tmp_path)
    assert torch.equal(again.x, fresh.x)


# -- seeds ---------------------------------------------------------------------------------


def test_seeds_are_validated():
    from hnnkit.data import generate
    from hnnkit.errors import check_seed

    for bad in (2**64, 2**63, -1, True, 1.0, "3"):
        with pytest.raises(HnnkitValueError, match=r"seed must be .*2\*\*63"):
            generate("spring", n_trajectories=2, seed=bad)
    assert check_seed("seed", 2**63 - 1) == 2**63 - 1
    import numpy as np

    assert check_seed("seed", np.int64(7)) == 7 and type(check_seed("s", np.int64(7))) is int
    generate("spring", n_trajectories=2, n_points=3, seed=2**63 - 1)


# -- from_arrays ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["tensor", "numpy"])
def test_from_arrays_integer_input_is_differenced_in_float64(kind):
    import numpy as np

    from hnnkit.data import from_arrays

    t = torch.arange(7)  # int64 times and states: q = t**2, p = t**3
    states = torch.stack([t**2, t**3], dim=-1)
    if kind == "numpy":
        t, states = t.numpy().astype(np.int32), states.numpy().astype(np.int32)
    d = from_arrays(states, t=t)
    tf = torch.arange(7, dtype=torch.float64)
    assert d.x.dtype == torch.float64 and d.dx.dtype == torch.float64
    # the second-order differences are exact for a quadratic: d(t**2)/dt = 2t everywhere
    assert torch.allclose(d.dx[0, :, 0], 2 * tf, rtol=0, atol=1e-12)
    # central differences of t**3 at interior points: ((t+1)**3 - (t-1)**3) / 2 = 3t**2 + 1
    assert torch.allclose(d.dx[0, 1:-1, 1], 3 * tf[1:-1] ** 2 + 1, rtol=0, atol=1e-12)
    half = from_arrays(states, derivatives=(torch.ones(7, 2) * torch.tensor([1, 3])) // 2 + 0.5)
    assert torch.allclose(half.dx[0, 0], torch.tensor([0.5, 1.5], dtype=torch.float64))


def test_from_arrays_rejects_times_out_of_order():
    from hnnkit.data import from_arrays

    states = torch.zeros(6, 2, dtype=torch.float64)
    with pytest.raises(HnnkitValueError, match=r"strictly increasing.*t\[3\] = 1\.0"):
        from_arrays(states, t=[0.0, 1.0, 2.0, 1.0, 4.0, 5.0])
    with pytest.raises(HnnkitValueError, match=r"t\[2\] = 1\.0"):
        from_arrays(states, t=[0.0, 1.0, 1.0, 3.0, 4.0, 5.0])  # a repeated time
    two = torch.zeros(2, 4, 2, dtype=torch.float64)
    times = torch.tensor([[0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 0.5, 3.0]])
    with pytest.raises(HnnkitValueError, match=r"t\[1, 2\]"):
        from_arrays(two, t=times)


@pytest.mark.parametrize("kind", ["tensor", "numpy"])
def test_from_arrays_rejects_complex_input(kind):
    from hnnkit.data import from_arrays

    states = torch.zeros(5, 2, dtype=torch.complex128) + 1j
    if kind == "numpy":
        states = states.numpy()
    with pytest.raises(HnnkitValueError, match="complex"):
        from_arrays(states)
    with pytest.raises(HnnkitValueError, match="complex"):
        from_arrays(torch.zeros(5, 2), derivatives=states)
    with pytest.raises(HnnkitValueError, match="complex"):
        from_arrays(torch.zeros(5, 2), t=torch.arange(5) + 0j)


# -- formulas: bounded before SymPy evaluates anything --------------------------------------


@pytest.mark.parametrize(
    "formula, match",
    [
        ("9**9**9*q + p**2", r"power '9\*\*9'.*at most 100"),
        ("99999999999**99999999999*q", r"power '99999999999'"),
        ("q**(2**7)", r"power '2\*\*7'"),
        ("2^1000*q + p", "at most 100"),
        ("q**k", r"power 'k'"),  # a parameter is a number too
        ("(2**100)**100*q", "exceeds 1e\\+300"),
        ("exp(1000)*q", "exceeds 1e\\+300"),
        ("1e16*q + p**2", "at most 1e\\+15"),
        ("(" * 150 + "q" + ")" * 150, "nests parentheses more than 50"),
        ("sin(" * 60 + "q" + ")" * 60, "nests parentheses more than 50"),
        ("-" * 150 + "q", "more than 50 deep"),
        ("q" + "**q" * 60, "more than 50 deep"),
        ("q + " * 600 + "p", "2000"),
        ("q//2 + p", "not allowed"),
        ("1", "must depend on q or p"),
        ("pi + E", "must depend on q or p"),
    ],
)
def test_hostile_or_meaningless_formulas_are_rejected(formula, match):
    from hnnkit.systems import Custom

    with pytest.raises(HnnkitValueError, match=match):
        Custom(formula, parameters={"k": 1e9})


def test_formula_bounds_keep_ordinary_formulas():
    from hnnkit.systems import Custom

    assert Custom("q**2/2 + p**2/2 + q**4/4").formula == "p1**2/2 + q1**4/4 + q1**2/2"
    assert Custom("q^100 + p^(-100) + q**(1/2) + 1e15*p").separable
    assert Custom("(" * 50 + "q" + ")" * 50 + "+p**2").formula == "p1**2 + q1"
    assert Custom("q**k + p**2", parameters={"k": 3}).formula == "p1**2 + q1**3.0"
    deep = "q" + " + q" * 400  # long sums are flat: no nesting
    assert Custom(deep + " + p**2").formula == "p1**2 + 401*q1"
    for bad in ({"k": "q"}, {"k": float("inf")}, {"__k": 1.0}):
        with pytest.raises(HnnkitValueError, match="parameter"):
            Custom("k*q**2 + p**2", parameters=bad)


# -- registry -------------------------------------------------------------------------------


def test_unknown_system_points_to_the_measured_pendulum():
    from hnnkit.errors import UnknownNameError
    from hnnkit.systems import get_system

    with pytest.raises(UnknownNameError, match=r"valid systems are: .*spring.*real-pendulum"):
        get_system("sprnig")
    with pytest.raises(HnnkitValueError, match=r"hnnkit\.data\.real_pendulum\(\)"):
        get_system("real-pendulum")
