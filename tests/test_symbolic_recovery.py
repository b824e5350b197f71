"""Symbolic recovery you can trust: n degrees of freedom with cross terms, term selection by
held-out evidence, invariance to threads and 1e-12 perturbations, noisy data within 2 %, and
clear failures. Formulas are compared term by term with tolerances, never as strings."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from hnnkit.data import Dataset, generate
from hnnkit.errors import HnnkitValueError
from hnnkit.experiments.kan_recover import default_widths, recover_hamiltonian
from hnnkit.models import HNN, MLP, make_kan_hnn
from hnnkit.symbolic import (
    POLYNOMIAL_LIBRARY,
    QUADRATIC_LIBRARY,
    extract_hamiltonian,
    hamiltonian_terms,
    phase_space_symbols,
    smooth_states,
)
from hnnkit.systems import Custom, get_system
from hnnkit.train import fit

COUPLED = "(p1**2 + p2**2)/2 + (q1**2 + q2**2)/2 + (q1 - q2)**2/2"
DUFFING = "p**2/2 + q**2/2 + q**4/4"


def found_terms(formula) -> dict:
    return {t.expr: t.coefficient for t in formula.terms}


def assert_terms(formula, truth: str, rtol: float) -> None:
    """Exactly the true terms (the constant aside), each coefficient within ``rtol``."""
    expected = hamiltonian_terms(truth, formula.symbols)
    got = found_terms(formula)
    assert set(got) == set(expected), (
        f"terms {sorted(map(str, got))} != {sorted(map(str, expected))}"
    )
    for term, value in expected.items():
        assert got[term] == pytest.approx(value, rel=rtol), (term, got[term], value)


def trained(system, *, n: int, m: int, noise: float, widths, steps: int, seed: int = 0):
    data = generate(system, n, m, None, noise, seed, test_fraction=0.25)
    model = make_kan_hnn(
        widths, generator=torch.Generator().manual_seed(seed), x=data.split("train")[0]
    )
    fit(model, data, optimizer="lbfgs", steps=steps)
    return model, data


@pytest.fixture(scope="module")
def coupled():
    """Coupled oscillators, H with the cross term (q1 - q2)²/2, noise-free, KAN [4, 2, 1]; and
    its formula extracted on one thread."""
    model, data = trained(Custom(COUPLED, dof=2), n=12, m=20, noise=0.0, widths=(4, 2, 1), steps=6)
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        found = extract_hamiltonian(model, data, library=POLYNOMIAL_LIBRARY)
    finally:
        torch.set_num_threads(before)
    return model, data, found


@pytest.fixture(scope="module")
def noisy_spring():
    """The paper's spring (H = p² + q²) with observation noise σ = 0.1, KAN [2, 1, 1]."""
    spring = get_system("spring", radius_range=(math.sqrt(0.1), 1.0))
    return trained(spring, n=40, m=30, noise=0.1, widths=(2, 1, 1), steps=8)


def test_hamiltonian_terms_reads_a_formula_term_by_term():
    q1, q2, p1, p2 = phase_space_symbols(2)
    terms = hamiltonian_terms(COUPLED + " + 7", phase_space_symbols(2))
    assert terms == {
        p1**2: 0.5,
        p2**2: 0.5,
        q1**2: 1.0,
        q2**2: 1.0,
        q1 * q2: -1.0,
    }


def test_default_widths_compose_cross_terms_for_n_dof():
    assert default_widths(1) == (2, 1, 1)
    assert default_widths(3) == (6, 3, 1)
    with pytest.raises(HnnkitValueError, match="dof must be"):
        default_widths(0)


def test_a_two_dof_kan_reads_back_the_cross_term_exactly(coupled):
    _, _, found = coupled
    assert_terms(found, COUPLED, 1e-9)
    assert not found.failed
    assert all(t.confidence > 1 for t in found.terms)
    # the formula is exact; the briefly trained network is not
    assert found.losses["formula_heldout"] < 1e-20 < found.losses["network_heldout"]


def test_the_extracted_n_dof_formula_is_the_same_on_one_and_two_threads(coupled):
    model, data, found = coupled  # found on one thread
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        two = found_terms(extract_hamiltonian(model, data, library=POLYNOMIAL_LIBRARY))
    finally:
        torch.set_num_threads(before)
    one = found_terms(found)
    assert set(one) == set(two)
    for term, value in one.items():
        assert two[term] == pytest.approx(value, rel=1e-9, abs=1e-12)


def test_the_extracted_n_dof_formula_survives_a_1e_12_perturbation_of_the_data(coupled):
    model, data, found = coupled
    gen = torch.Generator().manual_seed(1)
    x = data.x * (1 + 1e-12 * torch.randn(data.x.shape, generator=gen, dtype=data.x.dtype))
    dx = data.dx * (1 + 1e-12 * torch.randn(data.dx.shape, generator=gen, dtype=data.dx.dtype))
    moved = Dataset(x=x, dx=dx, t=data.t, test_mask=data.test_mask, config=data.config)
    a = found_terms(found)
    b = found_terms(extract_hamiltonian(model, moved, library=POLYNOMIAL_LIBRARY))
    assert set(a) == set(b)
    for term, value in a.items():
        assert b[term] == pytest.approx(value, rel=1e-6)


