r"""Deliberately wrong verifiers (negative controls) for testing statistical lossless tests.

Convention: p = target, q = draft, last axis = vocabulary; each mutant looks like a method module
(``NAME``, ``LAW``, ``FIXED_K``, ``rule``) and is callable as ``mutant(p, q, drafts, u)``, like
:func:`spechub_theory.verification.verify`. Source: theory.md 3.3-3.4, 4.2-4.3; seed-notes 1.5.

Each mutant is a plausible implementation bug; its exact output law (by enumeration,
``output_law(mutant, p, q, k)``) differs from p on the documented cases, so a lossless test that
passes them has no power. Use them in your own test suite::

    for mutant in MUTANTS.values():
        with pytest.raises(AssertionError):
            assert_lossless(mutant, p, q, k=2, tv=mutant_tv / 2)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..distributions import check_pq
from ..draft_laws import HUB, IID, WOR, DraftLaw
from ..methods import spechub
from ..methods.base import NodeRule, Verification, normalise_residual, recursive_rule, residual_update

__all__ = ["Mutant", "MUTANTS", "RRS_WOR_NO_RENORM", "SPECHUB_WRONG_Q", "RRS_STALE_RESIDUAL", "RRS_SKIP_DUPLICATES"]


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

        return verify(self, p, q, drafts, u)

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

#: name -> mutant
MUTANTS: dict[str, Mutant] = {
    m.NAME: m for m in (RRS_WOR_NO_RENORM, SPECHUB_WRONG_Q, RRS_STALE_RESIDUAL, RRS_SKIP_DUPLICATES)
}
