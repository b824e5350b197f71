"""Draw one small figure per zoo system into docs/systems/ (the figures of docs/systems.md).

Each figure has two panels: on the left the motion (a phase portrait, orbits in the plane,
or displacements over time) from a few start states of the system's default energy band, on
the right the relative energy error |H(t) − H(0)| / H(0) of the reference solver (dopri5,
rtol = atol = 1e-10) along the same trajectories. All constants are the defaults and
dimensionless.

    PYTHONPATH=src python scripts/system_figures.py            # every system
    PYTHONPATH=src python scripts/system_figures.py duffing    # one
"""

from __future__ import annotations

import argparse
import io
import math
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

from hnnkit.files import atomic_write
from hnnkit.integrate import odeint
from hnnkit.report.style import RC, START_MARKER
from hnnkit.systems import get_system

OUT = Path(__file__).resolve().parents[1] / "docs" / "systems"
DPI = 100
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")
TOL = 1e-10


def _solve(system, x0: torch.Tensor, t_end: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    t = torch.linspace(0.0, t_end, n, dtype=torch.float64)
    traj = odeint(system.vector_field, x0, t, method="dopri5", rtol=TOL, atol=TOL)
    return t.numpy(), traj.numpy()  # (T,), (T, B, 2n)


def _energy_panel(
    ax, system, t: np.ndarray, traj: np.ndarray, labels: list[str], colors=COLORS
) -> None:
    h = system.energy(torch.from_numpy(traj)).numpy()  # (T, B)
    err = np.abs(h - h[:1]) / np.abs(h[:1])
    for b in range(h.shape[1]):
        ax.semilogy(t[1:], np.maximum(err[1:, b], 1e-17), color=colors[b], lw=1.2, label=labels[b])
    ax.set_xlabel("time t (dimensionless)")
    ax.set_ylabel("|H(t) − H(0)| / H(0)")
    ax.set_title("energy error of the reference solver")
    ax.set_ylim(1e-16, 1e-6)


def _finish(fig, axes, name: str, title: str) -> Path:
    handles, labels = axes[1].get_legend_handles_labels()
    h0, l0 = axes[0].get_legend_handles_labels()
    for h, lab in zip(h0, l0, strict=True):
        if lab not in labels:
            handles.append(h)
            labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    path = OUT / f"{name}.png"
    atomic_write(path, lambda f: _save_small(fig, f))
    plt.close(fig)
    return path


def _save_small(fig, path: Path) -> None:
    """PNG with an adaptive 256-colour palette: a third of the size, no visible change."""
    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    buffer.seek(0)
    image = Image.open(buffer).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
    image.save(path, format="PNG", optimize=True)


def _figure() -> tuple[plt.Figure, np.ndarray]:
    return plt.subplots(1, 2, figsize=(8.6, 3.5))


def duffing() -> Path:
    s = get_system("duffing")
    energies = [0.05, 0.3, 0.6, 1.0]
    x0 = torch.tensor(
        [[math.sqrt(-1 + math.sqrt(1 + 4 * e)), 0.0] for e in energies], dtype=torch.float64
    )  # the turning point q = A, p = 0 of each energy
    t, traj = _solve(s, x0, 10.0, 400)
    fig, axes = _figure()
    labels = [f"H = {e:g}" for e in energies]
    for b in range(len(energies)):
        axes[0].plot(traj[:, b, 0], traj[:, b, 1], color=COLORS[b], lw=1.3)
    axes[0].plot(x0[:, 0], x0[:, 1], **START_MARKER)
    axes[0].set_xlabel("position q")
    axes[0].set_ylabel("momentum p")
    axes[0].set_title("phase portrait")
    axes[0].set_aspect("equal", adjustable="datalim")
    _energy_panel(axes[1], s, t, traj, labels)
    return _finish(fig, axes, "duffing", "duffing: H = p²/2 + q²/2 + q⁴/4")


def henon_heiles() -> Path:
    s = get_system("henon-heiles")
    x0 = torch.tensor(
        [[0.0, 0.1, 0.35, 0.0], [0.0, -0.2, 0.35, 0.25], [0.0, 0.0, 0.5, 0.1]],
        dtype=torch.float64,
    )
    t, traj = _solve(s, x0, 100.0, 4000)
    e = s.energy(x0).tolist()
    fig, axes = _figure()
    gx, gy = np.meshgrid(np.linspace(-1.1, 1.1, 300), np.linspace(-0.8, 1.2, 300))
    v = s.potential(torch.from_numpy(np.stack([gx, gy], -1))).numpy()
    axes[0].contour(gx, gy, v, levels=[s.escape_energy], colors="black", linestyles="--")
    axes[0].plot([], [], "k--", label="V = 1/6 (escape)")
    for b in range(3):
        axes[0].plot(traj[:, b, 0], traj[:, b, 1], color=COLORS[b], lw=0.5)
    axes[0].plot(x0[:, 0], x0[:, 1], **START_MARKER)
    axes[0].set_xlabel("position x")
    axes[0].set_ylabel("position y")
    axes[0].set_title("orbits in the plane, t ≤ 100")
    axes[0].set_aspect("equal")
    _energy_panel(axes[1], s, t, traj, [f"H = {v:.3f}" for v in e])
    return _finish(fig, axes, "henon-heiles", "henon-heiles: bounded orbits below E = 1/6")


def double_pendulum() -> Path:
    s = get_system("double-pendulum")
    x0 = torch.tensor(
        [[0.3, 0.3 * math.sqrt(2), 0.0, 0.0], [0.6, -0.4, 0.0, 0.0], [-0.5, 1.2, 0.0, 0.0]],
        dtype=torch.float64,
    )
    t, traj = _solve(s, x0, 40.0, 800)
    e = s.energy(x0).tolist()
    fig, axes = _figure()
    for b in range(3):
        axes[0].plot(traj[:, b, 0], traj[:, b, 1], color=COLORS[b], lw=0.6)
    axes[0].plot(x0[:, 0], x0[:, 1], **START_MARKER)
    axes[0].set_xlabel("inner angle q₁ (rad)")
    axes[0].set_ylabel("outer angle q₂ (rad)")
    axes[0].set_title("angles, t ≤ 40")
    _energy_panel(axes[1], s, t, traj, [f"H = {v:.2f}" for v in e])
    return _finish(
        fig,
        axes,
        "double-pendulum",
        "double-pendulum: m = l = g = 1, three energies of the default band",
    )


def coupled_oscillators() -> Path:
    s = get_system("coupled-oscillators")
    x0 = torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    t, traj = _solve(s, x0, 60.0, 1200)
    fig, axes = _figure()
    q, p = traj[:, 0, :2], traj[:, 0, 2:]
    own = p**2 / (2 * s.m) + s.k * q**2 / 2  # each mass's own energy (without the coupling)
    axes[0].plot(t, own[:, 0], color=COLORS[0], lw=1.2, label="mass 1: p₁²/2m + kq₁²/2")
    axes[0].plot(t, own[:, 1], color=COLORS[3], lw=1.2, label="mass 2: p₂²/2m + kq₂²/2")
    axes[0].set_xlabel("time t (dimensionless)")
    axes[0].set_ylabel("energy of each mass")
    axes[0].set_title("beats: energy moves between the masses")
    h0 = float(s.energy(x0))
    _energy_panel(axes[1], s, t, traj, [f"total H = {h0:.2f}"], colors=("black",))
    return _finish(fig, axes, "coupled-oscillators", "coupled-oscillators (n = 2): k = 1, κ = 0.5")


def fpu_beta() -> Path:
    s = get_system("fpu-beta")
    n = s.n
    i = np.arange(1, n + 1)
    j = np.arange(1, n + 1)
    modes = np.sqrt(2 / (n + 1)) * np.sin(np.outer(j, i) * np.pi / (n + 1))  # orthonormal
    omega = s.normal_mode_frequencies().numpy()
    amp = 4.0  # all energy in mode 1: H = 1.12, above the default band, so the exchange shows
    x0 = torch.from_numpy(np.concatenate([amp * modes[0], np.zeros(n)]))[None]
    t, traj = _solve(s, x0, 600.0, 1500)
    q, p = traj[:, 0, :n], traj[:, 0, n:]
    aq, ap = q @ modes.T, p @ modes.T  # mode coordinates
    e_modes = 0.5 * (ap**2 + (omega * aq) ** 2)
    fig, axes = _figure()
    for c, k in enumerate((0, 2, 4)):  # by symmetry only the odd modes are excited
        axes[0].plot(t, e_modes[:, k], color=COLORS[c], lw=1.0, label=f"mode {k + 1}")
    axes[0].set_xlabel("time t (dimensionless)")
    axes[0].set_ylabel("linear mode energy")
    axes[0].set_title("mode 1 → mode 3 → mode 1")
    h0 = float(s.energy(x0))
    _energy_panel(axes[1], s, t, traj, [f"total H = {h0:.2f}"], colors=("black",))
    return _finish(fig, axes, "fpu-beta", f"fpu-beta: n = {n}, β = 1, fixed ends")


def elastic_pendulum() -> Path:
    s = get_system("elastic-pendulum")
    r = s.rest_length
    x0 = torch.tensor([[r + 0.3, 0.05, 0.0, 0.0], [r + 0.1, 0.5, 0.0, 0.0]], dtype=torch.float64)
    t, traj = _solve(s, x0, 60.0, 2400)
    e = s.energy(x0).tolist()
    fig, axes = _figure()
    for b in range(2):
        rr, th = traj[:, b, 0], traj[:, b, 1]
        axes[0].plot(rr * np.sin(th), -rr * np.cos(th), color=COLORS[b], lw=0.6)
    axes[0].plot(
        (x0[:, 0] * torch.sin(x0[:, 1])).numpy(),
        (-x0[:, 0] * torch.cos(x0[:, 1])).numpy(),
        **START_MARKER,
    )
    axes[0].plot([0], [0], "ks", ms=5, label="pivot")
    axes[0].set_xlabel("horizontal position x = r sin θ")
    axes[0].set_ylabel("height y = −r cos θ")
    axes[0].set_title("path of the mass, t ≤ 60")
    axes[0].set_aspect("equal", adjustable="datalim")
    _energy_panel(axes[1], s, t, traj, [f"H = {v:.2f}" for v in e])
    return _finish(
        fig, axes, "elastic-pendulum", "elastic-pendulum: spring and swing in 2:1 resonance"
    )


FIGURES: dict[str, Callable[[], Path]] = {
    "double-pendulum": double_pendulum,
    "henon-heiles": henon_heiles,
    "duffing": duffing,
    "coupled-oscillators": coupled_oscillators,
    "fpu-beta": fpu_beta,
    "elastic-pendulum": elastic_pendulum,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"systems (default all): {', '.join(FIGURES)}")
    args = parser.parse_args()
    unknown = [n for n in args.names if n not in FIGURES]
    if unknown:
        parser.error(f"unknown systems {unknown}; choose from {', '.join(FIGURES)}")
    OUT.mkdir(parents=True, exist_ok=True)
    plt.rcParams.update(RC)
    for name in args.names or FIGURES:
        path = FIGURES[name]()
        print(f"{path.relative_to(OUT.parents[1])}: {path.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
