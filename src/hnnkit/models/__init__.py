"""Models: every one exposes ``vector_field(t, x)``."""

from .autoencoder import MLPAutoencoder as MLPAutoencoder
from .autoencoder import PixelHNN as PixelHNN
from .baseline import Baseline as Baseline
from .hnn import HNN as HNN
from .mlp import ACTIVATIONS as ACTIVATIONS
from .mlp import MLP as MLP

__all__ = [
    "ACTIVATIONS",
    "HNN",
    "MLP",
    "Baseline",
    "MLPAutoencoder",
    "PixelHNN",
]
