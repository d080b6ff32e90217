"""Tables of the sequence-level verifier experiment (issue 15 item 5, issue 19 item 5) on one pair.

Reads the verifier run's compact records (``results/h200/verifiers/<pair>/experiment_records.jsonl.gz``:
chains x single / block / traversal, binary and ternary trees x traversal / optimal) and the committed
records of the other methods on the same prompts (``--baseline``: results/h200/qwen or results/h200,
rrs / spechub / rrs_wor at seed 0), and writes Markdown: tokens per step (accepted drafts + 1) per
cell with 95% bootstrap intervals over prompts, and paired differences over the prompts both cells
decoded (traversal − rrs, traversal − spechub, traversal − rrs_wor, block − single, traversal − block,
optimal − rrs, optimal − spechub, optimal − traversal), absolute with paired intervals and relative to
the second method, for all prompts and per prompt type; the share of SpecHub's gain over RRS that
``optimal`` recovers; then the timing job (verification time as a
share of the target forward) and the per-cell phase times. Missing cells print as "–".

Published references for the relative gains: Traversal Verification +2.2-5.7% acceptance length over
token-level RRS (Weng, Hu et al., NeurIPS 2025, arXiv 2505.12398); Traversal first on every pair of
2602.16994 (Qwen block efficiency 5.33 vs SpecInfer 5.13).

Usage: python3 benchmarks/device/analyze_verifiers.py --results results/h200/verifiers/qwen
       --baseline results/h200/qwen [--out docs/verifiers-qwen-tables.md]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[2])]  # run from a checkout
from analyze_experiment import _units, gain, tokens_per_step  # noqa: E402
from empirical.summary import bootstrap_gain_share  # noqa: E402
from analyze_qwen import TYPES, load_typed_cells, phase_table, timing_table  # noqa: E402

CHAINS = tuple(f"chain-{d}" for d in range(1, 6))
BINARY, TERNARY = ("2^2", "2^3", "2^4", "2^5"), ("3^2", "3^3", "3^4")
#: column order of the methods; others found in the records follow
KNOWN = ("single", "block", "traversal", "rrs", "rrs_wor", "spechub", "optimal")
#: paired differences (a − b), in column order
DIFFERENCES = (("traversal", "rrs"), ("traversal", "spechub"), ("traversal", "rrs_wor"), ("block", "single"),
               ("traversal", "block"), ("optimal", "rrs"), ("optimal", "spechub"), ("optimal", "traversal"))


def load(results: Path, baseline: Path | None) -> dict:
    """prompt type -> (T, seed, tree, method) -> {prompt index: (tokens, steps)}: the verifier run's
    cells, and the baseline's cells that the run does not have (seed 0 only)."""
    typed = load_typed_cells(results / "experiment_records.jsonl.gz")
    if baseline is not None:
        base = load_typed_cells(baseline / "experiment_records.jsonl.gz")
        for t in TYPES:
            for key, cell in base[t].items():
                if key[1] == 0:
                    typed[t].setdefault(key, cell)
    return typed


def relative_gain(cells, a, b) -> str:
    """Paired a − b relative to b, over the prompts both decoded: ``"+x.x%"`` (or "–")."""
    if a not in cells or b not in cells:
        return "–"
    ua, ub = _units(cells, [a, b])
    if not len(ua):
        return "–"
    return f"{ratio(ua) / ratio(ub) - 1:+.1%}"


