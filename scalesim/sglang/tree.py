"""Reading SGLang's radix tree for ScaleSim's decisions: what evicting a device leaf frees, how
long a path is.

Who calls it: the live prefetcher (``scalesim.sglang.prefetch``) and the trace replay, which
both run SGLang's ``UnifiedRadixCache`` with the Python tree core; the checkpoint hook.
"""

from __future__ import annotations

from typing import Any

from sglang.srt.mem_cache.unified_cache.components.base import ComponentType


def evictable_branches(tree_core: Any) -> list[tuple[Any, int]]:
    """Each evictable device leaf with the unlocked single-child ancestors above it.

    Evicting the leaf makes its parent a leaf, so such a branch is what evicting the leaf
    eventually frees: (topmost node, device tokens of the branch), by leaf id. The topmost
    node's owners include those of every node below it.
    """
    branches = []
    for leaf in sorted(tree_core.evictable_device_leaves, key=lambda node: node.id):
        node, size = leaf, len(leaf.key)
        while _frees_with_child(node.parent):
            node = node.parent
            size += len(node.key)
        branches.append((node, size))
    return branches


def _frees_with_child(node: Any) -> bool:
    if node.parent is None:
        return False
    on_device = [child for child in node.children.values() if not child.evicted]
    data = node.component_data[ComponentType.FULL]
    return len(on_device) == 1 and data.lock_ref == 0 and data.value is not None


def path_tokens(node: Any) -> int:
    """Tokens on the path from the root to the end of ``node``."""
    size = 0
    while node is not None and node.parent is not None:
        size += len(node.key)
        node = node.parent
    return size
