r"""Task 5 of the HNN paper: a pendulum seen only through pixels.

:func:`run_pixel_pendulum` renders the data (:func:`hnnkit.data.pixels.pixel_pendulum_dataset`),
trains the baseline and the HNN autoencoders (:class:`hnnkit.models.autoencoder.PixelHNN`,
built through the model registry as ``pixel-baseline`` and ``pixel-hnn``, see :data:`REGISTERED`)
with the original's settings (greydanus/hamiltonian-nn ``experiment-pixels/train.py``: Adam,
lr 1e-3, weight decay 1e-5, batches of 200 drawn with ``randperm``, ``steps + 1`` updates),
and reports Table 1's row 5.

**Train / test loss.** The per-sample joint loss (reconstruction + latent velocity +
0.1 · dynamics) over the *full* train and test sets after training: mean ± std/√N, as the
end of the original ``train.py`` prints it.

**Energy metric.** The protocol of the original ``analyze-pixels.ipynb`` (blob ``831d22a4``),
with the deviations marked (*):

1. New trajectories, never trained on: :math:`|\theta_0| \in (\pi/11, \pi/10)`,
   :math:`\dot\theta_0 \sim U[-1, 1]`, ``eval_frames`` frames each (original: one trajectory,
   gym seed 1, 200 frames; * here ``eval_trajectories`` of them, from seed ``seed + 1``).
2. Encode the first stacked pair, integrate the latent model with ``odeint`` (dopri5 at
   ``rtol=1e-3, atol=1e-6``, ``solve_ivp``'s defaults, which the original used) at times
   ``0, 1, …, eval_frames-1`` frames (* the original used ``linspace(0, 0.98·200, 200)``),
   and decode every latent state to pixels.
3. Map pixels to :math:`(q, p)`: re-encode the decoded frames and apply an affine map from
   the code to the true coordinates, fitted on the training set (* by least squares; the
   original trained a ``Linear(2, 2)`` with Adam for 4000 steps, which approximates it, and
   re-encoded both models' frames with the *HNN*'s encoder — here each model uses its own).
4. Energy :math:`H = \tfrac{15}{8}(1-\cos q) + p^2` (the original: ``1.9`` instead of
   15/8, see :mod:`hnnkit.data.pixels`), MSE against the true energy over all frames (* the
   original prepended the true first state instead of the mapped one). Reported ± is the
   standard error over the evaluation trajectories.

Profiles: ``paper`` uses the original's sizes (200 trajectories × 100 frames of 400×400
renders, 28×28 inputs, a 200-wide autoencoder, 10 000 steps); ``quick`` shrinks data,
frames, widths and steps to run in about a minute on 2 CPU cores; ``smoke`` runs in seconds
and only checks that everything is wired.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ..data.pixels import (
    PixelPendulumData,
    pixel_dataset_from_config,
    pixel_pendulum_dataset,
    simulate_pixel_pendulum,
)
from ..errors import DataFileError, HnnkitValueError, check_choice
from ..evaluate.pixels import energy_metric, fit_code_to_coords, per_sample_loss
from ..files import atomic_write_json
from ..metrics import mean_sem
from ..models import build_model, get_model
from ..models.autoencoder import PixelHNN
from ..models.registry import PIXELS
from ..report.pixels import fig8, write_gif
from ..report.provenance import provenance
from ..train import Progress, fit
from ._seeds import run_seeds

MODELS = ("baseline", "hnn")
#: Each model's name in the model registry (``data="pixels"``), which builds it.
REGISTERED = {"baseline": "pixel-baseline", "hnn": "pixel-hnn"}
#: Table 1, row 5 (×10³): (mean, ±) per model and column.
PAPER = {
    "baseline": {"train": (18, 0.2), "test": (17, 0.3), "energy": (9.3, 1)},
    "hnn": {"train": (19, 0.2), "test": (18, 0.3), "energy": (0.15, 0.01)},
}
SCALE = 1e3


@dataclass(frozen=True)
class PixelProfile:
    """Every size and setting of one run (all fields end up in ``config.json``)."""

    n_trajectories: int
    n_frames: int
    size: int
    render_size: int
    ae_hidden: int
    latent_hidden: tuple[int, ...]
    steps: int
    batch_size: int = 200
    lr: float = 1e-3
    weight_decay: float = 1e-5
    eval_trajectories: int = 5
    eval_frames: int = 200
    log_every: int = 200
    figure_frames: int = 100


PROFILES: dict[str, PixelProfile] = {
    "paper": PixelProfile(
        n_trajectories=200,
        n_frames=100,
        size=28,
        render_size=400,
        ae_hidden=200,
        latent_hidden=(200, 200),
        steps=10_000,
    ),
    "quick": PixelProfile(
        n_trajectories=60,
        n_frames=60,
        size=16,
        render_size=128,
        ae_hidden=96,
        latent_hidden=(64, 64),
        steps=1500,
        eval_trajectories=5,
        eval_frames=100,
        log_every=100,
        figure_frames=60,
    ),
    "smoke": PixelProfile(
        n_trajectories=6,
        n_frames=12,
        size=12,
        render_size=48,
        ae_hidden=32,
        latent_hidden=(16, 16),
        steps=20,
        batch_size=32,
        eval_trajectories=2,
        eval_frames=16,
        log_every=5,
        figure_frames=12,
    ),
}


# -- training -----------------------------------------------------------------------------
def _sampled_test_batch(p: Progress) -> dict[str, float]:
    """The original's log row: the batch loss and the loss on a random test batch."""
    first = next(iter(p.test.values()))
    with torch.no_grad():
        idx = torch.randperm(first.shape[0], generator=p.generator)[: p.batch_size]
        idx = idx.to(first.device)
        test_loss = float(p.loss(p.model, {k: v[idx] for k, v in p.test.items()}))
    return {"train_loss": p.batch_loss, "test_loss": test_loss}


