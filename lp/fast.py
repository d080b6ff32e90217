r"""The exact optimal acceptance :math:`\alpha^*(Q, p)` at real vocabulary sizes, batched over positions.

Convention: p = target, q = draft, last axis = vocabulary (leading axes = positions); float64.
Source: theory.md 2.3 (min-cut, sorted prefixes, the w/o-replacement k = 2 formula), 3.4/3.7 (hub).

Methods (``method="auto"`` picks the first that applies):

* **prefix** (i.i.d. any k; w/o replacement k = 2): one sort per row by p/q ascending, cumulative
  sums, a vectorised minimum over the n + 1 prefixes. O(n log n) per row. W/o replacement k = 3:
  the same prefixes with the exact P_3(A) (:mod:`lp.wor3`), O(n^2) per row, for 12 < n <= 8192.
* **closed form** (hub / hub-set law): ``spechub_theory.methods.spechub.acceptance``, O(n) (k = 2).
  Never sorted prefixes: they are wrong for this law (theory.md 2.3 counterexample).
* **cut**: brute force over all 2^n token sets with the exact Q(S subset A) from the law's
  enumeration (any law, n <= MAX_CUT_N); **lp**: the reduced LP (:mod:`lp.reduced`), small n.

Torch tensors are handled by :mod:`lp.fast_torch` (same formulas, CUDA or CPU).
"""

from __future__ import annotations

import numpy as np

from spechub_theory.distributions import check_k, check_pq
from spechub_theory.draft_laws import DRAFT_LAWS, get_law
from spechub_theory.methods import spechub

from .cut import MAX_CUT_N, min_cut
from .wor3 import WOR3_MAX_N, wor3_prefix_min

__all__ = ["optimal_acceptance", "optimal_rates", "prefix_values", "DRAFTS", "METHODS_FAST"]

DRAFTS = tuple(DRAFT_LAWS)
METHODS_FAST = ("auto", "prefix", "cut", "lp")

#: ``auto`` falls back to the brute-force cut for laws without a fast formula up to this n,
#: and only while the enumeration n^k stays small
AUTO_CUT_MAX_N = 12
AUTO_CUT_MAX_TUPLES = 200_000
#: floats per array processed at once on the prefix path (2 MiB: cache-sized chunks of rows)
CHUNK_ELEMENTS = 1 << 18


