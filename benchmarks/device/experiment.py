"""The validation experiment (issue 8): SpecHub vs RRS vs RRS without replacement on a real pair.

Decodes every (temperature, tree, method, seed) cell of the plan over the prompts with
``empirical.run.run_decode``: each job is one shard of ``--shard-size`` prompts decoded together in
lockstep (``--batch-size``, one forward per tree level for the whole shard), and worker processes
that share the GPU take jobs in priority order, each loading the pair once. Every prompt record is
fsynced, so a time budget cut loses at most the batches in flight; rerunning resumes.

Across sessions the compact per-prompt records (``experiment_records.jsonl.gz``: tokens, steps,
accepted depths, phase seconds; no laws) are the resumable state: pass the committed file with
``--records`` and finished prompts are skipped; the output holds the union. From it come
``experiment_summary.json`` (tokens per step with bootstrap intervals over prompts, per cell) and,
with ``--node-shards``, ``nodes.npz`` (per verified node: exact acceptance of every method and the
optimum, TV, q(a), p(a)).

Usage (H200; see benchmarks/device/README.md for staging):
  python3 benchmarks/device/experiment.py --target /root/stage/smol.gguf --draft smollm2-draft \
      --prompts .device/prompts_eval.jsonl --records results/h200/experiment_records.jsonl.gz \
      --workers 4 --shard-size 25 --time-budget-s 500 --out /root/exp
"""

from __future__ import annotations

import argparse
import gzip
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


def plan(temperatures, seeds_deep: int, shards: int, node_shards: int, done=frozenset(), shard_size: int = 1,
         num_prompts: int | None = None) -> list[dict]:
    """Jobs in priority order: node-table collection, binary trees (3 methods) at seed 0, ternary
    RRS/RRS w/o, extra seeds of 2^5. A shard whose prompts are all in ``done`` (keys of
    :func:`cell_key`) is left out."""
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
    cells = jobs[len(temperatures) * node_shards:]
    todo = [dict(job, shard=s) for job in cells for s in range(shards)
            if any(cell_key(job, i) not in done for i in range(s * shard_size, min((s + 1) * shard_size, num_prompts or 10**9)))]
    return jobs[: len(temperatures) * node_shards] + todo


def cell_key(job: dict, prompt_index: int) -> tuple:
    """Identity of one decoded prompt across runs: (T, seed, tree, method, global prompt index)."""
    return (float(job["T"]), int(job["seed"]), job["tree"], job["method"], int(prompt_index))


def job_dir(out: Path, job: dict) -> Path:
    return out / "runs" / f"T{job['T']}" / job["tree"].replace("^", "p") / job["method"] / f"seed{job['seed']}" / f"shard{job['shard']}"


def worker(rank: int, args, jobs, deadline: float):
    """Load the pair once, then take every `workers`-th job while time remains."""
    import torch

    from empirical.models import load_pair
    from empirical.run import DecodeConfig, run_decode

    torch.set_num_threads(1)
    pair = load_pair(args.target, args.draft, device=args.device, dtype=args.dtype)
    longest = 0.0  # a job is not started when the longest so far would overrun the deadline
    for i in range(rank, len(jobs), args.workers):
        if time.time() + longest > deadline:
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
                batch_size=args.shard_size,
            )
            run_decode(config, job_dir(Path(args.out), job), pair=pair, progress=False)
        longest = max(longest, time.time() - t0)
        print(f"[{time.strftime('%H:%M:%S')}] worker {rank} job {i} {job} {time.time() - t0:.1f}s", flush=True)


def collect_nodes(pair, job, prompts_file, args, out_dir: Path):
    """Decode the shard with SpecHub on NODE_TREE, keep the real (p, q) of every verified node, then
    compute every method's exact rate and the optimum in batches (far cheaper than per step)."""
    import numpy as np

    from empirical.decode_types import Sampling
    from empirical.decoder import decode
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


