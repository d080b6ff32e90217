"""The validation experiment (issues 8, 14): SpecHub vs RRS vs RRS without replacement on a real pair.

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

Jobs of a cell decode with ``empirical.fast_decoder.decode_batch_or_reference`` (``--runtime fast``, the
default: the fast path where it applies, i.e. single, rrs, rrs_wor, spechub, block, traversal and ar on trees with one
child count per level, else the eager ``empirical.decoder.decode_batch``; ``--runtime eager``: always
the eager reference; no per-step host copy of the laws) and write compact records (``compact.jsonl``, atomically) in their folder; the
node jobs (``--node-shards``) are the cells of ``--node-tree`` x ``--node-method`` at seed 0 walked
with ``experiment_nodes.NodeCapture`` (rates of every method and both optima at every verified node,
computed on the device). Workers take jobs from one shared queue in priority order
(``--first-trees`` go first at every temperature), each preferring the remaining shards of its last
cell, whose workspace (static caches, CUDA graphs) it already holds. Trees and methods are parameters
(``--binary-trees``/``--binary-methods``, ``--ternary-trees``/``--ternary-methods``,
``--chain-trees``/``--chain-methods`` for chain-1..chain-5, off by default, ``--seed-methods``):
any name ``spechub decode`` knows (``block`` on chains only). With
``--timing-prompts`` the main process loads the pair too and, after the workers, times every method,
``ar`` and HF ``generate()`` side by side on the quiet device (``timing.json``).

Usage (H200; see benchmarks/device/README.md for staging):
  python3 benchmarks/device/experiment.py --target /root/stage/smol.gguf --draft smollm2-draft \
      --prompts .device/prompts_eval.jsonl --records results/h200/experiment_records.jsonl.gz \
      --workers 4 --shard-size 25 --time-budget-s 500 --out /root/exp
  (natural pair: benchmarks/device/run_experiment_qwen.sh)
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
#: chains of 1-5 drafts (``spechub tree``'s spelling), for single-draft and sequence-level verifiers
CHAINS = tuple(f"chain-{depth}" for depth in range(1, 6))
#: default methods of the binary trees (and of the extra seeds of 2^5), the ternary trees and the
#: chains (none: chains are planned only when ``chain_methods`` names some)
BINARY_METHODS, TERNARY_METHODS, CHAIN_METHODS = ("spechub", "rrs", "rrs_wor"), ("rrs", "rrs_wor"), ()
#: exact rates computed for the collected real (p, q) of the node table
NODE_METHODS = ("single", "rrs", "rrs_wor", "kseq", "spechub", "optimal_iid", "optimal_wor")
#: node table: real (p, q) at the verified nodes of SpecHub decoding on this tree, per temperature
NODE_TREE, NODE_METHOD = "2^4", "spechub"


def plan(temperatures, seeds_deep: int, shards: int, node_shards: int, done=frozenset(), shard_size: int = 1,
         num_prompts: int | None = None, *, binary_methods=BINARY_METHODS, ternary_methods=TERNARY_METHODS,
         seed_methods=None, first_trees=(), node_tree: str = NODE_TREE, node_method: str = NODE_METHOD,
         nodes_done=frozenset(), binary_trees=BINARY, ternary_trees=TERNARY, chain_trees=CHAINS,
         chain_methods=CHAIN_METHODS, late_methods=()) -> list[dict]:
    """Jobs in priority order: node-table jobs; at seed 0 the ``first_trees`` (of any family, in the
    order given) at every temperature, then the other binary trees, the chains, the ternary trees;
    then the extra seeds of 2^5 (``seed_methods``, default ``binary_methods``). Each tree gets its
    family's methods (``binary_methods``, ``chain_methods``, ``ternary_methods``; a family without
    methods is not planned). Cells of ``late_methods`` (e.g. a slow verifier) keep this order among
    themselves but come after all the others. A shard whose prompts are all in ``done`` (keys of :func:`cell_key`) is
    left out; so is a node job whose (T, shard) is in ``nodes_done``. A node job is the cell
    (T, ``node_tree``, ``node_method``, seed 0) of its shard with ``nodes=True``: that cell's shard is
    not planned twice."""
    families = [(binary_trees, binary_methods), (chain_trees, chain_methods), (ternary_trees, ternary_methods)]
    methods_of = {tree: tuple(methods) for trees, methods in reversed(families) for tree in trees if methods}
    first = [t for t in dict.fromkeys(first_trees) if t in methods_of]
    nodes = [dict(T=T, tree=node_tree, method=node_method, seed=0, shard=s, nodes=True)
             for T in temperatures for s in range(node_shards) if (float(T), s) not in nodes_done]
    cells = []
    for trees in [first] + [[t for t in trees if t not in first] for trees, _ in families]:
        for T in temperatures:
            for tree in (t for t in trees if t in methods_of):
                cells += [dict(T=T, tree=tree, method=m, seed=0) for m in methods_of[tree]]
    for seed in range(1, seeds_deep):
        for T in temperatures:
            cells += [dict(T=T, tree="2^5", method=m, seed=seed) for m in (binary_methods if seed_methods is None else seed_methods)]
    cells = [c for c in cells if c["method"] not in late_methods] + [c for c in cells if c["method"] in late_methods]
    covered = {(j["T"], j["tree"], j["method"], j["seed"], j["shard"]) for j in nodes}
    todo = [dict(job, shard=s) for job in cells for s in range(shards)
            if (job["T"], job["tree"], job["method"], job["seed"], s) not in covered
            and any(cell_key(job, i) not in done for i in range(s * shard_size, min((s + 1) * shard_size, num_prompts or 10**9)))]
    return nodes + todo


def cell_key(job: dict, prompt_index: int) -> tuple:
    """Identity of one decoded prompt across runs: (T, seed, tree, method, global prompt index)."""
    return (float(job["T"]), int(job["seed"]), job["tree"], job["method"], int(prompt_index))


def job_dir(out: Path, job: dict) -> Path:
    method = "nodes" if job.get("nodes") else job["method"]
    return out / "runs" / f"T{job['T']}" / job["tree"].replace("^", "p") / method / f"seed{job['seed']}" / f"shard{job['shard']}"


def workspace_key(job: dict) -> tuple:
    """What decides a job's fast-runtime workspace (its static caches and CUDA graphs): temperature,
    tree, method and whether it is a node job; jobs with one key reuse one worker's captured graphs."""
    return float(job["T"]), job["tree"], job["method"], bool(job.get("nodes"))