def train_pixel_model(
    model: PixelHNN,
    data: PixelPendulumData,
    *,
    steps: int,
    generator: torch.Generator,
    batch_size: int = 200,
    lr: float = 1e-3,
    weight_decay: float = 1e-5,
    log_every: int = 200,
    quiet: bool = True,
    checkpoint: str | Path | None = None,
    checkpoint_every: int = 0,
    run_dir: str | Path | None = None,
    config: dict[str, Any] | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` in place on ``data`` as the original ``train.py`` does, through :func:`fit`.

    ``fit(loss="autoencoder")`` with Adam (``lr``, ``weight_decay``, the plain loop), ``steps +
    1`` updates (``first_step=0``), each on ``batch_size`` training samples drawn without
    replacement (``randperm`` from ``generator``). Every ``log_every`` steps the batch loss and
    the loss on a random test batch (drawn from ``generator`` too) are recorded.

    With ``checkpoint`` (or ``run_dir``, which also gets ``log.csv``), the model, the optimizer,
    ``generator`` and the history are written there atomically every ``checkpoint_every``
    steps (and at the end), and a run that finds the file continues from it: a killed run
    resumes and ends with exactly the parameters of an uninterrupted one, and a finished run
    returns at once.

    Args: ``batch_size``, ``lr``, ``weight_decay``, ``log_every`` default to the original's;
    ``quiet=False`` shows a progress bar; ``checkpoint_every=0`` saves only at the end;
    ``config`` is stored in the checkpoint (the model directory's ``config.json``).

    Returns:
        History: ``[{"step", "train_loss", "test_loss", "seconds"}, ...]``.

    Raises:
        HnnkitValueError: on a non-positive ``steps`` or ``batch_size``, or a checkpoint
            written with other settings.
        DataFileError: on a corrupted checkpoint.
        NonFiniteLossError: if the loss becomes NaN or infinite.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise HnnkitValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    result = fit(
        model,
        data,
        loss="autoencoder",
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        weight_decay=weight_decay,
        generator=generator,
        first_step=0,
        fused=False,
        log_every=log_every,
        checkpoint_every=checkpoint_every if checkpoint_every > 0 else steps + 1,
        run_dir=run_dir,
        checkpoint=checkpoint,
        resume=checkpoint is not None or run_dir is not None,
        monitor=_sampled_test_batch,
        quiet=quiet,
        config=config,
    )
    return result.history


# -- evaluation -----------------------------------------------------------------------------
#: The evaluation trajectories' initial angles :math:`|\theta_0|` and the latent solve's tolerances.
EVAL_THETA_RANGE = (math.pi / 11, math.pi / 10)
EVAL_RTOL, EVAL_ATOL = 1e-3, 1e-6


def eval_spec(cfg: PixelProfile, seed: int) -> dict[str, Any]:
    """The evaluation trajectories and solve of a run (its ``config.json``'s ``eval``)."""
    return {
        "trajectories": cfg.eval_trajectories,
        "frames": cfg.eval_frames,
        "seed": seed + 1,
        "size": cfg.size,
        "render_size": cfg.render_size,
        "theta_range": list(EVAL_THETA_RANGE),
        "rtol": EVAL_RTOL,
        "atol": EVAL_ATOL,
    }


def eval_trajectories(spec: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Float frames ``(B, frames + 1, size, size)`` and coordinates of :func:`eval_spec`'s set."""
    frames_u8, coords = simulate_pixel_pendulum(
        spec["trajectories"],
        spec["frames"] + 1,
        generator=torch.Generator().manual_seed(spec["seed"]),
        size=spec["size"],
        render_size=spec["render_size"],
        theta_range=tuple(spec["theta_range"]),
    )
    return frames_u8.float() / 255.0, coords


def model_metrics(
    model: PixelHNN,
    data: PixelPendulumData,
    eval_frames: torch.Tensor,
    eval_coords: torch.Tensor,
    *,
    rtol: float = EVAL_RTOL,
    atol: float = EVAL_ATOL,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A trained model's train/test losses, energy metric and loss terms (module docstring).

    Returns:
        ``({"train_loss", "test_loss", "energy", "coord_mse", "loss_terms"}, ev)`` with ``ev``
        :func:`~hnnkit.evaluate.pixels.energy_metric`'s result (the curves for the figures).
    """
    dev = next(model.parameters()).device
    train_l = per_sample_loss(model, data.train)
    test_l = per_sample_loss(model, data.test)
    with torch.no_grad():
        terms = model.losses(data.test.x.to(dev), data.test.x_next.to(dev))
    code_map = fit_code_to_coords(model, data.train)
    ev = energy_metric(model, code_map, eval_frames, eval_coords, rtol=rtol, atol=atol)
    row = {
        "train_loss": mean_sem(train_l),
        "test_loss": mean_sem(test_l),
        "energy": {"mean": ev["mean"], "sem": ev["sem"], "values": ev["values"]},
        "coord_mse": ev["coord_mse"],
        "loss_terms": {k: float(v.mean()) for k, v in terms.items() if k != "total"},
    }
    return row, ev


def model_run_config(
    kind: str, profile: str, seed: int, cfg: PixelProfile, data: PixelPendulumData
) -> dict[str, Any]:
    """The ``config.json`` of one model's directory (``OUT/{kind}``), as ``hnnkit evaluate``
    reads it: the registered model and its options, the seed, the pixel data set's config
    (``pixels``), the training settings and the evaluation (:func:`eval_spec`)."""
    return {
        "model": REGISTERED[kind],
        "options": {"ae_hidden": cfg.ae_hidden, "latent_hidden": list(cfg.latent_hidden)},
        "seed": seed,
        "profile": profile,
        "pixels": data.config,
        "training": {
            "loss": "autoencoder",
            "optimizer": "adam",
            "steps": cfg.steps,
            "first_step": 0,
            "batch_size": cfg.batch_size,
            "lr": cfg.lr,
            "weight_decay": cfg.weight_decay,
            "log_every": cfg.log_every,
            "checkpoint_every": max(1, cfg.steps // 10),
        },
        "eval": eval_spec(cfg, seed),
    }


def evaluate_pixel_run(
    cfg: dict[str, Any], model_state: dict[str, Any], *, cache: bool = True
) -> dict[str, Any]:
    """Re-evaluate a pixel model directory from its ``config.json`` and checkpoint weights.

    Rebuilds the data set (:func:`~hnnkit.data.pixels.pixel_dataset_from_config`, cached),
    the registered model with the recorded options, and the evaluation trajectories, and
    returns :func:`model_metrics`'s row: the numbers the task recorded for this model.

    Raises:
        DataFileError: if the config is not a pixel run's, or the weights do not fit its model.
    """
    try:
        entry = get_model(cfg["model"])
        options, seed, spec = dict(cfg["options"]), int(cfg["seed"]), dict(cfg["eval"])
        pixels = dict(cfg["pixels"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataFileError(
            f"config.json is not a pixel model's ({type(exc).__name__}: {exc})"
        ) from None
    if entry.data != PIXELS:
        raise DataFileError(f"model {cfg['model']!r} does not learn from pixels")
    data = pixel_dataset_from_config(pixels, cache=cache)
    model = build_model(
        cfg["model"], data.input_dim, generator=torch.Generator().manual_seed(seed), **options
    )
    try:
        model.load_state_dict(model_state)
    except RuntimeError as exc:
        raise DataFileError(
            f"the checkpoint does not match the model in config.json ({exc})"
        ) from exc
    frames, coords = eval_trajectories(spec)
    row, _ = model_metrics(model, data, frames, coords, rtol=spec["rtol"], atol=spec["atol"])
    return row


# -- driver -------------------------------------------------------------------------------
def run_pixel_pendulum(
    out_dir: str | Path,
    *,
    profile: str = "quick",
    seed: int = 0,
    quiet: bool = True,
    device: str | torch.device = "cpu",
    cache: bool = True,
) -> dict[str, Any]:
    """Train and evaluate the baseline and HNN autoencoders on the pixel pendulum.

    Args:
        out_dir: directory for ``config.json``, ``metrics.json``, one run directory per model
            (``{model}/``: ``config.json`` from :func:`model_run_config`, :func:`hnnkit.train.fit`'s
            ``log.csv`` and ``checkpoint.pt``, and ``metrics.json``; ``hnnkit evaluate`` reads
            it) and ``figures/`` (``pixel-pendulum-fig8.{png,svg}``, ``pixel-pendulum.gif``).
        profile: ``"smoke"``, ``"quick"`` (default) or ``"paper"`` (see :data:`PROFILES`).
        seed: seeds the data (``seed``), the evaluation trajectories (``seed + 1``), the
            initialisations and the batches; no global RNG is touched.
        quiet: if ``False``, print progress.
        device: where to train (default ``"cpu"``).
        cache: cache the rendered dataset (see :func:`pixel_pendulum_dataset`; default ``True``).

    Returns:
        ``{"task", "profile", "seed", "config", "data_seconds", "paper", "scale",
        "models": {"baseline"|"hnn": {"train_loss", "test_loss", "energy", "coord_mse",
        "train_seconds", "loss_terms"}}, "figures"}``. Losses and energies are unscaled
        ``{"mean", "sem"}`` (multiply by :data:`SCALE` = 10³ for Table 1's units).

    Raises:
        UnknownNameError: on an unknown profile.
        HnnkitValueError: on a negative seed.
    """
    check_choice("profile", profile, PROFILES)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise HnnkitValueError(f"seed must be an integer >= 0, got {seed!r}")
    cfg = PROFILES[profile]
    out = Path(out_dir)
    dev = torch.device(device)
    say = (lambda msg: None) if quiet else print

    t0 = time.perf_counter()
    data = pixel_pendulum_dataset(
        cfg.n_trajectories, cfg.n_frames, cfg.size, seed, render_size=cfg.render_size, cache=cache
    )
    eval_frames, eval_coords = eval_trajectories(eval_spec(cfg, seed))
    data_seconds = time.perf_counter() - t0
    say(f"[pixel-pendulum] data: {tuple(data.frames.shape)} frames in {data_seconds:.1f} s")
    config = {
        "profile": profile,
        "seed": seed,
        **asdict(cfg),
        "data": data.config,
        "eval": {
            "theta_range": list(EVAL_THETA_RANGE),
            "seed": seed + 1,
            "rtol": EVAL_RTOL,
            "atol": EVAL_ATOL,
        },
    }
    atomic_write_json(out / "config.json", config)

    results: dict[str, Any] = {}
    evals: dict[str, dict[str, Any]] = {}
    for kind in MODELS:
        gen = torch.Generator().manual_seed(seed)
        model = build_model(
            REGISTERED[kind],
            data.input_dim,
            generator=gen,
            ae_hidden=cfg.ae_hidden,
            latent_hidden=cfg.latent_hidden,
        ).to(dev)
        run_config = model_run_config(kind, profile, seed, cfg, data)
        atomic_write_json(
            out / kind / "config.json",
            {**run_config, "dataset": data.config, "provenance": provenance()},
        )
        say(f"[pixel-pendulum] training {kind} for {cfg.steps} steps")
        t1 = time.perf_counter()
        history = train_pixel_model(
            model,
            data,
            steps=cfg.steps,
            generator=gen,
            batch_size=cfg.batch_size,
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            log_every=cfg.log_every,
            quiet=quiet,
            run_dir=out / kind,  # checkpoint.pt and log.csv; a killed run resumes from here
            checkpoint_every=run_config["training"]["checkpoint_every"],
            config=run_config,
        )
        # training time over every attempt, as recorded in the history
        train_seconds = history[-1]["seconds"] if history else time.perf_counter() - t1
        row, ev = model_metrics(model, data, eval_frames, eval_coords)
        evals[kind] = ev
        results[kind] = {**row, "train_seconds": train_seconds, "history": history}
        atomic_write_json(out / kind / "metrics.json", {**row, "train_seconds": train_seconds})
        say(
            f"[pixel-pendulum] {kind}: train {results[kind]['train_loss']['mean']:.4e}  "
            f"test {results[kind]['test_loss']['mean']:.4e}  energy {ev['mean']:.4e}  ({train_seconds:.1f} s)"
        )

    # figures: the first evaluation trajectory
    n = min(cfg.figure_frames, cfg.eval_frames)
    truth = eval_frames[0, :n]
    preds = {k: evals[k]["pixels"][0, :n] for k in MODELS}
    tt = torch.arange(n, dtype=torch.float64)
    q = {"truth": eval_coords[0, :n, 0], **{k: evals[k]["coords_pred"][0, :n, 0] for k in MODELS}}
    energy = {
        "truth": evals["hnn"]["energy_true"][0, :n],
        **{k: evals[k]["energy_pred"][0, :n] for k in MODELS},
    }
    figs = out / "figures"
    paths = fig8(truth, preds, tt, q, energy, figs / "pixel-pendulum-fig8")
    full = {k: evals[k]["pixels"][0] for k in MODELS}
    gif = write_gif(eval_frames[0, : cfg.eval_frames], full, figs / "pixel-pendulum.gif")
    if gif is not None:
        paths.append(gif)

    metrics = {
        "task": "pixel-pendulum",
        "profile": profile,
        "seed": seed,
        "scale": SCALE,
        "paper": PAPER,
        "data_seconds": data_seconds,
        "models": results,
        "figures": [str(p) for p in paths],
    }
    atomic_write_json(out / "metrics.json", metrics)
    return {**metrics, "config": config}


def reproduce_task(
    out_dir: str | Path,
    *,
    profile: str = "quick",
    seeds: int = 1,
    quiet: bool = True,
    device: str = "cpu",
) -> dict[str, Any]:
    """Adapter for ``hnnkit reproduce --tasks pixel-pendulum``: one results.json entry.

    Runs :func:`run_pixel_pendulum` for seeds ``0..seeds-1`` (in ``out_dir/seedN``) and pools
    them: losses as the mean over seeds (± their standard error; one seed keeps its own),
    energy over seeds × evaluation trajectories. Values are multiplied by 10³ as in Table 1.
    """
    from ..evaluate import aggregate

    runs = run_seeds(
        out_dir,
        seeds,
        lambda seed_dir, s: run_pixel_pendulum(
            seed_dir, profile=profile, seed=s, quiet=quiet, device=device
        ),
    )

    def scaled(cell: dict[str, float]) -> dict[str, float]:
        return {"mean": cell["mean"] * SCALE, "sem": cell["sem"] * SCALE}

    entry: dict[str, Any] = {
        "scale": SCALE,
        "paper": PAPER,
        "profile": profile,
        "n_seeds": seeds,
        "models": {},
    }
    for kind in MODELS:
        rows = [r["models"][kind] for r in runs]
        cell = {
            "n_seeds": seeds,
            "train_loss": scaled(aggregate([r["train_loss"] for r in rows])),
            "test_loss": scaled(aggregate([r["test_loss"] for r in rows])),
            "energy": scaled(aggregate([r["energy"] for r in rows])),
            "train_seconds": sum(r["train_seconds"] for r in rows),
        }
        cell["original"] = {k: cell[k] for k in ("train_loss", "test_loss", "energy")}
        entry["models"][kind] = cell
    entry["config"] = {"profile": asdict(PROFILES[profile])}
    return entry
