"""The main job: theory sweeps, synthetic tree table, a short real-model run, figures, ``index.md``, ``results.json``.

Convention: p = target, q = draft; k = 2 drafts per node in the acceptance figures; tokens per
step = accepted + 1. Every part that lacks an input (package, model, committed results) is
skipped with a note in the report, never an error. Deterministic given ``seed`` (timings aside).
"""

from __future__ import annotations

import json
import platform
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from spechub_theory.provenance import package_version

from . import sources
from .canvas import clean_json, save_figure
from .progress import Progress

__all__ = ["ReportConfig", "Part", "build_report", "FIGURE_DIR"]

FIGURE_DIR = "figures"  # inside the report folder
_STAGES = 6
_MAX_REAL_PANELS = 3  # real-model panels per figure; every run stays in the CSV


@dataclass(frozen=True)
class ReportConfig:
    """Sizes of every part of the report.

    The defaults are the full report (about five minutes on two cores), :meth:`quick` the one-minute
    version without the real model.
    """

    seed: int = 0
    device: str = "cpu"
    model: bool = True
    results: str | None = None  # folder of committed real-model results; default <repo>/results/h200
    temperatures: tuple = tuple(round(0.2 + 0.1 * i, 1) for i in range(14))  # 0.2 .. 1.5
    noises: tuple = (0.5, 1.0, 2.0)
    vocab: int = 2000
    positions: int = 200
    gap_pairs: int = 20_000
    gap_vocab: int = 1000
    gap_bins: int = 25
    fraction_temperatures: tuple = (0.6, 1.0)
    tree_vocab: int = 32
    trees: tuple = ("2^2", "2^3", "2^4", "2^5", "3^2", "3^3", "3^4")
    tree_methods: tuple = ("rrs", "rrs_wor", "kseq", "spechub")
    model_tree: str = "2^3"
    model_methods: tuple = ("spechub", "rrs", "rrs_wor")
    model_temperature: float = 0.6
    model_prompts: int = 2  # a smoke-size run: CPU decoding of a 135M model is slow on 2 cores
    model_new_tokens: int = 16

    @classmethod
    def quick(cls, **changes) -> "ReportConfig":
        """Small sweeps and no real model: under a minute.

        Parameters
        ----------
        **changes
            ReportConfig fields to change on top of the small sizes.
        """
        small = dict(model=False, temperatures=(0.3, 0.6, 1.0, 1.5), noises=(0.5, 2.0), vocab=300, positions=24,
                     gap_pairs=2048, gap_vocab=200, gap_bins=12, tree_vocab=10, trees=("2^2", "2^3", "2^4", "3^2", "3^3"))
        return cls(**{**small, **changes})


