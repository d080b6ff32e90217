"""Side-by-side runs of a benchmark script in two checkouts: alternating subprocesses, case by case.

Machines are noisy (this project's VMs vary up to 2x between runs), so a before/after claim is
measured in one run: each round runs every (case, batch) once per checkout, alternating, and the
caller keeps the best round. Used by ``bench_host.py`` and ``bench_verify_kernels.py``; :func:`modes` and :func:`write_runs` by the one-process benchmarks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

#: this checkout (the repository root above benchmarks/)
HERE = str(Path(__file__).resolve().parents[1])


def ints(text: str) -> list:
    """Integers of a comma list ("1,16" -> [1, 16]).

    Parameters
    ----------
    text : str

    Returns
    -------
    list of int
    """
    return [int(x) for x in text.split(",")]


def wanted(name: str, cases) -> bool:
    """Whether case ``name`` is in the comma list ``cases`` (every case when None).

    Parameters
    ----------
    name : str
    cases : str or None

    Returns
    -------
    bool
    """
    return cases is None or name in cases.split(",")


def median_us(values) -> float:
    """The median of ``values`` (seconds) in microseconds, to 0.1.

    Parameters
    ----------
    values : sequence of float

    Returns
    -------
    float
    """
    v = sorted(values)
    return round(1e6 * v[len(v) // 2], 1)


def modes(compile: bool) -> list:
    """(name, wrap) pairs: ``eager`` (the function as it is), then, with ``compile``, ``inductor``
    (``torch.compile(fn, backend="inductor", dynamic=False)``).

    Parameters
    ----------
    compile : bool

    Returns
    -------
    list of (str, callable)
    """
    import torch

    out = [("eager", lambda fn: fn)]
    if compile:
        out.append(("inductor", lambda fn: torch.compile(fn, backend="inductor", dynamic=False)))
    return out


def write_runs(out, runs: list, device: str, **settings) -> None:
    """Write ``{"meta", "runs"}`` to ``out`` (nothing when it is None): the settings, torch's version
    and threads, the host, the GPU's name on CUDA and the UTC minute.

    Parameters
    ----------
    out : str or Path or None
    runs : list of dict
    device : str
    **settings
        The benchmark's own settings, recorded in ``meta``.
    """
    import platform
    import time

    import torch

    if out is None:
        return
    meta = {"device": device, **settings, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "host": platform.processor() or platform.machine(),
            "gpu": torch.cuda.get_device_name() if str(device).startswith("cuda") else None,
            "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime())}
    Path(out).write_text(json.dumps({"meta": meta, "runs": runs}, indent=1) + "\n")


def alternate(script: str, names, batches, *, against: str, repeats: int, cases=None, extra=()):
    """Run ``script --code C --json --cases NAME --batch-sizes B *extra`` for old and new, alternating.

    Parameters
    ----------
    script : str
        The benchmark script (its ``__file__``); it prints one JSON row as its last line.
    names : iterable of str
        The script's case names.
    batches : iterable of int
    against : str
        The old checkout (the new one is :data:`HERE`); each subprocess imports from its own.
    repeats : int
        Rounds.
    cases : str or None, optional
        A comma list restricting the cases.
    extra : sequence of str, optional
        More arguments for the script.

    Yields
    ------
    tuple
        (label "old" or "new", case name, batch, the row as a dict), round by round.
    """
    for _ in range(repeats):
        for batch in batches:
            for name in names:
                if not wanted(name, cases):
                    continue
                for label, code in (("old", against), ("new", HERE)):
                    cmd = [sys.executable, script, "--code", code, "--json", "--cases", name, "--batch-sizes", str(batch),
                           *extra]
                    done = subprocess.run(cmd, env=dict(os.environ, PYTHONPATH=code), check=True, capture_output=True,
                                          text=True)
                    yield label, name, batch, json.loads(done.stdout.splitlines()[-1])


def parser(doc: str, *, repeats: int):
    """An argument parser with the options every side-by-side benchmark takes.

    ``--code`` (the checkout to import from), ``--against`` (an old checkout: compare),
    ``--batch-sizes``, ``--cases``, ``--repeats`` (rounds of alternation) and ``--json``.

    Parameters
    ----------
    doc : str
        The script's module docstring (its first line describes the script).
    repeats : int
        Default of ``--repeats``.

    Returns
    -------
    argparse.ArgumentParser
    """
    import argparse

    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--code", default=HERE, help="checkout to import empirical from")
    p.add_argument("--against", default=None, help="another checkout: compare, alternating subprocesses")
    p.add_argument("--batch-sizes", default="1,16")
    p.add_argument("--cases", default=None, help="comma-separated case names (default: all)")
    p.add_argument("--repeats", type=int, default=repeats, help="with --against: rounds of alternation (the best kept)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    return p
