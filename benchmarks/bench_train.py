"""Benchmark: spring training, ``hnnkit.train.fit`` vs a naive loop written like the original code.

Setting (issue 4, "Performance"): the spring dataset of the paper (``generate("spring")``:
50 trajectories x 30 points, noise std 0.1, half held out, so N = 750 training and 750 test
points), full batch, 2-200-200 tanh, Adam lr 1e-3, weight decay 1e-4, float32.

Cases (each one is a whole training run, model construction included):

* ``ref``   -- the original code's loop (greydanus/hamiltonian-nn ``experiment-spring/train.py``
  with ``hnn.py``/``nn_models.py``): an MLP with 2 outputs whose second output is H, the field
  ``autograd.grad(H.sum(), x, create_graph=True) @ M.T`` (plus the original's ``zeros_like``
  conservative part), ``loss.backward(); optim.step(); optim.zero_grad()``, and **every step** a
  test-set pass through the same field (with ``create_graph``) and ``.item()`` on both losses.
  For the baseline the MLP has 2 outputs and is the field.
* ``a``     -- the same autograd field, but the test loss only every 100 steps (lever: drop the
  per-step test pass).
* ``b``     -- (HNN only) hnnkit's HNN, whose field uses the closed-form input gradient
  ``MLP.input_gradient`` (one backward instead of autograd-of-autograd), test every 100 steps,
  in a bare loop (lever: closed-form gradient, on top of ``a``).
* ``fit``   -- ``hnnkit.train.fit(model, data, steps, lr=1e-3, weight_decay=1e-4,
  log_every=100)`` (train and test loss logged every 100 steps).
* ``fit64`` -- (HNN only) the same in float64, a note on dtype cost.

Part 1 times every case for ``--lever-steps`` steps (ms per step); part 2 times the full
``--steps`` (2000) run of ``ref`` and ``fit`` for the HNN (the issue's target: fit >= 3x faster).
With ``--seeds K``, part 3 times K seeds trained one after the other with ``fit`` against the
K seeds batched into one model (``torch.func.stack_module_state`` + ``torch.vmap`` over the
closed-form field, one Adam over the stacked parameters, which is exactly K independent Adams)
and checks that both give the same losses.

All repeats are interleaved (ref, ..., fit, ref, ..., fit, ...) and medians reported, so the
machine's load hits every case alike. Ratios are median(ref) / median(case).

Usage::

    python benchmarks/bench_train.py               # ~3 min on 2 loaded cores
    python benchmarks/bench_train.py --quick       # ~20-30 s: short runs only
    python benchmarks/bench_train.py --threads 2 --seeds 3
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from _common import fmt_runs, interleaved, machine_line
from hnnkit.data import generate
from hnnkit.models import HNN, Baseline
from hnnkit.train import fit

TARGET_RATIO = 3.0
LR, WEIGHT_DECAY, LOG_EVERY = 1e-3, 1e-4, 100
#: the original code's spring loop on this machine class (../shared/notes/hnn-original.md §8)
ORIGINAL = "original code, 2001 steps incl. per-step test pass (notes §8, unloaded): HNN 21.8 s at 2 threads, 34.4 s at 1 thread; baseline 12.5 s / 19.4 s"


# --------------------------------------------------------------------------------------
# the reference: the original code's loop
# --------------------------------------------------------------------------------------


class OriginalMLP(nn.Module):
    """``nn_models.MLP``: Linear -> tanh -> Linear -> tanh -> Linear (no bias), orthogonal init."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int):
        super().__init__()
        self.linear1 = nn.Linear(in_dim, hidden)
        self.linear2 = nn.Linear(hidden, hidden)
        self.linear3 = nn.Linear(hidden, out_dim, bias=False)
        for layer in (self.linear1, self.linear2, self.linear3):
            nn.init.orthogonal_(layer.weight)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.tanh(self.linear1(x))
        h = torch.tanh(self.linear2(h))
        return self.linear3(h)


