"""Markov chains of finite-state (n-gram) models: the model's tables, context kernels, stationary laws.

Convention: p = target, q = draft, last axis = vocabulary; a context ``c`` indexes the rows of the
(C, n) tables and ``next_context[c, y]`` is the context after token y. Source: theory.md 5 (the
long-run tokens per step weights contexts by a stationary law).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["FiniteStateTables", "model_tables", "context_kernel", "stationary_law"]


def stationary_law(kernel) -> np.ndarray:
    """Stationary law ``mu = mu K`` of a row-stochastic matrix ``K`` (C, C).

    Solves the linear system ``mu (K - I) = 0, sum(mu) = 1`` by least squares (O(C^3)); for a
    chain with several closed classes the least-squares solution is one of the stationary laws.
    Tiny negative round-off is clipped and the result renormalised.

    Parameters
    ----------
    kernel : array_like
        Row-stochastic matrix K, shape (C, C).

    Returns
    -------
    numpy.ndarray
        The float64 stationary law mu, shape (C,).

    Raises
    ------
    ValueError
        If ``kernel`` is not a square matrix.
    """
    K = np.asarray(kernel, dtype=np.float64)
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"`kernel` must be a square matrix; got shape {K.shape}.")
    C = K.shape[0]
    A = np.vstack([K.T - np.eye(C), np.ones((1, C))])
    b = np.zeros(C + 1)
    b[-1] = 1.0
    mu = np.linalg.lstsq(A, b, rcond=None)[0]
    mu = np.maximum(mu, 0.0)
    return mu / mu.sum()


@dataclass(frozen=True)
class FiniteStateTables:
    """Target ``p`` (C, n), draft ``q`` (C, n) and ``next_context`` (C, n) of a finite-state model."""

    p: np.ndarray
    q: np.ndarray
    next_context: np.ndarray


def model_tables(model) -> FiniteStateTables:
    """Validate the tables of a finite-state model and return them as float64 / int64.

    Parameters
    ----------
    model : SyntheticPair or object
        Any object with ``target``, ``draft`` (C, n) and ``next_context`` (C, n) int tables.

    Returns
    -------
    FiniteStateTables
        ``p``, ``q`` and ``next_context``.

    Raises
    ------
    ValueError
        If a table is missing, the shapes differ, or a next context is out of [0, C).
    """
    try:
        p = np.asarray(model.target, dtype=np.float64)
        q = np.asarray(model.draft, dtype=np.float64)
        N = np.asarray(model.next_context, dtype=np.int64)
    except AttributeError:
        raise ValueError("`model` must have `target`, `draft` and `next_context` tables (e.g. a SyntheticPair).") from None
    if p.ndim != 2 or p.shape != q.shape or N.shape != p.shape:
        raise ValueError(f"`model` tables must all have shape (C, n); got {p.shape}, {q.shape}, {N.shape}.")
    if N.min() < 0 or N.max() >= p.shape[0]:
        raise ValueError(f"`model.next_context` must hold context ids in [0, {p.shape[0]}).")
    return FiniteStateTables(p, q, N)


def context_kernel(next_context, weights) -> np.ndarray:
    """Turn a law of the next token per context into a law of the next context.

    ``M[c, next_context[c, y]] += weights[c, y]`` (the target's weights give the chain's
    transition matrix). O(C n) plus the C^2 zeros.

    Parameters
    ----------
    next_context : numpy.ndarray
        The int context after token y in context c, shape (C, n).
    weights : numpy.ndarray
        Law of the next token in each context, shape (C, n).

    Returns
    -------
    numpy.ndarray
        The float64 matrix M, shape (C, C).
    """
    N = np.asarray(next_context, dtype=np.int64)
    w = np.asarray(weights, dtype=np.float64)
    C = N.shape[0]
    M = np.zeros((C, C))
    np.add.at(M, (np.repeat(np.arange(C), N.shape[1]), N.ravel()), w.ravel())
    return M
