"""Tree speculative decoding with real models: tokens per step, speed and per-node exact acceptance.

Convention: p = target, q = draft; tokens per step = accepted drafts + 1 (bonus included).
``spechub decode`` parses its options into :class:`empirical.run.DecodeConfig` and calls
:func:`empirical.run.run_decode`; defaults are read from the config dataclass.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields

from empirical.compile_choice import COMPILE_CHOICES
from empirical.run import DECODE_METHODS, DecodeConfig, run_decode

__all__ = ["EPILOG", "add_arguments", "run", "config_from_args"]

EPILOG = """\
Examples:
  spechub decode --target smollm2 --draft smollm2-layers:4 --tree 2^3 --num-prompts 2 --max-new-tokens 16 --out /tmp/x
  spechub decode --target qwen2.5-coder-1.5b --draft qwen2.5-coder-0.5b --tree 2^2 --num-prompts 2 --max-new-tokens 16 --out /tmp/q
  spechub decode --target /root/stage/smol.gguf --draft layers:4 --device cuda --tree 2^2,2^3,2^4 \\
      --methods spechub,rrs,rrs_wor,ar --temperature 0.6 --out runs/smol
  spechub decode --target meta-llama/Llama-2-7b-chat-hf --draft JackFram/llama-68m --prompts mt_bench.jsonl --out runs/llama

Models: a hub id or folder, a .gguf file, or a registry alias fetched on first use (spechub models
list: smollm2, qwen2.5-coder-1.5b, qwen2.5-coder-0.5b; $SPECHUB_SMOLLM2_GGUF overrides smollm2); drafts also 'layers:N' (= 'smollm2-layers:N', the target's
first N layers sharing its weights) and 'smollm2-draft' (the project's distilled draft).
Output: OUT/records.jsonl (one line per tree, method and prompt, written as it goes; rerunning
the same command resumes), OUT/summary.json (tokens per step with 95% bootstrap intervals over
prompts, tokens/s, phase times, node table of exact acceptance per method), OUT/config.json.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``spechub decode`` options (defaults from :class:`DecodeConfig`).

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The parser to add the options to.
    """
    d = {f.name: f.default for f in fields(DecodeConfig)}
    parser.add_argument("--target", default=d["target"], help="target model (default: %(default)s)")
    parser.add_argument("--draft", default=d["draft"], help="draft model (default: %(default)s)")
    parser.add_argument("--tree", default=",".join(d["trees"]),
                        help="token tree(s), comma-separated: k^d, chain-L or a branching list in quotes (default: %(default)s)")
    parser.add_argument("--methods", default=",".join(d["methods"]),
                        help=f"comma-separated, from {', '.join(DECODE_METHODS)} (default: %(default)s)")
    parser.add_argument("--temperature", type=float, default=d["temperature"], help="for p and q; 0 = greedy (default: %(default)s)")
    parser.add_argument("--top-p", type=float, default=d["top_p"], help="nucleus for p and q (default: %(default)s)")
    parser.add_argument("--prompts", default=d["prompts"],
                        help="'builtin', a .jsonl file ({'turns': [...]} or {'prompt': ...}) or a HF dataset name[:config[:split]]")
    parser.add_argument("--num-prompts", type=int, default=d["num_prompts"], help="(default: %(default)s)")
    parser.add_argument("--max-new-tokens", type=int, default=d["max_new_tokens"], help="(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=d["seed"], help="(default: %(default)s)")
    parser.add_argument("--device", default=d["device"], help="cpu, cuda, cuda:1 ... (default: %(default)s)")
    parser.add_argument("--dtype", default=d["dtype"], help="weights: auto (fp32 on CPU, bf16 on CUDA), float32, bfloat16, float16")
    parser.add_argument("--node-methods", default=None,
                        help="methods whose exact acceptance is recorded at every verified node (default: all available)")
    parser.add_argument("--engine", default=d["engine"], choices=("auto", "torch", "numpy"),
                        help="drafting and verification on the device (torch) or with the float64 numpy core; "
                        "same tokens either way (default: %(default)s = torch on CUDA except kseq, numpy on CPU)")
    parser.add_argument("--runtime", default=d["runtime"], choices=("fast", "eager"),
                        help="fast: static caches, CUDA graphs on CUDA, verification on the device, one host sync per "
                        "step, where the method and tree allow it (else eager); eager: the reference decoder; same "
                        "tokens either way (default: %(default)s)")
    parser.add_argument("--compile", default=d["compile"], choices=tuple(COMPILE_CHOICES),
                        help="fast runtime: pieces through torch.compile (inductor) before CUDA-graph capture: "
                        "verify (the verification piece), forwards (each draft level and the target forward), all, "
                        "or off; each new tree and batch shape then compiles once (tens of seconds). Same law of "
                        "tokens; on a CPU inductor needs a C++ compiler. Default: $SPECHUB_COMPILE_VERIFY / "
                        "$SPECHUB_COMPILE_FORWARD, unset = off")
    parser.add_argument("--batch-size", type=int, default=d["batch_size"],
                        help="prompts decoded together in lockstep, one forward per tree level for all; same tokens "
                        "as one at a time, several times the throughput on a GPU (default: %(default)s)")
    parser.add_argument("--out", required=True, help="output folder (created; resumed if it holds the same run)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def config_from_args(args) -> DecodeConfig:
    """The :class:`DecodeConfig` of parsed arguments.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed command-line arguments.

    Returns
    -------
    DecodeConfig
    """
    split = lambda text: tuple(x.strip() for x in text.split(",") if x.strip())  # noqa: E731
    return DecodeConfig(
        target=args.target, draft=args.draft, trees=_split_trees(args.tree), methods=split(args.methods),
        temperature=args.temperature, top_p=args.top_p, prompts=args.prompts, num_prompts=args.num_prompts,
        max_new_tokens=args.max_new_tokens, seed=args.seed, device=args.device, dtype=args.dtype,
        node_methods=split(args.node_methods) if args.node_methods else None, engine=args.engine,
        batch_size=args.batch_size, runtime=args.runtime, compile=args.compile,
    )


def run(args) -> int:
    """Run ``spechub decode``; prints a one-line-per-run table to stdout. Returns 0.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed command-line arguments.

    Returns
    -------
    int
    """
    summary = run_decode(config_from_args(args), args.out, argv=["spechub", *sys.argv[1:]], progress=not args.quiet)
    for r in summary["runs"]:
        tps = r["tokens_per_step"]
        speed = r["timing"]["decode_tokens_per_second"]
        print(f"{r['tree']:>8} {r['method']:>8}  tokens/step {tps['value']:.3f} [{tps['low']:.3f}, {tps['high']:.3f}]"
              f"  {speed:.1f} tok/s  ({r['prompts']} prompts)")
    print(json.dumps({"out": str(args.out), "runs": len(summary["runs"])}))
    return 0


def _split_trees(text: str) -> tuple:
    """Split ``2^2,2^3`` into trees; a branching list such as ``"2,2,1"`` stays whole when no
    entry has '^' or 'chain' (then the whole string is one tree)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if parts and all(p.isdigit() for p in parts):
        return (text.strip(),)
    return tuple(parts)
