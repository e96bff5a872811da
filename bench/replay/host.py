"""The host tier, modelled beside the tree: prefix chains kept in pinned host memory.

Who calls it: the replay engine. SGLang's HiCache defaults to write-through: a prefix
computed on the GPU is also backed up to host memory, so after a device eviction it
can be loaded back instead of recomputed. The model keeps that at chain granularity
(a chain is one leading run of segments): every chain a call computes is written
through; when the tier is full the policy's ranking picks victims, lowest first.

Ownership follows the runtime's rule, through the runtime's own :class:`NodeOwners` (chains
form a prefix tree: a chain's parent is the chain one segment shorter): an agent owns the
chains of the part of its latest prompt the runtime made it own on the device tree, so
chains of prompts it will never send again lose it as owner instead of accumulating owners
forever.

Invariants: ``used_tokens <= capacity_tokens`` after every call; a call's host hit is
the run of host-resident chains that starts where its GPU hit ends.
"""

from __future__ import annotations

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


class HostTier:
    """Chains resident in host memory, bounded by ``capacity_tokens`` (replay tokens)."""

    def __init__(self, capacity_tokens: int, *, ranking: Ranking) -> None:
        self.capacity_tokens = capacity_tokens
        self.ranking = ranking
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
        for chain, end in zip(prompt.chains, prompt.ends, strict=True):
            entry = self._entries.get(chain)
            if entry is None:
                entry = self._entries[chain] = _Entry(end - start, now, _ChainNode(chain, node))
                self.used_tokens += entry.n_tokens
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

    def _trim(self) -> None:
        if self.used_tokens <= self.capacity_tokens:
            return
        ranked = sorted(
            self._entries,
            key=lambda chain: self.ranking.chain_key(
                chain, self._owners.of(self._entries[chain].node), self._entries[chain].last_use
            ),
        )
        # Trim to 90% so that the O(n log n) ranking runs once per many writes.
        target = int(self.capacity_tokens * 0.9)
        for chain in ranked:
            if self.used_tokens <= target:
                break
            entry = self._entries.pop(chain)
            self.used_tokens -= entry.n_tokens
            self._owners.forget(entry.node)
