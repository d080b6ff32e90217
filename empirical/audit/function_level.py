r"""Function-level audit: a verifier given target and draft logits and draft tokens, checked against p.

Convention: p = target, q = draft, last axis = vocabulary; one fixed context (``FunctionCase``), N
independent calls with drafts drawn from q; the first emitted token must follow p[0].
Source: Leviathan et al. 2023 (algorithm 1); theory.md 6.3 and 7; docs/audit.md (the protocol).

**The protocol.** A function-level sampler is a callable
``sampler(target_logits, draft_logits, drafts, rng) -> tokens`` with ``target_logits`` float32
(L + 1, n) and ``draft_logits`` float32 (L, n) (processed, as the verifier of ``generate`` gets
them; rows shared by every trial), ``drafts`` int64 (N, L) drawn from softmax(draft_logits),
``rng`` a numpy Generator; it returns the first emitted token of each trial, int (N,) (or (N, m),
column 0 is used). An attribute ``audit_input = "probs"`` makes the audit pass float64
probabilities instead of logits. A method-like object (``NAME``, ``LAW``, ``rule``, as the
project's methods and mutants) is audited exactly by enumeration (``output_law``).
"""

from __future__ import annotations

import inspect
import time

import numpy as np

from spechub_theory.montecarlo.audit_stats import check_sizing, AuditResult, distortion, exact_audit, histogram_test, counts_audit
from spechub_theory.montecarlo.stats import sample_size_for

from ..tiny import one_thread
from .cases import FunctionCase, sample_rows

__all__ = ["audit_function", "ReferenceVerifier", "HFSpeculativeSampling", "ensemble_law", "ensemble_sweep",
           "FUNCTION_CHUNK", "PER_ROW_CHUNK"]

#: trials per call of a batched sampler
FUNCTION_CHUNK = 1 << 16
#: trials per call for per-row samplers (progress granularity)
PER_ROW_CHUNK = 1 << 11


class ReferenceVerifier:
    """The project's reference.

    Standard speculative sampling of the first position with the numpy core
    (``spechub_theory.verification.verify(..., method="single")``), batched. O(log n) per trial.
    """

    NAME = "reference"
    audit_input = "probs"

    def __call__(self, target_probs, draft_probs, drafts, rng):
        """First emitted token of each trial (N,)."""
        from spechub_theory.verification import verify

        u = rng.random((len(drafts), 2))
        return verify(target_probs[0], draft_probs[0], drafts[:, :1], u, method="single").token


class HFSpeculativeSampling:
    """Adapter: transformers' ``generation.utils._speculative_sampling``, one call per trial.

    Each trial passes ``candidate_input_ids`` = (one context token, the L drafts) (1, L + 1),
    ``candidate_logits`` (1, L, n), ``new_logits`` (1, L + 1, n) and ``assistant_ensemble_weight``
    (None = lossless; w in [0, 1]: DIVERSE ensemble verification, v = w p + (1 - w) q), exactly as
    ``_assisted_decoding`` calls it, and returns ``valid_tokens[0, 0]``. Transformers whose
    ``_speculative_sampling`` takes ``is_done_candidate`` (older ones, e.g. 5.17) get
    ``is_done_candidate=False``: the drafts did not end in EOS, the case the audit draws. The
    signature is read once, when the adapter is built. Randomness: torch's global generator, seeded
    from ``rng`` inside ``torch.random.fork_rng`` (the caller's state is kept). About 10^3-10^4
    calls per second on one CPU core (BENCHMARKS.md).

    Parameters
    ----------
    ensemble_weight : float, optional
        The weight w in [0, 1] of DIVERSE ensemble verification; None (default) is the lossless verifier.

    Raises
    ------
    ValueError
        If ``ensemble_weight`` is outside [0, 1], or is given while the installed transformers'
        ``_speculative_sampling`` has no ``assistant_ensemble_weight``.
    """

    per_row = True

    def __init__(self, ensemble_weight: float | None = None):
        from transformers.generation.utils import _speculative_sampling

        if ensemble_weight is not None and not 0.0 <= float(ensemble_weight) <= 1.0:
            raise ValueError(f"`ensemble_weight` must be in [0, 1] or None; got {ensemble_weight}.")
        self.ensemble_weight = None if ensemble_weight is None else float(ensemble_weight)
        self.NAME = "hf:_speculative_sampling" + ("" if ensemble_weight is None else f"(w={self.ensemble_weight:g})")
        self._verify = _speculative_sampling
        self._options = _speculative_sampling_options(_speculative_sampling, self.ensemble_weight)

    def __call__(self, target_logits, draft_logits, drafts, rng):
        """First emitted token of each trial (N,)."""
        import torch

        L = draft_logits.shape[0]
        new_logits = torch.as_tensor(target_logits, dtype=torch.float32)[None]  # [1, L + 1, n]
        cand_logits = torch.as_tensor(draft_logits, dtype=torch.float32)[None]  # [1, L, n]
        ids = torch.zeros((len(drafts), L + 1), dtype=torch.long)
        ids[:, 1:] = torch.as_tensor(drafts)
        out = np.empty(len(drafts), dtype=np.int64)
        with torch.random.fork_rng(devices=[]), torch.no_grad(), one_thread():  # tiny tensors: threads only cost
            torch.manual_seed(int(rng.integers(2**62)))
            for i in range(len(drafts)):
                tokens, _ = self._verify(ids[i : i + 1], cand_logits, L, new_logits, **self._options)
                out[i] = int(tokens[0, 0])
        return out


