r"""Gap levels of one region of the optimal verifier, exactly, by fans of a lower convex hull.

Convention: a region's U units in sorted order, q-masses Q, q~-masses A, boundaries e_0 < ... < e_U.
Source: docs/optimal-verifier.md (the levels as exit levels of the lower hull of
(e_i, F_i - w g_i), F = cumulative q~-mass, g = s^k); the hull of a lifted convex polygon.

Boundary i (0 < i < U) leaves the lower hull of the points (e_j, F_j - w e_j^k) at
:math:`\lambda_i = \min_{j < i < l} W(j, i, l)`, :math:`W = D_F / D_g` (heights of the chord (j, l)
above point i). Equivalently the lower hull of the lifted points (e_j, e_j^k, F_j) is a
triangulation of a convex polygon whose triangle with middle vertex i is (j, i, l) with
:math:`\lambda_i = W(j, i, l)`; it is characterised by local convexity: every triangle's level is at
most its parent's. This module builds that triangulation in vectorised passes:

* **Fans** (exact): the neighbours of boundary j inside a block (j, l) whose edge (j, l) is on the
  hull are the vertices of the convex minorant of the points (gamma(j, i), sigma(j, i)) (chord slopes
  of g and F from j), i.e. the blocks of the weighted isotonic regression of the consecutive slopes
  :math:`W(j, i, i + 1)` with weights gamma(j, i + 1) - gamma(j, i) (``scipy.optimize.isotonic_regression``,
  compiled PAVA, O(l - j)); the same from l on the other side.
* **Strips of items** (exact when certified): a block that grows from one seed unit by absorbing
  items (single units, or runs of units that merged among themselves first) on both sides is the
  merge of two increasing key sequences, found by a vectorised fixed point (violators pooled by
  PAVA, items split where they cannot be one block at their level) and certified by local
  convexity: the merged keys are nondecreasing, and each item of 2+ units, solved as a block of
  its own, has no level above the one at which the strip absorbs it.
* **Fallback**: any block neither resolves, and any strip whose certificate fails, goes to the
  sequential heap pass (:func:`kinetic_levels`, the reference), which is exact for every input.
"""

from __future__ import annotations

import heapq

import numpy as np
from scipy.optimize import isotonic_regression

__all__ = ["region_levels", "kinetic_levels", "h_poly"]

#: fan rounds before a remaining block is tried as a strip / handed to the heap pass
_FAN_ROUNDS = 1
#: fixed-point iterations of the strip solver (pooling, interleaving, splitting: one step each)
#: before it gives up on a block (the real-shaped laws' strips settle in <= 12, measured at T = 0.6,
#: 1.0, k = 2, 3)
_STRIP_ITERATIONS = 24
#: blocks of fewer units go straight to the heap pass (cheaper there than the strip's fixed cost)
_STRIP_MIN_UNITS = 100


