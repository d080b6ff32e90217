r"""Optimal transport with membership cost: LP formulations, the fast exact optimum, SpecHub's coupling.

Convention: p = target, q = draft, last axis = vocabulary (theory.md section 1). Imports only
``spechub_theory`` (numpy/scipy); cvxpy and torch are imported lazily where used.

* :func:`optimal_acceptance` -- the exact optimum alpha*(Q, p) at any vocabulary size (sorted
  prefixes for i.i.d. and k = 2 w/o replacement, closed form for the hub law), batched; torch too.
* :func:`solve` -- the LP itself for small n: optimum, transport plan (= a verifier) and a min-cut
  certificate (reduced LP with HiGHS, or the textbook LP with cvxpy).
* :func:`hub_coupling` -- SpecHub's explicit optimal plan for its own law, no LP.
* :func:`min_cut` -- brute force over all 2^n token sets (the reference).
"""

from .coupling import hub_coupling
from .cut import MAX_CUT_N, min_cut
from .fast import optimal_acceptance, optimal_rates
from .rates import OPTIMA, all_rates
from .result import MinCut, OptimumResult, SolverError
from .solve import SOLVERS, solve

__all__ = [
    "optimal_acceptance",
    "optimal_rates",
    "all_rates",
    "OPTIMA",
    "solve",
    "SOLVERS",
    "hub_coupling",
    "min_cut",
    "MAX_CUT_N",
    "OptimumResult",
    "MinCut",
    "SolverError",
]
