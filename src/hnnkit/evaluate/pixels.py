"""The pixel pendulum's energy metric (the protocol of the original ``analyze-pixels.ipynb``).

See :mod:`hnnkit.experiments.pixel_pendulum` for the protocol and its deviations from the
original: encode the first stacked pair, integrate the latent model, decode, re-encode, map
the code affinely to ``(q, p)`` and score the energy :math:`\tfrac{15}{8}(1-\\cos q) + p^2`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..data.pixels import PixelSplit, pixel_pendulum_energy, stack_frames
from ..metrics import mean_sem
from ..models.autoencoder import PixelHNN


def per_sample_loss(model: PixelHNN, split: PixelSplit, *, batch: int = 2048) -> Tensor:
    """The joint loss of every sample of ``split`` (no gradient), ``(N,)`` float64."""
    dev = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, len(split), batch):
            x = split.x[i : i + batch].to(dev)
            xn = split.x_next[i : i + batch].to(dev)
            out.append(model.losses(x, xn)["total"].double().cpu())
    return torch.cat(out)


def fit_code_to_coords(model: PixelHNN, split: PixelSplit) -> tuple[Tensor, Tensor]:
    """Least-squares affine map from the model's code to the true ``(q, p)``: ``coords ≈ z @ W + b``.

    Returns:
        ``(W, b)`` float64, shapes ``(latent_dim, 2)`` and ``(2,)``.
    """
    dev = next(model.parameters()).device
    with torch.no_grad():
        z = torch.cat(
            [
                model.encode(split.x[i : i + 4096].to(dev)).double().cpu()
                for i in range(0, len(split), 4096)
            ]
        )
    a = torch.cat([z, torch.ones(z.shape[0], 1, dtype=torch.float64)], dim=1)
    sol = torch.linalg.lstsq(a, split.coords.double()).solution
    return sol[:-1], sol[-1]


def energy_metric(
    model: PixelHNN,
    code_map: tuple[Tensor, Tensor],
    frames: Tensor,
    coords: Tensor,
    *,
    rtol: float = 1e-3,
    atol: float = 1e-6,
) -> dict[str, Any]:
    """Energy MSE of a latent rollout, decoded and mapped back to ``(q, p)`` (module docstring).

    Args:
        model: a trained model.
        code_map: ``(W, b)`` from :func:`fit_code_to_coords`.
        frames: float frames of the evaluation trajectories ``(B, T + 1, size, size)``.
        coords: their true coordinates ``(B, T + 1, 2)``.
        rtol, atol: tolerances of the latent ``dopri5`` solve.

    Returns:
        ``{"mean", "sem", "values", "coord_mse", "energy_true", "energy_pred", "coords_pred",
        "pixels"}``: the energy MSE (mean ± standard error over trajectories, per-trajectory
        ``values``), the MSE of the mapped coordinates, and the curves for the figures
        (``(B, T)`` energies, ``(B, T, 2)`` coordinates, ``(B, T, size, size)`` decoded first
        frames).
    """
    dev = next(model.parameters()).device
    n_traj, n_plus = frames.shape[:2]
    n_frames = n_plus - 1
    x0 = stack_frames(frames[:, :2])[:, 0].to(dev)  # (B, D)
    _, pix = model.rollout(x0, n_frames, rtol=rtol, atol=atol)  # (T, B, D)
    with torch.no_grad():
        z_hat = model.encode(pix).double().cpu()  # (T, B, latent)
    w, b = code_map
    cc = (z_hat @ w + b).transpose(0, 1)  # (B, T, 2)
    true = coords[:, :n_frames].double()
    e_true = pixel_pendulum_energy(true)
    e_pred = pixel_pendulum_energy(cc)
    per_traj = (e_true - e_pred).pow(2).mean(dim=1)
    size = frames.shape[-1]
    first = (
        pix.transpose(0, 1)[..., : size * size].reshape(n_traj, n_frames, size, size).float().cpu()
    )
    return {
        **mean_sem(per_traj),
        "values": per_traj.tolist(),
        "coord_mse": float((cc - true).pow(2).mean()),
        "energy_true": e_true,
        "energy_pred": e_pred,
        "coords_pred": cc,
        "pixels": first,
    }
