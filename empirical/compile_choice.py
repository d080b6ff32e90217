"""Which pieces of the fast runtime go through ``torch.compile``, chosen by one name.

``spechub decode --compile`` and :class:`empirical.run.DecodeConfig` name a choice; the workspaces
read it from :data:`~empirical.fast_workspace.COMPILE_VERIFY_ENV` and
:data:`~empirical.fast_workspace.COMPILE_FORWARD_ENV` (their cache key holds both backends, so a
workspace built under one choice is never reused under another). Measured on the H200
(BENCHMARKS.md §10.4, §10.7): compiled forwards make our plain sampling 1.40-1.42x HF's compiled
``generate()`` at batch 1, the compiled verification piece cuts its share of the target forward from
10-34% to 3-20%; each new (tree, batch) shape then costs a compilation of tens of seconds.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from .fast_workspace import COMPILE_FORWARD_ENV, COMPILE_VERIFY_ENV

__all__ = ["COMPILE_CHOICES", "compiling", "check_compile_choice"]

#: choice -> the pieces compiled with inductor: the verification piece, the model pieces (each draft
#: level and the target forward), both, or none
COMPILE_CHOICES = {
    "off": (),
    "verify": (COMPILE_VERIFY_ENV,),
    "forwards": (COMPILE_FORWARD_ENV,),
    "all": (COMPILE_VERIFY_ENV, COMPILE_FORWARD_ENV),
}


def check_compile_choice(choice) -> None:
    """Raise a ``ValueError`` unless ``choice`` is None or one of :data:`COMPILE_CHOICES`.

    Parameters
    ----------
    choice : str or None

    Raises
    ------
    ValueError
        Naming the choices.
    """
    if choice is not None and choice not in COMPILE_CHOICES:
        raise ValueError(f"`compile` {choice!r} is not one of {', '.join(map(repr, COMPILE_CHOICES))}.")


@contextmanager
def compiling(choice):
    """Within the block, compile the pieces ``choice`` names with inductor and no others.

    Parameters
    ----------
    choice : str or None
        One of :data:`COMPILE_CHOICES`; None leaves the environment as it is
        (``$SPECHUB_COMPILE_VERIFY``, ``$SPECHUB_COMPILE_FORWARD``).

    Yields
    ------
    None
        Both variables are restored (or removed) on exit.

    Raises
    ------
    ValueError
        An unknown choice.
    """
    check_compile_choice(choice)
    names = (COMPILE_VERIFY_ENV, COMPILE_FORWARD_ENV)
    saved = {name: os.environ.get(name) for name in names}
    if choice is not None:
        for name in names:
            os.environ[name] = "inductor" if name in COMPILE_CHOICES[choice] else "0"
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
