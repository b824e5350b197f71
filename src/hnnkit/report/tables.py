"""Table 1 as Markdown and HTML, and the self-contained report page."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

COLUMNS = ("train", "test", "energy")
MODEL_ORDER = ("baseline", "hnn", "dhnn", "mlp-hnn", "kan-hnn")


def fmt(cell: Any) -> str:
    """``mean ± sem`` with 2–3 significant digits; ``–`` when missing."""
    if cell is None:
        return "–"
    if isinstance(cell, (tuple, list)):
        mean, sem = cell
    else:
        mean, sem = cell["mean"], cell.get("sem")
    if mean is None:
        return "–"
    s = f"{mean:.3g}"
    return s if sem is None else f"{s} ± {sem:.2g}"


def table_rows(results: dict[str, Any]) -> list[list[str]]:
    """One row per task × model: paper | ours (original protocol) | ours (corrected protocol)."""
    rows = []
    for task, entry in results.get("tasks", {}).items():
        if "models" not in entry:
            continue
        scale = entry.get("scale", 1e3)
        models = sorted(
            entry["models"], key=lambda m: MODEL_ORDER.index(m) if m in MODEL_ORDER else 99
        )
        for m in models:
            r = entry["models"][m]
            paper = entry.get("paper", {}).get(m, {})
            orig = r.get("original", {})
            rows.append(
                [task, m, f"×{scale:.0e}".replace("e+0", "e"), str(r.get("n_seeds", ""))]
                + [fmt(paper.get(c)) for c in COLUMNS]
                + [fmt(orig.get(f"{c}_loss" if c != "energy" else c)) for c in COLUMNS]
                + [fmt(r.get(f"{c}_loss" if c != "energy" else c)) for c in COLUMNS]
            )
    return rows


HEADER = [
    "task",
    "model",
    "scale",
    "seeds",
    "paper train",
    "paper test",
    "paper energy",
    "original-protocol train",
    "original-protocol test",
    "original-protocol energy",
    "corrected train",
    "corrected test",
    "corrected energy",
]


def markdown_table(results: dict[str, Any]) -> str:
    """Table 1 in Markdown."""
    rows = table_rows(results)
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    notes = (
        "\nValues are multiplied by the scale shown (the paper's convention). *train/test*: derivative MSE "
        "(± standard error over points for the original protocol, over seeds for the corrected one). *energy*: "
        "MSE of the energy along long rollouts (see README, Evaluation protocols).\n"
    )
    return "\n".join(lines) + "\n" + notes + dissipation_notes(results)


def dissipation_notes(results: dict[str, Any]) -> str:
    """Markdown lines on dissipation: learned friction rate vs the true gamma, and energy decay rates."""
    lines = []
    for task, entry in results.get("tasks", {}).items():
        for m, r in entry.get("models", {}).items():
            if "dissipation_rate" in r:
                rate = r["dissipation_rate"]
                gamma = r.get("gamma_true")
                if gamma:
                    err = f" ({100 * (rate['mean'] - gamma) / gamma:+.1f}% from the true γ = {gamma:g})"
                else:
                    err = "" if gamma is None else f" (true γ = {gamma:g})"
                lines.append(f"- {task}, {m}: learned dissipation rate {fmt(rate)}{err}")
        decay = entry.get("energy_decay_rate")
        if decay:
            parts = ", ".join(f"{k} {v:.4f}" for k, v in decay.items())
            lines.append(f"- {task}: energy decay rate over the whole recording (1/time): {parts}")
    if not lines:
        return ""
    return "\n**Dissipation**\n\n" + "\n".join(lines) + "\n"


def html_report(
    results: dict[str, Any], figures: dict[str, list[Path]], title: str = "hnnkit reproduction"
) -> str:
    """A self-contained HTML page: table, figures embedded as base64 PNG, provenance."""

    def img(path: Path) -> str:
        data = base64.b64encode(Path(path).read_bytes()).decode()
        mime = "image/gif" if str(path).endswith(".gif") else "image/png"
        return f'<img alt="{html.escape(Path(path).stem)}" src="data:{mime};base64,{data}">'

    head = "".join(f"<th>{html.escape(h)}</th>" for h in HEADER)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
        for row in table_rows(results)
    )
    sections = []
    for task, paths in figures.items():
        imgs = "".join(
            f"<figure>{img(p)}<figcaption>{html.escape(Path(p).stem)}</figcaption></figure>"
            for p in paths
        )
        sections.append(f"<section><h2>{html.escape(task)}</h2>{imgs}</section>")
    skipped = "".join(
        f"<li><b>{html.escape(t)}</b>: {html.escape(e['skipped'])}</li>"
        for t, e in results.get("tasks", {}).items()
        if "skipped" in e
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
table {{ border-collapse: collapse; font-size: 0.8rem; margin: 1rem 0; }}
th, td {{ border: 1px solid #ccc; padding: 3px 5px; text-align: right; white-space: nowrap; }}
th {{ white-space: normal; max-width: 6rem; vertical-align: bottom; }}
.scroll {{ overflow-x: auto; }}
th {{ background: #f3f3f3; }} td:first-child, td:nth-child(2) {{ text-align: left; font-weight: 600; }}
tr:nth-child(even) td {{ background: #fafafa; }}
th:nth-child(n+5):nth-child(-n+7), td:nth-child(n+5):nth-child(-n+7) {{ background: #fff8e6; }}
th:nth-child(n+11), td:nth-child(n+11) {{ background: #eef6ff; }}
figure {{ display: inline-block; margin: 0.5rem; }} img {{ max-width: 100%; border: 1px solid #eee; }}
img[src^="data:image/gif"] {{ width: 480px; image-rendering: pixelated; }}
figcaption {{ font-size: 0.8rem; color: #666; }} .meta td {{ text-align: left; font-weight: normal; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Profile <b>{html.escape(str(results.get("profile")))}</b>, protocols shown side by side:
the paper's Table 1 (yellow), ours under the original evaluation protocol, and ours under the corrected protocol (blue).</p>
<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>
<p>Values are multiplied by the scale shown (the paper's convention). <i>train/test</i>: derivative
MSE (± standard error over points for the original protocol, over seeds for the corrected one).
<i>energy</i>: MSE of the energy along long rollouts.</p>
{"<h3>Dissipation</h3><ul>" + dissipation + "</ul>" if dissipation else ""}
{"<h3>Skipped tasks</h3><ul>" + skipped + "</ul>" if skipped else ""}
{"".join(sections)}
<h2>Provenance</h2><table class="meta">{prov_rows}</table>
</body></html>
"""
