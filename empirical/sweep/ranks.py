"""Where this process stands in a sweep: rank, world size and device, from torchrun's environment.

Convention: under ``torchrun`` (torch.distributed elastic) every process reads ``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK`` and ``TORCHELASTIC_RESTART_COUNT``; without them the sweep is one
process (rank 0 of 1). With several ranks a process group is started (``gloo`` on the CPU,
``cpu:gloo,cuda:nccl`` on CUDA: control objects travel over gloo, one GPU per local rank).
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass

__all__ = ["Ranks", "rank_device", "COLLECTIVE_TIMEOUT_S"]

#: how long a rank waits for the others at a collective (the final gather waits for the slowest
#: rank's whole share): two days; ``SPECHUB_SWEEP_TIMEOUT_S`` overrides
COLLECTIVE_TIMEOUT_S = 48 * 3600
#: how long a closing rank waits at most for the others to have closed too (a dead rank's key
#: never comes): seconds
CLOSE_TIMEOUT_S = 60.0
#: the rendezvous store of this process's group (set by :meth:`Ranks.start`; for the closing handshake)
_store = None


@dataclass(frozen=True)
class Ranks:
    """A process's place in the sweep, and the few collectives the sweep needs.

    Attributes
    ----------
    rank, world_size, local_rank : int
        Global rank in [0, world_size), number of processes, rank on this host.
    attempt : int
        torchrun's restart count of the worker group (0 on the first start).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    attempt: int = 0

    @classmethod
    def from_env(cls, env=None) -> "Ranks":
        """Read torchrun's variables (one process of one when they are absent).

        Parameters
        ----------
        env : mapping, optional
            Default ``os.environ``.

        Returns
        -------
        Ranks

        Raises
        ------
        ValueError
            Non-integer or inconsistent values, or several ranks without ``MASTER_ADDR`` (not
            started by torchrun).
        """
        env = os.environ if env is None else env
        values = {}
        for name, default in (("RANK", 0), ("WORLD_SIZE", 1), ("LOCAL_RANK", 0), ("TORCHELASTIC_RESTART_COUNT", 0)):
            text = env.get(name, str(default))
            if not text.strip().isdigit():
                raise ValueError(f"environment variable {name} must be an integer >= 0; got {text!r}.")
            values[name] = int(text)
        ranks = cls(values["RANK"], values["WORLD_SIZE"], values["LOCAL_RANK"], values["TORCHELASTIC_RESTART_COUNT"])
        if ranks.world_size < 1 or ranks.rank >= ranks.world_size:
            raise ValueError(f"RANK must be in [0, WORLD_SIZE); got RANK={ranks.rank}, WORLD_SIZE={ranks.world_size}.")
        if ranks.world_size > 1 and not env.get("MASTER_ADDR"):
            raise ValueError("WORLD_SIZE > 1 but MASTER_ADDR is not set: start several ranks with torchrun "
                             "(torchrun --nproc-per-node N -m spechub_cli sweep CONFIG).")
        return ranks

    @property
    def is_main(self) -> bool:
        """Rank 0 (plans, merges and reports)."""
        return self.rank == 0

    @property
    def label(self) -> str:
        """``rank 1/4``."""
        return f"rank {self.rank}/{self.world_size}"

    def start(self, device: str) -> None:
        """Join the process group (several ranks only; a no-op for one process).

        Parameters
        ----------
        device : str
            This rank's device (see :func:`rank_device`): CUDA adds the nccl backend.
        """
        if self.world_size == 1:
            return
        import torch.distributed as dist

        if dist.is_initialized():
            return
        timeout = _dt.timedelta(seconds=float(os.environ.get("SPECHUB_SWEEP_TIMEOUT_S", COLLECTIVE_TIMEOUT_S)))
        backend = "cpu:gloo,cuda:nccl" if device.startswith("cuda") else "gloo"
        store, _, _ = next(dist.rendezvous("env://", self.rank, self.world_size, timeout=timeout))
        # keys of a restarted worker group apart from those of the group it replaces: torchrun's
        # agent store outlives a restart, and gloo would read the dead ranks' addresses from it
        store = dist.PrefixStore(f"spechub-sweep/attempt-{self.attempt}", store)
        dist.init_process_group(backend=backend, store=store, rank=self.rank, world_size=self.world_size,
                                timeout=timeout)
        global _store
        _store = store

    def broadcast(self, obj):
        """``obj`` of rank 0, on every rank (pickled over gloo).

        Parameters
        ----------
        obj : object
            Rank 0's value (ignored on the other ranks).

        Returns
        -------
        object
        """
        if self.world_size == 1:
            return obj
        import torch.distributed as dist

        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, obj):
        """Every rank's ``obj``, in rank order, on rank 0 (None elsewhere); waits for all ranks.

        Parameters
        ----------
        obj : object
            This rank's value.

        Returns
        -------
        list or None
        """
        if self.world_size == 1:
            return [obj]
        import torch.distributed as dist

        box = [None] * self.world_size if self.is_main else None
        dist.gather_object(obj, box, dst=0)
        return box

    def barrier(self) -> None:
        """Wait until every rank is here (an all-gather of nothing, over gloo)."""
        if self.world_size == 1:
            return
        import torch.distributed as dist

        dist.all_gather_object([None] * self.world_size, None)

    def close(self) -> None:
        """Leave the process group (if one was joined), once every rank is done with its collectives.

        Each rank posts a key in the rendezvous store and waits (at most :data:`CLOSE_TIMEOUT_S`)
        for every rank's key before it tears its group down. The store is a plain TCP store, not the
        group's gloo connections, so no rank destroys its group while a peer is still reading the
        last bytes of a collective. Under load such a teardown aborted the peer in gloo
        ("terminate called without an active exception"), after a barrier too (CI, 2026-12-04).
        """
        if self.world_size == 1:
            return
        import torch.distributed as dist

        global _store
        if not dist.is_initialized():
            return
        if _store is not None:
            try:
                _store.set(f"closed/{self.rank}", "1")
                _store.wait([f"closed/{r}" for r in range(self.world_size)], _dt.timedelta(seconds=CLOSE_TIMEOUT_S))
            except Exception:  # noqa: BLE001 - a dead or stuck rank: leave anyway (torchrun handles it)
                pass
        dist.destroy_process_group()
        _store = None


def rank_device(device: str, local_rank: int = 0) -> str:
    """The device of a rank: one GPU per local rank, shared round-robin when GPUs are fewer.

    ``auto`` and ``cuda`` become ``cuda:<local_rank mod GPUs>`` when CUDA is present (several
    ranks per GPU suit small models that leave a GPU idle); ``auto`` is ``cpu`` otherwise.

    Parameters
    ----------
    device : str
        ``auto``, ``cpu``, ``cuda`` or ``cuda:i`` (kept as given: every rank on GPU i).
    local_rank : int

    Returns
    -------
    str

    Raises
    ------
    ValueError
        ``cuda`` without CUDA.
    """
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device != "cuda":
        return device
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count == 0:
        raise ValueError("`device` 'cuda' requested but CUDA is not available (use device = \"cpu\" or \"auto\").")
    index = int(local_rank) % count
    torch.cuda.set_device(index)
    return f"cuda:{index}"
