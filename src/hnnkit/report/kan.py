"""Figures of the ``kan-spring`` experiment: losses, rollouts, and KAN diagrams with edge plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..models.kan import KAN
from .figures import STYLE as REPORT_STYLE
from .figures import plt, save

COLORS = {
    "truth": "black",
    "mlp-hnn": "#1f77b4",
    "mlp-hnn-l1": "#17becf",
    "kan-hnn": "#9467bd",
    "kan-hnn-l1": "#e377c2",
    "kan-symbolic": "#2ca02c",
}
LABELS = {
    "truth": "ground truth",
    "mlp-hnn": "MLP-HNN",
    "mlp-hnn-l1": "MLP-HNN + L1",
    "kan-hnn": "KAN-HNN",
    "kan-hnn-l1": "KAN-HNN + L1",
    "kan-symbolic": "extracted formula",
}
STYLE = {**REPORT_STYLE, "svg.fonttype": "none"}  # SVG text stays text


def plot_losses(logs: dict[str, dict[str, Any]], stem: Path) -> list[Path]:
    """One panel per model (``logs``: name → ``{"history"}``, four of them): train and test
    derivative MSE against L-BFGS step (log scale)."""
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
        for ax, name in zip(axes.flat, logs, strict=True):
            hist = logs[name]["history"]
            steps = [h["step"] for h in hist]
            ax.plot(
                steps,
                [h["train_loss"] for h in hist],
                "-",
                color=COLORS[name],
                lw=1.8,
                label="train",
            )
            ax.plot(steps, [h["test_loss"] for h in hist], "--", color="0.3", lw=1.4, label="test")
            ax.set_yscale("log")
            ax.set_title(LABELS[name])
            ax.set_ylabel("derivative MSE")
            ax.legend(loc="upper right")
        for ax in axes[-1]:
            ax.set_xlabel("L-BFGS step")
            ax.xaxis.get_major_locator().set_params(integer=True)
        fig.suptitle("Train and test loss (without the L1 penalty)", fontsize=13)
        fig.tight_layout()
        return save(fig, stem)


def plot_rollouts(
    t: Tensor, trajs: dict[str, Tensor], energies: dict[str, Tensor], stem: Path
) -> dict[str, list[Path]]:
    """Phase-space rollouts, coordinate MSE vs time and energy vs time, as three figures."""
    tt = t.cpu().numpy()
    out = {}
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(5.6, 5.2))
        for name, traj in trajs.items():
            x = traj.cpu().numpy()
            style = {"lw": 3.0, "alpha": 0.5} if name == "truth" else {"lw": 1.4}
            ls = ":" if name == "kan-symbolic" else "-"
            ax.plot(x[:, 0], x[:, 1], ls, color=COLORS[name], label=LABELS[name], **style)
        x0 = trajs["truth"][0].cpu().numpy()
        ax.plot([x0[0]], [x0[1]], "o", color="purple", ms=7, label="start", zorder=5)
        ax.set_xlabel("position q")
        ax.set_ylabel("momentum p")
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_title(f"Phase-space rollouts, t ∈ [0, {tt[-1]:g}]")
        ax.legend(loc="upper right", framealpha=0.9)
        fig.tight_layout()
        out["rollout_phase"] = save(fig, stem.with_name(stem.name + "_phase"))

        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for name, traj in trajs.items():
            if name == "truth":
                continue
            mse = (traj - trajs["truth"]).pow(2).mean(-1).cpu().numpy()
            ax.plot(
                tt[1:],
                mse[1:],
                ":" if name == "kan-symbolic" else "-",
                color=COLORS[name],
                label=LABELS[name],
                lw=1.6,
            )
        ax.set_yscale("log")
        ax.set_xlabel("time t")
        ax.set_ylabel("MSE of (q, p) vs ground truth")
        ax.set_title("Rollout error")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        out["rollout_mse"] = save(fig, stem.with_name(stem.name + "_mse"))

        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for name, e in energies.items():
            style = {"lw": 3.0, "alpha": 0.5} if name == "truth" else {"lw": 1.4}
            ax.plot(
                tt,
                e.cpu().numpy(),
                ":" if name == "kan-symbolic" else "-",
                color=COLORS[name],
                label=LABELS[name],
                **style,
            )
        ax.set_xlabel("time t")
        ax.set_ylabel("true energy H(q, p) along the rollout")
        ax.set_title("Energy along the rollouts")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
        fig.tight_layout()
        out["rollout_energy"] = save(fig, stem.with_name(stem.name + "_energy"))
    return out


def plot_kan_diagram(
    kans: dict[str, KAN],
    x: Tensor,
    stem: Path,
    *,
    input_names: tuple[str, ...] = ("q", "p"),
    output_names: tuple[str, ...] = ("unused", "H"),
    edge_labels: dict[str, dict[tuple[int, int, int], str]] | None = None,
    subtitles: dict[str, str] | None = None,
) -> list[Path]:
    """Draw each KAN as nodes and edges, every edge with a small plot of its activation.

    Each edge :math:`\\phi_{l,i,j}` is drawn as a line whose opacity follows its mean
    absolute activation on ``x`` (relative to the strongest edge of its layer), with an
    inset showing :math:`\\phi` over the range its input takes on ``x``. Pruned (masked)
    edges are dashed and have no inset.

    Args:
        kans: title → KAN, drawn side by side.
        x: samples ``(N, widths[0])`` (e.g. the training states).
        stem: output path without suffix (``.png`` and ``.svg`` are written).
        input_names: labels of the input nodes.
        output_names: labels of the output nodes.
        edge_labels: title → ``{(layer, i, j): text}`` shown above the insets (e.g. fits).
        subtitles: title → a line shown under the title (e.g. the extracted formula).

    Returns:
        The written paths.
    """
    edge_labels = edge_labels or {}
    subtitles = subtitles or {}
    with plt.rc_context({**STYLE, "axes.grid": False}):
        fig, axes = plt.subplots(1, len(kans), figsize=(4.6 * len(kans), 6.0), squeeze=False)
        for ax, (title, kan) in zip(axes[0], kans.items(), strict=True):
            ref = kan.act_fun[0].coef
            with torch.no_grad():
                acts = kan.activations(x.to(ref.device, ref.dtype))
            depth = kan.depth
            scores = [a.edges.abs().mean(0).cpu() for a in acts]
            tops = [
                float(s.max()) or 1.0 for s in scores
            ]  # opacity relative to the layer's strongest edge

            def pos(level: int, n: int, kan=kan) -> tuple[float, float]:
                width = kan.widths[level]
                return (n + 0.5) / width, float(level)

            ax.set_xlim(0, 1)
            ax.set_ylim(-0.35, depth + 0.35)
            ax.axis("off")
            for layer in range(depth):
                lay = kan.act_fun[layer]
                for i in range(kan.widths[layer]):
                    for j in range(kan.widths[layer + 1]):
                        (x0, y0), (x1, y1) = pos(layer, i), pos(layer + 1, j)
                        live = bool(lay.mask[i, j] != 0)
                        strength = (
                            min(1.0, max(0.12, float(scores[layer][i, j]) / tops[layer]))
                            if live
                            else 0.25
                        )
                        ax.plot(
                            [x0, x1],
                            [y0, y1],
                            "-" if live else "--",
                            color="black",
                            alpha=strength,
                            lw=1.5,
                            zorder=1,
                        )
                        if not live:
                            continue
                        xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
                        w, h = 0.22, 0.34
                        inset = ax.inset_axes(
                            [xm - w / 2, ym - h / 2, w, h], transform=ax.transData, zorder=3
                        )
                        z_in = acts[layer].inputs[:, i]
                        z = torch.linspace(
                            float(z_in.min()),
                            float(z_in.max()),
                            120,
                            dtype=ref.dtype,
                            device=ref.device,
                        )
                        with torch.no_grad():
                            phi = kan.edge_function(layer, i, j, z)
                        inset.plot(
                            z.cpu().numpy(),
                            phi.cpu().numpy(),
                            color="#9467bd",
                            lw=2.0,
                            alpha=max(strength, 0.35),
                        )
                        inset.set_xticks([])
                        inset.set_yticks([])
                        inset.set_facecolor("white")
                        for spine in inset.spines.values():
                            spine.set_alpha(max(strength, 0.3))
                        label = edge_labels.get(title, {}).get((layer, i, j))
                        if label:
                            inset.set_title(label, fontsize=9, pad=2)
            for level in range(depth + 1):
                for n in range(kan.widths[level]):
                    px, py = pos(level, n)
                    alive = kan.active_nodes()[level][n]
                    ax.scatter(
                        [px],
                        [py],
                        s=260,
                        color="black" if alive else "white",
                        edgecolors="black",
                        zorder=4,
                    )
                    if level == 0 and n < len(input_names):
                        ax.text(px, py - 0.12, input_names[n], ha="center", va="top", fontsize=13)
                    if level == depth and n < len(output_names):
                        text = output_names[n] + ("" if alive else " (pruned)")
                        ax.text(px, py + 0.12, text, ha="center", va="bottom", fontsize=12)
            sub = subtitles.get(title)
            ax.set_title(title + (f"\n{sub}" if sub else ""), fontsize=12, pad=10)
        fig.tight_layout()
        return save(fig, stem)
