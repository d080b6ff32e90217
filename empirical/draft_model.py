"""A small Llama draft that borrows its target's tied embedding and output head: build, save, load.

Convention: p = target, q = draft, last axis = vocabulary. The draft is a ``LlamaForCausalLM`` with
1-3 decoder layers whose ``embed_tokens`` and ``lm_head`` ARE the target's modules (shared, frozen);
only its own layers and final norm are trained and saved (measurements.md, "Drafts for it").
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

__all__ = [
    "DRAFT_FILE",
    "CONFIG_FILE",
    "WEIGHTS_DIR",
    "MAX_DRAFT_LAYERS",
    "DraftSpec",
    "build_draft",
    "own_parameters",
    "own_state_dict",
    "save_draft",
    "load_draft",
    "load_shipped_draft",
]

DRAFT_FILE = "draft.safetensors"
CONFIG_FILE = "draft.json"
#: package data: the draft shipped for SmolLM2-135M-Instruct (empirical/weights/)
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: 3 layers of SmolLM2 are 10.6M parameters, 21 MB even in 16 bits: more stops being "small"
MAX_DRAFT_LAYERS = 3
_SHARED_PREFIXES = ("model.embed_tokens.", "lm_head.")
_FORMAT = "spechub-draft/1"


@dataclass(frozen=True)
class DraftSpec:
    """Architecture of the draft's own layers; everything else comes from the target."""

    num_layers: int
    hidden_size: int
    intermediate_size: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    max_position_embeddings: int
    vocab_size: int
    hidden_act: str = "silu"

    @classmethod
    def from_config(cls, config, num_layers: int) -> "DraftSpec":
        """The spec of a ``num_layers``-layer draft for a target with Llama ``config``.

        Parameters
        ----------
        config : transformers.PretrainedConfig
        num_layers : int

        Raises
        ------
        ValueError
            On bad input (the message names the rule): ``num_layers`` must be an integer in [1,
            ...].
        """
        if not isinstance(num_layers, int) or not 1 <= num_layers <= MAX_DRAFT_LAYERS:
            raise ValueError(f"`num_layers` must be an integer in [1, {MAX_DRAFT_LAYERS}]; got {num_layers!r}.")
        rope = getattr(config, "rope_parameters", None) or {}
        rope_theta = rope.get("rope_theta", getattr(config, "rope_theta", None))
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        return cls(
            num_layers=num_layers,
            hidden_size=config.hidden_size,
            intermediate_size=config.intermediate_size,
            num_attention_heads=config.num_attention_heads,
            num_key_value_heads=config.num_key_value_heads,
            head_dim=head_dim,
            rms_norm_eps=float(config.rms_norm_eps),
            rope_theta=float(rope_theta),
            max_position_embeddings=config.max_position_embeddings,
            vocab_size=config.vocab_size,
            hidden_act=config.hidden_act,
        )

    def to_llama_config(self, **overrides):
        """A ``transformers.LlamaConfig`` for this spec (``overrides`` win, e.g. ``num_hidden_layers``).

        Parameters
        ----------
        **overrides
            LlamaConfig fields to change.

        Returns
        -------
        transformers.LlamaConfig
        """
        from transformers import LlamaConfig

        fields = asdict(self)
        fields["num_hidden_layers"] = fields.pop("num_layers")
        fields.update(overrides)
        rope_theta = fields.pop("rope_theta")
        try:  # transformers 5: rope settings live in ``rope_parameters``
            config = LlamaConfig(rope_parameters={"rope_type": "default", "rope_theta": rope_theta}, **fields)
        except TypeError:  # pragma: no cover - transformers 4.x
            config = LlamaConfig(rope_theta=rope_theta, **fields)
        return config

    def to_dict(self) -> dict:
        """Plain-JSON form (stored in ``draft.json``).

        Returns
        -------
        dict
        """
        return asdict(self)


