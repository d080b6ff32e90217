r"""Draft laws for k drafts per node: i.i.d., without replacement, and SpecHub's hub(-set) law.

Convention: ``q`` = draft, last axis = vocabulary; a draft tuple is an ordered k-tuple of token ids.
Source: theory.md sections 1 (laws), 3.2 (hub law), 3.7 (hub-set law for k > 2).

Every law has a vectorised sampler (explicit uniforms or a numpy Generator) and an exact
enumeration (support and masses) for small vocabularies. All conditional draws "from q on the
tokens not yet drafted" go through :func:`conditional_law`, which the verifiers use too, so the law
a draft was sampled from and the law it is verified against cannot drift apart.

Degenerate case (documented, never NaN): when q puts no mass on the tokens still allowed (one-hot q
with the hub removed, or fewer positive entries than distinct drafts), the next draft is uniform on
the allowed tokens. It is the limit of ``q + eps * uniform`` and keeps every verifier lossless
because the verifier uses the same law.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations, product

import numpy as np

from .distributions import check_distribution, check_k

__all__ = [
    "DraftSupport",
    "DraftLaw",
    "IID",
    "WOR",
    "HUB",
    "DRAFT_LAWS",
    "get_law",
    "conditional_law",
    "hub_set",
]

#: below this remaining mass (relative) the fast inverse-CDF draw is redone exactly per row
_CANCELLATION = 1e-9


@dataclass(frozen=True)
class DraftSupport:
    """Exact enumeration of a draft law: ``tuples[m]`` is drawn with probability ``mass[m]``.

    Attributes
    ----------
    tuples : ndarray of int64, shape (m, k)
    mass : ndarray of float64, shape (m,), positive, summing to 1.
    """

    tuples: np.ndarray
    mass: np.ndarray

    def __repr__(self) -> str:
        return f"DraftSupport(size={len(self.mass)}, k={self.tuples.shape[1]})"

    def set_mass(self, n: int) -> np.ndarray:
        """Probability that each token is among the drafts, shape (n,).

        Parameters
        ----------
        n : int

        Returns
        -------
        numpy.ndarray
        """
        member = np.zeros((len(self.mass), n))
        np.put_along_axis(member, self.tuples, 1.0, axis=1)
        return self.mass @ member


def conditional_law(q, excluded) -> np.ndarray:
    r"""Law of the next draft given the tokens already drawn: :math:`q(\cdot \mid V \setminus E)`.

    Parameters
    ----------
    q : array_like, shape (..., n)
    excluded : array_like of int, shape (..., j)
        Tokens removed (may be empty, ``j = 0``); broadcast against ``q``'s leading axes.

    Returns
    -------
    ndarray, shape (..., n): q with the excluded tokens zeroed, renormalised by the sum of the
    remaining entries (never ``1 - q(E)``, which cancels); uniform on the remaining tokens when
    that sum is 0. O(n) per row.
    """
    q = np.asarray(q, dtype=np.float64)
    excluded = np.asarray(excluded, dtype=np.int64)
    lead = np.broadcast_shapes(q.shape[:-1], excluded.shape[:-1])
    w = np.array(np.broadcast_to(q, lead + q.shape[-1:]))
    allowed = np.ones(w.shape, dtype=bool)
    if excluded.shape[-1]:
        np.put_along_axis(allowed, np.broadcast_to(excluded, lead + excluded.shape[-1:]), False, axis=-1)
    w = np.where(allowed, w, 0.0)
    s = w.sum(axis=-1, keepdims=True)
    uniform = allowed / np.maximum(allowed.sum(axis=-1, keepdims=True), 1)
    return np.where(s > 0, w / np.where(s > 0, s, 1.0), uniform)


def hub_set(q, size: int) -> np.ndarray:
    """The ``size`` most probable tokens of ``q`` in descending order (ties: lowest index first).

    ``size = 1`` is SpecHub's hub ``a = argmax q``. Returns int64 of shape (..., size); O(n) for
    size <= 1, O(n log n) otherwise.

    Parameters
    ----------
    q : array_like
        Draft law(s), shape (..., n).
    size : int
        How many tokens; ``size <= 0`` gives an empty set.

    Returns
    -------
    numpy.ndarray
        The int64 token indices, shape (..., max(size, 0)).
    """
    q = np.asarray(q, dtype=np.float64)
    if size <= 0:
        return np.zeros(q.shape[:-1] + (0,), dtype=np.int64)
    if size == 1:
        return np.argmax(q, axis=-1)[..., None].astype(np.int64)
    return np.argsort(-q, axis=-1, kind="stable")[..., :size].astype(np.int64)


class DraftLaw:
    """A law of ordered k-tuples of drafts built from the draft distribution ``q``.

    Subclasses implement ``_sample_rows`` (one tuple per row of a batched q, from explicit
    uniforms) and ``enumerate``. ``distinct`` says whether the k drafts are always distinct
    (then ``k <= n`` is required).
    """

    name: str = ""
    distinct: bool = False

    def __repr__(self) -> str:
        return f"<draft law {self.name!r}>"

    def sample(self, q, k: int, *, size=None, rng=None) -> np.ndarray:
        """Draw draft tuples.

        Parameters
        ----------
        q : array_like, shape (n,) or (..., n)
        k : int
            Drafts per tuple.
        size : int or tuple, optional
            With a single ``q`` (shape (n,)), the number of independent tuples; the result has
            shape ``size + (k,)``. With a batch of rows and ``size=None``, one tuple per row.
        rng : numpy Generator or seed, optional

        Returns
        -------
        ndarray of int64, shape (..., k). O(k n) per row for a batch; O(n + N k^2 log n) for N
        tuples from one q (inverse CDF with the drafted tokens skipped).

        Raises
        ------
        ValueError
            On bad input (the message names the rule): ``size`` is only allowed with a single ``q``
            of shape (n,).
        """
        q = check_distribution(q, "q")
        k = check_k(k, q.shape[-1], distinct=self.distinct)
        rng = np.random.default_rng(rng)
        if size is not None:
            if q.ndim != 1:
                raise ValueError("`size` is only allowed with a single `q` of shape (n,).")
            shape = (size,) if np.isscalar(size) else tuple(size)
            count = int(np.prod(shape))
            u = rng.random((count, k))
            return self._sample_shared(q, k, u).reshape(shape + (k,))
        u = rng.random(q.shape[:-1] + (k,))
        if q.ndim == 1:
            return self._sample_shared(q, k, u[None])[0]
        return self._sample_rows(q, k, u)

    def sample_from_uniforms(self, q, k: int, u) -> np.ndarray:
        """Deterministic sampler: tuples from explicit uniforms ``u`` of shape (..., k) in [0, 1).

        Parameters
        ----------
        q : array_like, shape (..., n)
        k : int
            Drafts per node.
        u : ndarray

        Returns
        -------
        numpy.ndarray
        """
        q = check_distribution(q, "q")
        k = check_k(k, q.shape[-1], distinct=self.distinct)
        u = np.asarray(u, dtype=np.float64)
        if q.ndim == 1:
            return self._sample_shared(q, k, u.reshape(-1, k)).reshape(u.shape)
        return self._sample_rows(q, k, u)

    def enumerate(self, q, k: int) -> DraftSupport:
        """Exact support and masses for one ``q`` of shape (n,); O(n^k) tuples.

        Parameters
        ----------
        q : array_like, shape (..., n)
        k : int
            Drafts per node.

        Returns
        -------
        DraftSupport

        Raises
        ------
        ValueError
            On bad input (the message names the rule): ``enumerate`` takes a single ``q`` of shape
            (n,).
        """
        q = check_distribution(q, "q")
        if q.ndim != 1:
            raise ValueError("`enumerate` takes a single `q` of shape (n,).")
        k = check_k(k, q.shape[-1], distinct=self.distinct)
        tuples, mass = self._enumerate(q, k)
        keep = mass > 0
        return DraftSupport(np.asarray(tuples, dtype=np.int64)[keep].reshape(-1, k), mass[keep])

    # -- to implement -------------------------------------------------------------------------
    def _sample_rows(self, q: np.ndarray, k: int, u: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _sample_shared(self, q: np.ndarray, k: int, u: np.ndarray) -> np.ndarray:
        """Tuples for N uniforms rows ``u`` (N, k) from one q; default: the row sampler on a view."""
        return self._sample_rows(np.broadcast_to(q, (len(u), q.shape[-1])), k, u)

    def _enumerate(self, q: np.ndarray, k: int):
        raise NotImplementedError


class _IID(DraftLaw):
    """k i.i.d. drafts from q (with replacement): :math:`Q(\\bar x) = \\prod_j q(x_j)`."""

    name = "iid"
    distinct = False

    def _sample_rows(self, q, k, u):
        return _inverse_cdf_rows(np.cumsum(q, axis=-1), u, q)

    def _sample_shared(self, q, k, u):
        return _inverse_cdf_shared(q, u)

    def _enumerate(self, q, k):
        tuples = np.array(list(product(range(len(q)), repeat=k)), dtype=np.int64).reshape(-1, k)
        return tuples, np.prod(q[tuples], axis=1)


class _WOR(DraftLaw):
    """k drafts without replacement by successive sampling (Gumbel-top-k):
    :math:`Q(\\bar x) = \\prod_j q(x_j) / (1 - \\sum_{l<j} q(x_l))`, each factor from
    :func:`conditional_law`."""

    name = "wor"
    distinct = True

    def _sample_rows(self, q, k, u):
        out = np.empty(q.shape[:-1] + (k,), dtype=np.int64)
        for j in range(k):
            w = conditional_law(q, out[..., :j])
            out[..., j] = _inverse_cdf_rows(np.cumsum(w, axis=-1), u[..., j : j + 1], w)[..., 0]
        return out

    def _sample_shared(self, q, k, u):
        out = np.empty((len(u), k), dtype=np.int64)
        for j in range(k):
            out[:, j] = _draw_excluding(q, out[:, :j], u[:, j])
        return out

    def _enumerate(self, q, k):
        tuples = np.array(list(permutations(range(len(q)), k)), dtype=np.int64).reshape(-1, k)
        mass = np.ones(len(tuples))
        for j in range(k):
            w = conditional_law(q, tuples[:, :j])
            mass *= w[np.arange(len(tuples)), tuples[:, j]]
        return tuples, mass


class _Hub(DraftLaw):
    """SpecHub's hub law (k = 2) and its hub-set generalisation (any k).

    Hub set ``H`` = the k-1 most probable tokens of q (:func:`hub_set`). The first draft is
    ``x_1 ~ q``. If ``x_1`` is not in H, the other slots are H in descending q order. If ``x_1 = h``
    is in H, the next slots are ``H minus {h}`` in order and the last is ``i ~ q(. | V minus H)``.
    So the draft set is ``H`` plus one token from ``q(. | V minus H)``, the first slot has marginal
    q exactly (a node with one child is plain speculative sampling), and for k = 2:
    ``Q(i, a) = q(i)``, ``Q(a, i) = q(a) q(i) / (1 - q(a))`` (theory.md 3.2). k = 1 is plain q.
    When ``q(V minus H) = 0`` the last draft is uniform on ``V minus H`` (module docstring).
    """

    name = "hub"
    distinct = True

    def _sample_rows(self, q, k, u):
        H = hub_set(q, k - 1)  # (..., k-1)
        first = _inverse_cdf_rows(np.cumsum(q, axis=-1), u[..., :1], q)[..., 0]
        w = conditional_law(q, H)
        last = _inverse_cdf_rows(np.cumsum(w, axis=-1), u[..., 1:2] if k > 1 else u[..., :1], w)[..., 0]
        return _hub_tuples(first, H, last)

    def _sample_shared(self, q, k, u):
        H = hub_set(q, k - 1)  # (k-1,)
        first = _inverse_cdf_shared(q, u[:, :1])[:, 0]
        if k == 1:
            return first[:, None]
        w = conditional_law(q, H)
        last = _inverse_cdf_shared(w, u[:, 1:2])[:, 0]
        return _hub_tuples(first, np.broadcast_to(H, (len(u), k - 1)), last)

    def _enumerate(self, q, k):
        n = len(q)
        H = hub_set(q, k - 1)
        if k == 1:
            return np.arange(n)[:, None], q.copy()
        w = conditional_law(q, H)
        rest = np.setdiff1d(np.arange(n), H)
        rows, mass = [], []
        for x in rest:  # x_1 outside H, the hubs follow
            rows.append([x, *H])
            mass.append(q[x])
        for h in H:
            others = [g for g in H if g != h]
            for i in rest:
                rows.append([h, *others, i])
                mass.append(q[h] * w[i])
        return np.array(rows, dtype=np.int64), np.array(mass)


def _hub_tuples(first, H, last):
    """Assemble hub-set tuples (see :class:`_Hub`); first, last: (...,), H: (..., k-1)."""
    k = H.shape[-1] + 1
    in_hub = (H == first[..., None]).any(axis=-1)
    out = np.empty(first.shape + (k,), dtype=np.int64)
    out[..., 0] = first
    # first outside H: H follows in order; first = H[m]: H without H[m], then `last`
    out[..., 1:] = np.where(in_hub[..., None], 0, H)
    if in_hub.any():
        pos = np.argmax(H == first[..., None], axis=-1)  # index of first in H
        idx = np.arange(k - 1)
        # slots 1..k-2 take H[l] for l != pos, in order; slot k-1 takes `last`
        src = idx[: k - 2] + (idx[: k - 2] >= pos[..., None])  # (..., k-2)
        shifted = np.take_along_axis(H, src, axis=-1) if k > 2 else np.zeros(first.shape + (0,), dtype=np.int64)
        filled = np.concatenate([shifted, last[..., None]], axis=-1)
        out[..., 1:] = np.where(in_hub[..., None], filled, out[..., 1:])
    return out


def _inverse_cdf_rows(cdf, u, w):
    """Per-row inverse CDF: cdf (..., n), u (..., m) in [0,1) -> (..., m) tokens with w > 0."""
    total = cdf[..., -1:]
    t = u * total
    x = (cdf[..., None, :] <= t[..., :, None]).sum(axis=-1)  # first index with cdf > t
    x = np.minimum(x, cdf.shape[-1] - 1)
    return _fix_zero_mass(x, w)


def _inverse_cdf_shared(w, u):
    """Inverse CDF of one law ``w`` (n,) at uniforms ``u`` (any shape)."""
    cdf = np.cumsum(w)
    x = np.searchsorted(cdf, u * cdf[-1], side="right")
    x = np.minimum(x, len(w) - 1)
    return _fix_zero_mass(x, w)


def _fix_zero_mass(x, w):
    """Move draws that rounding put on a zero-mass token to the last positive token before it."""
    wx = np.take_along_axis(w, x, axis=-1) if w.ndim > 1 and w.ndim == x.ndim else w[x]
    bad = wx <= 0
    if not bad.any():
        return x
    positive_upto = np.maximum.accumulate(np.where(w > 0, np.arange(w.shape[-1]), -1), axis=-1)
    if w.ndim > 1 and w.ndim == x.ndim:
        fixed = np.take_along_axis(positive_upto, x, axis=-1)
    else:
        fixed = positive_upto[x]
    # a uniform fallback law is positive on every allowed token, so `fixed` >= 0 whenever w has mass
    return np.where(bad & (fixed >= 0), fixed, x)


def _draw_excluding(q, excluded, u):
    """One draw per row from ``conditional_law(q, excluded[row])`` for a shared q.

    Inverse CDF of q with the excluded intervals skipped (O(j log n) per row); rows whose
    remaining mass is tiny relative to 1 (cancellation) or zero, and rows that rounding put on an
    excluded token, are redrawn exactly from the explicit conditional law.
    """
    N, j = excluded.shape
    if j == 0:
        return _inverse_cdf_shared(q, u)
    cdf = np.cumsum(q)
    before = cdf - q
    ex = np.sort(excluded, axis=1)
    remaining = cdf[-1] - q[ex].sum(axis=1)
    t = u * remaining
    for col in range(j):
        e = ex[:, col]
        t = np.where(t >= before[e], t + q[e], t)
    x = np.minimum(np.searchsorted(cdf, t, side="right"), len(q) - 1)
    redo = (remaining <= _CANCELLATION) | (ex == x[:, None]).any(axis=1) | (q[x] <= 0)
    if redo.any():
        rows = np.flatnonzero(redo)
        w = conditional_law(q, excluded[rows])
        x[rows] = _inverse_cdf_rows(np.cumsum(w, axis=-1), u[rows, None], w)[:, 0]
    return x


IID = _IID()
WOR = _WOR()
HUB = _Hub()

#: name -> law; "hubset" is an alias of "hub" (the same law for every k)
DRAFT_LAWS: dict[str, DraftLaw] = {"iid": IID, "wor": WOR, "hub": HUB, "hubset": HUB}


def get_law(name: str) -> DraftLaw:
    """Look up a draft law by name (``iid``, ``wor``, ``hub``, ``hubset``).

    Parameters
    ----------
    name : str
        One of the keys of ``DRAFT_LAWS``.

    Returns
    -------
    DraftLaw
        The registered law.

    Raises
    ------
    ValueError
        If ``name`` is not a registered law.
    """
    try:
        return DRAFT_LAWS[name]
    except (KeyError, TypeError):
        raise ValueError(f"`law` {name!r} is not one of {', '.join(map(repr, DRAFT_LAWS))}.") from None
