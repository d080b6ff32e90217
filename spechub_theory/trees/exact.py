r"""Exact tokens per step of tree speculative decoding on finite-state (n-gram) language models.

Convention: p = target, q = draft, last axis = vocabulary; a *model* has ``target`` and ``draft``
tables (C, n) of next-token laws per context and ``next_context`` (C, n) (e.g.
:class:`~spechub_theory.trees.synthetic.SyntheticPair`). Source: theory.md 1.1, 3.4, 4; issue 5.

The dynamic programme. For a node whose subtree has shape s (children shapes s_1..s_k) in context
c, let W_c(j, x) = P(slot j is accepted and its draft is x | c) = sum over draft tuples with x at
slot j of Q(tuple) accept(tuple, j) (the draft law enumerated exactly, :func:`node_outcomes`).
The accepted child's subtree is drafted afresh from context c+x, independently of the other
slots, so with R_s(c, d) = P(the accepted path from this node has >= d drafts):

.. math::
    R_s(c, 0) = 1, \qquad R_s(c, d) = \sum_j \sum_x W_c(j, x)\, R_{s_j}(c + x, d - 1),
    \qquad E_s(c) = \sum_d R_s(c, d),

which is E_s(c) = 1 + sum_{j,x} W_c(j, x) E_{s_j}(c + x): the emitted tokens from the node. The
value depends on (shape, context) only, so it is computed once per subtree class, for all
contexts at once. The same recursion with the rejection law gives the law of the context that
starts the next step (:attr:`TreeExact.step_kernel`); its stationary law is the right weighting
for the long-run tokens per step of a decoding run (renewal-reward), not the stationary law of the
target chain.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..methods import get_method
from .markov import context_kernel, model_tables, stationary_law
from .walk import tree_for_method
from .shapes import Tree
from ..verification import check_method_k

__all__ = [
    "NodeOutcomes",
    "TreeExact",
    "node_outcomes",
    "exact_tree",
    "positional_model",
    "tokens_per_step_table",
]

#: (tuples x vocabulary) entries per rule call when enumerating a draft law (bounds memory ~ 64 MB)
_CHUNK_ENTRIES = 8_000_000


@dataclass(frozen=True)
class NodeOutcomes:
    """Exact outcome law of one verification, per context.

    Attributes
    ----------
    accept : ndarray, shape (C, k, n)
        ``accept[c, j, x]`` = P(slot j is accepted and its draft is x | context c).
    reject : ndarray, shape (C, n)
        ``reject[c, y]`` = P(no draft accepted and the residual emits y | c).
    """

    accept: np.ndarray
    reject: np.ndarray

    @property
    def acceptance(self) -> np.ndarray:
        """P(some draft accepted | c), shape (C,)."""
        return self.accept.sum(axis=(1, 2))

    @property
    def positional(self) -> np.ndarray:
        """P(slot j accepted | c), shape (C, k)."""
        return self.accept.sum(axis=2)

    def output(self) -> np.ndarray:
        """Law of the emitted token per context, (C, n); equals the target for a lossless method.

        Returns
        -------
        numpy.ndarray
        """
        return self.accept.sum(axis=1) + self.reject


def node_outcomes(method, p_rows, q_rows, k: int, *, progress=None) -> NodeOutcomes:
    """Exact per-slot, per-token acceptance of a method at k drafts for each row (context).

    Enumerates the method's draft law per row (O(n^k) tuples for i.i.d. drafts, O(k n) for the
    hub law) and averages its node rule; rows of ``p_rows``/``q_rows`` (C, n) are contexts.
    O(C n^k (k + n)) time for i.i.d. drafts; fine for n <= 50, k <= 3. ``progress(done, total)``,
    if given, is called after each row.

    Parameters
    ----------
    method : str or module
        A node-level method (see :func:`get_method`).
    p_rows, q_rows : array_like
        Target and draft law of each context, shape (C, n).
    k : int
        Number of drafts.
    progress : callable, optional
        Called as ``progress(done, total)`` after each row.

    Returns
    -------
    NodeOutcomes
        Accepted mass per slot and token, and the rejected mass, per context.

    Examples
    --------
    >>> out = node_outcomes("spechub", [[.3, .3, .4]], [[.6, .3, .1]], 2)
    >>> round(float(out.acceptance[0]), 6), bool(np.allclose(out.output(), [[.3, .3, .4]]))
    (0.85, True)
    """
    m = get_method(method)
    p_rows = np.atleast_2d(np.asarray(p_rows, dtype=np.float64))
    q_rows = np.atleast_2d(np.asarray(q_rows, dtype=np.float64))
    C, n = p_rows.shape
    k = check_method_k(m, k, n)
    accept = np.zeros((C, k, n))
    reject = np.zeros((C, n))
    for c in range(C):
        support = m.LAW.enumerate(q_rows[c], k)
        step = max(1, _CHUNK_ENTRIES // max(n * (k + 1), 1))
        for lo in range(0, len(support.mass), step):
            tuples, mass = support.tuples[lo : lo + step], support.mass[lo : lo + step]
            rule = m.rule(p_rows[c], q_rows[c], tuples)
            weighted = mass[:, None] * np.broadcast_to(rule.accept, tuples.shape)
            for j in range(k):
                accept[c, j] += np.bincount(tuples[:, j], weights=weighted[:, j], minlength=n)
            reject[c] += (mass * np.broadcast_to(rule.reject, mass.shape)) @ np.broadcast_to(rule.residual, (len(mass), n))
        if progress is not None:
            progress(c + 1, C)
    return NodeOutcomes(accept=accept, reject=reject)


@dataclass(frozen=True, repr=False)
class TreeExact:
    """Exact tokens-per-step analysis of one (tree, method, model).

    Attributes
    ----------
    tree : Tree
        The tree the method drafts (:func:`~spechub_theory.trees.walk.tree_for_method`).
    method : str
    tokens_per_step : ndarray, shape (C,)
        E[tokens emitted in one step | the step starts in context c] (accepted + 1).
    reach : ndarray, shape (C, depth + 1)
        P(the accepted path has >= d drafts | c); ``tokens_per_step = reach.sum(axis=1)``.
    target_law : ndarray, shape (C,)
        Stationary law of the target chain on contexts.
    step_kernel : ndarray, shape (C, C), or None
        Law of the next step's starting context given this step's (None if not computed).
    step_start_law : ndarray, shape (C,), or None
        Stationary law of ``step_kernel``: how often each context starts a step in a long run.
    """

    tree: Tree
    method: str
    tokens_per_step: np.ndarray
    reach: np.ndarray
    target_law: np.ndarray
    step_kernel: np.ndarray | None = None
    step_start_law: np.ndarray | None = None

    @property
    def long_run(self) -> float:
        """Long-run tokens per step of a decoding run: ``step_start_law @ tokens_per_step``.

        Raises
        ------
        ValueError
            If the step kernel was not computed (call ``exact_tree(..., kernel=True)``).
        """
        if self.step_start_law is None:
            raise ValueError("the step kernel was not computed (call exact_tree(..., kernel=True)).")
        return float(self.step_start_law @ self.tokens_per_step)

    @property
    def target_average(self) -> float:
        """Tokens per step averaged over the target's stationary context law (a step started at a
        typical position of target text rather than at a step boundary)."""
        return float(self.target_law @ self.tokens_per_step)

    def per_level_acceptance(self, weights=None) -> list[float]:
        """P(the accepted path goes one level deeper | it reached depth d), d = 0..depth-1.

        For steps whose start context has law ``weights`` (default: the step-start law if computed,
        else the target law).

        Parameters
        ----------
        weights : array_like, optional

        Returns
        -------
        list[float]
        """
        w = self._weights(weights)
        r = w @ self.reach
        return [float(r[d + 1] / r[d]) if r[d] > 0 else 0.0 for d in range(len(r) - 1)]

    def _weights(self, weights) -> np.ndarray:
        if weights is not None:
            return np.asarray(weights, dtype=np.float64)
        return self.step_start_law if self.step_start_law is not None else self.target_law

    def to_dict(self) -> dict:
        """Summary for JSON (no per-context arrays).

        Returns
        -------
        dict
        """
        out = {
            "method": self.method,
            "tree": self.tree.to_dict(),
            "target_average": self.target_average,
            "min_over_contexts": float(self.tokens_per_step.min()),
            "max_over_contexts": float(self.tokens_per_step.max()),
            "per_level_acceptance": self.per_level_acceptance(),
        }
        if self.step_start_law is not None:
            out["long_run"] = self.long_run
        return out

    def __repr__(self) -> str:
        value = f"long_run={self.long_run:.6f}" if self.step_start_law is not None else f"target_average={self.target_average:.6f}"
        return f"TreeExact(method={self.method!r}, size={self.tree.size}, {value})"


def exact_tree(tree, method, model, *, kernel: bool = True, outcomes: dict | None = None, progress=None) -> TreeExact:
    """Exact expected tokens per step from every context, by the DP of the module docstring.

    Parameters
    ----------
    tree : Tree or str
        A :class:`Tree` or a name for :meth:`Tree.from_name` (``"2^4"``, ``"chain-3"``, ``"2,1,1,2"``).
    method : str
        ``single`` (on the chain of the tree's depth), ``rrs``, ``rrs_wor``, ``kseq`` or ``spechub``.
    model : SyntheticPair or object
        Any object with ``target``, ``draft`` and ``next_context`` (C, n).
    kernel : bool
        Also compute the step-to-step context kernel and its stationary law (O(C^2 n) per
        subtree class), needed for :attr:`TreeExact.long_run`.
    outcomes : dict, optional
        Cache ``{(method, k): NodeOutcomes}`` shared between calls on the same model.
    progress : callable, optional
        ``progress(done, total)`` while the draft laws are enumerated (one call per context).

    Returns
    -------
    TreeExact

    Notes
    -----
    Cost: the draft-law enumerations (:func:`node_outcomes`, once per distinct k), then
    O(classes * k * C n (depth + C)) for the recursion; a complete tree has depth + 1 classes.

    Examples
    --------
    >>> from spechub_theory.trees.synthetic import make_pair
    >>> res = exact_tree("2^3", "spechub", make_pair(10, mismatch=0.8, seed=0))
    >>> res.tree.size, bool(1.0 < res.long_run < 3.0)
    (7, True)
    """
    m = get_method(method)
    tree = tree_for_method(Tree.from_name(tree) if isinstance(tree, str) else tree, m)
    tables = model_tables(model)
    p, q, N = tables.p, tables.q, tables.next_context
    C, n = p.shape
    cache = {} if outcomes is None else outcomes
    classes = tree.subtree_classes
    depth = tree.depth
    reach: list[np.ndarray] = []
    final: list[np.ndarray] = []
    leaf_kernel = context_kernel(N, p)  # a leaf emits one token from p: the target chain's kernel
    for kids in classes.children:
        r = np.zeros((C, depth + 1))
        r[:, 0] = 1.0
        if not kids:
            reach.append(r)
            final.append(leaf_kernel if kernel else None)
            continue
        key = (m.NAME, len(kids))
        if key not in cache:
            cache[key] = node_outcomes(m, p, q, len(kids), progress=progress)
        out = cache[key]
        f = context_kernel(N, out.reject) if kernel else None
        for j, child in enumerate(kids):
            r[:, 1:] += np.einsum("cx,cxd->cd", out.accept[:, j], reach[child][N][:, :, :depth])
            if kernel:
                f += np.einsum("cx,cxd->cd", out.accept[:, j], final[child][N])
        reach.append(r)
        final.append(f)
    root = classes.root
    step_kernel = final[root] if kernel else None
    return TreeExact(
        tree=tree,
        method=m.NAME,
        tokens_per_step=reach[root].sum(axis=1),
        reach=reach[root],
        target_law=stationary_law(leaf_kernel),
        step_kernel=step_kernel,
        step_start_law=stationary_law(step_kernel) if kernel else None,
    )


def positional_model(tree, method, model, *, weights=None, outcomes: dict | None = None) -> float:
    r"""Compute Sequoia's positional model :math:`1 + \sum_{v \ne root} \prod_{e} P_{r(e)}` (theory.md 1.1).

    ``P_r`` = P(slot r is accepted) at the parent's k, averaged over contexts with ``weights``
    (default: the target's stationary law). It treats levels as independent; for a complete
    k-ary tree it equals the i.i.d.-levels formula :math:`\sum_{j=0}^{L} \alpha_k^j`. It differs
    from :func:`exact_tree` because acceptance depends on the context, and the context after an
    accepted draft is not a typical context (the accepted token is drawn from min(p, c q)-like
    mass, and its successor context has its own acceptance).

    Parameters
    ----------
    tree : Tree or str
        The draft tree, or a name for :meth:`Tree.from_name`.
    method : str
        A node-level method name.
    model : SyntheticPair or object
        A finite-state model (see :func:`model_tables`).
    weights : array_like, optional
        Weights of the contexts, shape (C,); default: the target's stationary law.
    outcomes : dict, optional
        Cache ``{(method, k): NodeOutcomes}`` shared between calls on the same model.

    Returns
    -------
    float
        The modelled tokens per step.
    """
    m = get_method(method)
    tree = tree_for_method(Tree.from_name(tree) if isinstance(tree, str) else tree, m)
    tables = model_tables(model)
    p, q, N = tables.p, tables.q, tables.next_context
    w = stationary_law(context_kernel(N, p)) if weights is None else np.asarray(weights, dtype=np.float64)
    cache = {} if outcomes is None else outcomes
    prob = np.ones(tree.size)
    for v in range(1, tree.size):
        u = tree.parents[v]
        key = (m.NAME, len(tree.children[u]))
        if key not in cache:
            cache[key] = node_outcomes(m, p, q, key[1])
        prob[v] = prob[u] * float(w @ cache[key].positional[:, tree.slot[v]])
    return float(prob.sum())


def tokens_per_step_table(pair, trees=("2^2", "2^3", "2^4", "2^5", "3^2", "3^3", "3^4"), methods=("rrs", "rrs_wor", "kseq", "spechub")) -> dict:
    """Exact tokens per step versus tree size for several methods (for tables and figures).

    Parameters
    ----------
    pair : SyntheticPair (or any model accepted by :func:`exact_tree`)
    trees : sequence of str or Tree
        Tree names (3 to 40 nodes by default: 2^2..2^5 and 3^2..3^4).
    methods : sequence of str

    Returns
    -------
    dict with ``trees`` (names), ``nodes`` (sizes incl. root), ``depth``, and ``methods``:
    ``{method: {"long_run": [...], "target_average": [...], "positional_model": [...]}}`` in the
    order of ``trees``; ``long_run`` is the exact tokens per step of a long decoding run.

    Examples
    --------
    >>> from spechub_theory.trees.synthetic import make_pair
    >>> t = tokens_per_step_table(make_pair(8, mismatch=1.0), ["2^2", "2^3"], ["rrs", "spechub"])
    >>> t["nodes"], len(t["methods"]["spechub"]["long_run"])
    ([3, 7], 2)
    """
    tree_objs = [Tree.from_name(t) if isinstance(t, str) else t for t in trees]
    cache: dict = {}
    table: dict = {
        "trees": [t if isinstance(t, str) else repr(t) for t in trees],
        "nodes": [t.size for t in tree_objs],
        "depth": [t.depth for t in tree_objs],
        "convention": "tokens per step = accepted drafts + 1 (bonus or residual token), per target forward",
        "methods": {},
    }
    for name in methods:
        rows = {"long_run": [], "target_average": [], "positional_model": []}
        for t in tree_objs:
            res = exact_tree(t, name, pair, outcomes=cache)
            rows["long_run"].append(res.long_run)
            rows["target_average"].append(res.target_average)
            rows["positional_model"].append(positional_model(t, name, pair, weights=res.target_law, outcomes=cache))
        table["methods"][get_method(name).NAME] = rows
    return table