def level_table(cells, T) -> str:
    """Tokens per step of every cell at temperature T, seed 0: one row per tree, one column per method."""
    found = {k[3] for k in cells if k[0] == T and k[1] == 0}
    methods = [m for m in KNOWN if m in found] + sorted(found - set(KNOWN))
    lines = [f"**Tokens per step, T = {T:g}, seed 0** (95% bootstrap interval over prompts; prompts in parentheses)", "",
             "| tree | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for tree in CHAINS + BINARY + TERNARY:
        keys = [(T, 0, tree, m) for m in methods]
        if not any(k in cells for k in keys):
            continue
        lines.append(f"| {tree} | " + " | ".join(
            f"{tokens_per_step(cells, [k])} ({len(cells[k])})" if k in cells else "–" for k in keys) + " |")
    return "\n".join(lines) + "\n"


def difference_table(typed, T) -> str:
    """Paired differences a − b at temperature T, seed 0, per tree and prompt type; a pair shows where
    both cells exist."""
    cells = typed["all"]
    pairs = [(a, b) for a, b in DIFFERENCES if any((T, 0, tree, a) in cells and (T, 0, tree, b) in cells
                                                   for tree in CHAINS + BINARY + TERNARY)]
    if not pairs:
        return ""
    lines = [f"**Paired differences in tokens per step, T = {T:g}, seed 0** (same prompts; 95% paired bootstrap "
             "interval; relative to the second method in parentheses)", "",
             "| tree | prompts | " + " | ".join(f"{a} − {b}" for a, b in pairs) + " |", "|---|---|" + "---|" * len(pairs)]
    for tree in CHAINS + BINARY + TERNARY:
        if not any((T, 0, tree, a) in cells and (T, 0, tree, b) in cells for a, b in pairs):
            continue
        for t in [t for t in TYPES if t == "all" or typed[t]]:
            c = typed[t]
            row = []
            for a, b in pairs:
                ka, kb = (T, 0, tree, a), (T, 0, tree, b)
                row.append("–" if ka not in c or kb not in c else f"{gain(c, [ka], [kb])} ({relative_gain(c, ka, kb)})")
            n = max((len(v) for k, v in c.items() if k[0] == T and k[1] == 0 and k[2] == tree), default=0)
            lines.append(f"| {tree if t == 'all' else ''} | {t} ({n}) | " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def share_table(cells, T) -> str:
    """Per binary tree at temperature T, seed 0: the share of SpecHub's gain over RRS that the optimal
    verification of i.i.d. drafts recovers, (optimal − rrs) / (spechub − rrs), over the prompts all three
    decoded, with its paired 95% percentile bootstrap (``empirical.summary.bootstrap_gain_share``); the
    rest of SpecHub's gain comes with its draft law. "" when no tree has the three cells."""
    rows = []
    for tree in BINARY:
        keys = [(T, 0, tree, m) for m in ("optimal", "rrs", "spechub")]
        if not all(k in cells for k in keys):
            continue
        units = _units(cells, keys)
        if not len(units[0]):
            continue
        share = bootstrap_gain_share(*units, rng=0)
        r = [ratio(u) for u in units]
        rows.append(f"| {tree} | {len(units[0])} | {r[2] - r[1]:+.3f} | {r[0] - r[1]:+.3f} | "
                    f"{share.value:.0%} [{share.low:.0%}, {share.high:.0%}] |")
    if not rows:
        return ""
    return "\n".join([f"**Share of SpecHub's gain over RRS recovered by the optimal verifier, T = {T:g}, seed 0** "
                      "((optimal − rrs) / (spechub − rrs) on the prompts all three decoded; 95% paired bootstrap; "
                      "meaningful where spechub − rrs is clearly above 0)", "",
                      "| tree | prompts | spechub − rrs | optimal − rrs | share |", "|---|---|---|---|---|", *rows]) + "\n"


def pooled_gain(cells, a: str, b: str, trees) -> dict | None:
    """Mean over ``trees`` and temperatures of the relative paired gain of a over b (the summary line
    next to 2505.12398's +2.2-5.7%): ``{"cells", "min", "max", "mean"}`` or None without pairs."""
    gains = []
    for T in sorted({k[0] for k in cells}):
        for tree in trees:
            ka, kb = (T, 0, tree, a), (T, 0, tree, b)
            if ka in cells and kb in cells:
                ua, ub = _units(cells, [ka, kb])
                if len(ua):
                    gains.append(ratio(ua) / ratio(ub) - 1.0)
    if not gains:
        return None
    return {"cells": len(gains), "min": float(min(gains)), "max": float(max(gains)), "mean": float(np.mean(gains))}


def ratio(units) -> float:
    """Pooled tokens per step of (tokens, steps) rows [m, 2]: sum of tokens / sum of steps (the
    tables' estimator)."""
    return float(units[:, 0].sum() / units[:, 1].sum())


def render(results: Path, baseline: Path | None) -> str:
    """The whole Markdown report."""
    import json

    typed = load(results, baseline)
    cells = typed["all"]
    temps = sorted({k[0] for k in cells})
    parts = ["Tokens per step = accepted drafts + 1 per target forward. Verifier cells from "
             f"`{results}`; other methods from `{baseline}` (same prompts, shard layout and per-prompt seeds).", ""]
    summary = []
    for a, b, trees in (("traversal", "rrs", BINARY + TERNARY), ("traversal", "spechub", BINARY),
                        ("traversal", "rrs_wor", BINARY + TERNARY), ("block", "single", CHAINS),
                        ("optimal", "rrs", BINARY + TERNARY), ("optimal", "spechub", BINARY)):
        g = pooled_gain(cells, a, b, trees)
        if g is not None:
            summary.append(f"- {a} over {b}: {g['mean']:+.1%} on average over {g['cells']} cells "
                           f"(from {g['min']:+.1%} to {g['max']:+.1%})")
    if summary:
        parts += ["Relative paired gains (2505.12398 reports +2.2% to +5.7% for traversal over token-level RRS):", ""]
        parts += summary + [""]
    for T in temps:
        parts += [level_table(cells, T), difference_table(typed, T), share_table(cells, T)]
    timing_file = results / "timing.json"
    timing = json.loads(timing_file.read_text()) if timing_file.is_file() else None
    parts += ["## Timing", "", timing_table(timing) + phase_table(results / "experiment_records.jsonl.gz")]
    return "\n".join(parts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", required=True, help="the verifier run's folder (experiment_records.jsonl.gz, timing.json)")
    ap.add_argument("--baseline", default="", help="the committed run of rrs / spechub / rrs_wor on the same prompts ('' = none)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    text = render(Path(args.results), Path(args.baseline) if args.baseline else None)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