def region_levels(Q, A, e, k: int, *, fan_rounds: int = _FAN_ROUNDS, strip_min_units: int = _STRIP_MIN_UNITS,
                  stats: dict | None = None) -> np.ndarray:
    r"""Merge levels of the U - 1 interior boundaries of one region (float64 arrays).

    Parameters
    ----------
    Q, A : ndarray, shape (U,)
        The q-mass (> 0) and q~-mass of each unit, densities A / Q strictly increasing.
    e : ndarray, shape (U + 1,)
        The units' boundaries (cumulative q-mass; in the upper region computed from the top).
    k : int
        Number of drafts (>= 2).
    fan_rounds : int, optional
        Rounds of fans on a block before it is tried as a strip (then the heap pass).
    strip_min_units : int, optional
        Remaining blocks of fewer units skip the strip and go to the heap pass.
    stats : dict, optional
        Filled with counts: ``fan_vertices``, ``strip_vertices``, ``heap_vertices`` (how each
        boundary's final level was found), ``rounds``, ``strip_failures`` (strips that did not
        settle or whose certificate failed).

    Returns
    -------
    ndarray, shape (U - 1,)
        :math:`\lambda_i = \min_{j<i<l} W(j, i, l)` (unclipped), equal to :func:`kinetic_levels`.

    Notes
    -----
    Fans cost one PAVA per block side; a block left after ``fan_rounds`` rounds is solved as a
    strip of items (O(size) per fixed-point iteration), whose items of 2+ units are blocks of their
    own (fans first again), or by the heap pass (O(size log size), pure Python). A strip is
    accepted when its keys are nondecreasing and, once every item is solved, each item's levels are
    at most the level at which the strip absorbs it (local convexity); a block whose certificate
    fails is redone by the heap pass. On the real-shaped laws at n = 151,936 the heap pass is
    left with 0-3 % of the boundaries (BENCHMARKS.md section 8.1).
    All sums are local to a block (accumulated from the block's anchor or seed, items summed on
    their own), so no quantity is a difference of nearly equal cumulative masses.
    """
    Q = np.asarray(Q, dtype=np.float64)
    A = np.asarray(A, dtype=np.float64)
    e = np.asarray(e, dtype=np.float64)
    U = len(Q)
    out = np.full(U + 1, np.nan)  # indexed by boundary
    how = np.zeros(U + 1, dtype=np.int8)  # 0 fan (or a two-unit block), 1 strip, 2 heap
    rho = A / Q
    pending = [(0, U, 0)] if U >= 2 else []  # (j, l, fan rounds done on this block)
    checks = []  # (a, b, bound, j, l): the item (a, b) of the strip on (j, l) must stay <= bound
    rounds, failures = 0, 0

    def heap(j, l):
        out[j + 1 : l] = kinetic_levels(Q[j:l].tolist(), A[j:l].tolist(), e[j : l + 1].tolist(), k)
        how[j + 1 : l] = 2

    while pending:
        rounds += 1
        nxt = []
        bounds = np.array([b[:2] for b in pending], dtype=np.int64).reshape(-1, 2)
        pairs = bounds[bounds[:, 1] - bounds[:, 0] == 2, 0]  # blocks of two units: one vertex, closed form
        if len(pairs):
            out[pairs + 1] = _w(rho[pairs + 1], rho[pairs], Q[pairs] + Q[pairs + 1], e[pairs], e[pairs + 1], e[pairs + 2], k)
            how[pairs + 1] = 0
        for j, l, done in pending:
            if l - j == 2:
                continue
            if done < fan_rounds:
                sub = []
                _fans(Q, A, rho, e, k, j, l, out, sub)
                nxt.extend((a, b, done + 1) for a, b in sub)
                continue
            solved = _strip(Q, A, rho, e, k, j, l) if l - j >= strip_min_units else None
            if solved is None:
                failures += l - j >= strip_min_units
                heap(j, l)
                continue
            vertices, levels, items = solved
            out[vertices] = levels
            how[vertices] = 1
            for a, b, bound in items:
                checks.append((a, b, bound, j, l))
                nxt.append((a, b, 0))
        pending = nxt
    # certificates, innermost strips first (they were queued last): an item whose levels exceed the
    # level at which its strip absorbs it means the strip's triangulation is not the hull
    redone = set()
    for a, b, bound, j, l in reversed(checks):
        if (j, l) not in redone and out[a + 1 : b].max() > bound:
            redone.add((j, l))
            failures += 1
            heap(j, l)
    if stats is not None:
        by = np.bincount(how[1:U], minlength=3)
        stats.update(fan_vertices=int(by[0]), strip_vertices=int(by[1]), heap_vertices=int(by[2]),
                     rounds=rounds, strip_failures=failures)
    return out[1:U]


def h_poly(a, b, d, k: int):
    """Complete homogeneous symmetric polynomial of degree k - 2 in (a, b, d).

    It is the chord-slope difference of s^k over [a, b] and [b, d], divided by (d - a).

    Parameters
    ----------
    a, b, d : float or ndarray
        Three boundaries a <= b <= d (broadcast).
    k : int
        Number of drafts (>= 2).

    Returns
    -------
    float or ndarray
        :math:`h_{k-2}(a, b, d)`, O(k^2) operations per entry.
    """
    if k == 2:  # a scalar: multiplying by it is exact, and it broadcasts like the arrays
        return 1.0
    if k == 3:
        return a + b + d
    total = 0.0
    for i in range(k - 1):
        for j in range(k - 1 - i):
            total = total + a**i * b**j * d ** (k - 2 - i - j)
    return total


