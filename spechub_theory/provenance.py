"""Run metadata written beside every result: package version, git SHA, package versions, device.

Convention: JSON-ready values only; anything unavailable (no install, no git) is ``"0+unknown"`` or
``None``. Standard library only, so every layer (and ``spechub --version``) can use it cheaply.
"""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
import sys
from pathlib import Path

__all__ = ["package_version", "git_sha", "packages", "run_metadata"]


def package_version() -> str:
    """Installed version of spechub-theory (``"0+unknown"`` from a bare source tree).

    Returns
    -------
    str
    """
    try:
        from importlib.metadata import version

        return version("spechub-theory")
    except Exception:  # noqa: BLE001 - a source tree without install
        return "0+unknown"


def git_sha() -> str | None:
    """HEAD commit of the source tree holding this package.

    Returns
    -------
    str or None
        None without git or outside a checkout.
    """
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def packages(*names: str) -> dict:
    """Look up the versions of the named packages that are already imported (never imports one).

    Parameters
    ----------
    *names : str
        Top-level module names, e.g. ``"numpy"``, ``"torch"``.

    Returns
    -------
    dict
        ``{"python": ..., name: version or None}``.

    Examples
    --------
    >>> import numpy
    >>> packages("numpy")["numpy"] == numpy.__version__
    True
    """
    out = {"python": platform.python_version()}
    for name in names:
        module = sys.modules.get(name)
        out[name] = getattr(module, "__version__", None) if module is not None else None
    return out


def run_metadata(command: str, *, argv=None, seed=None, device: str = "cpu", dtype: str = "float64", **extra) -> dict:
    """Metadata of one run: command, argv, version, git SHA, seed, device, dtype, UTC date, plus ``extra``.

    Parameters
    ----------
    command : str
        E.g. ``"spechub tree"``.
    argv : list of str, optional
        Default ``sys.argv[1:]``.
    seed : int, optional
    device, dtype : str
    **extra
        Further JSON-ready entries (package versions, models, settings), added last.

    Returns
    -------
    dict
    """
    meta = {
        "command": command,
        "argv": [str(a) for a in (sys.argv[1:] if argv is None else argv)],
        "version": package_version(),
        "git_sha": git_sha(),
        "seed": None if seed is None else int(seed),
        "device": str(device),
        "dtype": str(dtype),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    meta.update(extra)
    return meta
