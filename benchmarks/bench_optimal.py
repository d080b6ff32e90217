"""Benchmark of the optimal verifier's per-node preparation at n = 151,936 (issue 19).

Measures, side by side in one run, on LLM-shaped pairs (tests/core/test_optimal.py's laws) at T = 0.3,
0.6, 1.0 and k = 2, 3, in process CPU time (the machine is shared: CPU time is the stabler number):
* the cut alone (``optimal.rate``: one sort and the prefix minimum) -- the floor of any preparation;
* the whole preparation with the reference heap pass (``levels_by="heap"``) and with the default
  (fans of the lower hull, strips, heap fallback), their ratio, and how the default's vertices
  were resolved (fans / strips / heap fallback);
* one node rule for 65,536 drafted tuples with the plan built (per-verification cost).

Usage: python3 benchmarks/bench_optimal.py [--out results.json] [--repeat 3]
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

import spechub_theory.methods.optimal_levels as optimal_levels
import spechub_theory.methods.optimal_plan as optimal_plan_module
from spechub_theory.draft_laws import IID
from spechub_theory.methods import optimal

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from bench_core import timed  # noqa: E402  (benchmarks/ is on sys.path when run as a script)
from real_laws import N_REAL as N, real_pair  # noqa: E402


def cpu_time(fn, *args, repeat=3, **kwargs):
    """Best process CPU time of ``repeat`` calls, and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.process_time()
        out = fn(*args, **kwargs)
        best = min(best, time.process_time() - t0)
    return best, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = []
    counts = {}
    inner = optimal_levels.region_levels

    def counted(Q, A, e, k, **kw):
        s = {}
        out = inner(Q, A, e, k, stats=s, **kw)
        for key in ("fan_vertices", "strip_vertices", "heap_vertices"):
            counts[key] = counts.get(key, 0) + s[key]
        return out

    optimal_plan_module.region_levels = counted
    build = optimal_plan_module.optimal_plan
    for T in (0.3, 0.6, 1.0):
        p, q = real_pair(T)
        for k in (2, 3):
            cut, _ = cpu_time(optimal.rate, p, q, k, repeat=args.repeat)
            heap, _ = cpu_time(build, p, q, k, levels_by="heap", repeat=1)
            counts.clear()
            fast, plan = cpu_time(build, p, q, k, repeat=args.repeat)
            resolved = {key: value // args.repeat for key, value in counts.items()}
            drafts = IID.sample(q, k, size=65_536, rng=0)
            verify_s, _ = timed(lambda: optimal.selection_probabilities(plan, drafts) * plan.accept_ratio[drafts])
            rows.append({"T": T, "k": k, "cut_cpu_ms": 1e3 * cut, "heap_prep_cpu_ms": 1e3 * heap,
                         "fast_prep_cpu_ms": 1e3 * fast, "heap_over_fast": heap / fast, **resolved,
                         "tokens_below_1e-16": int((q < 1e-16).sum()),
                         "rule_ns_per_node": 1e9 * verify_s / len(drafts)})
            r = rows[-1]
            print(f"T={T} k={k}: cut {r['cut_cpu_ms']:.1f} ms; preparation heap {r['heap_prep_cpu_ms']:.0f} ms, "
                  f"fast {r['fast_prep_cpu_ms']:.1f} ms (x{r['heap_over_fast']:.1f}); vertices by fans "
                  f"{r.get('fan_vertices', 0)}, strips {r.get('strip_vertices', 0)}, heap {r.get('heap_vertices', 0)}; "
                  f"rule {r['rule_ns_per_node']:.0f} ns/node")
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": platform.processor() or platform.machine(),
            "nproc": os.cpu_count(), "load_average": os.getloadavg(), "numpy": np.__version__, "n": N, "rows": rows}
    print(f"load average {meta['load_average']}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(meta, fh, indent=1)


if __name__ == "__main__":
    main()
