"""Prove or refute that a speculative sampler is lossless: transformers' verifier, candidate generator, generate, or yours.

Convention: p = target, q = draft; exit status 0 = passes at the stated power, 1 = refuted, 2 = bad
input. ``spechub audit`` parses its options, builds the sampler and its fixed context, and calls
one of ``empirical.audit.audit_function`` / ``audit_generator`` / ``audit_generate``.
"""

from __future__ import annotations

import argparse
import json
import sys

__all__ = ["EPILOG", "add_arguments", "run"]

EPILOG = """\
Examples:
  spechub audit --self-test
  spechub audit hf-function --vocab 1000 --seed 0 --temperature 0.6 --top-k 50 --tv 0.02 --json
  spechub audit hf-function --vocab 64 --ensemble-weight 0,0.25,0.5,0.75,1 --tv 0.05
  spechub audit hf-generator --target tiny --draft tiny --temperature 0.6 --top-k 5 --tv 0.1
  spechub audit hf-generate --target smollm2 --draft smollm2-draft --top-p 0.9 --tv 0.02 --power 0.99
  spechub audit python:mypkg.verify:my_verifier --vocab 64 --tv 0.05

Samplers: hf-function (transformers' _speculative_sampling, one call per trial; with --ensemble-weight
its DIVERSE option: a list of weights gives the distortion sweep), hf-generator (the
AssistedCandidateGenerator that generate builds: proposals against the q it returns), hf-generate
(generate(assistant_model=...): the first two tokens against the target's own processed law), and
python:MODULE:CALLABLE (the protocol in docs/audit.md). Models: 'tiny' (a random Llama pair, no
download), a hub id or folder, a .gguf file, 'smollm2'; drafts also 'smollm2-draft', 'layers:N'.
Without --target, hf-function and python: samplers use a synthetic LLM-like case (--vocab, --seed).
"""

