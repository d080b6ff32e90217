r"""Next-token laws from model logits on the device: temperature, top-p and greedy, in float32.

Convention: p = target, q = draft, last axis = vocabulary. The same function makes p and q, so
both see the same temperature and nucleus (seed-notes 6 item 7). Same name and signature as
``spechub_theory.distributions.probs_from_logits`` (the float64 numpy reference; parity-tested).
"""

from __future__ import annotations

import numpy as np

__all__ = ["probs_from_logits", "to_float64_law"]


def probs_from_logits(logits, temperature: float = 1.0, top_p: float = 1.0):
    r"""Compute the probabilities :math:`\mathrm{softmax}(z / T)` with optional nucleus truncation, in torch.

    Parameters
    ----------
    logits : torch.Tensor, shape (..., n)
        Any float dtype; upcast to float32 before anything else (never fp16 probabilities).
    temperature : float
        ``T > 0`` divides the logits; ``T == 0`` is greedy: one-hot at the argmax (first index on
        ties). Negative or non-finite values raise.
    top_p : float in (0, 1]
        Keep the smallest set of most probable tokens whose mass reaches ``top_p`` (ties broken by
        index, as in the reference), renormalise; ``1.0`` keeps everything.

    Returns
    -------
    torch.Tensor, shape (..., n), float32, on the logits' device.

    Raises
    ------
    ValueError
        On a negative temperature or ``top_p`` outside (0, 1].

    Notes
    -----
    O(n) per row, O(n log n) with top-p (one sort). No host-device synchronisation.
    """
    import torch

    temperature = float(temperature)
    top_p = float(top_p)
    if not np.isfinite(temperature) or temperature < 0:
        raise ValueError(f"`temperature` must be >= 0 (0 = greedy); got {temperature}.")
    if not (0.0 < top_p <= 1.0):
        raise ValueError(f"`top_p` must be in (0, 1]; got {top_p}.")
    z = logits.float()  # [..., n]
    if temperature == 0.0:
        out = torch.zeros_like(z)
        return out.scatter_(-1, z.argmax(dim=-1, keepdim=True), 1.0)
    probs = torch.softmax(z / temperature, dim=-1)
    if top_p < 1.0:
        sorted_p, order = torch.sort(probs, dim=-1, descending=True, stable=True)
        before = torch.cumsum(sorted_p, dim=-1) - sorted_p  # mass strictly before each token
        keep = torch.zeros_like(probs, dtype=torch.bool).scatter_(-1, order, before < top_p)
        probs = torch.where(keep, probs, torch.zeros_like(probs))
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs


def to_float64_law(probs) -> np.ndarray:
    """Copy float32 probabilities (torch, any device) to host float64 numpy, renormalised.

    float32 sums over ~5e4 entries drift by up to ~1e-6; the core checks sums at that
    tolerance, so rows are renormalised in float64 here. Shape is kept; O(n) per row, one
    device-to-host copy.

    Parameters
    ----------
    probs : torch.Tensor

    Returns
    -------
    numpy.ndarray
    """
    arr = probs.detach().to("cpu").numpy().astype(np.float64)
    return arr / arr.sum(axis=-1, keepdims=True)
