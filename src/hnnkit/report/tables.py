"""Table 1 as Markdown and HTML, and the self-contained report page."""

from __future__ import annotations

import base64
import html
import math
import re
from pathlib import Path
from typing import Any

COLUMNS = ("train", "test", "energy")
MODEL_ORDER = ("baseline", "hnn", "dhnn", "mlp-hnn", "kan-hnn")


def _positional(value: float) -> bool:
    return value == 0 or not math.isfinite(value) or 1e-3 <= abs(value) < 1e5


def number(value: float, digits: int = 3, *, positional: bool | None = None) -> str:
    """``value`` to ``digits`` significant digits, positional between 1e-3 and 1e5, else ``1.2e9``.

    ``3780`` reads faster than ``3.78e+03``, and a table of them stays narrow. ``positional``
    forces one notation (a ± follows its mean's).
    """
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    exponent = math.floor(math.log10(abs(value)))
    if _positional(value) if positional is None else positional:
        decimals = max(0, digits - 1 - exponent)
        text = f"{round(value, digits - 1 - exponent):.{decimals}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    mantissa, power = f"{value:.{digits - 1}e}".split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(power)}"


def _mean_sem(cell: Any) -> tuple[float | None, float | None]:
    if cell is None:
        return None, None
    if isinstance(cell, (tuple, list)):
        return cell[0], cell[1]
    return cell.get("mean"), cell.get("sem")


def _parts(cell: Any) -> tuple[str, str | None]:
    """The mean's text (``–`` when missing) and the ± text (``None`` when there is none)."""
    mean, sem = _mean_sem(cell)
    if mean is None:
        return "–", None
    if sem is None:
        return number(mean), None
    if abs(sem) <= 1e-9 * abs(mean):  # round-off, not an error bar
        sem = 0.0
    return number(mean), number(sem, 2, positional=_positional(mean))


def fmt(cell: Any) -> str:
    """``mean ± sem`` with 3 and 2 significant digits; ``–`` when missing."""
    mean, sem = _parts(cell)
    return mean if sem is None else f"{mean} ± {sem}"


def _unique_best(groups: dict[str, list[tuple[float, int]]], better=min) -> set[int]:
    """The row of each group's ``better`` value, where the group has several and no tie."""
    rows = set()
    for entries in groups.values():
        winner = better(entries)
        if len(entries) > 1 and sum(v == winner[0] for v, _ in entries) == 1:
            rows.add(winner[1])
    return rows


#: the three column groups, side by side: (CSS class, title)
GROUPS = (
    ("paper", "paper (Table 1)"),
    ("original", "ours, original protocol"),
    ("corrected", "ours, corrected protocol"),
)
#: results.json keys of our train, test and energy columns
KEYS = ("train_loss", "test_loss", "energy")


def _cells(task_entry: dict[str, Any], model: str) -> list[Any]:
    """The nine raw cells of one row: paper, original, corrected × train, test, energy."""
    r = task_entry["models"][model]
    paper = task_entry.get("paper", {}).get(model, {})
    original = r.get("original", {})
    return (
        [paper.get(c) for c in COLUMNS] + [original.get(k) for k in KEYS] + [r.get(k) for k in KEYS]
    )


def _ordered_models(entry: dict[str, Any]) -> list[str]:
    return sorted(entry["models"], key=lambda m: MODEL_ORDER.index(m) if m in MODEL_ORDER else 99)


def _table(results: dict[str, Any]) -> list[tuple[list[str], list[Any]]]:
    """``(labels, cells)`` per task × model: labels task, model, scale, seeds; nine raw cells."""
    rows = []
    for task, entry in results.get("tasks", {}).items():
        if "models" not in entry:
            continue
        scale = f"×{entry.get('scale', 1e3):.0e}".replace("e+0", "e")
        for m in _ordered_models(entry):
            labels = [task, m, scale, str(entry["models"][m].get("n_seeds", ""))]
            rows.append((labels, _cells(entry, m)))
    return rows


def _best_energy(rows: list[tuple[list[str], list[Any]]]) -> set[tuple[int, int]]:
    """(row, column) of the lowest energy error per task in each of our two protocols."""
    best: set[tuple[int, int]] = set()
    for col in (5, 8):
        by_task: dict[str, list[tuple[float, int]]] = {}
        for i, (labels, cells) in enumerate(rows):
            mean, _ = _mean_sem(cells[col])
            if mean is not None and math.isfinite(mean):
                by_task.setdefault(labels[0], []).append((mean, i))
        best |= {(i, col) for i in _unique_best(by_task)}
    return best


HEADER = [
    "task",
    "model",
    "scale",
    "seeds",
    "paper train",
    "paper test",
    "paper energy",
    "orig. train",
    "orig. test",
    "orig. energy",
    "corr. train",
    "corr. test",
    "corr. energy",
]

