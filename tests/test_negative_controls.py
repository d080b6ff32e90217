"""Deliberately wrong verifiers are caught by the exact-law test (the test has teeth)."""

import numpy as np

from spechub_theory.draft_laws import HUB, IID, WOR, conditional_law
from spechub_theory.methods import rrs_wor, spechub
from spechub_theory.methods.base import NodeRule, law_from_rule, normalise_residual, slots_from_sequential, take_last
from spechub_theory.methods.single import ratio_accept

P = np.array([0.1, 0.2, 0.3, 0.4])
Q = np.array([0.4, 0.3, 0.2, 0.1])


def _error(law, rule_fn, k=2):
    support = law.enumerate(Q, k)
    exact = law_from_rule(rule_fn(P, Q, support.tuples), support.tuples, support.mass, len(P))
    return exact.max_error(P)


def test_rrs_wor_without_renormalising_q_is_caught():
    def wrong(p, q, drafts):  # q_j = q with drafted tokens zeroed but NOT renormalised
        target, cond = np.broadcast_to(p, drafts.shape[:-1] + p.shape), []
        for j in range(drafts.shape[-1]):
            qj = np.broadcast_to(q, target.shape).copy()
            if j:
                np.put_along_axis(qj, drafts[..., :j], 0.0, axis=-1)
            x = drafts[..., j : j + 1]
            cond.append(ratio_accept(take_last(target, x), take_last(qj, x)))
            target = normalise_residual(target - qj, target)
        return NodeRule(slots_from_sequential(np.concatenate(cond, -1)), target)

    assert _error(WOR, rrs_wor.rule) <= 1e-12
    assert _error(WOR, wrong) > 1e-3


def test_spechub_with_wrong_second_draft_mass_is_caught():
    def wrong(p, q, drafts):  # Q(a, i) taken as q(i) instead of q(a) q(i) / (1 - q(a))
        right = spechub.rule(p, q, drafts)
        a = int(np.argmax(q))
        type2 = drafts[:, 0] == a
        i = drafts[:, 1]
        pp = np.maximum(p - q, 0)
        accept = right.accept.copy()
        accept[type2, 1] = ratio_accept(pp[i[type2]], q[i[type2]])
        return NodeRule(accept, right.residual)

    assert _error(HUB, spechub.rule) <= 1e-12
    assert _error(HUB, wrong) > 1e-3


def test_residual_not_recursed_is_caught():
    def wrong(p, q, drafts):  # RRS that samples every stage against the original p (no recursion)
        cond = ratio_accept(take_last(p, drafts), take_last(q, drafts))
        return NodeRule(slots_from_sequential(cond), normalise_residual(p - q, p))

    assert _error(IID, wrong) > 1e-3


def test_conditional_law_renormalises_by_the_remaining_sum():
    w = conditional_law(Q, np.array([0]))
    assert np.abs(w - [0.0, 0.5, 1 / 3, 1 / 6]).max() <= 1e-15
