"""``index.md`` of the report: one section per part with its figure, caption, table and skip notes.

Convention: paths in ``results`` are relative to the report folder; numbers to 3 decimals;
method names from the closed vocabulary (style.md C10).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["write_index", "render_index", "CAPTIONS"]

CAPTIONS = {
    "tokens_per_step_pair": (
        "Tokens per target forward (accepted drafts + 1) vs token-tree size on one committed real model pair, one panel "
        "per temperature (seed 0; 95% bootstrap intervals over prompts); binary trees solid, ternary dash-dot; the "
        "paper's Llama-2-7B + llama-68m points hollow."),
    "acceptance_vs_temperature": (
        "Exact acceptance rate with k = 2 drafts per node vs temperature (applied to both models) for every method and "
        "the optimal-transport optimum, on synthetic LLM-like pairs q = softmax(z/T), p = softmax((z + noise)/T) "
        "(theory.md 3.6), averaged over positions (band: +-1 standard error); the last panel, when present, shows the "
        "mean exact acceptance at the verified nodes of real decoding runs."),
    "gap_map": (
        "Mean acceptance gap spechub - rrs (left) and spechub - rrs_wor (right), k = 2, over random LLM-like pairs binned "
        "by the draft's hub probability q(a) and TV(p, q). Red: SpecHub better. Black curve: the proven boundary "
        "(theory.md 3.6 P2: q(a)/(1-q(a)) >= TV implies spechub >= rrs; P3: q(a) >= TV implies spechub >= rrs_wor); "
        "SpecHub can only lose to the left of it (P5)."),
    "optimum_fraction": (
        "Each method's acceptance divided by the optimum's, per node (ECDF; dot = median). The reference optimum is named "
        "on the x axis (optimal_wor when available, else optimal_iid). A ratio above 1 is possible for methods whose draft "
        "law differs from the reference's (SpecHub's hub law, theory.md 3.6 P4)."),
    "tokens_per_step": (
        "Tokens per target forward (accepted + 1) vs token-tree size: exact on a synthetic bigram pair whose mismatch is "
        "calibrated so that rrs on the 2^2 tree matches the paper's value, measured on real models with 95% bootstrap "
        "intervals over prompts, and the paper's numbers (hollow markers; seed-notes 4.1/4.2: Llama-2-7B-chat target, "
        "llama-68m draft, CNN/DailyMail, T = 0.6) on the same axes."),
    "lp_timing": "Seconds to compute the exact optimum: LP solvers vs the fast sorted-prefix formula, vs vocabulary size.",
}


def write_index(path, results: dict) -> None:
    """Write :func:`render_index` to ``path``.

    Parameters
    ----------
    path : str or pathlib.Path
    results : dict
    """
    Path(path).write_text(render_index(results), encoding="utf-8")


def render_index(results: dict) -> str:
    """The Markdown text of the report.

    Parameters
    ----------
    results : dict

    Returns
    -------
    str
    """
    cfg = results["config"]
    lines = ["# spechub report: SpecHub vs RRS vs the optimum", "",
             f"Seed {cfg['seed']}, device {cfg['device']}; {results['convention']}.", "",
             "Files: every figure as PNG (150 dpi) and PDF, with the plotted numbers as CSV and JSON beside it in "
             "`figures/`; all numbers in `results.json`.", ""]
    skipped = [p for p in results["parts"] if p["status"] == "skipped"]
    if skipped:
        lines += ["**Skipped:**", ""] + [f"* {p['title']}: {p['note']}" for p in skipped] + [""]
    for part in results["parts"]:
        lines += [f"## {part['title']}", ""]
        fig = part.get("figure")
        if fig:
            lines += [f"![{part['title']}]({fig['png']})", "", CAPTIONS.get(part["name"], CAPTIONS["tokens_per_step_pair"] if part["name"].startswith("tokens_per_step_") else ""), "",
                      f"Data: [CSV]({fig['csv']}), [JSON]({fig['json']}); vector: [PDF]({fig['pdf']}).", ""]
        if part.get("note") and part["status"] == "done":
            lines += [f"Notes: {part['note']}", ""]
        if part["status"] == "skipped":
            lines += [f"*Skipped:* {part['note']}", ""]
        lines += _TABLES.get(part["name"], lambda s: [])(part.get("summary") or {})
        lines += [f"<sub>{part['seconds']:.1f} s</sub>", ""]
    return "\n".join(lines) + "\n"


def _fmt(x, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _table(header: list, rows: list) -> list:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in rows]
    return out + [""]


def _model_table(s: dict) -> list:
    runs = s.get("runs") or []
    rows = [[r["tree"], r["method"], r["tokens_per_step"]["value"], f"[{r['tokens_per_step']['low']:.3f}, "
             f"{r['tokens_per_step']['high']:.3f}]", r["prompts"], r["tokens"]] for r in runs]
    out = _table(["tree", "method", "tokens/step", "95% CI", "prompts", "tokens"], rows) if rows else []
    node = (s.get("nodes") or {}).get("2")
    if node:
        out += ["Mean exact acceptance at the verified k = 2 nodes "
                f"({node['count']} nodes, mean TV {node['mean_tv']:.3f}, mean q(a) {node['mean_hub_q']:.3f}):", ""]
        out += _table(list(node["mean"]), [list(node["mean"].values())])
    return out


def _sweep_table(s: dict) -> list:
    t = s.get("table")
    if not t:
        return []
    head = ["method"] + [f"T = {x:g}" for x in t["temperatures"]]
    lines = [f"Mean acceptance at target noise {t['noise']:g} (k = 2):", ""]
    return lines + _table(head, [[m, *v] for m, v in t["mean"].items()])


def _gap_table(s: dict) -> list:
    rows = [[b, v["pairs"], 100 * v["spechub_better"], 100 * v["spechub_worse"], v["mean_gap"], v["condition"],
             v["pairs_in_proven_region"], v["violations_in_proven_region"]] for b, v in s.items() if isinstance(v, dict) and "spechub_better" in v]
    return _table(["baseline", "pairs", "% spechub better", "% worse", "mean gap", "proven condition", "pairs in it",
                   "violations"], rows) if rows else []


def _fraction_table(s: dict) -> list:
    out = []
    for panel in s.get("panels", []):
        out += [f"{panel['source'].replace(chr(10), ' ')}, divided by {panel['reference']}:", ""]
        out += _table(["method", "q05", "median", "q95", "mean", "nodes"],
                      [[m, q.get("q05"), q.get("q50"), q.get("q95"), q["mean"], q["nodes"]] for m, q in panel["quantiles"].items()])
    return out


def _trees_table(s: dict) -> list:
    out = []
    groups = [("synthetic (exact)", (s.get("synthetic") or {}).get("rows") or [], "tokens_per_step")]
    groups += [(src, [r for r in s.get("real", []) if r["source"] == src], "value")
               for src in dict.fromkeys(r["source"] for r in s.get("real", []))]
    groups += [("paper (Llama-2-7B-chat + llama-68m, CNN, T = 0.6)", s.get("paper", []), "tokens_per_step")]
    for title, rows, key in groups:
        if not rows:
            continue
        trees = list(dict.fromkeys(sorted(((r["nodes"], r["tree"]) for r in rows))))
        methods = list(dict.fromkeys(r["method"] for r in rows))
        cell = {(r["method"], r["tree"]): r[key] for r in rows}
        out += [f"{title}:", ""]
        out += _table(["method"] + [f"{t} ({n})" for n, t in trees], [[m] + [cell.get((m, t)) for _, t in trees] for m in methods])
    calib = (s.get("synthetic") or {}).get("calibration")
    if calib:
        out += [f"Synthetic pair calibrated: mismatch {calib['mismatch']:.3f} makes {calib['method']} on {calib['tree']} "
                f"equal {calib['tokens_per_step']:.3f} ({calib['what']}).", ""]
    return out


_TABLES = {"real_model": _model_table, "acceptance_vs_temperature": _sweep_table, "gap_map": _gap_table,
           "optimum_fraction": _fraction_table, "tokens_per_step": _trees_table}
