"""Which agents' next calls reuse each radix node: ownership of the prefix tree.

Who calls it: the runtime (:class:`~scalesim.runtime.runtime.ScaleSimRuntime`) after each insert
(``record_path``), and the tree hooks when SGLang splits a node (``on_split``) or drops one from
the tree (``forget``); the eviction strategy reads ``of``. Nodes are duck-typed (``id``,
``parent``, ``key``): SGLang's ``UnifiedTreeNode`` in the server and in the replay alike.

Invariants:
- An owner owns the path of its latest recorded prompt only: a prompt that diverges (a rewritten
  memory segment) drops the old branch, since the next call extends the new prompt.
- An ancestor owns at least what its descendants own; a node split in two gives the new parent
  a copy of the child's owners (the child keeps its id and its record), so the prefix keeps its
  owners even after the child is evicted.
- Memory is bounded by the tree: records of nodes that leave the tree are dropped, and an owner
  whose path end leaves moves its end to the parent (or is forgotten at the root).
"""

from __future__ import annotations

from collections.abc import Iterable, Sized
from typing import Protocol


class TreeNode(Protocol):
    """What ownership needs of a radix node (SGLang's ``UnifiedTreeNode`` fits)."""

    @property
    def id(self) -> int: ...

    @property
    def parent(self) -> TreeNode | None: ...

    @property
    def key(self) -> Sized | None: ...


_NOBODY: frozenset[str] = frozenset()


def owned_side(start: int, end: int, cut: int) -> bool:
    """Whether tokens ``[start, end)`` fall on the owned side of ``cut``: at least half of
    them before it (a cut inside a segment is an estimate, so the segment goes whole to the
    side that holds most of it)."""
    return start + end <= 2 * cut


def depth_of(node: TreeNode) -> int:
    """Tokens from the root to the end of ``node`` (the length of the path it ends)."""
    depth = 0
    walk: TreeNode | None = node
    while walk is not None and walk.parent is not None:
        depth += len(walk.key) if walk.key is not None else 0
        walk = walk.parent
    return depth


def stable_node(leaf: TreeNode, *, end_tokens: int, stable_tokens: int) -> TreeNode | None:
    """The deepest node on ``leaf``'s path with at least half its tokens before
    ``stable_tokens``.

    ``end_tokens`` is the path length at ``leaf``. Nodes mostly inside the tail (what the next
    call is not expected to repeat: this call's observation) are left unowned; None when the
    whole path is tail. The cut is an estimate (``PathReuse``'s guess) and nodes are whole
    segments, so a node goes to whichever side of the cut holds most of it.
    """
    node: TreeNode | None = leaf
    while node is not None and node.parent is not None:
        size = len(node.key) if node.key is not None else 0
        if owned_side(end_tokens - size, end_tokens, stable_tokens):
            return node
        end_tokens -= size
        node = node.parent
    return None


class NodeOwners:
    """Owner keys of each node in the tree, maintained incrementally by node id."""

    def __init__(self) -> None:
        self._owners: dict[int, set[str]] = {}
        self._latest: dict[str, TreeNode] = {}  # owner -> end node of its reusable prefix
        self._ends: dict[int, set[str]] = {}  # node id -> owners whose end it is

    @property
    def n_nodes(self) -> int:
        """Nodes holding an ownership record."""
        return len(self._owners)

    @property
    def n_owners(self) -> int:
        """Owners with a path in the tree."""
        return len(self._latest)

    def of(self, node: TreeNode) -> Iterable[str]:
        """The owners of ``node`` (none when it was never on a recorded path)."""
        return self._owners.get(node.id, _NOBODY)

    def end_of(self, owner: str) -> TreeNode | None:
        """The end node of ``owner``'s reusable prefix, if it is still in the tree."""
        return self._latest.get(owner)

    def record_path(self, end: TreeNode, owner: str) -> None:
        """Make ``end``'s path (up to the root) the one ``owner``'s next call reuses."""
        on_path: set[int] = set()
        below: set[str] = set()
        node: TreeNode | None = end
        while node is not None and node.parent is not None:
            owners = self._owners.setdefault(node.id, set())
            owners |= below
            owners.add(owner)
            below = owners
            on_path.add(node.id)
            node = node.parent
        self._disown_old_path(owner, keep=on_path)
        self._set_end(owner, end)

    def on_split(self, new_parent: TreeNode, child: TreeNode) -> None:
        """SGLang split ``child`` and put ``new_parent`` above it: the prefix keeps its owners."""
        owners = self._owners.get(child.id)
        if owners:
            self._owners[new_parent.id] = set(owners)

    def forget(self, node: TreeNode) -> None:
        """``node`` left the tree: drop its record; owners ending there now end at its parent."""
        self._owners.pop(node.id, None)
        parent = node.parent
        for owner in self._ends.pop(node.id, _NOBODY):
            if parent is not None and parent.parent is not None:
                self._set_end(owner, parent)
            else:
                del self._latest[owner]

    def drop(self, owners: Iterable[str]) -> int:
        """Remove ``owners`` from the tree entirely; returns how many had a path."""
        dropped = 0
        for owner in owners:
            if owner in self._latest:
                self._disown_old_path(owner, keep=set())
                del self._latest[owner]
                dropped += 1
        return dropped

    def owners_with_prefix(self, prefix: str) -> list[str]:
        """Owners whose key starts with ``prefix`` (a namespace's), sorted."""
        return sorted(owner for owner in self._latest if owner.startswith(prefix))

    def _disown_old_path(self, owner: str, *, keep: set[int]) -> None:
        node = self._latest.get(owner)
        if node is not None:
            ends = self._ends.get(node.id)
            if ends is not None:
                ends.discard(owner)
                if not ends:
                    del self._ends[node.id]
        while node is not None and node.parent is not None and node.id not in keep:
            owners = self._owners.get(node.id)
            if owners is not None:
                owners.discard(owner)
                if not owners:
                    del self._owners[node.id]
            node = node.parent

    def _set_end(self, owner: str, end: TreeNode) -> None:
        self._latest[owner] = end
        self._ends.setdefault(end.id, set()).add(owner)
