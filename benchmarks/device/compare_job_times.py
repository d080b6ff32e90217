"""Per-cell job seconds of two experiment logs side by side (issue 16: the sweep's H200 minutes, eager vs fast).

Reads the worker lines of ``experiment.py`` logs (``[hh:mm:ss] worker W job J {job dict} S.Ss``),
groups the finished shard jobs by (T, tree, method), and prints the mean seconds per shard job in
each log and their ratio for the cells both logs hold, plus the totals over those cells. Jobs that
also built the node table (``'nodes': True``) are left out (they do extra work). Worker counts
should match for the ratio to mean "minutes of the same sweep"; the header says how many workers
each log shows. ``--by tree`` pools the methods of each (T, tree): a proxy when the two logs decoded
different methods on the same trees (the same forwards, another verification rule).

Usage: python3 benchmarks/device/compare_job_times.py --before LOG [LOG ...] --after LOG [LOG ...] [--by cell|tree]
       [--before-methods M,...] [--after-methods M,...] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import ast
import re
from collections import defaultdict
from pathlib import Path

LINE = re.compile(r"worker (\d+) job \d+ (\{.*\}) ([0-9.]+)s(?: peak [0-9.]+ GiB)?\s*$")


def job_seconds(paths, by: str = "cell", methods=None) -> tuple[dict, int]:
    """{(T, tree, method): [seconds of each finished shard job]} and the number of distinct workers.

    Parameters
    ----------
    paths : iterable of str or Path
        Experiment logs.
    by : {"cell", "tree"}, optional
        ``tree``: every method of a (T, tree) in one group, keyed (T, tree, "*").
    methods : collection of str, optional
        Only the jobs of these methods (all when None).

    Returns
    -------
    tuple
        (seconds by cell, workers seen).

    Raises
    ------
    ValueError
        When a log holds no finished job line.
    """
    cells, workers = defaultdict(list), set()
    for path in paths:
        found = 0
        for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
            m = LINE.search(line)
            if not m or "FAILED" in line:
                continue
            job = ast.literal_eval(m.group(2))
            found += 1
            if job.get("nodes") or (methods is not None and job["method"] not in methods):
                continue
            workers.add(int(m.group(1)))
            cells[(float(job["T"]), job["tree"], job["method"] if by == "cell" else "*")].append(float(m.group(3)))
        if not found:
            raise ValueError(f"{path}: no finished job line ('worker W job J {{...}} S.Ss') in this log.")
    return dict(cells), len(workers)


def table(before: dict, after: dict, workers: tuple) -> str:
    """Markdown table of the cells both hold: mean seconds per shard job before, after, ratio.

    Parameters
    ----------
    before, after : dict
        From :func:`job_seconds`.
    workers : tuple of int
        Workers seen in each.

    Returns
    -------
    str
    """
    common = sorted(set(before) & set(after))
    rows = [f"Workers: before {workers[0]}, after {workers[1]}. Mean seconds per 50-prompt shard job.", "",
            "| T | tree | method | jobs before | s before | jobs after | s after | after / before |", "|---|---|---|---|---|---|---|---|"]
    tot_b = tot_a = 0.0
    for key in common:
        b, a = before[key], after[key]
        mb, ma = sum(b) / len(b), sum(a) / len(a)
        tot_b, tot_a = tot_b + mb, tot_a + ma
        rows.append(f"| {key[0]:g} | {key[1]} | {key[2]} | {len(b)} | {mb:.1f} | {len(a)} | {ma:.1f} | {_ratio(ma, mb)} |")
    if common:
        rows.append(f"| all | {len(common)} cells | | | {tot_b:.1f} | | {tot_a:.1f} | **{_ratio(tot_a, tot_b)}** |")
    else:
        rows.append("| – | no cell in both logs | | | | | | |")
    return "\n".join(rows) + "\n"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b > 0 else "–"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", nargs="+", required=True)
    ap.add_argument("--after", nargs="+", required=True)
    ap.add_argument("--by", choices=("cell", "tree"), default="cell",
                    help="group by (T, tree, method) (default) or pool the methods of each (T, tree)")
    ap.add_argument("--before-methods", default=None, help="comma list: only these methods' jobs of --before")
    ap.add_argument("--after-methods", default=None, help="comma list: only these methods' jobs of --after")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    pick = lambda text: None if text is None else {m.strip() for m in text.split(",") if m.strip()}  # noqa: E731
    try:
        (b, wb) = job_seconds(args.before, args.by, pick(args.before_methods))
        (a, wa) = job_seconds(args.after, args.by, pick(args.after_methods))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"compare_job_times.py: error: {exc}")
    text = table(b, a, (wb, wa))
    print(text, end="")
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
