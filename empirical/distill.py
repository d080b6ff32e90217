"""On-policy distillation of a draft: sample text from the target, then fit q to p by KL(p || q).

Convention: p = target, q = draft, last axis = vocabulary. Loss: mean over sampled positions of
KL(p || q) = sum_x p(x) (log p(x) - log q(x)) on full distributions, p and q in float32 (never the
argmax). measurements.md: this recipe works, and prompt diversity is the lever (distill_prompts).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from .distill_eval import autocast_like, masked_logits, softmax_at
from .draft_model import own_parameters

#: steps between checks that every row has finished (each check waits for the GPU)
_SYNC_EVERY = 16

__all__ = ["SampleSet", "sample_from_target", "TrainConfig", "CurvePoint", "TrainResult", "train_draft"]


@dataclass(frozen=True)
class SampleSet:
    """Token sequences written by the target: prompt ids followed by sampled ids (EOS included)."""

    sequences: tuple  # of 1-D int64 CPU tensors [prompt_len + generated]
    prompt_lengths: tuple  # of int
    temperature: float
    pad_id: int

    @property
    def num_sampled(self) -> int:
        """Sampled tokens in all sequences (= positions whose law is trained or evaluated)."""
        return sum(len(s) - n for s, n in zip(self.sequences, self.prompt_lengths))

    def merged(self, other: "SampleSet") -> "SampleSet":
        """Both sets in one (the temperature of ``self`` is kept as a label).

        Parameters
        ----------
        other : SampleSet

        Returns
        -------
        SampleSet
        """
        return SampleSet(self.sequences + other.sequences, self.prompt_lengths + other.prompt_lengths,
                         self.temperature, self.pad_id)

    def batch(self, indices, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded ``input_ids`` [B, L] and ``mask`` [B, L] (True where logits predict a sampled token).

        Right padding keeps every real token at its true position under the causal mask, so no
        attention mask is needed; position t predicts token t + 1.

        Parameters
        ----------
        indices : sequence of int
        device : str or torch.device

        Returns
        -------
        tuple[torch.Tensor, torch.Tensor]
        """
        rows = [self.sequences[i] for i in indices]
        width = max(len(r) for r in rows)
        input_ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)  # [B, L]
        mask = torch.zeros((len(rows), width), dtype=torch.bool)  # [B, L]
        for row, i in enumerate(indices):
            sequence = self.sequences[i]
            input_ids[row, : len(sequence)] = sequence
            mask[row, self.prompt_lengths[i] - 1 : len(sequence) - 1] = True
        return input_ids.to(device), mask.to(device)

    def batches(self, batch_size: int, device, limit: int | None = None):
        """Consecutive batches (see :meth:`batch`) over the first ``limit`` sequences (all by default).

        Parameters
        ----------
        batch_size : int
        device : str or torch.device
        limit : int or None, optional

        Yields
        ------
        tuple of torch.Tensor
        """
        count = len(self.sequences) if limit is None else min(limit, len(self.sequences))
        for start in range(0, count, batch_size):
            yield self.batch(range(start, min(start + batch_size, count)), device)