def audit_function(sampler, case: FunctionCase, *, tv: float = 0.01, alpha: float = 1e-3, power: float = 0.99,
                   n_trials: int | None = None, rng=0, progress=None, name: str | None = None) -> AuditResult:
    """Audit a function-level sampler (module docstring) on one case.

    Parameters
    ----------
    sampler : callable or method-like object
    case : FunctionCase
    tv, alpha, power : float
        The test is sized (``sample_size_for(p[0], tv, alpha, power)``) so that a sampler whose
        first-token law is ``tv`` away from p[0] is refuted with probability >= ``power``.
    n_trials : int, optional
        Override the sample size.
    rng : seed or numpy Generator
    progress : callable, optional
        ``progress(done, total)`` after each chunk.
    name : str, optional

    Returns
    -------
    AuditResult
        Exact mode for method-like samplers; chi-square mode otherwise.

    Raises
    ------
    ValueError
        If the sampler returns the wrong shape or token ids outside [0, n).
    """
    label = name or getattr(sampler, "NAME", getattr(sampler, "__name__", type(sampler).__name__))
    settings = {**case.sampling.to_dict(), "n": case.n, "draft_length": case.draft_length, "case": case.name}
    start = time.perf_counter()
    if all(hasattr(sampler, a) for a in ("NAME", "LAW", "rule")):
        from spechub_theory.verification import output_law

        law = output_law(case.p[0], case.q[0], 1, method=sampler).output
        return exact_audit(law, case.p[0], level="function", sampler=label, seconds=time.perf_counter() - start,
                           settings=settings)
    check_sizing(tv, alpha, power)
    p = case.p[0]
    N = int(n_trials) if n_trials is not None else sample_size_for(p, tv, alpha, power)
    if N < 1:
        raise ValueError(f"`n_trials` must be >= 1; got {n_trials}.")
    g = np.random.default_rng(rng)
    probs = getattr(sampler, "audit_input", "logits") == "probs"
    t_in, d_in = (case.p, case.q) if probs else (case.target_logits, case.draft_logits)
    chunk = PER_ROW_CHUNK if getattr(sampler, "per_row", False) else FUNCTION_CHUNK
    counts = np.zeros(case.n, dtype=np.int64)
    done = 0
    while done < N:
        m = min(chunk, N - done)
        drafts = sample_rows(case.q, m, rng=g)
        counts += _first_token_counts(sampler(t_in, d_in, drafts, g), m, case.n)
        done += m
        if progress is not None:
            progress(done, N)
    test = histogram_test(counts, p, alpha=alpha)
    settings["seed"] = rng if isinstance(rng, (int, np.integer)) else None
    return counts_audit([("first token", test)], counts, p, level="function", sampler=label, tv=tv, alpha=alpha,
                        power=power, seconds=time.perf_counter() - start, settings=settings)


