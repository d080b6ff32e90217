"""Monte Carlo throughput: verified draws per second of each method at n = 100 and 1,000.

Run: python benchmarks/bench_montecarlo.py [--draws 1000000] [--out docs/benchmarks-montecarlo.md]
Writes a markdown table with date, CPU model, load average and command (wall and CPU time,
1 and 2 worker threads, all in one run so the ratios are comparable).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time

import numpy as np

from spechub_theory.methods import METHODS
from spechub_theory.montecarlo.simulation import simulate


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except Exception:  # pragma: no cover
        return platform.processor() or "unknown"


def emit(lines, out=None) -> None:
    """Print the markdown lines, and write them to ``out`` when given."""
    text = "\n".join(lines) + "\n"
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text)
    print(text)


def measure(p, q, k, name, draws, workers):
    m = METHODS[name]
    kk = m.FIXED_K or k
    wall, cpu = time.perf_counter(), time.process_time()
    r = simulate(p, q, kk, method=name, n_trials=draws, rng=0, workers=workers)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return draws / wall, draws / cpu, r.z


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=1_000_000)
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--out", default=None, help="markdown file to write (default: print only)")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(2024)
    simulate([0.5, 0.5], [0.5, 0.5], 1, method="single", n_trials=1000, rng=0)  # warm-up
    load_before = os.getloadavg()
    rows = []
    for n in (100, 1000):
        p, q = rng.dirichlet(np.full(n, 0.3)), rng.dirichlet(np.full(n, 0.3))
        for name in METHODS:
            one = measure(p, q, args.k, name, args.draws, 1)
            two = measure(p, q, args.k, name, args.draws, 2)
            rows.append((n, name, one, two))
            print(f"n={n:5d} {name:8s} 1 thread {one[0] / 1e6:5.2f} M/s (CPU {one[1] / 1e6:5.2f} M/s)  "
                  f"2 threads {two[0] / 1e6:5.2f} M/s  z={two[2]:+.2f}", flush=True)
    load_after = os.getloadavg()
    lines = [
        "# Monte Carlo throughput (`spechub_theory.montecarlo.simulation.simulate`)",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores; Python {platform.python_version()}, numpy {np.__version__}",
        f"- load average (1 min) before / after: {load_before[0]:.1f} / {load_after[0]:.1f} "
        "(other jobs share the machine: wall-clock rates are lower bounds)",
        f"- command: `python benchmarks/bench_montecarlo.py --draws {args.draws} --k {args.k}"
        + (f" --out {args.out}`" if args.out else "`"),
        f"- {args.draws:,} verified draws per cell, k = {args.k} (single: k = 1), p, q ~ Dirichlet(0.3), seed 0, "
        "batch 65,536; 'CPU' = draws per second of process CPU time (summed over threads)",
        "",
        "| n | method | 1 thread, M draws/s (wall) | 1 thread (CPU) | 2 threads, M draws/s (wall) | speed-up | z vs exact |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, name, one, two in rows:
        lines.append(f"| {n} | {name} | {one[0] / 1e6:.2f} | {one[1] / 1e6:.2f} | {two[0] / 1e6:.2f} | {two[0] / one[0]:.2f} | {two[2]:+.2f} |")
    emit(lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
