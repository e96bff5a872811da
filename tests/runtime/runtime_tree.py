"""A minimal prefix tree for runtime tests: nodes with ``id``, ``parent`` and ``key``.

The runtime is engine-agnostic (it reads only those three attributes); SGLang's own tree is
exercised in tests/sglang. Splits and removals call the runtime as SGLang's hooks do.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from scalesim.runtime import ScaleSimRuntime

_ids = itertools.count(1)


@dataclass(eq=False)
class Node:
    key: tuple[int, ...]
    parent: Node | None = None
    children: dict[int, Node] = field(default_factory=dict)
    id: int = field(default_factory=lambda: next(_ids))


class Tree:
    """Insert token paths; splits and removals are reported to ``runtime.owners``."""

    def __init__(self, runtime: ScaleSimRuntime) -> None:
        self.runtime = runtime
        self.root = Node(())

    def insert(self, tokens: tuple[int, ...]) -> Node:
        node, rest = self.root, tokens
        while rest:
            child = node.children.get(rest[0])
            if child is None:
                new = Node(rest, parent=node)
                node.children[rest[0]] = new
                return new
            common = _common(child.key, rest)
            if common < len(child.key):
                child = self._split(child, common)
            node, rest = child, rest[common:]
        return node

    def remove(self, node: Node) -> None:
        assert not node.children and node.parent is not None
        del node.parent.children[node.key[0]]
        self.runtime.owners.forget(node)

    def nodes(self) -> list[Node]:
        out, stack = [], list(self.root.children.values())
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(node.children.values())
        return out

    def _split(self, child: Node, at: int) -> Node:
        parent = child.parent
        assert parent is not None
        new = Node(child.key[:at], parent=parent)
        parent.children[child.key[0]] = new
        child.key, child.parent = child.key[at:], new
        new.children[child.key[0]] = child
        self.runtime.owners.on_split(new, child)
        return new


def _common(left: tuple[int, ...], right: tuple[int, ...]) -> int:
    size = 0
    while size < min(len(left), len(right)) and left[size] == right[size]:
        size += 1
    return size
