"""Time the pixel-pendulum data generation: all 20,000 frames of the paper-sized dataset.

Usage::

    python benchmarks/bench_pixels.py                # one torch thread, like the `hnnkit` CLI
    python benchmarks/bench_pixels.py --threads 2 --repeat 3

Prints, for ``pixel_pendulum_dataset()`` with its defaults (200 trajectories × 100 frames,
400×400 renders, 28×28 output, no cache):

* the wall time and frames/s of the full generation (simulate, render the crop window,
  red − green, area resize, 8-bit), best of ``--repeat``;
* as a reference measured in the same run, the straightforward path on a sample of
  frames: render the *whole* 400×400×3 RGB frame as ``uint8``, then crop, subtract and
  resize; and the ratio of the two rates.
* the rate of full 400×400×3 RGB rendering alone (what a video of the seed's frames costs).
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from hnnkit.data.pixels import crop_box, pixel_pendulum_dataset, resize_area
from hnnkit.systems.pixel import render_pendulum


def _full_frame_path(
    theta: torch.Tensor, size: int = 28, render_size: int = 400, chunk: int = 64
) -> torch.Tensor:
    t, b, left, r = crop_box(render_size)
    out = []
    for ch in theta.split(chunk):
        rgb = render_pendulum(ch, render_size)  # (n, 400, 400, 3) uint8, like gym's rgb_array
        crop = rgb[:, t:b, left:r].to(torch.float32) / 255.0
        out.append(
            resize_area(crop[..., 0] - crop[..., 1], size).mul_(255).round_().to(torch.uint8)
        )
    return torch.cat(out)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (default 1, as the CLI)"
    )
    ap.add_argument(
        "--repeat", type=int, default=1, help="repeat the full generation, report the best"
    )
    ap.add_argument(
        "--reference-frames", type=int, default=1000, help="frames for the reference path"
    )
    args = ap.parse_args()
    torch.set_num_threads(max(1, args.threads))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {os.cpu_count()} CPUs, load avg {load:.1f}"
    )

    best = float("inf")
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        data = pixel_pendulum_dataset()  # 200 x 100 frames, 400 px renders, 28 x 28
        best = min(best, time.perf_counter() - t0)
    n = data.frames.shape[0] * data.frames.shape[1]
    rate = n / best
    print(f"pixel_pendulum_dataset(): {n} frames in {best:.2f} s  ->  {rate:,.0f} frames/s")

    theta = (
        torch.rand(args.reference_frames, generator=torch.Generator().manual_seed(0)) - 0.5
    ) * 1.2
    t0 = time.perf_counter()
    _full_frame_path(theta)
    ref = args.reference_frames / (time.perf_counter() - t0)
    print(
        f"reference (full 400x400x3 uint8 render, crop, R-G, resize), {args.reference_frames} frames: "
        f"{ref:,.0f} frames/s; dataset path is {rate / ref:.1f}x faster "
        f"(extrapolated 20,000 frames: {20_000 / ref:.0f} s)"
    )
    t0 = time.perf_counter()
    for ch in theta.split(64):
        render_pendulum(ch, 400)
    rgb = args.reference_frames / (time.perf_counter() - t0)
    print(f"render_pendulum(size=400) RGB uint8 alone: {rgb:,.0f} frames/s")


if __name__ == "__main__":
    main()
