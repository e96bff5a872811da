"""The memory planner: eviction order and prefetch plan for a given set of resources.

Who calls it: benchmarks and the SGLang adapter when it holds a full list of resources
(one decision over a snapshot). For a long-lived pool use
:class:`~scalesim.memory.index.ResourceIndex`, which answers the same questions
incrementally in O(log n).

Invariants: a decision is a pure function of (table state, resources, arguments): no
clock, no dependence on the order of ``resources`` or on hash seeds (every order ends
with the resource key). Locked and pinned resources are never chosen for eviction.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from typing import Protocol

from scalesim.distance.rank import RankKey, fetch_order
from scalesim.distance.validation import InvalidEntryError, check_finite

from .plan import (
    EvictionPlan,
    PrefetchPlan,
    PrefetchRequest,
    Ranked,
    check_bytes,
    plan_prefetch,
    take_victims,
)
from .resource import Resource, Tier


class Ranker(Protocol):
    """Ranks state by its owners' distances: a :class:`~scalesim.distance.DistanceTable`, or
    the runtime, which ranks owners of several namespaces each against its own clock."""

    def rank_key(
        self, owners: Iterable[str], last_use: float, *, now: float, tiebreak: str = ""
    ) -> RankKey: ...


class MemoryPlanner:
    """Turns the distances a :class:`Ranker` knows into memory decisions."""

    def __init__(self, table: Ranker) -> None:
        self.table = table

    def rank(self, resource: Resource, *, now: float) -> RankKey:
        """The resource's eviction rank at ``now`` (lower: evict sooner)."""
        return self.table.rank_key(
            resource.owners, resource.last_use, now=now, tiebreak=resource.key
        )

    def eviction_order(
        self, resources: Iterable[Resource], *, tier: Tier, n_bytes: int, now: float
    ) -> EvictionPlan:
        """Which resources of ``tier`` to evict, farthest first, to free ``n_bytes``.

        A shared resource ranks by its nearest owner; ties go to the least recently
        used, then to the smallest key. Fewer bytes than asked are freed only when the
        tier holds no more evictable resources (see ``shortfall_bytes``).
        """
        check_bytes(n_bytes, what="n_bytes")
        if tier is Tier.NONE:
            raise InvalidEntryError("Tier.NONE holds nothing to evict")
        ranked = self._ranked(resources, now=now)
        return take_victims(_victim_stream(ranked, tier), n_bytes)

    def prefetch_plan(
        self,
        resources: Iterable[Resource],
        *,
        now: float,
        window: float,
        budget_bytes: int,
        device_free_bytes: int,
    ) -> PrefetchPlan:
        """Host resources to load back before their owners call, nearest first.

        Args:
            now: the current time, in the caller's unit.
            window: fetch only resources whose nearest owner calls within ``window``.
            budget_bytes: most bytes to transfer host -> device in this plan.
            device_free_bytes: free device bytes; beyond them, room is made by evicting
                device resources whose nearest owner calls strictly later.
        """
        request = PrefetchRequest(now, window, budget_bytes, device_free_bytes).checked()
        ranked = self._ranked(resources, now=request.now)
        candidates = sorted(
            (item for item in ranked if item.resource.tier is Tier.HOST),
            key=lambda item: fetch_order(item.rank),
        )
        return plan_prefetch(iter(candidates), _victim_stream(ranked, Tier.DEVICE), request)

    def _ranked(self, resources: Iterable[Resource], *, now: float) -> list[Ranked]:
        checked_now = check_finite(now, what="now")
        ranked = [Ranked(self.rank(item, now=checked_now), item) for item in resources]
        seen: set[str] = set()
        for item in ranked:
            if item.resource.key in seen:
                raise InvalidEntryError(f"resource key {item.resource.key!r} appears twice")
            seen.add(item.resource.key)
        return ranked


def _victim_stream(ranked: list[Ranked], tier: Tier) -> Iterator[Ranked]:
    """Evictable resources of ``tier``, lowest rank first, heap-ordered lazily."""
    heap = [item for item in ranked if item.resource.tier is tier and item.resource.evictable]
    heapq.heapify(heap)
    while heap:
        yield heapq.heappop(heap)
