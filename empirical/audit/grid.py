r"""The audit grid of docs/audit.md: installed transformers across sampling settings, JSON per run.

Convention: p = target, q = draft; settings T in {0.6, 1.0} x top-k in {off, 50} x top-p in {1, 0.9}.
Run: ``python -m empirical.audit.grid --out results/audit [--tv 0.05] [--model-tv 0.15]``; each
result is written atomically as it finishes, and a finished file is skipped on a rerun.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os

import numpy as np

from spechub_theory.montecarlo.audit_stats import json_ready

__all__ = ["SETTINGS", "run_grid", "draft_law_drift"]

SETTINGS = [(t, k, p) for t, k, p in itertools.product((0.6, 1.0), (0, 50), (1.0, 0.9))]


def draft_law_drift(pair, ids, sampling) -> dict:
    """TV between the law of HF's first proposal and the draft's own law.

    The law HF's ``AssistedCandidateGenerator`` draws its first proposal from (its claimed q1)
    against the draft's own law for plain sampling at the same settings (the ``scores`` of
    ``draft.generate``): 0 unless the generator processes the draft logits differently.

    Parameters
    ----------
    pair : ModelPair
    ids : torch.Tensor
    sampling : Sampling

    Returns
    -------
    dict
    """
    from .end_to_end import target_law
    from .generator_level import HFCandidateGenerator, capture_candidate_generator

    claimed = HFCandidateGenerator(capture_candidate_generator(pair.target, pair.draft, ids, sampling), ids)(np.random.default_rng(0))[1][0]
    plain = target_law(pair.draft, ids, sampling).p1
    return {"tv": 0.5 * float(np.abs(claimed - plain).sum()), "support_claimed": int((claimed > 0).sum()),
            "support_plain": int((plain > 0).sum()), "max_claimed": float(claimed.max()), "max_plain": float(plain.max())}


def run_grid(out: str, *, tv: float = 0.05, model_tv: float = 0.15, vocab: int = 100, seed: int = 0, log=print) -> None:
    """Write one JSON file per run under ``out``.

    Runs: function level with synthetic laws, the ensemble sweep, generator level and end to end on
    a tiny random pair, the draft-law drift.

    Parameters
    ----------
    out : str
    tv : float, optional
    model_tv : float, optional
    vocab : int, optional
    seed : int, optional
    log : callable, optional
    """
    import torch

    from ..tiny import tiny_pair
    from . import (HFCandidateGenerator, HFGenerate, HFSpeculativeSampling, Sampling, audit_function, audit_generate,
                   audit_generator, capture_candidate_generator, ensemble_sweep, synthetic_case, target_law)

    os.makedirs(out, exist_ok=True)

    def save(name, make):
        path = os.path.join(out, name + ".json")
        if os.path.exists(path):
            return
        doc = make()
        with open(path + ".tmp", "w", encoding="utf-8") as fh:
            json.dump(json_ready(doc), fh, indent=1, allow_nan=False)
        os.replace(path + ".tmp", path)
        log(f"{name}: {doc.get('verdict', '')}")

    import transformers

    meta = {"transformers": transformers.__version__, "torch": torch.__version__}
    for t, k, p in SETTINGS:
        s = Sampling(t, k, p)
        tag = f"T{t:g}_k{k}_p{p:g}"
        case = synthetic_case(vocab, seed=seed, sampling=s)
        save(f"function_{tag}", lambda: {**meta, **audit_function(HFSpeculativeSampling(), case, tv=tv, rng=seed).to_dict()})
    case = synthetic_case(vocab, seed=seed, sampling=Sampling(1.0, 0, 1.0))
    save("function_ensemble_sweep_T1", lambda: {**meta, "sweep": ensemble_sweep(case, tv=tv, rng=seed), "verdict": "sweep"})
    pair = tiny_pair(32, seed=seed)
    ids = torch.tensor([[3, 5, 7, 9]])
    for t, k, p in SETTINGS:
        s = Sampling(t, k if k == 0 else 5, p)  # top-k 50 would be off on a 32-token vocabulary: use 5
        tag = f"T{t:g}_k{s.top_k}_p{p:g}"
        gen = HFCandidateGenerator(capture_candidate_generator(pair.target, pair.draft, ids, s), ids)
        save(f"generator_tiny_{tag}", lambda: {**meta, **audit_generator(gen, tv=model_tv, rng=seed, settings=s.to_dict()).to_dict(),
                                               "draft_law_drift": draft_law_drift(pair, ids, s)})
    for t, k, p in [(0.6, 5, 0.9), (1.0, 0, 1.0)]:
        s = Sampling(t, k, p)
        tag = f"T{t:g}_k{k}_p{p:g}"
        law = target_law(pair.target, ids, s, eos_ids=pair.eos_token_ids)
        save(f"generate_tiny_{tag}", lambda: {**meta, **audit_generate(HFGenerate(pair.target, pair.draft, ids, s), law,
                                                                        tv=model_tv, rng=seed, settings=s.to_dict()).to_dict()})


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="results/audit")
    ap.add_argument("--tv", type=float, default=0.05)
    ap.add_argument("--model-tv", type=float, default=0.15)
    ap.add_argument("--vocab", type=int, default=100)
    a = ap.parse_args()
    run_grid(a.out, tv=a.tv, model_tv=a.model_tv, vocab=a.vocab)
