"""figures/ and ``spechub report``: every plot renders (Agg) from small data, the CSV beside each
figure holds the plotted numbers (recomputed with the theory functions), and ``--quick`` runs end
to end. Fast: the whole file runs in well under a minute on two cores."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from figures import sources  # noqa: E402
from figures.canvas import save_figure  # noqa: E402
from figures.gapmap import gap_map  # noqa: E402
from figures.llm_pairs import draw_logits  # noqa: E402
from figures.plot_acceptance import plot_acceptance_vs_temperature  # noqa: E402
from figures.plot_fraction import plot_optimum_fractions  # noqa: E402
from figures.plot_gap import plot_gap_map  # noqa: E402
from figures.plot_lp import plot_lp_timing  # noqa: E402
from figures.plot_trees import plot_tokens_per_step  # noqa: E402
from figures.report import ReportConfig, build_report  # noqa: E402
from figures.style import METHOD_STYLES, METHODS, NEWER_METHODS, OPTIMA  # noqa: E402
from figures.sweeps import optimum_fractions, temperature_sweep  # noqa: E402
from spechub_theory.acceptance import acceptance_rates  # noqa: E402
from spechub_cli import main  # noqa: E402

try:
    from lp import optimal_acceptance
except ImportError:  # the lp helper's package is not merged / installed: the optimum is skipped
    optimal_acceptance = None


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def files_of(saved):
    return [saved.png, saved.pdf, saved.csv, saved.json]


# -- import lightness ---------------------------------------------------------------------------
def test_import_figures_does_not_import_matplotlib():
    code = ("import sys, figures, spechub_cli.report, figures.report, figures.style, figures.sweeps;"
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_one_style_per_method_name():
    assert set(METHOD_STYLES) == set(METHODS) | set(NEWER_METHODS) | set(OPTIMA)
    colors = [METHOD_STYLES[m].color for m in METHODS + NEWER_METHODS[:-1]]  # optimal: black, as the optima
    assert len(set(colors)) == len(colors)
    with pytest.raises(ValueError, match="is not one of"):
        from figures.style import method_style

        method_style("rrsw")


# -- figure 1: acceptance vs temperature ----------------------------------------------------------
def test_acceptance_csv_equals_acceptance_rates(tmp_path):
    temps, noises, n, positions, seed = (0.5, 1.0), (1.0, 2.0), 40, 5, 11
    sweep = temperature_sweep(temps, noises, n=n, positions=positions, seed=seed)
    real = [{"source": "fake run", "temperature": 0.6, "method": "spechub", "mean": 0.7, "nodes": 10}]
    saved = save_figure(plot_acceptance_vs_temperature(sweep, real), tmp_path, "acc", rows=sweep.rows() + real)
    rows = read_csv(saved.csv)
    checked = 0
    for i, noise in enumerate(noises):
        logits = draw_logits(positions, n, noise=noise, rng=np.random.default_rng([seed, i]))
        for t in temps:
            p, q = logits.probs(t)
            expected = acceptance_rates(p, q, 2, methods=METHODS).acceptance  # the figure's methods
            if optimal_acceptance is not None:  # the optimum from the lp package itself
                expected.update({f"optimal_{d}": optimal_acceptance(p, q, 2, law=d) for d in ("iid", "wor")})
            for method, values in expected.items():
                row = next(r for r in rows if r["source"] == "synthetic" and float(r["noise"]) == noise
                           and float(r["temperature"]) == t and r["method"] == method)
                assert float(row["mean"]) == pytest.approx(float(np.mean(values)), abs=1e-12)
                checked += 1
    assert checked >= 2 * 2 * (len(METHODS) + (2 if optimal_acceptance is not None else 0))
    assert any(r["source"] == "fake run" for r in rows)
    assert json.loads(open(saved.json).read())["rows"][0]["method"] == rows[0]["method"]


def test_sweep_is_deterministic_given_the_seed():
    a = temperature_sweep((0.7,), (1.0,), n=30, positions=4, seed=3)
    b = temperature_sweep((0.7,), (1.0,), n=30, positions=4, seed=3)
    c = temperature_sweep((0.7,), (1.0,), n=30, positions=4, seed=4)
    assert a.rows() == b.rows() and a.rows() != c.rows()


# -- figure 2: gap map ----------------------------------------------------------------------------
def test_gap_map_bins_hold_the_plotted_means_and_the_bound_holds(tmp_path):
    gap = gap_map(300, n=60, bins=6, seed=1)
    saved = save_figure(plot_gap_map(gap, min_count=1), tmp_path, "gap", rows=gap.rows(min_count=1))
    rows = read_csv(saved.csv)
    assert sum(int(r["pairs"]) for r in rows) == 300
    binned = gap.binned("rrs")
    for r in rows:
        i, j = int(round(float(r["hub_q_low"]) * 6)), int(round(float(r["tv_low"]) * 6))
        assert float(r["mean_gap_spechub_minus_rrs"]) == pytest.approx(binned["mean"][i, j], abs=1e-12)
    # the gaps are exact acceptance differences (theory.md 3.6 P2, P3: no violation in the proven region)
    summary = gap.summary()
    assert summary["rrs"]["violations_in_proven_region"] == 0
    assert summary["rrs_wor"]["violations_in_proven_region"] == 0
    assert 0 < summary["rrs"]["pairs_in_proven_region"] < 300


# -- figure 3: fraction of the optimum ------------------------------------------------------------
def test_optimum_fraction_csv_holds_the_ratios(tmp_path):
    values = {"rrs": [0.5, 0.9, None], "spechub": [0.6, 1.0, 0.8], "optimal_iid": [0.8, 0.9, 1.0]}
    f = optimum_fractions(values, "toy")
    saved = save_figure(plot_optimum_fractions([f]), tmp_path, "frac", rows=f.rows())
    rows = read_csv(saved.csv)
    assert f.reference == "optimal_iid"
    assert [float(r["ratio"]) for r in rows if r["method"] == "rrs"] == pytest.approx([0.625, 1.0])
    assert [float(r["ratio"]) for r in rows if r["method"] == "spechub"] == pytest.approx([0.75, 1.0 / 0.9, 0.8])
    with pytest.raises(ValueError, match="no optimum"):
        optimum_fractions({"rrs": [0.5]}, "toy")


# -- figure 4: tokens per step --------------------------------------------------------------------
def test_paper_reference_holds_the_issue_numbers():
    ref = sources.paper_reference()
    assert "seed-notes" in ref["source"]
    rows = sources.paper_rows()
    got = {(r["tree"], r["method"]): r["tokens_per_step"] for r in rows}
    assert [got[(t, "spechub")] for t in ("2^2", "2^3", "2^4", "2^5")] == [1.616, 1.986, 2.246, 2.403]
    assert [got[(t, "rrs")] for t in ("2^2", "2^3", "2^4", "2^5")] == [1.554, 1.848, 2.051, 2.139]
    assert [got[(t, "rrs_wor")] for t in ("2^2", "2^3", "2^4", "2^5")] == [1.600, 1.969, 2.169, 2.315]
    assert [got[(t, "rrs")] for t in ("3^2", "3^3", "3^4")] == [1.603, 1.980, 2.166]
    assert [got[(t, "rrs_wor")] for t in ("3^2", "3^3", "3^4")] == [1.654, 2.090, 2.400]
    assert len(ref["records"]) == 12 * 4 * 3 + 10 * 3 * 2 + 2 * 3


def test_tokens_per_step_plot_and_csv(tmp_path):
    synthetic = [{"source": "syn", "tree": t, "nodes": n, "method": m, "tokens_per_step": v}
                 for t, n, m, v in [("2^2", 3, "rrs", 1.5), ("2^3", 7, "rrs", 1.8), ("2^2", 3, "spechub", 1.6)]]
    real = [{"source": "run", "tree": "2^3", "nodes": 7, "method": "spechub", "value": 2.0, "low": 1.9, "high": 2.1}]
    paper = sources.paper_rows()
    saved = save_figure(plot_tokens_per_step(synthetic, real, paper, paper_label="paper"), tmp_path, "tps",
                        rows=synthetic + real + paper)
    rows = read_csv(saved.csv)
    assert len(rows) == len(synthetic) + len(real) + len(paper)
    assert float(rows[0]["tokens_per_step"]) == 1.5
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_tokens_per_step()


# -- figure 5: LP timing --------------------------------------------------------------------------
def test_lp_timing_plot(tmp_path):
    rows = [{"k": k, "law": law, "n": n, "method": m, "seconds": 1e-4 * n ** e}
            for k in (2, 3) for law in ("iid", "wor") for n in (8, 16, 32) for m, e in (("reduced_lp", 2), ("fast", 1))]
    fast = [{"n": 32000, "k": 2, "drafts": "iid", "ms_per_position": 3.0}]
    saved = save_figure(plot_lp_timing(rows, fast_rows=fast, source="test"), tmp_path, "lp", rows=rows)
    assert len(read_csv(saved.csv)) == len(rows)


# -- the report -----------------------------------------------------------------------------------
def test_report_quick_end_to_end(tmp_path, capsys):
    out = tmp_path / "rep"
    assert main(["report", "--quick", "--quiet", "--out", str(out), "--results", str(tmp_path / "none")]) == 0
    results = json.loads((out / "results.json").read_text())
    assert (out / "index.md").is_file() and "spechub report" in (out / "index.md").read_text()
    parts = {p["name"]: p for p in results["parts"]}
    assert parts["real_model"]["status"] == "skipped"
    for name in ("acceptance_vs_temperature", "gap_map", "tokens_per_step"):
        assert parts[name]["status"] == "done", parts[name]["note"]
    for part in results["parts"]:
        if part["status"] == "done" and part["figure"]:
            for key in ("png", "pdf", "csv", "json"):
                assert (out / part["figure"][key]).stat().st_size > 0
    assert str(out / "index.md") in capsys.readouterr().out


def test_report_plots_committed_results(tmp_path):
    """A fake committed run (summary.json + records.jsonl) feeds the real-model panels."""
    run_dir = tmp_path / "results" / "h200" / "smol"
    run_dir.mkdir(parents=True)
    summary = {"meta": {"config": {"target": "smollm2", "draft": "layers:4", "temperature": 0.6}, "device": "cuda"},
               "runs": [{"tree": "2^3", "method": m, "prompts": 2, "tokens": 40, "steps": 20,
                         "tokens_per_step": {"value": v, "low": v - 0.1, "high": v + 0.1, "level": 0.95}}
                        for m, v in (("spechub", 2.0), ("rrs", 1.8))],
               "nodes": {"all": {"2": {"count": 3, "mean": {"spechub": 0.7, "rrs": 0.6, "optimal_iid": 0.8},
                                       "missing": {}, "mean_tv": 0.3, "mean_hub_q": 0.5, "mean_hub_p": 0.4}}}}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    nodes = {"k": [2, 2, 3], "acceptance": {"spechub": [0.7, 0.8, 0.5], "rrs": [0.6, 0.5, 0.4], "optimal_iid": [0.8, 0.9, 0.6]}}
    (run_dir / "records.jsonl").write_text(json.dumps({"nodes": nodes}) + "\n")
    config = ReportConfig.quick(results=str(tmp_path / "results" / "h200"), temperatures=(0.6,), noises=(1.0,),
                                vocab=40, positions=4, gap_pairs=64, gap_vocab=30, gap_bins=4, trees=("2^2",), tree_vocab=6)
    results = build_report(config, tmp_path / "rep", progress=False)
    parts = {p["name"]: p for p in results["parts"]}
    pair = next(p for name, p in parts.items() if name.startswith("tokens_per_step_"))  # committed: one figure per pair
    tps = read_csv(tmp_path / "rep" / pair["figure"]["csv"])
    assert {r["method"] for r in tps if r["kind"] == "measured"} == {"spechub", "rrs"}
    acc = read_csv(tmp_path / "rep" / parts["acceptance_vs_temperature"]["figure"]["csv"])
    assert any(r["source"] != "synthetic" and r["method"] == "spechub" and float(r["mean"]) == 0.7 for r in acc)
    frac = read_csv(tmp_path / "rep" / parts["optimum_fraction"]["figure"]["csv"])
    real = [float(r["ratio"]) for r in frac if r["method"] == "rrs" and not r["source"].startswith("synthetic")]
    assert real == pytest.approx([0.75, 0.5 / 0.9])


def test_report_gives_each_committed_pair_its_own_figure(tmp_path):
    """The committed H200 results (SmolLM2 in results/h200, Qwen2.5-Coder in results/h200/qwen): one
    tokens-per-step figure per pair, one panel per temperature, every method with its interval."""
    from figures.report import _part_pairs

    root = Path(__file__).resolve().parents[2] / "results" / "h200"
    if not (root / "qwen" / "experiment_summary.json").is_file():
        pytest.skip("committed H200 results not in this checkout")
    committed = sources.find_runs(root)
    for run in committed:
        run["label"] = sources.run_label(run["summary"])
        run["pair_label"] = sources.run_label(run["summary"], temperature=False)
    parts = _part_pairs(tmp_path, committed, lambda *a: None)
    assert sorted(p.name for p in parts) == ["tokens_per_step_qwen2_5_coder_1_5b_instruct", "tokens_per_step_smollm2_135m"]
    for part in parts:
        rows = read_csv(tmp_path / Path(part.figure["csv"]).name)
        measured = [r for r in rows if r["kind"] == "measured"]
        assert {r["source"] for r in measured} == {"T = 0.6", "T = 1"}
        verifiers = {"single", "block", "traversal", "optimal"}  # results/h200/verifiers/{qwen,smollm2}
        assert {r["method"] for r in measured} == {"spechub", "rrs", "rrs_wor"} | verifiers
        assert all(float(r["low"]) <= float(r["value"]) <= float(r["high"]) for r in measured)
