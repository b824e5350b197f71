import pytest
import torch
from torch import nn

from hnnkit.data import generate
from hnnkit.models import HNN, MLP, Baseline
from hnnkit.phase_space import symplectic_gradient
from hnnkit.systems import Spring
from hnnkit.train import derivative_loss


@pytest.mark.parametrize("activation", ["tanh", "relu", "softplus", "silu"])
@pytest.mark.parametrize("output_index", [0, 1])
def test_mlp_closed_form_input_gradient_matches_autograd(activation, output_index, gen):
    net = MLP(4, 2, (16, 8), activation, generator=gen).double()
    x = torch.randn(7, 4, dtype=torch.float64, generator=gen)
    g = net.input_gradient(x, output_index)
    ref = torch.func.vmap(torch.func.grad(lambda v: net(v)[output_index]))(x)
    assert torch.allclose(g, ref, atol=1e-12)


def test_hnn_field_equals_J_grad_H_by_finite_differences(gen):
    m = HNN(4, hidden=(32, 32), generator=gen).double()
    x = torch.randn(5, 4, dtype=torch.float64, generator=gen)
    f = m.vector_field(0, x)
    eps = 1e-6
    grad = torch.zeros_like(x)
    for i in range(4):
        e = torch.zeros(4, dtype=torch.float64)
        e[i] = eps
        grad[:, i] = (m.hamiltonian(x + e) - m.hamiltonian(x - e)) / (2 * eps)
    expected = torch.cat([grad[:, 2:], -grad[:, :2]], -1)
    assert torch.allclose(f, expected, atol=1e-8)


def test_hnn_double_backward_gradcheck(gen):
    m = HNN(2, hidden=(6,), generator=gen).double()
    x = torch.randn(3, 2, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: m.vector_field(0, v), (x,))
    # the parameter gradient of the HNN loss (what training uses) is also correct
    w = m.energy_net.layers[0].weight
    assert torch.autograd.gradcheck(
        lambda W: (
            torch.func.functional_call(m, {"energy_net.layers.0.weight": W}, (x.detach(),)) ** 2
        ).sum(),
        (w.detach().clone().requires_grad_(True),),
    )


class TrueEnergy(nn.Module):
    def __init__(self, system):
        super().__init__()
        self.system = system
        self.dummy = nn.Parameter(torch.zeros((), dtype=torch.float64))

    def forward(self, x):
        return self.system.energy(x) + 0 * self.dummy


def test_hnn_with_the_true_hamiltonian_has_zero_loss_on_clean_data():
    d = generate("pendulum", n_trajectories=6, noise_std=0.0)
    from hnnkit.systems import Pendulum

    m = HNN(2, energy_net=TrueEnergy(Pendulum()))
    x, dx = d.split("train")
    assert derivative_loss(m, x, dx).item() < 1e-24
    # and the generic autograd path agrees with the closed-form one used by MLPs
    assert torch.allclose(m.vector_field(0, x), symplectic_gradient(Pendulum().energy, x))


@pytest.mark.parametrize("model_cls", [HNN, Baseline])
@pytest.mark.parametrize("shape", [(2,), (5, 2), (3, 4, 2)])
def test_models_map_states_to_derivatives_of_the_same_shape(model_cls, shape, gen):
    m = model_cls(2, generator=gen)
    x = torch.randn(*shape, generator=gen)
    assert m.vector_field(0.0, x).shape == x.shape
    if model_cls is HNN:
        assert m.hamiltonian(x).shape == shape[:-1]


def test_hnn_rejects_bad_configuration():
    with pytest.raises(ValueError, match="even"):
        HNN(3)
    m = HNN(2, energy_net=nn.Linear(2, 3))
    with pytest.raises(ValueError, match="output_index"):
        m.hamiltonian(torch.zeros(4, 2))
    with pytest.raises(ValueError, match="valid activations"):
        MLP(2, 1, activation="gelu2")


def test_spring_hnn_sanity_field_of_known_quadratic():
    # An HNN whose energy is exactly H = q^2 + p^2 reproduces the spring's field.
    lin = nn.Identity()

    class Quad(nn.Module):
        def forward(self, x):
            return lin(x).pow(2).sum(-1)

    m = HNN(2, energy_net=Quad())
    x = torch.randn(8, 2)
    assert torch.allclose(m.vector_field(0, x), Spring().vector_field(0, x))
