r"""The per-node preparation of the optimal i.i.d. verifier: cut, water levels, selection law, gap levels.

Convention: p = target, q = draft, last axis = vocabulary; k i.i.d. drafts from q; r = p/q.
Source: theory.md 2.3 (the sorted-prefix cut); docs/optimal-verifier.md (levels mu, lambda, the
selected-draft law q~ and the nested chain of block partitions that realises it).

Built once per (p, q, k) by :func:`optimal_plan` and reused for every verification
(:mod:`spechub_theory.methods.optimal`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from .base import RESIDUAL_EPS
from .optimal_levels import kinetic_levels as _kinetic_levels, region_levels
from .range_max import BLOCK, RangeMax, padded_size, range_max, range_max_of_blocks

__all__ = ["OptimalPlan", "optimal_plan", "cut_values", "range_max_table", "NEGLIGIBLE_LAW_ERROR", "negligible_budget"]

#: bound on sum |q~_used - q~| from merging the smallest-q tokens at once into units (no sequential
#: pass for them): their total q-mass is at most NEGLIGIBLE_LAW_ERROR / (2 k) (:func:`negligible_budget`),
#: a unit's selection mass moves by at most k times its negligible mass, so the law used is within
#: this of the exact q~ in total, the acceptance within half of it (2e-13) of alpha*, and the output
#: law stays exactly p (docstring of optimal_plan)
NEGLIGIBLE_LAW_ERROR = 4e-13


def negligible_budget(k: int) -> float:
    """Total q-mass of the smallest-q tokens that the plan merges at once for k drafts.

    Parameters
    ----------
    k : int
        Number of drafts (>= 1).

    Returns
    -------
    float
        ``NEGLIGIBLE_LAW_ERROR / (2 k)``: 1e-13 at k = 2. O(1).
    """
    return NEGLIGIBLE_LAW_ERROR / (2 * k)


@dataclass(frozen=True)
class OptimalPlan:
    """Everything a verification of k i.i.d. drafts needs at one node (one (p, q, k)).

    Attributes
    ----------
    k, n : int
    order : ndarray of int64, shape (M,)
        The drafted tokens (q > 0) by ascending p/q (ties in index order: :func:`_argsort_ratios`).
    rank : ndarray of int64, shape (n,)
        Position of each token in ``order`` (-1 for q = 0: never drafted).
    m : int
        The cut: B = order[:m] (over-covered), C = order[m:].
    mu, lam : float
        Water levels: q~ = max(p, mu q) on B, min(p, lam q) on C.
    alpha : float
        Optimal acceptance alpha* = p(B) + 1 - q(B)^k (the cut value).
    q_tilde : ndarray, shape (n,)
        Law of the selected draft (0 off supp q); sums to 1.
    accept_ratio : ndarray, shape (n,)
        min(1, p/q~) (0 where q~ = 0).
    residual : ndarray, shape (n,)
        (p - q~)_+ normalised (falls back to p where the rejection has probability 0).
    gap_levels : ndarray, shape (M - 1,)
        Level of the gap between order[i] and order[i+1], in [0, 1]; 1 on the B | C gap.
    level_excess : float
        How far the raw levels of the sequential pass fell outside [0, 1] before clipping
        (round-off; a diagnostic, ~1e-15 in every case tested).
    merged_mass : float
        q-mass of the tokens merged at once as negligible (<= ``negligible_budget(k)``).
    """

    k: int
    n: int
    order: np.ndarray = field(repr=False)
    rank: np.ndarray = field(repr=False)
    m: int
    mu: float
    lam: float
    alpha: float
    q_tilde: np.ndarray = field(repr=False)
    accept_ratio: np.ndarray = field(repr=False)
    residual: np.ndarray = field(repr=False)
    gap_levels: np.ndarray = field(repr=False)
    level_excess: float = 0.0
    merged_mass: float = 0.0
    _table: RangeMax = field(default=None, repr=False)

    def max_gap_level(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """The largest gap level in each range, ``max(gap_levels[lo:hi])`` (0 where lo >= hi).

        O(1) per query (:mod:`.range_max`).

        Parameters
        ----------
        lo, hi : array_like of int
            Half-open ranges of gaps (broadcast).

        Returns
        -------
        ndarray of float64
            The range maxima.
        """
        return self._table.query(lo, hi)


def cut_values(ps: np.ndarray, qs: np.ndarray, k: int, *, extended: bool = True):
    r"""Prefix sums and the cut value at every prefix of the sorted order, shape (..., M + 1).

    ``P_i + 1 - S_i^k`` with ``1 - S^k = U (1 + S + ... + S^{k-1})``, U the suffix sum of q
    (no cancellation near S = 1). Returns (P, S, U, poly, values). With ``extended`` the running
    sums are accurate to a few ulps (:func:`_running_sums`: float64 inside blocks of
    :data:`_SUM_BLOCK`, the block offsets in ``np.longdouble``): a plain float64 running sum of
    150k terms drifts by ~1e-13 (S_M + U_M - 1 was -1.1e-13 on a real-shaped law at n = 151,936),
    which the plan cannot afford (its levels need sum q~ = 1); the rate alone can (plain float64).
    O(M) (three running sums).

    Parameters
    ----------
    ps, qs : ndarray, shape (..., M)
        The laws p and q of the drafted tokens in the sorted order.
    k : int
        Number of drafts.
    extended : bool, optional
        Accumulate the running sums accurately (blocks with extended-precision offsets).

    Returns
    -------
    tuple of ndarray
        (P, S, U, poly, values), each of shape (..., M + 1).
    """
    if extended:
        P, S = _running_sums(ps), _running_sums(qs)
        U = _running_sums(qs[..., ::-1])[..., ::-1]
    else:
        zero = np.zeros(ps.shape[:-1] + (1,))
        P = np.concatenate([zero, np.cumsum(ps, axis=-1)], axis=-1)
        S = np.concatenate([zero, np.cumsum(qs, axis=-1)], axis=-1)
        U = np.concatenate([np.cumsum(qs[..., ::-1], axis=-1)[..., ::-1], zero], axis=-1)
    poly, values = _cut_polynomial(P, S, U, k)
    return P, S, U, poly, values


def _cut_polynomial(P, S, U, k, poly=None, values=None):
    """(poly, values): 1 + S + ... + S^(k-1) and P + U poly, into the given arrays when given."""
    if k == 2:
        poly = np.add(S, 1.0, out=poly)
    else:
        if poly is None:
            poly = np.ones_like(S)
        else:
            poly.fill(1.0)
        for _ in range(k - 1):
            np.multiply(poly, S, out=poly)
            poly += 1.0
    values = np.multiply(U, poly, out=values)
    values += P
    return poly, values


def optimal_plan(p: np.ndarray, q: np.ndarray, k: int, *, levels_by: str = "hull") -> OptimalPlan:
    r"""Prepare the optimal verifier for one node: validated float64 p, q of shape (n,), k >= 1.

    1. **Cut** (theory.md 2.3): sort the drafted tokens by r = p/q; m = first minimiser of
       :math:`P_i + 1 - S_i^k`; B = first m tokens, C = the rest; :math:`\alpha^* = P_m + 1 - S_m^k`.
    2. **Water levels**: :math:`\sum_B \max(p, \mu q) = S_m^k` and
       :math:`\sum_C \min(p, \lambda q) = 1 - S_m^k`, solved exactly on the sorted breakpoints;
       :math:`\tilde q = \max(p, \mu q)` on B, :math:`\min(p, \lambda q)` on C.
    3. **Gap levels**: per region, the level of a boundary is the w at which it leaves the lower
       convex hull of the points :math:`(e_i, F_i - w e_i^k)` (F = cumulative q~-mass over the
       unit boundaries e); computed by :func:`.optimal_levels.region_levels` (fans of the lifted
       hull by compiled isotonic regression, certified strips of items, the sequential heap pass
       as a fallback; ``levels_by="heap"`` runs the heap everywhere, the reference). The heap pass is
       the agglomerative merge: block densities fall as :math:`R(w) = (A - w (b^k - a^k))/Q`;
       adjacent blocks merge when their R meet, at
       :math:`w^* = (\rho' - \rho) / ((Q + Q') h_{k-2}(a, b, d))`, with :math:`\rho = A/Q` and
       :math:`h_{k-2}` the complete homogeneous polynomial of degree k - 2 in the three boundaries
       (the difference of the two chord slopes of :math:`s^k` in closed form: no cancellation).

    Numerics. Boundaries of C are suffix sums of q (1 - S from the top), chord slopes are
    :math:`\sum_{i<k} b^i a^{k-1-i}` and slope differences come from the h formula, so no quantity
    is a difference of nearly equal cumulative masses. Tokens with equal density t = q~/q (the
    runs r <= mu in B and r >= lam in C, and ties) are one unit from the start (level 0, exact).
    The smallest-q tokens, of total q-mass at most :func:`negligible_budget` (k) =
    :data:`NEGLIGIBLE_LAW_ERROR` / (2k) (1e-13 at k = 2), are merged at once with their left
    neighbour in the order into units whose density is the unit's average: a unit's selection mass
    is unchanged, its non-negligible token (or run) moves by at most k times the negligible mass
    Q_N in it and its negligible tokens by at most k Q_N together (densities lie in [0, k]), so
    :math:`\sum |\tilde q_{used} - \tilde q| \le 2k \cdot` ``merged_mass`` :math:`\le`
    NEGLIGIBLE_LAW_ERROR = 4e-13 for every k; ``q_tilde`` is the law actually realised, so the
    output law is exactly p, and the acceptance :math:`\sum \min(p, \tilde q_{used})` is within
    half that bound (k ``merged_mass`` :math:`\le` 2e-13; the two laws have the same total) of
    :math:`\alpha^*`. Raw levels are clipped to [0, 1] (``level_excess`` records the round-off
    removed).

    Cost: one radix sort of the ratios' bit patterns O(n), vectorised passes O(n), the levels in
    O(n) per fan round plus a heap pass O(u log u) over the u units of the small blocks and of the strips whose certificate
    fails (pure Python; ~3 % of the units at T = 1.0, see BENCHMARKS.md section 8.1), range maxima
    O(n); the large intermediates live in per-thread work arrays reused across calls (:func:`_work`).

    Parameters
    ----------
    p, q : array_like, shape (n,)
        Target and draft laws.
    k : int
        Number of i.i.d. drafts (>= 1).
    levels_by : {"hull", "heap"}, optional
        How the gap levels are computed (``"heap"``: the sequential reference everywhere).

    Returns
    -------
    OptimalPlan
        The cut, the water levels, q~, the gap levels and their range-maximum structure.

    Raises
    ------
    ValueError
        For invalid laws, k < 1 or an unknown ``levels_by``.
    """
    if levels_by not in ("hull", "heap"):
        raise ValueError(f"`levels_by` must be 'hull' or 'heap'; got {levels_by!r}.")
    n = p.shape[-1]
    positive = q > 0
    kept = _kept_arrays(n)
    rank = kept["rank"]
    if positive.all():  # the usual case: no gather of the drafted tokens
        order = _argsort_ratios(np.divide(p, q, out=_work("ratio", n)))
    else:
        drafted = np.flatnonzero(positive)
        order = drafted[_argsort_ratios(p[drafted] / q[drafted])]
        rank.fill(-1)  # never drafted
    M = len(order)
    rank[order] = _arange(M)
    ps, qs = np.take(p, order, out=_work("ps", M)), np.take(q, order, out=_work("qs", M))
    rs = np.divide(ps, qs, out=_work("rs", M))
    size = _sums_size(M)
    P, S = _running_sums(ps, _work("P", size)), _running_sums(qs, _work("S", size))
    U = _running_sums(qs[::-1], _work("U", size))[::-1]
    poly, values = _cut_polynomial(P, S, U, k, _work("poly", M + 1), _work("values", M + 1))
    m = _exact_cut(ps, qs, S, values, k)
    alpha = float(np.clip(values[m], 0.0, 1.0))
    G_B = S[m] ** k
    G_C = U[m] * poly[m]
    qt_sorted = _work("qt", M)
    t = _work("t", M)
    if k == 1:  # plain speculative sampling: the selected draft is the draft
        mu = lam = 1.0
        t.fill(1.0)
        qt_sorted[:] = qs
    else:
        mu = _level_B(rs[:m], S[: m + 1], P[: m + 1], G_B)
        lam = _level_C(rs[m:], U[m:], P[m:] - P[m], G_C)
        np.maximum(rs[:m], mu, out=t[:m])
        np.minimum(rs[m:], lam, out=t[m:])
        np.maximum(ps[:m], mu * qs[:m], out=qt_sorted[:m])
        np.minimum(ps[m:], lam * qs[m:], out=qt_sorted[m:])
    padded = np.zeros(padded_size(M - 1))  # the gap levels, laid out in the range-maximum blocks
    gap_levels = padded[: max(M - 1, 0)]
    excess, merged = 0.0, 0.0
    if k > 1 and M > 1:
        negligible = _negligible(qs, negligible_budget(k))
        merged = float(qs[negligible].sum())
        for lo, hi in ((0, m), (m, M)):
            if hi - lo >= 1:
                ex = _region_levels(qs[lo:hi], qt_sorted[lo:hi], t[lo:hi], negligible[lo:hi], S[lo : hi + 1],
                                    U[lo : hi + 1], lo >= m, k, levels_by, gap_levels[lo : hi - 1])
                excess = max(excess, ex)
        if 0 < m < M:
            gap_levels[m - 1] = 1.0
    q_tilde = kept["q_tilde"]
    if M < n:  # 0 off supp q
        q_tilde.fill(0.0)
    q_tilde[order] = qt_sorted
    accept_ratio = kept["accept_ratio"]  # 0 where q~ = 0
    accept_ratio.fill(0.0)
    np.divide(p, q_tilde, out=accept_ratio, where=q_tilde > 0)
    np.minimum(accept_ratio, 1.0, out=accept_ratio)
    residual = np.subtract(p, q_tilde, out=kept["residual"])
    np.maximum(residual, 0.0, out=residual)
    total = residual.sum()
    if total > RESIDUAL_EPS:  # normalise_residual's rule for one row
        residual /= total
    else:
        residual = p.copy()
    return OptimalPlan(k, n, order, rank, m, float(mu), float(lam), alpha, q_tilde, accept_ratio, residual,
                       gap_levels, excess, merged, range_max_of_blocks(padded.reshape(-1, BLOCK)))


# -- helpers ------------------------------------------------------------------------------------

#: the four 16-bit digits of a float64, least significant first, as columns of its uint16 view
_DIGITS = (0, 1, 2, 3) if np.little_endian else (3, 2, 1, 0)


def _argsort_ratios(ratio):
    """Stable argsort of ratios >= 0 (ties in index order), in place on ``ratio`` (-0.0 becomes 0.0).

    The bit pattern of a nonnegative float64 read as an unsigned integer orders like the float.
    Where numpy sorts uint64 with AVX-512 (:data:`_PACKED_SORT`), :func:`_argsort_packed` sorts
    the patterns' top bits packed with the index (~1.4 ms at n = 151,936) and checks the result.
    Otherwise, or when that check fails, one least-significant-digit radix sort over the four
    16-bit digits (``np.lexsort`` on uint16 keys: a radix pass per key) gives the exact order:
    ~2.6-3.5 ms against ~9 ms for numpy's quicksort without AVX-512 and ~16 ms for its stable sort
    on the float64 values (BENCHMARKS.md 8.1). Both paths return the same array. O(n).
    """
    ratio += 0.0  # -0.0 + 0.0 = 0.0: its sign bit would sort it last
    order = _argsort_packed(ratio) if _PACKED_SORT and len(ratio) > 1 else None
    return _argsort_radix(ratio) if order is None else order


def _argsort_radix(ratio):
    """Stable argsort of nonnegative ``ratio`` (no -0.0) by an LSD radix sort of its four 16-bit digits. O(n)."""
    digits = ratio.view(np.uint16).reshape(-1, 4)
    return np.lexsort(tuple(digits[:, j] for j in _DIGITS))


def _argsort_packed(ratio):
    """The stable argsort of nonnegative ``ratio`` by one uint64 sort, or None when unsure.

    Key of token i: the top 64 - s bits of its pattern, then i in the low s bits (s = bit length
    of n - 1). Sorted keys order the tokens by (top bits, index). When the full patterns come out
    nondecreasing in that order, it is the stable order itself: equal patterns have equal top
    bits, so they stand in index order. Otherwise two ratios that agree in their top bits (a
    relative gap below ~2^(s - 52)) came out of order, and None sends the caller to the radix
    sort. Never a wrong order. O(n) plus numpy's sort of n uint64.
    """
    n = len(ratio)
    shift = np.uint64((n - 1).bit_length())
    bits = ratio.view(np.uint64)
    key = np.right_shift(bits, shift, out=_work("sort_key", n, np.uint64))
    np.left_shift(key, shift, out=key)
    np.bitwise_or(key, _arange(n).view(np.uint64), out=key)
    key.sort()
    order = np.bitwise_and(key, np.uint64((1 << int(shift)) - 1)).view(np.int64)  # fresh: the plan keeps it
    full = np.take(bits, order, out=_work("sort_full", n, np.uint64))
    return None if (full[1:] < full[:-1]).any() else order


def _simd_sort() -> bool:
    """Whether this numpy sorts 64-bit integers with AVX-512 (x86-simd-sort): its CPU features."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # another numpy layout: keep the radix sort
        return False
    return bool(__cpu_features__.get("AVX512_SKX"))


