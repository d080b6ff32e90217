"""A validation sweep from a TOML file, on one process or on many GPUs and nodes with torchrun.

Convention: p = target, q = draft; tokens per step = accepted drafts + 1. ``spechub sweep``
reads the file with :func:`empirical.sweep.load_config` and runs :func:`empirical.sweep.run_sweep`:
one process without torchrun, one per GPU under ``torchrun --nproc-per-node N`` (RANK,
WORLD_SIZE and LOCAL_RANK from torchrun). Rank 0 prints the summary table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from empirical.sweep import load_config, plan_jobs, rank_share, run_sweep
from empirical.sweep.plan import cells_of
from empirical.sweep.ranks import Ranks
from empirical.sweep.records import finished_jobs

__all__ = ["EPILOG", "add_arguments", "run", "output_folder", "summary_table"]

EPILOG = """\
Examples:
  spechub sweep docs/sweep-example.toml --dry-run                 the plan and its size
  spechub sweep docs/sweep-example.toml --out runs/sweep          one process (one GPU or the CPU)
  torchrun --nproc-per-node 8 -m spechub_cli sweep docs/sweep-example.toml --out runs/sweep
                                                                  one process per GPU of this node
  torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29400 --rdzv-id sweep1 \\
      -m spechub_cli sweep sweep.toml --out /shared/runs/sweep   two nodes (OUT on a shared filesystem)

