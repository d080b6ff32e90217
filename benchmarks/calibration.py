"""Calibration of the lossless test: false-alarm rate on real verifiers, power against the mutants.

Run: python benchmarks/calibration.py [--seeds 1000] [--power-seeds 500] [--out docs/calibration.md]
False alarms: ``matches_target`` at alpha = 0.01 on the output of lossless verifiers, one
simulation per seed; the rejection count must be within its binomial interval of 1%. Power:
``assert_lossless``'s sample size and level (alpha = 1e-3, power 0.99, tv = the mutant's exact TV).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time

import numpy as np
from scipy import optimize, stats

from bench_montecarlo import cpu_model, emit  # benchmarks/ is on sys.path when run as a script
from spechub_theory.montecarlo.mutants import MUTANTS
from spechub_theory.montecarlo.simulation import simulate
from spechub_theory.montecarlo.stats import matches_target, sample_size_for
from spechub_theory.verification import output_law

ALPHA = 0.01
P3, Q3 = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.4, 0.3, 0.2, 0.1])  # worked example E3


def zipf_pair(n, rng):
    """A Zipf-like target with 10% zeros and a draft that perturbs its logits (an LM-like pair)."""
    p = 1.0 / np.arange(1, n + 1) ** 1.1
    p[rng.random(n) < 0.1] = 0.0
    p /= p.sum()
    q = p * np.exp(rng.normal(0.0, 1.0, n)) + 1e-7
    return p, q / q.sum()


def cases():
    rng = np.random.default_rng(2026)
    d1000 = (rng.dirichlet(np.full(1000, 0.3)), rng.dirichlet(np.full(1000, 0.3)))
    z50k = zipf_pair(50_000, rng)
    return [  # (label, p, q, method, k, draws per seed)
        ("E3, n = 4", P3, Q3, "spechub", 2, 2_000),
        ("E3, n = 4", P3, Q3, "rrs_wor", 3, 2_000),
        ("Dirichlet(0.3), n = 1,000", *d1000, "rrs_wor", 2, 20_000),
        ("Dirichlet(0.3), n = 1,000", *d1000, "kseq", 2, 20_000),
        ("Zipf + 10% zeros, n = 50,000", *z50k, "spechub", 2, 50_000),
        ("Zipf + 10% zeros, n = 50,000", *z50k, "rrs", 2, 50_000),
    ]


def clopper_pearson(x, n, level=0.95):
    ci = stats.binomtest(x, n).proportion_ci(level, method="exact")
    return ci.low, ci.high


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=1000)
    ap.add_argument("--power-seeds", type=int, default=500)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    start = time.time()
    lines = ["# Calibration of the lossless test (`spechub_theory.montecarlo.stats`)", "",
             f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; command: "
             f"`python benchmarks/calibration.py --seeds {args.seeds} --power-seeds {args.power_seeds}"
             + (f" --out {args.out}`" if args.out else "`"),
             "- one Monte Carlo run per seed (seeds 0, 1, ...), `matches_target` (pooled Pearson chi-square) on its output histogram;"
             " intervals are exact (Clopper-Pearson) 95% binomial intervals", "",
             f"## False alarms at alpha = {ALPHA} (lossless verifiers)", "",
             "| case | method | k | draws per seed | bins (pooled tokens) | rejections / seeds | rate | 95% interval | 1% inside | 95% acceptance interval covers exact |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    total_rejected = total_seeds = 0
    for label, p, q, method, k, draws in cases():
        rejected = covered = 0
        for seed in range(args.seeds):
            r = simulate(p, q, k, method=method, n_trials=draws, rng=seed, workers=1)
            test = matches_target(r, p, alpha=ALPHA)
            rejected += not test.passed
            covered += r.confidence_interval(0.95).contains(r.exact)
        lo, hi = clopper_pearson(rejected, args.seeds)
        row = (f"| {label} | {method} | {k} | {draws:,} | {test.n_bins:,} ({test.pooled_tokens:,}) | {rejected} / {args.seeds} | "
               f"{rejected / args.seeds:.2%} | [{lo:.2%}, {hi:.2%}] | {'yes' if lo <= ALPHA <= hi else 'NO'} | "
               f"{covered / args.seeds:.1%} |")
        lines.append(row)
        print(row, f"({time.time() - start:.0f} s)", flush=True)
        total_rejected, total_seeds = total_rejected + rejected, total_seeds + args.seeds
    lo, hi = clopper_pearson(total_rejected, total_seeds)
    lines.append(f"| all cases | | | | | {total_rejected} / {total_seeds} | {total_rejected / total_seeds:.2%} | "
                 f"[{lo:.2%}, {hi:.2%}] | {'yes' if lo <= ALPHA <= hi else 'NO'} | |")
    lines += ["", "## Power against the negative controls (`spechub_theory.montecarlo.mutants`) on E3, k = 2", "",
              "Sample size N = `sample_size_for(p, tv)` (as `assert_lossless`: alpha = 1e-3, power 0.99), "
              "tv = the mutant's exact TV from `output_law`.", "",
              "The documented N guards the worst spread of the deviation (chi2 distance 4 TV^2); a mutant's real "
              "deviation is more concentrated (ratio below > 1), so its power at N exceeds 0.99. To check the "
              "noncentral chi-square model itself, the last columns use the smaller N at which that model, "
              "with the mutant's real chi2 distance, predicts power 0.5.", "",
              "| mutant | exact TV | chi2(p' ‖ p) / 4 TV^2 | N | rejections / seeds | power | 95% interval "
              "| N for predicted power 0.5 | measured power there | 95% interval |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    df = len(P3) - 1
    crit = stats.chi2.isf(1e-3, df)
    for name, mutant in MUTANTS.items():
        out = output_law(P3, Q3, 2, method=mutant).output
        tv = 0.5 * float(np.abs(out - P3).sum())
        chi2_distance = float(((out - P3) ** 2 / P3).sum())
        N = sample_size_for(P3, tv, 1e-3, 0.99)
        half = int(np.ceil(optimize.brentq(lambda m: stats.ncx2.sf(crit, df, m * chi2_distance) - 0.5, 1.0, 1e7)))
        measured = []
        for size in (N, half):
            rejected = sum(not matches_target(simulate(P3, Q3, 2, method=mutant, n_trials=size, rng=seed, workers=1), P3,
                                              alpha=1e-3).passed for seed in range(args.power_seeds))
            measured.append((rejected, *clopper_pearson(rejected, args.power_seeds)))
        (r1, lo, hi), (r2, lo2, hi2) = measured
        row = (f"| {name} | {tv:.6f} | {chi2_distance / (4 * tv * tv):.2f} | {N:,} | {r1} / {args.power_seeds} | "
               f"{r1 / args.power_seeds:.1%} | [{lo:.1%}, {hi:.1%}] | {half:,} | {r2 / args.power_seeds:.1%} | [{lo2:.1%}, {hi2:.1%}] |")
        lines.append(row)
        print(row, f"({time.time() - start:.0f} s)", flush=True)
    lines += ["", f"Total time {time.time() - start:.0f} s on {cpu_model()}, {os.cpu_count()} cores "
              f"(load average {os.getloadavg()[0]:.1f}, shared with other jobs)."]
    emit(lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
