"""Summary of a decoding run: tokens per step with bootstrap intervals, speed, and the node table.

Convention: tokens per step = emitted tokens / target forwards = accepted drafts + 1 (bonus or
residual token included), pooled over prompts; intervals resample prompts (percentile bootstrap).
Timing lives under ``timing`` in each run so that deterministic parts can be compared alone.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

__all__ = ["TOKENS_PER_STEP_CONVENTION", "BootstrapInterval", "bootstrap_ratio", "bootstrap_ratio_difference", "bootstrap_gain_share",
           "summarize"]

TOKENS_PER_STEP_CONVENTION = (
    "tokens per step = accepted drafts + 1 (the bonus or residual token is included), "
    "pooled over prompts: sum of emitted tokens / sum of target forwards"
)
#: bootstrap resamples of prompts for the tokens-per-step interval
N_BOOTSTRAP = 2000
#: the timed phases of a decoding step (records hold ``<phase>_s`` per step)
PHASES = ("draft", "target", "verify", "cache")


@dataclass(frozen=True)
class BootstrapInterval:
    """Pooled ratio ``value`` and its percentile-bootstrap interval [low, high] at ``level``."""

    value: float
    low: float
    high: float
    level: float

    def to_dict(self) -> dict:
        """JSON-ready dict.

        Returns
        -------
        dict
        """
        return {"value": self.value, "low": self.low, "high": self.high, "level": self.level}


def bootstrap_ratio(numerator, denominator, *, level: float = 0.95, n_boot: int = N_BOOTSTRAP, rng=None) -> BootstrapInterval:
    """Interval for ``sum(numerator) / sum(denominator)`` by resampling units (prompts).

    Parameters
    ----------
    numerator, denominator : array_like, shape (m,)
        Per-prompt totals (e.g. emitted tokens and target forwards), ``m >= 1``.
    level : float
        Coverage of the percentile interval.
    n_boot : int
        Resamples; O(n_boot * m) time.
    rng : numpy Generator or seed

    Returns
    -------
    BootstrapInterval (degenerate when m = 1).
    """
    return _bootstrap([(numerator, denominator)], level, n_boot, rng)


def bootstrap_ratio_difference(numerator_a, denominator_a, numerator_b, denominator_b, *, level: float = 0.95,
                               n_boot: int = N_BOOTSTRAP, rng=None) -> BootstrapInterval:
    """Interval for ``sum(num_a)/sum(den_a) - sum(num_b)/sum(den_b)`` over *paired* units.

    Unit i of a and of b is the same prompt decoded by two methods (with common random numbers),
    so both ratios are resampled with the same prompt indices: the interval of the gain is far
    narrower than the two separate intervals suggest. O(n_boot * m).

    Raises ValueError unless all four vectors have the same non-zero length.

    Parameters
    ----------
    numerator_a : array_like
    denominator_a : array_like
    numerator_b : array_like
    denominator_b : array_like
    level : float, optional
    n_boot : int, optional
    rng : numpy.random.Generator, int or None, optional
        Random source: a Generator or a seed.

    Returns
    -------
    BootstrapInterval
    """
    return _bootstrap([(numerator_a, denominator_a), (numerator_b, denominator_b)], level, n_boot, rng)


def bootstrap_gain_share(a, b, c, *, level: float = 0.95, n_boot: int = N_BOOTSTRAP, rng=None) -> BootstrapInterval:
    r"""Interval for the share of c's gain over b that a recovers, :math:`(R_a - R_b) / (R_c - R_b)`.

    :math:`R_x` = sum of tokens / sum of steps of method x over the same prompts (paired units,
    resampled together; percentile bootstrap of the ratio). E.g. a = optimal, b = RRS, c = SpecHub:
    how much of SpecHub's gain over RRS an optimal verification of i.i.d. drafts recovers. The
    interval is only meaningful where :math:`R_c - R_b` is clearly positive; a resample with
    :math:`R_c = R_b` gives an infinite share (kept: the percentiles are taken without interpolation)
    and one where both gains are 0 is left out. O(n_boot * m).

    Parameters
    ----------
    a, b, c : array_like, shape (m, 2)
        Per prompt (tokens, steps) of the three methods, rows the same prompts, ``m >= 1``.
    level : float, optional
        Coverage of the percentile interval.
    n_boot : int, optional
        Resamples.
    rng : numpy.random.Generator, int or None, optional
        Random source: a Generator or a seed.

    Returns
    -------
    BootstrapInterval
        ``value`` is the share on all prompts (NaN when :math:`R_c = R_b`).

    Raises
    ------
    ValueError
        Unless a, b and c have the same shape (m, 2) with m >= 1.
    """
    units = [np.asarray(x, dtype=np.float64) for x in (a, b, c)]
    shape = units[0].shape
    if any(u.shape != shape for u in units) or len(shape) != 2 or shape[1] != 2 or shape[0] == 0:
        raise ValueError("`a`, `b` and `c` must be equal non-empty (prompts, 2) arrays of (tokens, steps); got shapes "
                         f"{', '.join(str(u.shape) for u in units)}.")
    idx = np.random.default_rng(rng).integers(0, shape[0], size=(n_boot, shape[0]))
    with np.errstate(divide="ignore", invalid="ignore"):
        full = [u[:, 0].sum() / u[:, 1].sum() for u in units]
        value = float((full[0] - full[1]) / (full[2] - full[1])) if full[2] != full[1] else float("nan")
        r = [u[idx, 0].sum(axis=1) / np.maximum(u[idx, 1].sum(axis=1), 1e-300) for u in units]
        stats = (r[0] - r[1]) / (r[2] - r[1])
    alpha = (1.0 - level) / 2.0
    stats = stats[~np.isnan(stats)]  # 0 / 0: no gain of either kind in that resample
    if not len(stats):
        return BootstrapInterval(value, float("nan"), float("nan"), float(level))
    low, high = np.quantile(stats, [alpha, 1.0 - alpha], method="inverted_cdf")  # no interpolation with an infinite share
    return BootstrapInterval(value, float(low), float(high), float(level))


def _bootstrap(pairs, level: float, n_boot: int, rng) -> BootstrapInterval:
    """Pooled ratio of the first (num, den) pair, minus that of the second if given, and its
    percentile interval from resampling the shared units."""
    arrays = [(np.asarray(n, dtype=np.float64), np.asarray(d, dtype=np.float64)) for n, d in pairs]
    shape = arrays[0][0].shape
    if any(a.shape != shape or b.shape != shape for a, b in arrays) or len(shape) != 1 or shape[0] == 0:
        raise ValueError("`numerator` and `denominator` must be equal non-empty vectors; got shapes "
                         f"{', '.join(str(x.shape) for pair in arrays for x in pair)}.")
    signs = (1.0, -1.0)
    value = float(sum(s * num.sum() / den.sum() for s, (num, den) in zip(signs, arrays)))
    idx = np.random.default_rng(rng).integers(0, shape[0], size=(n_boot, shape[0]))
    stats = sum(s * num[idx].sum(axis=1) / np.maximum(den[idx].sum(axis=1), 1e-300) for s, (num, den) in zip(signs, arrays))
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(stats, [alpha, 1.0 - alpha])
    return BootstrapInterval(value, float(low), float(high), float(level))


def summarize(records, *, seed: int = 0) -> dict:
    """Summarise prompt records (see ``empirical.run``) per (tree, method) and per node.

    Parameters
    ----------
    records : list of dict
    seed : int, optional

    Returns
    -------
    dict with ``convention``, ``runs`` (one entry per tree and method, in first-seen order:
    prompts, tokens, steps, ``tokens_per_step`` interval, mean accepted depth, finish counts,
    ``acceptance_check`` (observed acceptance at verified nodes vs the mean exact rate) and
    ``timing``) and ``nodes`` (``all`` and ``by_run``: per k, the count and mean exact
    acceptance of every method at the verified nodes, mean TV, hub masses; missing rates counted
    under ``missing``). Records are sorted by prompt so a resumed run summarises identically.
    """
    groups: dict[tuple, list] = defaultdict(list)
    for r in sorted(records, key=lambda r: (r["prompt_index"], r["tree"], r["method"])):
        groups[(r["tree"], r["method"])].append(r)
    runs, by_run, all_nodes = [], {}, []
    for (tree, method), recs in groups.items():
        tokens = np.array([len(r["tokens"]) for r in recs])
        steps = np.array([len(r["steps"]["emitted"]) for r in recs])
        accepted = np.concatenate([r["steps"]["accepted"] for r in recs]).astype(float)
        interval = bootstrap_ratio(tokens, steps, rng=np.random.default_rng([seed, len(runs)]))
        runs.append({
            "tree": tree,
            "method": method,
            "prompts": len(recs),
            "tokens": int(tokens.sum()),
            "steps": int(steps.sum()),
            "tokens_per_step": interval.to_dict(),
            "mean_accepted": float(accepted.mean()) if len(accepted) else None,
            "finish": {f: sum(r["finish"] == f for r in recs) for f in ("eos", "length")},
            "acceptance_check": _acceptance_check(method, [r["nodes"] for r in recs]),
            "timing": _timing(recs, int(tokens.sum()), int(steps.sum())),
        })
        nodes = [r["nodes"] for r in recs]
        by_run[f"{tree}|{method}"] = _node_table(nodes)
        all_nodes.extend(nodes)
    return {"convention": TOKENS_PER_STEP_CONVENTION, "runs": runs,
            "nodes": {"all": _node_table(all_nodes), "by_run": by_run}}


def _timing(recs, tokens: int, steps: int) -> dict:
    sums = {ph: float(sum(sum(r["steps"][f"{ph}_s"]) for r in recs)) for ph in PHASES}
    prefill = float(sum(r["prefill_s"] for r in recs))
    decode = sum(sums.values())
    return {
        "seconds": {**sums, "prefill": prefill},
        "ms_per_step": {ph: 1e3 * s / max(steps, 1) for ph, s in sums.items()},
        "tokens_per_second": tokens / (decode + prefill) if decode + prefill > 0 else None,
        "decode_tokens_per_second": tokens / decode if decode > 0 else None,
        "verify_fraction_of_target": sums["verify"] / sums["target"] if sums["target"] > 0 else None,
    }


def _acceptance_check(method: str, node_columns: list) -> dict | None:
    """Observed acceptance frequency at the run's verified nodes against the mean exact rate of
    the run's own method there (equal in expectation: a check that the decoder does what the
    theory says). None when the method's rate was not recorded or no node was verified."""
    slots = [s for cols in node_columns for s in cols["slot"]]
    rates = [x for cols in node_columns for x in cols["acceptance"].get(method, [])]
    if not slots or len(rates) != len(slots) or any(x is None for x in rates):
        return None
    observed = np.asarray(slots) >= 0
    return {"nodes": len(slots), "observed": float(observed.mean()), "exact_mean": float(np.mean(rates)),
            "standard_error": float(np.sqrt(np.sum(np.asarray(rates) * (1 - np.asarray(rates)))) / len(slots))}


def _node_table(node_columns: list) -> dict:
    """Per k: count, mean acceptance per method (missing values counted, never averaged)."""
    rows: dict[int, dict] = {}
    for cols in node_columns:
        for i, k in enumerate(cols["k"]):
            row = rows.setdefault(int(k), {"tv": [], "hub_q": [], "hub_p": [], "acceptance": defaultdict(list), "missing": defaultdict(int)})
            for key in ("tv", "hub_q", "hub_p"):
                row[key].append(cols[key][i])
            for method, values in cols["acceptance"].items():
                if values[i] is None:
                    row["missing"][method] += 1
                else:
                    row["acceptance"][method].append(values[i])
    table = {}
    for k in sorted(rows):
        row = rows[k]
        table[str(k)] = {
            "count": len(row["tv"]),
            "mean": {m: float(np.mean(v)) for m, v in row["acceptance"].items()},
            "missing": dict(row["missing"]),
            **{f"mean_{key}": float(np.mean(row[key])) for key in ("tv", "hub_q", "hub_p")},
        }
    return table
