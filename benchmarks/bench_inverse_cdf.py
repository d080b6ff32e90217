"""Benchmark: inverse-CDF draws over a vocabulary-sized row, flat scan against blocks, side by side.

``flat`` and ``blocked`` are :func:`empirical.inverse_cdf.inverse_cdf` with ``blocked=False``
(``torch.cumsum`` over the whole row, ``torch.searchsorted``, the zero-weight guard) and
``blocked=True`` (block totals, their cumulative sums, one gathered block). Both draw one token per row from float64
rows [R, n] (n = 151,936, Qwen2.5's vocabulary), eager and, with ``--compile``, through
``torch.compile(backend="inductor")``; a compile failure is recorded as the row's error. Median of
``--repeat`` timed calls after warm-up, in one process; the ratio flat / blocked is the number.
Each row also checks the draws: a compiled mode's blocked draws against eager's
(``blocked_equal_eager``) and the share equal to the flat search's (``blocked_equal_flat``, 1 but for
ties at rounding).

Usage: python3 benchmarks/bench_inverse_cdf.py [--device cpu] [--rows 1,16,50] [--n 151936] [--compile] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from side_by_side import ints, modes, write_runs  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rows", default="1,16,50", help="comma-separated row counts R")
    ap.add_argument("--n", type=int, default=151_936)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--compile", action="store_true", help="also time both through torch.compile (inductor)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import torch

    from empirical.inverse_cdf import inverse_cdf
    from empirical.timing import median_ms

    def flat(w, u):
        return inverse_cdf(w, u, blocked=False)

    def blocked(w, u):
        return inverse_cdf(w, u, blocked=True)

    gen = torch.Generator(device=args.device).manual_seed(0)
    runs = []
    for R in ints(args.rows):
        w = torch.rand(R, args.n, dtype=torch.float64, device=args.device, generator=gen) ** 8  # peaked rows
        u = torch.rand(R, 1, dtype=torch.float64, device=args.device, generator=gen)
        for mode, wrap in modes(args.compile):
            row = {"rows": R, "mode": mode}
            for name, fn in (("flat", flat), ("blocked", blocked)):
                try:
                    row[f"{name}_ms"] = round(median_ms(partial(wrap(fn), w, u), args.device, repeat=args.repeat), 4)
                except Exception as e:  # noqa: BLE001 - a compile failure is a result here
                    row[f"{name}_error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
            try:  # the draws themselves: this mode's blocked draws against eager's, then against flat
                got = wrap(blocked)(w, u)
                row["blocked_equal_eager"] = bool(torch.equal(got, blocked(w, u)))
                row["blocked_equal_flat"] = round(float((got == flat(w, u)).double().mean()), 4)
            except Exception as e:  # noqa: BLE001
                row["check_error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
            if "flat_ms" in row and "blocked_ms" in row:
                row["flat_over_blocked"] = round(row["flat_ms"] / row["blocked_ms"], 3)
            print(json.dumps(row), flush=True)
            runs.append(row)
    write_runs(args.out, runs, args.device, n=args.n, repeat=args.repeat)


if __name__ == "__main__":
    main()
