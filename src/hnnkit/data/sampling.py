r"""Initial states in an energy band (see :mod:`hnnkit.systems.energy_band`, re-exported here).

The sampler lives in the systems layer, so that a system's own ``sample_initial`` can draw
from a band; this module keeps the data layer's names.
"""

from ..systems.energy_band import BISECTIONS as BISECTIONS
from ..systems.energy_band import GROWTH as GROWTH
from ..systems.energy_band import MAX_ROUNDS as MAX_ROUNDS
from ..systems.energy_band import R_MAX as R_MAX
from ..systems.energy_band import R_START as R_START
from ..systems.energy_band import check_energy_range as check_energy_range
from ..systems.energy_band import energy_minimum as energy_minimum
from ..systems.energy_band import sample_energy_band as sample_energy_band

__all__ = [
    "BISECTIONS",
    "GROWTH",
    "MAX_ROUNDS",
    "R_MAX",
    "R_START",
    "check_energy_range",
    "energy_minimum",
    "sample_energy_band",
]