#: sort the ratios by :func:`_argsort_packed` first (AVX-512 machines; same result either way)
_PACKED_SORT = _simd_sort()


#: terms per block of :func:`_running_sums` (float64 inside a block, offsets in np.longdouble)
_SUM_BLOCK = 16


def _running_sums(x, out=None):
    """Running sums along the last axis with a leading 0, shape (..., M + 1), to a few ulps.

    1-D: float64 running sums inside blocks of :data:`_SUM_BLOCK` terms, the block totals
    accumulated in ``np.longdouble`` and added once: the error of entry i is at most
    ~2 eps |S_i| + 15 eps (the block's partial sum), against ~M eps |S_i| for a plain float64
    running sum (1.8e-16 against 2.6e-13 at n = 151,936), at a third of the cost of a
    longdouble running sum. ``out`` (1-D only): a float64 work array of at least
    ``_SUM_BLOCK * ceil(M / _SUM_BLOCK) + 1`` entries to fill (the result is a view of it). Other
    shapes: the longdouble running sum. O(M).
    """
    if x.ndim != 1:
        zero = np.zeros(x.shape[:-1] + (1,))
        return np.concatenate([zero, np.cumsum(x, axis=-1, dtype=np.longdouble).astype(np.float64)], axis=-1)
    M = len(x)
    nb = -(-M // _SUM_BLOCK)
    local = np.empty(nb * _SUM_BLOCK + 1) if out is None else out[: nb * _SUM_BLOCK + 1]
    local[0] = 0.0
    local[1 : M + 1] = x
    local[M + 1 :] = 0.0
    body = local[1:].reshape(nb, _SUM_BLOCK)
    for j in range(1, _SUM_BLOCK):  # the blocks' running sums column by column: cumsum's additions
        np.add(body[:, j - 1], body[:, j], out=body[:, j])  # in its order, at ~1/3 of its time
    offsets = np.cumsum(body[:, -1], dtype=np.longdouble)[:-1].astype(np.float64)
    body[1:] += offsets[:, None]
    return local[: M + 1]


def _sums_size(M: int) -> int:
    """Entries of the work array :func:`_running_sums` needs for M terms."""
    return -(-M // _SUM_BLOCK) * _SUM_BLOCK + 1


_WORK = threading.local()


def _work(name: str, size: int, dtype=np.float64) -> np.ndarray:
    """A per-thread reusable work array of ``size`` entries (contents undefined).

    Reusing the plan's large intermediates across calls spares page faults on fresh memory (glibc
    hands freed arrays of this size back to the kernel): at n = 151,936, T = 0.3 the plan's passes
    fault 4,700 times per plan without these arrays (~6 ms of system time on the benchmark
    machine) and 1,470 times with them, mostly the arrays the plan keeps. Never handed out of the
    module: every array a plan keeps is freshly allocated. ~15 MB per thread at that size. O(1)
    (O(size) when a buffer grows).
    """
    pool = _WORK.__dict__
    buf = pool.get(name)
    if buf is None or buf.size < size or buf.dtype != dtype:
        buf = pool[name] = np.empty(max(size, 1), dtype=dtype)
    return buf[:size]


def _kept_arrays(n: int) -> dict:
    """The arrays of size n that a plan keeps (rank, q~, accept ratio, residual; contents
    undefined), as views of one fresh allocation.

    One allocation of 4n float64 (4.9 MB at n = 151,936: numpy asks the kernel for huge pages at
    4 MB and above) faults a few hundred times where four separate 1.2 MB arrays fault ~1,200 times
    per plan (each fault ~1.6 us of system time, :func:`_work`). The four arrays live as long as any
    one of them does. O(1).
    """
    block = np.empty(4 * n)
    return {"rank": block[:n].view(np.int64), "q_tilde": block[n : 2 * n],
            "accept_ratio": block[2 * n : 3 * n], "residual": block[3 * n :]}


def _arange(M: int) -> np.ndarray:
    """0, 1, ..., M - 1 (int64), from a per-thread cached array (read only by the caller)."""
    pool = _WORK.__dict__
    buf = pool.get("arange")
    if buf is None or len(buf) < M:
        buf = pool["arange"] = np.arange(M, dtype=np.int64)
        buf.flags.writeable = False  # shared by every plan of the thread: a write would corrupt the next
    return buf[:M]


#: prefixes whose float64 cut value is within this of the minimum are compared exactly
_CUT_TIE = 1e-12


def _exact_cut(ps, qs, S, values, k):
    """The first minimiser of the cut value, with near-ties decided exactly.

    Values near 1 cannot tell apart prefixes that differ by tokens of q below ~1e-16. Every
    prefix within :data:`_CUT_TIE` of the float minimum is compared with that minimiser j
    through the difference (P_i - P_j) - (S_i - S_j) chord(S_j, S_i), from local sums of the
    tokens between them (relative precision), chord = sum_l S_i^l S_j^(k-1-l).
    """
    j = int(np.argmin(values))
    near = np.flatnonzero(values <= values[j] + _CUT_TIE)
    if len(near) == 1:
        return j
    lo, hi = int(near[0]), int(near[-1])
    dp = _running_sums(ps[lo:hi])  # P_i - P_lo for i in [lo, hi]
    dq = _running_sums(qs[lo:hi])
    Si = S[lo : hi + 1]
    chord = np.zeros_like(Si)
    for l in range(k):
        chord += Si**l * S[lo] ** (k - 1 - l)
    diff = dp - dq * chord  # value_i - value_lo, exact to relative precision
    return lo + int(np.argmin(diff))


def _level_B(rs, S, P, G):
    """mu >= 0 with sum_B max(p, mu q) = G (= S_m^k >= p(B)); rs ascending, S, P prefix sums."""
    m = len(rs)
    if m == 0:
        return 0.0
    f = rs * S[:m] + (P[m] - P[:m])  # value at mu = r_j: the tokens before j are at mu q
    j = int(np.argmax(f >= G)) if (f >= G).any() else m
    if j == 0:
        return 0.0  # G <= p(B): q~ = p on B (mu below every ratio)
    return max(0.0, (G - (P[m] - P[j])) / S[j])


def _level_C(rs, U, Pc, G):
    """lam >= 0 with sum_C min(p, lam q) = G (<= p(C)); rs ascending, U suffix sums of q,
    Pc prefix sums of p within C."""
    if len(rs) == 0 or G <= 0:
        return 0.0
    h = Pc[:-1] + rs * U[:-1]  # value at lam = r_j: tokens >= j at lam q
    j = int(np.argmax(h >= G)) if (h >= G).any() else len(rs) - 1
    return max(0.0, (G - Pc[j]) / U[j])


#: bits of a float64 dropped to bin the negligible candidates: the exponent and 6 mantissa bits remain
_BIN_SHIFT = 46


def _negligible(qs, budget):
    """Mask of the smallest-q tokens whose total q-mass is <= ``budget``: every token with q
    below a threshold tau, plus those at tau in index order while the budget lasts. O(n): the
    tokens are binned by the leading bits of their float64 pattern (exponent and 6 mantissa bits:
    monotone in q > 0, no log), and only the bin where the running mass crosses the budget is
    sorted."""
    bins = qs.view(np.int64) >> _BIN_SHIFT  # bin of q: [bin << shift, (bin + 1) << shift) as bits
    low = int(bins.min())
    bins -= low
    cum = np.cumsum(np.bincount(bins, weights=qs))
    b = int(np.searchsorted(cum, budget, side="right"))  # the first bin whose running mass exceeds it
    if b == len(cum):
        return np.ones(len(qs), dtype=bool)
    below = float(cum[b - 1]) if b > 0 else 0.0
    inside = np.sort(qs[bins == b])
    count_in = int(np.searchsorted(below + np.cumsum(inside), budget, side="right"))
    if count_in == 0:  # the budget ends at the bin's lower edge
        edge = np.array([(b + low) << _BIN_SHIFT], dtype=np.int64).view(np.float64)[0]
        return qs < edge
    tau = inside[count_in - 1]
    out = qs < tau
    at = np.flatnonzero(qs == tau)
    out[at[: count_in - int(np.searchsorted(inside, tau, side="left"))]] = True
    return out


def _region_levels(qs, qt, t, negligible, S, U, upper, k, levels_by, levels):
    """Gap levels inside one region (its tokens in sorted order) written into ``levels`` (zeros,
    one per gap), the realised q~ of its tokens written into ``qt`` (unit averages on merged units);
    returns the raw-level excess. O(L) plus the levels of the units."""
    L = len(qs)
    # units: maximal runs of equal density, and a negligible token outside such a run joined to
    # its left neighbour (the first token of the region to its right one): a unit holds at most
    # one token or run of equal density that is not negligible
    equal = t[1:] == t[:-1]
    join = negligible[1:].copy()
    join[:-1] &= ~equal[1:]  # token i + 1 joins its left neighbour unless it starts a run with i + 2
    join |= equal
    if L > 1:
        join[0] |= negligible[0]
    start = np.flatnonzero(~join)
    start += 1
    start = np.concatenate([[0], start])
    Q = np.add.reduceat(qs, start)
    A = np.add.reduceat(qt, start)
    sizes = np.diff(np.append(start, L))
    if len(start) < L:  # some unit holds several tokens: they realise its average density
        realised = np.repeat(A / Q, sizes)
        realised *= qs
        np.copyto(qt, realised, where=np.repeat(sizes > 1, sizes))
    if len(start) == 1:
        return 0.0
    # boundaries: prefix sums in B, 1 - (suffix sums) in C; lower boundary of each unit
    edges = (1.0 - U[np.append(start, L)]) if upper else S[np.append(start, L)]
    if levels_by == "heap":
        raw = np.asarray(_kinetic_levels(Q.tolist(), A.tolist(), edges.tolist(), k))
    else:
        raw = region_levels(Q, A, edges, k)
    levels[start[1:] - 1] = np.clip(raw, 0.0, 1.0)
    return float(max(0.0, raw.max() - 1.0, -raw.min()))


def range_max_table(levels) -> RangeMax:
    """The range-maximum structure over the gap levels (:func:`.range_max.range_max`).

    Parameters
    ----------
    levels : ndarray of float64
        The gap levels.

    Returns
    -------
    RangeMax
        O(len(levels)) to build, O(1) per query.
    """
    return range_max(levels)
