"""Benchmark: tree decoding on the fast runtime against the strongest fair baselines, one pair, one process.

Convention: p = target, q = draft; tokens per step = accepted drafts + 1. Every run decodes the same
prompts (groups of ``batch`` in lockstep) with the same temperature / top-p (top-k off), after an
untimed warm-up on the same shapes (graph capture, compilation); clocks are synchronised on CUDA.
Runs per batch size: ``ar [fast]`` (our plain sampling on the fast path), ``tree <t> <m> [fast]``
per tree and method, the eager reference (``ar [eager]``, ``tree ... [eager]``) on the first group,
HF ``generate()`` eager, HF ``generate()`` with a static cache (compiled by transformers on CUDA),
and HF assisted generation (batch 1). Per tree run: tokens/s, tokens/step, ms per step of draft,
target, verify, cache and other, ``verify_fraction_of_target`` and the physics bound
``bound_tokens_per_second`` = tokens / (draft + target seconds) = tokens/step x t(AR step) /
(t(draft levels) + t(target tree forward)) in AR tokens/s units; ``fraction_of_bound`` = tokens/s over it
(prefill included), ``step_fraction_of_bound`` = the forwards' share of a step's wall time (prefill left
out: the goal "everything but the model forwards <= 10% of the step" is this >= 0.9). A failing run is recorded as an
error and the rest go on; each finished run rewrites the JSON files, so a killed job keeps them.

Run (H200):  bash benchmarks/device/run_bench_decode.sh qwen        (writes $OUT/bench_decode_qwen_b{1,16}.json)
Run (CPU):   python3 benchmarks/bench_decode.py --target tiny --batch-sizes 1,4 --num-prompts 2 --max-new-tokens 16 --out-dir /tmp/bd
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from unittest.mock import patch

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from empirical.decode_types import AR, Sampling  # noqa: E402
from empirical.decoder import decode_batch  # noqa: E402
from empirical.fast_decoder import decode_batch_fast  # noqa: E402
from empirical.fast_workspace import COMPILE_FORWARD_ENV, COMPILE_VERIFY_ENV, capture_failures  # noqa: E402
from empirical.metadata import run_metadata  # noqa: E402
from empirical.prompts import encode_prompt, load_prompts  # noqa: E402
from empirical.timing import synchronize  # noqa: E402

PHASES = ("draft", "target", "verify", "cache", "other")


def main(argv=None) -> int:
    """Run every job in priority order within the time budget; write one JSON per batch size."""
    args = _parser().parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    pair = _load(args)
    load_s = time.perf_counter() - start
    sampling = Sampling(args.temperature, args.top_p)
    batches = [int(b) for b in args.batch_sizes.split(",")]
    prompts = [encode_prompt(pair.tokenizer, p) for p in load_prompts(args.prompts, num_prompts=max(batches + [args.num_prompts]))]
    reports = {b: _report(args, pair, b, load_s) for b in batches}
    width = max(len(ids) for ids in prompts)
    for batch, name, job, warm, groups in _jobs(args, pair, sampling, batches, width):
        runs = reports[batch]["runs"]
        left = args.time_budget_s - (time.perf_counter() - start)
        if left < args.min_left_s:
            runs[name] = {"skipped": f"time budget ({left:.0f} s left)"}
            continue
        todo = _groups(prompts, batch, args.num_prompts)[:groups]
        try:
            if warm:  # on the group with the longest prompt: its buffers (and graphs) fit every group
                widest = max(todo, key=lambda ids: max(map(len, ids)))
                job(widest, _rngs(args.seed, 0, len(widest)), warm)
            out = [job(ids, _rngs(args.seed, g, len(ids)), None) for g, ids in enumerate(todo)]
            runs[name] = out[0] if name.startswith("check") else _aggregate(out, batch)
        except Exception as exc:  # noqa: BLE001 - a failing baseline is recorded, the rest still run
            runs[name] = {"error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}",
                          "where": traceback.format_exc(limit=3).splitlines()[-3:]}
        print(f"b{batch} {name:>34}: {_line(runs[name])}", file=sys.stderr, flush=True)
        _finish(reports[batch], args)
        _write(reports, args)
    _write(reports, args)
    return 0


def _load(args):
    if args.target == "tiny" or args.target.startswith("tiny:"):  # a dry run without weights; tiny:V, V tokens
        from empirical.tiny import tiny_pair

        vocab = args.target.partition(":")[2] if ":" in args.target else "256"
        if not vocab.isdigit() or int(vocab) < 2:
            raise SystemExit(f"bench_decode.py: error: --target tiny:V needs a vocabulary size V >= 2; got {args.target!r}")
        return tiny_pair(int(vocab), layers=2, device=args.device)
    from empirical.models import load_pair

    return load_pair(args.target, args.draft, device=args.device, dtype=args.dtype)


def _jobs(args, pair, sampling, batches, width: int):
    """(batch, name, job, warm-up budget or None, groups) in priority order: our fast path at every
    batch size (ar with compiled forwards among it), our eager reference, HF eager and assisted, HF
    static + compile, then the tree runs with compiled forwards (slowest to start: on the H200 on
    2026-12-03 their compilation outlasted the ~100 s a run had left, and cut the HF rows)."""
    trees = [t.strip() for t in args.trees.split(",") if t.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    full, short = args.max_new_tokens, min(8, args.max_new_tokens)
    for b in batches:
        yield b, "ar [fast]", _ours(pair, None, AR, sampling, full, "fast"), full, None
        if args.compile_forward:  # the model pieces through torch.compile, then graphed
            yield b, "ar [fast, compiled forwards]", _ours(pair, None, AR, sampling, full, "fast", forward_backend=args.compile_forward), full, None
        for t in trees:
            for m in methods:
                yield b, f"tree {t} {m} [fast]", _ours(pair, t, m, sampling, full, "fast"), full, None
                if args.compile_verify:  # the same run with the verification piece through torch.compile
                    yield (b, f"tree {t} {m} [fast, compiled verify]",
                           _ours(pair, t, m, sampling, full, "fast", compile_backend=args.compile_verify), full, None)
    yield batches[0], "check: graphs vs eager pieces", _check(pair, trees[0], methods[0], sampling, full), None, 1
    for b in batches:  # the eager reference on the first group (for the fast / eager ratio)
        yield b, "ar [eager]", _ours(pair, None, AR, sampling, full, "eager"), short, 1
        yield b, f"tree {trees[0]} {methods[0]} [eager]", _ours(pair, trees[0], methods[0], sampling, full, "eager"), short, 1
    if not args.skip_hf:
        for b in batches:
            yield b, "generate() eager", _hf(pair, sampling, full, None, width), short, args.hf_groups
            if b == 1:  # transformers' assisted generation takes one sequence
                yield b, "assisted generate()", _hf(pair, sampling, full, "assisted", width), short, 1
        for b in batches:  # compilation may take a minute
            yield b, "generate() static cache + compile", _hf(pair, sampling, full, "static", width), full, 1
    if args.compile_forward:  # last: inductor compiles 1 + depth model pieces per tree shape (minutes on the H200)
        label = "compiled forwards + verify" if args.compile_verify else "compiled forwards"
        for b in batches:
            for t in trees:
                for m in methods:  # with the compiled verify piece too, when asked for: the fastest combination
                    yield (b, f"tree {t} {m} [fast, {label}]",
                           _ours(pair, t, m, sampling, full, "fast", forward_backend=args.compile_forward,
                                 compile_backend=args.compile_verify), full, None)


def _ours(pair, tree, method, sampling, max_new_tokens, runtime, *, compile_backend=None, forward_backend=None):
    """A job decoding a group with our decoder (fast path or eager reference; ``compile_backend``:
    the fast path's verification piece through ``torch.compile`` with that backend;
    ``forward_backend``: its model pieces likewise)."""
    def job(ids, rngs, budget):
        kw = dict(tree=tree, method=method, sampling=sampling, max_new_tokens=budget or max_new_tokens, rngs=rngs)
        env = {COMPILE_VERIFY_ENV: compile_backend or "0", COMPILE_FORWARD_ENV: forward_backend or "0"}
        with patch.dict(os.environ, env):  # restored after the run
            synchronize(pair.device)
            t0 = time.perf_counter()
            out = decode_batch_fast(pair, ids, **kw) if runtime == "fast" else decode_batch(pair, ids, **kw)
            synchronize(pair.device)
            seconds = time.perf_counter() - t0
        phases = {ph: sum(s.seconds.get(ph, 0.0) for r in out for s in r.steps) for ph in PHASES}
        if runtime == "eager":  # the eager decoder does not split out host time: the rest of the wall
            phases["other"] = max(seconds - sum(r.prefill_s for r in out) - sum(phases.values()), 0.0)
        return {"tokens": sum(len(r.tokens) for r in out), "row_steps": sum(len(r.steps) for r in out),
                "steps": max(len(r.steps) for r in out), "seconds": seconds, "phases": phases,
                "prefill_s": sum(r.prefill_s for r in out)}
    return job


def _check(pair, tree, method, sampling, max_new_tokens):
    """A job decoding a group twice on the fast path, pieces replayed as CUDA graphs and run eagerly:
    the same computation, so the same tokens (a wrong capture shows here). The inverse CDFs of two
    rows or more search in blocks inside a graph and over one scan eagerly, which can part only at
    a rounding tie (a target within an ulp of a cdf value)."""
    def job(ids, rngs, budget):
        kw = dict(tree=tree, method=method, sampling=sampling, max_new_tokens=max_new_tokens)
        graphed = decode_batch_fast(pair, ids, rngs=_rngs(0, 0, len(ids)), **kw)
        eager = decode_batch_fast(pair, ids, rngs=_rngs(0, 0, len(ids)), graphs=False, **kw)
        return {"tree": str(tree), "method": method, "tokens": sum(len(r.tokens) for r in graphed),
                "tokens_equal": [r.tokens for r in graphed] == [r.tokens for r in eager]}
    return job


def _hf(pair, sampling, max_new_tokens, variant, width: int):
    """A job running ``generate()`` on a group left-padded to ``width`` (every group the same
    shapes, so a static cache compiles once), variant None, "static" or "assisted"."""
    import torch

    def job(ids, rngs, budget):
        pad = pair.tokenizer.pad_token_id if pair.tokenizer.pad_token_id is not None else next(iter(pair.eos_token_ids))
        inputs = torch.as_tensor([[pad] * (width - len(x)) + list(x) for x in ids], device=pair.device)
        mask = torch.as_tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], device=pair.device)
        kw = dict(max_new_tokens=budget or max_new_tokens, pad_token_id=pad, top_k=0, attention_mask=mask)
        if sampling.temperature > 0:
            kw.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p)
        else:
            kw.update(do_sample=False, temperature=None, top_p=None)
        if variant == "assisted":
            kw["assistant_model"] = pair.draft
        if variant == "static":
            kw["cache_implementation"] = "static"
        torch.manual_seed(int(rngs[0].integers(2**31)))
        synchronize(pair.device)
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = pair.target.generate(inputs, **kw)
        synchronize(pair.device)
        seconds = time.perf_counter() - t0
        new = out[:, width:].tolist()
        tokens = sum(_until_eos(row, pair.eos_token_ids) for row in new)
        return {"tokens": tokens, "seconds": seconds, "steps": out.shape[1] - width}
    return job


def _until_eos(row, eos) -> int:
    for i, t in enumerate(row):
        if t in eos:
            return i + 1
    return len(row)


def _aggregate(out, batch: int) -> dict:
    tokens, seconds = sum(r["tokens"] for r in out), sum(r["seconds"] for r in out)
    res = {"groups": len(out), "batch": batch, "tokens": tokens, "seconds": seconds,
           "tokens_per_second": tokens / seconds if seconds else None,
           "group_tokens_per_second": [r["tokens"] / r["seconds"] for r in out]}
    if "phases" in out[0]:
        steps = sum(r["steps"] for r in out)
        phases = {ph: sum(r["phases"][ph] for r in out) for ph in PHASES}
        forwards = phases["draft"] + phases["target"]
        stepping = seconds - sum(r["prefill_s"] for r in out)  # the steps' wall time, prefill left out
        res.update(
            tokens_per_step=tokens / sum(r["row_steps"] for r in out),
            steps=steps,
            ms_per_step={ph: 1e3 * s / steps for ph, s in phases.items()},
            ms_per_step_wall=1e3 * stepping / steps,
            verify_fraction_of_target=phases["verify"] / phases["target"] if phases["target"] else None,
            bound_tokens_per_second=tokens / forwards if forwards else None,
            fraction_of_bound=forwards / seconds if forwards and seconds else None,  # tokens/s over the bound
            # the goal's per-step reading: the model forwards' share of the steps' wall time
            step_fraction_of_bound=forwards / stepping if forwards and stepping else None,
        )
    return res


def _finish(report: dict, args) -> None:
    """Ratios between runs of one batch size (from the runs finished so far)."""
    runs = report["runs"]
    ok = {k: r for k, r in runs.items() if r.get("tokens_per_second") and not k.startswith("check")}
    ar, hf = ok.get("ar [fast]"), ok.get("generate() eager")
    for name, r in ok.items():
        if ar is not None and "bound_tokens_per_second" in r and name.startswith("tree"):
            r["speedup_vs_ar_fast"] = r["tokens_per_second"] / ar["tokens_per_second"]
            r["bound_speedup_vs_ar_fast"] = r["bound_tokens_per_second"] / ar["tokens_per_second"]
        if hf is not None:
            r["speedup_vs_generate"] = r["tokens_per_second"] / hf["tokens_per_second"]
        eager = ok.get(name.replace("[fast]", "[eager]")) if name.endswith("[fast]") else None
        if eager is not None:  # same first group of prompts
            r["fast_over_eager_first_group"] = r["group_tokens_per_second"][0] / eager["group_tokens_per_second"][0]
    report["graph_capture_failures"] = capture_failures()
    for failure in report["graph_capture_failures"]:  # say it in the log too, once: the timings mean eager pieces
        if failure not in _ANNOUNCED:
            _ANNOUNCED.add(failure)
            print(f"warning: a piece was not captured as a CUDA graph and runs eagerly: {failure}", flush=True)
    report["hardware"]["load_average_last"] = list(os.getloadavg())


_ANNOUNCED: set = set()  # capture failures already printed


def _report(args, pair, batch: int, load_s: float) -> dict:
    return {
        "benchmark": "bench_decode",
        "pair": args.pair,
        "batch": batch,
        "command": " ".join([sys.executable, *sys.argv]),
        "hardware": _hardware(pair.device),
        "load_seconds": load_s,
        "meta": run_metadata(config=vars(args), models=dict(pair.names), argv=sys.argv, device=pair.device,
                             dtype=pair.dtype, seed=args.seed),
        "runs": {},
    }


def _hardware(device) -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in _read("/proc/cpuinfo").splitlines()
                if line.startswith("model name")), platform.processor())
    import torch

    return {"machine": platform.machine(), "nproc": os.cpu_count(), "cpu": cpu, "load_average": list(os.getloadavg()),
            "torch_threads": torch.get_num_threads(), "device": str(device), "python": platform.python_version()}


def _read(path) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _write(reports: dict, args) -> None:
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for batch, report in reports.items():
        path = out / f"bench_decode_{args.pair}_b{batch}.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(report, indent=1, default=float) + "\n")
        tmp.replace(path)  # never a half-written file


def _groups(prompts, batch: int, num_prompts: int) -> list:
    n = max(num_prompts, batch)
    n += (-n) % batch
    chosen = [prompts[i % len(prompts)] for i in range(n)]
    return [chosen[i: i + batch] for i in range(0, n, batch)]


def _rngs(seed: int, group: int, rows: int) -> list:
    return [np.random.default_rng([seed, group, r]) for r in range(rows)]


def _line(r: dict) -> str:
    if "tokens_equal" in r:
        return f"tokens equal: {r['tokens_equal']}"
    if "tokens_per_second" not in r:
        return r.get("error") or r.get("skipped", "")
    text = f"{r['tokens_per_second']:8.1f} tok/s"
    if "tokens_per_step" in r:
        ms = r["ms_per_step"]
        text += (f"  tokens/step {r['tokens_per_step']:.2f}  verify/target {r['verify_fraction_of_target'] or 0:.1%}"
                 f"  bound {r['bound_tokens_per_second']:.1f}  forwards/step {r['step_fraction_of_bound'] or 0:.0%}"
                 f"  ms/step " + " ".join(f"{k} {v:.2f}" for k, v in ms.items()))
    return text


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n\n")[-1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", default="smollm2", help="model, or 'tiny' / 'tiny:V' (random, no weights, 256 or V tokens) for a dry run")
    p.add_argument("--draft", default="smollm2-layers:4")
    p.add_argument("--pair", default="pair", help="name used in the output file names")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--trees", default="2^4")
    p.add_argument("--methods", default="spechub,rrs,rrs_wor,traversal")
    p.add_argument("--compile-verify", default=None, metavar="BACKEND",
                   help="also run every tree method with the verification piece through torch.compile(backend=BACKEND), "
                        "e.g. inductor (CUDA) or eager (a dry run): rows '[fast, compiled verify]'")
    p.add_argument("--compile-forward", default=None, metavar="BACKEND",
                   help="also run ar and every tree method with each draft level and the target forward through "
                        "torch.compile(backend=BACKEND) before graph capture: rows '[fast, compiled forwards]' (the tree "
                        "rows '[fast, compiled forwards + verify]' when --compile-verify is given too)")
    p.add_argument("--batch-sizes", default="1,16")
    p.add_argument("--temperature", type=float, default=0.6)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--prompts", default="builtin")
    p.add_argument("--num-prompts", type=int, default=4, help="prompts per run (at least one group of a batch)")
    p.add_argument("--hf-groups", type=int, default=2, help="groups HF generate() decodes (it is slow)")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--time-budget-s", type=float, default=1e9, help="no new run starts after this (from start)")
    p.add_argument("--min-left-s", type=float, default=5.0, help="skip a run when less than this is left")
    p.add_argument("--skip-hf", action="store_true", help="our runs only (fast vs eager on a CPU)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--out-dir", default=".", help="folder of bench_decode_<pair>_b<batch>.json")
    return p


if __name__ == "__main__":
    sys.exit(main())
