"""The report's short real-model run: SmolLM2-135M-Instruct as target on CPU, a tiny decoding config.

Convention: p = target, q = draft; tokens per step = accepted + 1. Uses the ``empirical`` package
(``spechub decode``'s library function ``run_decode``) when the models extra is installed;
otherwise says what is missing and the report skips the real-model parts.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ModelRun", "models_available", "run_real_model", "DRAFTS"]

#: the distilled draft shipped with the package, then the stand-in (first 4 target layers)
DRAFTS = ("smollm2-draft", "smollm2-layers:4")
_NEEDED = ("torch", "transformers", "gguf")  # the SmolLM2 GGUF itself is fetched on first use (empirical.registry)


@dataclass(frozen=True)
class ModelRun:
    """Outcome of the real-model run.

    ``summary`` (empirical summary dict) and ``out`` folder when it ran; ``note`` says which draft
    was used or why it was skipped.
    """

    ran: bool
    note: str
    out: str | None = None
    summary: dict = field(default_factory=dict)
    draft: str | None = None


def models_available() -> str | None:
    """None when the models extra is usable, else a sentence naming what is missing.

    Returns
    -------
    str or None
    """
    missing = [m for m in ("empirical.run", *_NEEDED) if not _has(m)]
    if missing:
        return (f"skipped the real-model run: {', '.join(missing)} not installed "
                "(pip install 'spechub-theory[models]' for torch, transformers and gguf)")
    return None


def run_real_model(out_dir, *, tree: str, methods, temperature: float, num_prompts: int, max_new_tokens: int,
                   seed: int, device: str = "cpu", progress=None) -> ModelRun:
    """Decode ``num_prompts`` built-in prompts with SmolLM2 (target) and its draft.

    Never raises for a missing extra or model file (returns ``ran=False`` with the reason).

    The draft is ``smollm2-draft`` (the project's distilled draft) when it loads, else
    ``smollm2-layers:4``. The run goes to ``out_dir`` (records.jsonl, summary.json, config.json).

    Parameters
    ----------
    out_dir : str or pathlib.Path
    tree : str
    methods : sequence of str
    temperature : float
    num_prompts : int
    max_new_tokens : int
    seed : int
    device : str, optional
    progress : bool, optional

    Returns
    -------
    ModelRun
    """
    missing = models_available()
    if missing:
        return ModelRun(False, missing)
    from empirical.models import load_pair
    from empirical.run import DecodeConfig, run_decode

    pair, draft, why = None, None, []
    if not _shipped_draft_present():  # skip a doomed load of the target (about a minute on CPU)
        why.append(f"{DRAFTS[0]}: the distilled draft's weights are not installed (empirical/weights)")
    for name in DRAFTS[len(why):]:
        try:
            if progress is not None:
                progress(f"loading smollm2 + {name} on {device}")
            pair, draft = load_pair("smollm2", name, device=device), name
            break
        except (ValueError, FileNotFoundError, OSError, ImportError) as exc:
            why.append(f"{name}: {' '.join(str(exc).split())[:160]}")
    if pair is None:
        return ModelRun(False, "skipped the real-model run: no model pair loaded (" + "; ".join(why) + ")")
    config = DecodeConfig(target="smollm2", draft=draft, trees=(tree,), methods=tuple(methods), temperature=temperature,
                          num_prompts=num_prompts, max_new_tokens=max_new_tokens, seed=seed, device=device,
                          batch_size=num_prompts)  # all prompts of a method in lockstep: same tokens, fewer forwards
    out = Path(out_dir)
    try:
        summary = run_decode(config, out, pair=pair, argv=["spechub", "report"], progress=progress is not None)
    except ValueError as exc:
        return ModelRun(False, f"skipped the real-model run: {exc}")
    note = f"SmolLM2-135M-Instruct <- {draft}" + (f" (stand-in; {why[0]})" if why else "")
    return ModelRun(True, note, str(out), summary, draft)


def _shipped_draft_present() -> bool:
    """True when ``empirical.draft_model`` and its shipped weights file exist."""
    try:
        from empirical import draft_model
    except ImportError:
        return False
    name = getattr(draft_model, "DRAFT_FILE", None)
    return name is not None and (Path(draft_model.WEIGHTS_DIR) / name).is_file()


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
