"""Validation sweeps over many cells, on one process or many (``torchrun``), resumable.

Convention: p = target, q = draft; tokens per step = accepted drafts + 1 (bonus included). A
*cell* is (temperature, tree, method, seed); a *job* is one cell on one shard of prompts. The
modules: :mod:`.config` (the TOML file and its validation), :mod:`.plan` (the deterministic job
list and each rank's share), :mod:`.ranks` (RANK / WORLD_SIZE / LOCAL_RANK, torch.distributed),
:mod:`.records` (compact per-prompt records, per-rank shard logs, the merge), :mod:`.progress`
and :mod:`.runner` (one rank's work, then the merge on rank 0). ``spechub sweep`` is the command.
"""

from .config import ConfigError, SweepConfig, TreeGroup, load_config, parse_config
from .plan import Cell, Job, plan_jobs, rank_share
from .runner import SweepResult, run_sweep

__all__ = ["ConfigError", "SweepConfig", "TreeGroup", "load_config", "parse_config", "Cell", "Job", "plan_jobs",
           "rank_share", "SweepResult", "run_sweep"]
