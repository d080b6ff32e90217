"""Exact and simulated tokens per step of tree speculative decoding on a synthetic model pair.

``spechub tree`` builds a seeded synthetic target/draft pair (:mod:`spechub_theory.trees.synthetic`),
computes the exact long-run tokens per step of each method on a token tree
(:mod:`spechub_theory.trees.exact`) and checks it by simulating decoding runs
(:mod:`spechub_theory.trees.simulation`). Tokens per step = accepted drafts + 1.
"""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path

from figures.sources import paper_mean_gaps
from spechub_theory.methods import get_method
from spechub_theory.provenance import run_metadata
from spechub_theory.trees.exact import positional_model, tokens_per_step_table
from spechub_theory.trees.sequence_rules import get_tree_method
from spechub_theory.trees.shapes import Tree
from spechub_theory.trees.simulation import BURN_IN, CHAINS, simulate_tree_decoding
from spechub_theory.trees.synthetic import calibrate_mismatch, make_pair
from spechub_theory.trees.cost import check_exact_cost, check_tree_name, exact_tokens_per_step

__all__ = ["add_arguments", "run", "tree_report", "table_report", "EPILOG", "DEFAULT_METHODS", "DEFAULT_STEPS"]

#: methods compared by default (``single`` runs on the chain of the tree's depth when added)
DEFAULT_METHODS = ("rrs", "rrs_wor", "kseq", "spechub")
#: simulated steps per method by default: about a second per method on one core
DEFAULT_STEPS = 2000
#: runs of at least this many steps report progress on stderr
PROGRESS_STEPS = 10_000

EPILOG = """Examples:
  spechub tree --tree 2^4 --vocab 50 --mismatch 0.4 --json
  spechub tree --tree 3^3 --acceptance 0.6 --methods rrs,rrs_wor,spechub --steps 20000 --seed 1
  spechub tree --tree 2,1,1,2 --vocab 20 --order 2 --steps 0      (exact values only)
  spechub tree --tree chain-3 --methods single,block,traversal --steps 0 --json
                                                                   (sequence-level verifiers)
  spechub tree --tree 5^6 --no-exact --steps 2000                  (too large for exact values)
  spechub tree --trees 2^2,2^3,2^4,2^5 --acceptance 0.6 --out results/synthetic_trees.json
                                                                   (exact table over trees, no simulation)

"exact" is the long-run tokens per step of a decoding run (contexts weighted by the stationary
law of the step-start context chain); "simulated" is the mean over --runs independent runs with
a Student t interval on the run means."""

_PAIR_DEFAULTS = {k: v.default for k, v in inspect.signature(make_pair).parameters.items()}


def add_arguments(parser) -> None:
    """Register the options of ``spechub tree``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The parser to add the options to.
    """
    d = _PAIR_DEFAULTS
    parser.add_argument("--tree", default="2^4", help="'k^d' (e.g. 2^4, 3^3), 'chain-L' or a branching list '2,1,1,2' (default 2^4)")
    parser.add_argument("--trees", default=None, help="table mode: comma-separated 'k^d' names, e.g. 2^2,2^3,2^4 (exact values, no simulation)")
    parser.add_argument("--vocab", type=int, default=d["vocab"], help=f"vocabulary size (default {d['vocab']})")
    parser.add_argument("--order", type=int, default=d["order"], help=f"1 = bigram, 2 = trigram (default {d['order']})")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--mismatch", type=float, default=None, help=f"draft noise scale (default {d['mismatch']})")
    group.add_argument("--acceptance", type=float, default=None, help="calibrate the mismatch to this mean single-draft acceptance 1 - TV")
    parser.add_argument("--zipf", type=float, default=d["zipf"], help=f"Zipf exponent of the logit profile (default {d['zipf']})")
    parser.add_argument("--spread", type=float, default=d["spread"], help=f"logit noise of the target (default {d['spread']})")
    parser.add_argument("--temperature", type=float, default=d["temperature"], help="temperature of both models (default 1)")
    parser.add_argument("--draft-temperature", type=float, default=d["draft_temperature"], help="extra temperature factor of the draft (default 1)")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS), help=f"comma-separated methods (default {','.join(DEFAULT_METHODS)}; 'single' uses the chain)")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"simulated steps per method, 0 = exact only (default {DEFAULT_STEPS})")
    parser.add_argument("--no-exact", action="store_true", help="simulation only: skip the exact values (for trees too large to compute them exactly)")
    parser.add_argument("--runs", type=int, default=CHAINS, help=f"independent decoding runs the steps are split over (default {CHAINS})")
    parser.add_argument("--seed", type=int, default=d["seed"], help="seed of the model pair and of the simulation (default 0)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--out", default=None, help="also write the JSON to this file")


