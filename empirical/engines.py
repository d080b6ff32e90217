"""Where a decoding step samples drafts and walks the tree: the numpy core or its torch mirror.

Convention: p = target, q = draft, rows = nodes, last axis = vocabulary, float64. Both engines
consume the numpy Generator identically, so they emit the same tokens for the same inputs.
``torch`` keeps laws on the model's device (a few host syncs per step); ``numpy`` copies them to
the host and runs ``spechub_theory`` itself (every method, the reference).
"""

from __future__ import annotations

import numpy as np

from spechub_theory.trees import walk as tree_walk

from . import fast_verify, sequence_torch
from .fast_walk import draft_method
from .probs import to_float64_law

__all__ = ["ENGINES", "get_engine", "NumpyEngine", "TorchEngine"]


class NumpyEngine:
    """The float64 numpy core (``spechub_theory.trees.walk``): the reference, all methods."""

    name = "numpy"

    @staticmethod
    def supports(method: str) -> bool:
        """Every core method.

        Parameters
        ----------
        method : str
            The verification method (a name or a method module).

        Returns
        -------
        bool
        """
        return True

    @staticmethod
    def rows(probs):
        """Device float32 laws [m, n] -> host float64, renormalised.

        Parameters
        ----------
        probs : torch.Tensor

        Returns
        -------
        numpy.ndarray
        """
        return to_float64_law(probs)

    @staticmethod
    def empty(m: int, n: int, device):
        """Storage for m rows of laws.

        Parameters
        ----------
        m : int
        n : int
        device : str or torch.device

        Returns
        -------
        numpy.ndarray
        """
        return np.empty((m, n))

    @staticmethod
    def draft_level(method, q_rows, counts, rng, device) -> list:
        """Children tokens per node of a level (device int64 tensors).

        Parameters
        ----------
        method : str or module
            The verification method (a name or a method module).
        q_rows : numpy.ndarray or torch.Tensor, shape (m, n)
        counts : sequence of int
        rng : numpy.random.Generator, int or None
            Random source: a Generator or a seed.
        device : str or torch.device

        Returns
        -------
        list
        """
        import torch

        return [torch.as_tensor(t, device=device) for t in tree_walk.draft_tree_level(method, q_rows, counts, rng)]

    @staticmethod
    def draft_level_batch(method, q_level, counts, rngs, device) -> list:
        """Children tokens of one level for R sequences at once, each with its own Generator.

        q_level: host float64 [R, m, n]; counts: children per node (shared); rngs: R Generators.
        Returns [(node indices, device int64 tensor [R, len(indices), c])] per distinct count c.
        Each row consumes its Generator exactly as :meth:`draft_level` does.

        Parameters
        ----------
        method : str or module
            The verification method (a name or a method module).
        q_level : numpy.ndarray or torch.Tensor, shape (R, m, n)
        counts : sequence of int
        rngs : list of numpy.random.Generator
        device : str or torch.device

        Returns
        -------
        list
        """
        import torch

        per_row = [tree_walk.draft_tree_level(method, q, counts, rng) for q, rng in zip(q_level, rngs)]
        return [(idx, torch.as_tensor(np.array([[row[i] for i in idx] for row in per_row]), device=device))
                for idx in _count_groups(counts)]

    @staticmethod
    def walk(tree, method, tokens, p_probs, q_rows, rng):
        """The core walk; p rows are copied to the host only for the nodes it visits.

        Returns (TreeWalk, host p rows of the visited nodes as a dict node -> row).

        Parameters
        ----------
        tree : Tree
        method : str or module
            The verification method (a name or a method module).
        tokens : numpy.ndarray or torch.Tensor of int64
        p_probs : numpy.ndarray or torch.Tensor, shape (..., size, n)
        q_rows : numpy.ndarray or torch.Tensor, shape (m, n)
        rng : numpy.random.Generator, int or None
            Random source: a Generator or a seed.

        Returns
        -------
        tuple
        """
        cache: dict = {}

        def get_p(v):
            if v not in cache:
                cache[v] = to_float64_law(p_probs[v])
            return cache[v]

        walk = tree_walk.walk_tree(tree, method, tokens.cpu().numpy(), get_p, lambda v: q_rows[v], rng)
        return walk, lambda v: cache[v]

    @staticmethod
    def walk_batch(tree, method, tokens, p_probs, q_rows, rngs) -> list:
        """Apply :meth:`walk` to each of R rows, one after the other.

        Tokens [R, size], p_probs [R, size, n], q_rows [R, m, n] or None.

        Parameters
        ----------
        tree : Tree
        method : str or module
            The verification method (a name or a method module).
        tokens : numpy.ndarray or torch.Tensor of int64
        p_probs : numpy.ndarray or torch.Tensor, shape (..., size, n)
        q_rows : numpy.ndarray or torch.Tensor, shape (m, n)
        rngs : list of numpy.random.Generator

        Returns
        -------
        list
        """
        return [NumpyEngine.walk(tree, method, tokens[b], p_probs[b], None if q_rows is None else q_rows[b], rng)
                for b, rng in enumerate(rngs)]

    @staticmethod
    def host(rows):
        """Host float64 copy of stored rows.

        Parameters
        ----------
        rows : ndarray

        Returns
        -------
        numpy.ndarray
        """
        return np.asarray(rows)