@dataclass(frozen=True)
class Part:
    """One section of the report.

    ``status`` "done" or "skipped", a ``note``, figure files and a JSON-ready ``summary``.
    """

    name: str
    title: str
    status: str
    note: str = ""
    seconds: float = 0.0
    figure: dict | None = None
    summary: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready dict.

        Returns
        -------
        dict
        """
        return asdict(self)


def build_report(config: ReportConfig, out_dir, *, progress: bool = True) -> dict:
    """Run every part, write figures (PNG, PDF, CSV, JSON), ``index.md`` and ``results.json``.

    Parameters
    ----------
    config : ReportConfig
    out_dir : str or pathlib.Path
    progress : bool, optional

    Returns
    -------
    dict, the content of ``results.json`` (config, environment, parts with status and notes).
    """
    out = Path(out_dir)
    fig_dir = out / FIGURE_DIR
    fig_dir.mkdir(parents=True, exist_ok=True)
    log = Progress(_STAGES, enabled=progress)
    results_dir = Path(config.results) if config.results else (sources.repo_root() or Path(".")) / "results" / "h200"
    parts = []

    log.stage("real model (SmolLM2 on CPU)")
    model_part, local_runs = _timed(_part_model, config, out, log)
    parts.append(model_part)
    committed = sources.find_runs(results_dir)
    for run in committed:
        run["label"] = sources.run_label(run["summary"], default=Path(run["path"]).parent.name)
        run["pair_label"] = sources.run_label(run["summary"], default=Path(run["path"]).parent.name, temperature=False)
        run["committed"] = True
    runs = local_runs + committed
    log(f"{len(committed)} committed run summaries under {results_dir}" if committed else f"no committed results under {results_dir}")

    log.stage("acceptance vs temperature (synthetic LLM-like pairs)")
    part, sweep = _timed(_part_temperature, config, fig_dir, runs, log)
    parts.append(part)
    log.stage("SpecHub - RRS gap map")
    parts.append(_timed(_part_gap, config, fig_dir, log)[0])
    log.stage("fraction of the optimum per node")
    parts.append(_timed(_part_fractions, config, fig_dir, sweep, runs, log)[0])
    log.stage("tokens per step vs tree size")
    parts.append(_timed(_part_trees, config, fig_dir, [r for r in runs if not r.get("committed")], log)[0])
    parts.extend(_part_pairs(fig_dir, committed, log))
    log.stage("LP vs fast formula timing")
    parts.append(_timed(_part_lp, config, fig_dir, log)[0])

    results = {
        "report": "spechub report",
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
        "results_dir": str(results_dir),
        "environment": _environment(),
        "convention": "p = target, q = draft; k = 2 drafts per node; tokens per step = accepted drafts + 1 per target forward",
        "parts": [p.to_dict() for p in parts],
    }
    results = clean_json(_relative(results, out))
    (out / "results.json").write_text(json.dumps(results, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    from .markdown import write_index

    write_index(out / "index.md", results)
    log(f"wrote {out / 'index.md'} and {out / 'results.json'}")
    return results


# -- parts -------------------------------------------------------------------------------------
def _part_model(config: ReportConfig, out: Path, log) -> tuple:
    title = "Short real-model run"
    if not config.model:
        return Part("real_model", title, "skipped", "skipped the real-model run (--quick or --no-model)"), []
    from .real_model import run_real_model

    run = run_real_model(out / f"real_model_seed{config.seed}", tree=config.model_tree, methods=config.model_methods,
                         temperature=config.model_temperature, num_prompts=config.model_prompts,
                         max_new_tokens=config.model_new_tokens, seed=config.seed, device=config.device, progress=log)
    if not run.ran:
        log(run.note)
        return Part("real_model", title, "skipped", run.note), []
    pair_label = f"SmolLM2-135M <- {run.draft}, {config.device} (this run)"
    label = f"SmolLM2-135M <- {run.draft}, T = {config.model_temperature:g}, {config.device} (this run)"
    records = str(Path(run.out) / "records.jsonl")
    summary = {"out": run.out, "draft": run.draft, "runs": run.summary.get("runs", []),
               "nodes": (run.summary.get("nodes") or {}).get("all", {})}
    return Part("real_model", title, "done", run.note, summary=summary), [
        {"path": str(Path(run.out) / "summary.json"), "summary": run.summary, "records": records, "label": label, "pair_label": pair_label}]


def _part_temperature(config: ReportConfig, fig_dir: Path, runs: list, log) -> tuple:
    from .plot_acceptance import plot_acceptance_vs_temperature
    from .sweeps import temperature_sweep

    sweep = temperature_sweep(config.temperatures, config.noises, n=config.vocab, positions=config.positions,
                              seed=config.seed, progress=log)
    real = sources.real_acceptance_rows(runs)
    fig = plot_acceptance_vs_temperature(sweep, real)
    saved = save_figure(fig, fig_dir, "acceptance_vs_temperature", rows=sweep.rows() + real,
                        data={"sweep": sweep.to_dict(), "real_source": "mean exact node acceptance of real runs (k = 2)"})
    notes = [f"{m}: {v}" for m, v in sweep.notes.items()]
    if not real:
        notes.append("no real-model node tables: the real panel is omitted")
    summary = {"table": _sweep_table(sweep), "real": real, "notes": sweep.notes}
    return Part("acceptance_vs_temperature", "Acceptance vs temperature", "done", "; ".join(notes), figure=saved.to_dict(),
                summary=summary), sweep


def _part_gap(config: ReportConfig, fig_dir: Path, log) -> tuple:
    from .gapmap import gap_map
    from .plot_gap import plot_gap_map

    gap = gap_map(config.gap_pairs, n=config.gap_vocab, bins=config.gap_bins, seed=config.seed, progress=log)
    min_count = 3
    saved = save_figure(plot_gap_map(gap, min_count=min_count), fig_dir, "gap_map", rows=gap.rows(min_count=min_count),
                        data={"params": gap.params, "summary": gap.summary(), "min_count": min_count})
    return Part("gap_map", "Where SpecHub beats RRS", "done", figure=saved.to_dict(),
                summary={"params": gap.params, **gap.summary()}), gap


def _part_fractions(config: ReportConfig, fig_dir: Path, sweep, runs: list, log) -> tuple:
    from .plot_fraction import plot_optimum_fractions
    from .sweeps import optimum_fractions

    title = "Fraction of the optimal acceptance"
    fractions, notes = [], []
    for t in config.fraction_temperatures:
        values = sweep.at_temperature(t)
        try:
            fractions.append(optimum_fractions(values, f"synthetic LLM-like, T = {t:g}\n(all noise levels)"))
        except ValueError as exc:
            notes.append(f"synthetic T = {t:g}: {exc}")
    for run in [r for r in runs if r.get("records")][:_MAX_REAL_PANELS]:
        cols = sources.node_columns(run["records"])
        if not cols:
            continue
        try:
            fractions.append(optimum_fractions(cols, run["label"].replace(", T", "\nT", 1)))
        except ValueError as exc:
            notes.append(f"{run['label']}: {exc}")
    if not any(run.get("records") for run in runs):
        notes.append("no real-model node records (records.jsonl): real panels omitted")
    if not fractions:
        return Part("optimum_fraction", title, "skipped", "; ".join(notes)), None
    saved = save_figure(plot_optimum_fractions(fractions), fig_dir, "optimum_fraction",
                        rows=[r for f in fractions for r in f.rows()],
                        data={"quantiles": {f.source: f.quantiles() for f in fractions}})
    summary = {"panels": [{"source": f.source, "reference": f.reference, "quantiles": f.quantiles()} for f in fractions]}
    return Part("optimum_fraction", title, "done", "; ".join(notes), figure=saved.to_dict(), summary=summary), fractions


def _part_trees(config: ReportConfig, fig_dir: Path, runs: list, log) -> tuple:
    from .plot_trees import plot_tokens_per_step
    from .tree_rows import synthetic_tree_table

    title = "Tokens per step vs tree size"
    notes = []
    paper = sources.paper_rows()
    paper_label = "paper (Llama-2-7B + llama-68m,\nCNN, T=0.6; seed-notes 4.1/4.2)"
    calibrate = next(({"tree": "2^2", "method": "rrs", "tokens_per_step": r["tokens_per_step"],
                       "what": "the paper's RRS on the 2^2 tree"} for r in paper if r["tree"] == "2^2" and r["method"] == "rrs"), None)
    synthetic, table = [], None
    try:
        log(f"exact tree DP: {len(config.trees)} trees x {len(config.tree_methods)} methods, vocabulary {config.tree_vocab}")
        table = synthetic_tree_table(config.trees, config.tree_methods, vocab=config.tree_vocab, seed=config.seed,
                                     calibrate=calibrate)
        synthetic = table.rows
    except ImportError as exc:
        notes.append(f"skipped the synthetic trees: spechub_theory.trees.exact is not available ({exc})")
    committed_path = (sources.repo_root() or Path(".")) / "results" / "synthetic_trees.json"
    committed = sources.committed_tree_rows(committed_path)
    if committed:
        synthetic = synthetic + committed
        log(f"plotting the committed table {committed_path}")
    real = sources.real_tokens_rows(runs)
    if not real:
        notes.append("no real-model run in this report (committed pairs have their own figures below)")
    shown = _first_sources(real, _MAX_REAL_PANELS, prefer="T = 0.6")
    if len(shown) < len({r["source"] for r in real}):
        notes.append(f"plotted {len(shown)} of {len({r['source'] for r in real})} real runs (T = 0.6 first); all are in the CSV")
    fig = plot_tokens_per_step(synthetic, [r for r in real if r["source"] in shown], paper, paper_label=paper_label)
    rows = ([{**r, "kind": "synthetic exact"} for r in synthetic] + [{**r, "kind": "measured"} for r in real]
            + [{**r, "kind": "paper", "source": "paper"} for r in paper])
    saved = save_figure(fig, fig_dir, "tokens_per_step", rows=rows,
                        data={"paper_source": sources.paper_reference()["source"],
                              "synthetic": table.to_dict() if table else None})
    summary = {"synthetic": table.to_dict() if table else None, "real": real, "paper": paper}
    return Part("tokens_per_step", title, "done", "; ".join(notes), figure=saved.to_dict(), summary=summary), None


def _part_pairs(fig_dir: Path, committed: list, log) -> list:
    """One figure per committed real model pair: tokens per step vs tree nodes per method, one panel
    per temperature, 95% intervals, the paper's points hollow (``tokens_per_step_<pair>.*``)."""
    from .plot_trees import plot_tokens_per_step

    paper = sources.paper_rows()
    paper_label = "paper (Llama-2-7B + llama-68m,\nCNN, T=0.6; seed-notes 4.1/4.2)"
    parts = []
    for pair in dict.fromkeys(r["pair_label"] for r in committed):
        t0 = time.perf_counter()
        runs = sorted((r for r in committed if r["pair_label"] == pair),
                      key=lambda r: (r["summary"].get("meta") or {}).get("config", {}).get("temperature") or 0.0)
        panels = []
        for run in runs:
            temperature = ((run["summary"].get("meta") or {}).get("config") or {}).get("temperature")
            label = f"T = {temperature:g}" if temperature is not None else run["label"]
            panels.append({**run, "label": label})
        real = sources.real_tokens_rows(panels)
        if not real:
            continue
        name = "tokens_per_step_" + _slug(pair.split(" <- ")[0])
        fig = plot_tokens_per_step(None, real, paper, paper_label=paper_label, title=f"Tokens per step, {pair}")
        saved = save_figure(fig, fig_dir, name, rows=[{**r, "pair": pair, "kind": "measured"} for r in real]
                            + [{**r, "kind": "paper", "source": "paper"} for r in paper])
        log(f"plotted {name} ({len(panels)} temperatures)")
        parts.append(Part(name, f"Tokens per step on a real pair: {pair}", "done", figure=saved.to_dict(),
                          seconds=time.perf_counter() - t0, summary={"pair": pair, "real": real}))
    return parts


