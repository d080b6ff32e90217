r"""SpecHub (Sun, Zhou, Chen, Sun; EMNLP 2024): hub drafting and its optimal sparse coupling.

Convention: p = target, q = draft, last axis = vocabulary; H = the k-1 most probable draft tokens
(k = 2: the hub a = argmax q), drafts from the hub law (:data:`~spechub_theory.draft_laws.HUB`).
Source: theory.md 3.2-3.4 (k = 2, the authors' 8-step rule) and 3.7 (hub set, k > 2).

The rule, for a tuple whose non-hub draft is i (w = q(. | V minus H), r(i) = q(H) w(i),
p'(i) = (p(i) - q(i))_+):

1. type 1 (x_1 = i outside H, the hubs follow): accept i with probability min(1, p(i)/q(i));
2. type 2 (x_1 in H, i last): accept i with probability min(1, p'(i)/r(i));
3. a rejected type-2 tuple accepts "the hub set" with probability min(1, p(H)/S_2),
   S_2 = sum_i (r(i) - p'(i))_+;
4. a rejected type-1 tuple accepts it with probability min(1, (p(H) - S_2)_+ / S_1),
   S_1 = sum_i (q(i) - p(i))_+;
5. an accepted hub set emits h in H with probability p(h)/p(H), independently of the tuple;
   otherwise the residual is (p'(i) - r(i))_+ on non-hubs and p(h) (p(H) - S_1 - S_2)_+ / p(H) on H.

For k = 2 this is exactly the authors' rule (H = {a}, step 5 is trivial). Losslessness: token i
outside H receives min(p(i), q(i)) + min(p'(i), r(i)) = min(p(i), q(i) + r(i)) from steps 1-2; H
receives min(p(H), S_1 + S_2) from steps 3-4, split in proportion to p, so every token gets at most
its target mass and the residual supplies exactly the rest. Every tuple contains all of H, so the
acceptance min{1, p(H) + sum_i min(p(i), q(i) + r(i))} is the optimum for this draft law (the
min-cut bound with the cut at H; theory.md 3.4-3.5).
"""

from __future__ import annotations

import numpy as np

from ..distributions import check_k, check_pq
from ..draft_laws import HUB, conditional_law, hub_set
from .base import NodeRule, normalise_residual, ratio_accept, take_last

__all__ = ["NAME", "LAW", "FIXED_K", "rule", "rule_from_parts", "acceptance", "rate", "positional", "HubParts"]

NAME = "spechub"
LAW = HUB
FIXED_K = None
#: whether ``rule(...).residual`` depends on the drafts (the residual depends on (p, q, k) only (the hub set is fixed by q)); Monte Carlo uses it
RESIDUAL_DEPENDS_ON_DRAFTS = False


class HubParts:
    """The per-row quantities of the hub-set coupling for (p, q) at k drafts (all O(n)).

    Attributes: ``H`` (..., k-1) hub tokens; ``in_hub`` (..., n) mask; ``r`` second-draft mass
    q(H) w(i) on non-hubs; ``pp`` = (p - q)_+ on non-hubs; ``pH``, ``S1``, ``S2`` (...,).
    """

    def __init__(self, p: np.ndarray, q: np.ndarray, k: int):
        shape = np.broadcast_shapes(p.shape, q.shape)
        p = np.broadcast_to(p, shape)
        q = np.broadcast_to(q, shape)
        self.H = hub_set(q, k - 1)
        self.in_hub = np.zeros(shape, dtype=bool)
        if k > 1:
            np.put_along_axis(self.in_hub, self.H, True, axis=-1)
        qH = np.take_along_axis(q, self.H, axis=-1).sum(axis=-1, keepdims=True)
        w = conditional_law(q, self.H)
        out = ~self.in_hub
        self.r = np.where(out, qH * w, 0.0)
        self.pp = np.where(out, np.maximum(p - q, 0.0), 0.0)
        self.pH = np.where(self.in_hub, p, 0.0).sum(axis=-1)
        self.S1 = np.where(out, np.maximum(q - p, 0.0), 0.0).sum(axis=-1)
        self.S2 = np.maximum(self.r - self.pp, 0.0).sum(axis=-1)
        self.p, self.q = p, q

    def captured_outside(self) -> np.ndarray:
        """Mass captured outside the hub: the sum over non-hubs of min(p(i), q(i) + r(i)), shape (...).

        Returns
        -------
        numpy.ndarray
        """
        return np.where(self.in_hub, 0.0, np.minimum(self.p, self.q + self.r)).sum(axis=-1)

    def hub_share(self) -> np.ndarray:
        """Share p(h)/p(H) of each hub token (0 elsewhere and when p(H) = 0), shape (..., n).

        Returns
        -------
        numpy.ndarray
        """
        pH = self.pH[..., None]
        return np.where(self.in_hub & (pH > 0), self.p / np.where(pH > 0, pH, 1.0), 0.0)


