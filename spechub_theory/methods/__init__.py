"""Verification methods: one module per method, all with the same small interface.

Each module exposes ``NAME``, ``LAW`` (its draft law), ``FIXED_K`` (1 for single-draft, else None),
``rule(p, q, drafts)`` (the node rule, :class:`~spechub_theory.methods.base.NodeRule`),
``acceptance(p, q, k)`` (exact rate, batched), ``rate(p, q, k)`` (the same without the input checks,
for arrays validated once) and ``positional(p, q, k)`` (per-slot split); optional attributes
(a costly exact rate's ``rate_cost(rows, n, k)`` and ``MAX_RATE_COST``, beyond which
:func:`~spechub_theory.acceptance.acceptance_rates` omits it with a note; shared sort, recursion, size limit, residual structure) have defaults, all listed in
:mod:`spechub_theory.methods.base`. :data:`METHODS` is the single registry; loops over methods
never branch on names.
"""

from __future__ import annotations

import difflib
from types import ModuleType

from . import khisti_is, kseq, optimal, rrs, rrs_wor, single, spechub

__all__ = ["METHODS", "METHOD_NAMES", "get_method"]

#: name -> method module; the closed vocabulary used by the API, the CLI, JSON and plots
METHODS: dict[str, ModuleType] = {m.NAME: m for m in (single, rrs, rrs_wor, kseq, spechub, khisti_is, optimal)}
METHOD_NAMES: tuple[str, ...] = tuple(METHODS)


def get_method(name) -> ModuleType:
    """The method module called ``name``; a ValueError suggests the closest name otherwise.

    Any object with the attributes ``NAME``, ``LAW`` and ``rule`` (a user's method, or one of
    :mod:`spechub_theory.montecarlo.mutants`) is accepted as is (duck typing), so :func:`verify` and
    :func:`output_law` run on methods that are not registered.

    Parameters
    ----------
    name : str or object
        A registered method name, a method module, or any object with ``NAME``, ``LAW`` and
        ``rule``.

    Returns
    -------
    module or object
        The method (the registered module, or ``name`` itself when it is a method object).

    Raises
    ------
    ValueError
        If ``name`` is a string that names no registered method.
    """
    if isinstance(name, ModuleType) and getattr(name, "NAME", None) in METHODS:
        return name
    if not isinstance(name, str) and all(hasattr(name, a) for a in ("NAME", "LAW", "rule")):
        return name
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        close = _closest(str(name))
        hint = f" (did you mean {close!r}?)" if close else ""
        raise ValueError(
            f"`method` {name!r} is not one of {', '.join(map(repr, METHOD_NAMES))}{hint}."
        ) from None


def _closest(name: str) -> str | None:
    """The method a misspelt name most likely meant: a name it abbreviates (underscores ignored),
    else difflib's closest match."""
    stripped = name.replace("_", "").lower()
    prefixed = [m for m in METHOD_NAMES if m.replace("_", "").startswith(stripped) and stripped]
    if len(prefixed) == 1:
        return prefixed[0]
    close = difflib.get_close_matches(name, METHOD_NAMES, n=1)
    return close[0] if close else None
