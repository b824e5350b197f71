"""hnnkit: learn physics from data with Hamiltonian neural networks."""

__version__ = "0.1.0"