TABLE_NOTE = (
    "Values are multiplied by the scale shown (the paper's convention). *train/test*: derivative "
    "MSE, the same means under both protocols; ± is the standard error over points under the "
    "original protocol, over seeds (points for one seed) under the corrected one. *energy*: MSE of "
    "the energy along long rollouts, under the original protocol (*orig.*: its quirks kept, so it "
    "compares with the paper) and the corrected one (*corr.*: aligned clocks, the true H, tight "
    "tolerances); see README, Evaluation protocols. **Bold**: the task's lowest energy error."
)


def skipped_tasks(results: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """``(task, why, fix)`` of each task that results.json holds as skipped (``fix``: the one
    line that makes it run, where known)."""
    found = []
    for name, entry in results.get("tasks", {}).items():
        if isinstance(entry, dict) and "skipped" in entry:
            fix = entry.get("fix")
            found.append((name, str(entry["skipped"]), fix if isinstance(fix, str) else None))
    return found


def _fix_then_why(why: str, fix: str | None) -> str:
    """The fix first (the cause of a failed download can be long), then why."""
    return why if fix is None else f"{fix} (skipped: {why})"


def skipped_lines(results: dict[str, Any]) -> list[str]:
    """One line per skipped task, naming it and what fixes it (empty when none was skipped)."""
    found = skipped_tasks(results)
    if not found:
        return []
    head = f"SKIPPED {len(found)} task{'s' * (len(found) > 1)}, not in the table:"
    return [head, *(f"  {name}: {_fix_then_why(why, fix)}" for name, why, fix in found)]


def skipped_markdown(results: dict[str, Any]) -> str:
    """The skipped tasks as a Markdown block for the top of table.md (empty when none)."""
    found = skipped_tasks(results)
    if not found:
        return ""
    lines = [f"> **Skipped, not in the table:** {len(found)} task{'s' * (len(found) > 1)}", ">"]
    lines += [f"> - **{name}**: {_fix_then_why(why, fix)}" for name, why, fix in found]
    return "\n".join(lines) + "\n\n"


def markdown_table(results: dict[str, Any]) -> str:
    """Table 1 in Markdown, after the tasks that were skipped (each with its fix)."""
    rows = _table(results)
    best = _best_energy(rows)
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * 2 + "---:|" * (len(HEADER) - 2)]
    for i, (labels, cells) in enumerate(rows):
        texts = [f"**{fmt(c)}**" if (i, j) in best else fmt(c) for j, c in enumerate(cells)]
        lines.append("| " + " | ".join(labels + texts) + " |")
    return (
        skipped_markdown(results)
        + "\n".join(lines)
        + "\n\n"
        + TABLE_NOTE
        + "\n"
        + dissipation_notes(results)
        + long_horizon_markdown(results)
    )


#: Long-horizon metrics of the corrected protocol: (results.json key, title, the better end)
LONG_HORIZON = (
    ("rollout_mse", "rollout MSE", min),
    ("valid_time", "valid time", max),
    ("energy_drift", "energy drift", min),
    ("angular_momentum_drift", "angular-momentum drift", min),
    ("symplecticity", "symplecticity defect", min),
)
LONG_HORIZON_NOTE = (
    "Corrected protocol, from the held-out initial states over the task's evaluation span. "
    "*rollout MSE*: coordinate error over the span, in the task's scale. *valid time*: the first "
    "time the relative error passes 0.1. *drift*: relative change of the true energy (and of the "
    "N-body angular momentum) from the start to the end of the span; the *truth* row is the "
    "reference trajectories' own (zero up to solver error when the system conserves it, the "
    "real decay when it has friction). *symplecticity defect*: ‖MᵀJM − J‖/‖J‖ of the Jacobian M "
    "of one implicit-midpoint step of the model's field over the output interval, from the "
    "initial states: round-off for any HNN, of order the step for a field that is not a "
    "symplectic gradient. **Bold**: the task's best (for drifts and the defect: the closest to "
    "the truth's); ties are not marked."
)


