r"""Deliberately wrong sequence-level verifiers (negative controls for the tree-level lossless tests).

Convention: p = target, q = draft, last axis = vocabulary; each mutant is a
:class:`~spechub_theory.trees.sequence_rules.SequenceMethod` (``NAME``, ``LAW``, ``tree_rule``), so the
exact sequence law (:func:`~spechub_theory.trees.sequence_exact.sequence_law_enumerated`) and the
simulation (:func:`~spechub_theory.trees.sequence_lossless.sequence_lossless_test`) run on it as on the
real verifiers. Sources: 2403.10444 Alg. 2 and 2505.12398, of which each mutant is a plausible
misreading; node-level mutants are in :mod:`spechub_theory.montecarlo.mutants`.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from ..draft_laws import IID, WOR
from ..methods.base import normalise_residual
from ..trees.sequence_rules import SequenceMethod, block_rule, rejected_child_update, traversal_rule
from ..trees.shapes import Tree

__all__ = ["SEQUENCE_MUTANTS", "BLOCK_TOKEN_RESIDUAL", "TRAVERSAL_TOKEN_RESIDUAL", "TRAVERSAL_PARENT_FIRST", "TRAVERSAL_WOR_SIBLINGS"]


def _token_level_update(rho, t, q):
    """The correct rho' = R/(R + 1 - rho), but the token-level residual (t - q)_+ instead of
    (rho t - q)_+ (the bug: the path weight rho is left out of the residual)."""
    new_rho, _ = rejected_child_update(rho, t, q)
    return new_rho, normalise_residual(t - q, t)


def _parent_first_events(tree: Tree) -> list[tuple[str, int]]:
    """A wrong traversal order: a node is tested as soon as its first child's subtree is rejected,
    before its remaining children (which are then visited from the node's state at that time)."""
    events: list[tuple[str, int]] = []

    def visit(v: int) -> None:
        if v != 0:
            events.append(("enter", v))
        kids = tree.children[v]
        for j, c in enumerate(kids):
            visit(c)
            events.append(("child_rejected", v))
            if j == 0:
                events.append(("test", v))
        if not kids:
            events.append(("test", v))

    visit(0)
    if tree.children[0]:  # the root must end the walk: test it again (with its final state) last
        events.append(("test", 0))
    return events


def _parent_first_rule(tree, tokens, p, q):
    return traversal_rule(tree, tokens, p, q, order=_parent_first_events)


#: block verification whose correction token uses (p_i - q_i)_+ instead of (p_i M_b - M_s)_+ with the path weight
BLOCK_TOKEN_RESIDUAL = SequenceMethod(
    "block_token_residual", IID, partial(block_rule, update=_token_level_update), chains_only=True,
    DESCRIPTION="block verification with the token-level residual (p - q)_+ at the stopping node",
)
#: Traversal Verification with the token-level residual in the node update
TRAVERSAL_TOKEN_RESIDUAL = SequenceMethod(
    "traversal_token_residual", IID, partial(traversal_rule, update=_token_level_update),
    DESCRIPTION="Traversal Verification whose node update keeps the token-level residual (t - q)_+",
)
#: Traversal Verification that tests a parent right after its first child is rejected
TRAVERSAL_PARENT_FIRST = SequenceMethod(
    "traversal_parent_first", IID, _parent_first_rule,
    DESCRIPTION="Traversal Verification testing a node before its later children (wrong order)",
)

#: Traversal Verification fed siblings drawn without replacement (its update assumes i.i.d. siblings)
TRAVERSAL_WOR_SIBLINGS = SequenceMethod(
    "traversal_wor_siblings", WOR, traversal_rule,
    DESCRIPTION="Traversal Verification on a tree whose siblings are drafted without replacement",
)

#: name -> sequence-level mutant
SEQUENCE_MUTANTS: dict[str, SequenceMethod] = {
    m.NAME: m for m in (BLOCK_TOKEN_RESIDUAL, TRAVERSAL_TOKEN_RESIDUAL, TRAVERSAL_PARENT_FIRST, TRAVERSAL_WOR_SIBLINGS)
}
