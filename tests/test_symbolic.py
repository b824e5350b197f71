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
    kan_run_entry,
    phase_space_symbols,
    refit_coefficients,
    round_coefficients,
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


@pytest.mark.parametrize("eps, kept", [(1e-2, True), (1e-5, False)])
def test_drop_terms_keeps_a_term_only_on_held_out_evidence(spring_data, eps, kept):
    from hnnkit.phase_space import symplectic
    from hnnkit.symbolic import SELECT_ATOL
    from hnnkit.symbolic._formula import expr_gradient as _expr_gradient

    # noise-free data of H = q² + p² + eps·q³: removing q³ raises the loss by about
    # (3·eps)²·mean(q⁴), 3e-5 of the target variance for eps = 1e-2 and 3e-11 for 1e-5
    truth = Q**2 + P**2 + eps * Q**3
    (x, _), (xt, _) = spring_data.split("train"), spring_data.split("test")
    dx, dxt = (symplectic(_expr_gradient(truth, (Q, P), s.double())) for s in (x, xt))
    start = sympy.Float(1.1) * Q**2 + sympy.Float(0.9) * P**2 + sympy.Float(2 * eps) * Q**3
    start, _ = refit_coefficients(start, (Q, P), x, dx)
    simple, loss, dropped = drop_terms(start, (Q, P), x, dx, x_val=xt, dx_val=dxt)
    terms = _terms(simple)
    assert (Q**3 in terms) is kept and len(dropped) == (0 if kept else 1)
    assert abs(terms[Q**2] - 1) < 1e-3 and abs(terms[P**2] - 1) < 1e-9
    if kept:
        assert abs(terms[Q**3] - eps) < 1e-9 * eps and loss < 1e-25
    else:
        assert 0 < loss <= SELECT_ATOL * float(dxt.var(0).mean())  # the held-out loss


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


def test_extract_from_an_older_runs_kan_run_pt(spring_kan, spring_data, spring_formula, tmp_path):
    # the standalone file older runs wrote: the run entry with the weights
    torch.save(kan_run_entry(spring_kan, spring_data), tmp_path / "kan_run.pt")
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


# -- the damped spring: H and D together ------------------------------------------------------
def _terms(expr: sympy.Expr) -> dict[sympy.Expr, float]:
    """Monomial (or other term) → coefficient of the expanded formula, the constant left out."""
    coefs = sympy.expand(expr).as_coefficients_dict()
    return {term: float(c) for term, c in coefs.items() if term != 1}


def _assert_exact_damped_spring(found, tol: float) -> None:
    """H = q² + p² + c and D = 0.05 p² (= γp²/2, γ = 0.1), raw coefficients within ``tol``."""
    h, d = _terms(found.hamiltonian.expr), _terms(found.expr)
    assert set(h) == {Q**2, P**2} and set(d) == {P**2}, (found.hamiltonian.expr, found.expr)
    assert abs(h[Q**2] - 1) < tol and abs(h[P**2] - 1) < tol and abs(d[P**2] - 0.05) < tol
    assert _terms(found.nice) == {P**2: 0.05}
    assert _terms(found.hamiltonian.nice) == {Q**2: 1.0, P**2: 1.0}


@pytest.fixture(scope="module")
def damped_data():
    # damped spring: dq/dt = 2p, dp/dt = -2q - 0.1 p, i.e. H = q^2 + p^2 and D = 0.05 p^2
    return generate("damped-spring", n_trajectories=8, seed=0, noise_std=0.0)


@pytest.fixture(scope="module")
def damped(damped_data):
    """A DissipativeHNN with two KANs [2, 1, 1], 25 L-BFGS steps on 8 noise-free trajectories.

    The command-line test (test_kan_cli.py) checks the same pair from a run of
    `hnnkit train`, across thread counts and under perturbations of the network and data.
    """
    from hnnkit.models import DissipativeHNN

    data = damped_data
    gen = torch.Generator().manual_seed(0)
    x, _ = data.split("train")

    def kan():
        net = KAN([2, 1, 1], 5, 3, grid_range=(-2.0, 2.0), generator=gen, dtype=torch.float64)
        net.update_grid(x.double(), layers=[0])
        return net

    model = DissipativeHNN(2, energy_net=kan(), dissipation_net=kan(), form="rayleigh")
    fit(model, data, optimizer="lbfgs", steps=25, weight_decay=0.0, quiet=True, log_every=25)
    return model, data


@pytest.fixture(scope="module")
def damped_found(damped):
    from hnnkit.symbolic import extract_dissipative

    return extract_dissipative(*damped)


