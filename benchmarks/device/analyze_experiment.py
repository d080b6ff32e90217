"""Tables of the validation experiment (issue 8) from the committed H200 results.

Reads ``results/h200/experiment_records.jsonl.gz`` (one compact record per decoded prompt: cell,
tokens, target forwards) and ``results/h200/nodes.npz`` (exact per-node acceptance of every method
and the optimum on the real (p, q) of SmolLM2-135M-Instruct and its distilled draft) and prints
Markdown tables: tokens per step laid out like the paper's, with 95% bootstrap intervals over prompts
and the gains with *paired* intervals (same prompts and random numbers for every method) next to the
paper's; the ternary trees; the 2^5 tree over three seeds; mean exact acceptance per method by
temperature and by bins of the hub probability q(a), with the share of nodes where the proven
condition q(a)/(1-q(a)) >= TV (theory.md 3.6 P2) holds.

Usage: python3 benchmarks/device/analyze_experiment.py [--results results/h200] [--out docs/validation-tables.md]
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

import numpy as np

from empirical.summary import bootstrap_ratio, bootstrap_ratio_difference

METHODS = ("single", "rrs", "rrs_wor", "kseq", "spechub", "optimal_iid", "optimal_wor")
#: paper's mean SpecHub gains over RRS / RRS w/o by tree (seed-notes.md 4.1, 55 binary-tree configurations, T >= 0.2)
PAPER_GAIN = {"2^2": (0.056, 0.028), "2^3": (0.134, 0.061), "2^4": (0.203, 0.107), "2^5": (0.272, 0.115)}
#: the paper's closest pair (JackFram/llama-68m -> Llama-2-7b-chat), H / R / W on cnn and ope (seed-notes.md 4.1)
PAPER_68M = {
    0.6: {"2^2": ((1.616, 1.554, 1.600), (1.608, 1.548, 1.590)), "2^3": ((1.986, 1.848, 1.969), (1.963, 1.858, 1.924)),
          "2^4": ((2.246, 2.051, 2.169), (2.210, 2.026, 2.130)), "2^5": ((2.403, 2.139, 2.315), (2.342, 2.087, 2.295))},
    1.0: {"2^2": ((1.600, 1.543, 1.552), (1.590, 1.549, 1.551)), "2^3": ((1.983, 1.838, 1.879), (1.966, 1.823, 1.859)),
          "2^4": ((2.211, 1.976, 2.044), (2.196, 1.995, 2.049)), "2^5": ((2.310, 2.069, 2.138), (2.315, 2.089, 2.157))},
}
BINS = (0.0, 0.2, 0.4, 0.6, 0.8, 0.95, 1.0001)
BINARY, TERNARY = ("2^2", "2^3", "2^4", "2^5"), ("3^2", "3^3", "3^4")


def load_cells(path) -> dict:
    """(T, seed, tree, method) -> {prompt index: (tokens, target forwards)} from the compact records."""
    cells: dict = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            cell = cells.setdefault((r["T"], r["seed"], r["tree"], r["method"]), {})
            cell[r["prompt_index"]] = (len(r["tokens"]), len(r["steps"]["emitted"]))
    return cells


def _units(cells, keys) -> list:
    """Per key, the (tokens, steps) vectors over the (seed, prompt) units every key has."""
    common = sorted(set.intersection(*[{(k[1], i) for i in cells[k]} for k in keys])) if all(k in cells for k in keys) else []
    out = []
    for k in keys:
        by = {(k[1], i): v for i, v in cells[k].items()}
        out.append(np.array([by[(k[1], i)] for _, i in common], dtype=np.float64).reshape(-1, 2))
    return out


def tokens_per_step(cells, keys) -> str:
    """"value [low, high]" pooled over the cells ``keys`` (several seeds pool their prompts)."""
    present = [np.array(list(cells[k].values()), dtype=np.float64) for k in keys if k in cells]
    if not present:
        return "–"
    data = np.concatenate(present)  # [prompts, (tokens, steps)]
    ci = bootstrap_ratio(data[:, 0], data[:, 1], rng=0)
    return f"{ci.value:.3f} [{ci.low:.3f}, {ci.high:.3f}]"


def gain(cells, keys_a, keys_b) -> str:
    """Paired gain of a over b ("+value [low, high]"), units = (seed, prompt) present in both."""
    pairs = [_units(cells, [a, b]) for a, b in zip(keys_a, keys_b) if a in cells and b in cells]
    if not pairs:
        return "–"
    a = np.concatenate([p[0] for p in pairs])
    b = np.concatenate([p[1] for p in pairs])
    if not len(a):
        return "–"
    ci = bootstrap_ratio_difference(a[:, 0], a[:, 1], b[:, 0], b[:, 1], rng=0)
    return f"{ci.value:+.3f} [{ci.low:+.3f}, {ci.high:+.3f}]"


def nodes_of(tree: str) -> int:
    k, d = (int(x) for x in tree.split("^"))
    return (k ** d - 1) // (k - 1)


def tokens_tables(cells) -> str:
    temps = sorted({k[0] for k in cells})
    n_prompts = {len(v) for v in cells.values()}
    lines = [f"Tokens per step = accepted drafts + 1, pooled over prompts ({'/'.join(map(str, sorted(n_prompts)))} per cell), "
             "95% bootstrap interval over prompts; gains with paired intervals (same prompts and random numbers). "
             "Paper: mean gain over its 55 binary-tree configurations, and its closest pair (llama-68m -> Llama-2-7b-chat, "
             "cnn / ope) as H / R / W.", ""]
    for T in temps:
        key = lambda tree, m, seed=0: (T, seed, tree, m)  # noqa: E731
        lines += [f"**Binary trees, T = {T:g}, seed 0**", "",
                  "| tree | nodes | SpecHub (H) | RRS (R) | RRS w/o (W) | H − R (paper mean) | H − W (paper mean) | paper 68m→7b H / R / W |",
                  "|---|---|---|---|---|---|---|---|"]
        for tree in BINARY:
            paper = PAPER_68M.get(T, {}).get(tree)
            ref = " ; ".join("/".join(f"{x:.3f}" for x in row) for row in paper) if paper else "–"
            lines.append(f"| {tree} | {nodes_of(tree)} | " + " | ".join(tokens_per_step(cells, [key(tree, m)]) for m in ("spechub", "rrs", "rrs_wor"))
                         + f" | {gain(cells, [key(tree, 'spechub')], [key(tree, 'rrs')])} ({PAPER_GAIN[tree][0]:+.3f})"
                         + f" | {gain(cells, [key(tree, 'spechub')], [key(tree, 'rrs_wor')])} ({PAPER_GAIN[tree][1]:+.3f}) | {ref} |")
        lines += ["", f"**Ternary trees (RRS, RRS w/o), T = {T:g}, seed 0**", "",
                  "| tree | nodes | RRS | RRS w/o | W − R |", "|---|---|---|---|---|"]
        for tree in TERNARY:
            lines.append(f"| {tree} | {nodes_of(tree)} | {tokens_per_step(cells, [key(tree, 'rrs')])} | "
                         f"{tokens_per_step(cells, [key(tree, 'rrs_wor')])} | {gain(cells, [key(tree, 'rrs_wor')], [key(tree, 'rrs')])} |")
        seeds = sorted({k[1] for k in cells if k[0] == T and k[2] == "2^5"})
        lines += ["", f"**2^5 (31 nodes) over seeds, T = {T:g}**", "",
                  "| seed | SpecHub | RRS | RRS w/o | H − R | H − W |", "|---|---|---|---|---|---|"]
        for seed in seeds + ["all"]:
            ss = seeds if seed == "all" else [seed]
            ks = {m: [key("2^5", m, s) for s in ss] for m in ("spechub", "rrs", "rrs_wor")}
            lines.append(f"| {seed if seed != 'all' else f'pooled ({len(ss)} seeds)'} | "
                         + " | ".join(tokens_per_step(cells, ks[m]) for m in ("spechub", "rrs", "rrs_wor"))
                         + f" | {gain(cells, ks['spechub'], ks['rrs'])} | {gain(cells, ks['spechub'], ks['rrs_wor'])} |")
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
    cells = load_cells(res / "experiment_records.jsonl.gz")
    with np.load(res / "nodes.npz") as z:
        nodes = {k: z[k] for k in z.files}
    text = "## Tokens per step\n\n" + tokens_tables(cells) + "\n## Node-level exact acceptance\n\n" + node_tables(nodes) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
