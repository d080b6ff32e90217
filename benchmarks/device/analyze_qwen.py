"""Tables of the validation experiment on the natural pair (issue 14), split by prompt type.

Reads the results folder of the Qwen2.5-Coder-1.5B-Instruct / 0.5B-Instruct run
(``experiment_records.jsonl.gz``: one compact record per decoded prompt with its type, code or chat;
``nodes.npz``: exact per-node acceptance of every method and both optima at n = 151,936, with
temperature, prompt type, q(a), p(a), TV and the theory.md 3.6 conditions P2 / P3; ``timing.json``:
tokens per second next to ``ar`` and HF ``generate()``) and the SmolLM2 results for comparison, and
writes Markdown: tokens per step per cell with 95% bootstrap intervals over prompts and the paired
gains of SpecHub over RRS and RRS w/o next to the paper's means and the SmolLM2 result, for all
prompts, code and chat; the ternary trees; 2^5 over seeds; the node table by temperature, prompt
type and bins of q(a) with the share of nodes where P2 (q(a)/(1 - q(a)) >= TV: SpecHub >= RRS) and
P3 (q(a) >= TV: SpecHub >= RRS w/o) hold; tokens per second. Missing parts print as "–".

Usage: python3 benchmarks/device/analyze_qwen.py [--results results/h200/qwen] [--smollm2 results/h200]
       [--out docs/validation-qwen-tables.md]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[2])]  # run from a checkout
from analyze_experiment import BINARY, BINS, PAPER_GAIN, TERNARY, gain, nodes_of, tokens_per_step  # noqa: E402

TYPES = ("all", "code", "chat")
#: the issue's verifiers, in column order; other methods found in the records get columns after them
KNOWN = ("spechub", "rrs", "rrs_wor")
NODE_COLUMNS = ("single", "rrs", "rrs_wor", "kseq", "spechub", "optimal_iid", "optimal_wor")
_TYPE_CODE = {"code": 0, "chat": 1}


def load_typed_cells(path) -> dict:
    """prompt type ("all", "code", "chat") -> (T, seed, tree, method) -> {prompt index: (tokens, steps)}."""
    out = {t: {} for t in TYPES}
    if not Path(path).is_file():
        return out
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            value = (len(r["tokens"]), len(r["steps"]["emitted"]))
            key = (r["T"], r["seed"], r["tree"], r["method"])
            for t in ("all", r.get("type")):
                if t in out:
                    out[t].setdefault(key, {})[r["prompt_index"]] = value
    return out


def _present(typed) -> list:
    """The prompt types with records ("all" always)."""
    return [t for t in TYPES if t == "all" or typed[t]]


def _methods(cells, trees) -> list:
    found = {k[3] for k in cells if k[2] in trees}
    return [m for m in KNOWN if m in found] + sorted(found - set(KNOWN))


def binary_tables(typed, smol) -> str:
    cells = typed["all"]
    temps = sorted({k[0] for k in cells})
    methods = _methods(cells, BINARY)
    others = [m for m in methods if m != "spechub"]
    lines = ["Tokens per step = accepted drafts + 1, pooled over the prompts of the row's type; 95% bootstrap "
             "interval over prompts; gains with paired intervals (same prompts and random numbers). Paper: mean "
             "gain over its 55 binary-tree configurations (seed-notes.md 4.1). SmolLM2: the same design on "
             "SmolLM2-135M + its distilled draft (results/h200, all 100 prompts).", ""]
    for T in temps:
        head = " | ".join(methods) + " | " + " | ".join(f"H − {m}" for m in others)
        lines += [f"**Binary trees, T = {T:g}, seed 0**", "",
                  f"| tree | prompts | {head} | paper H − R / H − W | SmolLM2 H − R / H − W |",
                  "|---|---|" + "---|" * (len(methods) + len(others)) + "---|---|"]
        for tree in BINARY:
            for t in _present(typed):
                c = typed[t]
                key = lambda m: (T, 0, tree, m)  # noqa: E731
                n = len(c.get(key("spechub"), c.get(key(methods[0]) if methods else None, {})) or {})
                row = [tokens_per_step(c, [key(m)]) for m in methods]
                row += [gain(c, [key("spechub")], [key(m)]) for m in others]
                paper = f"({PAPER_GAIN[tree][0]:+.3f} / {PAPER_GAIN[tree][1]:+.3f})" if t == "all" else ""
                ref = (f"{gain(smol, [key('spechub')], [key('rrs')])} / {gain(smol, [key('spechub')], [key('rrs_wor')])}"
                       if t == "all" and smol else "")
                lines.append(f"| {tree if t == 'all' else ''} | {t} ({n}) | " + " | ".join(row) + f" | {paper} | {ref} |")
        lines.append("")
    return "\n".join(lines)


def ternary_tables(typed) -> str:
    cells = typed["all"]
    lines = []
    for T in sorted({k[0] for k in cells}):
        methods = _methods(cells, TERNARY)
        if not methods:
            continue
        others = [m for m in methods if m != "rrs"]
        lines += [f"**Ternary trees, T = {T:g}, seed 0**", "",
                  "| tree | nodes | prompts | " + " | ".join(methods) + " | " + " | ".join(f"{m} − rrs" for m in others) + " |",
                  "|---|---|---|" + "---|" * (len(methods) + len(others))]
        for tree in TERNARY:
            for t in _present(typed):
                c = typed[t]
                key = lambda m: (T, 0, tree, m)  # noqa: E731
                lines.append(f"| {tree if t == 'all' else ''} | {nodes_of(tree) if t == 'all' else ''} | {t} | "
                             + " | ".join(tokens_per_step(c, [key(m)]) for m in methods) + " | "
                             + " | ".join(gain(c, [key(m)], [key("rrs")]) for m in others) + " |")
        lines.append("")
    return "\n".join(lines)


def _common_units(cells, T, seeds, methods) -> dict:
    """The 2^5 cells of ``seeds`` cut to the prompts that every method decoded under that seed (a cell
    with a missing shard would otherwise pool fewer units than the others)."""
    out = {}
    for s in seeds:
        keys = [(T, s, "2^5", m) for m in methods]
        shared = set.intersection(*(set(cells.get(k, {})) for k in keys))
        for k in keys:
            if shared:
                out[k] = {i: cells[k][i] for i in sorted(shared)}
    return out


def seed_tables(typed) -> str:
    cells = typed["all"]
    lines = []
    for T in sorted({k[0] for k in cells}):
        seeds = sorted({k[1] for k in cells if k[0] == T and k[2] == "2^5"})
        methods = _methods({k: v for k, v in cells.items() if k[0] == T}, ("2^5",))
        others = [m for m in methods if m != "spechub"]
        if len(seeds) < 2 or "spechub" not in methods:
            continue
        common = _common_units(cells, T, seeds, methods)
        per_seed = ", ".join(f"seed {s}: {len(common.get((T, s, '2^5', methods[0]), {}))}" for s in seeds)
        lines += [f"**2^5 pooled over seeds {', '.join(map(str, seeds))}, T = {T:g}** (prompts decoded by every "
                  f"method, so levels and gains use the same units; {per_seed})", "",
                  "| prompts | " + " | ".join(methods) + " | " + " | ".join(f"H − {m}" for m in others) + " |",
                  "|---|" + "---|" * (len(methods) + len(others))]
        for t in _present(typed):
            c = _common_units(typed[t], T, seeds, methods)
            ks = {m: [(T, s, "2^5", m) for s in seeds] for m in methods}
            lines.append(f"| {t} | " + " | ".join(tokens_per_step(c, ks[m]) for m in methods) + " | "
                         + " | ".join(gain(c, ks["spechub"], ks[m]) for m in others) + " |")
        lines.append("")
    return "\n".join(lines)


def _type_mask(nodes, t):
    if t == "all":
        return np.ones(len(nodes["tv"]), dtype=bool)
    return nodes["type"] == _TYPE_CODE[t]


def node_tables(nodes) -> str:
    if not nodes or not len(nodes.get("tv", [])):
        return "No node table.\n"
    cols = [m for m in NODE_COLUMNS if m in nodes]
    temp = nodes["temperature"]
    lines = ["Mean exact acceptance (two drafts) at every verified node of the node jobs (SpecHub decoding), real "
             "(p, q) at n = 151,936; optimal_* = OT optimum for i.i.d. / without-replacement drafts. P2 = share of "
             "nodes with q(a)/(1 − q(a)) ≥ TV (SpecHub ≥ RRS proven there), P3 = share with q(a) ≥ TV (SpecHub ≥ "
             "RRS w/o proven there).", "",
             "| T | prompts | nodes | mean TV | mean q(a) | mean p(a) | P2 | P3 | " + " | ".join(cols) + " |",
             "|---" * (8 + len(cols)) + "|"]
    for T in sorted(set(temp.tolist())):
        for t in TYPES:
            m = (temp == T) & _type_mask(nodes, t)
            if not m.any():
                continue
            lines.append(f"| {T:g} | {t} | {m.sum()} | {nodes['tv'][m].mean():.3f} | {nodes['hub_q'][m].mean():.3f} | "
                         f"{nodes['hub_p'][m].mean():.3f} | {nodes['p2'][m].mean():.0%} | {nodes['p3'][m].mean():.0%} | "
                         + " | ".join(f"{np.nanmean(nodes[k][m]):.4f}" for k in cols) + " |")
    lines += ["", "By bins of the draft's hub probability q(a):", "",
              "| T | prompts | q(a) bin | nodes | P2 | P3 | rrs | rrs_wor | spechub | optimal_iid | optimal_wor | "
              "spechub − rrs | spechub − rrs_wor | spechub < rrs | spechub < rrs_wor |",
              "|---" * 15 + "|"]
    for T in sorted(set(temp.tolist())):
        for t in TYPES:
            for lo, hi in zip(BINS[:-1], BINS[1:]):
                m = (temp == T) & _type_mask(nodes, t) & (nodes["hub_q"] >= lo) & (nodes["hub_q"] < hi)
                if not m.any():
                    continue
                h, r, w = (nodes[k][m] for k in ("spechub", "rrs", "rrs_wor"))
                opt = [f"{np.nanmean(nodes[k][m]):.4f}" if k in nodes else "–" for k in ("optimal_iid", "optimal_wor")]
                lines.append(f"| {T:g} | {t} | [{lo:.2f}, {min(hi, 1):.2f}) | {m.sum()} | {nodes['p2'][m].mean():.0%} | "
                             f"{nodes['p3'][m].mean():.0%} | {r.mean():.4f} | {w.mean():.4f} | {h.mean():.4f} | "
                             + " | ".join(opt) + f" | {np.mean(h - r):+.4f} | {np.mean(h - w):+.4f} | "
                             f"{np.mean(h < r - 1e-12):.0%} | {np.mean(h < w - 1e-12):.0%} |")
    v2 = int(np.sum(nodes["p2"] & (nodes["spechub"] < nodes["rrs"] - 1e-9)))
    v3 = int(np.sum(nodes["p3"] & (nodes["spechub"] < nodes["rrs_wor"] - 1e-9)))
    lines += ["", f"Nodes where P2's condition holds but SpecHub < RRS: {v2}; where P3's holds but SpecHub < RRS w/o: "
              f"{v3} (the theorems say 0 and 0)."]
    return "\n".join(lines) + "\n"


def timing_table(timing) -> str:
    if not timing:
        return "No timing job.\n"
    if "error" in timing:
        return f"The timing job failed: {timing['error']}\n"
    lines = [f"One process on a quiet device ({timing.get('gpu') or 'CPU'}, {timing.get('date', '')}), T = "
             f"{timing['temperature']:g}, {timing['max_new_tokens']} new tokens per prompt, one warm-up per engine.", "",
             "| batch | engine | prompts | tokens/s | × generate() | tokens/step | verify / target forward |",
             "|---|---|---|---|---|---|---|"]
    for r in timing["rows"]:
        name = "HF generate()" if r["method"] == "generate" else ("ar (ours)" if r["method"] == "ar" else f"{r['tree']} {r['method']}")
        tps = f"{r['tokens_per_step']:.2f}" if "tokens_per_step" in r else "–"
        vf = r.get("verify_fraction_of_target")
        lines.append(f"| {r['batch_size']} | {name} | {r['prompts']} | {r['tokens_per_second']:.1f} | "
                     f"{r['speedup_vs_generate']:.2f} | {tps} | {'–' if vf is None else f'{vf:.1%}'} |")
    return "\n".join(lines) + "\n"


def phase_table(path) -> str:
    """Per method and tree (seed 0, all temperatures), the phase seconds of the experiment's cells
    summed over prompts: verification as a share of the target forward (workers shared the GPU, so
    absolute times are not clean; the shares are the issue's < 5% goal)."""
    if not Path(path).is_file():
        return ""
    sums: dict = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            acc = sums.setdefault((r["tree"], r["method"]), {"draft": 0.0, "target": 0.0, "verify": 0.0, "cache": 0.0, "steps": 0})
            for ph in ("draft", "target", "verify", "cache"):
                acc[ph] += sum(r["steps"].get(f"{ph}_s", [0.0]))
            acc["steps"] += len(r["steps"]["emitted"])
    lines = ["", "Phase time of the sweep's cells per row-step (a row's share of each batched step; several workers shared "
             "the GPU), verification = the tree walk (for the node-job cell, 2^4 SpecHub at seed 0, it includes computing the node table):", "",
             "| tree | method | row-steps | draft ms | target ms | verify ms | cache ms | verify / target |", "|---|---|---|---|---|---|---|---|"]
    for (tree, method), a in sorted(sums.items()):
        ms = {ph: 1e3 * a[ph] / max(a["steps"], 1) for ph in ("draft", "target", "verify", "cache")}
        share = f"{a['verify'] / a['target']:.1%}" if a["target"] else "–"
        lines.append(f"| {tree} | {method} | {a['steps']} | {ms['draft']:.2f} | {ms['target']:.2f} | {ms['verify']:.2f} | "
                     f"{ms['cache']:.2f} | {share} |")
    return "\n".join(lines) + "\n"


def render(results: Path, smollm2: Path | None) -> str:
    typed = load_typed_cells(results / "experiment_records.jsonl.gz")
    smol = load_typed_cells(smollm2 / "experiment_records.jsonl.gz")["all"] if smollm2 else {}
    nodes = {}
    if (results / "nodes.npz").is_file():
        with np.load(results / "nodes.npz") as z:
            nodes = {k: z[k] for k in z.files}
    if nodes and "p2" not in nodes:  # tables of the earlier driver: conditions from the stored scalars
        nodes.update(p2=nodes["hub_q"] >= nodes["tv"] * (1 - nodes["hub_q"]), p3=nodes["hub_q"] >= nodes["tv"])
    if nodes and "type" not in nodes:
        nodes["type"] = np.full(len(nodes["tv"]), -1, dtype=np.int8)
    timing = json.loads((results / "timing.json").read_text()) if (results / "timing.json").is_file() else None
    return ("## Tokens per step, binary trees\n\n" + binary_tables(typed, smol)
            + "\n## Ternary trees\n\n" + ternary_tables(typed)
            + "\n## 2^5 over seeds\n\n" + seed_tables(typed)
            + "\n## Node-level exact acceptance\n\n" + node_tables(nodes)
            + "\n## Tokens per second\n\n" + timing_table(timing) + phase_table(results / "experiment_records.jsonl.gz"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="results/h200/qwen")
    ap.add_argument("--smollm2", default="results/h200", help="the SmolLM2 results for comparison ('' = none)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    text = render(Path(args.results), Path(args.smollm2) if args.smollm2 else None)
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
