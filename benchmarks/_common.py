"""Helpers shared by the benchmark scripts: the machine line, interleaved timing, formatting."""

from __future__ import annotations

import gc
import os
import platform
import time
from collections.abc import Callable
from typing import Any

import torch

import hnnkit


def machine_line(threads: int, **versions: str) -> str:
    """One line with the CPU, its load average and the versions that matter for the timings."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    extra = "".join(f"{name} {version}, " for name, version in versions.items())
    return (
        f"machine: {os.cpu_count()} cores ({model}), load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; torch {torch.__version__} "
        f"({torch.get_num_threads()} thread{'s' if threads != 1 else ''}), {extra}"
        f"hnnkit {hnnkit.__version__}, python {platform.python_version()}"
    )


def interleaved(
    cases: list[tuple[str, Callable[[], Any]]], repeats: int, width: int = 42
) -> dict[str, list[float]]:
    """Time each case ``repeats`` times, interleaved: c1, c2, ..., c1, c2, ...; seconds per run."""
    times: dict[str, list[float]] = {name: [] for name, _ in cases}
    for r in range(repeats):
        for name, fn in cases:
            gc.collect()
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
            print(
                f"  repeat {r + 1}/{repeats}  {name:<{width}s} {times[name][-1]:8.2f} s", flush=True
            )
    return times


def fmt_runs(xs: list[float]) -> str:
    """``[1.23, 4.56]``: every run's seconds."""
    return "[" + ", ".join(f"{x:.2f}" for x in xs) + "]"