def kinetic_levels(Q, A, edges, k):
    r"""Merge levels of the U - 1 gaps between U units by the sequential heap pass (the reference).

    Lists Q, A (changed in place), edges with U + 1 boundaries. Blocks are keyed by their first
    unit; ``key[i]`` is the live merge level of block i with its right neighbour (NaN once block i
    is absorbed or has none) and a heap entry (w, i) is live while ``key[i] == w``. Two adjacent
    blocks merge at :math:`w = (\rho' - \rho) / ((Q + Q') h_{k-2}(a, b, d))`; a re-keyed block's
    entry is pushed and the next one popped in one ``heappushpop`` (the same sequence as a push and
    a pop). O(U log U), pure Python.

    Parameters
    ----------
    Q, A : list of float
        The q-mass and q~-mass of each unit (changed in place).
    edges : list of float
        The U + 1 unit boundaries.
    k : int
        Number of drafts (>= 2).

    Returns
    -------
    ndarray, shape (U - 1,)
        The merge level of every gap.
    """
    U = len(Q)
    nan = float("nan")
    right = list(range(1, U)) + [-1]
    left = list(range(-1, U - 1))
    lo, hi = edges[:-1], list(edges[1:])
    levels = [0.0] * (U - 1)
    rho = [a / q for a, q in zip(A, Q)]
    if k == 2:
        key = [(r1 - r0) / (q0 + q1) for r0, r1, q0, q1 in zip(rho, rho[1:], Q, Q[1:])]
    else:
        key = [(rho[i + 1] - rho[i]) / ((Q[i] + Q[i + 1]) * _h(lo[i], hi[i], hi[i + 1], k)) for i in range(U - 1)]
    key.append(nan)
    heap = list(zip(key[:-1], range(U - 1)))
    if not heap:
        return levels
    heapq.heapify(heap)
    pop, push, pushpop = heapq.heappop, heapq.heappush, heapq.heappushpop
    w = 0.0
    wt, i = pop(heap)
    while True:
        if key[i] != wt:  # stale (NaN never compares equal)
            if not heap:
                break
            wt, i = pop(heap)
            continue
        j = right[i]
        if wt > w:
            w = wt
        levels[j - 1] = w
        Qi = Q[i] = Q[i] + Q[j]
        Ai = A[i] = A[i] + A[j]
        r = rho[i] = Ai / Qi
        hi[i] = hi[j]
        nxt = right[i] = right[j]
        key[j] = nan  # block j is gone
        a = left[i]
        if a >= 0:
            den = Q[a] + Qi if k == 2 else (Q[a] + Qi) * _h(lo[a], hi[a], hi[i], k)
            ka = key[a] = (r - rho[a]) / den
        if nxt >= 0:
            left[nxt] = i
            den = Qi + Q[nxt] if k == 2 else (Qi + Q[nxt]) * _h(lo[i], hi[i], hi[nxt], k)
            ki = key[i] = (rho[nxt] - r) / den
            if a >= 0:
                push(heap, (ka, a))
            wt, i = pushpop(heap, (ki, i))  # = push, then pop the smallest (O(1) when it is this one)
        else:
            key[i] = nan
            if a >= 0:
                wt, i = pushpop(heap, (ka, a))
            elif heap:
                wt, i = pop(heap)
            else:
                break
    return levels


# -- helpers ------------------------------------------------------------------------------------

def _h(a, b, d, k):
    """Scalar h_poly for the heap pass (plain floats)."""
    if k == 2:
        return 1.0
    if k == 3:
        return a + b + d
    total = 0.0
    for i in range(k - 1):
        for j in range(k - 1 - i):
            total += a**i * b**j * d ** (k - 2 - i - j)
    return total


def _w(rho_right, sigma_left, span, a, b, d, k):
    """W(a, b, d) from the density right of b, the mean density left of b and the q-span d - a."""
    return (rho_right - sigma_left) / (span * h_poly(a, b, d, k))


def _fans(Q, A, rho, e, k, j, l, out, pending):
    """Resolve the neighbours of j and of l in the block (j, l) (edge (j, l) on the hull); write
    their levels into ``out``, append the sub-blocks left between consecutive neighbours to
    ``pending``; return the number of vertices resolved."""
    # left fan: slopes i = j+1 .. l-1 between the points i and i+1 seen from j
    i = np.arange(j + 1, l)
    cQ = np.cumsum(Q[j : l - 1])  # q-mass of units j .. i-1
    cA = np.cumsum(A[j : l - 1])
    hh = h_poly(e[j], e[i], e[i + 1], k)
    slopes = (rho[i] - cA / cQ) / ((cQ + Q[i]) * hh)
    fit = isotonic_regression(slopes, weights=Q[i] * hh, increasing=True)
    starts, ends = fit.blocks[:-1], fit.blocks[1:]
    vertices = i[starts]
    out[vertices] = fit.x[starts]
    resolved = len(vertices)
    wide = np.flatnonzero(ends[:-1] - starts[:-1] > 1)  # sub-blocks of 3+ boundaries (no Python loop over all)
    pending.extend(zip((starts[wide] + (j + 1)).tolist(), (ends[wide] + (j + 1)).tolist()))
    top = int(vertices[-1])  # the middle of the triangle on (j, l)
    if l - top < 2:
        return resolved
    # right fan from l over the points top .. l-1: slopes i = top+1 .. l-1 between i-1 and i
    i = np.arange(l - 1, top, -1)  # descending
    rQ = np.cumsum(Q[l - 1 : top : -1])  # q-mass of units i .. l-1
    rA = np.cumsum(A[l - 1 : top : -1])
    hh = h_poly(e[i - 1], e[i], e[l], k)
    slopes = (rA / rQ - rho[i - 1]) / ((rQ + Q[i - 1]) * hh)
    fit = isotonic_regression(slopes, weights=Q[i - 1] * hh, increasing=True)
    starts, ends = fit.blocks[:-1], fit.blocks[1:]
    vertices = i[starts]
    out[vertices] = fit.x[starts]
    resolved += len(vertices)
    wide = np.flatnonzero(ends - starts > 1)
    pending.extend(zip((i[ends[wide] - 1] - 1).tolist(), i[starts[wide]].tolist()))
    return resolved


