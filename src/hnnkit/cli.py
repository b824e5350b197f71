"""Command line: ``hnnkit systems | train | evaluate | reproduce | symbolic``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .errors import DataFileError, HnnkitValueError, UnknownNameError


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"--hidden takes comma-separated integers like 200,200, got {text!r}"
        ) from exc
    return sizes


def cmd_systems(args: argparse.Namespace) -> int:
    from .systems import list_systems

    print(f"{'name':<12} {'class':<10} {'dof':>3}  H(q, p)")
    for name, cls in list_systems().items():
        if name == "custom":
            print(
                f'{name:<12} {"Custom":<10} {"n":>3}  your formula, e.g. "p**2/2 + q**2/2 + q**4/4"'
            )
            continue
        try:
            s = cls()
        except TypeError:
            continue
        print(f"{name:<12} {cls.__name__:<10} {s.dof:>3}  {s.formula}   {s!r}")
    return 0


def _dataset_from_config(cfg: dict[str, Any]):
    from .data import generate, real_pendulum

    if cfg["system"] == "real-pendulum":
        return real_pendulum()
    return generate(
        cfg["system"],
        n_trajectories=cfg.get("n_trajectories"),
        n_points=cfg.get("n_points"),
        noise_std=cfg.get("noise_std"),
        seed=cfg["seed"],
        cache=True,
    )


def cmd_train(args: argparse.Namespace) -> int:
    from .data._io import atomic_write_json
    from .experiments.reproduce import build_model, check_out_dir, resolve_device
    from .report import loss_curves, provenance
    from .systems import get_system
    from .train import fit

    out = Path(args.out)
    check_out_dir(out)
    device = resolve_device(args.device)
    if args.system != "real-pendulum":
        get_system(args.system)  # validate the name before any work
    cfg = {
        "system": args.system,
        "model": args.model,
        "seed": args.seed,
        "hidden": list(args.hidden),
        "activation": args.activation,
        "steps": args.steps,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "weight_decay": args.weight_decay,
        "n_trajectories": args.n_trajectories,
        "n_points": args.n_points,
        "noise_std": args.noise_std,
        "optimizer": args.optimizer,
    }
    data = _dataset_from_config(cfg)
    model = build_model(args.model, data.dim, args.hidden, args.seed, args.activation).to(device)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        out / "config.json", {**cfg, "dataset": data.config, "provenance": provenance()}
    )
    res = fit(
        model,
        data,
        optimizer=args.optimizer,
        lr=args.lr,
        steps=args.steps,
        batch_size=args.batch_size,
        weight_decay=args.weight_decay,
        seed=args.seed,
        log_every=args.log_every,
        run_dir=out,
        resume=args.resume,
        quiet=args.quiet,
        config=cfg,
    )
    from .evaluate import loss_metrics

    metrics = {k: v for k, v in loss_metrics(res.model, data).items()}
    metrics["train_seconds"] = res.seconds
    atomic_write_json(out / "metrics.json", metrics)
    loss_curves(
        {args.model: res.history}, out / "loss", title=f"{args.system} {args.model}: loss vs step"
    )
    if not args.quiet:
        print(
            f"train loss {res.train_loss:.4e}  test loss {res.test_loss:.4e}  ({res.seconds:.1f} s)"
        )
        print(f"wrote {out}/config.json, checkpoint.pt, log.csv, metrics.json, loss.png")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .data._io import atomic_write_json
    from .evaluate import evaluate_corrected, loss_metrics
    from .experiments.reproduce import build_model
    from .experiments.tasks import TASKS
    from .report import rollout_panels
    from .systems import get_system
    from .train import load_checkpoint

    run = Path(args.run_dir)
    cfg_path = run / "config.json"
    if not cfg_path.is_file():
        raise DataFileError(
            f"{cfg_path} not found; {run} is not a run directory made by `hnnkit train`"
        )
    try:
        cfg = json.loads(cfg_path.read_text())
    except ValueError as exc:
        raise DataFileError(
            f"{cfg_path} is corrupted ({exc}); retrain with `hnnkit train`"
        ) from exc
    state = load_checkpoint(run / "checkpoint.pt")
    data = _dataset_from_config(cfg)
    model = build_model(
        cfg["model"], data.dim, tuple(cfg["hidden"]), cfg["seed"], cfg.get("activation", "tanh")
    )
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise DataFileError(
            f"{run / 'checkpoint.pt'} does not match the model in config.json ({exc})"
        ) from exc
    task = TASKS.get(cfg["system"])
    system = get_system(cfg["system"]) if cfg["system"] != "real-pendulum" else None
    span = tuple(args.t_span) if args.t_span else (task.eval_span if task else (0.0, 20.0))
    corr, rollouts = evaluate_corrected(
        cfg["system"], system, {cfg["model"]: model}, data, t_span=span
    )
    metrics = loss_metrics(model, data)
    metrics.update(
        {
            k: {kk: vv for kk, vv in v.items() if kk != "values"}
            for k, v in corr[cfg["model"]].items()
        }
    )
    atomic_write_json(run / "metrics.json", metrics)
    orbit = cfg["system"] in ("two-body", "three-body")
    rollout_panels(rollouts, run / "rollouts", title=f"{cfg['system']} {cfg['model']}", orbit=orbit)
    for k, v in metrics.items():
        print(f"{k:<14} {v['mean']:.4e} ± {v['sem']:.2e}")
    print(f"wrote {run}/metrics.json and rollouts.png/svg")
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from .experiments.reproduce import reproduce

    reproduce(
        args.out,
        tasks=args.tasks,
        profile=args.profile,
        seeds=args.seeds,
        device=args.device,
        force=args.force,
        quiet=args.quiet,
        protocol=args.protocol,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hnnkit", description="Hamiltonian neural networks: train, evaluate, reproduce."
    )
    p.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads (default 1; see README)"
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser(
        "systems", help="list the registered physical systems and their Hamiltonians"
    )
    s.set_defaults(func=cmd_systems)

    t = sub.add_parser("train", help="train one model on one system")
    t.add_argument("--system", required=True, help="a name from `hnnkit systems`, or real-pendulum")
    t.add_argument("--model", choices=["hnn", "baseline"], default="hnn")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", required=True, help="run directory (created)")
    t.add_argument("--steps", type=int, default=2000)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--optimizer", choices=["adam", "lbfgs"], default="adam")
    t.add_argument("--batch-size", type=int, default=None, help="default: full batch")
    t.add_argument("--weight-decay", type=float, default=1e-4)
    t.add_argument("--hidden", type=_hidden, default=(200, 200), help="hidden sizes, e.g. 200,200")
    t.add_argument("--activation", default="tanh", choices=["tanh", "relu", "softplus", "silu"])
    t.add_argument("--n-trajectories", type=int, default=None)
    t.add_argument("--n-points", type=int, default=None)
    t.add_argument("--noise-std", type=float, default=None)
    t.add_argument("--log-every", type=int, default=100)
    t.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    t.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="metrics and figures for a trained run directory")
    e.add_argument("run_dir")
    e.add_argument("--t-span", type=float, nargs=2, default=None, metavar=("START", "END"))
    e.set_defaults(func=cmd_evaluate)

    r = sub.add_parser("reproduce", help="regenerate Table 1, the figures and report.html")
    r.add_argument("--tasks", default=None, help="comma-separated; default all")
    r.add_argument("--profile", default="quick", help="smoke, quick or paper")
    r.add_argument(
        "--protocol",
        default="corrected",
        help="corrected (default) or original: the protocol of the headline metrics; table.md and report.html show both beside the paper",
    )
    r.add_argument("--seeds", type=int, default=None, help="default: 1 (smoke, quick) or 3 (paper)")
    r.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    r.add_argument("--out", default="results")
    r.add_argument(
        "--force", action="store_true", help="recompute tasks already in OUT/results.json"
    )
    r.add_argument("--quiet", action="store_true")
    r.set_defaults(func=cmd_reproduce)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``hnnkit`` console script."""
    args = build_parser().parse_args(argv)
    import torch

    # The paper's networks are small (200 units): intra-op threading costs more than it gains
    # and collapses under contention, so one thread is the default; raise it with --threads.
    torch.set_num_threads(max(1, args.threads))
    try:
        return args.func(args)
    except (HnnkitValueError, UnknownNameError, DataFileError) as exc:
        print(f"hnnkit {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
