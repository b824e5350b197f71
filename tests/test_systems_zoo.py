"""The systems zoo against known physics: normal modes, escape energies, periods, conservation."""

import json
import math

import numpy as np
import pytest
import torch

from hnnkit.cli import main
from hnnkit.data import generate
from hnnkit.errors import HnnkitValueError
from hnnkit.integrate import odeint
from hnnkit.phase_space import symplectic_gradient
from hnnkit.systems import (
    CoupledOscillators,
    DoublePendulum,
    Duffing,
    ElasticPendulum,
    FPUBeta,
    HenonHeiles,
    get_system,
    parse_hamiltonian,
    sympy_to_torch,
)
from hnnkit.systems.custom import coordinate_symbols

ZOO = [
    "double-pendulum",
    "henon-heiles",
    "duffing",
    "coupled-oscillators",
    "fpu-beta",
    "elastic-pendulum",
]

#: Each zoo system with constants other than its defaults, for the field checks.
OTHER = [
    DoublePendulum(m1=2.0, m2=0.5, l1=1.5, l2=0.7, g=9.81, energy_range=(0.1, 2.0)),
    HenonHeiles(lam=2.0, energy_range=(0.005, 0.03)),
    Duffing(alpha=-1.0, beta=0.5, m=1.5, energy_range=(-0.4, 0.3)),
    Duffing(alpha=2.0, beta=-0.5, m=0.7, energy_range=(0.1, 1.5)),
    CoupledOscillators(n=5, m=0.7, k=1.3, kappa=2.1),
    FPUBeta(n=12, m=0.5, k=2.0, beta=0.3),
    ElasticPendulum(m=0.7, k=5.0, l0=1.2, g=9.81, energy_range=(0.5, 5.0)),
]


def _jacobian_at_rest(system, rest=None):
    x = torch.zeros(system.dim, dtype=torch.float64) if rest is None else rest
    return torch.autograd.functional.jacobian(lambda y: system.vector_field(0.0, y), x)


def _frequencies(jac):
    """Angular frequencies of a linear centre: the positive imaginary parts of the eigenvalues."""
    ev = np.linalg.eigvals(jac.numpy())
    assert np.abs(ev.real).max() < 1e-10  # a centre: purely imaginary pairs
    return np.sort(ev.imag[ev.imag > 0])


def _formula_system(system):
    """``H`` of ``system.formula`` (constants from ``params()``) as a torch function of ``x``."""
    constants = {k: v for k, v in system.params().items() if isinstance(v, float)}
    expr = parse_hamiltonian(system.formula, system.dof, constants)
    qs, ps = coordinate_symbols(system.dof)
    return sympy_to_torch(expr, qs + ps)


# -- every zoo system ---------------------------------------------------------------------


