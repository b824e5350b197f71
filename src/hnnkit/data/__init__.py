"""Datasets: simulated trajectories, your own arrays, the real-pendulum measurements, pixels."""

from ._dataset import Dataset as Dataset
from ._dataset import from_arrays as from_arrays
from ._generate import cache_dir as cache_dir
from ._generate import generate as generate
from .pixels import PixelPendulumData as PixelPendulumData
from .pixels import pixel_pendulum_dataset as pixel_pendulum_dataset
from .real_pendulum import real_pendulum as real_pendulum

__all__ = [
    "Dataset",
    "PixelPendulumData",
    "cache_dir",
    "from_arrays",
    "generate",
    "pixel_pendulum_dataset",
    "real_pendulum",
]
