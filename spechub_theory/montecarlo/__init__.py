"""Monte Carlo verification: simulation, fast kernels, statistical lossless tests, negative controls.

Convention: p = target, q = draft, last axis = vocabulary; one :class:`ConfidenceInterval` type.
Modules: :mod:`.simulation` (``simulate``, ``MonteCarloResult``), :mod:`.kernels` (vectorised
verification of a chunk of trials), :mod:`.stats` (pooled chi-square, power analysis,
``assert_lossless``), :mod:`.mutants` (deliberately wrong verifiers), :mod:`.compare`
(every method simulated and tested, as ``spechub simulate`` prints it), :mod:`.interval`.
Source: theory.md 6.3 and 7.
"""

from .interval import ConfidenceInterval
from .mutants import MUTANTS, Mutant
from .simulation import MonteCarloResult, simulate, wilson_interval
from .stats import LosslessTest, assert_lossless, matches_target, samples_needed

__all__ = [
    "ConfidenceInterval",
    "MUTANTS",
    "Mutant",
    "MonteCarloResult",
    "simulate",
    "wilson_interval",
    "LosslessTest",
    "assert_lossless",
    "matches_target",
    "samples_needed",
]
