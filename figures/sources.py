"""Data the report reads but does not compute: the paper's numbers, LP benchmarks, real-model runs.

Convention: every loader returns plain rows (lists of dicts) or None when its input is absent, and
never raises for a missing or malformed optional file (the report notes what it skipped).
Source: seed-notes 4.1/4.2 (paper), lp benchmarks, empirical.run (``summary.json``, ``records.jsonl``).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

__all__ = ["repo_root", "paper_reference", "paper_mean_gaps", "paper_rows", "PAPER_DEFAULT", "find_lp_benchmark", "find_runs", "committed_tree_rows",
           "run_label", "real_tokens_rows", "real_acceptance_rows", "node_columns", "LP_BENCHMARK_PATHS"]

#: the reference subset plotted by default (issue 9): 68m -> 7B chat, CNN/DailyMail, T = 0.6
PAPER_DEFAULT = {"target": "Llama-2-7b-chat", "draft": "JackFram/llama-68m", "data": "cnn_dailymail", "temperature": 0.6}
#: where the lp helper's benchmark JSON may live, relative to the repository root (first found wins)
LP_BENCHMARK_PATHS = ("results/bench_lp.json", "results/benchmarks-lp.json", "results/lp_benchmark.json",
                      "docs/bench_lp.json", "docs/benchmarks-lp.json")


def repo_root() -> Path | None:
    """The source checkout holding this package (it has ``pyproject.toml``), or None when installed.

    Returns
    -------
    Path or None
    """
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


def paper_reference() -> dict:
    """The packaged table ``figures/data/paper_reference.json`` (source, protocol, records).

    Returns
    -------
    dict
    """
    text = resources.files("figures").joinpath("data/paper_reference.json").read_text(encoding="utf-8")
    return json.loads(text)


def paper_mean_gaps() -> dict:
    """The authors' mean SpecHub-minus-baseline tokens per step per binary tree.

    Returns
    -------
    dict
        ``{"spechub-rrs": {"2^2": ..., ...}, "spechub-rrs_wor": {...}}`` from the ``mean_gaps``
        entry of ``figures/data/paper_reference.json`` (its ``note`` says which runs).
    """
    return {key: value for key, value in paper_reference()["mean_gaps"].items() if key != "note"}


def paper_rows(reference: dict | None = None, **match) -> list:
    """The records of the reference table matching ``match`` (default :data:`PAPER_DEFAULT`).

    Parameters
    ----------
    reference : dict or None, optional
    **match
        Column values a record must have.

    Returns
    -------
    list

    Examples
    --------
    >>> rows = paper_rows()
    >>> sorted({(r["tree"], r["method"]) for r in rows})[:3]
    [('2^2', 'rrs'), ('2^2', 'rrs_wor'), ('2^2', 'spechub')]
    >>> next(r["tokens_per_step"] for r in rows if r["tree"] == "2^5" and r["method"] == "spechub")
    2.403
    """
    reference = paper_reference() if reference is None else reference
    match = match or PAPER_DEFAULT
    return [r for r in reference["records"] if all(r.get(k) == v for k, v in match.items())]


def find_lp_benchmark(roots) -> dict | None:
    """The first LP benchmark JSON under ``roots`` (:data:`LP_BENCHMARK_PATHS`), or None.

    As ``{"path", "rows", "fast_rows", "source"}``.

    Parameters
    ----------
    roots : sequence of str or pathlib.Path

    Returns
    -------
    dict or None
    """
    for root in [Path(r) for r in roots if r is not None]:
        for rel in LP_BENCHMARK_PATHS:
            path = root / rel
            data = _read_json(path)
            if not isinstance(data, dict):
                continue
            rows = (data.get("part1") or {}).get("rows") or data.get("rows")
            if not rows:
                continue
            source = ", ".join(" ".join(str(data[k]).replace("Model name:", "").split()) for k in ("date", "cpu") if data.get(k))
            return {"path": str(path), "rows": rows, "fast_rows": data.get("part2") or [], "source": source}
    return None


def committed_tree_rows(path) -> list:
    """Tokens-per-step rows from a committed ``spechub tree`` table, or [].

    Rows ``{"source", "tree", "nodes", "method", "tokens_per_step"}`` from
    ``results/synthetic_trees.json`` (trees, nodes, methods -> long_run); [] when absent or
    malformed.

    Parameters
    ----------
    path : str or pathlib.Path

    Returns
    -------
    list
    """
    data = _read_json(Path(path))
    if not isinstance(data, dict) or not isinstance(data.get("methods"), dict):
        return []
    pair = data.get("pair") or {}
    source = f"committed {Path(path).name} (exact)" + (
        f", n = {pair['vocab']}, 1 - TV = {pair['mean_acceptance']:.2f}" if {"vocab", "mean_acceptance"} <= set(pair) else "")
    try:
        return [{"source": source, "tree": t, "nodes": data["nodes"][i], "method": m, "tokens_per_step": v["long_run"][i]}
                for m, v in data["methods"].items() for i, t in enumerate(data["trees"])]
    except (KeyError, IndexError, TypeError):
        return []


def find_runs(folder) -> list:
    """Real decoding runs under ``folder``.

    ``[{"path", "summary", "records"}]`` for every ``summary.json`` (or ``*summary*.json``) holding
    a ``runs`` list; ``records`` is the sibling ``records.jsonl`` path or None. Sorted by path.

    Parameters
    ----------
    folder : str or pathlib.Path

    Returns
    -------
    list
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(set(folder.rglob("summary.json")) | set(folder.rglob("*summary*.json"))):
        data = _read_json(path)
        if isinstance(data, dict) and isinstance(data.get("runs"), list):
            rec = path.with_name("records.jsonl")
            out.append({"path": str(path), "summary": data, "records": str(rec) if rec.is_file() else None})
        elif isinstance(data, dict) and isinstance(data.get("summaries"), dict):
            out.extend(_experiment_runs(path, data))
    return out


