"""Tests for the pure-torch KAN (hnnkit.models.kan)."""

import sys

import numpy as np
import pytest
import torch

from hnnkit.errors import HnnkitValueError, UnknownNameError
from hnnkit.models import HNN
from hnnkit.models.kan import KAN, KANLayer, b_spline_basis, kan_regularizer, uniform_grid

SHAPES = [[2, 1], [2, 1, 1], [2, 1, 2], [2, 3, 1], [2, 4, 3, 1]]


def assert_close(actual, expected, atol=1e-12):
    """Max-abs comparison (``torch.testing`` pulls in heavy imports on first use)."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    err = float((actual - expected).detach().abs().max()) if actual.numel() else 0.0
    assert err <= atol, f"max abs error {err:.3e} > {atol:.1e}"


# -- B-spline basis -----------------------------------------------------------------------------
@pytest.mark.parametrize("k", [0, 1, 2, 3])
@pytest.mark.parametrize("grid", [1, 5])
def test_basis_is_a_partition_of_unity(k, grid):
    knots = uniform_grid(3, grid, k, (-1.0, 2.0), dtype=torch.float64)
    x = torch.linspace(-1.0, 2.0, 301, dtype=torch.float64)[:-1].unsqueeze(-1).expand(-1, 3)
    basis = b_spline_basis(x, knots, k)
    assert basis.shape == (300, 3, grid + k)
    assert_close(basis.sum(-1), torch.ones(300, 3, dtype=torch.float64))
    assert (basis >= 0).all()


def test_basis_partition_of_unity_on_a_nonuniform_grid(gen):
    inner = torch.sort(torch.rand(9, generator=gen, dtype=torch.float64)).values
    knots = torch.cat(
        [
            inner[:1] - torch.tensor([0.3, 0.2, 0.1], dtype=torch.float64),
            inner,
            inner[-1:] + 0.1 * torch.arange(1, 4),
        ]
    )
    x = torch.linspace(float(inner[0]), float(inner[-1]), 200, dtype=torch.float64)[:-1, None]
    basis = b_spline_basis(x, knots[None], 3)
    assert_close(basis.sum(-1), torch.ones(199, 1, dtype=torch.float64))


def test_basis_matches_scipy_bspline():
    from scipy.interpolate import BSpline

    knots = uniform_grid(1, 5, 3, (-1.0, 1.0), dtype=torch.float64)
    x = np.linspace(-1.0, 0.999, 57)
    ours = b_spline_basis(torch.from_numpy(x)[:, None], knots, 3)[:, 0, :].numpy()
    t = knots[0].numpy()
    for m in range(ours.shape[1]):
        c = np.zeros(ours.shape[1])
        c[m] = 1.0
        np.testing.assert_allclose(ours[:, m], BSpline(t, c, 3, extrapolate=False)(x), atol=1e-12)


def test_basis_is_zero_outside_the_extended_grid():
    knots = uniform_grid(1, 5, 3, (-1.0, 1.0), dtype=torch.float64)
    x = torch.tensor([[-3.0], [3.0]], dtype=torch.float64)
    assert torch.count_nonzero(b_spline_basis(x, knots, 3)) == 0


# -- forward ------------------------------------------------------------------------------------
def test_one_edge_forward_matches_hand_computation():
    # grid=1, k=1 on [0, 1]: knots -1, 0, 1, 2; on [0, 1) the two hat functions are 1 - x and x.
    kan = KAN([1, 1], grid=1, k=1, grid_range=(0.0, 1.0), dtype=torch.float64)
    layer = kan.act_fun[0]
    with torch.no_grad():
        layer.coef.copy_(torch.tensor([[[0.7, -1.3]]], dtype=torch.float64))
        layer.scale_base.fill_(0.4)
        layer.scale_sp.fill_(2.0)
    x = torch.tensor([[0.0], [0.25], [0.5], [0.9]], dtype=torch.float64)
    silu = x / (1 + torch.exp(-x))
    expected = 0.4 * silu + 2.0 * (0.7 * (1 - x) - 1.3 * x)
    assert_close(kan(x), expected, atol=1e-14)


@pytest.mark.parametrize("widths", SHAPES)
@pytest.mark.parametrize("batch", [(), (5,), (3, 4)])
def test_shapes(widths, batch, gen):
    kan = KAN(widths, generator=gen)
    x = torch.rand(*batch, widths[0], generator=gen)
    assert kan(x).shape == (*batch, widths[-1])
    hnn = HNN(2, energy_net=kan, output_index=widths[-1] - 1 if widths[-1] > 1 else None)
    assert hnn.hamiltonian(x).shape == batch
    assert hnn.vector_field(0.0, x).shape == (*batch, 2)


def test_activations_and_edge_function_agree(gen):
    kan = KAN([2, 3, 1], generator=gen, dtype=torch.float64)
    x = torch.rand(50, 2, generator=gen, dtype=torch.float64) * 2 - 1
    acts = kan.activations(x)
    assert [a.edges.shape for a in acts] == [(50, 2, 3), (50, 3, 1)]
    assert_close(acts[-1].edges.sum(-2), kan(x))
    z = acts[1].inputs[:, 2]
    assert_close(kan.edge_function(1, 2, 0, z), acts[1].edges[:, 2, 0])


def test_state_dict_uses_pykan_layout(gen):
    kan = KAN([2, 1, 2], grid=5, k=3, generator=gen)
    shapes = {k: tuple(v.shape) for k, v in kan.state_dict().items()}
    assert shapes["act_fun.0.grid"] == (2, 12)
    assert shapes["act_fun.0.coef"] == (2, 1, 8)
    assert shapes["act_fun.1.coef"] == (1, 2, 8)
    for name in ("scale_base", "scale_sp", "mask"):
        assert shapes[f"act_fun.1.{name}"] == (1, 2)


# -- HNN double backward ------------------------------------------------------------------------
def test_gradcheck_hnn_kan_double_backward(gen):
    kan = KAN([2, 2, 2], generator=gen, dtype=torch.float64)
    hnn = HNN(2, energy_net=kan, output_index=1)
    x = (torch.rand(6, 2, generator=gen, dtype=torch.float64) * 1.6 - 0.8).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: hnn.vector_field(None, z), (x,))
    assert torch.autograd.gradgradcheck(hnn.hamiltonian, (x,))
    # The training gradient: d(vector field)/d(spline coefficients), through create_graph.
    names = dict(kan.named_parameters())

    def field_of(coef):
        params = {**names, "act_fun.0.coef": coef}
        fn = lambda z: torch.func.functional_call(kan, params, (z,))[..., 1]  # noqa: E731
        with torch.enable_grad():
            xi = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(fn(xi).sum(), xi, create_graph=True)
        return g

    coef = names["act_fun.0.coef"].detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(field_of, (coef,))


# -- grid, regularisation, pruning --------------------------------------------------------------
def test_update_grid_keeps_the_function_and_moves_the_grid(gen):
    kan = KAN([2, 1], generator=gen, dtype=torch.float64)
    x = torch.rand(300, 2, generator=gen, dtype=torch.float64) * 0.8 - 0.5
    before = kan(x)
    kan.update_grid(x, margin=0.0)
    grid = kan.act_fun[0].grid
    assert_close(grid[:, 3], x.min(0).values)
    assert_close(grid[:, -4], x.max(0).values)
    assert_close(kan(x), before, atol=2e-3)


def test_update_grid_selected_layers_only(gen):
    kan = KAN([2, 1, 1], grid_range=(-2, 2), generator=gen, dtype=torch.float64)
    hidden_grid = kan.act_fun[1].grid.clone()
    kan.update_grid(torch.rand(100, 2, generator=gen, dtype=torch.float64), layers=[0])
    assert_close(kan.act_fun[1].grid, hidden_grid)
    with pytest.raises(HnnkitValueError, match="layers must be indices"):
        kan.update_grid(torch.rand(10, 2, dtype=torch.float64), layers=[2])


def test_refine_keeps_the_function_on_a_finer_grid(gen):
    kan = KAN([2, 3, 1], generator=gen, dtype=torch.float64)
    x = torch.rand(200, 2, generator=gen, dtype=torch.float64) * 1.8 - 0.9
    before = kan(x)
    kan.refine(10)  # an integer multiple: the old splines are exactly representable
    assert kan.act_fun[0].grid.shape == (2, 17) and kan.act_fun[0].coef.shape == (2, 3, 13)
    assert dict(kan.named_parameters())["act_fun.0.coef"] is kan.act_fun[0].coef
    assert_close(kan(x), before, atol=1e-12)
    with pytest.raises(HnnkitValueError, match="grid must be an integer >= 1"):
        kan.refine(0)


def test_regularization_modes(gen):
    kan = KAN([2, 1, 2], generator=gen, dtype=torch.float64)
    x = torch.rand(40, 2, generator=gen, dtype=torch.float64)
    r_act = kan.regularization(x, eps=0.0)
    expected = sum(a.edges.abs().mean(0).sum() for a in kan.activations(x))
    assert_close(r_act, expected)
    assert kan.regularization(mode="parameter") > 0
    assert kan.regularization(x, entropy=2.0) > kan.regularization(x)
    hnn = HNN(2, energy_net=kan, output_index=1)
    reg = kan_regularizer(x, 5e-5)(hnn)
    reg.backward()
    assert kan.act_fun[1].coef.grad is not None
    with pytest.raises(HnnkitValueError, match="needs samples x"):
        kan.regularization()
    with pytest.raises(UnknownNameError, match="activation, parameter"):
        kan.regularization(x, mode="weights")


def test_pruning_removes_a_zeroed_edge(gen):
    kan = KAN([2, 1, 2], generator=gen, dtype=torch.float64)
    x = torch.rand(64, 2, generator=gen, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        kan.act_fun[1].coef[0, 0].zero_()
        kan.act_fun[1].scale_base[0, 0] = 0.0
    before = kan(x)
    result = kan.prune(x)
    assert result.edges == [(1, 0, 0)]
    assert result.nodes == [(2, 0)]
    assert kan.act_fun[1].mask.tolist() == [[0.0, 1.0]]
    after = kan(x)
    assert torch.equal(after[:, 0], torch.zeros(64, dtype=torch.float64))
    assert_close(after[:, 1], before[:, 1])
    assert kan.active_nodes() == [[True, True], [True], [False, True]]
    assert list(kan.edges()) == [(0, 0, 0), (0, 1, 0), (1, 0, 1)]


def test_pruning_a_hidden_node_without_inputs_removes_its_outputs(gen):
    kan = KAN([2, 2, 1], generator=gen, dtype=torch.float64)
    with torch.no_grad():
        kan.act_fun[0].mask[:, 1] = 0  # hidden node 1 has no live input
    result = kan.prune(torch.rand(32, 2, generator=gen, dtype=torch.float64), threshold=0.0)
    assert result.edges == [(1, 1, 0)]
    assert result.nodes == [(1, 1)]


# -- arguments, side effects, export ------------------------------------------------------------
def test_no_global_rng_use_and_no_argument_mutation():
    widths = [2, 1, 2]
    state = torch.random.get_rng_state()
    a = KAN(widths, generator=torch.Generator().manual_seed(3))
    b = KAN(widths, generator=torch.Generator().manual_seed(3))
    assert torch.equal(torch.random.get_rng_state(), state)
    assert widths == [2, 1, 2]
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"widths": [2]}, "at least two positive integers"),
        ({"widths": [2, 0, 1]}, "at least two positive integers"),
        ({"grid": 0}, "grid must be an integer >= 1"),
        ({"k": -1}, "k must be an integer >= 0"),
        ({"grid_range": (1.0, 1.0)}, "max > min"),
    ],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(HnnkitValueError, match=match):
        KAN(**kwargs)


def test_unknown_base_activation_lists_the_valid_ones():
    with pytest.raises(UnknownNameError, match="identity, silu, tanh, zero"):
        KANLayer(2, 1, base_activation="relu6")


def test_wrong_input_size_is_explained(gen):
    with pytest.raises(HnnkitValueError, match=r"expects inputs \(\.\.\., 2\)"):
        KAN([2, 1], generator=gen)(torch.zeros(4, 3))


def test_to_pykan_without_pykan_names_the_extra(monkeypatch, gen):
    monkeypatch.setitem(sys.modules, "kan", None)  # makes `import kan` fail
    with pytest.raises(ImportError, match=r"pip install hnnkit\[pykan\]"):
        KAN([2, 1], generator=gen).to_pykan()


def test_to_pykan_round_trip(gen, tmp_path, monkeypatch):
    pytest.importorskip("kan")
    monkeypatch.chdir(tmp_path)  # pykan may write ./model; keep it out of the repository
    kan = KAN([2, 3, 2], generator=gen, dtype=torch.float64)
    x = torch.rand(40, 2, generator=gen, dtype=torch.float64) * 2 - 1
    kan.update_grid(x, layers=[0])
    with torch.no_grad():
        kan.act_fun[1].mask[0, 1] = 0
    state = torch.random.get_rng_state()
    theirs = kan.to_pykan()
    assert torch.equal(torch.random.get_rng_state(), state)
    assert_close(theirs(x), kan(x), atol=1e-10)
