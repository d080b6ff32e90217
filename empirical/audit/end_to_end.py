r"""End-to-end audit: the first one and two tokens of ``generate(assistant_model=...)`` against the target's law.

Convention: p = the target's processed law for plain sampling, as transformers defines it (softmax
of the ``scores`` that ``generate(do_sample=True, output_scores=True)`` returns), last axis =
vocabulary. The joint law of (y1, y2) is p(y1) p(y2 | prompt, y1). Source: Leviathan et al. 2023.

**The protocol.** An end-to-end sampler is a callable ``sampler(rng) -> tokens``: the tokens it
generates after the audit's fixed prompt (at least one; the first two are audited; a second token
is absent only after an EOS). :class:`HFGenerate` wraps ``model.generate``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from spechub_theory.montecarlo.audit_stats import check_sizing, counts_audit, histogram_test
from spechub_theory.montecarlo.stats import sample_size_for

from ..tiny import one_thread
from .cases import Sampling, softmax64
from .generator_level import _pad
from .parallel import draw_trials

__all__ = ["TargetLaw", "target_law", "audit_generate", "HFGenerate", "ReferenceGenerate", "JOINT_COVER", "JOINT_MAX_FIRST"]

#: first tokens whose second-token law is computed: the most probable ones up to this mass ...
JOINT_COVER = 1.0 - 1e-6
#: ... and at most this many (the rest form one "other first token" cell)
JOINT_MAX_FIRST = 256


@dataclass(frozen=True)
class TargetLaw:
    """The target's first-token law ``p1`` (n,) and the joint law of two tokens on cells.

    ``first[i] * n + y2`` for the i-th covered first token (EOS: the cell ``(i, 0)`` holds its whole
    mass), and the last cell for every uncovered first token.
    """

    p1: np.ndarray = field(repr=False)
    first: np.ndarray = field(repr=False)
    joint: np.ndarray = field(repr=False)
    eos: frozenset = frozenset()

    def cell(self, tokens) -> int:
        """Joint cell of one generated sequence.

        Parameters
        ----------
        tokens : sequence of int

        Returns
        -------
        int
        """
        y1 = int(tokens[0])
        hit = np.flatnonzero(self.first == y1)
        if not hit.size:
            return len(self.joint) - 1
        n = len(self.p1)
        if y1 in self.eos or len(tokens) < 2:
            return int(hit[0]) * n
        return int(hit[0]) * n + int(tokens[1])


def target_law(model, input_ids, sampling: Sampling, *, eos_ids=(), batch: int = 64) -> TargetLaw:
    """The :class:`TargetLaw` of a model's own sampling, from ``model.generate``.

    From ``model.generate(..., do_sample=True, output_scores=True)`` at the prompt and at prompt +
    y1 for the covered y1 (batched, ``batch`` rows per call). O((1 + covered / batch) generate
    calls).

    Parameters
    ----------
    model : transformers.PreTrainedModel
    input_ids : torch.Tensor
    sampling : Sampling
    eos_ids : sequence of int, optional
    batch : int, optional

    Returns
    -------
    TargetLaw
    """
    import torch

    def laws(ids):  # [rows, len] -> [rows, n] float64
        with torch.no_grad(), one_thread():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=1, output_scores=True,
                                 return_dict_in_generate=True, pad_token_id=_pad(model), **sampling.generate_kwargs())
        return softmax64(out.scores[0].float().cpu().numpy())

    p1 = laws(input_ids)[0]
    order = np.argsort(-p1, kind="stable")
    m = int(min(np.searchsorted(np.cumsum(p1[order]), JOINT_COVER) + 1, JOINT_MAX_FIRST, (p1 > 0).sum()))
    first = order[:m]
    n = len(p1)
    joint = np.zeros(m * n + 1)
    eos = frozenset(int(e) for e in eos_ids)
    todo = [i for i, y in enumerate(first) if int(y) not in eos]
    for i in _first_eos(first, eos):
        joint[i * n] = p1[first[i]]
    for s in range(0, len(todo), batch):
        rows = todo[s : s + batch]
        ids = torch.cat([input_ids.repeat(len(rows), 1), torch.tensor(first[rows], device=input_ids.device)[:, None]], dim=1)
        p2 = laws(ids)
        for r, i in enumerate(rows):
            joint[i * n : (i + 1) * n] = p1[first[i]] * p2[r]
    joint[-1] = max(0.0, 1.0 - p1[first].sum())
    return TargetLaw(p1, first, joint / joint.sum(), eos)


def _first_eos(first, eos) -> list:
    """Positions in ``first`` that are EOS tokens."""
    return [i for i, y in enumerate(first) if int(y) in eos]


def audit_generate(sampler, law: TargetLaw, *, tv: float = 0.01, alpha: float = 1e-3, power: float = 0.99,
                   n_trials: int | None = None, rng=0, progress=None, name: str | None = None, settings=None,
                   workers: int = 1):
    """Audit an end-to-end sampler (module docstring) against ``law``.

    Two tests at ``alpha / 2``: the first token against p1 and the pair against the joint law;
    N = the larger of ``sample_size_for`` of the two (so each is refuted with probability >=
    ``power`` when its law is ``tv`` away). ``workers >= 2`` draws the trials in forked
    processes (CPU; :func:`~empirical.audit.parallel.draw_trials`, one seed per trial).

    Parameters
    ----------
    sampler : callable
    law : TargetLaw
        The target's exact law of the first token and of the first two tokens (:func:`target_law`).
    tv : float, optional
    alpha : float, optional
    power : float, optional
    n_trials : int or None, optional
    rng : numpy.random.Generator, int or None, optional
        Random source: a Generator or a seed.
    progress : callable, optional
    name : str or None, optional
    settings : dict, optional
    workers : int, optional
        Processes drawing the trials; >= 2 forks them (CPU models only).

    Returns
    -------
    AuditResult

    Raises
    ------
    ValueError
        On bad input (the message names the rule): An end-to-end sampler must return generated token
        ids in [0, ...); or the sampler stopped after one token without EOS: generate at least two
        tokens.
    """
    label = name or getattr(sampler, "NAME", type(sampler).__name__)
    check_sizing(tv, alpha, power)
    start = time.perf_counter()
    N = int(n_trials) if n_trials is not None else max(sample_size_for(law.p1, tv, alpha / 2, power),
                                                        sample_size_for(law.joint, tv, alpha / 2, power))
    g = np.random.default_rng(rng)
    n = len(law.p1)
    first = np.zeros(n, dtype=np.int64)
    cells = np.zeros(len(law.joint), dtype=np.int64)
    for tokens in draw_trials(sampler, g, N, workers=workers, progress=progress):
        if tokens.ndim != 1 or len(tokens) < 1 or not np.issubdtype(tokens.dtype, np.integer) or tokens.min() < 0 or tokens.max() >= n:
            raise ValueError(f"an end-to-end sampler must return generated token ids in [0, {n}); got {tokens.tolist()[:4]}.")
        if len(tokens) < 2 and int(tokens[0]) not in law.eos:
            raise ValueError("the sampler stopped after one token without EOS: generate at least two tokens.")
        first[tokens[0]] += 1
        cells[law.cell(tokens)] += 1
    parts = [("first token", histogram_test(first, law.p1, alpha=alpha / 2)),
             ("first two tokens", histogram_test(cells, law.joint, alpha=alpha / 2))]
    return counts_audit(parts, first, law.p1, level="generate", sampler=label, tv=tv, alpha=alpha, power=power,
                        seconds=time.perf_counter() - start,
                        settings={**(settings or {}), "seed": rng if isinstance(rng, int) else None,
                                  **({"workers": workers} if workers != 1 else {})})


class HFGenerate:
    """Adapter for HF's assisted generation, ``target.generate(..., assistant_model=draft)``.

    Calls ``target.generate(input_ids, assistant_model=draft, do_sample=True, ...)``, seeded per
    call from ``rng`` (torch's global generator, inside ``fork_rng``), ``max_new_tokens = 3`` so the
    first round proposes two draft tokens. ``plant(gen, sampling)`` plants a bug in the candidate
    generator that ``generate`` builds (negative controls). ``memo=True`` serves repeated forwards
    of both models from an exact memo (:mod:`empirical.audit.memo`: same bits in, same bits out; it
    changes no token for a given seed, tested), which is what makes large N affordable.
    """

    def __init__(self, target, draft, input_ids, sampling: Sampling, *, ensemble_weight=None, plant=None,
                 max_new_tokens: int = 3, name: str = "hf:generate(assistant_model)", memo: bool = False):
        self.target, self.draft, self.input_ids, self.sampling = target, draft, input_ids, sampling
        self.ensemble_weight, self.plant, self.max_new_tokens, self.NAME = ensemble_weight, plant, int(max_new_tokens), name
        self.memos = {} if memo else None

    def __call__(self, rng):
        """The generated tokens (int64)."""
        import torch

        with torch.random.fork_rng(devices=[]), torch.no_grad(), one_thread(), self._memo():
            torch.manual_seed(int(rng.integers(2**62)))
            if self.plant is None:
                out = self._generate()
            else:
                build = self.target._get_candidate_generator

                def planted(*args, **kwargs):
                    gen = build(*args, **kwargs)
                    self.plant(gen, self.sampling)
                    return gen

                self.target._get_candidate_generator = planted
                try:
                    out = self._generate()
                finally:
                    del self.target._get_candidate_generator
        return out[0, self.input_ids.shape[1]:].cpu().numpy().astype(np.int64)

    def _memo(self):
        """The memo context (a no-op without ``memo=True``)."""
        import contextlib

        from .memo import memoised

        return contextlib.nullcontext() if self.memos is None else memoised(self.target, self.draft, memos=self.memos)

    def _generate(self):
        import torch

        return self.target.generate(self.input_ids, attention_mask=torch.ones_like(self.input_ids), assistant_model=self.draft,
                                    max_new_tokens=self.max_new_tokens, pad_token_id=_pad(self.target),
                                    assistant_ensemble_weight=self.ensemble_weight, **self.sampling.generate_kwargs())


class ReferenceGenerate:
    """The project's reference end to end.

    :class:`~empirical.audit.generator_level.ReferenceGenerator` proposes two tokens, the target's
    processed laws verify them with the numpy core (``verify(..., method="single")`` per position,
    then the bonus token). Laws memoised per context.
    """

    NAME = "reference-generate"

    def __init__(self, target, draft, input_ids, sampling: Sampling):
        from .generator_level import ReferenceGenerator

        self.proposer = ReferenceGenerator(draft, input_ids, sampling, draft_length=2)
        self.verifier = ReferenceGenerator(target, input_ids, sampling, draft_length=2)  # its law() = target's law

    def __call__(self, rng):
        """The first two tokens (int64 (2,))."""
        from spechub_theory.verification import verify

        drafts, q = self.proposer(rng)
        ctx, out = tuple(self.proposer.context), []
        for j in range(2):
            p = self.verifier.law(ctx)
            v = verify(p, q[j], drafts[j : j + 1][None], rng.random((1, 2)), method="single")
            out.append(int(v.token[0]))
            if v.slot[0] < 0:  # rejected: the next token comes from the target after the residual
                while len(out) < 2:
                    ctx = ctx + (out[-1],)
                    out.append(int(np.searchsorted(np.cumsum(self.verifier.law(ctx)), rng.random(), side="right")))
                break
            ctx = ctx + (out[-1],)
        return np.array(out[:2], dtype=np.int64)

