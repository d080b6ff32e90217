"""Exact acceptance rates of every method, and the optimum, for one (p, q, k).

Prints a table, or with ``--json`` exactly one JSON object
``{"k", "n", "tv", "hub", "acceptance": {"single", "rrs", "rrs_wor", "kseq", "spechub",
"optimal_iid", "optimal_wor"}}``. Rows of a matrix input are positions (arrays in the JSON).
"""

from __future__ import annotations

import numpy as np

from lp.rates import all_rates
from .args import add_pq_arguments, load_pq, print_json
from spechub_theory.distributions import check_k

__all__ = ["add_arguments", "run"]

EPILOG = """examples:
  spechub bound --p 0.4,0.4,0.2 --q 0.7,0.2,0.1 --k 2
  spechub bound --p p.npy --q q.npy --k 3 --json
  spechub bound --logits target.txt --draft-logits draft.txt --temperature 0.6 --json
"""


def add_arguments(parser) -> None:
    """Add the arguments of ``spechub bound``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The parser to add the options to.
    """
    add_pq_arguments(parser)
    parser.add_argument("--k", type=int, default=2, help="drafts per node (default 2)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args) -> int:
    """Run ``spechub bound``; returns the exit status.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed command-line arguments.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        On bad input (the message names the rule): ``k`` = ... distinct drafts (rrs_wor, spechub)
        need a vocabulary of at least ... tokens.
    """
    p, q = load_pq(args)
    k = check_k(args.k)
    if k > p.shape[-1]:
        raise ValueError(f"`k` = {k} distinct drafts (rrs_wor, spechub) need a vocabulary of at least {k} tokens; n = {p.shape[-1]}.")
    result = all_rates(p, q, k)
    if args.json:
        print_json(result.to_dict())
        return 0
    print(_table(result))
    return 0


def _table(result) -> str:
    tv, hub = np.asarray(result.tv), np.asarray(result.hub)
    lines = [f"k = {result.k}, n = {result.n}, TV(p, q) = {_fmt(tv)}, hub a = argmax q = {_fmt(hub)}", ""]
    width = max(len(m) for m in result.acceptance)
    lines.append(f"{'method':<{width}}  acceptance")
    for name, value in result.acceptance.items():
        lines.append(f"{name:<{width}}  {_fmt(value)}")
    for name, note in result.notes.items():
        lines.append(f"  note ({name}): {note}")
    return "\n".join(lines)


def _fmt(x) -> str:
    if x is None:
        return "-"
    x = np.asarray(x)
    if x.ndim == 0:
        return f"{x.item():.6f}" if x.dtype.kind == "f" else str(x.item())
    return "[" + ", ".join(f"{v:.6f}" if x.dtype.kind == "f" else str(v) for v in x.ravel()[:8]) + (", ...]" if x.size > 8 else "]")
