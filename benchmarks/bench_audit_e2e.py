"""End-to-end audit cost: one ``generate(assistant_model=...)`` trial, plain vs. exact forward memo vs. memo + forked workers.

Run: python benchmarks/bench_audit_e2e.py [--target smollm2] [--draft smollm2-draft] [--calls 40]
Prints a markdown table with date, CPU model, load average and command; all rows in one run so the
ratios compare. Every row draws the same trials (seeded) through ``empirical.audit.parallel.draw_trials``;
the memo rows are checked to emit the very tokens of the plain row (workers = 1).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time

sys.path[:0] = [os.path.dirname(os.path.abspath(__file__)), os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
from bench_montecarlo import cpu_model  # noqa: E402

import numpy as np  # noqa: E402

from empirical.audit import HFGenerate, Sampling  # noqa: E402
from empirical.audit.parallel import draw_trials  # noqa: E402


def main(argv=None) -> None:
    """Time the three ways and print the table."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--target", default="smollm2")
    ap.add_argument("--draft", default="smollm2-draft")
    ap.add_argument("--prompt", default="The capital of France is")
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    from empirical.models import load_pair

    pair = load_pair(args.target, args.draft, device="cpu", dtype="float32")
    ids = pair.tokenizer(args.prompt, return_tensors="pt")["input_ids"]
    load = os.getloadavg()[0]
    print(f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; CPU: {cpu_model()}, "
          f"nproc {os.cpu_count()}, load average {load:.1f}")
    print(f"- command: `python benchmarks/bench_audit_e2e.py --target {args.target} --draft {args.draft} --calls {args.calls} "
          f"--workers {args.workers}` (prompt {args.prompt!r}, max_new_tokens 3, torch on 1 thread per process)\n")
    print("| setting | way | calls | seconds per call | speed-up vs plain | memo hits / misses (target) |")
    print("|---|---|---|---|---|---|")
    for s in (Sampling(0.6, 50, 1.0), Sampling(1.0, 50, 0.9)):
        rows, ref = [], None
        for way, memo, workers in (("plain", False, 1), ("memo", True, 1), (f"memo + {args.workers} workers", True, args.workers)):
            sampler = HFGenerate(pair.target, pair.draft, ids, s, memo=memo)
            if memo:  # warm: the memo of a long audit is warm for almost all of its trials
                list(draw_trials(sampler, np.random.default_rng(1), args.calls))
            t = time.perf_counter()
            got = [x.tolist() for x in draw_trials(sampler, np.random.default_rng(0), args.calls, workers=workers)]
            dt = (time.perf_counter() - t) / args.calls
            if workers == 1:
                ref = got if ref is None else ref
                assert got == ref, "the memo changed a token"
            stats = next(iter(sampler.memos.values())).stats if memo else None
            rows.append((way, dt, "" if stats is None else f"{stats.hits} / {stats.misses}"))
        for way, dt, hits in rows:
            print(f"| T={s.temperature:g}, top-k {s.top_k}, top-p {s.top_p:g} | {way} | {args.calls} | {dt:.3f} | "
                  f"{rows[0][1] / dt:.1f}x | {hits} |")


if __name__ == "__main__":
    main()