def tree_report(
    tree_name: str, methods, *, steps: int = DEFAULT_STEPS, runs: int = CHAINS, seed: int = 0, acceptance=None,
    progress=None, exact: bool = True, announce=None, **pair_kwargs,
) -> dict:
    """The JSON-ready result of ``spechub tree`` (see the command's epilog).

    ``pair_kwargs`` go to :func:`~spechub_theory.trees.synthetic.make_pair`; with ``acceptance`` the
    mismatch is calibrated first (:func:`~spechub_theory.trees.synthetic.calibrate_mismatch`). Methods
    are node-level (``rrs``, ``spechub``, ...) or sequence-level (``block``, ``traversal``). The
    cost of every exact value is checked before any work (:func:`~spechub_theory.trees.cost.check_exact_cost`:
    a ValueError with the limit and the alternative when it cannot finish); ``announce(line)``
    receives the cost of each exact computation above a few seconds; ``exact=False`` skips them.

    Parameters
    ----------
    tree_name : str
    methods : sequence of str
    steps : int, optional
    runs : int, optional
    seed : int, optional
    acceptance : float, optional
        Single-draft acceptance 1 - TV to calibrate the pair's mismatch to.
    progress : callable, optional
    exact : bool, optional
    announce : callable, optional
    **pair_kwargs
        Passed to :func:`~spechub_theory.trees.synthetic.make_pair`.

    Returns
    -------
    dict

    Raises
    ------
    ValueError
        When an exact value cannot finish within its cost limit, or on a bad tree, method or pair.
    """
    check_tree_name(tree_name)
    tree = Tree.from_name(tree_name)
    names = [get_tree_method(m)[0].NAME for m in methods]
    if acceptance is not None:
        pair_kwargs["mismatch"] = calibrate_mismatch(acceptance, seed=seed, **pair_kwargs)
    pair = make_pair(seed=seed, **pair_kwargs)
    costs = check_exact_cost(tree, names, pair.vocab, pair.num_contexts) if exact else [None] * len(names)
    cache: dict = {}
    out = {"tree": tree_name, "nodes": tree.size, "depth": tree.depth, "pair": pair.to_dict(), "methods": {}}
    for i, (name, cost) in enumerate(zip(names, costs)):
        row = {}
        if exact:
            slow = cost.slow
            if announce is not None and slow:
                announce(cost.message())
            res = exact_tokens_per_step(
                tree, name, pair, outcomes=cache,
                progress=(lambda done, total, name=name: progress(f"{name} (exact)", done, total, "contexts")) if progress and slow else None,
            )
            node_level = getattr(get_tree_method(name)[0], "tree_rule", None) is None
            row = {
                "exact": res.long_run,
                "exact_target_average": res.target_average,
                "positional_model": positional_model(tree, name, pair, weights=res.target_law, outcomes=cache) if node_level else None,
                "per_level_acceptance": res.per_level_acceptance(),
            }
            if res.tree != tree:
                row["tree_used"] = f"chain-{res.tree.depth}"
        if steps > 0:
            sim = simulate_tree_decoding(
                tree, name, pair, steps, runs=min(runs, steps), rng=seed + 1 + i,
                progress=(lambda done, total, name=name: progress(name, done, total)) if progress and steps >= PROGRESS_STEPS else None,
            )
            ci = sim.confidence_interval()
            row.update(
                simulated=sim.mean,
                ci95=ci.to_list(),
                ci_method=ci.how,
                per_level_acceptance_simulated=sim.per_level_acceptance(),
                steps=sim.steps,
            )
        out["methods"][name] = row
    out["notes"] = {
        "tokens_per_step": "accepted drafts + 1 (bonus or residual token), per target forward",
        "exact": "long-run value: per-context exact DP weighted by the stationary law of the step-start context chain",
        "exact_target_average": "per-context exact DP weighted by the target chain's stationary context law",
        "positional_model": "Sequoia positional model 1 + sum_v prod P_r with P_r averaged over the target's context law",
        "simulated": f"runs start from the target's stationary context law, {BURN_IN} burn-in steps each",
    }
    return out


def table_report(trees, methods, *, seed: int = 0, acceptance=None, **pair_kwargs) -> dict:
    """Exact long-run tokens per step over several trees (:func:`tokens_per_step_table`).

    With the SpecHub-minus-baseline gaps next to the authors' mean gaps
    (:func:`figures.sources.paper_mean_gaps`).

    Parameters
    ----------
    trees : sequence of str
    methods : sequence of str
    seed : int, optional
    acceptance : float, optional
        Single-draft acceptance 1 - TV to calibrate the pair's mismatch to.
    **pair_kwargs
        Passed to :func:`~spechub_theory.trees.synthetic.make_pair`.

    Returns
    -------
    dict

    Raises
    ------
    ValueError
        On bad input (the message names the rule): ``--trees`` (table mode) runs node-level methods;
        for ... use --tree with one tree at a time.
    """
    if acceptance is not None:
        pair_kwargs["mismatch"] = calibrate_mismatch(acceptance, seed=seed, **pair_kwargs)
    pair = make_pair(seed=seed, **pair_kwargs)
    for m in methods:
        if getattr(get_tree_method(m)[0], "tree_rule", None) is not None:
            raise ValueError(f"`--trees` (table mode) runs node-level methods; for {m!r} use --tree with one tree at a time.")
    names = [get_method(m).NAME for m in methods]
    for t in trees:
        check_tree_name(t)
        check_exact_cost(Tree.from_name(t), names, pair.vocab, pair.num_contexts)
    table = tokens_per_step_table(pair, list(trees), names)
    table["pair"] = pair.to_dict()
    paper = paper_mean_gaps()
    gaps = {}
    for base in ("rrs", "rrs_wor"):
        if "spechub" in names and base in names:
            h, b = table["methods"]["spechub"]["long_run"], table["methods"][base]["long_run"]
            gaps[f"spechub-{base}"] = {
                "synthetic": [x - y for x, y in zip(h, b)],
                "paper_mean": [paper[f"spechub-{base}"].get(t) for t in table["trees"]],
            }
    table["gaps"] = gaps
    return table


