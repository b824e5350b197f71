"""Datasets: simulated trajectories, your own arrays, the real-pendulum measurements, pixels."""

from ._dataset import DEFAULT_TEST_FRACTION as DEFAULT_TEST_FRACTION
from ._dataset import Dataset as Dataset
from ._dataset import from_arrays as from_arrays
from ._generate import cache_dir as cache_dir
from ._generate import generate as generate
from .files import file_sha256 as file_sha256
from .files import load_trajectories as load_trajectories
from .pixels import PixelPendulumData as PixelPendulumData
from .pixels import pixel_pendulum_dataset as pixel_pendulum_dataset
from .real_pendulum import real_pendulum as real_pendulum
from .sampling import sample_energy_band as sample_energy_band

__all__ = [
    "DEFAULT_TEST_FRACTION",
    "Dataset",
    "PixelPendulumData",
    "cache_dir",
    "file_sha256",
    "from_arrays",
    "generate",
    "load_trajectories",
    "pixel_pendulum_dataset",
    "real_pendulum",
    "sample_energy_band",
]
