r"""``spechub audit --self-test``: the project's reference samplers must pass every adapter, every planted bug must fail.

Convention: p = target, q = draft; function level on a synthetic LLM-like case, generator level and
end to end on a tiny random Llama pair (``empirical.tiny``), all seeded. Source: issue 17.

A planted bug whose exact distortion is known (function level: its exact law; generator level:
the claimed q1 against the law the draft really samples) is sized for the smaller of the stated TV
and its own TV, so it must be refuted with probability >= the stated power.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from spechub_theory.montecarlo.audit_stats import distortion

__all__ = ["SelfTestConfig", "SelfTestRow", "self_test"]


@dataclass(frozen=True)
class SelfTestConfig:
    """Sizes of the self-test (defaults: a few minutes on 2 CPU cores)."""

    function_tv: float = 0.05
    model_tv: float = 0.25
    alpha: float = 1e-3
    power: float = 0.99
    vocab: int = 64
    tiny_vocab: int = 32
    seed: int = 0
    temperature: float = 0.5
    top_k: int = 5
    top_p: float = 0.95
    function_top_k: int = 20


@dataclass(frozen=True)
class SelfTestRow:
    """One check: ``expected`` "pass" or "refuted", the audit's result and whether they agree."""

    check: str
    expected: str
    result: object = field(repr=False)
    bug_tv: float | None = None
    skipped: str | None = None  # why the check could not run here (then ``result`` is None)

    @property
    def ok(self) -> bool:
        """The outcome is the expected one (a skipped check does not fail the self-test)."""
        return self.skipped is not None or self.result.verdict == self.expected

    def report(self) -> str:
        """One line: the audit's report, or why the check was skipped.

        Returns
        -------
        str
        """
        return f"skipped: {self.skipped}" if self.skipped is not None else self.result.report()

    def to_dict(self) -> dict:
        """JSON-ready dict.

        Returns
        -------
        dict
        """
        return {"check": self.check, "expected": self.expected, "ok": self.ok, "bug_tv": self.bug_tv,
                "skipped": self.skipped, "result": None if self.result is None else self.result.to_dict()}


def self_test(config: SelfTestConfig = SelfTestConfig(), *, progress=None, log=None) -> list[SelfTestRow]:
    """Run every check; ``log(row)`` after each. Returns the rows (all ``ok`` = success).

    Parameters
    ----------
    config : SelfTestConfig, optional
    progress : callable, optional
    log : callable, optional

    Returns
    -------
    list[SelfTestRow]
    """
    rows: list[SelfTestRow] = []

    def add(check, expected, result, bug_tv=None, skipped=None):
        rows.append(SelfTestRow(check, expected, result, bug_tv, skipped))
        if log is not None:
            log(rows[-1])

    _function_checks(config, add, progress)
    _model_checks(config, add, progress)
    return rows


def _function_checks(c: SelfTestConfig, add, progress) -> None:
    from spechub_theory.methods import get_method

    from .cases import Sampling, synthetic_case
    from .function_level import HFSpeculativeSampling, ReferenceVerifier, audit_function
    from .planted import planted_function_bugs

    case = synthetic_case(c.vocab, seed=c.seed, sampling=Sampling(c.temperature, c.function_top_k, c.top_p))
    kw = dict(alpha=c.alpha, power=c.power, progress=progress)
    add("function: reference (sampled)", "pass", audit_function(ReferenceVerifier(), case, tv=c.function_tv, rng=c.seed, **kw))
    add("function: reference 'single' (exact)", "pass", audit_function(get_method("single"), case))
    add("function: hf _speculative_sampling, lossless", "pass",
        audit_function(HFSpeculativeSampling(), case, tv=c.function_tv, rng=c.seed + 1, **kw))
    from .function_level import ensemble_law

    w_tv = distortion(ensemble_law(case, 0.5), case.p[0]).tv
    try:
        lossy = HFSpeculativeSampling(0.5)
    except ValueError as exc:  # an older transformers without the ensemble option
        add("function: hf ensemble weight 0.5 (lossy by design)", "refuted", None, w_tv, skipped=str(exc))
    else:
        add("function: hf ensemble weight 0.5 (lossy by design)", "refuted",
            audit_function(lossy, case, tv=min(c.function_tv, w_tv), rng=c.seed + 2, **kw), w_tv)
    for i, bug in enumerate(planted_function_bugs(case)):
        bug_tv = distortion(bug.exact_law(), case.p[0]).tv
        add(f"function: planted {bug.NAME}", "refuted",
            audit_function(bug, case, tv=min(c.function_tv, bug_tv), rng=c.seed + 10 + i, **kw), bug_tv)