def build_draft(
    target, num_layers: int = 2, *, warm_start: bool = True, spec: DraftSpec | None = None, own_dtype=None
):
    """Build a draft around ``target``'s embedding and head.

    Parameters
    ----------
    target : transformers.LlamaForCausalLM
        The target model p. Its input embedding and output head are shared with the draft (same
        module objects) and set to ``requires_grad=False``; nothing else of it is touched.
    num_layers : int, default 2
        Decoder layers of the draft, 1 to ``MAX_DRAFT_LAYERS`` (ignored when ``spec`` is given).
    warm_start : bool, default True
        Copy the target's first ``num_layers`` layers and its final norm into the draft
        (measurements.md: this warm start trains well; early exits alone are useless drafts).
    spec : DraftSpec, optional
        The architecture; by default derived from ``target.config``.
    own_dtype : torch.dtype, optional
        The dtype of the draft's own layers and norm; default the target embedding's. Training keeps
        them in float32 and runs the forward under autocast in the target's dtype.

    Returns
    -------
    transformers.LlamaForCausalLM
        On the device of the target's embedding, in eval mode. Its own parameters
        (:func:`own_parameters`) are trainable. Never call ``draft.to(dtype)``: it would also
        cast the shared target modules.

    Raises
    ------
    ValueError
        If the target's embedding does not have shape ``(spec.vocab_size, spec.hidden_size)``.
    """
    from transformers import LlamaForCausalLM

    spec = spec or DraftSpec.from_config(target.config, num_layers)
    embed, head = target.get_input_embeddings(), target.get_output_embeddings()
    _check_target(embed, head, spec)
    tied = head.weight is embed.weight
    draft = LlamaForCausalLM(spec.to_llama_config(tie_word_embeddings=tied))
    draft.model.embed_tokens, draft.lm_head = embed, head  # [vocab, hidden], shared with the target
    embed.requires_grad_(False)
    head.requires_grad_(False)
    weight = embed.weight
    draft.model.layers.to(device=weight.device, dtype=own_dtype or weight.dtype)
    draft.model.norm.to(device=weight.device, dtype=own_dtype or weight.dtype)
    draft.model.rotary_emb.to(device=weight.device)  # inv_freq stays float32
    if warm_start:
        backbone = target.get_decoder()
        for layer, source in zip(draft.model.layers, backbone.layers):
            layer.load_state_dict(source.state_dict())
        draft.model.norm.load_state_dict(backbone.norm.state_dict())
    for parameter in own_parameters(draft):
        parameter.requires_grad_(True)
    return draft.eval()


def own_parameters(draft) -> list:
    """The draft's trainable parameters: its decoder layers and final norm (not the shared ones).

    Parameters
    ----------
    draft : transformers.PreTrainedModel

    Returns
    -------
    list
    """
    return [p for module in _own_modules(draft) for p in module.parameters()]


def own_state_dict(draft, dtype: torch.dtype | None = None) -> dict[str, torch.Tensor]:
    """The draft's own tensors (layers and final norm), detached, contiguous, on CPU, optionally cast.

    Parameters
    ----------
    draft : transformers.PreTrainedModel
    dtype : torch.dtype or None, optional

    Returns
    -------
    dict[str, torch.Tensor]
    """
    return {
        name: tensor.detach().to("cpu", dtype=dtype or tensor.dtype).contiguous()
        for name, tensor in draft.state_dict().items()
        if not name.startswith(_SHARED_PREFIXES)
    }


