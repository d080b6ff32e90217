"""Benchmark: host time per step of the fast decoder outside its pieces (issue 16), on a tiny random pair.

Convention: a *piece* is what :class:`empirical.graphs.Graphed` runs (the model forwards, laws,
verification, cache moves; CUDA graphs on a GPU, eager here). Per step, ``pieces`` is the time inside
them and ``host`` = the wall time of ``_Run.step`` minus ``pieces``: staging the step's integers and
uniforms, the Generators, reading the outcome, the commit bookkeeping, the phase clock. That part is
Python and numpy. *Cold*: after eager pieces (their forwards evict the caches); *warm*: recorded
outcomes replayed with no-op pieces, the host code alone (see :func:`measure`). EOS is switched off
so every row stays live for the whole budget; ``on_step`` is None.

Run:      python3 benchmarks/bench_host.py                           (this checkout)
Compare:  python3 benchmarks/bench_host.py --against /tmp/old-checkout --repeats 3
          (alternates subprocesses of the two checkouts case by case: the same load for both)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from side_by_side import alternate, ints, median_us, parser, wanted

CASES = (("ar", None, "ar"), ("2^4 spechub", "2^4", "spechub"), ("2^4 traversal", "2^4", "traversal"))


def main(argv=None) -> int:
    """Measure (or compare, with ``--against``) and print one line per case and batch size.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status 0.
    """
    args = _parser().parse_args(argv)
    if args.against:
        return _compare(args)
    sys.path.insert(0, str(Path(args.code).resolve()))
    rows = [measure(name, tree, method, batch, args.steps, args.calls, profile=args.profile)
            for batch in ints(args.batch_sizes) for name, tree, method in CASES if wanted(name, args.cases)]
    for row in rows:
        print(json.dumps(row) if args.json else _line(row))
    return 0


def measure(name: str, tree, method: str, batch: int, steps: int, calls: int, *, profile: bool = False) -> dict:
    """Time ``calls`` decoding calls of ``steps`` steps each; split each step into pieces and host.

    Two settings. *Cold*: the pieces run (eagerly, on this CPU) and the host code after them runs
    with caches the model forward evicted. *Warm*: the warm-up call's outcomes are recorded, then
    the same call (same seed, so the same trajectory) is replayed with every piece a no-op but the
    last, which writes the recorded outcome: the host code alone, as on a GPU host whose pieces are
    graph replays (their launch cost is not modelled).

    Parameters
    ----------
    name : str
        Label of the case.
    tree : str or None
        Draft tree (None for ``ar``).
    method : str
        Verification method (``ar`` for plain sampling).
    batch : int
        Rows decoded in lockstep.
    steps : int
        New tokens per row (with EOS off and ``ar``, steps per call; trees take fewer).
    calls : int
        Timed calls of each setting, after one untimed warm-up call.
    profile : bool, optional
        Also run one warm call under cProfile and add the host time by function (``by_function``).

    Returns
    -------
    dict
        ``case``, ``batch``, ``steps`` (timed, cold), ``step_us``, ``pieces_us``, ``host_us`` (cold)
        and ``warm_host_us`` (per step, medians over calls) and, with ``profile``, ``by_function``.

    Raises
    ------
    AssertionError
        A replayed call emitted other tokens than the recorded one.
    """
    import dataclasses

    import numpy as np
    import torch

    import empirical.fast_decoder as fd
    import empirical.graphs as graphs
    from empirical.decode_types import Sampling
    from empirical.tiny import tiny_pair

    torch.set_num_threads(1)
    pair = dataclasses.replace(tiny_pair(64), eos_token_ids=frozenset())  # every row live to the budget
    prompts = [[int(t) for t in np.random.default_rng([7, b]).integers(2, 64, 6 + b % 5)] for b in range(batch)]
    clock = {"pieces": 0.0, "step": 0.0, "steps": 0, "mode": "record", "outcomes": [], "at": 0}
    piece_call, step_call = graphs.Graphed.__call__, fd._Run.step

    def timed_piece(self):
        prof = clock.get("prof")
        if prof is not None:  # the profile sees the host only
            prof.disable()
        start = time.perf_counter()
        if clock["mode"] != "replay":
            piece_call(self)
        elif self.name == "cache scatter":  # the last piece: it writes the step's outcome
            self.fn.__self__.pack.copy_(clock["outcomes"][clock["at"]])
            clock["at"] += 1
        clock["pieces"] += time.perf_counter() - start
        if clock["mode"] == "record" and self.name == "cache scatter":
            clock["outcomes"].append(self.fn.__self__.pack.clone())
        if prof is not None:
            prof.enable()

    def timed_step(self, on_step):
        prof = clock.get("prof")
        if prof is not None:  # the profile sees the steps only (not the prefill)
            prof.enable()
        start = time.perf_counter()
        step_call(self, on_step)
        clock["step"] += time.perf_counter() - start
        clock["steps"] += 1
        if prof is not None:
            prof.disable()

    def call(seed):
        rngs = [np.random.default_rng([seed, b]) for b in range(batch)]
        clock.update(pieces=0.0, step=0.0, steps=0, at=0)
        out = fd.decode_batch_fast(pair, prompts, tree=tree, method=method, rngs=rngs, sampling=Sampling(0.8, 1.0),
                                   max_new_tokens=steps)
        n = clock["steps"]
        return [r.tokens for r in out], (clock["step"] / n, clock["pieces"] / n, (clock["step"] - clock["pieces"]) / n, n)

    graphs.Graphed.__call__, fd._Run.step = timed_piece, timed_step
    try:
        recorded, _ = call(0)
        clock["mode"] = "cold"
        cold = [call(c + 1)[1] for c in range(calls)]
        clock["mode"] = "replay"
        warm = []
        for _ in range(calls):
            tokens, times = call(0)
            assert tokens == recorded, "the replay left the recorded trajectory"
            warm.append(times)
        out = {"case": name, "batch": batch, "steps": int(sum(p[3] for p in cold)),
               "step_us": median_us(p[0] for p in cold), "pieces_us": median_us(p[1] for p in cold),
               "host_us": median_us(p[2] for p in cold), "warm_host_us": median_us(p[2] for p in warm)}
        if profile:
            out["by_function"] = _profile(lambda: call(0), clock)
    finally:
        graphs.Graphed.__call__, fd._Run.step = piece_call, step_call
    return out


def _profile(run, clock) -> dict:
    """Host microseconds per step by function (own time), under cProfile with the pieces switched off.

    Parameters
    ----------
    run : callable
        One decoding call.
    clock : dict
        The shared counters of :func:`measure` (``steps``; ``prof`` is set here).

    Returns
    -------
    dict
        ``{"file:function": us per step}``, the 25 largest, profiler-inflated (compare shares, not sums).
    """
    import cProfile
    import pstats

    clock["prof"] = cProfile.Profile()
    try:
        run()
    finally:
        prof, clock["prof"] = clock["prof"], None
    steps = max(clock["steps"], 1)
    out = {}
    for (path, _, func), (_, _, tottime, _, _) in pstats.Stats(prof).stats.items():
        if func in ("timed_piece", "timed_step", "call", "<lambda>", "decode_batch_fast", "prefill") \
                or "disable" in func or "enable" in func:
            continue
        label = f"{Path(path).name}:{func}" if path != "~" else func
        out[label] = out.get(label, 0.0) + 1e6 * tottime / steps
    return {k: round(v, 1) for k, v in sorted(out.items(), key=lambda kv: -kv[1])[:25]}


def _compare(args) -> int:
    """Alternate subprocesses of this checkout and ``--against`` per case; print both and the ratio."""
    results = {}
    for label, name, batch, row in alternate(__file__, [c[0] for c in CASES], ints(args.batch_sizes), against=args.against,
                                             repeats=args.repeats, cases=args.cases,
                                             extra=("--steps", str(args.steps), "--calls", str(args.calls))):
        results.setdefault((name, batch), {}).setdefault(label, []).append(row)
    for (name, batch), both in results.items():
        best = {k: {key: min(r[key] for r in both[k]) for key in ("host_us", "warm_host_us", "pieces_us")} for k in both}
        print(f"{name:14s} b{batch:<3d} host/step cold old {best['old']['host_us']:6.1f} new {best['new']['host_us']:6.1f} us"
              f" ({best['old']['host_us'] / best['new']['host_us']:4.2f}x); warm old {best['old']['warm_host_us']:6.1f}"
              f" new {best['new']['warm_host_us']:6.1f} us ({best['old']['warm_host_us'] / best['new']['warm_host_us']:4.2f}x);"
              f" pieces {min(best['old']['pieces_us'], best['new']['pieces_us']):8.1f} us; runs {len(both['old'])}+{len(both['new'])}")
    return 0


def _line(row: dict) -> str:
    text = (f"{row['case']:14s} b{row['batch']:<3d} steps {row['steps']:5d}  step {row['step_us']:8.1f} us  "
            f"pieces {row['pieces_us']:8.1f} us  host {row['host_us']:7.1f} us (warm {row['warm_host_us']:6.1f} us)")
    if "by_function" in row:
        text += "\n" + "\n".join(f"    {us:7.1f} us  {fn}" for fn, us in row["by_function"].items())
    return text


def _parser():
    p = parser(__doc__, repeats=2)
    p.add_argument("--steps", type=int, default=200, help="max_new_tokens per call")
    p.add_argument("--calls", type=int, default=3, help="timed calls (median per step)")
    p.add_argument("--profile", action="store_true", help="add cProfile host time by function")
    return p


if __name__ == "__main__":
    raise SystemExit(main())
