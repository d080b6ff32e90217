r"""Generator-level audit: a candidate generator's proposals against the q it claims, at a fixed context.

Convention: q = the draft law the generator returns with its proposal, last axis = vocabulary;
the first proposed token must follow the claimed q1, the second (given the first) the claimed
q2(. | x1). Source: transformers #47932 (q returned without the processing that drew the draft).

**The protocol.** A generator-level sampler is a callable ``generator(rng) -> (tokens, q)`` with
``tokens`` int (L,) the proposal at the audit's fixed context and ``q`` float (L, n) the
probabilities it claims token j was drawn from given tokens < j (rows sum to 1). The adapter
:class:`HFCandidateGenerator` turns a transformers ``CandidateGenerator`` (``get_candidates``:
candidate ids and logits) into one.
"""

from __future__ import annotations

import time

import numpy as np

from spechub_theory.montecarlo.audit_stats import check_sizing, combined_test, counts_audit, histogram_test
from spechub_theory.montecarlo.stats import sample_size_for

from ..tiny import one_thread
from .cases import Sampling, hf_process, sample_rows, softmax64

__all__ = ["audit_generator", "HFCandidateGenerator", "ReferenceGenerator", "capture_candidate_generator",
           "GENERATOR_BUGS", "CLAIM_ATOL"]

#: claimed q1 at the fixed context may differ between calls by this much in TV (fp32 kernels,
#: cached vs uncached forward), beyond which the claim itself is inconsistent
CLAIM_ATOL = 1e-4


def audit_generator(generator, *, tv: float = 0.01, alpha: float = 1e-3, power: float = 0.99,
                    n_trials: int | None = None, rng=0, progress=None, name: str | None = None, settings=None):
    """Audit a generator-level sampler (module docstring).

    Two tests at level ``alpha / 2`` each: the first proposal against the claimed q1 (sized by
    ``sample_size_for(q1, tv, alpha / 2, power)``), and the second given the first against the
    claimed q2(. | x1) (one pooled chi-square per observed x1, summed: independent given the x1
    counts). A claimed q1 that changes between calls at the same context fails at once.

    Parameters
    ----------
    generator : callable ``generator(rng) -> (tokens, q)``
    tv, alpha, power : float
    n_trials : int, optional
    rng : seed or numpy Generator
    progress : callable, optional
    name : str, optional
    settings : dict, optional
        Recorded in the result.

    Returns
    -------
    AuditResult
    """
    label = name or getattr(generator, "NAME", type(generator).__name__)
    check_sizing(tv, alpha, power)
    start = time.perf_counter()
    g = np.random.default_rng(rng)
    tokens, q = _call(generator, g)
    q1 = q[0]
    n = len(q1)
    N = int(n_trials) if n_trials is not None else sample_size_for(q1, tv, alpha / 2, power)
    first = np.zeros(n, dtype=np.int64)
    second: dict[int, list] = {}  # x1 -> [claimed q2 (n,) float64, counts (n,) int64]
    drift = 0.0
    for i in range(N):
        if i:
            tokens, q = _call(generator, g)
        drift = max(drift, 0.5 * float(np.abs(q[0] - q1).sum()))
        first[tokens[0]] += 1
        if len(tokens) > 1:
            slot = second.setdefault(int(tokens[0]), [q[1], np.zeros(n, dtype=np.int64)])
            slot[1][tokens[1]] += 1
        if progress is not None and ((i + 1) % 64 == 0 or i + 1 == N):
            progress(i + 1, N)
    parts = [("first token", histogram_test(first, q1, alpha=alpha / 2))]
    if second:
        conditional = [histogram_test(c, q2, alpha=alpha / 2) for q2, c in second.values()]
        parts.append(("second token | first", combined_test(conditional, alpha=alpha / 2)))
    out = counts_audit(parts, first, q1, level="generator", sampler=label, tv=tv, alpha=alpha, power=power,
                       seconds=time.perf_counter() - start,
                       settings={**(settings or {}), "claim_drift_tv": drift, "seed": rng if isinstance(rng, int) else None})
    if drift > CLAIM_ATOL:
        from dataclasses import replace

        out = replace(out, passed=False, reason=(out.reason + "; " if out.reason else "")
                      + f"claimed q1 changes between calls at one context (TV {drift:.3g} > {CLAIM_ATOL:g})")
    return out