@pytest.mark.parametrize("system", [*(get_system(n) for n in ZOO), *OTHER], ids=repr)
def test_field_equals_the_symplectic_gradient_of_the_formula(system, gen):
    h = _formula_system(system)
    x = system.sample_initial(32, generator=gen)
    torch.testing.assert_close(h(x), system.energy(x), rtol=1e-12, atol=1e-12)
    ref = symplectic_gradient(h, x)
    torch.testing.assert_close(system.vector_field(0.0, x), ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("system", [*(get_system(n) for n in ZOO), *OTHER], ids=repr)
def test_flags_and_energy_band_of_the_sampler(system, gen):
    x = system.sample_initial(64, generator=gen).requires_grad_(True)
    e = system.energy(x)
    lo, hi = system.energy_range
    e_values = e.detach()
    assert x.dtype == torch.float64 and x.shape == (64, system.dim)
    assert float(e_values.min()) >= lo and float(e_values.max()) <= hi
    spread = 0.15 * (hi - lo)  # the energies fill the band
    assert float(e_values.min()) < lo + spread and float(e_values.max()) > hi - spread
    # quadratic in p: H(q, 2p) - H(q, 0) = 4 (H(q, p) - H(q, 0))
    q, p = x[:, : system.dof], x[:, system.dof :]
    h0 = system.hamiltonian(q, 0 * p)
    torch.testing.assert_close(
        system.hamiltonian(q, 2 * p) - h0, 4 * (e - h0), rtol=1e-10, atol=1e-12
    )
    assert system.quadratic_momentum is True
    # separable: dH/dp does not depend on q
    (grad,) = torch.autograd.grad(e.sum(), x, create_graph=True)
    dq_of_dp = torch.autograd.grad(grad[:, system.dof :].sum(), x, allow_unused=True)[0]
    mixed = 0.0 if dq_of_dp is None else float(dq_of_dp[:, : system.dof].abs().max())
    assert (mixed == 0.0) == system.separable, mixed


@pytest.mark.parametrize("name", ZOO)
def test_default_data_generate_in_the_band_and_train_end_to_end(name, tmp_path, capsys):
    system = get_system(name)
    d = generate(name, n_trajectories=6, seed=1)
    assert d.x.shape == (6, system.default_n_points, system.dim)
    assert d.config["t_span"] == list(system.default_t_span)
    e = system.energy(d.x_clean)
    lo, hi = system.energy_range
    assert float(e[:, 0].min()) >= lo and float(e[:, 0].max()) <= hi
    assert float((e - e[:, :1]).abs().max()) < 1e-7 * hi  # the reference solver keeps H
    ident = system.identity()
    assert ident is not None and "state" not in ident
    assert json.loads(json.dumps(ident)) == get_system(name).identity()
    changed = get_system(name, energy_range=(lo, 0.9 * hi))
    assert changed.identity() != ident
    run = tmp_path / "run"
    argv = ["train", "--system", name, "--model", "hnn", "--out", str(run), "--steps", "5"]
    argv += ["--hidden", "8", "--n-trajectories", "4", "--log-every", "5", "--quiet"]
    assert main(argv) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert math.isfinite(metrics["test_loss"]["mean"])


def test_hnnkit_systems_lists_the_zoo(capsys):
    assert main(["systems", "--full"]) == 0
    out = capsys.readouterr().out
    for name in ZOO:
        line = next(ln for ln in out.splitlines() if ln.startswith(name + " "))
        assert get_system(name).formula in line


# -- double pendulum ----------------------------------------------------------------------


def test_double_pendulum_equal_normal_modes():
    g, length = 2.5, 0.8
    s = DoublePendulum(m1=1.3, m2=1.3, l1=length, l2=length, g=g, energy_range=(0.1, 1.0))
    want = np.sqrt(g / length * np.array([2 - math.sqrt(2), 2 + math.sqrt(2)]))
    np.testing.assert_allclose(_frequencies(_jacobian_at_rest(s)), want, rtol=1e-12)


def test_double_pendulum_general_normal_modes():
    m1, m2, l1, l2, g = 2.0, 0.5, 1.5, 0.7, 9.81
    s = DoublePendulum(m1=m1, m2=m2, l1=l1, l2=l2, g=g, energy_range=(0.1, 1.0))
    mass = np.array([[(m1 + m2) * l1**2, m2 * l1 * l2], [m2 * l1 * l2, m2 * l2**2]])
    stiff = np.diag([(m1 + m2) * g * l1, m2 * g * l2])
    # det(K - w^2 M) = 0: a quadratic in w^2
    a = np.linalg.det(mass)
    b = -(stiff[0, 0] * mass[1, 1] + stiff[1, 1] * mass[0, 0])
    c = np.linalg.det(stiff)
    w2 = np.sort(
        [
            (-b - math.sqrt(b * b - 4 * a * c)) / (2 * a),
            (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a),
        ]
    )
    np.testing.assert_allclose(_frequencies(_jacobian_at_rest(s)), np.sqrt(w2), rtol=1e-12)


def test_double_pendulum_energy_is_conserved_by_the_reference_solver(gen):
    s = DoublePendulum()
    x0 = s.sample_initial(4, generator=gen)
    t = torch.linspace(0, 60, 121, dtype=torch.float64)  # 7 periods of the slow mode
    traj = odeint(s.vector_field, x0, t, method="dopri5", rtol=1e-10, atol=1e-10)
    e = s.energy(traj)
    assert float((e - e[0]).abs().max()) < 1e-8 * float(e[0].max())
    assert float(traj[..., :2].abs().max()) < math.pi  # below the turn-over energy: no flips


def test_double_pendulum_refuses_a_band_where_it_flips():
    with pytest.raises(HnnkitValueError, match="turn over"):
        DoublePendulum(energy_range=(0.1, 2.5))
    assert DoublePendulum(m2=0.5, energy_range=(0.1, 0.5)).turnover_energy == pytest.approx(1.0)
    assert DoublePendulum(m1=0.1, l1=0.5, energy_range=(0.1, 0.5)).turnover_energy == pytest.approx(
        1.1
    )


# -- Hénon–Heiles -------------------------------------------------------------------------


@pytest.mark.parametrize("lam", [1.0, 2.0])
def test_henon_heiles_saddles_lie_at_the_escape_energy(lam):
    from scipy.optimize import root

    s = HenonHeiles(lam=lam, energy_range=(0.001, 0.01))

    def grad_v(q):
        qt = torch.tensor(q, dtype=torch.float64, requires_grad=True)
        (g,) = torch.autograd.grad(s.potential(qt), qt)
        return g.numpy()

    points = []
    for guess in [(0.1, 0.9), (0.8, -0.6), (-0.8, -0.6), (0.1, 0.1)]:
        sol = root(grad_v, np.array(guess) / lam, tol=1e-13)
        assert np.abs(grad_v(sol.x)).max() < 1e-12
        if not any(np.allclose(sol.x, p, atol=1e-8) for p in points):
            points.append(sol.x)
    assert len(points) == 4
    energies = sorted(float(s.potential(torch.tensor(p))) for p in points)
    assert energies[0] == pytest.approx(0.0, abs=1e-14)  # the minimum at the origin
    np.testing.assert_allclose(energies[1:], [1 / (6 * lam**2)] * 3, rtol=1e-10)
    assert s.escape_energy == pytest.approx(1 / (6 * lam**2), rel=1e-14)


def test_henon_heiles_orbits_below_the_escape_energy_stay_bounded(gen):
    s = HenonHeiles()
    x0 = s.sample_initial(16, generator=gen)
    t = torch.linspace(0, 200, 201, dtype=torch.float64)
    traj = odeint(s.vector_field, x0, t, method="dopri5", rtol=1e-8, atol=1e-8)
    assert float(s.potential(traj[..., :2]).max()) <= s.energy_range[1] + 1e-8
    assert float(traj[..., :2].norm(dim=-1).max()) < 1.0  # inside the saddles' circle
    # above the escape energy an orbit aimed at a saddle leaves: the check can fail
    e = 0.2
    out = torch.tensor([[0.0, 0.0, 0.0, math.sqrt(2 * e)]], dtype=torch.float64)
    run = odeint(s.vector_field, out, torch.linspace(0, 5, 51, dtype=torch.float64), rtol=1e-9)
    assert float(run[..., 1].max()) > 1.5


def test_henon_heiles_refuses_a_band_above_the_escape_energy():
    with pytest.raises(HnnkitValueError, match=r"0\.166667.*orbits escape"):
        HenonHeiles(energy_range=(0.1, 0.2))


# -- Duffing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alpha", "beta", "m", "amplitude"),
    [(1.0, 1.0, 1.0, 1.0), (2.0, 0.5, 1.5, 1.3), (1.0, -0.5, 1.0, 0.8)],
)
def test_duffing_period_equals_the_elliptic_integral(alpha, beta, m, amplitude):
    from scipy.special import ellipk

    s = Duffing(alpha=alpha, beta=beta, m=m, energy_range=(0.01, 0.4))
    omega = math.sqrt((alpha + beta * amplitude**2) / m)
    k2 = beta * amplitude**2 / (2 * (alpha + beta * amplitude**2))
    period = 4 * ellipk(k2) / omega
    x0 = torch.tensor([amplitude, 0.0], dtype=torch.float64)
    t = torch.tensor([0.0, period / 4, period / 2, period], dtype=torch.float64)
    traj = odeint(s.vector_field, x0, t, method="dopri5", rtol=1e-12, atol=1e-12)
    assert abs(float(traj[1, 0])) < 1e-8  # a quarter period: through the centre
    assert float(traj[2, 0]) == pytest.approx(-amplitude, abs=1e-8)
    torch.testing.assert_close(traj[3], x0, rtol=0, atol=1e-8)