def run(args) -> int:
    """Run ``spechub tree``; prints JSON (``--json``) or a table; returns the exit status.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed command-line arguments.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        On bad input (the message names the rule): ``--methods`` must name at least one method; or
        ``--steps`` must be >= 0 and ``--runs`` >= 1; or ``--no-exact`` with ``--steps 0`` leaves
        nothing to compute; give --steps N.
    """
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    if not methods:
        raise ValueError("`--methods` must name at least one method.")
    if args.steps < 0 or args.runs < 1:
        raise ValueError(f"`--steps` must be >= 0 and `--runs` >= 1; got {args.steps} and {args.runs}.")
    if args.no_exact and args.steps == 0:
        raise ValueError("`--no-exact` with `--steps 0` leaves nothing to compute; give --steps N.")
    pair_kwargs = dict(
        vocab=args.vocab, order=args.order, zipf=args.zipf, spread=args.spread,
        temperature=args.temperature, draft_temperature=args.draft_temperature,
    )
    if args.acceptance is None:
        pair_kwargs["mismatch"] = _PAIR_DEFAULTS["mismatch"] if args.mismatch is None else args.mismatch

    shown: dict = {}

    def progress(name, done, total, unit="steps"):  # one line per tenth of each method's run
        tenth = 10 * done // total
        if shown.get(name) != tenth:
            shown[name] = tenth
            print(f"spechub tree: {name}: {done}/{total} {unit}", file=sys.stderr, flush=True)

    if args.trees:
        trees = [t.strip() for t in args.trees.split(",") if t.strip()]
        report = table_report(trees, methods, seed=args.seed, acceptance=args.acceptance, **pair_kwargs)
        render = _trees_table
    else:
        report = tree_report(
            args.tree, methods, steps=args.steps, runs=args.runs, seed=args.seed, acceptance=args.acceptance,
            progress=progress, exact=not args.no_exact,
            announce=lambda line: print(f"spechub tree: {line}", file=sys.stderr, flush=True), **pair_kwargs,
        )
        render = _table
    report["meta"] = run_metadata("spechub tree", seed=args.seed)
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(text if args.json else render(report))
    return 0


def _table(report: dict) -> str:
    pair = report["pair"]
    lines = [
        f"tree {report['tree']} ({report['nodes']} nodes), vocab {pair['vocab']}, order {pair['order']}, "
        f"mismatch {pair['params']['mismatch']:.4g}, mean single-draft acceptance {pair['mean_acceptance']:.4f}",
        f"{'method':<9} {'exact':>8} {'simulated':>10} {'ci95':>19} {'positional':>11}  per-level acceptance (exact)",
    ]
    for name, row in report["methods"].items():
        sim = f"{row['simulated']:.4f}" if "simulated" in row else "-"
        ci = f"[{row['ci95'][0]:.3f}, {row['ci95'][1]:.3f}]" if "ci95" in row else "-"
        exact = f"{row['exact']:.4f}" if "exact" in row else "-"
        positional = f"{row['positional_model']:.4f}" if row.get("positional_model") is not None else "-"
        levels = ", ".join(f"{a:.3f}" for a in row.get("per_level_acceptance", row.get("per_level_acceptance_simulated", [])))
        lines.append(f"{name:<9} {exact:>8} {sim:>10} {ci:>19} {positional:>11}  {levels}")
    return "\n".join(lines)


def _trees_table(report: dict) -> str:
    pair = report["pair"]
    lines = [
        f"exact long-run tokens per step; vocab {pair['vocab']}, order {pair['order']}, "
        f"mismatch {pair['params']['mismatch']:.4g}, mean single-draft acceptance {pair['mean_acceptance']:.4f}",
        f"{'method':<15} " + " ".join(f"{t + ' (' + str(n) + ')':>11}" for t, n in zip(report["trees"], report["nodes"])),
    ]
    for name, rows in report["methods"].items():
        lines.append(f"{name:<15} " + " ".join(f"{v:>11.4f}" for v in rows["long_run"]))
    for name, gap in report["gaps"].items():
        lines.append(f"{name:<15} " + " ".join(f"{v:>+11.3f}" for v in gap["synthetic"]) + "   (synthetic)")
        lines.append(f"{'':<15} " + " ".join(f"{v:>+11.3f}" if v is not None else f"{'-':>11}" for v in gap["paper_mean"]) + "   (paper, mean)")
    return "\n".join(lines)
