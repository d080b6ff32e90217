r"""Audits of a real model pair across sampling settings, each sized by the power analysis for the TV its time allows.

Convention: p = target, q = draft; settings T in {0.6, 1.0} x top-k in {off, 50} x top-p in {1, 0.9}
(``grid.SETTINGS``); levels ``function`` (transformers' ``_speculative_sampling`` on the pair's
logits at the prompt), ``generator`` (the ``AssistedCandidateGenerator`` that ``generate`` builds),
``generate`` (``generate(assistant_model=...)``, first two tokens) and ``drift`` (the draft-law drift
of docs/audit.md finding 4). Run: ``python -m empirical.audit.model_grid --target T --draft D --out FILE``.

**Sizing by time.** N is fixed before any audited trial, as the test requires: ``--probe`` calls
measure the seconds per call c (they also warm the forward memo and are not counted), then the TV
is the smallest of :data:`TV_LADDER` (from ``--min-tv``) whose power-analysis N fits the level's
seconds, N c / workers <= seconds. Every result records the TV it was sized for, c, and the time
the ``--min-tv`` audit would need (``projected_s_min_tv``). Each finished result is written into the
JSON bundle atomically, so an interrupted run keeps every finished audit. ``--jobs J`` runs settings
in J spawned processes (each loads the pair; GPU); ``--workers W`` forks W processes per end-to-end
audit (CPU only). A level that raises is recorded in the bundle as ``error`` and the run goes on;
exit status 0 = every level ran, 1 = a level raised, a job crashed or nothing ran, 2 = bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

__all__ = ["TV_LADDER", "size_for_time", "run_setting", "table", "main"]

#: TVs tried, smallest first (from --min-tv): the audit is sized for the first whose N fits
TV_LADDER = (0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.12, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)
LEVELS = ("function", "generator", "generate", "drift")
#: a level with less time than this left is skipped (recorded as such), not started
MIN_LEVEL_S = 5.0


def size_for_time(n_for, cost_s: float, seconds: float, *, min_tv: float, workers: int = 1) -> dict:
    """Smallest ladder TV >= ``min_tv`` whose trials fit the time.

    The first TV whose ``n_for(tv)`` trials fit ``seconds`` at ``cost_s`` per call on ``workers``
    processes (the largest ladder TV if none does).

    Parameters
    ----------
    n_for : callable ``n_for(tv) -> int``
        The power-analysis sample size at ``tv``.
    cost_s, seconds : float
        Measured seconds per call; seconds available.
    min_tv : float
        Smallest TV to try.
    workers : int, optional
        Processes sharing the calls.

    Returns
    -------
    dict
        ``{"tv", "n", "cost_s", "projected_s", "n_min_tv", "projected_s_min_tv"}``.
    """
    ladder = [t for t in TV_LADDER if t >= min_tv - 1e-12] or [TV_LADDER[-1]]
    rate = max(cost_s, 1e-9) / max(workers, 1)
    n_min = int(n_for(ladder[0]))
    pick = ladder[-1]
    for t in ladder:
        if n_for(t) * rate <= seconds:
            pick = t
            break
    n = int(n_for(pick))
    return {"tv": pick, "n": n, "cost_s": cost_s, "projected_s": n * rate, "n_min_tv": n_min, "projected_s_min_tv": n_min * rate}


def run_setting(pair, ids, sampling, levels, *, deadline: float, min_tv: float, alpha: float, power: float, seed: int,
                probe: int, workers: int, save, log=print) -> None:
    """Run ``levels`` at one sampling setting, sharing the time left evenly over them.

    The time left until ``deadline`` is shared out evenly over the levels still to run. A level
    that raises is saved as ``{"level", "settings", "error": "Type: message", "where", "wall_s"}``
    and the next level runs.

    Parameters
    ----------
    pair : ModelPair-like (``target``, ``draft``, ``eos_token_ids``)
    ids : torch.LongTensor (1, len)
        The prompt.
    sampling : Sampling
    levels : iterable of str
        Any of :data:`LEVELS`.
    deadline : float
        ``time.time()`` by which the setting should be done.
    min_tv, alpha, power : float
    seed, probe, workers : int
    save : callable ``save(level, doc)``
        Stores each result (a dict) as it finishes.
    log : callable, optional
    """
    tag = sampling.to_dict()
    opts = {"min_tv": min_tv, "alpha": alpha, "power": power, "seed": seed, "probe": probe, "workers": workers}
    todo = [lv for lv in LEVELS if lv in levels]
    timed = [lv for lv in todo if lv != "drift"]
    for level in todo:
        seconds = (deadline - time.time() - (3.0 if "drift" in todo else 0.0)) / max(1, len(timed))
        if level in timed:
            timed.remove(level)
        if seconds < MIN_LEVEL_S:
            save(level, {"level": level, "settings": tag, "skipped": f"no time left ({seconds:.0f} s < {MIN_LEVEL_S:g} s)"})
            log(f"{_tag(sampling)} {level}: skipped (no time left)")
            continue
        t0 = time.time()
        try:
            doc, note = _run_level(level, pair, ids, sampling, seconds, **opts)
        except Exception as exc:  # one failed level must not cost the others (the bundle records it)
            doc = _error_doc(level, tag, exc, time.time() - t0)
            note = f"error: {doc['error']} ({doc['where']})"
        save(level, doc)
        log(f"{_tag(sampling)} {level}: {note}")


def table(doc: dict) -> str:
    """Markdown table of a ``model_grid`` bundle: one row per (setting, level).

    Parameters
    ----------
    doc : dict
        The JSON bundle ``main`` writes.

    Returns
    -------
    str
    """
    head = ("| setting | level | verdict | sized for TV | N | p-value | plug-in TV (noise) | bins (df) | ms per call | "
            "N for TV {0:g} | time for it |\n|---|---|---|---|---|---|---|---|---|---|---|").format(doc.get("min_tv", 0.02))
    rows = [head]
    for tag, levels in doc.get("results", {}).items():
        for level, r in levels.items():
            if "skipped" in r or "stopped" in r:
                why = f"skipped: {r['skipped']}" if "skipped" in r else f"stopped: {r['stopped']}"
                rows.append(f"| {tag} | {level} | {why} |" + " |" * 8)
            elif "error" in r:
                rows.append(f"| {tag} | {level} | error: {r['error']} |" + " |" * 8)
            elif level == "drift":
                d = r["draft_law_drift"]
                rows.append(f"| {tag} | drift | TV {d['tv']:.3f} (support {d['support_claimed']} vs {d['support_plain']}, "
                            f"top {d['max_claimed']:.3f} vs {d['max_plain']:.3f}) |" + " |" * 8)
            else:
                z, est = r["sizing"], r["tv_estimate"]
                bins = ", ".join(f"{p['n_bins']} ({p['df']})" for p in r["parts"])
                rows.append(f"| {tag} | {level} | {r['verdict']} | {z['tv']:g} | {r['n_samples']:,} | {r['pvalue']:.3g} | "
                            f"{est['value']:.4f} ({est['noise']:.4f}) | {bins} | {z['cost_s'] * 1e3:.1f} | {z['n_min_tv']:,} | "
                            f"{z['projected_s_min_tv']:,.0f} s |")
    return "\n".join(rows)


def _run_level(level, pair, ids, sampling, seconds, *, min_tv, alpha, power, seed, probe, workers):
    """One level of :func:`run_setting` in ``seconds``: its result doc and a one-line log note."""
    from . import (HFCandidateGenerator, HFGenerate, HFSpeculativeSampling, audit_function, audit_generate,
                   audit_generator, capture_candidate_generator, target_law)
    from spechub_theory.montecarlo.stats import sample_size_for
    from .cases import model_case

    tag = sampling.to_dict()
    t0, holder = time.time(), None
    if level == "function":
        case = model_case(pair, ids, sampling)
        sampler = HFSpeculativeSampling()
        t = time.perf_counter()
        audit_function(sampler, case, n_trials=probe * 10, rng=seed + 1)
        cost = (time.perf_counter() - t) / (probe * 10)
        size = size_for_time(lambda tv: sample_size_for(case.p[0], tv, alpha, power), cost, seconds, min_tv=min_tv)
        r = audit_function(sampler, case, tv=size["tv"], alpha=alpha, power=power, rng=seed)
    elif level == "generator":
        gen = holder = HFCandidateGenerator(capture_candidate_generator(pair.target, pair.draft, ids, sampling), ids, memo=True)
        g = np.random.default_rng(seed + 1)
        q1 = gen(g)[1][0]
        cost = _cost(lambda: gen(g), probe)
        size = size_for_time(lambda tv: sample_size_for(q1, tv, alpha / 2, power), cost, seconds, min_tv=min_tv)
        r = audit_generator(gen, tv=size["tv"], alpha=alpha, power=power, rng=seed, name="hf:AssistedCandidateGenerator",
                            settings=tag)
    elif level == "generate":
        law = target_law(pair.target, ids, sampling, eos_ids=pair.eos_token_ids)
        sampler = holder = HFGenerate(pair.target, pair.draft, ids, sampling, memo=True)
        g = np.random.default_rng(seed + 1)
        cost = _cost(lambda: sampler(g), probe)
        seconds = max(1.0, seconds - (time.time() - t0))
        size = size_for_time(lambda tv: max(sample_size_for(law.p1, tv, alpha / 2, power),
                                            sample_size_for(law.joint, tv, alpha / 2, power)),
                             cost, seconds, min_tv=min_tv, workers=workers)
        r = audit_generate(sampler, law, tv=size["tv"], alpha=alpha, power=power, rng=seed, settings=tag, workers=workers)
    else:
        from .grid import draft_law_drift

        doc = {"level": "drift", "settings": tag, "draft_law_drift": draft_law_drift(pair, ids, sampling),
               "seconds": time.time() - t0}
        return doc, f"done in {time.time() - t0:.0f} s"
    doc = {**r.to_dict(), "sizing": size, "wall_s": time.time() - t0}
    memos = getattr(holder, "memos", None)
    if memos:
        doc["memo"] = [m.stats.to_dict() for m in memos.values()]
    note = (f"{r.verdict} at TV {size['tv']:g} (N = {r.n_samples:,}, p = {r.pvalue:.3g}, {cost * 1e3:.1f} ms/call, "
            f"{time.time() - t0:.0f} s; TV {min_tv:g} would need N = {size['n_min_tv']:,}, ~{size['projected_s_min_tv']:.0f} s)")
    return doc, note


def _error_doc(level, tag, exc, wall_s) -> dict:
    """The bundle entry of a level that raised ``exc``: type and message on one line, and where."""
    import traceback

    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f"{os.path.basename(frame.filename)}:{frame.lineno} in {frame.name}" if frame else "?"
    return {"level": level, "settings": tag, "error": f"{type(exc).__name__}: {' '.join(str(exc).split())}",
            "where": where, "wall_s": wall_s}


def _mark_stopped(results: dict, stopped_settings, levels) -> None:
    """Record, in place, every level of a job stopped at the deadline that left no result.

    The item in flight is lost by design (the parent terminates the job); marking it keeps the bundle
    honest about what was asked and not done, so ``table`` shows it instead of leaving the row out.

    Parameters
    ----------
    results : dict
        ``{tag: {level: doc}}`` merged from the jobs' files.
    stopped_settings : iterable of iterables of Sampling
        The settings of each stopped job.
    levels : list of str
        The levels asked for.

    Returns
    -------
    None
    """
    for settings in stopped_settings:
        for s in settings:
            done = results.setdefault(_tag(s), {})
            for level in (lv for lv in LEVELS if lv in levels and lv not in done):
                done[level] = {"level": level, "settings": s.to_dict(), "stopped": "in flight or not started when the job was stopped at the deadline"}


def _summary(results: dict, crashed) -> tuple:
    """The summary counts of a bundle's ``results`` and the exit status (module docstring)."""
    docs = [d for r in results.values() for d in r.values()]
    verdicts = [d["verdict"] for d in docs if "verdict" in d]
    errors = sum("error" in d for d in docs) + len(crashed)
    done = len(verdicts) + sum("draft_law_drift" in d for d in docs)
    counts = {"audits": len(verdicts), "pass": verdicts.count("pass"), "refuted": verdicts.count("refuted"),
              "errors": errors, "skipped": sum("skipped" in d for d in docs),
              "stopped": sum("stopped" in d for d in docs), "jobs_crashed": list(crashed)}
    return counts, 1 if errors or not done else 0