def test_duffing_double_well_samples_both_wells_and_bad_constants_are_refused(gen):
    s = Duffing(alpha=-1.0, beta=1.0, energy_range=(-0.2, -0.05))  # below the barrier H = 0
    x = s.sample_initial(200, generator=gen)
    assert (x[:, 0] > 0).sum() > 50 and (x[:, 0] < 0).sum() > 50
    assert float(x[:, 0].abs().min()) > 0.3  # each in its own well, away from the barrier
    assert s.minimum_energy == pytest.approx(-0.25)
    with pytest.raises(HnnkitValueError, match="no bounded motion"):
        Duffing(alpha=-1.0, beta=0.0)
    with pytest.raises(HnnkitValueError, match="minimum of H"):
        Duffing(alpha=-1.0, beta=1.0, energy_range=(-0.5, 0.1))
    with pytest.raises(HnnkitValueError, match="barrier"):
        Duffing(alpha=1.0, beta=-1.0, energy_range=(0.1, 0.3))


# -- chains -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "m", "k", "kappa"), [(2, 1.0, 1.0, 0.5), (3, 0.7, 1.3, 2.1), (7, 2.0, 0.4, 1.0)]
)
def test_coupled_oscillators_normal_modes(n, m, k, kappa):
    s = CoupledOscillators(n=n, m=m, k=k, kappa=kappa)
    j = np.arange(n)
    want = np.sqrt((k + 4 * kappa * np.sin(j * np.pi / (2 * n)) ** 2) / m)
    got = _frequencies(_jacobian_at_rest(s))
    np.testing.assert_allclose(got, np.sort(want), rtol=1e-12)
    np.testing.assert_allclose(s.normal_mode_frequencies().numpy(), np.sort(want), rtol=1e-12)
    if n == 2:  # in phase sqrt(k/m), anti-phase sqrt((k + 2 kappa)/m)
        np.testing.assert_allclose(got, [math.sqrt(k / m), math.sqrt((k + 2 * kappa) / m)])
        assert "(q1 - q2)**2" in s.formula


