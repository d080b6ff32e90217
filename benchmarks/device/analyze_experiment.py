"""Tables of the validation experiment (issue 8) from the committed H200 results.

Reads ``results/h200/experiment_summary.json`` (tokens per step per tree and method) and
``results/h200/nodes.npz`` (exact per-node acceptance of every method and the optimum on the real
(p, q) of SmolLM2-135M-Instruct and its distilled draft) and prints Markdown tables: tokens per
step laid out like the paper's (with 95% bootstrap intervals over prompts and the gains next to the
paper's), mean exact acceptance per method by temperature, and by bins of the hub probability q(a),
with the share of nodes where the proven condition q(a)/(1-q(a)) >= TV (theory.md 3.6 P2) holds.

Usage: python3 benchmarks/device/analyze_experiment.py [--results results/h200] [--out docs/validation-tables.md]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

METHODS = ("single", "rrs", "rrs_wor", "kseq", "spechub", "optimal_iid", "optimal_wor")
#: paper's mean SpecHub gains by tree (seed-notes.md 4.1, 55 binary-tree configurations, T >= 0.2)
PAPER_GAIN = {"2^2": (0.056, 0.028), "2^3": (0.134, 0.061), "2^4": (0.203, 0.107), "2^5": (0.272, 0.115)}
BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 0.95, 1.0001)


def tokens_table(summary: dict) -> str:
    lines = []
    for key, block in summary["summaries"].items():
        runs = {(r["tree"], r["method"]): r for r in block["runs"]}
        trees = sorted({t for t, _ in runs}, key=lambda t: (t.split("^")[0], int(t.split("^")[1])))
        lines += [f"**{key}** (tokens per step = accepted + 1; 95% bootstrap interval over prompts; prompts in parentheses)", "",
                  "| tree | nodes | spechub | rrs | rrs_wor | spechub − rrs (paper mean) | spechub − rrs_wor (paper mean) |",
                  "|---|---|---|---|---|---|---|"]
        for tree in trees:
            k, d = (int(x) for x in tree.split("^"))
            size = (k ** d - 1) // (k - 1)
            cell = {}
            for m in ("spechub", "rrs", "rrs_wor"):
                r = runs.get((tree, m))
                cell[m] = r
            fmt = lambda r: "–" if r is None else f"{r['tokens_per_step']['value']:.3f} [{r['tokens_per_step']['low']:.3f}, {r['tokens_per_step']['high']:.3f}] ({r['prompts']})"  # noqa: E731
            def gap(a, b):
                if cell[a] is None or cell[b] is None:
                    return "–"
                return f"{cell[a]['tokens_per_step']['value'] - cell[b]['tokens_per_step']['value']:+.3f}"
            paper = PAPER_GAIN.get(tree, ("–", "–"))
            lines.append(f"| {tree} | {size} | {fmt(cell['spechub'])} | {fmt(cell['rrs'])} | {fmt(cell['rrs_wor'])} | "
                         f"{gap('spechub', 'rrs')} ({paper[0]:+.3f}) | {gap('spechub', 'rrs_wor')} ({paper[1]:+.3f}) |"
                         if tree in PAPER_GAIN else
                         f"| {tree} | {size} | {fmt(cell['spechub'])} | {fmt(cell['rrs'])} | {fmt(cell['rrs_wor'])} | – | – |")
        lines.append("")
    return "\n".join(lines)


def node_tables(nodes) -> str:
    T = nodes["temperature"]
    lines = ["Mean exact acceptance at the verified nodes (two drafts), real (p, q); optimal_* = OT optimum for "
             "i.i.d. / without-replacement drafts.", "",
             "| T | nodes | mean TV | mean q(a) | " + " | ".join(METHODS) + " |", "|---" * (4 + len(METHODS)) + "|"]
    for t in sorted(set(T.tolist())):
        m = T == t
        lines.append(f"| {t:g} | {m.sum()} | {nodes['tv'][m].mean():.3f} | {nodes['hub_q'][m].mean():.3f} | "
                     + " | ".join(f"{np.nanmean(nodes[k][m]):.4f}" for k in METHODS) + " |")
    lines += ["", "By bins of the draft's hub probability q(a) (P2 holds = share of nodes with q(a)/(1-q(a)) >= TV, where "
              "SpecHub >= RRS is proven):", "",
              "| T | q(a) bin | nodes | P2 holds | rrs | rrs_wor | spechub | optimal_wor | spechub − rrs | spechub − rrs_wor | spechub < rrs |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for t in sorted(set(T.tolist())):
        for lo, hi in zip(BINS[:-1], BINS[1:]):
            m = (T == t) & (nodes["hub_q"] >= lo) & (nodes["hub_q"] < hi)
            if not m.any():
                continue
            qa, tv = nodes["hub_q"][m], nodes["tv"][m]
            p2 = np.mean(qa / np.maximum(1 - qa, 1e-300) >= tv)
            h, r, w, o = (nodes[k][m] for k in ("spechub", "rrs", "rrs_wor", "optimal_wor"))
            lines.append(f"| {t:g} | [{lo:.2f}, {min(hi, 1):.2f}) | {m.sum()} | {p2:.0%} | {r.mean():.4f} | {w.mean():.4f} | "
                         f"{h.mean():.4f} | {np.nanmean(o):.4f} | {np.mean(h - r):+.4f} | {np.mean(h - w):+.4f} | {np.mean(h < r - 1e-12):.0%} |")
    viol = np.sum((nodes["hub_q"] / np.maximum(1 - nodes["hub_q"], 1e-300) >= nodes["tv"]) & (nodes["spechub"] < nodes["rrs"] - 1e-9))
    lines += ["", f"Nodes where P2's condition holds but SpecHub < RRS: {int(viol)} (the theorem says 0)."]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="results/h200")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    res = Path(args.results)
    summary = json.loads((res / "experiment_summary.json").read_text())
    with np.load(res / "nodes.npz") as z:
        nodes = {k: z[k] for k in z.files}
    text = "## Tokens per step\n\n" + tokens_table(summary) + "\n## Node-level exact acceptance\n\n" + node_tables(nodes) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
