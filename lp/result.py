r"""Result objects of the optimal-transport LP: the optimum, its transport plan and a min-cut certificate.

Convention: p = target, q = draft; a plan is a coupling :math:`\pi(\bar x, y)` of the draft law Q
(rows = the tuples of a :class:`~spechub_theory.draft_laws.DraftSupport`) and p (columns = tokens).
Source: theory.md 2.1 (the LP), 2.3 (the min-cut dual), 3.4 (the hub plan).

A plan is a verifier: given the drafts ``support.tuples[i]``, emit y with probability
``plan[i, y] / support.mass[i]``; its acceptance is the plan mass on pairs with y in the draft set.
Every result carries a certificate, a token set A with
:math:`\alpha^* \le p(A) + Q(S(\bar x) \not\subseteq A)`, so ``check`` proves optimality (weak
duality) instead of trusting the solver.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from spechub_theory.draft_laws import DraftSupport

#: a certificate within this of the plan's acceptance makes the result "optimal"
GAP_TOL = 1e-9

__all__ = ["GAP_TOL", "SolverError", "MinCut", "OptimumResult", "membership", "cut_value", "cut_from_orders", "complete_plan"]


class SolverError(RuntimeError):
    """An LP solve failed, or a result failed :meth:`OptimumResult.check`.

    Attributes: ``status`` (solver status code or name) and ``message`` (the solver's words).
    """

    def __init__(self, status, message: str):
        super().__init__(f"LP solver failed (status {status}): {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True)
class MinCut:
    r"""A token set A of the min-cut dual (theory.md 2.3): :math:`\alpha^* \le p(A) + Q(S \not\subseteq A)`.

    Attributes
    ----------
    tokens : ndarray of int64
        The set A, sorted.
    p_mass : float
        :math:`p(A)`.
    uncovered : float
        :math:`Q(S(\bar x) \not\subseteq A) = 1 - Q(S \subseteq A)`, summed directly (no cancellation).
    """

    tokens: np.ndarray
    p_mass: float
    uncovered: float

    @property
    def value(self) -> float:
        """The bound :math:`p(A) + 1 - Q(S \\subseteq A)`."""
        return float(self.p_mass + self.uncovered)

    def __repr__(self) -> str:
        return f"MinCut(A={self.tokens.tolist()}, value={self.value:.9g})"

    def to_dict(self) -> dict:
        """JSON-ready dict ``{"tokens", "p_mass", "uncovered", "value"}``.

        Returns
        -------
        dict
        """
        return {"tokens": self.tokens.tolist(), "p_mass": self.p_mass, "uncovered": self.uncovered, "value": self.value}


@dataclass(frozen=True)
class OptimumResult:
    """The optimal acceptance of a draft law, with the transport plan that attains it.

    Attributes
    ----------
    value : float
        Acceptance of ``plan`` (plan mass on y in the draft set); optimal up to ``gap``.
    plan : scipy.sparse.csr_array, shape (m, n)
        ``plan[i, y]`` = :math:`\\pi(\\text{support.tuples}[i], y)`; rows sum to ``support.mass``,
        columns to ``p``.
    draft_law : str
        "iid", "wor", "hub" or "custom" (a user-given support).
    solver : str
        "highs" (reduced LP), "cvxpy:<SOLVER>" (textbook LP) or "closed-form".
    status : str
        "optimal" when the certificate closes the gap to within 1e-9.
    certificate : MinCut
        Upper bound on the optimum; ``certificate.value - value`` is the duality gap.
    support, p :
        The draft law's enumeration and the target (for :meth:`check`; not in the repr).
    """

    value: float
    plan: sp.csr_array = field(repr=False)
    draft_law: str
    solver: str
    status: str
    certificate: MinCut
    support: DraftSupport = field(repr=False)
    p: np.ndarray = field(repr=False)

    @classmethod
    def from_plan(cls, plan, support, p, certificate: MinCut, draft_law: str, solver: str) -> "OptimumResult":
        """Build a result whose ``value`` is the acceptance of ``plan``.

        Its status is "optimal" when the certificate is within GAP_TOL of it.

        Parameters
        ----------
        plan : scipy.sparse.csr_array, shape (m, n)
        support : DraftSupport
        p : numpy.ndarray, shape (n,)
        certificate : MinCut
        draft_law : str
        solver : str

        Returns
        -------
        OptimumResult
        """
        value = float(_accepted(plan, support.tuples).sum())
        gap = certificate.value - value
        status = "optimal" if gap <= GAP_TOL else f"gap {gap:.3g}"
        return cls(value, plan, draft_law, solver, status, certificate, support, p)

    @property
    def gap(self) -> float:
        """Duality gap ``certificate.value - value`` (>= 0 up to round-off)."""
        return self.certificate.value - self.value

    def accepted_mass(self) -> np.ndarray:
        """Plan mass on accepted pairs per tuple, shape (m,); sums to ``value``.

        Returns
        -------
        numpy.ndarray
        """
        return _accepted(self.plan, self.support.tuples)

    def conditional(self, i: int) -> np.ndarray:
        """The verifier's output law given drafts ``support.tuples[i]``: plan row i / Q(tuple i).

        Parameters
        ----------
        i : int

        Returns
        -------
        numpy.ndarray
        """
        row = np.asarray(self.plan[[i], :].todense()).ravel()
        return row / self.support.mass[i]

    def sample(self, size: int, *, rng=None) -> dict:
        """Draw (tuple index, output token) pairs from the plan; returns ``{"tuple", "token"}`` arrays.

        Parameters
        ----------
        size : int
        rng : numpy.random.Generator, int or None, optional
            Random source: a Generator or a seed.

        Returns
        -------
        dict
        """
        rng = np.random.default_rng(rng)
        coo = self.plan.tocoo()
        cdf = np.cumsum(coo.data)
        pick = np.minimum(np.searchsorted(cdf, rng.random(size) * cdf[-1], side="right"), len(cdf) - 1)
        return {"tuple": coo.row[pick].astype(np.int64), "token": coo.col[pick].astype(np.int64)}

    def check(self, atol: float = 1e-9) -> "OptimumResult":
        """Re-verify the plan and raise :class:`SolverError` on any mismatch beyond ``atol``.

        Checks: entries >= 0; row sums = Q; column sums = p; plan acceptance = ``value``; the
        certificate is recomputed from scratch and its bound is within ``atol`` of ``value``
        (so ``value`` is optimal: a feasible plan below a cut bound). Returns ``self``.

        Parameters
        ----------
        atol : float, optional

        Returns
        -------
        OptimumResult

        Raises
        ------
        SolverError
            If the recomputed marginals or objective differ by more than ``atol``.
        """
        plan = self.plan
        checks = {
            "negative plan entry": -min(float(plan.data.min(initial=0.0)), 0.0),
            "row sums != Q": float(np.abs(np.asarray(plan.sum(axis=1)).ravel() - self.support.mass).max(initial=0.0)),
            "column sums != p": float(np.abs(np.asarray(plan.sum(axis=0)).ravel() - self.p).max(initial=0.0)),
            "plan acceptance != value": abs(float(self.accepted_mass().sum()) - self.value),
        }
        cut = cut_value(self.support, self.p, self.certificate.tokens)
        checks["certificate value mismatch"] = abs(cut.value - self.certificate.value)
        checks["duality gap"] = abs(cut.value - self.value)
        for what, err in checks.items():
            if not err <= atol:
                raise SolverError("check failed", f"{what}: error {err:.3g} > atol {atol:g} ({self.solver}).")
        return self

    def entries(self) -> dict:
        """The plan as columns ``{"tuple", "drafts", "token", "mass", "accepted"}`` (one per nonzero).

        Returns
        -------
        dict
        """
        coo = self.plan.tocoo()
        order = np.lexsort((coo.col, coo.row))
        row, col, data = coo.row[order], coo.col[order], coo.data[order]
        return {
            "tuple": row.astype(np.int64),
            "drafts": self.support.tuples[row],
            "token": col.astype(np.int64),
            "mass": data,
            "accepted": membership(self.support.tuples, row, col),
        }

    def to_dict(self, plan: bool = False) -> dict:
        """JSON-ready dict; with ``plan=True`` the nonzero entries are included as a list of rows.

        Parameters
        ----------
        plan : bool, optional

        Returns
        -------
        dict
        """
        out = {
            "value": self.value,
            "draft_law": self.draft_law,
            "solver": self.solver,
            "status": self.status,
            "gap": self.gap,
            "certificate": self.certificate.to_dict(),
            "n": int(len(self.p)),
            "k": int(self.support.tuples.shape[1]),
            "support_size": int(len(self.support.mass)),
            "plan_nonzeros": int(self.plan.nnz),
        }
        if plan:
            e = self.entries()
            out["plan"] = [
                {"drafts": d.tolist(), "token": int(t), "mass": float(m), "accepted": bool(a)}
                for d, t, m, a in zip(e["drafts"], e["token"], e["mass"], e["accepted"])
            ]
        return out


def membership(tuples: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Boolean array: is token ``cols[e]`` among the drafts ``tuples[rows[e]]``. O(k) per entry.

    Parameters
    ----------
    tuples : numpy.ndarray
        Draft tuples, int64 of shape (m, k).
    rows : numpy.ndarray
        Tuple index of each entry e.
    cols : numpy.ndarray
        Token of each entry e, same length as ``rows``.

    Returns
    -------
    numpy.ndarray
        Boolean, one value per entry.
    """
    return (tuples[rows] == np.asarray(cols)[:, None]).any(axis=1)


def _accepted(plan, tuples: np.ndarray) -> np.ndarray:
    """Plan mass on pairs (tuple, y) with y among the tuple's drafts, per tuple."""
    coo = plan.tocoo()
    hit = membership(tuples, coo.row, coo.col)
    return np.bincount(coo.row[hit], coo.data[hit], minlength=len(tuples))


def cut_value(support: DraftSupport, p: np.ndarray, tokens) -> MinCut:
    """The min-cut bound of one token set A: :math:`p(A) + Q(S \\not\\subseteq A)`. O(m k + n).

    Parameters
    ----------
    support : DraftSupport
        The draft law enumerated: ``tuples`` (m, k) and their ``mass`` (m,).
    p : numpy.ndarray
        Target law, float64 of shape (n,).
    tokens : array_like of int
        The tokens of A (duplicates are merged).

    Returns
    -------
    MinCut
        The set A, ``p(A)`` and the mass of the tuples not inside A.
    """
    tokens = np.unique(np.asarray(tokens, dtype=np.int64))
    inside = np.zeros(len(p), dtype=bool)
    inside[tokens] = True
    covered = inside[support.tuples].all(axis=1)
    return MinCut(tokens, float(p[inside].sum()), float(support.mass[~covered].sum()))


def cut_from_orders(support: DraftSupport, p: np.ndarray, orders) -> MinCut:
    r"""Best prefix cut over several token orders: A = the first L tokens of an order, L = 0..n.

    For each order, a tuple is inside the prefix of length L iff the largest rank of its drafts is
    below L, so all n + 1 prefixes cost one ``bincount`` and two cumulative sums: O(m k + n) per
    order. With the order of an optimal dual ``v`` (descending), threshold rounding makes some
    prefix optimal (the average of the prefix bounds over thresholds is the dual objective).

    Parameters
    ----------
    support : DraftSupport
        The draft law enumerated: ``tuples`` (m, k) and their ``mass`` (m,).
    p : numpy.ndarray
        Target law, float64 of shape (n,).
    orders : iterable of array_like
        Token orders, each a permutation of 0..n-1.

    Returns
    -------
    MinCut
        The prefix with the smallest bound over all orders and lengths.
    """
    n = len(p)
    best = None
    for order in orders:
        order = np.asarray(order, dtype=np.int64)
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        first_prefix = rank[support.tuples].max(axis=1) + 1  # the tuple is covered from L = this on
        by_len = np.bincount(first_prefix, support.mass, minlength=n + 1)
        uncovered = np.concatenate([np.cumsum(by_len[::-1])[::-1][1:], [0.0]])  # Q(first_prefix > L)
        p_prefix = np.concatenate([[0.0], np.cumsum(p[order])])
        values = p_prefix + uncovered
        L = int(np.argmin(values))
        if best is None or values[L] < best[0]:
            best = (values[L], order[:L])
    return cut_value(support, p, best[1])


def complete_plan(support: DraftSupport, p: np.ndarray, rows, cols, flow) -> sp.csr_array:
    """Turn an accepted flow f(tuple, y), y in S(tuple), into a full coupling of (Q, p).

    The flow is clipped to >= 0 and scaled down where a row or column overshoots its marginal
    (solver tolerance); the leftover row masses Q - f and column masses p - f are then coupled by
    the north-west corner rule (at most m + n - 1 entries, O((m + n) log(m + n))). At an optimum
    no leftover row meets a leftover token of its own draft set (that would be an augmenting path),
    so the completion adds no acceptance beyond round-off.

    Parameters
    ----------
    support : DraftSupport
        The draft law enumerated: ``tuples`` (m, k) and their ``mass`` (m,).
    p : numpy.ndarray
        Target law, float64 of shape (n,).
    rows, cols : array_like of int
        Tuple index and token of each flow entry.
    flow : array_like of float
        The accepted flow on each entry (solver output).

    Returns
    -------
    scipy.sparse.csr_array
        The coupling, shape (m, n), rows summing to ``support.mass`` and columns to ``p``.
    """
    m, n = len(support.mass), len(p)
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    flow = np.maximum(np.asarray(flow, dtype=np.float64), 0.0)
    for idx, cap, size in ((rows, support.mass, m), (cols, p, n)):
        total = np.bincount(idx, flow, minlength=size)
        scale = np.where(total > cap, cap / np.where(total > 0, total, 1.0), 1.0)
        flow = flow * scale[idx]
    row_left = np.maximum(support.mass - np.bincount(rows, flow, minlength=m), 0.0)
    col_left = np.maximum(p - np.bincount(cols, flow, minlength=n), 0.0)
    r2, c2, f2 = _north_west_corner(row_left, col_left)
    plan = sp.coo_array(
        (np.concatenate([flow, f2]), (np.concatenate([rows, r2]), np.concatenate([cols, c2]))), shape=(m, n)
    ).tocsr()
    plan.sum_duplicates()
    plan.eliminate_zeros()
    return plan


def _north_west_corner(a: np.ndarray, b: np.ndarray):
    """North-west corner coupling of two nonnegative vectors of (nearly) equal totals.

    Returns (rows, cols, mass) with at most len(a) + len(b) - 1 entries; row sums = a and column
    sums = b up to the difference of the totals (round-off), which is dropped from the last cell.
    """
    ca, cb = np.cumsum(a), np.cumsum(b)
    total = min(ca[-1] if len(ca) else 0.0, cb[-1] if len(cb) else 0.0)
    cuts = np.unique(np.concatenate([[0.0], ca[ca < total], cb[cb < total], [total]]))
    seg = np.diff(cuts)
    mid = cuts[:-1] + seg / 2
    keep = seg > 0
    i = np.minimum(np.searchsorted(ca, mid[keep], side="right"), len(a) - 1)
    j = np.minimum(np.searchsorted(cb, mid[keep], side="right"), len(b) - 1)
    return i, j, seg[keep]
