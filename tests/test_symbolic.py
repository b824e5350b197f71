"""Tests for hnnkit.symbolic: edge fits, the Occam rule, the HNN-loss refit and exports."""

import math

import numpy as np
import pytest
import sympy
import torch

from hnnkit.data import generate
from hnnkit.errors import DataFileError, HnnkitValueError, UnknownNameError
from hnnkit.integrate import odeint
from hnnkit.models import HNN
from hnnkit.models.kan import KAN
from hnnkit.symbolic import (
    POLYNOMIAL_LIBRARY,
    X,
    drop_terms,
    extract_from_run,
    extract_hamiltonian,
    fit_edge,
    hnn_loss_fn,
    phase_space_symbols,
    refit_coefficients,
    round_coefficients,
    save_kan_run,
)
from hnnkit.systems import Custom, get_system
from hnnkit.train import fit

Q, P = phase_space_symbols(1)


# -- edge fits --------------------------------------------------------------------------------
def test_fit_edge_solves_polynomials_exactly():
    x = np.linspace(-1.3, 0.7, 80)
    name, expr, r2, complexity, _ = fit_edge(x, 0.8 * x**2 - 0.3 * x + 0.1)
    assert name == "x^2" and complexity == 2
    assert r2 == pytest.approx(1.0, abs=1e-12)
    poly = sympy.Poly(expr, X)
    assert [float(c) for c in poly.all_coeffs()] == pytest.approx([0.8, -0.3, 0.1], abs=1e-10)


def test_fit_edge_finds_an_affine_cosine():
    x = np.linspace(-2.3, 2.3, 101)
    name, expr, r2, _, cands = fit_edge(x, -3.0 * np.cos(x) + 3.0)
    assert name == "cos"
    assert r2 > 1 - 1e-10
    assert cands["x^2"] < 1 - 1e-3  # a parabola is not good enough here
    values = np.array([float(expr.subs(X, v)) for v in (-2.0, 0.3, 1.7)])
    np.testing.assert_allclose(values, -3.0 * np.cos([-2.0, 0.3, 1.7]) + 3.0, atol=1e-6)


def test_sine_and_cosine_fits_get_one_canonical_form():
    x = np.linspace(-2.0, 2.0, 101)
    name, expr, *_ = fit_edge(x, 2.0 * np.sin(1.5 * x) + 1.0, library=["cos", "sin"])
    assert name == "sin"  # found first as cos(1.5x - pi/2), printed with phase ~0
    (inner,) = [a.args[0] for a in expr.atoms(sympy.sin)]
    assert float(inner.coeff(X)) == pytest.approx(1.5, abs=1e-6)
    assert abs(float(inner.subs(X, 0))) < 1e-6


def test_occam_prefers_the_parabola_within_tolerance(gen):
    x = np.linspace(-1, 1, 60)
    noise = 1e-3 * torch.randn(60, generator=gen, dtype=torch.float64).numpy()
    name, *_ = fit_edge(x, x**2 + noise)
    assert name == "x^2"
    # With no tolerance the best R² wins, whatever its complexity.
    name0, *_, cands0 = fit_edge(x, x**2 + noise, occam_tol=0.0)
    assert cands0[name0] == max(cands0.values())


def test_fit_edge_errors():
    x = np.linspace(0, 1, 10)
    with pytest.raises(UnknownNameError, match="library function"):
        fit_edge(x, x, library=["x", "gamma"])
    with pytest.raises(HnnkitValueError, match="at least 5 distinct"):
        fit_edge(x[:3], x[:3])
    with pytest.raises(HnnkitValueError, match="NaN or infinite"):
        fit_edge(x, x * np.nan)


# -- refit and rounding -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def spring_data():
    system = get_system("spring", k=2.0, m=0.5, radius_range=(math.sqrt(0.1), 1.0))
    return generate(system, 12, 15, (0.0, 3.0), 0.0, 0, test_fraction=0.5)