def _slug(text: str) -> str:
    """``"Qwen2.5-Coder-1.5B <- 0.5B"`` -> ``"qwen2_5_coder_1_5b_0_5b"`` (a file-name stem)."""
    return "_".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def _part_lp(config: ReportConfig, fig_dir: Path, log) -> tuple:
    from .plot_lp import plot_lp_timing

    title = "LP vs fast formula: solve time"
    roots = [config.results and Path(config.results).parent, sources.repo_root(), Path.cwd()]
    bench = sources.find_lp_benchmark(roots)
    if bench is None:
        note = ("skipped: no LP benchmark JSON found (looked for " + ", ".join(sources.LP_BENCHMARK_PATHS)
                + "; produce it with benchmarks/bench_lp.py)")
        log(note)
        return Part("lp_timing", title, "skipped", note), None
    fig = plot_lp_timing(bench["rows"], fast_rows=bench["fast_rows"], source=bench["source"])
    saved = save_figure(fig, fig_dir, "lp_timing", rows=bench["rows"] + [{**r, "method": "fast (large n)"} for r in bench["fast_rows"]],
                        data={"benchmark": bench["path"], "source": bench["source"]})
    return Part("lp_timing", title, "done", f"from {bench['path']}", figure=saved.to_dict(),
                summary={"benchmark": bench["path"], "source": bench["source"]}), None


