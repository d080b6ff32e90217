r"""spechub-theory: the theory of multi-draft speculative decoding, computable and checked.

Convention everywhere: ``p`` = target, ``q`` = draft, last axis = vocabulary, float64; ``k`` drafts
per node; the hub ``a = argmax q``. Method names: single, rrs, rrs_wor, kseq, spechub, khisti_is,
optimal (node-level verifiers); block, traversal (sequence-level, :mod:`.trees.sequence_rules`);
optimal_iid, optimal_wor (the LP optima, from ``lp``). **Tokens per step** = accepted drafts + 1 (the bonus or
residual token), per target forward.

This package imports numpy and scipy only (no torch, transformers or matplotlib).
"""

from .acceptance import AcceptanceRates, acceptance_rates
from .distributions import check_distribution, check_pq, coverage, probs_from_logits, total_variation
from .draft_laws import DRAFT_LAWS, HUB, IID, WOR, conditional_law, get_law, hub_set
from .methods import METHOD_NAMES, METHODS, get_method
from .montecarlo.simulation import MonteCarloResult, simulate
from .montecarlo.mutants import MUTANTS
from .montecarlo.stats import assert_lossless, matches_target, samples_needed
from .trees.synthetic import SyntheticPair, calibrate_mismatch, make_pair
from .trees.exact import exact_tree, tokens_per_step_table
from .trees.shapes import Tree
from .verification import output_law, sample_drafts, verify

__version__ = "0.1.0"

__all__ = [
    "AcceptanceRates",
    "acceptance_rates",
    "check_distribution",
    "check_pq",
    "coverage",
    "probs_from_logits",
    "total_variation",
    "DRAFT_LAWS",
    "HUB",
    "IID",
    "WOR",
    "conditional_law",
    "get_law",
    "hub_set",
    "METHOD_NAMES",
    "METHODS",
    "get_method",
    "MonteCarloResult",
    "simulate",
    "MUTANTS",
    "assert_lossless",
    "matches_target",
    "samples_needed",
    "SyntheticPair",
    "calibrate_mismatch",
    "make_pair",
    "exact_tree",
    "tokens_per_step_table",
    "Tree",
    "output_law",
    "sample_drafts",
    "verify",
]
