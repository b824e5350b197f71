r"""The leaderboard of a benchmark sweep: per system and metric, every model's mean over seeds,
its 95% confidence interval and its rank (``leaderboard.md`` and ``leaderboard.html``).

The input is the sweep's cell records (plain data: each one's ``cell`` coordinates, ``status``,
``metrics`` and times; see :mod:`hnnkit.experiments.bench_cell`). One cell's value of a metric
is its mean over the held-out trajectories; over the ``n`` seeds of a model on a setting the
leaderboard shows

.. math:: \bar x \pm t_{0.975,\,n-1}\, s / \sqrt{n},

with :math:`s` the sample standard deviation of the ``n`` values and :math:`t_{0.975,n-1}`
Student's t quantile (:func:`confidence_interval`); no interval for ``n = 1``. A value that is
not finite (a rollout that blew up) is left out of the mean and ``n`` says how many counted.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from . import style
from .tables import number

#: ``(key, heading, higher is better, factor)`` of the leaderboard's columns, in order.
COLUMNS = (
    ("test_loss", "test loss", False, 1.0),
    ("rollout_mse", "rollout MSE", False, 1.0),
    ("energy", "energy MSE", False, 1.0),
    ("valid_time", "valid time", True, 1.0),
    ("energy_drift", "energy drift", False, 1.0),
    ("symplecticity", "symplecticity defect", False, 1.0),
    ("train_seconds", "training time (s)", False, 1.0),
    ("seconds_per_step", "time per step (ms)", False, 1e3),
)
#: Columns that are timings (shown for every grid, not named by the evaluation).
TIMES = ("train_seconds", "seconds_per_step")
LEVEL = 0.95
CI_NOTE = (
    "Each entry is the mean over seeds ± the half-width of its 95% confidence interval, "
    "t(0.975, n−1)·s/√n (Student's t; s the sample standard deviation of the n per-seed values, "
    "each one cell's mean over its held-out trajectories; no interval for n = 1). n counts the "
    "finished cells with a finite value. (k) is the model's rank on that metric, 1 the best "
    "(lowest; highest for the valid time). Valid time: the first time the rollout's relative "
    "error exceeds 0.1; energy drift: relative change of the true energy along the rollout; "
    "symplecticity defect: ‖MᵀJM − J‖ of one step of the learned flow."
)


#: What each section of figures shows.
FIGURE_NOTES = {
    "Error against time": "Per system, at the grid's largest training set: the rollout MSE "
    "and the squared error of the true energy along the rollouts from the held-out initial "
    "states, averaged over those trajectories; the line is the mean over seeds, the band spans "
    "the seeds' lowest and highest.",
    "Data efficiency": "Error against the number of training trajectories. Points: the mean "
    "over seeds; bars: its 95% confidence interval (Student's t). A log axis cannot show an "
    "interval that reaches zero: such a bar is cut at a tenth of the mean.",
}


@dataclass(frozen=True)
class Interval:
    """A mean over ``n`` values and the half-width of its confidence interval (``None`` if n < 2)."""

    mean: float
    half: float | None
    n: int


def confidence_interval(values: Sequence[float], level: float = LEVEL) -> Interval | None:
    """Mean and Student-t confidence interval of the finite ``values`` (``None`` if there are none).

    The half-width is :math:`t_{(1+\\text{level})/2,\\,n-1}\\, s/\\sqrt{n}`, ``s`` the sample
    standard deviation (``n - 1`` in its denominator).
    """
    from scipy.stats import t as student_t

    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    n = len(finite)
    if n == 0:
        return None
    mean = math.fsum(finite) / n
    if n == 1:
        return Interval(mean, None, 1)
    s = math.sqrt(math.fsum((v - mean) ** 2 for v in finite) / (n - 1))
    return Interval(mean, float(student_t.ppf((1 + level) / 2, n - 1)) * s / math.sqrt(n), n)


def cell_value(record: dict[str, Any], key: str) -> float | None:
    """A finished cell's value of column ``key`` (a metric's mean, or a timing)."""
    if key in TIMES:
        value = record.get(key)
    else:
        entry = (record.get("metrics") or {}).get(key)
        value = entry.get("mean") if isinstance(entry, dict) else None
    return None if value is None else float(value)


def ranks(means: dict[str, float], higher: bool) -> dict[str, int]:
    """Competition ranks (1 = best; ties share the better rank) of ``means``."""
    order = sorted(means.values(), reverse=higher)
    return {k: 1 + order.index(v) for k, v in means.items()}


@dataclass(frozen=True)
class Setting:
    """One block of the leaderboard: a system at one noise level and training-set size."""

    system: str
    noise_std: float | None
    n_trajectories: int | None

    def title(self, records: list[dict[str, Any]]) -> str:
        """``system (noise 0.1, 50 trajectories)`` with the data the cells were trained on."""
        data = next((r.get("dataset") or {} for r in records if r.get("dataset")), {})
        noise = self.noise_std if self.noise_std is not None else data.get("noise_std")
        size = (
            self.n_trajectories if self.n_trajectories is not None else data.get("n_trajectories")
        )
        parts = [f"noise {noise:g}"] if noise is not None else []
        parts += [f"{size} trajectories"] if size is not None else []
        return f"{self.system} ({', '.join(parts)})" if parts else self.system


def settings(grid: dict[str, Any]) -> list[Setting]:
    """The grid's settings in its order (system, noise level, size)."""
    return [
        Setting(s, noise, size)
        for s in grid["systems"]
        for noise in grid["noise_std"]
        for size in grid["n_trajectories"]
    ]


