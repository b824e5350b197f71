"""Figures (matplotlib, Agg): loss curves and the analogues of the paper's Figs. 5–7."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from ..data._io import atomic_write

COLORS = {
    "truth": "black",
    "baseline": "#d62728",
    "hnn": "#1f77b4",
    "dhnn": "#2ca02c",
    "kan": "#9467bd",
}
LABELS = {
    "truth": "Ground truth",
    "baseline": "Baseline NN",
    "hnn": "Hamiltonian NN",
    "dhnn": "Dissipative HNN",
}
STYLE = {
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 110,
}


def save(fig: plt.Figure, path_stem: str | os.PathLike) -> list[Path]:
    """Save ``fig`` as PNG and SVG next to each other (atomically) and close it."""
    stem = Path(path_stem)
    out = []
    for ext in ("png", "svg"):
        target = stem.with_suffix(f".{ext}")
        atomic_write(
            target, lambda p, ext=ext: fig.savefig(p, format=ext, bbox_inches="tight", dpi=150)
        )
        out.append(target)
    plt.close(fig)
    return out


def loss_curves(
    histories: dict[str, list[dict[str, float]]], path_stem, *, title: str = ""
) -> list[Path]:
    """Train and test derivative MSE against optimisation step, one colour per model."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(5.2, 3.6))
        for name, hist in histories.items():
            steps = [h["step"] for h in hist]
            c = COLORS.get(name)
            ax.plot(
                steps,
                [h["train_loss"] for h in hist],
                "-",
                color=c,
                label=f"{LABELS.get(name, name)} train",
            )
            ax.plot(
                steps,
                [h["test_loss"] for h in hist],
                "--",
                color=c,
                label=f"{LABELS.get(name, name)} test",
            )
        ax.set_yscale("log")
        ax.set_xlabel("optimisation step")
        ax.set_ylabel("derivative MSE")
        ax.set_title(title or "Loss")
        ax.legend()
        return save(fig, path_stem)


def rollout_panels(
    rollouts,
    path_stem,
    *,
    title: str,
    dof_labels: tuple[str, str] = ("q", "p"),
    orbit: bool = False,
):
    """Three panels: a trajectory (phase space, or x–y orbits), MSE vs time, energy vs time.

    ``rollouts`` is an :class:`hnnkit.evaluate.Rollouts`; time is in the system's units.
    """
    t = rollouts.t.numpy()
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 3, figsize=(14, 4))
        ax = axes[0]
        series = {"truth": rollouts.true, **rollouts.models}
        for name, traj in series.items():
            x = traj[:, 0].numpy()
            c = COLORS.get(name)
            lw = 2.5 if name == "truth" else 1.5
            if orbit:
                n_bodies = x.shape[-1] // 4
                for b in range(n_bodies):
                    ax.plot(
                        x[:, 2 * b],
                        x[:, 2 * b + 1],
                        color=c,
                        lw=lw,
                        alpha=0.9,
                        label=LABELS.get(name, name) if b == 0 else None,
                    )
                ax.set_xlabel("x")
                ax.set_ylabel("y")
                ax.set_aspect("equal", adjustable="datalim")
            else:
                d = x.shape[-1] // 2
                ax.plot(x[:, 0], x[:, d], color=c, lw=lw, label=LABELS.get(name, name))
                ax.set_xlabel(dof_labels[0])
                ax.set_ylabel(dof_labels[1])
        ax.set_title("Trajectory (first test state)")
        ax.legend(loc="best")
        ax = axes[1]
        for name, traj in rollouts.models.items():
            mse = (traj - rollouts.true).pow(2).mean(-1).mean(-1).numpy()
            ax.plot(t, mse, color=COLORS.get(name), label=LABELS.get(name, name))
        ax.set_yscale("log")
        ax.set_xlabel("time")
        ax.set_ylabel("coordinate MSE (mean over test states)")
        ax.set_title("MSE between coordinates")
        ax.legend()
        ax = axes[2]
        ax.plot(t, rollouts.true_energy[:, 0].numpy(), color="black", lw=2.5, label=LABELS["truth"])
        for name, e in rollouts.model_energy.items():
            ax.plot(t, e[:, 0].numpy(), color=COLORS.get(name), label=LABELS.get(name, name))
        ax.set_xlabel("time")
        ax.set_ylabel("energy H (first test state)")
        ax.set_title("Total energy")
        ax.legend()
        fig.suptitle(title, fontsize=13)
        fig.tight_layout()
        return save(fig, path_stem)


def energy_curves(
    rollouts,
    path_stem,
    *,
    title: str,
    ylabel: str = "energy",
    shade: tuple[float, float] | None = None,
) -> list[Path]:
    """Energy against time of the truth and of every model's rollout (first trajectory).

    ``rollouts`` is an :class:`hnnkit.evaluate.Rollouts`; ``shade`` marks a time window (e.g. the
    test segment of a measured recording).
    """
    t = rollouts.t.numpy()
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(7.5, 4.2))
        if shade is not None:
            ax.axvspan(*shade, color="0.9", zorder=0, label="test segment")
        e_true = rollouts.true_energy.reshape(len(t), -1)[:, 0].numpy()
        ax.plot(t, e_true, color=COLORS["truth"], lw=2.5, label=LABELS["truth"])
        for name, e in rollouts.model_energy.items():
            ax.plot(
                t,
                e.reshape(len(t), -1)[:, 0].numpy(),
                color=COLORS.get(name),
                lw=1.6,
                label=LABELS.get(name, name),
            )
        ax.set_xlabel("time")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(loc="best")
        fig.tight_layout()
        return save(fig, path_stem)
