"""The result of one tree-verification walk (``TreeWalk``), shared by the node-level and the sequence-level walks.

Convention: node 0 is the root; tokens per step = accepted drafts + 1. Its own module so that
:mod:`.walk` can import :mod:`.sequence_rules` and both can return it without a circle (issue 13).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TreeWalk"]


@dataclass(frozen=True)
class TreeWalk:
    """Result of one verification walk.

    Attributes
    ----------
    path : tuple of int
        Accepted nodes, root first (``path[0] == 0``).
    tokens : tuple of int
        Emitted tokens: the accepted drafts, then the bonus (leaf) or residual (rejection) token.
    visited : tuple of int
        Nodes at which a verification happened (internal nodes on the path), in order.
    slots : tuple of int
        Accepted slot at each visited node (-1 for the final rejection).
    """

    path: tuple
    tokens: tuple
    visited: tuple
    slots: tuple

    @property
    def accepted(self) -> int:
        """Number of accepted drafts (tokens per step minus one)."""
        return len(self.path) - 1
