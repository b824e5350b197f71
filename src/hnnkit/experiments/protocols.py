"""The original protocol of each paper task, as data (:class:`~hnnkit.evaluate.OriginalProtocol`).

Each entry records what the task's analysis notebook of greydanus/hamiltonian-nn does: how
it draws start states, the span and tolerances of its rollouts, the "energy" it scores with,
the spring notebook's clock stretch, and how it groups the errors for the ±. Tasks the
paper does not have follow ``OriginalProtocol()`` (the pendulum recipe with the system's own
sampler and true H). Measured data are marked by their having no system, not by a name.
Each task of :mod:`hnnkit.experiments.tasks` carries its entry as ``Task.original``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..data.real_pendulum import ENERGY_K
from ..evaluate import OriginalProtocol


def quadratic_energy(x: Tensor) -> Tensor:
    """:math:`q^2 + p^2`, the "energy" the spring and pendulum notebooks score with."""
    return x.pow(2).sum(-1)


def real_pendulum_energy(x: Tensor) -> Tensor:
    r""":math:`2.4(1 - \cos q) + p^2`, the energy of the real pendulum's data (``analyze-real.ipynb``)."""
    return ENERGY_K * (1 - torch.cos(x[..., 0])) + x[..., 1].pow(2)


#: ``analyze-*.ipynb`` of the paper's tasks.
ORIGINAL: dict[str, OriginalProtocol] = {
    # cells 17-21: the in-place rescale of time by 1 + 0.9·noise_std, on mismatched clocks
    "spring": OriginalProtocol(starts="notebook", clock_stretch=0.9, energy=quadratic_energy),
    # the same sampler, no rescale, and q² + p² (not the pendulum's H)
    "pendulum": OriginalProtocol(starts="notebook", energy=quadratic_energy),
    # one rollout from the first test point over the test times, ± from 5 contiguous blocks
    "real-pendulum": OriginalProtocol(
        rtol=1e-3, atol=1e-6, energy=real_pendulum_energy, spread="time-blocks"
    ),
    "two-body": OriginalProtocol(starts="per-orbit", span=25.0, n_points=500, rtol=1e-9),
    "three-body": OriginalProtocol(starts="per-orbit", span=3.0, n_points=500, rtol=1e-9),
}

#: Energies of measured data sets, for the corrected protocol and the recording rollouts
#: (a task carries its own as ``Task.energy``; ``hnnkit evaluate`` reads this by data set).
MEASURED_ENERGY = {"real-pendulum": real_pendulum_energy}
