r"""How good a draft is on real decoding positions: 1 - TV and two-draft acceptance, plus forward cost.

Convention: p = target, q = draft, last axis = vocabulary; p and q at temperature T are
softmax(logits / T) in float32, the rates in float64 (torch twins of ``spechub_theory.acceptance``).
Formulas: theory.md 3.4 (SpecHub) and 4.3 (RRS without replacement); parity-tested against the core.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import torch

__all__ = [
    "EVAL_METHODS",
    "acceptance_k2",
    "position_laws",
    "DraftQuality",
    "evaluate_draft",
    "mean_agreement",
    "ForwardCost",
    "forward_cost",
    "masked_logits",
    "autocast_like",
    "softmax_at",
]

#: the rates reported for a draft, in this order (single = 1 - TV, one draft)
EVAL_METHODS = ("single", "rrs", "rrs_wor", "spechub")
#: rows of (p, q) handled at once: 512 x 49,152 float64 is 200 MB per array, ~10 arrays live
_ROWS_PER_CHUNK = 512


def acceptance_k2(p: torch.Tensor, q: torch.Tensor) -> dict[str, torch.Tensor]:
    r"""Exact acceptance rates with k = 2 drafts for rows of (p, q), in float64.

    .. math::
        \text{single} = \sum_x \min(p, q), \qquad
        \text{rrs} = \sum_x \min\big(p, (1 + TV)\,q\big),

        \text{spechub} = \min\Big\{1,\ p(a) + \sum_{i \ne a} \min\big(p(i), q(i)/(1 - q(a))\big)\Big\},
        \quad a = \arg\max q,

        \text{rrs\_wor} = \text{single} + \sum_{j: q_j > p_j} (q_j - p_j)
            \sum_x \min\big(r(x), q(x)/(1 - q_j)\big), \quad r = (p - q)_+ / TV.

    Parameters
    ----------
    p, q : torch.Tensor, shape (..., n)
        Target and draft laws (any float dtype; upcast to float64 and renormalised).

    Returns
    -------
    dict[str, torch.Tensor]
        ``EVAL_METHODS`` -> float64 tensor of shape (...).

    Notes
    -----
    O(n log n) per row (one sort for RRS without replacement). ``1 - q(a)`` and ``1 - q_j`` are
    sums of the other entries (no cancellation); where such a sum is 0 the next draft is uniform
    on the remaining tokens, as in ``spechub_theory.draft_laws.conditional_law``. The argmax takes
    the lowest index on ties. Same values as ``spechub_theory.acceptance.acceptance_rates(p, q, 2)``.

    Examples
    --------
    >>> rates = acceptance_k2(torch.tensor([.3, .3, .4]), torch.tensor([.6, .3, .1]))
    >>> {m: round(float(v), 6) for m, v in rates.items()}
    {'single': 0.7, 'rrs': 0.73, 'rrs_wor': 0.775, 'spechub': 0.85}
    """
    p = p.double() / p.double().sum(-1, keepdim=True)  # [..., n]
    q = q.double() / q.double().sum(-1, keepdim=True)  # [..., n]
    n = p.shape[-1]
    uniform_other = 1.0 / max(n - 1, 1)
    single = torch.minimum(p, q).sum(-1)
    tv = (q - p).clamp_min(0).sum(-1)
    rrs = torch.minimum(p, (1 + tv)[..., None] * q).sum(-1)

    hub = q.argmax(-1, keepdim=True)  # [..., 1]
    is_hub = torch.zeros_like(q, dtype=torch.bool).scatter_(-1, hub, True)
    q_hub = q.gather(-1, hub)  # [..., 1]
    others = torch.where(is_hub, 0.0, q).sum(-1, keepdim=True)  # 1 - q(a), never by subtraction
    second = torch.where(others > 0, q / others.clamp_min(torch.finfo(q.dtype).tiny), uniform_other)
    captured = torch.where(is_hub, 0.0, torch.minimum(p, q + q_hub * second)).sum(-1)
    spechub = torch.clamp(p.gather(-1, hub)[..., 0] + captured, max=1.0)

    over = (q - p).clamp_min(0)  # [..., n] mass of "j drafted and rejected"
    residual = (p - q).clamp_min(0) / tv.clamp_min(torch.finfo(p.dtype).tiny)[..., None]  # r; unused where tv = 0
    rest = _sum_of_others(q)  # [..., n] 1 - q_j
    scale = torch.where(rest > 0, 1.0 / rest.clamp_min(torch.finfo(q.dtype).tiny), 0.0)
    covered = _coverage(residual, q, scale)  # sum_x min(r(x), q(x) / (1 - q_j))
    uniform_next = torch.minimum(residual, torch.full_like(residual, uniform_other)).sum(-1, keepdim=True)
    rrs_wor = single + (over * torch.where(rest > 0, covered, uniform_next)).sum(-1)
    return {"single": single, "rrs": rrs, "rrs_wor": rrs_wor, "spechub": spechub}


def position_laws(target, draft, input_ids: torch.Tensor, mask: torch.Tensor, temperature: float):
    """(p, q) at temperature T on the positions picked by ``mask``, float32, shapes [N, vocab].

    ``input_ids`` [B, L] are right-padded samples; ``mask`` [B, L] is True where the logits
    predict a sampled token. T = 0 gives one-hot laws at the argmax (explicit greedy branch).

    Parameters
    ----------
    target : transformers.PreTrainedModel
    draft : transformers.PreTrainedModel
    input_ids : torch.Tensor
    mask : torch.Tensor
    temperature : float

    Returns
    -------
    tuple
    """
    with torch.no_grad(), autocast_like(target):
        p_logits = masked_logits(target, input_ids, mask)  # [N, vocab]
        q_logits = masked_logits(draft, input_ids, mask)  # [N, vocab]
    return softmax_at(p_logits, temperature), softmax_at(q_logits, temperature)


@dataclass(frozen=True)
class DraftQuality:
    """Mean rates over decoding positions of one sample set at one temperature."""

    temperature: float
    positions: int
    sequences: int
    acceptance: dict  # EVAL_METHODS -> mean rate (single = 1 - TV)

    def to_dict(self) -> dict:
        """JSON-ready dict, rates rounded to 6 decimals.

        Returns
        -------
        dict
        """
        return {"temperature": self.temperature, "positions": self.positions, "sequences": self.sequences,
                "acceptance": {m: round(v, 6) for m, v in self.acceptance.items()}}


def evaluate_draft(target, draft, batches, temperature: float) -> DraftQuality:
    """Mean acceptance rates (``EVAL_METHODS``) over all sampled positions of ``batches``.

    ``batches`` yields ``(input_ids [B, L], mask [B, L])`` as made by
    :meth:`empirical.distill.SampleSet.batches` of samples drawn from the target at ``temperature``.

    Parameters
    ----------
    target : transformers.PreTrainedModel
    draft : transformers.PreTrainedModel
    batches : iterable of (torch.Tensor, torch.Tensor)
    temperature : float

    Returns
    -------
    DraftQuality

    Raises
    ------
    ValueError
        On bad input (the message names the rule): ``batches`` must contain at least one sampled
        position.
    """
    totals = dict.fromkeys(EVAL_METHODS, 0.0)
    positions = sequences = 0
    for input_ids, mask in batches:
        p, q = position_laws(target, draft, input_ids, mask, temperature)
        for start in range(0, len(p), _ROWS_PER_CHUNK):
            rates = acceptance_k2(p[start : start + _ROWS_PER_CHUNK], q[start : start + _ROWS_PER_CHUNK])
            for method in EVAL_METHODS:
                totals[method] += float(rates[method].sum())
        positions += len(p)
        sequences += len(input_ids)
    if positions == 0:
        raise ValueError("`batches` must contain at least one sampled position; got none.")
    return DraftQuality(temperature, positions, sequences, {m: totals[m] / positions for m in EVAL_METHODS})


def mean_agreement(target, draft, batches, temperature: float = 1.0) -> float:
    """Mean 1 - TV(p, q) over the sampled positions of ``batches`` (the training curve's metric).

    Parameters
    ----------
    target : transformers.PreTrainedModel
    draft : transformers.PreTrainedModel
    batches : iterable of (torch.Tensor, torch.Tensor)
    temperature : float, optional

    Returns
    -------
    float
    """
    total = count = 0.0
    for input_ids, mask in batches:
        p, q = position_laws(target, draft, input_ids, mask, temperature)
        total += float(torch.minimum(p, q).sum(-1).double().sum())
        count += len(p)
    return total / max(count, 1)


@dataclass(frozen=True)
class ForwardCost:
    """Seconds per forward of target and draft, and the draft's cost as a fraction of the target's."""

    device: str
    dtype: str
    prefill_shape: tuple  # (batch, tokens)
    target_prefill_s: float
    draft_prefill_s: float
    target_step_s: float  # one new token at batch 1 with a KV cache of ``prefill_shape[1]`` tokens
    draft_step_s: float

    @property
    def prefill_ratio(self) -> float:
        """Draft prefill time / target prefill time."""
        return self.draft_prefill_s / self.target_prefill_s

    @property
    def step_ratio(self) -> float:
        """Draft step time / target step time."""
        return self.draft_step_s / self.target_step_s

    def to_dict(self) -> dict:
        """JSON-ready dict with the two ratios.

        Returns
        -------
        dict
        """
        return {"device": self.device, "dtype": self.dtype, "prefill_shape": list(self.prefill_shape),
                "target_prefill_s": self.target_prefill_s, "draft_prefill_s": self.draft_prefill_s,
                "target_step_s": self.target_step_s, "draft_step_s": self.draft_step_s,
                "prefill_ratio": round(self.prefill_ratio, 4), "step_ratio": round(self.step_ratio, 4)}


def forward_cost(target, draft, *, batch: int = 8, tokens: int = 256, repeats: int = 5) -> ForwardCost:
    """Median wall time of a prefill ``[batch, tokens]`` and of a one-token step at batch 1.

    Timed with device synchronisation after a warm-up; random token ids (cost does not depend on them).

    Parameters
    ----------
    target : transformers.PreTrainedModel
    draft : transformers.PreTrainedModel
    batch : int, optional
    tokens : int, optional
    repeats : int, optional

    Returns
    -------
    ForwardCost
    """
    weight = target.get_input_embeddings().weight
    ids = torch.randint(0, weight.shape[0], (batch, tokens), device=weight.device)  # [batch, tokens]
    times = {}
    for name, model in (("target", target), ("draft", draft)):
        times[name + "_prefill"] = _median_time(lambda _, m=model: m(ids, use_cache=False), weight.device, repeats)
        with torch.no_grad():
            cache = model(ids[:1], use_cache=True).past_key_values  # a KV cache of ``tokens`` positions

        def one_step(fresh_cache, m=model):
            return m(ids[:1, :1], past_key_values=fresh_cache, use_cache=True)

        # a fresh copy per call (made outside the timing), so every repeat sees the same cache length
        times[name + "_step"] = _median_time(one_step, weight.device, repeats, setup=lambda c=cache: copy.deepcopy(c))
    return ForwardCost(str(weight.device), str(weight.dtype).removeprefix("torch."), (batch, tokens),
                       times["target_prefill"], times["draft_prefill"], times["target_step"], times["draft_step"])


def _median_time(fn, device, repeats: int, setup=None) -> float:
    """Median seconds of ``fn(setup())`` over ``repeats`` calls after one warm-up, synchronising CUDA.

    ``setup`` (untimed, default: returns None) makes the argument of each call.
    """
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    samples = []
    with torch.no_grad():
        for index in range(repeats + 1):
            argument = setup() if setup is not None else None
            sync()
            start = time.perf_counter()
            fn(argument)
            sync()
            if index:
                samples.append(time.perf_counter() - start)
    return sorted(samples)[len(samples) // 2]


def masked_logits(model, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Float32 logits at the True positions of ``mask``: backbone, pick rows, then the head.

    Parameters
    ----------
    model : transformers.PreTrainedModel
    input_ids : torch.Tensor
    mask : torch.Tensor

    Returns
    -------
    torch.Tensor
    """
    hidden = model.get_decoder()(input_ids=input_ids).last_hidden_state  # [B, L, hidden]
    return model.get_output_embeddings()(hidden[mask]).float()  # [N, vocab]


def softmax_at(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Compute softmax(logits / T) in float32; T = 0 is the one-hot law at the argmax; T < 0 is a ValueError.

    Parameters
    ----------
    logits : torch.Tensor
    temperature : float

    Returns
    -------
    torch.Tensor

    Raises
    ------
    ValueError
        On bad input (the message names the rule): ``temperature`` must be >= 0.
    """
    if temperature < 0:
        raise ValueError(f"`temperature` must be >= 0; got {temperature}.")
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).float()
    return torch.softmax(logits.float() / temperature, dim=-1)


def autocast_like(model):
    """Autocast to the model's embedding dtype on CUDA (a float32-trained draft around a bf16 target).

    Parameters
    ----------
    model : transformers.PreTrainedModel

    Returns
    -------
    torch.autocast
    """
    weight = model.get_input_embeddings().weight
    enabled = weight.device.type == "cuda" and weight.dtype != torch.float32
    return torch.autocast("cuda", dtype=weight.dtype, enabled=enabled)


def _sum_of_others(w: torch.Tensor) -> torch.Tensor:
    """``sum_{y != x} w(y)`` for every x, as exclusive prefix + suffix sums (no cancellation)."""
    zero = torch.zeros_like(w[..., :1])
    before = torch.cat([zero, torch.cumsum(w, -1)[..., :-1]], -1)
    after = torch.cat([torch.flip(torch.cumsum(torch.flip(w, (-1,)), -1), (-1,))[..., 1:], zero], -1)
    return before + after


def _coverage(f: torch.Tensor, q: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """G(c) = sum_x min(f(x), c q(x)) for each c (same shape as f), one sort of f/q per row."""
    inf = torch.tensor(float("inf"), dtype=f.dtype, device=f.device)
    ratio = torch.where(q > 0, f / q.clamp_min(torch.finfo(q.dtype).tiny), torch.where(f > 0, inf, 0.0))
    ratio, order = torch.sort(ratio, dim=-1)  # [..., n] ascending f/q
    f_sorted, q_sorted = f.gather(-1, order), q.gather(-1, order)
    zero = torch.zeros_like(f[..., :1])
    f_prefix = torch.cat([zero, torch.cumsum(f_sorted, -1)], -1)  # [..., n + 1] F_m
    q_suffix = torch.cat([torch.flip(torch.cumsum(torch.flip(q_sorted, (-1,)), -1), (-1,)), zero], -1)  # Q>_m
    count = torch.searchsorted(ratio.contiguous(), c.contiguous(), right=True)  # [..., n] ratios <= c
    return f_prefix.gather(-1, count) + c * q_suffix.gather(-1, count)
