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
* **Strips** (exact when certified): a block that grows from one seed unit by absorbing single
  units on both sides is the merge of two increasing key sequences, found by a vectorised fixed
  point and certified by local convexity (the merged keys are nondecreasing).
* **Fallback**: any block neither resolves goes to the sequential heap pass (:func:`kinetic_levels`,
  the reference), which is exact for every input.
"""

from __future__ import annotations

import heapq

import numpy as np
from scipy.optimize import isotonic_regression

__all__ = ["region_levels", "kinetic_levels", "h_poly"]

#: fan rounds before a remaining block is tried as a strip / handed to the heap pass
_FAN_ROUNDS = 1
#: fixed-point iterations of the strip solver before it gives up on a block (certified strips of the
#: real-shaped laws settle in <= 3 (measured at T = 0.6, 1.0, k = 2, 3); blocks with several seeds oscillate)
_STRIP_ITERATIONS = 4
#: blocks of fewer units go straight to the heap pass (cheaper there than the strip's fixed cost)
_STRIP_MIN_UNITS = 32


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
        Rounds of fans before the remaining blocks are tried as strips (then the heap pass).
    strip_min_units : int, optional
        Remaining blocks of fewer units skip the strip and go to the heap pass.
    stats : dict, optional
        Filled with counts: ``fan_vertices``, ``strip_vertices``, ``heap_vertices``, ``rounds``.

    Returns
    -------
    ndarray, shape (U - 1,)
        :math:`\lambda_i = \min_{j<i<l} W(j, i, l)` (unclipped), equal to :func:`kinetic_levels`.

    Notes
    -----
    Fans cost one PAVA per block side; a block left after ``_FAN_ROUNDS`` rounds is solved as a
    strip (O(size) per fixed-point iteration) or by the heap pass (O(size log size), pure Python).
    On the real-shaped laws at n = 151,936 the fans resolve 75-85 % of the vertices in B and 90-100 %
    in C (BENCHMARKS.md section 8).
    All sums are local to a block (accumulated from the block's anchor or seed), so no quantity is a
    difference of nearly equal cumulative masses.
    """
    Q = np.asarray(Q, dtype=np.float64)
    A = np.asarray(A, dtype=np.float64)
    e = np.asarray(e, dtype=np.float64)
    U = len(Q)
    out = np.full(U + 1, np.nan)  # indexed by boundary
    counts = {"fan_vertices": 0, "strip_vertices": 0, "heap_vertices": 0, "rounds": 0}
    rho = A / Q
    pending = [(0, U)] if U >= 2 else []
    rounds = 0
    while pending:
        rounds += 1
        nxt = []
        bounds = np.array(pending, dtype=np.int64).reshape(-1, 2)
        pairs = bounds[bounds[:, 1] - bounds[:, 0] == 2, 0]  # blocks of two units: one vertex, closed form
        if len(pairs):
            out[pairs + 1] = _w(rho[pairs + 1], rho[pairs], Q[pairs] + Q[pairs + 1], e[pairs], e[pairs + 1], e[pairs + 2], k)
            counts["fan_vertices"] += len(pairs)
        for j, l in pending:
            if l - j == 2:
                continue
            if rounds > fan_rounds:
                solved = _strip(Q, A, rho, e, k, j, l) if l - j >= strip_min_units else None
                if solved is not None:
                    vertices, levels = solved
                    out[vertices] = levels
                    counts["strip_vertices"] += len(vertices)
                else:
                    out[j + 1 : l] = kinetic_levels(Q[j:l].tolist(), A[j:l].tolist(), e[j : l + 1].tolist(), k)
                    counts["heap_vertices"] += l - j - 1
                continue
            counts["fan_vertices"] += _fans(Q, A, rho, e, k, j, l, out, nxt)
        pending = nxt
    counts["rounds"] = rounds
    if stats is not None:
        stats.update(counts)
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
    if k == 2:
        return np.ones(np.broadcast_shapes(np.shape(a), np.shape(b), np.shape(d)))
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
    """Levels of block (j, l) if it is one strip (a seed unit absorbing single units on both
    sides), certified; else None. Returns (boundaries, levels)."""
    u = np.arange(j, l - 1)
    keys = (rho[u + 1] - rho[u]) / ((Q[u] + Q[u + 1]) * h_poly(e[u], e[u + 1], e[u + 2], k))
    s = int(u[np.argmin(keys)])
    s = s if Q[s] >= Q[s + 1] else s + 1  # the seed: the larger unit of the first merge
    nL, nR = s - j, l - s - 1
    left_units = np.arange(s - 1, j - 1, -1)
    right_units = np.arange(s + 1, l)
    QL, AL = Q[left_units], A[left_units]
    QR, AR = Q[right_units], A[right_units]
    SQL = np.concatenate([[0.0], np.cumsum(QL)])
    SAL = np.concatenate([[0.0], np.cumsum(AL)])
    SQR = np.concatenate([[0.0], np.cumsum(QR)])
    SAR = np.concatenate([[0.0], np.cumsum(AR)])
    a = np.arange(nL)
    c = np.arange(nR)
    xs = s - a  # boundary set by the a-th left absorption
    ys = s + 1 + c  # boundary set by the c-th right absorption
    before_left = np.zeros(nL, dtype=np.int64)  # right absorptions before the a-th left one
    before_right = np.zeros(nR, dtype=np.int64)
    for _ in range(_STRIP_ITERATIONS):
        QB = Q[s] + SQL[a] + SQR[before_left]
        AB = A[s] + SAL[a] + SAR[before_left]
        kL = _w(AB / QB, rho[xs - 1], QB + QL, e[xs - 1], e[xs], e[s + 1 + before_left], k)
        QB = Q[s] + SQL[before_right] + SQR[c]
        AB = A[s] + SAL[before_right] + SAR[c]
        kR = _w(rho[ys], AB / QB, QB + QR, e[s - before_right], e[ys], e[ys + 1], k)
        new_left = np.searchsorted(np.sort(kR), kL, side="left")
        new_right = np.searchsorted(np.sort(kL), kR, side="right")
        if (new_left == before_left).all() and (new_right == before_right).all():
            if (np.diff(kL) < 0).any() or (np.diff(kR) < 0).any():
                return None
            return np.concatenate([xs, ys]), np.concatenate([kL, kR])
        before_left, before_right = new_left, new_right
    return None
