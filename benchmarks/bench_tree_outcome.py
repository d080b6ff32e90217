"""Benchmark: traversal's tree rule with its targets kept as tensors or as recipes, side by side.

:meth:`empirical.sequence_torch.TreeRulePlan.outcome` with ``lazy=False`` keeps each internal
node's current target t as a float64 [R, m, n] tensor; ``lazy=True`` keeps its recipe (p, q and
the scalars of the updates so far), so each update is one reduction over p and q and only the end
node's t is built (off by default until this measures it on a GPU). One call = the outcome and the
draw of the end node and token (the fast decoder's verification piece for traversal), on random
laws of Qwen2.5's shape (n = 151,936, p float32, q float64) for a 2^4 tree, eager and, with
``--compile``, through ``torch.compile(backend="inductor")``. Median of ``--repeat`` calls after
warm-up, in one process; each row also checks that both give the same end nodes and tokens.

Usage: python3 benchmarks/bench_tree_outcome.py [--device cpu] [--rows 1,16] [--tree 2^4] [--n 151936] [--compile] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from side_by_side import ints, modes, write_runs  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rows", default="1,16", help="comma-separated row counts R")
    ap.add_argument("--tree", default="2^4")
    ap.add_argument("--n", type=int, default=151_936)
    ap.add_argument("--repeat", type=int, default=10)
    ap.add_argument("--compile", action="store_true", help="also time both through torch.compile (inductor)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    import torch

    from empirical.sequence_torch import TreeRulePlan
    from empirical.timing import median_ms
    from spechub_theory.trees.shapes import Tree

    tree = Tree.from_name(args.tree)
    gen = torch.Generator(device=args.device).manual_seed(0)
    runs = []
    for R in ints(args.rows):
        def laws(m, dtype):
            w = torch.rand(R, m, args.n, dtype=torch.float64, device=args.device, generator=gen) ** 8
            return (w / w.sum(-1, keepdim=True)).to(dtype)

        p, q = laws(tree.size, torch.float32), laws(tree.size, torch.float64)
        tokens = torch.randint(0, args.n, (R, tree.size), device=args.device, generator=gen)
        u = torch.rand(R, 2, dtype=torch.float64, device=args.device, generator=gen)
        plan = TreeRulePlan(tree, "traversal", rows=R, n=args.n, device=args.device)

        def step(lazy):
            return lambda: torch.stack(plan.outcome(tokens, p, q, lazy=lazy).draw(u))

        for mode, wrap in modes(args.compile):
            row = {"rows": R, "mode": mode}
            drawn = {}
            for name, lazy in (("tensors", False), ("recipes", True)):
                fn = wrap(step(lazy))
                try:
                    row[f"{name}_ms"] = round(median_ms(fn, args.device, repeat=args.repeat), 3)
                    drawn[name] = fn()
                except Exception as e:  # noqa: BLE001 - a compile failure is a result here
                    row[f"{name}_error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
            if len(drawn) == 2:
                row["same_draws"] = bool(torch.equal(drawn["tensors"], drawn["recipes"]))
                row["tensors_over_recipes"] = round(row["tensors_ms"] / row["recipes_ms"], 3)
            print(json.dumps(row), flush=True)
            runs.append(row)
    write_runs(args.out, runs, args.device, tree=args.tree, n=args.n, repeat=args.repeat)


if __name__ == "__main__":
    main()
