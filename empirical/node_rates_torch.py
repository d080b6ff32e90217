r"""Exact two-draft acceptance of every method and both optima at real nodes, on the model's device.

Convention: p = target, q = draft, rows = verified nodes with k = 2 drafts, last axis = vocabulary
(n = 151,936 for Qwen2.5: a row of each is 1.2 MB in float64, so the rates are computed where the
laws already are instead of on the host). :func:`all_rates` is the torch twin of
:func:`lp.all_rates` (same values, parity-tested on CPU in float64); sums in float64.

Sources: single, RRS, RRS w/o, SpecHub: :func:`empirical.distill_eval.acceptance_k2` (theory.md
3.4, 4.2, 4.3); K-SEQ: theory.md 2.4, the smallest valid rho in [1, 2] by bisection on the direct
sum A(rho) = sum_x min(rho q(x), p(x)); optima: :func:`lp.fast.optimal_acceptance` on torch tensors
(``lp.fast_torch``, prefix formulas of theory.md 2.3).
"""

from __future__ import annotations

import numpy as np

from lp.fast import PREFIX_NOTE
from lp.rates import OPTIMA
from spechub_theory.acceptance import AcceptanceRates
from spechub_theory.methods import METHOD_NAMES

__all__ = ["DEVICE_NODE_METHODS", "TORCH_METHODS", "all_rates", "node_scalars", "kseq_k2"]

#: the methods with a torch implementation (k = 2), in report order
TORCH_METHODS = ("single", "rrs", "rrs_wor", "kseq", "spechub")
#: the node table's columns: those methods and both optima
DEVICE_NODE_METHODS = TORCH_METHODS + OPTIMA
#: bisection steps on rho in [1, 2]: 2^-80 is below float64 resolution
_KSEQ_STEPS = 80
#: round-off allowance of the validity test, as ``spechub_theory.methods.kseq``
_VALID_ATOL = 1e-14


