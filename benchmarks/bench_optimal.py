"""Benchmark of the optimal verifier's per-node preparation at n = 151,936 (issue 19).

Measures, side by side in one run, on LLM-shaped pairs (tests/core/test_optimal.py's laws) at T = 0.3,
0.6, 1.0 and k = 2, 3:
* the cut alone (``optimal.rate``: one sort and the prefix minimum) -- the floor of any preparation;
* the whole preparation (``optimal_plan``), wall and process CPU time (the machine is shared: CPU
  time is the stabler number), and the CPU time of the sequential heap pass over the units that are
  not merged at once (pure Python);
* one node rule for 65,536 drafted tuples with the plan built (per-verification cost).

Usage: python3 benchmarks/bench_optimal.py [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

import spechub_theory.methods.optimal_plan as optimal_plan_module
from spechub_theory.draft_laws import IID
from spechub_theory.methods import optimal

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from bench_core import timed  # noqa: E402  (benchmarks/ is on sys.path when run as a script)
from real_laws import N_REAL as N, real_pair  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rows = []
    heap_time = {"s": 0.0, "units": 0}
    inner = optimal_plan_module._kinetic_levels

    def timed_levels(Q, A, edges, k):
        t0 = time.process_time()
        out = inner(Q, A, edges, k)
        heap_time["s"] += time.process_time() - t0
        heap_time["units"] += len(Q)
        return out

    optimal_plan_module._kinetic_levels = timed_levels
    for T in (0.3, 0.6, 1.0):
        p, q = real_pair(T)
        for k in (2, 3):
            cut, _ = timed(optimal.rate, p, q, k)
            heap_time.update(s=0.0, units=0)
            cpu = time.process_time()
            prep, plan = timed(optimal_plan_module.optimal_plan, p, q, k, repeat=1)
            prep_cpu = time.process_time() - cpu
            drafts = IID.sample(q, k, size=65_536, rng=0)
            verify_s, _ = timed(lambda: optimal.selection_probabilities(plan, drafts) * plan.accept_ratio[drafts])
            rows.append({"T": T, "k": k, "cut_ms": 1e3 * cut, "prep_ms": 1e3 * prep, "prep_cpu_ms": 1e3 * prep_cpu,
                         "heap_cpu_ms": 1e3 * heap_time["s"],
                         "units": heap_time["units"], "tokens_below_1e-16": int((q < 1e-16).sum()),
                         "prep_over_cut": prep / cut, "rule_ns_per_node": 1e9 * verify_s / len(drafts)})
            r = rows[-1]
            print(f"T={T} k={k}: cut {r['cut_ms']:.1f} ms, preparation {r['prep_ms']:.0f} ms wall, "
                  f"{r['prep_cpu_ms']:.0f} ms CPU (heap pass {r['heap_cpu_ms']:.0f} ms CPU over {r['units']} units; "
                  f"{r['prep_over_cut']:.0f}x the cut), "
                  f"rule {r['rule_ns_per_node']:.0f} ns/node")
    meta = {"date": time.strftime("%Y-%m-%d"), "machine": platform.processor() or platform.machine(),
            "numpy": np.__version__, "n": N, "rows": rows}
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(meta, fh, indent=1)


if __name__ == "__main__":
    main()
