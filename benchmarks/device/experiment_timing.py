"""Tokens per second of every method of the validation experiment, ``ar`` and HF ``generate()``,
measured side by side in one process on a quiet device (the driver runs it after its workers).

Same prompts, temperature (top-p 1, top-k off) and token budget for every engine, one untimed
warm-up each, the clock synchronised on CUDA; at batch 1 (prompts one after the other) and at the
experiment's batch size (all rows in lockstep; ``generate()`` left-padded). Per method also the
verification time (the tree walk) as a share of the target forward time.
"""

from __future__ import annotations

import time

import numpy as np

from empirical.decoder import decode_batch
from empirical.decoder import AR, Sampling
from empirical.summary import PHASES
from empirical.timing import synchronize

__all__ = ["measure"]


def measure(pair, ids: list, engines: list, *, temperature: float, max_new_tokens: int, batch_sizes=(1, 25),
            batch1_prompts: int = 2, seed: int = 0) -> dict:
    """Time every engine at every batch size.

    Parameters
    ----------
    pair : empirical.models.ModelPair
    ids : list of list of int
        Encoded prompts; batch 1 uses the first ``batch1_prompts``, batch B the first B.
    engines : list of (tree, method)
        Tree decoding cells to time (``("none", "ar")`` for plain sampling); ``generate()`` is added.

    Returns
    -------
    dict: ``rows`` (one per engine and batch size: tokens, seconds, tokens_per_second,
    tokens_per_step, ms_per_step by phase, verify_fraction_of_target, speedup_vs_generate).
    """
    sampling = Sampling(temperature, 1.0)
    rows = []
    for bs in batch_sizes:
        groups = [[x] for x in ids[:batch1_prompts]] if bs == 1 else [ids[:bs]]
        timed = {}
        for tree, method in list(engines) + [("none", "generate")]:
            run = (lambda g, n, m=method, t=tree: _generate(pair, g, sampling, n)) if method == "generate" else \
                (lambda g, n, m=method, t=tree: _ours(pair, g, t, m, sampling, n, seed))
            run(groups[0], 4)  # warm-up at this batch size: kernels, allocator
            parts = [run(g, max_new_tokens) for g in groups]
            row = {"batch_size": bs, "tree": tree, "method": method, "prompts": sum(len(g) for g in groups),
                   "tokens": sum(p["tokens"] for p in parts), "seconds": sum(p["seconds"] for p in parts)}
            row["tokens_per_second"] = row["tokens"] / row["seconds"]
            if method != "generate":
                steps = sum(p["steps"] for p in parts)
                phases = {ph: sum(p["phases"][ph] for p in parts) for ph in PHASES}
                row.update(tokens_per_step=row["tokens"] / max(steps, 1),
                           ms_per_step={ph: 1e3 * s / max(steps, 1) for ph, s in phases.items()},
                           verify_fraction_of_target=phases["verify"] / phases["target"] if phases["target"] else None)
            timed[(tree, method)] = row
            print(f"timing batch {bs} {tree} {method}: {row['tokens_per_second']:.1f} tokens/s", flush=True)
        base = timed[("none", "generate")]["tokens_per_second"]
        for row in timed.values():
            row["speedup_vs_generate"] = row["tokens_per_second"] / base
        rows += list(timed.values())
    return {"temperature": temperature, "max_new_tokens": max_new_tokens, "rows": rows}


def _ours(pair, group, tree, method, sampling, max_new_tokens, seed) -> dict:
    rngs = [np.random.default_rng([seed, i]) for i in range(len(group))]
    synchronize(pair.device)
    start = time.perf_counter()
    results = decode_batch(pair, group, tree=None if method == AR else tree, method=method, rngs=rngs,
                           sampling=sampling, max_new_tokens=max_new_tokens)
    synchronize(pair.device)
    seconds = time.perf_counter() - start
    steps = [s for r in results for s in r.steps]
    return {"tokens": sum(len(r.tokens) for r in results), "steps": sum(len(r.steps) for r in results), "seconds": seconds,
            "phases": {ph: sum(s.seconds.get(ph, 0.0) for s in steps) for ph in PHASES}}


def _generate(pair, group, sampling, max_new_tokens) -> dict:
    """HF sampling, left-padded batch; tokens counted up to each row's first EOS."""
    import torch

    pad = pair.tokenizer.pad_token_id if pair.tokenizer.pad_token_id is not None else min(pair.eos_token_ids)
    width = max(len(x) for x in group)
    inputs = torch.full((len(group), width), int(pad), dtype=torch.long)
    mask = torch.zeros_like(inputs)
    for b, x in enumerate(group):
        inputs[b, width - len(x):] = torch.as_tensor(x)
        mask[b, width - len(x):] = 1
    inputs, mask = inputs.to(pair.device), mask.to(pair.device)
    kwargs = dict(max_new_tokens=max_new_tokens, pad_token_id=int(pad), top_k=0, do_sample=True,
                  temperature=sampling.temperature, top_p=1.0)
    synchronize(pair.device)
    start = time.perf_counter()
    with torch.inference_mode():
        out = pair.target.generate(inputs, attention_mask=mask, **kwargs)
    synchronize(pair.device)
    seconds = time.perf_counter() - start
    new = out[:, width:].tolist()
    tokens = 0
    for row in new:
        cut = [i for i, t in enumerate(row) if t in pair.eos_token_ids]
        tokens += cut[0] + 1 if cut else len(row)
    return {"tokens": tokens, "seconds": seconds}