def next_job(claimed, jobs: list, last) -> int | None:
    """Claim the job a worker takes next: the first unclaimed job with workspace key ``last`` (the
    worker's previous job's, so its graphs are replayed instead of captured again), else the first
    unclaimed one (priority order). O(len(jobs)) under the lock of ``claimed``.

    Parameters
    ----------
    claimed : multiprocessing.Array of bytes, or a list of int
        One flag per job, shared by the workers; set here for the job returned.
    jobs : list of dict
        The plan, in priority order.
    last : tuple or None
        :func:`workspace_key` of the worker's previous job (None for its first).

    Returns
    -------
    int or None
        The claimed job's index; None when every job is claimed.
    """
    from contextlib import nullcontext

    with claimed.get_lock() if hasattr(claimed, "get_lock") else nullcontext():
        free = [i for i in range(len(jobs)) if not claimed[i]]
        if not free:
            return None
        i = next((j for j in free if workspace_key(jobs[j]) == last), free[0])
        claimed[i] = 1
        return i


def worker(rank: int, args, jobs, deadline: float, queue=None):
    """Load the pair once, then take jobs while time remains: from the shared claim flags ``queue``
    (a ``multiprocessing.Array``, :func:`next_job`: shards of the worker's last cell first, then
    priority order), or every ``workers``-th job without one."""
    import torch

    from empirical.models import load_pair

    torch.set_num_threads(1)
    try:
        _work(rank, args, jobs, deadline, queue, load_pair(args.target, args.draft, device=args.device, dtype=args.dtype))
    finally:
        from empirical.optimal_torch import shutdown_plan_pool

        shutdown_plan_pool()  # its spawned processes would outlive this one and hold its stdout