class TorchEngine:
    """The torch mirror of the core (:mod:`empirical.fast_verify`), on the model's device."""

    name = "torch"

    @staticmethod
    def supports(method: str) -> bool:
        """Whether ``method`` has a torch path.

        True for single, rrs, rrs_wor, spechub and optimal
        (:data:`empirical.fast_verify.FAST_METHODS`), block and traversal
        (:data:`empirical.sequence_torch.SEQUENCE_TORCH_METHODS`).

        Parameters
        ----------
        method : str
            The verification method (a name or a method module).

        Returns
        -------
        bool
        """
        return method in fast_verify.FAST_METHODS or method in sequence_torch.SEQUENCE_TORCH_METHODS

    @staticmethod
    def rows(probs):
        """Device float32 laws [m, n] -> device float64, renormalised (as the numpy engine).

        Parameters
        ----------
        probs : torch.Tensor

        Returns
        -------
        torch.Tensor
        """
        return fast_verify.law64(probs)

    @staticmethod
    def empty(m: int, n: int, device):
        """Device storage for m rows of laws.

        Parameters
        ----------
        m : int
        n : int
        device : str or torch.device

        Returns
        -------
        torch.Tensor
        """
        import torch

        return torch.empty(m, n, dtype=torch.float64, device=device)

    @staticmethod
    def draft_level(method, q_rows, counts, rng, device) -> list:
        """Children tokens per node of a level (device int64 tensors).

        Parameters
        ----------
        method : str or module
            The verification method (a name or a method module).
        q_rows : numpy.ndarray or torch.Tensor, shape (m, n)
        counts : sequence of int
        rng : numpy.random.Generator, int or None
            Random source: a Generator or a seed.
        device : str or torch.device

        Returns
        -------
        list
        """
        return fast_verify.draft_tree_level(draft_method(method), q_rows, counts, rng)

    @staticmethod
    def draft_level_batch(method, q_level, counts, rngs, device) -> list:
        """Draft a level of all rows as :meth:`NumpyEngine.draft_level_batch`, on the device.

        One batched sample per distinct count over all rows (q_level: device float64 [R, m, n]).

        Parameters
        ----------
        method : str or module
            The verification method (a name or a method module).
        q_level : numpy.ndarray or torch.Tensor, shape (R, m, n)
        counts : sequence of int
        rngs : list of numpy.random.Generator
        device : str or torch.device

        Returns
        -------
        list
        """
        import torch

        out = []
        for idx in _count_groups(counts):
            c = counts[idx[0]]
            u = torch.as_tensor(np.stack([rng.random((len(idx), c)) for rng in rngs]), device=q_level.device)
            q = q_level[:, idx].reshape(-1, q_level.shape[-1])  # [R * len(idx), n]
            out.append((idx, fast_verify.sample_drafts(q, c, u.reshape(-1, c), method=draft_method(method)).reshape(len(rngs), len(idx), c)))
        return out

    @staticmethod
    def walk(tree, method, tokens, p_probs, q_rows, rng):
        """The walk on the device; returns (TreeWalk, node -> host float64 p row).

        Parameters
        ----------
        tree : Tree
        method : str or module
            The verification method (a name or a method module).
        tokens : numpy.ndarray or torch.Tensor of int64
        p_probs : numpy.ndarray or torch.Tensor, shape (..., size, n)
        q_rows : numpy.ndarray or torch.Tensor, shape (m, n)
        rng : numpy.random.Generator, int or None
            Random source: a Generator or a seed.

        Returns
        -------
        tuple
        """
        q_rows = None if q_rows is None else q_rows[None]
        return TorchEngine.walk_batch(tree, method, tokens[None], p_probs[None], q_rows, [rng])[0]

    @staticmethod
    def walk_batch(tree, method, tokens, p_probs, q_rows, rngs) -> list:
        """Walk R trees at once on the device (:func:`empirical.fast_verify.walk_trees`).

        All rows step down together: per depth one batched node rule per distinct child count and
        one host sync. A sequence-level method (block, traversal) runs one batched tree rule
        instead (:func:`empirical.sequence_torch.walk_trees`). Each row consumes its Generator as
        :meth:`NumpyEngine.walk_batch` does.

        Parameters
        ----------
        tree : Tree
        method : str or module
            The verification method (a name or a method module).
        tokens : torch.Tensor of int64, shape (R, size)
        p_probs : torch.Tensor, shape (R, size, n)
        q_rows : torch.Tensor, shape (R, m, n), or None
            Float64 draft laws of the internal nodes; None for a tree without drafts.
        rngs : list of numpy.random.Generator
            One per row.

        Returns
        -------
        list
            R pairs (TreeWalk, node -> host float64 p row of a visited node).
        """
        if method in sequence_torch.SEQUENCE_TORCH_METHODS:
            return sequence_torch.walk_trees(tree, method, tokens, p_probs, q_rows, rngs)
        return [(walk, lambda v, rows=rows: rows[v].cpu().numpy())
                for walk, rows in fast_verify.walk_trees(tree, method, tokens, p_probs, q_rows, rngs)]

    @staticmethod
    def host(rows):
        """Host float64 copy of stored rows.

        Parameters
        ----------
        rows : ndarray

        Returns
        -------
        numpy.ndarray
        """
        return rows.cpu().numpy()


