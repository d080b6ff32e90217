"""Run metadata recorded with every result file: versions, git SHA, seed, argv, device, dtype, date.

Convention: JSON-ready values only; anything unavailable (no git, no CUDA) is ``None``.
"""

from __future__ import annotations

import datetime as _dt

from spechub_theory.provenance import git_sha, package_version

from .summary import TOKENS_PER_STEP_CONVENTION

__all__ = ["run_metadata"]


def run_metadata(*, config: dict, models: dict, argv, device, dtype, seed: int) -> dict:
    """Metadata of a run.

    package/torch/transformers versions, git SHA, seed, argv, device (with the GPU name on CUDA),
    dtype, UTC date, the tokens-per-step convention, the models actually used (``models``: names of
    target and draft) and the settings.

    Parameters
    ----------
    config : dict
    models : dict
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).
    device : str or torch.device
    dtype : str or torch.dtype
    seed : int

    Returns
    -------
    dict
    """
    import torch
    import transformers

    device = torch.device(device)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {
        "package": "spechub-theory",
        "version": package_version(),
        "git_sha": git_sha(),
        "seed": int(seed),
        "argv": [str(a) for a in argv],
        "device": str(device),
        "gpu": gpu,
        "dtype": str(dtype).replace("torch.", ""),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "tokens_per_step": TOKENS_PER_STEP_CONVENTION,
        "models": models,
        "config": config,
    }