SAMPLERS = ("hf-function", "hf-generator", "hf-generate")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the ``spechub audit`` options.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The parser to add the options to.
    """
    parser.add_argument("sampler", nargs="?", help=f"one of {', '.join(SAMPLERS)} or python:MODULE:CALLABLE")
    parser.add_argument("--self-test", action="store_true", help="reference samplers must pass, planted bugs must fail (exit 0 iff all do)")
    parser.add_argument("--target", default=None, help="target model ('tiny', hub id, folder, .gguf, 'smollm2')")
    parser.add_argument("--draft", default=None, help="draft model (same forms, plus 'smollm2-draft', 'layers:N')")
    parser.add_argument("--prompt", default=None, help="fixed prompt text (default: a short one per tokenizer)")
    parser.add_argument("--temperature", type=float, default=1.0, help="(default: %(default)s)")
    parser.add_argument("--top-k", type=int, default=0, help="0 = off (default: %(default)s)")
    parser.add_argument("--top-p", type=float, default=1.0, help="1 = off (default: %(default)s)")
    parser.add_argument("--tv", type=float, default=0.01, help="total variation the test must detect (default: %(default)s)")
    parser.add_argument("--power", type=float, default=0.99, help="probability of refuting a sampler --tv away (default: %(default)s)")
    parser.add_argument("--alpha", type=float, default=1e-3, help="false-alarm probability for a lossless sampler (default: %(default)s)")
    parser.add_argument("--ensemble-weight", default=None,
                        help="hf-function/hf-generate: assistant_ensemble_weight W in [0, 1]; a comma list sweeps (hf-function)")
    parser.add_argument("--vocab", type=int, default=64, help="synthetic case: vocabulary size n (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="synthetic case and sampling seed (default: %(default)s)")
    parser.add_argument("--draft-length", type=int, default=1, help="function level: draft tokens per call L (default: %(default)s)")
    parser.add_argument("--trials", type=int, default=None, help="override the sample size from the power analysis")
    parser.add_argument("--device", default="cpu", help="(default: %(default)s)")
    parser.add_argument("--workers", type=int, default=1,
                        help="hf-generate: forked processes drawing the trials (CPU only; default: %(default)s)")
    parser.add_argument("--no-memo", action="store_true",
                        help="hf-generator/hf-generate: run every model forward (default: repeated forwards come from an exact memo)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--out", default=None, help="also write the JSON to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    """Run ``spechub audit``; returns 0 (pass), 1 (refuted) or raises ValueError (exit 2).

    Parameters
    ----------
    args : argparse.Namespace
        Parsed command-line arguments.

    Returns
    -------
    int

    Raises
    ------
    ValueError
        On bad input (the message names the rule): Name a sampler (... or python:MODULE:CALLABLE) or
        pass --self-test; or give either a sampler or --self-test, not both; or unknown sampler ...:
        use one of ... or python:MODULE:CALLABLE.
    """
    from empirical.audit.cases import Sampling

    if args.self_test:
        if args.sampler:
            raise ValueError("give either a sampler or --self-test, not both.")
        return _self_test(args)
    if not args.sampler:
        raise ValueError(f"name a sampler ({', '.join(SAMPLERS)} or python:MODULE:CALLABLE) or pass --self-test.")
    sampling = Sampling(args.temperature, args.top_k, args.top_p)
    weights = _weights(args.ensemble_weight)
    bar = _Progress(not args.quiet)
    kw = dict(tv=args.tv, alpha=args.alpha, power=args.power, n_trials=args.trials, rng=args.seed, progress=bar)
    extra = {}
    if args.sampler == "hf-function" or args.sampler.startswith("python:"):
        out, extra = _function(args, sampling, weights, kw)
    elif args.sampler in ("hf-generator", "hf-generate"):
        out = _model_level(args, sampling, weights, kw)
    else:
        raise ValueError(f"unknown sampler {args.sampler!r}: use one of {', '.join(SAMPLERS)} or python:MODULE:CALLABLE.")
    bar.close()
    results = out if isinstance(out, list) else [out]
    doc = {"command": "audit", "sampler": args.sampler, "argv": ["spechub", *sys.argv[1:]], **_versions(),
           "results": [r.to_dict() for r in results], **extra}
    _emit(args, doc, [r.report() for r in results])
    return 0 if all(r.passed for r in results) else 1


def _function(args, sampling, weights, kw):
    from empirical.audit import HFSpeculativeSampling, audit_function, ensemble_law, resolve_sampler
    from empirical.audit.cases import synthetic_case
    from spechub_theory.montecarlo.audit_stats import distortion

    case = _model_case(args, sampling) if args.target else synthetic_case(args.vocab, seed=args.seed, sampling=sampling,
                                                                           draft_length=args.draft_length)
    if args.sampler.startswith("python:"):
        sampler, level = resolve_sampler(args.sampler)
        if level == "generator":
            from empirical.audit import audit_generator

            return audit_generator(sampler, **kw), {}
        return audit_function(sampler, case, **kw), {}
    if len(weights) > 1:  # distortion sweep: one result per weight, exact formula alongside
        results, formula = [], []
        for w in weights:
            results.append(audit_function(HFSpeculativeSampling(w), case, **kw))
            formula.append({"ensemble_weight": w, **distortion(ensemble_law(case, w), case.p[0]).to_dict()})
        return results, {"ensemble_formula": formula}
    return audit_function(HFSpeculativeSampling(weights[0] if weights else None), case, **kw), {}


def _model_level(args, sampling, weights, kw):
    from empirical.audit import HFCandidateGenerator, HFGenerate, audit_generate, audit_generator, capture_candidate_generator, target_law

    if not args.target or not args.draft:
        raise ValueError(f"`{args.sampler}` needs --target and --draft (e.g. --target tiny --draft tiny).")
    if len(weights) > 1:
        raise ValueError("`--ensemble-weight` takes one weight for hf-generator/hf-generate.")
    from empirical.audit.parallel import check_workers

    check_workers(args.workers)
    w = weights[0] if weights else None
    pair, ids = _load(args)
    settings = {**sampling.to_dict(), "target": args.target, "draft": args.draft, "prompt_ids": ids[0].tolist(),
                "ensemble_weight": w}
    if args.sampler == "hf-generator":
        gen = capture_candidate_generator(pair.target, pair.draft, ids, sampling, ensemble_weight=w)
        name = f"hf:{type(gen).__name__}"
        return audit_generator(HFCandidateGenerator(gen, ids, name, memo=not args.no_memo), name=name, settings=settings, **kw)
    law = target_law(pair.target, ids, sampling, eos_ids=pair.eos_token_ids)
    return audit_generate(HFGenerate(pair.target, pair.draft, ids, sampling, ensemble_weight=w, memo=not args.no_memo), law,
                          settings=settings, workers=args.workers, **kw)


def _load(args):
    import torch

    if args.target == "tiny":
        if args.draft != "tiny":
            raise ValueError("`--target tiny` pairs only with `--draft tiny` (a perturbed copy sharing its tokenizer).")
        from empirical.tiny import tiny_pair

        pair = tiny_pair(32, seed=args.seed)
    else:
        from empirical.models import load_pair

        pair = load_pair(args.target, args.draft, device=args.device, dtype="float32")
    prompt = args.prompt if args.prompt is not None else ("w1 w3 w5 w7" if args.target == "tiny" else "The capital of France is")
    ids = pair.tokenizer(prompt, return_tensors="pt")["input_ids"].to(pair.device)
    if ids.shape[1] < 1:
        raise ValueError(f"`--prompt` {prompt!r} encodes to no tokens.")
    return pair, ids.to(torch.long)


def _model_case(args, sampling):
    """Function-level case from real models at the prompt (``empirical.audit.cases.model_case``)."""
    from empirical.audit.cases import model_case

    pair, ids = _load(args)
    return model_case(pair, ids, sampling, draft_length=args.draft_length, name=f"{args.target} | {args.draft} at {ids[0].tolist()}")


def _self_test(args) -> int:
    from empirical.audit.selftest import SelfTestConfig, self_test

    bar = _Progress(not args.quiet)

    def log(row):
        bar.close()
        if not args.json:
            print(f"[{'ok' if row.ok else 'FAIL'}] {row.check}: expected {row.expected}; " + row.report(), flush=True)

    rows = self_test(SelfTestConfig(seed=args.seed), progress=bar, log=log)
    bar.close()
    ok = all(r.ok for r in rows)
    doc = {"command": "audit --self-test", "ok": ok, **_versions(), "checks": [r.to_dict() for r in rows]}
    _emit(args, doc, [f"self-test: {sum(r.ok for r in rows)}/{len(rows)} checks as expected"])
    return 0 if ok else 1


def _weights(text):
    if text is None:
        return []
    try:
        ws = [float(x) for x in str(text).split(",") if x.strip()]
    except ValueError:
        raise ValueError(f"`--ensemble-weight` must be numbers in [0, 1], comma-separated; got {text!r}.") from None
    if not ws or any(not 0.0 <= w <= 1.0 for w in ws):
        raise ValueError(f"`--ensemble-weight` must be numbers in [0, 1], comma-separated; got {text!r}.")
    return ws


def _versions() -> dict:
    import numpy as np

    out = {"numpy": np.__version__}
    try:
        import torch
        import transformers

        out.update(transformers=transformers.__version__, torch=torch.__version__)
    except ImportError:  # pragma: no cover
        pass
    return out


def _emit(args, doc, lines) -> None:
    from spechub_theory.montecarlo.audit_stats import json_ready

    text = json.dumps(json_ready(doc), allow_nan=False, default=float)
    if args.out:
        import os

        tmp = f"{args.out}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
        os.replace(tmp, args.out)  # never a half-written file
    if args.json:
        print(text)
    else:
        print("\n".join(lines))


class _Progress:
    """``progress(done, total)`` callback drawing one bar per audit on stderr (empirical.progress)."""

    def __init__(self, enabled: bool):
        self.enabled, self.ctx, self.bar, self.total, self.done = enabled, None, None, None, 0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None or total != self.total or done < self.done:
            self.close()
            from empirical.progress import progress_bar

            self.ctx = progress_bar(total=total, desc="audit")
            self.bar, self.total, self.done = self.ctx.__enter__(), total, 0
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.ctx is not None:
            self.ctx.__exit__(None, None, None)
        self.ctx = self.bar = None