def acceptance(p, q, k: int = 2) -> np.ndarray:
    r"""Exact acceptance of SpecHub (hub-set law for k > 2), optimal for its draft law.

    It is

    .. math:: \alpha = \min\Big\{1,\ p(H) + \sum_{i \notin H} \min\big(p(i), q(i)/(1 - q(H))\big)\Big\}

    with 1 - q(H) computed as the sum of the other entries (and the uniform fallback law when it
    is 0). O(n) per row for k <= 2 (one argmax), O(n log n) for k > 2 (a sort for the hub set).

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.
    k : int, optional
        Drafts per node.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> round(float(acceptance([.3, .3, .4], [.6, .3, .1])), 6)
    0.85
    """
    p, q = check_pq(p, q)
    return rate(p, q, check_k(k, p.shape[-1], distinct=True))


def rate(p, q, k: int = 2) -> np.ndarray:
    """Rate on validated input: :func:`acceptance` without its checks.

    For arrays already validated by :func:`~spechub_theory.distributions.check_pq` and a valid k
    (callers that validate once, like ``acceptance_rates``).

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.
    k : int, optional
        Drafts per node.

    Returns
    -------
    numpy.ndarray
    """
    if k == 2:
        return _acceptance_k2(p, q)
    parts = HubParts(p, q, k)
    return np.minimum(1.0, parts.pH + parts.captured_outside())


