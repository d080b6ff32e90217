r"""Brute-force reference oracles, written from the definitions and independent of the library.

Convention: p = target, q = draft, tokens 0..n-1; a draft tuple is an ordered k-tuple.
Source: theory.md 1 (draft laws), 1.1 (tokens per step), 2.1 (the OT LP), 2.2/2.3 (min-cut),
3.2/3.7 (hub law); block verification: Sun et al., ICLR 2025, arXiv 2403.10444, Algorithm 2;
Traversal Verification: Weng, Hu et al., NeurIPS 2025, arXiv 2505.12398, Sec. 3.

Imports numpy, scipy and itertools only (never ``spechub_theory`` or ``lp``): every quantity is
recomputed by plain enumeration, one tuple or one subset at a time, so a fast path and its check
share no code. Small n, k only (n^k tuples, 2^n subsets, n^{k+1} LP variables).

Tree level (:func:`tree_step_law`, :func:`tree_sequence_law`): every drafted tree is enumerated
node by node from the draft law at each node's context, and the verifier's uniforms are
integrated exactly: a node-level walk branches on each slot's acceptance probability; block
verification enumerates all 2^L outcomes of its L independent tests; Traversal Verification is
run literally (find the first leaf, test it, delete it, update its parent, recompute the ratios
below the parent) while the probability of having rejected everything so far is carried along.
Trees are given by their ``children`` lists (node 0 the root, children in slot order).

Degenerate-case conventions (theory.md 1 and the draft-law docstring, restated here on purpose):
"q conditioned on the tokens still allowed" is q restricted to them and divided by its restricted
sum; if that sum is 0 the draw is uniform on the allowed tokens. The hub set is the k-1 largest
entries of q, ties to the lowest index.
"""

from __future__ import annotations

from itertools import combinations, permutations, product

import numpy as np
from scipy.optimize import linprog

__all__ = ["LAWS", "draft_law", "exact_law", "lp_optimum", "min_cut", "tree_step_law",
           "tree_accepted_law", "tree_sequence_law", "target_sequence_law"]

LAWS = ("iid", "wor", "hub")


def _conditional(q, excluded):
    """q(. | V minus excluded) as a list: restricted and renormalised, uniform if no mass is left."""
    allowed = [x for x in range(len(q)) if x not in set(excluded)]
    total = sum(float(q[x]) for x in allowed)
    out = [0.0] * len(q)
    for x in allowed:
        out[x] = float(q[x]) / total if total > 0 else 1.0 / len(allowed)
    return out


def _hub_set(q, size):
    """The ``size`` largest entries of q, descending, ties to the lowest index."""
    return sorted(range(len(q)), key=lambda x: (-float(q[x]), x))[:size]


def draft_law(q, k: int, law: str) -> dict:
    r"""Exact draft law as ``{tuple: mass}`` over the tuples of positive mass.

    * ``iid``: :math:`Q(\bar x) = \prod_j q(x_j)`.
    * ``wor``: successive sampling, :math:`Q(\bar x) = \prod_j q(x_j \mid V \setminus \{x_l\}_{l<j})`.
    * ``hub``: hub set H = top-(k-1) of q; :math:`x_1 \sim q`; if :math:`x_1 \notin H` the other slots
      are H in descending order, else H minus :math:`x_1` in order and a last slot
      :math:`i \sim q(\cdot \mid V \setminus H)` (k = 2: Q(i, a) = q(i), Q(a, i) = q(a) q(i)/(1 - q(a))).
    """
    n = len(q)
    out: dict = {}
    if law == "iid":
        for t in product(range(n), repeat=k):
            out[t] = float(np.prod([float(q[x]) for x in t]))
    elif law == "wor":
        for t in permutations(range(n), k):
            mass = 1.0
            for j, x in enumerate(t):
                mass *= _conditional(q, t[:j])[x]
            out[t] = mass
    elif law == "hub":
        hub = _hub_set(q, k - 1)
        last = _conditional(q, hub)
        for x1 in range(n):
            if x1 not in hub:
                out[(x1, *hub)] = float(q[x1])
                continue
            others = [h for h in hub if h != x1]
            for i in range(n):
                if i not in hub:
                    out[(x1, *others, i)] = float(q[x1]) * last[i]
    else:
        raise ValueError(f"`law` {law!r} is not one of {LAWS}.")
    return {t: m for t, m in out.items() if m > 0}


