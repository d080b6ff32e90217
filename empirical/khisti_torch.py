r"""Khisti et al.'s importance-sampling verifier at real vocabulary sizes: its exact selection law and acceptance, in torch.

Convention: p = target, q = draft, last axis = vocabulary, float64 tensors on any device; k = 2
i.i.d. drafts. Source: the numpy reference :mod:`spechub_theory.methods.khisti_is` (Khisti,
Ebrahimi, Dbouk, Behboodi, Memisevic, Louizos, ICLR 2025, arXiv 2410.18234; theory.md 5.2).

The law of the selected token for k = 2 is

.. math::
    s(y) = 2\, q(y) \sum_z q(z)\, \frac{w(y)}{w(y) + w(z)}, \qquad w = p / q \ (0 \text{ where } q = 0),

the ratio read as 1/2 when w(y) + w(z) = 0, and the acceptance is :math:`\sum_y \min(p(y), s(y))`.
The kernel w(y)/(w(y) + w(z)) does not factor, so this is exact enumeration of the other draft:
O(n^2) per row, here in z-chunks of bounded memory on the device (n = 151,936: 2.3e10 kernel
terms per row, three float64 passes over each, about 0.5 TB of memory traffic: of the order of a
second per row on an H200 by bandwidth, not yet measured; on one CPU core ~50 ns per term,
i.e. about 20 minutes per row, and the numpy core refuses beyond ``MAX_RATE_COST``). For k > 2 the other drafts' sum has n^(k-1) values per token:
refused. This is for node tables (exact rates at collected real nodes), not for decoding: a
decoder would need s at every verified node of every step.
"""

from __future__ import annotations

__all__ = ["selection_law", "acceptance", "CHUNK_ENTRIES"]

#: (tokens x other-draft tokens) kernel entries per chunk: 2^26 float64 = 512 MB of device memory
CHUNK_ENTRIES = 2**26


def selection_law(p, q, k: int = 2, *, chunk_entries: int = CHUNK_ENTRIES):
    r"""Law s of the token that Khisti et al.'s importance-sampling step selects, rows of float64 tensors.

    Parameters
    ----------
    p, q : tensor, shape (..., n)
        Target and draft laws, float64 (validated by the caller; rows sum to 1).
    k : int
        Drafts per node: 1 (s = q) or 2.
    chunk_entries : int
        Kernel entries computed at once (memory bound: 8 bytes each).

    Returns
    -------
    tensor, shape (..., n)
        The selection law s, equal to :func:`spechub_theory.methods.khisti_is.selection_law` (parity-tested in float64).

    Raises
    ------
    ValueError
        If ``k`` is not 1 or 2 (k > 2 needs n^(k-1) terms per token).

    Notes
    -----
    O(n^2) time per row and O(n * chunk) memory, rows one after the other: for each chunk of
    other-draft tokens z, ``acc[y] += sum_z q(z) w(y) / (w(y) + w(z))`` as one device kernel and
    one matrix-vector product.
    """
    import torch

    if k not in (1, 2):
        raise ValueError(f"`k` must be 1 or 2 for the torch selection law of 'khisti_is' (k > 2 needs n^(k-1) terms per token); got {k}.")
    if k == 1:
        return q.clone()
    shape = torch.broadcast_shapes(p.shape, q.shape)
    n = shape[-1]
    p2, q2 = p.expand(shape).reshape(-1, n), q.expand(shape).reshape(-1, n)
    w = torch.where(q2 > 0, p2 / torch.where(q2 > 0, q2, 1.0), 0.0)  # [rows, n]
    step = max(1, int(chunk_entries) // n)
    out = torch.empty_like(w)
    for r in range(w.shape[0]):
        wy = w[r][:, None]  # [n, 1]
        acc = torch.zeros(n, dtype=w.dtype, device=w.device)
        for lo in range(0, n, step):
            wz, qz = w[r, lo : lo + step], q2[r, lo : lo + step]
            ratio = wy + wz[None, :]  # [n, chunk]: the denominator, then in place the ratio
            torch.div(wy, ratio, out=ratio)
            ratio.nan_to_num_(nan=0.5)  # 0/0: w(y) = w(z) = 0 (no other 0/0 arises: w >= 0)
            acc += ratio @ qz
        out[r] = 2.0 * q2[r] * acc
    return out.reshape(shape)


def acceptance(p, q, k: int = 2, *, chunk_entries: int = CHUNK_ENTRIES):
    r"""Exact acceptance :math:`\sum_y \min(p(y), s(y))` of ``khisti_is`` with k = 1 or 2 drafts.

    Parameters
    ----------
    p, q : tensor, shape (..., n)
        Target and draft laws, float64.
    k : int
        Drafts per node (1 or 2).
    chunk_entries : int
        As :func:`selection_law`.

    Returns
    -------
    tensor, shape (...)
        The acceptance per row, equal to :func:`spechub_theory.methods.khisti_is.acceptance`.

    Raises
    ------
    ValueError
        As :func:`selection_law`.
    """
    import torch

    return torch.minimum(p, selection_law(p, q, k, chunk_entries=chunk_entries)).sum(-1)
