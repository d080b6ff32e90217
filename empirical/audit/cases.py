r"""Fixed-context audit cases: raw and Hugging Face-processed logits of a target and a draft, and their laws.

Convention: p = target law, q = draft law at a fixed context, last axis = vocabulary; "processed" =
after the logits processors transformers builds for plain sampling (temperature, top-k, top-p, in
that order; ``GenerationMixin._get_logits_processor``), and each law is the float64 softmax of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Sampling", "FunctionCase", "hf_process", "synthetic_case", "model_case", "softmax64", "sample_rows"]

#: offset added to synthetic logits: real LLM logits sit far from 0, where bf16 spacing is coarse
LOGIT_OFFSET = 24.0


@dataclass(frozen=True)
class Sampling:
    """Sampling settings as transformers reads them.

    ``temperature > 0``, ``top_k`` (0 = off), ``top_p`` in (0, 1] (1 = off).
    """

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0

    def __post_init__(self):
        if not np.isfinite(self.temperature) or self.temperature <= 0:
            raise ValueError(f"`temperature` must be > 0 for a sampling audit (greedy has no law to test); got {self.temperature}.")
        if int(self.top_k) != self.top_k or self.top_k < 0:
            raise ValueError(f"`top_k` must be an integer >= 0 (0 = off); got {self.top_k}.")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"`top_p` must be in (0, 1]; got {self.top_p}.")

    def generate_kwargs(self) -> dict:
        """Keyword arguments of ``generate`` for these settings (top_k = 0 switches HF's default 50 off).

        Returns
        -------
        dict
        """
        return {"do_sample": True, "temperature": float(self.temperature), "top_k": int(self.top_k), "top_p": float(self.top_p)}

    def to_dict(self) -> dict:
        """``{"temperature", "top_k", "top_p"}``.

        Returns
        -------
        dict
        """
        return {"temperature": self.temperature, "top_k": self.top_k, "top_p": self.top_p}


@dataclass(frozen=True)
class FunctionCase:
    """One fixed context for a function-level audit.

    Attributes
    ----------
    raw_target : ndarray float32, shape (L + 1, n)
        Target logits at the L draft positions and the bonus position.
    raw_draft : ndarray float32, shape (L, n)
    target_logits, draft_logits : ndarray float32
        The same after :func:`hf_process` (-inf where top-k/top-p removed a token).
    p, q : ndarray float64, shape (L + 1, n) and (L, n)
        Their softmax laws; the first emitted token must follow ``p[0]``.
    sampling : Sampling
    name : str
    """

    raw_target: np.ndarray = field(repr=False)
    raw_draft: np.ndarray = field(repr=False)
    target_logits: np.ndarray = field(repr=False)
    draft_logits: np.ndarray = field(repr=False)
    p: np.ndarray = field(repr=False)
    q: np.ndarray = field(repr=False)
    sampling: Sampling
    name: str = "case"

    @property
    def n(self) -> int:
        """Vocabulary size."""
        return self.p.shape[-1]

    @property
    def draft_length(self) -> int:
        """L, draft tokens per call."""
        return self.q.shape[0]

    @classmethod
    def from_logits(cls, raw_target, raw_draft, sampling: Sampling = Sampling(), name: str = "case") -> "FunctionCase":
        """Build a case from raw logits (L + 1, n) and (L, n); processing by :func:`hf_process`.

        Parameters
        ----------
        raw_target : torch.Tensor or numpy.ndarray
        raw_draft : torch.Tensor or numpy.ndarray
        sampling : Sampling, optional
        name : str, optional

        Raises
        ------
        ValueError
            On bad input (the message names the rule): ``raw_target`` must be (L + 1, n) and
            ``raw_draft`` (L, n); or raw logits must be finite.
        """
        t = np.asarray(raw_target, dtype=np.float32)
        d = np.asarray(raw_draft, dtype=np.float32)
        if t.ndim != 2 or d.ndim != 2 or t.shape[0] != d.shape[0] + 1 or t.shape[1] != d.shape[1]:
            raise ValueError(f"`raw_target` must be (L + 1, n) and `raw_draft` (L, n); got {t.shape} and {d.shape}.")
        if not (np.isfinite(t).all() and np.isfinite(d).all()):
            raise ValueError("raw logits must be finite.")
        tp, dp = hf_process(t, sampling), hf_process(d, sampling)
        return cls(t, d, tp, dp, softmax64(tp), softmax64(dp), sampling, name)


def hf_process(logits, sampling: Sampling) -> np.ndarray:
    """Apply transformers' own warpers for ``sampling`` to logits (rows, n), float32 in and out.

    Uses ``TemperatureLogitsWarper``, ``TopKLogitsWarper``, ``TopPLogitsWarper`` in the order and
    under the conditions of ``GenerationMixin._get_logits_processor`` (temperature != 1, top_k != 0,
    top_p < 1). O(rows n log n).

    Parameters
    ----------
    logits : torch.Tensor
    sampling : Sampling

    Returns
    -------
    numpy.ndarray
    """
    import torch
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

    procs = LogitsProcessorList()
    if sampling.temperature != 1.0:
        procs.append(TemperatureLogitsWarper(float(sampling.temperature)))
    if sampling.top_k:
        procs.append(TopKLogitsWarper(top_k=int(sampling.top_k), min_tokens_to_keep=1))
    if sampling.top_p < 1.0:
        procs.append(TopPLogitsWarper(top_p=float(sampling.top_p), min_tokens_to_keep=1))
    z = torch.as_tensor(np.asarray(logits, dtype=np.float32))
    stub = torch.zeros((z.shape[0], 1), dtype=torch.long)
    return procs(stub, z.clone()).numpy()


def softmax64(logits) -> np.ndarray:
    """Row-wise softmax in float64 of logits that may hold -inf. O(rows n).

    Parameters
    ----------
    logits : torch.Tensor

    Returns
    -------
    numpy.ndarray
    """
    z = np.asarray(logits, dtype=np.float64)
    w = np.exp(z - z.max(axis=-1, keepdims=True))
    return w / w.sum(axis=-1, keepdims=True)


def synthetic_case(n: int = 64, *, seed: int = 0, sampling: Sampling = Sampling(), draft_length: int = 1,
                   zipf: float = 1.3, draft_noise: float = 0.5) -> FunctionCase:
    r"""An LLM-like fixed context: Zipf-shaped target logits and a noisy draft of them.

    Target logits at each position: :math:`z(x) = c - s \log r(x) + \epsilon`, r a random
    ranking, s = ``zipf``, :math:`\epsilon \sim N(0, 0.3^2)`, c = :data:`LOGIT_OFFSET`; draft logits
    = target logits + :math:`N(0, \text{draft\_noise}^2)`. Top-1 probabilities 0.2-0.5 and a long
    tail, as in LLM next-token laws. Seeded; O(L n).

    Parameters
    ----------
    n : int, optional
    seed : int, optional
    sampling : Sampling, optional
    draft_length : int, optional
    zipf : float, optional
    draft_noise : float, optional

    Returns
    -------
    FunctionCase

    Raises
    ------
    ValueError
        On bad input (the message names the rule): ``n`` (vocabulary) must be >= 2; or
        ``draft_length`` must be an integer >= 1.
    """
    n = int(n)
    if n < 2:
        raise ValueError(f"`n` (vocabulary) must be >= 2; got {n}.")
    if int(draft_length) != draft_length or draft_length < 1:
        raise ValueError(f"`draft_length` must be an integer >= 1; got {draft_length}.")
    g = np.random.default_rng(seed)
    rows = int(draft_length) + 1
    rank = np.argsort(g.random((rows, n)), axis=-1) + 1
    target = LOGIT_OFFSET - zipf * np.log(rank) + 0.3 * g.standard_normal((rows, n))
    draft = target[:-1] + draft_noise * g.standard_normal((rows - 1, n))
    return FunctionCase.from_logits(target, draft, sampling, name=f"synthetic(n={n}, seed={seed})")


def model_case(pair, input_ids, sampling: Sampling = Sampling(), *, draft_length: int = 1, name: str | None = None) -> FunctionCase:
    """Function-level case from real models at a prompt.

    The draft's logits at the prompt (and after its own most likely tokens for later rows) and the
    target's at those L + 1 positions, upcast to float32.

    Parameters
    ----------
    pair : ModelPair-like with ``target``, ``draft`` (causal LMs sharing a tokenizer)
    input_ids : torch.LongTensor, shape (1, len)
    sampling : Sampling, optional
    draft_length : int, optional
        L; rows after the first only feed the bonus position, which the audit does not test.
    name : str, optional

    Returns
    -------
    FunctionCase
        O(L) forwards of each model.

    Raises
    ------
    ValueError
        If ``draft_length`` is below 1.
    """
    import torch

    L = int(draft_length)
    if L < 1:
        raise ValueError(f"`draft_length` must be an integer >= 1; got {draft_length}.")
    with torch.no_grad():
        rows_d = [pair.draft(input_ids).logits[0, -1].float()]
        ctx = input_ids
        for _ in range(L - 1):
            ctx = torch.cat([ctx, rows_d[-1].argmax().view(1, 1)], dim=1)
            rows_d.append(pair.draft(ctx).logits[0, -1].float())
        ctx = torch.cat([input_ids, torch.stack([r.argmax() for r in rows_d])[None].to(input_ids.device)], dim=1)
        t = pair.target(ctx).logits[0, input_ids.shape[1] - 1:].float()  # [L + 1, n]
    return FunctionCase.from_logits(t.cpu().numpy(), torch.stack(rows_d).cpu().numpy(), sampling,
                                    name=name or f"models at {input_ids[0].tolist()}")


def sample_rows(q, size: int, *, rng) -> np.ndarray:
    """``size`` independent draws from each row of q (L, n): int64 (size, L), inverse CDF in float64.

    Parameters
    ----------
    q : array_like, shape (..., n)
    size : int
    rng : numpy.random.Generator, int or None
        Random source: a Generator or a seed.

    Returns
    -------
    numpy.ndarray
    """
    q = np.asarray(q, dtype=np.float64)
    cdf = np.cumsum(q, axis=-1)
    u = rng.random((size, q.shape[0])) * cdf[:, -1]
    out = np.empty((size, q.shape[0]), dtype=np.int64)
    for j in range(q.shape[0]):
        out[:, j] = np.minimum(np.searchsorted(cdf[j], u[:, j], side="right"), q.shape[1] - 1)
    return out