def _model_checks(c: SelfTestConfig, add, progress) -> None:
    import torch

    from ..tiny import tiny_pair
    from .cases import Sampling
    from .end_to_end import HFGenerate, ReferenceGenerate, audit_generate, target_law
    from .generator_level import GENERATOR_BUGS, HFCandidateGenerator, ReferenceGenerator, audit_generator, capture_candidate_generator

    pair = tiny_pair(c.tiny_vocab, seed=c.seed)
    ids = torch.tensor([[3, 5, 7, 9]])
    s = Sampling(c.temperature, c.top_k, 1.0)  # a tiny model's nucleus is often one token: no bug could show
    kw = dict(alpha=c.alpha, power=c.power, progress=progress)
    ref = ReferenceGenerator(pair.draft, ids, s)
    add("generator: reference", "pass", audit_generator(ref, tv=c.model_tv, rng=c.seed, **kw))
    # the law HF's own generator samples from (its claim, which its unplanted audit confirms)
    true_q1 = HFCandidateGenerator(capture_candidate_generator(pair.target, pair.draft, ids, s), ids)(np.random.default_rng(0))[1][0]
    for i, (name, (plant, applies, _)) in enumerate(GENERATOR_BUGS.items()):
        if not applies(s):
            continue
        gen = HFCandidateGenerator(capture_candidate_generator(pair.target, pair.draft, ids, s, plant=plant), ids)
        bug_tv = 0.5 * float(np.abs(gen(np.random.default_rng(0))[1][0] - true_q1).sum())
        add(f"generator: planted {name} in hf AssistedCandidateGenerator", "refuted",
            audit_generator(gen, tv=min(c.model_tv, bug_tv), rng=c.seed + 20 + i, **kw), bug_tv)
    law = target_law(pair.target, ids, s, eos_ids=pair.eos_token_ids)
    add("generate: reference", "pass", audit_generate(ReferenceGenerate(pair.target, pair.draft, ids, s), law,
                                                      tv=c.model_tv, rng=c.seed, **kw))
    # the #47932 bug end to end; top-k 2 at T = 1 makes it large. Its exact first-token law: drafts
    # from the true q, tests and residual with the claimed (raw) q (planted.PlantedVerifier)
    from .planted import PlantedVerifier

    s2 = Sampling(1.0, 2, 1.0)
    law2 = target_law(pair.target, ids, s2, eos_ids=pair.eos_token_ids)
    plant = GENERATOR_BUGS["q_without_topk_topp"][0]
    claim = lambda **k: HFCandidateGenerator(capture_candidate_generator(pair.target, pair.draft, ids, s2, **k), ids)(  # noqa: E731
        np.random.default_rng(0))[1][0]
    bug_tv = distortion(PlantedVerifier("e2e", "", law2.p1, claim(plant=plant), claim()).exact_law(), law2.p1).tv
    add("generate: planted q_without_topk_topp in hf generate(assistant_model), T = 1, top-k 2", "refuted",
        audit_generate(HFGenerate(pair.target, pair.draft, ids, s2, plant=plant), law2, tv=min(c.model_tv, bug_tv),
                       rng=c.seed + 30, **kw), bug_tv)

