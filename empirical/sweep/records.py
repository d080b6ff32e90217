"""Compact per-prompt records of a sweep: per-rank shard logs, and their merge into one file.

Convention: tokens per step = accepted drafts + 1. A compact record keeps what the summary needs
(tokens, emitted and accepted per step, phase seconds summed over the steps; no laws, no text),
tagged with its cell; its identity is (T, seed, tree, method, global prompt index). Each rank
appends one line per finished job to ``records/rank-<r>.jsonl`` (one write, fsynced: a killed
rank loses at most the job in flight; a torn last line is dropped when the log is next opened).
The merge keeps one copy of every planned job and writes ``records.jsonl.gz`` sorted by identity,
so runs on any number of ranks give files equal up to the timing fields.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

from ..records import RecordLog, write_atomic
from ..summary import PHASES, summarize

__all__ = ["RECORDS_FILE", "LOG_DIR", "compact_record", "identity", "without_timing", "ShardLog", "finished_jobs",
           "read_compact", "import_records", "Merged", "merge_records", "summarize_cells", "write_atomic"]

#: the merged compact records of a sweep (one JSON line per decoded prompt, gzip)
RECORDS_FILE = "records.jsonl.gz"
#: folder of the per-rank shard logs (``rank-<r>.jsonl``; ``imported.jsonl`` for earlier records)
LOG_DIR = "records"
#: fields of a compact record (and of its ``steps``) that are wall times, not decoding results
_TIMING = ("prefill_s",) + tuple(f"{ph}_s" for ph in PHASES)


def compact_record(result, cell, prompt_index: int, prompt_id: str, prompt_tokens: int, kind=None) -> dict:
    """The compact record of one decoded prompt.

    Parameters
    ----------
    result : empirical.decode_types.Decoded
    cell : empirical.sweep.plan.Cell
    prompt_index : int
        Global index of the prompt in the sweep's prompt list.
    prompt_id : str
    prompt_tokens : int
        Length of the encoded prompt.
    kind : str, optional
        The prompt row's ``type`` (e.g. "code", "chat"), kept when the prompts file has one.

    Returns
    -------
    dict
        ``T, seed, tree, method, prompt_index, prompt_id, prompt_tokens, tokens, finish,
        prefill_s, steps`` (``emitted``, ``accepted`` per step; ``<phase>_s`` as a one-element
        sum), and ``type`` when ``kind`` is given. The schema of the experiment driver's
        ``experiment_records.jsonl.gz``.
    """
    steps = result.steps
    rec = {
        "T": float(cell.temperature), "seed": int(cell.seed), "tree": cell.tree, "method": cell.method,
        "prompt_index": int(prompt_index), "prompt_id": str(prompt_id), "prompt_tokens": int(prompt_tokens),
        "tokens": [int(t) for t in result.tokens], "finish": result.finish, "prefill_s": float(result.prefill_s),
        "steps": {"emitted": [len(s.tokens) for s in steps], "accepted": [int(s.accepted) for s in steps]},
    }
    for ph in PHASES:
        rec["steps"][f"{ph}_s"] = [float(sum(s.seconds.get(ph, 0.0) for s in steps))]
    if kind is not None:
        rec["type"] = kind
    return rec


def identity(record: dict) -> tuple:
    """The record's place in any run of the sweep: (T, seed, tree, method, prompt index).

    Parameters
    ----------
    record : dict
        A compact record.

    Returns
    -------
    tuple
    """
    return (float(record["T"]), int(record["seed"]), record["tree"], record["method"], int(record["prompt_index"]))


def without_timing(record: dict) -> dict:
    """A copy of a compact record without its wall times (the part equal across runs).

    Parameters
    ----------
    record : dict
        A compact record.

    Returns
    -------
    dict
        ``record`` less ``prefill_s`` and the ``<phase>_s`` sums of its steps.
    """
    rec = {k: v for k, v in record.items() if k not in _TIMING}
    rec["steps"] = {k: v for k, v in record["steps"].items() if k not in _TIMING}
    return rec


class ShardLog:
    """The shard log of one rank: one fsynced JSON line per finished job.

    Parameters
    ----------
    out : str or Path
        The sweep's output folder (the log is ``out/records/rank-<rank>.jsonl``).
    rank : int
    """

    def __init__(self, out, rank: int):
        self.log = RecordLog(Path(out) / LOG_DIR / f"rank-{int(rank)}.jsonl")

    def append(self, job, records: list, **meta) -> None:
        """Write the records of a finished job as one fsynced line.

        Parameters
        ----------
        job : empirical.sweep.plan.Job
        records : list of dict
            Its compact records.
        **meta
            Kept in the line beside them (rank, world size, attempt, seconds).
        """
        self.log.append({"key": job.key, **meta, "records": records})


def finished_jobs(out) -> dict:
    """Job key -> compact records, from every shard log under ``out`` (first copy of a key wins).

    Parameters
    ----------
    out : str or Path
        The sweep's output folder.

    Returns
    -------
    dict
        Empty when there are no logs. Read only: a line that does not parse (the torn last line
        of a killed rank, or one being written now) is not trusted and its job counts as not done.
    """
    jobs: dict = {}
    for path in sorted((Path(out) / LOG_DIR).glob("*.jsonl")):
        for text in path.read_text(encoding="utf-8").split("\n"):
            try:
                line = json.loads(text)
            except json.JSONDecodeError:
                continue
            jobs.setdefault(line["key"], line["records"])
    return jobs


def read_compact(path) -> list:
    """Compact records from a file (``.jsonl.gz`` or ``.jsonl``, one record per line).

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    list of dict

    Raises
    ------
    ValueError
        A missing file or a line that is not JSON (a merged file is written whole or not at all).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"`records` file {str(path)!r} does not exist.")
    with (gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")) as f:
        lines = [line for line in f if line.strip()]
    try:
        return [json.loads(line) for line in lines]
    except json.JSONDecodeError as exc:
        raise ValueError(f"`records` file {str(path)!r} is not JSON lines: {exc}.") from None


def import_records(out, records, jobs) -> int:
    """Log the jobs that earlier compact records cover whole, so that the sweep skips them.

    Parameters
    ----------
    out : str or Path
        The sweep's output folder (writes ``records/imported.jsonl``).
    records : iterable of dict
        Compact records of earlier runs of the same settings (e.g. a committed
        ``records.jsonl.gz``); the caller vouches for the settings, which records do not carry.
    jobs : sequence of empirical.sweep.plan.Job
        The plan; a job is imported when every prompt of its shard has a record of its cell and
        no log holds it yet.

    Returns
    -------
    int
        Jobs imported now. O(records + jobs).
    """
    by_identity = {identity(r): r for r in records}
    logged = finished_jobs(out)
    log = RecordLog(Path(out) / LOG_DIR / "imported.jsonl")
    count = 0
    for job in jobs:
        c = job.cell
        found = [by_identity.get((c.temperature, c.seed, c.tree, c.method, i)) for i in range(job.start, job.stop)]
        if job.key not in logged and all(r is not None for r in found):
            log.append({"key": job.key, "imported": True, "records": found})
            count += 1
    return count


@dataclass(frozen=True)
class Merged:
    """The merged records of a sweep's planned jobs.

    Attributes
    ----------
    records : list of dict
        Compact records sorted by :func:`identity`.
    missing : tuple of str
        Keys of planned jobs not finished yet (empty after a complete run).
    """

    records: list
    missing: tuple


def merge_records(out, jobs) -> Merged:
    """Collect the records of ``jobs`` from the shard logs and write ``out/records.jsonl.gz``.

    Parameters
    ----------
    out : str or Path
        The sweep's output folder.
    jobs : sequence of empirical.sweep.plan.Job
        Every job of the plan (finished or not); records of other jobs in the logs are left out.

    Returns
    -------
    Merged
        The file holds exactly ``Merged.records``, one JSON line each, written atomically (a gzip
        stream with a fixed header time, so equal records give equal bytes).
    """
    done = finished_jobs(out)
    records, missing = [], []
    for job in jobs:
        if job.key in done:
            records.extend(done[job.key])
        else:
            missing.append(job.key)
    records.sort(key=identity)
    body = "".join(json.dumps(r, separators=(",", ":"), allow_nan=False) + "\n" for r in records)
    write_atomic(Path(out) / RECORDS_FILE, gzip.compress(body.encode("utf-8"), mtime=0))
    return Merged(records=records, missing=tuple(missing))


def summarize_cells(records) -> dict:
    """Summarise compact records, one summary per (temperature, seed), keyed ``"T=0.6,seed=0"``.

    Parameters
    ----------
    records : iterable of dict
        Compact records (:func:`compact_record`).

    Returns
    -------
    dict
        :func:`empirical.summary.summarize` of each (T, seed) group (its ``runs`` per tree and
        method, tokens per step with bootstrap intervals seeded by the seed), in sorted order; the
        node table is empty (compact records keep no laws).
    """
    groups: dict = {}
    for rec in sorted(records, key=identity):
        no_nodes = {"k": [], "tv": [], "hub_q": [], "hub_p": [], "slot": [], "acceptance": {}}
        groups.setdefault((float(rec["T"]), int(rec["seed"])), []).append({**rec, "nodes": no_nodes})
    return {f"T={T},seed={seed}": summarize(recs, seed=seed) for (T, seed), recs in sorted(groups.items())}