def _strip(Q, A, rho, e, k, j, l):
    """Block (j, l) as one strip: a seed (its largest unit) absorbing items (runs of units absorbed
    at once) alternately from both sides. Returns (boundaries, levels, items) when the fixed point
    settles with nondecreasing keys, else None; ``items`` lists (a, b, level) for each item of 2+
    units, a block of its own whose levels must be <= level (the caller checks)."""
    s = j + int(np.argmax(Q[j:l]))
    QL, AL = Q[j:s][::-1], A[j:s][::-1]  # left units, outward from the seed
    QR, AR = Q[s + 1 : l], A[s + 1 : l]
    SQL, SAL = _sums0(QL), _sums0(AL)
    SQR, SAR = _sums0(QR), _sums0(AR)
    Ls, Rs = np.arange(len(QL) + 1), np.arange(len(QR) + 1)  # item edges, outward positions
    bl = np.zeros(len(QL), dtype=np.int64)  # right units absorbed before each left item
    br = np.zeros(len(QR), dtype=np.int64)
    last_split = None
    for _ in range(_STRIP_ITERATIONS):
        a0, a1, c0, c1 = Ls[:-1], Ls[1:], Rs[:-1], Rs[1:]
        kL, wL = _item_keys(QL, AL, a0, Q[s] + SQL[a0] + SQR[bl], A[s] + SAL[a0] + SAR[bl],
                            (e[s - a1], e[s - a0], e[s + 1 + bl]), k, -1.0)
        kR, wR = _item_keys(QR, AR, c0, Q[s] + SQL[br] + SQR[c0], A[s] + SAL[br] + SAR[c0],
                            (e[s - br], e[s + 1 + c0], e[s + 1 + c1]), k, 1.0)
        pooled_L, pooled_R = (np.diff(kL) < 0).any(), (np.diff(kR) < 0).any()
        if pooled_L or pooled_R:
            # violators are absorbed together: pool them (exact for one anchor), and merge the two
            # sides by the pooled values, which the next step recomputes exactly
            if pooled_L:
                Ls, kL = _pool(Ls, kL, wL)
            if pooled_R:
                Rs, kR = _pool(Rs, kR, wR)
            bl = _absorbed_before(kR, np.diff(Rs), kL, "left")
            br = _absorbed_before(kL, np.diff(Ls), kR, "right")
            continue
        # both key sequences are nondecreasing here: merge them
        new_bl = _absorbed_before(kR, c1 - c0, kL, "left")
        new_br = _absorbed_before(kL, a1 - a0, kR, "right")
        if (new_bl != bl).any() or (new_br != br).any():
            bl, br = new_bl, new_br
            continue
        # settled: split every item that cannot be one block at its level (its top is higher)
        wide_L, wide_R = np.flatnonzero(a1 - a0 > 1), np.flatnonzero(c1 - c0 > 1)
        cut_L = _over_level(Q, A, e, k, s - a1[wide_L], s - a0[wide_L], kL[wide_L])
        cut_R = _over_level(Q, A, e, k, s + 1 + c0[wide_R], s + 1 + c1[wide_R], kR[wide_R])
        if len(cut_L) or len(cut_R):
            Ls = np.union1d(Ls, s - cut_L)
            Rs = np.union1d(Rs, cut_R - s - 1)
            seen = (Ls.tobytes(), Rs.tobytes())
            if seen == last_split:  # pooled back into the items just split: a cycle
                return None
            last_split = seen
            bl = bl[np.searchsorted(a0, Ls[:-1], side="right") - 1]
            br = br[np.searchsorted(c0, Rs[:-1], side="right") - 1]
            continue
        items = [(s - b, s - a, w) for a, b, w in zip(a0[wide_L].tolist(), a1[wide_L].tolist(), kL[wide_L].tolist())]
        items += [(s + 1 + a, s + 1 + b, w) for a, b, w in zip(c0[wide_R].tolist(), c1[wide_R].tolist(), kR[wide_R].tolist())]
        return np.concatenate([s - a0, s + 1 + c0]), np.concatenate([kL, kR]), items
    return None


