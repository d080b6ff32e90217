"""The validation experiment (issue 8): SpecHub vs RRS vs RRS without replacement on a real pair.

Decodes every (temperature, tree, method, seed) cell of the plan over the prompts with
``empirical.run.run_decode``, sharded over worker processes that share one GPU (batch-1 decoding of
a 135M model is launch-bound, so several processes fill the GPU), each loading the pair once.
Jobs run in priority order and every prompt record is fsynced, so a time budget cut loses at most
the prompts in flight; rerunning the same command resumes. At the end the records are merged into
``experiment_summary.json`` (tokens per step with bootstrap intervals over prompts, per cell) and
``nodes.npz`` (per verified node: exact acceptance of every method and the optimum, TV, q(a), p(a)).

Usage (H200; see benchmarks/device/README.md for staging):
  python3 benchmarks/device/experiment.py --target /root/stage/smol.gguf --draft smollm2-draft \
      --prompts .device/prompts_eval.jsonl --num-prompts 100 --workers 12 --time-budget-s 500 --out $OUT/exp
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

BINARY = ("2^2", "2^3", "2^4", "2^5")
TERNARY = ("3^2", "3^3", "3^4")
#: per-node rates recorded at every verified node (k = 3 without replacement has no fast exact form)
NODE_METHODS_BINARY = ("single", "rrs", "rrs_wor", "kseq", "spechub", "optimal_iid", "optimal_wor")
NODE_METHODS_TERNARY = ("single", "rrs", "kseq", "spechub", "optimal_iid")


def plan(temperatures, seeds_deep: int, shards: int) -> list[dict]:
    """Jobs in priority order: binary trees (3 methods) at seed 0, ternary RRS/RRS w/o, extra seeds of 2^5."""
    jobs = []
    for T in temperatures:
        for tree in BINARY:
            jobs += [dict(T=T, tree=tree, method=m, seed=0) for m in ("spechub", "rrs", "rrs_wor")]
    for T in temperatures:
        for tree in TERNARY:
            jobs += [dict(T=T, tree=tree, method=m, seed=0) for m in ("rrs", "rrs_wor")]
    for seed in range(1, seeds_deep):
        for T in temperatures:
            jobs += [dict(T=T, tree="2^5", method=m, seed=seed) for m in ("spechub", "rrs", "rrs_wor")]
    return [dict(job, shard=s) for job in jobs for s in range(shards)]


def job_dir(out: Path, job: dict) -> Path:
    return out / "runs" / f"T{job['T']}" / job["tree"].replace("^", "p") / job["method"] / f"seed{job['seed']}" / f"shard{job['shard']}"


def worker(rank: int, args, jobs, deadline: float):
    """Load the pair once, then take every `workers`-th job while time remains."""
    import torch

    from empirical.models import load_pair
    from empirical.run import DecodeConfig, run_decode

    torch.set_num_threads(1)
    pair = load_pair(args.target, args.draft, device=args.device, dtype=args.dtype)
    for i in range(rank, len(jobs), args.workers):
        if time.time() > deadline:
            break
        job = jobs[i]
        config = DecodeConfig(
            target=args.target, draft=args.draft, trees=(job["tree"],), methods=(job["method"],),
            temperature=job["T"], top_p=1.0, prompts=str(Path(args.shard_dir) / f"shard{job['shard']}.jsonl"),
            num_prompts=args.shard_size, max_new_tokens=args.max_new_tokens, seed=1000 * job["seed"] + job["shard"],
            device=args.device, dtype=args.dtype,
            node_methods=NODE_METHODS_BINARY if job["tree"] in BINARY else NODE_METHODS_TERNARY,
        )
        t0 = time.time()
        run_decode(config, job_dir(Path(args.out), job), pair=pair, progress=False)
        print(f"[{time.strftime('%H:%M:%S')}] worker {rank} job {i} {job} {time.time() - t0:.1f}s", flush=True)


def write_shards(prompts_file: str, num_prompts: int, shard_size: int, shard_dir: Path) -> int:
    lines = [l for l in Path(prompts_file).read_text(encoding="utf-8").splitlines() if l.strip()][:num_prompts]
    shard_dir.mkdir(parents=True, exist_ok=True)
    shards = (len(lines) + shard_size - 1) // shard_size
    for s in range(shards):
        (shard_dir / f"shard{s}.jsonl").write_text("\n".join(lines[s * shard_size:(s + 1) * shard_size]) + "\n", encoding="utf-8")
    return shards


def merge(out: Path, jobs: list[dict], shard_size: int) -> dict:
    """Merge the prompt records of every job into per-temperature summaries and a node table."""
    import numpy as np

    from empirical.summary import summarize

    by_key: dict = {}
    node_rows = []
    for job in jobs:
        path = job_dir(out, job) / "records.jsonl"
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            rec["prompt_index"] = job["shard"] * shard_size + rec["prompt_index"]
            by_key.setdefault((job["T"], job["seed"]), []).append(rec)
            cols = rec["nodes"]
            for i, k in enumerate(cols["k"]):
                node_rows.append((job["T"], job["tree"], job["method"], job["seed"], k, cols["tv"][i], cols["hub_q"][i], cols["hub_p"][i],
                                  *[(cols["acceptance"].get(m) or [None] * len(cols["k"]))[i] for m in NODE_METHODS_BINARY]))
    summaries = {f"T={T},seed={seed}": summarize(recs) for (T, seed), recs in sorted(by_key.items())}
    if node_rows:
        cols = list(zip(*node_rows))
        arrays = {"temperature": np.array(cols[0], dtype=np.float32), "tree": np.array(cols[1]), "method": np.array(cols[2]),
                  "seed": np.array(cols[3], dtype=np.int16), "k": np.array(cols[4], dtype=np.int16),
                  "tv": np.array(cols[5], dtype=np.float64), "hub_q": np.array(cols[6], dtype=np.float64), "hub_p": np.array(cols[7], dtype=np.float64)}
        for j, m in enumerate(NODE_METHODS_BINARY):
            arrays[m] = np.array([np.nan if v is None else v for v in cols[8 + j]], dtype=np.float64)
        np.savez_compressed(out / "nodes.npz", **arrays)
    return summaries


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="smollm2")
    ap.add_argument("--draft", default="smollm2-draft")
    ap.add_argument("--prompts", required=True, help="JSONL prompts (MT-Bench {'turns': [...]} or {'prompt': ...})")
    ap.add_argument("--num-prompts", type=int, default=100)
    ap.add_argument("--shard-size", type=int, default=10)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--temperatures", default="0.6,1.0")
    ap.add_argument("--seeds-deep", type=int, default=3, help="seeds for the 2^5 tree (default 3)")
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--time-budget-s", type=float, default=480)
    ap.add_argument("--merge-only", action="store_true")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    start = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    args.shard_dir = str(out / "prompt_shards")
    shards = write_shards(args.prompts, args.num_prompts, args.shard_size, Path(args.shard_dir))
    jobs = plan([float(t) for t in args.temperatures.split(",")], args.seeds_deep, shards)
    if not args.merge_only:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        deadline = start + args.time_budget_s
        procs = [ctx.Process(target=worker, args=(r, args, jobs, deadline)) for r in range(args.workers)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(timeout=max(1.0, deadline + 30 - time.time()))
        for p in procs:
            if p.is_alive():
                p.terminate()
    summaries = merge(out, jobs, args.shard_size)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "argv": sys.argv, "jobs_planned": len(jobs),
            "wall_s": time.time() - start, "workers": args.workers, "host": os.uname().nodename}
    try:
        import torch, transformers  # noqa: E401

        meta.update(torch=torch.__version__, transformers=transformers.__version__,
                    gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    except Exception:  # pragma: no cover - metadata only
        pass
    (out / "experiment_summary.json").write_text(json.dumps({"meta": meta, "summaries": summaries}, indent=1), encoding="utf-8")
    print(json.dumps({"out": str(out), "cells": {k: len(v["runs"]) for k, v in summaries.items()}, "wall_s": meta["wall_s"]}))


if __name__ == "__main__":
    main()
