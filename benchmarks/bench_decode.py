"""Benchmark: tree speculative decoding vs ``generate()`` sampling vs HF assisted generation, one pair.

Convention: p = target, q = draft; tokens per step = accepted drafts + 1. All engines decode the
same prompts with the same temperature / top-p (top-k off) after one warm-up; the clock is
synchronised on CUDA. Reports tokens/s side by side and the verification time (drafting excluded:
the tree walk, with the torch engine on the device and with the numpy core on the host) as a
fraction of the target forward time (goal on GPU: < 5%).

Run (GPU):   python3 benchmarks/bench_decode.py --target smollm2 --draft smollm2-layers:4 --device cuda --out $OUT/bench_decode.json
Run (CPU):   python3 benchmarks/bench_decode.py --num-prompts 1 --max-new-tokens 16 --tree 2^3 --out /tmp/bench_decode.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from empirical.decode_types import AR, Sampling  # noqa: E402
from empirical.decoder import decode  # noqa: E402
from empirical.fast_verify import FAST_METHODS  # noqa: E402
from empirical.metadata import run_metadata  # noqa: E402
from empirical.models import load_pair  # noqa: E402
from empirical.prompts import encode_prompt, load_prompts  # noqa: E402
from empirical.timing import synchronize  # noqa: E402


def main(argv=None) -> int:
    """Parse arguments, run every engine on every prompt, print a table and write JSON."""
    args = _parser().parse_args(argv)
    pair = load_pair(args.target, args.draft, device=args.device, dtype=args.dtype)
    sampling = Sampling(args.temperature, args.top_p)
    prompts = [encode_prompt(pair.tokenizer, p) for p in load_prompts(args.prompts, num_prompts=args.num_prompts)]
    tree_engines = ("torch", "numpy") if args.method in FAST_METHODS else ("numpy",)
    engines = {
        **{f"tree {args.tree} {args.method} [{e}]": _tree_engine(pair, args, sampling, e) for e in tree_engines},
        "ar (ours)": lambda ids, rng: _ours(pair, ids, None, AR, sampling, args, rng, "numpy"),
        "generate()": lambda ids, rng: _generate(pair, ids, sampling, args, assistant=False),
        "assisted generate()": lambda ids, rng: _generate(pair, ids, sampling, args, assistant=True),
    }
    results = {}
    for name, engine in engines.items():
        engine(prompts[0][:8], np.random.default_rng(0))  # warm-up (kernels, allocator), not timed
        runs = [engine(ids, np.random.default_rng([args.seed, i])) for i, ids in enumerate(prompts)]
        results[name] = _aggregate(runs)
        print(f"{name:>28}: {results[name]['tokens_per_second']:8.1f} tok/s"
              + (f"  tokens/step {results[name]['tokens_per_step']:.3f}  verify/target {results[name]['verify_fraction_of_target']:.3%}"
                 if "tokens_per_step" in results[name] else ""), file=sys.stderr)
    base = results["generate()"]["tokens_per_second"]
    for r in results.values():
        r["speedup_vs_generate"] = r["tokens_per_second"] / base if base else None
    report = {
        "benchmark": "bench_decode",
        "command": " ".join([sys.executable, *sys.argv]),
        "hardware": {"machine": platform.machine(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "meta": run_metadata(config=vars(args), models=dict(pair.names), argv=sys.argv, device=pair.device,
                             dtype=pair.dtype, seed=args.seed),
        "results": results,
    }
    text = json.dumps(report, indent=1)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


def _tree_engine(pair, args, sampling, engine):
    """Tree decoding with the given verification engine, as a benchmark engine."""
    return lambda ids, rng: _ours(pair, ids, args.tree, args.method, sampling, args, rng, engine)


def _ours(pair, ids, tree, method, sampling, args, rng, engine) -> dict:
    synchronize(pair.device)
    start = time.perf_counter()
    result = decode(pair, ids, tree=tree, method=method, sampling=sampling, max_new_tokens=args.max_new_tokens, rng=rng,
                    engine=engine)
    synchronize(pair.device)
    seconds = time.perf_counter() - start
    phases = {ph: sum(s.seconds[ph] for s in result.steps) for ph in ("draft", "target", "verify", "cache")}
    return {"tokens": len(result.tokens), "steps": len(result.steps), "seconds": seconds, "phases": phases}


def _generate(pair, ids, sampling, args, *, assistant: bool) -> dict:
    import torch

    inputs = torch.as_tensor([ids], device=pair.device)
    kwargs = dict(max_new_tokens=args.max_new_tokens, pad_token_id=pair.tokenizer.eos_token_id, top_k=0)
    if sampling.temperature > 0:
        kwargs.update(do_sample=True, temperature=sampling.temperature, top_p=sampling.top_p)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None)
    if assistant:
        kwargs["assistant_model"] = pair.draft
    synchronize(pair.device)
    start = time.perf_counter()
    with torch.inference_mode():
        out = pair.target.generate(inputs, attention_mask=torch.ones_like(inputs), **kwargs)
    synchronize(pair.device)
    return {"tokens": int(out.shape[1] - inputs.shape[1]), "seconds": time.perf_counter() - start}


def _aggregate(runs) -> dict:
    tokens = sum(r["tokens"] for r in runs)
    seconds = sum(r["seconds"] for r in runs)
    out = {"prompts": len(runs), "tokens": tokens, "seconds": seconds, "tokens_per_second": tokens / seconds}
    if "steps" in runs[0]:
        steps = sum(r["steps"] for r in runs)
        phases = {ph: sum(r["phases"][ph] for r in runs) for ph in runs[0]["phases"]}
        out.update(
            tokens_per_step=tokens / steps,
            ms_per_step={ph: 1e3 * s / steps for ph, s in phases.items()},
            verify_fraction_of_target=phases["verify"] / phases["target"] if phases["target"] else None,
        )
    return out


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__.split("\n\n")[-1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", default="smollm2")
    p.add_argument("--draft", default="smollm2-layers:4")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--tree", default="2^4")
    p.add_argument("--method", default="spechub")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--prompts", default="builtin")
    p.add_argument("--num-prompts", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="JSON report path")
    return p


if __name__ == "__main__":
    sys.exit(main())
