"""Figures of a benchmark sweep: error against time and error against training-set size.

Both take the sweep's cell records (plain data, see :mod:`hnnkit.report.leaderboard`) and draw
every model in its colour and label (:mod:`hnnkit.report.style`), with one legend under the
panels, off the data.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from ..files import atomic_write
from . import style
from .leaderboard import cell_value, confidence_interval

#: ``(key of the stored curve, axis label)`` of the error-against-time panels.
TIME_PANELS = (("rollout_mse", "rollout MSE"), ("energy_mse", "energy MSE"))
#: ``(column, axis label)`` of the data-efficiency panels.
SIZE_PANELS = (("test_loss", "test loss (derivative MSE)"), ("rollout_mse", "rollout MSE"))
#: Factor between the x positions of neighbouring models in the data-efficiency panels.
DODGE = 1.04


def _as_array(values: list[Any]) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def _positive(ax: plt.Axes) -> None:
    """Log scale on y if nothing drawn is negative and the positive values span more than two
    decades (an error that starts at 0 at t = 0 is then left off the log axis)."""
    ys = [line.get_ydata() for line in ax.get_lines()]
    ys = np.concatenate([np.asarray(y, dtype=float) for y in ys]) if ys else np.zeros(0)
    ys = ys[np.isfinite(ys)]
    pos = ys[ys > 0]
    if pos.size and (ys >= 0).all() and pos.max() > 100 * pos.min():
        ax.set_yscale("log", nonpositive="mask")


def error_vs_time(
    records: list[dict[str, Any]], models: list[str], path_stem: str | os.PathLike, *, title: str
) -> list[Path] | None:
    """Rollout MSE and energy MSE against time, one line per model: the mean over its seeds of
    the per-cell curves (each averaged over the held-out trajectories), with the band between
    the seeds' lowest and highest. ``None`` when no record has curves."""
    curves: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        if r.get("status") == "ok" and isinstance(r.get("curves"), dict):
            curves.setdefault(r["cell"]["model"], []).append(r["curves"])
    if not curves:
        return None
    with plt.rc_context(style.RC):
        fig, axes = plt.subplots(1, len(TIME_PANELS), figsize=(11.0, 4.0))
        for ax, (key, label) in zip(axes, TIME_PANELS, strict=True):
            for model in [m for m in models if m in curves]:
                t = _as_array(curves[model][0]["t"])
                runs = [_as_array(c[key]) for c in curves[model] if len(c[key]) == len(t)]
                stack = np.vstack(runs)
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # times every seed lost
                    mean = np.nanmean(stack, axis=0) if np.isfinite(stack).any() else stack[0]
                    lo, hi = np.nanmin(stack, axis=0), np.nanmax(stack, axis=0)
                ax.plot(t, mean, **style.line_style(model))
                if len(runs) > 1:
                    ax.fill_between(t, lo, hi, color=style.model_color(model), alpha=0.15, lw=0)
            _positive(ax)
            ax.set_xlabel(style.time_label())
            ax.set_ylabel(label)
            ax.set_title(f"{title}: {label}")
        style.figure_legend(fig, axes)
        fig.tight_layout(rect=(0, 0.1, 1, 1))
        return _save_png(fig, path_stem)


def data_efficiency(
    records: list[dict[str, Any]],
    models: list[str],
    sizes: list[int],
    path_stem: str | os.PathLike,
    *,
    title: str,
) -> list[Path] | None:
    """Test loss and rollout MSE against the number of trajectories in the data set (the grid's
    ``n_trajectories`` axis, of which the system's test fraction is held out; log x), one line
    per model: the mean over seeds with its 95% confidence interval as error bars (a bar
    reaching zero is cut at a tenth of the mean), the models side by side a little apart so
    that their bars do not hide each other."""
    if len(sizes) < 2:
        return None
    with plt.rc_context(style.RC):
        fig, axes = plt.subplots(1, len(SIZE_PANELS), figsize=(11.0, 4.0))
        for ax, (key, label) in zip(axes, SIZE_PANELS, strict=True):
            for i, model in enumerate(models):
                apart = DODGE ** (i - (len(models) - 1) / 2)  # this model's x offset (log axis)
                xs, ys, errs = [], [], []
                for size in sizes:
                    done = [
                        r
                        for r in records
                        if r.get("status") == "ok"
                        and r["cell"]["model"] == model
                        and r["cell"]["n_trajectories"] == size
                    ]
                    ci = confidence_interval([cell_value(r, key) for r in done])
                    if ci is None:
                        continue
                    xs.append(size * apart)
                    ys.append(ci.mean)
                    half = 0.0 if ci.half is None else ci.half
                    # a log axis cannot show a bar reaching zero: cut it at a tenth of the mean
                    errs.append((min(half, 0.9 * ci.mean) if ci.mean > 0 else 0.0, half))
                if not xs:
                    continue
                err = np.array(errs).T
                kw = style.line_style(model)
                ax.errorbar(xs, ys, yerr=err, marker="o", ms=4, capsize=3, **kw)
            ax.set_xscale("log")
            _positive(ax)
            ax.set_xticks(sizes)
            ax.set_xticklabels([str(s) for s in sizes])
            ax.minorticks_off()
            ax.set_xlabel("trajectories in the data set (train + held out)")
            ax.set_ylabel(label)
            ax.set_title(f"{title}: {label}")
        style.figure_legend(fig, axes)
        fig.tight_layout(rect=(0, 0.1, 1, 1))
        return _save_png(fig, path_stem)


def _save_png(fig: plt.Figure, path_stem: str | os.PathLike) -> list[Path]:
    """Save ``fig`` as ``path_stem.png`` (atomically; the page embeds it) and close it."""
    target = Path(path_stem).with_suffix(".png")
    atomic_write(target, lambda p: fig.savefig(p, format="png", bbox_inches="tight", dpi=130))
    plt.close(fig)
    return [target]


def safe_name(text: str) -> str:
    """``text`` as part of a file name (letters, digits, ``-``, ``_`` and ``.``)."""
    out = "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
    return out or "_"