def optimal_acceptance(p, q, k: int = 2, *, law: str = "iid", method: str = "auto"):
    r"""Exact optimal acceptance of k drafts from ``q`` against the target ``p``, for a draft law.

    .. math::

        \alpha^*_{iid} = \min_{A\ \text{prefix}} \big[p(A) + 1 - q(A)^k\big], \qquad
        \alpha^*_{wor,2} = \min_{A\ \text{prefix}} \Big[p(A) + \lambda_A \Big(1 + \sum_{x \in A}
        \frac{q(x)}{1 - q(x)}\Big)\Big],\ \lambda_A = q(V \setminus A),

        \alpha^*_{hub} = \min\Big\{1,\ p(H) + \sum_{i \notin H} \min\big(p(i), q(i)/(1 - q(H))\big)\Big\},

    prefixes of the p/q-ascending order (q = 0 last).

    Parameters
    ----------
    p, q : array_like or torch.Tensor, shape (..., n)
        Target and draft (validated, renormalised); torch tensors are computed in torch on their
        device (:func:`lp.fast_torch.optimal_acceptance`).
    k : int
        Drafts per node (>= 1; <= n for "wor" and "hub").
    law : {"iid", "wor", "hub", "hubset"}
        The draft law ("hubset" = "hub": the hub-set law for any k).
    method : {"auto", "prefix", "cut", "lp"}
        "auto": prefix formula (iid; wor with k <= 2; wor k = 3 for 12 < n <= 8192), closed form
        (hub), else the brute-force cut for n <= 12; "prefix": only the prefix formulas;
        "cut": brute force over 2^n sets (n <= 20); "lp": reduced LP (small n).

    Returns
    -------
    ndarray, shape (...)
        The optimal acceptance alpha, float64 in [0, 1] (a torch tensor for torch input).

    Raises
    ------
    ValueError
        Bad p, q or k; an unknown ``law`` or ``method``; "wor" with k >= 4 and n > 12, or k = 3
        and n > 8192 (no exact large-n method: see Notes); "prefix" for a law that has none.

    Notes
    -----
    * k = 1: every law is one draft from q, alpha* = 1 - TV(p, q).
    * i.i.d.: the prefix reduction is proved (theory.md 2.3). ``1 - q(A)^k`` is computed as
      ``lambda (1 + s + ... + s^(k-1))`` with lambda the suffix and s the prefix sum of q (no
      cancellation).
    * w/o replacement, k = 2: the prefix reduction is **not proved**; it matched the brute-force
      cut over all 2^n sets on 40,000 random cases (n <= 9; Dirichlet, sparse, ties, one-hot and
      near-one-hot q, p = perturbed q, p on the low-q tokens) and 500 adversarial local searches,
      max discrepancy 6.7e-16 (docs/lp.md; ``benchmarks/wor_prefix_evidence.py``). ``1 - q(x)`` is
      the sum of the other entries (prefix + suffix sums) and lambda a suffix sum. A row whose q
      has fewer than 2 positive entries (one-hot q) uses the uniform second draft of the core's
      draft law: alpha = min_j [p(a) + (sum of the j smallest other p) + 1 - j/(n-1)].
    * w/o replacement, k = 3: n <= 12 by the brute-force cut (exact, no assumption); larger n up to
      WOR3_MAX_N = 8192 by the sorted prefixes with the exact P_3(A) (:mod:`lp.wor3`, O(n^2) per
      row, seconds at n = 4096; prefix property unproved, 8,131 random cases + 500 searches agree);
      a row whose q has fewer than 3 positive entries, or n > 8192, raises. k >= 4: enumeration
      only ("cut"/"lp"); ``auto`` raises for n > 12.
    * Cost: prefix O(n log n) per row (one sort); closed form O(n) (k = 2) or O(n log n);
      cut O(n 2^n + n^k) per row; lp: an LP with up to k n^k variables per row.

    Examples
    --------
    >>> p, q = [.3, .3, .4], [.6, .3, .1]          # theory.md 6.1, E2
    >>> [round(float(optimal_acceptance(p, q, 2, law=d)), 6) for d in ("iid", "wor", "hub")]
    [0.79, 0.892857, 0.85]
    """
    if _is_torch(p) or _is_torch(q):
        from .fast_torch import optimal_acceptance as torch_version

        return torch_version(p, q, k, law=law, method=method)
    law = get_law(law).name
    if method not in METHODS_FAST:
        raise ValueError(f"`method` {method!r} is not one of {', '.join(map(repr, METHODS_FAST))}.")
    p, q = check_pq(p, q)
    n = p.shape[-1]
    k = check_k(k, n, distinct=law != "iid")
    if k == 1 and method in ("auto", "prefix"):
        return np.minimum(p, q).sum(axis=-1)
    if method in ("auto", "prefix"):
        if law == "hub":
            if method == "prefix":
                raise ValueError("`method` 'prefix' is wrong for the hub law (theory.md 2.3); use 'auto'.")
            return spechub.acceptance(p, q, k)
        if law == "iid" or k == 2:
            return _prefix_min_chunked(p, q, k, (law,))[law]
        small = n <= AUTO_CUT_MAX_N and _perm_count(n, k) <= AUTO_CUT_MAX_TUPLES
        if k == 3 and n <= WOR3_MAX_N and (method == "prefix" or not small) and ((q > 0).sum(axis=-1) >= 3).all():
            return _per_row(p, q, k, law, "wor3")
        if not small or method == "prefix":
            raise ValueError(
                f"no exact large-n method for law='wor' with k = {k}, n = {n}: the k = 3 prefix "
                f"method needs n <= {WOR3_MAX_N} and 3 positive q entries, k >= 4 has none; "
                f"use method='cut' or 'lp' for n <= {AUTO_CUT_MAX_N}."
            )
        method = "cut"
    return _per_row(p, q, k, law, method)


#: how ``optimal_rates`` computes optimal_wor at k = 2 (also the torch backend's note)
PREFIX_NOTE = "sorted-prefix formula (exact on every case tested; the prefix property is unproved, docs/lp.md)."


