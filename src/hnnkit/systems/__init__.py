"""Physical systems: defined by a Hamiltonian, registered by name.

>>> from hnnkit.systems import get_system
>>> get_system("spring")
Spring(k=2.0, m=0.5, radius_range=(0.1, 1.0))
"""

from .base import HamiltonianSystem as HamiltonianSystem
from .base import ZooSystem as ZooSystem
from .base import get_system as get_system
from .base import list_systems as list_systems
from .base import register_system as register_system
from .base import sample_in_annulus as sample_in_annulus
from .base import unregister_system as unregister_system
from .chains import CoupledOscillators as CoupledOscillators
from .chains import FPUBeta as FPUBeta
from .custom import Custom as Custom
from .custom import parse_hamiltonian as parse_hamiltonian
from .custom import sympy_to_torch as sympy_to_torch
from .damped import DampedPendulum as DampedPendulum  # registers damped-*
from .damped import DampedSpring as DampedSpring
from .double_pendulum import DoublePendulum as DoublePendulum
from .duffing import Duffing as Duffing
from .elastic_pendulum import ElasticPendulum as ElasticPendulum
from .energy_band import sample_energy_band as sample_energy_band
from .henon_heiles import HenonHeiles as HenonHeiles
from .nbody import NBody as NBody
from .nbody import ThreeBody as ThreeBody
from .nbody import TwoBody as TwoBody
from .pendulum import Pendulum as Pendulum
from .spring import Spring as Spring

register_system("spring", Spring)
register_system("pendulum", Pendulum)
register_system("two-body", TwoBody)
register_system("three-body", ThreeBody)
register_system("custom", Custom)
register_system("double-pendulum", DoublePendulum)
register_system("henon-heiles", HenonHeiles)
register_system("duffing", Duffing)
register_system("coupled-oscillators", CoupledOscillators)
register_system("fpu-beta", FPUBeta)
register_system("elastic-pendulum", ElasticPendulum)

__all__ = [
    "CoupledOscillators",
    "Custom",
    "DoublePendulum",
    "Duffing",
    "ElasticPendulum",
    "FPUBeta",
    "HamiltonianSystem",
    "HenonHeiles",
    "NBody",
    "Pendulum",
    "Spring",
    "ThreeBody",
    "TwoBody",
    "ZooSystem",
    "get_system",
    "list_systems",
    "parse_hamiltonian",
    "register_system",
    "sample_energy_band",
    "sympy_to_torch",
    "unregister_system",
]
