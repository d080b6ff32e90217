"""Throughput of batched tree decoding (``spechub decode --batch-size``) against one prompt at a time.

Same pair, prompts, tree, method and seeds in one process; the batched runs emit the same tokens
(checked here), so tokens per second is the only difference. Usage (H200):
  python3 benchmarks/bench_batch.py --target /root/stage/smol.gguf --draft smollm2-draft --device cuda \
      --prompts .device/prompts_eval.jsonl --num-prompts 16 --batch-sizes 1,4,16 [--row-walk] --out $OUT/bench_batch.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from empirical import engines
from empirical.models import load_pair
from empirical.records import RecordLog
from empirical.run import DecodeConfig, run_decode


_batched_walk = engines.TorchEngine.walk_batch


def _row_walk(tree, method, tokens, p_probs, q_rows, rngs):
    """The tree walked one row at a time (one host sync per row and visited node)."""
    return [out for b, rng in enumerate(rngs) for out in _batched_walk(
        tree, method, tokens[b:b + 1], p_probs[b:b + 1], None if q_rows is None else q_rows[b:b + 1], [rng])]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="smollm2")
    ap.add_argument("--draft", default="smollm2-draft")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--prompts", default="builtin")
    ap.add_argument("--num-prompts", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--tree", default="2^4")
    ap.add_argument("--method", default="spechub")
    ap.add_argument("--temperature", type=float, default=0.6)
    ap.add_argument("--batch-sizes", default="1,8")
    ap.add_argument("--row-walk", action="store_true",
                    help="also rerun the last batch size with the tree walked row by row (the walk before it was batched)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    pair = load_pair(args.target, args.draft, device=args.device)
    rows, tokens = [], {}
    sizes = [(int(b), "batched") for b in args.batch_sizes.split(",")]
    if args.row_walk:
        sizes.append((sizes[-1][0], "rows"))
    for bs, walk in sizes:
        engines.TorchEngine.walk_batch = staticmethod(_row_walk if walk == "rows" else _batched_walk)
        config = DecodeConfig(target=args.target, draft=args.draft, trees=(args.tree,), methods=(args.method,),
                              temperature=args.temperature, prompts=args.prompts, num_prompts=args.num_prompts,
                              max_new_tokens=args.max_new_tokens, device=args.device, node_methods=(), batch_size=bs)
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            summary = run_decode(config, out, pair=pair, progress=False)
            wall = time.perf_counter() - t0
            tokens[(bs, walk)] = {r["key"]: r["tokens"] for r in RecordLog(f"{out}/records.jsonl").records}
        run = summary["runs"][0]
        rows.append({"batch_size": bs, "walk": walk, "wall_s": wall, "tokens": run["tokens"], "tokens_per_second": run["tokens"] / wall,
                     "tokens_per_step": run["tokens_per_step"]["value"], "ms_per_step": run["timing"]["ms_per_step"]})
        print(json.dumps(rows[-1]), flush=True)
    first = next(iter(tokens.values()))
    same = all(t == first for t in tokens.values())
    for row in rows:
        row["speedup_vs_first"] = row["tokens_per_second"] / rows[0]["tokens_per_second"]
    import torch

    res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "argv": vars(args), "same_tokens": same,
           "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "torch": torch.__version__, "rows": rows}
    print(json.dumps({"same_tokens": same, "speedups": [round(r["speedup_vs_first"], 2) for r in rows]}))
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
