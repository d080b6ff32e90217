"""Cached forwards of a causal LM over a block of tokens with an arbitrary visibility mask.

Convention: a batch of sequences shares one KV cache of ``past`` columns per row; a block of ``m``
new tokens per row is scored with explicit positions and a boolean mask [B, m, past + m] (tree
attention, and padding columns hidden); :func:`gather_cache` keeps chosen rows and columns
(``empirical.decoder``).
"""

from __future__ import annotations

import contextlib
import inspect

__all__ = ["forward_block", "new_cache", "gather_cache"]


def forward_block(model, cache, tokens, positions, visible):
    """One forward of a block of tokens for a batch of sequences sharing ``cache``.

    Parameters
    ----------
    model : transformers.PreTrainedModel
    cache : transformers.DynamicCache
    tokens, positions : torch.LongTensor, shape [B, m]
    visible : torch.BoolTensor, shape [B, m, past + m]
        ``visible[b, i, j]``: token i of row b may attend to cache column j (j < past) or to block
        token j - past of the same row. Every token must see at least one column (padding tokens
        see themselves).

    Returns
    -------
    torch.Tensor, shape [B, m, vocab], the logits (model dtype); the block's keys/values are
    appended to ``cache``.

    Notes
    -----
    O(B m (past + m)) attention; the mask is additive in the model dtype (``finfo.min`` where
    hidden), which eager and SDPA attention both accept as a custom 4-D mask.
    """
    import torch

    dtype = model.dtype
    mask = torch.zeros(visible.shape, dtype=dtype, device=visible.device)
    mask = mask.masked_fill(~visible, torch.finfo(dtype).min)[:, None]  # [B, 1, m, past + m]
    # entered only when not already on: a nested inference_mode inside a torch.compile'd piece makes
    # AOTAutograd fail ("Cannot set version_counter for inference tensor"; torch 2.11 and 2.13)
    with contextlib.nullcontext() if torch.is_inference_mode_enabled() else torch.inference_mode():
        out = model(input_ids=tokens, position_ids=positions, attention_mask=mask, use_cache=True,
                    **{_cache_kwarg(model): cache})
    return out.logits


def new_cache(model):
    """An empty ``DynamicCache`` laid out for ``model`` (per-layer types from its config).

    Parameters
    ----------
    model : transformers.PreTrainedModel

    Returns
    -------
    DynamicCache
    """
    from transformers import DynamicCache

    try:
        return DynamicCache(config=model.config)
    except TypeError:  # older transformers: no config argument
        return DynamicCache()


def gather_cache(cache, rows, columns) -> None:
    """Keep rows ``rows`` of a batched cache and, per kept row, its columns ``columns``, in place.

    ``rows``: torch.LongTensor [B']; ``columns``: torch.LongTensor [B', C'] (row i of the new cache
    holds old row ``rows[i]``'s entries ``columns[i]``; padding columns may repeat any index, the
    caller masks them). O(layers * B' * C' * hidden) device work, no host synchronisation.

    Parameters
    ----------
    cache : transformers.DynamicCache
    rows : ndarray
    columns : torch.Tensor
    """
    import torch

    def take(x):
        x = x.index_select(0, rows)  # [B', heads, C, head_dim]
        index = columns[:, None, :, None].expand(-1, x.shape[1], -1, x.shape[3])
        return torch.gather(x, 2, index)

    if hasattr(cache, "layers"):
        for layer in cache.layers:
            if getattr(layer, "keys", None) is not None and layer.keys.numel():
                layer.keys, layer.values = take(layer.keys), take(layer.values)
        return
    for i in range(len(cache.key_cache)):  # pragma: no cover - transformers 4.x layout
        cache.key_cache[i], cache.value_cache[i] = take(cache.key_cache[i]), take(cache.value_cache[i])


#: model class -> name of its forward's cache argument (a plain dict: torch.compile traces a lookup
#: in it as a constant, where it would trace through an lru_cache wrapper)
_CACHE_KWARG: dict = {}


def _cache_kwarg(model) -> str:
    """Name of the cache argument of ``model.forward``: ``cache`` (transformers >= 5.2x) or
    ``past_key_values`` (earlier)."""
    cls = type(model)
    if cls not in _CACHE_KWARG:
        _CACHE_KWARG[cls] = "cache" if "cache" in inspect.signature(cls.forward).parameters else "past_key_values"
    return _CACHE_KWARG[cls]
