r"""Task 5 of the HNN paper: a pendulum seen only through pixels.

:func:`run_pixel_pendulum` renders the data (:func:`hnnkit.data.pixels.pixel_pendulum_dataset`),
trains the baseline and the HNN autoencoders (:class:`hnnkit.models.autoencoder.PixelHNN`)
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

import csv
import io
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..data.pixels import (
    GYM_DT,
    PixelPendulumData,
    PixelSplit,
    pixel_pendulum_dataset,
    pixel_pendulum_energy,
    simulate_pixel_pendulum,
    stack_frames,
)
from ..errors import HnnkitValueError, NonFiniteLossError, check_choice
from ..files import atomic_write, atomic_write_json
from ..metrics import mean_sem
from ..models.autoencoder import PixelHNN
from ..train import resume_checkpoint
from ._seeds import run_seeds

MODELS = ("baseline", "hnn")
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
def per_sample_loss(model: PixelHNN, split: PixelSplit, *, batch: int = 2048) -> Tensor:
    """The joint loss of every sample of ``split`` (no gradient), ``(N,)`` float64."""
    dev = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, len(split), batch):
            x = split.x[i : i + batch].to(dev)
            xn = split.x_next[i : i + batch].to(dev)
            out.append(model.losses(x, xn)["total"].double().cpu())
    return torch.cat(out)


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
) -> list[dict[str, float]]:
    """Train ``model`` in place on ``data`` as the original ``train.py`` does.

    Adam (``lr``, ``weight_decay``), ``steps + 1`` updates, each on ``batch_size`` training
    samples drawn without replacement (``randperm`` from ``generator``). Every ``log_every``
    steps the batch loss and the loss on a random test batch are recorded.

    With ``checkpoint``, the model, the optimizer, ``generator`` and the history are written
    there atomically every ``checkpoint_every`` steps (and at the end), and a run that finds
    the file continues from it: a killed run resumes and ends with exactly the parameters of an
    uninterrupted one, and a finished run returns at once.

    Args:
        model: the model, on the device to train on.
        data: the dataset (its ``train``/``test`` splits are used).
        steps: optimisation steps (the loop runs ``steps + 1`` times, like the original's).
        generator: random source for the batches (keyword-only).
        batch_size, lr, weight_decay, log_every: as named (defaults are the original's).
        quiet: if ``False``, print a line at every log step.
        checkpoint: file to save to and resume from (default: none).
        checkpoint_every: steps between saves (``0``: only at the end).

    Returns:
        History: ``[{"step", "train_loss", "test_loss", "seconds"}, ...]``.

    Raises:
        HnnkitValueError: on a non-positive ``steps`` or ``batch_size``, or a checkpoint
            written with other settings.
        DataFileError: on a corrupted checkpoint.
        NonFiniteLossError: if the loss becomes NaN or infinite.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise HnnkitValueError(f"steps must be an integer >= 0, got {steps!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise HnnkitValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    dev = next(model.parameters()).device
    tr, te = data.train, data.test
    x, xn = tr.x.to(dev), tr.x_next.to(dev)
    tx, txn = te.x.to(dev), te.x_next.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    history: list[dict[str, float]] = []
    settings = {"steps": steps, "batch_size": batch_size, "lr": lr, "weight_decay": weight_decay}
    start, elapsed = 0, 0.0
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and path.exists():
        state = resume_checkpoint(path, settings)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        start, elapsed, history = state["step"] + 1, state["seconds"], list(state["history"])

    def save(step: int) -> None:
        state = {
            "model": model.state_dict(),
            "optimizer": opt.state_dict(),
            "generator": generator.get_state(),
            "step": step,
            "seconds": elapsed + time.perf_counter() - t0,
            "history": history,
            "settings": settings,
        }
        atomic_write(path, lambda p: torch.save(state, p))

    t0 = time.perf_counter()
    model.train()
    for step in range(start, steps + 1):
        idx = torch.randperm(x.shape[0], generator=generator)[:batch_size].to(dev)
        loss = model.loss(x[idx], xn[idx])
        if not torch.isfinite(loss):
            kept = str(path) if path is not None and path.exists() else None
            raise NonFiniteLossError(step, float(loss), kept)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % log_every == 0 or step == steps:
            with torch.no_grad():
                tidx = torch.randperm(tx.shape[0], generator=generator)[:batch_size].to(dev)
                test_loss = float(model.loss(tx[tidx], txn[tidx]))
            row = {
                "step": step,
                "train_loss": loss.item(),
                "test_loss": test_loss,
                "seconds": elapsed + time.perf_counter() - t0,
            }
            history.append(row)
            if not quiet:
                print(f"  step {step:6d}  train {row['train_loss']:.4e}  test {test_loss:.4e}")
        if path is not None and (
            step == steps or (checkpoint_every > 0 and step % checkpoint_every == 0)
        ):
            save(step)
    model.eval()
    return history


# -- evaluation ---------------------------------------------------------------------------
def fit_code_to_coords(model: PixelHNN, split: PixelSplit) -> tuple[Tensor, Tensor]:
    """Least-squares affine map from the model's code to the true ``(q, p)``: ``coords ≈ z @ W + b``.

    Returns:
        ``(W, b)`` float64, shapes ``(latent_dim, 2)`` and ``(2,)``.
    """
    dev = next(model.parameters()).device
    with torch.no_grad():
        z = torch.cat(
            [
                model.encode(split.x[i : i + 4096].to(dev)).double().cpu()
                for i in range(0, len(split), 4096)
            ]
        )
    a = torch.cat([z, torch.ones(z.shape[0], 1, dtype=torch.float64)], dim=1)
    sol = torch.linalg.lstsq(a, split.coords.double()).solution
    return sol[:-1], sol[-1]


def energy_metric(
    model: PixelHNN,
    code_map: tuple[Tensor, Tensor],
    frames: Tensor,
    coords: Tensor,
    *,
    rtol: float = 1e-3,
    atol: float = 1e-6,
) -> dict[str, Any]:
    """Energy MSE of a latent rollout, decoded and mapped back to ``(q, p)`` (module docstring).

    Args:
        model: a trained model.
        code_map: ``(W, b)`` from :func:`fit_code_to_coords`.
        frames: float frames of the evaluation trajectories ``(B, T + 1, size, size)``.
        coords: their true coordinates ``(B, T + 1, 2)``.
        rtol, atol: tolerances of the latent ``dopri5`` solve.

    Returns:
        ``{"mean", "sem", "values", "coord_mse", "energy_true", "energy_pred", "coords_pred",
        "pixels"}``: the energy MSE (mean ± standard error over trajectories, per-trajectory
        ``values``), the MSE of the mapped coordinates, and the curves for the figures
        (``(B, T)`` energies, ``(B, T, 2)`` coordinates, ``(B, T, size, size)`` decoded first
        frames).
    """
    dev = next(model.parameters()).device
    n_traj, n_plus = frames.shape[:2]
    n_frames = n_plus - 1
    x0 = stack_frames(frames[:, :2])[:, 0].to(dev)  # (B, D)
    _, pix = model.rollout(x0, n_frames, rtol=rtol, atol=atol)  # (T, B, D)
    with torch.no_grad():
        z_hat = model.encode(pix).double().cpu()  # (T, B, latent)
    w, b = code_map
    cc = (z_hat @ w + b).transpose(0, 1)  # (B, T, 2)
    true = coords[:, :n_frames].double()
    e_true = pixel_pendulum_energy(true)
    e_pred = pixel_pendulum_energy(cc)
    per_traj = (e_true - e_pred).pow(2).mean(dim=1)
    size = frames.shape[-1]
    first = (
        pix.transpose(0, 1)[..., : size * size].reshape(n_traj, n_frames, size, size).float().cpu()
    )
    return {
        **mean_sem(per_traj),
        "values": per_traj.tolist(),
        "coord_mse": float((cc - true).pow(2).mean()),
        "energy_true": e_true,
        "energy_pred": e_pred,
        "coords_pred": cc,
        "pixels": first,
    }


# -- figures ------------------------------------------------------------------------------
def _frame_strip(frames: Tensor, idx: list[int]) -> Tensor:
    """Frames ``(T, s, s)`` at ``idx`` side by side with a 1-px gap, values for ``gray_r``."""
    s = frames.shape[-1]
    gap = torch.full((s, 1), float("nan"))
    cols = []
    for i in idx:
        cols += [frames[i].clamp(0, 0.5) / 0.5, gap]
    return torch.cat(cols[:-1], dim=1)


def fig8(
    truth: Tensor,
    preds: dict[str, Tensor],
    t: Tensor,
    q: dict[str, Tensor],
    energy: dict[str, Tensor],
    path_stem: Path,
    *,
    n_columns: int = 12,
) -> list[Path]:
    """The analogue of the paper's Fig. 8: rows of frames, then the angle and the energy.

    Args:
        truth: true frames ``(T, s, s)``.
        preds: ``{"baseline": (T, s, s), "hnn": (T, s, s)}`` decoded rollout frames.
        t: times ``(T,)`` in frames.
        q: angle curves ``{"truth", "baseline", "hnn"}`` → ``(T,)``.
        energy: energy curves, same keys.
        path_stem: output path without suffix (``.png`` and ``.svg`` are written).
        n_columns: frames shown per row.
    """
    from ..report.figures import COLORS, LABELS, STYLE, plt, save

    n = truth.shape[0]
    idx = sorted({round(i * (n - 1) / (n_columns - 1)) for i in range(n_columns)})
    rows = [("truth", truth), *((k, preds[k]) for k in MODELS)]
    cmap = plt.get_cmap("gray_r").with_extremes(bad="white")
    with plt.rc_context({**STYLE, "axes.grid": False}):
        fig = plt.figure(figsize=(1.0 * len(idx) + 1.2, 9.0))
        gs = fig.add_gridspec(5, 1, height_ratios=[1, 1, 1, 1.5, 1.5], hspace=0.55)
        for r, (name, fr) in enumerate(rows):
            ax = fig.add_subplot(gs[r])
            ax.imshow(
                _frame_strip(fr, idx).numpy(), cmap=cmap, vmin=0, vmax=1, interpolation="nearest"
            )
            s = fr.shape[-1]
            ax.set_xticks([j * (s + 1) + s / 2 - 0.5 for j in range(len(idx))])
            ax.set_xticklabels([str(i) for i in idx], fontsize=8)
            ax.set_yticks([])
            for side in ("top", "right", "left"):
                ax.spines[side].set_visible(False)
            ax.set_title(
                LABELS[name], loc="left", color=COLORS[name], fontsize=12, fontweight="bold"
            )
            if r == len(rows) - 1:
                ax.set_xlabel("frame (latent rollout from frame 0; 20 frames = 1 s)", fontsize=9)
        axq = fig.add_subplot(gs[3])
        axe = fig.add_subplot(gs[4], sharex=axq)
        for name in ("truth", *MODELS):
            kw = {
                "color": COLORS[name],
                "label": LABELS[name],
                "lw": 2.2 if name == "truth" else 1.6,
            }
            axq.plot(t.numpy(), q[name].numpy(), **kw)
            axe.plot(t.numpy(), energy[name].numpy(), **kw)
        axq.set_ylabel(r"angle $q=\theta$ (rad)")
        axq.set_title("Angle read back from the decoded frames", loc="left", fontsize=11)
        axq.legend(loc="upper right", ncol=3, fontsize=8)
        axe.set_ylabel(r"$H=\frac{15}{8}(1-\cos q)+p^2$")
        axe.set_xlabel("frame")
        axe.set_title("Energy of the mapped coordinates", loc="left", fontsize=11)
        for ax in (axq, axe):
            ax.grid(True, alpha=0.3)
        axq.set_xlim(0, float(t[-1]))
        axe.set_ylim(bottom=0)
        return save(fig, path_stem)


def write_gif(
    truth: Tensor, preds: dict[str, Tensor], path: Path, *, scale: int = 5, ms_per_frame: int = 50
) -> Path | None:
    """Animated GIF: ground truth | baseline | HNN side by side, labelled. ``None`` without Pillow."""
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:  # pragma: no cover - matplotlib depends on Pillow
        return None
    panels = [
        ("Ground truth", truth),
        ("Baseline NN", preds["baseline"]),
        ("Hamiltonian NN", preds["hnn"]),
    ]
    s = truth.shape[-1] * scale
    pad, header, footer = 6, 22, 16
    width = len(panels) * s + (len(panels) + 1) * pad
    font = ImageFont.load_default()
    colors = [(0, 0, 0), (214, 39, 40), (31, 119, 180)]
    images = []
    for f in range(truth.shape[0]):
        canvas = Image.new("RGB", (width, s + header + footer), (255, 255, 255))
        draw = ImageDraw.Draw(canvas)
        for j, (label, fr) in enumerate(panels):
            arr = (255 - (fr[f].clamp(0, 0.5) / 0.5 * 255)).round().to(torch.uint8).numpy()
            tile = Image.fromarray(arr, mode="L").resize((s, s), Image.NEAREST).convert("RGB")
            x = pad + j * (s + pad)
            canvas.paste(tile, (x, header))
            draw.rectangle([x - 1, header - 1, x + s, header + s], outline=(200, 200, 200))
            draw.text((x + 2, 4), label, fill=colors[j], font=font)
        draw.text(
            (pad, s + header + 3),
            f"frame {f}  (t = {f * GYM_DT:.2f} s; latent rollout from frame 0)",
            fill=(90, 90, 90),
            font=font,
        )
        images.append(canvas.convert("P", palette=Image.ADAPTIVE, colors=64))

    def write(tmp: Path) -> None:
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=ms_per_frame,
            loop=0,
        )

    return atomic_write(path, write)


# -- driver -------------------------------------------------------------------------------
def _save_checkpoint(model: PixelHNN, path: Path) -> None:
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    atomic_write(path, lambda p: p.write_bytes(buf.getvalue()))


def _write_log(path: Path, history: list[dict[str, float]]) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=["step", "train_loss", "test_loss", "seconds"])
            w.writeheader()
            w.writerows(history)

    atomic_write(path, write)


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
        out_dir: directory for ``config.json``, ``metrics.json``, ``{model}/log.csv``,
            ``{model}/model.pt`` and ``figures/`` (``pixel-pendulum-fig8.{png,svg}``,
            ``pixel-pendulum.gif``).
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
    eval_frames_u8, eval_coords = simulate_pixel_pendulum(
        cfg.eval_trajectories,
        cfg.eval_frames + 1,
        generator=torch.Generator().manual_seed(seed + 1),
        size=cfg.size,
        render_size=cfg.render_size,
        theta_range=(math.pi / 11, math.pi / 10),
    )
    eval_frames = eval_frames_u8.float() / 255.0
    data_seconds = time.perf_counter() - t0
    say(f"[pixel-pendulum] data: {tuple(data.frames.shape)} frames in {data_seconds:.1f} s")
    config = {
        "profile": profile,
        "seed": seed,
        **asdict(cfg),
        "data": data.config,
        "eval": {
            "theta_range": [math.pi / 11, math.pi / 10],
            "seed": seed + 1,
            "rtol": 1e-3,
            "atol": 1e-6,
        },
    }
    atomic_write_json(out / "config.json", config)

    results: dict[str, Any] = {}
    evals: dict[str, dict[str, Any]] = {}
    for kind in MODELS:
        gen = torch.Generator().manual_seed(seed)
        model = PixelHNN(
            data.input_dim,
            baseline=(kind == "baseline"),
            ae_hidden=cfg.ae_hidden,
            latent_hidden=cfg.latent_hidden,
            generator=gen,
        ).to(dev)
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
            checkpoint=out / kind / "checkpoint.pt",  # a killed run resumes from here
            checkpoint_every=max(1, cfg.steps // 10),
        )
        # training time over every attempt, as recorded in the history
        train_seconds = history[-1]["seconds"] if history else time.perf_counter() - t1
        _save_checkpoint(model, out / kind / "model.pt")
        _write_log(out / kind / "log.csv", history)
        train_l = per_sample_loss(model, data.train)
        test_l = per_sample_loss(model, data.test)
        with torch.no_grad():
            terms = model.losses(data.test.x.to(dev), data.test.x_next.to(dev))
        code_map = fit_code_to_coords(model, data.train)
        ev = energy_metric(model, code_map, eval_frames, eval_coords)
        evals[kind] = ev
        results[kind] = {
            "train_loss": mean_sem(train_l),
            "test_loss": mean_sem(test_l),
            "energy": {"mean": ev["mean"], "sem": ev["sem"], "values": ev["values"]},
            "coord_mse": ev["coord_mse"],
            "loss_terms": {k: float(v.mean()) for k, v in terms.items() if k != "total"},
            "train_seconds": train_seconds,
            "history": history,
        }
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
