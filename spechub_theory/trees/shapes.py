r"""Token trees: an immutable tree of draft slots with its attention mask and position offsets.

Node 0 is the root (the last committed token); every other node is one draft token. Children of a
node are ordered: child j is draft slot j of that node's draft law. Nodes are numbered level by
level (breadth first), so ``parents[v] < v``. Naming follows the SpecHub repository (seed-notes.md
section 2): ``"k^d"`` is the complete k-ary tree with d levels counting the root, e.g. ``"2^5"`` has
31 nodes (30 drafts, depth 4) and ``"3^4"`` has 40.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["Tree", "SubtreeClasses"]


@dataclass(frozen=True)
class SubtreeClasses:
    """Nodes grouped by the shape of the subtree below them (ordered children, slots matter).

    Attributes
    ----------
    of_node : tuple of int
        Class id of each node's subtree.
    children : tuple of tuple of int
        Class ids of the children of a class, in slot order. Ids are numbered bottom-up
        (a class's children have smaller ids), so a loop over ``range(len(children))`` visits
        children before parents; class 0 is the leaf.
    """

    of_node: tuple
    children: tuple

    @property
    def root(self) -> int:
        """Class id of the whole tree."""
        return self.of_node[0]

    def to_dict(self) -> dict:
        """Plain-Python form (for JSON).

        Returns
        -------
        dict
        """
        return {"of_node": list(self.of_node), "children": [list(c) for c in self.children]}


@dataclass(frozen=True)
class Tree:
    """A token tree given by its parent array (``parents[0] == -1``, ``parents[v] < v``).

    Build one with :meth:`from_branching`, :meth:`from_name` or :meth:`from_parents`.

    Examples
    --------
    >>> Tree.from_name("2^3").size, Tree.from_name("2^3").depth
    (7, 2)
    >>> Tree.from_branching([2, 1]).parents
    (-1, 0, 0, 1, 2)
    """

    parents: tuple[int, ...]

    def __post_init__(self):
        par = tuple(int(x) for x in self.parents)
        if not par or par[0] != -1:
            raise ValueError("`parents` must start with -1 (the root).")
        for v, u in enumerate(par[1:], start=1):
            if not (0 <= u < v):
                raise ValueError(f"`parents[{v}]` = {u} must be an earlier node (0 <= parent < {v}).")
        object.__setattr__(self, "parents", par)

    # -- constructors --------------------------------------------------------------------------
    @classmethod
    def from_parents(cls, parents) -> "Tree":
        """Tree from a parent list; nodes are renumbered breadth first, children keeping their order.

        Parameters
        ----------
        parents : sequence of int

        Raises
        ------
        ValueError
            On bad input (the message names the rule): ``parents`` must start with -1 (the root); or
            ``parents`` must describe a tree connected to the root (no cycles); or ``parents[...]``
            = ... is not a node of the tree.
        """
        par = [int(x) for x in parents]
        if not par or par[0] != -1:
            raise ValueError("`parents` must start with -1 (the root).")
        kids: dict[int, list[int]] = {v: [] for v in range(len(par))}
        for v, u in enumerate(par[1:], start=1):
            if u not in kids or u == v:
                raise ValueError(f"`parents[{v}]` = {u} is not a node of the tree.")
            kids[u].append(v)
        order, new_par, queue = [], [], [(0, -1)]
        while queue:
            v, pu = queue.pop(0)
            order.append(v)
            new_par.append(pu)
            queue.extend((c, len(order) - 1) for c in kids[v])
        if len(order) != len(par):
            raise ValueError("`parents` must describe a tree connected to the root (no cycles).")
        return cls(tuple(new_par))

    @classmethod
    def from_branching(cls, branching) -> "Tree":
        """Tree from the number of children per level.

        ``[2, 2]`` gives every node of each level that many children. Entries may be lists (one count
        per node of the level), e.g. ``[[2], [2, 1]]``; a count of 0 makes a leaf.

        Parameters
        ----------
        branching : sequence of int or nested lists

        Raises
        ------
        ValueError
            On bad input (the message names the rule): Level ... lists ... branch counts for ...
            nodes; or level ... has a negative branch count.
        """
        parents, level = [-1], [0]
        for depth, spec in enumerate(branching):
            counts = [int(spec)] * len(level) if np.isscalar(spec) else [int(c) for c in spec]
            if len(counts) != len(level):
                raise ValueError(f"level {depth} lists {len(counts)} branch counts for {len(level)} nodes.")
            if any(c < 0 for c in counts):
                raise ValueError(f"level {depth} has a negative branch count.")
            nxt = []
            for node, c in zip(level, counts):
                for _ in range(c):
                    parents.append(node)
                    nxt.append(len(parents) - 1)
            level = nxt
        return cls(tuple(parents))

    @classmethod
    def chain(cls, length: int) -> "Tree":
        """A chain of ``length`` drafts (``length + 1`` nodes); ``chain(0)`` is the bare root.

        Parameters
        ----------
        length : int

        Raises
        ------
        ValueError
            On bad input (the message names the rule): ``length`` must be an integer >= 0.

        Examples
        --------
        >>> Tree.chain(3).parents
        (-1, 0, 1, 2)
        """
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
            raise ValueError(f"`length` must be an integer >= 0; got {length!r}.")
        return cls(tuple(range(-1, int(length))))

    @classmethod
    def from_name(cls, name: str) -> "Tree":
        """Tree from its name: ``"k^d"``, ``"chain-L"`` or a branching list such as ``"2,2,1"``.

        ``"k^d"`` is the complete k-ary tree with d levels counting the root (k^d naming of the
        paper); ``"chain-L"`` a chain of L drafts.

        Parameters
        ----------
        name : str

        Raises
        ------
        ValueError
            On bad input (the message names the rule): Tree ... is not 'k^d' (e.g. '2^4'), 'chain-L'
            or a branching list like '2,2,1'; or tree ...: k and d must be >= 1.
        """
        text = str(name).strip()
        m = re.fullmatch(r"(\d+)\^(\d+)", text)
        if m:
            k, d = int(m.group(1)), int(m.group(2))
            if k < 1 or d < 1:
                raise ValueError(f"tree {name!r}: k and d must be >= 1.")
            return cls.from_branching([k] * (d - 1))
        m = re.fullmatch(r"chain-(\d+)", text)
        if m:
            return cls.chain(int(m.group(1)))
        if re.fullmatch(r"\d+(\s*,\s*\d+)*", text):
            return cls.from_branching([int(x) for x in text.split(",")])
        raise ValueError(f"tree {name!r} is not 'k^d' (e.g. '2^4'), 'chain-L' or a branching list like '2,2,1'.")

    # -- structure ------------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Number of nodes including the root (= tokens the target scores per step)."""
        return len(self.parents)

    @cached_property
    def children(self) -> tuple[tuple[int, ...], ...]:
        """Children of each node, in draft-slot order."""
        kids: list[list[int]] = [[] for _ in self.parents]
        for v, u in enumerate(self.parents[1:], start=1):
            kids[u].append(v)
        return tuple(tuple(c) for c in kids)

    @cached_property
    def depths(self) -> np.ndarray:
        """Depth of each node (root 0); also the position offset of each node."""
        d = np.zeros(self.size, dtype=np.int64)
        for v in range(1, self.size):
            d[v] = d[self.parents[v]] + 1
        return d

    @property
    def depth(self) -> int:
        """Number of draft levels (the maximum depth)."""
        return int(self.depths.max())

    @cached_property
    def slot(self) -> np.ndarray:
        """Slot index of each node among its siblings (root: -1)."""
        s = np.full(self.size, -1, dtype=np.int64)
        for kids in self.children:
            for j, c in enumerate(kids):
                s[c] = j
        return s

    @cached_property
    def levels(self) -> tuple[tuple[int, ...], ...]:
        """Nodes of each depth, in order (level 0 is the root)."""
        return tuple(tuple(int(v) for v in np.flatnonzero(self.depths == d)) for d in range(self.depth + 1))

    @cached_property
    def ancestor_mask(self) -> np.ndarray:
        """Boolean (size, size): ``mask[i, j]`` iff j is i or an ancestor of i (tree attention)."""
        m = np.eye(self.size, dtype=bool)
        for v in range(1, self.size):
            m[v] |= m[self.parents[v]]
        return m

    @property
    def num_drafts(self) -> int:
        """Number of draft tokens (nodes other than the root)."""
        return self.size - 1

    @cached_property
    def branching(self) -> tuple[tuple[int, ...], ...]:
        """Children per node of each level that has a next level (the per-node form accepted by
        :meth:`from_branching`, so ``Tree.from_branching(t.branching) == t``)."""
        return tuple(tuple(len(self.children[v]) for v in level) for level in self.levels[:-1])

    @cached_property
    def leaves(self) -> tuple[int, ...]:
        """Nodes without children, in order."""
        return tuple(v for v, kids in enumerate(self.children) if not kids)

    @property
    def is_chain(self) -> bool:
        """True when every node has at most one child (single-draft speculative decoding)."""
        return all(len(kids) <= 1 for kids in self.children)

    @cached_property
    def subtree_classes(self) -> SubtreeClasses:
        """Group nodes by subtree shape, for dynamic programmes that memoise on the shape.

        O(size) dictionary look-ups. A complete k-ary tree has depth + 1 classes.

        Examples
        --------
        >>> Tree.from_name("2^4").subtree_classes.children
        ((), (0, 0), (1, 1), (2, 2))
        """
        ids: dict[tuple, int] = {}
        of_node = [0] * self.size
        for v in range(self.size - 1, -1, -1):  # children have larger numbers than parents
            key = tuple(of_node[c] for c in self.children[v])
            of_node[v] = ids.setdefault(key, len(ids))
        return SubtreeClasses(of_node=tuple(of_node), children=tuple(ids))

    def to_dict(self) -> dict:
        """Plain-Python description: parents, size, depth, per-level branching (for JSON).

        Returns
        -------
        dict
        """
        return {
            "parents": list(self.parents),
            "size": self.size,
            "depth": self.depth,
            "branching": [list(b) for b in self.branching],
        }

    def path_to(self, v: int) -> list[int]:
        """The nodes from the root to ``v`` inclusive.

        Parameters
        ----------
        v : int

        Returns
        -------
        list[int]
        """
        path = [int(v)]
        while self.parents[path[-1]] >= 0:
            path.append(self.parents[path[-1]])
        return path[::-1]

    def __repr__(self) -> str:
        return f"Tree(size={self.size}, depth={self.depth}, branching={[len(c) for c in self.children if c]})"
