r"""An MLP autoencoder and a latent-dynamics model on its 2-D code (the pixel-pendulum task).

The architecture and the loss follow greydanus/hamiltonian-nn (``nn_models.py``
``MLPAutoencoder``, ``hnn.py`` ``PixelHNN``, ``experiment-pixels/train.py``
``pixelhnn_loss``): the encoder maps a pair of stacked frames to a latent
:math:`z = (q, p)`, a latent model (an :class:`~hnnkit.models.HNN` or a
:class:`~hnnkit.models.Baseline`) gives :math:`\dot z`, and the three losses are

.. math::

    L = \underbrace{\overline{(x - D(E(x)))^2}}_{\text{reconstruction}}
      + \underbrace{\big(p - (q' - q)\big)^2}_{\text{latent velocity}}
      + 0.1\,\underbrace{\overline{\big(z' - (z + f(z))\big)^2}}_{\text{dynamics}},

with :math:`z = E(x) = (q, p)`, :math:`z' = E(x') = (q', p')` the code of the next pair,
:math:`f` the latent vector field and bars means over the last dimension. Time is
measured in frames: one Euler step of length 1 links :math:`z` and :math:`z'` (the
original's ``z + model.time_derivative(z)``, commented "replace with rk4"). The latent
velocity term makes :math:`p` the per-frame change of :math:`q`, so the code looks like
a position and a velocity. Gradients flow through every term into the encoder, as in
the original.

Registered (``data="pixels"``) as ``pixel-hnn`` and ``pixel-baseline``:
``build_model("pixel-hnn", input_dim, generator=g, ae_hidden=..., latent_hidden=...)``. The
pixel-pendulum task builds its models this way; ``hnnkit train`` does not offer them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..errors import HnnkitValueError, check_choice
from .baseline import Baseline
from .hnn import HNN
from .mlp import ACTIVATIONS
from .registry import PIXELS, register_model


def _check_dim(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise HnnkitValueError(f"{name} must be a positive integer, got {value!r}")
    return value


class MLPAutoencoder(nn.Module):
    r"""MLP encoder/decoder with residual hidden layers.

    Encoder: ``Linear(input, hidden) → σ``, then ``n_residual`` blocks
    :math:`h \leftarrow h + \sigma(W h + b)`, then ``Linear(hidden, latent)``. The decoder
    mirrors it, ending in a linear layer (no output squashing). With the defaults
    (``hidden=200``, ``n_residual=2``, ``relu``) this is the original's
    ``MLPAutoencoder(1568, 200, 2, nonlinearity='relu')``: four linear layers each way.
    All weights get orthogonal initialisation; biases PyTorch's default.

    Args:
        input_dim: size of a flattened input (``2 · 28² = 1568`` for two 28×28 frames).
        latent_dim: code size (default 2: ``(q, p)``).
        hidden: width of the hidden layers (default 200).
        n_residual: residual blocks in each of encoder and decoder (default 2).
        activation: one of :data:`~hnnkit.models.ACTIVATIONS` (default ``"relu"``).
        generator: optional ``torch.Generator`` for the initialisation (else the global RNG).

    Raises:
        HnnkitValueError: on non-positive sizes or a negative ``n_residual``.
        UnknownNameError: on an unknown activation.
    """

    def __init__(
        self,
        input_dim: int,
        latent_dim: int = 2,
        hidden: int = 200,
        *,
        n_residual: int = 2,
        activation: str = "relu",
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.input_dim = _check_dim("input_dim", input_dim)
        self.latent_dim = _check_dim("latent_dim", latent_dim)
        self.hidden = _check_dim("hidden", hidden)
        if isinstance(n_residual, bool) or not isinstance(n_residual, int) or n_residual < 0:
            raise HnnkitValueError(f"n_residual must be an integer >= 0, got {n_residual!r}")
        self.activation = check_choice("activation", activation, ACTIVATIONS)
        self.enc_in = nn.Linear(input_dim, hidden)
        self.enc_res = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(n_residual))
        self.enc_out = nn.Linear(hidden, latent_dim)
        self.dec_in = nn.Linear(latent_dim, hidden)
        self.dec_res = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(n_residual))
        self.dec_out = nn.Linear(hidden, input_dim)
        with torch.no_grad():
            for layer in self.modules():
                if isinstance(layer, nn.Linear):
                    nn.init.orthogonal_(layer.weight, generator=generator)
                    if generator is not None:
                        bound = layer.in_features**-0.5
                        layer.bias.copy_(
                            torch.rand(layer.bias.shape, generator=generator) * 2 * bound - bound
                        )

    def _trunk(self, h: Tensor, first: nn.Linear, blocks: nn.ModuleList, last: nn.Linear) -> Tensor:
        act = ACTIVATIONS[self.activation][0]
        h = act(first(h))
        for block in blocks:
            h = h + act(block(h))
        return last(h)

    def encode(self, x: Tensor) -> Tensor:
        """``(..., input_dim)`` → ``(..., latent_dim)``."""
        if x.shape[-1] != self.input_dim:
            raise HnnkitValueError(
                f"encode expects inputs of shape (..., {self.input_dim}), got {tuple(x.shape)}"
            )
        return self._trunk(x, self.enc_in, self.enc_res, self.enc_out)

    def decode(self, z: Tensor) -> Tensor:
        """``(..., latent_dim)`` → ``(..., input_dim)``."""
        if z.shape[-1] != self.latent_dim:
            raise HnnkitValueError(
                f"decode expects codes of shape (..., {self.latent_dim}), got {tuple(z.shape)}"
            )
        return self._trunk(z, self.dec_in, self.dec_res, self.dec_out)

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruction ``decode(encode(x))``."""
        return self.decode(self.encode(x))


