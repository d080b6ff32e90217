r"""Deliberately wrong verifiers (negative controls) for testing statistical lossless tests.

Convention: p = target, q = draft, last axis = vocabulary; each mutant looks like a method module
(``NAME``, ``LAW``, ``FIXED_K``, ``rule``) and is callable as ``mutant(p, q, drafts, u)``, like
:func:`spechub_theory.verification.verify`. Source: theory.md 3.3-3.4, 4.2-4.3; seed-notes 1.5.

Each mutant is a plausible implementation bug; its exact output law (by enumeration,
``output_law(p, q, k, method=mutant)``) differs from p on the documented cases, so a lossless test that
passes them has no power. Use them in your own test suite::

    for mutant in MUTANTS.values():
        with pytest.raises(AssertionError):
            assert_lossless(mutant, p, q, k=2, tv=mutant_tv / 2)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..distributions import check_pq
from ..draft_laws import HUB, IID, WOR, DraftLaw, conditional_law
from ..methods import optimal, spechub
from ..methods.optimal_plan import range_max_table
from ..methods.base import (NodeRule, Verification, normalise_residual, ratio_accept, recursive_rule, residual_update,
                            slots_from_sequential, take_last)

__all__ = ["Mutant", "MUTANTS", "RRS_WOR_NO_RENORM", "SPECHUB_WRONG_Q", "RRS_STALE_RESIDUAL", "RRS_SKIP_DUPLICATES",
           "OPTIMAL_NO_PRIORITY", "OPTIMAL_UNIFORM_PICK", "OPTIMAL_WRONG_LEVEL"]


@dataclass(frozen=True)
class Mutant:
    """A broken verifier with the interface of a method module.

    Attributes
    ----------
    NAME : str
    LAW : DraftLaw
        The (correct) draft law it is fed.
    rule : callable
        ``rule(p, q, drafts) -> NodeRule``, the wrong node rule.
    DESCRIPTION : str
        The bug, in one sentence.
    """

    NAME: str
    LAW: DraftLaw
    rule: Callable
    DESCRIPTION: str
    FIXED_K = None
    #: every mutant's residual may depend on the drafts (Monte Carlo groups by draft tuple)
    RESIDUAL_DEPENDS_ON_DRAFTS = True

    def __call__(self, p, q, drafts, u) -> Verification:
        """Verify like :func:`spechub_theory.verification.verify` (same uniforms convention)."""
        from ..verification import verify

        return verify(p, q, drafts, u, method=self)

    def __repr__(self) -> str:
        return f"<mutant {self.NAME!r}: {self.DESCRIPTION}>"


def _zeroed(q, excluded):
    """q with the excluded tokens set to 0 and *not* renormalised (the bug)."""
    w = np.array(np.broadcast_to(q, excluded.shape[:-1] + q.shape[-1:]))
    if excluded.shape[-1]:
        np.put_along_axis(w, excluded, 0.0, axis=-1)
    return w


def _same_q(q, excluded):
    return np.broadcast_to(q, excluded.shape[:-1] + q.shape[-1:])


def _no_renorm_rule(p, q, drafts) -> NodeRule:
    return recursive_rule(p, q, drafts, stage_law=_zeroed, update=residual_update)


def _stale_rule(p, q, drafts) -> NodeRule:
    p, q = check_pq(p, q)
    first = normalise_residual(p - q, p)  # (p - q)_+ / TV of the original p and q, at every stage
    return recursive_rule(p, q, drafts, stage_law=_same_q, update=lambda target, qj: np.broadcast_to(first, target.shape))


def _skip_duplicates_rule(p, q, drafts) -> NodeRule:
    return recursive_rule(p, q, drafts, stage_law=_same_q, update=residual_update, skip_duplicates=True)


def _wrong_hub_rule(p, q, drafts) -> NodeRule:
    p, q = check_pq(p, q)
    drafts = np.asarray(drafts, dtype=np.int64)
    hp = spechub.HubParts(p, q, drafts.shape[-1])
    hp.r = np.where(hp.in_hub, 0.0, hp.q)  # believes Q(a, i) = q(i), not q(a) q(i) / (1 - q(a))
    hp.S2 = np.maximum(hp.r - hp.pp, 0.0).sum(axis=-1)
    return spechub.rule_from_parts(hp, drafts)


#: RRS without replacement that zeroes rejected drafts in q but forgets to renormalise it
RRS_WOR_NO_RENORM = Mutant(
    "rrs_wor_no_renorm", WOR, _no_renorm_rule,
    "RRS w/o replacement; q_j = q with earlier drafts zeroed but not renormalised",
)
#: SpecHub whose second-draft test uses q(i) instead of Q(a, i) = q(a) q(i) / (1 - q(a))
SPECHUB_WRONG_Q = Mutant(
    "spechub_wrong_q", HUB, _wrong_hub_rule,
    "SpecHub with Q(a, i) = q(i) in the second-draft test and in S_2",
)
#: RRS that forgets the recursion: after any rejection the target is (p - q)_+ / TV of the original p
RRS_STALE_RESIDUAL = Mutant(
    "rrs_stale_residual", IID, _stale_rule,
    "RRS whose every stage (and residual) uses (p - q)_+ / TV of the original p, not p_j",
)
#: RRS that skips a duplicated draft without applying its residual update (EAGLE, seed-notes 1.5.6)
RRS_SKIP_DUPLICATES = Mutant(
    "rrs_skip_duplicates", IID, _skip_duplicates_rule,
    "RRS with replacement that skips duplicate drafts without the residual update (EAGLE)",
)



def _optimal_rule(p, q, drafts, *, select=None, edit=None) -> NodeRule:
    """The optimal verifier's rule on one pair with its plan changed by ``edit(plan)`` and/or its
    selection replaced by ``select(plan, drafts)``."""
    p, q = check_pq(p, q)
    drafts = np.asarray(drafts, dtype=np.int64)
    plan = optimal.plan(p, q, drafts.shape[-1])
    chosen = (select or optimal.selection_probabilities)(plan, drafts)
    plan = edit(plan, p, q) if edit else plan
    return NodeRule(accept=chosen * plan.accept_ratio[drafts], residual=plan.residual)


def _without_priority(plan):
    """The B | C gap made an ordinary gap at level 0, and one region: C no longer beats B."""
    levels = plan.gap_levels.copy()
    if 0 < plan.m < len(plan.order):
        levels[plan.m - 1] = 0.0
    return dataclasses.replace(plan, m=0, gap_levels=levels, _table=range_max_table(levels))


def _uniform_pick(plan, drafts):
    return np.full(np.shape(drafts), 1.0 / np.shape(drafts)[-1])


def _wrong_mu(plan, p, q):
    """q~ on B taken as max(p, 0.8 mu q) in the accept/resample step (the selection is right)."""
    q_tilde = plan.q_tilde.copy()
    lower = plan.order[: plan.m]
    q_tilde[lower] = np.maximum(p[lower], 0.8 * plan.mu * q[lower])
    ratio = np.where(q_tilde > 0, np.minimum(1.0, p / np.where(q_tilde > 0, q_tilde, 1.0)), 0.0)
    return dataclasses.replace(plan, accept_ratio=ratio, residual=normalise_residual(p - q_tilde, p))


#: the optimal verifier whose selection ignores the priority of the upper region C over B
OPTIMAL_NO_PRIORITY = Mutant(
    "optimal_no_priority", IID, lambda p, q, d: _optimal_rule(p, q, d, select=lambda pl, x: optimal.selection_probabilities(_without_priority(pl), x)),
    "optimal verifier whose B | C gap merges like any other (no priority of the upper region)",
)
#: the optimal verifier that picks a draft uniformly instead of by the block chain
OPTIMAL_UNIFORM_PICK = Mutant(
    "optimal_uniform_pick", IID, lambda p, q, d: _optimal_rule(p, q, d, select=_uniform_pick),
    "optimal verifier that selects a draft uniformly at random instead of by blocks",
)
#: the optimal verifier with the lower water level mu 20% too low in the accept/resample step
OPTIMAL_WRONG_LEVEL = Mutant(
    "optimal_wrong_level", IID, lambda p, q, d: _optimal_rule(p, q, d, edit=_wrong_mu),
    "optimal verifier that accepts against max(p, 0.8 mu q) on B (one water level wrong)",
)

#: name -> mutant
MUTANTS: dict[str, Mutant] = {
    m.NAME: m for m in (RRS_WOR_NO_RENORM, SPECHUB_WRONG_Q, RRS_STALE_RESIDUAL, RRS_SKIP_DUPLICATES,
                        OPTIMAL_NO_PRIORITY, OPTIMAL_UNIFORM_PICK, OPTIMAL_WRONG_LEVEL)
}