def save_draft(draft, folder: str | Path, *, metadata: dict, dtype: torch.dtype = torch.float16) -> Path:
    """Write ``draft.safetensors`` (own tensors in ``dtype``) and ``draft.json`` into ``folder``.

    Parameters
    ----------
    draft : transformers.LlamaForCausalLM
        Built by :func:`build_draft`.
    folder : str or path-like
        Created if missing; the two files are overwritten.
    metadata : dict
        JSON-serialisable facts to record (target, training command, seed, budgets, curve summary).
    dtype : torch.dtype, default torch.float16
        Storage dtype. float16 keeps 3 more mantissa bits than bfloat16 for weights of this size;
        probabilities are never computed in it (the loaded draft runs in the target's dtype).

    Returns
    -------
    pathlib.Path
        The safetensors file.

    Raises
    ------
    ValueError
        If a weight is not finite after the cast (out of the storage dtype's range).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = own_state_dict(draft, dtype)
    for name, tensor in tensors.items():
        if not torch.isfinite(tensor).all():
            raise ValueError(f"draft weight {name!r} is not finite in {dtype}; save with dtype=torch.bfloat16.")
    path = folder / DRAFT_FILE
    save_file(tensors, str(path), metadata={"format": _FORMAT})
    spec = DraftSpec.from_config(draft.config, draft.config.num_hidden_layers)
    record = {"format": _FORMAT, "architecture": spec.to_dict(), "storage_dtype": str(dtype).removeprefix("torch."),
              "num_parameters": sum(t.numel() for t in tensors.values()), **metadata}
    (folder / CONFIG_FILE).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return path


def load_draft(target, path: str | Path, *, device=None, dtype: torch.dtype | None = None):
    """Load a saved draft around ``target``'s embedding and head.

    Parameters
    ----------
    target : transformers.LlamaForCausalLM
        The target p the draft was trained for (its hidden size and vocabulary are checked).
    path : str or path-like
        A folder holding ``draft.safetensors`` and ``draft.json``, or the safetensors file itself
        (``draft.json`` beside it).
    device, dtype : optional
        Default: those of the target's embedding, and then the embedding and head are shared.
        Otherwise the draft gets its own frozen copies of them on ``device`` in ``dtype``.

    Returns
    -------
    transformers.LlamaForCausalLM
        In eval mode with ``requires_grad`` off everywhere.

    Raises
    ------
    FileNotFoundError
        If a file is missing.
    ValueError
        If the saved architecture does not fit the target.
    """
    path = Path(path)
    weights = path if path.suffix == ".safetensors" else path / DRAFT_FILE
    config_path = weights.with_name(CONFIG_FILE)
    for needed in (weights, config_path):
        if not needed.is_file():
            raise FileNotFoundError(f"draft file missing: {needed}")
    record = json.loads(config_path.read_text(encoding="utf-8"))
    spec = DraftSpec(**record["architecture"])
    embed, head = target.get_input_embeddings(), target.get_output_embeddings()
    device = torch.device(device) if device is not None else embed.weight.device
    dtype = dtype or embed.weight.dtype
    if (device, dtype) != (embed.weight.device, embed.weight.dtype):
        embed, head = copy.deepcopy((embed, head))  # one deepcopy keeps a tied weight tied
        target = _HeadOnly(embed.to(device, dtype), head.to(device, dtype))
    draft = build_draft(target, warm_start=False, spec=spec)
    tensors = load_file(str(weights))  # own tensors only: "model.layers.*", "model.norm.weight"
    expected = set(own_state_dict(draft))
    if set(tensors) != expected:
        raise ValueError(f"{weights} holds {sorted(set(tensors) ^ expected)[:4]}... beyond/short of the draft's tensors.")
    draft.load_state_dict(tensors, strict=False)
    return draft.requires_grad_(False).eval()


def load_shipped_draft(target_model, device=None, dtype: torch.dtype | None = None):
    """Load the draft shipped in ``empirical/weights/`` for SmolLM2-135M-Instruct (see :func:`load_draft`).

    Parameters
    ----------
    target_model : transformers.PreTrainedModel
    device : str or torch.device, optional
    dtype : torch.dtype or None, optional

    Returns
    -------
    transformers.LlamaForCausalLM
    """
    return load_draft(target_model, WEIGHTS_DIR, device=device, dtype=dtype)


def _own_modules(draft) -> tuple:
    """The draft's modules that are not the target's: layers, final norm, rotary embedding."""
    return draft.model.layers, draft.model.norm, draft.model.rotary_emb


def _check_target(embed, head, spec: DraftSpec) -> None:
    """Raise ``ValueError`` unless embedding and head are ``[vocab, hidden]`` as the spec says."""
    want = (spec.vocab_size, spec.hidden_size)
    for name, module in (("input embedding", embed), ("output head", head)):
        got = tuple(module.weight.shape)
        if got != want:
            raise ValueError(f"target {name} must have shape {want} (vocab, hidden) for this draft; got {got}.")


class _HeadOnly:
    """Stand-in target offering only an embedding and a head (for a draft on another device/dtype)."""

    def __init__(self, embed, head):
        self._embed, self._head = embed, head

    def get_input_embeddings(self):
        return self._embed

    def get_output_embeddings(self):
        return self._head
