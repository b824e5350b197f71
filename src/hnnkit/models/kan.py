r"""Kolmogorov–Arnold networks (KANs) in pure torch, usable as an HNN energy network.

A KAN layer maps ``in_dim`` inputs to ``out_dim`` outputs through one learnable
univariate function per edge,

.. math::

    y_j = \sum_i \phi_{ij}(x_i), \qquad
    \phi_{ij}(x) = s^{b}_{ij}\, b(x) + s^{sp}_{ij} \sum_m c_{ijm} B_m(x),

where :math:`b` is a fixed base activation (SiLU by default) and :math:`B_m` are the
B-splines of order ``k`` on a grid of ``G`` intervals extended by ``k`` knots on each side
(Liu et al., "KAN: Kolmogorov–Arnold Networks", arXiv:2404.19756).

Parameters follow pykan 0.2.8's ``KANLayer`` layout so that :meth:`KAN.to_pykan` is a key
rename: ``grid (in, G+2k+1)``, ``coef (in, out, G+k)``, ``scale_base (in, out)``,
``scale_sp (in, out)`` and ``mask (in, out)``, under ``act_fun.{layer}.``. pykan itself is
never imported unless :meth:`KAN.to_pykan` is called.

Unlike pykan, nothing here prints, writes files, seeds global RNGs or mutates its
arguments; randomness comes only from the ``generator`` you pass.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..errors import HnnkitValueError, check_choice

#: name → base activation :math:`b(x)` of every edge.
BASE_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "silu": nn.functional.silu,
    "identity": lambda x: x,
    "tanh": torch.tanh,
    "zero": torch.zeros_like,
}

#: Regularisation modes accepted by :meth:`KAN.regularization`.
REGULARIZATION_MODES = ("activation", "parameter")


# -- B-splines ------------------------------------------------------------------------------
def uniform_grid(in_dim: int, grid: int, k: int, grid_range: tuple[float, float], **kw) -> Tensor:
    """Knots ``(in_dim, grid + 2k + 1)``: ``grid`` equal intervals on ``grid_range`` plus ``k`` on each side."""
    lo, hi = float(grid_range[0]), float(grid_range[1])
    h = (hi - lo) / grid
    knots = lo + h * torch.arange(-k, grid + k + 1, **kw)
    return knots.expand(in_dim, -1).contiguous()


def b_spline_basis(x: Tensor, grid: Tensor, k: int) -> Tensor:
    r"""B-spline basis functions of order ``k`` (Cox–de Boor recursion).

    On a knot vector :math:`t_0 < \dots < t_{M-1}` the order-0 splines are indicators of
    :math:`[t_m, t_{m+1})`, and

    .. math::

        B_{m,p}(x) = \frac{x - t_m}{t_{m+p} - t_m} B_{m,p-1}(x)
                   + \frac{t_{m+p+1} - x}{t_{m+p+1} - t_{m+1}} B_{m+1,p-1}(x).

    On :math:`[t_k, t_{M-1-k})` the ``M - 1 - k`` functions sum to one (partition of unity);
    outside :math:`[t_0, t_{M-1})` they are all zero.

    Args:
        x: points ``(..., in_dim)``.
        grid: knots ``(in_dim, M)``, non-decreasing along the last axis.
        k: spline order (degree), ``>= 0``.

    Returns:
        ``(..., in_dim, M - 1 - k)`` basis values; differentiable in ``x`` to any order
        (piecewise polynomial).
    """
    xe = x.unsqueeze(-1)
    basis = ((xe >= grid[:, :-1]) & (xe < grid[:, 1:])).to(x.dtype)
    for p in range(1, k + 1):
        lo, hi = grid[:, : -(p + 1)], grid[:, p:-1]  # t_m, t_{m+p}
        lo1, hi1 = grid[:, 1:-p], grid[:, p + 1 :]  # t_{m+1}, t_{m+p+1}
        left = (xe - lo) / _safe(hi - lo) * basis[..., :-1]
        right = (hi1 - xe) / _safe(hi1 - lo1) * basis[..., 1:]
        basis = left + right
    return basis


def _safe(den: Tensor) -> Tensor:
    """Replace zero knot spans (repeated knots) by 1; the matching basis term is zero anyway."""
    return torch.where(den == 0, torch.ones_like(den), den)


def _fit_coef(x: Tensor, y: Tensor, grid: Tensor, k: int) -> Tensor:
    """Least-squares spline coefficients ``(in, out, nb)`` for samples ``x (N, in)``, ``y (N, in, out)``.

    Minimum-norm solution through a pseudo-inverse, computed on the CPU in float64 and
    returned on ``grid``'s device and dtype.
    """
    cpu = torch.device("cpu")  # float64 everywhere, including backends without it
    basis = b_spline_basis(x.to(cpu, torch.float64), grid.to(cpu, torch.float64), k)
    basis = basis.permute(1, 0, 2)  # (in, N, nb)
    coef = torch.linalg.pinv(basis) @ y.to(cpu, torch.float64).permute(1, 0, 2)  # (in, nb, out)
    return coef.permute(0, 2, 1).contiguous().to(grid.device, grid.dtype)


# -- one layer ------------------------------------------------------------------------------
class KANLayer(nn.Module):
    r"""One KAN layer, ``(..., in_dim) → (..., out_dim)``, with pykan's parameter layout.

    Each edge computes :math:`\phi_{ij}(x) = \mathrm{mask}_{ij}\,(s^b_{ij} b(x) + s^{sp}_{ij}
    \mathrm{spline}_{ij}(x))`. The spline coefficients start as a least-squares fit of small
    uniform noise of amplitude ``noise_scale / grid`` at the grid points, ``scale_base`` as
    :math:`(\mu + \sigma u)/\sqrt{\mathrm{in\_dim}}` with :math:`u \sim U[-1, 1]`, and
    ``scale_sp`` as :math:`1/\sqrt{\mathrm{in\_dim}}` (pykan's defaults).

    Args:
        in_dim: number of inputs (>= 1).
        out_dim: number of outputs (>= 1).
        grid: number of grid intervals ``G`` (default 5, >= 1).
        k: spline order (default 3, cubic; >= 0).
        grid_range: ``(min, max)`` of the initial uniform grid (default ``(-1, 1)``).
        base_activation: one of :data:`BASE_ACTIVATIONS` (default ``"silu"``).
        noise_scale: amplitude of the initial spline noise (default 0.3).
        scale_base_mu: mean of the initial base scale (default 0).
        scale_base_sigma: spread of the initial base scale (default 1).
        generator: ``torch.Generator`` for the initialisation; ``None`` uses the global RNG
            (it is only read, never seeded).
        dtype: parameter dtype (default: torch's default dtype).
        device: parameter device.

    Raises:
        HnnkitValueError: on non-positive sizes, ``grid < 1``, ``k < 0`` or an empty range.
        UnknownNameError: on an unknown ``base_activation``.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        grid: int = 5,
        k: int = 3,
        *,
        grid_range: tuple[float, float] = (-1.0, 1.0),
        base_activation: str = "silu",
        noise_scale: float = 0.3,
        scale_base_mu: float = 0.0,
        scale_base_sigma: float = 1.0,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ):
        super().__init__()
        for name, v, lo in (
            ("in_dim", in_dim, 1),
            ("out_dim", out_dim, 1),
            ("grid", grid, 1),
            ("k", k, 0),
        ):
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise HnnkitValueError(f"{name} must be an integer >= {lo}, got {v!r}")
        _check_range(grid_range)
        self.in_dim, self.out_dim, self.num, self.k = in_dim, out_dim, grid, k
        self.base_activation = check_choice("base_activation", base_activation, BASE_ACTIVATIONS)
        kw = {"dtype": dtype or torch.get_default_dtype(), "device": device}
        self.register_buffer("grid", uniform_grid(in_dim, grid, k, grid_range, **kw))
        self.register_buffer("mask", torch.ones(in_dim, out_dim, **kw))
        # Initial spline: least-squares fit of small noise at the G + 1 interior knots.
        rand = torch.rand(grid + 1, in_dim, out_dim, generator=generator, dtype=kw["dtype"]).to(
            device
        )
        noise = (rand - 0.5) * noise_scale / grid
        self.coef = nn.Parameter(_fit_coef(self.grid[:, k : k + grid + 1].T, noise, self.grid, k))
        u = 2 * torch.rand(in_dim, out_dim, generator=generator, dtype=kw["dtype"]).to(device) - 1
        self.scale_base = nn.Parameter((scale_base_mu + scale_base_sigma * u) / in_dim**0.5)
        self.scale_sp = nn.Parameter(torch.full((in_dim, out_dim), 1 / in_dim**0.5, **kw))

    def spline(self, x: Tensor) -> Tensor:
        """Spline branch per edge, without scales or mask: ``(..., in)`` → ``(..., in, out)``."""
        basis = b_spline_basis(x, self.grid, self.k)  # (..., in, nb)
        return torch.einsum("...im,iom->...io", basis, self.coef)

    def edge_outputs(self, x: Tensor) -> Tensor:
        r"""Every edge's activation :math:`\phi_{ij}(x_i)`: ``(..., in)`` → ``(..., in, out)``."""
        base = BASE_ACTIVATIONS[self.base_activation](x).unsqueeze(-1)
        return self.mask * (self.scale_base * base + self.scale_sp * self.spline(x))

    def forward(self, x: Tensor) -> Tensor:
        """``(..., in)`` → ``(..., out)``: the sum of the incoming edge activations."""
        return self.edge_outputs(x).sum(-2)

    @torch.no_grad()
    def update_grid(self, x: Tensor, *, margin: float = 0.1, grid_eps: float = 1.0) -> None:
        """Move the grid onto the range of the samples ``x (N, in)``, keeping each edge's function.

        The new knots mix a uniform grid on ``[min - margin·span, max + margin·span]`` (weight
        ``grid_eps``) with the sample quantiles (weight ``1 - grid_eps``); the spline
        coefficients are then refitted by least squares so that every edge computes the same
        values on ``x`` as before. Knots are extended by ``k`` on each side.

        Args:
            x: samples of this layer's input, ``(N, in_dim)``, ``N >= 2``.
            margin: fraction of the sample span added on each side (default 0.1).
            grid_eps: 1 for a uniform grid (default), 0 for a quantile grid.

        Raises:
            HnnkitValueError: on a wrong shape, non-finite samples or out-of-range settings.
        """
        if x.ndim != 2 or x.shape[1] != self.in_dim or x.shape[0] < 2:
            raise HnnkitValueError(
                f"update_grid needs samples of shape (N >= 2, {self.in_dim}), got {tuple(x.shape)}"
            )
        if not torch.isfinite(x).all():
            raise HnnkitValueError("update_grid samples contain NaN or infinite values")
        if not (0.0 <= grid_eps <= 1.0) or margin < 0:
            raise HnnkitValueError(
                f"need 0 <= grid_eps <= 1 and margin >= 0, got grid_eps={grid_eps}, margin={margin}"
            )
        x = x.to(self.grid.dtype)
        old = self.spline(x)  # (N, in, out)
        xs = torch.sort(x, dim=0).values
        lo, hi = xs[0], xs[-1]
        half = torch.clamp((hi - lo) / 2, min=1e-3)  # a constant input still gets a usable grid
        mid = (hi + lo) / 2
        lo, hi = mid - half * (1 + 2 * margin), mid + half * (1 + 2 * margin)
        frac = torch.linspace(0, 1, self.num + 1, dtype=x.dtype, device=x.device)
        uniform = lo[:, None] + (hi - lo)[:, None] * frac
        idx = torch.linspace(0, x.shape[0] - 1, self.num + 1, device=x.device).round().long()
        adaptive = xs[idx].T.clone()
        adaptive[:, 0], adaptive[:, -1] = lo, hi
        inner = grid_eps * uniform + (1 - grid_eps) * adaptive
        h = (inner[:, -1:] - inner[:, :1]) / self.num
        steps = torch.arange(1, self.k + 1, dtype=x.dtype, device=x.device)
        left = inner[:, :1] - h * steps.flip(0)
        right = inner[:, -1:] + h * steps
        self.grid.copy_(torch.cat([left, inner, right], dim=1))
        self.coef.copy_(_fit_coef(x, old, self.grid, self.k))

    @torch.no_grad()
    def refine(self, grid: int) -> None:
        """Change the number of grid intervals to ``grid``, keeping each edge's function.

        The new knots are uniform on the current grid's inner range ``[t_k, t_{G+k}]``; the
        new spline coefficients are a least-squares fit of the current splines on dense
        samples of that range (exact when refining a uniform grid by an integer factor).
        ``coef`` is replaced by a new parameter: create the optimizer after this call.

        Args:
            grid: the new number of intervals (>= 1).

        Raises:
            HnnkitValueError: if ``grid`` is not a positive integer.
        """
        if isinstance(grid, bool) or not isinstance(grid, int) or grid < 1:
            raise HnnkitValueError(f"grid must be an integer >= 1, got {grid!r}")
        lo, hi = self.grid[:, self.k], self.grid[:, self.num + self.k]
        n = max(20 * max(grid, self.num), 200)
        frac = torch.linspace(0, 1, n, dtype=self.grid.dtype, device=self.grid.device)
        z = (lo[:, None] + (hi - lo)[:, None] * frac).T.contiguous()  # (n, in)
        z[-1] = z[-1] - 1e-9 * (hi - lo)  # stay inside the half-open last interval
        old = self.spline(z)
        h = (hi - lo) / grid
        steps = torch.arange(
            -self.k, grid + self.k + 1, dtype=self.grid.dtype, device=self.grid.device
        )
        self.grid = lo[:, None] + h[:, None] * steps
        self.num = grid
        self.coef = nn.Parameter(_fit_coef(z, old, self.grid, self.k))

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, out_dim={self.out_dim}, grid={self.num}, k={self.k}, base={self.base_activation}"


def _check_range(grid_range: Sequence[float]) -> None:
    try:
        lo, hi = (float(v) for v in grid_range)
    except (TypeError, ValueError):
        raise HnnkitValueError(f"grid_range must be (min, max), got {grid_range!r}") from None
    if not hi > lo:
        raise HnnkitValueError(f"grid_range must be (min, max) with max > min, got {grid_range!r}")


# -- the network ----------------------------------------------------------------------------
@dataclass
class LayerActivations:
    """Inputs and edge activations of one layer on a batch of samples.

    Attributes:
        inputs: ``(N, in_dim)`` the layer's inputs (pre-activations of its edges).
        edges: ``(N, in_dim, out_dim)`` every edge's output :math:`\\phi_{ij}(x_i)`.
    """

    inputs: Tensor
    edges: Tensor


@dataclass
class PruneResult:
    """What :meth:`KAN.prune` removed.

    Attributes:
        edges: ``(layer, i, j)`` of every edge masked by this call.
        nodes: ``(level, index)`` of every node whose edges were all masked by this call;
            level 0 is the input, level ``L`` the output.
        scores: per layer, ``(in, out)`` mean absolute edge activation before pruning.
    """

    edges: list[tuple[int, int, int]] = field(default_factory=list)
    nodes: list[tuple[int, int]] = field(default_factory=list)
    scores: list[Tensor] = field(default_factory=list)


class KAN(nn.Module):
    r"""A Kolmogorov–Arnold network ``widths[0] → ... → widths[-1]`` of :class:`KANLayer`.

    Use it as an HNN energy network::

        HNN(2, energy_net=KAN([2, 1]))                     # H = phi_q(q) + phi_p(p)
        HNN(2, energy_net=KAN([2, 1, 2]), output_index=1)  # the seed's shape, one unused output

    Args:
        widths: layer sizes, at least two positive integers (default ``(2, 1, 2)``). The
            sequence is copied, never modified.
        grid: grid intervals ``G`` per edge (default 5).
        k: spline order (default 3).
        grid_range: initial grid range of every layer (default ``(-1, 1)``); see
            :meth:`update_grid` to fit it to data.
        base_activation: base branch of every edge, one of :data:`BASE_ACTIVATIONS`
            (default ``"silu"``).
        noise_scale, scale_base_mu, scale_base_sigma: initialisation, see :class:`KANLayer`.
        generator: ``torch.Generator`` for the initialisation (``None``: the global RNG,
            read but never seeded).
        dtype: parameter dtype (default: torch's default dtype).
        device: parameter device.

    Raises:
        HnnkitValueError: on fewer than two widths or a non-positive width; see
            :class:`KANLayer` for the other arguments.
    """

    def __init__(
        self,
        widths: Sequence[int] = (2, 1, 2),
        grid: int = 5,
        k: int = 3,
        *,
        grid_range: tuple[float, float] = (-1.0, 1.0),
        base_activation: str = "silu",
        noise_scale: float = 0.3,
        scale_base_mu: float = 0.0,
        scale_base_sigma: float = 1.0,
        generator: torch.Generator | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ):
        super().__init__()
        widths = tuple(widths)
        if len(widths) < 2 or any(
            isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths
        ):
            raise HnnkitValueError(
                f"widths must be at least two positive integers (inputs, ..., outputs), e.g. [2, 1, 2]; got {widths!r}"
            )
        self.widths = widths
        self.grid_size, self.k = grid, k
        _check_range(grid_range)
        self.grid_range = (float(grid_range[0]), float(grid_range[1]))
        self.base_activation = base_activation
        self.act_fun = nn.ModuleList(
            KANLayer(
                a,
                b,
                grid,
                k,
                grid_range=grid_range,
                base_activation=base_activation,
                noise_scale=noise_scale,
                scale_base_mu=scale_base_mu,
                scale_base_sigma=scale_base_sigma,
                generator=generator,
                dtype=dtype,
                device=device,
            )
            for a, b in zip(widths[:-1], widths[1:], strict=True)
        )

    @property
    def depth(self) -> int:
        """Number of layers ``len(widths) - 1``."""
        return len(self.act_fun)

    def _flat(self, x: Tensor) -> Tensor:
        if x.ndim == 0 or x.shape[-1] != self.widths[0]:
            raise HnnkitValueError(
                f"KAN{list(self.widths)} expects inputs (..., {self.widths[0]}), got {tuple(x.shape)}"
            )
        return x.reshape(-1, self.widths[0])

    def forward(self, x: Tensor) -> Tensor:
        """``(..., widths[0])`` → ``(..., widths[-1])``.

        Raises:
            HnnkitValueError: if the last dimension is not ``widths[0]``.
        """
        batch = x.shape[:-1]
        h = self._flat(x)
        for layer in self.act_fun:
            h = layer(h)
        return h.reshape(*batch, self.widths[-1])

    def activations(self, x: Tensor) -> list[LayerActivations]:
        """Every layer's inputs and edge activations on samples ``x (..., widths[0])``, flattened to ``N`` rows."""
        h = self._flat(x)
        out = []
        for layer in self.act_fun:
            edges = layer.edge_outputs(h)
            out.append(LayerActivations(inputs=h, edges=edges))
            h = edges.sum(-2)
        return out

    def edge_function(self, layer: int, i: int, j: int, z: Tensor) -> Tensor:
        r"""Evaluate one edge's activation :math:`\phi_{l,i,j}` at the points ``z`` (any shape).

        Args:
            layer: layer index in ``[0, depth)``.
            i: input node of that layer.
            j: output node of that layer.
            z: points, any shape.

        Returns:
            :math:`\phi_{l,i,j}(z)`, the shape of ``z`` (zero where the edge is masked).

        Raises:
            HnnkitValueError: on an index out of range.
        """
        self._check_edge(layer, i, j)
        lay = self.act_fun[layer]
        flat = z.reshape(-1, 1).to(lay.grid.dtype).expand(-1, lay.in_dim)
        return lay.edge_outputs(flat)[:, i, j].reshape(z.shape)

    def _check_edge(self, layer: int, i: int, j: int) -> None:
        if not 0 <= layer < self.depth:
            raise HnnkitValueError(f"layer must be in [0, {self.depth}), got {layer}")
        n_in, n_out = self.widths[layer], self.widths[layer + 1]
        if not (0 <= i < n_in and 0 <= j < n_out):
            raise HnnkitValueError(
                f"edge ({i}, {j}) is outside layer {layer} of shape {n_in}x{n_out}"
            )

    def edges(self, *, active_only: bool = True) -> Iterator[tuple[int, int, int]]:
        """Yield ``(layer, i, j)`` for every (unmasked, by default) edge."""
        for layer_idx, lay in enumerate(self.act_fun):
            for i in range(lay.in_dim):
                for j in range(lay.out_dim):
                    if not active_only or lay.mask[i, j] != 0:
                        yield layer_idx, i, j

    @torch.no_grad()
    def update_grid(
        self,
        x: Tensor,
        *,
        layers: Sequence[int] | None = None,
        margin: float = 0.1,
        grid_eps: float = 1.0,
    ) -> None:
        """Fit layers' grids to the range their inputs take on ``x``, keeping the functions.

        Layer by layer: the layer's inputs on ``x`` are computed, its grid is moved onto their
        range (see :meth:`KANLayer.update_grid`) and its spline is refitted. Re-create the
        optimizer after a call made during training.

        Before training, update only the first layer (``layers=[0]``): a freshly initialised
        hidden node varies over a tiny range, and a hidden grid fitted to it leaves the node
        off-grid (spline identically zero) as soon as training widens it. On the spring,
        ``KAN([2, 1, 2], grid_range=(-2, 2))`` with ``update_grid(x, layers=[0])`` converged for
        6 of 6 seeds, against 0 of 6 when every layer was updated at initialisation.

        Args:
            x: samples ``(..., widths[0])`` (e.g. the training states).
            layers: indices of the layers to update (default ``None``: all).
            margin: fraction of each input's span added on each side (default 0.1).
            grid_eps: 1 (default) for uniform grids, 0 for quantile grids.

        Raises:
            HnnkitValueError: on a layer index out of range; as :meth:`KANLayer.update_grid`.
        """
        chosen = set(range(self.depth)) if layers is None else set(layers)
        if not chosen <= set(range(self.depth)):
            raise HnnkitValueError(
                f"layers must be indices in [0, {self.depth}), got {sorted(chosen)}"
            )
        h = self._flat(x)
        for idx, layer in enumerate(self.act_fun):
            if idx > max(chosen, default=-1):
                break
            h = h.to(layer.grid.dtype)
            if idx in chosen:
                layer.update_grid(h, margin=margin, grid_eps=grid_eps)
            h = layer(h)

    def refine(self, grid: int) -> None:
        """Grid extension: give every layer ``grid`` intervals, keeping the learned functions.

        See :meth:`KANLayer.refine`. A finer grid lowers the spline approximation error (a
        cubic spline on 5 intervals cannot represent ``cos q`` over ``[-2.3, 2.3]`` much
        better than 1e-3); create the optimizer after this call.

        Raises:
            HnnkitValueError: if ``grid`` is not a positive integer.
        """
        for layer in self.act_fun:
            layer.refine(grid)
        self.grid_size = grid

    def regularization(
        self,
        x: Tensor | None = None,
        *,
        mode: str = "activation",
        l1: float = 1.0,
        entropy: float = 0.0,
        eps: float = 1e-4,
    ) -> Tensor:
        r"""Sparsity penalty (multiply it by :math:`\lambda`, e.g. 5e-5, before adding it to a loss).

        ``mode="activation"`` (the KAN paper's): with :math:`|\phi|_1 = \frac1N\sum_s
        |\phi(x_s)|` the mean absolute activation of an edge on the samples,

        .. math::

            R = \sum_{\text{layers}} \Big( \ell_1 \sum_{ij} |\phi_{ij}|_1
                + w_{\text{ent}} \big(S_{\text{rows}} + S_{\text{cols}}\big) \Big),

        where :math:`S` are the mean entropies of the normalised scores of each node's
        outgoing (rows) and incoming (cols) edges. ``mode="parameter"``: :math:`\ell_1
        \sum|\theta|` over the unmasked spline coefficients and scales (the seed report's
        :math:`\sum_i |\theta_i|`; ``x`` is not needed).

        Args:
            x: samples ``(..., widths[0])``; required for ``mode="activation"``.
            mode: ``"activation"`` (default) or ``"parameter"``.
            l1: weight of the L1 term (default 1).
            entropy: weight of the entropy term (default 0; pykan uses 2).
            eps: smoothing of the absolute value, :math:`|v| \approx \sqrt{v^2 + \epsilon^2}
                - \epsilon` (default 1e-4; 0 for the exact, non-smooth :math:`|v|`). Without it
                L-BFGS line searches stall at the kink and unused edges stop shrinking.

        Returns:
            A scalar tensor, differentiable in the parameters.

        Raises:
            HnnkitValueError: if ``mode="activation"`` and ``x`` is ``None``.
            UnknownNameError: on an unknown ``mode``.
        """
        check_choice("regularization mode", mode, REGULARIZATION_MODES)
        if mode == "parameter":
            total = 0.0
            for lay in self.act_fun:
                m = lay.mask
                total = total + l1 * (
                    (_smooth_abs(lay.coef, eps) * m[..., None]).sum()
                    + (_smooth_abs(lay.scale_base, eps) * m).sum()
                    + (_smooth_abs(lay.scale_sp, eps) * m).sum()
                )
            return torch.as_tensor(total, dtype=self.act_fun[0].coef.dtype)
        if x is None:
            raise HnnkitValueError(
                "regularization(mode='activation') needs samples x, e.g. the training states"
            )
        total = 0.0
        for acts in self.activations(x):
            score = _smooth_abs(acts.edges, eps).mean(0)  # (in, out)
            total = total + l1 * score.sum()
            if entropy:
                total = total + entropy * (_entropy(score, dim=1) + _entropy(score, dim=0))
        return total

    @torch.no_grad()
    def edge_scores(self, x: Tensor) -> list[Tensor]:
        """Mean absolute activation of every edge on ``x``: one ``(in, out)`` tensor per layer."""
        return [a.edges.abs().mean(0) for a in self.activations(x)]

    @torch.no_grad()
    def prune(self, x: Tensor, *, threshold: float = 1e-2) -> PruneResult:
        """Mask dead edges and nodes, in place.

        An edge is dead when its mean absolute activation on ``x`` is below ``threshold``; it
        is masked. Then, until nothing changes, every hidden node that has live incoming edges
        but no live outgoing one (or the reverse) loses all its edges. An output left with no
        live incoming edge is exactly 0 and is reported in ``nodes``. Masking a hidden node
        whose inputs are all dead drops the constant its outgoing edges added (harmless for an
        energy, whose offset has no dynamics).

        Args:
            x: samples ``(..., widths[0])`` on which activations are measured.
            threshold: absolute score below which an edge is dead (default 1e-2, pykan's).

        Returns:
            :class:`PruneResult`.

        Raises:
            HnnkitValueError: on a negative threshold.
        """
        if not threshold >= 0:
            raise HnnkitValueError(f"threshold must be >= 0, got {threshold!r}")
        before = self.active_nodes()
        result = PruneResult(scores=[s.clone() for s in self.edge_scores(x)])
        for layer_idx, (lay, score) in enumerate(zip(self.act_fun, result.scores, strict=True)):
            dead = (score < threshold) & (lay.mask != 0)
            result.edges.extend((layer_idx, i, j) for i, j in dead.nonzero().tolist())
            lay.mask[dead] = 0
        changed = True
        while changed:  # a hidden node without live inputs or without live outputs is dead
            changed = False
            for level in range(1, self.depth):
                for n in range(self.widths[level]):
                    incoming = self.act_fun[level - 1].mask[:, n]
                    outgoing = self.act_fun[level].mask[n, :]
                    if bool(incoming.any()) != bool(outgoing.any()):
                        result.edges.extend(
                            (level - 1, m, n) for m in incoming.nonzero().flatten().tolist()
                        )
                        result.edges.extend(
                            (level, n, m) for m in outgoing.nonzero().flatten().tolist()
                        )
                        incoming.zero_()
                        outgoing.zero_()
                        changed = True
        after = self.active_nodes()
        result.nodes = [
            (level, n)
            for level, row in enumerate(before)
            for n, live in enumerate(row)
            if live and not after[level][n]
        ]
        return result

    def active_nodes(self) -> list[list[bool]]:
        """Per level (0 = inputs), whether each node still has an unmasked edge."""
        out = []
        for level in range(self.depth + 1):
            row = []
            for n in range(self.widths[level]):
                live = False
                if level > 0:
                    live |= bool(self.act_fun[level - 1].mask[:, n].any())
                if level < self.depth:
                    live |= bool(self.act_fun[level].mask[n, :].any())
                row.append(live)
            out.append(row)
        return out

    def to_pykan(self):
        """Export to a pykan ``MultKAN`` with the same parameters (needs ``pip install hnnkit[pykan]``).

        The pykan model is built with ``auto_save=False`` and ``save_act=False`` (nothing is
        written), its identity node/subnode affine maps and disabled symbolic branch, and the
        caller's global RNG states are restored after pykan's constructor reseeds them.

        Returns:
            ``kan.MultKAN`` on this model's device and dtype, computing the same function.

        Raises:
            ImportError: if pykan is not installed; the message says how to install it.
            HnnkitValueError: for a base activation pykan lacks (``"tanh"``).
        """
        try:
            from kan import KAN as PyKAN
        except ImportError as exc:
            raise ImportError(
                "KAN.to_pykan needs pykan, which is an optional dependency; install it with "
                "`pip install hnnkit[pykan]` (or `pip install pykan` plus its unlisted requirements "
                f"numpy, matplotlib, pandas, scikit-learn, sympy, pyyaml, tqdm). Import failed: {exc}"
            ) from exc
        if self.base_activation not in ("silu", "identity", "zero"):
            raise HnnkitValueError(
                f"pykan has no base activation {self.base_activation!r}; use silu, identity or zero"
            )
        ref = self.act_fun[0].coef
        with _preserve_global_rngs():
            model = PyKAN(
                width=list(self.widths),
                grid=self.grid_size,
                k=self.k,
                grid_range=list(self.grid_range),
                base_fun=self.base_activation,
                auto_save=False,
                save_act=False,
                symbolic_enabled=False,
                seed=0,
                device=str(ref.device),
            )
        model = model.to(ref.dtype)
        state = model.state_dict()
        for key in list(state):
            parts = key.split(".")
            if parts[0] == "act_fun" and parts[-1] in (
                "grid",
                "coef",
                "scale_base",
                "scale_sp",
                "mask",
            ):
                state[key] = self.state_dict()[key].to(state[key].dtype)
            elif parts[0] in ("node_bias", "subnode_bias"):
                state[key] = torch.zeros_like(state[key])
            elif parts[0] in ("node_scale", "subnode_scale"):
                state[key] = torch.ones_like(state[key])
            elif parts[0] == "symbolic_fun" and parts[-1] == "mask":
                state[key] = torch.zeros_like(state[key])
        model.load_state_dict(state)
        return model

    def extra_repr(self) -> str:
        return f"widths={list(self.widths)}"


def _smooth_abs(v: Tensor, eps: float) -> Tensor:
    return v.abs() if eps == 0 else torch.sqrt(v * v + eps * eps) - eps


def _entropy(score: Tensor, dim: int) -> Tensor:
    p = score / (score.sum(dim, keepdim=True) + 1.0)
    return -(p * torch.log2(p + 1e-4)).sum(dim).mean()


@contextlib.contextmanager
def _preserve_global_rngs():
    """Restore torch's, numpy's and Python's global RNG states on exit."""
    import numpy as np

    torch_state = torch.random.get_rng_state()
    np_state = np.random.get_state()  # noqa: NPY002 - pykan reseeds the legacy global RNG
    py_state = random.getstate()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        torch.random.set_rng_state(torch_state)
        np.random.set_state(np_state)  # noqa: NPY002
        random.setstate(py_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


def find_kan(model: nn.Module) -> KAN:
    """Return ``model`` if it is a :class:`KAN`, else its ``energy_net`` when that is one.

    Raises:
        HnnkitValueError: if no KAN is found.
    """
    if isinstance(model, KAN):
        return model
    net = getattr(model, "energy_net", None)
    if isinstance(net, KAN):
        return net
    inner = type(net).__name__ if net is not None else "none"
    raise HnnkitValueError(
        f"{type(model).__name__} (energy net: {inner}) is not a KAN; symbolic extraction reads "
        "only these models: a KAN, an HNN whose energy_net is a KAN (`hnnkit train --model kan`, "
        "hnnkit.models.make_kan_hnn), or a DissipativeHNN whose energy and dissipation nets are "
        "both KANs (`hnnkit train --model kan --dissipative`)"
    )


def kan_regularizer(
    x: Tensor,
    lamb: float = 5e-5,
    *,
    mode: str = "activation",
    l1: float = 1.0,
    entropy: float = 0.0,
    eps: float = 1e-4,
) -> Callable[[nn.Module], Tensor]:
    r"""A ``model -> scalar`` penalty :math:`\lambda R` for :func:`hnnkit.train.fit`'s ``regularizer``.

    Args:
        x: samples on which activations are measured (e.g. the training states); cast to the
            model's dtype and device at each call.
        lamb: overall weight :math:`\lambda` (default 5e-5, the seed report's).
        mode, l1, entropy, eps: see :meth:`KAN.regularization`.

    Returns:
        A callable accepting a :class:`KAN` or a model whose ``energy_net`` is one (an HNN).

    Raises:
        HnnkitValueError: on a negative ``lamb``.
        UnknownNameError: on an unknown ``mode``.
    """
    if not lamb >= 0:
        raise HnnkitValueError(f"lamb must be >= 0, got {lamb!r}")
    check_choice("regularization mode", mode, REGULARIZATION_MODES)
    x = x.detach()

    def regularizer(model: nn.Module) -> Tensor:
        kan = find_kan(model)
        ref = kan.act_fun[0].coef
        return lamb * kan.regularization(
            x.to(ref.device, ref.dtype), mode=mode, l1=l1, entropy=entropy, eps=eps
        )

    return regularizer


__all__ = [
    "BASE_ACTIVATIONS",
    "KAN",
    "KANLayer",
    "LayerActivations",
    "PruneResult",
    "b_spline_basis",
    "find_kan",
    "kan_regularizer",
]
