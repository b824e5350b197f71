"""Figures (matplotlib, Agg): loss curves and the analogues of the paper's Figs. 5–7."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator

from ..files import atomic_write
from . import style

#: Matplotlib settings of every figure (kept for callers; see :mod:`hnnkit.report.style`).
STYLE = style.RC


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
    """Train (solid) and test (dashed) derivative MSE against optimisation step, one colour
    per model (:func:`hnnkit.report.style.model_color`)."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6.4, 3.8))
        for name, hist in histories.items():
            steps = [h["step"] for h in hist]
            c, lab = style.model_color(name), style.model_label(name)
            ax.plot(
                steps, [h["train_loss"] for h in hist], "-", color=c, lw=1.8, label=f"{lab} train"
            )
            ax.plot(
                steps, [h["test_loss"] for h in hist], "--", color=c, lw=1.4, label=f"{lab} test"
            )
        ax.set_yscale("log")
        ax.set_xlabel("optimisation step")
        ax.set_ylabel("derivative MSE")
        ax.set_title(title or "Loss")
        style.legend_right(ax)
        fig.tight_layout()
        return save(fig, path_stem)


def _first(traj) -> Any:
    """The first trajectory of a ``(T, B, d)`` tensor (or ``(T, d)``) as a ``(T, d)`` array."""
    x = traj.numpy()
    return x[:, 0] if x.ndim == 3 else x


def rollout_panels(
    rollouts,
    path_stem,
    *,
    title: str,
    dof_labels: tuple[str, str] = (style.Q_LABEL, style.P_LABEL),
    orbit: bool = False,
    time_unit: str | None = None,
):
    """Three panels: a trajectory (phase space, or x–y orbits), MSE vs time, energy vs time.

    ``rollouts`` is an :class:`hnnkit.evaluate.Rollouts`; ``time_unit`` labels the time axes
    (``None``: the system's natural units, "time"). One legend under the panels; the truth is
    dashed on top of the models; the energy panel's y-range follows the curves that stay near
    the truth (a curve that runs away is noted, not allowed to flatten the rest).
    """
    t = rollouts.t.numpy()
    series = {"truth": rollouts.true, **rollouts.models}
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 3, figsize=(14, 4.6), layout="constrained")
        ax = axes[0]
        for name, traj in series.items():
            x = _first(traj)
            if orbit:
                n_bodies = x.shape[-1] // 4
                for b in range(n_bodies):
                    kw = style.line_style(name, alpha=0.9)
                    if b:
                        kw["label"] = None
                    ax.plot(x[:, 2 * b], x[:, 2 * b + 1], **kw)
            else:
                d = x.shape[-1] // 2
                ax.plot(x[:, 0], x[:, d], **style.line_style(name))
        x0 = _first(rollouts.true)[0]
        if orbit:
            n_bodies = x0.shape[-1] // 4
            ax.plot(x0[0 : 2 * n_bodies : 2], x0[1 : 2 * n_bodies : 2], **style.START_MARKER)
            ax.set_xlabel("x")
            ax.set_ylabel("y")
            ax.set_aspect("equal", adjustable="datalim")
        else:
            d = x0.shape[-1] // 2
            ax.plot([x0[0]], [x0[d]], **style.START_MARKER)
            ax.set_xlabel(dof_labels[0])
            ax.set_ylabel(dof_labels[1])
        ax.xaxis.set_major_locator(MaxNLocator(nbins=6))
        ax.set_title("Trajectory (first test state)")

        ax = axes[1]
        for name, traj in rollouts.models.items():
            mse = (traj - rollouts.true).pow(2).mean(-1).mean(-1).numpy()
            kw = style.line_style(name)
            kw["label"] = None  # listed once, from the first panel
            ax.plot(t, mse, **kw)
        ax.set_yscale("log")
        ax.set_xlabel(style.time_label(time_unit))
        ax.set_ylabel("coordinate MSE (mean over test states)")
        ax.set_title("MSE between coordinates")

        ax = axes[2]
        energies = {"truth": rollouts.true_energy[:, 0].numpy()}
        energies.update({k: e[:, 0].numpy() for k, e in rollouts.model_energy.items()})
        for name, e in energies.items():
            ax.plot(t, e, **style.line_style(name, label=None))
        style.set_robust_ylim(ax, energies)
        ax.set_xlabel(style.time_label(time_unit))
        ax.set_ylabel(f"{style.ENERGY_LABEL} (first test state)")
        ax.set_title("Total energy")
        fig.suptitle(title, fontsize=13)
        fig.legend(
            *axes[0].get_legend_handles_labels(),
            loc="outside lower center",
            ncol=len(series) + 1,
            framealpha=0.95,
        )
        return save(fig, path_stem)