def sample_from_target(target, prompt_ids, *, temperature: float, max_new_tokens: int, batch_size: int,
                       eos_id: int, pad_id: int, generator: torch.Generator, deadline: float = math.inf,
                       token_budget: int | None = None, log=None) -> SampleSet:
    """Sample continuations of ``prompt_ids`` from the target with a KV cache, batch by batch.

    Parameters
    ----------
    target : transformers causal LM
    prompt_ids : list of list of int
        Prompts, processed in the given order (sort by length beforehand to limit padding).
    temperature : float
        T > 0 samples from softmax(logits / T) in float32 (top-k and top-p off); T = 0 is greedy.
    max_new_tokens, batch_size : int
    eos_id, pad_id : int
        A sequence stops after its EOS; ``pad_id`` fills right padding in later batches.
    generator : torch.Generator
        On the target's device; the only source of randomness.
    deadline : float, default inf
        ``time.monotonic()`` value after which no new batch is started.
    token_budget : int, optional
        Stop starting batches once this many tokens have been sampled.
    log : callable, optional
        Called with one progress line per batch.

    Returns
    -------
    SampleSet
        Sequences without left padding: prompt ids then sampled ids up to the first EOS.
    """
    device = target.get_input_embeddings().weight.device
    sequences, prompt_lengths, sampled = [], [], 0
    for start in range(0, len(prompt_ids), batch_size):
        if time.monotonic() >= deadline or (token_budget is not None and sampled >= token_budget):
            break
        chunk = prompt_ids[start : start + batch_size]
        began = time.monotonic()
        new = _sample_batch(target, chunk, temperature, max_new_tokens, eos_id, pad_id, generator, device)
        for prompt, row in zip(chunk, new):
            length = _length_through_eos(row, eos_id)
            sequences.append(torch.cat([torch.tensor(prompt, dtype=torch.long), row[:length]]))
            prompt_lengths.append(len(prompt))
            sampled += length
        if log:
            rate = sum(_length_through_eos(r, eos_id) for r in new) / max(time.monotonic() - began, 1e-9)
            log(f"sampled {len(sequences)} sequences, {sampled} tokens at T={temperature} ({rate:,.0f} tokens/s)")
    return SampleSet(tuple(sequences), tuple(prompt_lengths), temperature, pad_id)


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and budget of the KL fit (defaults: the 2-layer run of measurements.md, scaled)."""

    batch_size: int = 32  # sequences per step (~8k positions at 256 sampled tokens each)
    lr: float = 5e-4
    warmup_steps: int = 50
    min_lr_fraction: float = 0.1  # cosine decay down to lr * this
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    token_budget: int = 20_000_000  # trained positions; the time limit may stop earlier
    eval_every: int = 100  # steps between held-out points on the curve
    seed: int = 0


@dataclass(frozen=True)
class CurvePoint:
    """One row of the training curve."""

    step: int
    tokens: int
    seconds: float
    lr: float
    train_kl: float  # mean KL(p || q) over the positions since the previous point
    heldout_agreement: float | None  # mean 1 - TV at T = 1 on held-out samples (None: no monitor)


@dataclass(frozen=True)
class TrainResult:
    """What the KL fit did and why it stopped ("tokens" or "time")."""

    steps: int
    tokens: int
    seconds: float
    stopped_by: str
    curve: tuple  # of CurvePoint

    def summary(self) -> dict:
        """First and last curve points and the stopping reason (for ``draft.json``).

        Returns
        -------
        dict
        """
        first, last = self.curve[0], self.curve[-1]
        return {"steps": self.steps, "tokens": self.tokens, "seconds": round(self.seconds, 1),
                "stopped_by": self.stopped_by, "first": _point_dict(first), "last": _point_dict(last)}


def train_draft(target, draft, samples: SampleSet, config: TrainConfig = TrainConfig(), *,
                deadline: float = math.inf, monitor=None, log=None) -> TrainResult:
    """Fit the draft's own layers to the target's next-token laws on ``samples`` by KL(p || q).

    Parameters
    ----------
    target, draft : transformers causal LMs
        The draft from :func:`empirical.draft_model.build_draft` (shared embedding and head stay
        frozen; only :func:`~empirical.draft_model.own_parameters` are updated).
    samples : SampleSet
        On-policy text; batches of ``config.batch_size`` sequences are drawn uniformly at random.
    config : TrainConfig
    deadline : float, default inf
        ``time.monotonic()`` value at which training stops (checked every step).
    monitor : callable, optional
        ``monitor(draft) -> float`` (e.g. held-out 1 - TV), called every ``config.eval_every``
        steps and at the end.
    log : callable, optional
        Receives one line per curve point.

    Returns
    -------
    TrainResult
        The learning rate follows warm-up then cosine decay in *progress*, the larger of the token
        and the time fractions, so it reaches its floor whichever budget ends the run.

    Raises
    ------
    ValueError
        On bad input (the message names the rule): ``samples`` must hold at least one sequence.
    """
    if not samples.sequences:
        raise ValueError("`samples` must hold at least one sequence; got none.")
    device = target.get_input_embeddings().weight.device
    params = own_parameters(draft)
    optimizer = torch.optim.AdamW(params, lr=config.lr, betas=(0.9, 0.95), weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    start = time.monotonic()
    span = max(deadline - start, 1e-9)
    curve, steps, tokens, window_kl, window_tokens = [], 0, 0, 0.0, 0
    stopped_by = "tokens"
    draft.train()
    while tokens < config.token_budget:
        if time.monotonic() >= deadline:
            stopped_by = "time"
            break
        progress = max(tokens / config.token_budget, (time.monotonic() - start) / span)
        lr = _lr_at(steps, progress, config)
        for group in optimizer.param_groups:
            group["lr"] = lr
        indices = torch.randint(len(samples.sequences), (config.batch_size,), generator=generator).tolist()
        input_ids, mask = samples.batch(indices, device)
        kl = _kl_loss(target, draft, input_ids, mask)
        optimizer.zero_grad(set_to_none=True)
        kl.backward()
        torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        optimizer.step()
        count = int(mask.sum())
        steps, tokens = steps + 1, tokens + count
        window_kl, window_tokens = window_kl + float(kl.detach()) * count, window_tokens + count
        if steps % config.eval_every == 0:
            curve.append(_curve_point(draft, steps, tokens, start, lr, window_kl / window_tokens, monitor, log))
            window_kl = window_tokens = 0
    if window_tokens or not curve:
        curve.append(_curve_point(draft, steps, tokens, start, lr if steps else config.lr,
                                  window_kl / max(window_tokens, 1), monitor, log))
    draft.eval()
    return TrainResult(steps, tokens, time.monotonic() - start, stopped_by, tuple(curve))


def _kl_loss(target, draft, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean KL(p || q) over the masked positions; logits upcast to float32 before log-softmax."""
    with autocast_like(target):
        with torch.no_grad():
            log_p = torch.log_softmax(masked_logits(target, input_ids, mask), -1)  # [N, vocab]
        log_q = torch.log_softmax(masked_logits(draft, input_ids, mask), -1)  # [N, vocab]
    return torch.nn.functional.kl_div(log_q, log_p, log_target=True, reduction="batchmean")