def exact_law(rule, p, q, k: int, law: str):
    r"""Exact output law, acceptance and positional split of a node rule under a draft law.

    ``rule(p, q, drafts)`` takes drafts of shape (m, k) and returns ``(accept, residual)``
    broadcastable to (m, k) and (m, n): P(slot j accepted | drafts) and the residual law.
    Output :math:`P(y) = \sum_{\bar x} Q(\bar x) [\sum_{j: x_j = y} a_j(\bar x) + (1 - \sum_j a_j(\bar x)) r_{\bar x}(y)]`.

    Returns
    -------
    (output, acceptance, positional) : ndarray (n,), float, ndarray (k,)
    """
    n = len(p)
    Q = draft_law(q, k, law)
    tuples = list(Q)
    accept, residual = rule(p, q, np.array(tuples, dtype=np.int64).reshape(-1, k))
    accept = np.broadcast_to(np.asarray(accept, dtype=np.float64), (len(tuples), k))
    residual = np.broadcast_to(np.asarray(residual, dtype=np.float64), (len(tuples), n))
    output = np.zeros(n)
    positional = np.zeros(k)
    for row, t in enumerate(tuples):
        mass = Q[t]
        for j, x in enumerate(t):
            output[x] += mass * accept[row, j]
            positional[j] += mass * accept[row, j]
        rejected = max(0.0, 1.0 - float(accept[row].sum()))
        output += mass * rejected * residual[row]
    return output, float(positional.sum()), positional


def lp_optimum(p, q, k: int, law: str) -> float:
    r"""The OT optimum :math:`\alpha^*(Q, p)` from the full LP of theory.md 2.1.

    Variables :math:`\pi(\bar x, y) \ge 0` for every tuple of positive mass and every token;
    rows :math:`\sum_y \pi(\bar x, y) = Q(\bar x)`, columns :math:`\sum_{\bar x} \pi(\bar x, y) = p(y)`;
    maximise :math:`\sum \pi(\bar x, y)\, 1\{y \in S(\bar x)\}`. HiGHS (tolerance ~1e-9).
    """
    n = len(p)
    Q = draft_law(q, k, law)
    tuples = list(Q)
    m = len(tuples)
    c = np.zeros(m * n)
    A = np.zeros((m + n, m * n))
    for row, t in enumerate(tuples):
        for y in range(n):
            v = row * n + y
            c[v] = -1.0 if y in t else 0.0
            A[row, v] = 1.0
            A[m + y, v] = 1.0
    b = np.concatenate([[Q[t] for t in tuples], np.asarray(p, dtype=np.float64)])
    # one of the m + n rows is redundant (both marginals sum to 1): drop the last column row so
    # that round-off in the two totals cannot make the system infeasible
    A, b = A[:-1], b[:-1]
    for options in ({}, {"presolve": False}):
        res = linprog(c, A_eq=A, b_eq=b, bounds=(0, None), method="highs", options=options)
        if res.status == 0:
            return float(-res.fun)
    raise RuntimeError(f"reference LP failed: {res.message}")


def min_cut(p, q, k: int, law: str):
    r"""The min-cut dual of theory.md 2.3 by enumerating every token set A:
    :math:`\alpha^* = \min_A [p(A) + Q(S(\bar x) \not\subseteq A)]`.

    Returns (value, A) with A the first minimiser in (size, lexicographic) order.
    """
    n = len(p)
    Q = draft_law(q, k, law)
    best = (np.inf, ())
    for size in range(n + 1):
        for A in combinations(range(n), size):
            inside = set(A)
            uncovered = sum(m for t, m in Q.items() if not set(t) <= inside)
            value = sum(float(p[x]) for x in A) + uncovered
            if value < best[0]:
                best = (value, A)
    return best


