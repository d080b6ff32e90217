"""Node table of the validation experiment: exact rates at every verified node, computed on the device.

A decoding job of the driver walks its trees with :class:`NodeCapture`, a torch engine that also
keeps, for every verified node of every row, the real (p, q) where they already are (the model's
device), and turns them, 64 at a time, into per-node scalars with
:func:`empirical.node_rates_torch.all_rates` (every method and both optima, n = vocabulary) and
:func:`~empirical.node_rates_torch.node_scalars` (q(a), p(a), P2, P3).
Walks, tokens and randomness are those of ``empirical.engines.TorchEngine`` (same function), so the
job's prompts count as an ordinary decoding cell as well. Only scalars leave the device: a node
costs ~60 bytes in ``nodes.npz`` instead of 2.4 MB of laws.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from empirical import engines, fast_verify
from empirical.node_rates_torch import DEVICE_NODE_METHODS, all_rates, node_scalars
from lp import OPTIMA

__all__ = ["NodeCapture", "register", "save_nodes"]

#: rows of (p, q) turned into rates at once
_CHUNK = 64


class NodeCapture(engines.TorchEngine):
    """TorchEngine that records the scalars of every verified node (k = 2 nodes only).

    Parameters
    ----------
    row_of : dict
        ``id(Generator) -> prompt index``: tells rows apart (the decoder passes each row's Generator).
    methods : tuple of str
        Node methods (:data:`empirical.node_rates_torch.DEVICE_NODE_METHODS`).
    """

    name = "capture"

    def __init__(self, row_of: dict, methods=DEVICE_NODE_METHODS):
        self.row_of, self.methods = row_of, tuple(methods)
        self._p, self._q, self._meta = [], [], []
        self.columns: dict = {}

    def walk_batch(self, tree, method, tokens, p_probs, q_rows, rngs) -> list:
        """As :meth:`empirical.engines.TorchEngine.walk_batch`; keeps the visited nodes' laws."""
        import torch

        out = fast_verify.walk_trees(tree, method, tokens, p_probs, q_rows, rngs)
        for b, (walk, p_rows) in enumerate(out):
            nodes = [v for v in walk.visited if len(tree.children[v]) == 2]
            if not nodes:
                continue
            self._p.append(torch.stack([p_rows[v] for v in nodes]))
            self._q.append(q_rows[b][nodes])
            slot = dict(zip(walk.visited, walk.slots))
            self._meta += [(self.row_of[id(rngs[b])], v, slot[v]) for v in nodes]
        if len(self._meta) >= _CHUNK:
            self.flush()
        return [(walk, lambda v, rows=rows: rows[v].cpu().numpy()) for walk, rows in out]

    def flush(self) -> None:
        """Turn the kept laws into scalars (appended to ``columns``) and free them."""
        import torch

        if not self._meta:
            return
        p, q = torch.cat(self._p), torch.cat(self._q)
        found = all_rates(p, q, 2, methods=[m for m in self.methods if m not in OPTIMA],
                          optima=[m for m in self.methods if m in OPTIMA], chunk=_CHUNK)
        rates = {"tv": found.tv, **node_scalars(p, q, chunk=_CHUNK)}
        rates.update({m: np.full(len(found.tv), np.nan) if v is None else v for m, v in found.acceptance.items()})
        meta = np.asarray(self._meta, dtype=np.int64)
        rates.update(prompt_index=meta[:, 0], node=meta[:, 1], slot=meta[:, 2])
        for key, value in rates.items():
            self.columns.setdefault(key, []).append(value)
        self._p, self._q, self._meta = [], [], []


def register(capture: NodeCapture) -> str:
    """Make ``capture`` the engine named ``"capture"`` of this process; returns that name."""
    engines.ENGINES[capture.name] = capture
    return capture.name


def save_nodes(capture: NodeCapture, path: Path, *, offset: int, types: dict) -> int:
    """Write the captured scalars to ``path`` (``.npz``; atomically: a temporary file renamed),
    prompt indices shifted by ``offset`` (the shard's first global index) and tagged with their
    prompt type (0 = code, 1 = chat, -1 = unknown; ``types``: global index -> "code"/"chat").
    Returns the number of nodes. Dtypes: float64 rates, bool conditions, int32/int16/int8 ids."""
    capture.flush()
    cols = {k: np.concatenate(v) for k, v in capture.columns.items()}
    if not cols:
        cols = {k: np.zeros(0) for k in ("tv", "hub_q", "hub_p", *capture.methods)}
        cols.update(p2=np.zeros(0, bool), p3=np.zeros(0, bool), prompt_index=np.zeros(0, np.int64),
                    node=np.zeros(0, np.int64), slot=np.zeros(0, np.int64))
    cols["prompt_index"] = (cols["prompt_index"] + offset).astype(np.int32)
    cols["node"] = cols["node"].astype(np.int16)
    cols["slot"] = cols["slot"].astype(np.int8)
    code = {"code": 0, "chat": 1}
    cols["type"] = np.array([code.get(types.get(int(i)), -1) for i in cols["prompt_index"]], dtype=np.int8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **cols)
    os.replace(tmp, path)
    return len(cols["tv"])
