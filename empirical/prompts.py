"""Prompt sets for real-model decoding: the built-in set, JSONL files and Hugging Face datasets.

Convention: a prompt is either a chat (a list of user turns, rendered with the tokenizer's chat
template when it has one) or a plain continuation text. Only the first user turn is decoded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["BUILTIN_PROMPTS", "Prompt", "load_prompts", "encode_prompt"]

#: the project's own prompt set (55 prompts, chat-style and continuation, interleaved)
BUILTIN_PROMPTS = Path(__file__).with_name("data") / "prompts.jsonl"
#: text columns tried, in order, when a Hugging Face dataset row has no ``turns``
_DATASET_TEXT_KEYS = ("turns", "prompt", "instruction", "question", "text", "article", "document")


@dataclass(frozen=True)
class Prompt:
    """One prompt: ``text`` and whether it is a chat turn (``chat``) or a continuation."""

    id: str
    text: str
    chat: bool


def load_prompts(source: str | None = None, *, num_prompts: int | None = None) -> list[Prompt]:
    """Read prompts from the built-in set, a JSONL file or a Hugging Face dataset.

    Parameters
    ----------
    source : str, optional
        ``None`` or ``"builtin"``: :data:`BUILTIN_PROMPTS`. A path to a ``.jsonl`` file whose rows
        are MT-Bench style ``{"turns": [...]}`` (chat) or ``{"prompt": "..."}`` (continuation,
        unless the row says ``"kind": "chat"``). Otherwise ``"name"`` or ``"name:config:split"``
        of a Hugging Face dataset (needs the ``datasets`` package and the hub).
    num_prompts : int, optional
        Keep the first ``num_prompts`` prompts (all by default).

    Returns
    -------
    list of Prompt. O(rows) time.

    Raises
    ------
    ValueError
        Unreadable rows, an empty set, a non-positive ``num_prompts`` or a dataset that cannot be
        loaded (the message says why).
    """
    if num_prompts is not None and int(num_prompts) < 1:
        raise ValueError(f"`num_prompts` must be >= 1; got {num_prompts}.")
    if source in (None, "", "builtin"):
        rows = _read_jsonl(BUILTIN_PROMPTS)
    elif source.endswith(".jsonl") or Path(source).is_file():
        if not Path(source).is_file():
            raise ValueError(f"`prompts` file {source!r} does not exist.")
        rows = _read_jsonl(Path(source))
    else:
        rows = _read_dataset(source, num_prompts)
    prompts = [_row_to_prompt(row, i, source) for i, row in enumerate(rows)]
    if not prompts:
        raise ValueError(f"`prompts` {source!r} holds no prompts.")
    return prompts[: int(num_prompts)] if num_prompts is not None else prompts


def encode_prompt(tokenizer, prompt: Prompt) -> list[int]:
    """Token ids of ``prompt``.

    Chat prompts through the tokenizer's chat template (generation prompt appended) when it has one,
    plain text otherwise. O(length).

    Parameters
    ----------
    tokenizer : transformers tokenizer
        The tokenizer.
    prompt : Prompt

    Returns
    -------
    list[int]

    Raises
    ------
    ValueError
        On bad input (the message names the rule): Prompt ... encodes to no tokens.
    """
    if prompt.chat and getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt.text}], add_generation_prompt=True, tokenize=True
        )
        if isinstance(ids, dict) or hasattr(ids, "keys"):  # BatchEncoding in newer transformers
            ids = ids["input_ids"]
    else:
        ids = tokenizer(prompt.text)["input_ids"]
    ids = [int(t) for t in ids]
    if not ids:
        raise ValueError(f"prompt {prompt.id!r} encodes to no tokens.")
    return ids


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"`prompts` file {str(path)!r} line {line_no} is not JSON: {exc.msg}.") from None
    return rows


def _read_dataset(name: str, num_prompts: int | None) -> list[dict]:
    try:
        import datasets
    except ImportError:
        raise ValueError(
            f"`prompts` {name!r} is neither 'builtin' nor a .jsonl file, and reading it as a Hugging Face "
            "dataset needs the `datasets` package (pip install datasets)."
        ) from None
    parts = name.split(":")
    path, config = parts[0], (parts[1] or None) if len(parts) > 1 else None
    split = parts[2] if len(parts) > 2 else "train"
    if num_prompts is not None:
        split = f"{split}[:{int(num_prompts)}]"
    try:
        ds = datasets.load_dataset(path, config, split=split)
    except Exception as exc:  # hub unreachable, unknown dataset, ...
        raise ValueError(f"could not load Hugging Face dataset {name!r}: {exc}") from None
    return [dict(row) for row in ds]


def _row_to_prompt(row: dict, index: int, source) -> Prompt:
    if not isinstance(row, dict):
        raise ValueError(f"`prompts` {source!r} row {index} must be a JSON object; got {type(row).__name__}.")
    pid = str(row.get("id", row.get("question_id", index)))
    for key in _DATASET_TEXT_KEYS:
        if key in row:
            value = row[key]
            if key == "turns":
                if not value or not isinstance(value[0], str):
                    raise ValueError(f"`prompts` {source!r} row {index}: 'turns' must be a non-empty list of strings.")
                return Prompt(pid, value[0], True)
            if isinstance(value, str) and value.strip():
                chat = row.get("kind") == "chat" or key in ("instruction", "question")
                return Prompt(pid, value, chat)
    raise ValueError(f"`prompts` {source!r} row {index} has none of the keys {', '.join(_DATASET_TEXT_KEYS)}.")
