"""Benchmark: textbook LP vs reduced LP vs brute-force cut vs fast formula, and fast positions per second.

Part 1 (same inputs for every method, one run): n = 8, 16, ..., 128; k = 2, 3; laws iid and wor.
A method stops growing n once its next run is predicted (from its last two times) to exceed
--limit seconds; the largest n within the limit is then *extrapolated* from that growth and
marked as such. Part 2: the fast formula (numpy, float64) in positions per second at n = 32,000
and 49,152, k = 2, i.i.d. and w/o replacement. Writes JSON (``--out``) and prints a summary.

Run: PYTHONPATH=. python benchmarks/bench_lp.py --out docs/bench_lp.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import time

import numpy as np

import lp
from lp.cut import MAX_CUT_N
from spechub_theory.draft_laws import get_law

SIZES = (8, 16, 32, 64, 128, 256, 512)
#: the enumeration of a w/o-replacement law builds (n^k, n) arrays: skip beyond this many floats
MAX_ENUM_FLOATS = 3e8


def pair(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """LLM-like correlated (p, q): q = softmax(z), p = softmax(z + noise) (theory.md 3.6)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2, n)
    q = np.exp(z - z.max())
    zp = z + rng.normal(0, 1, n)
    p = np.exp(zp - zp.max())
    return p / p.sum(), q / q.sum()


def timed(fn) -> tuple[float, float]:
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, float(value)


def part1(limit: float, budget: float) -> dict:
    methods = {
        "textbook_lp": lambda law, p, q, k: lp.solve(p, q, k, law=law, solver="cvxpy").value,
        "reduced_lp": lambda law, p, q, k: lp.solve(p, q, k, law=law).value,
        "bruteforce_cut": lambda law, p, q, k: lp.optimal_acceptance(p, q, k, law=law, method="cut"),
        "fast": lambda law, p, q, k: lp.optimal_acceptance(p, q, k, law=law),
    }
    start = time.perf_counter()
    rows, largest = [], {}
    for k in (2, 3):
        for law in ("iid", "wor"):
            history = {m: [] for m in methods}
            stopped = {}
            for n in SIZES:
                p, q = pair(n, seed=n * 10 + k)
                values = {}
                for name, fn in methods.items():
                    if name in stopped:
                        continue
                    if name == "fast" and n > 128:
                        continue  # the fast formula is timed at real sizes in part 2
                    if name == "fast" and law == "wor" and k >= 3:
                        stopped[name] = "no fast formula (w/o replacement, k >= 3)"
                        continue
                    if name == "bruteforce_cut" and n > min(MAX_CUT_N, 16):
                        stopped[name] = "2^n sets: stopped above n = 16"
                        continue
                    if law == "wor" and name != "fast" and n ** (k + 1) > MAX_ENUM_FLOATS:
                        stopped[name] = f"w/o-replacement enumeration needs n^{k + 1} floats"
                        continue
                    h = history[name]
                    if len(h) >= 2:
                        growth = h[-1][1] / max(h[-2][1], 1e-6)
                        if h[-1][1] * growth > limit or time.perf_counter() - start > budget:
                            stopped[name] = f"predicted {h[-1][1] * growth:.0f} s at n = {n}"
                            continue
                    seconds, value = timed(lambda: fn(law, p, q, k))
                    h.append((n, seconds))
                    values[name] = value
                    rows.append({"k": k, "law": law, "n": n, "method": name, "seconds": seconds, "value": value})
                spread = max(values.values()) - min(values.values()) if values else 0.0
                print(f"k={k} {law:3s} n={n:4d} " + " ".join(f"{m}={t:.3g}s" for m, t in
                      ((r["method"], r["seconds"]) for r in rows if r["k"] == k and r["law"] == law and r["n"] == n))
                      + f"  max disagreement {spread:.1e}", flush=True)
            for name, h in history.items():
                largest[f"k={k} {law} {name}"] = _largest(h, limit, stopped.get(name), power_law=name != "bruteforce_cut")
    return {"rows": rows, "largest_n_within_limit": largest}


def _largest(h, limit, why, power_law=True):
    """Largest n measured within ``limit``, or extrapolated from the last two points (power law;
    not for the brute-force cut, which is exponential and capped at MAX_CUT_N by design)."""
    inside = [n for n, t in h if t <= limit]
    out = {"measured": max(inside) if inside else None, "stopped": why}
    if not power_law:
        out["cap"] = f"n <= {MAX_CUT_N} by design (2^n table)"
    elif len(h) >= 2 and why:
        (n1, t1), (n2, t2) = h[-2], h[-1]
        if t2 > t1 > 0 and n2 > n1:
            exponent = math.log(t2 / t1) / math.log(n2 / n1)
            out["extrapolated"] = int(n2 * (limit / t2) ** (1 / exponent))
            out["exponent"] = round(exponent, 2)
    return out


def part2(batch: int) -> list:
    out = []
    for n in (32_000, 49_152):
        rng = np.random.default_rng(n)
        z = rng.normal(0, 3, size=(batch, n))
        q = np.exp(z - z.max(axis=1, keepdims=True))
        q /= q.sum(axis=1, keepdims=True)
        zp = z + rng.normal(0, 1, size=(batch, n))
        p = np.exp(zp - zp.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        for law in ("iid", "wor", "hub"):
            lp.optimal_acceptance(p[:2], q[:2], 2, law=law)  # warm-up
            reps = []
            for _ in range(3):
                t, _ = timed(lambda: lp.optimal_acceptance(p, q, 2, law=law).sum())
                reps.append(t)
            best = min(reps)
            row = {"n": n, "k": 2, "drafts": law, "batch": batch, "seconds": best,
                   "positions_per_second": batch / best, "ms_per_position": 1e3 * best / batch}
            out.append(row)
            print(row, flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=60.0, help="seconds per solve that defines 'handles'")
    parser.add_argument("--budget", type=float, default=240.0, help="stop starting part-1 runs after this many seconds")
    parser.add_argument("--batch", type=int, default=64, help="positions per call in part 2")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    cpu = subprocess.run("lscpu | grep 'Model name'", shell=True, capture_output=True, text=True).stdout.strip()
    result = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu, "python": platform.python_version(),
              "numpy": np.__version__, "limit_s": args.limit,
              "load_average_at_start": os.getloadavg()}
    result["part1"] = part1(args.limit, args.budget)
    result["part2"] = part2(args.batch)
    result["load_average_at_end"] = os.getloadavg()
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main()
