"""Replay policies: how each one ranks radix nodes, host-tier chains and LoRA slots.

Who calls it: the replay engine builds one :class:`Ranking` per policy run. SGLang's
stock policies (``lru``, ``lfu``, ``fifo``...) come from SGLang's own factory table
unchanged; ``scalesim`` ranks by the core's invocation distance fed with the trace's
hints; ``belady`` reads the true future from the trace; ``infinite`` is ``lru`` with
unbounded capacity. Host tier and LoRA slots of stock policies use LRU (SGLang's
host-tier and LoRA defaults).

Invariants: each ranking returns one key type per tier (lowest evicted first); keys
end with the last use and then a stable id, so equal inputs give equal orders.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sglang.srt.mem_cache.evict_policy import EvictionStrategy
from sglang.srt.mem_cache.utils import _EVICTION_POLICY_FACTORIES

from scalesim.distance import DistanceTable
from scalesim.sglang.eviction import NodeOwners, ScaleSimStrategy

from .prompts import PromptBook

SCALESIM = "scalesim"
BELADY = "belady"
INFINITE = "infinite"


@dataclass
class ReplayClock:
    """The replay's logical time: the current step and the current call index."""

    step: float = 0.0
    call_index: int = -1

    def now(self) -> float:
        return self.step


class Ranking(Protocol):
    """A policy's ordering of state in every tier (lowest evicted first)."""

    def tree_strategy(self) -> EvictionStrategy: ...

    def on_insert(self, leaf: Any, end: int, call_index: int) -> None: ...

    def chain_key(self, chain: int, owners: Iterable[str], last_use: float) -> Any: ...

    def adapter_key(self, adapter: str, owners: Iterable[str], last_use: float) -> Any: ...


@dataclass
class StockRanking:
    """An SGLang stock policy in the tree; LRU in the host tier and LoRA slots."""

    name: str

    def tree_strategy(self) -> EvictionStrategy:
        return _EVICTION_POLICY_FACTORIES[self.name]()

    def on_insert(self, leaf: Any, end: int, call_index: int) -> None:
        return None

    def chain_key(self, chain: int, owners: Iterable[str], last_use: float) -> Any:
        return (last_use, chain)

    def adapter_key(self, adapter: str, owners: Iterable[str], last_use: float) -> Any:
        return (last_use, adapter)


@dataclass
class ScaleSimRanking:
    """Invocation distance from the trace's hints, through the core's rank keys."""

    book: PromptBook
    clock: ReplayClock
    table: DistanceTable = field(default_factory=DistanceTable)
    owners: NodeOwners = field(default_factory=NodeOwners)

    def tree_strategy(self) -> EvictionStrategy:
        return ScaleSimStrategy(table=self.table, owners=self.owners, clock=self.clock.now)

    def on_insert(self, leaf: Any, end: int, call_index: int) -> None:
        """Own the prompt's stable prefix, not its last segment.

        The simulation builds its prompts, so it knows the last segment (this step's
        observation or message) is not part of what the agent's next call reuses; nodes
        wholly inside it stay ownerless and go first, LRU among themselves.
        """
        stable = self.book.prompts[call_index].stable_end
        node = leaf
        while node.parent is not None and end - len(node.key) >= stable:
            end -= len(node.key)
            node = node.parent
        if node.parent is not None:
            self.owners.record_path(node, self.book.calls[call_index].agent)

    def chain_key(self, chain: int, owners: Iterable[str], last_use: float) -> Any:
        return self.table.rank_key(owners, last_use, now=self.clock.now(), tiebreak=f"{chain:012d}")

    def adapter_key(self, adapter: str, owners: Iterable[str], last_use: float) -> Any:
        return self.table.rank_key(owners, last_use, now=self.clock.now(), tiebreak=adapter)


class BeladyStrategy(EvictionStrategy):
    """Offline optimum for the device tree: evict the node whose next use is farthest.

    What it reads (the true future, from the trace): ``PromptBook.uses``, the ascending
    call indices whose prompt contains each prefix chain. A node's next use is the first
    call after the one being admitted whose prompt contains the chain of the node's first
    token (recorded when the node was last on an inserted path); a node never recorded
    (a one-off tail) goes first. It has no prefetch: it is the reference for what the
    device tier alone can keep, not for host-to-device traffic.
    """

    def __init__(self, book: PromptBook, clock: ReplayClock) -> None:
        self.book = book
        self.clock = clock
        self.node_chain: dict[int, int] = {}

    def get_priority(self, node: Any) -> tuple[float, float]:
        chain = self.node_chain.get(node.id)
        if chain is None:
            return (float("-inf"), float(node.last_access_time))
        next_use = self.book.next_chain_use(chain, self.clock.call_index)
        return (-next_use, float(node.last_access_time))

    def record(self, leaf: Any, end: int, call_index: int) -> None:
        """Map every node on the inserted path to the chain its *first* token lies in.

        A node may span several chains (a re-inserted prefix plus its new tail); every
        call that uses a later chain also uses the first one, so the first chain's next
        use is the node's next use. Mapping by the last token instead made a node that
        holds a reused prefix and a one-off tail look never-used-again.
        """
        node = leaf
        while node is not None and node.parent is not None:
            end -= len(node.key)
            self.node_chain[node.id] = self.book.chain_at(call_index, end + 1)
            node = node.parent


@dataclass
class BeladyRanking:
    """The true future in every tier: farthest next use first."""

    book: PromptBook
    clock: ReplayClock
    strategy: BeladyStrategy = field(init=False)

    def __post_init__(self) -> None:
        self.strategy = BeladyStrategy(self.book, self.clock)

    def tree_strategy(self) -> EvictionStrategy:
        return self.strategy

    def on_insert(self, leaf: Any, end: int, call_index: int) -> None:
        self.strategy.record(leaf, end, call_index)

    def chain_key(self, chain: int, owners: Iterable[str], last_use: float) -> Any:
        return (-self.book.next_chain_use(chain, self.clock.call_index), last_use, chain)

    def adapter_key(self, adapter: str, owners: Iterable[str], last_use: float) -> Any:
        nearest = min(
            (self.book.next_agent_call(agent, self.clock.call_index) for agent in owners),
            default=float("inf"),
        )
        return (-nearest, last_use, adapter)


def make_ranking(
    name: str, book: PromptBook, clock: ReplayClock, *, overdue_grace: float | None = None
) -> Ranking:
    """The ranking of policy ``name``; raises ValueError for an unknown name.

    ``overdue_grace`` (steps) configures ScaleSim's distance table.
    """
    if name == SCALESIM:
        return ScaleSimRanking(book, clock, DistanceTable(overdue_grace=overdue_grace))
    if name == BELADY:
        return BeladyRanking(book, clock)
    if name == INFINITE:
        return StockRanking("lru")
    if name in _EVICTION_POLICY_FACTORIES:
        return StockRanking(name)
    known = sorted([*_EVICTION_POLICY_FACTORIES, SCALESIM, BELADY, INFINITE])
    raise ValueError(f"unknown policy {name!r}; known: {', '.join(known)}")
