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
#: exact rates computed for the collected real (p, q) of the node table
NODE_METHODS = ("single", "rrs", "rrs_wor", "kseq", "spechub", "optimal_iid", "optimal_wor")
#: node table: real (p, q) at the verified nodes of SpecHub decoding on this tree, per temperature
NODE_TREE, NODE_METHOD = "2^4", "spechub"


def plan(temperatures, seeds_deep: int, shards: int, node_shards: int) -> list[dict]:
    """Jobs in priority order: node-table collection, binary trees (3 methods) at seed 0, ternary
    RRS/RRS w/o, extra seeds of 2^5."""
    jobs = [dict(T=T, tree=NODE_TREE, method="nodes", seed=0, shard=s) for T in temperatures for s in range(node_shards)]
    for T in temperatures:
        for tree in BINARY:
            jobs += [dict(T=T, tree=tree, method=m, seed=0) for m in ("spechub", "rrs", "rrs_wor")]
    for T in temperatures:
        for tree in TERNARY:
            jobs += [dict(T=T, tree=tree, method=m, seed=0) for m in ("rrs", "rrs_wor")]
    for seed in range(1, seeds_deep):
        for T in temperatures:
            jobs += [dict(T=T, tree="2^5", method=m, seed=seed) for m in ("spechub", "rrs", "rrs_wor")]
    return jobs[: len(temperatures) * node_shards] + [dict(job, shard=s) for job in jobs[len(temperatures) * node_shards:] for s in range(shards)]


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
        t0 = time.time()
        prompts_file = str(Path(args.shard_dir) / f"shard{job['shard']}.jsonl")
        if job["method"] == "nodes":
            collect_nodes(pair, job, prompts_file, args, job_dir(Path(args.out), job))
        else:
            config = DecodeConfig(
                target=args.target, draft=args.draft, trees=(job["tree"],), methods=(job["method"],),
                temperature=job["T"], top_p=1.0, prompts=prompts_file, num_prompts=args.shard_size,
                max_new_tokens=args.max_new_tokens, seed=1000 * job["seed"] + job["shard"],
                device=args.device, dtype=args.dtype, node_methods=(),  # node rates: see collect_nodes
            )
            run_decode(config, job_dir(Path(args.out), job), pair=pair, progress=False)
        print(f"[{time.strftime('%H:%M:%S')}] worker {rank} job {i} {job} {time.time() - t0:.1f}s", flush=True)


def collect_nodes(pair, job, prompts_file, args, out_dir: Path):
    """Decode the shard with SpecHub on NODE_TREE, keep the real (p, q) of every verified node, then
    compute every method's exact rate and the optimum in batches (far cheaper than per step)."""
    import numpy as np

    from empirical.decoder import Sampling, decode
    from empirical.node_rates import node_rates
    from empirical.prompts import encode_prompt, load_prompts

    out_dir.mkdir(parents=True, exist_ok=True)
    if (out_dir / "nodes.npz").exists():
        return
    P, Q, K = [], [], []

    def on_step(step, laws):
        P.extend(laws.p.astype(np.float32))  # float32 storage; rates are recomputed in float64
        Q.extend(laws.q.astype(np.float32))
        K.extend(laws.k)

    rng = np.random.default_rng([7, job["shard"], int(10 * job["T"])])
    for prompt in load_prompts(prompts_file, num_prompts=args.shard_size):
        decode(pair, encode_prompt(pair.tokenizer, prompt), tree=NODE_TREE, method=NODE_METHOD,
               sampling=Sampling(job["T"], 1.0), max_new_tokens=args.max_new_tokens, rng=rng, on_step=on_step)
    K = np.array(K)
    cols = {"k": K}
    for start in range(0, len(K), 256):
        p = np.asarray(P[start:start + 256], dtype=np.float64)
        q = np.asarray(Q[start:start + 256], dtype=np.float64)
        p /= p.sum(axis=1, keepdims=True)
        q /= q.sum(axis=1, keepdims=True)
        rates = node_rates(p, q, K[start:start + 256], methods=NODE_METHODS)
        for key in ("tv", "hub_q", "hub_p"):
            cols.setdefault(key, []).extend(rates[key])
        for m in NODE_METHODS:
            cols.setdefault(m, []).extend([np.nan if v is None else v for v in rates["acceptance"].get(m, [None] * len(p))])
    np.savez_compressed(out_dir / "nodes.npz", **{k: np.asarray(v, dtype=np.float64) for k, v in cols.items()})


def write_shards(prompts_file: str, num_prompts: int, shard_size: int, shard_dir: Path) -> int:
    lines = [l for l in Path(prompts_file).read_text(encoding="utf-8").splitlines() if l.strip()][:num_prompts]
    shard_dir.mkdir(parents=True, exist_ok=True)
    shards = (len(lines) + shard_size - 1) // shard_size
    for s in range(shards):
        (shard_dir / f"shard{s}.jsonl").write_text("\n".join(lines[s * shard_size:(s + 1) * shard_size]) + "\n", encoding="utf-8")
    return shards


def merge(out: Path, jobs: list[dict], shard_size: int) -> dict:
    """Merge the prompt records of every job into per-temperature summaries, and the node tables."""
    import numpy as np

    from empirical.summary import summarize

    by_key: dict = {}
    nodes: dict = {}
    for job in jobs:
        folder = job_dir(out, job)
        if job["method"] == "nodes":
            if (folder / "nodes.npz").exists():
                with np.load(folder / "nodes.npz") as z:
                    for key in z.files:
                        nodes.setdefault(key, []).append(z[key])
                    nodes.setdefault("temperature", []).append(np.full(len(z["k"]), job["T"]))
            continue
        path = folder / "records.jsonl"
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            rec["prompt_index"] = job["shard"] * shard_size + rec["prompt_index"]
            by_key.setdefault((job["T"], job["seed"]), []).append(rec)
    if nodes:
        np.savez_compressed(out / "nodes.npz", **{k: np.concatenate(v) for k, v in nodes.items()})
    return {f"T={T},seed={seed}": summarize(recs) for (T, seed), recs in sorted(by_key.items())}


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
    ap.add_argument("--node-shards", type=int, default=3, help="prompt shards decoded for the node table, per temperature")
    ap.add_argument("--merge-only", action="store_true")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    start = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    args.shard_dir = str(out / "prompt_shards")
    shards = write_shards(args.prompts, args.num_prompts, args.shard_size, Path(args.shard_dir))
    jobs = plan([float(t) for t in args.temperatures.split(",")], args.seeds_deep, shards, min(shards, args.node_shards))
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