def capture_candidate_generator(target, draft, input_ids, sampling: Sampling, *, draft_length: int = 2,
                                ensemble_weight: float | None = None, plant=None):
    """The ``CandidateGenerator`` that HF's assisted generation builds for these settings.

    The one ``target.generate(input_ids, assistant_model=draft, ...)`` builds (captured from
    ``_get_candidate_generator``; generation is stopped before any token), with ``draft_length``
    candidate tokens per call (constant schedule). ``plant(gen, sampling)``, if given, plants a bug
    in it.

    Parameters
    ----------
    target : transformers.PreTrainedModel
    draft : transformers.PreTrainedModel
    input_ids : torch.Tensor
    sampling : Sampling
    draft_length : int, optional
    ensemble_weight : float or None, optional
    plant : callable, optional

    Returns
    -------
    transformers.generation.candidate_generator.CandidateGenerator

    Raises
    ------
    ValueError
        If transformers' generate did not build a candidate generator for these settings.
    """
    import torch

    class _Captured(Exception):
        pass

    build = target._get_candidate_generator
    config = draft.generation_config
    saved = (config.num_assistant_tokens, config.num_assistant_tokens_schedule)

    def grab(*args, **kwargs):
        raise _Captured(build(*args, **kwargs))

    config.num_assistant_tokens, config.num_assistant_tokens_schedule = int(draft_length), "constant"
    target._get_candidate_generator = grab
    try:
        target.generate(input_ids, attention_mask=torch.ones_like(input_ids), assistant_model=draft,
                        max_new_tokens=int(draft_length) + 1, pad_token_id=_pad(target),
                        assistant_ensemble_weight=ensemble_weight, **sampling.generate_kwargs())
    except _Captured as got:
        gen = got.args[0]
    else:  # pragma: no cover - generate changed its call path
        raise ValueError("transformers' generate did not build a candidate generator for these settings.")
    finally:
        del target._get_candidate_generator
        config.num_assistant_tokens, config.num_assistant_tokens_schedule = saved
    if plant is not None:
        plant(gen, sampling)
    return gen


class HFCandidateGenerator:
    """Adapter: a transformers ``CandidateGenerator`` at a fixed context as a generator-level sampler.

    Each call seeds torch's global generator from ``rng`` (inside ``fork_rng``), calls
    ``get_candidates(input_ids)`` and returns the proposal and ``softmax`` (float64) of the
    candidate logits it returns with it. O(one assistant ``generate``) per call. ``memo=True``
    serves the assistant's repeated forwards from an exact memo (:mod:`empirical.audit.memo`).
    """

    def __init__(self, generator, input_ids, name: str = "hf:AssistedCandidateGenerator", *, memo: bool = False):
        self.generator, self.input_ids, self.NAME = generator, input_ids, name
        self.memos = {} if memo else None

    def __call__(self, rng):
        """``(tokens (L,), q (L, n))``."""
        import torch

        from .memo import memoised

        model = getattr(self.generator, "assistant_model", None) if self.memos is not None else None
        with torch.random.fork_rng(devices=[]), torch.no_grad(), one_thread(), memoised(model, memos={} if self.memos is None else self.memos):
            torch.manual_seed(int(rng.integers(2**62)))
            ids, logits = self.generator.get_candidates(self.input_ids)
        start = self.input_ids.shape[1]
        if logits is None:
            raise ValueError(f"{self.NAME} returned no candidate logits (it claims no q; nothing to audit).")
        return ids[0, start:].cpu().numpy().astype(np.int64), softmax64(logits[0].float().cpu().numpy())