#: results folder -> (target, draft) for experiments whose argv names staged local files
_SMOLLM2 = ("SmolLM2-135M", "distilled 7M draft")
KNOWN_PAIRS = {"h200": _SMOLLM2, "smollm2": _SMOLLM2,  # results/h200 and results/h200/verifiers/smollm2
               "qwen": ("Qwen2.5-Coder-1.5B-Instruct", "Qwen2.5-Coder-0.5B-Instruct")}
#: per-node columns of ``nodes.npz`` that are not acceptance rates
_NODE_META = ("k", "tv", "hub_q", "hub_p", "temperature", "type", "p2", "p3")


def _experiment_runs(path: Path, data: dict) -> list:
    """Runs of a validation experiment (``benchmarks/device/experiment.py``): one per temperature
    (seed 0), its node table taken from the sibling ``nodes.npz`` (exact rates at real (p, q))."""
    import numpy as np

    meta = data.get("meta") or {}
    argv = meta.get("argv") or []
    pair = {"target": _arg(argv, "--target", "smollm2"), "draft": _arg(argv, "--draft", "smollm2-draft")}
    if "/" in pair["target"] and path.parent.name in KNOWN_PAIRS:  # staged files on the device: name the pair
        pair = dict(zip(("target", "draft"), KNOWN_PAIRS[path.parent.name]))
    tables: dict = {}
    if path.with_name("nodes.npz").is_file():
        with np.load(path.with_name("nodes.npz")) as z:
            k = z["k"] if "k" in z.files else np.full(len(z["temperature"]), 2)  # later drivers: two drafts only
            for t in sorted(set(z["temperature"].tolist())):
                m = (z["temperature"] == t) & (k == 2)
                means = {c: float(np.nanmean(z[c][m])) for c in z.files if c not in _NODE_META}
                tables[float(t)] = {"count": int(m.sum()), "mean": means}
    out, seen = [], set()
    for key, summary in data["summaries"].items():
        fields = dict(part.split("=") for part in key.split(","))
        if int(fields.get("seed", 0)) != 0:
            continue  # extra seeds of one tree: in the tables (analyze_experiment.py), not the figures
        t = float(fields["T"])
        seen.add(t)
        nodes = {"all": {"2": tables[t]}} if t in tables else {}
        out.append({"path": f"{path}#{key}", "records": None,
                    "summary": {**summary, "nodes": nodes, "meta": {"config": {**pair, "temperature": t}, "gpu": meta.get("gpu")}}})
    for t, table in tables.items():  # temperatures with a node table but no decoding runs
        if t not in seen:
            out.append({"path": f"{path}#T={t}", "records": None,
                        "summary": {"runs": [], "nodes": {"all": {"2": table}}, "meta": {"config": {**pair, "temperature": t}, "gpu": meta.get("gpu")}}})
    return out