@pytest.mark.parametrize("n", [4, 9, 32])
def test_fpu_linear_limit_has_the_chain_normal_modes(n):
    s = FPUBeta(n=n, m=0.5, k=2.0, beta=0.0)
    j = np.arange(1, n + 1)
    want = 2 * math.sqrt(2.0 / 0.5) * np.sin(j * np.pi / (2 * (n + 1)))
    np.testing.assert_allclose(_frequencies(_jacobian_at_rest(s)), want, rtol=1e-11)
    np.testing.assert_allclose(s.normal_mode_frequencies().numpy(), want, rtol=1e-12)


def test_fpu_energy_is_conserved_and_the_quartic_term_acts(gen):
    s = FPUBeta(n=16, beta=1.0, energy_range=(0.4, 0.5))
    x0 = s.sample_initial(4, generator=gen)
    t = torch.linspace(0, 50, 51, dtype=torch.float64)  # 1.5 periods of the slowest mode
    traj = odeint(s.vector_field, x0, t, method="dopri5", rtol=1e-10, atol=1e-10)
    e = s.energy(traj)
    assert float((e - e[0]).abs().max()) < 1e-7 * float(e[0].max())  # dopri5 drifts ~t*rtol
    linear = FPUBeta(n=16, beta=0.0, energy_range=(0.4, 0.5))
    other = odeint(linear.vector_field, x0, t, method="dopri5", rtol=1e-10, atol=1e-10)
    assert float((traj - other).abs().max()) > 1e-2


@pytest.mark.parametrize("n", [3, 33, 0, 8.0, True])
def test_fpu_refuses_chain_lengths_outside_4_to_32(n):
    with pytest.raises(HnnkitValueError, match="from 4 to 32"):
        FPUBeta(n=n)


# -- elastic pendulum ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("m", "k", "l0", "g"), [(1.0, 3.0, 1.0, 1.0), (0.7, 5.0, 1.2, 9.81), (2.0, 40.0, 0.5, 3.0)]
)
def test_elastic_pendulum_small_oscillations_about_the_hanging_rest(m, k, l0, g):
    s = ElasticPendulum(m=m, k=k, l0=l0, g=g, energy_range=(0.01, 0.02))
    r_eq = l0 + m * g / k
    rest = torch.tensor([r_eq, 0.0, 0.0, 0.0], dtype=torch.float64)
    assert s.energy(rest).item() == pytest.approx(0.0, abs=1e-12)
    torch.testing.assert_close(s.vector_field(0.0, rest), torch.zeros(4, dtype=torch.float64))
    want = np.sort([math.sqrt(k / m), math.sqrt(g / r_eq)])
    np.testing.assert_allclose(_frequencies(_jacobian_at_rest(s, rest)), want, rtol=1e-12)


def test_elastic_pendulum_defaults_are_in_the_2_to_1_resonance_and_bands_are_checked(gen):
    radial, swing = ElasticPendulum().frequencies
    assert radial == pytest.approx(2 * swing, rel=1e-12)
    x = ElasticPendulum().sample_initial(200, generator=gen)
    assert float(x[:, 0].min()) > 0.5 and float(x[:, 1].abs().max()) < 1.0  # near the rest
    with pytest.raises(HnnkitValueError, match="swing over the top"):
        ElasticPendulum(energy_range=(0.1, 2.0))
