"""Inverse-CDF draws from rows of weights on the device: one scan per row, or blocks where they pay.

A draw at uniform u from row w (n weights >= 0) is the first token i with cdf(i) > u * total,
as the core's inverse CDF (``spechub_theory.draft_laws``). A flat
``torch.cumsum`` over a 151,936-token row is one long scan; at a handful of rows inductor turns it
into a split scan, whose Triton kernel cannot hold the reduction fused next to it (``NYI
TritonSplitDimKernel reductions``, BENCHMARKS.md §10.5). While ``torch.compile`` traces, a row is
therefore cut into blocks of :data:`BLOCK` weights: the block totals and their cumulative sums
(n / BLOCK entries) pick the block, one gathered block and its cumulative sum pick the token, and
every scan is at most max(BLOCK, n / BLOCK) long. Captured into a CUDA graph, the blocks also win
from two rows on (a long scan over few rows parallelises badly), and the flat scan wins for one
row (9 kernels against ~45). On the H200 on 2026-12-04 (BENCHMARKS.md §10.7), blocks everywhere
cost a graphed SmolLM2 AR step (1 row) 0.09 ms more and its one-row verify pieces 0.17-0.36 ms
more, and saved 0.28 ms of its draft levels (1-8 rows), 0.13 ms of a Qwen AR step at 16 rows and
0.64 ms of Qwen's RRS verify at 16 rows. Run eagerly, each op is a launch: the flat scan.
"""

from __future__ import annotations

__all__ = ["BLOCK", "inverse_cdf"]

#: weights per block: sqrt(151,936) ~ 390, rounded up to a power of two so that scans of both
#: levels stay short (Qwen2.5's vocabulary: 149 blocks of 1,024)
BLOCK = 1024


def inverse_cdf(w, u, *, blocked=None):
    r"""Draw from each row of ``w`` at the uniforms ``u``, by inverse CDF.

    :math:`x = \min\{i : \sum_{j \le i} w_j > u \sum_j w_j\}`, which has :math:`w_x > 0`; a draw
    that rounding puts on a zero weight moves to the last positive token before it (as the core's
    ``_fix_zero_mass``). A row without positive weight draws n - 1.

    Parameters
    ----------
    w : torch.Tensor, shape (..., n)
        Nonnegative weights (any float dtype; the sums are taken in it).
    u : torch.Tensor, shape (..., j)
        Uniforms in [0, 1), ``j`` per row, same dtype as ``w``.
    blocked : bool, optional
        Search in blocks (:func:`_blocked`: every scan short, ~45 small ops that inductor fuses)
        or over one scan of the row (:func:`_flat`: 9 ops, the fewest kernels). Default: blocked
        while ``torch.compile`` traces, and while a CUDA graph is captured for two rows or more.

    Returns
    -------
    torch.Tensor of int64, shape (..., j)
        The drawn tokens; O(n + j log n) (flat) or O(n + j (n / b + b)) (blocked, b = min(BLOCK, n))
        work per row, no host sync.
    """
    import torch

    if blocked is None:
        rows = w.numel() // max(w.shape[-1], 1)
        blocked = torch.compiler.is_compiling() or (
            rows >= 2 and w.is_cuda and torch.cuda.is_current_stream_capturing())
    return _blocked(w, u) if blocked else _flat(w, u)


def _flat(w, u):
    """The search over one cumulative sum of the row, then the zero-weight guard by a second search.

    A draw x on zero weight sits in a run of equal cdf values that starts right after the last
    positive token p before it; the first index with cdf >= cdf(x) is p (exact for sequential
    sums, where adding 0 changes nothing). Nine ops, two of them passes over the row.
    """
    import torch

    n = w.shape[-1]
    cdf = torch.cumsum(w, -1)
    x = torch.searchsorted(cdf, (u * cdf[..., -1:]).contiguous(), right=True).clamp(max=n - 1)
    start = torch.searchsorted(cdf, torch.gather(cdf, -1, x), right=False)  # x itself when w_x > 0
    return torch.where(torch.gather(w, -1, start) > 0, start, x)


def _blocked(w, u):
    """The search in blocks of :data:`BLOCK`: block totals and their cumulative sums pick the block,
    one gathered block and its cumulative sum pick the token (see the module docstring)."""
    import torch

    n = w.shape[-1]
    b = min(BLOCK, n)
    full = n // b
    mass = w[..., : full * b].unflatten(-1, (full, b)).sum(-1)  # [..., nb] block totals (views, no copy)
    if full * b < n:
        mass = torch.cat([mass, w[..., full * b :].sum(-1, keepdim=True)], -1)
    cdf = torch.cumsum(mass, -1)
    t = (u * cdf[..., -1:])[..., None]  # [..., j, 1] the targets
    blk = _search(cdf[..., None, :], t, mass[..., None, :])  # [..., j]
    before = torch.gather(cdf - mass, -1, blk)  # [..., j] mass before the chosen block
    at = blk[..., None] * b + torch.arange(b, device=w.device)  # [..., j, b] the chosen blocks' tokens
    rows = torch.gather(w, -1, at.clamp(max=n - 1).flatten(-2)).unflatten(-1, at.shape[-2:])
    rows = torch.where(at < n, rows, 0.0)  # the last block's positions past n
    i = _search(torch.cumsum(rows, -1) + before[..., None], t, rows)
    return (blk * b + i).clamp(max=n - 1)


def _search(cdf, t, w):
    """Per row, the first position with cdf > t, moved onto positive weight: [..., j].

    cdf and w broadcast to [..., j, m] (cdf nondecreasing), t is [..., j, 1]. A position that
    rounding put on zero weight moves to the last positive one before it, else to the first
    after it (as the core's ``_fix_zero_mass``). One count, one max and one min over m: plain
    reductions, which every backend compiles (an ``argmax`` over a flipped mask came out of
    inductor's Triton code with negative positions, 2026-12-04).
    """
    import torch

    m = cdf.shape[-1]
    i = (cdf <= t).sum(-1).clamp(max=m - 1)  # [..., j] the first position with cdf > t
    pos = torch.arange(m, device=cdf.device)
    positive = w > 0
    below = torch.where(positive & (pos <= i[..., None]), pos, -1).amax(-1)  # the last positive <= i
    above = torch.where(positive & (pos > i[..., None]), pos, m).amin(-1)  # the first positive > i
    return torch.where(below >= 0, below, torch.where(above < m, above, i))
