"""Figures (matplotlib, Agg): loss curves and the analogues of the paper's Figs. 5–7."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from ..files import atomic_write

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


def divergence_figure(
    result: dict, path_stem, *, title: str, orbit_until: float | None = None
) -> list[Path]:
    """Energy conserved, trajectory lost: three panels from :func:`hnnkit.evaluate.divergence_rollouts`.

    (a) x–y orbits of every body from the first initial state, truth and each model, a marker
    at each start; (b) position error (RMS over bodies) against time, log scale, with the
    divergence threshold and each model's divergence time; (c) relative energy change
    :math:`(H(t) - H(0))/|H(0)|` of the true H along every rollout, and (dashed) of each
    model's own learned :math:`H_\\theta` along its own rollout, divided by the same true
    :math:`|H(0)|` (a learned energy has an arbitrary offset). Panel (c) is linear within
    ±0.1 and logarithmic beyond (symlog), so a blown-up baseline does not flatten the rest.
    Time and lengths are in the system's units. ``orbit_until`` cuts panel (a) at that time
    (default: the whole span), since chaotic orbits soon fill the plane; a dot marks the end
    of each orbit. Returns the PNG and SVG paths.
    """
    t = result["t"].numpy()
    n_bodies = result["n_bodies"]
    series = {"truth": result["true"], **result["models"]}
    t_end = t[-1] if orbit_until is None else min(float(orbit_until), t[-1])
    upto = int((t <= t_end).sum())
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 3, figsize=(16, 5))
        ax = axes[0]
        for name, traj in series.items():
            x = traj[:upto, 0].numpy()
            lw = 2.6 if name == "truth" else 1.4
            for b in range(n_bodies):
                ax.plot(
                    x[:, 2 * b],
                    x[:, 2 * b + 1],
                    color=COLORS.get(name),
                    lw=lw,
                    alpha=0.9,
                    zorder=1 if name == "truth" else 2,
                    label=LABELS.get(name, name) if b == 0 else None,
                )
            ax.plot(
                x[-1, 0 : 2 * n_bodies : 2],
                x[-1, 1 : 2 * n_bodies : 2],
                "o",
                ms=5,
                color=COLORS.get(name),
                zorder=3,
                linestyle="none",
            )
        x0 = result["true"][0, 0].numpy()
        ax.plot(
            x0[0 : 2 * n_bodies : 2],
            x0[1 : 2 * n_bodies : 2],
            "o",
            ms=8,
            mfc="white",
            mec="black",
            mew=1.8,
            zorder=3,
            linestyle="none",
            label="start (each body)",
        )
        ax.set_xlabel("x (system units)")
        ax.set_ylabel("y (system units)")
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_title(f"(a) Orbits, t ∈ [{t[0]:g}, {t_end:g}] (dots: ends)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=2, framealpha=0.9)

        ax = axes[1]
        thr = float(result["threshold"][0])
        ax.axhline(
            thr,
            color="0.4",
            ls="--",
            lw=1.2,
            label=f"threshold {result['fraction']:g} × orbit scale",
        )
        for name, err in result["position_error"].items():
            e = err[:, 0].numpy().copy()
            e[e <= 0] = float("nan")  # log axis: the exact start has zero error
            c = COLORS.get(name)
            td = float(result["divergence_time"][name][0])
            lab = LABELS.get(name, name)
            lab += f" (diverges at t = {td:.2f})" if td == td else " (no divergence)"
            ax.plot(t, e, color=c, lw=1.6, label=lab)
            if td == td:
                ax.axvline(td, color=c, ls=":", lw=1.4)
        ax.set_yscale("log")
        ax.set_xlabel("time (system units)")
        ax.set_ylabel("position error, RMS over bodies")
        ax.set_title("(b) Distance from the true trajectory")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=1, framealpha=0.9)

        ax = axes[2]
        h0 = float(result["true_energy"]["truth"][0, 0])
        for name, e in result["true_energy"].items():
            rel = (e[:, 0] - e[0, 0]).numpy() / abs(h0)
            drift = float(result["energy_drift"][name][0])
            ax.plot(
                t,
                rel,
                color=COLORS.get(name),
                lw=2.6 if name == "truth" else 1.6,
                label=f"{LABELS.get(name, name)}, true H (max {drift:.1e})",
            )
        for name, h in result["learned_energy"].items():
            rel = (h[:, 0] - h[0, 0]).numpy() / abs(h0)
            drift = float(result["learned_energy_drift"][name][0])
            ax.plot(
                t,
                rel,
                color=COLORS.get(name),
                ls="--",
                lw=2.2,
                label=f"{LABELS.get(name, name)}, its own H_θ (max {drift:.1e})",
            )
        ax.set_yscale("symlog", linthresh=0.1, linscale=1.0)
        ax.set_xlabel("time (system units)")
        ax.set_ylabel("(H(t) − H(0)) / |H(0)|  (symlog)")
        ax.set_title("(c) Relative energy change")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=1, framealpha=0.9)

        fig.suptitle(title, fontsize=13)
        fig.tight_layout()
        return save(fig, path_stem)
