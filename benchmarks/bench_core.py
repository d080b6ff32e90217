"""Benchmark of the exact acceptance rates at real vocabulary sizes (issue: theory core).

Measures, side by side in one run:
* RRS without replacement, k = 2, one position at n = 152,000: the O(n log n) closed form vs the
  naive O(n * #{q > p}) double loop of theory.md 4.3 (on a prefix of positions, extrapolated);
* every method's rate for a batch of 1,000 positions x 32,000 tokens (LLM-like pairs:
  q = softmax(z), p = softmax(z + noise)).

Usage: python3 benchmarks/bench_core.py [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np

from spechub_theory.acceptance import acceptance_rates
from spechub_theory.methods import METHODS, rrs_wor


def llm_like(rows: int, n: int, seed: int = 0, sigma: float = 1.0, scale: float = 3.0):
    """Peaked, correlated pairs: q = softmax(scale * z), p = softmax(scale * z + sigma * noise)."""
    rng = np.random.default_rng(seed)
    z = scale * rng.standard_normal((rows, n))
    q = np.exp(z - z.max(axis=1, keepdims=True))
    zp = z + sigma * rng.standard_normal((rows, n))
    p = np.exp(zp - zp.max(axis=1, keepdims=True))
    return p / p.sum(axis=1, keepdims=True), q / q.sum(axis=1, keepdims=True)


def naive_rrs_wor_k2(p, q):
    """theory.md 4.3 done naively: for each j with q_j > p_j an O(n) inner sum."""
    tv = np.maximum(q - p, 0).sum()
    r = np.maximum(p - q, 0) / tv
    total = np.minimum(p, q).sum()
    for j in np.flatnonzero(q > p):
        rest = q.sum() - q[j]
        total += (q[j] - p[j]) * (np.minimum(r, q / rest).sum() - min(r[j], q[j] / rest))
    return total


def timed(fn, *args, repeat=3):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args)
        best = min(best, time.perf_counter() - t0)
    return best, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    res = {"date": time.strftime("%Y-%m-%d"), "machine": platform.processor() or platform.machine(), "numpy": np.__version__}

    p, q = llm_like(1, 152_000, seed=1)
    t_fast, fast = timed(rrs_wor.acceptance, p[0], q[0], 2)
    count = int((q[0] > p[0]).sum())
    sub = np.flatnonzero(q[0] > p[0])[:200]
    t0 = time.perf_counter()
    tv = np.maximum(q[0] - p[0], 0).sum()
    r = np.maximum(p[0] - q[0], 0) / tv
    for j in sub:
        np.minimum(r, q[0] / (1 - q[0][j])).sum()
    t_naive = (time.perf_counter() - t0) / len(sub) * count
    res["rrs_wor_k2_n152000"] = {"fast_s": t_fast, "naive_extrapolated_s": t_naive, "speedup": t_naive / t_fast,
                                 "value": float(fast), "tokens_with_q_gt_p": count}

    # correctness of the fast form against the naive loop at a moderate size
    ps, qs = llm_like(3, 3000, seed=2)
    res["fast_vs_naive_max_abs_diff_n3000"] = float(max(abs(rrs_wor.acceptance(ps[i], qs[i], 2) - naive_rrs_wor_k2(ps[i], qs[i])) for i in range(3)))

    P, Q = llm_like(1000, 32_000, seed=3)
    per_method = {}
    for name, m in METHODS.items():
        k = m.FIXED_K or 2
        per_method[name], _ = timed(m.acceptance, P, Q, k, repeat=1)
    res["batch_1000x32000_k2_seconds"] = per_method
    res["batch_1000x32000_k2_total_s"] = sum(per_method.values())
    t_all, rates = timed(acceptance_rates, P, Q, 2, repeat=1)
    res["acceptance_rates_1000x32000_k2_s"] = t_all  # all five methods, one validation, one shared sort
    res["mean_rates"] = {m: float(np.mean(v)) for m, v in rates.acceptance.items()}
    # optimal on the shared window vs the old path (the five others + optimal's own full sort), CPU
    five = [m for m in METHODS if m != "optimal"]
    cpu = {}
    for label, fn in (("without_optimal", lambda: acceptance_rates(P, Q, 2, methods=five)),
                      ("old_path_five_plus_full_sort", lambda: (acceptance_rates(P, Q, 2, methods=five), METHODS["optimal"].rate(P, Q, 2))),
                      ("all_six_shared_window", lambda: acceptance_rates(P, Q, 2))):
        t0 = time.process_time()
        fn()
        cpu[label] = time.process_time() - t0
    res["acceptance_rates_1000x32000_k2_cpu_s"] = cpu
    print(json.dumps(res, indent=2))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(res, fh, indent=2)


if __name__ == "__main__":
    main()
