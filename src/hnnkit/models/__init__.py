"""Models: every one exposes ``vector_field(t, x)``."""

from .autoencoder import MLPAutoencoder as MLPAutoencoder
from .autoencoder import PixelHNN as PixelHNN
from .baseline import Baseline as Baseline
from .dissipative import DissipativeHNN as DissipativeHNN
from .hnn import HNN as HNN
from .kan import KAN as KAN
from .kan import kan_regularizer as kan_regularizer
from .mlp import ACTIVATIONS as ACTIVATIONS
from .mlp import MLP as MLP

__all__ = [
    "ACTIVATIONS",
    "HNN",
    "KAN",
    "MLP",
    "Baseline",
    "DissipativeHNN",
    "MLPAutoencoder",
    "PixelHNN",
    "kan_regularizer",
]
