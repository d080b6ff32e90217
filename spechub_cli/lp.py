"""The optimal-transport LP for one (p, q, k) and a draft law: optimum, min-cut certificate and plan.

Prints a short report, or with ``--json`` one JSON object (``lp.OptimumResult.to_dict()`` plus the
command's metadata); ``--plan FILE`` writes the optimal transport plan (the optimal verifier) as
CSV or JSON by extension. Source: theory.md 2.1-2.3, 3.4-3.5.
"""

from __future__ import annotations

import csv
import json
import sys

from spechub_theory.provenance import package_version

from .args import add_pq_arguments, load_pq, print_json

from lp.coupling import hub_coupling
from lp.result import OptimumResult, SolverError
from lp.solve import solve

__all__ = ["add_arguments", "run", "write_plan", "EPILOG"]

EPILOG = """examples:
  spechub lp --p 0.3,0.3,0.4 --q 0.6,0.3,0.1 --k 2 --law wor
  spechub lp --p p.npy --q q.npy --k 3 --law iid --solver cvxpy --json --plan plan.csv
  spechub lp --p 0.6,0.18,0.22,0 --q 0.32,0.1,0.3,0.28 --law hub --solver closed-form

The plan file has one row per nonzero entry: tuple index, drafts, output token, mass, accepted.
For large vocabularies use 'spechub bound' (the optimum alone, O(n log n)).
"""

LAWS = ("iid", "wor", "hub", "hubset")
CLI_SOLVERS = ("highs", "cvxpy", "closed-form")


def add_arguments(parser) -> None:
    """Add the arguments of ``spechub lp``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The parser to add the options to.
    """
    add_pq_arguments(parser)
    parser.add_argument("--k", type=int, default=2, help="drafts per node (default 2)")
    parser.add_argument("--law", choices=LAWS, default="iid", help="draft law (default iid)")
    parser.add_argument(
        "--solver", choices=CLI_SOLVERS, default="highs",
        help="highs: reduced LP (scipy); cvxpy: textbook LP; closed-form: the hub law's explicit plan (default highs)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a report")
    parser.add_argument("--plan", metavar="FILE", help="write the optimal plan to FILE (.csv or .json)")


def run(args) -> int:
    """Run ``spechub lp``; returns the exit status (2 for bad input, 1 if the solver fails).

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
        On bad input (the message names the rule): ``--plan`` must end in .csv or .json; or
        ``spechub lp`` takes a single (p, q) pair; use ``spechub bound`` for several positions; or
        ``--solver closed-form`` exists for ``--law hub`` (or hubset) only.
    """
    if args.plan is not None and not args.plan.endswith((".csv", ".json")):
        raise ValueError(f"`--plan` must end in .csv or .json; got {args.plan!r}.")
    p, q = load_pq(args)
    if p.ndim != 1 or q.ndim != 1:
        raise ValueError("`spechub lp` takes a single (p, q) pair; use `spechub bound` for several positions.")
    try:
        if args.solver == "closed-form":
            if args.law not in ("hub", "hubset"):
                raise ValueError("`--solver closed-form` exists for `--law hub` (or hubset) only.")
            result = hub_coupling(p, q, args.k)
        else:
            result = solve(p, q, args.k, law=args.law, solver=args.solver)
        result.check(atol=1e-8)
    except SolverError as exc:
        print(f"spechub lp: error: {exc}", file=sys.stderr)
        return 1
    if args.plan is not None:
        write_plan(result, args.plan)
    if args.json:
        out = {"command": "lp", "version": package_version(), **result.to_dict()}
        if args.plan is not None:
            out["plan_file"] = args.plan
        print_json(out)
    else:
        print(_report(result, args.plan))
    return 0


def write_plan(result: OptimumResult, path: str) -> None:
    """Write the plan's nonzero entries as CSV (``tuple,drafts,token,mass,accepted``) or JSON.

    Parameters
    ----------
    result : OptimumResult
    path : str
    """
    if path.endswith(".json"):
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(result.to_dict(plan=True), fh, indent=1)
        return
    e = result.entries()
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["tuple", "drafts", "token", "mass", "accepted"])
        for t, d, y, m, a in zip(e["tuple"], e["drafts"], e["token"], e["mass"], e["accepted"]):
            writer.writerow([int(t), " ".join(map(str, d.tolist())), int(y), repr(float(m)), int(a)])


def _report(result: OptimumResult, plan_path) -> str:
    cut = result.certificate
    lines = [
        f"draft law {result.draft_law}, k = {result.support.tuples.shape[1]}, n = {len(result.p)}, "
        f"solver {result.solver}: {result.status}",
        f"optimal acceptance alpha* = {result.value:.9f}",
        f"certificate A = {{{', '.join(map(str, cut.tokens.tolist()))}}}: "
        f"p(A) + Q(S not within A) = {cut.p_mass:.6f} + {cut.uncovered:.6f} = {cut.value:.9f}",
        f"plan: {result.plan.nnz} nonzero entries over {len(result.support.mass)} draft tuples"
        + (f", written to {plan_path}" if plan_path else " (write it with --plan FILE)"),
    ]
    return "\n".join(lines)
