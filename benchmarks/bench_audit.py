"""Audit throughput: function-level verifications per second, batched reference vs transformers' per-row verifier.

Run: python benchmarks/bench_audit.py [--trials 1000000] [--hf-calls 3000]
Prints a markdown table with date, CPU model, load average and command; all rows in one run so
the ratios compare. Each row is a full ``audit_function`` (drafts, sampler, pooled chi-square).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time

sys.path[:0] = [os.path.dirname(os.path.abspath(__file__)), os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
from bench_montecarlo import cpu_model  # noqa: E402

from empirical.audit import HFSpeculativeSampling, ReferenceVerifier, Sampling, audit_function, synthetic_case  # noqa: E402
from spechub_theory.montecarlo.stats import sample_size_for  # noqa: E402


def main(argv=None) -> None:
    """Time the audits and print the table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--trials", type=int, default=1_000_000)
    ap.add_argument("--hf-calls", type=int, default=3000)
    args = ap.parse_args(argv)
    s = Sampling(1.0, 0, 1.0)
    rows = []
    for n in (50_000, 1000):
        case = synthetic_case(n, seed=0, sampling=s)
        t = time.perf_counter()
        r = audit_function(ReferenceVerifier(), case, n_trials=args.trials, rng=0)
        dt = time.perf_counter() - t
        rows.append(("reference (batched numpy)", n, args.trials, dt, r.verdict, sample_size_for(case.p[0], 0.01)))
    for n in (64, 1000, 50_000):
        case = synthetic_case(n, seed=0, sampling=s)
        t = time.perf_counter()
        r = audit_function(HFSpeculativeSampling(), case, n_trials=args.hf_calls, rng=0)
        dt = time.perf_counter() - t
        rows.append(("transformers `_speculative_sampling` (per row)", n, args.hf_calls, dt, r.verdict,
                     sample_size_for(case.p[0], 0.01)))
    base = {n: c / dt for name, n, c, dt, *_ in rows if name.startswith("reference")}
    print(f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; CPU: {cpu_model()}, "
          f"nproc {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    print(f"- command: `python benchmarks/bench_audit.py --trials {args.trials} --hf-calls {args.hf_calls}` (T = 1, no top-k/top-p, L = 1)\n")
    print("| sampler | n | verifications | seconds | per second | N for TV 0.01, power 0.99 | time for that N | verdict |")
    print("|---|---|---|---|---|---|---|---|")
    for name, n, c, dt, verdict, need in rows:
        rate = c / dt
        ratio = f" ({base[n] / rate:,.0f}x slower than batched)" if n in base and not name.startswith("reference") else ""
        print(f"| {name} | {n:,} | {c:,} | {dt:.1f} | {rate:,.0f}{ratio} | {need:,} | {need / rate:,.0f} s | {verdict} |")


if __name__ == "__main__":
    main()