class OriginalHNN(nn.Module):
    """``hnn.HNN`` with ``field_type='solenoidal'``: the field is ``dF2 @ M.T`` by autograd."""

    def __init__(self, dim: int, net: nn.Module, baseline: bool):
        super().__init__()
        self.net, self.baseline = net, baseline
        eye = torch.eye(dim)
        self.register_buffer("M", torch.cat([eye[dim // 2 :], -eye[: dim // 2]]))

    def time_derivative(self, x: Tensor) -> Tensor:
        if self.baseline:
            return self.net(x)
        _f1, f2 = self.net(x).split(1, 1)
        conservative = torch.zeros_like(x)
        solenoidal = torch.zeros_like(x)
        d_f2 = torch.autograd.grad(f2.sum(), x, create_graph=True)[0]
        solenoidal = d_f2 @ self.M.t()
        return conservative + solenoidal


def reference_loop(
    data: dict[str, Tensor], steps: int, *, baseline: bool, test_every: int, seed: int = 0
) -> tuple[float, float]:
    """The original training loop; ``test_every=1`` is the original, 100 the lever (a)."""
    torch.manual_seed(seed)
    dim = data["x"].shape[-1]
    model = OriginalHNN(dim, OriginalMLP(dim, 200, dim if baseline else 2), baseline)
    optim = torch.optim.Adam(model.parameters(), LR, weight_decay=WEIGHT_DECAY)
    x = data["x"].clone().requires_grad_(True)
    test_x = data["test_x"].clone().requires_grad_(True)
    dxdt, test_dxdt = data["dx"], data["test_dx"]
    loss_value = test_value = float("nan")
    for step in range(steps):
        dxdt_hat = model.time_derivative(x)
        loss = (dxdt - dxdt_hat).pow(2).mean()
        loss.backward()
        optim.step()
        optim.zero_grad()
        if step % test_every == 0 or step == steps - 1:
            test_dxdt_hat = model.time_derivative(test_x)
            test_value = (test_dxdt - test_dxdt_hat).pow(2).mean().item()
        loss_value = loss.item()
    return loss_value, test_value


def closed_form_loop(
    data: dict[str, Tensor], steps: int, *, seed: int = 0, dtype: torch.dtype = torch.float32
) -> tuple[float, float]:
    """Lever (b): hnnkit's HNN (closed-form input gradient) in a bare loop, test every 100."""
    model = HNN(data["x"].shape[-1], generator=torch.Generator().manual_seed(seed)).to(dtype)
    optim = torch.optim.Adam(model.parameters(), LR, weight_decay=WEIGHT_DECAY)
    x, dx = data["x"].to(dtype), data["dx"].to(dtype)
    tx, tdx = data["test_x"].to(dtype), data["test_dx"].to(dtype)
    loss_value = test_value = float("nan")
    for step in range(steps):
        optim.zero_grad(set_to_none=True)
        loss = (model.vector_field(None, x) - dx).pow(2).mean()
        loss.backward()
        optim.step()
        loss_value = float(loss.detach())
        if (step + 1) % LOG_EVERY == 0 or step == steps - 1:
            with torch.no_grad():
                test_value = float((model.vector_field(None, tx) - tdx).pow(2).mean())
    return loss_value, test_value


def hnnkit_fit(dataset: Any, steps: int, *, kind: str, seed: int = 0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    model = (HNN(2, generator=g) if kind == "hnn" else Baseline(2, generator=g)).to(dtype)
    res = fit(
        model,
        dataset,
        steps=steps,
        lr=LR,
        weight_decay=WEIGHT_DECAY,
        log_every=LOG_EVERY,
        seed=seed,
    )
    return res.train_loss, res.test_loss


# --------------------------------------------------------------------------------------
# seeds batched with torch.func
# --------------------------------------------------------------------------------------


def batched_seeds_fit(
    data: dict[str, Tensor], steps: int, k: int
) -> tuple[list[float], list[float]]:
    """K HNNs (seeds 0..K-1) trained as one: stacked parameters, vmapped closed-form field."""
    from torch.func import functional_call, stack_module_state

    models = [HNN(2, generator=torch.Generator().manual_seed(s)) for s in range(k)]
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def field(p: dict[str, Tensor], b: dict[str, Tensor], x: Tensor) -> Tensor:
        return functional_call(base, (p, b), (x,))

    vfield = torch.vmap(field, in_dims=(0, 0, None))
    optim = torch.optim.Adam(list(params.values()), LR, weight_decay=WEIGHT_DECAY)
    x, dx, tx, tdx = data["x"], data["dx"], data["test_x"], data["test_dx"]
    per_seed = torch.full((k,), float("nan"))
    for step in range(steps):
        optim.zero_grad(set_to_none=True)
        per_seed = (vfield(params, buffers, x) - dx).pow(2).mean(dim=(1, 2))
        per_seed.sum().backward()  # each seed's gradient only sees its own loss
        optim.step()
        if (step + 1) % LOG_EVERY == 0 or step == steps - 1:
            with torch.no_grad():
                _ = (vfield(params, buffers, tx) - tdx).pow(2).mean(dim=(1, 2))
    with torch.no_grad():
        train = (vfield(params, buffers, x) - dx).pow(2).mean(dim=(1, 2))
        test = (vfield(params, buffers, tx) - tdx).pow(2).mean(dim=(1, 2))
    return train.tolist(), test.tolist()


# --------------------------------------------------------------------------------------


def gemm_floor_ms(n: int, width: int = 200, repeats: int = 200) -> tuple[float, float]:
    """Milliseconds for the hidden-layer products that any exact HNN training step must do.

    For ``H = w · tanh(W2 tanh(W1 x + b1) + b2)`` with ``W2`` of ``width × width``, one step on
    ``n`` points needs six ``n × width × width`` products: the forward ``h1 W2ᵀ``, the input
    gradient's ``e2 W2``, and in the backward pass ``ē2 = c̄1 W2ᵀ``, the two terms of ``∂L/∂W2``
    (``e2ᵀ c̄1`` and ``ā2ᵀ h1``) and ``h̄1 = ā2 W2``. Everything else (the 2-wide first and
    last layers, the elementwise work, Adam) comes on top. The reference loop does the same six
    plus two for its per-step test pass. Timed here on the same shapes, best of three batches.

    Returns:
        ``(products, tanh)``: milliseconds for the six products, and for the two ``tanh`` over
        ``n × width`` that the forward pass needs (the least non-product work of a step).
    """
    a = torch.randn(n, width)
    b = torch.randn(n, width)
    w = torch.randn(width, width)
    products = (
        lambda: a @ w.t(),
        lambda: a @ w,
        lambda: b @ w.t(),
        lambda: a.t() @ b,
        lambda: b.t() @ a,
        lambda: b @ w,
    )
    for f in products:
        f()

    def best_ms(fns: tuple[Callable[[], Tensor], ...]) -> float:
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(repeats):
                for f in fns:
                    f()
            best = min(best, (time.perf_counter() - t0) / repeats)
        return best * 1e3

    return best_ms(products), best_ms((lambda: torch.tanh(a), lambda: torch.tanh(b)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    ap.add_argument(
        "--quick", action="store_true", help="~20-30 s: short runs, no full 2000-step run"
    )
    ap.add_argument("--steps", type=int, default=2000, help="steps of the full run (default 2000)")
    ap.add_argument(
        "--lever-steps", type=int, default=None, help="steps per lever run (default 200, quick 100)"
    )
    ap.add_argument("--repeats", type=int, default=None, help="lever repeats (default 3, quick 1)")
    ap.add_argument(
        "--full-repeats", type=int, default=1, help="repeats of the full run (default 1)"
    )
    ap.add_argument("--seeds", type=int, default=0, help="also time K seeds sequential vs batched")
    ap.add_argument("--no-full", action="store_true", help="skip the full run")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args(argv)

    torch.set_num_threads(max(1, args.threads))
    lever_steps = args.lever_steps or (100 if args.quick else 200)
    repeats = args.repeats or (1 if args.quick else 3)
    do_full = not (args.quick or args.no_full)
    print("bench_train: " + machine_line(args.threads))
    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")

    dataset = generate("spring", cache=False)
    (x, dx), (tx, tdx) = dataset.split("train"), dataset.split("test")
    data = {"x": x.float(), "dx": dx.float(), "test_x": tx.float(), "test_dx": tdx.float()}
    print(
        f"spring: N = {x.shape[0]} train / {tx.shape[0]} test points, full batch, 2-200-200 tanh, "
        f"Adam lr {LR:g}, weight decay {WEIGHT_DECAY:g}, float32; test loss every {LOG_EVERY} steps "
        "except in 'ref' (every step)"
    )

    results: dict[str, Any] = {"threads": args.threads, "lever_steps": lever_steps}
    n = lever_steps
    losses: dict[str, tuple[float, float]] = {}

    def lever_cases(k: int) -> list[tuple[str, Callable[[], None]]]:
        """Every lever case as a ``k``-step run that stores its final losses."""
        runs: dict[str, Callable[[], tuple[float, float]]] = {
            "hnn ref": lambda: reference_loop(data, k, baseline=False, test_every=1),
            "hnn a": lambda: reference_loop(data, k, baseline=False, test_every=LOG_EVERY),
            "hnn b": lambda: closed_form_loop(data, k),
            "hnn fit": lambda: hnnkit_fit(dataset, k, kind="hnn"),
            "hnn fit64": lambda: hnnkit_fit(dataset, k, kind="hnn", dtype=torch.float64),
            "baseline ref": lambda: reference_loop(data, k, baseline=True, test_every=1),
            "baseline a": lambda: reference_loop(data, k, baseline=True, test_every=LOG_EVERY),
            "baseline fit": lambda: hnnkit_fit(dataset, k, kind="baseline"),
        }
        if args.quick:
            del runs["hnn fit64"]

        def keep(name: str, fn: Callable[[], tuple[float, float]]) -> Callable[[], None]:
            def run() -> None:
                losses[name] = fn()

            return run

        return [(name, keep(name, fn)) for name, fn in runs.items()]

    # warm-up: every case once for a few steps, untimed (first-call costs: allocator, kernels)
    for _, warm in lever_cases(10):
        warm()
    cases = lever_cases(n)
    print(f"\npart 1: levers, {n} steps per run, {repeats} interleaved repeat(s)")
    times = interleaved(cases, repeats)
    med = {k: statistics.median(v) for k, v in times.items()}
    desc = {
        "ref": "original loop (autograd field, test pass every step)",
        "a": "autograd field, test every 100",
        "b": "closed-form gradient, bare loop, test every 100",
        "fit": "hnnkit.train.fit (closed form, test every 100)",
        "fit64": "hnnkit.train.fit, float64",
    }
    print(f"\n| model    | case  | {'what':<54s} | ms/step | runs s | vs ref |")
    print(f"|----------|-------|{'-' * 56}|--------:|--------|-------:|")
    for name in times:
        model, case = name.split()
        ref = med[f"{model} ref"]
        print(
            f"| {model:<8s} | {case:<5s} | {desc[case]:<54s} | {med[name] / n * 1e3:7.2f} | "
            f"{fmt_runs(times[name])} | {ref / med[name]:5.2f}x |"
        )
    results["levers"] = {
        k: {"seconds": v, "ms_per_step": med[k] / n * 1e3, "final_losses": losses.get(k)}
        for k, v in times.items()
    }
    ms = {k: med[k] / n * 1e3 for k in med}
    print(
        f"ms per training step (fit, {n}-step runs incl. setup and logging): "
        f"HNN {ms['hnn fit']:.2f}, baseline {ms['baseline fit']:.2f}; "
        f"original-style loop: HNN {ms['hnn ref']:.2f}, baseline {ms['baseline ref']:.2f}"
    )
    print(
        f"levers (HNN): drop per-step test pass {med['hnn ref'] / med['hnn a']:.2f}x; "
        f"then closed-form gradient {med['hnn a'] / med['hnn b']:.2f}x; "
        f"fit vs bare closed-form loop {med['hnn b'] / med['hnn fit']:.2f}x"
        + (
            f"; float64 costs {med['hnn fit64'] / med['hnn fit']:.2f}x float32"
            if "hnn fit64" in med
            else ""
        )
    )
    print(
        f"levers (baseline): drop per-step test pass {med['baseline ref'] / med['baseline a']:.2f}x"
    )
    ratio_short = med["hnn ref"] / med["hnn fit"]
    results["ratio_short"] = ratio_short
    floor, tanh_ms = gemm_floor_ms(x.shape[0])
    results["gemm_floor_ms"], results["tanh_ms"] = floor, tanh_ms
    print(
        f"floor: the six {x.shape[0]}x200x200 products every exact HNN step needs take "
        f"{floor:.2f} ms, its two tanh {tanh_ms:.2f} ms; fit spends {ms['hnn fit'] - floor:.2f} "
        f"ms/step besides the products. Against this run's original-style loop "
        f"({ms['hnn ref']:.2f} ms/step) no float32 implementation on this CPU can exceed "
        f"{ms['hnn ref'] / floor:.2f}x (products alone) or {ms['hnn ref'] / (floor + tanh_ms):.2f}x "
        "(products and torch.tanh)"
    )

    if do_full:
        s = args.steps
        print(f"\npart 2: full HNN run, {s} steps, {args.full_repeats} interleaved repeat(s)")
        full_losses: dict[str, tuple[float, float]] = {}

        def full_ref() -> None:
            full_losses["ref"] = reference_loop(data, s, baseline=False, test_every=1)

        def full_fit() -> None:
            full_losses["fit"] = hnnkit_fit(dataset, s, kind="hnn")

        ft = interleaved(
            [("hnn ref (full)", full_ref), ("hnn fit (full)", full_fit)], args.full_repeats
        )
        fm = {k: statistics.median(v) for k, v in ft.items()}
        ratio = fm["hnn ref (full)"] / fm["hnn fit (full)"]
        print(f"\n| case | seconds ({s} steps) | runs s | ms/step | final train / test loss |")
        print("|------|------:|--------|------:|------|")
        for k in ft:
            lk = "ref" if "ref" in k else "fit"
            tr, te = full_losses[lk]
            print(
                f"| {k} | {fm[k]:.2f} | {fmt_runs(ft[k])} | {fm[k] / s * 1e3:.2f} | "
                f"{tr:.4e} / {te:.4e} |"
            )
        verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
        print(
            f"ratio full run: original-style loop / hnnkit fit = {ratio:.2f}x "
            f"(target >= {TARGET_RATIO:g}x: {verdict})"
        )
        ceiling = fm["hnn ref (full)"] / s * 1e3 / floor
        print(
            f"ceiling for the full run: {ceiling:.2f}x (reference ms/step / the {floor:.2f} ms "
            f"floor of products alone), {ceiling * floor / (floor + tanh_ms):.2f}x with the tanh"
        )
        results["full"] = {
            "steps": s,
            "seconds": ft,
            "ratio": ratio,
            "ceiling": ceiling,
            "final_losses": full_losses,
        }
    else:
        print(
            f"\nratio ({n}-step runs; the full {args.steps}-step run was skipped): "
            f"original-style loop / hnnkit fit = {ratio_short:.2f}x (target >= {TARGET_RATIO:g}x)"
        )
    print(ORIGINAL)

    if args.seeds and args.seeds > 1:
        k = args.seeds
        s = lever_steps
        print(
            f"\npart 3: {k} seeds x {s} steps, sequential fit vs batched (vmap), {repeats} repeat(s)"
        )
        seed_out: dict[str, Any] = {}

        def sequential() -> None:
            seed_out["seq"] = [hnnkit_fit(dataset, s, kind="hnn", seed=i) for i in range(k)]

        def batched() -> None:
            seed_out["bat"] = batched_seeds_fit(data, s, k)

        st = interleaved(
            [(f"{k} seeds sequential", sequential), (f"{k} seeds batched", batched)], repeats
        )
        sm = {kk: statistics.median(v) for kk, v in st.items()}
        seq_train = [tr for tr, _ in seed_out["seq"]]
        bat_train = seed_out["bat"][0]
        rel = max(abs(a - b) / abs(a) for a, b in zip(seq_train, bat_train, strict=True))
        for kk in st:
            print(f"  {kk:<22s} median {sm[kk]:.2f} s  runs {fmt_runs(st[kk])}")
        ratio_seeds = sm[f"{k} seeds sequential"] / sm[f"{k} seeds batched"]
        print(
            f"ratio seeds: sequential / batched = {ratio_seeds:.2f}x; final train losses "
            f"sequential {[f'{v:.4e}' for v in seq_train]} vs batched "
            f"{[f'{v:.4e}' for v in bat_train]} (max rel diff {rel:.1e})"
        )
        results["seeds"] = {
            "k": k,
            "steps": s,
            "seconds": st,
            "ratio": ratio_seeds,
            "max_rel_diff": rel,
        }

    print("\n" + machine_line(args.threads).split("; ")[0])
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
