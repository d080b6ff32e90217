"""Deliberately wrong verifiers are caught by the exact-law test (the test has teeth).

The mutants come from :mod:`spechub_theory.montecarlo.mutants`; the one written here (every stage
tested against the original p) is not among them.
"""

import numpy as np

import reference
from spechub_theory.draft_laws import HUB, IID, WOR, conditional_law
from spechub_theory.methods import rrs_wor, spechub
from spechub_theory.methods.base import NodeRule, law_from_rule, normalise_residual, slots_from_sequential, take_last
from spechub_theory.methods.base import ratio_accept
from spechub_theory.montecarlo.mutants import RRS_WOR_NO_RENORM, SPECHUB_WRONG_Q

P = np.array([0.1, 0.2, 0.3, 0.4])
Q = np.array([0.4, 0.3, 0.2, 0.1])


def _error(law, rule_fn, k=2):
    support = law.enumerate(Q, k)
    exact = law_from_rule(rule_fn(P, Q, support.tuples), support.tuples, support.mass, len(P))
    # the same law by the library-independent brute force (tests/reference.py)
    output, _, _ = reference.exact_law(lambda p, q, d: _accept_residual(rule_fn(p, q, d)), P, Q, k, law.name)
    assert np.abs(output - exact.output).max() <= 1e-12
    return exact.max_error(P)


def _accept_residual(rule: NodeRule):
    return rule.accept, rule.residual


def test_rrs_wor_without_renormalising_q_is_caught():
    # q_j = q with drafted tokens zeroed but NOT renormalised (spechub_theory.montecarlo.mutants)
    assert _error(WOR, rrs_wor.rule) <= 1e-12
    assert _error(WOR, RRS_WOR_NO_RENORM.rule) > 1e-3


def test_spechub_with_wrong_second_draft_mass_is_caught():
    # Q(a, i) taken as q(i) instead of q(a) q(i) / (1 - q(a)) (spechub_theory.montecarlo.mutants)
    assert _error(HUB, spechub.rule) <= 1e-12
    assert _error(HUB, SPECHUB_WRONG_Q.rule) > 1e-3


def test_residual_not_recursed_is_caught():
    def wrong(p, q, drafts):  # RRS that samples every stage against the original p (no recursion)
        cond = ratio_accept(take_last(p, drafts), take_last(q, drafts))
        return NodeRule(slots_from_sequential(cond), normalise_residual(p - q, p))

    assert _error(IID, wrong) > 1e-3


def test_conditional_law_renormalises_by_the_remaining_sum():
    w = conditional_law(Q, np.array([0]))
    assert np.abs(w - [0.0, 0.5, 1 / 3, 1 / 6]).max() <= 1e-15
