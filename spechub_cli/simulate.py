"""Monte Carlo verification of each method: acceptance with intervals, positional split, a lossless test.

Prints a table, or with ``--json`` one JSON object ``{"k", "n", "n_trials", "seed", "alpha",
"methods": {name: {"acceptance_mc", "ci95", "acceptance_exact", "z", "chi2_pvalue", "lossless",
"positional_mc", "positional_exact", ...}}}`` with the method names of ``spechub bound``.
Convention: p = target, q = draft; source: theory.md 6.3 and 7.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from .args import add_pq_arguments, load_pq, print_json
from spechub_theory.methods import METHOD_NAMES
from spechub_theory.montecarlo.compare import DEFAULT_ALPHA, simulate_methods
from spechub_theory.montecarlo.mutants import MUTANTS
from spechub_theory.progress import ProgressBar

__all__ = ["add_arguments", "run", "EPILOG"]

EPILOG = """examples:
  spechub simulate --p 0.3,0.3,0.4 --q 0.6,0.3,0.1 --k 2 --trials 1000000 --json
  spechub simulate --p p.npy --q q.npy --k 3 --methods spechub rrs_wor --seed 7
  spechub simulate --p 0.1,0.2,0.3,0.4 --q 0.4,0.3,0.2,0.1 --methods rrs rrs_skip_duplicates

--methods also takes the negative controls of spechub_theory.montecarlo.mutants (%s).
""" % ", ".join(MUTANTS)

#: default number of simulated verifications per method
DEFAULT_TRIALS = 1_000_000


def add_arguments(parser) -> None:
    """Add the arguments of ``spechub simulate``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The parser to add the options to.
    """
    add_pq_arguments(parser)
    parser.add_argument("--k", type=int, default=2, help="drafts per node (default 2; single always uses 1)")
    parser.add_argument("--trials", type=int, default=DEFAULT_TRIALS, help=f"verifications per method (default {DEFAULT_TRIALS:,})")
    parser.add_argument("--n", type=int, default=None, help=argparse.SUPPRESS)  # the old name: a clear error in run
    parser.add_argument("--seed", type=int, default=0, help="seed of the numpy Generator (default 0)")
    parser.add_argument("--methods", nargs="+", default=list(METHOD_NAMES), metavar="M",
                        help="methods (and/or mutants) to simulate (default: %(default)s)")
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help=f"level of the lossless test (default {DEFAULT_ALPHA:g})")
    parser.add_argument("--workers", type=int, default=None, help="threads (default: CPU count)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar on stderr (default: on when stderr is a terminal)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def run(args) -> int:
    """Run ``spechub simulate``; returns the exit status.

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
        On bad input (the message names the rule): ``simulate`` takes one (p, q) pair; or ``--n`` is
        now ``--trials`` (n is the vocabulary size everywhere else): use --trials; or ``--trials``
        must be >= 1.
    """
    p, q = load_pq(args)
    if p.ndim != 1:
        raise ValueError(f"`simulate` takes one (p, q) pair; got {p.shape[0]} rows (positions).")
    if args.n is not None:
        raise ValueError(f"`--n` is now `--trials` (n is the vocabulary size everywhere else): use --trials {args.n}.")
    if args.trials < 1:
        raise ValueError(f"`--trials` must be >= 1; got {args.trials}.")
    if not 0 < args.alpha < 1:
        raise ValueError(f"`--alpha` must be in (0, 1); got {args.alpha}.")
    show = sys.stderr.isatty() if args.progress is None else args.progress
    bar = ProgressBar(len(args.methods) * args.trials) if show else None
    summary = simulate_methods(p, q, args.k, args.methods, n_trials=args.trials, seed=args.seed, alpha=args.alpha,
                               workers=args.workers, progress=bar)
    if bar is not None:
        bar.close()
    if args.json:
        print_json(_finite(summary))
    else:
        print(_table(summary))
    return 0


def _finite(obj):
    """Replace +-inf (z-score against an exact rate of 0 or 1 that was missed) by None for JSON."""
    if isinstance(obj, dict):
        return {key: _finite(v) for key, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def _table(summary: dict) -> str:
    lines = [f"k = {summary['k']}, n = {summary['n']}, {summary['n_trials']:,} trials per method, seed {summary['seed']}, "
             f"lossless test at alpha = {summary['alpha']:g}", ""]
    head = f"{'method':<20} {'acceptance':>10}  {'95% interval':<19} {'exact':>8} {'z':>6}  {'chi2 p':>8}  lossless"
    lines += [head, "-" * len(head)]
    for name, e in summary["methods"].items():
        exact = "-" if e["acceptance_exact"] is None else f"{e['acceptance_exact']:.6f}"
        z = "-" if e["z"] is None else f"{e['z']:+.2f}"
        lo, hi = e["ci95"]
        lines.append(f"{name:<20} {e['acceptance_mc']:>10.6f}  [{lo:.6f}, {hi:.6f}] {exact:>8} {z:>6}  "
                     f"{e['chi2_pvalue']:>8.3g}  {'yes' if e['lossless'] else 'NO'}")
    for name, note in summary.get("notes", {}).items():
        lines.append(f"  note ({name}): {note}")
    return "\n".join(lines)
