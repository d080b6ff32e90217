r"""Statistical lossless test of tree decoding on sequences: simulated first tokens against the target.

Convention: p = target, q = draft, last axis = vocabulary; a model has ``target``, ``draft`` and
``next_context`` tables (:class:`~spechub_theory.trees.synthetic.SyntheticPair`). Source: theory.md 1
and 7 (the Monte Carlo oracle); issue 15 item 3.

Decoding runs from a fixed context until ``horizon`` tokens are generated; each run's first
``horizon`` tokens, read as one symbol of n^horizon, are tested against the target chain's law
of those tokens (:func:`~spechub_theory.trees.lossless.target_sequence_law`) with the pooled
chi-square of :func:`~spechub_theory.montecarlo.stats.matches_target`. Any method runs: node-level, block,
traversal and the mutants of :mod:`spechub_theory.montecarlo.sequence_mutants`.
"""

from __future__ import annotations

import numpy as np

from .sequence_rules import check_tree_for, get_tree_method
from ..montecarlo.stats import LosslessTest, matches_target
from .markov import model_tables
from .lossless import target_sequence_law
from .simulation import decode_steps
from .walk import tree_for_method
from .shapes import Tree

__all__ = ["sample_sequences", "sequence_lossless_test"]


def sample_sequences(tree, method, model, context: int, horizon: int, n_trials: int, *, rng=None) -> np.ndarray:
    """First ``horizon`` generated tokens of ``n_trials`` independent decoding runs, (n_trials, horizon).

    All runs advance together, one batched step (:func:`~spechub_theory.trees.simulation.decode_steps`)
    per round; O(rounds * n_trials * size * n) with rounds <= horizon.

    Parameters
    ----------
    tree : Tree or str
        The draft tree, or a name for :meth:`Tree.from_name`.
    method : str
        A tree method name.
    model : SyntheticPair or object
        A finite-state model (see :func:`model_tables`).
    context : int
        The starting context id.
    horizon : int
        Number of tokens kept per run.
    n_trials : int
        Number of independent runs.
    rng : numpy.random.Generator or int, optional
        The random source.

    Returns
    -------
    numpy.ndarray
        The int64 tokens, shape (n_trials, horizon).
    """
    m, _ = get_tree_method(method)
    tree = check_tree_for(m, tree_for_method(Tree.from_name(tree) if isinstance(tree, str) else tree, m))
    tables = model_tables(model)
    gen = np.random.default_rng(rng)
    out = np.full((n_trials, horizon), -1, dtype=np.int64)
    filled = np.zeros(n_trials, dtype=np.int64)
    ctx = np.full(n_trials, int(context), dtype=np.int64)
    while (filled < horizon).any():
        todo = np.flatnonzero(filled < horizon)
        for i, walk in zip(todo, decode_steps(tree, m, model, ctx[todo], gen)):
            for tok in walk.tokens:
                if filled[i] < horizon:
                    out[i, filled[i]] = tok
                    filled[i] += 1
                ctx[i] = tables.next_context[ctx[i], tok]
    return out


def sequence_lossless_test(tree, method, model, context: int, horizon: int, n_trials: int, *, alpha: float = 1e-3, rng=None) -> LosslessTest:
    """Pooled chi-square test that the first ``horizon`` tokens have the target's law (module docstring).

    Parameters
    ----------
    tree : Tree or str
        The draft tree, or a name for :meth:`Tree.from_name`.
    method : str
        A tree method name.
    model : SyntheticPair or object
        A finite-state model (see :func:`model_tables`).
    context : int
        The starting context id.
    horizon : int
        Number of tokens per sequence.
    n_trials : int
        Number of sampled sequences.
    alpha : float, optional
        Significance level.
    rng : numpy.random.Generator or int, optional
        The random source.

    Returns
    -------
    LosslessTest
        The test of :func:`matches_target` on the sequences against :func:`target_sequence_law`.
    """
    seqs = sample_sequences(tree, method, model, context, horizon, n_trials, rng=rng)
    n = model_tables(model).p.shape[1]
    flat = np.ravel_multi_index(tuple(seqs.T), (n,) * horizon)
    return matches_target(flat, target_sequence_law(model, context, horizon).ravel(), alpha=alpha, kind="samples")
