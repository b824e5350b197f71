r"""From a trained KAN to a closed-form Hamiltonian.

The pipeline (``extract_hamiltonian``):

1. **Edge fits.** Every live edge :math:`\phi_{l,i,j}` that feeds the energy output is
   sampled on the range its input takes on the data and matched against a library of
   functions. Polynomials are solved exactly by least squares; any other library function
   :math:`f` is fitted in affine-in/affine-out form :math:`c\,f(a x + b) + d` (a grid
   search over :math:`(a, b)` with the optimal :math:`(c, d)` in closed form, then a local
   least-squares polish).
2. **Occam's razor.** Among the candidates whose :math:`R^2` is within ``occam_tol`` of the
   best, the least complex wins; ties go to the earlier library entry (polynomials come
   first). Without it noisy data pick :math:`\cos(ax+b)` over :math:`x^2`.
3. **Composition.** The edge formulas are composed layer by layer into a SymPy :math:`H(q, p)`
   and expanded.
4. **Refit.** Every floating-point number in :math:`H` becomes a free coefficient and is
   refitted under the HNN loss, the mean squared error of :math:`J\nabla H` against the
   target derivatives: exactly by linear least squares when :math:`H` is linear in them
   (polynomials), else by L-BFGS.
5. **Occam on the formula.** Whole terms are dropped, smallest first, unless the held-out
   (test-split) loss of the refitted rest rises above ``loss·(1 + drop_rtol) + atol``:
   2 % for noise (noisy data otherwise keep small terms such as :math:`q^4` that fit it)
   and :data:`SELECT_ATOL` = 1e-6 of the targets' variance for round-off, so that terms
   worth only the last bits never decide the formula.
6. **Presentation.** Coefficients are rounded to "nice" values (0, integers, then 1–3
   decimals) one at a time, each only if the HNN loss stays within tolerance. Both the raw
   refitted and the rounded expressions are returned.

The result exports to SymPy, LaTeX, Python source and a torch function, and wraps as a
:class:`hnnkit.systems.Custom` system for rollouts.
"""

from ._checks import energy_check as energy_check
from ._dissipative import SymbolicDissipative as SymbolicDissipative
from ._dissipative import extract_dissipative as extract_dissipative
from ._extract import extract_hamiltonian as extract_hamiltonian
from ._formula import SELECT_ATOL as SELECT_ATOL
from ._formula import SymbolicHamiltonian as SymbolicHamiltonian
from ._formula import drop_terms as drop_terms
from ._formula import hnn_loss_fn as hnn_loss_fn
from ._formula import phase_space_symbols as phase_space_symbols
from ._formula import refit_coefficients as refit_coefficients
from ._formula import round_coefficients as round_coefficients
from ._library import DEFAULT_LIBRARY as DEFAULT_LIBRARY
from ._library import LIBRARY as LIBRARY
from ._library import POLYNOMIAL_LIBRARY as POLYNOMIAL_LIBRARY
from ._library import QUADRATIC_LIBRARY as QUADRATIC_LIBRARY
from ._library import EdgeFit as EdgeFit
from ._library import LibraryFunction as LibraryFunction
from ._library import X as X
from ._library import fit_edge as fit_edge
from ._runs import RUN_ENTRY as RUN_ENTRY
from ._runs import RUN_FILE as RUN_FILE
from ._runs import extract_from_run as extract_from_run
from ._runs import kan_run_entry as kan_run_entry
from ._runs import load_kan_run as load_kan_run

__all__ = [
    "DEFAULT_LIBRARY",
    "LIBRARY",
    "POLYNOMIAL_LIBRARY",
    "QUADRATIC_LIBRARY",
    "RUN_ENTRY",
    "RUN_FILE",
    "SELECT_ATOL",
    "EdgeFit",
    "LibraryFunction",
    "SymbolicDissipative",
    "SymbolicHamiltonian",
    "X",
    "drop_terms",
    "energy_check",
    "extract_dissipative",
    "extract_from_run",
    "extract_hamiltonian",
    "fit_edge",
    "hnn_loss_fn",
    "kan_run_entry",
    "load_kan_run",
    "phase_space_symbols",
    "refit_coefficients",
    "round_coefficients",
]