class ReferenceGenerator:
    """The project's reference generator.

    The draft's next-token logits processed by :func:`~empirical.audit.cases.hf_process`, sampled
    with numpy, claimed q = that law. Forwards are memoised per context (the model is
    deterministic), so repeated calls cost O(L) look-ups.
    """

    NAME = "reference-generator"

    def __init__(self, draft, input_ids, sampling: Sampling, draft_length: int = 2):
        self.draft, self.context, self.sampling, self.L = draft, input_ids[0].tolist(), sampling, int(draft_length)
        self._laws: dict[tuple, np.ndarray] = {}

    def law(self, context: tuple) -> np.ndarray:
        """Processed draft law after ``context`` (float64 (n,)).

        Parameters
        ----------
        context : tuple

        Returns
        -------
        numpy.ndarray
        """
        if context not in self._laws:
            import torch

            with torch.no_grad(), one_thread():
                z = self.draft(torch.tensor([list(context)])).logits[0, -1].float().numpy()  # [n]
            self._laws[context] = softmax64(hf_process(z[None], self.sampling))[0]
        return self._laws[context]

    def __call__(self, rng):
        """``(tokens (L,), q (L, n))``."""
        ctx, tokens, qs = tuple(self.context), [], []
        for _ in range(self.L):
            q = self.law(ctx)
            x = int(sample_rows(q[None], 1, rng=rng)[0, 0])
            tokens.append(x)
            qs.append(q)
            ctx = ctx + (x,)
        return np.array(tokens, dtype=np.int64), np.stack(qs)


def _plant_raw_q(gen, sampling: Sampling) -> None:
    """#47932 class: the proposal is drawn from the processed law, the returned q from raw logits."""
    import torch

    def generate_candidates(generation_args):
        out = gen.assistant_model.generate(**generation_args, **gen.assistant_kwargs, output_logits=True)
        gen.assistant_kwargs["cache"] = out.cache
        return out.sequences, torch.stack(out.logits, dim=1)

    gen._generate_candidates = generate_candidates


def _plant_q_without_temperature(gen, sampling: Sampling) -> None:
    """dflash #74 class: the returned q is the processed logits times T (one temperature undone;
    transformers 5.24's assistant applies it twice, docs/audit.md, so the claim is at T, not T^2)."""
    get = gen.get_candidates

    def get_candidates(input_ids, **kwargs):
        ids, logits = get(input_ids, **kwargs)
        return ids, None if logits is None else logits * float(sampling.temperature)

    gen.get_candidates = get_candidates


#: name -> (plant(gen, sampling), applies(sampling), description)
GENERATOR_BUGS = {
    "q_without_topk_topp": (_plant_raw_q, lambda s: bool(s.top_k) or s.top_p < 1.0,
                            "candidate q returned from raw logits while the draft was sampled after top-k/top-p (#47932)"),
    "q_without_temperature": (_plant_q_without_temperature, lambda s: s.temperature != 1.0,
                              "candidate q returned with one temperature division undone while the draft was sampled with it (dflash #74)"),
}


def _call(generator, g):
    tokens, q = generator(g)
    tokens = np.asarray(tokens)
    q = np.asarray(q, dtype=np.float64)
    if tokens.ndim != 1 or len(tokens) < 1 or q.ndim != 2 or q.shape[0] < len(tokens):
        raise ValueError(f"a generator must return tokens (L,) and q (L, n); got shapes {tokens.shape} and {q.shape}.")
    if not np.issubdtype(tokens.dtype, np.integer) or tokens.min() < 0 or tokens.max() >= q.shape[1]:
        raise ValueError(f"a generator must return integer token ids in [0, {q.shape[1]}); got {tokens.tolist()}.")
    return tokens, q


def _pad(model):
    eos = getattr(model.generation_config, "eos_token_id", None)
    return eos[0] if isinstance(eos, (list, tuple)) else eos
