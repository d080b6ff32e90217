"""Theory sweeps on synthetic LLM-like pairs: acceptance vs temperature, and ratios to the optimum.

Convention: p = target, q = draft, last axis = vocabulary; k drafts per node (k = 2 by default).
Source: theory.md 3.4, 3.6 (LLM-like pairs), 4 (baselines), 2.3 (optimum); issue 9.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .llm_pairs import SPREAD, ZIPF, draw_logits, rates_at
from .style import METHODS, OPTIMA

__all__ = ["TemperatureSweep", "temperature_sweep", "OptimumFractions", "optimum_fractions"]


@dataclass(frozen=True)
class TemperatureSweep:
    """Exact acceptance of every method at every (noise level, temperature, position).

    Attributes
    ----------
    temperatures, noises : tuple of float
    k, n, positions : int
    values : dict
        name -> ndarray, shape (len(noises), len(temperatures), positions).
    notes : dict
        name -> why it is missing or how it was computed.
    params : dict
        zipf, spread, seed (how the logits were drawn).
    """

    temperatures: tuple
    noises: tuple
    k: int
    n: int
    positions: int
    values: dict
    notes: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    def mean(self, name: str) -> np.ndarray:
        """Mean over positions, shape (noises, temperatures).

        Parameters
        ----------
        name : str

        Returns
        -------
        numpy.ndarray
        """
        return self.values[name].mean(axis=-1)

    def sem(self, name: str) -> np.ndarray:
        """Standard error of that mean (positions are independent draws).

        Parameters
        ----------
        name : str

        Returns
        -------
        numpy.ndarray
        """
        v = self.values[name]
        return v.std(axis=-1, ddof=1) / np.sqrt(v.shape[-1]) if v.shape[-1] > 1 else np.zeros(v.shape[:-1])

    def rows(self) -> list:
        """One CSV row per (noise, temperature, method): mean, sem, positions.

        Returns
        -------
        list
        """
        out = []
        for name in self.values:
            mean, sem = self.mean(name), self.sem(name)
            for i, noise in enumerate(self.noises):
                for j, t in enumerate(self.temperatures):
                    out.append({"source": "synthetic", "noise": noise, "temperature": t, "method": name, "k": self.k,
                                "n": self.n, "mean": float(mean[i, j]), "sem": float(sem[i, j]), "positions": self.positions})
        return out

    def at_temperature(self, temperature: float) -> dict:
        """Pool the values per name over noise levels at the temperature nearest ``temperature``.

        name -> the per-position values, shape (noises * positions,).

        Parameters
        ----------
        temperature : float

        Returns
        -------
        dict
        """
        j = int(np.argmin(np.abs(np.asarray(self.temperatures) - temperature)))
        return {name: v[:, j, :].ravel() for name, v in self.values.items()}

    def to_dict(self) -> dict:
        """JSON-ready summary (means and standard errors, not the per-position values).

        Returns
        -------
        dict
        """
        return {"temperatures": list(self.temperatures), "noises": list(self.noises), "k": self.k, "n": self.n,
                "positions": self.positions, "params": dict(self.params), "notes": dict(self.notes),
                "mean": {m: self.mean(m).tolist() for m in self.values}, "sem": {m: self.sem(m).tolist() for m in self.values}}


def temperature_sweep(temperatures, noises=(0.5, 1.0, 2.0), *, n: int = 2000, positions: int = 200, k: int = 2,
                      zipf: float = ZIPF, spread: float = SPREAD, seed: int = 0, progress=None) -> TemperatureSweep:
    """Acceptance of single, rrs, rrs_wor, kseq, spechub and the optimum vs temperature.

    For noise level ``noises[i]`` the logits are ``draw_logits(positions, n, noise=noises[i],
    zipf=zipf, spread=spread, rng=np.random.default_rng([seed, i]))``, the same draw at every
    temperature (common random numbers: the curves are smooth in T); at temperature T,
    p = softmax(z_p / T) and q = softmax(z_q / T).

    Parameters
    ----------
    temperatures, noises : sequence of float
        Temperatures (> 0) and target noise levels (>= 0).
    n, positions, k : int
        Vocabulary size, positions per noise level, drafts per node.
    zipf, spread : float
        Profile of the draft logits (:func:`figures.llm_pairs.draw_logits`).
    seed : int
    progress : callable, optional
        Called with a short string after each noise level (progress lines on stderr).

    Returns
    -------
    TemperatureSweep

    Raises
    ------
    ValueError
        On bad input (the message names the rule): ``temperatures`` must be a non-empty list of
        numbers > 0.

    Notes
    -----
    O(len(noises) len(temperatures) positions n log n) time; the optimum is skipped (with a note)
    when the ``lp`` package is missing.
    """
    temperatures = tuple(float(t) for t in temperatures)
    noises = tuple(float(s) for s in noises)
    if not temperatures or min(temperatures) <= 0:
        raise ValueError(f"`temperatures` must be a non-empty list of numbers > 0; got {temperatures}.")
    values: dict = {}
    notes: dict = {}
    for i, noise in enumerate(noises):
        pairs = draw_logits(positions, n, noise=noise, zipf=zipf, spread=spread, rng=np.random.default_rng([seed, i]))
        for j, t in enumerate(temperatures):
            p, q = pairs.probs(t)
            rates = rates_at(p, q, k)
            notes.update(rates.notes)
            for name, v in rates.values.items():
                values.setdefault(name, np.full((len(noises), len(temperatures), positions), np.nan))[i, j] = v
        if progress is not None:
            progress(f"noise {noise:g}: {len(temperatures)} temperatures x {positions} positions (n = {n})")
    order = [m for m in (*METHODS, *OPTIMA) if m in values]
    return TemperatureSweep(temperatures, noises, int(k), int(n), int(positions), {m: values[m] for m in order}, notes,
                            {"zipf": zipf, "spread": spread, "seed": seed})


@dataclass(frozen=True)
class OptimumFractions:
    """Each method's acceptance divided by the optimum's, per node, for one source of nodes.

    Attributes
    ----------
    source : str
        What the nodes are (e.g. "synthetic, T = 0.6" or a real run's label).
    reference : str
        The optimum divided by: "optimal_wor" or "optimal_iid".
    ratios : dict
        method -> ndarray of per-node ratios (nodes with a zero or missing optimum dropped).
    """

    source: str
    reference: str
    ratios: dict

    def quantiles(self, qs=(0.05, 0.25, 0.5, 0.75, 0.95)) -> dict:
        """The quantiles per method: {"q05": ..., ..., "mean": ..., "nodes": ...} (for tables).

        Parameters
        ----------
        qs : tuple of float, optional

        Returns
        -------
        dict
        """
        out = {}
        for name, r in self.ratios.items():
            row = {f"q{int(round(100 * x)):02d}": float(np.quantile(r, x)) for x in qs} if len(r) else {}
            out[name] = {**row, "mean": float(r.mean()) if len(r) else None, "nodes": int(len(r))}
        return out

    def rows(self) -> list:
        """One CSV row per (method, node): source, reference, method, node, ratio.

        Returns
        -------
        list
        """
        return [{"source": self.source, "reference": self.reference, "method": m, "node": i, "ratio": float(x)}
                for m, r in self.ratios.items() for i, x in enumerate(r)]


def optimum_fractions(values: dict, source: str, *, methods=METHODS) -> OptimumFractions:
    """Per-node ``method / optimum`` from a name -> per-node acceptance mapping.

    The reference is ``optimal_wor`` when present (the larger optimum in every test, theory.md
    4.3), else ``optimal_iid``. Nodes whose reference is missing (NaN/None) or zero are dropped.
    A ratio above 1 is possible for ``spechub`` and ``rrs_wor``, whose draft laws differ from the
    reference's (theory.md 3.6 P4).

    Parameters
    ----------
    values : dict
    source : str
    methods : sequence of str, optional

    Returns
    -------
    OptimumFractions

    Raises
    ------
    ValueError
        If ``values`` has neither optimum.

    Examples
    --------
    >>> f = optimum_fractions({"rrs": [0.5, 0.8], "optimal_iid": [1.0, 0.8]}, "toy", methods=["rrs"])
    >>> f.reference, f.ratios["rrs"].tolist()
    ('optimal_iid', [0.5, 1.0])
    """
    reference = next((r for r in ("optimal_wor", "optimal_iid") if r in values), None)
    if reference is None:
        raise ValueError("`values` holds no optimum (optimal_wor or optimal_iid); install the lp package.")
    ref = _floats(values[reference])
    ratios = {}
    for name in methods:
        if name in values:
            v = _floats(values[name])
            ok = np.isfinite(v) & np.isfinite(ref) & (ref > 0)
            ratios[name] = v[ok] / ref[ok]
    return OptimumFractions(source, reference, ratios)


def _floats(values) -> np.ndarray:
    """1-D float64 array with None -> NaN."""
    return np.array([np.nan if v is None else v for v in np.ravel(np.asarray(values, dtype=object))], dtype=np.float64)
