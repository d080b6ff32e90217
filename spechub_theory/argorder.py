r"""One argument order for the verbs: ``(p, q, k, *, method=..., law=..., rng=...)``; old order refused.

Convention: p = target, q = draft, last axis = vocabulary. The math arguments come first and
positionally; the method and the draft law are keywords (issue 13 item 5; style.md C2).
"""

from __future__ import annotations

import functools

from .draft_laws import DraftSupport

__all__ = ["refuses_old_order", "reject_old_order"]


def refuses_old_order(arg: str, new_call: str, keyword: str = "method"):
    """Decorator: a verb whose first positional argument is a name raises :func:`reject_old_order`'s error.

    The check runs before Python binds the arguments, so an old-order call (one positional argument
    too many) gets the message naming the new order, not "takes 3 positional arguments". O(1).

    Parameters
    ----------
    arg : str
    new_call : str
    keyword : str, optional

    Returns
    -------
    callable
    """

    def decorate(verb):
        @functools.wraps(verb)
        def checked(*args, **kwargs):
            if args:
                reject_old_order(args[0], arg, new_call, keyword)
            return verb(*args, **kwargs)

        return checked

    return decorate


def reject_old_order(value, arg: str, new_call: str, keyword: str = "method") -> None:
    """Raise if ``value`` (passed as the array ``arg``) is a method or law: the old argument order.

    Parameters
    ----------
    value : object
        What the caller passed in the position of the array ``arg``.
    arg : str
        The argument's name (``"p"`` or ``"q"``).
    new_call : str
        The call in the new order, with ``{name}`` for the name, e.g. ``"output_law(p, q, k, method={name!r})"``.
    keyword : str
        The keyword that now carries the name (``"method"`` or ``"law"``).

    Raises
    ------
    TypeError
        ``value`` is a string, an object with a ``NAME``/``name`` (a method or a draft law) or a
        ``DraftSupport``: it was meant for ``keyword``. O(1).
    """
    if isinstance(value, DraftSupport):
        what, name = "a DraftSupport", "support"
        new_call = new_call.replace("q, k, ", "").replace("{name!r}", "{name}")
    else:
        name = value if isinstance(value, str) else getattr(value, "NAME", getattr(value, "name", None))
        if not (isinstance(value, str) or isinstance(name, str) and not hasattr(value, "__array__")):
            return
        what = f"the string {value!r}" if isinstance(value, str) else f"the {keyword} {name!r}"
    raise TypeError(
        f"`{arg}` must be an array of probabilities; got {what} — the {keyword} is now a keyword: "
        f"{new_call.format(name=name)}."
    )
