"""Figures read at a glance: one colour per model from ``hnnkit.report.style``, legends off the
data, y-limits that a runaway curve cannot set, time axes with their unit."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.colors import to_hex

from hnnkit.evaluate import Rollouts, divergence_rollouts
from hnnkit.models import HNN
from hnnkit.report import figures, kan, pixels, style
from hnnkit.systems import ThreeBody

matplotlib.use("Agg")

MODELS = ("baseline", "hnn", "dhnn", "kan", "my-plugin-model")


def _rollouts(models=MODELS, *, runaway: str | None = None, dim: int = 2) -> Rollouts:
    """Circles in phase space, the truth's energy flat at -0.5, each model slightly off it;
    ``runaway`` drifts down to -4.3 (the two-body baseline's dip)."""
    t = torch.linspace(0, 20, 200, dtype=torch.float64)
    ang = t[:, None] + torch.zeros(1, 3, dtype=torch.float64)
    d = dim // 2

    def circle(r: float) -> torch.Tensor:
        x = torch.zeros(len(t), 3, dim, dtype=torch.float64)
        x[..., 0], x[..., d] = r * torch.cos(ang), r * torch.sin(ang)
        return x

    true_e = torch.full((len(t), 3), -0.5, dtype=torch.float64)
    trajs, energies = {}, {}
    for k, name in enumerate(models):
        trajs[name] = circle(1.0 + 0.03 * (k + 1))
        energies[name] = true_e + 0.02 * (k + 1) * torch.sin(3 * ang)
    if runaway is not None:
        energies[runaway] = true_e - 3.8 * (t[:, None] / 20) ** 2
    return Rollouts(t, circle(1.0), trajs, true_e, energies)


@pytest.fixture
def drawn(monkeypatch):
    """Figures drawn but not written: every ``save`` keeps the figure instead."""
    kept: list[matplotlib.figure.Figure] = []

    def keep(fig, path_stem):
        kept.append(fig)
        return []

    for mod in (figures, kan, pixels):
        monkeypatch.setattr(mod, "save", keep)
    yield kept
    import matplotlib.pyplot as plt

    for fig in kept:
        plt.close(fig)


@pytest.fixture
def marked_colors(monkeypatch):
    """``style.model_color`` replaced by a colour made from the name (not the real one)."""
    seen: dict[str, str] = {}

    def color(name: str) -> str:
        seen.setdefault(name, "#%06x" % (0x101010 + 0x0F0F0F * (len(seen) + 1) % 0xEFEFEF))
        return seen[name]

    monkeypatch.setattr(style, "model_color", color)
    return seen


def _line_colors(fig) -> dict[str, set[str]]:
    """Label → colours of the labelled lines of ``fig``."""
    out: dict[str, set[str]] = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            lab = line.get_label()
            if lab and not lab.startswith("_"):
                out.setdefault(lab, set()).add(to_hex(line.get_color()))
    return out


@pytest.fixture(scope="module")
def divergence():
    system = ThreeBody()
    x0 = system.sample_initial(1, generator=torch.Generator().manual_seed(0))
    t = torch.linspace(0, 3, 61, dtype=torch.float64)
    return divergence_rollouts(system, {"hnn": HNN(12, generator=torch.Generator())}, x0, t)


# -- one colour and one label per model ------------------------------------------------------
def test_style_has_one_colour_and_label_per_model_and_a_fallback():
    known = ("baseline", "hnn", "dhnn", "kan")
    assert len({style.model_color(n) for n in known}) == len(known)
    assert style.model_label("hnn") == "HNN" and style.model_label("kan") == "KAN-HNN"
    assert style.model_color("kan-hnn") == style.model_color("kan")
    new = style.model_color("my-plugin-model")
    assert new == style.model_color("my-plugin-model")  # stable
    assert new in style.FALLBACK_COLORS and new not in style.MODEL_COLORS.values()
    assert style.model_label("my-plugin-model") == "my-plugin-model"
    assert style.model_color("truth") == "black"
    assert style.truth_style()["zorder"] > style.line_style("hnn")["zorder"]


def test_every_figure_takes_model_colours_from_style(drawn, marked_colors, divergence):
    r = _rollouts()
    figures.rollout_panels(r, "x", title="t")
    figures.energy_curves(r, "x", title="t")
    figures.loss_curves(
        {n: [{"step": 0, "train_loss": 1.0, "test_loss": 2.0}] for n in MODELS}, "x"
    )
    figures.divergence_figure(divergence, "x", title="t")
    kt = torch.linspace(0, 1, 20)
    names = ("truth", *kan.MODELS)
    kan.plot_rollouts(
        kt, {n: torch.rand(20, 2) for n in names}, {n: torch.rand(20) for n in names}, Path("x")
    )
    frames = torch.rand(10, 8, 8)
    ts = torch.arange(10, dtype=torch.float64)
    pixels.fig8(
        frames,
        {k: frames for k in pixels.MODELS},
        ts,
        {k: torch.rand(10) for k in ("truth", *pixels.MODELS)},
        {k: torch.rand(10) for k in ("truth", *pixels.MODELS)},
        "x",
        n_columns=4,
    )
    assert len(drawn) == 8
    used = set(MODELS) | set(kan.MODELS) | {"hnn"}
    assert used <= set(marked_colors)  # every model's colour was asked of style
    allowed: dict[str, set[str]] = {}  # label -> colours of the names that carry it
    for name in used:
        allowed.setdefault(style.model_label(name), set()).add(to_hex(marked_colors[name]))
    for fig in drawn:
        for lab, colors in _line_colors(fig).items():
            owners = [m for m in allowed if lab == m or lab.startswith((m + " ", m + ","))]
            if owners:  # the longest label that starts it: "MLP-HNN + L1", not "MLP-HNN"
                assert colors <= allowed[max(owners, key=len)], (lab, colors)
            if lab == style.TRUTH_LABEL:
                assert colors == {to_hex("black")}


# -- legends off the data ---------------------------------------------------------------------
def _data_bbox(ax):
    """The display-space bounding box of ``ax``'s lines (its data) where they are visible."""
    from matplotlib.transforms import Bbox

    box = ax.get_window_extent()
    pts = np.concatenate(
        [line.get_transform().transform(line.get_xydata()) for line in ax.get_lines()]
    )
    pts = pts[np.isfinite(pts).all(axis=1)]
    pts = np.clip(pts, [box.x0, box.y0], [box.x1, box.y1])
    return Bbox([pts.min(axis=0), pts.max(axis=0)])


def _legends(fig):
    return [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]


@pytest.mark.parametrize("orbit", [False, True])
def test_phase_plot_legend_does_not_cover_the_data(drawn, orbit):
    figures.rollout_panels(_rollouts(dim=4 if orbit else 2), "x", title="t", orbit=orbit)
    fig = drawn[0]
    fig.canvas.draw()
    legends = _legends(fig)
    assert legends
    for ax in fig.axes:
        data = _data_bbox(ax)
        for leg in legends:
            assert not leg.get_window_extent().overlaps(data), ax.get_title()


def test_kan_and_divergence_legends_do_not_cover_the_data(drawn, divergence):
    names = ("truth", *kan.MODELS)
    t = torch.linspace(0, 6, 60)
    circle = torch.stack([torch.cos(t), torch.sin(t)], dim=1)
    trajs = {n: circle * (1 + 0.01 * k) for k, n in enumerate(names)}
    kan.plot_rollouts(t, trajs, {n: torch.ones(60) for n in names}, Path("x"))
    figures.divergence_figure(divergence, "x", title="t", orbit_until=2.0)
    figures.energy_curves(_rollouts(), "x", title="t")
    assert len(drawn) == 5
    for fig in drawn:
        fig.canvas.draw()
        for ax in fig.axes:
            data = _data_bbox(ax)
            for leg in _legends(fig):
                assert not leg.get_window_extent().overlaps(data), ax.get_title()


# -- robust limits -------------------------------------------------------------------------------
def test_robust_limits_follow_the_curves_near_the_truth_not_the_runaway():
    t = np.linspace(0, 20, 400)
    truth = np.full_like(t, -0.5)
    hnn = truth + 0.01 * np.sin(t)
    baseline = truth - 3.8 * (t / 20) ** 2
    (lo, hi), out = style.robust_limits({"truth": truth, "hnn": hnn, "baseline": baseline})
    assert out == ["baseline"]
    assert -0.6 < lo < -0.51 and -0.49 < hi < -0.4
    # a single spike does not set them either (quantiles)
    spiky = hnn.copy()
    spiky[200] = 50.0
    (lo, hi), out = style.robust_limits({"truth": truth, "hnn": spiky})
    assert hi < 0 and out == []
    # curves that stay comparable are all shown
    (lo, hi), out = style.robust_limits({"truth": truth, "hnn": truth - 0.2 * t / 20})
    assert out == [] and lo < -0.7


def test_energy_panel_keeps_the_hnn_truth_gap_visible(drawn):
    figures.rollout_panels(_rollouts(("baseline", "hnn"), runaway="baseline"), "x", title="t")
    ax = drawn[0].axes[2]
    lo, hi = ax.get_ylim()
    assert lo > -1.0  # not stretched to the baseline's -4.3
    gap = 0.04  # the HNN's largest distance from the truth in _rollouts
    assert gap / (hi - lo) > 0.2
    notes = [c.get_text() for c in ax.texts]
    assert any("baseline NN leaves the frame" in n and "-4.3" in n for n in notes), notes


# -- time axes -------------------------------------------------------------------------------------
def test_time_axes_carry_the_unit_passed_in(drawn, divergence):
    r = _rollouts()
    figures.rollout_panels(r, "x", title="t", time_unit="s")
    figures.energy_curves(r, "x", title="t", time_unit="s")
    figures.divergence_figure(divergence, "x", title="t", time_unit="s")
    figures.rollout_panels(r, "x", title="t")
    a, e, d, plain = drawn
    assert [ax.get_xlabel() for ax in a.axes[1:]] == ["time (s)", "time (s)"]
    assert e.axes[0].get_xlabel() == "time (s)"
    assert [ax.get_xlabel() for ax in d.axes[1:]] == ["time (s)", "time (s)"]
    assert [ax.get_xlabel() for ax in plain.axes[1:]] == ["time", "time"]
    assert [ax.get_xlabel() for ax in a.axes[:1]] == ["q"]


def test_legends_write_theta_as_mathtext(drawn, divergence):
    figures.divergence_figure(divergence, "x", title="t")
    texts = [t.get_text() for leg in _legends(drawn[0]) for t in leg.get_texts()]
    assert any(r"$H_\theta$" in t for t in texts)
    assert not any("H_θ" in t for t in texts)


def test_gif_is_as_wide_as_the_report_shows_it(tmp_path):
    PIL = pytest.importorskip("PIL.Image")
    frames = torch.rand(3, 28, 28)
    path = pixels.write_gif(frames, {k: frames for k in pixels.MODELS}, tmp_path / "a.gif")
    with PIL.open(path) as im:
        assert im.size[0] == pixels.GIF_WIDTH
        assert im.n_frames == 3
