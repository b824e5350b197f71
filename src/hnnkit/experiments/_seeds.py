"""Per-seed runs of the extra reproduce tasks: reuse finished seeds, publish seed 0's figures."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..files import atomic_write


def run_seeds(
    out_dir: str | Path,
    seeds: int,
    run: Callable[[Path, int], dict[str, Any]],
    echo: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """``run(out_dir/seedN, N)`` for ``N < seeds``, reusing each finished seed's ``metrics.json``.

    An unreadable ``metrics.json`` is moved aside to ``metrics.json.corrupt``, with a message
    through ``echo``, and the seed rerun. Afterwards seed 0's ``figures/`` are copied to
    ``out_dir/figures`` for the report.
    """
    out_dir = Path(out_dir)
    runs = []
    for s in range(seeds):
        seed_dir = out_dir / f"seed{s}"
        done = seed_dir / "metrics.json"
        if done.exists():
            try:
                cached = json.loads(done.read_text(encoding="utf-8"))
                if not isinstance(cached, dict):
                    raise ValueError("not a JSON object")
                runs.append(cached)
                continue
            except (ValueError, UnicodeDecodeError) as exc:
                aside = done.with_name("metrics.json.corrupt")
                done.replace(aside)
                echo(f"{done} is corrupted ({exc}); moved it to {aside.name}, rerunning seed {s}")
        runs.append(run(seed_dir, s))
    src, dst = out_dir / "seed0" / "figures", out_dir / "figures"
    if src.is_dir():
        dst.mkdir(parents=True, exist_ok=True)
        for p in src.iterdir():
            atomic_write(dst / p.name, lambda tmp, p=p: tmp.write_bytes(p.read_bytes()))
    return runs
