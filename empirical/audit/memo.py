r"""An exact memo of a causal LM's forward, so repeated ``generate`` calls at one prompt skip repeated forwards.

Convention: p = target, q = draft; this module changes no law: a forward is a deterministic function
of its inputs and of the KV cache it extends, so a memo keyed by *all* of them returns exactly what
the forward returned for those bits. Used by the model-level audits (docs/audit.md, "Speed").

**Key.** Every tensor argument (``input_ids``, ``attention_mask``, ``position_ids``,
``cache_position``) by shape, dtype and bytes; every other argument by ``repr``; the cache by a
BLAKE2 digest of the bytes of every layer's keys and values. A bug in the caller's cache handling
(a crop that removes too much or too little) changes the digest, so it misses and the real forward
runs: the memo cannot hide it. **Hit.** The stored new keys/values are appended to the caller's
cache through ``cache.update`` (what the forward itself does) and a *copy* of the stored logits is
returned (generate edits logits in place). Memory: the memo holds at most ``max_bytes`` of logits
and keys/values, least recently used first out.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
from collections import OrderedDict
from dataclasses import dataclass

__all__ = ["ForwardMemo", "MemoStats", "memoised"]


@dataclass(frozen=True)
class MemoStats:
    """Hits, misses and bytes held by one :class:`ForwardMemo`."""

    hits: int
    misses: int
    entries: int
    bytes: int

    def to_dict(self) -> dict:
        """Return the counters as a plain dict.

        Returns
        -------
        dict
            ``{"hits", "misses", "entries", "bytes"}``.
        """
        return {"hits": self.hits, "misses": self.misses, "entries": self.entries, "bytes": self.bytes}


class ForwardMemo:
    """Memo of one model's ``forward`` (module docstring). Install with :func:`memoised`.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A causal LM with a ``DynamicCache``-style cache (``layers[i].keys``).
    max_bytes : int, optional
        Most bytes of stored tensors (default 2 GiB); beyond it the least recently used entries go.
    """

    def __init__(self, model, max_bytes: int = 2 << 30):
        if int(max_bytes) < 0:
            raise ValueError(f"`max_bytes` must be >= 0; got {max_bytes}.")
        self.model, self.max_bytes = model, int(max_bytes)
        self.forward = model.forward  # the bound original
        self._store: OrderedDict = OrderedDict()
        self._bytes = self.hits = self.misses = 0

    @property
    def stats(self) -> MemoStats:
        """Current :class:`MemoStats`."""
        return MemoStats(self.hits, self.misses, len(self._store), self._bytes)

    def __call__(self, *args, **kwargs):
        """The model's forward output for these arguments, from the memo when they were seen."""
        name = next((k for k in _CACHE_NAMES if k in kwargs), None)
        cache = kwargs.get(name) if name else None
        if args or (cache is not None and not hasattr(cache, "layers")):
            return self.forward(*args, **kwargs)  # not the keyword call generate makes, or an unknown cache
        key = _key(kwargs, name, cache)
        entry = self._store.get(key)
        if entry is not None:
            self._store.move_to_end(key)
            self.hits += 1
            out_type, field, logits, new_kv, cache_type = entry
            if cache is None and cache_type is not None:  # the forward would have made a fresh cache
                cache = cache_type(config=self.model.config)
            for i, (k, v) in enumerate(new_kv):
                cache.update(k, v, i)
            return out_type(logits=logits.clone(), **({field: cache} if field else {}))
        self.misses += 1
        before = None if cache is None else [_length(layer) for layer in cache.layers]
        out = self.forward(**kwargs)
        field = next((f for f in _CACHE_NAMES if getattr(out, f, None) is not None), None)
        made = getattr(out, field) if field and cache is None else None
        if made is not None and type(made).__name__ != "DynamicCache":
            return out  # a cache type this memo cannot rebuild
        layers = (cache or made).layers if (cache is not None or made is not None) else []
        before = before or [0] * len(layers)
        new_kv = [(layer.keys[..., b:, :].clone(), layer.values[..., b:, :].clone()) for layer, b in zip(layers, before)]
        logits = out.logits.detach().clone()
        size = _size(logits, new_kv)
        if size <= self.max_bytes:
            self._store[key] = (type(out), field, logits, new_kv, None if made is None else type(made))
            self._bytes += size
            while self._bytes > self.max_bytes:
                old = self._store.popitem(last=False)[1]
                self._bytes -= _size(old[2], old[3])
        return out


@contextlib.contextmanager
def memoised(*models, max_bytes: int = 2 << 30, memos: dict | None = None):
    """Install a :class:`ForwardMemo` on each model inside the block; the original forwards come back after.

    Parameters
    ----------
    *models : transformers models (duplicates and ``None`` skipped).
    max_bytes : int, optional
        Per model, see :class:`ForwardMemo`.
    memos : dict, optional
        ``id(model) -> ForwardMemo`` kept across blocks (pass the same dict to reuse what was stored).

    Yields
    ------
    dict
        ``id(model) -> ForwardMemo``.
    """
    memos = {} if memos is None else memos
    seen = []
    for m in models:
        if m is None or any(m is s for s in seen):
            continue
        seen.append(m)
    installed = []
    try:
        for m in seen:
            memo = memos.get(id(m))
            if memo is None or memo.model is not m:
                memo = memos[id(m)] = ForwardMemo(m, max_bytes)
            m.forward = functools.wraps(memo.forward)(functools.partial(ForwardMemo.__call__, memo))
            installed.append(m)
        yield memos
    finally:
        for m in installed:
            del m.forward  # the class's forward again


#: names of the KV cache argument and output field (transformers 5.x: ``cache``; 4.x: ``past_key_values``)
_CACHE_NAMES = ("cache", "past_key_values")


def _size(logits, new_kv) -> int:
    return logits.numel() * logits.element_size() + sum(k.numel() * k.element_size() * 2 for k, _ in new_kv)


def _length(layer) -> int:
    keys = getattr(layer, "keys", None)
    return 0 if keys is None or not getattr(layer, "is_initialized", True) or keys.numel() == 0 else int(keys.shape[-2])


def _bytes(t) -> bytes:
    """The raw bytes of a tensor (any dtype, any device)."""
    import torch

    return t.detach().reshape(-1).cpu().contiguous().view(torch.uint8).numpy().tobytes() if t.numel() else b""


def _key(kwargs, cache_name, cache) -> tuple:
    """Hashable key of a forward call: tensor arguments by bytes, the rest by repr, the cache by digest."""
    import torch

    parts = []
    for name in sorted(kwargs):
        value = kwargs[name]
        if name == cache_name:
            continue
        if isinstance(value, torch.Tensor):
            parts.append((name, tuple(value.shape), str(value.dtype), _bytes(value)))
        else:
            parts.append((name, repr(value)))
    h = hashlib.blake2b(digest_size=16)
    h.update(b"none" if cache is None else type(cache).__name__.encode())
    for layer in getattr(cache, "layers", ()):
        if _length(layer):
            for t in (layer.keys, layer.values):
                h.update(str(tuple(t.shape)).encode())
                h.update(_bytes(t))
        else:
            h.update(b"empty")
    return tuple(parts), h.hexdigest()
