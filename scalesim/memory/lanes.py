"""Owner groups and lanes: the two-level heaps behind :class:`~.index.ResourceIndex`.

Who calls it: only :mod:`scalesim.memory.index`. Resources with the same owner set
form one :class:`OwnerGroup`; all of them rank by the group's nearest owner, so a
distance update re-ranks a group (one heap push per lane) instead of each resource.
A :class:`Lane` is one ordered stream (device victims, host victims, or host
resources to prefetch): a global heap of group heads over, per group, a heap of its
members ordered by recency then key.

Invariants:
- A lane holds, per group, at most one live global entry (its stamp equals the
  slot's); it carries the exact key of the group's least live member, so a k-way
  merge over live entries yields members in the planner's exact order.
- Inner entries are (recency, key, generation); one is live while the index's
  generation for that key is unchanged. Dead entries are dropped when they surface;
  heaps are rebuilt once they hold more than twice their live count.
- :meth:`Lane.stream` changes nothing while it runs: it walks the global and inner
  heaps as trees (by index, without popping), so a plan touches only what it reads.
  When it closes it may drop the dead global entries it met (see ``_drop_least``).
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass

from scalesim.distance.rank import UNKNOWN_RANK, OwnerRank, RankKey

from .plan import Ranked
from .resource import Resource

_OwnerEntry = tuple[int, float, str]  # (-known, eta, agent): the nearest owner on top
_Inner = tuple[float, str, int]  # (recency, key, generation)


class OwnerGroup:
    """Resources sharing one owner set, and the rank of its nearest owner."""

    __slots__ = ("_owner_heap", "number", "owners", "rank", "size")

    def __init__(self, owners: tuple[str, ...], *, number: int, ranks: Mapping[str, OwnerRank]):
        self.owners = owners
        self.number = number  # hashing a long owner tuple is O(owners): lanes key by this
        self.size = 0  # resources in the group
        self._owner_heap: list[_OwnerEntry] = []
        self.rank = UNKNOWN_RANK
        self._rebuild(ranks)

    def refresh(self, agent: str, ranks: Mapping[str, OwnerRank]) -> bool:
        """Take ``ranks[agent]`` into account; True if the group's rank changed.

        O(log owners) amortized: a lazy heap of owners, pruned from the top.
        """
        before = self.rank
        if len(self.owners) == 1:
            self.rank = ranks[agent]
            return self.rank != before
        rank = ranks[agent]
        heap = self._owner_heap
        heapq.heappush(heap, (-rank.known, -rank.neg_eta, agent))
        while True:
            negated_known, eta, top = heap[0]
            rank = ranks[top]
            if rank.known == -negated_known and rank.neg_eta == -eta:
                break
            heapq.heappop(heap)
        self.rank = rank
        if len(heap) > 2 * len(self.owners) + 8:
            self._rebuild(ranks)
        return self.rank != before

    def _rebuild(self, ranks: Mapping[str, OwnerRank]) -> None:
        self.rank = max((ranks[agent] for agent in self.owners), default=UNKNOWN_RANK)
        if len(self.owners) > 1:
            heap = [(-ranks[a].known, -ranks[a].neg_eta, a) for a in self.owners]
            heapq.heapify(heap)
            self._owner_heap = heap


class _Slot:
    """One group's members in one lane."""

    __slots__ = ("group", "head", "heap", "live", "prefix", "stamp")

    def __init__(self, group: OwnerGroup, prefix: tuple[int, float]) -> None:
        self.group = group
        self.heap: list[_Inner] = []
        self.live = 0
        self.prefix = prefix  # the group-rank part of the lane's sort key
        self.head: _Inner | None = None  # the least live entry, as published
        self.stamp: int | None = None  # stamp of the live global entry, if any


@dataclass
class _Visits:
    """Global entries one stream met, live and dead."""

    live: int = 0
    dead: int = 0


# (prefix known, prefix eta, recency, key, stamp or generation, inner index, slot)
_Head = tuple[int, float, float, str, int, int, _Slot]


class Order(enum.Enum):
    """The order a lane yields its resources in."""

    FARTHEST_FIRST = "farthest_first"  # RankKey ascending: eviction
    NEAREST_FIRST = "nearest_first"  # fetch_order ascending: prefetch