def _cost(call, probe: int) -> float:
    """Seconds per call over the second half of ``probe`` calls (the first half warms the memo)."""
    for _ in range(max(1, probe // 2)):
        call()
    t, m = time.perf_counter(), max(1, probe - probe // 2)
    for _ in range(m):
        call()
    return (time.perf_counter() - t) / m


def _warm_cache(names) -> None:
    """Dequantise each ``.gguf`` once into the safetensors cache (``empirical.dequant_cache``), so
    spawned jobs load in seconds instead of each dequantising."""
    import torch

    from ..dequant_cache import load_gguf

    for name in names:
        if str(name).endswith(".gguf") and os.path.exists(name):
            t = time.time()
            load_gguf(name, torch.float32)
            print(f"[{time.strftime('%H:%M:%S')}] {os.path.basename(name)} ready in {time.time() - t:.0f} s", flush=True)


def _tag(s) -> str:
    return f"T{s.temperature:g}_k{s.top_k}_p{s.top_p:g}"


def _parse_settings(text: str):
    from .cases import Sampling
    from .grid import SETTINGS

    if text == "all":
        return [Sampling(*s) for s in SETTINGS]
    out = []
    for part in text.split(";"):
        try:
            t, k, p = (float(x) for x in part.split(","))
        except ValueError:
            raise ValueError(f"`--settings` must be 'all' or 'T,K,P;T,K,P...'; got {part!r}.") from None
        out.append(Sampling(t, int(k), p))
    return out


def _job(args, settings, deadline, path):
    """One process: load the pair, run its settings, write ``{tag: {level: doc}}`` to ``path`` as it goes."""
    import torch

    from ..models import load_pair

    torch.set_num_threads(max(1, int(args.threads)))
    t0 = time.time()
    pair = load_pair(args.target, args.draft, device=args.device, dtype="float32")
    ids = pair.tokenizer(args.prompt, return_tensors="pt")["input_ids"].to(pair.device)
    out = {"_load_s": time.time() - t0, "_prompt_ids": ids[0].tolist()}
    levels = args.levels.split(",")

    def save(tag):
        def put(level, doc):
            out.setdefault(tag, {})[level] = doc
            _write(path, out)
        return put

    for k, s in enumerate(settings):
        left = len(settings) - k
        share = time.time() + (deadline - time.time()) / left
        run_setting(pair, ids, s, levels, deadline=share, min_tv=args.min_tv, alpha=args.alpha, power=args.power,
                    seed=args.seed, probe=args.probe, workers=args.workers, save=save(_tag(s)),
                    log=lambda m: print(f"[{time.strftime('%H:%M:%S')}] {m}", flush=True))
    _write(path, out)


def _write(path, doc) -> None:
    from spechub_theory.montecarlo.audit_stats import json_ready

    from ..records import write_atomic

    write_atomic(path, json.dumps(json_ready(doc), indent=1, allow_nan=False, default=float).encode("utf-8"))


def main(argv=None) -> int:
    """Command line (module docstring); writes one JSON bundle to ``--out``.

    ``--table FILE`` prints the table of an earlier bundle instead.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 when every level ran (a refutation is a finding, not a failure), 1 when
        a level raised (recorded in the bundle as ``error``), a job crashed, or nothing ran at all.

    Raises
    ------
    SystemExit
        Status 2 on bad arguments (argparse), unknown levels or malformed ``--settings``.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--table"] and len(argv) == 2:
        with open(argv[1], encoding="utf-8") as fh:
            print(table(json.load(fh)))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", required=True)
    ap.add_argument("--draft", required=True)
    ap.add_argument("--prompt", default="The capital of France is")
    ap.add_argument("--settings", default="all", help="'all' or 'T,K,P;T,K,P' (K = 0: top-k off; P = 1: top-p off)")
    ap.add_argument("--levels", default="function,generator,generate,drift")
    ap.add_argument("--budget-s", type=float, default=900.0, help="wall-clock budget of the whole run, loading included")
    ap.add_argument("--reserve-s", type=float, default=10.0, help="kept free at the end of the budget")
    ap.add_argument("--start-epoch", type=float, default=None, help="when the budget began (default: now), e.g. a script's start")
    ap.add_argument("--min-tv", type=float, default=0.02)
    ap.add_argument("--alpha", type=float, default=1e-3)
    ap.add_argument("--power", type=float, default=0.99)
    ap.add_argument("--probe", type=int, default=24, help="calls that measure the cost per call (not counted)")
    ap.add_argument("--workers", type=int, default=1, help="forked processes per end-to-end audit (CPU only)")
    ap.add_argument("--jobs", type=int, default=1, help="spawned processes, settings dealt round robin (each loads the pair)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    start = time.time() if args.start_epoch is None else float(args.start_epoch)
    deadline = start + args.budget_s - args.reserve_s
    try:
        settings = _parse_settings(args.settings)
    except ValueError as exc:
        ap.error(str(exc))
    bad = set(args.levels.split(",")) - set(LEVELS)
    if bad:
        ap.error(f"unknown level(s) {sorted(bad)}; use {', '.join(LEVELS)}")
    import platform

    import torch
    import transformers

    meta = {"command": "python -m empirical.audit.model_grid " + " ".join(argv),
            "transformers": transformers.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version(), "host": platform.node(), "nproc": os.cpu_count(),
            "device": args.device, "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
            "load_average_start": os.getloadavg(), "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start)),
            "min_tv": args.min_tv, "alpha": args.alpha, "power": args.power, "prompt": args.prompt, "seed": args.seed}
    import tempfile

    scratch = tempfile.mkdtemp(prefix="model_grid-")  # job files live outside --out's folder
    parts = [os.path.join(scratch, f"job{j}.json") for j in range(max(1, args.jobs))]
    import multiprocessing as mp

    if args.jobs > 1:
        _warm_cache([args.target, args.draft])
    ctx = mp.get_context("spawn")  # also for one job: the parent enforces the deadline and keeps what finished
    procs = [ctx.Process(target=_job, args=(args, settings[j :: max(1, args.jobs)], deadline, parts[j]))
             for j in range(max(1, args.jobs))]
    for p in procs:
        p.start()
    stopped = set()
    for j, p in enumerate(procs):
        p.join(max(1.0, deadline + args.reserve_s - time.time()))
        if p.is_alive():
            p.terminate()
            p.join(5)
            stopped.add(j)
    crashed = [j for j, p in enumerate(procs) if j not in stopped and p.exitcode != 0]
    results, loads = {}, []
    for path in parts:
        if os.path.exists(path):
            with open(path, encoding="utf-8") as fh:
                part = json.load(fh)
            loads.append(part.pop("_load_s", None))
            meta["prompt_ids"] = part.pop("_prompt_ids", None)
            results.update(part)
            os.remove(path)
    _mark_stopped(results, [settings[j :: max(1, args.jobs)] for j in sorted(stopped)], args.levels.split(","))
    counts, status = _summary(results, crashed)
    meta.update(load_s=loads, wall_s=time.time() - start, load_average_end=os.getloadavg(),
                job_exitcodes=[p.exitcode for p in procs], jobs_stopped_at_deadline=sorted(stopped), counts=counts)
    _write(args.out, {**meta, "results": results})
    crash = f", {len(crashed)} job(s) crashed" if crashed else ""
    print(f"model_grid: {counts['audits']} audits, {counts['pass']} pass, {counts['refuted']} refuted, "
          f"{counts['errors']} errors{crash}, {counts['skipped']} skipped, {counts['stopped']} stopped at the deadline in {time.time() - start:.0f} s -> {args.out}"
          + ("" if status == 0 else f" (exit {status})"), flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