def _arg(argv: list, flag: str, default: str) -> str:
    return argv[argv.index(flag) + 1] if flag in argv and argv.index(flag) + 1 < len(argv) else default


def run_label(summary: dict, default: str = "real", *, temperature: bool = True) -> str:
    """Short label of a run.

    "target <- draft, T = t, device" from its metadata (without the temperature when ``temperature``
    is False, to group runs of one model pair).

    Parameters
    ----------
    summary : dict
    default : str, optional
    temperature : bool, optional

    Returns
    -------
    str
    """
    meta = summary.get("meta") or {}
    cfg = meta.get("config") or {}
    models = meta.get("models") or {}
    target = models.get("target") or cfg.get("target")
    draft = models.get("draft") or cfg.get("draft")
    if not target:
        return default
    parts = [f"{_short(target)} <- {_short(draft)}"]
    if temperature and cfg.get("temperature") is not None:
        parts.append(f"T = {cfg['temperature']:g}")
    if meta.get("gpu") or meta.get("device"):
        parts.append(str(meta.get("gpu") or meta.get("device")))
    return ", ".join(parts)


def real_tokens_rows(runs) -> list:
    """Collect the tokens per step with 95% intervals per (run, tree, method): rows for the tree figure.

    Parameters
    ----------
    runs : list of dict
        As returned by :func:`find_runs`.

    Returns
    -------
    list
    """
    from spechub_theory.trees.shapes import Tree

    out = []
    for run in runs:
        label = run.get("label") or run_label(run["summary"])
        for r in run["summary"]["runs"]:
            tps = r.get("tokens_per_step") or {}
            try:
                nodes = Tree.from_name(r["tree"]).size
            except (ValueError, KeyError, TypeError):
                continue  # e.g. the "none" tree of plain sampling
            if tps.get("value") is None:
                continue
            out.append({"source": label, "tree": r["tree"], "nodes": nodes, "method": r["method"], "value": tps["value"],
                        "low": tps.get("low"), "high": tps.get("high"), "prompts": r.get("prompts")})
    return out


def real_acceptance_rows(runs, k: int = 2) -> list:
    """Mean exact node acceptance per (run, method) at k drafts, with the run's temperature.

    Parameters
    ----------
    runs : list of dict
        As returned by :func:`find_runs`.
    k : int, optional
        Drafts per node.

    Returns
    -------
    list
    """
    out = []
    for run in runs:
        summary = run["summary"]
        temperature = ((summary.get("meta") or {}).get("config") or {}).get("temperature")
        table = ((summary.get("nodes") or {}).get("all") or {}).get(str(k))
        if temperature is None or not table:
            continue
        label = run.get("pair_label") or run_label(summary, temperature=False)
        for method, mean in (table.get("mean") or {}).items():
            out.append({"source": label, "temperature": float(temperature), "method": method, "mean": mean,
                        "nodes": table.get("count"), "k": k})
    return out


def node_columns(records_path, k: int = 2) -> dict:
    """Per-node exact acceptance at k-draft nodes from a ``records.jsonl``: name -> list (None kept).

    Parameters
    ----------
    records_path : str or pathlib.Path
    k : int, optional
        Drafts per node.

    Returns
    -------
    dict
    """
    cols: dict = {}
    path = Path(records_path)
    if not path.is_file():
        return cols
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                nodes = json.loads(line).get("nodes") or {}
            except json.JSONDecodeError:
                continue
            keep = [i for i, kk in enumerate(nodes.get("k", [])) if kk == k]
            for name, values in (nodes.get("acceptance") or {}).items():
                cols.setdefault(name, []).extend(values[i] for i in keep)
    return cols


def _short(name) -> str:
    return str(name).rstrip("/").split("/")[-1].removesuffix(".gguf") if name else "?"


def _read_json(path: Path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
