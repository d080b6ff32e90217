"""Shared command-line arguments: reading p, q (or logits) from the command line or from files.

``--p``/``--q`` take comma- or space-separated numbers, or a path to a ``.npy``, ``.json`` or
text file; ``--logits`` with ``--temperature``/``--top-p`` takes target and draft logits instead.
"""

from __future__ import annotations

import json
import os

import numpy as np

from spechub_theory.distributions import check_pq, probs_from_logits

__all__ = ["add_pq_arguments", "load_pq", "read_vector", "print_json"]


def add_pq_arguments(parser) -> None:
    """Add ``--p``, ``--q``, ``--logits``, ``--draft-logits``, ``--temperature``, ``--top-p``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The parser to add the options to.
    """
    g = parser.add_argument_group("target p and draft q")
    g.add_argument("--p", metavar="P", help="target distribution: '0.4,0.4,0.2' or a .npy/.json/.txt file")
    g.add_argument("--q", metavar="Q", help="draft distribution, same forms as --p")
    g.add_argument("--logits", metavar="Z", help="target logits instead of --p (same forms)")
    g.add_argument("--draft-logits", metavar="Z", help="draft logits instead of --q (same forms)")
    g.add_argument("--temperature", type=float, default=1.0, help="temperature for logits (0 = greedy; default 1)")
    g.add_argument("--top-p", type=float, default=1.0, help="nucleus truncation for logits (default 1 = off)")


def read_vector(text: str, name: str) -> np.ndarray:
    """A float vector (or matrix, one row per position) from a literal list or a file path.

    Parameters
    ----------
    text : str
    name : str

    Returns
    -------
    numpy.ndarray

    Raises
    ------
    ValueError
        On bad input (the message names the rule): ``--...`` is required; or ``--...``: file ...
        does not exist.
    """
    if text is None:
        raise ValueError(f"`--{name}` is required.")
    text = str(text).strip()
    if os.path.exists(text):
        if text.endswith(".npy"):
            return np.load(text)
        with open(text, encoding="utf-8") as fh:
            body = fh.read()
        if text.endswith(".json"):
            data = json.loads(body)
            if isinstance(data, dict):
                data = data.get(name, data.get("p" if name in ("p", "logits") else "q"))
            return np.asarray(data, dtype=np.float64)
        return _parse_numbers(body, name, multiline=True)
    if text.endswith((".npy", ".json", ".txt", ".csv")):
        raise ValueError(f"`--{name}`: file {text!r} does not exist.")
    return _parse_numbers(text, name, multiline=False)


def _parse_numbers(body: str, name: str, *, multiline: bool) -> np.ndarray:
    rows = [line for line in body.replace(";", "\n").splitlines() if line.strip() and not line.lstrip().startswith("#")]
    try:
        parsed = [[float(x) for x in line.replace(",", " ").split()] for line in rows]
    except ValueError:
        raise ValueError(f"`--{name}` must be numbers separated by commas or spaces, or a file path; got {body[:60]!r}.") from None
    if not parsed:
        raise ValueError(f"`--{name}` is empty.")
    if len(parsed) == 1:
        return np.asarray(parsed[0])
    if len({len(r) for r in parsed}) != 1:
        raise ValueError(f"`--{name}`: rows have different lengths.")
    return np.asarray(parsed)


def load_pq(args) -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 (p, q) from parsed arguments (probabilities or logits).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed command-line arguments.

    Returns
    -------
    tuple[numpy.ndarray, numpy.ndarray]

    Raises
    ------
    ValueError
        On bad input (the message names the rule): Give either ``--p`` or ``--logits``, not both; or
        give either ``--q`` or ``--draft-logits``, not both.
    """
    if args.logits is not None and args.p is not None:
        raise ValueError("give either `--p` or `--logits`, not both.")
    if args.draft_logits is not None and args.q is not None:
        raise ValueError("give either `--q` or `--draft-logits`, not both.")
    p = (probs_from_logits(read_vector(args.logits, "logits"), args.temperature, args.top_p)
         if args.logits is not None else read_vector(args.p, "p"))
    q = (probs_from_logits(read_vector(args.draft_logits, "draft-logits"), args.temperature, args.top_p)
         if args.draft_logits is not None else read_vector(args.q, "q"))
    return check_pq(p, q)


def print_json(obj) -> None:
    """Print one JSON object on stdout (NaN-free by construction: raise if one slipped in).

    Parameters
    ----------
    obj : object
        A JSON-ready object (e.g. from :func:`figures.canvas.clean_json`).
    """
    print(json.dumps(obj, allow_nan=False))
