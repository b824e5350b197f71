"""Figures of the ``pixel-pendulum`` experiment: the analogue of the paper's Fig. 8 and a GIF."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from ..data.pixels import GYM_DT
from ..files import atomic_write
from . import style
from .figures import STYLE, plt, save

MODELS = ("baseline", "hnn")
#: Frames per second of the rendered pendulum.
FRAMES_PER_S = round(1 / GYM_DT)
#: Width of the GIF in pixels: the report shows it at this width, so its text stays sharp.
GIF_WIDTH = 480


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
        gs = fig.add_gridspec(5, 1, height_ratios=[1, 1, 1, 1.5, 1.5], hspace=0.65)
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
                style.model_label(name),
                loc="left",
                color=style.model_color(name),
                fontsize=12,
                fontweight="bold",
            )
            if r == len(rows) - 1:
                ax.set_xlabel(
                    f"frame (latent rollout from frame 0; {FRAMES_PER_S} frames = 1 s)", fontsize=9
                )
        axq = fig.add_subplot(gs[3])
        axe = fig.add_subplot(gs[4], sharex=axq)
        for name in ("truth", *MODELS):
            axq.plot(t.numpy(), q[name].numpy(), **style.line_style(name))
            axe.plot(t.numpy(), energy[name].numpy(), **style.line_style(name))
        axq.set_ylabel(r"angle $q=\theta$ (rad)")
        axq.set_title("Angle q read back from the decoded frames", loc="left", fontsize=11)
        style.legend_right(axq)
        axe.set_ylabel(r"$H=\frac{15}{8}(1-\cos q)+p^2$")
        axe.set_xlabel(f"time (frames; {FRAMES_PER_S} frames = 1 s)")
        axe.set_title(
            "Energy H of the mapped coordinates: each decoded frame re-encoded, then mapped "
            "to (q, p) by a linear fit (flat = energy kept)",
            loc="left",
            fontsize=10,
        )
        axq.tick_params(labelbottom=False)  # shares the energy panel's time axis
        for ax in (axq, axe):
            ax.grid(True, alpha=0.3)
        axq.set_xlim(0, float(t[-1]))
        curves = {k: v.numpy() for k, v in energy.items()}
        if not style.set_robust_ylim(axe, curves):
            axe.set_ylim(bottom=0)
        return save(fig, path_stem)


def _font(size: int):
    """A TrueType font of ``size`` pixels: matplotlib's DejaVu Sans, else Pillow's default."""
    from matplotlib import font_manager
    from PIL import ImageFont

    try:
        return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)
    except OSError:  # pragma: no cover - matplotlib ships DejaVu Sans
        return ImageFont.load_default(size)


def write_gif(
    truth: Tensor,
    preds: dict[str, Tensor],
    path: Path,
    *,
    scale: int | None = None,
    ms_per_frame: int = 50,
) -> Path | None:
    """Animated GIF: ground truth | baseline | HNN side by side, labelled.

    Frames are enlarged ``scale`` times (default: the most that fits :data:`GIF_WIDTH`, the
    width the report shows it at, so nothing is rescaled there) and the GIF is padded to
    :data:`GIF_WIDTH`. Text is drawn with a TrueType font (matplotlib's DejaVu Sans) at a
    legible size. ``None`` without Pillow.
    """
    try:
        from PIL import Image, ImageDraw
    except ImportError:  # pragma: no cover - matplotlib depends on Pillow
        return None
    from matplotlib.colors import to_rgb

    panels = [("truth", truth), *((k, preds[k]) for k in MODELS)]
    n, size = len(panels), truth.shape[-1]
    if scale is None:
        scale = max(1, (GIF_WIDTH - (n + 1) * 6) // (n * size))
    s = size * scale
    pad = max(6, (GIF_WIDTH - n * s) // (n + 1))
    header, footer = 26, 24
    width = max(GIF_WIDTH, n * s + (n + 1) * pad)
    label_font, caption_font = _font(16), _font(13)
    images = []
    for f in range(truth.shape[0]):
        canvas = Image.new("RGB", (width, s + header + footer), (255, 255, 255))
        draw = ImageDraw.Draw(canvas)
        for j, (name, fr) in enumerate(panels):
            arr = (255 - (fr[f].clamp(0, 0.5) / 0.5 * 255)).round().to(torch.uint8).numpy()
            tile = Image.fromarray(arr, mode="L").resize((s, s), Image.NEAREST).convert("RGB")
            x = pad + j * (s + pad)
            canvas.paste(tile, (x, header))
            draw.rectangle([x - 1, header - 1, x + s, header + s], outline=(200, 200, 200))
            rgb = tuple(round(255 * c) for c in to_rgb(style.model_color(name)))
            draw.text(
                (x + s / 2, header - 4),
                style.model_label(name),
                fill=rgb,
                font=label_font,
                anchor="mb",
            )
        draw.text(
            (pad, s + header + 5),
            f"frame {f}   t = {f * GYM_DT:.2f} s   (latent rollout from frame 0)",
            fill=(70, 70, 70),
            font=caption_font,
        )
        images.append(canvas.convert("P", palette=Image.ADAPTIVE, colors=128))

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