def _acceptance_k2(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """k = 2 in three passes over the data (argmax, one min-sum); rows where 1 - q(a) is small are
    recomputed with the exact sum of the others (and the uniform fallback at 0)."""
    shape = np.broadcast_shapes(p.shape, q.shape)
    n = shape[-1]
    p2 = np.broadcast_to(p, shape).reshape(-1, n)
    q2 = np.broadcast_to(q, shape).reshape(-1, n)
    rows = np.arange(len(q2))
    a = np.argmax(q2, axis=-1)
    qa, pa = q2[rows, a], p2[rows, a]
    rest = q2.sum(axis=-1) - qa
    delicate = rest < 1e-3  # cancellation in sum - q(a): use the exact path on these rows
    safe_rest = np.where(delicate, 1.0, rest)[:, None]
    total = np.minimum(p2, q2 / safe_rest).sum(axis=-1) - np.minimum(pa, qa / safe_rest[:, 0])
    alpha = np.minimum(1.0, pa + total)
    if delicate.any():
        parts = HubParts(p2[delicate], q2[delicate], 2)
        alpha[delicate] = np.minimum(1.0, parts.pH + parts.captured_outside())
    return alpha.reshape(shape[:-1])


def positional(p, q, k: int = 2) -> np.ndarray:
    """P(slot j is the accepted draft), shape (..., k); sums to :func:`acceptance`. O(n + k^2).

    k = 2: slot 1 gets sum_{i != a} min(p, q) + min(p(a), S_2); slot 2 the rest (theory.md 3.4).

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.
    k : int, optional
        Drafts per node.

    Returns
    -------
    numpy.ndarray
    """
    p, q = check_pq(p, q)
    k = check_k(k, p.shape[-1], distinct=True)
    hp = HubParts(p, q, k)
    lead = hp.pH.shape
    out = np.zeros(lead + (k,))
    out[..., 0] += np.where(hp.in_hub, 0.0, np.minimum(hp.p, hp.q)).sum(axis=-1)
    if k == 1:
        return out
    out[..., k - 1] += np.minimum(hp.pp, hp.r).sum(axis=-1)
    M2 = np.minimum(hp.pH, hp.S2)  # hub set accepted from rejected type-2 tuples
    M1 = np.minimum(np.maximum(hp.pH - hp.S2, 0.0), hp.S1)  # ... from rejected type-1 tuples
    qh = np.take_along_axis(hp.q, hp.H, axis=-1)
    qH = qh.sum(axis=-1, keepdims=True)
    first = np.where(qH > 0, qh / np.where(qH > 0, qH, 1.0), 0.0)  # type-2 tuple starts with h_m
    share = np.take_along_axis(hp.hub_share(), hp.H, axis=-1)  # hub emitted is h_l
    for m in range(k - 1):
        for l in range(k - 1):
            slot = 0 if l == m else 1 + l - (l > m)
            out[..., slot] += M2 * first[..., m] * share[..., l]
    for l in range(k - 1):
        out[..., 1 + l] += M1 * share[..., l]
    return out


def rule(p, q, drafts) -> NodeRule:
    """Node rule for hub-law tuples of shape (..., k) (module docstring, steps 1-5). O(n) per row.

    Parameters
    ----------
    p, q : array_like, shape (..., n)
        Target and draft laws, last axis = vocabulary.
    drafts : ndarray of int, shape (..., k)

    Returns
    -------
    NodeRule
    """
    p, q = check_pq(p, q)
    drafts = np.asarray(drafts, dtype=np.int64)
    return rule_from_parts(HubParts(p, q, drafts.shape[-1]), drafts)


def rule_from_parts(hp: HubParts, drafts: np.ndarray) -> NodeRule:
    """The node rule of steps 1-5 from precomputed :class:`HubParts`.

    ``rule`` is this on the true parts; :mod:`spechub_theory.montecarlo.mutants` feeds deliberately
    wrong parts.

    Parameters
    ----------
    hp : HubParts
    drafts : numpy.ndarray

    Returns
    -------
    NodeRule
    """
    k = drafts.shape[-1]
    in_hub_d = take_last(hp.in_hub, drafts)  # (..., k)
    type1 = ~in_hub_d[..., 0]
    i = np.where(type1, drafts[..., 0], drafts[..., k - 1])[..., None]
    c_i = np.where(
        type1[..., None],
        ratio_accept(take_last(hp.p, i), take_last(hp.q, i)),
        ratio_accept(take_last(hp.pp, i), take_last(hp.r, i)),
    )[..., 0]
    pH, S1, S2 = hp.pH, hp.S1, hp.S2
    hub_accept = (1.0 - c_i) * np.where(
        type1, ratio_accept(np.maximum(pH - S2, 0.0), S1), ratio_accept(pH, S2)
    )
    accept = np.where(in_hub_d, hub_accept[..., None] * take_last(hp.hub_share(), drafts), 0.0)
    slot_i = np.where(type1, 0, k - 1)[..., None]
    accept = accept + (np.arange(k) == slot_i) * c_i[..., None]
    leftover = np.maximum(pH - S1 - S2, 0.0)[..., None]
    residual_mass = np.where(hp.in_hub, hp.hub_share() * leftover, np.maximum(hp.pp - hp.r, 0.0))
    return NodeRule(accept=accept, residual=normalise_residual(residual_mass, hp.p))