def kseq_k2(p, q):
    r"""K-SEQ acceptance with k = 2 drafts at the best valid rho, rows of float64 tensors (m, n).

    .. math:: \alpha = 1 - (1 - \beta(\rho^*))^2, \quad \beta(\rho) = A(\rho)/\rho,\ A(\rho) = \sum_x \min(\rho q(x), p(x)),

    rho* = the smallest rho in [1, 2] with 1 - (1 - beta)^2 <= A (validity is monotone in rho).
    O(steps n) per row, no host sync. Returns a float64 tensor (m,).

    Parameters
    ----------
    p, q : torch.Tensor, shape (..., n)
        Target and draft laws, last axis = vocabulary (float64).

    Returns
    -------
    torch.Tensor
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


def all_rates(p, q, k: int = 2, *, methods=None, optima=OPTIMA, chunk: int = 64) -> AcceptanceRates:
    """Exact acceptance of each method and both optima for rows of torch tensors.

    The torch twin of :func:`lp.all_rates` (same name, signature and result class; k = 2 only).

    Parameters
    ----------
    p, q : torch.Tensor, shape (m, n)
        Target and draft laws (any float dtype, any device; upcast to float64 and renormalised).
    k : int
        Drafts per node; this backend computes k = 2.
    methods : iterable of str, optional
        Method names (default: :data:`TORCH_METHODS`). A name of
        :data:`spechub_theory.METHOD_NAMES` without a torch implementation is ``None`` with a note.
    optima : iterable of str
        Subset of :data:`lp.OPTIMA` (default both).
    chunk : int
        Rows handled at once (memory: ~12 float64 arrays of chunk x n).

    Returns
    -------
    AcceptanceRates
        Host numpy arrays of shape (m,): ``tv``, ``hub`` (a = argmax q, lowest index on ties) and
        one float64 rate per requested name; an optimum whose solve failed is NaN on the rows of
        that chunk (with a note), and ``None`` with a note where it failed on every row.

    Raises
    ------
    ValueError
        k other than 2, an unknown name, or p and q of different shapes.

    Notes
    -----
    O(n log n) per row for the optima (one sort), O(n) for the closed forms, O(steps n) for K-SEQ.
    """
    methods = TORCH_METHODS if methods is None else tuple(methods)
    optima = tuple(optima)
    if k != 2:
        raise ValueError(f"`k` must be 2 on the torch backend; got {k!r}.")
    for arg, names, allowed in (("methods", methods, METHOD_NAMES), ("optima", optima, OPTIMA)):
        bad = [m for m in names if m not in allowed]
        if bad:
            raise ValueError(f"`{arg}` entry {bad[0]!r} is not one of {', '.join(map(repr, allowed))}.")
    cols = _columns(p, q, tuple(m for m in methods if m in TORCH_METHODS) + optima, chunk)
    notes = {m: "not implemented on the torch backend (use lp.all_rates)." for m in methods if m not in TORCH_METHODS}
    rates = {m: None for m in notes}
    for m in methods + optima:
        if m in rates:
            continue
        failed = np.isnan(cols[m])
        rates[m] = None if failed.all() and len(failed) else cols[m]
        if failed.any():
            notes[m] = f"the optimum could not be computed at {int(failed.sum())} of {len(failed)} rows: {cols['errors'][m]}"
    if "optimal_wor" in rates and rates["optimal_wor"] is not None and "optimal_wor" not in notes:
        notes["optimal_wor"] = PREFIX_NOTE
    return AcceptanceRates(2, int(p.shape[-1]), cols["tv"], cols["hub"], {m: rates[m] for m in methods + optima}, notes)


def node_scalars(p, q, *, chunk: int = 64) -> dict:
    """The node table's per-row scalars besides the rates.

    q(a), p(a) (a = argmax q, lowest index on ties) and the theory.md 3.6 conditions P2 (q(a)/(1 -
    q(a)) >= TV: SpecHub >= RRS) and P3 (q(a) >= TV: SpecHub >= RRS w/o).

    Parameters
    ----------
    p, q : torch.Tensor, shape (m, n)
        Target and draft laws (upcast to float64 and renormalised, as in :func:`all_rates`).
    chunk : int
        Rows handled at once.

    Returns
    -------
    dict of host numpy arrays of length m: ``hub_q``, ``hub_p`` (float64), ``p2``, ``p3`` (bool).

    Raises
    ------
    ValueError
        p and q of different shapes.

    Notes
    -----
    O(n) per row.
    """
    cols = _columns(p, q, (), chunk)
    return {key: cols[key] for key in ("hub_q", "hub_p", "p2", "p3")}


def _columns(p, q, methods: tuple, chunk: int) -> dict:
    """Every per-row column (``tv``, ``hub``, ``hub_q``, ``hub_p``, ``p2``, ``p3``, one per method)
    as host numpy arrays, chunk by chunk; ``errors``: optimum -> the last failure's message."""
    import torch

    from lp.fast import optimal_acceptance

    from .distill_eval import acceptance_k2

    if tuple(p.shape) != tuple(q.shape) or p.ndim != 2:
        raise ValueError(f"`p` and `q` must both have shape (m, n); got {tuple(p.shape)} and {tuple(q.shape)}.")
    keys = ("tv", "hub", "hub_q", "hub_p", "p2", "p3", *methods)
    cols: dict = {key: [] for key in keys}
    errors: dict = {}
    for start in range(0, p.shape[0], chunk):
        pc = p[start:start + chunk].double()
        qc = q[start:start + chunk].double().to(pc.device)
        pc, qc = pc / pc.sum(-1, keepdim=True), qc / qc.sum(-1, keepdim=True)
        hub = qc.argmax(-1, keepdim=True)
        q_a, p_a = qc.gather(-1, hub)[:, 0], pc.gather(-1, hub)[:, 0]
        others = qc.scatter(-1, hub, 0.0).sum(-1)  # 1 - q(a) without cancellation
        tv = 0.5 * (pc - qc).abs().sum(-1)
        out = {"tv": tv, "hub": hub[:, 0], "hub_q": q_a, "hub_p": p_a, "p2": q_a >= tv * others, "p3": q_a >= tv}
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
                except (ValueError, RuntimeError) as exc:  # recorded as missing, as node_rates does
                    out[m] = torch.full_like(tv, float("nan"))
                    errors[m] = str(exc)
        for key, value in out.items():
            cols[key].append(value.cpu().numpy())
    empty = {"p2": bool, "p3": bool, "hub": np.int64}
    found = {key: (np.concatenate(v) if v else np.zeros(0, dtype=empty.get(key, np.float64))) for key, v in cols.items()}
    found["errors"] = errors
    return found
