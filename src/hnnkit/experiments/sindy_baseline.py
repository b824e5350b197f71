r"""SINDy, the sparse-regression baseline of the symbolic-recovery benchmark.

SINDy (Brunton, Proctor & Kutz 2016) regresses the vector field on a library of candidate
functions, :math:`\dot x \approx \Theta(x)\,\Xi`, with sequentially thresholded least squares
(STLSQ): coefficients below ``threshold`` are zeroed and the rest refitted, until nothing
changes. It learns each component of :math:`\dot x` separately and knows nothing of
Hamiltonian structure.

``pysindy`` is an optional dependency (``pip install "hnnkit[sindy]"``), imported only here,
only when :func:`fit_sindy` runs.
"""

from __future__ import annotations

import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy

from ..errors import HnnkitValueError

#: STLSQ's threshold: below the smallest true coefficient of the benchmark's fields (0.1, the
#: damped spring's friction), set once for every system and noise level.
DEFAULT_THRESHOLD = 0.05


def require_pysindy() -> Any:
    """Import ``pysindy``, or say how to install it.

    Raises:
        HnnkitValueError: when ``pysindy`` is not installed.
    """
    try:
        import pysindy
    except ImportError as exc:
        raise HnnkitValueError(
            "the SINDy baseline needs pysindy, an optional dependency: "
            'pip install "hnnkit[sindy]" (or pip install pysindy), or run the benchmark '
            "with --no-sindy"
        ) from exc
    return pysindy


@dataclass
class SindyFit:
    r"""A fitted SINDy model.

    Attributes:
        field: the learned :math:`\dot x` component by component, as SymPy expressions.
        coefficients: :math:`\Xi^\top`, ``(2n, n_features)``.
        features: the library's feature names.
        seconds: wall time of the fit.
    """

    field: list[sympy.Expr]
    coefficients: np.ndarray
    features: list[str]
    seconds: float


def _feature_expr(name: str, symbols: dict[str, sympy.Symbol]) -> sympy.Expr:
    """A pysindy feature name (``q1^2 p1``, ``sin(1 q1)``) as a SymPy expression."""
    text = re.sub(r"(?<=[\w)])\s+(?=[\w(])", "*", name.strip()).replace("^", "**")
    return sympy.sympify(text, locals=dict(symbols))


def fit_sindy(
    x: np.ndarray,
    dx: np.ndarray,
    symbols: Sequence[sympy.Symbol],
    *,
    degree: int = 4,
    trig: bool = False,
    threshold: float = DEFAULT_THRESHOLD,
    library: Any = None,
) -> SindyFit:
    r"""Fit SINDy to states ``x`` and derivative targets ``dx`` (both ``(N, 2n)``).

    The library is every monomial of the coordinates up to ``degree`` (with the constant),
    plus with ``trig`` :math:`\sin` and :math:`\cos` of each coordinate; or any pysindy
    ``library``. The regression is STLSQ with ``threshold`` and no ridge term.

    Raises:
        HnnkitValueError: when pysindy is missing, or on mismatched shapes.
    """
    ps = require_pysindy()
    x, dx = np.asarray(x, dtype=float), np.asarray(dx, dtype=float)
    if x.ndim != 2 or x.shape != dx.shape or x.shape[1] != len(symbols):
        raise HnnkitValueError(
            f"x and dx must both be (N, {len(symbols)}), got {x.shape} and {dx.shape}"
        )
    if library is None:
        library = ps.PolynomialLibrary(degree=degree, include_bias=True)
        if trig:
            library = library + ps.FourierLibrary(n_frequencies=1)
    names = [str(s) for s in symbols]
    model = ps.SINDy(optimizer=ps.STLSQ(threshold=threshold, alpha=0.0), feature_library=library)
    start = time.perf_counter()
    with warnings.catch_warnings():  # an ill-conditioned library warns; the verdict says it
        warnings.simplefilter("ignore")
        model.fit(x, t=1.0, x_dot=dx, feature_names=names)
    seconds = time.perf_counter() - start
    xi = np.asarray(model.coefficients())
    features = list(model.get_feature_names())
    sym = {str(s): s for s in symbols}
    exprs = [_feature_expr(f, sym) for f in features]
    field = [
        sum((float(c) * e for c, e in zip(row, exprs, strict=True) if c != 0), sympy.Integer(0))
        for row in xi
    ]
    return SindyFit(field=field, coefficients=xi, features=features, seconds=seconds)


__all__ = ["DEFAULT_THRESHOLD", "SindyFit", "fit_sindy", "require_pysindy"]
