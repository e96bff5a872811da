"""Replay policies: how each one ranks radix nodes, host-tier chains and LoRA slots.

Who calls it: the replay engine builds one :class:`Ranking` per policy run and tells it
when the logical clock moves (:meth:`Ranking.advance`) and which call it is admitting
(:meth:`Ranking.start_call`). SGLang's stock policies (``lru``, ``lfu``, ``fifo``...) come
from SGLang's own factory table unchanged; ``scalesim`` is a thin translation onto one
:class:`~scalesim.runtime.ScaleSimRuntime` (the object the live server drives): trace hints
go in as predictions, inserted paths as ownership, and its rank keys come back; ``belady``
reads the true future from the trace; ``infinite`` is ``lru`` with unbounded capacity. Host
tier and LoRA slots of stock policies use LRU (SGLang's host-tier and LoRA defaults).

Invariants: each ranking returns one key type per tier (lowest evicted first); keys
end with the last use and then a stable id, so equal inputs give equal orders.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sglang.srt.mem_cache.evict_policy import EvictionStrategy
from sglang.srt.mem_cache.utils import _EVICTION_POLICY_FACTORIES

from scalesim.distance import Source
from scalesim.runtime import (
    DEFAULT_NAMESPACE,
    AgentMeta,
    QueuedCall,
    QueueOrder,
    RuntimeConfig,
    ScaleSimRuntime,
    lag_order,
    owner_key,
)
from scalesim.runtime.adapters import AdapterSlots
from scalesim.sglang.eviction import ScaleSimStrategy

from ..trace import Hint
from .hint_feed import HintFeed
from .prompts import PromptBook

SCALESIM = "scalesim"
BELADY = "belady"
INFINITE = "infinite"


class Ranking(Protocol):
    """A policy's ordering of state in every tier (lowest evicted first)."""

    def tree_strategy(self) -> EvictionStrategy: ...

    def advance(self, step: float) -> None:
        """The replay's logical clock moved to ``step`` (never backwards)."""

    def arrive(self, call_index: int) -> None:
        """Call ``call_index`` was issued (the live server's request arrival)."""

    def start_call(self, call_index: int) -> None:
        """Call ``call_index`` is being admitted: what follows happens on its behalf."""

    def finish(self, call_index: int) -> None:
        """Call ``call_index`` completed."""

    def on_insert(self, leaf: Any, end: int, call_index: int) -> None: ...

    def chain_key(
        self, chain: int, owners: Iterable[str], last_use: float, depth: int | None = None
    ) -> Any: ...

    def adapter_key(self, adapter: str, owners: Iterable[str], last_use: float) -> Any: ...


@dataclass
class StockRanking:
    """An SGLang stock policy in the tree; LRU in the host tier and LoRA slots."""

    name: str

    def tree_strategy(self) -> EvictionStrategy:
        return _EVICTION_POLICY_FACTORIES[self.name]()

    def advance(self, step: float) -> None:
        return None

    def arrive(self, call_index: int) -> None:
        return None

    def start_call(self, call_index: int) -> None:
        return None

    def finish(self, call_index: int) -> None:
        return None

    def on_insert(self, leaf: Any, end: int, call_index: int) -> None:
        return None

    def chain_key(
        self, chain: int, owners: Iterable[str], last_use: float, depth: int | None = None
    ) -> Any:
        return (last_use, chain)

    def adapter_key(self, adapter: str, owners: Iterable[str], last_use: float) -> Any:
        return (last_use, adapter)


