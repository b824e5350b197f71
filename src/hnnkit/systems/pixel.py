r"""A vectorised, antialiased renderer of a pendulum (rod + bob), in torch.

No gym, pygame or OpenGL: every pixel's coverage is computed from the analytic signed
distance to each shape, so a whole batch of angles renders in a few tensor operations on
any device.

Geometry (the defaults mirror gym's ``Pendulum-v0`` scene, ``gym/envs/classic_control/
pendulum.py``: a ``Viewer`` with ``set_bounds(-2.2, 2.2, -2.2, 2.2)``, a rod drawn by
``make_capsule(1, .2)`` in colour ``(.8, .3, .3)`` and a black axle ``make_circle(.05)``;
gym draws no separate bob, we add one at the rod's end):

* the frame is a square of ``size × size`` pixels showing the world square
  :math:`[-e, e]^2` with :math:`e` = ``extent`` = 2.2, so one world unit is
  ``size / (2 e)`` pixels;
* the pivot is at the centre of the frame;
* the rod has length ``length`` = 1 (so ``size / 4.4`` pixels, 90.9 px at 400×400) and
  width ``rod_width`` = 0.2; the bob is a disc of radius ``bob_radius`` = 0.15 centred
  at the rod's end;
* **angle convention:** :math:`\theta = 0` hangs straight *down*; positive
  :math:`\theta` swings the bob to the *right* of the image (counter-clockwise in the usual
  y-up view). This is the angle the original HNN code extracts from gym's state
  (``get_theta`` in greydanus/hamiltonian-nn ``experiment-pixels/data.py`` adds
  :math:`\pi` to gym's upright-zero angle).

Pixel coordinates: pixel ``(i, j)`` (row ``i``, column ``j``) has its centre at ``(i, j)``;
the frame covers :math:`[-\tfrac12, \text{size} - \tfrac12]^2`, the pivot is at
:math:`((\text{size} - 1)/2, (\text{size} - 1)/2)`, and the bob centre of an angle
:math:`\theta` is at

.. math::

    \text{row} = c + s\,l\cos\theta,\qquad \text{col} = c + s\,l\sin\theta,
    \qquad c = \tfrac{\text{size} - 1}{2},\ s = \tfrac{\text{size}}{2e}.

Antialiasing: a pixel's coverage of a shape is :math:`\mathrm{clamp}(\tfrac12 - d, 0, 1)`
with :math:`d` the signed distance (in pixels) from the pixel centre to the shape's
boundary, which is the exact area fraction for a straight edge crossing the pixel
axis-aligned and within a few percent otherwise. Layers (background, rod, bob, axle) are
alpha-composited in that order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import HnnkitValueError

Color = tuple[float, float, float]


@dataclass(frozen=True)
class PendulumGeometry:
    """Scene geometry and colours, in world units (see the module docstring).

    Args:
        extent: half-width of the square world window shown by a frame (default 2.2, gym's
            ``set_bounds``).
        length: rod length from pivot to bob centre (default 1.0).
        rod_width: rod thickness (default 0.2, gym's capsule); ``0`` draws no rod.
        bob_radius: radius of the bob disc (default 0.15); ``0`` draws no bob.
        axle_radius: radius of the black axle disc at the pivot (default 0.05); ``0`` draws none.
        rod_color, bob_color, axle_color, background: RGB in ``[0, 1]``. The defaults give
            the rod and the bob the same red-minus-green value (0.5), and the background and
            axle a red-minus-green value of 0, as in gym's scene.

    Raises:
        HnnkitValueError: on a non-positive ``extent`` or ``length``, a negative size, or
            a colour outside ``[0, 1]``.
    """

    extent: float = 2.2
    length: float = 1.0
    rod_width: float = 0.2
    bob_radius: float = 0.15
    axle_radius: float = 0.05
    rod_color: Color = (0.8, 0.3, 0.3)
    bob_color: Color = (0.6, 0.1, 0.1)
    axle_color: Color = (0.0, 0.0, 0.0)
    background: Color = (1.0, 1.0, 1.0)

    def __post_init__(self) -> None:
        for name in ("extent", "length"):
            if not getattr(self, name) > 0:
                raise HnnkitValueError(
                    f"PendulumGeometry.{name} must be > 0, got {getattr(self, name)!r}"
                )
        for name in ("rod_width", "bob_radius", "axle_radius"):
            if not getattr(self, name) >= 0:
                raise HnnkitValueError(
                    f"PendulumGeometry.{name} must be >= 0 (0 leaves the shape out), got {getattr(self, name)!r}"
                )
        for name in ("rod_color", "bob_color", "axle_color", "background"):
            c = getattr(self, name)
            if len(c) != 3 or not all(0.0 <= v <= 1.0 for v in c):
                raise HnnkitValueError(
                    f"PendulumGeometry.{name} must be three floats in [0, 1], got {c!r}"
                )

    def scale(self, size: int) -> float:
        """Pixels per world unit in a ``size × size`` frame: ``size / (2 * extent)``."""
        return size / (2.0 * self.extent)

    def pivot(self, size: int) -> tuple[float, float]:
        """Pixel position ``(row, col)`` of the pivot: the frame centre ``((size-1)/2, (size-1)/2)``."""
        c = (size - 1) / 2.0
        return c, c

    def reach(self) -> float:
        """Radius (world units) of the disc around the pivot that any angle can paint."""
        return max(self.length + max(self.bob_radius, self.rod_width / 2), self.axle_radius)


DEFAULT_GEOMETRY = PendulumGeometry()


def _check_size(size: object) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 2:
        raise HnnkitValueError(f"size must be an integer >= 2 (pixels per side), got {size!r}")
    return size


def _as_angles(theta: Tensor | float, dtype: torch.dtype | None = None) -> Tensor:
    if not isinstance(theta, Tensor):
        theta = torch.as_tensor(theta, dtype=torch.float64)
    if not theta.is_floating_point():
        raise HnnkitValueError(
            f"theta must be a floating-point tensor of angles (radians), got {theta.dtype}"
        )
    if not torch.isfinite(theta).all():
        raise HnnkitValueError("theta contains NaN or infinite angles")
    return theta if dtype is None else theta.to(dtype)


def _check_window(window: tuple[int, int, int, int] | None, size: int) -> tuple[int, int, int, int]:
    if window is None:
        return 0, size, 0, size
    if len(window) != 4:
        raise HnnkitValueError(f"window must be (top, bottom, left, right), got {window!r}")
    top, bottom, left, right = (int(v) for v in window)
    if not (0 <= top < bottom <= size and 0 <= left < right <= size):
        raise HnnkitValueError(
            f"window {window!r} must satisfy 0 <= top < bottom <= size and 0 <= left < right <= size "
            f"(size={size}); it is a slice [top:bottom, left:right] of the frame"
        )
    return top, bottom, left, right


def bob_pixel_position(
    theta: Tensor | float, size: int = 400, *, geometry: PendulumGeometry = DEFAULT_GEOMETRY
) -> Tensor:
    r"""Analytic pixel position of the bob's centre.

    Args:
        theta: angles (radians, 0 = hanging down, positive = bob to the right), any shape.
        size: frame side in pixels (default 400).
        geometry: the scene (default :data:`DEFAULT_GEOMETRY`).

    Returns:
        ``(*theta.shape, 2)``: ``(row, col)`` with pixel ``(i, j)`` centred at ``(i, j)``,
        i.e. :math:`(c + s l\cos\theta,\ c + s l\sin\theta)`, :math:`c = (\text{size}-1)/2`,
        :math:`s = \text{size}/(2e)`.

    Raises:
        HnnkitValueError: on a bad ``size`` or non-finite angles.
    """
    size = _check_size(size)
    theta = _as_angles(theta)
    s = geometry.scale(size) * geometry.length
    r0, c0 = geometry.pivot(size)
    return torch.stack([r0 + s * torch.cos(theta), c0 + s * torch.sin(theta)], dim=-1)


#: Pixels rasterised per inner step (8 MB float32 temporaries): few enough parallel regions for
#: OpenMP, small enough to be reused by the allocator instead of page-faulted in each time.
_CHUNK_PIXELS = 1 << 21


def _coverage_(d: Tensor) -> Tensor:
    """In place: signed distance (pixels) → coverage ``clamp(1/2 - d, 0, 1)``."""
    return d.neg_().add_(0.5).clamp_(0.0, 1.0)


def _layers(
    theta: Tensor, size: int, g: PendulumGeometry, window: tuple[int, int, int, int]
) -> dict[str, Tensor | None]:
    """Coverages of a flat batch ``(n,)`` on ``window``: rod/bob ``(n, h, w)``, axle ``(h, w)``."""
    top, bottom, left, right = window
    s = g.scale(size)
    r0, c0 = g.pivot(size)
    dev, dtype = theta.device, theta.dtype
    dy = (torch.arange(top, bottom, device=dev, dtype=dtype) - r0)[:, None]  # (h, 1), downwards
    dx = (torch.arange(left, right, device=dev, dtype=dtype) - c0)[None, :]  # (1, w), rightwards
    cos = torch.cos(theta)[:, None, None]
    sin = torch.sin(theta)[:, None, None]
    length = s * g.length
    out: dict[str, Tensor | None] = {"rod": None, "bob": None, "axle": None}
    if g.rod_width > 0:
        # distance to the segment pivot → bob; u = (cos, sin) is its direction in (row, col)
        t = torch.add(dy * cos, dx * sin).clamp_(0.0, length)  # (n, h, w) position along the rod
        ey = torch.mul(t, cos).neg_().add_(dy)
        ex = t.mul_(sin).neg_().add_(dx)
        d = ey.mul_(ey).add_(ex.mul_(ex)).sqrt_().sub_(0.5 * s * g.rod_width)
        out["rod"] = _coverage_(d)
    if g.bob_radius > 0:
        by = dy - length * cos  # (n, h, 1)
        bx = dx - length * sin  # (n, 1, w)
        d = torch.add(by * by, bx * bx).sqrt_().sub_(s * g.bob_radius)
        out["bob"] = _coverage_(d)
    if g.axle_radius > 0:
        out["axle"] = _coverage_(torch.add(dy * dy, dx * dx).sqrt_().sub_(s * g.axle_radius))
    return out


def pendulum_coverage(
    theta: Tensor | float,
    size: int = 400,
    *,
    geometry: PendulumGeometry = DEFAULT_GEOMETRY,
    window: tuple[int, int, int, int] | None = None,
    dtype: torch.dtype = torch.float32,
) -> dict[str, Tensor]:
    """Antialiased coverage in ``[0, 1]`` of each shape, per pixel.

    Args:
        theta: angles (radians), shape ``(...)``.
        size: frame side in pixels (default 400).
        geometry: the scene.
        window: ``(top, bottom, left, right)``: compute only the slice
            ``[top:bottom, left:right]`` of the frame (default: the whole frame). The result
            equals the same slice of a full-frame computation.
        dtype: floating dtype of the computation (default float32).

    Returns:
        ``{"rod", "bob", "axle"}`` → ``(*theta.shape, bottom-top, right-left)`` tensors on
        ``theta``'s device; a shape left out of the geometry (size 0) gives zeros.

    Raises:
        HnnkitValueError: on a bad ``size``, ``window`` or non-finite angles.
    """
    size = _check_size(size)
    win = _check_window(window, size)
    theta = _as_angles(theta, dtype)
    h, w = win[1] - win[0], win[3] - win[2]
    cov = _layers(theta.reshape(-1), size, geometry, win)
    out = {}
    for k, v in cov.items():
        full = (theta.numel(), h, w)
        v = torch.zeros(full, dtype=dtype, device=theta.device) if v is None else v.expand(full)
        out[k] = v.reshape(*theta.shape, h, w)
    return out


def render_pendulum(
    theta: Tensor | float,
    size: int = 400,
    *,
    geometry: PendulumGeometry = DEFAULT_GEOMETRY,
    window: tuple[int, int, int, int] | None = None,
    channels: str = "rgb",
    as_uint8: bool = True,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    r"""Render a batch of pendulum angles to antialiased frames.

    Only the square around the pivot that the pendulum can reach is rasterised (the rest
    of the frame is background), in chunks of frames small enough to stay in cache.

    Args:
        theta: angles (radians; 0 = hanging down, positive = bob to the right), shape ``(...)``.
        size: frame side in pixels (default 400, the size of the seed's frames).
        geometry: the scene (default :data:`DEFAULT_GEOMETRY`, gym's ``Pendulum-v0`` layout
            plus a bob).
        window: ``(top, bottom, left, right)``: render only that slice of the frame
            (identical to rendering the full frame and cropping).
        channels: ``"rgb"`` (default) for ``(..., H, W, 3)`` colour frames, or
            ``"red-green"`` for ``(..., H, W)`` frames holding red minus green, the grayscale
            the original HNN code uses (``preproc`` in ``experiment-pixels/data.py``).
            Compositing is linear per channel, so this equals R − G of the colour frame.
        as_uint8: return ``uint8`` in ``[0, 255]`` like a video frame (default), else floats
            in ``[0, 1]`` (``[-1, 1]`` for ``"red-green"``). With ``"red-green"`` the
            integer output is the difference rounded to 8-bit levels, as ``int16``.
        dtype: floating dtype of the computation (default float32).

    Returns:
        The frames, on ``theta``'s device.

    Raises:
        HnnkitValueError: on a bad ``size``, ``window``, ``channels`` value or non-finite angles.
    """
    size = _check_size(size)
    if channels not in ("rgb", "red-green"):
        raise HnnkitValueError(f"channels must be 'rgb' or 'red-green', got {channels!r}")
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise HnnkitValueError(f"dtype must be a floating torch dtype, got {dtype!r}")
    top, bottom, left, right = _check_window(window, size)
    theta = _as_angles(theta, dtype)
    g = geometry
    dev = theta.device
    # the part of the window the pendulum can paint
    r0, c0 = g.pivot(size)
    reach = g.scale(size) * g.reach() + 1.0
    a_top, a_bottom = max(top, math.floor(r0 - reach)), min(bottom, math.ceil(r0 + reach) + 1)
    a_left, a_right = max(left, math.floor(c0 - reach)), min(right, math.ceil(c0 + reach) + 1)
    h, w = bottom - top, right - left

    def color(c: Color) -> list[float]:
        return list(c) if channels == "rgb" else [c[0] - c[1]]

    bg = color(g.background)
    layers = [(k, color(getattr(g, f"{k}_color"))) for k in ("rod", "bob", "axle")]
    nc = len(bg)
    out_dtype = dtype if not as_uint8 else (torch.uint8 if channels == "rgb" else torch.int16)

    def finish(x: Tensor) -> Tensor:
        if not as_uint8:
            return x
        x = x.mul_(255.0).round_()
        return x.clamp_(0, 255).to(out_dtype) if channels == "rgb" else x.to(out_dtype)

    flat = theta.reshape(-1)
    n = flat.numel()
    background = finish(torch.tensor(bg, dtype=dtype, device=dev))
    frame = background.expand(n, h, w, nc).contiguous()
    if a_top < a_bottom and a_left < a_right and n:
        ah, aw = a_bottom - a_top, a_right - a_left
        chunk = max(1, _CHUNK_PIXELS // (ah * aw))
        for i in range(0, n, chunk):
            cov = _layers(flat[i : i + chunk], size, g, (a_top, a_bottom, a_left, a_right))
            m = min(chunk, n - i)
            for ch in range(nc):
                # composite one channel: over a flat background, then layer by layer
                img = torch.full((m, ah, aw), bg[ch], dtype=dtype, device=dev)
                for k, col in layers:
                    c = cov[k]
                    if c is not None:
                        img.add_(torch.sub(col[ch], img).mul_(c))
                out = frame[
                    i : i + m, a_top - top : a_bottom - top, a_left - left : a_right - left, ch
                ]
                out.copy_(finish(img))
    frame = frame.reshape(*theta.shape, h, w, nc)
    return frame[..., 0] if channels == "red-green" else frame