Rerunning the same command resumes: finished (cell, shard) jobs are skipped, whatever the number
of ranks; a killed rank loses at most its job in flight. Output: OUT/records/rank-<r>.jsonl (each
rank's shard log), OUT/records.jsonl.gz (merged compact records, one line per decoded prompt),
OUT/summary.json (tokens per step with 95% bootstrap intervals per cell, run metadata: config, git
SHA, packages, devices, world size). See docs/sweep.md.
"""


def add_arguments(parser) -> None:
    """Register the ``spechub sweep`` options.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    """
    parser.add_argument("config", help="the sweep's TOML file (see docs/sweep-example.toml)")
    parser.add_argument("--out", default=None,
                        help="output folder shared by all ranks (default: the file's `out`, else runs/sweep-<file name>)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and its size, decode nothing")
    parser.add_argument("--world-size", type=int, default=None,
                        help="with --dry-run: show the shares of this many ranks (default: WORLD_SIZE, else 1)")
    parser.add_argument("--time-budget-s", type=float, default=None,
                        help="start no job that would end later than this many seconds after the start; "
                        "what is finished is merged, a rerun does the rest (default: no limit)")
    parser.add_argument("--records", default=None,
                        help="compact records of an earlier run of the same settings (records.jsonl.gz): "
                        "the jobs they cover are skipped and merged")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def output_folder(config, out=None) -> Path:
    """The sweep's output folder: the command line's, the file's, or ``runs/sweep-<file stem>``.

    The file's ``out`` is relative to the file's folder.

    Parameters
    ----------
    config : empirical.sweep.SweepConfig
    out : str, optional

    Returns
    -------
    Path
    """
    if out:
        return Path(out)
    if config.out:
        path = Path(config.out).expanduser()
        return path if path.is_absolute() else Path(config.source).parent / path
    return Path("runs") / f"sweep-{Path(config.source).stem}"


def run(args) -> int:
    """Run ``spechub sweep`` (the plan only with ``--dry-run``); rank 0 prints the table.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed options.

    Returns
    -------
    int
        0.

    Raises
    ------
    ValueError
        A bad file or option (printed as one line by :func:`spechub_cli.main`, exit status 2).
    """
    config = load_config(args.config)
    out = output_folder(config, args.out)
    if args.dry_run:
        return _dry_run(config, out, args.world_size)
    if args.world_size is not None:
        raise ValueError("`--world-size` only previews shares with --dry-run; the ranks come from torchrun.")
    if args.time_budget_s is not None and args.time_budget_s <= 0:
        raise ValueError(f"`--time-budget-s` must be > 0; got {args.time_budget_s}.")
    result = run_sweep(config, out, argv=["spechub", *sys.argv[1:]], progress=not args.quiet,
                       time_budget_s=args.time_budget_s, earlier=args.records)
    if result.summary is None:  # ranks other than 0 report nothing
        return 0
    print(summary_table(result.summary))
    plan = result.summary["plan"]
    if plan["missing"]:
        print(f"spechub sweep: {len(plan['missing'])} of {plan['jobs']} jobs not finished (time budget); "
              "rerun the same command to finish them", file=sys.stderr)
    print(json.dumps({"out": str(out), "jobs": plan["jobs"], "done_before": plan["done_before"],
                      "imported": plan["imported"], "run_now": plan["run_now"], "missing": len(plan["missing"]),
                      "world_size": result.world_size}))
    return 0


def summary_table(summary: dict) -> str:
    """The summary as a table, one line per cell.

    Columns: T, seed, tree, method, prompts, tokens per step [95% interval], mean accepted depth,
    decode tokens per second.

    Parameters
    ----------
    summary : dict
        The content of ``summary.json``.

    Returns
    -------
    str
    """
    lines = [f"{'T':>5} {'seed':>4} {'tree':>10} {'method':>9} {'prompts':>7}  {'tokens/step [95% CI]':<22} "
             f"{'accepted':>8} {'tok/s':>8}"]
    for key, cell in summary["summaries"].items():
        T, seed = (part.split("=")[1] for part in key.split(","))
        for r in cell["runs"]:
            tps, speed = r["tokens_per_step"], r["timing"]["decode_tokens_per_second"]
            accepted = "-" if r["mean_accepted"] is None else f"{r['mean_accepted']:.3f}"
            lines.append(f"{float(T):>5g} {seed:>4} {r['tree']:>10} {r['method']:>9} {r['prompts']:>7}  "
                         f"{tps['value']:.3f} [{tps['low']:.3f}, {tps['high']:.3f}]{'':<2} {accepted:>8} "
                         f"{'-' if speed is None else f'{speed:.1f}':>8}")
    return "\n".join(lines)


def _dry_run(config, out: Path, world_size) -> int:
    """Print the cells, the job count, the jobs already done in ``out`` and each rank's share."""
    from empirical.prompts import load_prompts

    ranks = Ranks.from_env()
    if not ranks.is_main:
        return 0
    world = int(world_size if world_size is not None else ranks.world_size)
    if world < 1:
        raise ValueError(f"`--world-size` must be >= 1; got {world}.")
    prompts = len(load_prompts(config.prompts, num_prompts=config.num_prompts))
    jobs = plan_jobs(config, prompts)
    cells = cells_of(config)
    done = set(finished_jobs(out)) & {j.key for j in jobs} if out.is_dir() else set()
    todo = [j for j in jobs if j.key not in done]
    for i, cell in enumerate(cells, start=1):
        print(f"cell {i:>3}: {cell.label}")
    shards = len(jobs) // max(len(cells), 1)
    print(f"plan: {len(cells)} cells x {shards} shards of <= {config.shard_size} prompts ({prompts} prompts, "
          f"batches of {config.batch_size}, <= {config.max_new_tokens} new tokens) = {len(jobs)} jobs, "
          f"{len(cells) * prompts} prompt decodes")
    print(f"out: {out} ({len(done)} jobs done, {len(todo)} to run)")
    shares = [rank_share(todo, r, world) for r in range(world)]
    print(f"ranks: {world}; jobs per rank: " + ", ".join(f"{r}: {len(s)}" for r, s in enumerate(shares)))
    print(json.dumps({"cells": len(cells), "shards": shards, "jobs": len(jobs), "done": len(done), "to_run": len(todo),
                      "world_size": world, "out": str(out)}))
    return 0