def test_refit_recovers_the_true_coefficients(spring_data):
    x, dx = spring_data.split("train")
    start = 0.93 * Q**2 + 1.06 * P**2 + 0.02 * Q + 0.5
    refit, loss = refit_coefficients(start, (Q, P), x, dx)
    assert loss < 1e-16
    coefs = sympy.expand(refit).as_coefficients_dict()
    assert float(coefs[Q**2]) == pytest.approx(1.0, abs=1e-7)
    assert float(coefs[P**2]) == pytest.approx(1.0, abs=1e-7)
    assert abs(float(coefs[Q])) < 1e-7
    assert float(coefs[sympy.Integer(1)]) == 0.5  # a constant has no gradient


def test_rounding_is_presentation_within_tolerance(spring_data):
    x, dx = spring_data.split("train")
    near = (
        sympy.Float(0.9999998) * Q**2
        + sympy.Float(1.0000001) * P**2
        + sympy.Float(2e-9) * Q
        + sympy.Float(0.123456)
    )
    nice = round_coefficients(near, (Q, P), x, dx)
    assert nice == Q**2 + P**2 + sympy.Float(0.1235)
    # Data of H = 1.234 q² + p²: rounding 1.234 to 1.23 would cost loss, so it stays.
    dx_other = torch.stack([dx[:, 0], 1.234 * dx[:, 1]], dim=-1)
    exact = sympy.Float(1.234) * Q**2 + P**2
    assert round_coefficients(exact, (Q, P), x, dx_other) == exact
    assert hnn_loss_fn(Q**2 + P**2, (Q, P), x, dx) < 1e-20


def test_drop_terms_removes_what_the_loss_does_not_need(spring_data):
    x, dx = spring_data.split("train")
    bloated = 1.02 * Q**2 + 0.98 * P**2 + 0.01 * Q**4 - 0.003 * P * Q + 0.7
    simple, loss, dropped = drop_terms(bloated, (Q, P), x, dx)
    assert {str(t.as_coeff_Mul()[1]) for t in dropped} == {"q**4", "p*q"}
    assert loss < 1e-16
    assert set(sympy.expand(simple).as_coefficients_dict()) == {Q**2, P**2, sympy.Integer(1)}


# -- end to end on the noise-free spring --------------------------------------------------------
@pytest.fixture(scope="module")
def spring_kan(spring_data):
    gen = torch.Generator().manual_seed(0)
    kan = KAN([2, 1], generator=gen, dtype=torch.float64)
    kan.update_grid(spring_data.split("train")[0], layers=[0])
    model = HNN(2, energy_net=kan)
    fit(model, spring_data, optimizer="lbfgs", steps=4, log_every=4)
    return model


@pytest.fixture(scope="module")
def spring_formula(spring_kan, spring_data):
    return extract_hamiltonian(spring_kan, spring_data)


def test_symbolic_recovery_on_the_noise_free_spring(spring_formula):
    coefs = spring_formula.coefficients()
    assert abs(coefs["q**2"] - 1) < 1e-3
    assert abs(coefs["p**2"] - 1) < 1e-3
    assert set(coefs) <= {"q**2", "p**2", "q", "p", "1"}
    assert abs(coefs.get("q", 0.0)) < 1e-3 and abs(coefs.get("p", 0.0)) < 1e-3
    assert [e.name for e in spring_formula.edges] == ["x^2", "x^2"]
    nice = spring_formula.nice
    assert sympy.expand(nice - Q**2 - P**2).free_symbols == set()  # q² + p² + c
    assert spring_formula.losses["refit_train"] < 1e-12
    assert spring_formula.losses["refit_test"] < 1e-12


def test_exports(spring_formula):
    assert spring_formula.latex().startswith("H = p^{2} + q^{2}")
    src = spring_formula.python_source(name="h")
    namespace: dict = {}
    exec(compile(src, "<formula>", "exec"), namespace)  # the exported source must run
    q, p = torch.tensor([0.3, -1.0]), torch.tensor([0.5, 0.2])
    fn = spring_formula.torch_function(nice=True)
    assert float((namespace["h"](q, p) - fn(torch.stack([q, p], -1))).abs().max()) < 1e-6
    d = spring_formula.to_dict()
    assert d["formula"] == str(spring_formula.nice) and "q**2" in d["coefficients"]