def tree_step_law(children, model, context: int, *, law: str, rule=None, verifier=None) -> dict:
    r"""Exact law of one tree step from ``context``: ``{emitted tokens: probability}``.

    The emitted tuple is the accepted drafts, root first, then the final token (bonus at a leaf,
    residual after a rejection), so its length is the tokens per step of that outcome.

    Parameters
    ----------
    children : sequence of sequence of int
        Children of every node in slot order; node 0 is the root.
    model : object
        ``target``, ``draft`` (C, n) next-token laws and ``next_context`` (C, n) int table.
    context : int
        Context of the root.
    law : {"iid", "wor", "hub"}
        Law of the k children of a node, drafted from q at the node's context (:func:`draft_law`).
    rule : callable, optional
        Node-level verifier ``rule(p, q, drafts) -> (accept, residual)`` as for :func:`exact_law`.
    verifier : {"block", "traversal"}, optional
        A sequence-level verifier instead of ``rule``, written here from its paper.

    Returns
    -------
    dict
        ``{tuple of int: float}`` over the outcomes of positive probability; values sum to 1.

    Raises
    ------
    ValueError
        If neither or both of ``rule`` and ``verifier`` are given, or ``verifier`` is unknown.
    """
    if (rule is None) == (verifier is None) or verifier not in (None, "block", "traversal"):
        raise ValueError(f"give one of `rule` and `verifier` ('block' or 'traversal'); got {rule!r}, {verifier!r}.")
    P = np.asarray(model.target, dtype=np.float64)
    Q = np.asarray(model.draft, dtype=np.float64)
    N = np.asarray(model.next_context)
    children = [list(kids) for kids in children]
    out: dict = {}
    for mass, tokens, ctx in _drafted_trees(children, Q, N, int(context), law):
        if rule is not None:
            ends = _node_level_walk(children, tokens, ctx, P, Q, rule)
        elif verifier == "block":
            ends = _block_verification(children, tokens, ctx, P, Q)
        else:
            ends = _traversal_verification(children, tokens, ctx, P, Q)
        for prob, path, final in ends:
            for y in range(P.shape[1]):
                if prob * final[y] > 0:
                    key = tuple(tokens[v] for v in path) + (y,)
                    out[key] = out.get(key, 0.0) + mass * prob * float(final[y])
    return out


def tree_accepted_law(children, model, context: int, **verifier) -> np.ndarray:
    """Law of the number of accepted drafts in one step, shape (depth + 1,) (index = accepted drafts).

    Its mean plus one is the expected tokens per step (theory.md 1.1).

    Parameters
    ----------
    children, model, context, **verifier
        As for :func:`tree_step_law`.

    Returns
    -------
    numpy.ndarray
        P(accepted drafts = d), d = 0 .. depth.
    """
    step = tree_step_law(children, model, context, **verifier)
    out = np.zeros(max(len(seq) for seq in step))
    for seq, prob in step.items():
        out[len(seq) - 1] += prob
    return out


def tree_sequence_law(children, model, context: int, horizon: int, **verifier) -> dict:
    """Law of the first ``horizon`` generated tokens, steps chained as in decoding: ``{tokens: probability}``.

    A step that emits more tokens than remain is cut at the horizon; the next step starts at the
    context reached after all of the step's tokens. Equals :func:`target_sequence_law` for a
    lossless verifier.

    Parameters
    ----------
    children : sequence of sequence of int
        The tree (see :func:`tree_step_law`).
    model : object
        The finite-state model.
    context : int
        Starting context.
    horizon : int
        Number of tokens, >= 1.
    **verifier
        ``law`` and ``rule`` or ``verifier``, as for :func:`tree_step_law`.

    Returns
    -------
    dict
        ``{tuple of horizon ints: float}``.
    """
    N = np.asarray(model.next_context)
    steps: dict = {}

    def chained(c: int, h: int) -> dict:
        if h == 0:
            return {(): 1.0}
        if c not in steps:
            steps[c] = tree_step_law(children, model, c, **verifier)
        out: dict = {}
        for seq, prob in steps[c].items():
            if len(seq) >= h:
                out[seq[:h]] = out.get(seq[:h], 0.0) + prob
                continue
            after = c
            for x in seq:
                after = int(N[after][x])
            for rest, more in chained(after, h - len(seq)).items():
                out[seq + rest] = out.get(seq + rest, 0.0) + prob * more
        return out

    return chained(int(context), int(horizon))