class Lane:
    """Resources of many groups in one order, with O(log n) insert, discard and re-rank.

    Args:
        order: the order :meth:`stream` yields.
        resources: the index's records by key (read only).
        generations: the index's current generation of each key (read only).
        counter: the index's generation counter; stamps come from it too, so no two
            heap entries ever tie before their last (slot) element.
    """

    def __init__(
        self,
        order: Order,
        *,
        resources: Mapping[str, Resource],
        generations: Mapping[str, int],
        counter: Iterator[int],
    ) -> None:
        self._sign = 1 if order is Order.FARTHEST_FIRST else -1
        self._resources = resources
        self._generations = generations
        self._slots: dict[int, _Slot] = {}
        self._heap: list[_Head] = []
        self._stamps = counter

    def insert(self, group: OwnerGroup, key: str, *, last_use: float, generation: int) -> None:
        """Add a member; one global push only if it becomes the group's head."""
        slot = self._slots.get(group.number)
        if slot is None:
            slot = self._slots[group.number] = _Slot(group, self._prefix(group.rank))
        entry = (self._sign * last_use, key, generation)
        heapq.heappush(slot.heap, entry)
        slot.live += 1
        if slot.heap[0] is entry:
            self._publish(slot)

    def discard(self, group: OwnerGroup, key: str) -> None:
        """Forget a member whose generation the index has already dropped."""
        slot = self._slots[group.number]
        slot.live -= 1
        if slot.head is not None and slot.head[1] == key:
            self._publish(slot)
        elif len(slot.heap) > 2 * slot.live + 8:
            live = [entry for entry in slot.heap if self._is_live(entry)]
            heapq.heapify(live)
            slot.heap[:] = live
        if slot.live == 0:
            del self._slots[group.number]

    def reposition(self, group: OwnerGroup) -> None:
        """Re-rank a group whose rank changed: one global push."""
        slot = self._slots.get(group.number)
        if slot is not None:
            slot.prefix = self._prefix(group.rank)
            self._publish(slot)

    def first_key(self) -> str | None:
        """The key of the first resource in order, or None if the lane is empty."""
        heap = self._heap
        while heap and heap[0][6].stamp != heap[0][4]:
            heapq.heappop(heap)
        return heap[0][3] if heap else None

    def stream(self) -> Generator[Ranked, None, None]:
        """All live resources in order, lazily: O(log n) per resource taken.

        A k-way merge that changes nothing while it runs: the global heap and the
        inner heaps are walked as trees (a node's children are never less than the
        node), so a plan touches only the nodes it reads and restores nothing. Dead
        global entries it met are dropped when it closes, if they outnumbered the live
        ones. Do not interleave two streams of one lane.
        """
        live = self._generations
        tops: list[tuple[_Head, int]] = [(self._heap[0], 0)] if self._heap else []
        frontier: list[_Head] = []
        push, pop, replace = heapq.heappush, heapq.heappop, heapq.heapreplace
        visits = _Visits()
        try:
            while True:
                self._admit(tops, frontier, visits)
                if not frontier:
                    return
                known, eta, _, key, generation, index, slot = frontier[0]
                inner = slot.heap
                child = 2 * index + 1
                if child < len(inner):  # the first child takes the node's place: one sift
                    recency, child_key, child_generation = inner[child]
                    replace(
                        frontier, (known, eta, recency, child_key, child_generation, child, slot)
                    )
                    if child + 1 < len(inner):
                        recency, child_key, child_generation = inner[child + 1]
                        push(
                            frontier,
                            (known, eta, recency, child_key, child_generation, child + 1, slot),
                        )
                else:
                    pop(frontier)
                # a root came from a live global entry: it is the slot's published head
                if index == 0 or live.get(key) == generation:
                    resource = self._resources[key]
                    rank = slot.group.rank
                    yield _ranked((rank.known, rank.neg_eta, resource.last_use, key), resource)
        finally:
            if visits.dead > visits.live:
                self._drop_least(visits.dead + visits.live)

    def _admit(self, tops: list[tuple[_Head, int]], frontier: list[_Head], visits: _Visits) -> None:
        """Move every live group head that precedes the frontier's least into it."""
        heap = self._heap
        while tops and (not frontier or tops[0][0] < frontier[0]):
            head, position = heapq.heappop(tops)
            for child in (2 * position + 1, 2 * position + 2):
                if child < len(heap):
                    heapq.heappush(tops, (heap[child], child))
            if head[6].stamp == head[4]:
                visits.live += 1
                heapq.heappush(frontier, head)  # the entry of the slot's inner root
            else:
                visits.dead += 1

    def _drop_least(self, count: int) -> None:
        """Pop the ``count`` least global entries and push back the live ones.

        They are exactly the nodes a stream visited, so each dead entry is paid for
        once, by the push that made it.
        """
        heap = self._heap
        taken = [heapq.heappop(heap) for _ in range(min(count, len(heap)))]
        for head in taken:
            if head[6].stamp == head[4]:
                heapq.heappush(heap, head)

    def _prefix(self, rank: OwnerRank) -> tuple[int, float]:
        return (self._sign * rank.known, self._sign * rank.neg_eta)

    def _is_live(self, entry: _Inner) -> bool:
        return self._generations.get(entry[1]) == entry[2]

    def _publish(self, slot: _Slot) -> None:
        """Drop dead entries off the slot's top and push its head to the global heap."""
        while slot.heap and not self._is_live(slot.heap[0]):
            heapq.heappop(slot.heap)
        slot.head = slot.heap[0] if slot.heap else None
        if slot.head is None:
            slot.stamp = None
            return
        slot.stamp = next(self._stamps)
        recency, key, _ = slot.head
        heap = self._heap
        heapq.heappush(heap, (*slot.prefix, recency, key, slot.stamp, 0, slot))
        while heap[0][6].stamp != heap[0][4]:
            heapq.heappop(heap)
        if len(self._heap) > 2 * len(self._slots) + 64:
            live = [head for head in self._heap if head[6].stamp == head[4]]
            heapq.heapify(live)
            self._heap[:] = live


def _ranked(rank: tuple[int, float, float, str], resource: Resource) -> Ranked:
    """``Ranked(RankKey(*rank), resource)`` without the two Python-level constructors.

    A plan builds one per resource it looks at; NamedTuple's generated ``__new__``
    was a fifth of a plan's time.
    """
    return tuple.__new__(Ranked, (tuple.__new__(RankKey, rank), resource))