def optimal_rates(p, q, k: int = 2) -> dict:
    """The optima ``bound`` reports: ``{"optimal_iid", "optimal_wor", "notes"}``.

    ``optimal_iid`` and ``optimal_wor`` are arrays of shape (...) (``optimal_wor`` is ``None`` when
    no exact method applies: w/o replacement with k = 3 and n > 8192, or k >= 4 and n > 12);
    ``notes`` maps a name to a sentence saying how it was computed or why it is missing. For k = 2
    one sort per row serves both optima.

    Parameters
    ----------
    p, q : array_like
        Target and draft laws, shape (..., n).
    k : int, optional
        Number of drafts, >= 1.

    Returns
    -------
    dict
        ``{"optimal_iid": ndarray, "optimal_wor": ndarray or None, "notes": dict}``.

    Raises
    ------
    ValueError
        If ``p`` or ``q`` is not a distribution or ``k`` is not a positive integer.

    Examples
    --------
    >>> r = optimal_rates([.3, .3, .4], [.6, .3, .1], 2)
    >>> round(float(r["optimal_iid"]), 6), round(float(r["optimal_wor"]), 6)
    (0.79, 0.892857)
    """
    p, q = check_pq(p, q)
    n = p.shape[-1]
    k = check_k(k)
    if k == 2 and n >= 2:  # one sort per row serves both laws
        both = _prefix_min_chunked(p, q, 2, ("iid", "wor"))
        return {"optimal_iid": both["iid"], "optimal_wor": both["wor"], "notes": {"optimal_wor": PREFIX_NOTE}}
    out = {"optimal_iid": optimal_acceptance(p, q, k, law="iid"), "optimal_wor": None, "notes": {}}
    if k > n:
        out["notes"]["optimal_wor"] = f"k = {k} distinct drafts need n >= k; n = {n}."
        return out
    try:
        out["optimal_wor"] = optimal_acceptance(p, q, k, law="wor")
    except ValueError as exc:
        out["notes"]["optimal_wor"] = str(exc)
        return out
    if n <= AUTO_CUT_MAX_N:
        out["notes"]["optimal_wor"] = f"exact brute-force min-cut over 2^{n} sets."
    else:
        out["notes"]["optimal_wor"] = "sorted prefixes with the exact P_3(A), O(n^2) (prefix property unproved, docs/lp.md)."
    return out


def prefix_values(p: np.ndarray, q: np.ndarray, k: int, *, law: str = "iid") -> np.ndarray:
    r"""The min-cut bound at every p/q-sorted prefix A_L (L = 0..n), shape (..., n + 1).

    ``law`` is "iid" (any k) or "wor" (k = 2). Inputs are validated float64 arrays. The minimum
    over the last axis is the optimum; the argmin L gives the certificate A = the first L tokens
    of the p/q-ascending order (q = 0 last; :func:`spechub_theory.methods._sorted.ratio_order` up to
    ties). O(n log n) per row: one sort, cumulative sums.

    Parameters
    ----------
    p, q : numpy.ndarray
        Validated float64 target and draft laws, shape (..., n).
    k : int
        Number of drafts.
    law : str, optional
        ``"iid"`` (any k) or ``"wor"`` (k = 2).

    Returns
    -------
    numpy.ndarray
        The bound at each prefix length L = 0..n, shape (..., n + 1).
    """
    return _prefix_tables(p, q, k, (law,))[law]