def target_sequence_law(model, context: int, horizon: int) -> dict:
    """Law of ``horizon`` tokens sampled from the target alone: ``{tokens: probability}``.

    Parameters
    ----------
    model : object
        The finite-state model (``target``, ``next_context``).
    context : int
        Starting context.
    horizon : int
        Number of tokens.

    Returns
    -------
    dict
        ``{tuple of horizon ints: float}`` over sequences of positive probability.
    """
    P = np.asarray(model.target, dtype=np.float64)
    N = np.asarray(model.next_context)
    out = {}
    for seq in product(range(P.shape[1]), repeat=int(horizon)):
        prob, c = 1.0, int(context)
        for x in seq:
            prob *= float(P[c][x])
            c = int(N[c][x])
        if prob > 0:
            out[seq] = prob
    return out


def _drafted_trees(children, Q, N, context: int, law: str):
    """Yield ``(mass, tokens, ctx)`` for every drafted tree of positive mass: ``tokens[v]`` the draft
    at node v (root: None), ``ctx[v]`` the context after node v's token (root: ``context``)."""
    order, stack = [], [0]
    while stack:  # parents before their children
        v = stack.pop()
        order.append(v)
        stack.extend(reversed(children[v]))
    internal = [v for v in order if children[v]]

    def expand(i, mass, tokens, ctx):
        if i == len(internal):
            yield mass, dict(tokens), dict(ctx)
            return
        v = internal[i]
        for t, m in draft_law(Q[ctx[v]], len(children[v]), law).items():
            for w, x in zip(children[v], t):
                tokens[w], ctx[w] = x, int(N[ctx[v]][x])
            yield from expand(i + 1, mass * m, tokens, ctx)

    yield from expand(0, 1.0, {0: None}, {0: context})


def _node_level_walk(children, tokens, ctx, P, Q, rule):
    """Outcomes ``(probability, accepted path (non-root nodes), final-token law)`` of the node-by-node walk."""
    ends = []

    def walk(v, prob, path):
        kids = children[v]
        if not kids:  # a leaf: the bonus token from the target
            ends.append((prob, path, P[ctx[v]]))
            return
        accept, residual = rule(P[ctx[v]], Q[ctx[v]], np.array([[tokens[w] for w in kids]], dtype=np.int64))
        accept = np.broadcast_to(np.asarray(accept, dtype=np.float64), (1, len(kids)))[0]
        residual = np.broadcast_to(np.asarray(residual, dtype=np.float64), (1, P.shape[1]))[0]
        for j, w in enumerate(kids):
            if accept[j] > 0:
                walk(w, prob * float(accept[j]), path + [w])
        rejected = 1.0 - float(accept.sum())
        if rejected > 0:
            ends.append((prob * rejected, path, residual))

    walk(0, 1.0, [])
    return ends


def _ratio(num: float, den: float) -> float:
    """num / den with 0/0 read as 1 (a branch of probability 0: any value serves)."""
    return 1.0 if den <= 0 else num / den


def _residual(rho: float, target, q):
    """(rho target - q)_+ and its mass."""
    r = np.maximum(rho * np.asarray(target) - np.asarray(q), 0.0)
    return r, float(r.sum())


