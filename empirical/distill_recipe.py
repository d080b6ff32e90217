"""The whole distillation recipe under one time budget: load, sample, train, save, evaluate.

Convention: p = target, q = draft, last axis = vocabulary. Phases share the budget: held-out
samples first, then on-policy sampling (``gen_share`` of the time left), then training, with
``eval_reserve_s`` kept for saving, reloading the saved (rounded) draft and evaluating it.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .distill import SampleSet, TrainConfig, sample_from_target, train_draft
from .distill_eval import evaluate_draft, forward_cost, mean_agreement
from .distill_prompts import make_prompts, read_jsonl_prompts, render_prompts
from .draft_model import CONFIG_FILE, DRAFT_FILE, build_draft, load_draft, save_draft
from .smollm2 import TARGET_ID, find_smollm2_gguf, gguf_sha256, load_smollm2

__all__ = ["Recipe", "RecipeResult", "run_recipe", "CURVE_FILE", "EVAL_FILE"]

CURVE_FILE = "curve.csv"
EVAL_FILE = "eval.json"
#: T = 0.6 is the paper's setting (seed-notes 4.4), T = 1 the plain law; the draft is scored at both
EVAL_TEMPERATURES = (1.0, 0.6)
#: every n-th sampling batch runs at T = 0.6, so about a quarter of the on-policy text is sharper
LOW_TEMPERATURE_EVERY = 4
#: sequences per forward in the evaluation (right-padded, <= 128 + ~100 prompt tokens each)
_EVAL_BATCH = 32


@dataclass(frozen=True)
class Recipe:
    """Every setting of one distillation run (defaults: the H200 recipe of benchmarks/device)."""

    num_layers: int = 2
    seed: int = 0
    num_prompts: int = 40_000  # distinct training prompts available (sampling stops on time first)
    num_heldout_prompts: int = 64  # own prompts held out from training
    heldout_prompts: str | None = None  # JSONL with "turns" (MT-Bench), first turns used
    max_new_tokens: int = 256
    eval_new_tokens: int = 128
    gen_batch_size: int = 512
    gen_token_budget: int = 10_000_000
    gen_share: float = 0.5
    time_budget_s: float = 400.0
    eval_reserve_s: float = 45.0
    monitor_sequences: int = 32
    save_dtype: str = "float16"
    device: str | None = None  # default: cuda when available
    target_gguf: str | None = None
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass(frozen=True)
class RecipeResult:
    """Where the files went and the headline numbers."""

    out_dir: str
    files: tuple
    report: dict


def run_recipe(recipe: Recipe, out_dir: str | Path, *, copy_to: str | Path | None = None, log=print,
               started: float | None = None) -> RecipeResult:
    """Run the recipe and write ``draft.safetensors``, ``draft.json``, ``curve.csv``, ``eval.json``.

    Parameters
    ----------
    recipe : Recipe
    out_dir : str or path-like
        Created if missing.
    copy_to : str or path-like, optional
        A second folder that receives the two draft files (e.g. for a later run on the same machine).
    log : callable
        Receives progress lines.
    started : float, optional
        ``time.monotonic()`` at which the budget began (default: now).

    Returns
    -------
    RecipeResult
    """
    started = time.monotonic() if started is None else started
    deadline = started + recipe.time_budget_s
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(recipe.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    generator = torch.Generator(device).manual_seed(recipe.seed)

    gguf = find_smollm2_gguf(recipe.target_gguf)
    target, tokenizer = load_smollm2(device, path=gguf)
    log(f"loaded target {gguf.name} on {device} ({target.dtype})")
    sample = _sampler(target, tokenizer, recipe, generator)

    prompts = make_prompts(recipe.num_prompts + recipe.num_heldout_prompts, seed=recipe.seed)
    train_prompts, own_heldout = prompts[: recipe.num_prompts], prompts[recipe.num_prompts :]
    heldout_sets = {"own": own_heldout}
    if recipe.heldout_prompts:
        heldout_sets["mt_bench"] = read_jsonl_prompts(recipe.heldout_prompts)
    heldout = {
        (name, t): sample(render_prompts(items, tokenizer), t, recipe.eval_new_tokens, float("inf"))
        for name, items in heldout_sets.items() for t in EVAL_TEMPERATURES
    }
    monitor_set = heldout[("mt_bench" if "mt_bench" in heldout_sets else "own", 1.0)]
    log(f"held-out samples: {', '.join(f'{n}@T={t}: {s.num_sampled} tokens' for (n, t), s in heldout.items())}")

    gen_deadline = time.monotonic() + recipe.gen_share * (deadline - recipe.eval_reserve_s - time.monotonic())
    on_policy = _sample_on_policy(sample, train_prompts, tokenizer, recipe, gen_deadline, log)
    log(f"on-policy data: {len(on_policy.sequences)} sequences, {on_policy.num_sampled:,} sampled tokens")

    draft = build_draft(target, recipe.num_layers, own_dtype=torch.float32)
    before = _quality(target, draft, heldout)

    def monitor(model):
        return mean_agreement(target, model, monitor_set.batches(_EVAL_BATCH, device, recipe.monitor_sequences))

    trained = train_draft(target, draft, on_policy, recipe.train, deadline=deadline - recipe.eval_reserve_s,
                          monitor=monitor, log=log)
    _write_curve(out_dir / CURVE_FILE, trained.curve)

    metadata = {
        "target": {"id": TARGET_ID, "gguf_sha256": gguf_sha256(gguf), "vocab_size": target.config.vocab_size,
                   "hidden_size": target.config.hidden_size, "num_layers": target.config.num_hidden_layers},
        "training": {"command": " ".join(sys.argv), "seed": recipe.seed, "recipe": asdict(recipe),
                     "on_policy_sequences": len(on_policy.sequences), "on_policy_tokens": on_policy.num_sampled,
                     "result": trained.summary(), "device": str(device), "torch": torch.__version__},
    }
    save_draft(draft, out_dir, metadata=metadata, dtype=getattr(torch, recipe.save_dtype))
    shipped = load_draft(target, out_dir)  # score what was written, rounding included
    after = _quality(target, shipped, heldout)
    cost = forward_cost(target, shipped)
    report = {**metadata, "heldout_before_training": before, "heldout": after, "forward_cost": cost.to_dict(),
              "elapsed_s": round(time.monotonic() - started, 1)}
    _add_to_config(out_dir / CONFIG_FILE, {"heldout": after, "forward_cost": cost.to_dict()})
    (out_dir / EVAL_FILE).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    log(f"held-out after training: {json.dumps(after)}")
    log(f"forward cost draft/target: prefill {cost.prefill_ratio:.3f}, step {cost.step_ratio:.3f}")
    files = tuple(str(out_dir / name) for name in (DRAFT_FILE, CONFIG_FILE, CURVE_FILE, EVAL_FILE))
    if copy_to is not None:
        Path(copy_to).mkdir(parents=True, exist_ok=True)
        for name in (DRAFT_FILE, CONFIG_FILE):
            shutil.copy2(out_dir / name, Path(copy_to) / name)
    return RecipeResult(str(out_dir), files, report)


def _sampler(target, tokenizer, recipe: Recipe, generator):
    """``sample(prompt_ids, T, max_new_tokens, deadline)`` -> SampleSet, with the recipe's batch and ids."""
    eos_id, pad_id = tokenizer.eos_token_id, tokenizer.pad_token_id

    def sample(prompt_ids, temperature, max_new_tokens, deadline, log=None):
        return sample_from_target(target, prompt_ids, temperature=temperature, max_new_tokens=max_new_tokens,
                                  batch_size=recipe.gen_batch_size, eos_id=eos_id, pad_id=pad_id,
                                  generator=generator, deadline=deadline, log=log)

    return sample


