"""Datasets: simulated trajectories, your own arrays, and the real-pendulum measurements."""

from ._dataset import Dataset as Dataset
from ._dataset import from_arrays as from_arrays
from ._generate import cache_dir as cache_dir
from ._generate import generate as generate
from .real_pendulum import real_pendulum as real_pendulum

__all__ = ["Dataset", "cache_dir", "from_arrays", "generate", "real_pendulum"]
