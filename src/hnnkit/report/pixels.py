"""Figures of the ``pixel-pendulum`` experiment: the analogue of the paper's Fig. 8 and a GIF."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from ..data.pixels import GYM_DT
from ..files import atomic_write
from .figures import COLORS, LABELS, STYLE, plt, save

MODELS = ("baseline", "hnn")


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
