"""Monte Carlo verification of each method: acceptance with intervals, positional split, a lossless test.

Prints a table, or with ``--json`` one JSON object ``{"k", "n", "n_draws", "seed", "alpha",
"methods": {name: {"acceptance_mc", "ci95", "acceptance_exact", "z", "chi2_pvalue", "lossless",
"positional_mc", "positional_exact", ...}}}`` with the method names of ``spechub bound``.
Convention: p = target, q = draft; source: theory.md 6.3 and 7.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from .cli_args import add_pq_arguments, load_pq, print_json
from .distributions import check_k
from .methods import METHOD_NAMES, get_method
from .montecarlo import simulate
from .mutants import MUTANTS
from .stats import matches_target

__all__ = ["add_arguments", "run", "simulate_methods", "EPILOG", "ProgressBar"]

EPILOG = """examples:
  spechub simulate --p 0.3,0.3,0.4 --q 0.6,0.3,0.1 --k 2 --n 1000000 --json
  spechub simulate --p p.npy --q q.npy --k 3 --methods spechub rrs_wor --seed 7
  spechub simulate --p 0.1,0.2,0.3,0.4 --q 0.4,0.3,0.2,0.1 --methods rrs rrs_skip_duplicates

--methods also takes the negative controls of spechub_theory.mutants (%s).
""" % ", ".join(MUTANTS)

#: default number of simulated verifications per method
DEFAULT_DRAWS = 1_000_000
#: default level of the lossless test (five methods at 1e-3: family-wise false alarm <= 0.5%)
DEFAULT_ALPHA = 1e-3


def add_arguments(parser) -> None:
    """Arguments of ``spechub simulate``."""
    add_pq_arguments(parser)
    parser.add_argument("--k", type=int, default=2, help="drafts per node (default 2; single always uses 1)")
    parser.add_argument("--n", type=int, default=DEFAULT_DRAWS, help=f"verifications per method (default {DEFAULT_DRAWS:,})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the numpy Generator (default 0)")
    parser.add_argument("--methods", nargs="+", default=list(METHOD_NAMES), metavar="M",
                        help="methods (and/or mutants) to simulate (default: %(default)s)")
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, help=f"level of the lossless test (default {DEFAULT_ALPHA:g})")
    parser.add_argument("--workers", type=int, default=None, help="threads (default: CPU count)")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                        help="progress bar on stderr (default: on when stderr is a terminal)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def simulate_methods(p, q, k: int, methods, *, n_draws: int, seed: int = 0, alpha: float = DEFAULT_ALPHA,
                     workers=None, progress=None) -> dict:
    """Simulate each method and test it: the JSON-ready ``{"k", "n", "n_draws", "seed", "alpha", "methods"}``.

    Methods whose draft law needs more distinct tokens than n are listed under ``"notes"``.
    Each method gets its own stream ``seed + index`` so adding a method changes no other result.
    """
    k = check_k(k)
    n = p.shape[-1]
    out, notes = {}, {}
    for index, name in enumerate(methods):
        m = MUTANTS[name] if name in MUTANTS else get_method(name)
        kk = m.FIXED_K or k
        if m.LAW.distinct and kk > n:
            notes[m.NAME] = f"omitted: k = {kk} distinct drafts need n >= {kk}"
            continue
        start = time.perf_counter()
        result = simulate(p, q, kk, method=m, n_trials=n_draws, rng=seed + index, workers=workers,
                          progress=None if progress is None else progress.bind(m.NAME))
        test = matches_target(result.token_counts, p, alpha=alpha, kind="counts")
        entry = result.to_dict()
        for key in ("method", "n_draws", "seed"):
            entry.pop(key)
        entry["ci999"] = list(_interval(result, 0.999))
        entry["positional_ci95"] = [[c.low, c.high] for c in result.positional_intervals(0.95)]
        entry.update(chi2_pvalue=test.pvalue, chi2_statistic=test.statistic, chi2_df=test.df,
                     lossless=test.passed, seconds=time.perf_counter() - start)
        if not test.passed:
            entry["worst_tokens"] = [d.to_dict() for d in test.worst]
        out[m.NAME] = entry
    summary = {"k": k, "n": n, "n_draws": n_draws, "seed": seed, "alpha": alpha, "methods": out}
    if notes:
        summary["notes"] = notes
    return summary


def run(args) -> int:
    """Run ``spechub simulate``; returns the exit status."""
    p, q = load_pq(args)
    if p.ndim != 1:
        raise ValueError(f"`simulate` takes one (p, q) pair; got {p.shape[0]} rows (positions).")
    if args.n < 1:
        raise ValueError(f"`--n` must be >= 1; got {args.n}.")
    if not 0 < args.alpha < 1:
        raise ValueError(f"`--alpha` must be in (0, 1); got {args.alpha}.")
    show = sys.stderr.isatty() if args.progress is None else args.progress
    bar = ProgressBar(len(args.methods) * args.n) if show else None
    summary = simulate_methods(p, q, args.k, args.methods, n_draws=args.n, seed=args.seed, alpha=args.alpha,
                               workers=args.workers, progress=bar)
    if bar is not None:
        bar.close()
    if args.json:
        print_json(_finite(summary))
    else:
        print(_table(summary))
    return 0


class ProgressBar:
    """A one-line progress bar on stderr (no dependency): ``[#####.....] 52% spechub 3.1 s``."""

    def __init__(self, total: int, width: int = 30, stream=None):
        self.total, self.width, self.stream = max(int(total), 1), width, stream or sys.stderr
        self.base, self.start, self.last = 0, time.perf_counter(), 0.0

    def bind(self, label: str):
        """A ``progress(done, total)`` callback for one run; runs are counted one after another."""

        def callback(done, total):
            self.update(self.base + done, label)
            if done >= total:
                self.base += total

        return callback

    def update(self, done: int, label: str = "") -> None:
        """Redraw at most 10 times a second."""
        now = time.perf_counter()
        if now - self.last < 0.1 and done < self.total:
            return
        self.last = now
        frac = min(done / self.total, 1.0)
        fill = int(round(frac * self.width))
        self.stream.write(f"\r[{'#' * fill}{'.' * (self.width - fill)}] {frac:4.0%} {label:<20} {now - self.start:6.1f} s")
        self.stream.flush()

    def close(self) -> None:
        """End the line."""
        self.stream.write("\n")
        self.stream.flush()


def _interval(result, level):
    ci = result.confidence_interval(level)
    return ci.low, ci.high


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
    lines = [f"k = {summary['k']}, n = {summary['n']}, {summary['n_draws']:,} draws per method, seed {summary['seed']}, "
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
