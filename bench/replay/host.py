"""The host tier, modelled beside the tree: prefix chains kept in pinned host memory.

Who calls it: the replay engine. SGLang's HiCache defaults to write-through: a prefix
computed on the GPU is also backed up to host memory, so after a device eviction it
can be loaded back instead of recomputed. The model keeps that at chain granularity
(a chain is one leading run of segments): every chain a call computes is written
through; when the tier is full the policy's ranking picks victims, lowest first, among the
chains HiCache lets leave the host (``UnifiedTreeCore._is_host_leaf``: evicted from the device,
no child on the host): a chain still on the device keeps its host copy, and a chain leaves only
after the longer chains below it. When nothing more may leave, the newest chains (just computed,
so on the device) are not backed up, as HiCache skips a backup it has no room for. Without
these rules the model let Belady's and ScaleSim's rankings drop host copies of chains still on
the device, which HiCache never does (town-300, device 0.25, host 0.5: Belady recomputed 7.6%
less than under the rules); LRU rarely ranks a chain on the device low, so its counts barely move.

Ownership follows the runtime's rule, through the runtime's own :class:`NodeOwners` (chains
form a prefix tree: a chain's parent is the chain one segment shorter): an agent owns the
chains of the part of its latest prompt the runtime made it own on the device tree, so
chains of prompts it will never send again lose it as owner instead of accumulating owners
forever.

Invariants: ``used_tokens <= capacity_tokens`` after every call; a call's host hit is
the run of host-resident chains that starts where its GPU hit ends.
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Callable
from dataclasses import dataclass

from scalesim.runtime import NodeOwners, owned_side

from .policies import Ranking
from .prompts import Prompt


@dataclass(frozen=True)
class _ChainNode:
    """A chain as a node of the prefix tree that :class:`NodeOwners` walks."""

    id: int
    parent: _ChainNode | None
    key: None = None


_ROOT = _ChainNode(-1, None)


@dataclass
class _Entry:
    n_tokens: int
    last_use: float
    node: _ChainNode
    tokens: array  # type: ignore[type-arg]  # the prompt up to the chain's end
    children: int = 0  # chains one segment longer on the host


#: Leading tokens of a token run resident on the device (``RadixTier.resident``).
DeviceProbe = Callable[[array], int]  # type: ignore[type-arg]


class HostTier:
    """Chains resident in host memory, bounded by ``capacity_tokens`` (replay tokens).

    ``device`` tells which chains are still on the device (they may not leave the host); None
    treats every chain as evicted from the device (unit tests of the ranking alone).
    """

    def __init__(
        self, capacity_tokens: int, *, ranking: Ranking, device: DeviceProbe | None = None
    ) -> None:
        self.capacity_tokens = capacity_tokens
        self.ranking = ranking
        self.device = device
        self.used_tokens = 0
        self._entries: dict[int, _Entry] = {}
        self._owners = NodeOwners()

    def __contains__(self, chain: int) -> bool:
        return chain in self._entries

    def hit(self, prompt: Prompt, gpu_hit: int) -> int:
        """Replay tokens after ``gpu_hit`` that host-resident chains cover contiguously."""
        covered = gpu_hit
        for chain, end in zip(prompt.chains, prompt.ends, strict=True):
            if end <= covered:
                continue
            if chain not in self._entries:
                break
            covered = end
        return covered - gpu_hit

    def write_through(
        self, prompt: Prompt, *, now: float, owner: tuple[str, int] | None = None
    ) -> None:
        """Back up (or refresh) every chain of ``prompt``, then trim to capacity.

        ``owner`` (agent, tokens it owns) makes the agent own the chains on the owned side of
        that many tokens (``owned_side``, as ``stable_node`` on the device tree); None records no
        owner (rankings that ignore owners).
        """
        start, node, owned = 0, _ROOT, None
        added: list[int] = []
        for chain, end in zip(prompt.chains, prompt.ends, strict=True):
            entry = self._entries.get(chain)
            if entry is None:
                entry = _Entry(end - start, now, _ChainNode(chain, node), prompt.tokens[:end])
                self._add(chain, entry)
                added.append(chain)
            entry.last_use = now
            node = entry.node
            if owner is not None and owned_side(start, end, owner[1]):
                owned = node
            start = end
        if owner is not None:
            if owned is None:
                self._owners.drop([owner[0]])
            else:
                self._owners.record_path(owned, owner[0])
        self._trim()
        while self.used_tokens > self.capacity_tokens and added:
            chain = added.pop()  # no room: the newest chains are not backed up
            if chain in self._entries and not self._entries[chain].children:
                self._remove(chain)

    def _trim(self) -> None:
        """Down to 90% of capacity (so that the O(n log n) ranking runs once per many
        writes), lowest rank first among the chains that may leave."""
        if self.used_tokens <= self.capacity_tokens:
            return
        ranked = sorted(
            self._entries,
            key=lambda chain: self.ranking.chain_key(
                chain,
                self._owners.of(self._entries[chain].node),
                self._entries[chain].last_use,
                len(self._entries[chain].tokens),
            ),
        )
        position = {chain: index for index, chain in enumerate(ranked)}
        heap = [position[chain] for chain in ranked if self._may_leave(chain)]
        heapq.heapify(heap)
        target = int(self.capacity_tokens * 0.9)
        while self.used_tokens > target and heap:
            chain = ranked[heapq.heappop(heap)]
            parent = self._entries[chain].node.parent
            self._remove(chain)
            if parent is not None and parent is not _ROOT and self._may_leave(parent.id):
                heapq.heappush(heap, position[parent.id])  # a leaf now, as in HiCache's heap

    def _may_leave(self, chain: int) -> bool:
        """HiCache's host leaf: no longer chain on the host, no longer on the device."""
        entry = self._entries[chain]
        if entry.children:
            return False
        return self.device is None or self.device(entry.tokens) < len(entry.tokens)

    def _add(self, chain: int, entry: _Entry) -> None:
        self._entries[chain] = entry
        self.used_tokens += entry.n_tokens
        parent = entry.node.parent
        if parent is not None and parent is not _ROOT:
            self._entries[parent.id].children += 1

    def _remove(self, chain: int) -> None:
        entry = self._entries.pop(chain)
        self.used_tokens -= entry.n_tokens
        self._owners.forget(entry.node)
        parent = entry.node.parent
        if parent is not None and parent is not _ROOT:
            self._entries[parent.id].children -= 1