# -- helpers -----------------------------------------------------------------------------------
def _first_sources(rows: list, limit: int, *, prefer: str) -> list:
    """Up to ``limit`` distinct sources of ``rows``, those containing ``prefer`` first."""
    names = list(dict.fromkeys(r["source"] for r in rows))
    return sorted(names, key=lambda s: prefer not in s)[:limit]


def _timed(fn, *args):
    """Run a part; on an unexpected error return a skipped Part naming it (the report goes on)."""
    start = time.perf_counter()
    try:
        part, extra = fn(*args)
    except Exception as exc:  # noqa: BLE001 - a broken optional input must not sink the whole report
        name = fn.__name__.removeprefix("_part_")
        part, extra = Part(name, name.replace("_", " "), "skipped", f"failed: {type(exc).__name__}: {exc}"), None
        args[-1](part.note)
    return replace(part, seconds=round(time.perf_counter() - start, 2)), extra


def _sweep_table(sweep) -> dict:
    """Means at the temperatures nearest 0.6 and 1.0 for the middle noise level: name -> {T: mean}."""
    i = len(sweep.noises) // 2
    temps = np.asarray(sweep.temperatures)
    picks = sorted({int(np.argmin(np.abs(temps - t))) for t in (0.6, 1.0)})
    return {"noise": sweep.noises[i], "temperatures": [sweep.temperatures[j] for j in picks],
            "mean": {m: [float(sweep.mean(m)[i, j]) for j in picks] for m in sweep.values}}


def _environment() -> dict:
    import matplotlib

    return {"python": platform.python_version(), "numpy": np.__version__, "matplotlib": matplotlib.__version__,
            "machine": platform.machine(), "version": package_version()}


def _relative(obj, base: Path):
    """Paths under ``base`` written relative to it (so the report folder can be moved)."""
    if isinstance(obj, dict):
        return {k: _relative(v, base) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_relative(v, base) for v in obj]
    if isinstance(obj, str) and obj.startswith(str(base)) and len(obj) > len(str(base)):
        return str(Path(obj).relative_to(base))
    return obj
