"""Dequantised GGUF weights cached as safetensors, so a model loads in seconds after the first time.

Convention: p = target, q = draft (this module only loads models). Dequantising a GGUF with
transformers takes minutes on a CPU (Qwen2.5-Coder-1.5B: ~220 s on 2 cores, measurements.md), and
transformers refuses ``save_pretrained`` on a GGUF-loaded model, so the entry is written here:
``config.json`` and ``generation_config.json`` from the model's configs, ``model.safetensors`` from
the state dict (tied tensors stored once, :func:`safetensors.torch.save_model`) and the tokenizer's
own files. The next load is a plain ``from_pretrained(folder)`` of those files.

Key and invalidation: an entry is ``<cache>/dequant/<sha256 of the GGUF>-<dtype>/``; a GGUF whose bytes
change hashes to another key (hashing 1.1 GB takes a few seconds, far less than dequantising), and
older entries of the same file name are removed then. Dtype: stored in the dtype asked for (float32
on CPU, bfloat16 on CUDA by default), so a cached load gives exactly the weights of a direct load;
the cost is disk (fp32 is 4 bytes a parameter: ~7.1 GB for the 1.5B target). Atomic: the entry is
written in a temporary folder and renamed into place with its ``source.json`` last; a folder without
``source.json`` is never used. ``$SPECHUB_DEQUANT_CACHE=0`` turns the cache off.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .fetch import cache_dir
from .smollm2 import gguf_sha256

__all__ = ["DISABLE_ENV", "entry_dir", "cached_load", "load_gguf"]

#: set to 0 to load GGUF files directly every time
DISABLE_ENV = "SPECHUB_DEQUANT_CACHE"
_MARKER = "source.json"


def entry_dir(sha256: str, dtype, cache=None) -> Path:
    """Folder of the cached entry of a GGUF with this sha256, in ``dtype`` (a torch dtype).

    Parameters
    ----------
    sha256 : str
    dtype : str or torch.dtype
    cache : str or pathlib.Path, optional

    Returns
    -------
    Path
    """
    return cache_dir(cache) / "dequant" / f"{sha256}-{str(dtype).removeprefix('torch.')}"


def cached_load(source, dtype, loader, *, cache=None):
    """Load ``(model, tokenizer)`` of the GGUF file ``source`` from the cache, or by ``loader`` and cache it.

    Parameters
    ----------
    source : str or Path
        The GGUF file; its sha256 is the key.
    dtype : torch.dtype
        Weight dtype, part of the key.
    loader : callable
        ``loader() -> (model, tokenizer)``: the slow path (dequantisation), called on a miss.
    cache : str or Path, optional
        Cache folder (see :func:`empirical.fetch.cache_dir`).

    Returns
    -------
    (model, tokenizer)
        The model on the CPU in ``dtype``, eval mode.

    Notes
    -----
    A failure to write the entry (full disk, read-only cache) only warns: the loaded model is
    returned and nothing partial is kept.
    """
    source = Path(source)
    sha = gguf_sha256(source)
    entry = entry_dir(sha, dtype, cache)
    marker = entry / _MARKER
    if marker.is_file():
        return _load_entry(entry, dtype)
    model, tokenizer = loader()
    if marker.is_file():  # another process (a worker of the same run) wrote it meanwhile
        return model, tokenizer
    _remove_stale(entry.parent, source.name, sha)
    try:
        _write_entry(entry, model, tokenizer, {"source": str(source.resolve()), "name": source.name, "sha256": sha,
                                                "size": source.stat().st_size, "dtype": str(dtype)})
    except OSError as exc:
        import warnings

        warnings.warn(f"could not cache the dequantised weights of {source.name} in {entry.parent} ({exc}); "
                      "the next load dequantises again.", stacklevel=2)
    return model, tokenizer


def load_gguf(path, dtype, *, cache=None):
    """``(model, tokenizer)`` of a ``.gguf`` file through the cache (``$SPECHUB_DEQUANT_CACHE=0``: directly).

    Parameters
    ----------
    path : str or pathlib.Path
    dtype : str or torch.dtype
    cache : str or pathlib.Path, optional

    Returns
    -------
    tuple

    Raises
    ------
    OSError, ValueError
        From transformers when the file does not load.
    """
    path = Path(path)

    def loader():
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=dtype)
        return model.eval(), tokenizer

    if os.environ.get(DISABLE_ENV, "1") == "0":
        return loader()
    return cached_load(path, dtype, loader, cache=cache)


def _load_entry(entry: Path, dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(entry))
    model = AutoModelForCausalLM.from_pretrained(str(entry), dtype=dtype)
    return model.eval(), tokenizer


def _write_entry(entry: Path, model, tokenizer, source: dict) -> None:
    """Write config, weights and tokenizer into a temporary folder, then rename it to ``entry``."""
    from safetensors.torch import save_model

    tmp = entry.with_name(f".tmp-{entry.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        model.config.to_json_file(str(tmp / "config.json"))
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.to_json_file(str(tmp / "generation_config.json"))
        save_model(model, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tokenizer.save_pretrained(str(tmp))
        (tmp / _MARKER).write_text(json.dumps(source, indent=1) + "\n", encoding="utf-8")
        if (entry / _MARKER).is_file():  # a concurrent writer finished first: keep its entry
            return
        shutil.rmtree(entry, ignore_errors=True)
        os.replace(tmp, entry)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _remove_stale(folder: Path, name: str, sha: str) -> None:
    """Remove entries made from another version of the file called ``name`` (its bytes changed)."""
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        marker = entry / _MARKER
        if not marker.is_file():
            continue
        try:
            old = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if old.get("name") == name and old.get("sha256") != sha:
            shutil.rmtree(entry, ignore_errors=True)