def _work(rank: int, args, jobs, deadline: float, queue, pair) -> None:
    """:func:`worker`'s loop over the jobs, with the pair loaded."""
    types = prompt_types(args.prompts, args.num_prompts)
    longest = 0.0  # a job is not started when the longest so far would overrun the deadline
    mine = iter(range(rank, len(jobs), args.workers))
    last = None
    while True:
        if time.time() + longest > deadline:
            break
        i = next(mine, None) if queue is None else next_job(queue, jobs, last)
        if i is None or i >= len(jobs):
            break
        job = jobs[i]
        last = workspace_key(job)
        t0 = time.time()
        try:
            run_job(pair, job, args, types)
        except Exception:  # one failed job must not take the worker (and its later jobs) down
            import traceback

            print(f"[{time.strftime('%H:%M:%S')}] worker {rank} job {i} {job} FAILED:\n{traceback.format_exc()}", flush=True)
            continue
        longest = max(longest, time.time() - t0)
        print(f"[{time.strftime('%H:%M:%S')}] worker {rank} job {i} {job} {time.time() - t0:.1f}s{_peak_memory()}", flush=True)


def _peak_memory() -> str:
    """`` peak X GiB``: this process's most allocated GPU memory since the last call (a job's footprint,
    workspaces and CUDA-graph pools included), then reset; empty off CUDA. Six fast-runtime workers of
    ~20 GiB each ran an H200 out of memory on 2026-12-02 (BENCHMARKS.md §10.1), so the log shows it."""
    import torch

    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return ""
    peak = torch.cuda.max_memory_allocated() / 2**30
    torch.cuda.reset_peak_memory_stats()
    return f" peak {peak:.1f} GiB"


def run_job(pair, job: dict, args, types: dict) -> None:
    """Decode one shard of one cell (and, for a node job, keep its node table); writes
    ``compact.jsonl`` (and ``nodes.npz``) in the job's folder, each atomically; a folder that holds
    them already is skipped."""
    import numpy as np

    from empirical.decode_types import AR, Sampling
    from empirical.fast_decoder import decode_batch_or_reference
    from empirical.prompts import encode_prompt, load_prompts

    folder = job_dir(Path(args.out), job)
    if (folder / "compact.jsonl").exists() and (not job.get("nodes") or (folder / "nodes.npz").exists()):
        return
    prompts = load_prompts(str(Path(args.shard_dir) / f"shard{job['shard']}.jsonl"), num_prompts=args.shard_size)
    ids = [encode_prompt(pair.tokenizer, p) for p in prompts]
    seed = 1000 * job["seed"] + job["shard"]  # the seeds run_decode gave the shard's prompts before

    def seeded():  # the shard's Generators, as run_decode seeded them
        return [np.random.default_rng([seed, i]) for i in range(len(prompts))]

    engine, make_rngs = "auto", seeded
    if job.get("nodes"):
        _device_path()
        from experiment_nodes import NodeCapture, register, save_nodes

        rngs = seeded()
        capture = NodeCapture({id(g): i for i, g in enumerate(rngs)}, methods=args.node_methods)
        engine = register(capture)

        def make_rngs():  # the capture knows these Generators by id
            return rngs

    def fell_back(exc):
        if job.get("nodes"):  # the capture holds the first attempt's Generators: no redo
            raise exc
        print(f"[{time.strftime('%H:%M:%S')}] job {job}: the fast runtime failed ({type(exc).__name__}: "
              f"{' '.join(str(exc).split())[:200]}); decoding it on the eager path", flush=True)

    results = decode_batch_or_reference(pair, ids, tree=None if job["method"] == AR else job["tree"], method=job["method"],
                                        rngs=make_rngs, sampling=Sampling(job["T"], 1.0),
                                        max_new_tokens=args.max_new_tokens, engine=engine,
                                        runtime=getattr(args, "runtime", "fast"), on_fallback=fell_back)
    _log_capture_failures(job)
    offset = job["shard"] * args.shard_size
    if job.get("nodes"):
        save_nodes(capture, folder / "nodes.npz", offset=offset, types=types)
    lines = [json.dumps(compact_decoded(r, job, offset + i, p.id, len(x), types.get(offset + i)), separators=(",", ":"))
             for i, (r, p, x) in enumerate(zip(results, prompts, ids))]
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / "compact.jsonl.tmp"
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, folder / "compact.jsonl")