class ScaleSimRanking:
    """The trace in the runtime's terms (namespace ``default``, trace steps as its clock).

    Args:
        book: the trace's prompts (each call's agent and stable prefix).
        hints: the trace's hints, applied by the timing rule of :class:`HintFeed`.
        runtime: the runtime to drive; a fresh one with default settings if omitted.
    """

    def __init__(
        self, book: PromptBook, hints: Sequence[Hint], *, runtime: ScaleSimRuntime | None = None
    ) -> None:
        self.book = book
        self.runtime = runtime if runtime is not None else ScaleSimRuntime()
        self.adapters = AdapterSlots(self.runtime)
        self._feed = HintFeed(hints, book.calls)
        self.owned: dict[str, int] = {}  # agent -> replay tokens it owns of its latest prompt

    def tree_strategy(self) -> EvictionStrategy:
        return ScaleSimStrategy(self.runtime)

    def advance(self, step: float) -> None:
        """Apply the hints :class:`HintFeed` releases at ``step``, then move the clock there.

        A hint of step s is what the simulation knows once its agent is done with step s, so
        the calls of step s are admitted without it. Each hint is predicted at its own step
        where the clock has not passed it yet (its next call is the absolute step the trace
        names).
        """
        for hint in self._feed.due(step):
            next_call = None if hint.next_step is None else float(hint.next_step)
            self.runtime.advance(DEFAULT_NAMESPACE, float(hint.step))
            self.runtime.predict(DEFAULT_NAMESPACE, {hint.agent: next_call}, source=Source.HINT)
        self.runtime.advance(DEFAULT_NAMESPACE, step)

    def arrive(self, call_index: int) -> None:
        """The call reaches the runtime as a live request with ``clock`` = its step would (the
        live bench sends that): the runtime scores the prediction in force for its agent at
        that step, and the adapter registry learns which adapter the agent uses."""
        call = self.book.calls[call_index]
        owner = self.runtime.observe(AgentMeta(call.agent, clock=float(call.step)))
        self.adapters.assign(owner, call.lora)

    def start_call(self, call_index: int) -> None:
        return None

    def finish(self, call_index: int) -> None:
        """Its agent is done with the call's step: hints held for it may go out."""
        self._feed.complete(call_index)

    def admission_order(self, waiting: Sequence[int]) -> list[int]:
        """Ready calls in the order the live queue hook puts requests (``queue_order``): with
        ``lag``, the call of the oldest step first; otherwise as they arrived."""
        if self.runtime.config.queue_order is not QueueOrder.LAG:
            return list(waiting)
        steps = [float(self.book.calls[index].step) for index in waiting]
        order = lag_order(self.runtime, [QueuedCall(DEFAULT_NAMESPACE, step) for step in steps])
        return [waiting[position] for position in order]

    def on_insert(self, leaf: Any, end: int, call_index: int) -> None:
        """The call's agent owns its prompt as the live checkpoint hook makes it: all but the
        tail its next call is not expected to repeat (the runtime learns it from the tokens)."""
        agent = self.book.calls[call_index].agent
        self.owned[agent] = self.runtime.record_path(
            leaf, owner_of(agent), tokens=self.book.prompts[call_index].tokens
        )

    def chain_key(
        self, chain: int, owners: Iterable[str], last_use: float, depth: int | None = None
    ) -> Any:
        keys = [owner_of(agent) for agent in owners]
        return self.runtime.rank_key(keys, last_use, tiebreak=f"{chain:012d}", depth=depth)

    def adapter_key(self, adapter: str, owners: Iterable[str], last_use: float) -> Any:
        keys = [owner_of(agent) for agent in owners]
        return self.runtime.rank_key(keys, last_use, tiebreak=adapter)


def owner_of(agent: str) -> str:
    """The runtime's owner key of a trace agent (every trace is one namespace)."""
    return owner_key(DEFAULT_NAMESPACE, agent)


class BeladyStrategy(EvictionStrategy):
    """Offline optimum for the device tree: evict the node whose next use is farthest.

    What it reads (the true future, from the trace): ``PromptBook.uses``, the ascending
    call indices whose prompt contains each prefix chain. A node's next use is the first
    call after the one being admitted whose prompt contains the chain of the node's first
    token (recorded when the node was last on an inserted path); a node never recorded
    (a one-off tail) goes first. It has no prefetch: it is the reference for what the
    device tier alone can keep, not for host-to-device traffic.
    """

    def __init__(self, book: PromptBook) -> None:
        self.book = book
        self.node_chain: dict[int, int] = {}
        self.call_index = -1  # the call being admitted; before the first, every use is ahead

    def start_call(self, call_index: int) -> None:
        """Future uses are counted from call ``call_index`` on (the one being admitted)."""
        self.call_index = call_index

    def get_priority(self, node: Any) -> tuple[float, float]:
        chain = self.node_chain.get(node.id)
        if chain is None:
            return (float("-inf"), float(node.last_access_time))
        next_use = self.book.next_chain_use(chain, self.call_index)
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
    strategy: BeladyStrategy = field(init=False)

    def __post_init__(self) -> None:
        self.strategy = BeladyStrategy(self.book)

    def tree_strategy(self) -> EvictionStrategy:
        return self.strategy

    def advance(self, step: float) -> None:
        return None

    def arrive(self, call_index: int) -> None:
        return None

    def start_call(self, call_index: int) -> None:
        self.strategy.start_call(call_index)

    def finish(self, call_index: int) -> None:
        return None

    def on_insert(self, leaf: Any, end: int, call_index: int) -> None:
        self.strategy.record(leaf, end, call_index)

    def chain_key(
        self, chain: int, owners: Iterable[str], last_use: float, depth: int | None = None
    ) -> Any:
        return (-self.book.next_chain_use(chain, self.strategy.call_index), last_use, chain)

    def adapter_key(self, adapter: str, owners: Iterable[str], last_use: float) -> Any:
        nearest = min(
            (self.book.next_agent_call(agent, self.strategy.call_index) for agent in owners),
            default=float("inf"),
        )
        return (-nearest, last_use, adapter)


def make_ranking(
    name: str,
    book: PromptBook,
    *,
    hints: Sequence[Hint] = (),
    runtime_config: RuntimeConfig | None = None,
) -> Ranking:
    """The ranking of policy ``name``; raises ValueError for an unknown name.

    ``hints`` and ``runtime_config`` (time unit: trace steps) are ScaleSim's only.
    """
    if name == SCALESIM:
        return ScaleSimRanking(book, hints, runtime=ScaleSimRuntime(runtime_config))
    if name == BELADY:
        return BeladyRanking(book)
    if name == INFINITE:
        return StockRanking("lru")
    if name in _EVICTION_POLICY_FACTORIES:
        return StockRanking(name)
    known = sorted([*_EVICTION_POLICY_FACTORIES, SCALESIM, BELADY, INFINITE])
    raise ValueError(f"unknown policy {name!r}; known: {', '.join(known)}")
