"""Benchmark: ``hnnkit reproduce`` end to end, and per task.

Times ``hnnkit.experiments.reproduce.reproduce(tmpdir, profile=..., quiet=True, echo=...)``
over every task this version of hnnkit has (unavailable ones are skipped by reproduce and
reported as such), in a fresh output directory and, unless ``--warm-cache``, a fresh dataset
cache (``HNNKIT_CACHE``), so data generation is included as it is in the original's timings.
The real-pendulum data come from ``HNNKIT_DATA`` (set to ``/work/shared/data/real_pendulum``
when unset; no network).

Per task it reports the wall time (from reproduce's ``[task] done in X s`` lines) and, from
``results.json``, the training seconds of the baseline and the HNN; the rest is data
generation, evaluation under both protocols, and figures.

There is no reference that can run in the same process for an end-to-end figure, so the
totals are printed against the issue's targets (quick < 5 min, paper < 10 min for one seed on
2 CPU cores) and against the original code's own timings on this machine class
(``../shared/notes/hnn-original.md`` §8), which were measured on an unloaded machine: compare
with care, and look at the load average printed with the result.

Usage::

    python benchmarks/bench_reproduce.py             # quick profile (target < 5 min)
    python benchmarks/bench_reproduce.py --quick     # smoke profile on 3 tasks, ~20 s (harness check)
    python benchmarks/bench_reproduce.py --paper     # paper profile, one seed (long: 10+ min)
    python benchmarks/bench_reproduce.py --tasks spring,pendulum --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from _common import machine_line

TARGETS = {"quick": 300.0, "paper": 600.0}
#: --quick: the smoke profile on these tasks only (all seven take about 50 s even in smoke)
QUICK_TASKS = "spring,pendulum,real-pendulum"
#: The original code on this machine class, seconds per task, seed 0, unloaded (notes §8):
#: train.py wall time for HNN + baseline (data generation included for spring, pendulum,
#: real), plus the separately measured pieces named in the note.
ORIGINAL = {
    "spring": (28.1 + 18.7 + 31.5, "HNN 28.1 + baseline 18.7 + energy eval 31.5"),
    "pendulum": (40.9 + 29.9 + 16.2, "HNN 40.9 + baseline 29.9 + energy eval 16.2"),
    "real-pendulum": (30.3 + 13.1 + 1.0, "HNN 30.3 + baseline 13.1 + eval <1"),
    "two-body": (70.8 + 50.8 + 16.5, "HNN 70.8 + baseline 50.8 + data 16.5; eval not measured"),
    "three-body": (
        140.0 + 110.0 + 80.6,
        "HNN ~140 + baseline ~110 (extrapolated from 1000 steps) + data 80.6; eval not measured",
    ),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument(
        "--quick",
        action="store_true",
        help="smoke profile on spring,pendulum,real-pendulum (~20 s): checks the harness",
    )
    ap.add_argument("--paper", action="store_true", help="paper profile, one seed (long)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds (default 1)")
    ap.add_argument("--tasks", default=None, help="comma list (default: all tasks)")
    ap.add_argument(
        "--warm-cache", action="store_true", help="reuse $HNNKIT_CACHE (default: fresh)"
    )
    ap.add_argument(
        "--out",
        default=None,
        help="output directory (default: a temporary one); its tasks are recomputed (force)",
    )
    ap.add_argument(
        "--workers",
        type=int,
        default=1,
        help="tasks run in this many processes (default 1: serial, the per-task times add up)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temporary output directory")
    ap.add_argument("--json", default=None, help="also write the timings to this JSON file")
    args = ap.parse_args(argv)
    if args.quick and args.paper:
        ap.error("--quick and --paper are exclusive")
    profile = "paper" if args.paper else ("smoke" if args.quick else "quick")
    seeds = args.seeds or 1

    torch.set_num_threads(max(1, args.threads))
    os.environ.setdefault("HNNKIT_DATA", "/work/shared/data/real_pendulum")
    cache_tmp = None
    if not args.warm_cache:
        cache_tmp = tempfile.mkdtemp(prefix="hnnkit-bench-cache-")
        os.environ["HNNKIT_CACHE"] = cache_tmp
    out_tmp = None
    if args.out is None:
        out_tmp = tempfile.mkdtemp(prefix="hnnkit-bench-reproduce-")
        out = Path(out_tmp)
    else:
        out = Path(args.out)

    from hnnkit.experiments.reproduce import reproduce  # after HNNKIT_* are set

    print("bench_reproduce: " + machine_line(args.threads))
    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(
        f"profile {profile}, {seeds} seed(s), out {out}, HNNKIT_DATA={os.environ['HNNKIT_DATA']}, "
        f"HNNKIT_CACHE={'fresh ' + cache_tmp if cache_tmp else os.environ.get('HNNKIT_CACHE', '~/.cache/hnnkit') + ' (warm)'}"
    )
    t0 = time.perf_counter()
    lines: list[tuple[float, str]] = []

    def echo(msg: str) -> None:
        el = time.perf_counter() - t0
        lines.append((el, msg))
        if "\n" in msg or msg.startswith("|") or not msg:
            print(msg, flush=True)  # the final table
        else:
            print(f"[{el:7.1f} s] {msg}", flush=True)

    tasks = args.tasks or (QUICK_TASKS if args.quick else None)
    try:
        reproduce(
            out,
            tasks=tasks,
            profile=profile,
            seeds=seeds,
            quiet=True,
            echo=echo,
            force=True,
            workers=args.workers,
        )
        total = time.perf_counter() - t0
        results: dict[str, Any] = json.loads((out / "results.json").read_text())
    finally:
        if cache_tmp:
            shutil.rmtree(cache_tmp, ignore_errors=True)
        if out_tmp and not args.keep:
            shutil.rmtree(out_tmp, ignore_errors=True)

    done = {}
    for _, msg in lines:
        m = re.match(r"\[(?P<task>[^\]]+)\] done in (?P<s>[0-9.]+) s", msg)
        if m:
            done[m["task"]] = float(m["s"])
    print(f"\nper task, profile {profile}, {seeds} seed(s)")
    print(
        "| task | wall s | train s baseline | train s HNN | train s other models | rest s (data, eval, figures) | original code, full settings, s (notes §8) |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    rows = {}
    for name, entry in results["tasks"].items():
        wall = done.get(name, float("nan"))
        if "skipped" in entry:
            print(f"| {name} | {wall:.1f} | skipped: {entry['skipped']} | | | | |")
            rows[name] = {"wall": wall, "skipped": entry["skipped"]}
            continue
        models = entry.get("models", {})
        tb = models.get("baseline", {}).get("train_seconds")
        th = models.get("hnn", {}).get("train_seconds")
        others = {
            m: r["train_seconds"]
            for m, r in models.items()
            if m not in ("baseline", "hnn") and r.get("train_seconds") is not None
        }
        to = sum(others.values()) if others else None
        rest = wall - (tb or 0) - (th or 0) - (to or 0)
        orig = ORIGINAL.get(name)
        orig_txt = f"{orig[0]:.0f} ({orig[1]})" if orig else "n/a"
        fmt = lambda v: "n/a" if v is None else f"{v:.1f}"  # noqa: E731
        other_txt = ", ".join(f"{m} {v:.1f}" for m, v in others.items()) or "n/a"
        print(
            f"| {name} | {wall:.1f} | {fmt(tb)} | {fmt(th)} | {other_txt} | {rest:.1f} | {orig_txt} |"
        )
        rows[name] = {
            "wall": wall,
            "train_baseline": tb,
            "train_hnn": th,
            "train_other": others,
            "rest": rest,
        }
    print(f"\ntotal wall time, profile {profile}: {total:.1f} s ({total / 60:.2f} min)")
    if profile in TARGETS:
        target = TARGETS[profile]
        verdict = "met" if total < target else "MISSED"
        print(f"target: < {target:.0f} s on 2 CPU cores: {verdict}")
    if profile == "paper":
        ran = [n for n in ORIGINAL if n in rows and "skipped" not in rows[n]]
        orig_sum = sum(ORIGINAL[n][0] for n in ran)
        ours_sum = sum(rows[n]["wall"] for n in ran)
        print(
            f"original code, same tasks ({', '.join(ran)}): about {orig_sum:.0f} s "
            f"({orig_sum / 60:.1f} min, unloaded, partly extrapolated); ours {ours_sum:.0f} s; "
            f"ratio {orig_sum / ours_sum:.2f}x (not same-run: load differs)"
        )
    else:
        print(
            f"original code has no {profile} profile; its full runs on this machine class take about "
            f"{sum(v[0] for v in ORIGINAL.values()) / 60:.0f} min for these five tasks (notes §8)"
        )
    print(machine_line(args.threads).split("; ")[0])
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {"profile": profile, "seeds": seeds, "total": total, "tasks": rows}, fh, indent=2
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