def _count_groups(counts) -> list:
    """Node indices grouped by child count, counts ascending, zeros left out (the order in which
    ``draft_tree_level`` consumes uniforms)."""
    return [[i for i, ci in enumerate(counts) if ci == c] for c in sorted(set(counts) - {0})]


#: engine name -> engine; ``auto`` picks torch on CUDA when it supports the method, else numpy
ENGINES = {"numpy": NumpyEngine, "torch": TorchEngine}


def get_engine(name: str, method: str, device="cpu"):
    """The engine called ``name`` (``auto``, ``torch`` or ``numpy``) for ``method`` on ``device``.

    ``auto`` is torch on CUDA (laws stay on the GPU) and numpy on CPU (there the float64 core is
    as fast, and torch's thread pool suffers most on a busy machine). Raises ValueError for an
    unknown name or torch with a method it lacks (kseq).

    Parameters
    ----------
    name : str
    method : str
        The verification method (a name or a method module).
    device : str or torch.device, optional

    Returns
    -------
    type

    Raises
    ------
    ValueError
        On bad input (the message names the rule): ``engine`` ... is not one of 'auto', 'torch',
        'numpy'; or ``engine`` ... has no ...; use 'numpy' or 'auto'.
    """
    if name == "auto":
        on_gpu = getattr(device, "type", str(device).split(":")[0]) == "cuda"
        return TorchEngine if on_gpu and TorchEngine.supports(method) else NumpyEngine
    if name not in ENGINES:
        raise ValueError(f"`engine` {name!r} is not one of 'auto', 'torch', 'numpy'.")
    engine = ENGINES[name]
    if not engine.supports(method):
        raise ValueError(f"`engine` {name!r} has no {method!r}; use 'numpy' or 'auto'.")
    return engine