def _lr_at(step: int, progress: float, config: TrainConfig) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine from lr to lr * min_lr_fraction in progress."""
    warm = min(1.0, (step + 1) / max(config.warmup_steps, 1))
    cosine = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return config.lr * warm * (config.min_lr_fraction + (1 - config.min_lr_fraction) * cosine)


def _curve_point(draft, steps, tokens, start, lr, train_kl, monitor, log) -> CurvePoint:
    """Evaluate the monitor (draft in eval mode meanwhile) and make one curve row."""
    agreement = None
    if monitor is not None:
        draft.eval()
        agreement = float(monitor(draft))
        draft.train()
    point = CurvePoint(steps, tokens, time.monotonic() - start, lr, train_kl, agreement)
    if log:
        shown = "-" if agreement is None else f"{agreement:.4f}"
        log(f"step {steps}: {tokens:,} positions, train KL {train_kl:.4f}, held-out 1-TV {shown}, lr {lr:.2e}")
    return point


def _point_dict(point: CurvePoint) -> dict:
    """A curve point with rounded floats."""
    agreement = None if point.heldout_agreement is None else round(point.heldout_agreement, 5)
    return {"step": point.step, "tokens": point.tokens, "seconds": round(point.seconds, 1),
            "train_kl": round(point.train_kl, 5), "heldout_agreement": agreement}


def _sample_batch(target, prompts, temperature, max_new_tokens, eos_id, pad_id, generator, device):
    """Sampled ids [B, max_new_tokens] (pad after EOS) for left-padded ``prompts``; KV-cached loop."""
    from transformers import DynamicCache

    width = max(len(p) for p in prompts)
    input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)  # [B, P] left-padded
    attention = torch.zeros((len(prompts), width), dtype=torch.long)  # [B, P]
    for row, prompt in enumerate(prompts):
        input_ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
        attention[row, width - len(prompt) :] = 1
    input_ids, attention = input_ids.to(device), attention.to(device)
    positions = (attention.cumsum(-1) - 1).clamp_min(0)  # [B, P] true positions under left padding
    cache = DynamicCache()
    finished = torch.zeros(len(prompts), dtype=torch.bool, device=device)  # [B]
    out = torch.full((len(prompts), max_new_tokens), pad_id, dtype=torch.long, device=device)  # [B, new]
    step_ids = input_ids
    with torch.no_grad():
        for step in range(max_new_tokens):
            logits = target(input_ids=step_ids, attention_mask=attention, position_ids=positions,
                            past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1]  # [B, vocab]
            token = _draw(logits, temperature, generator)  # [B]
            token = torch.where(finished, pad_id, token)
            out[:, step] = token
            finished |= token == eos_id
            if step % _SYNC_EVERY == _SYNC_EVERY - 1 and bool(finished.all()):
                break
            step_ids = token[:, None]  # [B, 1]
            attention = torch.cat([attention, torch.ones_like(attention[:, :1])], -1)
            positions = positions[:, -1:] + 1
    return out.cpu()


def _draw(logits: torch.Tensor, temperature: float, generator: torch.Generator) -> torch.Tensor:
    """One token per row from softmax(logits / T) in float32 (T = 0: the argmax, via a one-hot law)."""
    return torch.multinomial(softmax_at(logits, temperature), 1, generator=generator)[:, 0]  # [B]


def _length_through_eos(row: torch.Tensor, eos_id: int) -> int:
    """Tokens up to and including the first EOS (all of them when there is none)."""
    hits = (row == eos_id).nonzero()
    return int(hits[0, 0]) + 1 if len(hits) else len(row)
