"""Benchmark: the optimal verifier's plans for a batch of rows, built in threads vs in a process pool (issue 19).

The torch rule (``empirical.optimal_torch.rule``) builds one host plan per row of a verified tree
level. Its PAVA and heap parts hold the GIL, so threads overlap only the numpy passes;
``$SPECHUB_PLAN_PROCESSES`` = P builds whole plans in P spawned processes. Side by side in one
run, on LLM-shaped pairs at n = 151,936 (``tests/real_laws.py``), k = 2: wall time of one
``rule`` call for ``--rows`` rows, serial, with P threads, with P processes (pool started and
warmed before timing), best of ``--repeat``; every timed call gets fresh pairs (new seeds), so no
plan cache, here or in the pool's processes, can hit.

Usage: python3 benchmarks/bench_plan_pool.py [--T 0.6] [--rows 8] [--workers 2] [--repeat 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from real_laws import real_pair  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=float, default=0.6)
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2, help="threads / processes")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import torch

    import empirical.optimal_torch as optimal_torch
    from spechub_theory.methods import optimal

    torch.set_num_threads(1)
    seeds = iter(range(10**6))

    def batch():
        """Fresh pairs for every timed call: no plan cache (here or in a pool's processes) can hit."""
        pairs = [real_pair(args.T, seed=next(seeds)) for _ in range(args.rows)]
        p = torch.as_tensor(np.stack([a for a, _ in pairs]))
        q = torch.as_tensor(np.stack([b for _, b in pairs]))
        return p, q, torch.as_tensor(np.random.default_rng(0).integers(0, p.shape[1], size=(args.rows, 2)))

    def best(setup):
        setup()
        times = []
        for _ in range(args.repeat):
            p, q, drafts = batch()
            optimal._cache.clear()
            t0 = time.perf_counter()
            optimal_torch.rule(p, q, drafts)
            times.append(time.perf_counter() - t0)
        return min(times)

    def threads(count):
        def setup():
            os.environ[optimal_torch.PLAN_PROCESSES_ENV] = "0"
            optimal_torch.PLAN_THREADS = count
        return setup

    def processes():
        os.environ[optimal_torch.PLAN_PROCESSES_ENV] = str(args.workers)
        p, q, drafts = batch()
        optimal_torch.rule(p, q, drafts)  # start and warm the pool (imports, first plans)

    serial = best(threads(1))
    threaded = best(threads(args.workers))
    pooled = best(processes)
    out = {"date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "machine": platform.processor() or platform.machine(),
           "nproc": os.cpu_count(), "load_average": os.getloadavg(), "T": args.T, "rows": args.rows, "k": 2,
           "workers": args.workers, "serial_s": serial, "threads_s": threaded, "processes_s": pooled,
           "threads_speedup": serial / threaded, "processes_speedup": serial / pooled,
           "ms_per_plan": {"serial": 1e3 * serial / args.rows, "threads": 1e3 * threaded / args.rows,
                           "processes": 1e3 * pooled / args.rows}}
    print(json.dumps(out, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
