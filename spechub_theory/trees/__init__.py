"""Token trees: shapes, one decoding step (draft and walk), exact tokens per step, simulation,
the sequence-level law, Markov-chain helpers and synthetic n-gram model pairs.

Convention: p = target, q = draft, last axis = vocabulary; tokens per step = accepted drafts + 1.
Modules: :mod:`.shapes` (``Tree``), :mod:`.walk`, :mod:`.exact` (exact DP), :mod:`.simulation`,
:mod:`.lossless` (law of the first generated tokens), :mod:`.markov` (context chains),
:mod:`.synthetic` (``make_pair``). Source: theory.md 5.
"""

from .exact import exact_tree, tokens_per_step_table
from .shapes import Tree
from .simulation import simulate_tree_decoding
from .synthetic import SyntheticPair, calibrate_mismatch, make_pair

__all__ = ["Tree", "exact_tree", "tokens_per_step_table", "simulate_tree_decoding", "SyntheticPair", "calibrate_mismatch", "make_pair"]