def _sample_on_policy(sample, prompts, tokenizer, recipe: Recipe, deadline: float, log) -> SampleSet:
    """Sample training text batch by batch (shuffled prompts, every 4th batch at T = 0.6) until time or budget."""
    order = list(range(len(prompts)))
    random.Random(recipe.seed).shuffle(order)
    merged = None
    for index, start in enumerate(range(0, len(order), recipe.gen_batch_size)):
        done = 0 if merged is None else merged.num_sampled
        if time.monotonic() >= deadline or done >= recipe.gen_token_budget:
            break
        chunk = [prompts[i] for i in order[start : start + recipe.gen_batch_size]]
        temperature = EVAL_TEMPERATURES[1] if index % LOW_TEMPERATURE_EVERY == LOW_TEMPERATURE_EVERY - 1 else 1.0
        batch = sample(render_prompts(chunk, tokenizer), temperature, recipe.max_new_tokens, deadline, log)
        merged = batch if merged is None else merged.merged(batch)
    if merged is None or not merged.sequences:
        raise ValueError("no on-policy text was sampled: raise `time_budget_s` or lower `gen_batch_size`.")
    return merged


def _quality(target, draft, heldout: dict) -> dict:
    """{set name: {"T=1.0": DraftQuality dict, ...}} over every held-out sample set."""
    device = target.get_input_embeddings().weight.device
    out: dict = {}
    for (name, temperature), samples in heldout.items():
        quality = evaluate_draft(target, draft, samples.batches(_EVAL_BATCH, device), temperature)
        out.setdefault(name, {})[f"T={temperature}"] = quality.to_dict()
    return out


def _write_curve(path: Path, curve) -> None:
    """The training curve as CSV: step, tokens, seconds, lr, train_kl, heldout_agreement."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["step", "tokens", "seconds", "lr", "train_kl", "heldout_agreement"])
        for point in curve:
            agreement = "" if point.heldout_agreement is None else f"{point.heldout_agreement:.6f}"
            writer.writerow([point.step, point.tokens, f"{point.seconds:.2f}", f"{point.lr:.3e}",
                             f"{point.train_kl:.6f}", agreement])


def _add_to_config(path: Path, extra: dict) -> None:
    """Merge ``extra`` into the JSON file at ``path``."""
    record = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**record, **extra}, indent=2) + "\n", encoding="utf-8")


