"""The symbolic-recovery benchmark's Markdown table
(:mod:`hnnkit.experiments.symbolic_bench` writes the cells)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any


def _rate(cells: Sequence[dict[str, Any]], method: str) -> str:
    runs = [c[method] for c in cells if c.get(method) is not None]
    if not runs:
        return "–"
    ok = sum(bool(r["success"]) for r in runs)
    return f"{ok}/{len(runs)} ({100 * ok / len(runs):.0f}%)"


def _median_seconds(cells: Sequence[dict[str, Any]], method: str) -> str:
    secs = [c[method]["seconds"] for c in cells if c.get(method) is not None]
    return f"{statistics.median(secs):.3g}" if secs else "–"


def bench_table(
    results: Sequence[dict[str, Any]],
    *,
    polynomial: Sequence[str] = (),
) -> str:
    """Success rates per system × noise level for the KAN-HNN and SINDy, and the median
    time per fit, as a Markdown table.

    Args:
        results: cell results (each with ``config``, ``kan`` and ``sindy``).
        polynomial: the systems whose :math:`H` is a polynomial; with any, a last row pools
            them per noise level.

    Returns:
        The table (rows in the order systems first appear; columns in noise order), each
        entry ``KAN k/n (%) · SINDy k/n (%)``.
    """
    systems = list(dict.fromkeys(r["config"]["system"] for r in results))
    noise = sorted({r["config"]["noise"] for r in results})
    head = ["system"] + [f"noise {100 * n:g}%: KAN · SINDy" for n in noise]
    head += ["seeds", "median s/fit KAN · SINDy"]
    rows = [head, ["---"] * len(head)]

    def row(label: str, cells: list[dict[str, Any]]) -> list[str]:
        out = [label]
        for n in noise:
            at = [c for c in cells if c["config"]["noise"] == n]
            out.append(f"{_rate(at, 'kan')} · {_rate(at, 'sindy')}" if at else "not run")
        seeds = sorted({c["config"]["seed"] for c in cells})
        out.append(",".join(map(str, seeds)))
        out.append(f"{_median_seconds(cells, 'kan')} · {_median_seconds(cells, 'sindy')}")
        return out

    for s in systems:
        rows.append(row(s, [r for r in results if r["config"]["system"] == s]))
    pooled = [r for r in results if r["config"]["system"] in set(polynomial)]
    if pooled:
        rows.append(row("**polynomial systems**", pooled))
    return "\n".join("| " + " | ".join(r) + " |" for r in rows) + "\n"


__all__ = ["bench_table"]