def test_a_dissipative_kan_hnn_gives_back_the_energy_and_the_friction_exactly(damped_found):
    found = damped_found
    _assert_exact_damped_spring(found, 1e-9)
    assert found.losses["train"] < 1e-20 and found.losses["test"] < 1e-20  # an exact field
    assert found.checks["d_nonnegative"] and found.checks["d_min_on_data"] >= 0
    assert found.checks["d_pruned"] == [] and found.checks["h_bounded_below"]
    assert str(found).startswith("H = ") and "(rayleigh)" in str(found)


def _damped_spring_targets(x: torch.Tensor, d: sympy.Expr) -> torch.Tensor:
    """Derivatives of H = q² + p² with the rayleigh dissipation ``d``: J∇H + (0, -∂D/∂p)."""
    from hnnkit.phase_space import symplectic
    from hnnkit.symbolic._dissipative import dissipation_field as _dissipation_field
    from hnnkit.symbolic._formula import expr_gradient as _expr_gradient

    rayleigh = _dissipation_field("rayleigh")
    x = x.double()
    return symplectic(_expr_gradient(Q**2 + P**2, (Q, P), x)) + rayleigh(
        _expr_gradient(d, (Q, P), x)
    )


def test_a_dissipation_that_is_negative_on_the_data_loses_its_odd_terms(damped_data):
    from hnnkit.phase_space import symplectic
    from hnnkit.symbolic._checks import make_dissipative as _make_dissipative
    from hnnkit.symbolic._checks import nonnegative_on as _nonnegative_on
    from hnnkit.symbolic._dissipative import dissipation_field as _dissipation_field

    x = damped_data.split("train")[0].double()
    assert float(x[:, 0].min()) < -0.5  # so that D below is negative on the data
    d_true = sympy.Float(0.05) * P**2 + sympy.Float(0.15) * P**2 * Q  # < 0 where q < -1/3
    assert not _nonnegative_on(d_true, (Q, P), x)[0]
    dx = _damped_spring_targets(x, d_true)
    parts = [(sympy.Float(1.0) * Q**2 + sympy.Float(1.0) * P**2, symplectic)]
    parts.append((d_true, _dissipation_field("rayleigh")))
    fixed, checks = _make_dissipative(parts, (Q, P), x, dx, x, max_iter=200)
    assert checks["d_nonnegative"] and checks["d_min_on_data"] >= 0
    assert [
        sympy.sympify(t, locals={"q": Q, "p": P}).as_coeff_Mul()[1] for t in checks["d_pruned"]
    ] == [P**2 * Q]
    d = _terms(fixed[1][0])
    assert set(d) == {P**2} and d[P**2] > 0
    # a friction that feeds energy in cannot be made a dissipation: it is kept and reported
    anti = sympy.Float(-0.05) * P**2
    parts = [parts[0], (anti, _dissipation_field("rayleigh"))]
    with pytest.warns(UserWarning, match="not a dissipation"):
        kept, checks = _make_dissipative(
            parts, (Q, P), x, _damped_spring_targets(x, anti), x, max_iter=200
        )
    assert not checks["d_nonnegative"] and checks["d_min_on_data"] < 0
    assert abs(_terms(kept[1][0])[P**2] + 0.05) < 1e-12


def test_energy_check_finds_an_energy_that_falls_off_the_data(spring_data):
    from hnnkit.symbolic import energy_check

    x = spring_data.split("train")[0]
    good = energy_check(Q**2 + P**2, (Q, P), x)
    assert good["h_bounded_below"] and good["h_min_on_box"] < good["h_min_on_data"]
    assert good["h_min_on_data"] == pytest.approx(float(x.pow(2).sum(-1).min()))
    assert not energy_check(P**2 - Q**2, (Q, P), x)["h_bounded_below"]  # a saddle


def test_extract_dissipative_explains_what_it_needs(gen):
    from hnnkit.models import DissipativeHNN
    from hnnkit.symbolic import extract_dissipative

    data = generate("damped-spring", n_trajectories=4, seed=0, noise_std=0.0)
    with pytest.raises(HnnkitValueError, match="energy_net and dissipation_net are both KANs"):
        extract_dissipative(DissipativeHNN(2, hidden=(8, 8), generator=gen), data)
    with pytest.raises(HnnkitValueError, match="energy_net and dissipation_net are both KANs"):
        extract_dissipative(HNN(2, energy_net=KAN([2, 1], generator=gen)), data)