def energy_curves(
    rollouts,
    path_stem,
    *,
    title: str,
    ylabel: str = style.ENERGY_LABEL,
    shade: tuple[float, float] | None = None,
    time_unit: str | None = None,
) -> list[Path]:
    """Energy against time of the truth and of every model's rollout (first trajectory).

    ``rollouts`` is an :class:`hnnkit.evaluate.Rollouts`; ``shade`` marks a time window (e.g. the
    test segment of a measured recording); ``time_unit`` labels the time axis (e.g. ``"s"``).
    The legend sits under the axes; the y-range follows the curves near the truth.
    """
    t = rollouts.t.numpy()
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(7.5, 4.6))
        if shade is not None:
            ax.axvspan(*shade, color="0.9", zorder=0, label="test segment")
        energies = {"truth": rollouts.true_energy.reshape(len(t), -1)[:, 0].numpy()}
        for name, e in rollouts.model_energy.items():
            energies[name] = e.reshape(len(t), -1)[:, 0].numpy()
        for name, e in energies.items():
            ax.plot(t, e, **style.line_style(name))
        style.set_robust_ylim(ax, energies)
        ax.set_xlabel(style.time_label(time_unit))
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        style.legend_below(ax)
        fig.tight_layout()
        return save(fig, path_stem)


def divergence_figure(
    result: dict,
    path_stem,
    *,
    title: str,
    orbit_until: float | None = None,
    time_unit: str | None = None,
) -> list[Path]:
    """Energy conserved, trajectory lost: three panels from :func:`hnnkit.evaluate.divergence_rollouts`.

    (a) x–y orbits of every body from the first initial state, truth and each model, a marker
    at each start; (b) position error (RMS over bodies) against time, log scale, with the
    divergence threshold and each model's divergence time; (c) relative energy change
    :math:`(H(t) - H(0))/|H(0)|` of the true H along every rollout, and (dash-dotted) of each
    model's own learned :math:`H_\\theta` along its own rollout, divided by the same true
    :math:`|H(0)|` (a learned energy has an arbitrary offset). Panel (c) is linear within
    ±0.1 and logarithmic beyond (symlog), so a blown-up baseline does not flatten the rest.
    Time and lengths are in the system's units (``time_unit`` names the time's, if any).
    ``orbit_until`` cuts panel (a) at that time (default: the whole span), since chaotic
    orbits soon fill the plane; a dot marks the end of each orbit. The truth is dashed on top
    of the models. Returns the PNG and SVG paths.
    """
    t = result["t"].numpy()
    n_bodies = result["n_bodies"]
    series = {"truth": result["true"], **result["models"]}
    t_end = t[-1] if orbit_until is None else min(float(orbit_until), t[-1])
    upto = int((t <= t_end).sum())
    tlabel = style.time_label(time_unit)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 3, figsize=(16, 5.4))
        ax = axes[0]
        for name, traj in series.items():
            x = traj[:upto, 0].numpy()
            c = style.model_color(name)
            for b in range(n_bodies):
                kw = style.line_style(name, alpha=0.9)
                if b:
                    kw["label"] = None
                ax.plot(x[:, 2 * b], x[:, 2 * b + 1], **kw)
            ax.plot(
                x[-1, 0 : 2 * n_bodies : 2],
                x[-1, 1 : 2 * n_bodies : 2],
                "o",
                ms=5,
                color=c,
                zorder=7,
                linestyle="none",
            )
        x0 = result["true"][0, 0].numpy()
        ax.plot(
            x0[0 : 2 * n_bodies : 2],
            x0[1 : 2 * n_bodies : 2],
            **{**style.START_MARKER, "ms": 8, "label": "start (each body)"},
        )
        ax.set_xlabel("x")
        ax.set_ylabel("y")
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_title(f"(a) Orbits, t ∈ [{t[0]:g}, {t_end:g}] (dots: ends)")
        style.legend_below(ax, ncol=2)

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
            c = style.model_color(name)
            td = float(result["divergence_time"][name][0])
            lab = style.model_label(name)
            lab += f" (diverges at t = {td:.2f})" if td == td else " (no divergence)"
            ax.plot(t, e, **style.line_style(name, label=lab, lw=1.6))
            if td == td:
                ax.axvline(td, color=c, ls=":", lw=1.4)
        ax.set_yscale("log")
        ax.set_xlabel(tlabel)
        ax.set_ylabel("position error, RMS over bodies")
        ax.set_title("(b) Distance from the true trajectory")
        style.legend_below(ax, ncol=1)

        ax = axes[2]
        h0 = float(result["true_energy"]["truth"][0, 0])
        for name, e in result["true_energy"].items():
            rel = (e[:, 0] - e[0, 0]).numpy() / abs(h0)
            drift = float(result["energy_drift"][name][0])
            lab = f"{style.model_label(name)}, true H (max {drift:.1e})"
            ax.plot(t, rel, **style.line_style(name, label=lab))
        for name, h in result["learned_energy"].items():
            rel = (h[:, 0] - h[0, 0]).numpy() / abs(h0)
            drift = float(result["learned_energy_drift"][name][0])
            lab = rf"{style.model_label(name)}, its own $H_\theta$ (max {drift:.1e})"
            ax.plot(t, rel, **style.line_style(name, label=lab, ls="-.", lw=3.0, zorder=4))
        ax.set_yscale("symlog", linthresh=0.1, linscale=1.0)
        ax.set_xlabel(tlabel)
        ax.set_ylabel("(H(t) − H(0)) / |H(0)|  (symlog)")
        ax.set_title("(c) Relative energy change")
        style.legend_below(ax, ncol=1)

        fig.suptitle(title, fontsize=13)
        fig.tight_layout()
        return save(fig, path_stem)
