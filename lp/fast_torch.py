r"""Torch (CUDA or CPU) version of :func:`lp.fast.optimal_acceptance`: same formulas, same results.

Convention: p = target, q = draft, last axis = vocabulary, leading axes = positions; sums in
float64. Source: theory.md 2.3 (prefix formulas), 3.4/3.7 (hub closed form).

One sort per row (``torch.sort`` of p/q; float64 keys by default, or float32 keys with
``sort_dtype=torch.float32``, which is faster on GPUs and changes the order only among ratios
equal to ~1e-7 relative, i.e. the value by at most ~1e-7), cumulative sums, a vectorised min over
the n + 1 prefixes. torch is imported inside the functions, so importing this module (e.g. by
``pytest --doctest-modules``) works without torch.
"""

from __future__ import annotations

from spechub_theory.distributions import SUM_ATOL, check_k
from spechub_theory.draft_laws import get_law

__all__ = ["optimal_acceptance"]


def optimal_acceptance(p, q, k: int = 2, *, law: str = "iid", method: str = "auto", sort_dtype=None):
    """Exact optimal acceptance for torch tensors p, q of shape (..., n); see :func:`lp.fast.optimal_acceptance`.

    Parameters
    ----------
    p, q : torch.Tensor, shape (..., n)
        On any device; converted to float64 (``q`` is moved to ``p``'s device).
    k : int
    law : {"iid", "wor", "hub", "hubset"}
    method : {"auto", "prefix"}
        Only the fast formulas exist in torch (i.i.d. any k; w/o replacement k <= 2; hub).
    sort_dtype : torch.dtype, optional
        The dtype of the sort keys (default float64).

    Returns
    -------
    torch.Tensor, shape (...), float64, on ``p``'s device.

    Raises
    ------
    ValueError
        Bad inputs (as the numpy version); "wor" with k >= 3 or ``method`` "cut"/"lp" (use numpy).
    """
    import torch

    law = get_law(law).name
    if method not in ("auto", "prefix"):
        raise ValueError(f"`method` {method!r} is numpy-only; the torch path has 'auto' and 'prefix'.")
    p, q = _check_pq(p, q)
    n = p.shape[-1]
    k = check_k(k, n, distinct=law != "iid")
    if k == 1:
        return torch.minimum(p, q).sum(dim=-1)
    if law == "hub":
        if method == "prefix":
            raise ValueError("`method` 'prefix' is wrong for the hub law (theory.md 2.3); use 'auto'.")
        return _hub(p, q, k)
    if law == "wor" and k > 2:
        raise ValueError(f"no exact large-n method for law='wor' with k >= 3 (k = {k}); use numpy with method='cut'.")
    return _prefix_min(p, q, k, law, sort_dtype or torch.float64)


def _check_pq(p, q):
    """float64 tensors on p's device, validated like :func:`spechub_theory.distributions.check_pq`."""
    import torch

    out = []
    device = p.device if isinstance(p, torch.Tensor) else (q.device if isinstance(q, torch.Tensor) else None)
    for name, x in (("p", p), ("q", q)):
        x = torch.as_tensor(x, dtype=torch.float64, device=device)
        if x.ndim == 0 or x.shape[-1] == 0:
            raise ValueError(f"`{name}` must be a non-empty vector (shape (n,) or (..., n)).")
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"`{name}` must be finite.")
        if bool((x < 0).any()):
            raise ValueError(f"`{name}` must be non-negative.")
        s = x.sum(dim=-1, keepdim=True)
        if bool(((s - 1.0).abs() > SUM_ATOL).any()):
            raise ValueError(f"`{name}` must sum to 1 along the last axis within {SUM_ATOL:g}.")
        out.append(x / s)
    p, q = out
    if p.shape[-1] != q.shape[-1]:
        raise ValueError(f"`p` and `q` must have the same length; got {tuple(p.shape)} and {tuple(q.shape)}.")
    shape = torch.broadcast_shapes(p.shape, q.shape)
    return p.expand(shape), q.expand(shape)