def compact(record: dict, job: dict, shard_size: int) -> dict:
    """The part of a prompt record the summary needs (no laws, no text), tagged with its cell;
    phase seconds summed over the steps."""
    from empirical.summary import PHASES

    steps = record["steps"]
    return {
        "T": float(job["T"]), "seed": int(job["seed"]), "tree": record["tree"], "method": record["method"],
        "prompt_index": job["shard"] * shard_size + record["prompt_index"], "prompt_id": record["prompt_id"],
        "prompt_tokens": record["prompt_tokens"], "tokens": record["tokens"], "finish": record["finish"],
        "prefill_s": record["prefill_s"],
        "steps": {"emitted": steps["emitted"], "accepted": steps["accepted"],
                  **{f"{ph}_s": [float(sum(steps[f"{ph}_s"]))] for ph in PHASES}},
    }


def read_records(path) -> list:
    """Compact records of earlier runs (``.jsonl.gz``); [] when ``path`` is None or missing."""
    if not path or not Path(path).is_file():
        return []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def merge(out: Path, jobs: list[dict], shard_size: int, earlier: list) -> dict:
    """Union of the earlier compact records and this run's, written to
    ``experiment_records.jsonl.gz``; node tables of this run to ``nodes.npz``; returns the
    per-(T, seed) summaries."""
    import numpy as np

    from empirical.summary import summarize

    records = {cell_key(r, r["prompt_index"]): r for r in earlier}
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
                rec = compact(json.loads(line), job, shard_size)
            except json.JSONDecodeError:
                continue
            records[cell_key(rec, rec["prompt_index"])] = rec
    if nodes:
        np.savez_compressed(out / "nodes.npz", **{k: np.concatenate(v) for k, v in nodes.items()})
    ordered = [records[k] for k in sorted(records)]
    with gzip.open(out / "experiment_records.jsonl.gz", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r, separators=(",", ":")) + "\n" for r in ordered)
    by_key: dict = {}
    for rec in ordered:
        by_key.setdefault((rec["T"], rec["seed"]), []).append(
            {**rec, "nodes": {"k": [], "tv": [], "hub_q": [], "hub_p": [], "slot": [], "acceptance": {}}})
    return {f"T={T},seed={seed}": summarize(recs) for (T, seed), recs in sorted(by_key.items())}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="smollm2")
    ap.add_argument("--draft", default="smollm2-draft")
    ap.add_argument("--prompts", required=True, help="JSONL prompts (MT-Bench {'turns': [...]} or {'prompt': ...})")
    ap.add_argument("--num-prompts", type=int, default=100)
    ap.add_argument("--shard-size", type=int, default=25, help="prompts per job, decoded together (default 25)")
    ap.add_argument("--records", default=None, help="compact records of earlier runs (.jsonl.gz): their prompts are skipped")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--temperatures", default="0.6,1.0")
    ap.add_argument("--seeds-deep", type=int, default=3, help="seeds for the 2^5 tree (default 3)")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--time-budget-s", type=float, default=480)
    ap.add_argument("--node-shards", type=int, default=0,
                    help="prompt shards decoded for the node table, per temperature (the committed table used 2 of 10 prompts)")
    ap.add_argument("--merge-only", action="store_true")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    start = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    args.shard_dir = str(out / "prompt_shards")
    shards = write_shards(args.prompts, args.num_prompts, args.shard_size, Path(args.shard_dir))
    earlier = read_records(args.records)
    done = {cell_key(r, r["prompt_index"]) for r in earlier}
    jobs = plan([float(t) for t in args.temperatures.split(",")], args.seeds_deep, shards, min(shards, args.node_shards),
                done, args.shard_size, args.num_prompts)
    print(f"{len(earlier)} earlier prompt records; {len(jobs)} jobs to run", flush=True)
    if jobs and not args.merge_only:
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
    summaries = merge(out, jobs, args.shard_size, earlier)
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
