"""The look shared by every figure: one colour and one label per model, the truth's style,
axis labels, legends placed off the data, and y-limits that an outlying curve cannot set.

Every figure asks :func:`model_color` and :func:`model_label` (never a table of its own), so a
model looks the same in every figure. A model registered later gets a stable colour from
:data:`FALLBACK_COLORS` (chosen from its name, so the same in every run) and its name as label.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

#: Matplotlib settings of every figure.
RC = {
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "legend.fontsize": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 110,
    "svg.fonttype": "none",  # SVG text stays text
}

#: Colour of each known model. Variants of one kind share its hue family: ``hnn`` and
#: ``mlp-hnn`` are the same network (blue), ``kan`` and ``kan-hnn`` too (purple).
MODEL_COLORS = {
    "baseline": "#d62728",  # red
    "hnn": "#1f77b4",  # blue
    "mlp-hnn": "#1f77b4",
    "mlp-hnn-l1": "#17becf",  # cyan
    "dhnn": "#2ca02c",  # green
    "kan": "#9467bd",  # purple
    "kan-hnn": "#9467bd",
    "kan-hnn-l1": "#e377c2",  # pink
    "kan-symbolic": "#ff7f0e",  # orange
    "neural-ode": "#f08080",  # light red: the baseline's MLP, trained through odeint
    "srnn": "#393b79",  # indigo: an HNN (separable), trained through leapfrog rollouts
    "lnn": "#8c564b",  # brown
    "la-sympnet": "#bcbd22",  # olive
    "g-sympnet": "#6b6e00",  # dark olive
}
#: Legend label of each known model.
MODEL_LABELS = {
    "baseline": "baseline NN",
    "hnn": "HNN",
    "mlp-hnn": "MLP-HNN",
    "mlp-hnn-l1": "MLP-HNN + L1",
    "dhnn": "dissipative HNN",
    "kan": "KAN-HNN",
    "kan-hnn": "KAN-HNN",
    "kan-hnn-l1": "KAN-HNN + L1",
    "kan-symbolic": "extracted formula",
    "neural-ode": "neural ODE",
    "srnn": "SRNN-style HNN",
    "lnn": "LNN",
    "la-sympnet": "LA-SympNet",
    "g-sympnet": "G-SympNet",
}
#: The marker of a trajectory's start state, in every trajectory plot.
START_MARKER = {
    "marker": "o",
    "ms": 7,
    "mfc": "white",
    "mec": "black",
    "mew": 1.6,
    "linestyle": "none",
    "zorder": 7,
    "label": "start",
}
#: Colours of models not in :data:`MODEL_COLORS` (none of them used there).
FALLBACK_COLORS = ("#7f7f7f", "#17a589", "#b9770e", "#5d6d7e", "#c49c94", "#8e44ad")

#: The ground truth: black, dashed, thin and drawn *above* the models, so it stays visible
#: when a model lies on it and a model's colour shows between its dashes.
TRUTH_LABEL = "ground truth"
TRUTH_STYLE: dict[str, Any] = {
    "color": "black",
    "lw": 1.3,
    "ls": (0, (3.5, 3)),
    "zorder": 6,
}
#: Line width of model curves (wider than the truth's, so both show where they coincide).
MODEL_LW = 2.0

#: Axis labels shared by the figures.
Q_LABEL = "q"
P_LABEL = "p"
ENERGY_LABEL = "energy H"


def model_color(name: str) -> str:
    """The colour of model ``name`` (the truth's is black)."""
    if name == "truth":
        return TRUTH_STYLE["color"]
    if name in MODEL_COLORS:
        return MODEL_COLORS[name]
    return FALLBACK_COLORS[zlib.crc32(name.encode()) % len(FALLBACK_COLORS)]


def model_label(name: str) -> str:
    """The legend label of model ``name`` (its name when unknown)."""
    if name == "truth":
        return TRUTH_LABEL
    return MODEL_LABELS.get(name, name)


def truth_style(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments of ``Axes.plot`` for the ground truth (with its label)."""
    return {**TRUTH_STYLE, "label": TRUTH_LABEL, **overrides}


def line_style(name: str, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments of ``Axes.plot`` for ``name``: :func:`truth_style` for ``"truth"``,
    else the model's colour and label, solid, :data:`MODEL_LW` wide, under the truth."""
    if name == "truth":
        return truth_style(**overrides)
    return {
        "color": model_color(name),
        "label": model_label(name),
        "lw": MODEL_LW,
        "zorder": 3,
        **overrides,
    }


def time_label(unit: str | None = None) -> str:
    """``"time"``, or ``"time (unit)"`` (e.g. ``"time (s)"`` for a measured recording)."""
    return f"time ({unit})" if unit else "time"


def legend_below(ax: plt.Axes, *, ncol: int | None = None, **kwargs: Any) -> Any:
    """A legend under ``ax`` (below its tick labels), where it cannot cover data."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    n = len(handles) if ncol is None else ncol
    return ax.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.16),
        ncol=n,
        framealpha=0.95,
        **kwargs,
    )


def legend_right(ax: plt.Axes, **kwargs: Any) -> Any:
    """A legend right of ``ax``, outside it."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    return ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), **kwargs)


def figure_legend(fig: plt.Figure, axes: Iterable[plt.Axes], *, ncol: int | None = None) -> Any:
    """One legend for the whole figure, centred under its panels: the entries of ``axes``
    (each label once, in order of appearance). Leave room with ``tight_layout(rect=...)``."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(lab, h)
    if not seen:
        return None
    return fig.legend(
        list(seen.values()),
        list(seen),
        loc="lower center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=len(seen) if ncol is None else ncol,
        framealpha=0.95,
    )


def robust_limits(
    curves: dict[str, Sequence[float] | np.ndarray],
    *,
    keep: Iterable[str] = ("truth",),
    quantiles: tuple[float, float] = (0.01, 0.99),
    factor: float = 20.0,
    pad: float = 0.08,
) -> tuple[tuple[float, float], list[str]]:
    """Y-limits that show the curves near each other, not one curve that runs away.

    Each curve spans its ``quantiles`` (so a single spike does not count). While the span of
    all remaining curves is more than ``factor`` times the span without the curve reaching
    furthest beyond the others, that curve is left out of the limits; curves named in
    ``keep`` and the last two curves always stay in.

    Returns:
        ``((low, high), left_out)``: the limits (padded by ``pad`` of their span) and the
        names of the curves that leave the frame.
    """
    keep = set(keep)
    ranges: dict[str, tuple[float, float]] = {}
    for name, y in curves.items():
        a = np.asarray(y, dtype=float).ravel()
        a = a[np.isfinite(a)]
        if a.size:
            ranges[name] = (
                float(np.quantile(a, quantiles[0])),
                float(np.quantile(a, quantiles[1])),
            )
    if not ranges:
        return (0.0, 1.0), []

    def span(names: Iterable[str]) -> tuple[float, float]:
        names = list(names)
        return min(ranges[n][0] for n in names), max(ranges[n][1] for n in names)

    inside = list(ranges)
    while len(inside) > 2:
        lo, hi = span(inside)
        best, best_rest = None, None
        for name in inside:
            if name in keep:
                continue
            rlo, rhi = span(n for n in inside if n != name)
            beyond = max(rlo - ranges[name][0], ranges[name][1] - rhi)
            if best is None or beyond > best[0]:
                best, best_rest = (beyond, name), (rlo, rhi)
        if best is None or best[0] <= 0:
            break
        rest_span = best_rest[1] - best_rest[0]
        scale = max(abs(best_rest[0]), abs(best_rest[1]), 1e-12)
        if hi - lo > factor * max(rest_span, 1e-9 * scale):
            inside.remove(best[1])
        else:
            break
    lo, hi = span(inside)
    if hi - lo <= 0:
        half = max(abs(lo) * 0.01, 1e-9)
        lo, hi = lo - half, hi + half
    width = hi - lo
    return (lo - pad * width, hi + pad * width), [n for n in ranges if n not in inside]


def set_robust_ylim(
    ax: plt.Axes,
    curves: dict[str, Sequence[float] | np.ndarray],
    *,
    keep: Iterable[str] = ("truth",),
    **kwargs: Any,
) -> list[str]:
    """Set ``ax``'s y-limits with :func:`robust_limits` and write, in the curve's colour, a
    note for each curve that leaves the frame (where it goes). Returns those curves' names."""
    (lo, hi), out = robust_limits(curves, keep=keep, **kwargs)
    if not out:
        return out
    ax.set_ylim(lo, hi)
    notes = []
    for name in out:
        y = np.asarray(curves[name], dtype=float)
        y = y[np.isfinite(y)]
        ends = []
        if y.size and y.min() < lo:
            ends.append(f"down to {y.min():.3g}")
        if y.size and y.max() > hi:
            ends.append(f"up to {y.max():.3g}")
        notes.append((name, f"{model_label(name)} leaves the frame ({', '.join(ends)})"))
    x_side, y_side = _emptiest_corner(ax, height=0.02 + 0.075 * len(notes))
    for k, (name, text) in enumerate(notes):
        ax.annotate(
            text,
            xy=(0.01 if x_side == "left" else 0.99, _corner_y(y_side, k, len(notes))),
            xycoords="axes fraction",
            ha=x_side,
            va="bottom",
            fontsize=8.5,
            color=model_color(name),
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.85},
            zorder=10,
        )
    return out


def _corner_y(side: str, k: int, n: int) -> float:
    """The axes-fraction y of the ``k``-th of ``n`` stacked notes in the ``side`` corner."""
    return 0.01 + 0.075 * k if side == "bottom" else 0.99 - 0.075 * (n - k)


def _emptiest_corner(ax: plt.Axes, *, width: float = 0.6, height: float = 0.1) -> tuple[str, str]:
    """``(x_side, y_side)`` of the corner of ``ax`` (a ``width`` × ``height`` box in axes
    fractions) that the fewest points of its lines fall in, with the axes' current limits."""
    to_frac = ax.transScale + ax.transLimits
    pts = [to_frac.transform(line.get_xydata()) for line in ax.get_lines()]
    xy = np.concatenate(pts) if pts else np.zeros((0, 2))
    xy = xy[np.isfinite(xy).all(axis=1)]
    best, best_count = ("left", "bottom"), None
    for y_side in ("bottom", "top"):
        for x_side in ("left", "right"):
            x_in = xy[:, 0] <= width if x_side == "left" else xy[:, 0] >= 1 - width
            y_in = (xy[:, 1] >= 0) & (xy[:, 1] <= height)
            if y_side == "top":
                y_in = (xy[:, 1] <= 1) & (xy[:, 1] >= 1 - height)
            count = int((x_in & y_in).sum())
            if best_count is None or count < best_count:
                best, best_count = (x_side, y_side), count
    return best
