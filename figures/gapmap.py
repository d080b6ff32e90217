r"""Where SpecHub beats RRS: mean acceptance gaps binned over (q(a), TV(p, q)) for random LLM-like pairs.

Convention: p = target, q = draft, last axis = vocabulary; a = argmax q (the hub), k = 2.
Source: theory.md 3.6 P2 (:math:`q(a)/(1-q(a)) \ge \mathrm{TV} \Rightarrow \alpha_{hub} \ge \alpha_{RRS}`),
P3 (:math:`q(a) \ge \mathrm{TV} \Rightarrow \alpha_{hub} \ge \alpha_{RRSw}`), P5 (SpecHub can lose).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spechub_theory.acceptance import acceptance_rates

from .llm_pairs import draw_logits

__all__ = ["GapMap", "gap_map", "COMPARED", "RANGES"]

#: the baselines SpecHub is compared with, and the proven sufficient condition for SpecHub >= it
COMPARED = {"rrs": "q(a)/(1-q(a)) >= TV (theory.md 3.6 P2)", "rrs_wor": "q(a) >= TV (theory.md 3.6 P3)"}
#: sampling ranges of the random pairs: uniform zipf, spread; log-uniform noise and temperature
RANGES = {"zipf": (0.5, 2.0), "spread": (0.3, 2.5), "noise": (0.2, 3.0), "temperature": (0.2, 2.0)}
_CHUNK = 1024  # pairs per core call (bounds memory at chunk * n floats per array)
_TOL = 1e-12  # a gap below -_TOL inside a proven region is reported as a violation


@dataclass(frozen=True)
class GapMap:
    """Per-pair hub mass, TV and gaps, and their 2-D binned means.

    Attributes
    ----------
    hub_q, tv : ndarray, shape (pairs,)
        q(a) and TV(p, q) of each pair.
    gaps : dict
        baseline ("rrs", "rrs_wor") -> ndarray (pairs,) of alpha_spechub - alpha_baseline.
    edges : ndarray, shape (bins + 1,)
        Bin edges on [0, 1] for both axes.
    params : dict
        n, pairs, seed, sampling ranges.
    """

    hub_q: np.ndarray
    tv: np.ndarray
    gaps: dict
    edges: np.ndarray
    params: dict = field(default_factory=dict)

    def binned(self, baseline: str, *, min_count: int = 1) -> dict:
        """The binned gap map ``{"mean": (bins, bins), "count": (bins, bins)}``.

        Index [i, j] = (q(a) bin i, TV bin j); bins with fewer than ``min_count`` pairs have mean
        NaN.

        Parameters
        ----------
        baseline : str
        min_count : int, optional

        Returns
        -------
        dict
        """
        nb = len(self.edges) - 1
        ix = np.clip(np.searchsorted(self.edges, self.hub_q, side="right") - 1, 0, nb - 1)
        iy = np.clip(np.searchsorted(self.edges, self.tv, side="right") - 1, 0, nb - 1)
        count = np.zeros((nb, nb))
        total = np.zeros((nb, nb))
        np.add.at(count, (ix, iy), 1.0)
        np.add.at(total, (ix, iy), self.gaps[baseline])
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count >= min_count, total / count, np.nan)
        return {"mean": mean, "count": count}

    def proven_region(self, baseline: str) -> np.ndarray:
        """Boolean (pairs,): the pair satisfies the proven condition for SpecHub >= ``baseline``.

        Parameters
        ----------
        baseline : str

        Returns
        -------
        numpy.ndarray
        """
        if baseline == "rrs":
            return self.hub_q >= self.tv * (1.0 - self.hub_q)  # q/(1-q) >= TV without dividing
        return self.hub_q >= self.tv

    def summary(self) -> dict:
        """Per baseline: how often SpecHub wins or loses, the mean gap and the violations.

        The fraction of pairs where SpecHub wins / loses, the mean gap, and the number of violations
        of the proven condition (gap < -1e-12 inside its region; expected 0).

        Returns
        -------
        dict
        """
        out = {}
        for b, gap in self.gaps.items():
            region = self.proven_region(b)
            out[b] = {
                "pairs": int(len(gap)),
                "spechub_better": float(np.mean(gap > _TOL)),
                "spechub_worse": float(np.mean(gap < -_TOL)),
                "mean_gap": float(gap.mean()),
                "condition": COMPARED[b],
                "pairs_in_proven_region": int(region.sum()),
                "violations_in_proven_region": int(np.sum(gap[region] < -_TOL)),
                "losses_outside_region": int(np.sum(gap[~region] < -_TOL)),
            }
        return out

    def rows(self, *, min_count: int = 1) -> list:
        """One CSV row per non-empty bin: edges, count and mean gap per baseline.

        Parameters
        ----------
        min_count : int, optional

        Returns
        -------
        list
        """
        out = []
        tables = {b: self.binned(b, min_count=min_count) for b in self.gaps}
        count = next(iter(tables.values()))["count"]
        for i, j in zip(*np.nonzero(count)):
            row = {"hub_q_low": float(self.edges[i]), "hub_q_high": float(self.edges[i + 1]),
                   "tv_low": float(self.edges[j]), "tv_high": float(self.edges[j + 1]), "pairs": int(count[i, j])}
            for b, t in tables.items():
                m = t["mean"][i, j]
                row[f"mean_gap_spechub_minus_{b}"] = float(m) if np.isfinite(m) else None
            out.append(row)
        return out


def gap_map(pairs: int = 20_000, *, n: int = 1000, bins: int = 25, seed: int = 0, ranges: dict = RANGES, progress=None) -> GapMap:
    """SpecHub - RRS and SpecHub - RRS w/o replacement (k = 2) over random LLM-like pairs.

    Each pair draws its own zipf and spread (uniform in ``ranges``), target noise and temperature
    (log-uniform), so that the pairs cover the (q(a), TV) square: flat and peaked drafts, close and
    far targets. Randomness: ``numpy.random.default_rng([seed, 7, chunk])`` per chunk of 1,024 pairs.

    Parameters
    ----------
    pairs, n, bins : int
        Number of pairs, vocabulary size, bins per axis on [0, 1].
    seed : int
    ranges : dict
        ``{"zipf": (lo, hi), "spread": ..., "noise": ..., "temperature": ...}``.
    progress : callable, optional
        Called with a short string after each chunk group.

    Returns
    -------
    GapMap

    Raises
    ------
    ValueError
        On bad input (the message names the rule): ``pairs`` and ``bins`` must be >= 1.

    Notes
    -----
    O(pairs n log n) time (RRS w/o replacement sorts each row), O(1024 n) memory.
    """
    if int(pairs) < 1 or int(bins) < 1:
        raise ValueError(f"`pairs` and `bins` must be >= 1; got {pairs} and {bins}.")
    hub_q, tv, gaps = [], [], {b: [] for b in COMPARED}
    starts = range(0, int(pairs), _CHUNK)
    for c, start in enumerate(starts):
        m = min(_CHUNK, int(pairs) - start)
        rng = np.random.default_rng([seed, 7, c])
        zipf = rng.uniform(*ranges["zipf"], m)
        spread = rng.uniform(*ranges["spread"], m)
        noise = np.exp(rng.uniform(*np.log(ranges["noise"]), m))
        temperature = np.exp(rng.uniform(*np.log(ranges["temperature"]), m))
        logits = draw_logits(m, n, noise=noise, zipf=zipf, spread=spread, rng=rng)
        p = _softmax(logits.target / temperature[:, None])
        q = _softmax(logits.draft / temperature[:, None])
        rates = acceptance_rates(p, q, 2, methods=["spechub", *COMPARED]).acceptance
        hub_q.append(q.max(axis=-1))
        tv.append(np.maximum(q - p, 0.0).sum(axis=-1))
        for b in COMPARED:
            gaps[b].append(rates["spechub"] - rates[b])
        if progress is not None and (c + 1) % 5 == 0:
            progress(f"{start + m}/{pairs} pairs")
    params = {"n": int(n), "pairs": int(pairs), "bins": int(bins), "seed": int(seed), "k": 2,
              "ranges": {k: list(v) for k, v in ranges.items()}}
    return GapMap(np.concatenate(hub_q), np.concatenate(tv), {b: np.concatenate(g) for b, g in gaps.items()},
                  np.linspace(0.0, 1.0, int(bins) + 1), params)


def _softmax(z: np.ndarray) -> np.ndarray:
    """Row softmax in float64 after a max-shift (per-row temperatures are already applied)."""
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)
