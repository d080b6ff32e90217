"""Benchmark: the optimal verifier's plans for a batch of rows, in threads vs in a process pool over pipes or shared memory.

The torch rule (``empirical.optimal_torch.rule``) builds one host plan per row of a verified tree
level. Its PAVA and heap parts hold the GIL, so threads overlap only the numpy passes;
``$SPECHUB_PLAN_PROCESSES`` = P builds whole plans in P spawned processes, whose inputs and plans
travel pickled through the pool's pipes (``$SPECHUB_PLAN_TRANSPORT=pipe``) or through one
shared-memory block (``shm``, the default; :mod:`empirical.plan_pool`). Side by side in one run,
on LLM-shaped pairs at n = 151,936 (``tests/real_laws.py``), k = 2: wall time of one ``rule``
call for ``--rows`` rows, serial, with P threads, with P processes over pipes and over shared
memory (one pool, started and warmed with each transport before timing), best of ``--repeat``,
and the parent process's CPU time in that call (the pool's children not counted); every timed
call gets fresh pairs (new seeds), so no plan cache, here or in the pool's processes, can hit.

Usage: python3 benchmarks/bench_plan_pool.py [--T 0.6] [--rows 8] [--workers 2] [--repeat 2] [--device cpu] [--out FILE]
(``--device cuda``: p, q and the plans on the GPU, as in the decoder; the parent's copies then go to
the device instead of into fresh host memory)
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
    ap.add_argument("--device", default="cpu",
                    help="where p, q and the plans' tensors live (cuda: the decoder's case, the fields copied to the device)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import torch

    import empirical.optimal_torch as optimal_torch
    from empirical.timing import synchronize
    from spechub_theory.methods import optimal

    torch.set_num_threads(1)
    seeds = iter(range(10**6))

    def batch():
        """Fresh pairs for every timed call: no plan cache (here or in a pool's processes) can hit."""
        pairs = [real_pair(args.T, seed=next(seeds)) for _ in range(args.rows)]
        p = torch.as_tensor(np.stack([a for a, _ in pairs]), device=args.device)
        q = torch.as_tensor(np.stack([b for _, b in pairs]), device=args.device)
        drafts = np.random.default_rng(0).integers(0, p.shape[1], size=(args.rows, 2))
        return p, q, torch.as_tensor(drafts, device=args.device)

    def best(setup):
        """(wall, parent CPU) seconds of the fastest of ``--repeat`` calls after ``setup()``."""
        setup()
        times = []
        for _ in range(args.repeat):
            p, q, drafts = batch()
            optimal._cache.clear()
            t0, c0 = time.perf_counter(), time.process_time()
            optimal_torch.rule(p, q, drafts)
            synchronize(p.device)
            times.append((time.perf_counter() - t0, time.process_time() - c0))
        return min(times)

    def threads(count):
        def setup():
            os.environ[optimal_torch.PLAN_PROCESSES_ENV] = "0"
            optimal_torch.PLAN_THREADS = count
        return setup

    def processes(transport):
        def setup():
            os.environ[optimal_torch.PLAN_PROCESSES_ENV] = str(args.workers)
            os.environ[optimal_torch.PLAN_TRANSPORT_ENV] = transport
            optimal_torch.rule(*batch())  # start and warm the pool (imports, first plans, the block)
        return setup

    runs = {"serial": best(threads(1)), "threads": best(threads(args.workers)),
            "processes_pipe": best(processes("pipe")), "processes_shm": best(processes("shm"))}
    optimal_torch.shutdown_plan_pool()
    serial = runs["serial"][0]
    out = {"date_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "machine": platform.processor() or platform.machine(),
           "nproc": os.cpu_count(), "load_average": os.getloadavg(), "device": args.device, "T": args.T, "rows": args.rows, "k": 2,
           "workers": args.workers, "seconds": {name: wall for name, (wall, _) in runs.items()},
           "speedup_over_serial": {name: serial / wall for name, (wall, _) in runs.items()},
           "ms_per_plan": {name: 1e3 * wall / args.rows for name, (wall, _) in runs.items()},
           "parent_cpu_ms_per_plan": {name: 1e3 * cpu / args.rows for name, (_, cpu) in runs.items()}}
    print(json.dumps(out, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