class PixelHNN(nn.Module):
    r"""Autoencoder plus latent dynamics: an HNN (or a baseline MLP) on the code :math:`z = (q, p)`.

    The latent model's vector field :math:`f(z)` is :math:`J\nabla H_\theta(z)` for the
    HNN (``baseline=False``) and a free MLP output for the baseline, both ``2 → 200 → 200``
    tanh networks by default, as in the original's ``PixelHNN``. Time is in frames.

    Args:
        input_dim: flattened input size (``2 · size²``).
        latent_dim: even code size (default 2).
        baseline: use a :class:`~hnnkit.models.Baseline` instead of an HNN (default ``False``).
        ae_hidden: autoencoder width (default 200).
        n_residual: residual blocks each way in the autoencoder (default 2).
        ae_activation: autoencoder activation (default ``"relu"``).
        latent_hidden: hidden sizes of the latent network (default ``(200, 200)``).
        latent_activation: its activation (default ``"tanh"``).
        hnn_weight: weight of the dynamics term (default 0.1, the original's).
        velocity_weight: weight of the latent-velocity term (default 1).
        autoencoder: use this autoencoder instead of building one.
        generator: optional ``torch.Generator`` for all initialisations.

    Raises:
        HnnkitValueError: on an odd ``latent_dim``, negative weights or a mismatched ``autoencoder``.
    """

    def __init__(
        self,
        input_dim: int,
        latent_dim: int = 2,
        *,
        baseline: bool = False,
        ae_hidden: int = 200,
        n_residual: int = 2,
        ae_activation: str = "relu",
        latent_hidden: Sequence[int] = (200, 200),
        latent_activation: str = "tanh",
        hnn_weight: float = 0.1,
        velocity_weight: float = 1.0,
        autoencoder: MLPAutoencoder | None = None,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if (
            isinstance(latent_dim, bool)
            or not isinstance(latent_dim, int)
            or latent_dim < 2
            or latent_dim % 2
        ):
            raise HnnkitValueError(
                f"latent_dim must be a positive even integer (q then p), got {latent_dim!r}"
            )
        for name, w in (("hnn_weight", hnn_weight), ("velocity_weight", velocity_weight)):
            if not float(w) >= 0:
                raise HnnkitValueError(f"{name} must be >= 0, got {w!r}")
        if autoencoder is None:
            autoencoder = MLPAutoencoder(
                input_dim,
                latent_dim,
                ae_hidden,
                n_residual=n_residual,
                activation=ae_activation,
                generator=generator,
            )
        elif autoencoder.input_dim != input_dim or autoencoder.latent_dim != latent_dim:
            raise HnnkitValueError(
                f"autoencoder maps {autoencoder.input_dim} → {autoencoder.latent_dim}, but "
                f"input_dim={input_dim} and latent_dim={latent_dim} were asked for"
            )
        self.autoencoder = autoencoder
        self.baseline = bool(baseline)
        self.input_dim, self.latent_dim = input_dim, latent_dim
        self.hnn_weight, self.velocity_weight = float(hnn_weight), float(velocity_weight)
        if self.baseline:
            self.latent: nn.Module = Baseline(
                latent_dim, latent_hidden, latent_activation, generator=generator
            )
        else:
            self.latent = HNN(
                latent_dim, hidden=latent_hidden, activation=latent_activation, generator=generator
            )

    # -- maps ------------------------------------------------------------------------------
    def encode(self, x: Tensor) -> Tensor:
        """Pixels ``(..., input_dim)`` → code ``(..., latent_dim)``."""
        return self.autoencoder.encode(x)

    def decode(self, z: Tensor) -> Tensor:
        """Code ``(..., latent_dim)`` → pixels ``(..., input_dim)``."""
        return self.autoencoder.decode(z)

    def vector_field(self, t: Tensor | float | None, z: Tensor) -> Tensor:
        r"""Latent time derivative :math:`\dot z` per frame, ``(..., latent_dim)``; ``t`` is ignored."""
        return self.latent.vector_field(t, z)

    def hamiltonian(self, z: Tensor) -> Tensor:
        """The learned latent energy ``(..., latent_dim)`` → ``(...)``.

        Raises:
            HnnkitValueError: for a baseline model, which has no energy.
        """
        if self.baseline:
            raise HnnkitValueError(
                "a baseline PixelHNN has no Hamiltonian; build it with baseline=False"
            )
        return self.latent.hamiltonian(z)

    def forward(self, x: Tensor) -> Tensor:
        """One-frame prediction in pixel space: ``decode(z + f(z))`` with ``z = encode(x)``."""
        z = self.encode(x)
        return self.decode(z + self.vector_field(None, z))

    # -- loss ------------------------------------------------------------------------------
    def losses(
        self,
        x: Tensor,
        x_next: Tensor,
        *,
        noise_std: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> dict[str, Tensor]:
        """Per-sample loss terms (see the module docstring).

        Args:
            x: stacked frame pairs ``(N, input_dim)``.
            x_next: the pairs one frame later ``(N, input_dim)``.
            noise_std: standard deviation of Gaussian noise added to the code before the
                latent model sees it (the original's ``--input_noise``, default 0).
            generator: random source for that noise.

        Returns:
            ``{"reconstruction", "velocity", "dynamics", "total"}``, each ``(N,)``, with
            ``total = reconstruction + velocity_weight·velocity + hnn_weight·dynamics``.

        Raises:
            HnnkitValueError: on mismatched shapes.
        """
        if x.shape != x_next.shape or x.ndim != 2 or x.shape[-1] != self.input_dim:
            raise HnnkitValueError(
                f"x and x_next must both have shape (N, {self.input_dim}), got {tuple(x.shape)} and {tuple(x_next.shape)}"
            )
        z, z_next = self.encode(torch.cat([x, x_next])).split(x.shape[0])  # one pass for both
        rec = (x - self.decode(z)).pow(2).mean(-1)
        zin = z
        if noise_std:
            zin = z + noise_std * torch.randn(z.shape, generator=generator, dtype=z.dtype).to(
                z.device
            )
        dyn = (z_next - (z + self.vector_field(None, zin))).pow(2).mean(-1)
        n = self.latent_dim // 2
        q, p = z[..., :n], z[..., n:]
        vel = (p - (z_next[..., :n] - q)).pow(2).mean(-1)
        total = rec + self.velocity_weight * vel + self.hnn_weight * dyn
        return {"reconstruction": rec, "velocity": vel, "dynamics": dyn, "total": total}

    def loss(self, x: Tensor, x_next: Tensor, **kwargs: object) -> Tensor:
        """Mean of the per-sample ``total`` of :meth:`losses`: a scalar to minimise."""
        return self.losses(x, x_next, **kwargs)["total"].mean()  # type: ignore[arg-type]

    # -- rollout ---------------------------------------------------------------------------
    def rollout(
        self,
        x0: Tensor,
        n_frames: int,
        *,
        method: str = "dopri5",
        rtol: float = 1e-3,
        atol: float = 1e-6,
    ) -> tuple[Tensor, Tensor]:
        """Encode, integrate the latent flow for ``n_frames`` frames, decode.

        Args:
            x0: initial stacked frame pairs ``(B, input_dim)`` (or ``(input_dim,)``).
            n_frames: number of output frames, at times ``0, 1, ..., n_frames - 1`` (in
                frames; the first is the encoded ``x0``).
            method, rtol, atol: passed to :func:`hnnkit.integrate.odeint`. The defaults are
                ``scipy.integrate.solve_ivp``'s (RK45 at rtol 1e-3, atol 1e-6), which the
                original analysis notebook used.

        Returns:
            ``(z, x)``: codes ``(n_frames, B, latent_dim)`` and decoded pixels
            ``(n_frames, B, input_dim)``, without autograd history.
        """
        from ..integrate import odeint

        if isinstance(n_frames, bool) or not isinstance(n_frames, int) or n_frames < 1:
            raise HnnkitValueError(f"n_frames must be a positive integer, got {n_frames!r}")
        with torch.no_grad():
            z0 = self.encode(x0)
        t = torch.arange(n_frames, dtype=z0.dtype, device=z0.device)

        def field(tt: Tensor, z: Tensor) -> Tensor:
            return self.vector_field(tt, z)

        with torch.no_grad():
            z = odeint(field, z0, t, method=method, rtol=rtol, atol=atol)
            return z, self.decode(z)


def build_pixel_hnn(
    input_dim: int,
    *,
    generator: torch.Generator | None = None,
    latent_dim: int = 2,
    ae_hidden: int = 200,
    n_residual: int = 2,
    ae_activation: str = "relu",
    latent_hidden: Sequence[int] = (200, 200),
    latent_activation: str = "tanh",
    hnn_weight: float = 0.1,
    velocity_weight: float = 1.0,
) -> PixelHNN:
    """The registered ``pixel-hnn``: a :class:`PixelHNN` with an HNN on the code, for flattened
    inputs of size ``input_dim`` (``2 · size²``); the options are :class:`PixelHNN`'s."""
    return PixelHNN(
        input_dim,
        latent_dim,
        baseline=False,
        ae_hidden=ae_hidden,
        n_residual=n_residual,
        ae_activation=ae_activation,
        latent_hidden=latent_hidden,
        latent_activation=latent_activation,
        hnn_weight=hnn_weight,
        velocity_weight=velocity_weight,
        generator=generator,
    )


def build_pixel_baseline(
    input_dim: int,
    *,
    generator: torch.Generator | None = None,
    latent_dim: int = 2,
    ae_hidden: int = 200,
    n_residual: int = 2,
    ae_activation: str = "relu",
    latent_hidden: Sequence[int] = (200, 200),
    latent_activation: str = "tanh",
    hnn_weight: float = 0.1,
    velocity_weight: float = 1.0,
) -> PixelHNN:
    """The registered ``pixel-baseline``: a :class:`PixelHNN` with a baseline MLP on the code
    (``baseline=True``); otherwise as :func:`build_pixel_hnn`."""
    return PixelHNN(
        input_dim,
        latent_dim,
        baseline=True,
        ae_hidden=ae_hidden,
        n_residual=n_residual,
        ae_activation=ae_activation,
        latent_hidden=latent_hidden,
        latent_activation=latent_activation,
        hnn_weight=hnn_weight,
        velocity_weight=velocity_weight,
        generator=generator,
    )


#: The pixel-pendulum task's own training settings (its ``paper`` profile), listed by
#: ``hnnkit models``; the task takes them from its profiles.
PIXEL_DEFAULTS = {"optimizer": "adam", "steps": 10_000, "weight_decay": 1e-5}

register_model(
    "pixel-hnn",
    build_pixel_hnn,
    description="autoencoder of pixel frames + HNN on its 2-D code, the paper's task 5",
    defaults=PIXEL_DEFAULTS,
    data=PIXELS,
)
register_model(
    "pixel-baseline",
    build_pixel_baseline,
    description="autoencoder of pixel frames + baseline MLP of its 2-D code's vector field",
    defaults=PIXEL_DEFAULTS,
    data=PIXELS,
)