def test_formula_as_custom_system_rolls_out_like_the_spring(spring_formula):
    system = spring_formula.to_system()
    assert isinstance(system, Custom) and system.separable
    truth = get_system("spring")
    x0 = torch.tensor([1.0, 0.0], dtype=torch.float64)
    t = torch.linspace(0.0, 2 * math.pi, 64, dtype=torch.float64)
    with torch.no_grad():  # same solver and steps for both: only the Hamiltonians differ
        ours = odeint(system.vector_field, x0, t, method="rk4", substeps=2)
        ref = odeint(truth.vector_field, x0, t, method="rk4", substeps=2)
    assert float((ours - ref).abs().max()) < 1e-6
    assert float((ref - truth.exact_solution(t, x0)).abs().max()) < 1e-4  # and it is the spring


def test_extract_from_a_saved_run(spring_kan, spring_data, spring_formula, tmp_path):
    save_kan_run(tmp_path / "kan_run.pt", spring_kan, spring_data)
    again = extract_from_run(tmp_path)
    assert again.nice == spring_formula.nice
    with pytest.raises(DataFileError, match=r"kan_run\.pt"):
        extract_from_run(tmp_path / "missing")


def test_extract_uses_only_edges_that_reach_the_energy(spring_data):
    gen = torch.Generator().manual_seed(1)
    kan = KAN([2, 2, 2], generator=gen, dtype=torch.float64)
    with torch.no_grad():
        kan.act_fun[1].mask[:, 0] = 0  # output 0 pruned
        kan.act_fun[1].mask[1, 1] = 0  # hidden node 1 feeds nothing
    sym = extract_hamiltonian(
        kan, spring_data.split("train"), output_index=1, library=POLYNOMIAL_LIBRARY, refit=False
    )
    assert sorted((e.layer, e.i, e.j) for e in sym.edges) == [(0, 0, 0), (0, 1, 0), (1, 0, 1)]
    with pytest.raises(HnnkitValueError, match="no live edge"):
        extract_hamiltonian(kan, spring_data.split("train"), output_index=0)
    with pytest.raises(HnnkitValueError, match="output_index must be in"):
        extract_hamiltonian(kan, spring_data.split("train"), output_index=2)


def test_a_dissipative_kan_hnn_gives_back_the_energy_and_the_friction_exactly():
    from hnnkit.models import DissipativeHNN
    from hnnkit.symbolic import extract_dissipative

    # damped spring: dq/dt = 2p, dp/dt = -2q - 0.1 p, i.e. H = q^2 + p^2 and D = 0.05 p^2
    data = generate("damped-spring", n_trajectories=8, seed=0, noise_std=0.0)
    gen = torch.Generator().manual_seed(0)
    x, _ = data.split("train")

    def kan():
        net = KAN([2, 1, 1], 5, 3, grid_range=(-2.0, 2.0), generator=gen, dtype=torch.float64)
        net.update_grid(x.double(), layers=[0])
        return net

    model = DissipativeHNN(2, energy_net=kan(), dissipation_net=kan(), form="rayleigh")
    fit(model, data, optimizer="lbfgs", steps=25, weight_decay=0.0, quiet=True, log_every=25)
    found = extract_dissipative(model, data)
    q, p = found.hamiltonian.symbols
    h = found.hamiltonian.nice
    assert sympy.expand(h - h.as_independent(q, p, as_Add=True)[0]) == q**2 + p**2
    assert found.nice == sympy.Float(0.05) * p**2
    assert abs(float(found.expr.coeff(p, 2)) - 0.05) < 1e-4  # the raw refit, before rounding
    assert found.losses["train"] < 1e-20 and found.losses["test"] < 1e-20  # an exact field
    assert str(found).startswith("H = ") and "(rayleigh)" in str(found)


def test_extract_dissipative_explains_what_it_needs(gen):
    from hnnkit.models import DissipativeHNN
    from hnnkit.symbolic import extract_dissipative

    data = generate("damped-spring", n_trajectories=4, seed=0, noise_std=0.0)
    with pytest.raises(HnnkitValueError, match="energy_net and dissipation_net are both KANs"):
        extract_dissipative(DissipativeHNN(2, hidden=(8, 8), generator=gen), data)
    with pytest.raises(HnnkitValueError, match="energy_net and dissipation_net are both KANs"):
        extract_dissipative(HNN(2, energy_net=KAN([2, 1], generator=gen)), data)
