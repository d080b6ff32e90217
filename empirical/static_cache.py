"""A preallocated KV cache of fixed width for the fast decoder: blocks written in place, paths moved.

Convention: one buffer [layers, 2 (keys, values), R, kv heads, C, head_dim] in the model dtype per
model; row b's committed tokens sit in columns [0, L_b) (a device length vector hides the rest), a
step's block is written at columns ``cols`` (the same for every row) and the accepted path is moved
down to [L_b, ...). Keys are stored after rotary embedding, so a column holds its position itself.
"""

from __future__ import annotations

__all__ = ["StaticKV", "kv_shape"]


def kv_shape(model, rows: int, width: int) -> tuple:
    """Shape [layers, 2, rows, kv heads, width, head_dim] of a :class:`StaticKV` for ``model``.

    Read from the config (``num_key_value_heads``, ``head_dim`` or hidden / heads); O(1).

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A Llama-like model (its ``config``: layers, attention and key/value heads, hidden size).
    rows : int
        Batch rows R.
    width : int
        Cache columns C.

    Returns
    -------
    tuple of int
        ``(layers, 2, rows, kv heads, width, head_dim)``.
    """
    config = model.config
    heads = int(getattr(config, "num_key_value_heads", None) or config.num_attention_heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads)
    return (int(config.num_hidden_layers), 2, int(rows), heads, int(width), head_dim)


class StaticKV:
    """Fixed-width KV cache of one model for R rows, passed to the model as its ``cache``.

    Parameters
    ----------
    model : transformers PreTrainedModel
        Llama-like (its attention calls ``cache.update(keys, values, layer_idx, ...)``).
    rows, width : int
        Batch rows R and columns C (the last column is scratch: moves of padding land there).

    Notes
    -----
    ``update`` writes the block at ``self.cols`` (a device LongTensor the caller fills before the
    forward) with ``index_copy_`` and returns the whole buffer of the layer, so attention runs
    over all C columns and the caller's mask hides those not visible: static shapes, no
    allocation per step, no host synchronisation (CUDA-graph safe). Memory:
    2 x layers x R x kv heads x C x head_dim elements.
    """

    is_compileable = True  # static shapes: transformers' mask helpers treat it like its StaticCache

    def __init__(self, model, rows: int, width: int):
        import torch

        self.shape = kv_shape(model, rows, width)
        self.kv = torch.zeros(self.shape, dtype=model.dtype, device=model.device)
        self.cols = torch.zeros(1, dtype=torch.long, device=model.device)
        self._moved = None

    @property
    def rows(self) -> int:
        """Batch rows R."""
        return self.shape[2]

    @property
    def width(self) -> int:
        """Columns C (the last is scratch)."""
        return self.shape[4]

    def update(self, key_states, value_states, layer_idx: int, *args, **kwargs):
        """Write the block's keys/values at ``self.cols`` and return the layer's full buffers.

        The transformers ``Cache.update`` protocol: in place (``index_copy_``), no allocation, no
        host synchronisation.

        Parameters
        ----------
        key_states : torch.Tensor, shape (R, kv heads, m, head_dim)
            The block's keys (after rotary embedding), cast to the cache dtype.
        value_states : torch.Tensor, shape (R, kv heads, m, head_dim)
            The block's values.
        layer_idx : int
            The attention layer.
        *args
            Ignored (the protocol's ``cache_kwargs``).
        **kwargs
            Ignored.

        Returns
        -------
        keys : torch.Tensor, shape (R, kv heads, C, head_dim)
            The layer's whole key buffer (a view; the caller's mask hides unused columns).
        values : torch.Tensor, shape (R, kv heads, C, head_dim)
            The layer's whole value buffer (a view).
        """
        keys, values = self.kv[layer_idx, 0], self.kv[layer_idx, 1]
        keys.index_copy_(2, self.cols, key_states.to(keys.dtype))
        values.index_copy_(2, self.cols, value_states.to(values.dtype))
        return keys, values

    def get_seq_length(self, layer_idx: int = 0) -> int:
        """Report 0: columns in use are tracked by the caller (positions are always explicit).

        Parameters
        ----------
        layer_idx : int, optional
            Ignored (the transformers ``Cache`` protocol).

        Returns
        -------
        int
            Always 0.
        """
        return 0

    def gather(self, src) -> None:
        """First half of a move: copy columns ``src`` [R, j] of each row to a side buffer.

        Split from :meth:`scatter` so that each half is idempotent (a CUDA graph is warmed up by
        running it twice). O(layers R heads j head_dim).

        Parameters
        ----------
        src : torch.LongTensor, shape (R, j)
            Columns to read in each row (padding entries point at the scratch column C - 1).
        """
        import torch

        index = self._index(src)
        if self._moved is None or self._moved.shape != index.shape:
            self._moved = torch.empty(index.shape, dtype=self.kv.dtype, device=self.kv.device)
        torch.gather(self.kv, 4, index, out=self._moved)

    def scatter(self, dst) -> None:
        """Second half of a move: write the side buffer to columns ``dst`` of each row.

        Padding entries of both halves point at the scratch column C - 1. O(layers R heads j
        head_dim), in place.

        Parameters
        ----------
        dst : torch.LongTensor, shape (R, j)
            Columns to write in each row, matching the ``src`` of the preceding :meth:`gather`.
        """
        self.kv.scatter_(4, self._index(dst), self._moved)

    def _index(self, cols):
        L, two, R, H, _, hd = self.shape
        return cols[None, None, :, None, :, None].expand(L, two, R, H, cols.shape[-1], hd)