def long_horizon_table(results: dict[str, Any]) -> tuple[list[str], list[list[Any]], set]:
    """``(header, rows, best)``: one row per task × model of :data:`LONG_HORIZON` cells.

    Columns that no model has are left out; ``best`` holds the ``(row, column)`` of each task's
    best value per column (only where the task has more than one model with a value).
    """
    rows: list[list[Any]] = []
    truth: dict[str, dict[str, Any]] = {}
    for task, entry in results.get("tasks", {}).items():
        models = (
            [(m, entry["models"][m]) for m in _ordered_models(entry)] if "models" in entry else []
        )
        if models and "truth" in entry:
            truth[task] = entry["truth"]
            models.append(("truth", entry["truth"]))
        for m, r in models:
            cells = [r.get(key) for key, _, _ in LONG_HORIZON]
            if any(c is not None for c in cells):
                rows.append([task, m, *cells])
    keep = [i for i in range(len(LONG_HORIZON)) if any(row[2 + i] is not None for row in rows)]
    rows = [[row[0], row[1], *(row[2 + i] for i in keep)] for row in rows]
    header = ["task", "model", *(LONG_HORIZON[i][1] for i in keep)]
    best: set[tuple[int, int]] = set()
    for col, i in enumerate(keep, start=2):
        key, _, better = LONG_HORIZON[i]
        by_task: dict[str, list[tuple[float, int]]] = {}
        for n, row in enumerate(rows):
            mean, _ = _mean_sem(row[col])
            if row[1] != "truth" and mean is not None and math.isfinite(mean):
                by_task.setdefault(row[0], []).append((mean, n))
        for task, entries in by_task.items():
            target, _ = _mean_sem(truth.get(task, {}).get(key))
            if target is not None:  # a drift: the closest to the reference's is best
                found = _unique_best({task: [(abs(v - target), n) for v, n in entries]})
            else:
                found = _unique_best({task: entries}, better)
            best |= {(n, col) for n in found}
    return header, rows, best


def long_horizon_markdown(results: dict[str, Any]) -> str:
    """The long-horizon table in Markdown (empty when no task has these metrics)."""
    header, rows, best = long_horizon_table(results)
    if not rows:
        return ""
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
    for n, row in enumerate(rows):
        cells = [f"**{fmt(c)}**" if (n, j) in best else fmt(c) for j, c in enumerate(row) if j >= 2]
        lines.append("| " + " | ".join([row[0], row[1], *cells]) + " |")
    return "\n**Long horizon**\n\n" + "\n".join(lines) + "\n\n" + LONG_HORIZON_NOTE + "\n"


def dissipation_notes(results: dict[str, Any]) -> str:
    """Markdown lines on dissipation: learned friction rate vs the true gamma, and energy decay rates."""
    lines = []
    for task, entry in results.get("tasks", {}).items():
        for m, r in entry.get("models", {}).items():
            if "dissipation_rate" in r:
                rate = r["dissipation_rate"]
                gamma = r.get("gamma_true")
                if gamma and isinstance(rate, dict) and rate.get("mean") is not None:
                    err = f" ({100 * (rate['mean'] - gamma) / gamma:+.1f}% from the true γ = {gamma:g})"
                elif gamma:  # a NaN rate is null in strict JSON
                    err = f" (true γ = {gamma:g})"
                else:
                    err = "" if gamma is None else f" (true γ = {gamma:g})"
                lines.append(f"- {task}, {m}: learned dissipation rate {fmt(rate)}{err}")
        decay = entry.get("energy_decay_rate")
        if decay:
            parts = ", ".join(f"{k} {'–' if v is None else f'{v:.4f}'}" for k, v in decay.items())
            lines.append(f"- {task}: energy decay rate over the whole recording (1/time): {parts}")
    if not lines:
        return ""
    return "\n**Dissipation**\n\n" + "\n".join(lines) + "\n"


def _html_note(note: str = TABLE_NOTE) -> str:
    """``note`` with its Markdown emphasis as HTML."""
    text = html.escape(note)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"\*(.+?)\*", r"<i>\1</i>", text)


