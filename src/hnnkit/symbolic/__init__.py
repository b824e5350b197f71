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
3. **Composition, any number of degrees of freedom.** The edge formulas are composed layer
   by layer into a SymPy :math:`H` in all :math:`2n` variables and expanded. A KAN
   ``[2n, h, 1]`` whose hidden nodes sum functions of several inputs composes into products
   and differences (:math:`(q_1 - q_2)^2`, :math:`q_1^2 q_2`): the expanded summands are the
   **candidate library**. Polynomial terms above total degree ``max_degree`` (default
   :data:`MAX_DEGREE` = 4) are cut while composing.
4. **Smoothing** (``denoise``, :func:`smooth_states`). Noisy states bias a refit (errors in
   variables). With a Dataset's trajectories, each trajectory's states are replaced by the
   integral of a cubic spline of its derivatives plus the least-squares offset to the observed
   states (``"auto"``: only where the states scatter about that path beyond its own error);
   after the selection each trajectory's offset is refined jointly with the coefficients
   (:func:`refine_offsets`), which removes the attenuation.
5. **Exact refit.** The candidates' coefficients solve a linear least-squares problem: the
   field they give (:math:`J\nabla H`, plus a dissipation's) against the targets.
6. **Term selection by held-out evidence** (:mod:`._evidence`). Backward elimination: a term
   stays only if removing it (the rest refitted on the training split) raises the held-out
   loss beyond its noise: by more than :data:`SELECT_ATOL` · var(targets), and with a
   per-held-out-trajectory log-likelihood ratio whose mean exceeds :data:`EVIDENCE_Z` = 3
   standard errors. Each kept :class:`Term` carries that rise and its ``confidence`` (> 1).
   Inner numbers (``cos(1.0*q + 0.0)``) are then polished by L-BFGS.
7. **Physics and trust.** :math:`H` bounded below on the data's box (:func:`energy_check`),
   :math:`D \ge 0` on the states; the formula's held-out loss against the network's:
   ``failed`` (and a warning) when it is worse by more than the noise (the library cannot
   express the data; the closest formula is still returned).
8. **Presentation.** Coefficients are rounded to "nice" values (0, integers, then 1–3
   decimals) one at a time, each only if the HNN loss stays within tolerance. Both the raw
   refitted and the rounded expressions are returned.

API for a benchmark (stable)::

    from hnnkit.symbolic import extract_hamiltonian, hamiltonian_terms, phase_space_symbols

    found = extract_hamiltonian(model, dataset)   # model: KAN-HNN; dataset: hnnkit Dataset
    found.terms        # [Term(part, expr, coefficient, loss_rise, log_ratio, log_ratio_se,
                       #       confidence)], the kept terms; the constant is not a term
    found.coefficients()   # {"p**2": 0.5000001, "q**4": 0.2499, "1": c}: raw, by text
    found.failed       # True: worse than the network on held-out data beyond the noise
    found.losses["formula_heldout"], found.losses["network_heldout"]
    truth = hamiltonian_terms("p**2/2 + q**4/4", phase_space_symbols(1))  # {p**2: 0.5, ...}
    {t.expr: t.coefficient for t in found.terms}   # compare with truth, same keys

The result exports to SymPy, LaTeX, Python source and a torch function, and wraps as a
:class:`hnnkit.systems.Custom` system for rollouts.
"""

from ._checks import energy_check as energy_check
from ._denoise import DENOISE_METHODS as DENOISE_METHODS
from ._denoise import Smoothing as Smoothing
from ._denoise import refine_offsets as refine_offsets
from ._denoise import smooth_states as smooth_states
from ._dissipative import SymbolicDissipative as SymbolicDissipative
from ._dissipative import extract_dissipative as extract_dissipative
from ._evidence import EVIDENCE_Z as EVIDENCE_Z
from ._evidence import Term as Term
from ._extract import MAX_DEGREE as MAX_DEGREE
from ._extract import extract_hamiltonian as extract_hamiltonian
from ._formula import SELECT_ATOL as SELECT_ATOL
from ._formula import SymbolicHamiltonian as SymbolicHamiltonian
from ._formula import drop_terms as drop_terms
from ._formula import hamiltonian_terms as hamiltonian_terms
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
from ._splits import Splits as Splits

__all__ = [
    "DEFAULT_LIBRARY",
    "DENOISE_METHODS",
    "EVIDENCE_Z",
    "LIBRARY",
    "MAX_DEGREE",
    "POLYNOMIAL_LIBRARY",
    "QUADRATIC_LIBRARY",
    "RUN_ENTRY",
    "RUN_FILE",
    "SELECT_ATOL",
    "EdgeFit",
    "LibraryFunction",
    "Smoothing",
    "Splits",
    "SymbolicDissipative",
    "SymbolicHamiltonian",
    "Term",
    "X",
    "drop_terms",
    "energy_check",
    "extract_dissipative",
    "extract_from_run",
    "extract_hamiltonian",
    "fit_edge",
    "hamiltonian_terms",
    "hnn_loss_fn",
    "kan_run_entry",
    "load_kan_run",
    "phase_space_symbols",
    "refine_offsets",
    "refit_coefficients",
    "round_coefficients",
    "smooth_states",
]
