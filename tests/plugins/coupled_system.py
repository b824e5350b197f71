"""A system in one file: the README's two coupled masses, registered as ``coupled``.

``hnnkit --plugin tests/plugins/coupled_system.py train --system coupled --out RUN`` trains on
it; the run records the plugin, so ``hnnkit evaluate RUN`` imports it again by itself.
"""

import torch

from hnnkit.systems import HamiltonianSystem, register_system


class Coupled(HamiltonianSystem):
    r"""Two unit masses coupled by springs: $H = (p_1^2 + p_2^2)/2 + (q_1^2 + q_2^2 + (q_1 - q_2)^2)/2$."""

    separable = True

    def __init__(self):
        super().__init__(dof=2)

    def hamiltonian(self, q, p):
        return 0.5 * p.pow(2).sum(-1) + 0.5 * (q.pow(2).sum(-1) + (q[..., 0] - q[..., 1]) ** 2)

    def sample_initial(self, n, *, generator):
        return 2 * torch.rand(n, 4, generator=generator, dtype=torch.float64) - 1


register_system("coupled", Coupled)