_REPORTED: set = set()


def _log_capture_failures(job: dict) -> None:
    """Log, once per worker and reason, the fast-runtime pieces that could not be captured as CUDA
    graphs (they ran eagerly: a job's verify or forward times then measure eager code)."""
    from empirical.fast_workspace import capture_failures

    for note in capture_failures():
        if note not in _REPORTED:
            _REPORTED.add(note)
            print(f"[{time.strftime('%H:%M:%S')}] job {job}: a piece runs eagerly (not captured): {note}", flush=True)


def _device_path() -> None:
    """Make the driver's sibling modules (experiment_nodes, experiment_timing) importable."""
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)


def prompt_types(prompts_file: str, num_prompts: int | None = None) -> dict:
    """Global prompt index -> the row's ``type`` ("code", "chat"; rows without one are left out)."""
    rows = [json.loads(l) for l in Path(prompts_file).read_text(encoding="utf-8").splitlines() if l.strip()][:num_prompts]
    return {i: row["type"] for i, row in enumerate(rows) if isinstance(row, dict) and "type" in row}


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


def compact_decoded(result, job: dict, prompt_index: int, prompt_id: str, prompt_tokens: int, kind=None) -> dict:
    """:func:`compact` of a :class:`empirical.decoder.Decoded` (global ``prompt_index``), with the
    prompt's type ("code"/"chat") when known: :func:`empirical.sweep.records.compact_record` of the
    job's cell (one schema for the driver and ``spechub sweep``)."""
    from empirical.run import AR_TREE
    from empirical.sweep.plan import Cell
    from empirical.sweep.records import compact_record

    cell = Cell(float(job["T"]), AR_TREE if job["method"] == "ar" else job["tree"], job["method"], int(job["seed"]))
    return compact_record(result, cell, prompt_index, prompt_id, prompt_tokens, kind)