def html_report(
    results: dict[str, Any], figures: dict[str, list[Path]], title: str = "hnnkit reproduction"
) -> str:
    """A self-contained HTML page: table, figures embedded as base64 PNG, provenance."""

    def img(path: Path) -> str:
        data = base64.b64encode(Path(path).read_bytes()).decode()
        mime = "image/gif" if str(path).endswith(".gif") else "image/png"
        return f'<img alt="{html.escape(Path(path).stem)}" src="data:{mime};base64,{data}">'

    def cell(value: Any, group: str, bold: bool) -> str:
        mean, sem = _parts(value)
        text = html.escape(mean)
        if sem is not None:
            text += f'<span class="pm"> ± {html.escape(sem)}</span>'
        return f'<td class="{group}{" best" if bold else ""}">{text}</td>'

    head = (
        '<tr><th rowspan="2">task<br><small>scale</small></th>'
        + "".join(f'<th rowspan="2">{h}</th>' for h in HEADER[1:4:2])
        + "".join(f'<th colspan="3" class="{g}">{html.escape(t)}</th>' for g, t in GROUPS)
        + "</tr><tr>"
        + "".join(f'<th class="{g}">{c}</th>' for g, _ in GROUPS for c in COLUMNS)
        + "</tr>"
    )
    rows = _table(results)
    best = _best_energy(rows)
    span = {t: sum(labels[0] == t for labels, _ in rows) for t in {labels[0] for labels, _ in rows}}
    body = ""
    for i, (labels, cells) in enumerate(rows):
        task, model, scale, seeds = labels
        first = i == 0 or rows[i - 1][0][0] != task
        body += '<tr class="first">' if first else "<tr>"
        if first:  # one cell per task, its scale under its name
            body += (
                f'<th rowspan="{span[task]}" class="task">{html.escape(task)}<br>'
                f"<small>{html.escape(scale)}</small></th>"
            )
        body += f'<td class="model">{html.escape(model)}</td><td>{html.escape(seeds)}</td>'
        body += "".join(cell(c, GROUPS[j // 3][0], (i, j) in best) for j, c in enumerate(cells))
        body += "</tr>"
    long_header, long_rows, long_best = long_horizon_table(results)
    long_html = ""
    if long_rows:
        long_html = "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in long_header) + "</tr>"
        for n, row in enumerate(long_rows):
            first = n == 0 or long_rows[n - 1][0] != row[0]
            long_html += '<tr class="first">' if first else "<tr>"
            if first:
                count = sum(r[0] == row[0] for r in long_rows)
                long_html += f'<th rowspan="{count}" class="task">{html.escape(row[0])}</th>'
            long_html += f'<td class="model">{html.escape(row[1])}</td>'
            long_html += "".join(
                cell(c, "long", (n, j) in long_best) for j, c in enumerate(row) if j >= 2
            )
            long_html += "</tr>"
        long_html = (
            f'<h3>Long horizon</h3><div class="scroll"><table>{long_html}</table></div>'
            f'<p class="note">{_html_note(LONG_HORIZON_NOTE)}</p>'
        )
    sections = []
    for task, paths in figures.items():
        imgs = "".join(
            f"<figure>{img(p)}<figcaption>{html.escape(Path(p).stem)}</figcaption></figure>"
            for p in paths
        )
        sections.append(f"<section><h2>{html.escape(task)}</h2>{imgs}</section>")
    skipped = "".join(
        f"<li><b>{html.escape(name)}</b>: {html.escape(_fix_then_why(why, fix))}</li>"
        for name, why, fix in skipped_tasks(results)
    )
    dissipation = "".join(
        f"<li>{html.escape(line[2:])}</li>"
        for line in dissipation_notes(results).splitlines()
        if line.startswith("- ")
    )
    prov = results.get("provenance", {})
    prov_rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in prov.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, -apple-system, Segoe UI, sans-serif; margin: 2rem auto; max-width: 1400px; color: #222; padding: 0 1rem; }}
table {{ border-collapse: collapse; font-size: 0.85rem; margin: 1rem 0; }}
th, td {{ border: 1px solid #ccc; padding: 3px 6px; text-align: right; white-space: nowrap; }}
th {{ background: #f3f3f3; text-align: center; }} .scroll {{ overflow-x: auto; }}
th.task {{ text-align: left; vertical-align: top; background: #fff; }}
th.task small {{ font-weight: normal; color: #777; }} tr.first > * {{ border-top: 2px solid #999; }}
td.model {{ text-align: left; }}
th.paper, td.paper {{ background: #fff8e6 !important; }}
th.corrected, td.corrected {{ background: #eef6ff !important; }}
td.best {{ font-weight: 700; }} .pm {{ color: #777; font-size: 0.9em; }}
figure {{ display: inline-block; margin: 0.5rem; }} img {{ max-width: 100%; border: 1px solid #eee; }}
img[src^="data:image/gif"] {{ width: 480px; image-rendering: pixelated; }}
div.skipped {{ border: 2px solid #c00; background: #fff0f0; padding: 0 1rem; }}
figcaption {{ font-size: 0.8rem; color: #666; }} .meta td {{ text-align: left; font-weight: normal; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
{'<div class="skipped"><h3>Skipped, not in the table</h3><ul>' + skipped + "</ul></div>" if skipped else ""}
<p>Profile <b>{html.escape(str(results.get("profile")))}</b>, protocols shown side by side:
the paper's Table 1 (yellow), ours under the original evaluation protocol, and ours under the corrected protocol (blue).</p>
<div class="scroll"><table><thead>{head}</thead><tbody>{body}</tbody></table></div>
<p class="note">{_html_note()}</p>
{"<h3>Dissipation</h3><ul>" + dissipation + "</ul>" if dissipation else ""}
{long_html}
{"".join(sections)}
<h2>Provenance</h2><table class="meta">{prov_rows}</table>
</body></html>
"""
