"""Exact tokens per step on synthetic token-tree decoding, as rows for the tree figure.

Convention: tokens per step = accepted drafts + 1 per target forward (long-run exact value of
``spechub_theory.trees.exact``); p = target, q = draft of a seeded synthetic bigram pair.
Source: theory.md 1.1; issue 5 (``tokens_per_step_table``); issue 9 (figure 4).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["TreeTable", "synthetic_tree_table", "calibrate_to"]

_BISECTION_STEPS = 14  # mismatch bracket [0, 8] -> resolution 5e-4, far below what the figure shows


@dataclass(frozen=True)
class TreeTable:
    """Exact tokens per step per (tree, method) on one synthetic pair.

    Attributes
    ----------
    rows : list of dict
        ``{"source", "tree", "nodes", "method", "tokens_per_step", "target_average", "positional_model"}``.
    pair : dict
        The pair's parameters and statistics (``SyntheticPair.to_dict()``).
    calibration : dict
        How the mismatch was chosen (target value and what it matched), or empty.
    """

    rows: list
    pair: dict
    calibration: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready dict.

        Returns
        -------
        dict
        """
        return {"rows": list(self.rows), "pair": dict(self.pair), "calibration": dict(self.calibration)}


def synthetic_tree_table(trees, methods, *, vocab: int = 32, mismatch: float = 1.0, seed: int = 0,
                         calibrate: dict | None = None) -> TreeTable:
    """Exact tokens per step of ``methods`` on ``trees`` for ``make_pair(vocab, mismatch=..., seed=seed)``.

    Parameters
    ----------
    trees, methods : sequence of str
        Tree names (``2^3``) and method names.
    vocab : int
        Vocabulary of the bigram pair (cost grows like vocab^(k+1) per tree level).
    mismatch : float
        Draft noise, unless ``calibrate`` is given.
    seed : int
    calibrate : dict, optional
        ``{"tree": "2^2", "method": "rrs", "tokens_per_step": 1.554, "what": "..."}``: choose the
        mismatch so that this exact value is matched (bisection), e.g. the paper's RRS on 2^2.

    Returns
    -------
    TreeTable

    Raises
    ------
    ImportError
        When ``spechub_theory.trees.synthetic`` / ``tree_exact`` are not installed (the report skips).
    """
    from spechub_theory.trees.synthetic import make_pair
    from spechub_theory.trees.exact import tokens_per_step_table

    calibration = {}
    if calibrate:
        mismatch = calibrate_to(calibrate["tokens_per_step"], calibrate["tree"], calibrate["method"], vocab=vocab, seed=seed)
        calibration = {**calibrate, "mismatch": mismatch}
    pair = make_pair(vocab, mismatch=mismatch, seed=seed)
    table = tokens_per_step_table(pair, list(trees), list(methods))
    source = f"synthetic bigram (exact), n = {vocab}, mismatch {mismatch:.3f}"
    rows = []
    for name, values in table["methods"].items():
        for i, tree in enumerate(table["trees"]):
            rows.append({"source": source, "tree": tree, "nodes": table["nodes"][i], "method": name,
                         "tokens_per_step": values["long_run"][i], "target_average": values["target_average"][i],
                         "positional_model": values["positional_model"][i]})
    return TreeTable(rows, pair.to_dict(), calibration)


def calibrate_to(value: float, tree: str, method: str, *, vocab: int = 32, seed: int = 0) -> float:
    """The mismatch at which ``method`` on ``tree`` has exact long-run tokens per step ``value``.

    Bisection on [0, 8] (tokens per step falls as the mismatch grows, from the tree depth + 1 at
    mismatch 0); values outside the bracket's range give the nearer end. O(14 exact tree solves).

    Parameters
    ----------
    value : float
    tree : str
    method : str
        The verification method (a name or a method module).
    vocab : int, optional
    seed : int, optional

    Returns
    -------
    float
    """
    from spechub_theory.trees.synthetic import make_pair
    from spechub_theory.trees.exact import tokens_per_step_table

    def tps(m: float) -> float:
        t = tokens_per_step_table(make_pair(vocab, mismatch=m, seed=seed), [tree], [method])
        return next(iter(t["methods"].values()))["long_run"][0]

    lo, hi = 0.0, 8.0
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        if tps(mid) > value:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)
