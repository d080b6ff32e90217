r"""Exact two-draft acceptance of every method and both optima at real nodes, on the model's device.

Convention: p = target, q = draft, rows = verified nodes with k = 2 drafts, last axis = vocabulary
(n = 151,936 for Qwen2.5: a row of each is 1.2 MB in float64, so the rates are computed where the
laws already are instead of on the host). Same values as :func:`empirical.node_rates.node_rates`
(the float64 numpy core and ``lp.fast``), parity-tested; sums in float64.

Sources: single, RRS, RRS w/o, SpecHub: :func:`empirical.distill_eval.acceptance_k2` (theory.md
3.4, 4.2, 4.3); K-SEQ: theory.md 2.4, the smallest valid rho in [1, 2] by bisection on the direct
sum A(rho) = sum_x min(rho q(x), p(x)); optima: :func:`lp.fast.optimal_acceptance` on torch tensors
(``lp.fast_torch``, prefix formulas of theory.md 2.3).
"""

from __future__ import annotations

import numpy as np

__all__ = ["DEVICE_NODE_METHODS", "node_rates_k2", "kseq_k2"]

#: the methods computed here (k = 2), in report order
DEVICE_NODE_METHODS = ("single", "rrs", "rrs_wor", "kseq", "spechub", "optimal_iid", "optimal_wor")
#: bisection steps on rho in [1, 2]: 2^-80 is below float64 resolution
_KSEQ_STEPS = 80
#: round-off allowance of the validity test, as ``spechub_theory.methods.kseq``
_VALID_ATOL = 1e-14


def kseq_k2(p, q):
    r"""K-SEQ acceptance with k = 2 drafts at the best valid rho, rows of float64 tensors (m, n).

    .. math:: \alpha = 1 - (1 - \beta(\rho^*))^2, \quad \beta(\rho) = A(\rho)/\rho,\ A(\rho) = \sum_x \min(\rho q(x), p(x)),

    rho* = the smallest rho in [1, 2] with 1 - (1 - beta)^2 <= A (validity is monotone in rho).
    O(steps n) per row, no host sync. Returns a float64 tensor (m,).
    """
    import torch

    lo = torch.ones(p.shape[:-1], dtype=torch.float64, device=p.device)
    hi = torch.full_like(lo, 2.0)

    def valid(rho):
        A = torch.minimum(rho[..., None] * q, p).sum(-1)
        return 1.0 - (1.0 - A / rho) ** 2 <= A + _VALID_ATOL

    at_one = valid(lo)
    for _ in range(_KSEQ_STEPS):
        mid = 0.5 * (lo + hi)
        ok = valid(mid)
        hi = torch.where(ok, mid, hi)
        lo = torch.where(ok, lo, mid)
    rho = torch.where(at_one, torch.ones_like(hi), hi)
    beta = torch.minimum(rho[..., None] * q, p).sum(-1) / rho
    return 1.0 - (1.0 - beta) ** 2


def node_rates_k2(p, q, methods=DEVICE_NODE_METHODS, *, chunk: int = 64) -> dict:
    """Per-node scalars for rows with k = 2: TV, q(a), p(a) (a = argmax q, lowest index on ties),
    the theory.md 3.6 conditions P2 (q(a)/(1 - q(a)) >= TV: SpecHub >= RRS) and P3 (q(a) >= TV:
    SpecHub >= RRS w/o), and each method's exact acceptance.

    Parameters
    ----------
    p, q : torch.Tensor, shape (m, n)
        Target and draft laws (any float dtype, any device; upcast to float64 and renormalised).
    methods : iterable of str
        Names from :data:`DEVICE_NODE_METHODS`.
    chunk : int
        Rows handled at once (memory: ~12 float64 arrays of chunk x n).

    Returns
    -------
    dict of host numpy arrays of length m: ``tv``, ``hub_q``, ``hub_p`` (float64), ``p2``, ``p3``
    (bool) and one float64 column per method (NaN where an optimum could not be computed).

    Raises
    ------
    ValueError
        An unknown method, or p and q of different shapes.
    """
    import torch

    from lp.fast import optimal_acceptance

    from .distill_eval import acceptance_k2

    methods = tuple(methods)
    bad = [m for m in methods if m not in DEVICE_NODE_METHODS]
    if bad:
        raise ValueError(f"node method {bad[0]!r} is not one of {', '.join(map(repr, DEVICE_NODE_METHODS))}.")
    if tuple(p.shape) != tuple(q.shape) or p.ndim != 2:
        raise ValueError(f"`p` and `q` must both have shape (m, n); got {tuple(p.shape)} and {tuple(q.shape)}.")
    cols: dict = {key: [] for key in ("tv", "hub_q", "hub_p", "p2", "p3", *methods)}
    for start in range(0, p.shape[0], chunk):
        pc = p[start:start + chunk].double()
        qc = q[start:start + chunk].double().to(pc.device)
        pc, qc = pc / pc.sum(-1, keepdim=True), qc / qc.sum(-1, keepdim=True)
        hub = qc.argmax(-1, keepdim=True)
        q_a, p_a = qc.gather(-1, hub)[:, 0], pc.gather(-1, hub)[:, 0]
        others = qc.scatter(-1, hub, 0.0).sum(-1)  # 1 - q(a) without cancellation
        tv = 0.5 * (pc - qc).abs().sum(-1)
        out = {"tv": tv, "hub_q": q_a, "hub_p": p_a, "p2": q_a >= tv * others, "p3": q_a >= tv}
        closed = [m for m in methods if m in ("single", "rrs", "rrs_wor", "spechub")]
        if closed:
            rates = acceptance_k2(pc, qc)
            out.update({m: rates[m] for m in closed})
        if "kseq" in methods:
            out["kseq"] = kseq_k2(pc, qc)
        for m, law in (("optimal_iid", "iid"), ("optimal_wor", "wor")):
            if m in methods:
                try:
                    out[m] = optimal_acceptance(pc, qc, 2, law=law)
                except (ValueError, RuntimeError):  # recorded as missing, as node_rates does
                    out[m] = torch.full_like(tv, float("nan"))
        for key, value in out.items():
            cols[key].append(value.cpu().numpy())
    return {key: (np.concatenate(v) if v else np.zeros(0, dtype=bool if key in ("p2", "p3") else np.float64))
            for key, v in cols.items()}
