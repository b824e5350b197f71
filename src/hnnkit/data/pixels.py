r"""The pixel-pendulum dataset (task 5 of the HNN paper), rendered without gym.

What the original does (greydanus/hamiltonian-nn ``experiment-pixels/data.py``, commit
``bcc3622``) and what this module does instead:

* **Physics.** The original steps gym's ``Pendulum-v0`` with zero torque:
  :math:`g = 10`, :math:`m = l = 1`, ``dt = 0.05`` s per frame and
  :math:`\ddot\theta = -\tfrac{3g}{2l}\sin\theta = -15\sin\theta` (a uniform rod; gym's
  ``step`` is ``thdot += -3g/(2l) sin(th + pi) dt; th += thdot dt``, a semi-implicit Euler
  step, with the angle measured from upright). Here ``dynamics="ideal"`` (the default)
  integrates the same ODE accurately (RK4, ``substeps`` per frame, float64), so the true
  energy is conserved; ``dynamics="gym"`` reproduces gym's semi-implicit Euler step and its
  speed clip at 8 rad/s.
* **Angle and coordinates.** :math:`\theta = 0` hangs down (the original's ``get_theta``
  adds :math:`\pi` to gym's angle). The true coordinates are
  :math:`(q, p) = (\theta, 0.25\,\dot\theta)`, the original's constant 0.25 "chosen by
  eye"; with it the conserved energy is
  :math:`H = \tfrac{15}{8}(1 - \cos q) + p^2` (:math:`= E/8`, with
  :math:`E = \dot\theta^2/2 + 15(1 - \cos\theta)`). The original notebook used
  :math:`1.9(1-\cos q) + p^2` with 1.9 "fit to the data"; 15/8 = 1.875 is its exact value.
* **Initial states.** gym's ``reset`` draws :math:`\theta_{gym} \sim U[-\pi, \pi]`,
  :math:`\dot\theta \sim U[-1, 1]`, and the original resets until
  :math:`0 < |\theta| < \pi/6`; so :math:`|\theta_0| \sim U(0, \pi/6)` with a random sign
  and :math:`\dot\theta_0 \sim U[-1, 1]`, which is what is sampled here (``theta_range``,
  ``omega_max``).
* **Frames.** Rendered by :func:`hnnkit.systems.pixel.render_pendulum` (gym's scene
  geometry plus a bob), then preprocessed as ``preproc`` does: crop rows
  ``[440:-220]`` and columns ``[330:-330]`` of gym's 1000×1000 frame (the crop fractions
  0.44/0.22/0.33/0.33 of the side are applied to ``render_size``), take red minus green,
  downsample to ``size × size`` and divide by 255. The original resized with
  ``scipy.misc.imresize`` (PIL bilinear, removed from SciPy); here an exact area-averaging
  (box-filter) resize written as two matrix products, followed by rounding to 8-bit levels
  as ``imresize``'s ``uint8`` output did. Only the crop window is rasterised, which equals
  rendering the full frame and cropping it.
* **Samples.** Two consecutive frames are stacked (``2·size²`` inputs, 1568 at 28×28) to
  carry the velocity. Sample ``j`` of a trajectory is ``x = [frame_j, frame_{j+1}]`` with
  ``x_next = [frame_{j+1}, frame_{j+2}]`` and true coordinates those of frame ``j``, so a
  trajectory of ``n_frames`` frames gives ``n_frames - 2`` samples. (The original renders
  103 frames for 100 samples, and its coordinates lead its pixel pairs by two steps.)
* **Split.** Whole trajectories: the last ``test_fraction`` are held out (the original
  holds out the first 20 % of its samples, which are also whole trajectories).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
import zipfile
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import DataFileError, HnnkitValueError, check_choice
from ..files import atomic_write_npz
from ..systems.pixel import DEFAULT_GEOMETRY, PendulumGeometry, render_pendulum

#: Bumped whenever generation changes, so that stale cache files are never reused.
PIXELS_VERSION = 1

#: gym ``Pendulum-v0`` constants: seconds per frame, gravity, rod length.
GYM_DT = 0.05
GYM_G = 10.0
GYM_L = 1.0
#: :math:`\omega_0^2 = 3g/(2l)` of gym's uniform rod.
OMEGA_SQUARED = 3.0 * GYM_G / (2.0 * GYM_L)
#: :math:`p = 0.25\,\dot\theta` (``experiment-pixels/data.py``).
MOMENTUM_SCALE = 0.25
#: The crop of ``preproc`` as fractions of the frame side: top, bottom, left, right margins.
CROP_FRACTIONS = (0.44, 0.22, 0.33, 0.33)

DYNAMICS = ("ideal", "gym")


# -- physics ------------------------------------------------------------------------------
def pixel_pendulum_energy(coords: Tensor) -> Tensor:
    r"""True energy in the dataset's coordinates, :math:`H = \tfrac{15}{8}(1 - \cos q) + p^2`.

    Args:
        coords: ``(..., 2)`` states ``(q, p) = (\theta, 0.25\dot\theta)``.

    Returns:
        ``(...)`` energies.

    Raises:
        HnnkitValueError: if the last dimension is not 2.
    """
    if coords.shape[-1] != 2:
        raise HnnkitValueError(
            f"coords must have shape (..., 2) = (q, p), got {tuple(coords.shape)}"
        )
    q, p = coords[..., 0], coords[..., 1]
    k = OMEGA_SQUARED * MOMENTUM_SCALE**2 * 2  # 15/8: E/8 with E = thdot^2/2 + 15 (1 - cos)
    return k * (1 - torch.cos(q)) + p**2


def simulate_pendulum(
    theta0: Tensor,
    omega0: Tensor,
    n_frames: int,
    *,
    dt: float = GYM_DT,
    dynamics: str = "ideal",
    substeps: int = 10,
) -> tuple[Tensor, Tensor]:
    r"""Integrate :math:`\ddot\theta = -15\sin\theta` (gym's rod, zero torque) for a batch.

    Args:
        theta0: initial angles ``(B,)`` (radians, 0 = hanging down).
        omega0: initial angular velocities ``(B,)`` (rad/s).
        n_frames: samples per trajectory, ``dt`` apart, the first one being the initial state.
        dt: seconds between frames (default 0.05, gym's).
        dynamics: ``"ideal"`` (default): classical RK4 with ``substeps`` steps per frame in
            float64 (energy drift ~1e-10); ``"gym"``: gym's own update, semi-implicit Euler
            with one step per frame and the angular speed clipped to ±8.
        substeps: RK4 steps per frame for ``"ideal"`` (default 10).

    Returns:
        ``(theta, omega)``, each ``(B, n_frames)`` float64.

    Raises:
        HnnkitValueError: on bad counts, a non-positive ``dt`` or mismatched shapes.
        UnknownNameError: on an unknown ``dynamics``.
    """
    check_choice("dynamics", dynamics, DYNAMICS)
    _check_int("n_frames", n_frames, 1)
    _check_int("substeps", substeps, 1)
    if not dt > 0:
        raise HnnkitValueError(f"dt must be > 0 seconds, got {dt!r}")
    th = torch.as_tensor(theta0, dtype=torch.float64).reshape(-1)
    om = torch.as_tensor(omega0, dtype=torch.float64).reshape(-1)
    if th.shape != om.shape:
        raise HnnkitValueError(
            f"theta0 and omega0 must have the same length, got {th.numel()} and {om.numel()}"
        )
    thetas, omegas = [th], [om]
    if dynamics == "gym":
        for _ in range(n_frames - 1):
            om = (om - OMEGA_SQUARED * torch.sin(th) * dt).clamp(-8.0, 8.0)
            # gym clips after the position update, so the position uses the unclipped speed;
            # the clip never acts in the dataset's energy range (|omega| < 2.3)
            th = th + om * dt
            thetas.append(th)
            omegas.append(om)
    else:
        h = dt / substeps

        def f(a: Tensor, w: Tensor) -> tuple[Tensor, Tensor]:
            return w, -OMEGA_SQUARED * torch.sin(a)

        for _ in range(n_frames - 1):
            for _ in range(substeps):
                k1 = f(th, om)
                k2 = f(th + 0.5 * h * k1[0], om + 0.5 * h * k1[1])
                k3 = f(th + 0.5 * h * k2[0], om + 0.5 * h * k2[1])
                k4 = f(th + h * k3[0], om + h * k3[1])
                th = th + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
                om = om + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
            thetas.append(th)
            omegas.append(om)
    return torch.stack(thetas, dim=1), torch.stack(omegas, dim=1)


# -- preprocessing ------------------------------------------------------------------------
def crop_box(render_size: int) -> tuple[int, int, int, int]:
    """The ``(top, bottom, left, right)`` slice that ``preproc``'s crop keeps of a frame.

    The original crops ``[440:-220, 330:-330]`` of a 1000×1000 gym frame: a square of
    0.34 of the side, with the pivot 0.06 of the side below its top edge. At
    ``render_size=400`` this is ``(176, 312, 132, 268)``.
    """
    s = _check_int("render_size", render_size, 8)
    t, b, left, r = (round(f * s) for f in CROP_FRACTIONS)
    return t, s - b, left, s - r


def area_resize_matrix(n_in: int, n_out: int, *, dtype: torch.dtype = torch.float64) -> Tensor:
    r"""Box-filter resampling matrix ``(n_out, n_in)``: rows sum to 1.

    Output pixel ``i`` averages the input over :math:`[i f, (i+1) f)`, :math:`f = n_{in}/n_{out}`,
    weighting each input pixel by its overlap, so downsampling is antialiased for any
    (also non-integer) factor.
    """
    _check_int("n_in", n_in, 1)
    _check_int("n_out", n_out, 1)
    f = n_in / n_out
    lo = torch.arange(n_out, dtype=torch.float64)[:, None] * f
    j = torch.arange(n_in, dtype=torch.float64)[None, :]
    overlap = (torch.minimum(lo + f, j + 1) - torch.maximum(lo, j)).clamp(min=0.0)
    return (overlap / f).to(dtype)


def resize_area(images: Tensor, size: int | tuple[int, int]) -> Tensor:
    """Antialiased (area-averaging) resize of ``(..., H, W)`` images to ``(..., h, w)``.

    Args:
        images: floating tensor ``(..., H, W)``.
        size: ``h`` for a square output or ``(h, w)``.

    Returns:
        ``(..., h, w)`` in the dtype of ``images``.
    """
    h, w = (size, size) if isinstance(size, int) else size
    if not images.is_floating_point():
        images = images.to(torch.float32)
    ry = area_resize_matrix(images.shape[-2], h, dtype=images.dtype).to(images.device)
    rx = area_resize_matrix(images.shape[-1], w, dtype=images.dtype).to(images.device)
    return ry @ images @ rx.T


def render_pixel_frames(
    theta: Tensor,
    *,
    size: int = 28,
    render_size: int = 400,
    geometry: PendulumGeometry = DEFAULT_GEOMETRY,
    chunk: int = 512,
) -> Tensor:
    """Render angles and preprocess them like the original: crop, red − green, resize, 8 bits.

    Args:
        theta: angles ``(...)`` (radians, 0 = down).
        size: output side (default 28).
        render_size: side of the rendered frame before cropping (default 400).
        geometry: the scene.
        chunk: frames per inner batch (memory bound).

    Returns:
        ``uint8`` frames ``(..., size, size)``; divide by 255 for the model's inputs (values
        up to 128/255 ≈ 0.5 for the default red rod, as in the original).
    """
    size = _check_int("size", size, 2)
    box = crop_box(render_size)
    if (box[1] - box[0]) < size or (box[3] - box[2]) < size:
        raise HnnkitValueError(
            f"render_size={render_size} crops to {box[1] - box[0]}x{box[3] - box[2]} pixels, fewer than "
            f"size={size}; raise render_size to at least {math.ceil(size / 0.34)}"
        )
    theta = torch.as_tensor(theta)
    flat = theta.reshape(-1)
    out = torch.empty((flat.numel(), size, size), dtype=torch.uint8)
    for i in range(0, flat.numel(), chunk):
        rg = render_pendulum(
            flat[i : i + chunk],
            render_size,
            geometry=geometry,
            window=box,
            channels="red-green",
            as_uint8=False,
        )
        small = resize_area(rg, size)
        out[i : i + chunk] = small.mul_(255.0).round_().clamp_(0, 255).to(torch.uint8).cpu()
    return out.reshape(*theta.shape, size, size)


def stack_frames(frames: Tensor) -> Tensor:
    """Stack consecutive frames: ``(..., T, h, w)`` → ``(..., T-1, 2·h·w)`` = ``[frame_t, frame_{t+1}]``."""
    if frames.ndim < 3 or frames.shape[-3] < 2:
        raise HnnkitValueError(
            f"frames must have shape (..., T>=2, h, w), got {tuple(frames.shape)}"
        )
    flat = frames.flatten(-2)
    return torch.cat([flat[..., :-1, :], flat[..., 1:, :]], dim=-1)


# -- containers ---------------------------------------------------------------------------
@dataclass(frozen=True)
class PixelSplit:
    """Training samples of one split, all aligned on the first dimension ``N``.

    Attributes:
        x: ``(N, 2·size²)`` float32 stacked frame pairs ``[frame_j, frame_{j+1}]``.
        x_next: ``(N, 2·size²)`` the pairs one frame later, ``[frame_{j+1}, frame_{j+2}]``.
        coords: ``(N, 2)`` float64 true ``(q, p)`` at frame ``j``.
        coords_next: ``(N, 2)`` true ``(q, p)`` at frame ``j + 1``.
        trajectory: ``(N,)`` index of the source trajectory.
    """

    x: Tensor
    x_next: Tensor
    coords: Tensor
    coords_next: Tensor
    trajectory: Tensor

    def __len__(self) -> int:
        return self.x.shape[0]


@dataclass(frozen=True, eq=False)
class PixelPendulumData:
    """Rendered pendulum trajectories with their true coordinates and a trajectory split.

    Attributes:
        frames: ``(n_trajectories, n_frames, size, size)`` float32 preprocessed frames in
            ``[0, 1]`` (multiples of 1/255).
        coords: ``(n_trajectories, n_frames, 2)`` float64 true ``(q, p) = (θ, 0.25 θ̇)``.
        t: ``(n_frames,)`` float64 time of each frame in seconds.
        test_mask: ``(n_trajectories,)`` bool, ``True`` for held-out trajectories.
        config: every setting that made the data (hashed for the cache key).
        train, test: the stacked-frame samples of each split (:class:`PixelSplit`, built on
            first access).
    """

    frames: Tensor
    coords: Tensor
    t: Tensor
    test_mask: Tensor
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.frames.shape[-1]

    @property
    def input_dim(self) -> int:
        """Model input size, ``2 · size²``."""
        return 2 * self.size**2

    def split(self, which: str) -> PixelSplit:
        """Samples of ``"train"`` or ``"test"`` trajectories (see the module docstring)."""
        check_choice("split", which, ("train", "test"))
        idx = torch.nonzero(self.test_mask == (which == "test")).flatten()
        pairs = stack_frames(self.frames[idx])  # (n, T-1, D)
        n, m = idx.numel(), self.frames.shape[1] - 2
        return PixelSplit(
            x=pairs[:, :-1].reshape(n * m, -1),
            x_next=pairs[:, 1:].reshape(n * m, -1),
            coords=self.coords[idx, :-2].reshape(n * m, 2),
            coords_next=self.coords[idx, 1:-1].reshape(n * m, 2),
            trajectory=idx.repeat_interleave(m),
        )

    @cached_property
    def train(self) -> PixelSplit:
        return self.split("train")

    @cached_property
    def test(self) -> PixelSplit:
        return self.split("test")

    def save(self, path: str | os.PathLike) -> Path:
        """Write the data to an ``.npz`` file atomically (frames stored as ``uint8``)."""
        arrays = {
            "frames": (self.frames * 255).round().to(torch.uint8).numpy(),
            "coords": self.coords.numpy(),
            "t": self.t.numpy(),
            "test_mask": self.test_mask.numpy(),
            "config": np.array(json.dumps(self.config, sort_keys=True)),
        }
        return atomic_write_npz(path, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> PixelPendulumData:
        """Read a file written by :meth:`save`.

        Raises:
            DataFileError: if the file is missing, truncated, corrupted or inconsistent.
        """
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                frames = torch.from_numpy(z["frames"].astype(np.float32) / 255.0)
                coords = torch.from_numpy(np.array(z["coords"], dtype=np.float64))
                t = torch.from_numpy(np.array(z["t"], dtype=np.float64))
                test_mask = torch.from_numpy(np.array(z["test_mask"], dtype=bool))
                config = json.loads(str(z["config"]))
        except (
            OSError,
            ValueError,
            KeyError,
            EOFError,
            zipfile.BadZipFile,
            json.JSONDecodeError,
        ) as exc:
            raise DataFileError(
                f"cannot read pixel-pendulum data {path}: {type(exc).__name__}: {exc}"
            ) from exc
        n, m = frames.shape[:2] if frames.ndim == 4 else (-1, -1)
        if (
            frames.ndim != 4
            or coords.shape != (n, m, 2)
            or t.shape != (m,)
            or test_mask.shape != (n,)
        ):
            raise DataFileError(
                f"pixel-pendulum data {path} has inconsistent shapes: frames {tuple(frames.shape)}, "
                f"coords {tuple(coords.shape)}, t {tuple(t.shape)}, test_mask {tuple(test_mask.shape)}"
            )
        return cls(frames=frames, coords=coords, t=t, test_mask=test_mask, config=config)


# -- generation ---------------------------------------------------------------------------
def simulate_pixel_pendulum(
    n_trajectories: int,
    n_frames: int,
    *,
    generator: torch.Generator,
    size: int = 28,
    render_size: int = 400,
    theta_range: tuple[float, float] = (0.0, math.pi / 6),
    omega_max: float = 1.0,
    dt: float = GYM_DT,
    dynamics: str = "ideal",
    geometry: PendulumGeometry = DEFAULT_GEOMETRY,
) -> tuple[Tensor, Tensor]:
    r"""Sample initial states, simulate and render: the core of :func:`pixel_pendulum_dataset`.

    Initial angles are :math:`\pm U(\theta_{min}, \theta_{max})` with a random sign, initial
    angular velocities :math:`U[-\omega_{max}, \omega_{max}]`, drawn from ``generator`` only.

    Args:
        n_trajectories: number of trajectories.
        n_frames: frames per trajectory.
        generator: the random source (keyword-only; no global RNG is touched).
        size, render_size, dt, dynamics, geometry: as in :func:`pixel_pendulum_dataset`.
        theta_range: ``(min, max)`` of :math:`|\theta_0|` (default ``(0, π/6)``; the original
            analysis notebook draws its test trajectory from ``(π/11, π/10)``).
        omega_max: bound of :math:`|\dot\theta_0|` (default 1, gym's ``reset``).

    Returns:
        ``(frames, coords)``: ``uint8`` frames ``(n_trajectories, n_frames, size, size)`` and
        float64 true coordinates ``(n_trajectories, n_frames, 2)``.

    Raises:
        HnnkitValueError: on bad counts or ranges.
    """
    _check_int("n_trajectories", n_trajectories, 1)
    _check_int("n_frames", n_frames, 1)
    lo, hi = (float(v) for v in theta_range)
    if not 0 <= lo <= hi:
        raise HnnkitValueError(
            f"theta_range must be (min, max) with 0 <= min <= max, got {theta_range!r}"
        )
    if not omega_max >= 0:
        raise HnnkitValueError(f"omega_max must be >= 0, got {omega_max!r}")
    u = torch.rand(n_trajectories, 3, generator=generator, dtype=torch.float64)
    sign = torch.where(u[:, 0] < 0.5, -1.0, 1.0).to(torch.float64)
    theta0 = sign * (lo + (hi - lo) * u[:, 1])
    omega0 = omega_max * (2 * u[:, 2] - 1)
    theta, omega = simulate_pendulum(theta0, omega0, n_frames, dt=dt, dynamics=dynamics)
    frames = render_pixel_frames(
        theta.to(torch.float32), size=size, render_size=render_size, geometry=geometry
    )
    coords = torch.stack([theta, MOMENTUM_SCALE * omega], dim=-1)
    return frames, coords


def pixel_pendulum_dataset(
    n_trajectories: int = 200,
    n_frames: int = 100,
    size: int = 28,
    seed: int = 0,
    *,
    render_size: int = 400,
    test_fraction: float = 0.2,
    theta_range: tuple[float, float] = (0.0, math.pi / 6),
    omega_max: float = 1.0,
    dt: float = GYM_DT,
    dynamics: str = "ideal",
    geometry: PendulumGeometry = DEFAULT_GEOMETRY,
    cache: bool | str | os.PathLike = False,
) -> PixelPendulumData:
    r"""Frames of a swinging pendulum, preprocessed as in the HNN paper's pixel task.

    See the module docstring for the physics, the preprocessing and how each step
    compares with the original code. Defaults reproduce the original's sizes: 200
    trajectories × 100 frames, 28×28 inputs, 20 % of the trajectories held out.

    Example:
        >>> data = pixel_pendulum_dataset(n_trajectories=4, n_frames=10, size=16, render_size=64)
        >>> data.train.x.shape, data.train.coords.shape
        (torch.Size([24, 512]), torch.Size([24, 2]))

    Args:
        n_trajectories: trajectories to simulate (default 200).
        n_frames: frames per trajectory (default 100); each gives ``n_frames - 2`` samples.
        size: side of the preprocessed frames (default 28).
        seed: seed of the private ``torch.Generator`` for the initial states (default 0).
        render_size: side of the rendered frame before cropping (default 400, the seed's
            400×400×3 frames; the crop keeps 0.34 of it).
        test_fraction: fraction of trajectories held out (default 0.2).
        theta_range: ``(min, max)`` of :math:`|\theta_0|` (default ``(0, π/6)``).
        omega_max: bound of :math:`|\dot\theta_0|` in rad/s (default 1).
        dt: seconds per frame (default 0.05).
        dynamics: ``"ideal"`` (default, accurate RK4) or ``"gym"`` (gym's Euler step).
        geometry: the rendered scene (default :data:`~hnnkit.systems.pixel.DEFAULT_GEOMETRY`).
        cache: ``True`` to cache under ``$HNNKIT_CACHE`` (else ``~/.cache/hnnkit``), or a
            directory. The file name holds a hash of every setting above; the file is
            written atomically, and a corrupted or mismatched file is regenerated with a
            warning.

    Returns:
        :class:`PixelPendulumData`.

    Raises:
        HnnkitValueError: on bad counts, fractions or ranges.
        UnknownNameError: on an unknown ``dynamics``.
    """
    _check_int("n_trajectories", n_trajectories, 2)
    _check_int("n_frames", n_frames, 3)
    _check_int("seed", seed, 0)
    _check_int("size", size, 2)
    box = crop_box(render_size)
    if min(box[1] - box[0], box[3] - box[2]) < size:
        raise HnnkitValueError(
            f"render_size={render_size} crops to {box[1] - box[0]} pixels, fewer than size={size}; "
            f"use render_size >= {math.ceil(size / 0.34)}"
        )
    if not 0 < test_fraction < 1:
        raise HnnkitValueError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    check_choice("dynamics", dynamics, DYNAMICS)
    config: dict[str, Any] = {
        "task": "pixel-pendulum",
        "n_trajectories": n_trajectories,
        "n_frames": n_frames,
        "size": size,
        "seed": seed,
        "render_size": render_size,
        "test_fraction": float(test_fraction),
        "theta_range": [float(v) for v in theta_range],
        "omega_max": float(omega_max),
        "dt": float(dt),
        "dynamics": dynamics,
        "geometry": asdict(geometry),
        "crop_fractions": list(CROP_FRACTIONS),
        "version": PIXELS_VERSION,
    }
    config = json.loads(json.dumps(config, sort_keys=True))  # tuples → lists, as reloaded
    path = _cache_path(config, cache)
    if path is not None and path.exists():
        try:
            data = PixelPendulumData.load(path)
            if data.config != config:
                raise DataFileError(f"cached file {path} was made with another config")
            return data
        except DataFileError as exc:
            warnings.warn(f"{exc}; regenerating", stacklevel=2)
            path.unlink(missing_ok=True)

    gen = torch.Generator().manual_seed(seed)
    frames, coords = simulate_pixel_pendulum(
        n_trajectories,
        n_frames,
        generator=gen,
        size=size,
        render_size=render_size,
        theta_range=theta_range,
        omega_max=omega_max,
        dt=dt,
        dynamics=dynamics,
        geometry=geometry,
    )
    mask = torch.zeros(n_trajectories, dtype=torch.bool)
    n_test = min(n_trajectories - 1, max(1, round(test_fraction * n_trajectories)))
    mask[n_trajectories - n_test :] = True
    data = PixelPendulumData(
        frames=frames.to(torch.float32) / 255.0,
        coords=coords,
        t=torch.arange(n_frames, dtype=torch.float64) * dt,
        test_mask=mask,
        config=config,
    )
    if path is not None:
        data.save(path)
    return data


def pixel_dataset_from_config(
    config: dict[str, Any], *, cache: bool | str | os.PathLike = True
) -> PixelPendulumData:
    """Rebuild the data set whose :attr:`PixelPendulumData.config` a run recorded.

    Args:
        config: the ``config`` of a :func:`pixel_pendulum_dataset` result (as read back from
            JSON).
        cache: as for :func:`pixel_pendulum_dataset` (default ``True``).

    Raises:
        DataFileError: if ``config`` is not such a config, or describes data this version
            cannot make (another :data:`PIXELS_VERSION` or crop).
    """
    try:
        geometry = {
            k: tuple(v) if isinstance(v, list) else v for k, v in dict(config["geometry"]).items()
        }
        data = pixel_pendulum_dataset(
            config["n_trajectories"],
            config["n_frames"],
            config["size"],
            config["seed"],
            render_size=config["render_size"],
            test_fraction=config["test_fraction"],
            theta_range=tuple(config["theta_range"]),
            omega_max=config["omega_max"],
            dt=config["dt"],
            dynamics=config["dynamics"],
            geometry=PendulumGeometry(**geometry),
            cache=cache,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DataFileError(
            f"not a pixel-pendulum data set's config ({type(exc).__name__}: {exc})"
        ) from None
    recorded = json.loads(json.dumps(config, sort_keys=True))
    if data.config != recorded:
        diffs = sorted(
            k for k in set(recorded) | set(data.config) if recorded.get(k) != data.config.get(k)
        )
        raise DataFileError(
            f"the recorded pixel data set cannot be rebuilt by this version (differs in "
            f"{', '.join(diffs)})"
        )
    return data


def _cache_path(config: dict[str, Any], cache: bool | str | os.PathLike) -> Path | None:
    if cache is False or cache is None:
        return None
    if cache is True:
        env = os.environ.get("HNNKIT_CACHE")
        root = Path(env) if env else Path.home() / ".cache" / "hnnkit"
    else:
        root = Path(cache)
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
    return root / f"pixel-pendulum-{digest}.npz"


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise HnnkitValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value