def _sums0(x):
    """Running sums with a leading 0."""
    out = np.zeros(len(x) + 1)
    np.cumsum(x, out=out[1:])
    return out


def _item_keys(Qs, As, starts, QB, AB, abd, k, side):
    """Levels at which the seed's block (mass QB, AB) absorbs each item (runs of ``Qs``, ``As``
    from ``starts``; ``side`` -1 left, +1 right of the block) and their PAVA weights."""
    if len(starts) == 0:
        return np.zeros(0), np.zeros(0)
    QI, AI = np.add.reduceat(Qs, starts), np.add.reduceat(As, starts)  # local sums per item
    hh = h_poly(*abd, k)
    keys = side * (AI / QI - AB / QB) / ((QB + QI) * hh)
    return keys, QI * hh


def _pool(edges, keys, weights):
    """Items pooled by one weighted PAVA of their keys: (new item edges, pooled keys)."""
    fit = isotonic_regression(keys, weights=weights, increasing=True)
    return edges[fit.blocks], fit.x[fit.blocks[:-1]]


def _absorbed_before(keys_other, sizes_other, keys, side):
    """Units of the other side absorbed before each key (``keys_other`` nondecreasing; ties:
    left first)."""
    units = np.concatenate([[0], np.cumsum(sizes_other)])
    return units[np.searchsorted(keys_other, keys, side=side)]


def _over_level(Q, A, e, k, starts, ends, bounds):
    """Interior boundaries i of the unit ranges [a, b) with W(a, i, b) > the range's bound.

    Any range with such a boundary is not one block at its bound (its top level, the largest
    W(a, i, b), is higher), so the strip splits it there. A heuristic for the split only (the
    caller's certificate decides), but one that needs the masses left and right of i to relative
    precision: both are running sums local to the range, forward and backward (never the total
    minus a part): ranges of up to :data:`_SHORT_ITEM` units as the rows of one padded array, longer
    ones one by one. A boundary whose W is not finite is not returned."""
    lens = ends - starts
    short = lens <= _SHORT_ITEM
    found = []
    if short.any():
        a, b, bound = starts[short], ends[short], bounds[short]
        width = int(lens[short].max())
        col = np.arange(width)
        valid = col < (b - a)[:, None]
        units = np.where(valid, a[:, None] + col, a[:, None])
        Qm, Am = np.where(valid, Q[units], 0.0), np.where(valid, A[units], 0.0)
        lq, la = np.cumsum(Qm, axis=1), np.cumsum(Am, axis=1)  # units a .. a + c
        rq, ra = np.cumsum(Qm[:, ::-1], axis=1)[:, ::-1], np.cumsum(Am[:, ::-1], axis=1)[:, ::-1]
        row, c = np.nonzero(col[: width - 1] < (b - a - 1)[:, None])  # boundary i = a + c + 1
        i = a[row] + c + 1
        found.append(i[_split_here(lq[row, c], la[row, c], rq[row, c + 1], ra[row, c + 1], e[a[row]], e[i], e[b[row]],
                                   k, bound[row])])
    for a, b, bound in zip(starts[~short].tolist(), ends[~short].tolist(), bounds[~short].tolist()):
        lq, la = np.cumsum(Q[a : b - 1]), np.cumsum(A[a : b - 1])
        rq, ra = np.cumsum(Q[b - 1 : a : -1])[::-1], np.cumsum(A[b - 1 : a : -1])[::-1]
        i = np.arange(a + 1, b)
        found.append(i[_split_here(lq, la, rq, ra, e[a], e[i], e[b], k, bound)])
    return np.concatenate(found) if found else np.zeros(0, dtype=np.int64)


#: items of up to this many units are tested for a split as the rows of one padded array
_SHORT_ITEM = 32


def _split_here(lq, la, rq, ra, ea, ei, eb, k, bound):
    """W(a, i, b) > bound from the masses left (lq, la) and right (rq, ra) of i (False where W is
    not finite)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return _w(ra / rq, la / lq, lq + rq, ea, ei, eb, k) > bound