def in_setting(records: list[dict[str, Any]], setting: Setting) -> list[dict[str, Any]]:
    return [
        r
        for r in records
        if r["cell"]["system"] == setting.system
        and r["cell"]["noise_std"] == setting.noise_std
        and r["cell"]["n_trajectories"] == setting.n_trajectories
    ]


def columns(grid: dict[str, Any]) -> list[tuple[str, str, bool, float]]:
    """The columns of this grid: the metrics its evaluation names, then the timings."""
    return [c for c in COLUMNS if c[0] in grid["metrics"] or c[0] in TIMES]


def block(grid: dict[str, Any], records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One setting's rows: per model ``{"model", "n", "cells": {key: (Interval | None, rank)}}``,
    sorted by the rank of the first metric (models without a finished cell last)."""
    cols = columns(grid)
    rows = []
    for model in grid["models"]:
        done = [r for r in records if r["cell"]["model"] == model and r.get("status") == "ok"]
        if not any(r["cell"]["model"] == model for r in records):
            continue
        cis = {key: confidence_interval([cell_value(r, key) for r in done]) for key, *_ in cols}
        rows.append({"model": model, "n": len(done), "ci": cis, "rank": {}})
    for key, _, higher, _ in cols:
        means = {r["model"]: r["ci"][key].mean for r in rows if r["ci"][key] is not None}
        for model, rank in ranks(means, higher).items():
            next(r for r in rows if r["model"] == model)["rank"][key] = rank
    first = cols[0][0] if cols else None
    return sorted(
        rows, key=lambda r: (r["rank"].get(first, math.inf), grid["models"].index(r["model"]))
    )


def fmt_interval(ci: Interval | None, factor: float = 1.0) -> str:
    """``mean ± half`` to 3 significant digits (``–`` when there is no value)."""
    if ci is None:
        return "–"
    mean = number(ci.mean * factor)
    return mean if ci.half is None else f"{mean} ± {number(ci.half * factor, 2)}"


def failed_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r.get("status") != "ok"]


def _first_line(text: str, width: int = 240) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def _label(record: dict[str, Any]) -> str:
    c = record["cell"]
    parts = [c["system"], c["model"], f"seed{c['seed']}"]
    if c["noise_std"] is not None:
        parts.append(f"noise={c['noise_std']:g}")
    if c["n_trajectories"] is not None:
        parts.append(f"n={c['n_trajectories']}")
    return "/".join(parts)


def markdown(
    grid: dict[str, Any],
    records: list[dict[str, Any]],
    meta: dict[str, Any],
    figures: dict[str, list[str]],
) -> str:
    """``leaderboard.md``: a table per setting, the figures (paths relative to the sweep's
    directory) and the failed cells."""
    cols = columns(grid)
    lines = [f"# Leaderboard: {grid['name']}", ""]
    if grid.get("description"):
        lines += [grid["description"], ""]
    lines += [run_summary(grid, records, meta), "", CI_NOTE, ""]
    for setting in settings(grid):
        chosen = in_setting(records, setting)
        if not chosen:
            continue
        lines += [f"## {setting.title(chosen)}", ""]
        head = ["rank", "model", "n", *(c[1] for c in cols)]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        rows = block(grid, chosen)
        for row in rows:
            cells = []
            for key, _, _, factor in cols:
                text = fmt_interval(row["ci"][key], factor)
                rank = row["rank"].get(key)
                ranked = sum(1 for r in rows if r["rank"].get(key) is not None)
                if rank == 1 and ranked > 1:
                    text = f"**{text}**"
                cells.append(f"{text} ({rank})" if rank else text)
            first = row["rank"].get(cols[0][0]) if cols else None
            lines.append(
                f"| {first or '–'} | {style.model_label(row['model'])} | {row['n']} | "
                + " | ".join(cells)
                + " |"
            )
        lines.append("")
    for title, paths in figures.items():
        lines += [f"## {title}", ""] + [f"![{p}]({p})" for p in paths] + [""]
        if title in FIGURE_NOTES:
            lines += [FIGURE_NOTES[title], ""]
    failed = failed_rows(records)
    lines += [f"## Failed cells ({len(failed)})", ""]
    if failed:
        lines += ["| cell | hash | error | traceback |", "|---|---|---|---|"]
        for r in failed:
            err = _first_line(r.get("error", "")).replace("|", "\\|")
            lines.append(
                f"| {_label(r)} | `{r['config_hash']}` | {err} | {r.get('traceback_file') or '–'} |"
            )
        lines += [
            "",
            "Rerun one with `hnnkit bench GRID --out DIR --rerun HASH`; a sweep run "
            "again retries every failed cell.",
            "",
        ]
    else:
        lines += ["None.", ""]
    return "\n".join(lines)


def run_summary(grid: dict[str, Any], records: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    ok = sum(r.get("status") == "ok" for r in records)
    seeds = grid["seeds"]
    text = (
        f"{len(records)} cells ({len(grid['systems'])} systems × {len(grid['models'])} models × "
        f"{len(seeds)} seeds"
        + (f" × {len(grid['noise_std'])} noise levels" if len(grid["noise_std"]) > 1 else "")
        + (f" × {len(grid['n_trajectories'])} sizes" if len(grid["n_trajectories"]) > 1 else "")
        + f"): {ok} finished, {len(records) - ok} failed."
    )
    run = meta.get("run") or {}
    if run:
        text += (
            f" This run: {run.get('computed', 0)} computed, {run.get('reused', 0)} reused, "
            f"{len(run.get('recomputed_corrupt', []))} corrupted results recomputed; engine "
            f"{run.get('engine')}, {run.get('workers')} worker(s), "
            f"{run.get('seconds', 0):.0f} s."
        )
    prov = meta.get("provenance") or {}
    if prov:
        text += (
            f" hnnkit {prov.get('hnnkit')} (git {str(prov.get('git_commit'))[:12]}), torch "
            f"{prov.get('torch')}, one torch thread per cell."
        )
    return text


_CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; margin: 2rem auto; max-width: 1400px; color: #222; padding: 0 1rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; white-space: nowrap; }
th { background: #f3f3f3; text-align: center; white-space: normal; } td.model { text-align: left; }
td.best { font-weight: 700; background: #eef6ff; } .pm { color: #777; font-size: 0.9em; } .rk { color: #999; font-size: 0.8em; }
p.note { font-size: 0.85rem; color: #444; max-width: 75rem; } .scroll { overflow-x: auto; }
figure { display: inline-block; vertical-align: top; margin: 0.5rem; max-width: 100%; }
img { max-width: 100%; border: 1px solid #eee; } figcaption { font-size: 0.8rem; color: #555; }
table.failed td { text-align: left; white-space: normal; max-width: 40rem; } code { font-size: 0.85em; }
nav.toc { margin: 0.5rem 0 1rem; font-size: 0.9rem; }
"""


def _html_cell(ci: Interval | None, factor: float, rank: int | None, best: bool) -> str:
    if ci is None:
        return "<td>–</td>"
    mean = html.escape(number(ci.mean * factor))
    rk = f' <span class="rk">({rank})</span>' if rank else ""
    pm = "" if ci.half is None else f'<br><span class="pm">± {number(ci.half * factor, 2)}</span>'
    return f'<td class="{"best" if best else ""}">{mean}{rk}{pm}</td>'


def html_page(
    grid: dict[str, Any],
    records: list[dict[str, Any]],
    meta: dict[str, Any],
    figures: dict[str, list[tuple[str, str]]],
) -> str:
    """``leaderboard.html``: the tables of :func:`markdown`, the figures embedded
    (``figures``: section title → ``[(caption, data URI)]``) and the failed cells."""
    cols = columns(grid)
    sections = []
    for setting in settings(grid):
        chosen = in_setting(records, setting)
        if not chosen:
            continue
        rows_data = block(grid, chosen)
        head = "".join(
            f"<th>{html.escape(h)}</th>" for h in ["rank", "model", "n", *(c[1] for c in cols)]
        )
        body = []
        for row in rows_data:
            tds = []
            for key, _, _, factor in cols:
                rank = row["rank"].get(key)
                ranked = sum(1 for r in rows_data if r["rank"].get(key) is not None)
                tds.append(_html_cell(row["ci"][key], factor, rank, rank == 1 and ranked > 1))
            first = row["rank"].get(cols[0][0]) if cols else None
            color = style.model_color(row["model"])
            body.append(
                f"<tr><td>{first or '–'}</td><td class='model'><span style='color:{color}'>■</span> "
                f"{html.escape(style.model_label(row['model']))}</td><td>{row['n']}</td>{''.join(tds)}</tr>"
            )
        title = html.escape(setting.title(chosen))
        sections.append(
            f"<h3>{title}</h3><div class='scroll'><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div>"
        )
    figs = []
    for title, items in figures.items():
        imgs = "".join(
            f'<figure><img alt="{html.escape(cap)}" src="{uri}"><figcaption>{html.escape(cap)}'
            "</figcaption></figure>"
            for cap, uri in items
        )
        note = FIGURE_NOTES.get(title)
        note = f"<p class='note'>{html.escape(note)}</p>" if note else ""
        figs.append(f"<h2>{html.escape(title)}</h2>{note}{imgs}")
    failed = failed_rows(records)
    if failed:
        rows = "".join(
            f"<tr><td>{html.escape(_label(r))}</td><td><code>{r['config_hash']}</code></td>"
            f"<td>{html.escape(_first_line(r.get('error', '')))}</td>"
            f"<td>{html.escape(r.get('traceback_file') or '–')}</td></tr>"
            for r in failed
        )
        failed_html = (
            "<table class='failed'><thead><tr><th>cell</th><th>hash</th><th>error</th>"
            f"<th>traceback</th></tr></thead><tbody>{rows}</tbody></table>"
            "<p class='note'>Rerun one with <code>hnnkit bench GRID --out DIR --rerun HASH</code>; "
            "a sweep run again retries every failed cell.</p>"
        )
    else:
        failed_html = "<p>None.</p>"
    toc = [
        "<a href='#tables'>Tables</a>",
        *(f"<a href='#fig{i}'>{html.escape(t)}</a>" for i, t in enumerate(figures)),
        "<a href='#failed'>Failed cells</a>",
    ]
    figs = [f.replace("<h2>", f"<h2 id='fig{i}'>", 1) for i, f in enumerate(figs)]
    desc = f"<p>{html.escape(grid['description'])}</p>" if grid.get("description") else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Leaderboard: {html.escape(grid["name"])}</title>
<style>{_CSS}</style></head><body>
<h1>Leaderboard: {html.escape(grid["name"])}</h1>
{desc}<p>{html.escape(run_summary(grid, records, meta))}</p>
<nav class="toc">Contents: {" · ".join(toc)}</nav>
<h2 id="tables">Mean and 95% confidence interval over seeds, per system</h2>
<p class="note">{html.escape(CI_NOTE)}</p>
{"".join(sections)}
{"".join(figs)}
<h2 id="failed">Failed cells ({len(failed)})</h2>
{failed_html}
</body></html>
"""


def write_leaderboard(
    out: Any, grid: dict[str, Any], records: list[dict[str, Any]], meta: dict[str, Any]
) -> list[Any]:
    """Write ``OUT/leaderboard.md``, ``OUT/leaderboard.html`` and ``OUT/figures/`` (error
    against time per system; error against training-set size when the grid has several).

    Returns the paths written.
    """
    import base64
    from pathlib import Path

    from ..files import atomic_write_text
    from .bench_figures import data_efficiency, error_vs_time, safe_name

    out = Path(out)
    figs: dict[str, list[Path]] = {"Error against time": [], "Data efficiency": []}
    sizes = [s for s in grid["n_trajectories"] if s is not None]
    largest = max(sizes) if sizes else None
    for system in grid["systems"]:
        for noise in grid["noise_std"]:
            tag = system + ("" if noise is None else f"-noise{noise:g}")
            chosen = [
                r
                for r in records
                if r["cell"]["system"] == system and r["cell"]["noise_std"] == noise
            ]
            at_size = [r for r in chosen if r["cell"]["n_trajectories"] == largest]
            name = Setting(system, noise, largest).title(at_size)
            paths = error_vs_time(
                at_size,
                list(grid["models"]),
                out / "figures" / f"error_vs_time_{safe_name(tag)}",
                title=name,
            )
            figs["Error against time"] += paths[:1] if paths else []
            paths = data_efficiency(
                chosen,
                list(grid["models"]),
                sizes,
                out / "figures" / f"data_efficiency_{safe_name(tag)}",
                title=Setting(system, noise, None).title([]),
            )
            figs["Data efficiency"] += paths[:1] if paths else []
    figs = {k: v for k, v in figs.items() if v}
    md_figs = {k: [str(p.relative_to(out)) for p in v] for k, v in figs.items()}
    html_figs = {
        k: [
            (p.stem, "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode())
            for p in v
        ]
        for k, v in figs.items()
    }
    written = [
        atomic_write_text(out / "leaderboard.md", markdown(grid, records, meta, md_figs)),
        atomic_write_text(out / "leaderboard.html", html_page(grid, records, meta, html_figs)),
    ]
    return written + [p for v in figs.values() for p in v]
