r"""User samplers for ``spechub audit python:MODULE:CALLABLE``: resolving the name and its level.

Convention: p = target, q = draft. The object named is a function-level sampler (the protocol in
``function_level``), or, with ``audit_level = "generator"``, a generator-level one
(``generator_level``); a factory (a class or a function taking no arguments and returning such an
object, flagged by ``audit_factory = True``) is called once first.
"""

from __future__ import annotations

import importlib

__all__ = ["resolve_sampler", "LEVELS"]

LEVELS = ("function", "generator")


def resolve_sampler(spec: str):
    """``(sampler, level)`` for ``"python:MODULE:CALLABLE"`` (CALLABLE may be dotted: ``cls.attr``).

    Parameters
    ----------
    spec : str

    Returns
    -------
    tuple

    Raises
    ------
    ValueError
        Malformed spec, module not importable, attribute missing, not callable, unknown level.
    """
    if not isinstance(spec, str) or not spec.startswith("python:") or spec.count(":") != 2:
        raise ValueError(f"a user sampler is named 'python:MODULE:CALLABLE'; got {spec!r}.")
    _, module_name, attr = spec.split(":")
    if not module_name or not attr:
        raise ValueError(f"a user sampler is named 'python:MODULE:CALLABLE'; got {spec!r}.")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import module {module_name!r} of {spec!r}: {exc}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"module {module_name!r} has no attribute {attr!r}.")
        obj = getattr(obj, part)
    if getattr(obj, "audit_factory", False):
        obj = obj()
    if not callable(obj):
        raise ValueError(f"{spec!r} is not callable (a sampler must be a function or an object with __call__).")
    level = getattr(obj, "audit_level", "function")
    if level not in LEVELS:
        raise ValueError(f"`audit_level` of {spec!r} must be one of {', '.join(LEVELS)}; got {level!r}.")
    return obj, level
