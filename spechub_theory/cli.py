"""The ``spechub`` command line: one table of subcommands, each imported only when chosen.

Every subcommand lives beside the code it drives (``spechub bound`` in this package, ``spechub lp``
in ``lp``, ``spechub decode`` in ``empirical``, ``spechub report`` in ``figures``) and exposes two
functions: ``add_arguments(parser)`` and ``run(args) -> int``. The table below names them as
strings, so ``spechub bound`` never imports torch or matplotlib (this module imports no later
package statically; it resolves the string at run time).

Bad input is a :class:`ValueError` in the library; here it becomes one line
``spechub <cmd>: error: <message>`` on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

__all__ = ["COMMANDS", "main", "CLIError"]

#: subcommand -> (module implementing ``add_arguments`` and ``run``, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "bound": ("lp.cli_bound", "exact acceptance rates of every method for one (p, q, k)"),
    "simulate": ("spechub_theory.cli_simulate", "Monte Carlo verification: acceptance with intervals and a lossless test"),
    "tree": ("spechub_theory.cli_tree", "exact and simulated tokens per step on token trees with synthetic models"),
    "lp": ("lp.cli", "the optimal-transport LP for a draft law: optimum, certificate and plan"),
    "decode": ("empirical.cli_decode", "tree speculative decoding with real Hugging Face / GGUF models"),
    "audit": ("empirical.cli_audit", "prove or refute that a speculative sampler (transformers' or yours) is lossless"),
    "distill": ("empirical.cli_distill", "train a small draft model for a target by distillation"),
    "models": ("empirical.cli_models", "the model registry: list models, fetch one into the cache"),
    "report": ("figures.cli", "the main job: theory sweeps, tree tables, real-model run, figures and report"),
}


class CLIError(ValueError):
    """A user error detected by a subcommand (reported as one line, exit status 2)."""


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("spechub-theory")
    except Exception:  # pragma: no cover - running from a source tree without install
        return "0+unknown"


def build_parser(argv_command: str | None = None) -> argparse.ArgumentParser:
    """Build the top-level parser; only the module of ``argv_command`` is imported."""
    parser = argparse.ArgumentParser(
        prog="spechub",
        description="Theory of multi-draft speculative decoding, computable and checked. "
        "Method names everywhere: single, rrs, rrs_wor, kseq, spechub, khisti_is, optimal_iid, optimal_wor; "
        "sequence-level (spechub tree, spechub decode): block, traversal.",
        epilog="Examples:\n  spechub bound --p 0.4,0.4,0.2 --q 0.7,0.2,0.1 --k 2\n  spechub report --quick\n"
        "Run 'spechub <command> --help' for each command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="command")
    for name, (module_name, help_line) in COMMANDS.items():
        if name == argv_command:
            module = importlib.import_module(module_name)
            sp = sub.add_parser(
                name,
                help=help_line,
                description=(module.__doc__ or help_line).strip().splitlines()[0],
                epilog=getattr(module, "EPILOG", None),
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
            module.add_arguments(sp)
            sp.set_defaults(_run=module.run)
        else:
            sub.add_parser(name, help=help_line, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``spechub`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    if command is not None and command not in COMMANDS:
        command = None
    parser = build_parser(command)
    try:
        args = parser.parse_args(argv)
    except ImportError as exc:  # an optional extra is missing
        print(f"spechub: error: {exc} (install the matching extra, e.g. pip install 'spechub-theory[all]')", file=sys.stderr)
        return 2
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 0 if command is None and not argv else 2
    try:
        return int(args._run(args) or 0)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        msg = " ".join(str(exc).split())
        print(f"spechub {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # pragma: no cover - interactive
        print(f"spechub {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
