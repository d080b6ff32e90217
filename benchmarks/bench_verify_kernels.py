"""Benchmark: aten ops launched and CPU time of one call of the fast decoder's verification piece (issue 16).

Convention: the *verification piece* is the workspace's ``verify`` :class:`empirical.graphs.Graphed`
(:meth:`empirical.fast_workspace.Workspace._verify`: the device walk of the node rules, or the
sequence-level tree rule), captured as one CUDA graph per workspace on a GPU and run eagerly here.
A tiny random Llama pair with Qwen2.5's vocabulary (n = 151,936) decodes two steps; at the first
step's verification (the models' own laws in the buffers) the piece is run once under
:mod:`torch.profiler` and ``--reps`` times under a clock. *Kernels*: top-level aten ops of the call
that do some work (a view, reshape-as-view, ``empty`` or other metadata op, and its descendants, is
not counted); on CUDA most such op launches one kernel (a few launch more). The count is a proxy for
the graph's replay time at batch 1 on an H200, not a GPU measurement. *Full-vocabulary passes*: those
kernels with an input whose last axis is the vocabulary (gathers and sorted searches, which read a
few entries of it, left out): a proxy for the bytes moved at batch 16.

Run:      python3 benchmarks/bench_verify_kernels.py [--out results/verify_kernels.json]
Compare:  python3 benchmarks/bench_verify_kernels.py --against /tmp/old-checkout --repeats 2
          (alternates subprocesses of the two checkouts case by case: the same load for both; the
          CPU times of this VM vary up to 2x between runs at batch 16, so read the least of the rounds)
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from side_by_side import alternate, ints, median_us, parser, wanted

#: (case, tree, method): a 2^4 tree for the node rules and traversal, chain-4 for block and single
CASES = (("rrs", "2^4", "rrs"), ("rrs_wor", "2^4", "rrs_wor"), ("spechub", "2^4", "spechub"),
         ("traversal", "2^4", "traversal"), ("single", "chain-4", "single"), ("block", "chain-4", "block"))
#: Qwen2.5's vocabulary
N = 151_936
#: ops that read a few entries of a vocabulary-wide input (not counted as full-vocabulary passes)
SPARSE_READS = frozenset(("aten::gather", "aten::searchsorted"))
#: aten ops that launch no kernel: views, metadata and bare allocations
NO_KERNEL = frozenset(
    "aten::" + name for name in (
        "view", "_unsafe_view", "reshape", "expand", "expand_as", "slice", "select", "unsqueeze", "squeeze", "t",
        "transpose", "permute", "as_strided", "alias", "detach", "narrow", "unbind", "split", "chunk", "lift_fresh",
        "empty", "empty_like", "empty_strided", "resize_", "contiguous", "view_as", "flatten", "unflatten",
        "_reshape_alias", "numpy_T", "result_type", "is_nonzero", "item", "_local_scalar_dense", "to", "_to_copy_view",
        "size", "stride", "dim", "is_same_size"))


def main(argv=None) -> int:
    """Count the kernels of one verification call per case (both checkouts with ``--against``); print the table.

    Parameters
    ----------
    argv : list of str, optional
        The arguments of :func:`_parser` (default: the command line).

    Returns
    -------
    int
        0; the rows also go to ``--out`` as JSON when it is given.
    """
    args = _parser().parse_args(argv)
    if args.against:
        rows = _compare(args)
        print(_table(rows, ("old", "new")))
    else:
        sys.path.insert(0, str(Path(args.code).resolve()))
        rows = [measure(tree, method, batch, args.reps, name=name) for batch in ints(args.batch_sizes)
                for name, tree, method in CASES if wanted(name, args.cases)]
        print("\n".join(json.dumps(row) for row in rows) if args.json else _table(rows, (None,)))
    if args.out:
        Path(args.out).write_text(json.dumps({"machine": _machine(), "rows": rows}, indent=1))
    return 0


def measure(tree: str, method: str, batch: int, reps: int, *, name: str = "") -> dict:
    """Profile and time the verification piece of the first decoding step of ``batch`` rows.

    The piece is idempotent (it overwrites the workspace's outcome from the step's laws and
    uniforms), so it is run again on the same inputs: once to warm up, once profiled, ``reps``
    times timed. O(reps x the piece's cost) beyond one two-step decoding call.

    Parameters
    ----------
    tree : str
        Draft tree, as ``decode_batch_fast`` takes it (``2^4``, ``chain-4``).
    method : str
        Verification method.
    batch : int
        Rows decoded in lockstep.
    reps : int
        Timed calls of the piece (median reported).
    name : str, optional
        Label of the case.

    Returns
    -------
    dict
        ``case``, ``batch``, ``kernels`` (work-doing top-level aten ops), ``full_vocab`` (those of
        them with an input spanning the vocabulary, gathers and searches left out), ``top_ops`` (all top-level
        aten ops), ``events`` (every aten event, nested ones included), ``ops`` (kernel count by op
        name), ``cpu_us`` and ``wall_us`` (medians per call, one thread), ``cpu_us_min`` (the least
        CPU time of a call: the least disturbed by other load), ``outcome`` (the piece's
        output, as a list: equal across checkouts when the rules are unchanged).

    Raises
    ------
    RuntimeError
        The decoding call never reached a verification piece.
    """
    import dataclasses

    import numpy as np
    import torch

    import empirical.fast_decoder as fd
    import empirical.graphs as graphs
    from empirical.decode_types import Sampling
    from empirical.fast_workspace import clear_workspaces

    torch.set_num_threads(1)
    pair = dataclasses.replace(_pair(), eos_token_ids=frozenset())
    prompts = [[int(t) for t in np.random.default_rng([7, b]).integers(2, N, 6 + b % 5)] for b in range(batch)]
    piece_call, found = graphs.Graphed.__call__, {}

    def probed(self):
        piece_call(self)
        if self.name == "verify" and not found:
            found.update(_probe(lambda: piece_call(self), reps))
            found["outcome"] = self.fn.__self__.outcome.tolist()

    graphs.Graphed.__call__ = probed
    try:
        rngs = [np.random.default_rng([1, b]) for b in range(batch)]
        fd.decode_batch_fast(pair, prompts, tree=tree, method=method, rngs=rngs, sampling=Sampling(0.8, 1.0),
                             max_new_tokens=2)
    finally:
        graphs.Graphed.__call__ = piece_call
        clear_workspaces()
    if not found:
        raise RuntimeError(f"{name}: no verification piece ran.")
    return {"case": name or method, "batch": batch, **found}


def _probe(run, reps: int) -> dict:
    """Kernel counts of one ``run()`` under :mod:`torch.profiler`, then its median CPU and wall time."""
    from torch.profiler import ProfilerActivity, profile

    run()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        run()
    counts = _kernel_counts(prof.events())
    cpu, wall = [], []
    for _ in range(reps):
        c0, w0 = time.process_time(), time.perf_counter()
        run()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return {**counts, "cpu_us": median_us(cpu), "cpu_us_min": round(1e6 * min(cpu), 1), "wall_us": median_us(wall)}


def _kernel_counts(events) -> dict:
    """Top-level aten ops of a profile, those doing work, and the work-doing ones by name.

    Parameters
    ----------
    events : list of torch.autograd.profiler_util.FunctionEvent
        ``prof.events()``.

    Returns
    -------
    dict
        ``kernels``, ``full_vocab``, ``top_ops``, ``events`` and ``ops`` (as :func:`measure`).
    """
    aten = [e for e in events if e.name.startswith("aten::")]
    top = [e for e in aten if not _has_aten_ancestor(e)]
    working = [e for e in top if _does_work(e)]
    full = [e for e in working if e.name not in SPARSE_READS and any(_is_full(s) for s in e.input_shapes)]
    ops: dict = {}
    for e in working:
        ops[e.name[6:]] = ops.get(e.name[6:], 0) + 1
    return {"kernels": len(working), "full_vocab": len(full), "top_ops": len(top), "events": len(aten),
            "ops": dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0])))}


def _is_full(shape) -> bool:
    """Whether an input of this shape spans the vocabulary (last axis :data:`N`)."""
    return isinstance(shape, (list, tuple)) and len(shape) > 0 and shape[-1] == N


def _has_aten_ancestor(event) -> bool:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name.startswith("aten::"):
            return True
        parent = parent.cpu_parent
    return False


def _does_work(event) -> bool:
    """Whether ``event`` or one of its descendants is an aten op outside :data:`NO_KERNEL`."""
    return event.name not in NO_KERNEL or any(_does_work(c) for c in event.cpu_children if c.name.startswith("aten::"))


def _pair():
    """The tiny random pair with vocabulary :data:`N` (built once per process)."""
    from empirical.tiny import tiny_pair

    return tiny_pair(N, sharpness=5.0, noise=0.3)


def _compare(args) -> list:
    """Alternate subprocesses of ``--against`` (old) and this checkout (new) per case, ``--repeats`` rounds.

    Returns
    -------
    list of dict
        Per checkout, case and batch the row of the round with the least CPU time of a call
        (``rounds``: how many rounds ran; kernel counts do not vary between rounds).
    """
    best: dict = {}
    for label, name, batch, found in alternate(__file__, [c[0] for c in CASES], ints(args.batch_sizes), against=args.against,
                                               repeats=args.repeats, cases=args.cases, extra=("--reps", str(args.reps))):
        row = {"checkout": label, **found, "rounds": args.repeats}
        key = (label, name, batch)
        if key not in best or row["cpu_us_min"] < best[key]["cpu_us_min"]:
            best[key] = row
    return list(best.values())


def _table(rows: list, labels: tuple) -> str:
    """One line per case and batch: kernels, median and least CPU time of each checkout (and whether the outcomes agree)."""
    by_case: dict = {}
    for row in rows:
        by_case.setdefault((row["case"], row["batch"]), {})[row.get("checkout")] = row
    head = "case       batch " + " ".join(f"{(lab or '') + ' kernels':>12s} {'full n':>6s} {(lab or '') + ' cpu us':>12s}"
                                        f" {'(min)':>9s}" for lab in labels)
    lines = [head + ("  same outcome" if len(labels) > 1 else "")]
    for (case, batch), both in by_case.items():
        cells = " ".join(f"{both[lab]['kernels']:12d} {both[lab].get('full_vocab', -1):6d} {both[lab]['cpu_us']:12.0f}"
                         f" {both[lab]['cpu_us_min']:9.0f}" for lab in labels if lab in both)
        same = "  " + str(len({json.dumps(r["outcome"]) for r in both.values()}) == 1) if len(labels) > 1 else ""
        lines.append(f"{case:10s} {batch:5d} {cells}{same}")
    return "\n".join(lines)


def _machine() -> dict:
    return {"nproc": os.cpu_count(), "load_average": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def _parser():
    p = parser(__doc__, repeats=1)
    p.add_argument("--reps", type=int, default=5, help="timed calls of the piece (median)")
    p.add_argument("--out", default=None, help="write the rows (and the machine) as JSON here")
    return p


if __name__ == "__main__":
    raise SystemExit(main())