def test_noisy_spring_coefficients_within_2_percent_after_smoothing(noisy_spring):
    model, data = noisy_spring
    smoothed = extract_hamiltonian(model, data)
    assert smoothed.checks["denoise"]["method"] == "integrate+offsets"
    assert smoothed.checks["denoise"]["noise_rms"] == pytest.approx(0.1, rel=0.15)
    assert_terms(smoothed, "p**2 + q**2", 0.02)
    # without smoothing the errors in variables attenuate the coefficients by more than 2 %
    raw = extract_hamiltonian(model, data, denoise="none")
    worst = max(abs(v - 1) for v in found_terms(raw).values())
    assert worst > 0.02


def test_the_one_dof_formula_is_thread_and_perturbation_invariant(noisy_spring):
    model, data = noisy_spring
    before = torch.get_num_threads()
    results = []
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results.append(found_terms(extract_hamiltonian(model, data)))
    finally:
        torch.set_num_threads(before)
    gen = torch.Generator().manual_seed(2)
    x = data.x * (1 + 1e-12 * torch.randn(data.x.shape, generator=gen, dtype=data.x.dtype))
    moved = Dataset(x=x, dx=data.dx, t=data.t, test_mask=data.test_mask, config=data.config)
    results.append(found_terms(extract_hamiltonian(model, moved)))
    for other in results[1:]:
        assert set(other) == set(results[0])
        for term, value in results[0].items():
            assert other[term] == pytest.approx(value, rel=1e-8)


def test_noisy_duffing_coefficients_within_2_percent():
    data = generate(Custom(DUFFING, dof=1), 24, 30, None, 0.05, 0, test_fraction=0.25)
    rec = recover_hamiltonian(data, steps=6)
    assert rec.formula.checks["denoise"]["method"] == "integrate+offsets"
    assert_terms(rec.formula, DUFFING, 0.02)
    # the offsets refined with the coefficients leave far less than 2 %
    assert_terms(rec.formula, DUFFING, 1e-3)


def test_smooth_states_recovers_clean_trajectories_from_noisy_ones():
    data = generate(get_system("spring"), 6, 30, None, 0.1, 3, test_fraction=0.5)
    ids = data.trajectory_ids.reshape(-1)
    x, dx = (v.reshape(-1, v.shape[-1]) for v in (data.x, data.dx))
    smooth, info = smooth_states(x, dx, data.t.reshape(-1), ids)
    clean = data.x_clean.reshape(-1, 2)
    before = float((x - clean).pow(2).mean().sqrt())
    after = float((smooth - clean).pow(2).mean().sqrt())
    assert info.method == "integrate"
    assert after < before / 3  # one offset per trajectory of 30 points: about σ/√30
    # noise-free states are left alone under "auto"
    _, auto = smooth_states(clean, dx, data.t.reshape(-1), ids, method="auto")
    assert auto.method == "none"
    with pytest.raises(Exception, match="denoise method"):
        smooth_states(x, dx, data.t.reshape(-1), ids, method="spline")


def test_extraction_from_a_model_that_is_not_a_kan_names_the_models_that_can_be():
    model = HNN(2, energy_net=MLP(2, 1, hidden=(8,), generator=torch.Generator().manual_seed(0)))
    data = generate(get_system("spring"), 4, 10, None, 0.0, 0)
    with pytest.raises(HnnkitValueError, match=r"not a KAN.*--model kan.*--dissipative"):
        extract_hamiltonian(model, data)


def test_a_system_with_more_degrees_of_freedom_than_the_kan_input_is_refused():
    model = make_kan_hnn((2, 1, 1), generator=torch.Generator().manual_seed(0))
    data = generate(Custom(COUPLED, dof=2), 4, 10, None, 0.0, 0)
    with pytest.raises(
        HnnkitValueError, match=r"2 degrees of freedom.*takes 2 inputs.*--kan-widths 4"
    ):
        extract_hamiltonian(model, data)


def test_a_library_that_cannot_express_the_data_reports_the_best_fit_and_fails():
    # a wide pendulum, H = p² + 3(1 - cos q): quadratic edges and degree 2 cannot say cos q
    pendulum = get_system("pendulum")
    model, data = trained(pendulum, n=12, m=20, noise=0.0, widths=(2, 1, 1), steps=8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = extract_hamiltonian(model, data, library=QUADRATIC_LIBRARY, max_degree=2)
    assert found.failed
    assert found.checks["versus_network"]["worse"]
    assert found.losses["formula_heldout"] > found.losses["network_heldout"]
    assert any("does not express the data" in str(w.message) for w in caught)
    assert found.terms  # the closest formula is still there
    assert found.to_dict()["failed"] is True