def read_records(path) -> list:
    """Compact records of earlier runs (``.jsonl.gz``); [] when ``path`` is None or missing."""
    if not path or not Path(path).is_file():
        return []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_nodes(path) -> dict:
    """Columns of an earlier node table (``.npz``); {} when ``path`` is None or missing."""
    import numpy as np

    if not path or not Path(path).is_file():
        return {}
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def merge(out: Path, jobs: list[dict], shard_size: int, earlier: list, earlier_nodes: dict | None = None) -> dict:
    """Union of the earlier compact records and this run's, written to
    ``experiment_records.jsonl.gz``; node tables of this run plus the earlier rows of other
    (T, shard)s to ``nodes.npz``; returns the per-(T, seed) summaries."""
    import numpy as np

    from empirical.summary import summarize

    records = {cell_key(r, r["prompt_index"]): r for r in earlier}
    nodes: dict = {}
    fresh = set()
    for job in jobs:
        folder = job_dir(out, job)
        if job.get("nodes") and (folder / "nodes.npz").exists():
            with np.load(folder / "nodes.npz") as z:
                for key in z.files:
                    nodes.setdefault(key, []).append(z[key])
                nodes.setdefault("temperature", []).append(np.full(len(z["tv"]), float(job["T"])))
            fresh.add((float(job["T"]), job["shard"]))
        if (folder / "compact.jsonl").exists():
            lines = [json.loads(line) for line in (folder / "compact.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
        elif (folder / "records.jsonl").exists():  # written by run_decode (earlier drivers, tests)
            lines = []
            for line in (folder / "records.jsonl").read_text(encoding="utf-8").splitlines():
                try:
                    lines.append(compact(json.loads(line), job, shard_size))
                except json.JSONDecodeError:
                    continue
        else:
            continue
        for rec in lines:
            records[cell_key(rec, rec["prompt_index"])] = rec
    if earlier_nodes and "prompt_index" in earlier_nodes:
        keep = np.array([(float(t), int(i) // shard_size) not in fresh
                         for t, i in zip(earlier_nodes["temperature"], earlier_nodes["prompt_index"])], dtype=bool)
        for key, value in earlier_nodes.items():
            nodes.setdefault(key, []).insert(0, value[keep])
    if nodes:
        tmp = out / "nodes.tmp.npz"
        np.savez_compressed(tmp, **{k: np.concatenate(v) for k, v in nodes.items()})
        os.replace(tmp, out / "nodes.npz")
    ordered = [records[k] for k in sorted(records)]
    with gzip.open(out / "experiment_records.jsonl.gz.tmp", "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r, separators=(",", ":")) + "\n" for r in ordered)
    os.replace(out / "experiment_records.jsonl.gz.tmp", out / "experiment_records.jsonl.gz")
    by_key: dict = {}
    for rec in ordered:
        by_key.setdefault((rec["T"], rec["seed"]), []).append(
            {**rec, "nodes": {"k": [], "tv": [], "hub_q": [], "hub_p": [], "slot": [], "acceptance": {}}})
    return {f"T={T},seed={seed}": summarize(recs) for (T, seed), recs in sorted(by_key.items())}


def check_methods(args) -> None:
    """Every method of the sweep must be one ``spechub decode`` knows and accept its trees' k (block:
    chains only), and every ``--first-trees`` entry a tree name (clear ValueError before any worker
    starts; a first tree that no family plans is left out of the plan)."""
    from empirical.run import DecodeConfig

    families = ((args.binary_trees, args.binary_methods), (args.chain_trees, args.chain_methods),
                (args.ternary_trees, args.ternary_methods), (("2^5",), args.seed_methods or ()))
    for trees, methods in families:
        for method in methods:
            if trees:
                DecodeConfig(trees=trees, methods=(method,)).validated()
    for tree in args.first_trees:
        _tree_children(tree)  # ValueError naming the tree and the accepted spellings
    if args.node_shards:
        _device_path()
        from experiment_nodes import DEVICE_NODE_METHODS

        DecodeConfig(trees=(args.node_tree,), methods=(args.node_method,)).validated()
        bad = [m for m in args.node_methods if m not in DEVICE_NODE_METHODS]
        if bad or set(map(len, _tree_children(args.node_tree))) - {0, 2}:
            raise ValueError(f"node table: `--node-tree` must be binary and `--node-methods` among {DEVICE_NODE_METHODS}; "
                             f"got {args.node_tree!r}, {bad}.")


def _tree_children(name: str):
    from spechub_theory.trees.shapes import Tree

    return Tree.from_name(name).children


class TimingJob:
    """The timing job of the main process: :meth:`start` loads the pair in a thread (while the
    workers decode), :meth:`run` waits for it and writes ``timing.json`` on the then quiet device.
    Errors are recorded in the file, never raised: the sweep's results matter more."""

    def __init__(self, args, out: Path):
        import threading

        self.args, self.path, self.pair, self.error = args, out / "timing.json", None, None
        self.thread = threading.Thread(target=self._load, daemon=True)

    def start(self) -> "TimingJob":
        self.thread.start()
        return self

    def _load(self) -> None:
        from empirical.models import load_pair

        try:
            self.pair = load_pair(self.args.target, self.args.draft, device=self.args.device, dtype=self.args.dtype)
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    def run(self) -> None:
        import torch

        _device_path()
        from experiment_timing import measure

        from empirical.prompts import encode_prompt, load_prompts

        args = self.args
        self.thread.join()
        try:
            if self.error:
                raise RuntimeError(self.error)
            pair = self.pair
            n = max(args.shard_size, args.timing_prompts)
            ids = [encode_prompt(pair.tokenizer, p) for p in load_prompts(args.prompts, num_prompts=n)]
            engines = [("none", "ar")] + timing_cells(args)
            result = measure(pair, ids, engines, temperature=args.timing_temperature, max_new_tokens=args.timing_tokens,
                             batch_sizes=(1, args.shard_size), batch1_prompts=args.timing_prompts)
            result["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
        except Exception as exc:
            result = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"timing failed: {result['error']}", flush=True)
        result["date"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        self.path.write_text(json.dumps(result, indent=1), encoding="utf-8")
        self.pair = None


def timing_cells(args) -> list:
    """(tree, method) of each method the timing job times, once per method: a binary method on
    ``--timing-tree``, a chain-only one on ``--timing-chain-tree``, a ternary-only one on 3^3."""
    cells = {}
    for tree, methods in ((args.timing_tree, args.binary_methods), (args.timing_chain_tree, args.chain_methods),
                          ("3^3", args.ternary_methods)):
        for m in methods:
            cells.setdefault(m, (tree, m))
    return list(cells.values())


def _names(text: str) -> tuple:
    return tuple(m.strip() for m in text.split(",") if m.strip())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="smollm2")
    ap.add_argument("--draft", default="smollm2-draft")
    ap.add_argument("--prompts", required=True, help="JSONL prompts (MT-Bench {'turns': [...]} or {'prompt': ...}; optional 'type')")
    ap.add_argument("--num-prompts", type=int, default=100)
    ap.add_argument("--shard-size", type=int, default=25, help="prompts per job, decoded together (default 25)")
    ap.add_argument("--records", default=None, help="compact records of earlier runs (.jsonl.gz): their prompts are skipped")
    ap.add_argument("--nodes", default=None, help="node table of earlier runs (.npz): its (T, shard)s are not collected again")
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--temperatures", default="0.6,1.0")
    ap.add_argument("--seeds-deep", type=int, default=3, help="seeds for the 2^5 tree (default 3)")
    ap.add_argument("--binary-methods", type=_names, default=BINARY_METHODS, help="methods on 2^2-2^5 (default spechub,rrs,rrs_wor)")
    ap.add_argument("--ternary-methods", type=_names, default=TERNARY_METHODS, help="methods on 3^2-3^4 (default rrs,rrs_wor)")
    ap.add_argument("--chain-methods", type=_names, default=CHAIN_METHODS,
                    help="methods on the chains (default none: no chain cells; e.g. single,block,traversal)")
    ap.add_argument("--seed-methods", type=_names, default=None, help="methods of the extra seeds of 2^5 (default: the binary ones)")
    ap.add_argument("--late-methods", type=_names, default=(),
                    help="methods whose cells run after all the others (e.g. optimal, when it is the slowest)")
    ap.add_argument("--binary-trees", type=_names, default=BINARY, help="binary trees (default 2^2,2^3,2^4,2^5)")
    ap.add_argument("--ternary-trees", type=_names, default=TERNARY, help="ternary trees (default 3^2,3^3,3^4)")
    ap.add_argument("--chain-trees", type=_names, default=CHAINS, help="chains (default chain-1,...,chain-5)")
    ap.add_argument("--first-trees", type=_names, default=(),
                    help="trees run first at every temperature, in this order (e.g. 2^3,2^5,chain-3)")
    ap.add_argument("--workers", type=int, default=4, help="worker processes sharing the device (0 = this process)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--runtime", choices=("fast", "eager"), default="fast",
                    help="fast: static caches and CUDA graphs where the method has a device rule (else eager); "
                         "eager: the reference decoder for every cell")
    ap.add_argument("--time-budget-s", type=float, default=480)
    ap.add_argument("--node-shards", type=int, default=0,
                    help="prompt shards per temperature whose node table is collected (node jobs run first)")
    ap.add_argument("--node-tree", default=NODE_TREE)
    ap.add_argument("--node-method", default=NODE_METHOD)
    ap.add_argument("--node-methods", type=_names, default=NODE_METHODS)
    ap.add_argument("--timing-prompts", type=int, default=0,
                    help="prompts timed at batch 1 (0 = no timing job); batch --shard-size is timed too")
    ap.add_argument("--timing-tokens", type=int, default=64)
    ap.add_argument("--timing-tree", default="2^4")
    ap.add_argument("--timing-chain-tree", default="chain-3", help="tree on which chain-only methods are timed")
    ap.add_argument("--timing-temperature", type=float, default=0.6)
    ap.add_argument("--timing-reserve-s", type=float, default=90, help="seconds kept for the timing job at the end")
    ap.add_argument("--merge-only", action="store_true")
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    start = time.time()
    if args.workers < 0:
        raise SystemExit(f"experiment: error: --workers must be >= 0 (0 = decode in this process); got {args.workers}")
    try:
        check_methods(args)
    except ValueError as exc:
        raise SystemExit(f"experiment: error: {exc}") from None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    args.shard_dir = str(out / "prompt_shards")
    shards = write_shards(args.prompts, args.num_prompts, args.shard_size, Path(args.shard_dir))
    earlier = read_records(args.records)
    earlier_nodes = read_nodes(args.nodes)
    done = {cell_key(r, r["prompt_index"]) for r in earlier}
    nodes_done = ({(float(t), int(i) // args.shard_size) for t, i in zip(earlier_nodes["temperature"], earlier_nodes["prompt_index"])}
                  if "prompt_index" in earlier_nodes else set())
    jobs = plan([float(t) for t in args.temperatures.split(",")], args.seeds_deep, shards, min(shards, args.node_shards),
                done, args.shard_size, args.num_prompts, binary_methods=args.binary_methods,
                ternary_methods=args.ternary_methods, seed_methods=args.seed_methods, first_trees=args.first_trees,
                node_tree=args.node_tree, node_method=args.node_method, nodes_done=nodes_done,
                binary_trees=args.binary_trees, ternary_trees=args.ternary_trees, chain_trees=args.chain_trees,
                chain_methods=args.chain_methods, late_methods=args.late_methods)
    timing = args.timing_prompts > 0 and not (out / "timing.json").exists() and not args.merge_only
    print(f"{len(earlier)} earlier prompt records; {len(jobs)} jobs to run; timing job: {timing}", flush=True)
    timer = TimingJob(args, out) if timing else None
    deadline = start + args.time_budget_s - (args.timing_reserve_s if timing else 0.0)
    if jobs and not args.merge_only and args.workers == 0:  # in this process (tests, debugging)
        worker(0, argparse.Namespace(**{**vars(args), "workers": 1}), jobs, deadline)
    elif jobs and not args.merge_only:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        queue = ctx.Array("b", len(jobs))  # claim flags: a worker keeps to its cell's shards (next_job)
        procs = [ctx.Process(target=worker, args=(r, args, jobs, deadline, queue)) for r in range(args.workers)]
        for p in procs:
            p.start()
        if timer is not None:
            timer.start()  # loads while the workers decode
        for p in procs:
            p.join(timeout=max(1.0, deadline + 30 - time.time()))
        for p in procs:
            if p.is_alive():
                p.terminate()
    if timer is not None:
        if not timer.thread.is_alive() and timer.thread.ident is None:
            timer.start()
        timer.run()
    summaries = merge(out, jobs, args.shard_size, earlier, earlier_nodes)
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
