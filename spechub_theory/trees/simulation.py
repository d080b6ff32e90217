r"""Monte Carlo tree speculative decoding on finite-state (n-gram) models, with intervals.

Convention: p = target, q = draft, last axis = vocabulary; a model has ``target``, ``draft`` and
``next_context`` tables (e.g. :class:`~spechub_theory.trees.synthetic.SyntheticPair`). Each step drafts
the tree level by level (:func:`~spechub_theory.trees.walk.draft_tree`) and walks it
(:func:`~spechub_theory.trees.walk.walk_tree`) with fresh randomness; the per-node (p, q) come from
callbacks that follow the drafted tokens, as a real model would. Source: theory.md 1.1; issue 5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..methods import get_method
from ..montecarlo.interval import ConfidenceInterval
from .sequence_rules import check_tree_for, get_tree_method, walk_by_rule
from .markov import context_kernel, model_tables, stationary_law
from .walk import TreeWalk, draft_trees, tree_for_method, walk_trees
from .shapes import Tree

__all__ = ["ConfidenceInterval", "TreeSimulation", "decode_steps", "simulate_tree_decoding"]

#: batches for the batch-means interval of a single dependent run (enough for a t interval, few
#: enough that each batch spans many context-chain mixing times)
BATCHES = 20
#: parallel decoding runs (independent replications) of a simulation
CHAINS = 64
#: steps of each run discarded before recording (the runs start from the target's stationary
#: context law, not from the step-start law; the step-to-step chain forgets its start in a few steps)
BURN_IN = 10
#: copies drafted and walked in one batched call (bounds memory to ~ MAX_BATCH * size * n floats)
MAX_BATCH = 4096


@dataclass(frozen=True, repr=False)
class TreeSimulation:
    """Tokens per step of simulated steps.

    Attributes
    ----------
    tokens : ndarray of int, shape (runs, steps_per_run)
        Tokens emitted per step (accepted drafts + 1); one row per decoding run. Independent
        steps (each from a given context) are stored as runs of one step.
    method : str
    tree : Tree
        The tree the method drafted.
    independent : bool
        True when every step started from a given context (i.i.d. steps for i.i.d. contexts).
    seed : int or None
        The ``rng`` argument when it was an int seed (for reproduction).
    """

    tokens: np.ndarray
    method: str
    tree: Tree
    independent: bool
    seed: int | None = None

    @property
    def steps(self) -> int:
        """Number of recorded steps."""
        return int(self.tokens.size)

    @property
    def mean(self) -> float:
        """Mean tokens per step."""
        return float(self.tokens.mean())

    def confidence_interval(self, level: float = 0.95, *, batches: int = BATCHES) -> ConfidenceInterval:
        """Interval for the mean tokens per step.

        Steps of one run are dependent (they share the evolving context), so the per-step variance
        would understate the error. With several runs, a Student t interval on the run means
        (independent replications; a run of one step is an independent step); with one run,
        Student t on ``batches`` batch means of that run.

        Parameters
        ----------
        level : float, optional
        batches : int, optional

        Returns
        -------
        ConfidenceInterval
        """
        from scipy.stats import t as student_t

        x = self.tokens.astype(np.float64)
        if x.shape[0] >= 2:
            groups = x.mean(axis=1)
            how = "independent steps, Student t" if x.shape[1] == 1 else f"means of {x.shape[0]} independent runs, Student t"
        else:
            b = max(min(int(batches), x.shape[1]), 1)
            usable = x.shape[1] - x.shape[1] % b
            groups, how = x[0, :usable].reshape(b, -1).mean(axis=1), f"batch means ({b} batches of one run), Student t"
        if len(groups) < 2:
            return ConfidenceInterval(-np.inf, np.inf, level, how)
        half = float(student_t.ppf(0.5 + level / 2, len(groups) - 1) * groups.std(ddof=1) / np.sqrt(len(groups)))
        return ConfidenceInterval(float(groups.mean()) - half, float(groups.mean()) + half, level, how)

    def per_level_acceptance(self) -> list[float]:
        """Fraction of steps whose accepted path reached depth d + 1 among those reaching d.

        Returns
        -------
        list[float]
        """
        accepted = self.tokens.ravel() - 1
        reach = np.array([(accepted >= d).sum() for d in range(self.tree.depth + 1)], dtype=np.float64)
        return [float(reach[d + 1] / reach[d]) if reach[d] > 0 else 0.0 for d in range(self.tree.depth)]

    def to_dict(self) -> dict:
        """Summary for JSON.

        Returns
        -------
        dict
        """
        ci = self.confidence_interval()
        return {
            "method": self.method,
            "steps": self.steps,
            "runs": int(self.tokens.shape[0]) if not self.independent else None,
            "mean": self.mean,
            "ci95": ci.to_list(),
            "ci_method": ci.how,
            "per_level_acceptance": self.per_level_acceptance(),
            "seed": self.seed,
        }

    def __repr__(self) -> str:
        return f"TreeSimulation(method={self.method!r}, steps={self.steps}, mean={self.mean:.4f})"


def decode_steps(tree: Tree, method, model, contexts, rng) -> list[TreeWalk]:
    """One tree speculative decoding step from each context index in ``contexts`` (batched).

    The draft law after each node follows the drafted tokens (``next_context``); the walk reads
    p and q of the visited nodes through callbacks, as with a real model. Returns one
    :class:`TreeWalk` per context; the next context is ``next_context`` folded over its
    ``tokens``. O(len(contexts) * size * k n).

    Parameters
    ----------
    tree : Tree
        The draft tree.
    method : str
        A tree method name (see :func:`get_tree_method`).
    model : SyntheticPair or object
        A finite-state model (see :func:`model_tables`).
    contexts : array_like of int
        Starting context id of each step in the batch.
    rng : numpy.random.Generator
        The random source of drafts and verification.

    Returns
    -------
    list of TreeWalk
        One walk per context.
    """
    m, _ = get_tree_method(method)
    tables = model_tables(model)
    contexts = np.asarray(contexts, dtype=np.int64)
    state = np.full((len(contexts), tree.size), -1, dtype=np.int64)  # [batch, size] context after each node
    state[:, 0] = contexts

    def fill(nodes, tokens):
        for v in sorted(int(v) for v in nodes):
            if v > 0 and state[0, v] < 0:
                state[:, v] = tables.next_context[state[:, tree.parents[v]], tokens[:, v]]

    def q_of(nodes, tokens):
        fill(nodes, tokens)
        return tables.q[state[:, list(nodes)]]  # [batch, len(nodes), n]

    tokens = draft_trees(m, tree, q_of, rng, batch=len(contexts))
    fill(range(1, tree.size), tokens)
    if getattr(m, "tree_rule", None) is not None:  # sequence-level: the whole tree at once
        return walk_by_rule(tree, m, tokens, tables.p[state], tables.q[state], rng)
    return walk_trees(tree, m, tokens, lambda s, v: tables.p[state[s, v]], lambda s, v: tables.q[state[s, v]], rng)


def simulate_tree_decoding(
    tree, method, model, steps: int, *, runs: int = CHAINS, burn_in: int = BURN_IN, context=None, contexts=None, rng=None, progress=None
) -> TreeSimulation:
    """Simulate tree speculative decoding and record tokens per step.

    Parameters
    ----------
    tree : Tree or str
    method : str
    model : SyntheticPair or any finite-state model (``target``, ``draft``, ``next_context``)
    steps : int
        Steps to record in total (split evenly over ``runs``, rounded up).
    runs : int
        Independent decoding runs advanced in parallel; in each, the context evolves along the
        generated sequence.
    burn_in : int
        Steps of each run discarded before recording.
    context : int, optional
        Start context of every run; default: drawn from the target's stationary context law.
    contexts : array_like of int, optional
        Independent-steps mode: step i starts from ``contexts[i]`` (``runs``, ``burn_in`` and
        ``context`` are ignored); used to check the exact per-context values.
    rng : numpy Generator or int seed
    progress : callable, optional
        ``progress(done, total)`` after each batch of steps.

    Returns
    -------
    TreeSimulation

    Raises
    ------
    ValueError
        On bad input (the message names the rule): ``steps``, ``runs`` and ``burn_in`` must be integers in range; or
        ``contexts`` must be ``steps`` context ids in [0, C); or ``context`` must be a context id in [0, C).

    Examples
    --------
    >>> from spechub_theory.trees.synthetic import make_pair
    >>> sim = simulate_tree_decoding("2^3", "spechub", make_pair(10, mismatch=0.0), 64, rng=0)
    >>> sim.mean  # q = p: every first draft is accepted
    3.0
    """
    m, _ = get_tree_method(method)
    tree = check_tree_for(m, tree_for_method(Tree.from_name(tree) if isinstance(tree, str) else tree, m))
    for name, value, low in (("steps", steps, 1), ("runs", runs, 1), ("burn_in", burn_in, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"`{name}` must be an integer >= {low}; got {value!r}.")
    tables = model_tables(model)
    C = tables.p.shape[0]
    gen = np.random.default_rng(rng)
    seed = int(rng) if isinstance(rng, (int, np.integer)) else None
    if contexts is not None:
        contexts = np.asarray(contexts, dtype=np.int64)
        if contexts.shape != (steps,) or contexts.min() < 0 or contexts.max() >= C:
            raise ValueError(f"`contexts` must be {steps} context ids in [0, {C}).")
        out = np.empty(steps, dtype=np.int64)
        for lo in range(0, steps, MAX_BATCH):
            walks = decode_steps(tree, m, model, contexts[lo : lo + MAX_BATCH], gen)
            out[lo : lo + len(walks)] = [len(w.tokens) for w in walks]
            if progress is not None:
                progress(lo + len(walks), steps)
        return TreeSimulation(tokens=out[:, None], method=m.NAME, tree=tree, independent=True, seed=seed)
    if context is None:
        c = gen.choice(C, size=runs, p=stationary_law(context_kernel(tables.next_context, tables.p)))
    elif not 0 <= int(context) < C:
        raise ValueError(f"`context` must be a context id in [0, {C}); got {context}.")
    else:
        c = np.full(runs, int(context), dtype=np.int64)
    per_run = -(-steps // runs)
    out = np.empty((runs, per_run), dtype=np.int64)
    for i in range(burn_in + per_run):
        walks = decode_steps(tree, m, model, c, gen)
        for r, w in enumerate(walks):
            for tok in w.tokens:
                c[r] = tables.next_context[c[r], tok]
        if i >= burn_in:
            out[:, i - burn_in] = [len(w.tokens) for w in walks]
            if progress is not None:
                progress((i - burn_in + 1) * runs, per_run * runs)
    return TreeSimulation(tokens=out, method=m.NAME, tree=tree, independent=False, seed=seed)