def _prefix_tables(p: np.ndarray, q: np.ndarray, k: int, laws: tuple) -> dict:
    """``{law: prefix values}`` for several laws from one sort (see :func:`prefix_values`)."""
    p, q = np.broadcast_arrays(p, q)
    ratio = np.divide(p, q, out=np.full(p.shape, np.inf), where=q > 0)
    ratio[(q <= 0) & (p <= 0)] = 0.0  # tokens in neither support: anywhere (value unaffected)
    order = np.argsort(ratio, axis=-1)  # unstable sort: the minimum does not depend on tie order
    ps = np.take_along_axis(p, order, axis=-1)
    qs = np.take_along_axis(q, order, axis=-1)
    zero = np.zeros(p.shape[:-1] + (1,))
    p_prefix = np.concatenate([zero, np.cumsum(ps, axis=-1)], axis=-1)
    lam = np.concatenate([np.cumsum(qs[..., ::-1], axis=-1)[..., ::-1], zero], axis=-1)  # q outside A_L
    lam = np.clip(lam, 0.0, 1.0)
    s = np.concatenate([zero, np.cumsum(qs, axis=-1)], axis=-1)  # q(A_L)
    out = {}
    if "iid" in laws:  # 1 - q(A)^k = lam (1 + s + ... + s^(k-1)): no cancellation
        poly = np.ones_like(s)
        for _ in range(k - 1):
            poly = poly * s + 1.0
        out["iid"] = p_prefix + lam * poly
    if "wor" in laws:
        others = s[..., :-1] + lam[..., 1:]  # 1 - q(x) as the sum of the other entries
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(qs > 0, qs / others, 0.0)
            values = p_prefix + lam * (1.0 + np.concatenate([zero, np.cumsum(t, axis=-1)], axis=-1))
        degenerate = (q > 0).sum(axis=-1) < 2
        if degenerate.any():
            values = np.where(degenerate[..., None], _onehot_wor2(p, q), values)
        out["wor"] = values
    return out


def _prefix_min_chunked(p: np.ndarray, q: np.ndarray, k: int, laws: tuple) -> dict:
    """``{law: min over prefixes}``, a few rows at a time, so that the temporaries of a chunk
    (CHUNK_ELEMENTS floats each) stay in cache instead of streaming whole batches through memory;
    one sort per row serves all ``laws``."""
    lead = np.broadcast_shapes(p.shape[:-1], q.shape[:-1])
    n = p.shape[-1]
    pb = np.broadcast_to(p, lead + (n,)).reshape(-1, n)
    qb = np.broadcast_to(q, lead + (n,)).reshape(-1, n)
    step = max(1, CHUNK_ELEMENTS // n)
    out = {law: np.empty(len(pb)) for law in laws}
    for start in range(0, len(pb), step):
        rows = slice(start, start + step)
        for law, values in _prefix_tables(pb[rows], qb[rows], k, laws).items():
            out[law][rows] = values.min(axis=-1)
    return {law: v.reshape(lead).clip(0.0, 1.0) for law, v in out.items()}


def _onehot_wor2(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Cut values for one-hot q, k = 2 w/o replacement (second draft uniform on the other n-1 tokens):
    A = {a} plus the j smallest other p's, value p(a) + p(those) + 1 - j/(n-1); shape (..., n + 1)
    (the last entry repeats the first prefix, A = empty, value 1)."""
    n = p.shape[-1]
    a = np.argmax(q, axis=-1)[..., None]
    pa = np.take_along_axis(p, a, axis=-1)
    rest = np.sort(np.where(np.arange(n) == a, np.inf, p), axis=-1)[..., : n - 1]
    j = np.arange(n)
    vals = pa + np.concatenate([np.zeros(p.shape[:-1] + (1,)), np.cumsum(rest, axis=-1)], axis=-1)
    vals = vals + 1.0 - j / max(n - 1, 1)
    return np.concatenate([vals, np.ones(p.shape[:-1] + (1,))], axis=-1)


def _per_row(p, q, k, law, method):
    """Brute-force cut, reduced LP or the k = 3 w/o-replacement prefix loop, one row at a time."""
    from .reduced import solve_reduced

    lead = np.broadcast_shapes(p.shape[:-1], q.shape[:-1])
    pb = np.broadcast_to(p, lead + p.shape[-1:])
    qb = np.broadcast_to(q, lead + q.shape[-1:])
    if method == "cut" and p.shape[-1] > MAX_CUT_N:
        raise ValueError(f"`method` 'cut' enumerates 2^n sets; n = {p.shape[-1]} exceeds {MAX_CUT_N}.")
    out = np.empty(lead)
    for idx in np.ndindex(*lead):
        if method == "wor3":
            out[idx] = wor3_prefix_min(pb[idx], qb[idx])
            continue
        support = get_law(law).enumerate(qb[idx], k)
        out[idx] = min_cut(support, pb[idx]).value if method == "cut" else solve_reduced(support, pb[idx]).value
    return out.clip(0.0, 1.0)


def _perm_count(n: int, k: int) -> int:
    out = 1
    for j in range(k):
        out *= n - j
    return out


def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")