def _prefix_min(p, q, k: int, law: str, sort_dtype):
    """min over the n + 1 p/q-sorted prefixes of the cut bound (``lp.fast.prefix_values``)."""
    import torch

    # p/q with q = 0 -> +inf (p > 0) or 0 (p = 0): two passes over memory instead of a chain of wheres
    ratio = torch.nan_to_num(p / q, nan=0.0, posinf=float("inf"))
    order = torch.sort(ratio.to(sort_dtype), dim=-1).indices  # tie order does not change the minimum
    ps = torch.gather(p, -1, order)
    qs = torch.gather(q, -1, order)
    zero = torch.zeros(p.shape[:-1] + (1,), dtype=torch.float64, device=p.device)
    p_prefix = torch.cat([zero, torch.cumsum(ps, dim=-1)], dim=-1)
    lam = torch.cat([torch.flip(torch.cumsum(torch.flip(qs, [-1]), dim=-1), [-1]), zero], dim=-1).clamp(0.0, 1.0)
    if law == "iid":  # 1 - q(A)^k = lam (1 + s + ... + s^(k-1)), s = q(A): no cancellation
        s = torch.cat([zero, torch.cumsum(qs, dim=-1)], dim=-1)
        poly = torch.ones_like(s)
        for _ in range(k - 1):
            poly = poly * s + 1.0
        return (p_prefix + lam * poly).amin(dim=-1).clamp(0.0, 1.0)
    before = torch.cat([zero, torch.cumsum(qs, dim=-1)], dim=-1)[..., :-1]
    others = before + lam[..., 1:]
    t = torch.where(qs > 0, qs / torch.where(others > 0, others, torch.ones_like(others)), torch.zeros_like(qs))
    values = p_prefix + lam * (1.0 + torch.cat([zero, torch.cumsum(t, dim=-1)], dim=-1))
    out = values.amin(dim=-1)
    degenerate = (q > 0).sum(dim=-1) < 2
    if bool(degenerate.any()):
        out = torch.where(degenerate, _onehot_wor2(p, q), out)
    return out.clamp(0.0, 1.0)


def _onehot_wor2(p, q):
    """One-hot q, k = 2 w/o replacement: min_j [p(a) + (j smallest other p) + 1 - j/(n-1)] and 1."""
    import torch

    n = p.shape[-1]
    a = torch.argmax(q, dim=-1, keepdim=True)
    pa = torch.gather(p, -1, a)
    is_a = torch.arange(n, device=p.device) == a
    rest = torch.sort(torch.where(is_a, torch.full_like(p, float("inf")), p), dim=-1).values[..., : n - 1]
    zero = torch.zeros(p.shape[:-1] + (1,), dtype=torch.float64, device=p.device)
    j = torch.arange(n, dtype=torch.float64, device=p.device)
    vals = pa + torch.cat([zero, torch.cumsum(rest, dim=-1)], dim=-1) + 1.0 - j / max(n - 1, 1)
    return torch.minimum(vals.amin(dim=-1), torch.ones_like(pa[..., 0]))


def _hub(p, q, k: int):
    """Closed form min{1, p(H) + sum_{i not in H} min(p(i), q(i)/q(V minus H))}, H = top-(k-1) of q
    (ties: lowest index, as ``spechub_theory.draft_laws.hub_set``); uniform fallback when q(V minus H) = 0."""
    import torch

    n = p.shape[-1]
    if k == 2:
        H = torch.argmax(q, dim=-1, keepdim=True)  # first maximal index
    else:
        H = torch.sort(q, dim=-1, descending=True, stable=True).indices[..., : k - 1]
    in_hub = torch.zeros_like(p, dtype=torch.bool).scatter(-1, H, True)
    rest_q = torch.where(in_hub, torch.zeros_like(q), q)
    rest = rest_q.sum(dim=-1, keepdim=True)  # 1 - q(H) as the sum of the others
    uniform = (~in_hub).to(torch.float64) / (n - (k - 1))
    w = torch.where(rest > 0, rest_q / torch.where(rest > 0, rest, torch.ones_like(rest)), uniform)
    qH = torch.where(in_hub, q, torch.zeros_like(q)).sum(dim=-1, keepdim=True)
    r = torch.where(in_hub, torch.zeros_like(q), qH * w)  # second-draft mass q(H) w(i), as HubParts.r
    pH = torch.where(in_hub, p, torch.zeros_like(p)).sum(dim=-1)
    outside = torch.where(in_hub, torch.zeros_like(p), torch.minimum(p, q + r)).sum(dim=-1)
    return torch.clamp(pH + outside, max=1.0)