def ensemble_law(case: FunctionCase, w: float) -> np.ndarray:
    r"""Exact first-token law of DIVERSE ensemble verification with weight w (float64).

    It is

    .. math:: \mathrm{out}(x) = \min(q(x), v(x)) + \Big(1 - \sum_y \min(q, v)(y)\Big) \frac{(p - q)_+(x)}{\sum (p - q)_+},
              \quad v = w p + (1 - w) q,

    since :math:`(v - q)_+ = w (p - q)_+`; w = 1 is lossless, w = 0 emits q. Source: the
    ``_speculative_sampling`` docstring (DIVERSE, arXiv 2604.07622). O(n).

    Parameters
    ----------
    case : FunctionCase
    w : float

    Returns
    -------
    numpy.ndarray
    """
    p, q = case.p[0], case.q[0]
    v = w * p + (1.0 - w) * q
    keep = np.minimum(q, v)
    r = np.maximum(p - q, 0.0)
    s = r.sum()
    return keep + (1.0 - keep.sum()) * (r / s if s > 0 else p)


def ensemble_sweep(case: FunctionCase, weights=(0.0, 0.25, 0.5, 0.75, 1.0), *, tv: float = 0.01, alpha: float = 1e-3,
                   power: float = 0.99, n_trials: int | None = None, rng=0, progress=None) -> list[dict]:
    """Measured distortion of HF's ensemble verification against w.

    For each weight, the audit of ``HFSpeculativeSampling(w)`` (TV estimate with interval, KL) next
    to the exact TV and KL of :func:`ensemble_law`. Returns one dict per weight.

    Parameters
    ----------
    case : FunctionCase
    weights : array_like, optional
    tv : float, optional
    alpha : float, optional
    power : float, optional
    n_trials : int or None, optional
    rng : numpy.random.Generator, int or None, optional
        Random source: a Generator or a seed.
    progress : callable, optional

    Returns
    -------
    list[dict]
    """
    rows = []
    for i, w in enumerate(weights):
        res = audit_function(HFSpeculativeSampling(w), case, tv=tv, alpha=alpha, power=power, n_trials=n_trials,
                             rng=np.random.default_rng([int(rng), i]) if isinstance(rng, (int, np.integer)) else rng,
                             progress=progress)
        exact = distortion(ensemble_law(case, w), case.p[0])
        rows.append({"ensemble_weight": w, "audit": res.to_dict(), "formula": exact.to_dict()})
    return rows


def _first_token_counts(tokens, m: int, n: int) -> np.ndarray:
    t = np.asarray(tokens)
    if t.ndim == 2:
        t = t[:, 0]
    if t.shape != (m,):
        raise ValueError(f"the sampler must return {m} tokens (shape ({m},) or ({m}, m)); got shape {t.shape}.")
    if not np.issubdtype(t.dtype, np.integer):
        raise ValueError(f"the sampler must return integer token ids; got dtype {t.dtype}.")
    if t.size and (t.min() < 0 or t.max() >= n):
        raise ValueError(f"the sampler returned token ids outside [0, {n}): {int(t.min())}..{int(t.max())}.")
    return np.bincount(t, minlength=n)



def _speculative_sampling_options(verify, ensemble_weight: float | None) -> dict:
    """Keyword arguments that this transformers' ``_speculative_sampling`` (``verify``) takes.

    ``is_done_candidate=False`` where it is a parameter (older transformers); the ensemble weight
    only when one is asked for. Raises ValueError when it is asked for but ``verify`` lacks it.
    """
    params = inspect.signature(verify).parameters
    options = {"is_done_candidate": False} if "is_done_candidate" in params else {}
    if ensemble_weight is None:
        return options
    if "assistant_ensemble_weight" not in params:
        import transformers

        raise ValueError(f"`ensemble_weight` needs a newer transformers: the installed transformers "
                         f"{transformers.__version__} has no `assistant_ensemble_weight` in `_speculative_sampling`.")
    return {**options, "assistant_ensemble_weight": ensemble_weight}
