"""Figures of the ``kan-spring`` experiment: losses, rollouts, and KAN diagrams with edge plots."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..models.kan import KAN, find_kan
from ..symbolic import SymbolicHamiltonian
from . import style
from .figures import STYLE, plt, save

#: The kan-spring models (colours and labels: :mod:`hnnkit.report.style`).
MODELS = ("mlp-hnn", "mlp-hnn-l1", "kan-hnn", "kan-hnn-l1", "kan-symbolic")


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
                color=style.model_color(name),
                lw=1.8,
                label="train",
            )
            ax.plot(steps, [h["test_loss"] for h in hist], "--", color="0.3", lw=1.4, label="test")
            ax.set_yscale("log")
            ax.set_title(style.model_label(name))
            ax.set_ylabel("derivative MSE")
            ax.legend(loc="upper right")
        for ax in axes[-1]:
            ax.set_xlabel("L-BFGS step")
            ax.xaxis.get_major_locator().set_params(integer=True)
        fig.suptitle("Train and test loss (without the L1 penalty)", fontsize=13)
        fig.tight_layout()
        return save(fig, stem)


def _kan_style(name: str, **overrides: Any) -> dict[str, Any]:
    """:func:`hnnkit.report.style.line_style`, the extracted formula dotted and on top of the
    KAN it comes from (it usually lies on it), under the truth."""
    if name == "kan-symbolic":
        return style.line_style(name, ls=(0, (1, 1.5)), lw=2.6, zorder=5, **overrides)
    return style.line_style(name, **overrides)


def plot_rollouts(
    t: Tensor,
    trajs: dict[str, Tensor],
    energies: dict[str, Tensor],
    stem: Path,
    *,
    time_unit: str | None = None,
) -> dict[str, list[Path]]:
    """Phase-space rollouts, coordinate MSE vs time and energy vs time, as three figures.

    The truth is dashed on top; legends sit outside the axes; ``time_unit`` labels the time
    axes (``None``: "time", the system's natural units).
    """
    tt = t.cpu().numpy()
    out = {}
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(5.6, 6.2))
        for name, traj in trajs.items():
            x = traj.cpu().numpy()
            ax.plot(x[:, 0], x[:, 1], **_kan_style(name))
        x0 = trajs["truth"][0].cpu().numpy()
        ax.plot([x0[0]], [x0[1]], **style.START_MARKER)
        ax.set_xlabel(style.Q_LABEL)
        ax.set_ylabel(style.P_LABEL)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_title(f"Phase-space rollouts, t ∈ [0, {tt[-1]:g}]")
        style.legend_below(ax, ncol=3)
        fig.tight_layout()
        out["rollout_phase"] = save(fig, stem.with_name(stem.name + "_phase"))

        fig, ax = plt.subplots(figsize=(7.6, 4.2))
        for name, traj in trajs.items():
            if name == "truth":
                continue
            mse = (traj - trajs["truth"]).pow(2).mean(-1).cpu().numpy()
            kw = _kan_style(name)
            if (mse[1:] == 0).all():  # nothing to draw on a log axis: say so in the legend
                kw["label"] += " (MSE 0: not drawn)"
            ax.plot(tt[1:], mse[1:], **kw)
        ax.set_yscale("log")
        ax.set_xlabel(style.time_label(time_unit))
        ax.set_ylabel("MSE of (q, p) vs ground truth")
        ax.set_title("Rollout error")
        style.legend_right(ax)
        fig.tight_layout()
        out["rollout_mse"] = save(fig, stem.with_name(stem.name + "_mse"))

        fig, ax = plt.subplots(figsize=(7.6, 4.2))
        curves = {name: e.cpu().numpy() for name, e in energies.items()}
        for name, e in curves.items():
            ax.plot(tt, e, **_kan_style(name))
        style.set_robust_ylim(ax, curves)
        ax.set_xlabel(style.time_label(time_unit))
        ax.set_ylabel(f"{style.ENERGY_LABEL} (true H along each rollout)")
        ax.set_title("Energy along the rollouts")
        style.legend_right(ax)
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
                            color=style.model_color("kan-hnn"),
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


def pretty_formula(expr: Any, width: int = 46) -> str:
    """``expr`` as a short figure caption: ``x**2`` as ``x²``, ``*`` as ``·``, wrapped at ``width``."""
    import sympy

    text = sympy.sstr(expr)
    for a, b in (("**2", "²"), ("**3", "³"), ("**4", "⁴"), ("*", "·")):
        text = text.replace(a, b)
    return "\n".join(textwrap.wrap(text, width, break_on_hyphens=False))


def pretty_fit(name: str) -> str:
    """The library function ``name`` of an edge fit as an inset label (``x^2`` as ``x²``)."""
    return {"x^2": "x²", "x^3": "x³", "x^4": "x⁴", "const": "const"}.get(name, name)


def kan_spring_figures(
    figs: Path,
    *,
    logs: dict[str, dict[str, Any]],
    t: Tensor,
    trajs: dict[str, Tensor],
    energies: dict[str, Tensor],
    models: dict[str, nn.Module],
    formulas: dict[str, SymbolicHamiltonian],
    x: Tensor,
) -> dict[str, list[Path]]:
    """The ``kan-spring`` figures in ``figs``: ``losses``, the three rollout figures and
    ``kan_diagram`` (each KAN of ``formulas`` with its edge fits and its formula).

    Args:
        figs: output directory.
        logs: model name → training log with ``history``.
        t, trajs, energies: the rollouts (:func:`hnnkit.evaluate.compare_rollouts`).
        models: model name → trained model; those named in ``formulas`` hold a KAN.
        formulas: KAN model name → its extracted Hamiltonian.
        x: the training states the diagram's insets span.

    Returns:
        Figure name → files written.
    """
    figures: dict[str, list[Path]] = {"losses": plot_losses(logs, figs / "losses")}
    figures.update(plot_rollouts(t, trajs, energies, figs / "rollout"))
    figures["kan_diagram"] = plot_kan_diagram(
        {style.model_label(name): find_kan(models[name]) for name in formulas},
        x,
        figs / "kan_diagram",
        edge_labels={
            style.model_label(name): {(e.layer, e.i, e.j): pretty_fit(e.name) for e in sym.edges}
            for name, sym in formulas.items()
        },
        subtitles={
            style.model_label(name): f"H = {pretty_formula(sym.nice)}"
            for name, sym in formulas.items()
        },
    )
    return figures


def coefficient_check(sym: SymbolicHamiltonian, *, spring: bool) -> dict[str, Any]:
    """The extracted coefficients against the true H: ``q² + p² + c`` within 1e-3 (``spring``),
    else the pendulum's ``a·cos(q) + b·p² + c`` terms as found."""
    coefs = sym.coefficients()
    if spring:
        cq, cp = coefs.get("q**2", math.nan), coefs.get("p**2", math.nan)
        others = {k: v for k, v in coefs.items() if k not in ("q**2", "p**2", "1")}
        ok = (
            abs(cq - 1) <= 1e-3
            and abs(cp - 1) <= 1e-3
            and all(abs(v) <= 1e-3 for v in others.values())
        )
        return {
            "expected": "q**2 + p**2 + c",
            "q2": cq,
            "p2": cp,
            "other_terms": others,
            "within_1e-3": ok,
        }
    return {
        "expected": "a*cos(q) + b*p**2 + c, a = -3, b = 1",
        "cos_terms": {k: v for k, v in coefs.items() if k.startswith("cos(")},
        "p2": coefs.get("p**2", math.nan),
    }


def formula_summary(
    main: SymbolicHamiltonian, l1: SymbolicHamiltonian, *, spring: bool
) -> dict[str, Any]:
    """The ``kan-spring`` metrics entries of the two extracted formulas (without and with L1)."""
    info = main.to_dict()
    return {
        "formula": info["formula"],
        "formula_raw": info["formula_raw"],
        "latex": info["latex"],
        "coefficients": info["coefficients"],
        "coefficients_nice": info["coefficients_nice"],
        "symbolic_losses": info["losses"],
        "symbolic_edges": info["edges"],
        "formula_l1": l1.to_dict(),
        "check": coefficient_check(main, spring=spring),
        "check_l1": coefficient_check(l1, spring=spring),
    }


def formula_text(main: SymbolicHamiltonian, l1: SymbolicHamiltonian) -> str:
    """``formula.txt`` of the ``kan-spring`` experiment."""
    info = main.to_dict()
    return (
        f"{main}\n\nraw refit: H = {info['formula_raw']}\nLaTeX: {info['latex']}\n\nwith L1: {l1}\n"
    )


def pruning_summary(pr: Any, kan: KAN, *, unused_output: int) -> dict[str, Any]:
    """A JSON-able record of :meth:`~hnnkit.models.kan.KAN.prune`'s result ``pr`` on ``kan``."""
    return {
        "edges_removed": [list(e) for e in pr.edges],
        "nodes_removed": [list(n) for n in pr.nodes],
        "edge_scores": [s.tolist() for s in pr.scores],
        "unused_output_pruned": not kan.active_nodes()[-1][unused_output],
    }
