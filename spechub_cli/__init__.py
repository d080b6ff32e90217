"""The ``spechub`` command line: one table of subcommands, each imported only when chosen.

This package sits on top of every other one (spechub_theory < lp < empirical < figures <
spechub_cli): one module per command (:mod:`.bound`, :mod:`.simulate`, :mod:`.tree`, :mod:`.lp`,
:mod:`.decode`, :mod:`.distill`, :mod:`.report`), each exposing ``add_arguments(parser)`` and
``run(args) -> int``; :mod:`.args` reads p and q; :mod:`spechub_theory.provenance` gives the
run metadata. The table below names the command modules, so ``spechub bound`` never imports
torch or matplotlib.

Bad input is a :class:`ValueError` in the library; here it becomes one line
``spechub <cmd>: error: <message>`` on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from spechub_theory.provenance import package_version

__all__ = ["COMMANDS", "main", "CLIError"]

#: subcommand -> (module implementing ``add_arguments`` and ``run``, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "bound": ("spechub_cli.bound", "exact acceptance rates of every method for one (p, q, k)"),
    "simulate": ("spechub_cli.simulate", "Monte Carlo verification: acceptance with intervals and a lossless test"),
    "tree": ("spechub_cli.tree", "exact and simulated tokens per step on token trees with synthetic models"),
    "lp": ("spechub_cli.lp", "the optimal-transport LP for a draft law: optimum, certificate and plan"),
    "decode": ("spechub_cli.decode", "tree speculative decoding with real Hugging Face / GGUF models"),
    "sweep": ("spechub_cli.sweep", "a validation sweep from a TOML file, on one process or many GPUs/nodes with torchrun"),
    "audit": ("spechub_cli.audit", "prove or refute that a speculative sampler (transformers' or yours) is lossless"),
    "distill": ("spechub_cli.distill", "train a small draft model for a target by distillation"),
    "models": ("spechub_cli.models", "the model registry: list models, fetch one into the cache"),
    "report": ("spechub_cli.report", "the main job: theory sweeps, tree tables, real-model run, figures and report"),
}


class CLIError(ValueError):
    """A user error detected by a subcommand (reported as one line, exit status 2)."""


def build_parser(argv_command: str | None = None) -> argparse.ArgumentParser:
    """Build the top-level parser; only the module of ``argv_command`` is imported.

    Parameters
    ----------
    argv_command : str or None, optional

    Returns
    -------
    argparse.ArgumentParser
    """
    parser = argparse.ArgumentParser(
        prog="spechub",
        description="Theory of multi-draft speculative decoding, computable and checked. "
        "Method names everywhere: single, rrs, rrs_wor, kseq, spechub, khisti_is, optimal (verifiers); optimal_iid, optimal_wor (the LP optima); "
        "sequence-level (spechub tree, spechub decode): block, traversal.",
        epilog="Examples:\n  spechub bound --p 0.4,0.4,0.2 --q 0.7,0.2,0.1 --k 2\n  spechub report --quick\n"
        "Run 'spechub <command> --help' for each command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
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
    """Entry point of the ``spechub`` console script; returns the exit status.

    Parameters
    ----------
    argv : list[str] or None, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
    """
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
