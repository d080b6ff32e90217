"""GPU benchmark of the fast exact optimum (lp.fast_torch): positions per second on CUDA, checked against numpy.

Self-contained: run from the repository root on a CUDA machine (torch, numpy, scipy; no network).
For n in {32000, 49152}, batch in {2048, 4096, 8192}, drafts in {iid, wor, hub} (k = 2) and sort
keys float64 / float32 (sums always float64), times ``lp.optimal_acceptance`` with CUDA events
(warm-up, then the median of --reps runs) and, in the same run, compares a small batch with the
numpy float64 reference (max |difference|). Goal: >= 100,000 positions/s at n = 49,152.

Run: python benchmarks/bench_lp_gpu.py            (writes $OUT/bench_lp_gpu.json)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lp.fast import optimal_acceptance  # noqa: E402
from lp.fast_torch import optimal_acceptance as optimal_acceptance_torch  # noqa: E402


def llm_like(batch: int, n: int, device, seed: int):
    """q = softmax(z), p = softmax(z + noise), z ~ N(0, 3^2): peaked, correlated rows (float64)."""
    g = torch.Generator(device=device).manual_seed(seed)
    z = 3.0 * torch.randn(batch, n, generator=g, device=device, dtype=torch.float32)
    zp = z + torch.randn(batch, n, generator=g, device=device, dtype=torch.float32)
    return torch.softmax(zp.double(), dim=-1), torch.softmax(z.double(), dim=-1)


def time_cuda(fn, reps: int) -> float:
    """Median seconds of ``fn`` over ``reps`` runs, measured with CUDA events after one warm-up
    (wall clock on CPU, for a dry run of this script with ``--device cpu``)."""
    fn()
    if not torch.cuda.is_available():
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="32000,49152")
    parser.add_argument("--batches", default="2048,4096,8192")
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--check-batch", type=int, default=64, help="rows compared with numpy")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu for a dry run")
    parser.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "bench_lp_gpu.json"))
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_lp_gpu.py needs CUDA (or --device cpu for a dry run)")
    device = torch.device(args.device)
    result = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu (dry run)",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "k": 2,
        "rows": [],
        "parity": [],
    }
    sizes = [int(s) for s in args.sizes.split(",")]
    for n in sizes:
        p, q = llm_like(args.check_batch, n, device, seed=n)
        p_np, q_np = p.cpu().numpy(), q.cpu().numpy()
        for drafts in ("iid", "wor", "hub"):
            ref = optimal_acceptance(p_np, q_np, 2, law=drafts)
            for key in (torch.float64, torch.float32):
                got = optimal_acceptance_torch(p, q, 2, law=drafts, sort_dtype=key).cpu().numpy()
                row = {"n": n, "drafts": drafts, "sort_dtype": str(key).replace("torch.", ""),
                       "rows": args.check_batch, "max_abs_diff_vs_numpy": float(np.abs(got - ref).max())}
                result["parity"].append(row)
                print("parity", row, flush=True)
        del p, q
        for batch in (int(b) for b in args.batches.split(",")):
            try:
                p, q = llm_like(batch, n, device, seed=batch + n)
                for drafts in ("iid", "wor", "hub"):
                    for key in (torch.float64, torch.float32):
                        seconds = time_cuda(lambda: optimal_acceptance_torch(p, q, 2, law=drafts, sort_dtype=key), args.reps)
                        row = {"n": n, "batch": batch, "drafts": drafts, "sort_dtype": str(key).replace("torch.", ""),
                               "seconds": seconds, "positions_per_second": batch / seconds}
                        if device.type == "cuda":
                            row["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
                        result["rows"].append(row)
                        print(row, flush=True)
                del p, q
            except torch.cuda.OutOfMemoryError as exc:  # report and go on with the next size
                result["rows"].append({"n": n, "batch": batch, "error": f"out of memory: {exc}"[:200]})
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=1)
    best = max((r for r in result["rows"] if r.get("n") == max(sizes) and "positions_per_second" in r),
               key=lambda r: r["positions_per_second"], default=None)
    print("best at n =", max(sizes), ":", best)
    print("max parity difference (float64 keys):",
          max(r["max_abs_diff_vs_numpy"] for r in result["parity"] if r["sort_dtype"] == "float64"))


if __name__ == "__main__":
    main()