def _block_verification(children, tokens, ctx, P, Q):
    r"""Block verification of a chain (2403.10444, Alg. 2): weights
    :math:`w_0 = 1,\ w_i = \min(1, w_{i-1} M_b(X_i) / M_s(X_i))`; tests
    :math:`h_i = R_i / (R_i + 1 - w_i)` (i < L), :math:`h_L = w_L`, with
    :math:`R_i = \sum_x (w_i M_b(x) - M_s(x))_+`; the accepted length is the largest i whose
    test passes (0 if none), and the final token comes from the normalised
    :math:`(w_i M_b - M_s)_+` (from :math:`M_b` at i = L). All 2^L test outcomes are enumerated."""
    chain = [0]
    while children[chain[-1]]:
        if len(children[chain[-1]]) != 1:
            raise ValueError("block verification needs a chain.")
        chain.append(children[chain[-1]][0])
    L = len(chain) - 1
    w = [1.0]
    for i in range(1, L + 1):
        u, v = chain[i - 1], chain[i]
        w.append(min(1.0, w[-1] * float(P[ctx[u]][tokens[v]]) / float(Q[ctx[u]][tokens[v]])))
    h, final = [1.0] + w[1:], []  # h_L = w_L; h_i for 0 < i < L set below
    for i in range(L + 1):
        c = ctx[chain[i]]
        if i == L:
            final.append(P[c])
            continue
        r, R = _residual(w[i], P[c], Q[c])
        final.append(r / R if R > 0 else P[c])
        if i > 0:
            h[i] = _ratio(R, R + 1.0 - w[i])
    ends = {}
    for passed in product((False, True), repeat=L):
        prob = 1.0
        for i in range(1, L + 1):
            prob *= h[i] if passed[i - 1] else 1.0 - h[i]
        tau = max([i for i in range(1, L + 1) if passed[i - 1]], default=0)
        ends[tau] = ends.get(tau, 0.0) + prob
    return [(prob, chain[1 : tau + 1], final[tau]) for tau, prob in ends.items() if prob > 0]


def _traversal_verification(children, tokens, ctx, P, Q):
    """Traversal Verification (2505.12398), run literally on one drafted tree.

    Every node v keeps a ratio rho_v and a target t_v (p at its context until a child is
    rejected); a child w of u has rho_w = min(1, rho_u t_u(x_w) / q_u(x_w)). Repeat: walk from the
    root along first remaining children to a node with none left (the first leaf); accept the
    path to it with probability rho, emitting a token from its t; otherwise delete it, update its
    parent u to rho_u <- R / (R + 1 - rho_u), t_u <- (rho_u t_u - q_u)_+ / R (R its mass; 0/0 read
    as 1 for rho, the old t kept when R = 0), and recompute the ratios of u's remaining subtree.
    The root, reached last, has rho = 1 and emits from its t.
    """
    parent = {w: v for v in range(len(children)) for w in children[v]}
    left = {v: list(kids) for v, kids in enumerate(children)}
    target = {v: np.asarray(P[ctx[v]], dtype=np.float64) for v in range(len(children))}
    rho = {0: 1.0}

    def recompute(u):
        for w in left[u]:
            rho[w] = min(1.0, rho[u] * float(target[u][tokens[w]]) / float(Q[ctx[u]][tokens[w]]))
            recompute(w)

    def path_to(v):
        path = []
        while v != 0:
            path.append(v)
            v = parent[v]
        return path[::-1]

    recompute(0)
    ends, alive = [], 1.0
    while True:
        v = 0
        while left[v]:
            v = left[v][0]
        if v == 0:
            ends.append((alive, [], target[0]))
            return ends
        if rho[v] > 0:
            ends.append((alive * rho[v], path_to(v), target[v]))
        alive *= 1.0 - rho[v]
        u = parent[v]
        left[u].remove(v)
        r, R = _residual(rho[u], target[u], Q[ctx[u]])
        rho[u] = min(1.0, _ratio(R, R + 1.0 - rho[u]))
        if R > 0:
            target[u] = r / R
        recompute(u)
